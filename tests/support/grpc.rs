//! A real gRPC server on a free loopback port: tonic's server with
//! tonic-health's standard health service, whose answers the test sets
//! while heartbeat asks, plain or behind TLS (native-tls, with a
//! certificate the test generates), or with no health service at all.
//! Stopped and joined on drop.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tonic::service::Routes;
use tonic::transport::server::Connected;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// A running gRPC server.
pub struct GrpcServer {
    addr: SocketAddr,
    reporter: Option<HealthReporter>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What the server offers.
pub enum Offer {
    /// The health service; the whole server (`""`) starts SERVING.
    Health,
    /// No service at all: every call is UNIMPLEMENTED.
    Nothing,
}

impl GrpcServer {
    /// Starts a server on 127.0.0.1, behind TLS with `identity` if given.
    pub fn start(offer: Offer, identity: Option<native_tls::Identity>) -> GrpcServer {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("local address");
        let (reporter, routes) = match offer {
            Offer::Health => {
                let (reporter, service) = tonic_health::server::health_reporter();
                (Some(reporter), Routes::new(service))
            }
            Offer::Nothing => (None, Routes::default()),
        };
        let acceptor = identity.map(|id| {
            tokio_native_tls::TlsAcceptor::from(native_tls::TlsAcceptor::new(id).unwrap())
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let (tx, rx) = mpsc::channel::<io::Result<Conn>>(16);
                let accept = async move {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        let conn = match &acceptor {
                            None => Conn::Plain(tcp),
                            // A client that refuses the certificate ends
                            // the handshake: no connection to serve.
                            Some(tls) => match tls.accept(tcp).await {
                                Ok(stream) => Conn::Tls(Box::new(stream)),
                                Err(_) => continue,
                            },
                        };
                        if tx.send(Ok(conn)).await.is_err() {
                            break;
                        }
                    }
                };
                let serve = tonic::transport::Server::builder()
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(
                        tokio_stream::wrappers::ReceiverStream::new(rx),
                        async {
                            let _ = stopped.await;
                        },
                    );
                tokio::select! {
                    _ = accept => {}
                    served = serve => served.expect("gRPC server"),
                }
            });
        });
        GrpcServer {
            addr,
            reporter,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Sets what the health service answers for `service` (`""`: the
    /// whole server).
    pub fn set(&self, service: &str, status: ServingStatus) {
        let reporter = self.reporter.as_ref().expect("a health service");
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(reporter.set_service_status(service, status));
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A connection the server serves: plain TCP or TLS over it.
enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_native_tls::TlsStream<TcpStream>>),
}

impl Connected for Conn {
    type ConnectInfo = ();

    fn connect_info(&self) {}
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
