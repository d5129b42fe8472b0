//! Network checks against real peers on loopback: TCP listeners, HTTP and
//! HTTPS servers that answer, refuse, stall or trickle, and a DNS server
//! that never answers (in a private mount namespace, see
//! `hanging_dns_cannot_hold_a_check`).
//!
//! Time bounds are generous on purpose: they separate "gave up at the
//! deadline" from "waited for the peer", not milliseconds.

use crate::support::checks::{assert_fail, assert_pass, timed};
use crate::support::{child, net};

use std::io::BufRead;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use heartbeat::checks::{self, CheckResult};
use heartbeat::model::{CheckSpec, HttpProbe, Probe, StatusSet};
use net::{Reply, Server};

fn spec(name: &str, probe: Probe, timeout: Duration) -> CheckSpec {
    CheckSpec {
        name: name.to_owned(),
        probe,
        timeout,
        groups: vec!["g".to_owned()],
        rise: 1,
        fall: 1,
        interval: None,
        fast_interval: None,
    }
}

fn tcp(host: &str, port: u16) -> Probe {
    Probe::tcp(host, port)
}

fn http(host: &str, port: u16, path: &str) -> HttpProbe {
    HttpProbe {
        https: false,
        host: host.to_owned(),
        port,
        path: path.to_owned(),
        expect_status: StatusSet::default(),
        expect_body: None,
        tls_verify: true,
        ca_file: None,
        tls_min_validity: None,
    }
}

fn https(host: &str, port: u16) -> HttpProbe {
    HttpProbe {
        https: true,
        ..http(host, port, "/")
    }
}

/// Builds and runs one check, and checks it kept to its deadline.
fn run(probe: Probe, timeout: Duration) -> CheckResult {
    let built = checks::build(&[spec("probe", probe, timeout)]).expect("check builds");
    timed(timeout, || built[0].run())
}

fn run_http(probe: HttpProbe, timeout: Duration) -> CheckResult {
    run(Probe::Http(probe), timeout)
}

/// A server with the routes most tests need.
fn web(bind: &str) -> Server {
    net::http_server(bind, |path| match path {
        "/" | "/health" => net::ok("status: ok\n"),
        "/down" => net::status(503),
        "/empty" => net::status(204),
        "/old" => net::redirect(302, "/health"),
        "/moved" => net::redirect(301, "/health"),
        "/loop" => net::redirect(302, "/loop"),
        "/silent" => Reply::Silent,
        "/trickle" => Reply::Trickle {
            len: 1000,
            every: Duration::from_millis(100),
        },
        "/huge" => Reply::Huge {
            prefix: b"ok\n",
            len: 64 * 1024 * 1024,
        },
        _ => net::status(404),
    })
}

const SECOND: Duration = Duration::from_secs(1);
const FIVE: Duration = Duration::from_secs(5);

// ---- TCP ----

#[test]
fn tcp_connects_to_a_listener() {
    let server = net::silent_server("127.0.0.1:0");
    let result = run(tcp("127.0.0.1", server.port()), FIVE);
    assert_pass(&result, "connected");
    assert!(result.latency < SECOND, "{result:?}");
}

#[test]
fn tcp_reports_a_refused_connection_at_once() {
    let result = run(tcp("127.0.0.1", net::closed_port()), FIVE);
    assert_fail(&result, "connection refused");
    assert!(result.latency < SECOND, "{result:?}");
}

#[test]
fn tcp_connects_over_ipv6() {
    let server = net::silent_server("[::1]:0");
    assert_pass(&run(tcp("::1", server.port()), FIVE), "connected");
    assert_pass(&run(tcp("[::1]", server.port()), FIVE), "connected");
}

#[test]
fn tcp_resolves_names() {
    // "localhost" may give ::1 and 127.0.0.1: whichever comes first, the
    // listener on 127.0.0.1 must be found.
    let server = net::silent_server("127.0.0.1:0");
    assert_pass(&run(tcp("localhost", server.port()), FIVE), "connected");
}

// ---- HTTP ----

#[test]
fn http_passes_on_200() {
    let server = web("127.0.0.1:0");
    let result = run_http(http("127.0.0.1", server.port(), "/health"), FIVE);
    assert_pass(&result, "HTTP 200");
}

