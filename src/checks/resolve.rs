//! Name resolution with a deadline.
//!
//! The system resolver (`getaddrinfo`) blocks and takes no timeout: a DNS
//! server that never answers holds the calling thread for as long as
//! `/etc/resolv.conf` says, often far longer than a check's `timeout`. So
//! host names are resolved by a small, fixed pool of threads fed by a
//! channel, started on the first lookup, and the check only waits for the
//! answer until its own deadline. A lookup that outlives its caller finishes
//! on the pool thread and is discarded; no thread is spawned per check.
//!
//! Concurrent lookups of the same name share one pool job, so a name whose
//! lookups hang occupies at most one pool thread however many checks and
//! rounds ask for it. IP literals never reach the pool.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::Instant;

/// Number of resolver threads. Enough for a few slow names at once without
/// holding idle threads a health-check daemon does not need.
const POOL_THREADS: usize = 4;

/// Why a name could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// The name does not exist or has no address.
    NoSuchHost,
    /// No answer before the caller's deadline.
    TimedOut,
    /// Any other failure, with a short lower-case description
    /// (`temporary failure in name resolution`, …).
    Failed(String),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::NoSuchHost => f.write_str("no such host"),
            ResolveError::TimedOut => f.write_str("name resolution timed out"),
            ResolveError::Failed(why) => write!(f, "name resolution failed: {why}"),
        }
    }
}

impl std::error::Error for ResolveError {}

/// Resolves `host` (a name or an IP literal, IPv6 with or without brackets)
/// to socket addresses on `port`, in the order the system resolver prefers,
/// without duplicates and never empty on success.
///
/// An IP literal is returned at once. A name is handed to the resolver pool
/// and waited for until `deadline` at the latest.
///
/// # Errors
/// [`ResolveError::TimedOut`] when `deadline` passes first (or has already
/// passed), [`ResolveError::NoSuchHost`] when the name has no address, and
/// [`ResolveError::Failed`] for other resolver failures.
pub fn resolve(host: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, ResolveError> {
    if let Some(ip) = ip_literal(host) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if host.is_empty() {
        return Err(ResolveError::NoSuchHost);
    }
    let ips = Pool::get().lookup(host, deadline)?;
    Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect())
}

/// `host` as an IP address if it is one: `192.0.2.1`, `::1` or `[::1]`.
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// The outcome of one lookup, shared by every caller waiting for it.
type Answer = Result<Arc<Vec<IpAddr>>, ResolveError>;

/// A caller waiting for a name: where to send the answer, and until when
/// it still wants it.
struct Waiter {
    deadline: Instant,
    reply: Sender<Answer>,
}

/// The resolver threads, the queue feeding them and the lookups in flight.
struct Pool {
    /// Names queued or being resolved, each with the callers waiting for it.
    inflight: Mutex<HashMap<String, Vec<Waiter>>>,
    /// The queue of names to resolve. `None` if no thread could be started.
    jobs: Option<Mutex<Sender<String>>>,
}

impl Pool {
    /// The process-wide pool, started on first use.
    fn get() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(Pool::start)
    }

    fn start() -> Pool {
        let (tx, rx) = mpsc::channel::<String>();
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..POOL_THREADS {
            let rx = Arc::clone(&rx);
            let spawned = thread::Builder::new()
                .name(format!("resolver-{i}"))
                .spawn(move || worker(&rx));
            if spawned.is_ok() {
                started += 1;
            }
        }
        Pool {
            inflight: Mutex::new(HashMap::new()),
            jobs: (started > 0).then(|| Mutex::new(tx)),
        }
    }

    fn lookup(&self, host: &str, deadline: Instant) -> Result<Arc<Vec<IpAddr>>, ResolveError> {
        let Some(jobs) = &self.jobs else {
            return Err(ResolveError::Failed("no resolver thread".into()));
        };
        if Instant::now() >= deadline {
            return Err(ResolveError::TimedOut);
        }
        let (reply, answer) = mpsc::channel();
        let waiter = Waiter { deadline, reply };
        let enqueue = match lock(&self.inflight).entry(host.to_owned()) {
            Entry::Occupied(mut e) => {
                e.get_mut().push(waiter);
                false
            }
            Entry::Vacant(e) => {
                e.insert(vec![waiter]);
                true
            }
        };
        if enqueue && lock(jobs).send(host.to_owned()).is_err() {
            lock(&self.inflight).remove(host);
            return Err(ResolveError::Failed("resolver threads stopped".into()));
        }
        wait(&answer, deadline)
    }

    /// Hands the answer for `host` to everyone waiting for it.
    fn answer(&self, host: &str, answer: &Answer) {
        let waiters = lock(&self.inflight).remove(host).unwrap_or_default();
        for w in waiters {
            // A waiter that gave up has dropped its receiver: nothing to do.
            let _ = w.reply.send(answer.clone());
        }
    }

    /// Whether anyone still wants `host` resolved. If not, forgets it.
    fn still_wanted(&self, host: &str) -> bool {
        let now = Instant::now();
        let mut inflight = lock(&self.inflight);
        let wanted = inflight
            .get(host)
            .is_some_and(|ws| ws.iter().any(|w| w.deadline > now));
        if !wanted {
            inflight.remove(host);
        }
        wanted
    }
}

