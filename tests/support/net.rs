//! Real network peers for the check tests, on loopback only: TCP
//! listeners, a small HTTP/1.1 server (plain or TLS) whose replies can
//! misbehave on purpose, and a DNS server that answers NXDOMAIN or nothing.
//!
//! Every server binds port 0, runs on its own threads and stops in `Drop`:
//! it closes its listener and joins its threads, so tests can run in
//! parallel and leave nothing behind.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How long a server connection may sit idle before the server drops it,
/// so a worker thread can never outlive a test by much.
const IDLE: Duration = Duration::from_secs(10);

/// A listener serving each connection on its own thread.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Server {
    /// Listens on `bind` (`127.0.0.1:0`, `[::1]:0`) and hands every
    /// accepted connection to `handler` on a new thread.
    pub fn start(bind: &str, handler: impl Fn(TcpStream) + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let handler = Arc::new(handler);
        let accept = {
            let stop = Arc::clone(&stop);
            let workers = Arc::clone(&workers);
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = conn else { continue };
                    let _ = stream.set_read_timeout(Some(IDLE));
                    let _ = stream.set_write_timeout(Some(IDLE));
                    let handler = Arc::clone(&handler);
                    let worker = thread::spawn(move || handler(stream));
                    workers.lock().unwrap().push(worker);
                }
            })
        };
        Server {
            addr,
            stop,
            accept: Some(accept),
            workers,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag and closes the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let workers = std::mem::take(&mut *self.workers.lock().unwrap());
        for w in workers {
            let _ = w.join();
        }
    }
}

/// A port on 127.0.0.1 where nothing listens: connections are refused.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local address").port()
}

/// A TCP listener that accepts and never answers: it reads until the
/// client goes away.
pub fn silent_server(bind: &str) -> Server {
    Server::start(bind, |mut stream| {
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    })
}

