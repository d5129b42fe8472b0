//! A TCP proxy in front of a server, that a test can cut: a node talks to
//! etcd through it, and the test partitions that node from etcd by
//! cutting it.
//!
//! The proxy holds its listening socket for its whole life, so that its
//! port can never be taken by another test while it is cut (it used to
//! close the port on a cut and bind it again on a restore, and a
//! parallel test that had taken the port meanwhile made the restore fail
//! with `AddrInUse`). [`Proxy::cut`] resets every connection through it;
//! while cut, every new connection is accepted and reset at once, before
//! anything reaches the server, so a client fails fast (`connection
//! reset`) as it would on a refused connection, and never waits on a
//! backlog. [`Proxy::restore`] forwards new connections again.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the acceptor and the test share: whether new connections are
/// forwarded, and the streams of the forwarded ones, for a cut to reset.
/// One lock for both, so that no connection is let through after a cut
/// returned.
#[derive(Default)]
struct Gate {
    cut: bool,
    connections: Vec<TcpStream>,
}

/// A proxy from a free loopback port to `target`.
pub struct Proxy {
    pub port: u16,
    gate: Arc<Mutex<Gate>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts forwarding connections to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let gate = Arc::new(Mutex::new(Gate::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (gate, stop) = (Arc::clone(&gate), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    match listener.accept() {
                        Ok((client, _)) => admit(client, target, &gate),
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Proxy {
            port,
            gate,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// The URL to give a client instead of the target's.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Resets every connection and, until [`Proxy::restore`], resets new
    /// ones as soon as they are accepted.
    pub fn cut(&mut self) {
        let mut gate = self.gate.lock().unwrap();
        gate.cut = true;
        for stream in gate.connections.drain(..) {
            reset(&stream);
        }
    }

    /// Forwards new connections again, on the same port (which it never
    /// let go of).
    pub fn restore(&mut self) {
        self.gate.lock().unwrap().cut = false;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.cut();
    }
}

/// Ends a forwarded connection: the shutdown wakes its two copying
/// threads, and their close then resets it (`SO_LINGER` 0), so that its
/// peer sees the connection broken, not answered.
fn reset(stream: &TcpStream) {
    let _ = rustix::net::sockopt::set_socket_linger(stream, Some(Duration::ZERO));
    let _ = stream.shutdown(Shutdown::Both);
}

/// Closes a connection nothing was sent on with a reset (`SO_LINGER` 0):
/// its peer's first read or write fails at once, as after a refusal.
fn refuse(stream: TcpStream) {
    let _ = rustix::net::sockopt::set_socket_linger(&stream, Some(Duration::ZERO));
}

/// Forwards `client` to `target`, unless the proxy is cut (then, or when
/// it is cut while the connection to `target` is made, both are reset).
fn admit(client: TcpStream, target: SocketAddr, gate: &Mutex<Gate>) {
    if gate.lock().unwrap().cut {
        return refuse(client);
    }
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
        return refuse(client);
    };
    let mut kept = gate.lock().unwrap();
    if kept.cut {
        refuse(server);
        return refuse(client);
    }
    kept.connections.retain(|s| s.peer_addr().is_ok());
    for stream in [&client, &server] {
        if let Ok(clone) = stream.try_clone() {
            kept.connections.push(clone);
        }
    }
    drop(kept);
    if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
        pipe(client, s2);
        pipe(server, c2);
    }
}

/// Copies from `from` to `to` on a thread of its own until either ends.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
