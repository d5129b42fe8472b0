//! A real etcd for the tests: one member or several, on free loopback
//! ports, each with its data in a temporary directory, stopped and reaped
//! on drop.
//!
//! Members use a short heartbeat (50 ms) and election timeout (500 ms),
//! so that losing the etcd leader costs a second, not several, on a loaded
//! machine; etcd's minimum lease TTL is then 1 s.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::bin::free_port;
use super::poll::wait_until;

/// The etcd server binary (Debian's `etcd-server`).
pub const ETCD: &str = "/usr/bin/etcd";

/// Whether etcd is installed; tests that need it say so on stderr and
/// pass when it is not (`.ci/run` installs it).
pub fn available() -> bool {
    std::path::Path::new(ETCD).exists()
}

/// One member.
pub struct Member {
    pub name: String,
    pub client: u16,
    /// With TLS: the port of its `https://` client URL (mutual TLS); the
    /// plain one stays, for the tests' own looks.
    pub tls_client: Option<u16>,
    pub peer: u16,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Member {
    /// Its client URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client)
    }

    /// Whether it runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// An etcd cluster of one member or more.
pub struct Etcd {
    _dir: tempfile::TempDir,
    initial: String,
    pki: Option<Pki>,
    pub members: Vec<Member>,
}

impl Etcd {
    /// Starts `n` members and waits until they have a leader.
    pub fn start(n: usize) -> Etcd {
        Etcd::start_with(n, None)
    }

    /// Starts `n` members that also serve mutual TLS with `pki`'s
    /// certificates.
    pub fn start_with(n: usize, pki: Option<Pki>) -> Etcd {
        let dir = tempfile::tempdir().expect("temp dir");
        let members: Vec<Member> = (0..n)
            .map(|i| {
                let name = format!("m{i}");
                Member {
                    data: dir.path().join(format!("{name}.data")),
                    log: dir.path().join(format!("{name}.log")),
                    name,
                    client: free_port(),
                    tls_client: pki.as_ref().map(|_| free_port()),
                    peer: free_port(),
                    child: None,
                }
            })
            .collect();
        let initial = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        let mut etcd = Etcd {
            _dir: dir,
            initial,
            pki,
            members,
        };
        for i in 0..n {
            etcd.start_member(i);
        }
        etcd.wait_ready(Duration::from_secs(30));
        etcd
    }

    /// The client URLs of every member, comma-separated, as `etcd = …`
    /// takes them.
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(Member::url)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Starts member `i` again (or the first time), on its ports and data.
    pub fn start_member(&mut self, i: usize) {
        let initial = self.initial.clone();
        let m = &mut self.members[i];
        assert!(m.child.is_none(), "member {} already runs", m.name);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .expect("etcd log");
        let mut client = format!("http://127.0.0.1:{}", m.client);
        let mut tls = Vec::new();
        if let (Some(port), Some(pki)) = (m.tls_client, &self.pki) {
            client = format!("https://127.0.0.1:{port},{client}");
            tls.push("--client-cert-auth".to_owned());
            for (flag, path) in [
                ("--trusted-ca-file", &pki.ca),
                ("--cert-file", &pki.server_cert),
                ("--key-file", &pki.server_key),
            ] {
                tls.push(format!("{flag}={}", path.display()));
            }
        }
        let peer = format!("http://127.0.0.1:{}", m.peer);
        let child = Command::new(ETCD)
            .args(&tls)
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.data)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial])
            .args(["--initial-cluster-token", "heartbeat-tests"])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        m.child = Some(child);
    }

    /// Stops member `i` with SIGTERM (as systemd would) and reaps it.
    pub fn stop_member(&mut self, i: usize) {
        self.end_member(i, Signal::SIGTERM);
    }

    /// Kills member `i` with SIGKILL and reaps it.
    pub fn kill_member(&mut self, i: usize) {
        self.end_member(i, Signal::SIGKILL);
    }

    fn end_member(&mut self, i: usize, signal: Signal) {
        let Some(mut child) = self.members[i].child.take() else {
            return;
        };
        let _ = kill(Pid::from_raw(child.id() as i32), signal);
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The index of the member that leads the raft group now, as the
    /// running members say.
    pub fn leader(&self) -> Option<usize> {
        let mut ids = Vec::new();
        let mut leader = None;
        for m in &self.members {
            let status = m.running().then(|| status(m)).flatten();
            let Some(status) = status else {
                ids.push(None);
                continue;
            };
            ids.push(status["header"]["member_id"].as_str().map(str::to_owned));
            leader = leader.or_else(|| status["leader"].as_str().map(str::to_owned));
        }
        let leader = leader?;
        ids.iter()
            .position(|id| id.as_deref() == Some(leader.as_str()))
    }

    /// Waits until every running member answers and a leader is known.
    pub fn wait_ready(&self, within: Duration) {
        let ready = wait_until(within, || {
            self.members
                .iter()
                .filter(|m| m.running())
                .all(|m| status(m).is_some())
                && self.leader().is_some()
        });
        if !ready {
            let logs: String = self
                .members
                .iter()
                .map(|m| {
                    format!(
                        "--- {}\n{}",
                        m.name,
                        fs::read_to_string(&m.log).unwrap_or_default()
                    )
                })
                .collect();
            panic!("etcd did not become ready within {within:?}:\n{logs}");
        }
    }

    /// The keys under `prefix` and their values, in creation order.
    pub fn keys(&self, prefix: &str) -> Vec<(String, String)> {
        let urls: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.running())
            .map(Member::url)
            .collect();
        keys_at(&urls, prefix).expect("range")
    }
}

