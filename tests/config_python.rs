//! Heartbeat reads configuration files as Python 3's `configparser` does:
//! generated files, full of the things operators and editors put in them
//! (tabs, CRLF, comments between continuation lines, indented keys, inline
//! `;` and `#`, quotes, backslashes, `%`, Unicode, `[ web ]`, `[]`, a BOM,
//! a NUL byte), are read by heartbeat and by `python3`, and compared value
//! by value.
//!
//! The expectations come from Python itself, run once per test on every
//! file of the batch. The only differences allowed are the documented ones
//! (README, "Configuration reference"): values without `%(` are not
//! interpolated, a repeated section or key is a warning instead of an error,
//! and heartbeat refuses a NUL byte and a byte-order mark.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use heartbeat::config::ini::{self, Interpolator, Section};
use heartbeat::config::parse;
use serde_json::Value;

/// Files per run: a few hundred, fast enough for every `cargo test`.
const FILES: usize = 600;
/// Fixed, so that a failure names a file that the next run makes again.
const SEED: u64 = 0x6865_6172_7462_6561;

/// Reads every file named on the command line with
/// `configparser.ConfigParser()` (default options) and prints one JSON
/// object per file: the error, or the raw sections and every interpolated
/// value (only those containing `%(`).
const PYTHON: &str = r#"
import configparser, json, sys

def lines_of(e):
    if isinstance(e, configparser.MissingSectionHeaderError):
        return [e.lineno]
    if isinstance(e, configparser.ParsingError):
        return [n for n, _ in e.errors]
    return []

def read(path):
    duplicates = False
    try:
        configparser.ConfigParser().read(path, encoding="utf-8")
    except (configparser.DuplicateSectionError, configparser.DuplicateOptionError):
        duplicates = True
    except Exception as e:
        return {"error": type(e).__name__, "lines": lines_of(e)}
    cp = configparser.ConfigParser(strict=False)
    try:
        cp.read(path, encoding="utf-8")
    except Exception as e:
        return {"error": type(e).__name__, "lines": lines_of(e)}
    sections = [["DEFAULT", list(cp.defaults().items())]]
    sections += [[s, list(cp._sections[s].items())] for s in cp.sections()]
    interpolated = []
    for s in ["DEFAULT"] + cp.sections():
        keys = cp.defaults().keys() if s == "DEFAULT" else cp.options(s)
        for k in keys:
            raw = cp.get(s, k, raw=True)
            if "%(" not in raw:
                continue
            try:
                value = cp.get(s, k)
            except configparser.InterpolationError:
                value = None
            interpolated.append([s, k, value])
    return {"duplicates": duplicates, "sections": sections, "interpolated": interpolated}

for path in sys.argv[1:]:
    print(json.dumps(read(path)))
"#;

/// What one reader made of one file.
#[derive(Debug, PartialEq)]
enum Reading {
    /// Refused, with the lines blamed.
    Error(Vec<usize>),
    /// Read.
    Read {
        /// A section or key appeared more than once.
        duplicates: bool,
        /// `[DEFAULT]` first, then every section in file order, with its
        /// own keys in order and their raw values.
        sections: Vec<(String, Vec<(String, String)>)>,
        /// (section, key) → the interpolated value, `None` for an
        /// interpolation error; only values that contain `%(`.
        interpolated: BTreeMap<(String, String), Option<String>>,
    },
}

