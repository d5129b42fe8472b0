//! `%(name)s` interpolation: `BasicInterpolation._interpolate_some` of
//! CPython's `Lib/configparser.py`.
//!
//! A value is interpolated only when it contains `%(` (Python 3 would
//! interpolate every value; Python 2's `ConfigParser` did it this way, and
//! shell commands full of `%` depend on it). A value that is interpolated
//! is read exactly as Python 3 reads it: `%%` is `%`, `%(name)s` is the
//! value of `name` (lowercased) from the same section or `[DEFAULT]`, and
//! a referenced value that contains a `%` is itself interpolated, at most
//! [`MAX_DEPTH`] deep (`MAX_INTERPOLATION_DEPTH`); any other `%` is an
//! error.

use std::collections::{HashMap, HashSet};

use super::{Document, Entry, Section, text};

/// How deep references may nest: Python's `MAX_INTERPOLATION_DEPTH`.
pub const MAX_DEPTH: usize = 10;

/// Expands `%(name)s` references for one file, keeping count of which keys
/// they referred to.
#[derive(Debug, Default)]
pub struct Interpolator {
    /// Section name → keys some reference resolved to there.
    used: HashMap<String, HashSet<String>>,
}

impl Interpolator {
    /// An interpolator that has expanded nothing yet.
    pub fn new() -> Interpolator {
        Interpolator::default()
    }

    /// Whether some reference resolved to `key` of the section `section`
    /// (`DEFAULT` for `[DEFAULT]`).
    pub fn is_used(&self, section: &str, key: &str) -> bool {
        self.used
            .get(section)
            .is_some_and(|keys| keys.contains(key))
    }

    /// The value of `entry` read in `section` (the section of the check
    /// for a value from `[DEFAULT]`, as ConfigParser does): unchanged
    /// unless it contains `%(`, else interpolated as described in the
    /// module documentation.
    ///
    /// # Errors
    /// What is wrong, naming the reference at fault: a reference to a key
    /// that is neither in `section` nor in `[DEFAULT]`, a `%` that is not
    /// `%%` or `%(name)s` (in the value or in one it brings in), nesting
    /// deeper than [`MAX_DEPTH`] (usually a loop).
    pub fn expand<'a>(
        &mut self,
        doc: &'a Document,
        section: &'a Section,
        entry: &'a Entry,
    ) -> Result<String, String> {
        if !entry.value.contains("%(") {
            return Ok(entry.value.clone());
        }
        let mut expansion = Expansion {
            doc,
            section,
            used: &mut self.used,
            out: String::new(),
            chain: vec![entry.key.as_str()],
        };
        let result = expansion.some(&entry.value, 1);
        if result.is_err() {
            // The keys the value names are not also "unknown keys".
            expansion.mark_named(&entry.value);
        }
        result.map(|()| expansion.out)
    }
}

/// One value being expanded.
struct Expansion<'a, 'u> {
    doc: &'a Document,
    section: &'a Section,
    used: &'u mut HashMap<String, HashSet<String>>,
    out: String,
    /// The key being expanded, then each reference followed into.
    chain: Vec<&'a str>,
}

