//! The `[cluster]` section as the engine and the cluster use it: which
//! action groups are exclusive across nodes, the etcd endpoints, this
//! node's name, and the lease whose timing every safety rule derives from.
//!
//! The rules of time live here, as pure functions, because the
//! configuration validates with them and the cluster acts on them (see
//! [`crate::cluster`] for the whole argument):
//!
//! - a lease of TTL `lease` is renewed every third of it (as etcd's own
//!   clients do);
//! - an action of an exclusive group ends within its [`action_bound`]:
//!   `action_timeout`, then SIGTERM, then SIGKILL
//!   [`EXCLUSIVE_KILL_GRACE`] later;
//! - the node keeps a [`lease_margin`] between the end of its demotion and
//!   the earliest moment etcd could let the lease expire;
//! - [`action_fits`]: `action_bound + margin <= lease / 3`, so that a
//!   promotion started just before a renewal that fails, and the demotion
//!   after it, both end before the lease can expire, with a third of the
//!   lease left for retrying the renewal on other endpoints.

use std::path::PathBuf;
use std::time::Duration;

/// Time between SIGTERM and SIGKILL for an action of an exclusive group
/// (other groups get [`crate::exec::actions::KILL_GRACE`]): short, since
/// the whole action must end within a fraction of the lease.
pub const EXCLUSIVE_KILL_GRACE: Duration = Duration::from_millis(500);

/// The smallest [`lease_margin`].
pub const MIN_LEASE_MARGIN: Duration = Duration::from_millis(250);

/// `lease` when `[cluster]` does not set it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// `prefix` when `[cluster]` does not set it.
pub const DEFAULT_PREFIX: &str = "/heartbeat";

/// The port of an etcd endpoint that names none: etcd's client port.
pub const DEFAULT_ETCD_PORT: u16 = 2379;

/// The `[cluster]` section, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// The etcd members to talk to (`etcd`), at least one, each once.
    pub endpoints: Vec<EtcdEndpoint>,
    /// Certificates for `https://` endpoints (`ca_file`, `cert_file`,
    /// `key_file`), absolute after loading.
    pub tls: EtcdTls,
    /// This node's name (`node`; the host name by default): the value of
    /// its leader key, `HEARTBEAT_LEADER` on the other nodes. Letters,
    /// digits, `.`, `_` and `-`, at most [`MAX_NODE_NAME`] bytes.
    pub node: String,
    /// The lease's TTL (`lease`), a whole number of seconds since etcd
    /// counts TTLs in seconds.
    pub lease: Duration,
    /// The key prefix (`prefix`): starts with `/`, does not end with one.
    /// Group `g` is elected under `{prefix}/{g}` (etcd's election name).
    pub prefix: String,
    /// The exclusive action groups (`groups`), each a group of
    /// `[promotions]`, in the order given.
    pub groups: Vec<String>,
}

impl ClusterSpec {
    /// Whether the action group `name` is exclusive across the cluster.
    pub fn is_exclusive(&self, name: &str) -> bool {
        self.groups.iter().any(|g| g == name)
    }

    /// The election name of group `name`: `{prefix}/{name}`. etcd puts
    /// each candidate's key under it (`{prefix}/{name}/{lease id in hex}`).
    pub fn election(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }
}

/// The longest node name, in bytes (a DNS name's limit).
pub const MAX_NODE_NAME: usize = 253;

/// Whether `name` can be a node's name: 1 to [`MAX_NODE_NAME`] bytes of
/// ASCII letters, digits, `.`, `_` and `-`. Names read back from etcd are
/// held to the same rule before they reach a hook's environment or a log.
pub fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NODE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One etcd member's client URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EtcdEndpoint {
    /// `https://` rather than `http://`.
    pub https: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// The client port.
    pub port: u16,
}

impl std::fmt::Display for EtcdEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}", super::host_port(&self.host, self.port))
    }
}

/// TLS for `https://` endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EtcdTls {
    /// PEM CA certificates trusted in addition to the system's.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) and its PKCS#8 PEM private key, for
    /// mutual TLS (etcd's `--client-cert-auth`). Both or neither.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// The margin kept between the end of a demotion forced by a lost lease
/// and the earliest moment etcd may expire that lease: a tenth of the
/// lease, at least [`MIN_LEASE_MARGIN`].
///
/// It covers the difference in rate between this node's monotonic clock
/// and the etcd leader's (at most 0.1 %, two clocks disciplined by NTP to
/// 500 ppm each), and the lateness of a timer, a thread or a `fork` on a
/// loaded host. etcd's own lateness (its lessor looks for expired leases
/// every 500 ms) only lengthens the lease and needs no margin.
pub fn lease_margin(lease: Duration) -> Duration {
    (lease / 10).max(MIN_LEASE_MARGIN)
}

/// How long an action of an exclusive group can run at most:
/// `action_timeout`, then [`EXCLUSIVE_KILL_GRACE`] between SIGTERM and
/// SIGKILL.
pub fn action_bound(action_timeout: Duration) -> Duration {
    action_timeout + EXCLUSIVE_KILL_GRACE
}

