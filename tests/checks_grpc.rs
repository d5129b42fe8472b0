//! gRPC health checks against a real gRPC server (tonic with tonic-health's
//! standard health service, in `support::grpc`) whose answers the test
//! flips while heartbeat asks: every reason through the library, then the
//! real binary demoting and promoting as the service goes NOT_SERVING and
//! back, grpcs with a generated certificate, and the sidecar's `--check
//! grpc://`.

use crate::support::bin::{Scratch, lines, wait_for};
use crate::support::checks::{assert_fail, assert_pass, run_section as run};
use crate::support::grpc::{GrpcServer, Offer};
use crate::support::net;

use std::time::Duration;

use chrono::{Datelike, Utc};

use tonic_health::ServingStatus;

const FIVE: Duration = Duration::from_secs(5);
const LONG: Duration = Duration::from_secs(30);

#[test]
fn the_answer_of_the_health_service_decides() {
    let server = GrpcServer::start(Offer::Health, None);
    let whole = format!(
        "type = grpc\nhostname = 127.0.0.1\nport = {}",
        server.port()
    );
    assert_pass(&run(&whole, FIVE), "SERVING");
    server.set("", ServingStatus::NotServing);
    assert_fail(&run(&whole, FIVE), "NOT_SERVING");
    server.set("", ServingStatus::Serving);
    assert_pass(&run(&whole, FIVE), "SERVING");

    let cart = format!("url = grpc://127.0.0.1:{}/shop.Cart", server.port());
    assert_fail(
        &run(&cart, FIVE),
        r#"SERVICE_UNKNOWN: the server does not know "shop.Cart""#,
    );
    server.set("shop.Cart", ServingStatus::Serving);
    assert_pass(&run(&cart, FIVE), "SERVING");
    server.set("shop.Cart", ServingStatus::NotServing);
    assert_fail(&run(&cart, FIVE), "NOT_SERVING");
    // The `service` key says the same as the URL's path.
    let keyed = format!(
        "type = grpc\nhostname = 127.0.0.1\nport = {}\nservice = shop.Cart",
        server.port()
    );
    assert_fail(&run(&keyed, FIVE), "NOT_SERVING");
}

#[test]
fn a_server_without_a_health_service_is_unimplemented() {
    let server = GrpcServer::start(Offer::Nothing, None);
    let keys = format!("url = grpc://127.0.0.1:{}", server.port());
    assert_fail(
        &run(&keys, FIVE),
        "UNIMPLEMENTED: the server has no health service",
    );
}

#[test]
fn transport_failures_give_their_reasons_in_time() {
    let refused = format!("url = grpc://127.0.0.1:{}", net::closed_port());
    assert_fail(&run(&refused, FIVE), "connection refused");
    // Accepts and never answers: the HTTP/2 preface gets no reply.
    let silent = net::silent_server("127.0.0.1:0");
    let keys = format!("url = grpc://127.0.0.1:{}", silent.port());
    assert_fail(&run(&keys, Duration::from_secs(1)), "timed out after 1s");
}

#[test]
fn grpcs_is_verified_with_ca_file_and_authority() {
    let cert = net::self_signed(&["grpc.test", "localhost"]);
    let s = Scratch::new();
    let ca = s.write("ca.pem", &cert.cert_pem);
    let server = GrpcServer::start(Offer::Health, Some(cert.identity));
    let port = server.port();
    let verified = format!("url = grpcs://localhost:{port}\nca_file = {}", ca.display());
    assert_pass(&run(&verified, FIVE), "SERVING");
    let untrusted = format!("url = grpcs://localhost:{port}");
    assert_fail(
        &run(&untrusted, FIVE),
        "certificate not trusted (self-signed certificate)",
    );
    // By address, the certificate's name must come from `authority`.
    let by_address = format!("url = grpcs://127.0.0.1:{port}\nca_file = {}", ca.display());
    assert_fail(&run(&by_address, FIVE), "certificate name mismatch");
    let with_authority = format!("{by_address}\nauthority = grpc.test:{port}");
    assert_pass(&run(&with_authority, FIVE), "SERVING");
    let unverified = format!("url = grpcs://127.0.0.1:{port}\ntls_verify = no");
    assert_pass(&run(&unverified, FIVE), "SERVING");
    // The same in keys rather than a URL.
    let keyed = format!(
        "type = grpc\nhostname = localhost\nport = {port}\ntls = yes\nca_file = {}",
        ca.display()
    );
    assert_pass(&run(&keyed, FIVE), "SERVING");
    // A plain client of a TLS server fails, and does not hang.
    let plain = format!("url = grpc://127.0.0.1:{port}");
    assert!(!run(&plain, Duration::from_secs(2)).healthy);
}

