//! The configuration file: INI text in, validated [`Config`] out.
//!
//! Reading is split as the rest of the program needs it: [`load`] reads a
//! file, [`parse`] takes text (tests feed it directly). [`ini`] knows the
//! dialect of Python's `ConfigParser`; [`value`] the scalar types; this
//! module knows which keys exist, their defaults, and how they combine.
//! Every mistake in a file is reported at once, each with the file, line,
//! section and key, and what was expected.

pub mod ini;
pub mod url;
pub mod value;

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ini::{DEFAULT, Document, Entry, Section};

use crate::model::{CheckSpec, Config, General, GroupSpec, HttpProbe, LogTarget, Probe, StatusSet};

/// The keys of `[general]`.
pub const GENERAL_KEYS: &[&str] = &[
    "user",
    "group",
    "logfile",
    "loglevel",
    "pidfile",
    "threads",
    "daemonize",
    "interval",
    "action_timeout",
    "listen",
    "on_demand",
    "fail_status",
    "exit_on_failure",
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
    "expect_status",
    "expect_body",
    "tls_verify",
    "ca_file",
];

/// Default whole-check deadline.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Most worker threads chosen by default (one per check up to this).
pub const DEFAULT_MAX_THREADS: usize = 64;

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

/// A valid configuration and the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Rendered warnings (`FILE:LINE: [section] key: message`).
    pub warnings: Vec<String>,
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
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        ConfigError {
            file: file.clone(),
            errors: vec![Diagnostic::at_line(line, "not valid UTF-8 text".into())],
        }
    })?;
    parse(&text, path, base)
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
        used: HashSet::new(),
    };
    let doc = ini::read(text, &mut reader.errors, &mut reader.warnings);
    let config = if reader.errors.is_empty() {
        reader.document(&doc, origin)
    } else {
        None
    };
    let warnings = reader.warnings.iter().map(|w| w.render(&file)).collect();
    match config {
        Some(config) if reader.errors.is_empty() => Ok(Loaded { config, warnings }),
        _ => {
            let mut errors = reader.errors;
            errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
            Err(ConfigError { file, errors })
        }
    }
}

/// A value read from the file, interpolated, with where it came from.
struct Found {
    value: String,
    line: Option<usize>,
    /// The section it was written in (a check's own, or `DEFAULT`).
    section: String,
}

