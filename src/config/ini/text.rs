//! The text primitives Python's `configparser` is built on, with Python 3's
//! definitions rather than Rust's: what a line is (`open()` in text mode),
//! what whitespace is (`str.isspace`, `str.strip`, the `\s` and `\S` of
//! `re`), and how a key is lowercased (`str.lower`).

/// Whether Python 3's `str.isspace()` holds for `c`: Unicode's White_Space
/// characters plus the four ASCII separators U+001C–U+001F, which Python
/// counts as whitespace and Rust's [`char::is_whitespace`] does not. The
/// `\s` of Python's `re` on `str` patterns is the same set.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `s.strip()` in Python 3.
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// `s.rstrip()` in Python 3.
pub fn rstrip(s: &str) -> &str {
    s.trim_end_matches(is_space)
}

/// `s.lstrip()` in Python 3.
pub fn lstrip(s: &str) -> &str {
    s.trim_start_matches(is_space)
}

/// The column of the first character that is not whitespace, counted in
/// characters (`NONSPACECRE.search(line).start()` in `configparser`); 0
/// for a line of whitespace only.
pub fn indent(line: &str) -> usize {
    line.chars().position(|c| !is_space(c)).unwrap_or(0)
}

/// `s.lower()` in Python 3: Unicode's full lowercase mapping, with the
/// final-sigma rule (`ΟΔΟΣ` → `οδος`). Rust's [`str::to_lowercase`]
/// implements the same rules; the two differ only for the few letters
/// added to Unicode after the version a given Python was built with.
pub fn lower(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        s.to_lowercase()
    }
}

/// The lines of `text` as Python 3 reads a file opened in text mode
/// (universal newlines): a line ends at `\n`, `\r\n` or a lone `\r`, and
/// the line end is not part of the line. Each comes with its 1-based
/// number. A final line end does not start another line.
pub fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text;
    let mut number = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        number += 1;
        let (line, next) = match rest.find(['\n', '\r']) {
            Some(end) => {
                let skip = if rest[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                (&rest[..end], &rest[end + skip..])
            }
            None => (rest, ""),
        };
        rest = next;
        Some((number, line))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_is_pythons() {
        // Python: ''.join(chr(c) for c in range(0x110000) if chr(c).isspace())
        let python: Vec<char> = "\t\n\u{b}\u{c}\r\u{1c}\u{1d}\u{1e}\u{1f} \u{85}\u{a0}\u{1680}\
             \u{2000}\u{2001}\u{2002}\u{2003}\u{2004}\u{2005}\u{2006}\u{2007}\u{2008}\u{2009}\
             \u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}"
            .chars()
            .collect();
        let ours: Vec<char> = (0..=0x10ffff)
            .filter_map(char::from_u32)
            .filter(|&c| is_space(c))
            .collect();
        assert_eq!(ours, python);
        assert_eq!(strip("\u{1f} a b\u{3000}\r"), "a b");
        assert_eq!(strip("\u{feff}a"), "\u{feff}a", "a BOM is not whitespace");
    }

    #[test]
    fn lines_end_as_in_universal_newlines() {
        let got: Vec<_> = lines("a\r\nb\rc\n\nd").collect();
        assert_eq!(got, [(1, "a"), (2, "b"), (3, "c"), (4, ""), (5, "d")]);
        assert_eq!(lines("a\n").count(), 1);
        assert_eq!(lines("").count(), 0);
        // Form feed, vertical tab, NEL and U+2028 end no line in a file.
        assert_eq!(lines("a\u{c}\u{b}\u{85}\u{2028}b").count(), 1);
    }

    #[test]
    fn indent_counts_characters() {
        assert_eq!(indent("\u{3000}x"), 1);
        assert_eq!(indent("  x"), 2);
        assert_eq!(indent("x"), 0);
    }

    #[test]
    fn lowercase_as_python() {
        // Values from Python 3.11's str.lower().
        assert_eq!(lower("ΟΔΟΣ"), "\u{3bf}\u{3b4}\u{3bf}\u{3c2}");
        assert_eq!(lower("ΑΣ Β"), "ας β");
        assert_eq!(lower("İx"), "i\u{307}x");
        assert_eq!(lower("STRAẞE"), "straße");
        assert_eq!(lower("ǅemal"), "ǆemal");
        assert_eq!(lower("HostName"), "hostname");
    }
}