#[test]
fn http_fails_on_503() {
    let server = web("127.0.0.1:0");
    let result = run_http(http("127.0.0.1", server.port(), "/down"), FIVE);
    assert_fail(&result, "HTTP 503");
}

#[test]
fn http_expect_status_takes_ranges() {
    let server = web("127.0.0.1:0");
    let port = server.port();

    let mut p = http("127.0.0.1", port, "/empty");
    assert_fail(&run_http(p.clone(), FIVE), "HTTP 204");
    p.expect_status = StatusSet(vec![200..=299]);
    assert_pass(&run_http(p, FIVE), "HTTP 204");

    let mut p = http("127.0.0.1", port, "/down");
    p.expect_status = StatusSet(vec![200..=200, 500..=599]);
    assert_pass(&run_http(p, FIVE), "HTTP 503");

    let mut p = http("127.0.0.1", port, "/health");
    p.expect_status = StatusSet(vec![500..=599]);
    assert_fail(&run_http(p, FIVE), "HTTP 200");
}

#[test]
fn http_expect_body_must_appear() {
    let server = web("127.0.0.1:0");
    let mut p = http("127.0.0.1", server.port(), "/health");
    p.expect_body = Some("status: ok".to_owned());
    assert_pass(&run_http(p.clone(), FIVE), "HTTP 200");
    p.expect_body = Some("all good".to_owned());
    assert_fail(
        &run_http(p, FIVE),
        "HTTP 200 but body does not contain \"all good\"",
    );
}

#[test]
fn http_follows_redirects() {
    let server = web("127.0.0.1:0");
    let mut p = http("127.0.0.1", server.port(), "/old");
    p.expect_body = Some("ok".to_owned());
    assert_pass(&run_http(p, FIVE), "HTTP 200");
}

#[test]
fn http_gives_up_on_redirect_loops() {
    let server = web("127.0.0.1:0");
    let result = run_http(http("127.0.0.1", server.port(), "/loop"), FIVE);
    assert!(
        !result.healthy && result.reason.starts_with("too many redirects"),
        "{result:?}"
    );
}

#[test]
fn http_expecting_a_redirect_sees_it() {
    let server = web("127.0.0.1:0");
    let mut p = http("127.0.0.1", server.port(), "/moved");
    p.expect_status = StatusSet(vec![200..=299, 301..=301]);
    assert_pass(&run_http(p.clone(), FIVE), "HTTP 301");
    p.path = "/old".to_owned();
    assert_fail(&run_http(p, FIVE), "HTTP 302");
}

#[test]
fn http_reports_a_refused_connection() {
    let result = run_http(http("127.0.0.1", net::closed_port(), "/"), FIVE);
    assert_fail(&result, "connection refused");
}

#[test]
fn http_reports_a_peer_that_hangs_up() {
    // Reads the whole request first, so closing sends FIN, not RST.
    let server = Server::start("127.0.0.1:0", |stream| {
        let mut lines = std::io::BufReader::new(stream).lines();
        while lines.next().is_some_and(|l| l.is_ok_and(|l| !l.is_empty())) {}
    });
    let result = run_http(http("127.0.0.1", server.port(), "/"), FIVE);
    assert_fail(&result, "connection closed by peer");
}

#[test]
fn http_times_out_on_a_server_that_never_answers() {
    let server = web("127.0.0.1:0");
    let result = run_http(http("127.0.0.1", server.port(), "/silent"), SECOND);
    assert_fail(&result, "timed out after 1s");
    assert!(result.latency >= Duration::from_millis(900), "{result:?}");
}

#[test]
fn http_times_out_on_a_listener_that_never_reads() {
    let server = net::silent_server("127.0.0.1:0");
    let result = run_http(http("127.0.0.1", server.port(), "/"), SECOND);
    assert_fail(&result, "timed out after 1s");
}

#[test]
fn http_times_out_on_a_trickled_body() {
    // 1000 bytes at 10 a second would take 100 s: the check must stop at
    // its deadline, not at the end of the body.
    let server = web("127.0.0.1:0");
    let result = run_http(http("127.0.0.1", server.port(), "/trickle"), SECOND);
    assert_fail(&result, "timed out after 1s");
}

