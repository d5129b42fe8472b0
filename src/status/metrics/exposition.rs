//! The exposition formats of `/metrics` and how a client chooses one.
//!
//! Prometheus and its tools read three formats, and say which they want in
//! the `Accept` header of a scrape:
//!
//! | [`Format`] | `Content-Type` | written by |
//! |---|---|---|
//! | [`Format::OpenMetrics`] | `application/openmetrics-text; version=1.0.0` | `prometheus-client`'s text encoder |
//! | [`Format::Text`] | `text/plain; version=0.0.4` | [`write_text`], from `prometheus-client`'s Prometheus data model |
//! | [`Format::Protobuf`] | `application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited` | `prometheus-client`'s protobuf encoder |
//!
//! [`Format::negotiate`] follows the Go client's `expfmt.Negotiate`: the
//! acceptable media ranges are tried by falling quality, the first one
//! heartbeat can write wins, and a client that names none of them (no
//! `Accept`, `*/*`, a browser) gets the text format 0.0.4, which every
//! Prometheus-compatible reader parses.
//!
//! The text format differs from OpenMetrics in more than its framing:
//! counter families are named with their `_total` suffix in `# HELP` and
//! `# TYPE`, info families are gauges named `…_info`, there is no
//! `# UNIT` and no `# EOF`, and `# HELP` escapes only backslash and line
//! feed. `prometheus-client` writes OpenMetrics text only, but it also
//! builds the Prometheus data model (`io.prometheus.client.MetricFamily`,
//! with those names) for its protobuf encoder; [`write_text`] writes that
//! model as text, as the Go client's `expfmt.MetricFamilyToText` does
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format>).

use std::fmt::Write as _;

use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model::{
    LabelPair, Metric, MetricFamily, MetricType,
};

/// A format `/metrics` can answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics text 1.0.0, ending with `# EOF`.
    OpenMetrics,
    /// The Prometheus text format 0.0.4.
    Text,
    /// Length-delimited `io.prometheus.client.MetricFamily` protobuf
    /// messages.
    Protobuf,
}

/// `Content-Type` of [`Format::OpenMetrics`].
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `Content-Type` of [`Format::Text`].
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `Content-Type` of [`Format::Protobuf`].
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

impl Format {
    /// The format to answer a request whose `Accept` header is `accept`
    /// (`None` when it has none).
    ///
    /// Media ranges are tried from the highest quality (`q`, 1 when not
    /// given) down, in header order among equals; ranges with `q=0` are
    /// not acceptable (RFC 9110 §12.5.1). The first that matches wins:
    /// - `application/openmetrics-text` without `version`, or with
    ///   version `1.0.0` or `0.0.1` → [`Format::OpenMetrics`];
    /// - `text/plain` without `version` or with `0.0.4` → [`Format::Text`];
    /// - `application/vnd.google.protobuf` with
    ///   `proto=io.prometheus.client.MetricFamily` and
    ///   `encoding=delimited` → [`Format::Protobuf`].
    ///
    /// Anything else, or no match at all, gives [`Format::Text`], as the
    /// Go client does.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let mut ranges: Vec<MediaRange<'_>> = accept
            .unwrap_or_default()
            .split(',')
            .filter_map(MediaRange::parse)
            .filter(|r| r.quality > 0.0)
            .collect();
        // A stable sort keeps header order among equal qualities.
        ranges.sort_by(|a, b| b.quality.total_cmp(&a.quality));
        ranges
            .iter()
            .find_map(MediaRange::format)
            .unwrap_or(Format::Text)
    }

    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Format::Text => TEXT_CONTENT_TYPE,
            Format::Protobuf => PROTOBUF_CONTENT_TYPE,
        }
    }
}

/// One element of an `Accept` header: `type/subtype;param=value;q=0.5`.
#[derive(Debug)]
struct MediaRange<'a> {
    /// `type/subtype`, as sent (compared without regard to case).
    media_type: &'a str,
    /// Parameters other than `q`, values without quotes.
    params: Vec<(&'a str, &'a str)>,
    quality: f32,
}

impl<'a> MediaRange<'a> {
    fn parse(text: &'a str) -> Option<MediaRange<'a>> {
        let mut parts = text.split(';');
        let media_type = parts.next()?.trim();
        if media_type.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        let mut quality = 1.0;
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim().trim_matches('"'));
            if name.eq_ignore_ascii_case("q") {
                // An unreadable quality makes the range unacceptable.
                quality = value.parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0);
            } else {
                params.push((name, value));
            }
        }
        Some(MediaRange {
            media_type,
            params,
            quality,
        })
    }

    fn param(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, v)| v)
    }

    /// The format this range asks for, if heartbeat writes it.
    fn format(&self) -> Option<Format> {
        let version = self.param("version");
        let is = |t: &str| self.media_type.eq_ignore_ascii_case(t);
        if is("application/openmetrics-text") && matches!(version, None | Some("1.0.0" | "0.0.1")) {
            Some(Format::OpenMetrics)
        } else if is("text/plain") && matches!(version, None | Some("0.0.4")) {
            Some(Format::Text)
        } else if is("application/vnd.google.protobuf")
            && self.param("proto") == Some("io.prometheus.client.MetricFamily")
            && self.param("encoding") == Some("delimited")
        {
            Some(Format::Protobuf)
        } else {
            None
        }
    }
}

