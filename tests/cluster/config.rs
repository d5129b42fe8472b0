//! The `[cluster]` section as users write it, and every mistake in it
//! reported at its place with what is expected.

use std::path::Path;
use std::time::Duration;

use heartbeat::config::{ConfigError, Loaded, parse};
use heartbeat::model::EtcdEndpoint;

use crate::support::bin::Scratch;

/// A file with two groups, `vip` and `web`, and `[cluster]` lines
/// `cluster` (none when empty), `general` lines in `[general]`.
fn file(general: &str, cluster: &str) -> String {
    let mut text = format!(
        "[general]\ninterval = 1\n{general}\n\
         [promotions]\nvip = ip addr add 192.0.2.10/24 dev eth0\nweb = true\n\n\
         [demotions]\nvip = ip addr del 192.0.2.10/24 dev eth0\nweb = true\n\n\
         [app]\nurl = tcp://127.0.0.1:80\naction = vip, web\n\n"
    );
    if !cluster.is_empty() {
        text.push_str("[cluster]\n");
        text.push_str(cluster);
    }
    text
}

fn load(text: &str) -> Result<Loaded, ConfigError> {
    parse(text, Path::new("test.conf"), Path::new("/etc/heartbeat"))
}

fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("expected errors, the configuration was accepted:\n{text}"),
        Err(e) => e.errors.iter().map(|d| d.render(&e.file)).collect(),
    }
}

fn one_error(text: &str) -> String {
    let all = errors(text);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.into_iter().next().unwrap()
}

const SHORT: &str = "action_timeout = 1";

#[test]
fn a_cluster_section_with_its_defaults() {
    let text = file(
        SHORT,
        "etcd = http://10.0.0.1, https://[fd00::2]:12379/\ngroups = vip\n",
    );
    let config = load(&text).unwrap().config;
    let cluster = config.cluster.expect("the [cluster] section");
    assert_eq!(
        cluster.endpoints,
        [
            EtcdEndpoint {
                https: false,
                host: "10.0.0.1".into(),
                port: 2379
            },
            EtcdEndpoint {
                https: true,
                host: "fd00::2".into(),
                port: 12379
            },
        ]
    );
    assert_eq!(cluster.lease, Duration::from_secs(10));
    assert_eq!(cluster.prefix, "/heartbeat");
    assert_eq!(cluster.groups, ["vip"]);
    let host = nix::unistd::gethostname().unwrap();
    assert_eq!(cluster.node, host.to_str().unwrap());
    assert!(cluster.is_exclusive("vip") && !cluster.is_exclusive("web"));
}

#[test]
fn every_key_of_the_cluster_section() {
    let text = file(
        "action_timeout = 2",
        "etcd = https://a:2379 https://b:2379\nnode = db-1\nlease = 15s\nprefix = /prod/hb/\n\
         groups = web, vip\nca_file = ca.pem\ncert_file = tls/node.pem\nkey_file = tls/node.key\n",
    );
    let cluster = load(&text).unwrap().config.cluster.unwrap();
    assert_eq!(cluster.endpoints.len(), 2);
    assert_eq!(cluster.node, "db-1");
    assert_eq!(cluster.lease, Duration::from_secs(15));
    assert_eq!(cluster.prefix, "/prod/hb");
    assert_eq!(cluster.election("vip"), "/prod/hb/vip");
    assert_eq!(cluster.groups, ["web", "vip"]);
    assert_eq!(
        cluster.tls.ca_file.as_deref(),
        Some(Path::new("/etc/heartbeat/ca.pem"))
    );
    let (cert, key) = cluster.tls.identity.unwrap();
    assert_eq!(cert, Path::new("/etc/heartbeat/tls/node.pem"));
    assert_eq!(key, Path::new("/etc/heartbeat/tls/node.key"));
}

#[test]
fn without_a_cluster_section_nothing_is_exclusive() {
    assert_eq!(load(&file("", "")).unwrap().config.cluster, None);
}

