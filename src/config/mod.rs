//! The configuration file: INI text in, validated [`Config`] out.
//!
//! Reading is split as the rest of the program needs it: [`load`] reads a
//! file, [`parse`] takes text (tests feed it directly). [`ini`] knows the
//! dialect of Python's `ConfigParser`; [`value`] the scalar types and
//! [`url`] check URLs; `general` and `check` validate those sections; this
//! module knows which keys exist, ties the sections together (action groups
//! used by checks, `[DEFAULT]`), and collects every finding.
//! Every mistake in a file is reported at once, each with the file, line,
//! section and key, and what was expected.

mod check;
mod cluster;
mod endpoint;
mod general;
mod groups;
mod grpc;
mod hints;
mod places;
mod tcp;

pub use general::{
    LISTEN_RESOLVE_TIMEOUT, listen_address, listen_addresses, log_target, unix_group, user_account,
};
pub use places::Places;
pub mod ini;
pub mod url;
pub mod value;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use ini::{DEFAULT, Document, Entry, Interpolator, Section};

use crate::model::{Config, General, default_threads};

/// The keys of `[general]`.
pub const GENERAL_KEYS: &[&str] = &[
    "user",
    "group",
    "logfile",
    "loglevel",
    "logformat",
    "pidfile",
    "threads",
    "daemonize",
    "interval",
    "action_timeout",
    "listen",
    "on_demand",
    "fail_status",
    "exit_on_failure",
    "env_keep",
    "env_set",
    "check_permissions",
    "redact",
    "control_socket",
    "state_file",
];

/// The keys of `[cluster]`.
pub const CLUSTER_KEYS: &[&str] = &[
    "etcd",
    "node",
    "lease",
    "prefix",
    "groups",
    "ca_file",
    "cert_file",
    "key_file",
];

/// The keys of a check section (and of `[DEFAULT]`).
pub const CHECK_KEYS: &[&str] = &[
    "type",
    "hostname",
    "port",
    "path",
    "url",
    "command",
    "timeout",
    "action",
    "rise",
    "fall",
    "interval",
    "fast_interval",
    "expect_status",
    "expect_body",
    "tls_verify",
    "ca_file",
    "tls",
    "send",
    "expect",
    "expect_regex",
    "tls_min_validity",
    "service",
    "authority",
];

/// One finding about a configuration file: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The section, when the finding is about one.
    pub section: Option<String>,
    /// The key (lowercase), when the finding is about one.
    pub key: Option<String>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl Diagnostic {
    fn at_line(line: usize, message: String) -> Diagnostic {
        Diagnostic {
            line: Some(line),
            section: None,
            key: None,
            message,
        }
    }

    /// `FILE:LINE: [section] key: message`, leaving out what is unknown.
    pub fn render(&self, file: &str) -> String {
        let mut out = String::from(file);
        if let Some(line) = self.line {
            out.push_str(&format!(":{line}"));
        }
        out.push_str(": ");
        if let Some(section) = &self.section {
            out.push_str(&format!("[{section}] "));
        }
        if let Some(key) = &self.key {
            out.push_str(&format!("{key}: "));
        }
        out.push_str(&self.message);
        out
    }
}

/// A configuration that cannot be used: every problem found, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, as given by the user.
    pub file: String,
    /// Every problem, in file order where known.
    pub errors: Vec<Diagnostic>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{}: {n} error{} in the configuration",
            self.file,
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  {}", e.render(&self.file))?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// The exit status: always [`crate::exit::Exit::Config`] (78,
    /// `EX_CONFIG` in sysexits.h).
    pub fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Config
    }
}

/// A valid configuration and the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Rendered warnings (`FILE:LINE: [section] key: message`).
    pub warnings: Vec<String>,
    /// Where each key was written, for findings about the configuration
    /// made after it was read.
    pub places: Places,
}

/// Reads and validates the configuration file at `path`. Relative paths
/// inside it (`pidfile`, `logfile`, `ca_file`) are resolved against the
/// current directory.
///
/// # Errors
/// [`ConfigError`] listing every problem, or the reason the file cannot be
/// read.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let base = std::env::current_dir().map_err(|e| ConfigError {
        file: path.display().to_string(),
        errors: vec![Diagnostic {
            line: None,
            section: None,
            key: None,
            message: format!("cannot read the current directory: {e}"),
        }],
    })?;
    load_relative_to(path, &base)
}

