//! The INI dialect of Python 3's `configparser`, read the way it reads it.
//!
//! [`read`] follows the algorithm of `RawConfigParser._read` in CPython's
//! `Lib/configparser.py` with the default options (`#` and `;` full-line
//! comments, no inline comments, `=` and `:` delimiters,
//! `empty_lines_in_values`, `optionxform = str.lower`, `[DEFAULT]`): one
//! pass over the lines, each classified once, in this order:
//!
//! 1. a line whose stripped text starts with `#` or `;` is a comment; it
//!    ends nothing (a value goes on past it);
//! 2. an empty line (whitespace only) adds an empty line to the value being
//!    read; trailing empty lines are dropped at the end;
//! 3. a line indented deeper than the line that started the current key is
//!    a continuation: its stripped text is added to the value, after `\n`;
//! 4. `[NAME]` (up to the *last* `]`; spaces inside are part of the name)
//!    starts a section;
//! 5. `key = value` or `key: value`, split at the first `=` or `:`, starts
//!    a key; the key is stripped and lowercased, the value stripped.
//!
//! Anything else is an error with its line. Whitespace, line ends and
//! lowercasing are Python's ([`text`]). There are no escapes: quotes,
//! backslashes, `;` and `#` inside a value are part of it.
//!
//! Where heartbeat deviates from Python 3, on purpose and documented in the
//! README: a repeated section or key is merged, the later value winning,
//! with a warning (Python 3 refuses it, Python 2 did this); a byte-order
//! mark and a NUL byte are refused with a message that names them.
//! [`Interpolator`] expands `%(name)s`.
//!
//! Time and memory are linear in the size of the file: keys and sections
//! are indexed as they are read.

mod interpolate;
pub mod text;

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;

pub use interpolate::{Interpolator, MAX_DEPTH, MAX_TOTAL_BYTES, MAX_VALUE_BYTES};

use super::Diagnostic;

/// The name of the section whose keys are defaults for every check.
pub const DEFAULT: &str = "DEFAULT";

/// One key and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key, lowercased (`optionxform`, Python's `str.lower()`).
    pub key: String,
    /// The value as written, stripped; continuation lines joined with
    /// `\n`, trailing empty lines dropped.
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
    /// The line of each `\n`-separated line of `value`.
    lines: Vec<usize>,
}

impl Entry {
    /// The lines of the value with their line numbers in the file: the
    /// key's line first, then continuation (and empty) lines.
    pub fn value_lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.lines.iter().copied().zip(self.value.split('\n'))
    }
}

/// One section, with repeated sections merged into the first.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// The name between the brackets, exactly as written (case and spaces
    /// kept).
    pub name: String,
    /// 1-based line of its first header; `None` for a section the file
    /// does not have.
    pub line: Option<usize>,
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
}

impl Section {
    fn named(name: &str, line: Option<usize>) -> Section {
        Section {
            name: name.to_owned(),
            line,
            ..Section::default()
        }
    }

    /// The entry for `key` (lowercase).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.index.get(key).map(|&i| &self.entries[i])
    }

    /// Its keys in file order; a repeated key keeps its first place and
    /// holds the later value.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

/// A file read: `[DEFAULT]` apart, the other sections in file order.
#[derive(Debug, Clone)]
pub struct Document {
    /// The `[DEFAULT]` section (empty when absent).
    pub defaults: Section,
    sections: Vec<Section>,
    index: HashMap<String, usize>,
}