impl<'a> Expansion<'a, '_> {
    /// `_interpolate_some`: appends `rest`, expanded, to `out`.
    fn some(&mut self, mut rest: &'a str, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "interpolation nests more than {MAX_DEPTH} deep ({}); does a %(name)s refer \
                 to itself?",
                self.chain.join(" → ")
            ));
        }
        while let Some(at) = rest.find('%') {
            self.push(&rest[..at])?;
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('%') {
                self.push("%")?;
                rest = tail;
            } else if let Some(tail) = after.strip_prefix('(') {
                let Some((name, tail)) = tail
                    .split_once(')')
                    .filter(|(n, t)| !n.is_empty() && t.starts_with('s'))
                else {
                    return Err(self.bad(&rest[at..], "a '%(' that does not make %(name)s"));
                };
                self.reference(&text::lower(name), depth)?;
                rest = &tail[1..];
            } else {
                return Err(self.bad(&rest[at..], "a lone '%'"));
            }
        }
        self.push(rest)
    }

    fn reference(&mut self, name: &str, depth: usize) -> Result<(), String> {
        let Some((owner, entry)) = self.doc.lookup(self.section, name) else {
            return Err(format!(
                "%({name})s refers to a key that is neither in [{}] nor in [DEFAULT]",
                self.section.name
            ));
        };
        self.used
            .entry(owner.name.clone())
            .or_default()
            .insert(entry.key.clone());
        if entry.value.contains('%') {
            self.chain.push(&entry.key);
            self.some(&entry.value, depth + 1)?;
            self.chain.pop();
            Ok(())
        } else {
            self.push(&entry.value)
        }
    }

    /// Marks as used every key that a well-formed `%(name)s` in `value`
    /// names and that exists.
    fn mark_named(&mut self, value: &str) {
        for (at, _) in value.match_indices("%(") {
            let Some((name, tail)) = value[at + 2..].split_once(')') else {
                continue;
            };
            if let (true, Some((owner, entry))) = (
                tail.starts_with('s'),
                self.doc.lookup(self.section, &text::lower(name)),
            ) {
                self.used
                    .entry(owner.name.clone())
                    .or_default()
                    .insert(entry.key.clone());
            }
        }
    }

    fn push(&mut self, s: &str) -> Result<(), String> {
        self.out.push_str(s);
        Ok(())
    }

    /// A syntax error at `at` (the rest of the text from the offending
    /// `%`), in the value itself or in one it brings in.
    fn bad(&self, at: &str, what: &str) -> String {
        let shown: String = at.chars().take(20).collect();
        let place = match self.chain.as_slice() {
            [_] => String::new(),
            [.., last] => format!(" in the value of %({last})s, brought in by interpolation"),
            [] => String::new(),
        };
        format!(
            "{what} at {shown:?}{place}; in a value that uses %(name)s, write %% for a literal %"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::read;
    use super::*;

    fn expand(text: &str, section: &str, key: &str) -> Result<String, String> {
        let doc = read(text, &mut Vec::new()).expect("reads");
        let section = if section == "DEFAULT" {
            &doc.defaults
        } else {
            doc.section(section).unwrap()
        };
        let (_, entry) = doc.lookup(section, key).unwrap();
        Interpolator::new().expand(&doc, section, entry)
    }

    #[test]
    fn as_python_3_within_values_that_use_it() {
        let text =
            "[DEFAULT]\nbase = /srv\npct = 100%%\n[s]\nA = %(BASE)s/%(pct)s %%\nraw = 100%\n";
        // Python: cp.get('s', 'a') == '/srv/100% %'
        assert_eq!(expand(text, "s", "a").unwrap(), "/srv/100% %");
        assert_eq!(
            expand(text, "s", "raw").unwrap(),
            "100%",
            "no %( → untouched"
        );
        assert_eq!(
            expand(text, "s", "pct").unwrap(),
            "100%%",
            "no %( → untouched"
        );
    }

    #[test]
    fn syntax_errors_as_python_3() {
        for (value, why) in [
            ("%(x)d", "does not make"),
            ("%()s", "does not make"),
            ("%(x", "does not make"),
            ("%(x)s 5%", "lone"),
            ("%(y)s", "lone"),
        ] {
            let text = format!("[s]\nx = 1\ny = 5%\nv = {value}\n");
            let err = expand(&text, "s", "v").unwrap_err();
            assert!(err.contains(why), "{value}: {err}");
        }
    }

    #[test]
    fn depth_is_pythons() {
        // k0 → k1 → … : Python refuses once a value at depth 11 has a '%'.
        let chain = |n: usize| {
            let mut text = String::from("[s]\n");
            for i in 0..n {
                text.push_str(&format!("k{i} = %(k{})s\n", i + 1));
            }
            text.push_str(&format!("k{n} = end\n"));
            text
        };
        assert_eq!(expand(&chain(10), "s", "k0").unwrap(), "end");
        let err = expand(&chain(11), "s", "k0").unwrap_err();
        assert!(err.contains("more than 10 deep (k0 → k1"), "{err}");
        assert!(
            expand("[s]\na = %(a)s\n", "s", "a")
                .unwrap_err()
                .contains("refer to itself")
        );
    }
}
