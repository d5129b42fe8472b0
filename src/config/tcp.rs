//! The keys of a TCP check beyond its address: `tls` (with `tls_verify`
//! and `ca_file`), `send`, and `expect` or `expect_regex`; and the escapes
//! `send` and `expect` take.

use std::time::Duration;

use super::ini::{Document, Section};
use super::{Reader, value};
use crate::model::{Expect, Pattern, TcpProbe, TlsOptions};

/// Most bytes `send` may hold once decoded (64 KiB): a health check says
/// little.
pub const SEND_CAP: usize = 64 * 1024;

/// Most bytes the compiled `expect_regex` may take (1 MiB), so that a
/// pattern such as `\w{1000}{1000}` is refused when the file is read
/// rather than exhausting memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The escapes `send` and `expect` take, for messages.
pub const ESCAPES: &str = r"\r, \n, \t, \\ and \xNN";

impl Reader<'_> {
    /// The TCP probe of `host:port` with the section's `tls`, `send` and
    /// `expect`/`expect_regex`; `None` once a mistake is reported.
    pub(super) fn tcp(
        &mut self,
        doc: &Document,
        section: &Section,
        host: String,
        port: u16,
    ) -> Option<TcpProbe> {
        let before = self.errors.len();
        let tls = self.tls_on(doc, section, None);
        let send = match self.check_key(doc, section, "send") {
            Some(found) => self.typed("send", &found, |v| {
                let bytes = unescape(v)?;
                if bytes.len() > SEND_CAP {
                    return Err(format!(
                        "{} bytes; expected at most {SEND_CAP}",
                        bytes.len()
                    ));
                }
                Ok(bytes)
            }),
            None => Some(Vec::new()),
        };
        let text = self.check_key(doc, section, "expect");
        let regex = self.check_key(doc, section, "expect_regex");
        let expect = match (text, regex) {
            (Some(_), Some(regex)) => {
                let message = "both expect and expect_regex are set; set one: a string the \
                               reply must contain, or a regular expression it must match";
                self.error(
                    &regex.section,
                    Some("expect_regex"),
                    regex.line,
                    message.into(),
                );
                None
            }
            (Some(text), None) => self
                .typed("expect", &text, |v| {
                    let bytes = unescape(v)?;
                    if bytes.is_empty() {
                        return Err("empty; expected the text the reply must contain".into());
                    }
                    Ok(bytes)
                })
                .map(|b| Some(Expect::Contains(b))),
            (None, Some(regex)) => self
                .typed("expect_regex", &regex, pattern)
                .map(|p| Some(Expect::Regex(p))),
            (None, None) => Some(None),
        };
        if self.errors.len() != before {
            return None;
        }
        Some(TcpProbe {
            host,
            port,
            tls: tls?,
            send: send?,
            expect: expect?,
        })
    }

    /// `tls` (or `forced`, when a URL scheme already said) and, when it is
    /// on, the TLS options; `Some(None)` without TLS. `tls_verify`,
    /// `ca_file` and `tls_min_validity` set in the section without TLS draw
    /// a warning: they would be ignored.
    pub(super) fn tls_on(
        &mut self,
        doc: &Document,
        section: &Section,
        forced: Option<bool>,
    ) -> Option<Option<TlsOptions>> {
        let on = match (forced, self.check_key(doc, section, "tls")) {
            (Some(on), _) => on,
            (None, Some(found)) => self.typed("tls", &found, value::boolean)?,
            (None, None) => false,
        };
        if !on {
            for key in ["tls_verify", "ca_file", "tls_min_validity"] {
                if let Some(entry) = section.get(key) {
                    let message = "applies only with tls = yes; ignored".to_owned();
                    self.warn(&section.name, Some(key), Some(entry.line), message);
                }
            }
            return Some(None);
        }
        let (verify, ca_file) = self.tls(doc, section)?;
        let min_validity = self.min_validity(doc, section)?;
        Some(Some(TlsOptions {
            verify,
            ca_file,
            min_validity,
        }))
    }

    /// `tls_min_validity` of a TLS check: `Some(None)` when unset.
    pub(super) fn min_validity(
        &mut self,
        doc: &Document,
        section: &Section,
    ) -> Option<Option<Duration>> {
        match self.check_key(doc, section, "tls_min_validity") {
            Some(found) if !value::is_none(&found.value) => {
                self.typed("tls_min_validity", &found, validity).map(Some)
            }
            _ => Some(None),
        }
    }
}

