//! Where checks run, and how their failures are contained.
//!
//! A check that waits on the network ([`Check::probe`]) runs as a future on
//! the network runtime: one thread (`checks-net`) multiplexing every
//! socket and timer, so checks waiting on stalled peers hold no thread and
//! take no capacity from the others. A check that blocks its thread (a
//! script check waiting for its child) runs on the rayon pool of
//! `threads` workers. Either way its result comes back to the engine's loop
//! through a `Sink`, tagged with the check's id and the round that
//! started it.
//!
//! A panic inside a check is that check's failure: the panic hook of
//! [`install_panic_hook`] notes the message and location instead of
//! printing them, and the run ends with `internal error: MESSAGE at
//! FILE:LINE:COLUMN`, which the engine logs once like any failure. A panic
//! anywhere else is logged at ERROR with its thread and location.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::Event;
use crate::checks::{Check, CheckResult};

/// Most network checks starting at once (see [`Runner::flush`]). Each
/// HTTP check in flight holds about 20 KB (hyper's read buffer and request
/// channel, the future itself): with 256 at once, 1,000 HTTP checks a
/// second peaked at 19 MiB of anonymous memory, with 64 at 8.5 MiB, at
/// the same rate.
/// With [`PATIENCE`] it bounds how fast checks whose peers all stall can
/// start: 6,400 a second.
pub const STARTING: usize = 64;

/// How long a network check holds its place among the [`STARTING`] ones:
/// a check still waiting after this long (a stalled peer) waits on
/// without delaying the next.
pub const PATIENCE: Duration = Duration::from_millis(10);

/// Runs `check` holding `permit` until it ends or [`PATIENCE`] has passed.
async fn paced(check: Contained, permit: Option<tokio::sync::OwnedSemaphorePermit>) -> CheckResult {
    let mut check = std::pin::pin!(check);
    // A check that is over at its first poll (a connection that opened at
    // once) sets no timer.
    let first = std::future::poll_fn(|cx| Poll::Ready(check.as_mut().poll(cx))).await;
    if let Poll::Ready(result) = first {
        return result;
    }
    tokio::select! {
        biased;
        result = &mut check => result,
        () = tokio::time::sleep(PATIENCE) => {
            drop(permit);
            check.await
        }
    }
}

/// Why the executors of checks could not be started: an operating-system
/// refusal (threads, file descriptors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartError(pub String);

/// The rayon pool for checks that block, and the network runtime for
/// checks that wait on sockets.
pub(super) struct Runner {
    pool: rayon::ThreadPool,
    threads: usize,
    net: tokio::runtime::Handle,
    /// Ends the network runtime's thread, dropping every check future in
    /// flight (their sockets close).
    net_stop: Option<oneshot::Sender<()>>,
    net_thread: Option<JoinHandle<()>>,
    /// Set on stop: checks queued on the pool and not started yet are not
    /// run.
    cancel: Arc<AtomicBool>,
    /// Network checks started since the last flush.
    batch: Vec<(Arc<dyn Check>, u64, u64)>,
    /// Room for [`STARTING`] network checks starting at once.
    gate: Arc<tokio::sync::Semaphore>,
    sink: Arc<Sink>,
    net_batch: Arc<NetBatch>,
}

/// A check's run has ended: `round` is the round that started it.
pub(super) struct Done {
    pub id: u64,
    pub round: u64,
    pub result: CheckResult,
}

/// Results of network checks gathered on the network thread, handed to
/// the [`Sink`] by one task (see [`hand_over`]) after the checks that are
/// ready to run have run: a round's results cross to the engine's thread
/// in a few batches, not one by one with a lock and a wake-up each.
#[derive(Default)]
struct NetBatch {
    /// Only the network thread takes this lock: it is never contended.
    results: Mutex<Vec<Done>>,
    ready: tokio::sync::Notify,
}

impl NetBatch {
    fn push(&self, done: Done) {
        self.results
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(done);
        self.ready.notify_one();
    }
}

/// The task that hands the network thread's results over to the engine:
/// woken by the first result of a batch, it runs after every task that
/// was ready before it (tokio runs a thread's tasks in the order they were
/// woken), so it takes all their results at once.
async fn hand_over(batch: Arc<NetBatch>, sink: Arc<Sink>) {
    loop {
        batch.ready.notified().await;
        let results =
            std::mem::take(&mut *batch.results.lock().unwrap_or_else(PoisonError::into_inner));
        if !results.is_empty() {
            sink.push_all(results);
        }
    }
}