/// [`load`], with relative paths (`path` itself and those inside the file)
/// resolved against `base` instead of the current directory: a detached
/// daemon, whose current directory is `/`, reloads against the directory
/// it was launched in.
///
/// # Errors
/// As [`load`].
pub fn load_relative_to(path: &Path, base: &Path) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    let fail = |message: String| ConfigError {
        file: file.clone(),
        errors: vec![Diagnostic {
            line: None,
            section: None,
            key: None,
            message,
        }],
    };
    let bytes =
        std::fs::read(base.join(path)).map_err(|e| fail(format!("cannot read the file: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| ConfigError {
        file: file.clone(),
        errors: vec![not_utf8(e.as_bytes(), e.utf8_error().valid_up_to())],
    })?;
    parse(&text, path, base)
}

/// Why `bytes`, valid UTF-8 up to `valid`, are not a configuration file,
/// at the line of the first bad byte.
fn not_utf8(bytes: &[u8], valid: usize) -> Diagnostic {
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        let message = "the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as \
                       UTF-8 (iconv -f UTF-16 -t UTF-8)";
        return Diagnostic::at_line(1, message.into());
    }
    let before = &bytes[..valid];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let column = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
    Diagnostic::at_line(
        line,
        format!(
            "not valid UTF-8 text (byte 0x{:02X} in column {column}); is the file in Latin-1 or \
             Windows-1252? save it as UTF-8 (iconv -f LATIN1 -t UTF-8)",
            bytes[valid]
        ),
    )
}

/// Validates configuration `text`. `origin` names the file in messages and
/// in [`Config::path`]; relative paths in the text are resolved against
/// `base`.
///
/// # Errors
/// [`ConfigError`] listing every problem found.
pub fn parse(text: &str, origin: &Path, base: &Path) -> Result<Loaded, ConfigError> {
    let file = origin.display().to_string();
    let mut reader = Reader {
        base,
        errors: Vec::new(),
        warnings: Vec::new(),
        interpolator: Interpolator::new(),
        swallowed: HashSet::new(),
    };
    let (config, places) = match ini::read(text, &mut reader.warnings) {
        Ok(doc) => (reader.document(&doc, origin), Places::of(&doc)),
        Err(errors) => {
            reader.errors = errors;
            (None, Places::default())
        }
    };
    let warnings = reader.warnings.iter().map(|w| w.render(&file)).collect();
    match config {
        Some(config) if reader.errors.is_empty() => Ok(Loaded {
            config,
            warnings,
            places,
        }),
        _ => Err(ConfigError {
            file,
            errors: once_each(reader.errors),
        }),
    }
}

/// A value read from the file, interpolated, with where it came from.
struct Found {
    value: String,
    line: Option<usize>,
    /// The section it was written in (a check's own, or `DEFAULT`).
    section: String,
    /// What its text suggests went wrong, should it be refused
    /// ([`hints::for_value`]).
    hint: Option<hints::Hint>,
}

struct Reader<'a> {
    base: &'a Path,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Expands `%(name)s`, and knows which keys were referred to.
    interpolator: Interpolator,
    /// Lines of keys swallowed by an indented continuation that an error
    /// already named: the key they hold is not also "missing".
    swallowed: HashSet<usize>,
}