/// The keys under `prefix` and their values, in creation order, as the
/// first of the members at `urls` that answers says; `None` when none
/// does.
pub fn keys_at(urls: &[String], prefix: &str) -> Option<Vec<(String, String)>> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut end = prefix.as_bytes().to_vec();
    *end.last_mut().expect("a prefix") += 1;
    let body = serde_json::json!({
        "key": b64.encode(prefix),
        "range_end": b64.encode(&end),
        "sort_target": "CREATE",
        "sort_order": "ASCEND",
    });
    let answer = urls
        .iter()
        .find_map(|url| post(url, "/v3/kv/range", &body))?;
    let decode = |v: &serde_json::Value| {
        String::from_utf8(b64.decode(v.as_str().unwrap_or_default()).unwrap()).unwrap()
    };
    Some(
        answer["kvs"]
            .as_array()
            .map(|kvs| {
                kvs.iter()
                    .map(|kv| (decode(&kv["key"]), decode(&kv["value"])))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill_member(i);
        }
    }
}

/// `/v3/maintenance/status` of member `m`, if it answers within a second.
fn status(m: &Member) -> Option<serde_json::Value> {
    post(&m.url(), "/v3/maintenance/status", &serde_json::json!({}))
}

fn post(url: &str, path: &str, body: &serde_json::Value) -> Option<serde_json::Value> {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(1)))
        .build()
        .new_agent();
    let mut response = agent
        .post(&format!("{url}{path}"))
        .send(body.to_string())
        .ok()?;
    if response.status() != 200 {
        return None;
    }
    let text = response.body_mut().read_to_string().ok()?;
    serde_json::from_str(&text).ok()
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate it
/// signed, as PEM files in a temporary directory.
pub struct Pki {
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    pub fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let dir = tempfile::tempdir().expect("temp dir");
        let named = |names: Vec<String>, cn: &str| {
            let mut params = CertificateParams::new(names).expect("parameters");
            params.distinguished_name = rcgen::DistinguishedName::new();
            params.distinguished_name.push(
                DnType::CommonName,
                format!("heartbeat test {cn} {}", std::process::id()),
            );
            params
        };
        let mut ca_params = named(Vec::new(), "ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().expect("key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
        let issuer = Issuer::new(ca_params, ca_key);
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            fs::write(&path, text).expect("write PEM");
            path
        };
        let ca = write("ca.pem", ca_cert.pem());
        let leaf = |cn: &str, names: Vec<String>| {
            let mut params = named(names, cn);
            params.extended_key_usages = vec![
                rcgen::ExtendedKeyUsagePurpose::ServerAuth,
                rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            ];
            let key = KeyPair::generate().expect("key");
            let cert = params.signed_by(&key, &issuer).expect("sign");
            (
                write(&format!("{cn}.pem"), cert.pem()),
                write(&format!("{cn}.key"), key.serialize_pem()),
            )
        };
        let (server_cert, server_key) =
            leaf("server", vec!["127.0.0.1".into(), "localhost".into()]);
        let (client_cert, client_key) = leaf("client", vec!["heartbeat".into()]);
        Pki {
            _dir: dir,
            ca,
            server_cert,
            server_key,
            client_cert,
            client_key,
        }
    }
}