/// Where results wait for the engine's loop. The loop is woken with one
/// [`Event::Results`] for however many results come in before it looks:
/// a round of ten thousand checks costs a few wake-ups, not ten thousand.
struct Sink {
    results: Mutex<Vec<Done>>,
    /// An `Event::Results` has been sent and not yet answered by `drain`.
    notified: AtomicBool,
    tx: Sender<Event>,
}

impl Sink {
    fn push(&self, done: Done) {
        self.push_all(std::iter::once(done));
    }

    fn push_all(&self, done: impl IntoIterator<Item = Done>) {
        self.results
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(done);
        if !self.notified.swap(true, Ordering::SeqCst) {
            let _ = self.tx.send(Event::Results);
        }
    }

    /// Takes every result in. A push that comes after this sends a new
    /// event, since `notified` is cleared first.
    fn drain(&self) -> Vec<Done> {
        self.notified.store(false, Ordering::SeqCst);
        std::mem::take(&mut *self.results.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Runner {
    /// Starts a pool of `threads` workers and the network runtime.
    ///
    /// # Errors
    /// When the system refuses a thread or the runtime's descriptors.
    pub(super) fn new(threads: usize, tx: Sender<Event>) -> Result<Runner, StartError> {
        let pool = build_pool(threads)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StartError(format!("cannot start the network runtime: {e}")))?;
        let net = runtime.handle().clone();
        let sink = Arc::new(Sink {
            results: Mutex::new(Vec::new()),
            notified: AtomicBool::new(false),
            tx,
        });
        let net_batch = Arc::new(NetBatch::default());
        net.spawn(hand_over(Arc::clone(&net_batch), Arc::clone(&sink)));
        let (net_stop, stopped) = oneshot::channel::<()>();
        let net_thread = std::thread::Builder::new()
            .name("checks-net".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let _ = stopped.await;
                });
                // Drops every check still in flight without waiting.
                runtime.shutdown_background();
            })
            .map_err(|e| StartError(format!("cannot start the network check thread: {e}")))?;
        Ok(Runner {
            pool,
            threads,
            net,
            net_stop: Some(net_stop),
            net_thread: Some(net_thread),
            cancel: Arc::new(AtomicBool::new(false)),
            batch: Vec::new(),
            gate: Arc::new(tokio::sync::Semaphore::new(STARTING)),
            sink,
            net_batch,
        })
    }

    /// Replaces the pool with one of `threads` workers; checks running on
    /// the old one finish there.
    ///
    /// # Errors
    /// When the system refuses the threads; the old pool is kept.
    pub(super) fn resize(&mut self, threads: usize) -> Result<(), StartError> {
        if threads != self.threads {
            self.pool = build_pool(threads)?;
            self.threads = threads;
        }
        Ok(())
    }

    /// Starts one run of `check`; its result comes back through the sink
    /// with `id` and `round`. A check that waits on the `network` is
    /// started, with the others of its round, by [`Runner::flush`].
    pub(super) fn run(&mut self, check: &Arc<dyn Check>, id: u64, round: u64, network: bool) {
        if network {
            self.batch.push((Arc::clone(check), id, round));
            return;
        }
        let sink = Arc::clone(&self.sink);
        let check = Arc::clone(check);
        let cancel = Arc::clone(&self.cancel);
        self.pool.spawn(move || {
            let result = if cancel.load(Ordering::SeqCst) {
                CheckResult::fail("not run: stopping", Duration::ZERO)
            } else {
                contain(|| check.run())
            };
            sink.push(Done { id, round, result });
        });
    }

    /// Starts the network checks of [`Runner::run`] since the last flush:
    /// one wake-up of the network thread for a whole round. There they
    /// start at most [`STARTING`] at a time: a check leaves room for the
    /// next when it ends or after [`PATIENCE`], whichever comes first. So a
    /// round of ten thousand checks neither floods its targets' accept
    /// queues with ten thousand SYNs in the same millisecond nor holds ten
    /// thousand connections' memory at once, and stalled peers delay the
    /// start of the others by [`PATIENCE`] at most. A stop stops the
    /// starts.
    pub(super) fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let (sink, gate, cancel) = (
            Arc::clone(&self.net_batch),
            Arc::clone(&self.gate),
            Arc::clone(&self.cancel),
        );
        self.net.spawn(async move {
            for (check, id, round) in batch {
                let permit = Arc::clone(&gate).acquire_owned().await.ok();
                if cancel.load(Ordering::SeqCst) {
                    return;
                }
                let sink = Arc::clone(&sink);
                tokio::spawn(async move {
                    let result = match check.probe() {
                        Some(future) => paced(Contained::new(future), permit).await,
                        None => CheckResult::fail(
                            "internal error: a network check gave no future",
                            Duration::ZERO,
                        ),
                    };
                    sink.push(Done { id, round, result });
                });
            }
        });
    }

    /// The results that have come in since the last call.
    pub(super) fn results(&self) -> Vec<Done> {
        self.sink.drain()
    }

    /// No check queued on the pool starts from now on.
    pub(super) fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Some(stop) = self.net_stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.net_thread.take() {
            let _ = thread.join();
        }
    }
}