/// `send` and `expect` values: text with the escapes `\r`, `\n`, `\t`, `\\`
/// and `\xNN` (two hex digits, any byte) decoded; every other character
/// stands for its UTF-8 bytes.
///
/// # Errors
/// An unknown escape (`\q`), a `\x` without two hex digits, or a lone `\`
/// at the end, each with where it is and what the escapes are.
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let byte = match chars.next() {
            Some((_, 'r')) => b'\r',
            Some((_, 'n')) => b'\n',
            Some((_, 't')) => b'\t',
            Some((_, '\\')) => b'\\',
            Some((_, 'x')) => {
                let hex: String = chars.by_ref().take(2).map(|(_, c)| c).collect();
                match u8::from_str_radix(&hex, 16) {
                    Ok(b) if hex.len() == 2 && hex.chars().all(|c| c.is_ascii_hexdigit()) => b,
                    _ => {
                        return Err(format!(
                            "\\x at character {} needs two hex digits (\\x00 to \\xff); \
                             the escapes are {ESCAPES}",
                            at + 1
                        ));
                    }
                }
            }
            Some((_, other)) => {
                return Err(format!(
                    "unknown escape \\{other} at character {}; the escapes are {ESCAPES} \
                     (write \\\\ for a backslash)",
                    at + 1
                ));
            }
            None => {
                return Err(format!(
                    "ends with a lone backslash; the escapes are {ESCAPES} (write \\\\ for a \
                     backslash)"
                ));
            }
        };
        out.push(byte);
    }
    Ok(out)
}

/// Longest `tls_min_validity` accepted: ten years.
const MAX_VALIDITY: Duration = Duration::from_secs(3650 * 86_400);

/// `tls_min_validity`: a duration with its unit (`14d`, `2w`, `36h`), at
/// most ten years. A plain number is refused: seconds, as other durations
/// read it, would make `14` meaningless here, and days would make it read
/// unlike every other duration.
fn validity(text: &str) -> Result<Duration, String> {
    let expected = "expected a duration with its unit, such as 14d, 2w or 36h";
    if text.parse::<f64>().is_ok() {
        return Err(format!("{text:?} has no unit; {expected}"));
    }
    let parsed = humantime::parse_duration(text)
        .map_err(|_| format!("{text:?} is not a duration; {expected}"))?;
    if parsed.is_zero() {
        return Err(format!("{text:?} is zero; {expected}"));
    }
    if parsed > MAX_VALIDITY {
        return Err(format!("{text:?} is longer than ten years; {expected}"));
    }
    Ok(parsed)
}

/// `expect_regex`: a regular expression in the `regex` crate's syntax,
/// matched against the bytes of the reply.
fn pattern(text: &str) -> Result<Pattern, String> {
    if text.is_empty() {
        return Err("empty; expected a regular expression the reply must match".into());
    }
    regex::bytes::RegexBuilder::new(text)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(Pattern)
        .map_err(|e| {
            let detail = e.to_string();
            let last = detail.lines().last().unwrap_or_default().trim().to_owned();
            format!("{text:?} is not a regular expression: {last}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_to_bytes() {
        assert_eq!(unescape(r"PING\r\n").unwrap(), b"PING\r\n");
        assert_eq!(unescape(r"a\tb\\c").unwrap(), b"a\tb\\c");
        assert_eq!(unescape(r"\x00\xFF\x41").unwrap(), b"\x00\xffA");
        assert_eq!(unescape("é").unwrap(), "é".as_bytes());
        assert_eq!(unescape("").unwrap(), b"");
    }

    #[test]
    fn bad_escapes_say_where_and_what_is_expected() {
        let e = unescape(r"PING\q").unwrap_err();
        assert!(e.contains(r"unknown escape \q at character 5"), "{e}");
        assert!(e.contains(ESCAPES), "{e}");
        for bad in [r"\x", r"\x4", r"\xg0", r"\x4g"] {
            let e = unescape(bad).unwrap_err();
            assert!(e.contains("two hex digits"), "{bad}: {e}");
        }
        assert!(unescape("PING\\").unwrap_err().contains("lone backslash"));
    }

    #[test]
    fn validities_need_a_unit() {
        assert_eq!(validity("14d"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(validity("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(validity("36h"), Ok(Duration::from_secs(36 * 3600)));
        assert!(validity("14").unwrap_err().contains("has no unit"));
        assert!(validity("0d").unwrap_err().contains("zero"));
        assert!(validity("20y").unwrap_err().contains("ten years"));
        assert!(validity("soon").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn patterns_compile_or_say_why() {
        assert!(pattern(r"^\+PONG").is_ok());
        let e = pattern("(unclosed").unwrap_err();
        assert!(e.contains("is not a regular expression"), "{e}");
        assert!(pattern(r"\w{1000}{1000}").is_err());
        assert!(pattern("").is_err());
    }
}
