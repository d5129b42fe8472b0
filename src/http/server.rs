//! The status server (SPEC §7): health, liveness, readiness, status and
//! metrics over HTTP/1.1.
//!
//! It runs on its own thread with a small current-thread tokio runtime and
//! hyper, never on the engine's threads, and answers from the latest
//! [`Snapshot`](crate::status::Snapshot) the engine published. Only with `on_demand` do `GET /` and
//! `GET /ready` (the answers a load balancer acts on) ask the engine for a
//! fresh round first, through the `probe` callback (the engine shares one
//! probe run between concurrent requests). `/status` always reports what
//! the engine knows, a round in progress included, so an operator (and
//! `heartbeat status`, which waits 5 s) gets an answer at once.
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | 200 `OK` when healthy (see below), else `fail_status` with a short text body |
//! | `GET /alive`, `/.well-known/alive` | 200 `{"alive":true}`, or 503 `{"alive":false}` once the engine stalls |
//! | `GET /ready`, `/.well-known/ready` | 200 `{"ready":true}`, or 503 `{"ready":false,"reasons":[…]}` |
//! | `GET /status` | 200 with the [`StatusReport`] JSON |
//! | `GET /metrics` | 200 with the metrics, in the format the `Accept` header asks for ([`Format::negotiate`]) |
//!
//! HEAD answers like GET without a body. On the health paths (`/`,
//! `/alive`, `/ready` and their aliases) OPTIONS does too, with
//! `Content-Length: 0`: HAProxy's `option httpchk` without arguments sends
//! `OPTIONS / HTTP/1.0` and takes any 2xx or 3xx for "up", so a node must
//! answer it as it answers GET. Other methods, and OPTIONS elsewhere, get
//! 405 with the `Allow` header of the path; other paths 404.
//!
//! Health and liveness are judged by [`Verdict`] (`crate::status`), from
//! the snapshot alone.
//!
//! Robustness: each connection has a header read timeout (which in hyper 1
//! also bounds how long a keep-alive connection may sit idle between
//! requests) and an idle timeout (no byte read or written while no request
//! is being answered: closed), request heads are capped by `max_buf_size`,
//! and at most `max_connections` are served at once. At that cap a new
//! connection makes room: the oldest connection that is not being answered
//! (it has not sent a complete request yet, or sits idle between two) is
//! closed, so that idle or silent sockets can never turn a probe away. Only
//! when every connection is busy answering is a new one sent a canned `503`
//! and closed, so the listener never stalls behind slow clients. Accept errors (such as
//! `EMFILE`) are logged, at most every 10 s, and retried after 100 ms.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::time::Instant;

use crate::status::metrics::{Format, Metrics};
use crate::status::report::{Alive, Ready, StatusReport};
use crate::status::{SharedStatus, StallRule, Verdict};

/// Asks the engine for a fresh round and returns once its results are
/// published. Called on a blocking thread; the engine makes concurrent
/// calls share one run and rate-limits them.
pub type ProbeFn = Arc<dyn Fn() + Send + Sync>;

/// How the server answers.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// HTTP status of `GET /` when not healthy (`fail_status`, 100..=599;
    /// 503 by default).
    pub fail_status: u16,
    /// The configured interval between round starts; used by the stall rule
    /// until the engine publishes its own in the [`Snapshot`](crate::status::Snapshot).
    pub interval: Duration,
    /// Probe before answering `/` and `/ready`.
    pub on_demand: bool,
    /// Slack added to twice the interval before the engine counts as
    /// stalled (module docs). It should cover the longest a round may take:
    /// every check running into its timeout, `threads` at a time. 30 s by
    /// default.
    pub stall_margin: Duration,
    /// Connection limits.
    pub limits: Limits,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            fail_status: 503,
            interval: Duration::from_secs(60),
            on_demand: false,
            stall_margin: Duration::from_secs(30),
            limits: Limits::default(),
        }
    }
}

