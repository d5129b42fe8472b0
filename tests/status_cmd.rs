//! `heartbeat status` against a real status server, and against addresses
//! where none answers.

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use heartbeat::exit::{Chain, Exit};
use heartbeat::http::client as status_cmd;
use heartbeat::http::server::ServerOptions;

use support::http::Fixture;
use support::snapshots::{all_healthy, before_first_round, one_unhealthy, stalled};

/// Runs the subcommand against `addr`: exit status, stdout, and stderr as
/// `main` prints it.
fn status(addr: SocketAddr, timeout: Duration) -> (Exit, String, String) {
    let mut out = Vec::new();
    let (code, err) = match status_cmd::run(&[addr], timeout, &mut out) {
        Ok(code) => (code, String::new()),
        Err(e) => (e.exit(), format!("heartbeat: {}\n", Chain(&e))),
    };
    (code, String::from_utf8(out).unwrap(), err)
}

/// The whitespace-separated cells of the line that starts with `first`.
fn cells<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&first))
        .unwrap_or_else(|| panic!("no line for {first} in:\n{text}"))
}

fn options() -> ServerOptions {
    ServerOptions {
        interval: Duration::from_secs(10),
        ..ServerOptions::default()
    }
}

#[test]
fn a_healthy_instance_exits_0_and_shows_its_groups_and_checks() {
    let f = Fixture::start(all_healthy(), options());
    let (code, out, err) = status(f.addr(), Duration::from_secs(10));
    assert_eq!((code, err.as_str()), (Exit::Ok, ""), "{out}");
    assert!(out.starts_with("healthy: 12 rounds, the latest "), "{out}");
    assert_eq!(
        cells(&out, "GROUP"),
        ["GROUP", "STATE", "SINCE", "HOLD", "LAST", "ACTION"]
    );
    let web = cells(&out, "web");
    assert_eq!(web[1], "healthy");
    assert_eq!(web[3], "-", "no hold");
    assert_eq!(
        &web[4..],
        ["promotion", "ok", "(exit", "status", "0,", "250ms)"]
    );
    assert_eq!(
        cells(&out, "CHECK"),
        ["CHECK", "TYPE", "STATE", "LATENCY", "REASON"]
    );
    assert_eq!(
        cells(&out, "nginx"),
        ["nginx", "tcp", "healthy", "12ms", "HTTP", "200"]
    );
}

#[test]
fn an_unhealthy_instance_exits_1_with_the_reason() {
    let f = Fixture::start(one_unhealthy(), options());
    let (code, out, err) = status(f.addr(), Duration::from_secs(10));
    assert_eq!((code, err.as_str()), (Exit::Unhealthy, ""), "{out}");
    assert!(out.starts_with("unhealthy: "), "{out}");
    assert_eq!(cells(&out, "db")[1], "unhealthy");
    assert_eq!(
        cells(&out, "postgres"),
        [
            "postgres",
            "tcp",
            "unhealthy",
            "12ms",
            "connection",
            "refused"
        ]
    );
}

#[test]
fn before_the_first_round_and_when_stalled_it_exits_1() {
    let f = Fixture::start(before_first_round(), options());
    let (code, out, _) = status(f.addr(), Duration::from_secs(10));
    assert_eq!(code, Exit::Unhealthy);
    assert!(
        out.starts_with("unhealthy: no round completed yet\n"),
        "{out}"
    );
    assert_eq!(
        cells(&out, "nginx")[2..],
        ["unknown", "-", "no", "result", "yet"]
    );

    let f = Fixture::start(stalled(), options());
    let (code, out, _) = status(f.addr(), Duration::from_secs(10));
    assert_eq!(code, Exit::Unhealthy);
    assert!(out.starts_with("stalled: "), "{out}");
}

#[test]
fn nothing_listening_exits_69_with_a_message() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (code, out, err) = status(addr, Duration::from_secs(10));
    assert_eq!(code, Exit::Unavailable);
    assert_eq!(out, "");
    let prefix = format!("heartbeat: cannot reach heartbeat at http://{addr}/status: ");
    assert!(err.starts_with(&prefix), "{err}");
}

#[test]
fn a_silent_peer_times_out_with_69() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let started = Instant::now();
    let (code, _, err) = status(addr, Duration::from_millis(300));
    assert_eq!(code, Exit::Unavailable, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    drop(listener);
}

/// Answers one connection with `response`.
fn answer_once(response: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    addr
}

#[test]
fn something_else_answering_exits_76() {
    let addr =
        answer_once("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let (code, _, err) = status(addr, Duration::from_secs(10));
    assert_eq!(code, Exit::Protocol);
    assert_eq!(
        err,
        format!(
            "heartbeat: http://{addr}/status answered HTTP 404: is a heartbeat status server \
             listening there?\n"
        )
    );

    let addr = answer_once(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\
         Connection: close\r\n\r\n[]",
    );
    let (code, _, err) = status(addr, Duration::from_secs(10));
    assert_eq!(code, Exit::Protocol);
    let prefix = format!(
        "heartbeat: http://{addr}/status did not answer with a heartbeat status document: "
    );
    assert!(err.starts_with(&prefix), "{err}");
}

#[test]
fn an_unspecified_listen_address_is_reached_on_loopback() {
    let f = Fixture::start(all_healthy(), options());
    let listen: SocketAddr = format!("0.0.0.0:{}", f.addr().port()).parse().unwrap();
    let (code, _, err) = status(listen, Duration::from_secs(10));
    assert_eq!(code, Exit::Ok, "{err}");
}