#[test]
fn http_caps_a_huge_body() {
    let server = web("127.0.0.1:0");
    let mut p = http("127.0.0.1", server.port(), "/huge");
    p.expect_body = Some("ok".to_owned());
    let result = run_http(p, FIVE);
    assert_pass(&result, "HTTP 200");
    assert!(result.latency < Duration::from_secs(2), "{result:?}");
}

#[test]
fn http_works_over_ipv6() {
    let server = web("[::1]:0");
    assert_pass(
        &run_http(http("::1", server.port(), "/health"), FIVE),
        "HTTP 200",
    );
}

#[test]
fn http_resolves_names() {
    let server = web("127.0.0.1:0");
    assert_pass(
        &run_http(http("localhost", server.port(), "/health"), FIVE),
        "HTTP 200",
    );
}

#[test]
fn checks_can_run_from_many_threads_at_once() {
    let server = web("127.0.0.1:0");
    let specs: Vec<CheckSpec> = (0..8)
        .map(|i| {
            spec(
                &format!("c{i}"),
                Probe::Http(http("localhost", server.port(), "/health")),
                FIVE,
            )
        })
        .collect();
    let built = checks::build(&specs).expect("checks build");
    thread::scope(|s| {
        let runs: Vec<_> = built.iter().map(|c| s.spawn(|| c.run())).collect();
        for r in runs {
            assert_pass(&r.join().expect("no panic"), "HTTP 200");
        }
    });
}

// ---- HTTPS ----

fn tls_server(names: &[&str]) -> (Server, tempfile::NamedTempFile) {
    let cert = net::self_signed(names);
    let server = net::https_server("127.0.0.1:0", cert.identity, |path| match path {
        "/old" => net::redirect(302, "/"),
        _ => net::ok("secure ok\n"),
    });
    let mut pem = tempfile::NamedTempFile::new().expect("temp file");
    std::io::Write::write_all(&mut pem, cert.cert_pem.as_bytes()).expect("write PEM");
    (server, pem)
}

#[test]
fn https_rejects_an_untrusted_certificate() {
    let (server, _pem) = tls_server(&["localhost", "127.0.0.1"]);
    let result = run_http(https("127.0.0.1", server.port()), FIVE);
    assert!(
        !result.healthy && result.reason.starts_with("certificate not trusted"),
        "{result:?}"
    );
}

#[test]
fn https_passes_without_verification() {
    let (server, _pem) = tls_server(&["localhost"]);
    let mut p = https("127.0.0.1", server.port());
    p.tls_verify = false;
    p.expect_body = Some("secure ok".to_owned());
    assert_pass(&run_http(p, FIVE), "HTTP 200");
}

#[test]
fn https_trusts_a_ca_file() {
    let (server, pem) = tls_server(&["localhost", "127.0.0.1"]);
    let mut p = https("127.0.0.1", server.port());
    p.ca_file = Some(pem.path().to_owned());
    p.path = "/old".to_owned();
    assert_pass(&run_http(p.clone(), FIVE), "HTTP 200");
    p.host = "localhost".to_owned();
    assert_pass(&run_http(p, FIVE), "HTTP 200");
}

#[test]
fn plain_http_follows_a_redirect_to_https() {
    // A plain check builds its TLS connector only now, at the redirect,
    // with the check's own TLS setting: an untrusted certificate fails it,
    // and `tls_verify = false` lets it through.
    let (secure, _pem) = tls_server(&["localhost"]);
    let to = format!("https://127.0.0.1:{}/", secure.port());
    let plain = net::http_server("127.0.0.1:0", move |_| net::redirect(301, &to));
    let mut p = http("127.0.0.1", plain.port(), "/");
    let result = run_http(p.clone(), FIVE);
    assert!(
        !result.healthy && result.reason.starts_with("certificate not trusted"),
        "{result:?}"
    );
    p.tls_verify = false;
    p.expect_body = Some("secure ok".to_owned());
    assert_pass(&run_http(p, FIVE), "HTTP 200");
}

