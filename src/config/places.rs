//! Where each setting of a valid configuration was written, so that what
//! is found about it later (`-t` looking at the files a configuration
//! names) can be reported with its file, section, key and line.

use std::collections::HashMap;

use super::Diagnostic;
use super::ini::{DEFAULT, Document};

/// The line of every key of a file, by section.
#[derive(Debug, Clone, Default)]
pub struct Places {
    /// (section, key) → line; `DEFAULT` for `[DEFAULT]`.
    keys: HashMap<(String, String), usize>,
}

impl Places {
    pub(super) fn of(doc: &Document) -> Places {
        let mut keys = HashMap::new();
        for section in std::iter::once(&doc.defaults).chain(doc.sections()) {
            for entry in section.entries() {
                keys.insert((section.name.clone(), entry.key.clone()), entry.line);
            }
        }
        Places { keys }
    }

    /// Where `key` of `section` was written: in the section itself, or
    /// else in `[DEFAULT]`; `None` when it was not written at all.
    pub fn find<'a>(&self, section: &'a str, key: &str) -> Option<(&'a str, usize)> {
        [section, DEFAULT].into_iter().find_map(|s| {
            self.keys
                .get(&(s.to_owned(), key.to_owned()))
                .map(|&line| (s, line))
        })
    }

    /// A finding about `key` of `section`, at the place [`Places::find`]
    /// gives (the section without a line when it was not written).
    pub fn diagnostic(&self, section: &str, key: &str, message: String) -> Diagnostic {
        let (section, line) = match self.find(section, key) {
            Some((s, line)) => (s, Some(line)),
            None => (section, None),
        };
        Diagnostic {
            line,
            section: Some(section.to_owned()),
            key: Some(key.to_owned()),
            message,
        }
    }
}
