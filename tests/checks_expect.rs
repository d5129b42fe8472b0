//! TCP checks that talk (`send`, `expect`, `expect_regex`, `tls = yes`)
//! against real peers: a real Redis, line servers that answer otherwise,
//! stall, hang up or flood, and a TLS line server with a certificate the
//! test generates. The checks are read from configuration text, as the
//! daemon reads them, and a few run through the real binary.

use crate::support::checks::{assert_fail, assert_pass, run_section as run};
use crate::support::{bin, net, redis::Redis};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use net::Server;

const FIVE: Duration = Duration::from_secs(5);

/// A server that answers each line it reads with `answer(line)` (the line
/// without its ending), until the client hangs up.
fn line_server(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Server {
    Server::start("127.0.0.1:0", move |stream| {
        let mut writer = stream.try_clone().expect("clone stream");
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            let reply = answer(line.trim_end_matches(['\r', '\n']));
            if writer.write_all(&reply).is_err() {
                break;
            }
            line.clear();
        }
    })
}

/// A server that writes `banner` as soon as a client connects, then
/// reads until it hangs up (an SMTP server greeting).
fn banner_server(banner: &'static [u8]) -> Server {
    Server::start("127.0.0.1:0", move |mut stream| {
        if stream.write_all(banner).is_ok() {
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
        }
    })
}

// ---- Redis ----

