//! The state file (`state_file`): what must survive a restart, so that a
//! group in maintenance stays there, a paused group stays paused, and
//! `HEARTBEAT_PREVIOUS_STATE` is what the outside world was last told.
//!
//! One JSON document, rewritten whole and atomically
//! ([`crate::files::replace_atomically`]: write, fsync, rename) whenever
//! something in it changes — a hold, an announcement, the outcome of an
//! attempt — by a thread of its own, so that a slow disk never holds up the
//! engine; the latest content wins over any not written yet. Read once, at
//! start-up: a missing file is noted at INFO, an unreadable or invalid one
//! is named in a warning and ignored (every group then starts afresh),
//! never fatal. Groups it names that are no longer configured are ignored.
//!
//! ```json
//! {"version": 1, "written": "2026-11-20T13:15:00.000Z", "groups": {
//!   "web": {"hold": {"kind": "maintenance", "since": "2026-11-20T13:14:00.000Z"},
//!           "announced": "unhealthy", "announced_at": "2026-11-20T13:14:00.050Z",
//!           "last_attempt": {"state": "unhealthy", "ok": true}}}}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use log::{info, warn};
use serde::{Deserialize, Serialize};

use crate::model::{Health, Hold};
use crate::status::report::rfc3339;

/// The version of the document this heartbeat writes and reads.
pub const VERSION: u32 = 1;

/// The largest state file read, in bytes.
const MAX_SIZE: u64 = 4 * 1024 * 1024;

/// Permissions of a new state file, before the umask.
const MODE: u32 = 0o640;

/// How long a stop waits for the last write.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// The document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Document {
    version: u32,
    written: String,
    groups: BTreeMap<String, SavedGroup>,
}

/// One group in the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SavedGroup {
    #[serde(default)]
    hold: Option<SavedHold>,
    announced: String,
    #[serde(default)]
    announced_at: Option<String>,
    #[serde(default)]
    last_attempt: Option<SavedAttempt>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SavedHold {
    kind: String,
    since: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SavedAttempt {
    state: String,
    ok: bool,
}

/// What the state file keeps of one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    /// The operator's hold and since when.
    pub hold: Option<(Hold, SystemTime)>,
    /// What the outside world was last told, and when.
    pub announced: Health,
    /// When that was announced.
    pub announced_at: Option<SystemTime>,
    /// The state of the last attempt that ended, and whether it succeeded.
    pub last: Option<(Health, bool)>,
}

/// The document for `groups` (name and what is kept of it).
pub fn render<'a>(groups: impl IntoIterator<Item = (&'a str, Kept)>) -> String {
    let groups = groups
        .into_iter()
        .map(|(name, kept)| {
            let group = SavedGroup {
                hold: kept.hold.map(|(hold, since)| SavedHold {
                    kind: hold.as_str().to_owned(),
                    since: rfc3339(since),
                }),
                announced: kept.announced.as_str().to_owned(),
                announced_at: kept.announced_at.map(rfc3339),
                last_attempt: kept.last.map(|(state, ok)| SavedAttempt {
                    state: state.as_str().to_owned(),
                    ok,
                }),
            };
            (name.to_owned(), group)
        })
        .collect();
    let document = Document {
        version: VERSION,
        written: String::new(),
        groups,
    };
    serde_json::to_string_pretty(&document).unwrap_or_default()
}

/// What the state file at `path` keeps, by group; empty when it is missing
/// (noted at INFO) or cannot be used (a warning says why).
pub fn load(path: &Path) -> BTreeMap<String, Kept> {
    match read(path) {
        Ok(groups) => {
            let plural = if groups.len() == 1 { "" } else { "s" };
            info!(
                "state file {}: {} group{plural} as before the restart",
                path.display(),
                groups.len()
            );
            groups
        }
        Err(Missing) => {
            info!(
                "state file {} does not exist yet: every group starts afresh",
                path.display()
            );
            BTreeMap::new()
        }
        Err(Unusable(why)) => {
            warn!(
                "state file {} is ignored ({why}): every group starts afresh, and the file is rewritten at the next change",
                path.display()
            );
            BTreeMap::new()
        }
    }
}

enum Unread {
    Missing,
    Unusable(String),
}
use Unread::{Missing, Unusable};

