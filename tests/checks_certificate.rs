//! Certificate expiry (`tls_min_validity`) against real TLS servers whose
//! certificates the test generates to expire in a few days: an HTTPS
//! server and a TLS line server, read through the library as the daemon
//! builds its checks, then through the real binary with its `/metrics` and
//! `/status`.
//!
//! Expected dates and days are computed here from the certificate's
//! `notAfter`, which the test chooses, not from heartbeat's code.

use crate::support::bin::{Scratch, wait_for};
use crate::support::daemon::{start, with_hooks};
use crate::support::metrics::{gauge, sample, scrape_openmetrics, scrape_text};
use crate::support::{http, net};

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{Datelike, NaiveDate, Utc};
use heartbeat::checks::{self, CheckResult};
use net::Server;

const FIVE: Duration = Duration::from_secs(5);

/// A certificate day: 00:00 UTC of the date `days` from today, which is
/// between `days - 1` and `days` whole days from now.
struct Expiry {
    date: NaiveDate,
}

impl Expiry {
    fn days_from_today(days: u64) -> Expiry {
        Expiry {
            date: Utc::now().date_naive() + chrono::Days::new(days),
        }
    }

    fn ymd(&self) -> (i32, u8, u8) {
        let month = u8::try_from(self.date.month()).unwrap();
        let day = u8::try_from(self.date.day()).unwrap();
        (self.date.year(), month, day)
    }

    fn unix(&self) -> u64 {
        let midnight = self.date.and_hms_opt(0, 0, 0).unwrap().and_utc();
        u64::try_from(midnight.timestamp()).unwrap()
    }

    fn system_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.unix())
    }
}

/// Builds the check of section `[probe]` with `keys` and runs it once.
fn run(keys: &str) -> CheckResult {
    let text =
        format!("[promotions]\ng = true\n[demotions]\ng = true\n[probe]\naction = g\n{keys}\n");
    let dir = std::env::temp_dir();
    let loaded = heartbeat::config::parse(&text, &dir.join("test.conf"), &dir)
        .unwrap_or_else(|e| panic!("{e}"));
    let built = checks::build(&loaded.config.checks).expect("check builds");
    let start = Instant::now();
    let result = built[0].run();
    assert!(start.elapsed() < FIVE + FIVE, "{result:?}");
    result
}

/// A TLS line server that answers `+PONG` to whatever line comes.
fn tls_pong_server(identity: native_tls::Identity) -> Server {
    let acceptor = Arc::new(native_tls::TlsAcceptor::new(identity).expect("TLS acceptor"));
    Server::start("127.0.0.1:0", move |stream| {
        let Ok(mut tls) = acceptor.accept(stream) else {
            return;
        };
        let mut byte = [0u8; 1];
        while matches!(tls.read(&mut byte), Ok(1)) {
            if byte[0] == b'\n' && tls.write_all(b"+PONG\r\n").is_err() {
                break;
            }
        }
        let _ = tls.shutdown();
    })
}

#[test]
fn an_https_certificate_expiring_in_five_days_fails_14d_and_passes_2d() {
    let expiry = Expiry::days_from_today(6);
    let cert = net::self_signed_until(&["localhost"], Some(expiry.ymd()));
    let s = Scratch::new();
    let ca = s.write("ca.pem", &cert.cert_pem);
    let server = net::https_server("127.0.0.1:0", cert.identity, |_| net::ok("ok\n"));
    let keys = |min: &str| {
        format!(
            "url = https://localhost:{}/\nca_file = {}\ntls_min_validity = {min}",
            server.port(),
            ca.display()
        )
    };
    let soon = run(&keys("14d"));
    let reason = format!("certificate expires in 5 days ({})", expiry.date);
    assert!(
        !soon.healthy && soon.reason == reason,
        "{soon:?}, want {reason:?}"
    );
    assert_eq!(soon.certificate_expiry, Some(expiry.system_time()));
    let fine = run(&keys("2d"));
    assert!(fine.healthy && fine.reason == "HTTP 200", "{fine:?}");
    assert_eq!(fine.certificate_expiry, Some(expiry.system_time()));
    // The same margin in another unit.
    assert!(!run(&keys("2w")).healthy);
}

