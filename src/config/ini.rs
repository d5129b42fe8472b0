//! The INI dialect of Python's `ConfigParser`, on top of `rust-ini`.
//!
//! `rust-ini` is configured so that values arrive exactly as written: no
//! quote or escape processing and no inline comments, so a shell command
//! keeps its `;`, `#`, quotes and backslashes. Around it this module adds
//! what ConfigParser does and `rust-ini` does not: case-insensitive keys,
//! line numbers for every key, `[DEFAULT]`, duplicate handling, and
//! `%(name)s` interpolation.

use std::collections::{HashMap, HashSet};

use super::Diagnostic;

/// The name of the section whose keys are defaults for every check.
pub const DEFAULT: &str = "DEFAULT";

/// One `key = value` line.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The key, lowercased (ConfigParser's `optionxform`).
    pub key: String,
    /// The value as written, trimmed; continuation lines joined with `\n`.
    pub value: String,
    /// 1-based line of the key, when known.
    pub line: Option<usize>,
}

/// One section, with duplicate sections merged into the first.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// The name between the brackets (case-sensitive).
    pub name: String,
    /// 1-based line of its first header.
    pub line: Option<usize>,
    /// Its keys in file order; a repeated key keeps its first place and
    /// takes the later value.
    pub entries: Vec<Entry>,
}

impl Section {
    /// The entry for `key` (lowercase).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// A parsed file: `[DEFAULT]` apart, the other sections in file order.
#[derive(Debug, Clone, Default)]
pub struct Document {
    /// The `[DEFAULT]` section (empty when absent).
    pub defaults: Section,
    /// Every other section.
    pub sections: Vec<Section>,
}

/// Where a key or section stands in the text.
#[derive(Default)]
struct Locations {
    sections: HashMap<String, usize>,
    keys: HashMap<(String, String), Vec<usize>>,
}

/// Reads `text` into a [`Document`]. Structural errors (a line that is
/// neither a key, a section header nor a comment; keys before the first
/// section) are pushed to `errors` with their line; warnings (repeated
/// keys and sections) to `warnings`.
pub fn read(text: &str, errors: &mut Vec<Diagnostic>, warnings: &mut Vec<Diagnostic>) -> Document {
    let locations = match scan(text) {
        Ok(l) => l,
        Err(mut found) => {
            errors.append(&mut found);
            return Document::default();
        }
    };
    let options = ini::ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        enabled_indented_mutiline_value: true,
        enabled_preserve_key_leading_whitespace: false,
    };
    let parsed = match ini::Ini::load_from_str_opt(text, options) {
        Ok(parsed) => parsed,
        Err(e) => {
            errors.push(Diagnostic::at_line(
                e.line,
                format!("cannot parse: {}", e.msg),
            ));
            return Document::default();
        }
    };

    let mut doc = Document::default();
    doc.defaults.name = DEFAULT.to_owned();
    let mut seen_keys: HashMap<(String, String), usize> = HashMap::new();
    for (name, props) in parsed.iter() {
        let Some(name) = name else { continue };
        let line = locations.sections.get(name).copied();
        let section = if name == DEFAULT {
            &mut doc.defaults
        } else if let Some(i) = doc.sections.iter().position(|s| s.name == name) {
            warnings.push(Diagnostic {
                line,
                section: Some(name.to_owned()),
                key: None,
                message: "section appears more than once; its keys are merged, later values win"
                    .into(),
            });
            &mut doc.sections[i]
        } else {
            doc.sections.push(Section::default());
            doc.sections.last_mut().expect("just pushed")
        };
        if section.name.is_empty() {
            section.name = name.to_owned();
        }
        if section.line.is_none() {
            section.line = line;
        }
        for (key, value) in props.iter() {
            let key = key.to_ascii_lowercase();
            let id = (name.to_owned(), key.clone());
            let n = seen_keys.entry(id.clone()).or_insert(0);
            let line = locations
                .keys
                .get(&id)
                .and_then(|lines| lines.get(*n))
                .copied();
            *n += 1;
            let value = value.trim().to_owned();
            if let Some(existing) = section.entries.iter_mut().find(|e| e.key == key) {
                warnings.push(Diagnostic {
                    line,
                    section: Some(name.to_owned()),
                    key: Some(key.clone()),
                    message: format!(
                        "key repeated (first on line {}); the later value is used",
                        existing.line.map_or("?".into(), |l| l.to_string())
                    ),
                });
                existing.value = value;
            } else {
                section.entries.push(Entry { key, value, line });
            }
        }
    }
    doc
}