fn wait(answer: &Receiver<Answer>, deadline: Instant) -> Answer {
    let left = deadline.saturating_duration_since(Instant::now());
    match answer.recv_timeout(left) {
        Ok(a) => a,
        Err(RecvTimeoutError::Timeout) => Err(ResolveError::TimedOut),
        Err(RecvTimeoutError::Disconnected) => {
            Err(ResolveError::Failed("resolver thread stopped".into()))
        }
    }
}

/// One resolver thread: takes names off the queue until the queue closes.
fn worker(jobs: &Mutex<Receiver<String>>) {
    loop {
        let host = match lock(jobs).recv() {
            Ok(h) => h,
            Err(_) => return,
        };
        let pool = Pool::get();
        // Skip names whose callers have all given up, so a backlog built
        // while lookups hang drains without querying anyone.
        if !pool.still_wanted(&host) {
            continue;
        }
        let answer = system_lookup(&host);
        pool.answer(&host, &answer);
    }
}

/// Asks the system resolver, keeping its order and dropping duplicates.
fn system_lookup(host: &str) -> Answer {
    let addrs = (host, 0).to_socket_addrs().map_err(|e| classify(&e))?;
    let mut ips: Vec<IpAddr> = Vec::new();
    for a in addrs {
        if !ips.contains(&a.ip()) {
            ips.push(a.ip());
        }
    }
    if ips.is_empty() {
        return Err(ResolveError::NoSuchHost);
    }
    Ok(Arc::new(ips))
}

/// Turns a `getaddrinfo` failure into a [`ResolveError`]. The standard
/// library reports them as `failed to lookup address information: DETAIL`
/// where DETAIL is the `gai_strerror` text.
fn classify(e: &std::io::Error) -> ResolveError {
    let text = e.to_string();
    let detail = text
        .strip_prefix("failed to lookup address information: ")
        .unwrap_or(&text);
    let lower = detail.to_ascii_lowercase();
    if lower.contains("not known")
        || lower.contains("no address associated")
        || lower.contains("non-recoverable")
    {
        ResolveError::NoSuchHost
    } else {
        ResolveError::Failed(lower)
    }
}

/// Locks a mutex, carrying on if a previous holder panicked: the data
/// guarded here stays consistent between statements.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn ip_literals_resolve_without_the_pool() {
        assert_eq!(
            resolve("127.0.0.1", 80, soon()),
            Ok(vec!["127.0.0.1:80".parse().unwrap()])
        );
        assert_eq!(
            resolve("::1", 443, soon()),
            Ok(vec!["[::1]:443".parse().unwrap()])
        );
        assert_eq!(
            resolve("[::1]", 443, soon()),
            Ok(vec!["[::1]:443".parse().unwrap()])
        );
    }

    #[test]
    fn ip_literals_ignore_a_past_deadline() {
        let past = Instant::now();
        assert!(resolve("10.0.0.1", 1, past).is_ok());
    }

    #[test]
    fn names_with_a_past_deadline_time_out() {
        assert_eq!(
            resolve("localhost", 80, Instant::now()),
            Err(ResolveError::TimedOut)
        );
    }

    #[test]
    fn localhost_resolves_through_the_pool() {
        let addrs = resolve("localhost", 8080, soon()).expect("localhost resolves");
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.port() == 8080 && a.ip().is_loopback())
        );
    }

    #[test]
    fn empty_names_are_no_such_host() {
        assert_eq!(resolve("", 80, soon()), Err(ResolveError::NoSuchHost));
    }
}