impl Reader<'_> {
    fn error(&mut self, section: &str, key: Option<&str>, line: Option<usize>, message: String) {
        self.errors.push(Diagnostic {
            line,
            section: Some(section.to_owned()),
            key: key.map(str::to_owned),
            message,
        });
    }

    fn warn(&mut self, section: &str, key: Option<&str>, line: Option<usize>, message: String) {
        self.warnings.push(Diagnostic {
            line,
            section: Some(section.to_owned()),
            key: key.map(str::to_owned),
            message,
        });
    }

    /// The interpolated value of `entry`, written in `owner` (`section`
    /// itself, or `[DEFAULT]`) and read for `section`.
    fn expand(
        &mut self,
        doc: &Document,
        section: &Section,
        owner: &Section,
        entry: &Entry,
    ) -> Option<Found> {
        match self.interpolator.expand(doc, section, entry) {
            Ok(value) => Some(Found {
                value,
                line: Some(entry.line),
                section: owner.name.clone(),
                hint: hints::for_value(entry),
            }),
            Err(message) => {
                self.error(&owner.name, Some(&entry.key), Some(entry.line), message);
                None
            }
        }
    }

    /// `key` of a section that has no defaults (`[general]`, actions).
    fn own(&mut self, doc: &Document, section: &Section, key: &str) -> Option<Found> {
        let entry = section.get(key)?;
        self.expand(doc, section, section, entry)
    }

    /// `key` of a check section, falling back on `[DEFAULT]`. A value from
    /// `[DEFAULT]` is interpolated in the check's section, as ConfigParser
    /// does.
    fn check_key(&mut self, doc: &Document, section: &Section, key: &str) -> Option<Found> {
        let (owner, entry) = doc.lookup(section, key)?;
        self.expand(doc, section, owner, entry)
    }

    /// Parses `found` with `parse`, recording an error at its place.
    fn typed<T>(
        &mut self,
        key: &str,
        found: &Found,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match parse(&found.value) {
            Ok(v) => Some(v),
            Err(message) => {
                let message = self.explain(found.hint.as_ref(), message);
                self.error(&found.section, Some(key), found.line, message);
                None
            }
        }
    }

    /// `message` with `hint` appended, if any; a swallowed key it names is
    /// remembered as explained.
    fn explain(&mut self, hint: Option<&hints::Hint>, message: String) -> String {
        let Some(hint) = hint else {
            return message;
        };
        self.swallowed.extend(hint.swallowed);
        format!("{message}; {}", hint.text)
    }

    /// Reports that `section` lacks `key` (with `message`, under `shown`
    /// as the key), saying where it went when an indented line swallowed
    /// it; nothing when an error already said so.
    fn missing(
        &mut self,
        doc: &Document,
        section: &Section,
        (key, shown): (&str, Option<&str>),
        message: &str,
    ) {
        let swallowed =
            hints::swallowed_key(section, key).or_else(|| hints::swallowed_key(&doc.defaults, key));
        let message = match swallowed {
            Some((line, _, _)) if self.swallowed.contains(&line) => return,
            Some((line, written, owner)) => {
                let hint = hints::Hint {
                    text: hints::swallowed(line, written, owner),
                    swallowed: Some(line),
                };
                self.explain(Some(&hint), message.to_owned())
            }
            None => message.to_owned(),
        };
        self.error(&section.name, shown, section.line, message);
    }

    /// A path, absolute against the launch directory.
    fn path(&self, text: &str) -> PathBuf {
        self.base.join(text)
    }

    fn document(&mut self, doc: &Document, origin: &Path) -> Option<Config> {
        let empty = Section::default();
        let find = |name: &str| doc.section(name);
        let promotions = find("promotions").unwrap_or(&empty);
        let demotions = find("demotions").unwrap_or(&empty);
        let groups = self.groups(doc, promotions, demotions);
        let mut fed = HashSet::new();

        let check_sections: Vec<&Section> = doc
            .sections()
            .iter()
            .filter(|s| {
                !matches!(
                    s.name.as_str(),
                    "general" | "promotions" | "demotions" | cluster::CLUSTER
                )
            })
            .collect();
        // Sized once: doubling a vector of ten thousand checks leaves the
        // old copy and a quarter of unused room behind at its peak.
        let mut checks = Vec::with_capacity(check_sections.len());
        for section in &check_sections {
            if let Some(message) = misnamed(&section.name) {
                self.error(&section.name, None, section.line, message);
                continue;
            }
            if ini::text::strip(&section.name) != section.name {
                let message = format!(
                    "this check is named {:?}, spaces included: the spaces inside the brackets \
                     are part of the name, as in Python",
                    section.name
                );
                self.warn(&section.name, None, section.line, message);
            }
            if let Some(check) = self.check(doc, section, &groups) {
                fed.extend(check.groups.iter().cloned());
                checks.push(check);
            }
        }
        if check_sections.is_empty() {
            self.errors.push(Diagnostic {
                line: None,
                section: None,
                key: None,
                message:
                    "no checks: expected at least one check section, such as [web] with type = http"
                        .into(),
            });
        }
        for group in &groups.specs {
            if !fed.contains(&group.name) {
                let line = promotions.get(&group.name).map(|e| e.line);
                self.warn(
                    "promotions",
                    Some(&group.name),
                    line,
                    "no check uses this action group; it never runs".into(),
                );
            }
        }
        let general = match find("general") {
            Some(section) => self.general(doc, section, checks.len()),
            None => Some(General {
                threads: default_threads(checks.len()),
                ..General::default()
            }),
        };
        let cluster = find(cluster::CLUSTER).and_then(|section| {
            let general = general.as_ref().map(|g| (g, find("general")));
            self.cluster(doc, section, &groups.specs, general)
        });
        self.unused_defaults(doc);
        self.swallowed_keys(doc);
        let general = general?;
        let path = self.path(&origin.to_string_lossy());
        self.errors.is_empty().then_some(Config {
            path: Some(path),
            general,
            groups: groups.specs,
            checks,
            cluster,
        })
    }

    /// Warns of indented lines that read like a key this section takes
    /// (`  port = 8080`) but continue the value above them. When the file is
    /// refused, the error about the missing key says it instead.
    fn swallowed_keys(&mut self, doc: &Document) {
        let sections = std::iter::once(&doc.defaults).chain(doc.sections());
        for section in sections {
            let known = match section.name.as_str() {
                "general" => GENERAL_KEYS,
                cluster::CLUSTER => CLUSTER_KEYS,
                "promotions" | "demotions" => continue,
                _ => CHECK_KEYS,
            };
            for entry in section.entries() {
                for (line, written) in entry.value_lines().skip(1) {
                    let key = hints::key_like(written).map(ini::text::lower);
                    if key.is_some_and(|k| known.contains(&k.as_str())) {
                        let message = hints::swallowed(line, written, &entry.key);
                        self.warn(&section.name, Some(&entry.key), Some(entry.line), message);
                    }
                }
            }
        }
    }

    /// Keys of `[DEFAULT]` that are neither check keys nor referred to by
    /// any `%(name)s`.
    fn unused_defaults(&mut self, doc: &Document) {
        self.reject_unknown(
            &doc.defaults,
            CHECK_KEYS,
            (GENERAL_KEYS, " (it belongs in [general])"),
            &format!(
                "[DEFAULT] gives defaults for check keys ({}) or values for %(name)s",
                CHECK_KEYS.join(", ")
            ),
        );
    }

    /// Reports every key of `section` that is not in `allowed` and that no
    /// `%(name)s` refers to, adding `misplaced.1` as a hint when the key is
    /// one of `misplaced.0`, and `expected` to say what the section takes.
    fn reject_unknown(
        &mut self,
        section: &Section,
        allowed: &[&str],
        misplaced: (&[&str], &str),
        expected: &str,
    ) {
        for entry in section.entries() {
            let key = entry.key.as_str();
            if allowed.contains(&key) || self.interpolator.is_used(&section.name, key) {
                continue;
            }
            let hint = if misplaced.0.contains(&key) {
                misplaced.1
            } else {
                ""
            };
            self.error(
                &section.name,
                Some(key),
                Some(entry.line),
                format!("unknown key{hint}; {expected}"),
            );
        }
    }
}