#[test]
fn a_real_redis_answers_ping_with_pong() {
    let redis = Redis::start();
    let keys = format!(
        "type = tcp\nhostname = 127.0.0.1\nport = {}\nsend = PING\\r\\n\nexpect = +PONG",
        redis.port()
    );
    assert_pass(&run(&keys, FIVE), r#"reply contains "+PONG""#);
    let regex = format!(
        "url = tcp://127.0.0.1:{}\nsend = PING\\r\\n\nexpect_regex = ^\\+PONG\\r\\n$",
        redis.port()
    );
    assert_pass(&run(&regex, FIVE), r#"reply matches /^\+PONG\r\n$/"#);
}

#[test]
fn a_redis_that_is_loading_fails_with_what_it_said() {
    let loading = line_server(|line| {
        assert_eq!(line, "PING", "the check sends exactly PING CR LF");
        b"-LOADING Redis is loading the dataset in memory\r\n".to_vec()
    });
    let keys = format!(
        "url = tcp://127.0.0.1:{}\nsend = PING\\r\\n\nexpect = +PONG",
        loading.port()
    );
    // Redis keeps the connection open: the check waits for the rest of
    // the answer until its deadline, then says what came.
    assert_fail(
        &run(&keys, Duration::from_secs(1)),
        r#"expected "+PONG", got "-LOADING Redis is loading the dataset in memory\r\n""#,
    );
}

#[test]
fn redis_through_the_binary_promotes_and_a_wrong_answer_demotes() {
    let redis = Redis::start();
    let wrong = line_server(|_| b"-ERR unknown command\r\n".to_vec());
    let s = bin::Scratch::new();
    let log = s.path("actions.log");
    let config = s.write(
        "heartbeat.conf",
        &format!(
            "[promotions]\ncache = echo up $HEARTBEAT_ACTION >> {log}\n\
             other = echo up $HEARTBEAT_ACTION >> {log}\n\
             [demotions]\ncache = echo down $HEARTBEAT_ACTION >> {log}\n\
             other = echo down $HEARTBEAT_ACTION >> {log}\n\
             [redis]\ntype = tcp\nhostname = 127.0.0.1\nport = {}\nsend = PING\\r\\n\n\
             expect = +PONG\naction = cache\ntimeout = 3\n\
             [fake]\nurl = tcp://127.0.0.1:{}\nsend = PING\\r\\n\nexpect = +PONG\n\
             action = other\ntimeout = 3\n",
            redis.port(),
            wrong.port(),
            log = log.display()
        ),
    );
    let config = config.to_str().unwrap();
    let out = s.run(&["-c", config, "--once"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let mut ran = bin::lines(&log);
    ran.sort();
    assert_eq!(ran, ["down other", "up cache"], "{stderr}");
    assert!(
        stderr.contains(r#"expected "+PONG", got "-ERR unknown command\r\n""#),
        "{stderr}"
    );
    // -t shows what is expected and how much is sent, never what.
    let out = s.run(&["-c", config, "-t"]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{summary}");
    assert!(
        summary.contains(&format!(
            "127.0.0.1:{}, send = 6 bytes, expect = \"+PONG\"",
            redis.port()
        )),
        "{summary}"
    );
    assert!(!summary.contains("PING"), "{summary}");
}

// ---- Line servers that misbehave ----

#[test]
fn an_smtp_banner_is_matched_without_sending_anything() {
    let ready = banner_server(b"220 mail.example ESMTP ready\r\n");
    let keys = format!(
        "url = tcp://127.0.0.1:{}\nexpect_regex = ^220[ -]",
        ready.port()
    );
    assert_pass(&run(&keys, FIVE), "reply matches /^220[ -]/");
    let busy = banner_server(b"554 5.3.2 too busy, come back later\r\n");
    let keys = format!(
        "url = tcp://127.0.0.1:{}\nexpect_regex = ^220[ -]",
        busy.port()
    );
    assert_fail(
        &run(&keys, Duration::from_secs(1)),
        r#"expected a match of /^220[ -]/, got "554 5.3.2 too busy, come back later\r\n""#,
    );
}

#[test]
fn a_peer_that_never_answers_fails_at_the_deadline() {
    let silent = net::silent_server("127.0.0.1:0");
    let keys = format!(
        "url = tcp://127.0.0.1:{}\nsend = PING\\r\\n\nexpect = +PONG",
        silent.port()
    );
    assert_fail(
        &run(&keys, Duration::from_secs(1)),
        r#"timed out after 1s; expected "+PONG", got nothing"#,
    );
}

#[test]
fn a_peer_that_hangs_up_fails_at_once() {
    let rude = Server::start("127.0.0.1:0", drop);
    let keys = format!("url = tcp://127.0.0.1:{}\nexpect = +PONG", rude.port());
    let result = run(&keys, FIVE);
    assert_fail(
        &result,
        r#"expected "+PONG", got nothing (connection closed)"#,
    );
    assert!(result.latency < Duration::from_secs(2), "{result:?}");
}

#[test]
fn a_flood_is_read_up_to_the_cap_and_quoted_short() {
    let flood = Server::start("127.0.0.1:0", |mut stream| {
        let chunk = [b'x'; 4096];
        while stream.write_all(&chunk).is_ok() {}
    });
    let keys = format!("url = tcp://127.0.0.1:{}\nexpect = +PONG", flood.port());
    let head = "x".repeat(60);
    assert_fail(
        &run(&keys, FIVE),
        &format!(
            "nothing matched in the first 16384 bytes; expected \"+PONG\", got \"{head}\u{2026}\""
        ),
    );
}

#[test]
fn control_characters_and_binary_replies_are_escaped() {
    let odd = line_server(|_| b"\x1b[31m\xff\xfe\0oops\r\n".to_vec());
    let keys = format!(
        "url = tcp://127.0.0.1:{}\nsend = \\x00\\x01hello\\n\nexpect = +OK",
        odd.port()
    );
    assert_fail(
        &run(&keys, Duration::from_secs(1)),
        r#"expected "+OK", got "\u{1b}[31m\xff\xfe\0oops\r\n""#,
    );
}

#[test]
fn send_without_expect_passes_once_written() {
    let sink = net::silent_server("127.0.0.1:0");
    let keys = format!("url = tcp://127.0.0.1:{}\nsend = QUIT\\r\\n", sink.port());
    assert_pass(&run(&keys, FIVE), "connected, sent 6 bytes");
}

// ---- TLS ----

/// A line server behind TLS with `identity`, answering `+PONG` to `PING`.
fn tls_line_server(identity: native_tls::Identity) -> Server {
    let acceptor = Arc::new(native_tls::TlsAcceptor::new(identity).expect("TLS acceptor"));
    Server::start("127.0.0.1:0", move |stream: TcpStream| {
        let Ok(mut tls) = acceptor.accept(stream) else {
            return;
        };
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while matches!(tls.read(&mut byte), Ok(1)) {
            line.push(byte[0]);
            if line.ends_with(b"\r\n") {
                let reply: &[u8] = if line == b"PING\r\n" {
                    b"+PONG\r\n"
                } else {
                    b"-ERR\r\n"
                };
                if tls.write_all(reply).is_err() {
                    break;
                }
                line.clear();
            }
        }
        let _ = tls.shutdown();
    })
}

#[test]
fn tls_yes_talks_over_tls_verified_with_ca_file() {
    let cert = net::self_signed(&["localhost", "127.0.0.1"]);
    let scratch = bin::Scratch::new();
    let ca = scratch.write("ca.pem", &cert.cert_pem);
    let server = tls_line_server(cert.identity);
    let port = server.port();
    let verified = format!(
        "url = tcp://localhost:{port}\ntls = yes\nca_file = {}\nsend = PING\\r\\n\n\
         expect = +PONG",
        ca.display()
    );
    assert_pass(&run(&verified, FIVE), r#"reply contains "+PONG""#);
    let handshake_only = format!(
        "url = tcp://127.0.0.1:{port}\ntls = yes\nca_file = {}",
        ca.display()
    );
    assert_pass(&run(&handshake_only, FIVE), "connected over TLS");
    let untrusted = format!("url = tcp://localhost:{port}\ntls = yes\nexpect = +PONG");
    assert_fail(
        &run(&untrusted, FIVE),
        "certificate not trusted (self-signed certificate)",
    );
    let unverified = format!(
        "url = tcp://localhost:{port}\ntls = yes\ntls_verify = no\nsend = PING\\r\\n\nexpect = +PONG"
    );
    assert_pass(&run(&unverified, FIVE), r#"reply contains "+PONG""#);
}

#[test]
fn tls_yes_against_a_plain_server_is_a_handshake_failure() {
    let plain = line_server(|_| b"+PONG\r\n".to_vec());
    let keys = format!(
        "url = tcp://127.0.0.1:{}\ntls = yes\ntls_verify = no\nexpect = +PONG",
        plain.port()
    );
    let result = run(&keys, Duration::from_secs(2));
    assert!(!result.healthy, "{result:?}");
    assert!(
        result.reason.starts_with("TLS handshake failed") || result.reason.starts_with("timed out"),
        "{result:?}"
    );
}

// ---- Configuration ----

/// The errors (or warnings) `heartbeat -t` prints for a check section.
fn validate(keys: &str) -> (Option<i32>, String) {
    let s = bin::Scratch::new();
    let config = s.write(
        "test.conf",
        &format!("[promotions]\ng = true\n[demotions]\ng = true\n[probe]\naction = g\n{keys}\n"),
    );
    let out = s.run(&["-t", "-c", config.to_str().unwrap()]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_send_and_expect_values_are_refused_with_their_place() {
    let (code, stderr) = validate("url = tcp://127.0.0.1:6379\nsend = PING\\q");
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains(
            r"test.conf:8: [probe] send: unknown escape \q at character 5; the escapes are \r, \n, \t, \\ and \xNN"
        ),
        "{stderr}"
    );
    let (code, stderr) = validate("url = tcp://127.0.0.1:6379\nexpect = a\nexpect_regex = b");
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("test.conf:9: [probe] expect_regex: both expect and expect_regex are set"),
        "{stderr}"
    );
    let (code, stderr) = validate("url = tcp://127.0.0.1:6379\nexpect_regex = (unclosed");
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains(r#"[probe] expect_regex: "(unclosed" is not a regular expression"#),
        "{stderr}"
    );
    let (code, stderr) = validate("type = http\nport = 80\nsend = PING");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("[probe] send: does not apply to a http check; ignored"),
        "{stderr}"
    );
}

#[test]
fn tls_options_without_tls_draw_a_warning() {
    let (code, stderr) = validate("url = tcp://127.0.0.1:6379\ntls_verify = no");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("test.conf:8: [probe] tls_verify: applies only with tls = yes; ignored"),
        "{stderr}"
    );
}