/// Writes `families` in the Prometheus text format 0.0.4.
///
/// Each family gets `# HELP` (when it has help text) and `# TYPE`, then its
/// samples; a histogram's buckets are cumulative and end with `le="+Inf"`,
/// followed by `_sum` and `_count`. Counters, gauges, untyped metrics,
/// histograms and summaries are written; a gauge histogram, which the text
/// format cannot express, is left out and named in the returned error.
///
/// # Errors
/// The names of the families left out, if any; the rest is written.
pub fn write_text(families: &[MetricFamily], out: &mut String) -> Result<(), String> {
    let mut left_out = Vec::new();
    for family in families {
        let kind = match MetricType::try_from(family.r#type) {
            Ok(MetricType::Counter) => "counter",
            Ok(MetricType::Gauge) => "gauge",
            Ok(MetricType::Untyped) => "untyped",
            Ok(MetricType::Histogram) => "histogram",
            Ok(MetricType::Summary) => "summary",
            Ok(MetricType::GaugeHistogram) | Err(_) => {
                left_out.push(family.name.clone());
                continue;
            }
        };
        let name = &family.name;
        if !family.help.is_empty() {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help));
        }
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for metric in &family.metric {
            write_metric(name, metric, out);
        }
    }
    if left_out.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "not expressible in the text format 0.0.4: {}",
            left_out.join(", ")
        ))
    }
}

/// The samples of one metric (one label set) of family `name`.
fn write_metric(name: &str, metric: &Metric, out: &mut String) {
    let labels = &metric.label;
    // 0 is protobuf's "not set": no sample is stamped at the epoch.
    let stamp = (metric.timestamp_ms != 0).then_some(metric.timestamp_ms);
    if let Some(c) = &metric.counter {
        sample(out, name, labels, None, c.value, stamp);
    } else if let Some(g) = &metric.gauge {
        sample(out, name, labels, None, g.value, stamp);
    } else if let Some(u) = &metric.untyped {
        sample(out, name, labels, None, u.value, stamp);
    } else if let Some(h) = &metric.histogram {
        let bucket = format!("{name}_bucket");
        let mut saw_inf = false;
        for b in &h.bucket {
            saw_inf |= b.upper_bound == f64::INFINITY;
            let count = if b.cumulative_count_float > 0.0 {
                b.cumulative_count_float
            } else {
                b.cumulative_count as f64
            };
            let le = ("le", number(b.upper_bound));
            sample(out, &bucket, labels, Some(le), count, stamp);
        }
        let count = if h.sample_count_float > 0.0 {
            h.sample_count_float
        } else {
            h.sample_count as f64
        };
        if !saw_inf {
            let le = ("le", number(f64::INFINITY));
            sample(out, &bucket, labels, Some(le), count, stamp);
        }
        sample(
            out,
            &format!("{name}_sum"),
            labels,
            None,
            h.sample_sum,
            stamp,
        );
        sample(out, &format!("{name}_count"), labels, None, count, stamp);
    } else if let Some(s) = &metric.summary {
        for q in &s.quantile {
            let quantile = ("quantile", number(q.quantile));
            sample(out, name, labels, Some(quantile), q.value, stamp);
        }
        sample(
            out,
            &format!("{name}_sum"),
            labels,
            None,
            s.sample_sum,
            stamp,
        );
        let count = s.sample_count as f64;
        sample(out, &format!("{name}_count"), labels, None, count, stamp);
    }
}

/// One sample line: `name{labels,extra} value[ timestamp]`.
fn sample(
    out: &mut String,
    name: &str,
    labels: &[LabelPair],
    extra: Option<(&str, String)>,
    value: f64,
    timestamp_ms: Option<i64>,
) {
    out.push_str(name);
    let pairs = labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .chain(extra.as_ref().map(|(n, v)| (*n, v.as_str())));
    for (i, (label, value)) in pairs.enumerate() {
        out.push(if i == 0 { '{' } else { ',' });
        out.push_str(label);
        out.push_str("=\"");
        escape_label_value(value, out);
        out.push('"');
    }
    if !labels.is_empty() || extra.is_some() {
        out.push('}');
    }
    out.push(' ');
    write_number(value, out);
    if let Some(ms) = timestamp_ms {
        let _ = write!(out, " {ms}");
    }
    out.push('\n');
}

/// A sample value or bound as the text format writes it: `+Inf`, `-Inf`,
/// `NaN`, or the shortest decimal that reads back as the same number.
fn number(v: f64) -> String {
    let mut text = String::new();
    write_number(v, &mut text);
    text
}