/// Finds the line of every section header and key, and the lines that
/// `rust-ini` would misreport (it points at the end of the file).
fn scan(text: &str) -> Result<Locations, Vec<Diagnostic>> {
    let mut locations = Locations::default();
    let mut errors = Vec::new();
    let mut section: Option<String> = None;
    let mut in_value = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indented = raw.starts_with([' ', '\t']);
        if indented && in_value && !trimmed.starts_with('[') {
            continue; // continuation of the previous value
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            match rest.find(']') {
                Some(end) => {
                    let name = rest[..end].trim().to_owned();
                    locations.sections.entry(name.clone()).or_insert(line);
                    section = Some(name);
                    in_value = false;
                }
                None => errors.push(Diagnostic::at_line(
                    line,
                    format!("section header {trimmed:?} has no closing ']'"),
                )),
            }
            continue;
        }
        let Some(split) = trimmed.find(['=', ':']) else {
            errors.push(Diagnostic::at_line(
                line,
                format!(
                    "{trimmed:?} is not understood; expected `key = value`, a [section] header, \
                     a comment starting with # or ;, or an indented continuation of a value"
                ),
            ));
            in_value = false;
            continue;
        };
        let key = trimmed[..split].trim().to_ascii_lowercase();
        if key.is_empty() {
            errors.push(Diagnostic::at_line(
                line,
                format!(
                    "{trimmed:?} has no key before '{}'",
                    &trimmed[split..=split]
                ),
            ));
            continue;
        }
        match &section {
            Some(name) => locations
                .keys
                .entry((name.clone(), key))
                .or_default()
                .push(line),
            None => errors.push(Diagnostic::at_line(
                line,
                format!("key {key:?} comes before any [section] header"),
            )),
        }
        in_value = true;
    }
    if errors.is_empty() {
        Ok(locations)
    } else {
        Err(errors)
    }
}

/// Expands `%(name)s` references in `value` as ConfigParser does: only when
/// the value contains `%(`; names are looked up in `section`, then in
/// `[DEFAULT]`, case-insensitively, recursively (at most 10 deep, Python's
/// `MAX_INTERPOLATION_DEPTH`); `%%` is a literal `%`. Every key a reference
/// resolved to is added to `used` as (section name, key).
///
/// # Errors
/// A message for a reference to a missing key, a lone `%`, an unclosed
/// reference, or nesting deeper than 10 (usually a loop).
pub fn interpolate(
    doc: &Document,
    section: &Section,
    value: &str,
    used: &mut HashSet<(String, String)>,
) -> Result<String, String> {
    expand(doc, section, value, used, 0)
}

fn expand(
    doc: &Document,
    section: &Section,
    value: &str,
    used: &mut HashSet<(String, String)>,
    depth: usize,
) -> Result<String, String> {
    if !value.contains("%(") {
        return Ok(value.to_owned());
    }
    if depth >= 10 {
        return Err(
            "interpolation nests more than 10 deep; does a %(name)s refer to itself?".into(),
        );
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            out.push('%');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('(') {
            let Some(close) = tail.find(")s") else {
                return Err(format!(
                    "unclosed reference in {value:?}; expected %(name)s"
                ));
            };
            let name = tail[..close].to_ascii_lowercase();
            let (owner, entry) = match section.get(&name) {
                Some(e) => (&section.name, e),
                None => match doc.defaults.get(&name) {
                    Some(e) => (&doc.defaults.name, e),
                    None => {
                        return Err(format!(
                            "%({name})s refers to a key that is neither in [{}] nor in [DEFAULT]",
                            section.name
                        ));
                    }
                },
            };
            used.insert((owner.clone(), name));
            out.push_str(&expand(doc, section, &entry.value, used, depth + 1)?);
            rest = &tail[close + 2..];
        } else {
            return Err(format!(
                "lone '%' in {value:?}, a value that uses %(name)s; write %% for a literal %"
            ));
        }
    }
    out.push_str(rest);
    Ok(out)
}