#[test]
fn https_reports_a_name_mismatch() {
    let (server, pem) = tls_server(&["service.example"]);
    let mut p = https("127.0.0.1", server.port());
    p.ca_file = Some(pem.path().to_owned());
    assert_fail(&run_http(p, FIVE), "certificate name mismatch");
}

#[test]
fn https_times_out_on_a_stalled_handshake() {
    let server = net::silent_server("127.0.0.1:0");
    let mut p = https("127.0.0.1", server.port());
    p.tls_verify = false;
    assert_fail(&run_http(p, SECOND), "timed out after 1s");
}

#[test]
fn https_to_a_plain_http_server_fails_the_handshake() {
    let server = web("127.0.0.1:0");
    let mut p = https("127.0.0.1", server.port());
    p.tls_verify = false;
    let result = run_http(p, FIVE);
    assert!(
        !result.healthy && result.reason.starts_with("TLS handshake failed"),
        "{result:?}"
    );
}

#[test]
fn a_bad_ca_file_is_a_build_error_naming_check_and_file() {
    let missing = PathBuf::from("/nonexistent/heartbeat-ca.pem");
    let mut p = https("127.0.0.1", 443);
    p.ca_file = Some(missing.clone());
    let err = checks::build(&[spec("secure-api", Probe::Http(p.clone()), FIVE)])
        .err()
        .expect("build fails");
    assert!(
        err.contains("secure-api") && err.contains(&missing.display().to_string()),
        "{err}"
    );

    let garbage = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(garbage.path(), "not a certificate\n").expect("write");
    p.ca_file = Some(garbage.path().to_owned());
    let err = checks::build(&[spec("secure-api", Probe::Http(p), FIVE)])
        .err()
        .expect("build fails");
    assert!(
        err.contains("secure-api") && err.contains(&garbage.path().display().to_string()),
        "{err}"
    );
}

/// Set in the environment of the child run of `ca_file_child`: the
/// directory holding `system.pem` and `system.key`.
const ROOTS_CHILD: &str = "HEARTBEAT_TEST_SYSTEM_ROOTS";

/// Runs `ca_file_child` with `SSL_CERT_FILE` (the system roots as OpenSSL
/// and native-tls see them) naming a certificate generated here, to show
/// that `ca_file` adds to the system roots instead of replacing them.
#[test]
fn ca_file_adds_to_the_system_roots() {
    let dir = tempfile::tempdir().expect("temp dir");
    let system = net::self_signed(&["localhost", "127.0.0.1"]);
    let cert = dir.path().join("system.pem");
    std::fs::write(&cert, &system.cert_pem).expect("write certificate");
    std::fs::write(dir.path().join("system.key"), &system.key_pem).expect("write key");

    let output = child::command("checks_net::ca_file_child")
        .env(ROOTS_CHILD, dir.path())
        .env("SSL_CERT_FILE", &cert)
        .output()
        .expect("run the test binary");
    child::assert_passed("checks_net::ca_file_child", &output);
}

/// The half of `ca_file_adds_to_the_system_roots` that runs with the test
/// system roots. Does nothing unless started by it.
#[test]
#[ignore = "run by ca_file_adds_to_the_system_roots"]
fn ca_file_child() {
    let Some(dir) = std::env::var_os(ROOTS_CHILD).map(PathBuf::from) else {
        return;
    };
    let cert = std::fs::read(dir.join("system.pem")).expect("read certificate");
    let key = std::fs::read(dir.join("system.key")).expect("read key");
    let identity = native_tls::Identity::from_pkcs8(&cert, &key).expect("identity");
    let system_signed = net::https_server("127.0.0.1:0", identity, |_| net::ok("system ok\n"));
    let (own_signed, own_ca) = tls_server(&["localhost", "127.0.0.1"]);

    // The system roots alone: the first server is trusted, the second not.
    let result = run_http(https("127.0.0.1", system_signed.port()), FIVE);
    assert_pass(&result, "HTTP 200");
    let result = run_http(https("127.0.0.1", own_signed.port()), FIVE);
    assert!(!result.healthy, "{result:?}");

    // With a ca_file, both are: the file added a CA and removed none.
    for port in [system_signed.port(), own_signed.port()] {
        let mut p = https("127.0.0.1", port);
        p.ca_file = Some(own_ca.path().to_owned());
        assert_pass(&run_http(p, FIVE), "HTTP 200");
    }
}

