//! The status server's listener survives running out of file descriptors
//! (`EMFILE` on accept): it logs, pauses, retries, and serves the waiting
//! client once descriptors are free again.
//!
//! It runs in a process of its own (`support::child`), because it lowers
//! the descriptor limit of the whole process.

use crate::support;

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use heartbeat::http::server::ServerOptions;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::support::http::{Fixture, parse};
use crate::support::snapshots::all_healthy;

#[test]
fn accept_errors_do_not_kill_the_listener() {
    support::child::run_alone("server_fd_exhaustion::child_accept_errors");
}

#[test]
#[ignore = "run by accept_errors_do_not_kill_the_listener"]
fn child_accept_errors() {
    if !support::child::is_child("server_fd_exhaustion::child_accept_errors") {
        return;
    }
    let f = Fixture::start(all_healthy(), ServerOptions::default());
    let original = getrlimit(Resource::Nofile);
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(open + 16),
            maximum: original.maximum,
        },
    )
    .unwrap();

    // Use up every descriptor but one, and give that one to a client: the
    // kernel completes its connection, the server cannot accept it.
    let mut files = Vec::new();
    while let Ok(file) = File::open("/dev/null") {
        files.push(file);
    }
    files.pop();
    let connected = TcpStream::connect(f.addr());
    // Let the server fail to accept a few times before relief comes.
    std::thread::sleep(Duration::from_millis(500));
    drop(files);
    setrlimit(Resource::Nofile, original).unwrap();

    let mut client = connected.expect("the last descriptor connects");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client
        .write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut bytes = Vec::new();
    client
        .read_to_end(&mut bytes)
        .expect("an answer once descriptors are free");
    let response = parse(&bytes);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"{\"ready\":true}\n");
}
