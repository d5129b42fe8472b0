//! The election against a real etcd, in-process: two nodes' clusters
//! share one etcd, and the test plays the engine (their stances) and
//! reads their reports.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use heartbeat::cluster::{Cluster, Report, Stance, Standing, Why};
use heartbeat::model::{ClusterSpec, EtcdEndpoint, EtcdTls, action_bound, lease_margin};

use crate::support::etcd::{self, Etcd, Pki};
use crate::support::poll::wait_until;
use crate::support::proxy::Proxy;

const LEASE: Duration = Duration::from_secs(3);
const ACTION_TIMEOUT: Duration = Duration::from_millis(200);

const CAMPAIGN: Stance = Stance {
    campaign: true,
    promoted: false,
};

/// A node: its cluster and the reports it made, each with when it came.
struct Node {
    cluster: Option<Cluster>,
    reports: Arc<Mutex<Vec<(Instant, Report)>>>,
}

impl Node {
    fn start(name: &str, endpoints: &[String]) -> Node {
        Node::start_with(name, endpoints, EtcdTls::default())
    }

    fn start_with(name: &str, endpoints: &[String], tls: EtcdTls) -> Node {
        let spec = ClusterSpec {
            endpoints: endpoints.iter().map(|url| endpoint(url)).collect(),
            tls,
            node: name.into(),
            lease: LEASE,
            prefix: "/hb-test".into(),
            groups: vec!["vip".into()],
        };
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&reports);
        let cluster = Cluster::start(
            &spec,
            ACTION_TIMEOUT,
            Arc::new(move |r| sink.lock().unwrap().push((Instant::now(), r))),
        )
        .expect("start the cluster");
        Node {
            cluster: Some(cluster),
            reports,
        }
    }

    fn set(&self, stance: Stance) {
        self.cluster.as_ref().unwrap().set_stance("vip", stance);
    }

    fn last(&self) -> Option<Report> {
        self.reports.lock().unwrap().last().map(|r| r.1.clone())
    }

    /// Waits for a report of `standing`; when it came.
    fn wait(&self, standing: Standing, within: Duration) -> Instant {
        let found = || {
            self.reports
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|r| r.1.standing == standing)
                .map(|r| r.0)
        };
        assert!(
            wait_until(within, || found().is_some()),
            "no {standing:?} report within {within:?}: {:#?}",
            self.reports.lock().unwrap()
        );
        found().unwrap()
    }

    fn count(&self) -> usize {
        self.reports.lock().unwrap().len()
    }

    fn may_promote(&self) -> bool {
        self.cluster.as_ref().unwrap().may_promote("vip")
    }
}

fn endpoint(url: &str) -> EtcdEndpoint {
    let port = url.rsplit(':').next().unwrap().parse().unwrap();
    EtcdEndpoint {
        https: url.starts_with("https:"),
        host: "127.0.0.1".into(),
        port,
    }
}

fn skip() -> bool {
    if !etcd::available() {
        eprintln!("skipped: {} is not installed", etcd::ETCD);
        return true;
    }
    false
}

#[test]
fn one_node_is_elected_and_a_resignation_elects_the_next_at_once() {
    if skip() {
        return;
    }
    let etcd = Etcd::start(1);
    let urls = vec![etcd.members[0].url()];
    let a = Node::start("node-a", &urls);
    let b = Node::start("node-b", &urls);
    a.set(CAMPAIGN);
    a.wait(Standing::Elected, Duration::from_secs(10));
    assert!(a.may_promote());
    let elected = a.last().unwrap();
    assert_eq!(
        (elected.why, elected.leader.as_deref()),
        (Why::Elected, Some("node-a"))
    );

    b.set(CAMPAIGN);
    assert!(
        wait_until(Duration::from_secs(10), || {
            b.last().is_some_and(|r| {
                r.standing == Standing::Follower && r.leader.as_deref() == Some("node-a")
            })
        }),
        "{:?}",
        b.last()
    );
    assert!(!b.may_promote());
    // Both candidates' keys, the leader's first, each holding its node.
    let keys = etcd.keys("/hb-test/vip/");
    let values: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
    assert_eq!(values, ["node-a", "node-b"], "{keys:?}");

    // Unhealthy while its promotion is in effect: it keeps its lease
    // until the demotion has ended.
    a.set(Stance {
        campaign: false,
        promoted: true,
    });
    std::thread::sleep(LEASE);
    assert_eq!(a.last().unwrap().standing, Standing::Elected);
    assert_eq!(b.last().unwrap().standing, Standing::Follower);

    // Demoted: it resigns, and the next candidate is elected without
    // waiting for the lease.
    let resigned = Instant::now();
    a.set(Stance::default());
    let took = b.wait(Standing::Elected, Duration::from_secs(5)) - resigned;
    assert!(
        took < LEASE / 2,
        "the next node was elected {took:?} after the resignation"
    );
    let said = a.last().unwrap();
    assert_eq!(
        (said.standing, said.why),
        (Standing::Follower, Why::Resigned)
    );
    assert!(!a.may_promote() && b.may_promote());
    a.wait(Standing::Follower, Duration::from_secs(5));
    assert!(
        wait_until(Duration::from_secs(5), || a
            .last()
            .unwrap()
            .leader
            .as_deref()
            == Some("node-b")),
        "{:?}",
        a.last()
    );

    // Stopping revokes: no key is left behind.
    drop(b);
    drop(a);
    assert_eq!(etcd.keys("/hb-test/vip/"), []);
}

