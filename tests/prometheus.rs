//! End to end with a real Prometheus: it scrapes heartbeat every 500 ms
//! (OpenMetrics, as it asks), and an alert on the first demotion,
//! `increase(heartbeat_transitions_total{to="unhealthy"}[1m]) > 0`, fires
//! when the group's first demotion happens.
//!
//! Needs the `prometheus` binary (Debian package `prometheus`, installed by
//! `.ci/run`). Prometheus runs on a free loopback port with its storage in
//! the test's directory; it is killed and reaped on drop.

use crate::support::bin::{Scratch, free_port, wait_for};
use crate::support::daemon::{start, with_hooks};
use crate::support::http::get_json;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const LONG: Duration = Duration::from_secs(60);

/// Prometheus in the foreground, killed and reaped on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
}

impl Prometheus {
    /// Scrapes `target` every 500 ms and evaluates the alert `rule` (the
    /// body of a rules file) as often.
    fn start(dir: &Path, target: SocketAddr, rules: &str) -> Prometheus {
        std::fs::write(dir.join("rules.yml"), rules).unwrap();
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 500ms\n  evaluation_interval: 500ms\n\
                 rule_files: [\"{rules}\"]\n\
                 scrape_configs:\n  - job_name: heartbeat\n    static_configs:\n      \
                 - targets: [\"{target}\"]\n",
                rules = dir.join("rules.yml").display()
            ),
        )
        .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("prometheus.log")).unwrap(),
            ))
            .spawn()
            .expect("start prometheus (Debian package prometheus)");
        let prometheus = Prometheus { child, addr };
        wait_for("Prometheus to be ready", LONG, || {
            std::net::TcpStream::connect(addr).is_ok()
                && crate::support::http::get(addr, "/-/ready").status == 200
        });
        prometheus
    }

    /// `GET /api/v1/PATH`'s `data`.
    fn api(&self, path: &str) -> Value {
        let (status, doc) = get_json(self.addr, &format!("/api/v1/{path}"));
        assert_eq!(
            (status, &doc["status"]),
            (200, &Value::from("success")),
            "{doc}"
        );
        doc["data"].clone()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Regression: the transition counters appeared only with the first
/// transition, at 1, so `increase()` over them was 0 and this alert never
/// fired.
#[test]
fn prometheus_fires_an_alert_on_the_first_demotion() {
    let s = Scratch::new();
    let flag = s.path("up");
    std::fs::write(&flag, "").unwrap();
    let conf = format!(
        "interval = 200ms\n{}",
        with_hooks(
            &[("web", "true", "true")],
            &format!(
                "[gate]\ntype = script\ncommand = test -e {}\naction = web\n",
                flag.display()
            )
        )
    );
    let (_hb, addr) = start(&s, &conf);
    let prometheus = Prometheus::start(
        s.dir(),
        addr,
        "groups:\n  - name: heartbeat\n    rules:\n      - alert: GroupDemoted\n        \
         expr: increase(heartbeat_transitions_total{to=\"unhealthy\"}[1m]) > 0\n",
    );

    // Scraped cleanly, and the counter of demotions is there at 0.
    wait_for(
        "a clean scrape with the demotion counter at 0",
        LONG,
        || {
            let result =
                prometheus.api("query?query=heartbeat_transitions_total%7Bto%3D%22unhealthy%22%7D");
            result["result"][0]["value"][1] == "0"
        },
    );
    let targets = prometheus.api("targets");
    let target = &targets["activeTargets"][0];
    assert_eq!(
        (&target["health"], &target["lastError"]),
        (&Value::from("up"), &Value::from("")),
        "{target}"
    );
    assert!(
        prometheus.api("alerts")["alerts"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The first demotion: the alert fires.
    std::fs::remove_file(&flag).unwrap();
    wait_for("the alert on the first demotion to fire", LONG, || {
        prometheus.api("alerts")["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| {
                a["labels"]["alertname"] == "GroupDemoted"
                    && a["labels"]["group"] == "web"
                    && a["state"] == "firing"
            })
    });
}
