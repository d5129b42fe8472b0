//! Scalar values of the configuration dialect: booleans, durations, ports,
//! counts, HTTP status sets, log levels.
//!
//! Each parser returns the typed value or a message saying what was
//! expected; the caller adds the file, section, key and line.

use std::time::Duration;

use crate::model::StatusSet;

/// A boolean as Python's ConfigParser reads it (`getboolean`): `1 yes true
/// on` or `0 no false off`, any case.
pub fn boolean(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        _ => Err(format!(
            "{text:?} is not a boolean; expected yes/no, true/false, on/off or 1/0"
        )),
    }
}

/// A duration: a plain number is seconds (`5`, `0.5`); a number with units
/// is read by `humantime` (`250ms`, `5s`, `1m30s`, `1h`). Must be above
/// zero and at most a day.
pub fn duration(text: &str) -> Result<Duration, String> {
    let expected = "expected seconds (5, 0.5) or a duration with units (250ms, 5s, 1m30s)";
    let parsed = if let Ok(secs) = text.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return Err(format!("{text:?} is not a duration; {expected}"));
        }
        Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?} is too long"))?
    } else {
        humantime::parse_duration(text)
            .map_err(|_| format!("{text:?} is not a duration; {expected}"))?
    };
    if parsed.is_zero() {
        return Err(format!("{text:?} is zero; expected a duration above zero"));
    }
    if parsed > Duration::from_secs(86_400) {
        return Err(format!(
            "{text:?} is longer than a day; expected at most 24h"
        ));
    }
    Ok(parsed)
}

/// A TCP port, 1–65535.
pub fn port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!(
            "{text:?} is not a port; expected a number from 1 to 65535"
        )),
    }
}

/// A whole number from `min` to `max`.
pub fn count(text: &str, min: u32, max: u32) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} is not valid here; expected a whole number from {min} to {max}"
        )),
    }
}

/// An HTTP status code, 100–599.
pub fn status_code(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(code) if (100..=599).contains(&code) => Ok(code),
        _ => Err(format!(
            "{text:?} is not an HTTP status; expected a number from 100 to 599"
        )),
    }
}

/// A set of HTTP statuses: codes and ranges separated by commas,
/// `200-299, 301`.
pub fn status_set(text: &str) -> Result<StatusSet, String> {
    let mut ranges = Vec::new();
    for part in text.split(',').map(str::trim) {
        let bad =
            || format!("{part:?} in {text:?} is not a status or range; expected e.g. 200-299, 301");
        let (low, high) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let low = status_code(low).map_err(|_| bad())?;
        let high = status_code(high).map_err(|_| bad())?;
        if low > high {
            return Err(bad());
        }
        ranges.push(low..=high);
    }
    Ok(StatusSet(ranges))
}

/// A log level as Python's `logging` names it: DEBUG, INFO, WARNING (or
/// WARN), ERROR, CRITICAL, any case, or its number (10–50). CRITICAL maps
/// to ERROR, the most severe level of the `log` crate.
pub fn log_level(text: &str) -> Result<log::LevelFilter, String> {
    use log::LevelFilter::*;
    match text.to_ascii_uppercase().as_str() {
        "DEBUG" | "10" => Ok(Debug),
        "INFO" | "20" => Ok(Info),
        "WARNING" | "WARN" | "30" => Ok(Warn),
        "ERROR" | "40" | "CRITICAL" | "FATAL" | "50" => Ok(Error),
        _ => Err(format!(
            "{text:?} is not a log level; expected DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )),
    }
}

/// `None` (any case) or an empty value: the Python tool's way of saying
/// "not set".
pub fn is_none(text: &str) -> bool {
    text.is_empty() || text.eq_ignore_ascii_case("none")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_seconds_or_with_units() {
        assert_eq!(duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(duration("0").unwrap_err().contains("above zero"));
        assert!(duration("-1").unwrap_err().contains("not a duration"));
        assert!(duration("5x").unwrap_err().contains("250ms"));
        assert!(duration("nan").is_err());
    }

    #[test]
    fn booleans_as_configparser_reads_them() {
        for t in ["1", "yes", "TRUE", "On"] {
            assert_eq!(boolean(t), Ok(true), "{t}");
        }
        for t in ["0", "No", "false", "OFF"] {
            assert_eq!(boolean(t), Ok(false), "{t}");
        }
        assert!(boolean("y").is_err());
    }

    #[test]
    fn status_sets() {
        let set = status_set("200-299, 301").unwrap();
        assert!(set.contains(204) && set.contains(301) && !set.contains(302));
        assert_eq!(set.to_string(), "200-299, 301");
        assert!(status_set("299-200").is_err());
        assert!(status_set("abc").is_err());
        assert!(status_set("200,").is_err());
    }

    #[test]
    fn levels_ports_counts() {
        assert_eq!(log_level("warn"), Ok(log::LevelFilter::Warn));
        assert_eq!(log_level("Critical"), Ok(log::LevelFilter::Error));
        assert!(log_level("loud").is_err());
        assert_eq!(port("443"), Ok(443));
        assert!(port("0").is_err() && port("65536").is_err());
        assert!(count("0", 1, 10).is_err());
    }
}