#[test]
fn grpcs_certificates_expiring_soon_fail_tls_min_validity() {
    let date = Utc::now().date_naive() + chrono::Days::new(6);
    let ymd = (
        date.year(),
        u8::try_from(date.month()).unwrap(),
        u8::try_from(date.day()).unwrap(),
    );
    let cert = net::self_signed_until(&["localhost"], Some(ymd));
    let s = Scratch::new();
    let ca = s.write("ca.pem", &cert.cert_pem);
    let server = GrpcServer::start(Offer::Health, Some(cert.identity));
    let keys = |min: &str| {
        format!(
            "url = grpcs://localhost:{}\nca_file = {}\ntls_min_validity = {min}",
            server.port(),
            ca.display()
        )
    };
    assert_fail(
        &run(&keys("14d"), FIVE),
        &format!("certificate expires in 5 days ({date})"),
    );
    assert_pass(&run(&keys("2d"), FIVE), "SERVING");
}

/// A configuration whose group `api` is fed by `check` and whose hooks
/// append `up` or `down` to `log`.
fn hooked(log: &std::path::Path, check: &str) -> String {
    let log = log.display();
    format!(
        "[general]\ninterval = 300ms\n\
         [promotions]\napi = echo up >> {log}\n\
         [demotions]\napi = echo down >> {log}\n\
         [api]\naction = api\ntimeout = 2\n{check}\n"
    )
}

#[test]
fn flipping_the_service_demotes_and_promotes_through_the_binary() {
    let server = GrpcServer::start(Offer::Health, None);
    server.set("shop.Cart", ServingStatus::Serving);
    let s = Scratch::new();
    let log = s.path("actions.log");
    let conf = s.write(
        "hb.conf",
        &hooked(
            &log,
            &format!("url = grpc://127.0.0.1:{}/shop.Cart", server.port()),
        ),
    );
    let hb = s.spawn(&["-c", conf.to_str().unwrap()]);
    wait_for("the promotion", LONG, || lines(&log) == ["up"]);
    server.set("shop.Cart", ServingStatus::NotServing);
    wait_for("the demotion", LONG, || lines(&log) == ["up", "down"]);
    hb.wait_log("NOT_SERVING", LONG);
    server.set("shop.Cart", ServingStatus::Serving);
    wait_for("the promotion after it", LONG, || {
        lines(&log) == ["up", "down", "up"]
    });
    let text = hb.log_text();
    assert!(
        text.contains("grpc://127.0.0.1:") && text.contains("is unhealthy"),
        "{text}"
    );
    hb.stop();
    assert_eq!(lines(&log), ["up", "down", "up"]);
}

#[test]
fn the_sidecar_checks_grpc_urls() {
    let cert = net::self_signed(&["localhost"]);
    let s = Scratch::new();
    let ca = s.write("ca.pem", &cert.cert_pem);
    let plain = GrpcServer::start(Offer::Health, None);
    let tls = GrpcServer::start(Offer::Health, Some(cert.identity));
    let url = format!("grpc://127.0.0.1:{}", plain.port());
    let secure = format!("grpcs://localhost:{}", tls.port());
    let ca = ca.to_str().unwrap();
    let once = |args: &[&str]| {
        let out = s.run(args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = once(&[
        "--check",
        &url,
        "--check",
        &secure,
        "--ca-file",
        ca,
        "--once",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    plain.set("", ServingStatus::NotServing);
    let (code, stderr) = once(&["--check", &url, "--once"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("NOT_SERVING"), "{stderr}");
    // grpcs without the CA: the certificate is not trusted.
    let (code, stderr) = once(&["--check", &secure, "--once"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("certificate not trusted"), "{stderr}");
    // -t names the check by its URL.
    let out = s.run(&["--check", &format!("{url}/shop.Cart"), "-t"]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains(&format!("{url}/shop.Cart")), "{summary}");
    assert!(summary.contains("grpc"), "{summary}");
}

/// `heartbeat -t` on a check section: exit status and stderr.
fn validate(keys: &str) -> (Option<i32>, String) {
    let s = Scratch::new();
    let conf = s.write(
        "test.conf",
        &format!("[promotions]\ng = true\n[demotions]\ng = true\n[probe]\naction = g\n{keys}\n"),
    );
    let out = s.run(&["-t", "-c", conf.to_str().unwrap()]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn grpc_keys_are_checked_like_the_others() {
    let (code, stderr) = validate("type = grpc\nhostname = 127.0.0.1");
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("a grpc check needs a port"), "{stderr}");
    let (code, stderr) = validate("url = grpc://127.0.0.1:50051/a\nservice = b");
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("test.conf:8: [probe] service: both url and service are set"),
        "{stderr}"
    );
    let (code, stderr) = validate("url = grpcs://127.0.0.1:50051\ntls = no");
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("[probe] tls: both url and tls are set"),
        "{stderr}"
    );
    let (code, stderr) = validate("url = grpc://127.0.0.1\n");
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("no port; expected grpc://HOST:PORT[/SERVICE]"),
        "{stderr}"
    );
    let (code, stderr) = validate("url = grpc://127.0.0.1:50051\nsend = PING");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("[probe] send: does not apply to a grpc check; ignored"),
        "{stderr}"
    );
    let (code, stderr) = validate("url = grpc://127.0.0.1:50051\nauthority = a b");
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("[probe] authority: \"a b\" is not an authority"),
        "{stderr}"
    );
}