fn read(path: &Path) -> Result<BTreeMap<String, Kept>, Unread> {
    let bytes = crate::files::read_own_file(path, MAX_SIZE).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Missing,
        _ => Unusable(e.to_string()),
    })?;
    let document: Document = serde_json::from_slice(&bytes)
        .map_err(|e| Unusable(format!("not a heartbeat state file: {e}")))?;
    if document.version != VERSION {
        return Err(Unusable(format!(
            "version {}, this heartbeat reads version {VERSION}",
            document.version
        )));
    }
    document
        .groups
        .into_iter()
        .map(|(name, group)| {
            let kept = kept(&group).map_err(|why| Unusable(format!("group {name:?}: {why}")))?;
            Ok((name, kept))
        })
        .collect()
}

fn kept(group: &SavedGroup) -> Result<Kept, String> {
    let hold = match &group.hold {
        None => None,
        Some(h) => {
            let kind = Hold::from_word(&h.kind)
                .ok_or_else(|| format!("{:?} is not a hold (paused, maintenance)", h.kind))?;
            Some((kind, time(&h.since)?))
        }
    };
    let last = match &group.last_attempt {
        None => None,
        Some(a) => Some((health(&a.state)?, a.ok)),
    };
    Ok(Kept {
        hold,
        announced: health(&group.announced)?,
        announced_at: group.announced_at.as_deref().map(time).transpose()?,
        last,
    })
}

fn health(word: &str) -> Result<Health, String> {
    [Health::Unknown, Health::Healthy, Health::Unhealthy]
        .into_iter()
        .find(|h| h.as_str() == word)
        .ok_or_else(|| format!("{word:?} is not a state (unknown, healthy, unhealthy)"))
}

