//! `%(name)s` interpolation: `BasicInterpolation._interpolate_some` of
//! CPython's `Lib/configparser.py`, with bounds on what it may cost.
//!
//! A value is interpolated only when it contains `%(` (Python 3 would
//! interpolate every value; Python 2's `ConfigParser` did it this way, and
//! shell commands full of `%` depend on it). A value that is interpolated
//! is read exactly as Python 3 reads it: `%%` is `%`, `%(name)s` is the
//! value of `name` (lowercased) from the same section or `[DEFAULT]`, and
//! a referenced value that contains a `%` is itself interpolated, at most
//! [`MAX_DEPTH`] deep (`MAX_INTERPOLATION_DEPTH`); any other `%` is an
//! error.
//!
//! Python has no bound on size: ten levels of `%(a)s%(a)s…` grow a value
//! exponentially, and a file of a few hundred bytes exhausts any machine.
//! Here one value may expand to at most [`MAX_VALUE_BYTES`], and all the
//! values of a file together to at most [`MAX_TOTAL_BYTES`]; the
//! references followed are bounded the same way, so that references to
//! empty values cannot spin either.

use std::collections::{HashMap, HashSet};

use super::{Document, Entry, Section, text};

/// How deep references may nest: Python's `MAX_INTERPOLATION_DEPTH`.
pub const MAX_DEPTH: usize = 10;

/// The longest value interpolation may produce, in bytes: Linux's
/// `MAX_ARG_STRLEN` (32 pages of 4 KiB) less its terminating NUL, the
/// longest command `/bin/sh -c` can be given.
pub const MAX_VALUE_BYTES: usize = 32 * 4096 - 1;

/// The most bytes the interpolations of one file may produce in all.
pub const MAX_TOTAL_BYTES: usize = 64 << 20;

/// The most references one value may follow, counting nested ones.
const MAX_VALUE_REFERENCES: usize = 10_000;

/// The most references the interpolations of one file may follow in all.
const MAX_TOTAL_REFERENCES: usize = 1_000_000;

/// Expands `%(name)s` references for one file, keeping count of what they
/// cost and of which keys they referred to.
#[derive(Debug, Default)]
pub struct Interpolator {
    /// Section name → keys some reference resolved to there.
    used: HashMap<String, HashSet<String>>,
    /// Bytes produced so far, all values together.
    bytes: usize,
    /// References followed so far, all values together.
    references: usize,
}

impl Interpolator {
    /// An interpolator with nothing spent.
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
    /// deeper than [`MAX_DEPTH`] (usually a loop), or a value larger than
    /// [`MAX_VALUE_BYTES`] (or a file's worth larger than
    /// [`MAX_TOTAL_BYTES`]).
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
            references: 0,
            chain: vec![entry.key.as_str()],
            budget_bytes: MAX_TOTAL_BYTES.saturating_sub(self.bytes),
            budget_references: MAX_TOTAL_REFERENCES.saturating_sub(self.references),
        };
        let result = expansion.some(&entry.value, 1);
        if result.is_err() {
            // The keys the value names are not also "unknown keys".
            expansion.mark_named(&entry.value);
        }
        self.bytes += expansion.out.len();
        self.references += expansion.references;
        result.map(|()| expansion.out)
    }
}

/// One value being expanded.
struct Expansion<'a, 'u> {
    doc: &'a Document,
    section: &'a Section,
    used: &'u mut HashMap<String, HashSet<String>>,
    out: String,
    references: usize,
    /// The key being expanded, then each reference followed into.
    chain: Vec<&'a str>,
    budget_bytes: usize,
    budget_references: usize,
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
        self.references += 1;
        if self.references > MAX_VALUE_REFERENCES.min(self.budget_references) {
            return Err(format!(
                "interpolation follows more than {} references; expected a few %(name)s",
                MAX_VALUE_REFERENCES.min(self.budget_references)
            ));
        }
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
        let limit = MAX_VALUE_BYTES.min(self.budget_bytes);
        if self.out.len() + s.len() > limit {
            return Err(if limit == MAX_VALUE_BYTES {
                format!(
                    "interpolation makes this value longer than {limit} bytes, the longest \
                     command /bin/sh -c can take ({})",
                    self.chain.join(" → ")
                )
            } else {
                format!(
                    "the interpolations of this file make more than {MAX_TOTAL_BYTES} bytes in all"
                )
            });
        }
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

    // Regression: a few hundred bytes of nested references took 16 s and
    // 2.9 GB before they were bounded.
    #[test]
    fn exponential_references_fail_fast() {
        let mut text = String::from("[s]\n");
        for i in 0..9 {
            text.push_str(&format!("k{i} = {}\n", format!("%(k{})s", i + 1).repeat(8)));
        }
        text.push_str("k9 = xxxxxxxxxxxxxxxx\n");
        assert!(text.len() < 800);
        let err = expand(&text, "s", "k0").unwrap_err();
        assert!(err.contains("longer than 131071 bytes"), "{err}");
        // Empty values: nothing grows, the references are counted.
        let empty = text.replace("xxxxxxxxxxxxxxxx", "");
        let err = expand(&empty, "s", "k0").unwrap_err();
        assert!(err.contains("more than 10000 references"), "{err}");
    }
}