/// Bounds that keep slow or idle clients from hurting anyone else.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; more are answered 503 and closed.
    /// 2048 by default: room for hundreds of idle clients and real load
    /// at once.
    pub max_connections: usize,
    /// Time a client has to send a complete request head, counted from the
    /// moment the connection opens or the previous response ends: hyper 1
    /// starts it there, so it is also how long a new or keep-alive
    /// connection may sit idle. 10 s by default.
    pub header_read_timeout: Duration,
    /// A connection that moves no byte for this long while no request is
    /// being answered (a client that stopped reading its response) is
    /// closed. 30 s by default.
    pub idle_timeout: Duration,
    /// Largest request head accepted, in bytes (at least 8192; 16 KiB by
    /// default). A larger one is refused with 431.
    pub max_buf_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 2048,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_buf_size: 16 * 1024,
        }
    }
}

/// A running status server. Dropping it stops it too.
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Cleared when the server thread ends, however it ends.
    alive: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

impl Server {
    /// A watchdog for the engine ([`crate::engine::Engine::watch`]): `true`
    /// while the server thread runs, `false` once it has ended or panicked.
    pub fn alive(&self) -> impl Fn() -> bool + Send + 'static {
        let alive = Arc::clone(&self.alive);
        move || alive.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The address it listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes open connections, waits at most half a
    /// second for an on-demand probe in progress, and joins the server
    /// thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("the status server thread panicked");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Why the status server could not start. Every case exits 71
/// (`EX_OSERR`): the operating system refused the address, the thread or
/// its runtime.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// `fail_status` is not an HTTP status (validated with the
    /// configuration, so a caller's bug).
    #[error("fail_status {0} is not an HTTP status")]
    FailStatus(u16),
    /// The address cannot be bound or set up.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The runtime or the thread cannot be started.
    #[error("cannot start the status server")]
    Start(#[source] io::Error),
}

impl ServerError {
    /// The exit status: [`crate::exit::Exit::OsErr`] (71), or
    /// [`crate::exit::Exit::Software`] for an invalid `fail_status`.
    pub fn exit(&self) -> crate::exit::Exit {
        match self {
            ServerError::FailStatus(_) => crate::exit::Exit::Software,
            ServerError::Bind { .. } | ServerError::Start(_) => crate::exit::Exit::OsErr,
        }
    }
}

/// Binds `addr` and serves on a new thread named `status-server`. The
/// caller announces the address ([`Server::local_addr`]); this logs nothing
/// on success, so the start-up log names it once.
///
/// # Errors
/// When `fail_status` is not a valid status code (100..=599), when the
/// address cannot be bound (the message names it: `cannot listen on
/// 127.0.0.1:80: Permission denied (os error 13)`), or when the thread or
/// its runtime cannot be started.
pub fn spawn(
    addr: SocketAddr,
    options: ServerOptions,
    status: SharedStatus,
    metrics: Arc<Metrics>,
    probe: Option<ProbeFn>,
) -> Result<Server, ServerError> {
    let fail_status = StatusCode::from_u16(options.fail_status)
        .map_err(|_| ServerError::FailStatus(options.fail_status))?;
    let bind = |source| ServerError::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind)?;
    listener.set_nonblocking(true).map_err(bind)?;
    let local = listener.local_addr().map_err(bind)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .thread_name("status-probe")
        .build()
        .map_err(ServerError::Start)?;
    let limits = Limits {
        max_buf_size: options.limits.max_buf_size.max(8192),
        max_connections: options.limits.max_connections.max(1),
        ..options.limits.clone()
    };
    let app = Arc::new(App {
        status,
        metrics,
        probe: if options.on_demand { probe } else { None },
        fail_status,
        stall: StallRule {
            interval: options.interval,
            margin: options.stall_margin,
            started: SystemTime::now(),
        },
    });
    let (stop_tx, stop_rx) = oneshot::channel();
    let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let running = Running(Arc::clone(&alive));
    let thread = std::thread::Builder::new()
        .name("status-server".into())
        .spawn(move || {
            let _running = running;
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => accept_loop(listener, app, limits, stop_rx).await,
                    Err(e) => log::error!("status server on {local}: {e}"),
                }
            });
            runtime.shutdown_timeout(Duration::from_millis(500));
        })
        .map_err(ServerError::Start)?;
    Ok(Server {
        addr: local,
        stop: Some(stop_tx),
        thread: Some(thread),
        alive,
    })
}

