//! HTTP fixtures for the status server tests: a real server on a free
//! loopback port, a `ureq` client, and a raw client that shows exactly what
//! went over the wire.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use heartbeat::http::server::{self, ProbeFn, Server, ServerOptions};
use heartbeat::status::metrics::Metrics;
use heartbeat::status::{SharedStatus, Snapshot};

/// A running server and what feeds it.
pub struct Fixture {
    pub server: Server,
    pub status: SharedStatus,
    pub metrics: Arc<Metrics>,
}

impl Fixture {
    /// A server on `127.0.0.1:0` answering from `snapshot`.
    pub fn start(snapshot: Snapshot, options: ServerOptions) -> Fixture {
        Fixture::start_with_probe(snapshot, options, None)
    }

    /// The same, with an on-demand probe callback.
    pub fn start_with_probe(
        snapshot: Snapshot,
        options: ServerOptions,
        probe: Option<ProbeFn>,
    ) -> Fixture {
        let status: SharedStatus = Arc::new(RwLock::new(snapshot));
        let metrics = Arc::new(Metrics::new());
        let server = server::spawn(
            "127.0.0.1:0".parse().unwrap(),
            options,
            status.clone(),
            metrics.clone(),
            probe,
        )
        .expect("the status server starts");
        Fixture {
            server,
            status,
            metrics,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Gives the metrics the series of the configuration `ini` (a file's
    /// text), as the engine does at start-up: the metrics keep series for
    /// configured checks and groups only.
    pub fn configure_metrics(&self, ini: &str) {
        let dir = std::path::Path::new("/");
        let loaded = heartbeat::config::parse(ini, &dir.join("hb.conf"), dir)
            .unwrap_or_else(|e| panic!("invalid test configuration: {e}"));
        self.metrics.configure(&loaded.config);
    }

    /// [`Fixture::configure_metrics`] with `n` TCP checks `check-0`…
    /// of one group.
    pub fn configure_checks(&self, n: usize) {
        let mut ini = String::from("[promotions]\ng = true\n[demotions]\ng = true\n");
        for i in 0..n {
            ini += &format!("[check-{i}]\nurl = tcp://127.0.0.1:1\naction = g\n");
        }
        self.configure_metrics(&ini);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr(), path)
    }

    /// `GET path` with ureq: status, content type, body.
    pub fn get(&self, path: &str) -> Reply {
        get(self.addr(), path)
    }

    /// `GET path`, the body parsed as JSON.
    pub fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        get_json(self.addr(), path)
    }
}

/// `GET path` from the server at `addr` with ureq: status, content type,
/// body.
pub fn get(addr: SocketAddr, path: &str) -> Reply {
    get_accepting(addr, path, "*/*")
}

/// `GET path` with `Accept: accept`.
pub fn get_accepting(addr: SocketAddr, path: &str, accept: &str) -> Reply {
    let url = format!("http://{addr}{path}");
    let mut response = agent()
        .get(&url)
        .header("accept", accept)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    Reply {
        status: response.status().as_u16(),
        content_type,
        body: response.body_mut().read_to_string().expect("a text body"),
    }
}

/// `GET path`, which must be JSON: status and document.
pub fn get_json(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let reply = get(addr, path);
    assert_eq!(reply.content_type, "application/json", "GET {path}");
    let json = serde_json::from_str(&reply.body)
        .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {:?}", reply.body));
    (reply.status, json)
}

/// Asserts that `HEAD path` answers like `GET path`: same status, content
/// type and content length, and no body. (`/metrics` changes between two
/// requests, its process metrics with them: there the lengths may differ
/// by the digits of those few values.)
pub fn assert_head_like_get(addr: SocketAddr, path: &str) {
    let get = raw(addr, "GET", path);
    let head = raw(addr, "HEAD", path);
    assert_eq!(head.status, get.status, "HEAD {path}");
    assert_eq!(
        head.header("content-type"),
        get.header("content-type"),
        "HEAD {path}"
    );
    let length: usize = head
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("HEAD {path}: no content-length"));
    if path == "/metrics" {
        assert!(
            length.abs_diff(get.body.len()) <= 200,
            "HEAD {path}: {length} bytes, GET sent {}",
            get.body.len()
        );
    } else {
        assert_eq!(length, get.body.len(), "HEAD {path}");
    }
    assert!(head.body.is_empty(), "HEAD {path} sent {:?}", head.body);
}

/// What a request got back.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// A ureq agent that returns 4xx/5xx as responses, with a generous timeout.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

/// A response as it came over the wire.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method path` with `Connection: close` and reads to the end.
pub fn raw(addr: SocketAddr, method: &str, path: &str) -> Raw {
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    raw_bytes(addr, request.as_bytes())
}

/// Sends `request` as is and reads the response to the end of the stream.
pub fn raw_bytes(addr: SocketAddr, request: &[u8]) -> Raw {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).expect("send");
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).expect("read to the end");
    parse(&bytes)
}

/// Parses one HTTP/1.1 response.
pub fn parse(bytes: &[u8]) -> Raw {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(bytes)));
    let head = std::str::from_utf8(&bytes[..end]).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("a header line");
            (name.trim().to_owned(), value.trim().to_owned())
        })
        .collect();
    Raw {
        status,
        headers,
        body: bytes[end + 4..].to_vec(),
    }
}