// ---- DNS that never answers ----

/// Set in the environment of the child run of `hanging_dns_child`.
const DNS_CHILD: &str = "HEARTBEAT_TEST_HANGING_DNS";

/// Runs `hanging_dns_child` in a private mount namespace whose
/// `/etc/resolv.conf` points at a local DNS server that never answers (and
/// answers NXDOMAIN for `nxdomain.*`), with a resolver timeout of 30 s.
/// Needs root and `unshare`; skipped with a message otherwise.
#[test]
fn hanging_dns_cannot_hold_a_check() {
    let can_unshare = Command::new("unshare")
        .args(["-m", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !can_unshare {
        eprintln!("skipped: cannot create a mount namespace (needs root and unshare)");
        return;
    }
    let dns = net::FakeDns::start().expect("fake DNS server on a loopback address");
    let resolv = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(
        resolv.path(),
        format!("nameserver {}\noptions timeout:30 attempts:1\n", dns.ip()),
    )
    .expect("write resolv.conf");
    let exe = std::env::current_exe().expect("test binary");

    let output = Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg(
            "mount --bind \"$1\" /etc/resolv.conf && \
             exec \"$2\" --exact checks_net::hanging_dns_child --ignored --nocapture \
             --test-threads=1",
        )
        .arg("sh")
        .arg(resolv.path())
        .arg(&exe)
        .env(DNS_CHILD, "1")
        .output()
        .expect("run unshare");
    child::assert_passed("checks_net::hanging_dns_child", &output);
}

/// The half of `hanging_dns_cannot_hold_a_check` that runs behind the
/// hanging DNS server. Does nothing unless started by it.
#[test]
#[ignore = "run by hanging_dns_cannot_hold_a_check"]
fn hanging_dns_child() {
    if std::env::var_os(DNS_CHILD).is_none() {
        return;
    }
    let timeout = SECOND;
    let hang = "name resolution timed out after 1s";

    // A name the server denies is reported as such, not as a timeout.
    assert_fail(
        &run(tcp("nxdomain.heartbeat.test", 80), FIVE),
        "no such host",
    );
    assert_fail(
        &run_http(http("nxdomain.heartbeat.test", 80, "/"), FIVE),
        "no such host",
    );

    // Every kind of network check gives up at its deadline.
    assert_fail(&run(tcp("hang.heartbeat.test", 80), timeout), hang);
    assert_fail(
        &run_http(http("hang.heartbeat.test", 80, "/"), timeout),
        hang,
    );
    assert_fail(&run_http(https("hang.heartbeat.test", 443), timeout), hang);

    // Many checks of two hanging names at once, more checks than resolver
    // threads: each gives up at its own deadline...
    let specs: Vec<CheckSpec> = (0..8)
        .map(|i| {
            let host = format!("hang{}.heartbeat.test", i % 2);
            let probe = if i % 4 == 0 {
                Probe::Http(http(&host, 80, "/"))
            } else {
                tcp(&host, 80)
            };
            spec(&format!("c{i}"), probe, timeout)
        })
        .collect();
    let built = checks::build(&specs).expect("checks build");
    thread::scope(|s| {
        let runs: Vec<_> = built.iter().map(|c| s.spawn(|| c.run())).collect();
        for r in runs {
            assert_fail(&r.join().expect("no panic"), hang);
        }
    });

    // ...and the lookups still hanging (three names) share resolver threads
    // by name, so one is left to answer other names at once.
    let start = Instant::now();
    assert_fail(
        &run(tcp("nxdomain.heartbeat.test", 80), FIVE),
        "no such host",
    );
    assert!(start.elapsed() < SECOND, "took {:?}", start.elapsed());

    // IP literals never wait for DNS.
    let server = net::silent_server("127.0.0.1:0");
    assert_pass(&run(tcp("127.0.0.1", server.port()), timeout), "connected");
}