impl Default for Document {
    fn default() -> Self {
        Document {
            defaults: Section::named(DEFAULT, None),
            sections: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl Document {
    /// Every section but `[DEFAULT]`, in the order of their first headers.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The section named `name` (case-sensitive), not `[DEFAULT]`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.index.get(name).map(|&i| &self.sections[i])
    }

    /// The value of `key` as `section` sees it: its own, else `[DEFAULT]`'s.
    pub fn lookup<'a>(
        &'a self,
        section: &'a Section,
        key: &str,
    ) -> Option<(&'a Section, &'a Entry)> {
        match section.get(key) {
            Some(entry) => Some((section, entry)),
            None => self.defaults.get(key).map(|e| (&self.defaults, e)),
        }
    }
}

/// Reads `text`, the whole file, into a [`Document`]. Warnings (repeated
/// sections and keys, text after a section header) are pushed to
/// `warnings`.
///
/// # Errors
/// Every line that is neither a comment, a section header, a key nor a
/// continuation, the first key before any section header, a byte-order
/// mark, a NUL byte: each with its line and what was expected.
pub fn read(text: &str, warnings: &mut Vec<Diagnostic>) -> Result<Document, Vec<Diagnostic>> {
    let mut reader = Reader {
        doc: Document::default(),
        section: None,
        key: None,
        indent: 0,
        orphan_reported: false,
        nul_reported: false,
        errors: Vec::new(),
        warnings,
    };
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => {
            reader.error(
                1,
                "the file starts with a UTF-8 byte-order mark (BOM), which Python's \
                 ConfigParser refuses too; save it as UTF-8 without a BOM"
                    .into(),
            );
            rest
        }
        None => text,
    };
    let nuls = text.bytes().filter(|&b| b == 0).count();
    for (number, line) in text::lines(text) {
        if nuls > 0 && line.contains('\0') {
            reader.nul(number, nuls);
        }
        reader.line(number, line);
    }
    reader.finish()
}

/// Which section keys go to.
#[derive(Clone, Copy)]
enum Current {
    Defaults,
    Section(usize),
}

/// The state of `_read`: the current section (`cursect`), key
/// (`optname`) and the indentation of the line that started it
/// (`indent_level`).
struct Reader<'w> {
    doc: Document,
    section: Option<Current>,
    key: Option<usize>,
    indent: usize,
    orphan_reported: bool,
    nul_reported: bool,
    errors: Vec<Diagnostic>,
    warnings: &'w mut Vec<Diagnostic>,
}