/// The default action_timeout (60 s) cannot end within a third of the
/// default lease: the error says what would do, computed here from the
/// rule (action_timeout + 0.5 s + lease/10 <= lease/3).
#[test]
fn an_action_timeout_too_long_for_the_lease_says_what_would_fit() {
    let e = one_error(&file("", "etcd = http://127.0.0.1:2379\ngroups = vip\n"));
    // 10/3 - 1 - 0.5 = 1.833 s; 60.5 / (1/3 - 1/10) = 259.3, so 260 s.
    assert!(e.contains("test.conf:16: [cluster] lease:"), "{e}");
    assert!(e.contains("action_timeout = 60s is too long"), "{e}");
    assert!(
        e.contains("action_timeout to at most 1.833s in [general] (it is 60s when unset)"),
        "{e}"
    );
    assert!(e.contains("lease to at least 260s"), "{e}");

    let e = one_error(&file(
        "action_timeout = 5",
        "etcd = http://127.0.0.1:2379\ngroups = vip\nlease = 3\n",
    ));
    assert!(e.contains("test.conf:3: [general] action_timeout:"), "{e}");
    // 3/3 - 0.3 - 0.5 = 0.2 s; 5.5 / (7/30) = 23.6, so 24 s.
    assert!(e.contains("at most 200ms"), "{e}");
    assert!(e.contains("lease to at least 24s"), "{e}");

    let e = one_error(&file(
        "action_timeout = 0.2",
        "etcd = http://127.0.0.1:2379\ngroups = vip\nlease = 2\n",
    ));
    // 2/3 s - 0.25 s leaves less than the kill grace: only a longer lease
    // does.
    assert!(!e.contains("at most"), "{e}");
    // 0.2 + 0.5 + 0.3 = 1 = 3 s / 3.
    assert!(e.contains("lease to at least 3s"), "{e}");

    assert!(
        load(&file(
            "action_timeout = 0.2",
            "etcd = http://127.0.0.1:2379\ngroups = vip\nlease = 3\n"
        ))
        .is_ok()
    );
}

#[test]
fn mistakes_in_the_cluster_section_are_each_reported_at_their_line() {
    let text = file(
        SHORT,
        "etcd = http://a:2379, 10.0.0.2:2379\nnode = db 1\nlease = 2.5\nprefix = heartbeat\n\
         groups = vip, nosuch\ncert_file = c.pem\nleader = me\n",
    );
    let all = errors(&text);
    let expected = [
        (
            "test.conf:17: [cluster] etcd:",
            "\"10.0.0.2:2379\" has no scheme",
        ),
        ("test.conf:18: [cluster] node:", "cannot be a node name"),
        (
            "test.conf:19: [cluster] lease:",
            "not a whole number of seconds",
        ),
        ("test.conf:20: [cluster] prefix:", "starting with '/'"),
        (
            "test.conf:21: [cluster] groups:",
            "no action group \"nosuch\"",
        ),
        ("test.conf:22: [cluster] cert_file:", "needs key_file too"),
        (
            "test.conf:23: [cluster] leader:",
            "unknown key; [cluster] takes etcd, node",
        ),
    ];
    assert_eq!(all.len(), expected.len(), "{all:#?}");
    for ((place, what), e) in expected.iter().zip(&all) {
        assert!(
            e.starts_with(place) && e.contains(what),
            "{e:?}, expected {place} {what}"
        );
    }
}

#[test]
fn tls_files_need_an_https_endpoint() {
    let e = one_error(&file(
        SHORT,
        "etcd = http://a:2379\ngroups = vip\nca_file = ca.pem\n",
    ));
    assert!(
        e.starts_with("test.conf:19: [cluster] ca_file: ca_file is for https:// endpoints"),
        "{e}"
    );
}

#[test]
fn etcd_and_groups_are_required() {
    let all = errors(&file(SHORT, "node = a\n"));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(
        all[0].contains("[cluster] etcd: [cluster] needs etcd = URL"),
        "{all:?}"
    );
    assert!(
        all[1].contains("[cluster] groups: [cluster] needs groups"),
        "{all:?}"
    );
}

#[test]
fn a_misspelt_cluster_section_is_not_taken_for_a_check() {
    let text = file(SHORT, "").replace("[app]", "[Cluster]\netcd = http://a\n\n[app]");
    let e = errors(&text);
    assert!(
        e.iter()
            .any(|e| e
                .contains("[Cluster] section names are case-sensitive: did you mean [cluster]?")),
        "{e:?}"
    );
}

#[test]
fn check_config_shows_the_cluster_and_its_exclusive_groups() {
    let s = Scratch::new();
    let text = file(
        SHORT,
        "etcd = http://127.0.0.1:2379\nnode = n1\ngroups = vip\nlease = 10\n",
    )
    .replace("ip addr", "true ip addr");
    let path = s.write("heartbeat.conf", &text);
    let out = s.run(&["-t", "-c", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = "\n[cluster]\netcd = http://127.0.0.1:2379\nnode = n1\nlease = 10s\n\
                    prefix = /heartbeat\ngroups = vip\n# ca_file = (none)\n";
    assert!(stdout.contains(expected), "{stdout}");
    assert!(
        stdout.contains("  group \"vip\" (exclusive across the cluster): 1 check"),
        "{stdout}"
    );
    assert!(stdout.contains("  group \"web\": 1 check"), "{stdout}");
}