fn python_reading(v: &Value) -> Reading {
    if v.get("error").is_some() {
        let lines = v["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap() as usize)
            .collect();
        return Reading::Error(lines);
    }
    let text = |v: &Value| v.as_str().unwrap().to_owned();
    let sections = v["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let keys = s[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|kv| (text(&kv[0]), text(&kv[1])))
                .collect();
            (text(&s[0]), keys)
        })
        .collect();
    let interpolated = v["interpolated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| ((text(&t[0]), text(&t[1])), t[2].as_str().map(str::to_owned)))
        .collect();
    Reading::Read {
        duplicates: v["duplicates"].as_bool().unwrap(),
        sections,
        interpolated,
    }
}

fn heartbeat_reading(text: &str) -> Reading {
    let mut warnings = Vec::new();
    let doc = match ini::read(text, &mut warnings) {
        Ok(doc) => doc,
        Err(errors) => return Reading::Error(errors.iter().filter_map(|e| e.line).collect()),
    };
    let raw = |s: &Section| {
        s.entries()
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect::<Vec<_>>()
    };
    let mut sections = vec![("DEFAULT".to_owned(), raw(&doc.defaults))];
    sections.extend(doc.sections().iter().map(|s| (s.name.clone(), raw(s))));
    let mut interpolated = BTreeMap::new();
    for section in std::iter::once(&doc.defaults).chain(doc.sections()) {
        let keys = section.entries().iter().chain(doc.defaults.entries());
        for key in keys.map(|e| e.key.as_str()) {
            let (_, entry) = doc.lookup(section, key).expect("a key of the section");
            let id = (section.name.clone(), key.to_owned());
            if entry.value.contains("%(") && !interpolated.contains_key(&id) {
                let value = Interpolator::new().expand(&doc, section, entry).ok();
                interpolated.insert(id, value);
            }
        }
    }
    Reading::Read {
        duplicates: warnings.iter().any(|w| w.message.contains("repeated")),
        sections,
        interpolated,
    }
}

/// Whether heartbeat's reading agrees with Python's, and if not, why.
fn compare(text: &str, python: &Reading, heartbeat: &Reading) -> Result<(), String> {
    match (python, heartbeat) {
        (Reading::Error(py), Reading::Error(hb)) => match py.iter().find(|l| !hb.contains(l)) {
            Some(line) => Err(format!(
                "both refuse, but heartbeat does not blame line {line} ({hb:?} vs {py:?})"
            )),
            None => Ok(()),
        },
        (Reading::Error(py), Reading::Read { .. }) => {
            Err(format!("Python refuses (lines {py:?}), heartbeat reads"))
        }
        (Reading::Read { .. }, Reading::Error(hb)) => {
            if text.contains('\0') || text.starts_with('\u{feff}') {
                Ok(()) // documented: refused on purpose
            } else {
                Err(format!("Python reads, heartbeat refuses (lines {hb:?})"))
            }
        }
        (Reading::Read { .. }, Reading::Read { .. }) if python == heartbeat => Ok(()),
        (
            Reading::Read {
                duplicates: pd,
                sections: ps,
                interpolated: pi,
            },
            Reading::Read {
                duplicates: hd,
                sections: hs,
                interpolated: hi,
            },
        ) => {
            if ps != hs {
                return Err(format!(
                    "raw sections differ:\n  python:    {ps:?}\n  heartbeat: {hs:?}"
                ));
            }
            if pd != hd {
                return Err(format!(
                    "python duplicates {pd}, heartbeat warned of duplicates {hd}"
                ));
            }
            for (id, p) in pi {
                let h = hi.get(id);
                if h != Some(p) {
                    return Err(format!(
                        "interpolation of {id:?}: python {p:?}, heartbeat {h:?}"
                    ));
                }
            }
            Err(format!("interpolations differ: {pi:?} vs {hi:?}"))
        }
    }
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True once in `n` times.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Keys, some upper-case, some non-ASCII with upper-case letters whose
/// lowercase Python's `str.lower()` defines (`Σ` at the end of a word, `İ`,
/// `ẞ`).
const KEYS: &[&str] = &[
    "type",
    "command",
    "action",
    "port",
    "Port",
    "HOSTNAME",
    "base",
    "Base",
    "x",
    "dir",
    "a b",
    "ÄRGER",
    "ΟΔΟΣ",
    "ΣΑ",
    "İstanbul",
    "STRAẞE",
    "ǅemal",
    "key.with.dots",
    "k-1",
    "_",
    "ﬁle",
];

const SECTIONS: &[&str] = &[
    "general",
    "promotions",
    "demotions",
    "DEFAULT",
    "web",
    "db",
    " web ",
    "web ]x",
    "a]b",
    "Ünïcode",
    "check 1",
    "default",
    "[nested",
];

/// Pieces of values: shell syntax, comment characters, quotes,
/// backslashes, percent signs, references, Unicode, odd whitespace.
const PIECES: &[&str] = &[
    "echo",
    "up",
    "/usr/local/bin/lb-add web",
    ";",
    " ; the web group",
    " # not a comment",
    "#",
    "\"double quoted\"",
    "'single'",
    "\\",
    "\\n",
    "a\\\\b",
    "%",
    "%%",
    "100%",
    "%s",
    "%(base)s",
    "%(x)s",
    "%(BASE)s",
    "%(missing)s",
    "%()s",
    "%(x",
    "%(port)d",
    "%(ΣΑ)s",
    "%(a b)s",
    "é",
    "日本",
    "\u{a0}",
    "\u{3000}",
    "\u{1c}",
    "\u{85}",
    "\u{2028}",
    "\t",
    "  ",
    ":",
    "=",
    "[x]",
    "$HOME",
    "&&",
    "|",
    "$(date +%F)",
];

const INDENTS: &[&str] = &[
    " ", "  ", "    ", "\t", " \t", "\u{3000}", "\u{a0}", "\u{1f}",
];

/// One generated file, its lines joined by generated line ends.
fn file(rng: &mut Rng) -> String {
    let mut lines: Vec<String> = Vec::new();
    if rng.one_in(4) {
        lines.push(rng.pick(&["# heartbeat", "; c", "", "  "]).to_owned());
    }
    let sections = 1 + rng.below(5);
    for _ in 0..sections {
        lines.push(header(rng));
        let keys = rng.below(6);
        for _ in 0..keys {
            key_line(rng, &mut lines);
        }
    }
    if rng.one_in(30) {
        // A key before any header.
        lines.insert(0, "orphan = 1".to_owned());
    }
    if rng.one_in(25) {
        let at = rng.below(lines.len() + 1);
        lines.insert(at, "not a key or a header".to_owned());
    }
    let mut text = String::new();
    let eol_style = rng.below(10);
    for line in &lines {
        text.push_str(line);
        text.push_str(match eol_style {
            0..=5 => "\n",
            6 | 7 => "\r\n",
            8 => "\r",
            _ => rng.pick(&["\n", "\r\n", "\r"]),
        });
    }
    if rng.one_in(3) {
        // No line end after the last line.
        while text.ends_with(['\n', '\r']) {
            text.pop();
        }
    }
    if rng.one_in(40) {
        text.insert(0, '\u{feff}');
    }
    if rng.one_in(40) {
        let at = text
            .char_indices()
            .nth(rng.below(text.chars().count().max(1)));
        text.insert(at.map_or(0, |(i, _)| i), '\0');
    }
    text
}

fn header(rng: &mut Rng) -> String {
    let name = rng.pick(SECTIONS);
    match rng.below(12) {
        0 => format!("[{name}] # comment"),
        1 => format!("[{name}] ; comment"),
        2 => format!("{}[{name}]", rng.pick(INDENTS)),
        3 => format!("[{name}]{}", rng.pick(INDENTS)),
        4 => "[]".to_owned(),
        _ => format!("[{name}]"),
    }
}

fn key_line(rng: &mut Rng, lines: &mut Vec<String>) {
    let indent = if rng.one_in(6) { rng.pick(INDENTS) } else { "" };
    let key = rng.pick(KEYS);
    let sep = match rng.below(8) {
        0 => ":".to_owned(),
        1 => " : ".to_owned(),
        2 => "\t=\t".to_owned(),
        3 => "=".to_owned(),
        4 => format!("{}={}", rng.pick(INDENTS), rng.pick(INDENTS)),
        _ => " = ".to_owned(),
    };
    lines.push(format!("{indent}{key}{sep}{}", value(rng)));
    let mut continued = 0;
    while continued < 4 && rng.one_in(3) {
        continued += 1;
        match rng.below(6) {
            0 => lines.push(format!("{}# comment between", rng.pick(INDENTS))),
            1 => lines.push(rng.pick(&["; comment", "# c", "", " ", "\t"]).to_owned()),
            2 => {
                // An indented key: continues the value, or is a key of its
                // own when the first line is indented as deep.
                let key = rng.pick(KEYS);
                lines.push(format!(
                    "{indent}{}{key} = {}",
                    rng.pick(INDENTS),
                    value(rng)
                ));
            }
            _ => lines.push(format!("{indent}{}{}", rng.pick(INDENTS), value(rng))),
        }
    }
}

fn value(rng: &mut Rng) -> String {
    let mut out = String::new();
    for _ in 0..rng.below(5) {
        if !out.is_empty() && rng.one_in(2) {
            out.push(' ');
        }
        out.push_str(rng.pick(PIECES));
    }
    out
}

/// Runs Python's reader over `texts`, one JSON answer each.
fn python_readings(dir: &Path, texts: &[String]) -> Vec<Reading> {
    let paths: Vec<_> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let path = dir.join(format!("{i}.conf"));
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    let out = Command::new("python3")
        .arg("-c")
        .arg(PYTHON)
        .args(&paths)
        .output()
        .expect("python3 runs (Python 3 is on every CI machine)");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let readings: Vec<_> = stdout
        .lines()
        .map(|l| python_reading(&serde_json::from_str(l).unwrap()))
        .collect();
    assert_eq!(readings.len(), texts.len(), "one answer per file");
    readings
}

#[test]
fn generated_files_read_as_python_3_reads_them() {
    let mut rng = Rng(SEED);
    let texts: Vec<String> = (0..FILES).map(|_| file(&mut rng)).collect();
    let dir = tempfile::tempdir().unwrap();
    let python = python_readings(dir.path(), &texts);
    let mut report = String::new();
    let mut mismatches = 0;
    let mut refused = 0;
    for (i, (text, py)) in texts.iter().zip(&python).enumerate() {
        if matches!(py, Reading::Error(_)) {
            refused += 1;
        }
        if let Err(why) = compare(text, py, &heartbeat_reading(text)) {
            mismatches += 1;
            if mismatches <= 10 {
                let _ = writeln!(report, "file {i}: {why}\n  text: {text:?}");
            }
        }
    }
    eprintln!(
        "{FILES} files, {refused} refused by Python, {mismatches} read differently by heartbeat"
    );
    assert_eq!(
        mismatches, 0,
        "{mismatches} of {FILES} files read differently:\n{report}"
    );
    // The batch exercises both outcomes.
    assert!(refused > FILES / 20 && refused < FILES / 2, "{refused}");
}

// The whole pipeline, on files shaped like heartbeat configurations: the
// commands that reach /bin/sh are what Python reads.
#[test]
fn commands_reach_the_shell_as_python_3_reads_them() {
    let mut rng = Rng(SEED ^ 1);
    let texts: Vec<String> = (0..FILES / 2).map(|_| heartbeat_file(&mut rng)).collect();
    let dir = tempfile::tempdir().unwrap();
    let python = python_readings(dir.path(), &texts);
    let mut accepted = 0;
    let mut report = String::new();
    let mut mismatches = 0;
    for (i, (text, py)) in texts.iter().zip(&python).enumerate() {
        let Ok(loaded) = parse(text, Path::new("gen.conf"), Path::new("/")) else {
            continue;
        };
        accepted += 1;
        let Reading::Read {
            sections,
            interpolated,
            ..
        } = py
        else {
            mismatches += 1;
            let _ = writeln!(report, "file {i}: accepted, Python refuses\n  {text:?}");
            continue;
        };
        let python_value = |section: &str, key: &str| -> Option<String> {
            let id = (section.to_owned(), key.to_owned());
            if let Some(v) = interpolated.get(&id) {
                return v.clone();
            }
            let own = |name: &str| {
                sections
                    .iter()
                    .find(|(s, _)| s == name)
                    .and_then(|(_, keys)| keys.iter().find(|(k, _)| k == key))
                    .map(|(_, v)| v.clone())
            };
            own(section).or_else(|| own("DEFAULT"))
        };
        let config = loaded.config;
        let mut seen = Vec::new();
        for g in &config.groups {
            seen.push((g.promotion.clone(), python_value("promotions", &g.name)));
            seen.push((g.demotion.clone(), python_value("demotions", &g.name)));
        }
        for c in &config.checks {
            if let heartbeat::model::Probe::Script { command } = &c.probe {
                seen.push((command.clone(), python_value(&c.name, "command")));
            }
        }
        if let Some((ours, theirs)) = seen.iter().find(|(o, p)| Some(o) != p.as_ref()) {
            mismatches += 1;
            let _ = writeln!(
                report,
                "file {i}: command {ours:?}, Python {theirs:?}\n  {text:?}"
            );
        }
    }
    eprintln!(
        "{} configurations, {accepted} accepted, {mismatches} differ",
        texts.len()
    );
    assert_eq!(mismatches, 0, "{report}");
    assert!(accepted > texts.len() / 4, "{accepted}");
}

/// A configuration heartbeat can accept: two groups, script checks, with
/// the noise of [`file`] in the commands.
fn heartbeat_file(rng: &mut Rng) -> String {
    let mut lines = Vec::new();
    for section in ["promotions", "demotions"] {
        lines.push(format!("[{section}]"));
        for group in ["web", "db"] {
            lines.push(format!(
                "{group}{}{}",
                rng.pick(&[" = ", ":", "\t=\t"]),
                command(rng)
            ));
            while rng.one_in(3) {
                match rng.below(3) {
                    0 => lines.push(rng.pick(&["# between", "; between", "", " "]).to_owned()),
                    _ => lines.push(format!("{}{}", rng.pick(INDENTS), command(rng))),
                }
            }
        }
    }
    for (name, group) in [("web-check", "web"), ("db check", "db")] {
        lines.push(format!("[{name}]"));
        lines.push("type = script".to_owned());
        lines.push(format!("action = {group}"));
        lines.push(format!("command = {}", command(rng)));
        if rng.one_in(3) {
            lines.push(format!("{}{}", rng.pick(INDENTS), command(rng)));
        }
    }
    if lines.iter().any(|l| l.to_lowercase().contains("%(base)s")) {
        lines.splice(
            0..0,
            ["[DEFAULT]".to_owned(), "Base = /usr/local/bin".to_owned()],
        );
    }
    let eol = rng.pick(&["\n", "\r\n", "\r"]);
    let mut text = lines.join(eol);
    text.push_str(eol);
    text
}

/// A shell command that either uses `%(base)s` (and then writes `%%` for
/// `%`) or has `%` signs of its own and no reference.
fn command(rng: &mut Rng) -> String {
    let percent: &[&str] = if rng.one_in(2) {
        &["%(base)s", "%(BASE)s", "%%", "100%%"]
    } else {
        &["%", "100%", "%s", "$(date +%F)", "%%"]
    };
    let mut out = String::new();
    for _ in 0..1 + rng.below(4) {
        if !out.is_empty() && rng.one_in(2) {
            out.push(' ');
        }
        let piece = rng.pick(PIECES);
        out.push_str(if piece.contains('%') {
            rng.pick(percent)
        } else {
            piece
        });
    }
    if text_is_blank(&out) {
        out.push_str("true");
    }
    out
}

fn text_is_blank(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}