/// [`number`], appended to `out`.
fn write_number(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        // Counts and other whole numbers, the most common values.
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// `# HELP` text: backslash and line feed escaped, nothing else.
fn escape_help(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
}

/// A label value appended to `out` with backslash, double quote and line
/// feed escaped.
fn escape_label_value(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str(r"\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model::{
        Bucket, Counter, Gauge, Histogram,
    };

    #[test]
    fn prometheus_and_its_tools_get_what_they_ask_for() {
        let table = [
            // Prometheus 2.x scrapes.
            (
                Some(
                    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                     version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                ),
                Format::OpenMetrics,
            ),
            // Prometheus with native histograms asks for protobuf first.
            (
                Some(
                    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
                     encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3",
                ),
                Format::Protobuf,
            ),
            (Some("text/plain;version=0.0.4"), Format::Text),
            (Some("text/plain; version=0.0.4; q=1"), Format::Text),
            (Some("text/plain"), Format::Text),
            (Some("*/*"), Format::Text),
            (None, Format::Text),
            (Some(""), Format::Text),
            (Some("text/html,application/xhtml+xml"), Format::Text),
            // Quality decides, not order.
            (
                Some("text/plain;version=0.0.4;q=0.2, application/openmetrics-text;q=0.9"),
                Format::OpenMetrics,
            ),
            // q=0 means "not this one".
            (
                Some("application/openmetrics-text;q=0, text/plain"),
                Format::Text,
            ),
            (
                Some("text/plain;q=0,application/openmetrics-text"),
                Format::OpenMetrics,
            ),
            // Versions heartbeat does not write are skipped.
            (
                Some("application/openmetrics-text;version=2.0.0,text/plain"),
                Format::Text,
            ),
            (
                Some("text/plain;version=1.0.0,application/openmetrics-text"),
                Format::OpenMetrics,
            ),
            // Protobuf in another encoding is not written.
            (
                Some(
                    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
                     encoding=text",
                ),
                Format::Text,
            ),
            // Case and quotes do not matter.
            (
                Some("Application/OpenMetrics-Text; Version=\"1.0.0\""),
                Format::OpenMetrics,
            ),
        ];
        for (accept, want) in table {
            assert_eq!(Format::negotiate(accept), want, "Accept: {accept:?}");
        }
    }

    fn label(name: &str, value: &str) -> LabelPair {
        LabelPair {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn text_is_written_as_the_go_client_writes_it() {
        let families = vec![
            MetricFamily {
                name: "jobs_total".into(),
                help: "Jobs run, by \"result\".\nSee \\docs.".into(),
                r#type: MetricType::Counter as i32,
                metric: vec![Metric {
                    label: vec![label("job", "a\"b\\c\nd")],
                    counter: Some(Counter {
                        value: 3.0,
                        ..Counter::default()
                    }),
                    ..Metric::default()
                }],
                ..MetricFamily::default()
            },
            MetricFamily {
                name: "temperature_celsius".into(),
                r#type: MetricType::Gauge as i32,
                metric: vec![Metric {
                    gauge: Some(Gauge { value: -0.5 }),
                    ..Metric::default()
                }],
                ..MetricFamily::default()
            },
            MetricFamily {
                name: "wait_seconds".into(),
                help: "Waits.".into(),
                r#type: MetricType::Histogram as i32,
                metric: vec![Metric {
                    label: vec![label("queue", "q")],
                    histogram: Some(Histogram {
                        sample_count: 3,
                        sample_sum: 0.75,
                        bucket: vec![
                            Bucket {
                                cumulative_count: 1,
                                upper_bound: 0.0001,
                                ..Bucket::default()
                            },
                            Bucket {
                                cumulative_count: 2,
                                upper_bound: 0.5,
                                ..Bucket::default()
                            },
                        ],
                        ..Histogram::default()
                    }),
                    ..Metric::default()
                }],
                ..MetricFamily::default()
            },
        ];
        let mut text = String::new();
        write_text(&families, &mut text).unwrap();
        assert_eq!(
            text,
            "# HELP jobs_total Jobs run, by \"result\".\\nSee \\\\docs.\n\
             # TYPE jobs_total counter\n\
             jobs_total{job=\"a\\\"b\\\\c\\nd\"} 3\n\
             # TYPE temperature_celsius gauge\n\
             temperature_celsius -0.5\n\
             # HELP wait_seconds Waits.\n\
             # TYPE wait_seconds histogram\n\
             wait_seconds_bucket{queue=\"q\",le=\"0.0001\"} 1\n\
             wait_seconds_bucket{queue=\"q\",le=\"0.5\"} 2\n\
             wait_seconds_bucket{queue=\"q\",le=\"+Inf\"} 3\n\
             wait_seconds_sum{queue=\"q\"} 0.75\n\
             wait_seconds_count{queue=\"q\"} 3\n"
        );
    }

    #[test]
    fn a_gauge_histogram_is_left_out_and_named() {
        let families = vec![MetricFamily {
            name: "queue_size".into(),
            r#type: MetricType::GaugeHistogram as i32,
            ..MetricFamily::default()
        }];
        let mut text = String::new();
        let err = write_text(&families, &mut text).unwrap_err();
        assert!(err.ends_with(": queue_size"), "{err}");
        assert_eq!(text, "");
    }

    #[test]
    fn special_values() {
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(1.0), "1");
        assert_eq!(number(0.00025), "0.00025");
        assert_eq!(number(1.5e9), "1500000000");
    }
}