struct Reader<'a> {
    base: &'a Path,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Keys some `%(name)s` refers to: (section, key).
    used: HashSet<(String, String)>,
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

    /// The interpolated value of `entry`, read for `section`.
    fn expand(&mut self, doc: &Document, section: &Section, entry: &Entry) -> Option<Found> {
        match ini::interpolate(doc, section, &entry.value, &mut self.used) {
            Ok(value) => Some(Found {
                value,
                line: entry.line,
                section: section.name.clone(),
            }),
            Err(message) => {
                self.error(&section.name, Some(&entry.key), entry.line, message);
                None
            }
        }
    }

    /// `key` of a section that has no defaults (`[general]`, actions).
    fn own(&mut self, doc: &Document, section: &Section, key: &str) -> Option<Found> {
        let entry = section.get(key)?;
        self.expand(doc, section, entry)
    }

    /// `key` of a check section, falling back on `[DEFAULT]`. A value from
    /// `[DEFAULT]` is interpolated in the check's section, as ConfigParser
    /// does.
    fn check_key(&mut self, doc: &Document, section: &Section, key: &str) -> Option<Found> {
        if let Some(entry) = section.get(key) {
            return self.expand(doc, section, entry);
        }
        let entry = doc.defaults.get(key)?;
        let mut found = self.expand(doc, section, entry)?;
        found.section = DEFAULT.to_owned();
        Some(found)
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
                let (section, line) = (found.section.clone(), found.line);
                self.error(&section, Some(key), line, message);
                None
            }
        }
    }

    /// A path, absolute against the launch directory.
    fn path(&self, text: &str) -> PathBuf {
        self.base.join(text)
    }

    fn document(&mut self, doc: &Document, origin: &Path) -> Option<Config> {
        let empty = Section::default();
        let find = |name: &str| doc.sections.iter().find(|s| s.name == name);
        let promotions = find("promotions").unwrap_or(&empty);
        let demotions = find("demotions").unwrap_or(&empty);
        let groups = self.groups(doc, promotions, demotions);

        let check_sections: Vec<&Section> = doc
            .sections
            .iter()
            .filter(|s| !matches!(s.name.as_str(), "general" | "promotions" | "demotions"))
            .collect();
        let mut checks = Vec::new();
        for section in &check_sections {
            let special = ["general", "promotions", "demotions", "DEFAULT"]
                .into_iter()
                .find(|special| section.name.eq_ignore_ascii_case(special));
            if let Some(special) = special {
                self.error(
                    &section.name,
                    None,
                    section.line,
                    format!("section names are case-sensitive: did you mean [{special}]?"),
                );
            } else if let Some(check) = self.check(doc, section, &groups) {
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
        for group in &groups {
            if !checks
                .iter()
                .any(|c: &CheckSpec| c.groups.contains(&group.name))
            {
                let line = promotions.get(&group.name).and_then(|e| e.line);
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
        self.unused_defaults(doc);
        let general = general?;
        let path = self.path(&origin.to_string_lossy());
        self.errors.is_empty().then_some(Config {
            path: Some(path),
            general,
            groups,
            checks,
        })
    }

    fn groups(
        &mut self,
        doc: &Document,
        promotions: &Section,
        demotions: &Section,
    ) -> Vec<GroupSpec> {
        let mut groups = Vec::new();
        for entry in &promotions.entries {
            let promotion = self.expand(doc, promotions, entry);
            let Some(demotion_entry) = demotions.get(&entry.key) else {
                self.error(
                    "promotions",
                    Some(&entry.key),
                    entry.line,
                    format!("action group {:?} has a promotion but no demotion; add `{} = COMMAND` to [demotions]", entry.key, entry.key),
                );
                continue;
            };
            let demotion = self.expand(doc, demotions, demotion_entry);
            let (Some(promotion), Some(demotion)) = (promotion, demotion) else {
                continue;
            };
            for (found, section) in [(&promotion, "promotions"), (&demotion, "demotions")] {
                if found.value.trim().is_empty() {
                    self.error(
                        section,
                        Some(&entry.key),
                        found.line,
                        "empty command; expected a shell command (`true` does nothing)".into(),
                    );
                }
            }
            groups.push(GroupSpec {
                name: entry.key.clone(),
                promotion: promotion.value,
                demotion: demotion.value,
            });
        }
        for entry in &demotions.entries {
            if promotions.get(&entry.key).is_none() {
                self.error(
                    "demotions",
                    Some(&entry.key),
                    entry.line,
                    format!("action group {:?} has a demotion but no promotion; add `{} = COMMAND` to [promotions]", entry.key, entry.key),
                );
            }
        }
        groups
    }

    fn general(&mut self, doc: &Document, section: &Section, checks: usize) -> Option<General> {
        let mut general = General {
            threads: default_threads(checks),
            ..General::default()
        };
        let before = self.errors.len();
        let get = |me: &mut Self, key: &str| me.own(doc, section, key);

        for key in ["user", "group"] {
            if let Some(found) = get(self, key) {
                if let Some(id) = self.typed(key, &found, |v| account(key, v)) {
                    if key == "user" {
                        general.user = id
                    } else {
                        general.group = id
                    }
                }
            }
        }
        if let Some(found) = get(self, "logfile") {
            general.log = match found.value.as_str() {
                "stderr" | "-" => LogTarget::Stderr,
                "syslog" => LogTarget::Syslog,
                v if value::is_none(v) => LogTarget::Stderr,
                v => LogTarget::File(self.path(v)),
            };
        }
        if let Some(found) = get(self, "loglevel") {
            general.log_level = self
                .typed("loglevel", &found, value::log_level)
                .unwrap_or(general.log_level);
        }
        if let Some(found) = get(self, "pidfile") {
            if !value::is_none(&found.value) {
                general.pidfile = Some(self.path(&found.value));
            }
        }
        if let Some(found) = get(self, "threads") {
            if let Some(n) = self.typed("threads", &found, |v| value::count(v, 1, 1024)) {
                general.threads = n as usize;
            }
        }
        let flags: [(&str, &mut bool); 3] = [
            ("daemonize", &mut general.daemonize),
            ("on_demand", &mut general.on_demand),
            ("exit_on_failure", &mut general.exit_on_failure),
        ];
        for (key, slot) in flags {
            if let Some(found) = self.own(doc, section, key) {
                if let Some(b) = self.typed(key, &found, value::boolean) {
                    *slot = b;
                }
            }
        }
        for (key, slot) in [
            ("interval", &mut general.interval),
            ("action_timeout", &mut general.action_timeout),
        ] {
            if let Some(found) = self.own(doc, section, key) {
                if let Some(d) = self.typed(key, &found, value::duration) {
                    *slot = d;
                }
            }
        }
        if let Some(found) = self.own(doc, section, "listen") {
            if !value::is_none(&found.value) {
                general.listen = self.typed("listen", &found, listen_address);
            }
        }
        if let Some(found) = self.own(doc, section, "fail_status") {
            general.fail_status = self
                .typed("fail_status", &found, value::status_code)
                .unwrap_or(503);
        }
        self.reject_unknown(
            section,
            GENERAL_KEYS,
            (
                CHECK_KEYS,
                " (it is a check key: put it in a check section or in [DEFAULT])",
            ),
            &format!("[general] takes {}", GENERAL_KEYS.join(", ")),
        );
        (self.errors.len() == before).then_some(general)
    }

    fn check(
        &mut self,
        doc: &Document,
        section: &Section,
        groups: &[GroupSpec],
    ) -> Option<CheckSpec> {
        let before = self.errors.len();
        let name = section.name.clone();
        let own = |key: &str| section.get(key).is_some();

        // The type comes from the section's own `type` or `url`, then from
        // [DEFAULT]'s `type`, then from [DEFAULT]'s `url`.
        let url = if own("url") || (!own("type") && doc.defaults.get("type").is_none()) {
            self.check_key(doc, section, "url")
        } else {
            None
        };
        let mut kind = if own("type") || url.is_none() {
            self.check_key(doc, section, "type").and_then(|found| {
                self.typed("type", &found, |v| match v.to_ascii_lowercase().as_str() {
                    k @ ("tcp" | "http" | "https" | "script") => Ok(k.to_owned()),
                    _ => Err(format!(
                        "{v:?} is not a check type; expected tcp, http, https or script"
                    )),
                })
            })
        } else {
            None
        };
        let parsed_url = url.as_ref().and_then(|found| {
            self.typed("url", found, |v| {
                url::parse(v).map_err(|e| format!("{v:?}: {e}"))
            })
        });
        if let Some(probe) = &parsed_url {
            let scheme = probe.kind().to_owned();
            match &kind {
                Some(k) if own("type") && *k != scheme => {
                    let line = section.get("type").and_then(|e| e.line);
                    self.error(
                        &name,
                        Some("type"),
                        line,
                        format!("type = {k} contradicts url, which says {scheme}; remove one"),
                    );
                }
                _ => kind = Some(scheme),
            }
            if url.as_ref().is_some_and(|u| u.section == name) {
                for key in ["hostname", "port", "path"] {
                    if let Some(entry) = section.get(key) {
                        self.error(&name, Some(key), entry.line, format!("both url and {key} are set; the url already gives the {key}: remove one"));
                    }
                }
            }
        }
        let Some(kind) = kind else {
            if self.errors.len() == before {
                self.error(
                    &name,
                    None,
                    section.line,
                    "no check type: expected `type = tcp|http|https|script`, or a `url = …`".into(),
                );
            }
            self.unknown_keys(section);
            return None;
        };

        // Which keys apply to this type; the others are ignored, with a
        // warning when they were set in this very section.
        let applies: &[&str] = match kind.as_str() {
            "tcp" => &["hostname", "port", "url"],
            "http" => &[
                "hostname",
                "port",
                "path",
                "url",
                "expect_status",
                "expect_body",
            ],
            "https" => &[
                "hostname",
                "port",
                "path",
                "url",
                "expect_status",
                "expect_body",
                "tls_verify",
                "ca_file",
            ],
            _ => &["command"],
        };
        let common = ["type", "timeout", "action", "rise", "fall"];
        for entry in &section.entries {
            let key = entry.key.as_str();
            if common.contains(&key) || applies.contains(&key) {
                continue;
            }
            if CHECK_KEYS.contains(&key) {
                self.warn(
                    &name,
                    Some(key),
                    entry.line,
                    format!("does not apply to a {kind} check; ignored"),
                );
            }
        }

        let timeout = match self.check_key(doc, section, "timeout") {
            Some(found) => self.typed("timeout", &found, value::duration),
            None => Some(DEFAULT_TIMEOUT),
        };
        let rise = self.counter(doc, section, "rise");
        let fall = self.counter(doc, section, "fall");
        let actions = self.check_key(doc, section, "action");
        let groups_of = match actions {
            None if has_key(doc, section, "action") => None,
            None => {
                self.error(&name, Some("action"), section.line, "no action: expected `action = GROUP` naming a group of [promotions] and [demotions]".into());
                None
            }
            Some(found) => {
                let names: Vec<String> = found
                    .value
                    .split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect();
                let mut ok = !names.is_empty();
                if names.is_empty() {
                    self.error(
                        &found.section,
                        Some("action"),
                        found.line,
                        "empty; expected one or more action group names, comma-separated".into(),
                    );
                }
                for group in &names {
                    if !groups.iter().any(|g| &g.name == group) {
                        ok = false;
                        self.error(
                            &found.section,
                            Some("action"),
                            found.line,
                            format!("action group {group:?} is not defined; expected a name from both [promotions] and [demotions]"),
                        );
                    }
                }
                ok.then_some(names)
            }
        };

        let probe = match kind.as_str() {
            "script" => match self.check_key(doc, section, "command") {
                Some(found) if !found.value.trim().is_empty() => Some(Probe::Script {
                    command: found.value,
                }),
                Some(found) => {
                    self.error(
                        &found.section,
                        Some("command"),
                        found.line,
                        "empty; expected a shell command".into(),
                    );
                    None
                }
                // Present but refused (its interpolation failed): already
                // reported.
                None if has_key(doc, section, "command") => None,
                None => {
                    self.error(
                        &name,
                        Some("command"),
                        section.line,
                        "a script check needs `command = SHELL COMMAND`".into(),
                    );
                    None
                }
            },
            _ => self.endpoint(doc, section, &kind, parsed_url),
        };
        self.unknown_keys(section);
        if self.errors.len() != before {
            return None;
        }
        Some(CheckSpec {
            name,
            probe: probe?,
            timeout: timeout?,
            groups: groups_of?,
            rise: rise?,
            fall: fall?,
        })
    }

    fn counter(&mut self, doc: &Document, section: &Section, key: &str) -> Option<u32> {
        match self.check_key(doc, section, key) {
            Some(found) => self.typed(key, &found, |v| value::count(v, 1, 1000)),
            None => Some(1),
        }
    }

    /// The target of a tcp/http/https check, from its url or from
    /// hostname/port/path.
    fn endpoint(
        &mut self,
        doc: &Document,
        section: &Section,
        kind: &str,
        url: Option<Probe>,
    ) -> Option<Probe> {
        let name = section.name.clone();
        let (host, port, path) = match url {
            Some(Probe::Http(http)) => (Some(http.host), Some(http.port), Some(http.path)),
            Some(other) => return Some(other),
            None => {
                let host = self
                    .check_key(doc, section, "hostname")
                    .and_then(|f| self.typed("hostname", &f, hostname));
                let port = self
                    .check_key(doc, section, "port")
                    .and_then(|f| self.typed("port", &f, value::port));
                let path = if kind == "tcp" {
                    None
                } else {
                    self.check_key(doc, section, "path").map(|f| {
                        if f.value.starts_with('/') {
                            f.value
                        } else {
                            let (s, l) = (f.section.clone(), f.line);
                            self.warn(
                                &s,
                                Some("path"),
                                l,
                                format!(
                                    "{:?} does not start with '/'; requesting /{}",
                                    f.value, f.value
                                ),
                            );
                            format!("/{}", f.value)
                        }
                    })
                };
                (host, port, path)
            }
        };
        let host = host.unwrap_or_else(|| "localhost".to_owned());
        if kind == "tcp" {
            let Some(port) = port else {
                if !has_key(doc, section, "port") {
                    self.error(
                        &name,
                        Some("port"),
                        section.line,
                        "a tcp check needs a port (1-65535)".into(),
                    );
                }
                return None;
            };
            return Some(Probe::Tcp { host, port });
        }
        let https = kind == "https";
        let expect_status = match self.check_key(doc, section, "expect_status") {
            Some(found) => self.typed("expect_status", &found, value::status_set)?,
            None => StatusSet::default(),
        };
        let expect_body = self
            .check_key(doc, section, "expect_body")
            .map(|f| f.value)
            .filter(|v| !v.is_empty());
        let (mut tls_verify, mut ca_file) = (true, None);
        if https {
            if let Some(found) = self.check_key(doc, section, "tls_verify") {
                tls_verify = self.typed("tls_verify", &found, value::boolean)?;
            }
            if let Some(found) = self.check_key(doc, section, "ca_file") {
                if !value::is_none(&found.value) {
                    let path = self.path(&found.value);
                    if !path.is_file() {
                        let (s, l) = (found.section.clone(), found.line);
                        self.error(
                            &s,
                            Some("ca_file"),
                            l,
                            format!(
                                "{} is not a readable file; expected a PEM file of CA certificates",
                                path.display()
                            ),
                        );
                        return None;
                    }
                    ca_file = Some(path);
                }
            }
        }
        Some(Probe::Http(HttpProbe {
            https,
            host,
            port: port.unwrap_or(if https { 443 } else { 80 }),
            path: path.unwrap_or_else(|| "/".to_owned()),
            expect_status,
            expect_body,
            tls_verify,
            ca_file,
        }))
    }

    /// Keys of a check section that are not check keys and that no
    /// `%(name)s` refers to: typos.
    fn unknown_keys(&mut self, section: &Section) {
        self.reject_unknown(
            section,
            CHECK_KEYS,
            (GENERAL_KEYS, " (it belongs in [general])"),
            &format!("a check takes {}", CHECK_KEYS.join(", ")),
        );
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
        for entry in &section.entries {
            let key = entry.key.as_str();
            if allowed.contains(&key)
                || self
                    .used
                    .contains(&(section.name.clone(), entry.key.clone()))
            {
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
                entry.line,
                format!("unknown key{hint}; {expected}"),
            );
        }
    }
}

/// Whether a check section has `key`, itself or from `[DEFAULT]`, whatever
/// its value: a key whose value was refused is not also "missing".
fn has_key(doc: &Document, section: &Section, key: &str) -> bool {
    section.get(key).is_some() || doc.defaults.get(key).is_some()
}

/// One worker per check, at least 1, at most [`DEFAULT_MAX_THREADS`].
pub fn default_threads(checks: usize) -> usize {
    checks.clamp(1, DEFAULT_MAX_THREADS)
}

/// A user or group name (or numeric id) that must exist; `None` or empty
/// means "keep the launching one".
fn account(key: &str, text: &str) -> Result<Option<String>, String> {
    if value::is_none(text) {
        return Ok(None);
    }
    let found = if key == "user" {
        match text.parse::<u32>() {
            Ok(uid) => nix::unistd::User::from_uid(uid.into()).map(|u| u.map(|u| u.name)),
            Err(_) => nix::unistd::User::from_name(text).map(|u| u.map(|u| u.name)),
        }
    } else {
        match text.parse::<u32>() {
            Ok(gid) => nix::unistd::Group::from_gid(gid.into()).map(|g| g.map(|g| g.name)),
            Err(_) => nix::unistd::Group::from_name(text).map(|g| g.map(|g| g.name)),
        }
    };
    match found {
        Ok(Some(name)) => Ok(Some(name)),
        Ok(None) => Err(format!(
            "no {key} named {text:?} on this system; expected an existing {key} or None"
        )),
        Err(e) => Err(format!("cannot look up {key} {text:?}: {e}")),
    }
}

/// A host name or IP address; brackets around IPv6 are removed.
fn hostname(text: &str) -> Result<String, String> {
    let host = text
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(text);
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || "/?#@".contains(c)) {
        return Err(format!(
            "{text:?} is not a host name; expected a name or an IP address such as 127.0.0.1 or ::1"
        ));
    }
    Ok(host.to_owned())
}

/// The status server address: `ADDR:PORT`, `[V6]:PORT`, or `:PORT` for all
/// IPv4 addresses.
pub fn listen_address(text: &str) -> Result<SocketAddr, String> {
    let text_full;
    let text = match text.strip_prefix(':') {
        Some(port) => {
            text_full = format!("0.0.0.0:{port}");
            &text_full
        }
        None => text,
    };
    text.parse().map_err(|_| format!("{text:?} is not an address; expected IP:PORT such as 127.0.0.1:8080, [::1]:8080 or :8080"))
}

/// port, path). Schemes: tcp, http, https.
///
/// # Errors
/// A message saying what part is missing or wrong.
pub fn parse_url(text: &str) -> Result<(String, String, Option<u16>, String), String> {
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(format!(
            "{text:?} has no scheme; expected tcp://HOST:PORT, http://HOST/PATH or https://HOST/PATH"
        ));
    };
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "tcp" | "http" | "https") {
        return Err(format!(
            "{text:?}: scheme {scheme:?} is not supported; expected tcp, http or https"
        ));
    }
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_owned()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_owned()),
    };
    if authority.contains('@') {
        return Err(format!("{text:?}: credentials in a URL are not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return Err(format!("{text:?}: unclosed '[' around an IPv6 address"));
        };
        let port = match after.strip_prefix(':') {
            Some(p) => Some(value::port(p).map_err(|e| format!("{text:?}: {e}"))?),
            None if after.is_empty() => None,
            None => return Err(format!("{text:?}: unexpected {after:?} after the address")),
        };
        (host.to_owned(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, p)) => (
                host.to_owned(),
                Some(value::port(p).map_err(|e| format!("{text:?}: {e}"))?),
            ),
            None => (authority.to_owned(), None),
        }
    };
    let host = hostname(&host).map_err(|e| format!("{text:?}: {e}"))?;
    if scheme == "tcp" && port.is_none() {
        return Err(format!("{text:?} has no port; expected tcp://HOST:PORT"));
    }
    Ok((scheme, host, port, path))
}
