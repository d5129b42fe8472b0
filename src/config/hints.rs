//! The likely mistake behind a refused value, said in the message: an
//! inline comment (there are none), quotes (they are part of the value), a
//! backslash meant to join lines (it joins nothing), and a key swallowed by
//! the value above it (indented lines continue the previous value).
//!
//! These are the habits of other INI readers and of Python 2's
//! `ConfigParser` (which cut a value at ` ;`), so a file written for them
//! reads differently here and in Python 3.

use super::ini::{Entry, Section, text};

/// What a refused value's text suggests went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Hint {
    /// A clause to append to the error message, starting with a lowercase
    /// word.
    pub text: String,
    /// The line of a key swallowed by the value, when that is the mistake:
    /// other errors it causes (the key "missing") are the same mistake.
    pub swallowed: Option<usize>,
}

/// What a refused value's text suggests went wrong, if anything.
pub(super) fn for_value(entry: &Entry) -> Option<Hint> {
    let mut lines = entry.value_lines();
    let (_, first) = lines.next()?;
    if let Some((line, written)) = lines.find_map(|(n, l)| key_like(l).map(|_| (n, l))) {
        return Some(Hint {
            text: swallowed(line, written, &entry.key),
            swallowed: Some(line),
        });
    }
    plain(first, entry).map(|text| Hint {
        text,
        swallowed: None,
    })
}

/// The hints about one line of text: comments, quotes, backslashes.
fn plain(first: &str, entry: &Entry) -> Option<String> {
    if let Some(at) = inline_comment(first) {
        return Some(format!(
            "did you mean a comment? comments must be on their own line ({:?} and what follows \
             are part of the value)",
            &first[at..at + 1]
        ));
    }
    if let Some(inner) = quoted(first) {
        return Some(format!(
            "quotes are part of the value: write {inner} without them"
        ));
    }
    if entry.value_lines().any(|(_, l)| l.ends_with('\\')) {
        return Some(
            "a '\\' at the end of a line is part of the value and joins nothing; to continue a \
             value, indent the next line"
                .into(),
        );
    }
    None
}

/// A key line written under `section`'s other keys but indented, so that
/// it continues a value: the line, its text and the key it continues.
pub(super) fn swallowed_key<'a>(
    section: &'a Section,
    key: &str,
) -> Option<(usize, &'a str, &'a str)> {
    section.entries().iter().find_map(|entry| {
        entry
            .value_lines()
            .skip(1)
            .find(|(_, l)| key_like(l).is_some_and(|k| text::lower(k) == key))
            .map(|(line, written)| (line, written, entry.key.as_str()))
    })
}

/// The clause for a key-like line `written` on `line` that continues the
/// value of `owner`.
pub(super) fn swallowed(line: usize, written: &str, owner: &str) -> String {
    format!(
        "line {line} ({written:?}) is indented, so it continues the value of {owner}: indented \
         lines continue the previous value; unindent it to make it a key of its own"
    )
}

/// The key of a line that reads like `key = value` or `key: value`, the key
/// being one word.
pub(super) fn key_like(line: &str) -> Option<&str> {
    let at = line.find(['=', ':'])?;
    let key = text::rstrip(&line[..at]);
    let word = |c: char| c.is_alphanumeric() || "_-.".contains(c);
    (!key.is_empty() && key.chars().all(word)).then_some(key)
}

/// Where a `;` or `#` that starts an inline comment in other INI dialects
/// (at the start, or after whitespace) stands in `value`.
fn inline_comment(value: &str) -> Option<usize> {
    value.char_indices().find_map(|(i, c)| {
        let after_space = value[..i].chars().next_back().is_none_or(text::is_space);
        (matches!(c, ';' | '#') && after_space).then_some(i)
    })
}

/// The text inside quotes that enclose the whole of `value`.
fn quoted(value: &str) -> Option<&str> {
    ['"', '\''].into_iter().find_map(|q| {
        value
            .strip_prefix(q)
            .and_then(|v| v.strip_suffix(q))
            .filter(|inner| !inner.contains(q))
    })
}

#[cfg(test)]
mod tests {
    use super::super::ini::read;
    use super::*;

    fn hint(text: &str) -> Option<String> {
        let doc = read(text, &mut Vec::new()).unwrap();
        for_value(&doc.sections()[0].entries()[0]).map(|h| h.text)
    }

    #[test]
    fn each_likely_mistake_is_named() {
        assert!(
            hint("[a]\naction = web ; the web group\n")
                .unwrap()
                .contains("did you mean a comment?")
        );
        assert!(
            hint("[a]\nport = # todo\n")
                .unwrap()
                .contains("did you mean a comment?")
        );
        assert_eq!(hint("[a]\nport = 80;x\n"), None, "not after a space");
        assert!(
            hint("[a]\nhostname = \"h\"\n")
                .unwrap()
                .contains("write h without them")
        );
        assert!(
            hint("[a]\nport = 80 \\\n")
                .unwrap()
                .contains("joins nothing")
        );
        assert!(
            hint("[a]\ntype = http\n  port = 8080\n")
                .unwrap()
                .starts_with(
                    "line 3 (\"port = 8080\") is indented, so it continues the value of type"
                )
        );
        assert_eq!(hint("[a]\ncommand = a\n  --b\n"), None);
    }

    #[test]
    fn swallowed_keys_are_found() {
        let doc = read("[a]\ntype = tcp\n  Port = 1\n", &mut Vec::new()).unwrap();
        let section = &doc.sections()[0];
        assert_eq!(
            swallowed_key(section, "port"),
            Some((3, "Port = 1", "type"))
        );
        assert_eq!(swallowed_key(section, "type"), None);
    }
}