/// Whether `action_timeout` leaves time for the safety rule with `lease`:
/// `action_bound(action_timeout) + lease_margin(lease) <= lease / 3`.
pub fn action_fits(lease: Duration, action_timeout: Duration) -> bool {
    action_bound(action_timeout) + lease_margin(lease) <= lease / 3
}

/// The longest `action_timeout` that fits `lease` ([`action_fits`]), if
/// any does.
pub fn longest_action_timeout(lease: Duration) -> Option<Duration> {
    (lease / 3)
        .checked_sub(lease_margin(lease))?
        .checked_sub(EXCLUSIVE_KILL_GRACE)
        .filter(|d| !d.is_zero())
}

/// The shortest lease, in whole seconds, that `action_timeout` fits
/// ([`action_fits`]).
pub fn shortest_lease(action_timeout: Duration) -> Duration {
    // action_fits is monotonic in the lease: walk up whole seconds.
    (1..=u64::from(u32::MAX))
        .map(Duration::from_secs)
        .find(|&lease| action_fits(lease, action_timeout))
        .unwrap_or(Duration::MAX)
}

/// The role of an exclusive action group on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Not known yet: the group's checks, or the store, have not answered.
    Unknown,
    /// Healthy here and elected: its promotion is this node's to run.
    Active,
    /// Healthy here, and another node leads (or none does yet): it runs its
    /// demotion with `HEARTBEAT_STATE=standby`.
    Standby,
    /// Unhealthy here: it does not campaign, and runs its demotion.
    Unhealthy,
    /// Healthy here, but etcd cannot be reached or has no quorum: this node
    /// cannot know who leads, so it never promotes.
    NoQuorum,
}

impl Role {
    /// Every role, in the order of the documentation.
    pub const ALL: [Role; 5] = [
        Role::Unknown,
        Role::Active,
        Role::Standby,
        Role::Unhealthy,
        Role::NoQuorum,
    ];

    /// `unknown`, `active`, `standby`, `unhealthy` or `no quorum`: the
    /// word of logs, `/status`, `heartbeat status` and the metrics' `role`
    /// label (`no_quorum` there, see [`Role::label`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Unknown => "unknown",
            Role::Active => "active",
            Role::Standby => "standby",
            Role::Unhealthy => "unhealthy",
            Role::NoQuorum => "no quorum",
        }
    }

    /// The word as a metric label value: [`Role::as_str`] with `_` for
    /// the space.
    pub fn label(self) -> &'static str {
        match self {
            Role::NoQuorum => "no_quorum",
            other => other.as_str(),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_default_lease_takes_actions_of_up_to_1_83_s() {
        // 10 s / 3 = 3.333 s, less a margin of 1 s, less the 0.5 s kill
        // grace.
        assert_eq!(lease_margin(10 * S), S);
        let longest = longest_action_timeout(10 * S).unwrap();
        assert_eq!(longest.as_millis(), 1833);
        assert!(action_fits(10 * S, longest));
        assert!(!action_fits(10 * S, longest + Duration::from_millis(1)));
        // The default action_timeout of 60 s needs a lease of 60.5 s / (1/3
        // - 1/10) = 259.3 s: 260 s.
        assert_eq!(shortest_lease(60 * S), 260 * S);
        assert!(action_fits(260 * S, 60 * S));
        assert!(!action_fits(259 * S, 60 * S));
    }

    #[test]
    fn short_leases_keep_a_margin_of_at_least_250_ms() {
        assert_eq!(lease_margin(S), MIN_LEASE_MARGIN);
        assert_eq!(lease_margin(3 * S), Duration::from_millis(300));
        // 1 s / 3 less 250 ms leaves less than the kill grace.
        assert_eq!(longest_action_timeout(S), None);
        assert_eq!(longest_action_timeout(2 * S), None);
        assert_eq!(
            longest_action_timeout(4 * S),
            Some(Duration::from_nanos(433_333_333))
        );
        assert_eq!(shortest_lease(Duration::from_millis(400)), 4 * S);
    }

    #[test]
    fn node_names_are_host_name_characters() {
        assert!(valid_node_name("db-1.example_org"));
        for bad in ["", "a b", "a/b", "é", "a\nb", &"x".repeat(254)] {
            assert!(!valid_node_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn election_names_and_endpoints_read_as_written() {
        let spec = ClusterSpec {
            endpoints: vec![EtcdEndpoint {
                https: true,
                host: "::1".into(),
                port: 2379,
            }],
            tls: EtcdTls::default(),
            node: "a".into(),
            lease: DEFAULT_LEASE,
            prefix: DEFAULT_PREFIX.into(),
            groups: vec!["vip".into()],
        };
        assert_eq!(spec.election("vip"), "/heartbeat/vip");
        assert_eq!(spec.endpoints[0].to_string(), "https://[::1]:2379");
        assert!(spec.is_exclusive("vip") && !spec.is_exclusive("web"));
    }
}