fn time(text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339(text).map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

/// Writes the state file on a thread of its own: the latest content given
/// to [`Saver::save`] wins over any not written yet.
pub struct Saver {
    path: PathBuf,
    shared: Arc<(Mutex<Slot>, Condvar)>,
    thread: Option<JoinHandle<()>>,
    /// The last content handed over, to skip saving what did not change.
    last: Option<String>,
}

#[derive(Default)]
struct Slot {
    /// Content waiting to be written.
    pending: Option<String>,
    /// A write is in progress.
    writing: bool,
    stop: bool,
}

impl Saver {
    /// A writer of the state file at `path`.
    ///
    /// # Errors
    /// When its thread cannot be started.
    pub fn start(path: PathBuf) -> std::io::Result<Saver> {
        let shared: Arc<(Mutex<Slot>, Condvar)> = Arc::default();
        let thread = {
            let (shared, path) = (Arc::clone(&shared), path.clone());
            thread::Builder::new()
                .name("state-file".into())
                .spawn(move || write_loop(&path, &shared))?
        };
        Ok(Saver {
            path,
            shared,
            thread: Some(thread),
            last: None,
        })
    }

    /// Saves `content` (from [`render`]) unless it is what was saved last.
    pub fn save(&mut self, content: String) {
        if self.last.as_deref() == Some(content.as_str()) {
            return;
        }
        self.last = Some(content.clone());
        let (lock, wake) = &*self.shared;
        lock.lock().unwrap_or_else(PoisonError::into_inner).pending = Some(content);
        wake.notify_all();
    }

    /// Waits, at most a few seconds, until what was saved is written, then
    /// ends the writing thread.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let (lock, wake) = &*self.shared;
        let deadline = Instant::now() + FLUSH_WAIT;
        let mut slot = lock.lock().unwrap_or_else(PoisonError::into_inner);
        while (slot.pending.is_some() || slot.writing) && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            slot = wake
                .wait_timeout(slot, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if slot.pending.is_some() || slot.writing {
            warn!(
                "state file {}: the last change was not written within {}s",
                self.path.display(),
                FLUSH_WAIT.as_secs()
            );
        }
        slot.stop = true;
        drop(slot);
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            // It ends at once, unless a write hangs on a dead disk: that
            // one is not waited for.
            let until = Instant::now() + Duration::from_secs(1);
            while !thread.is_finished() && Instant::now() < until {
                thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Saver {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}

fn write_loop(path: &Path, shared: &(Mutex<Slot>, Condvar)) {
    let (lock, wake) = shared;
    let mut failing: Option<String> = None;
    loop {
        let content = {
            let mut slot = lock.lock().unwrap_or_else(PoisonError::into_inner);
            while slot.pending.is_none() && !slot.stop {
                slot = wake.wait(slot).unwrap_or_else(PoisonError::into_inner);
            }
            let Some(content) = slot.pending.take() else {
                return;
            };
            slot.writing = true;
            content
        };
        // The time of writing goes in as the file is written.
        let stamped = content.replacen(
            "\"written\": \"\"",
            &format!("\"written\": \"{}\"", rfc3339(SystemTime::now())),
            1,
        );
        match crate::files::replace_atomically(path, stamped.as_bytes(), MODE) {
            Ok(()) => {
                if failing.take().is_some() {
                    info!("state file {} written again", path.display());
                }
            }
            Err(e) => {
                let why = e.to_string();
                // Said once until it changes or heals: not at every change.
                if failing.as_deref() != Some(why.as_str()) {
                    warn!(
                        "cannot write the state file {}: {why}; holds and announced states will not survive a restart",
                        path.display()
                    );
                    failing = Some(why);
                }
            }
        }
        lock.lock().unwrap_or_else(PoisonError::into_inner).writing = false;
        wake.notify_all();
    }
}

impl super::Engine {
    /// At start-up: gives each configured group what the state file kept
    /// of it, and starts writing the file.
    pub(super) fn restore_state(&mut self) {
        let Some(path) = self.config.general.state_file.clone() else {
            return;
        };
        let mut kept = load(&path);
        for g in 0..self.groups.len() {
            let Some(k) = kept.remove(&self.groups[g].spec.name) else {
                continue;
            };
            let group = &mut self.groups[g];
            group.slot.announced = k.announced;
            group.announced_at = k.announced_at;
            if let Some((hold, since)) = k.hold {
                group.slot.hold = Some(hold);
                group.hold_since = Some(since);
                // A resume compares with what was last attempted before the
                // restart; a group in maintenance demotes at start-up, as
                // every other group announces its state.
                if hold == Hold::Paused {
                    group.slot.last = k.last;
                }
                warn!(
                    "group {:?} is still {} since {}, as before the restart (state file)",
                    group.spec.name,
                    match hold {
                        Hold::Paused => "paused",
                        Hold::Maintenance => "in maintenance",
                    },
                    rfc3339(since)
                );
            }
            self.note_hold(g);
        }
        for name in kept.keys() {
            info!("state file: group {name:?} is no longer configured; forgotten");
        }
        match Saver::start(path.clone()) {
            Ok(saver) => self.saver = Some(saver),
            Err(e) => warn!(
                "cannot write the state file {}: {e}; holds and announced states will not survive a restart",
                path.display()
            ),
        }
    }

    /// Hands the state file its new content, if something in it changed.
    pub(super) fn save_state(&mut self) {
        let Some(saver) = self.saver.as_mut() else {
            return;
        };
        let content = render(self.groups.iter().map(|g| {
            (
                g.spec.name.as_str(),
                Kept {
                    hold: g.slot.hold.zip(g.hold_since),
                    announced: g.slot.announced,
                    announced_at: g.announced_at,
                    last: g.slot.last,
                },
            )
        }));
        saver.save(content);
    }

    /// At the end: the last content written.
    pub(super) fn close_state(&mut self) {
        self.save_state();
        if let Some(saver) = self.saver.take() {
            saver.finish();
        }
    }

    /// At start-up, before the first round: the groups in maintenance
    /// demote at once (their state does not wait for their checks).
    pub(super) fn start_held_actions(&mut self) {
        for g in 0..self.groups.len() {
            if self.groups[g].slot.hold == Some(Hold::Maintenance) {
                self.start_action_if_due(g, super::state::Occasion::Round);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn what_is_kept_reads_back_as_it_was_written() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        let web = Kept {
            hold: Some((Hold::Maintenance, at)),
            announced: Health::Unhealthy,
            announced_at: Some(at),
            last: Some((Health::Unhealthy, true)),
        };
        let db = Kept {
            hold: None,
            announced: Health::Unknown,
            announced_at: None,
            last: Some((Health::Healthy, false)),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut saver = Saver::start(path.clone()).unwrap();
        saver.save(render([("web", web), ("db", db)]));
        saver.finish();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"kind\": \"maintenance\""), "{text}");
        assert!(!text.contains("\"written\": \"\""), "{text}");
        let back = load(&path);
        assert_eq!(back.get("web"), Some(&web));
        assert_eq!(back.get("db"), Some(&db));
    }

    #[test]
    fn a_missing_or_corrupt_file_gives_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert!(load(&path).is_empty());
        for bad in [
            "{not json",
            "{\"version\": 2, \"written\": \"\", \"groups\": {}}",
            "{\"version\": 1, \"written\": \"\", \"groups\": {\"web\": {\"announced\": \"fine\"}}}",
            "{\"version\": 1, \"written\": \"\", \"groups\": {\"web\": {\"announced\": \"healthy\", \"hold\": {\"kind\": \"nap\", \"since\": \"2026-11-20T13:14:00Z\"}}}}",
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(load(&path).is_empty(), "{bad}");
        }
    }
}
