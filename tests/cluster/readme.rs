//! The README's "Several nodes", as written: its virtual IP example is a
//! valid configuration (`heartbeat -t`, its TLS files made real), and the
//! standby's `heartbeat status` it shows is the shape the binary prints
//! (checked in `super::failover` against a running node).

use std::process::Command;

use crate::readme::shown::{block_after, readme};
use crate::support::bin::{Scratch, binary};
use crate::support::etcd::Pki;

/// The heading of the example.
pub const EXAMPLE: &str = "### Example: a virtual IP on three nodes";

/// The example's standby `heartbeat status` table: its header and its row.
pub fn status_table() -> (String, String) {
    let block = block_after(&readme(), EXAMPLE, "", 0);
    let mut lines = block
        .lines()
        .skip_while(|l| !l.starts_with("EXCLUSIVE GROUP"));
    let header = lines.next().expect("the EXCLUSIVE GROUP header").to_owned();
    let row = lines.next().expect("the vip row").to_owned();
    (header, row)
}

#[test]
fn the_virtual_ip_example_is_a_valid_configuration() {
    let s = Scratch::new();
    let pki = Pki::new();
    let text = block_after(&readme(), EXAMPLE, "ini", 0)
        .replace("/etc/heartbeat/etcd-ca.pem", pki.ca.to_str().unwrap())
        .replace(
            "/etc/heartbeat/etcd-client.pem",
            pki.client_cert.to_str().unwrap(),
        )
        .replace(
            "/etc/heartbeat/etcd-client.key",
            pki.client_key.to_str().unwrap(),
        );
    let conf = s.write("heartbeat.conf", &text);
    let out = Command::new(binary())
        .args(["-t", "-c", conf.to_str().unwrap()])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("web-1"), "{said}");
    // What the prose says of it: the lease allows action_timeout up to
    // 1.833 s, so the 1 s of the example fits.
    assert_eq!(
        heartbeat::model::longest_action_timeout(std::time::Duration::from_secs(10))
            .map(|d| d.as_millis()),
        Some(1833)
    );
    // The status table shown has the binary's columns.
    let (header, row) = status_table();
    assert_eq!(header, "EXCLUSIVE GROUP  ROLE     LEADER  SINCE");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..3], ["vip", "standby", "web-1"], "{row}");
}