/// Why a section that would be a check is refused: its name is that of a
/// special section, in another case or with spaces inside the brackets.
fn misnamed(name: &str) -> Option<String> {
    let stripped = ini::text::strip(name);
    let special = [
        "general",
        "promotions",
        "demotions",
        cluster::CLUSTER,
        DEFAULT,
    ]
    .into_iter()
    .find(|special| stripped.eq_ignore_ascii_case(special))?;
    Some(if stripped == special {
        format!(
            "did you mean [{special}]? the spaces inside the brackets are part of the section \
             name, as in Python"
        )
    } else {
        format!("section names are case-sensitive: did you mean [{special}]?")
    })
}

/// `errors` in file order, each mistake once: a `[DEFAULT]` value refused
/// in every check section that reads it is one error, at its line.
fn once_each(mut errors: Vec<Diagnostic>) -> Vec<Diagnostic> {
    errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
    let mut seen = HashSet::new();
    errors.retain(|e| {
        let default = e.section.as_deref() == Some(DEFAULT);
        let message = if default { "" } else { e.message.as_str() };
        seen.insert((e.line, e.section.clone(), e.key.clone(), message.to_owned()))
    });
    errors
}

/// Whether a check section has `key`, itself or from `[DEFAULT]`, whatever
/// its value: a key whose value was refused is not also "missing".
fn has_key(doc: &Document, section: &Section, key: &str) -> bool {
    section.get(key).is_some() || doc.defaults.get(key).is_some()
}