impl Reader<'_> {
    fn error(&mut self, line: usize, message: String) {
        self.errors.push(Diagnostic::at_line(line, message));
    }

    /// The first line with a NUL byte; Python would read it, but no value
    /// with one can reach a command line, and a file with one is usually
    /// not the file meant (binary, UTF-16).
    fn nul(&mut self, number: usize, count: usize) {
        if self.nul_reported {
            return;
        }
        self.nul_reported = true;
        let many = if count > 1 {
            format!(" ({count} in the file, the first on this line)")
        } else {
            String::new()
        };
        self.error(
            number,
            format!(
                "a NUL byte{many}; a configuration file is text: is this a binary file, or one \
                 saved as UTF-16?"
            ),
        );
    }

    fn current(&mut self) -> Option<&mut Section> {
        match self.section? {
            Current::Defaults => Some(&mut self.doc.defaults),
            Current::Section(i) => Some(&mut self.doc.sections[i]),
        }
    }

    /// The entry continuation lines go to, if any.
    fn continued(&mut self) -> Option<&mut Entry> {
        let key = self.key?;
        Some(&mut self.current()?.entries[key])
    }

    fn line(&mut self, number: usize, line: &str) {
        let clean = text::strip(line);
        if clean.starts_with(['#', ';']) {
            return;
        }
        if clean.is_empty() {
            if let Some(entry) = self.continued() {
                entry.value.push('\n');
                entry.lines.push(number);
            }
            return;
        }
        let indent = text::indent(line);
        if indent > self.indent {
            if let Some(entry) = self.continued() {
                entry.value.push('\n');
                entry.value.push_str(clean);
                entry.lines.push(number);
                return;
            }
        }
        self.indent = indent;
        if let Some((name, rest)) = header(clean) {
            self.header(number, name, rest);
        } else if self.section.is_none() {
            self.orphan(number, clean);
        } else if let Some(at) = clean.find(['=', ':']) {
            let key = text::rstrip(&clean[..at]);
            let value = text::lstrip(&clean[at + 1..]);
            if key.is_empty() {
                self.key = None;
                let delimiter = &clean[at..=at];
                self.error(number, format!("{clean:?} has no key before '{delimiter}'"));
            } else {
                self.key(number, &text::lower(key), value);
            }
        } else {
            let message = self.not_understood(line, clean);
            self.error(number, message);
        }
    }

    fn header(&mut self, number: usize, name: &str, rest: &str) {
        self.key = None;
        let rest = text::strip(rest);
        if !rest.is_empty() && !rest.starts_with(['#', ';']) {
            self.warnings.push(Diagnostic {
                line: Some(number),
                section: Some(name.to_owned()),
                key: None,
                message: format!("{rest:?} after the section header is ignored"),
            });
        }
        if name.contains(']') {
            self.warnings.push(Diagnostic {
                line: Some(number),
                section: Some(name.to_owned()),
                key: None,
                message: format!(
                    "the section name runs to the last ']' of the line, {name:?}, as Python 3.10 \
                     and later read it (Python 2 and older Pythons 3 end it at the first ']')"
                ),
            });
        }
        if name == DEFAULT {
            self.doc.defaults.line.get_or_insert(number);
            self.section = Some(Current::Defaults);
            return;
        }
        let count = self.doc.sections.len();
        let i = match self.doc.index.entry(name.to_owned()) {
            Slot::Occupied(slot) => *slot.get(),
            Slot::Vacant(slot) => {
                slot.insert(count);
                self.doc.sections.push(Section::named(name, Some(number)));
                count
            }
        };
        if i < count {
            let first = self.doc.sections[i].line.unwrap_or(number);
            self.warnings.push(Diagnostic {
                line: Some(number),
                section: Some(name.to_owned()),
                key: None,
                message: format!(
                    "section repeated (first on line {first}); its keys are merged, later values win"
                ),
            });
        }
        self.section = Some(Current::Section(i));
    }

    fn key(&mut self, number: usize, key: &str, value: &str) {
        let Some(section) = self.current() else {
            return;
        };
        let count = section.entries.len();
        let name = section.name.clone();
        let fresh = Entry {
            key: key.to_owned(),
            value: value.to_owned(),
            line: number,
            lines: vec![number],
        };
        let i = match section.index.entry(key.to_owned()) {
            Slot::Occupied(slot) => *slot.get(),
            Slot::Vacant(slot) => {
                slot.insert(count);
                section.entries.push(fresh.clone());
                count
            }
        };
        if i < count {
            let first = std::mem::replace(&mut section.entries[i], fresh).line;
            self.warnings.push(Diagnostic {
                line: Some(number),
                section: Some(name),
                key: Some(key.to_owned()),
                message: format!("key repeated (first on line {first}); the later value is used"),
            });
        }
        self.key = Some(i);
    }

    /// A key or other text before the first section header: Python stops
    /// there (`MissingSectionHeaderError`); one error says it all.
    fn orphan(&mut self, number: usize, clean: &str) {
        if std::mem::replace(&mut self.orphan_reported, true) {
            return;
        }
        let message = match clean.find(['=', ':']) {
            Some(at) if at > 0 => format!(
                "key {:?} comes before any [section] header; a file starts with one, such as \
                 [general]",
                text::lower(text::rstrip(&clean[..at]))
            ),
            _ if clean.starts_with('[') => self.not_understood(clean, clean),
            _ => format!(
                "{clean:?} comes before any [section] header; a file starts with one, such as \
                 [general]"
            ),
        };
        self.error(number, message);
    }

    /// Why a line that is neither a header nor a key is refused.
    fn not_understood(&self, line: &str, clean: &str) -> String {
        if clean == "[]" {
            return "\"[]\" has no section name; expected [NAME]".into();
        }
        if clean.starts_with('[') {
            return format!("section header {clean:?} has no closing ']'");
        }
        if text::indent(line) > 0 && self.key.is_none() {
            return format!(
                "{clean:?} is indented, but no key above it in this section can take it as a \
                 continuation line; expected `key = value` (not indented)"
            );
        }
        format!(
            "{clean:?} is not understood; expected `key = value`, a [section] header, a comment \
             starting with # or ;, or an indented continuation of a value"
        )
    }

    fn finish(self) -> Result<Document, Vec<Diagnostic>> {
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        let mut doc = self.doc;
        for section in std::iter::once(&mut doc.defaults).chain(&mut doc.sections) {
            for entry in &mut section.entries {
                let end = text::rstrip(&entry.value).len();
                entry.value.truncate(end);
                let parts = entry.value.split('\n').count();
                entry.lines.truncate(parts);
            }
        }
        Ok(doc)
    }
}

/// `SECTCRE` (`\[(?P<header>.+)\]`, matched at the start of the stripped
/// line): the name up to the last `]`, at least one character, and what
/// follows the `]`.
fn header(clean: &str) -> Option<(&str, &str)> {
    let inner = clean.strip_prefix('[')?;
    let close = inner.rfind(']')?;
    (close > 0).then(|| (&inner[..close], &inner[close + 1..]))
}
