//! The control socket as an operator uses it, through the real binary:
//! `heartbeat -c FILE maintenance|pause|resume GROUP…` against a running
//! heartbeat whose group follows a TCP target the test takes down and
//! brings back, with hooks that record what they were told, and the status
//! server read as a load balancer and a monitoring system read it.

use crate::support::bin::{Scratch, is_root};
use crate::support::http::{get, get_json};
use crate::support::ops::{
    LONG, Node, err, hooks, node_conf, out, p, script, wait_lines, wait_more_rounds,
};

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sys::signal::Signal;
use nix::unistd::User;

/// The operator's drain: maintenance demotes once while the target is
/// healthy, fails `GET /` and `/ready` with the reason, shows in `status`,
/// `/status` and `/metrics`, holds through rounds and a reload, and
/// `resume` promotes once.
#[test]
fn maintenance_demotes_once_holds_through_a_reload_and_resume_promotes_once() {
    let n = Node::start("");
    let done = n.ctl(&["maintenance", "web"]);
    assert_eq!(done.status.code(), Some(0), "{}", err(&done));
    let said = out(&done);
    assert!(
        said.starts_with("web: in maintenance (was active): demoted and held")
            && said.contains("; demotion succeeded in "),
        "{said}"
    );
    assert_eq!(
        n.ran(),
        [
            "promotion web unknown health 1",
            "demotion web healthy maintenance 1"
        ]
    );

    // A load balancer drains the node; monitoring sees why and since when.
    let root = get(n.listen, "/");
    assert_eq!(root.status, 503, "{}", root.body);
    assert_eq!(root.body, "UNHEALTHY\nweb: maintenance\n");
    let (code, ready) = get_json(n.listen, "/ready");
    assert_eq!(code, 503);
    assert_eq!(ready["reasons"], serde_json::json!(["web: maintenance"]));
    let (_, status) = get_json(n.listen, "/status");
    let group = &status["groups"][0];
    assert_eq!(group["state"], "healthy", "the checks still say healthy");
    assert_eq!(group["hold"]["kind"], "maintenance");
    assert!(group["hold"]["since"].as_str().unwrap().ends_with('Z'));
    let asked = n.s.run(&["status", &n.listen.to_string()]);
    assert_eq!(asked.status.code(), Some(1), "{}", out(&asked));
    assert!(
        out(&asked).contains("maintenance since 20"),
        "{}",
        out(&asked)
    );
    let json = n.s.run(&["status", "--json", &n.listen.to_string()]);
    assert_eq!(json.status.code(), Some(1), "{}", out(&json));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["groups"][0]["hold"], group["hold"]);
    assert_eq!(doc["healthy"], false);
    let metrics = get(n.listen, "/metrics").body;
    for series in [
        "heartbeat_group_hold{group=\"web\",hold=\"maintenance\"} 1",
        "heartbeat_group_hold{group=\"web\",hold=\"none\"} 0",
        "heartbeat_group_hold_timestamp_seconds{group=\"web\"} ",
    ] {
        assert!(metrics.contains(series), "no {series} in\n{metrics}");
    }

    // Held: the target stays healthy, nothing runs; again, nothing runs.
    wait_more_rounds(n.listen, 5);
    let again = n.ctl(&["maintenance", "web"]);
    assert_eq!(again.status.code(), Some(0), "{}", err(&again));
    assert!(
        out(&again).starts_with("web: already in maintenance since 20"),
        "{}",
        out(&again)
    );
    // Pausing a group in maintenance would end the drain: refused.
    let pause = n.ctl(&["pause", "web"]);
    assert_eq!(pause.status.code(), Some(65), "{}", out(&pause));
    assert!(err(&pause).contains("group \"web\" is in maintenance: resume it first"));

    // A reload (fall changes) keeps it.
    n.s.write(
        "hb.conf",
        &node_conf(&n.s, &n.target, n.listen, "", "fall = 3\n"),
    );
    n.hb.signal(Signal::SIGHUP);
    n.hb.wait_log("reloaded", LONG);
    wait_more_rounds(n.listen, 5);
    assert_eq!(get(n.listen, "/ready").status, 503);
    assert_eq!(n.ran().len(), 2, "{:?}", n.ran());

    let resumed = n.ctl(&["resume", "web"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", err(&resumed));
    let said = out(&resumed);
    assert!(
        said.starts_with("web: resumed (was in maintenance since 20")
            && said.contains("; promotion succeeded in "),
        "{said}"
    );
    n.wait_ready(200);
    wait_more_rounds(n.listen, 5);
    assert_eq!(
        n.ran(),
        [
            "promotion web unknown health 1",
            "demotion web healthy maintenance 1",
            "promotion web unhealthy resume 1"
        ]
    );
    let log = n.hb.log_text();
    assert!(
        log.contains("WARNING  group \"web\" in maintenance by root (uid 0, pid "),
        "{log}"
    );
}

/// Paused: the checks go on and report a failure, no demotion runs;
/// `resume` demotes once, and the recovery after it promotes as usual.
#[test]
fn pause_holds_through_a_failure_and_resume_demotes_once() {
    let n = Node::start("");
    let paused = n.ctl(&["pause", "web"]);
    assert_eq!(paused.status.code(), Some(0), "{}", err(&paused));
    assert_eq!(
        out(&paused),
        "web: paused (was active); its checks go on, no action runs until resume\n"
    );
    n.target.down();
    n.wait_ready(503);
    let (_, ready) = get_json(n.listen, "/ready");
    let reasons = ready["reasons"].to_string();
    assert!(reasons.contains("nginx: connection refused"), "{reasons}");
    let (_, status) = get_json(n.listen, "/status");
    assert_eq!(status["groups"][0]["state"], "unhealthy");
    assert_eq!(status["groups"][0]["hold"]["kind"], "paused");
    wait_more_rounds(n.listen, 5);
    assert_eq!(n.ran(), ["promotion web unknown health 1"]);

    let resumed = n.ctl(&["resume", "web"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", err(&resumed));
    assert!(
        out(&resumed).contains("; demotion succeeded in "),
        "{}",
        out(&resumed)
    );
    wait_more_rounds(n.listen, 5);
    assert_eq!(
        n.ran(),
        [
            "promotion web unknown health 1",
            "demotion web healthy resume 1"
        ]
    );
    n.target.back_up();
    wait_lines(&n.actions, 3);
    wait_more_rounds(n.listen, 3);
    assert_eq!(n.ran()[2..], ["promotion web unhealthy health 1"]);
    // A resume with nothing held changes nothing.
    let idle = n.ctl(&["resume", "web"]);
    assert_eq!(idle.status.code(), Some(0));
    assert_eq!(
        out(&idle),
        "web: neither paused nor in maintenance; nothing changed\n"
    );
}

/// A pause of a group whose state came back to what was announced: the
/// resume has nothing to apply.
#[test]
fn resume_runs_nothing_when_the_state_is_back_to_what_was_announced() {
    let n = Node::start("");
    assert_eq!(n.ctl(&["pause", "web"]).status.code(), Some(0));
    n.target.down();
    n.wait_ready(503);
    n.target.back_up();
    n.wait_ready(200);
    let resumed = n.ctl(&["resume", "web"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", err(&resumed));
    assert!(
        out(&resumed).contains("healthy is what was last announced, nothing to run"),
        "{}",
        out(&resumed)
    );
    wait_more_rounds(n.listen, 3);
    assert_eq!(n.ran(), ["promotion web unknown health 1"]);
}

/// Each refusal says why and exits with its own status; nothing changes.
#[test]
fn unknown_groups_missing_daemons_and_bad_command_lines_are_refused_clearly() {
    let n = Node::start("");
    let unknown = n.ctl(&["maintenance", "web", "wbe"]);
    assert_eq!(unknown.status.code(), Some(65), "{}", err(&unknown));
    assert_eq!(
        err(&unknown),
        "heartbeat: no group named \"wbe\"; the groups are web\n"
    );
    let (_, status) = get_json(n.listen, "/status");
    assert!(
        status["groups"][0]["hold"].is_null(),
        "web changed: {status}"
    );
    assert_eq!(n.ran().len(), 1);

    for args in [
        &["pause"][..],
        &["pause", "web", "--once"],
        &["resume", "web", "-d"],
    ] {
        let refused = n.ctl(args);
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{args:?}: {}",
            err(&refused)
        );
    }

    // Nobody listens: stopped.
    let Node { s, conf, hb, .. } = n;
    assert_eq!(hb.stop().code(), Some(0));
    assert!(!s.path("hb.sock").exists(), "the socket is removed on exit");
    let gone = s.run(&["-c", p(&conf), "pause", "web"]);
    assert_eq!(gone.status.code(), Some(69), "{}", err(&gone));
    assert!(
        err(&gone).contains(&format!(
            "no heartbeat is listening on the control socket {} (there is no socket there)",
            s.path("hb.sock").display()
        )),
        "{}",
        err(&gone)
    );
    // Turned off.
    let off = s.write(
        "off.conf",
        &format!(
            "[general]\ncontrol_socket = none\n{}{}",
            hooks(&s.path("off.log"), &["web"]),
            script("c", "true", "web")
        ),
    );
    let none = s.run(&["-c", p(&off), "resume", "web"]);
    assert_eq!(none.status.code(), Some(2), "{}", err(&none));
    assert!(err(&none).contains("has no control socket (control_socket = none)"));
}

/// The socket is 0600 and root's: another user's client is refused by the
/// kernel and told why (77), and nothing changes.
#[test]
fn the_socket_refuses_a_user_who_is_not_its_owner() {
    if !is_root() {
        eprintln!("skipped: running a client as another user needs root");
        return;
    }
    let n = Node::start("");
    n.s.open_to_everyone();
    let socket = n.s.path("hb.sock");
    let meta = fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o600, 0));
    let nobody = User::from_name("nobody").unwrap().expect("user nobody");
    let exe = crate::support::bin::binary_for_everyone(&n.s);
    let refused = Command::new(exe)
        .args(["-c", p(&n.conf), "maintenance", "web"])
        .current_dir(n.s.dir())
        .stdin(Stdio::null())
        .uid(nobody.uid.as_raw())
        .gid(nobody.gid.as_raw())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(77), "{}", err(&refused));
    assert!(
        err(&refused).contains(&format!(
            "permission denied on the control socket {} (it belongs to uid 0, mode 0600)",
            socket.display()
        )),
        "{}",
        err(&refused)
    );
    wait_more_rounds(n.listen, 2);
    assert_eq!(n.ran().len(), 1);
    assert_eq!(get(n.listen, "/ready").status, 200);
}

/// With `user = nobody` the socket belongs to nobody, still 0600, and root
/// is served.
#[test]
fn the_socket_belongs_to_the_user_heartbeat_drops_to() {
    if !is_root() {
        eprintln!("skipped: dropping privileges needs root");
        return;
    }
    let s = Scratch::new();
    s.open_to_everyone();
    let nobody = User::from_name("nobody").unwrap().expect("user nobody");
    let (actions, socket) = (s.path("actions.log"), s.path("ctl.sock"));
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\nuser = nobody\ninterval = 200ms\ncontrol_socket = {}\n{}{}",
            p(&socket),
            hooks(&actions, &["web"]),
            script("c", "true", "web")
        ),
    );
    let hb = s.spawn(&["-c", p(&conf)]);
    wait_lines(&actions, 1);
    let meta = fs::symlink_metadata(&socket).unwrap();
    assert_eq!(
        (meta.mode() & 0o777, meta.uid()),
        (0o600, nobody.uid.as_raw())
    );
    let done = s.run(&["-c", p(&conf), "pause", "web"]);
    assert_eq!(done.status.code(), Some(0), "{}", err(&done));
    assert!(
        hb.log_text()
            .contains("group \"web\" paused by root (uid 0, pid ")
    );
}

/// `control_socket = PATH` where a link has been planted: start-up stops
/// (73) and the link's target is untouched.
#[test]
fn a_link_at_the_socket_path_stops_start_up_and_is_not_followed() {
    let s = Scratch::new();
    let precious = s.write("precious", "precious\n");
    let socket = s.path("ctl.sock");
    std::os::unix::fs::symlink(&precious, &socket).unwrap();
    let conf = s.write(
        "hb.conf",
        &format!(
            "[general]\ncontrol_socket = {}\n{}{}",
            p(&socket),
            hooks(&s.path("actions.log"), &["web"]),
            script("c", "true", "web")
        ),
    );
    let started = s.run(&["-c", p(&conf)]);
    assert_eq!(started.status.code(), Some(73), "{}", err(&started));
    assert!(
        err(&started).contains(&format!(
            "cannot create the control socket {}: something other than a socket is there; refusing to replace it",
            socket.display()
        )),
        "{}",
        err(&started)
    );
    assert_eq!(fs::read_to_string(&precious).unwrap(), "precious\n");
    assert!(
        fs::symlink_metadata(&socket)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!Path::new(&s.path("actions.log")).exists(), "an action ran");
}