/// What the HTTP server answers to one request.
pub enum Reply {
    /// A complete response with `Content-Length`.
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// Reads the request and never answers.
    Silent,
    /// A 200 announcing `len` bytes, then sending one byte every `every`.
    Trickle { len: usize, every: Duration },
    /// A 200 of `len` bytes that start with `prefix`, streamed.
    Huge { prefix: &'static [u8], len: usize },
}

/// 200 with `body`.
pub fn ok(body: &str) -> Reply {
    Reply::Full {
        status: 200,
        headers: vec![],
        body: body.as_bytes().to_vec(),
    }
}

/// `code` with a short body.
pub fn status(code: u16) -> Reply {
    Reply::Full {
        status: code,
        headers: vec![],
        body: format!("status {code}\n").into_bytes(),
    }
}

/// A redirect `code` to `location`.
pub fn redirect(code: u16, location: &str) -> Reply {
    Reply::Full {
        status: code,
        headers: vec![("Location", location.to_owned())],
        body: Vec::new(),
    }
}

/// An HTTP/1.1 server on `bind` answering each request with `routes(path)`.
pub fn http_server(bind: &str, routes: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Server {
    let routes = Arc::new(routes);
    Server::start(bind, move |mut stream| {
        let _ = serve(&mut stream, &*routes);
    })
}

/// The same server behind TLS with `identity`.
pub fn https_server(
    bind: &str,
    identity: native_tls::Identity,
    routes: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> Server {
    let acceptor = Arc::new(native_tls::TlsAcceptor::new(identity).expect("TLS acceptor"));
    let routes = Arc::new(routes);
    Server::start(bind, move |stream| {
        // A client that rejects the certificate ends the handshake here.
        if let Ok(mut tls) = acceptor.accept(stream) {
            let _ = serve(&mut tls, &*routes);
            let _ = tls.shutdown();
        }
    })
}

/// Reads one request and writes the reply `routes` picks for its path.
fn serve<S: Read + Write>(stream: &mut S, routes: &dyn Fn(&str) -> Reply) -> io::Result<()> {
    let head = match read_head(stream) {
        Ok(head) => head,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            // Not HTTP (a TLS handshake, say): answer like real servers do.
            stream.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")?;
            return stream.flush();
        }
        Err(e) => return Err(e),
    };
    let path = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_owned();
    match routes(&path) {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut out = format!(
                "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                reason_phrase(status),
                body.len()
            );
            for (name, value) in headers {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
            out.push_str("\r\n");
            stream.write_all(out.as_bytes())?;
            stream.write_all(&body)?;
            stream.flush()
        }
        Reply::Silent => {
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink)? > 0 {}
            Ok(())
        }
        Reply::Trickle { len, every } => {
            let head =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n");
            stream.write_all(head.as_bytes())?;
            stream.flush()?;
            for _ in 0..len {
                thread::sleep(every);
                stream.write_all(b"x")?;
                stream.flush()?;
            }
            Ok(())
        }
        Reply::Huge { prefix, len } => {
            let head =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n");
            stream.write_all(head.as_bytes())?;
            stream.write_all(prefix)?;
            let chunk = vec![b'.'; 16 * 1024];
            let mut left = len - prefix.len();
            while left > 0 {
                let n = left.min(chunk.len());
                stream.write_all(&chunk[..n])?;
                left -= n;
            }
            stream.flush()
        }
    }
}

/// The request line and headers, up to the blank line. `InvalidData` if
/// the first byte cannot start a request line.
fn read_head<S: Read>(stream: &mut S) -> io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 || head.len() > 64 * 1024 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if head.is_empty() && !byte[0].is_ascii_uppercase() {
            return Err(io::ErrorKind::InvalidData.into());
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

/// A certificate for `names` (DNS names or IP addresses) signed by itself,
/// as a server identity and as PEM text for a `ca_file`.
pub struct SelfSigned {
    pub identity: native_tls::Identity,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Generates a fresh self-signed certificate and key for `names`. Each has
/// its own subject name: OpenSSL finds issuers by name, and two trusted
/// certificates with one name would hide each other.
pub fn self_signed(names: &[&str]) -> SelfSigned {
    self_signed_until(names, None)
}

/// [`self_signed`], valid until `not_after` (00:00 UTC of that year, month
/// and day) when given, else rcgen's default (4096-01-01).
pub fn self_signed_until(names: &[&str], not_after: Option<(i32, u8, u8)>) -> SelfSigned {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).expect("certificate parameters");
    if let Some((year, month, day)) = not_after {
        params.not_after = rcgen::date_time_ymd(year, month, day);
    }
    let unique = RandomState::new().hash_one(std::process::id());
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("heartbeat test {unique:016x}"),
    );
    let key = rcgen::KeyPair::generate().expect("generate key");
    let cert = params.self_signed(&key).expect("sign certificate");
    let cert_pem = cert.pem();
    let key_pem = key.serialize_pem();
    let identity = native_tls::Identity::from_pkcs8(cert_pem.as_bytes(), key_pem.as_bytes())
        .expect("identity from PEM");
    SelfSigned {
        identity,
        cert_pem,
        key_pem,
    }
}

/// A DNS server on UDP port 53 of a random 127.x.y.z address. It answers
/// NXDOMAIN for names whose first label is `nxdomain` and never answers
/// anything else. Binding port 53 needs root.
pub struct FakeDns {
    ip: IpAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeDns {
    /// Starts it, or says why it could not.
    pub fn start() -> Result<FakeDns, String> {
        let mut last = String::new();
        for attempt in 0u64..8 {
            let r = RandomState::new().hash_one(attempt);
            let ip = IpAddr::V4(Ipv4Addr::new(
                127,
                1 + (r % 254) as u8,
                (r >> 8) as u8,
                1 + ((r >> 16) % 254) as u8,
            ));
            match UdpSocket::bind((ip, 53)) {
                Ok(socket) => return Ok(FakeDns::serve(ip, socket)),
                Err(e) => last = format!("bind {ip}:53: {e}"),
            }
        }
        Err(last)
    }

    fn serve(ip: IpAddr, socket: UdpSocket) -> FakeDns {
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut buf = [0u8; 1500];
                while !stop.load(Ordering::SeqCst) {
                    let Ok((n, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    if let Some(reply) = nxdomain_reply(&buf[..n]) {
                        let _ = socket.send_to(&reply, from);
                    }
                }
            })
        };
        FakeDns {
            ip,
            stop,
            thread: Some(thread),
        }
    }

    /// The address it listens on.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The NXDOMAIN answer to `query` if it asks about `nxdomain.…`: the
/// header and question of the query with the answer bits set.
fn nxdomain_reply(query: &[u8]) -> Option<Vec<u8>> {
    const HEADER: usize = 12;
    let first_label_len = usize::from(*query.get(HEADER)?);
    let first_label = query.get(HEADER + 1..HEADER + 1 + first_label_len)?;
    if !first_label.eq_ignore_ascii_case(b"nxdomain") {
        return None;
    }
    // Walk the question name to find where the question ends.
    let mut at = HEADER;
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    let end = at + 4; // type and class
    let mut reply = query.get(..end)?.to_vec();
    reply[2] = 0x80 | (query[2] & 0x01); // response, keep "recursion desired"
    reply[3] = 0x80 | 3; // recursion available, NXDOMAIN
    reply[4..6].copy_from_slice(&[0, 1]); // one question
    reply[6..12].fill(0); // no answer, authority or additional records
    Some(reply)
}