/// Clears its flag when dropped: when the server thread ends, also by a
/// panic.
struct Running(Arc<std::sync::atomic::AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What every request handler needs.
struct App {
    status: SharedStatus,
    metrics: Arc<Metrics>,
    probe: Option<ProbeFn>,
    fail_status: StatusCode,
    stall: StallRule,
}

/// Logs at most once per period, counting what it left out.
struct Throttle {
    period: Duration,
    last: Option<Instant>,
    skipped: u64,
}

impl Throttle {
    fn new(period: Duration) -> Throttle {
        Throttle {
            period,
            last: None,
            skipped: 0,
        }
    }

    /// `Some(number skipped since the last log line)` when it is time to log.
    fn ready(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < self.period => {
                self.skipped += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.skipped))
            }
        }
    }
}

const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain; charset=utf-8\r\ncontent-length: 22\r\nconnection: close\r\n\r\n\
too many connections\r\n";

async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    limits: Limits,
    mut stop: oneshot::Receiver<()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let waiting = Arc::new(Waiting::default());
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_buf_size)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let mut accept_errors = Throttle::new(Duration::from_secs(10));
    let mut refusals = Throttle::new(Duration::from_secs(10));
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let permit = match permits.clone().try_acquire_owned() {
                    Ok(permit) => Ok(permit),
                    Err(_) => make_room(&permits, &waiting).await,
                };
                let Ok(permit) = permit else {
                    if let Some(skipped) = refusals.ready() {
                        log::warn!(
                            "status server: {} connections open, refusing {peer} \
                             ({skipped} more refused since the last message)",
                            limits.max_connections
                        );
                    }
                    // Best effort: a fresh socket's send buffer takes it.
                    let _ = stream.try_write(REFUSED);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let builder = builder.clone();
                let app = app.clone();
                let idle = limits.idle_timeout;
                let activity = Arc::new(Activity::new(waiting.clone()));
                tokio::spawn(async move {
                    serve_connection(stream, peer, &builder, app, idle, activity).await;
                    drop(permit);
                });
            }
            Err(e) if is_per_connection(&e) => {
                log::debug!("status server: a connection failed before accept: {e}");
            }
            Err(e) => {
                if let Some(skipped) = accept_errors.ready() {
                    log::warn!(
                        "status server: cannot accept connections: {e}; retrying \
                         ({skipped} more errors since the last message)"
                    );
                }
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
    log::debug!("status server stopped");
}

/// Accept errors that concern one connection only, not the listener.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// At the connection cap, closes the oldest connection that is not being
/// answered and waits for its place (at most a second). `Err` when every
/// connection is busy answering a request.
async fn make_room(
    permits: &Arc<Semaphore>,
    waiting: &Waiting,
) -> Result<tokio::sync::OwnedSemaphorePermit, ()> {
    if !waiting.close_oldest() {
        return Err(());
    }
    match tokio::time::timeout(Duration::from_secs(1), permits.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(()),
    }
}

/// The connections that are not answering a request (none sent yet, or
/// idle between two), oldest first, each with the signal that closes it
/// and whether a write to it is blocked (a response still going out to a
/// client that reads slowly: not idle, whatever hyper's state says).
#[derive(Default)]
struct Waiting {
    next: AtomicU64,
    queue: Mutex<BTreeMap<u64, Waiter>>,
}

/// A queued connection.
#[derive(Clone)]
struct Waiter {
    close: Arc<Notify>,
    write_blocked: Arc<AtomicBool>,
}

impl Waiting {
    /// Queues a connection; returns its place, for [`Waiting::leave`].
    fn enter(&self, waiter: &Waiter) -> u64 {
        let place = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(place, waiter.clone());
        place
    }

    fn leave(&self, place: u64) {
        self.lock().remove(&place);
    }

