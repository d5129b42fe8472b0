//! Name resolution that no name can hold up for another.
//!
//! The system resolver (`getaddrinfo`) blocks and takes no timeout: a DNS
//! server that never answers holds the calling thread for as long as
//! `/etc/resolv.conf` says (5 s per try and server by default, often far
//! longer than a check's `timeout`). So a lookup is answered, in order:
//!
//! 1. at once for an IP literal (`192.0.2.1`, `::1`, `[::1]`);
//! 2. at once for a name in `/etc/hosts`, read as NSS's `files` source
//!    reads it (re-read when the file changes, looked at most once a
//!    second), so `localhost` never waits behind DNS;
//! 3. from a cache of recent answers, kept [`CACHE_TTL`] (an address, or
//!    "no such host");
//! 4. otherwise by `getaddrinfo` on a resolver thread. Lookups of one name
//!    are shared: however many checks and rounds ask for a name, one lookup
//!    of it runs at a time, and every caller waiting gets its answer. Each
//!    name in flight has a thread of its own (up to [`MAX_THREADS`]), so a
//!    name whose DNS hangs holds one thread and delays no other name.
//!    Threads are started on demand and end after [`IDLE_EXIT`] without
//!    work: none is started per check or per round.
//!
//! Callers wait asynchronously ([`lookup`] is a future) and bound the wait
//! themselves: a check gives up at its deadline with `name resolution timed
//! out after 2s`, and a lookup that outlives every caller finishes on its
//! thread and only fills the cache.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

/// How long an answer from DNS is reused: short, so a changed record is
/// seen within a few rounds, long enough that checks of one name every
/// second do not query it every second.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// Most resolver threads at once, hence most distinct names resolved at
/// once; further names wait for a thread.
pub const MAX_THREADS: usize = 128;

/// A resolver thread with nothing to do for this long ends.
pub const IDLE_EXIT: Duration = Duration::from_secs(10);

/// The hosts file is looked at (its modification time) at most this often.
const HOSTS_RECHECK: Duration = Duration::from_secs(1);

/// Why a name could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// The name does not exist or has no address.
    NoSuchHost,
    /// Any other failure, with a short lower-case description
    /// (`temporary failure in name resolution`, …).
    Failed(String),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::NoSuchHost => f.write_str("no such host"),
            ResolveError::Failed(why) => write!(f, "name resolution failed: {why}"),
        }
    }
}

impl std::error::Error for ResolveError {}

/// The outcome of one lookup, shared by every caller waiting for it.
type Answer = Result<Arc<Vec<IpAddr>>, ResolveError>;

/// Resolves `host` (a name or an IP literal, IPv6 with or without brackets)
/// to socket addresses on `port`, in the order the system prefers, without
/// duplicates and never empty on success. See the module documentation for
/// where the answer comes from. Never blocks the calling thread; the caller
/// bounds the wait.
///
/// # Errors
/// [`ResolveError::NoSuchHost`] when the name has no address (or is
/// empty), [`ResolveError::Failed`] for other resolver failures.
pub async fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
    let with_port = |ips: &[IpAddr]| ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
    if let Some(ip) = ip_literal(host) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if host.is_empty() {
        return Err(ResolveError::NoSuchHost);
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if let Some(ips) = hosts_file(&name) {
        return Ok(with_port(&ips));
    }
    let answer = match Resolver::get().ask(&name) {
        Asked::Cached(answer) => answer,
        Asked::Waiting(reply) => reply.await.unwrap_or_else(|_| {
            // The thread died before answering (it cannot panic on its
            // own: only a failing allocation could do this).
            Err(ResolveError::Failed("the resolver thread ended".into()))
        }),
    };
    answer.map(|ips| with_port(&ips))
}

/// `host` as an IP address if it is one: `192.0.2.1`, `::1` or `[::1]`.
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// What [`Resolver::ask`] gives: a fresh cached answer, or a channel on
/// which the answer of the lookup in flight will come.
enum Asked {
    Cached(Answer),
    Waiting(oneshot::Receiver<Answer>),
}

/// The resolver threads, the names queued for them, the lookups in flight
/// and the cache, behind one lock that is never held across a lookup.
struct Resolver {
    state: Mutex<State>,
    work: Condvar,
}

#[derive(Default)]
struct State {
    /// Names queued or being resolved, each with the callers waiting.
    inflight: HashMap<String, Vec<oneshot::Sender<Answer>>>,
    /// Names waiting for a thread.
    queue: VecDeque<String>,
    /// Recent answers and when they were given.
    cache: HashMap<String, (Instant, Answer)>,
    /// Resolver threads alive, and how many of them wait for work.
    threads: usize,
    idle: usize,
}