#[test]
fn a_tls_tcp_certificate_expiring_in_five_days_fails_14d_and_passes_2d() {
    let expiry = Expiry::days_from_today(6);
    let cert = net::self_signed_until(&["localhost"], Some(expiry.ymd()));
    let s = Scratch::new();
    let ca = s.write("ca.pem", &cert.cert_pem);
    let server = tls_pong_server(cert.identity);
    let keys = |min: &str| {
        format!(
            "url = tcp://localhost:{}\ntls = yes\nca_file = {}\nsend = PING\\r\\n\n\
             expect = +PONG\ntls_min_validity = {min}",
            server.port(),
            ca.display()
        )
    };
    let soon = run(&keys("14d"));
    let reason = format!("certificate expires in 5 days ({})", expiry.date);
    assert!(
        !soon.healthy && soon.reason == reason,
        "{soon:?}, want {reason:?}"
    );
    let fine = run(&keys("2d"));
    assert!(
        fine.healthy && fine.reason == r#"reply contains "+PONG""#,
        "{fine:?}"
    );
    assert_eq!(fine.certificate_expiry, Some(expiry.system_time()));
}

#[test]
fn an_expired_certificate_accepted_unverified_still_fails_the_margin() {
    // Expired yesterday: only tls_verify = no gets past the handshake.
    let yesterday = Utc::now().date_naive() - chrono::Days::new(1);
    let ymd = (
        yesterday.year(),
        u8::try_from(yesterday.month()).unwrap(),
        u8::try_from(yesterday.day()).unwrap(),
    );
    let cert = net::self_signed_until(&["localhost"], Some(ymd));
    let server = net::https_server("127.0.0.1:0", cert.identity, |_| net::ok("ok\n"));
    let keys = format!(
        "url = https://localhost:{}/\ntls_verify = no\ntls_min_validity = 1d",
        server.port()
    );
    let result = run(&keys);
    assert!(!result.healthy, "{result:?}");
    assert!(
        result.reason.starts_with("certificate expired ")
            && result.reason.ends_with(&format!(" ago ({yesterday})")),
        "{result:?}"
    );
}

#[test]
fn the_expiry_is_exported_in_metrics_and_status() {
    let expiry = Expiry::days_from_today(6);
    let cert = net::self_signed_until(&["localhost"], Some(expiry.ymd()));
    let s = Scratch::new();
    let ca = s.write("ca.pem", &cert.cert_pem);
    let server = net::https_server("127.0.0.1:0", cert.identity, |_| net::ok("ok\n"));
    let checks = format!(
        "[api]\nurl = https://localhost:{}/\nca_file = {}\ntls_min_validity = 14d\naction = web\n\
         [plain]\ntype = script\ncommand = true\naction = web\n",
        server.port(),
        ca.display()
    );
    let conf = format!(
        "interval = 300ms\n{}",
        with_hooks(&[("web", "true", "true")], &checks)
    );
    let (hb, addr) = start(&s, &conf);
    let family = "heartbeat_check_certificate_expiry_timestamp_seconds";
    wait_for(
        "the certificate expiry metric",
        Duration::from_secs(30),
        || sample(&scrape_openmetrics(addr).1, family, &[("check", "api")]).is_some(),
    );
    let (_, metrics) = scrape_openmetrics(addr);
    assert_eq!(
        gauge(&metrics, family, &[("check", "api")]),
        expiry.unix() as f64
    );
    assert!(
        sample(&metrics, family, &[("check", "plain")]).is_none(),
        "a script check has no certificate"
    );
    // The text format passes promtool with the new family in it.
    scrape_text(addr);
    let (_, status) = http::get_json(addr, "/status");
    let api = status["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "api")
        .unwrap()
        .clone();
    let last = &api["last_result"];
    assert_eq!(
        last["reason"],
        format!("certificate expires in 5 days ({})", expiry.date),
        "{api}"
    );
    let stamp = last["certificate_expires"]
        .as_str()
        .expect("certificate_expires");
    assert_eq!(
        humantime::parse_rfc3339(stamp).unwrap(),
        expiry.system_time(),
        "{api}"
    );
    drop(hb);
}

#[test]
fn a_margin_without_a_unit_is_refused() {
    let s = Scratch::new();
    let conf = s.write(
        "test.conf",
        "[promotions]\ng = true\n[demotions]\ng = true\n\
         [api]\naction = g\nurl = https://localhost/\ntls_min_validity = 14\n",
    );
    let out = s.run(&["-t", "-c", conf.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains(
            r#"test.conf:8: [api] tls_min_validity: "14" has no unit; expected a duration with its unit, such as 14d, 2w or 36h"#
        ),
        "{stderr}"
    );
}