    /// Tells the oldest queued connection that no write is blocked on to
    /// close; false if there is none.
    fn close_oldest(&self) -> bool {
        let mut queue = self.lock();
        let oldest = queue
            .iter()
            .find(|(_, w)| !w.write_blocked.load(Ordering::Relaxed))
            .map(|(place, _)| *place);
        match oldest.and_then(|place| queue.remove(&place)) {
            Some(waiter) => {
                waiter.close.notify_one();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Waiter>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// When a connection last moved a byte, whether a request is being
/// answered on it, and its place among the [`Waiting`] connections.
struct Activity {
    base: Instant,
    last_ms: AtomicU64,
    busy: AtomicUsize,
    /// Requests whose response is not written yet.
    answering: AtomicUsize,
    waiting: Arc<Waiting>,
    /// Its place in `waiting` while it waits (`u64::MAX` while busy).
    place: AtomicU64,
    /// How the queue closes it, and whether a write to it is blocked.
    waiter: Waiter,
}

impl Activity {
    /// A new connection, queued as waiting.
    fn new(waiting: Arc<Waiting>) -> Activity {
        let waiter = Waiter {
            close: Arc::new(Notify::new()),
            write_blocked: Arc::new(AtomicBool::new(false)),
        };
        let place = waiting.enter(&waiter);
        Activity {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            answering: AtomicUsize::new(0),
            waiting,
            place: AtomicU64::new(place),
            waiter,
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    fn busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed) > 0
    }
}

/// Marks a request as being answered while it lives.
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: Arc<Activity>) -> Busy {
        activity.busy.fetch_add(1, Ordering::Relaxed);
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Takes a connection out of the [`Waiting`] queue from the moment its
/// request is complete until its response is written (it lives in the
/// response body, which hyper drops once sent), then queues it again.
struct Answering(Arc<Activity>);

impl Answering {
    fn new(activity: Arc<Activity>) -> Answering {
        if activity.answering.fetch_add(1, Ordering::Relaxed) == 0 {
            activity
                .waiting
                .leave(activity.place.swap(u64::MAX, Ordering::Relaxed));
        }
        Answering(activity)
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        if self.0.answering.fetch_sub(1, Ordering::Relaxed) == 1 {
            let place = self.0.waiting.enter(&self.0.waiter);
            self.0.place.store(place, Ordering::Relaxed);
        }
    }
}

/// A response body that keeps its connection [`Answering`] until sent.
struct Guarded {
    inner: Full<Bytes>,
    _answering: Answering,
}

impl hyper::body::Body for Guarded {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        self.waiting.leave(*self.place.get_mut());
    }
}

/// A stream that records in [`Activity`] every time bytes move.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl Tracked {
    /// Records a write: activity when bytes went out, and whether the
    /// socket refused more (the client does not read).
    fn note_write(&self, polled: &Poll<io::Result<usize>>) {
        if matches!(polled, Poll::Ready(Ok(n)) if *n > 0) {
            self.activity.touch();
        }
        let blocked = polled.is_pending();
        self.activity
            .waiter
            .write_blocked
            .store(blocked, Ordering::Relaxed);
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note_write(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note_write(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    builder: &http1::Builder,
    app: Arc<App>,
    idle_timeout: Duration,
    activity: Arc<Activity>,
) {
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let requests = activity.clone();
    let service = service_fn(move |request| {
        let answering = Answering::new(requests.clone());
        let busy = Busy::new(requests.clone());
        let app = app.clone();
        async move {
            let response = respond(&app, request).await;
            drop(busy);
            let response = response.map(|inner| Guarded {
                inner,
                _answering: answering,
            });
            Ok::<_, Infallible>(response)
        }
    });
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    loop {
        let deadline = activity.last() + idle_timeout;
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    log::debug!("status server: connection from {peer}: {e}");
                }
                return;
            }
            () = activity.waiter.close.notified() => {
                log::debug!("status server: closing the oldest waiting connection ({peer}) to make room");
                return;
            }
            _ = tokio::time::sleep_until(deadline) => {
                if activity.busy() {
                    activity.touch();
                } else if activity.last() + idle_timeout <= Instant::now() {
                    log::debug!("status server: closing idle connection from {peer}");
                    return;
                }
            }
        }
    }
}

/// The endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Health,
    Alive,
    Ready,
    Status,
    Metrics,
}

impl Route {
    fn of(path: &str) -> Option<Route> {
        Some(match path {
            "/" => Route::Health,
            "/alive" | "/.well-known/alive" => Route::Alive,
            "/ready" | "/.well-known/ready" => Route::Ready,
            "/status" => Route::Status,
            "/metrics" => Route::Metrics,
            _ => return None,
        })
    }