/// The leader cut off from etcd reports its lease lost before etcd can
/// expire it, early enough for its demotion (`action_bound`) to end
/// before the other node is elected.
#[test]
fn a_leader_cut_off_from_etcd_gives_up_before_the_next_is_elected() {
    if skip() {
        return;
    }
    let etcd = Etcd::start(1);
    let target = format!("127.0.0.1:{}", etcd.members[0].client)
        .parse()
        .unwrap();
    let mut proxy = Proxy::start(target);
    let a = Node::start("node-a", &[proxy.url()]);
    a.set(CAMPAIGN);
    a.wait(Standing::Elected, Duration::from_secs(10));
    let b = Node::start("node-b", &[etcd.members[0].url()]);
    b.set(CAMPAIGN);
    b.wait(Standing::Follower, Duration::from_secs(10));

    let reports_before = a.count();
    let cut = Instant::now();
    proxy.cut();
    let lost = a.wait(Standing::Unreachable, LEASE * 2);
    let report = a.last().unwrap();
    assert_eq!(report.why, Why::LeaseLost, "{report:?}");
    assert_eq!(a.count(), reports_before + 1);
    assert!(!a.may_promote());
    let elected = b.wait(Standing::Elected, LEASE * 3);

    // The last renewal went out at most a third of the lease before the
    // cut; the node gives up margin + bound before the lease ends.
    let (margin, bound) = (lease_margin(LEASE), action_bound(ACTION_TIMEOUT));
    let gave_up_after = lost - cut;
    assert!(
        gave_up_after <= LEASE - margin - bound + Duration::from_millis(300),
        "gave up {gave_up_after:?} after the cut"
    );
    assert!(
        elected - lost >= bound + margin,
        "elected {:?} after the old leader gave up: less than its demotion's {bound:?} and the \
         margin {margin:?}",
        elected - lost
    );
    // etcd's lessor looks every 500 ms; campaign and checks take a little.
    assert!(
        elected - cut <= LEASE + Duration::from_millis(1500),
        "the next node was elected {:?} after the cut",
        elected - cut
    );
    eprintln!(
        "lease {LEASE:?}: gave up {gave_up_after:?} after the cut, the next elected {:?} after it",
        elected - cut
    );

    // Back in touch: a campaigns again and follows b.
    proxy.restore();
    assert!(
        wait_until(Duration::from_secs(10), || {
            a.last().is_some_and(|r| {
                r.standing == Standing::Follower && r.leader.as_deref() == Some("node-b")
            })
        }),
        "{:?}",
        a.last()
    );
    assert_eq!(b.last().unwrap().standing, Standing::Elected);
}

#[test]
fn a_node_that_cannot_reach_etcd_reports_it_and_never_may_promote() {
    let closed = crate::support::net::closed_port();
    let a = Node::start("node-a", &[format!("http://127.0.0.1:{closed}")]);
    a.set(CAMPAIGN);
    a.wait(Standing::Unreachable, Duration::from_secs(10));
    let report = a.last().unwrap();
    assert_eq!(report.why, Why::StoreUnreachable);
    assert!(report.detail.contains("connection refused"), "{report:?}");
    assert!(!a.may_promote());
}

/// etcd with `--client-cert-auth`: a node with the client certificate is
/// elected over https; one without it is told why it cannot get in.
#[test]
fn mutual_tls_with_a_client_certificate() {
    if skip() {
        return;
    }
    let pki = Pki::new();
    let (ca, cert, key) = (
        pki.ca.clone(),
        pki.client_cert.clone(),
        pki.client_key.clone(),
    );
    let etcd = Etcd::start_with(1, Some(pki));
    let url = format!("https://127.0.0.1:{}", etcd.members[0].tls_client.unwrap());
    let a = Node::start_with(
        "node-a",
        std::slice::from_ref(&url),
        EtcdTls {
            ca_file: Some(ca.clone()),
            identity: Some((cert, key)),
        },
    );
    a.set(CAMPAIGN);
    a.wait(Standing::Elected, Duration::from_secs(10));

    let b = Node::start_with(
        "node-b",
        &[url],
        EtcdTls {
            ca_file: Some(ca),
            identity: None,
        },
    );
    b.set(CAMPAIGN);
    b.wait(Standing::Unreachable, Duration::from_secs(10));
    let report = b.last().unwrap();
    assert!(!report.detail.is_empty(), "{report:?}");
    eprintln!("without a client certificate: {}", report.detail);
    assert_eq!(etcd.keys("/hb-test/vip/").len(), 1);
}

/// Three etcd members: stopping the raft leader, then (with it back) the
/// new one, changes nothing for the nodes: no report, the same leader.
#[test]
fn losing_an_etcd_member_or_its_leader_changes_nothing() {
    if skip() {
        return;
    }
    let mut etcd = Etcd::start(3);
    let urls: Vec<String> = etcd.endpoints().split(", ").map(str::to_owned).collect();
    let a = Node::start("node-a", &urls);
    a.set(CAMPAIGN);
    a.wait(Standing::Elected, Duration::from_secs(10));
    let b = Node::start("node-b", &urls);
    b.set(CAMPAIGN);
    assert!(wait_until(Duration::from_secs(10), || {
        b.last()
            .is_some_and(|r| r.leader.as_deref() == Some("node-a"))
    }));
    let (a_said, b_said) = (a.count(), b.count());
    for round in 0..2 {
        let leader = etcd.leader().expect("an etcd leader");
        etcd.stop_member(leader);
        // Through the raft election and several renewals.
        std::thread::sleep(LEASE * 2);
        assert_eq!(
            a.count(),
            a_said,
            "round {round}: {:#?}",
            a.reports.lock().unwrap()
        );
        assert_eq!(
            b.count(),
            b_said,
            "round {round}: {:#?}",
            b.reports.lock().unwrap()
        );
        assert!(a.may_promote());
        etcd.start_member(leader);
        etcd.wait_ready(Duration::from_secs(30));
    }
}
