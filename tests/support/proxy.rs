//! A TCP proxy in front of a server, that a test can cut: a node talks to
//! etcd through it, and the test partitions that node from etcd by
//! closing it.
//!
//! [`Proxy::cut`] resets every connection through it and stops listening,
//! so that new connections are refused, as a host whose route to the
//! server is gone would see them; [`Proxy::restore`] listens again on the
//! same port.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A proxy from a free loopback port to `target`.
pub struct Proxy {
    pub port: u16,
    target: SocketAddr,
    open: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts forwarding connections to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let mut proxy = Proxy {
            port,
            target,
            open: Arc::new(AtomicBool::new(true)),
            stop: Arc::new(AtomicBool::new(false)),
            connections: Arc::new(Mutex::new(Vec::new())),
            acceptor: None,
        };
        proxy.listen(listener);
        proxy
    }

    /// The URL to give a client instead of the target's.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn listen(&mut self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let (open, stop, connections, target) = (
            Arc::clone(&self.open),
            Arc::clone(&self.stop),
            Arc::clone(&self.connections),
            self.target,
        );
        self.acceptor = Some(std::thread::spawn(move || {
            while open.load(Ordering::Acquire) && !stop.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((client, _)) => forward(client, target, &connections),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }));
    }

    /// Resets every connection and refuses new ones.
    pub fn cut(&mut self) {
        self.open.store(false, Ordering::Release);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for stream in self.connections.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Listens again on the same port.
    pub fn restore(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("rebind proxy");
        self.open.store(true, Ordering::Release);
        self.listen(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.cut();
    }
}

/// Copies both ways between `client` and a new connection to `target`,
/// on two threads, keeping both streams so that a cut can reset them.
fn forward(client: TcpStream, target: SocketAddr, connections: &Mutex<Vec<TcpStream>>) {
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
        return;
    };
    let mut kept = connections.lock().unwrap();
    kept.retain(|s| s.peer_addr().is_ok());
    for stream in [&client, &server] {
        if let Ok(clone) = stream.try_clone() {
            kept.push(clone);
        }
    }
    drop(kept);
    let pipe = |mut from: TcpStream, mut to: TcpStream| {
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
    };
    if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
        pipe(client, s2);
        pipe(server, c2);
    }
}