    /// Whether an on-demand server probes before answering this route.
    fn probes(self) -> bool {
        matches!(self, Route::Health | Route::Ready)
    }

    /// The methods this route answers, as the `Allow` header lists them:
    /// health checkers' OPTIONS on the health paths.
    fn allow(self) -> &'static str {
        match self {
            Route::Health | Route::Alive | Route::Ready => "GET, HEAD, OPTIONS",
            Route::Status | Route::Metrics => "GET, HEAD",
        }
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

async fn respond(app: &App, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let head = request.method() == Method::HEAD;
    let Some(route) = Route::of(request.uri().path()) else {
        return reply(StatusCode::NOT_FOUND, TEXT, "not found\n", head);
    };
    let allow = route.allow();
    let options = request.method() == Method::OPTIONS && allow.ends_with("OPTIONS");
    if request.method() != Method::GET && !head && !options {
        let mut response = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "method not allowed\n",
            false,
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        return response;
    }
    if route.probes() {
        if let Some(probe) = &app.probe {
            let probe = probe.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || probe()).await {
                log::error!("status server: on-demand probe failed: {e}");
            }
        }
    }
    if route == Route::Metrics {
        let accept = request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let format = Format::negotiate(accept);
        let mut response = reply(
            StatusCode::OK,
            format.content_type(),
            app.metrics.encode_as(format),
            head,
        );
        // Caches between heartbeat and a client must not hand one format
        // to a client that asked for another.
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept"));
        return response;
    }
    let mut response = from_snapshot(app, route, head);
    if options {
        // As GET, with nothing after the head: an OPTIONS answer has a
        // body unless it says it has none.
        *response.body_mut() = Full::new(Bytes::new());
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}

/// The answer of every route but `/metrics`, from the latest snapshot.
fn from_snapshot(app: &App, route: Route, head: bool) -> Response<Full<Bytes>> {
    let snapshot = app
        .status
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let verdict = Verdict::of(&snapshot, &app.stall, SystemTime::now());
    match route {
        Route::Health if verdict.reasons.is_empty() => reply(StatusCode::OK, TEXT, "OK\n", head),
        Route::Health => {
            let mut body = format!("{}\n", verdict.word);
            for reason in &verdict.reasons {
                body.push_str(&reason.replace(['\r', '\n'], " "));
                body.push('\n');
            }
            reply(app.fail_status, TEXT, body, head)
        }
        Route::Alive => {
            let status = if verdict.alive {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let body = Alive {
                alive: verdict.alive,
            };
            reply(status, JSON, to_json(&body), head)
        }
        Route::Ready => {
            let ready = verdict.reasons.is_empty();
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let body = Ready {
                ready,
                reasons: verdict.reasons,
            };
            reply(status, JSON, to_json(&body), head)
        }
        // `/metrics` is answered before the snapshot is read.
        Route::Status | Route::Metrics => {
            let report = StatusReport::new(&snapshot, verdict.reasons.is_empty(), verdict.alive);
            reply(StatusCode::OK, JSON, to_json(&report), head)
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string(value).unwrap_or_else(|e| {
        log::error!("status server: cannot serialise a response: {e}");
        String::from("{}")
    });
    text.push('\n');
    text
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
    head: bool,
) -> Response<Full<Bytes>> {
    let body: Bytes = body.into();
    let length = body.len();
    let body = if head { Bytes::new() } else { body };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_logs_once_per_period_and_counts_the_rest() {
        let mut t = Throttle::new(Duration::from_secs(3600));
        assert_eq!(t.ready(), Some(0));
        assert_eq!(t.ready(), None);
        assert_eq!(t.ready(), None);
        t.last = Some(Instant::now() - Duration::from_secs(3601));
        assert_eq!(t.ready(), Some(2));
    }
}