impl Resolver {
    fn get() -> &'static Resolver {
        static RESOLVER: OnceLock<Resolver> = OnceLock::new();
        RESOLVER.get_or_init(|| Resolver {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A cached answer for `name`, or a place in the queue of callers of
    /// its lookup, starting one (and a thread for it) when none runs.
    fn ask(&'static self, name: &str) -> Asked {
        let mut state = self.lock();
        if let Some((at, answer)) = state.cache.get(name) {
            if at.elapsed() < CACHE_TTL {
                return Asked::Cached(answer.clone());
            }
        }
        let (tx, rx) = oneshot::channel();
        match state.inflight.entry(name.to_owned()) {
            Entry::Occupied(mut waiting) => waiting.get_mut().push(tx),
            Entry::Vacant(e) => {
                e.insert(vec![tx]);
                state.queue.push_back(name.to_owned());
                // Every queued name needs a thread of its own: one whose
                // lookup hangs must not hold up the next.
                let waiting = state.queue.len();
                if waiting > state.idle && state.threads < MAX_THREADS && self.spawn_thread() {
                    state.threads += 1;
                }
                self.work.notify_one();
            }
        }
        Asked::Waiting(rx)
    }

    /// Starts one more resolver thread; `false` when the system refuses
    /// (the names then wait for a thread that runs).
    fn spawn_thread(&'static self) -> bool {
        thread::Builder::new()
            .name("resolver".into())
            .stack_size(256 * 1024)
            .spawn(move || self.worker())
            .is_ok()
    }

    /// One resolver thread: resolves queued names until it has been idle
    /// for [`IDLE_EXIT`].
    fn worker(&self) {
        let mut state = self.lock();
        loop {
            let Some(name) = state.queue.pop_front() else {
                state.idle += 1;
                let (next, waited) = self
                    .work
                    .wait_timeout(state, IDLE_EXIT)
                    .unwrap_or_else(|p| p.into_inner());
                state = next;
                state.idle -= 1;
                if waited.timed_out() && state.queue.is_empty() {
                    state.threads -= 1;
                    return;
                }
                continue;
            };
            drop(state);
            let answer = system_lookup(&name);
            state = self.lock();
            if matches!(answer, Ok(_) | Err(ResolveError::NoSuchHost)) {
                if state.cache.len() >= 4096 {
                    state.cache.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
                }
                state
                    .cache
                    .insert(name.clone(), (Instant::now(), answer.clone()));
            }
            for waiter in state.inflight.remove(&name).unwrap_or_default() {
                // A caller that gave up has dropped its receiver.
                let _ = waiter.send(answer.clone());
            }
        }
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

/// The addresses `/etc/hosts` gives `name` (lower case, no trailing dot),
/// in file order, if it names it.
fn hosts_file(name: &str) -> Option<Vec<IpAddr>> {
    static HOSTS: OnceLock<Mutex<Hosts>> = OnceLock::new();
    let hosts = HOSTS.get_or_init(|| Mutex::new(Hosts::default()));
    let mut hosts = hosts.lock().unwrap_or_else(|p| p.into_inner());
    hosts.refresh(Path::new("/etc/hosts"));
    hosts.names.get(name).cloned()
}

/// The hosts file as last read.
#[derive(Default)]
struct Hosts {
    names: HashMap<String, Vec<IpAddr>>,
    modified: Option<SystemTime>,
    checked: Option<Instant>,
}

impl Hosts {
    /// Rereads `path` when its modification time changed, looking at most
    /// once per [`HOSTS_RECHECK`]. A missing file names nothing.
    fn refresh(&mut self, path: &Path) {
        if self.checked.is_some_and(|at| at.elapsed() < HOSTS_RECHECK) {
            return;
        }
        self.checked = Some(Instant::now());
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if modified == self.modified && modified.is_some() {
            return;
        }
        self.modified = modified;
        self.names = std::fs::read_to_string(path)
            .map(|text| parse_hosts(&text))
            .unwrap_or_default();
    }
}

/// hosts(5): `ADDRESS NAME [ALIAS…]` per line, `#` starts a comment; names
/// are case-insensitive. Lines whose address does not parse are skipped.
fn parse_hosts(text: &str) -> HashMap<String, Vec<IpAddr>> {
    let mut names: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        let Some(ip) = fields.next().and_then(|a| a.parse::<IpAddr>().ok()) else {
            continue;
        };
        for name in fields {
            let ips = names
                .entry(name.trim_end_matches('.').to_ascii_lowercase())
                .or_default();
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(lookup(host, port))
    }

    #[test]
    fn ip_literals_resolve_at_once() {
        assert_eq!(
            resolve("127.0.0.1", 80),
            Ok(vec!["127.0.0.1:80".parse().unwrap()])
        );
        assert_eq!(resolve("::1", 443), Ok(vec!["[::1]:443".parse().unwrap()]));
        assert_eq!(
            resolve("[::1]", 443),
            Ok(vec!["[::1]:443".parse().unwrap()])
        );
    }

    #[test]
    fn localhost_resolves_to_loopback() {
        let addrs = resolve("localhost", 8080).expect("localhost resolves");
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.port() == 8080 && a.ip().is_loopback())
        );
    }

    #[test]
    fn empty_names_are_no_such_host() {
        assert_eq!(resolve("", 80), Err(ResolveError::NoSuchHost));
    }

    #[test]
    fn the_hosts_file_is_read_as_nss_files_reads_it() {
        let names = parse_hosts(
            "# comment\n127.0.0.1\tlocalhost\n::1 localhost ip6-localhost # trailing\n\
             192.0.2.7 Db.Example.  db\nnot-an-ip broken\n192.0.2.8 db\n",
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(names["localhost"], [ip("127.0.0.1"), ip("::1")]);
        assert_eq!(names["ip6-localhost"], [ip("::1")]);
        assert_eq!(names["db.example"], [ip("192.0.2.7")]);
        assert_eq!(names["db"], [ip("192.0.2.7"), ip("192.0.2.8")]);
        assert!(!names.contains_key("broken"));
        assert!(!names.contains_key("trailing"));
    }
}