fn build_pool(threads: usize) -> Result<rayon::ThreadPool, StartError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("check-{i}"))
        .build()
        .map_err(|e| StartError(format!("cannot start {threads} check threads: {e}")))
}

thread_local! {
    /// Set while this thread runs a check: a panic is then the check's
    /// failure and is not logged by the hook.
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
    /// The message and location of the last contained panic.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once per process) the panic hook that tells contained panics
/// from the others: inside a check it keeps `MESSAGE at FILE:LINE:COL` for
/// the check's reason; elsewhere it logs `panic in thread NAME at
/// FILE:LINE:COL: MESSAGE` at ERROR (and, when no logger is set up, hands
/// over to the hook it replaced, which prints to stderr).
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = payload_text(info.payload());
            let place = info
                .location()
                .map_or_else(|| "an unknown place".to_owned(), ToString::to_string);
            if CONTAINED.with(Cell::get) {
                CAUGHT.with(|c| *c.borrow_mut() = Some(format!("{message} at {place}")));
                return;
            }
            if log::max_level() == log::LevelFilter::Off {
                previous(info);
                return;
            }
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("unnamed");
            log::error!("panic in thread {name} at {place}: {message}");
        }));
    });
}

pub(super) fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Runs `f` as a contained check: a panic becomes a failing result.
fn contain(f: impl FnOnce() -> CheckResult) -> CheckResult {
    let start = Instant::now();
    let outcome = {
        let _guard = ContainedScope::enter();
        catch_unwind(AssertUnwindSafe(f))
    };
    outcome.unwrap_or_else(|payload| panicked(&*payload, start))
}

/// The failing result of a check that panicked.
fn panicked(payload: &(dyn Any + Send), start: Instant) -> CheckResult {
    let what = CAUGHT
        .with(|c| c.borrow_mut().take())
        .unwrap_or_else(|| payload_text(payload));
    CheckResult::fail(format!("internal error: {what}"), start.elapsed())
}

/// Marks this thread as running a check until dropped (also on unwind).
struct ContainedScope {
    outer: bool,
}

impl ContainedScope {
    fn enter() -> ContainedScope {
        ContainedScope {
            outer: CONTAINED.with(|c| c.replace(true)),
        }
    }
}

impl Drop for ContainedScope {
    fn drop(&mut self) {
        CONTAINED.with(|c| c.set(self.outer));
    }
}

/// A check future whose panics become its failing result.
struct Contained {
    future: Option<Pin<Box<dyn Future<Output = CheckResult> + Send>>>,
    start: Instant,
}

impl Contained {
    fn new(future: Pin<Box<dyn Future<Output = CheckResult> + Send>>) -> Contained {
        Contained {
            future: Some(future),
            start: Instant::now(),
        }
    }
}

impl Future for Contained {
    type Output = CheckResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CheckResult> {
        let Some(future) = self.future.as_mut() else {
            return Poll::Ready(CheckResult::fail(
                "internal error: polled after completion",
                Duration::ZERO,
            ));
        };
        let polled = {
            let _guard = ContainedScope::enter();
            catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)))
        };
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => {
                self.future = None;
                Poll::Ready(result)
            }
            Err(payload) => {
                // A future that panicked is not polled again.
                self.future = None;
                Poll::Ready(panicked(&*payload, self.start))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_a_check_is_its_failure_with_the_place() {
        install_panic_hook();
        let result = contain(|| panic!("boom {}", 7));
        assert!(!result.healthy);
        assert!(
            result
                .reason
                .starts_with("internal error: boom 7 at src/engine/runner.rs:"),
            "{}",
            result.reason
        );
        // The thread is no longer marked: a later panic is not a check's.
        assert!(!CONTAINED.with(Cell::get));
    }

    #[test]
    fn a_panicking_future_is_its_failure() {
        install_panic_hook();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let result = runtime.block_on(Contained::new(Box::pin(async {
            tokio::task::yield_now().await;
            panic!("late");
        })));
        assert!(
            result.reason.starts_with("internal error: late at "),
            "{result:?}"
        );
    }
}
