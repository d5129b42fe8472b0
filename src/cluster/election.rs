//! One exclusive group's election: its lease, its campaign, the renewals,
//! and what it reports to the engine.
//!
//! A task per group runs on the cluster thread. While the engine says the
//! group may campaign ([`Stance::campaign`]), the task holds a lease of its
//! own and campaigns with it; it renews the lease every third of its TTL
//! and asks etcd who leads at each renewal. Once elected it renews the
//! lease, checks that the leader key etcd shows is its own, and only then
//! reports [`Standing::Elected`].
//!
//! A lease is used for one campaign only: when a campaign fails or ends
//! unelected, its lease is abandoned (revoked when possible) and the next
//! campaign gets a new one. etcd deletes a candidate's key when its
//! campaign request is cancelled (its `Campaign` resigns on a cancelled
//! context), and a request cut off half-open may be cancelled long after:
//! with a fresh lease each time, such a late deletion can only remove an
//! abandoned key, never the key of a later campaign.
//!
//! Renewals retry, member after member, until the [`Timing::give_up`]
//! moment; an elected task that reaches it reports the lease lost, and the
//! engine demotes within the time left ([`crate::model::action_fits`]). A
//! lease is revoked (resigning, or abandoned) only while the engine says
//! the group's promotion is not in effect ([`Stance::promoted`]), so that
//! the next node is elected only after this one has demoted.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{debug, warn};
use tokio::sync::watch;

use super::etcd::{Etcd, EtcdError};
use super::{Notify, Report, Shared, Stance, Standing, Why};
use crate::model::{action_bound, lease_margin, short_duration, valid_node_name};

/// The shortest and longest wait for one member's answer.
const ATTEMPT_MIN: Duration = Duration::from_millis(200);
const ATTEMPT_MAX: Duration = Duration::from_secs(2);

/// The wait before a new campaign after one failed.
const CAMPAIGN_PAUSE: Duration = Duration::from_millis(200);

/// The deadline of a revocation when resigning or stopping.
const REVOKE_WITHIN: Duration = Duration::from_secs(1);

/// How long one campaign request may wait for the leader to go, at the
/// least; then the campaign starts over with a new lease (a guard against
/// a connection that died without a word).
const CAMPAIGN_MIN: Duration = Duration::from_secs(30);

/// The moments that a lease's safety rules derive from (see
/// [`crate::model::action_fits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The TTL asked for.
    pub ttl: Duration,
    /// Kept between the end of a forced demotion and the lease's earliest
    /// expiry ([`lease_margin`]).
    pub margin: Duration,
    /// The longest run of an exclusive group's action ([`action_bound`]).
    pub bound: Duration,
    /// Time between two renewals: a third of the TTL.
    pub renew_every: Duration,
    /// The longest wait for one member's answer: a sixth of the TTL,
    /// from 200 ms to 2 s.
    pub attempt: Duration,
    /// The longest wait of one campaign request.
    pub campaign: Duration,
}

impl Timing {
    /// The timing of a lease of `ttl` for actions of at most
    /// `action_timeout`.
    pub fn new(ttl: Duration, action_timeout: Duration) -> Timing {
        Timing {
            ttl,
            margin: lease_margin(ttl),
            bound: action_bound(action_timeout),
            renew_every: ttl / 3,
            attempt: (ttl / 6).clamp(ATTEMPT_MIN, ATTEMPT_MAX),
            campaign: (ttl * 10).max(CAMPAIGN_MIN),
        }
    }

    /// The moment to stop renewing a lease renewed by a request sent at
    /// `renewed`, etcd answering with `granted` left: the demotion must
    /// start then to end `margin` before etcd can expire the lease, which
    /// is no earlier than `renewed + granted` (etcd counts from when the
    /// request reached it).
    pub fn give_up(&self, renewed: Instant, granted: Duration) -> Instant {
        renewed + granted.saturating_sub(self.margin + self.bound)
    }

    /// The last moment a promotion may start under that lease: it must end
    /// before [`Timing::give_up`], when the demotion may have to start.
    pub fn promote_until(&self, renewed: Instant, granted: Duration) -> Instant {
        let give_up = self.give_up(renewed, granted);
        give_up.checked_sub(self.bound).unwrap_or(renewed)
    }
}

/// The lease a task holds.
#[derive(Debug, Clone, Copy)]
struct Held {
    id: i64,
    /// Its TTL as etcd last gave it.
    ttl: Duration,
    /// When the request of its last renewal (or its grant) was sent.
    renewed: Instant,
}

type Campaign = Pin<Box<dyn Future<Output = Result<i64, EtcdError>> + Send>>;

/// One group's election.
pub(super) struct Task {
    pub group: String,
    pub election: String,
    pub node: String,
    pub etcd: Arc<Etcd>,
    pub timing: Timing,
    pub stance: watch::Receiver<Stance>,
    pub shared: Arc<Mutex<Shared>>,
    pub notify: Notify,
    pub state: State,
}

/// What a task holds and has said.
#[derive(Default)]
pub(super) struct State {
    lease: Option<Held>,
    campaign: Option<Campaign>,
    elected: bool,
    /// Leases given up that etcd may still hold: revoked once the group's
    /// promotion is not in effect.
    abandoned: Vec<i64>,
    /// What was last reported.
    said: Option<(Standing, Option<String>)>,
    /// A leader name read from etcd that cannot be a node's, said once.
    odd_leader: bool,
}

/// What woke a task up.
enum Wake {
    /// The engine changed the stance (`false`: it is gone).
    Stance(bool),
    Campaign(Result<i64, EtcdError>),
    Tick,
}

impl Task {
    /// Runs until the engine drops its side of the stance channel; then
    /// revokes what it holds.
    pub(super) async fn run(mut self) {
        let mut next_tick = Instant::now();
        loop {
            let stance = *self.stance.borrow_and_update();
            if !stance.campaign {
                self.state.campaign = None;
                if self.state.lease.is_some() && !stance.promoted {
                    self.resign().await;
                }
            } else if self.state.campaign.is_none() && !self.state.elected {
                if let Some(held) = self.state.lease {
                    self.state.campaign = Some(self.campaign_with(held.id));
                }
            }
            let campaigning = self.state.campaign.is_some();
            let wake = tokio::select! {
                biased;
                changed = self.stance.changed() => Wake::Stance(changed.is_ok()),
                result = async { self.state.campaign.as_mut().expect("campaigning").await },
                    if campaigning => Wake::Campaign(result),
                () = tokio::time::sleep_until(next_tick.into()) => Wake::Tick,
            };
            match wake {
                Wake::Stance(true) => {}
                Wake::Stance(false) => {
                    self.shutdown().await;
                    return;
                }
                Wake::Campaign(result) => {
                    self.state.campaign = None;
                    if !self.campaigned(result).await {
                        next_tick = next_tick.min(Instant::now() + CAMPAIGN_PAUSE);
                    }
                }
                Wake::Tick => {
                    next_tick = Instant::now() + self.timing.renew_every;
                    if !self.tick().await {
                        // Retry sooner than a whole period when etcd could
                        // not be reached.
                        let retry = self.timing.renew_every.min(Duration::from_secs(1));
                        next_tick = next_tick.min(Instant::now() + retry);
                    }
                }
            }
        }
    }

    /// A campaign request for lease `id`, run beside the task's renewals.
    fn campaign_with(&self, id: i64) -> Campaign {
        let etcd = Arc::clone(&self.etcd);
        let (election, node, wait) = (
            self.election.clone(),
            self.node.clone(),
            self.timing.campaign,
        );
        Box::pin(async move { etcd.campaign(&election, id, &node, wait).await })
    }

    /// The periodic work: a lease when the group campaigns and has none,
    /// its renewal, who leads, and the abandoned leases. `false` when etcd
    /// could not be reached.
    async fn tick(&mut self) -> bool {
        let stance = *self.stance.borrow();
        if !stance.promoted {
            self.revoke_abandoned().await;
        }
        if stance.campaign && self.state.lease.is_none() {
            if let Err(e) = self.grant().await {
                self.say(
                    Standing::Unreachable,
                    None,
                    Why::StoreUnreachable,
                    e.to_string(),
                );
                return false;
            }
        }
        if let Some(held) = self.state.lease {
            if !self.renew(held).await {
                return false;
            }
        }
        if self.state.elected {
            return self.confirm().await;
        }
        self.observe().await
    }

    /// Grants a new lease.
    async fn grant(&mut self) -> Result<(), EtcdError> {
        let sent = Instant::now();
        let until = sent + self.timing.renew_every;
        let granted = self
            .etcd
            .grant(self.timing.ttl, self.timing.attempt, until)
            .await?;
        if granted.ttl != self.timing.ttl {
            warn!(
                "group {:?}: etcd granted a lease of {} instead of {} (its minimum TTL is 1.5 × \
                 its election timeout)",
                self.group,
                short_duration(granted.ttl),
                short_duration(self.timing.ttl)
            );
        }
        debug!("group {:?}: lease {:x} granted", self.group, granted.id);
        self.state.lease = Some(Held {
            id: granted.id,
            ttl: granted.ttl,
            renewed: sent,
        });
        Ok(())
    }

    /// Renews the held lease: while elected, retrying until the moment to
    /// give up; otherwise for one period. `false` when it was not renewed.
    async fn renew(&mut self, held: Held) -> bool {
        let give_up = self.timing.give_up(held.renewed, held.ttl);
        let until = if self.state.elected {
            give_up
        } else {
            give_up.min(Instant::now() + self.timing.renew_every)
        };
        let sent = Instant::now();
        let mut renewal = self
            .etcd
            .keep_alive(
                held.id,
                self.timing.attempt,
                until.min(sent + self.timing.attempt),
            )
            .await;
        if let Err(e) = &renewal {
            if self.state.elected && Instant::now() < give_up {
                warn!(
                    "group {:?}: cannot renew its lease: {e}; retrying, and demoting in {} unless \
                     renewed",
                    self.group,
                    short_duration(give_up.saturating_duration_since(Instant::now()))
                );
            }
            renewal = self
                .etcd
                .keep_alive(held.id, self.timing.attempt, until)
                .await;
        }
        match renewal {
            Ok(Some(ttl)) => {
                self.renewed(Held {
                    ttl,
                    renewed: sent,
                    ..held
                });
                true
            }
            Ok(None) => {
                let detail = "etcd no longer has its lease (it expired or was revoked)";
                self.lose(Why::LeaseLost, detail.to_owned());
                false
            }
            // While elected the call ran until the moment to give up.
            Err(e) if self.state.elected || Instant::now() >= give_up => {
                let detail = format!(
                    "its lease was not renewed for {}: {e}",
                    short_duration(held.renewed.elapsed())
                );
                self.lose(Why::LeaseLost, detail);
                false
            }
            Err(e) => {
                self.say(
                    Standing::Unreachable,
                    None,
                    Why::StoreUnreachable,
                    e.to_string(),
                );
                false
            }
        }
    }

    /// Records a successful renewal.
    fn renewed(&mut self, held: Held) {
        self.state.lease = Some(held);
        if self.state.elected {
            let until = self.timing.promote_until(held.renewed, held.ttl);
            self.share(Some(until));
        }
    }

    /// Gives the held lease up (not renewed from now on) and, if elected,
    /// reports the loss.
    fn lose(&mut self, why: Why, detail: String) {
        self.abandon();
        if std::mem::take(&mut self.state.elected) {
            self.share(None);
            self.say(Standing::Unreachable, None, why, detail);
        } else {
            self.say(Standing::Unreachable, None, Why::StoreUnreachable, detail);
        }
    }

    /// Stops using the held lease and its campaign.
    fn abandon(&mut self) {
        self.state.campaign = None;
        if let Some(held) = self.state.lease.take() {
            self.state.abandoned.push(held.id);
        }
    }

    /// The end of a campaign request. `false` when it failed.
    async fn campaigned(&mut self, result: Result<i64, EtcdError>) -> bool {
        let Some(held) = self.state.lease else {
            return true;
        };
        match result {
            Ok(id) if id == held.id => {}
            Ok(other) => {
                debug!(
                    "group {:?}: campaign answered for lease {other:x}, not {:x}",
                    self.group, held.id
                );
                self.abandon();
                return false;
            }
            Err(e) => {
                debug!("group {:?}: campaign failed: {e}", self.group);
                self.abandon();
                return false;
            }
        }
        // Elected in etcd's eyes: renew now, so that the promotion has the
        // whole lease, and see that the leader key is ours.
        let sent = Instant::now();
        let give_up = self.timing.give_up(held.renewed, held.ttl);
        match self
            .etcd
            .keep_alive(held.id, self.timing.attempt, give_up)
            .await
        {
            Ok(Some(ttl)) => {
                self.state.lease = Some(Held {
                    ttl,
                    renewed: sent,
                    ..held
                })
            }
            Ok(None) | Err(_) => {
                self.abandon();
                return false;
            }
        }
        let held = self.state.lease.expect("renewed");
        let until = self.timing.give_up(held.renewed, held.ttl);
        match self
            .etcd
            .leader(&self.election, self.timing.attempt, until)
            .await
        {
            Ok(Some(leader)) if leader.lease == held.id => {}
            _ => {
                self.abandon();
                return false;
            }
        }
        self.state.elected = true;
        self.share(Some(self.timing.promote_until(held.renewed, held.ttl)));
        let node = self.node.clone();
        self.say(Standing::Elected, Some(node), Why::Elected, String::new());
        true
    }

    /// While elected: the leader key etcd shows must still be this lease's
    /// (an operator may have deleted it). `false` when etcd could not say.
    async fn confirm(&mut self) -> bool {
        let Some(held) = self.state.lease else {
            return false;
        };
        let until = self.timing.give_up(held.renewed, held.ttl);
        match self
            .etcd
            .leader(&self.election, self.timing.attempt, until)
            .await
        {
            Ok(Some(leader)) if leader.lease == held.id => true,
            Ok(leader) => {
                let leader = leader.and_then(|l| self.name_of(l.value));
                let detail = format!(
                    "its leader key is gone from etcd; the leader is {}",
                    leader.as_deref().unwrap_or("none")
                );
                self.abandon();
                self.state.elected = false;
                self.share(None);
                self.say(Standing::Follower, leader, Why::LeaseLost, detail);
                true
            }
            Err(_) => false,
        }
    }

    /// Who leads, for a group not elected here.
    async fn observe(&mut self) -> bool {
        let until = Instant::now() + self.timing.renew_every;
        match self
            .etcd
            .leader(&self.election, self.timing.attempt, until)
            .await
        {
            Ok(leader) => {
                let leader = leader.and_then(|l| self.name_of(l.value));
                // While this node campaigns (or is about to, its lease just
                // granted), "no leader" lasts until its own key is in: no
                // news, so that the first standby demotion names a leader.
                let campaigns = self.stance.borrow().campaign && self.state.lease.is_some();
                if leader.is_none() && campaigns && self.state.said.is_none() {
                    return true;
                }
                let why = if self
                    .state
                    .said
                    .as_ref()
                    .is_some_and(|s| s.0 == Standing::Unreachable)
                {
                    Why::StoreReachable
                } else {
                    Why::Following
                };
                self.say(Standing::Follower, leader, why, String::new());
                true
            }
            Err(e) => {
                self.say(
                    Standing::Unreachable,
                    None,
                    Why::StoreUnreachable,
                    e.to_string(),
                );
                false
            }
        }
    }

    /// Revokes the held lease: the group no longer campaigns and its
    /// promotion is not in effect.
    async fn resign(&mut self) {
        let Some(held) = self.state.lease.take() else {
            return;
        };
        let until = Instant::now() + REVOKE_WITHIN;
        if let Err(e) = self.etcd.revoke(held.id, self.timing.attempt, until).await {
            debug!(
                "group {:?}: cannot revoke lease {:x}: {e}",
                self.group, held.id
            );
            self.state.abandoned.push(held.id);
        }
        if std::mem::take(&mut self.state.elected) {
            self.share(None);
            self.say(Standing::Follower, None, Why::Resigned, String::new());
        }
    }

    async fn revoke_abandoned(&mut self) {
        while let Some(&id) = self.state.abandoned.last() {
            let until = Instant::now() + REVOKE_WITHIN;
            if self
                .etcd
                .revoke(id, self.timing.attempt, until)
                .await
                .is_err()
            {
                return;
            }
            self.state.abandoned.pop();
        }
    }

    /// Revokes every lease at the end.
    async fn shutdown(&mut self) {
        self.state.campaign = None;
        self.share(None);
        if let Some(held) = self.state.lease.take() {
            self.state.abandoned.push(held.id);
        }
        self.revoke_abandoned().await;
    }

    /// A leader's name as read from etcd, if it can be a node's name: it
    /// reaches hooks' environment and logs.
    fn name_of(&mut self, value: String) -> Option<String> {
        if valid_node_name(&value) {
            return Some(value);
        }
        if !std::mem::replace(&mut self.state.odd_leader, true) {
            warn!(
                "group {:?}: the leader key in etcd holds {:?}, which is not a node name; the \
                 leader is shown as unknown",
                self.group,
                value.chars().take(64).collect::<String>()
            );
        }
        None
    }

    fn share(&self, promote_until: Option<Instant>) {
        if let Ok(mut shared) = self.shared.lock() {
            shared.promote_until = promote_until;
        }
    }

    /// Reports a standing to the engine when it differs from the last one.
    fn say(&mut self, standing: Standing, leader: Option<String>, why: Why, detail: String) {
        let now = (standing, leader);
        if self.state.said.as_ref() == Some(&now) {
            return;
        }
        self.state.said = Some(now.clone());
        (self.notify)(Report {
            group: self.group.clone(),
            standing: now.0,
            leader: now.1,
            why,
            detail,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// Lease 10 s, action_timeout 1.5 s: bound 2 s, margin 1 s.
    #[test]
    fn a_renewal_gives_the_promotion_and_the_demotion_their_time() {
        let t = Timing::new(10 * S, Duration::from_millis(1500));
        assert_eq!((t.bound, t.margin, t.renew_every), (2 * S, S, 10 * S / 3));
        let t0 = Instant::now();
        // Demote from 7 s so as to end by 9 s, 1 s before etcd may expire
        // the lease; promote only until 5 s, to end by 7 s.
        assert_eq!(t.give_up(t0, 10 * S), t0 + 7 * S);
        assert_eq!(t.promote_until(t0, 10 * S), t0 + 5 * S);
        // The next renewal is due at 3.33 s, before promotions stop: a
        // promotion can start at any time while renewals succeed.
        assert!(t0 + t.renew_every < t.promote_until(t0, 10 * S));
        // A granted TTL larger than asked for counts.
        assert_eq!(t.give_up(t0, 12 * S), t0 + 9 * S);
    }

    #[test]
    fn attempts_and_campaigns_are_bounded() {
        assert_eq!(Timing::new(S, S).attempt, ATTEMPT_MIN);
        assert_eq!(Timing::new(6 * S, S).attempt, S);
        assert_eq!(Timing::new(60 * S, S).attempt, ATTEMPT_MAX);
        assert_eq!(Timing::new(2 * S, S).campaign, CAMPAIGN_MIN);
        assert_eq!(Timing::new(10 * S, S).campaign, 100 * S);
    }

    #[test]
    fn a_lease_too_short_for_its_actions_never_promotes() {
        let t = Timing::new(S, 2 * S);
        let t0 = Instant::now();
        assert_eq!(t.give_up(t0, S), t0);
        assert!(t.promote_until(t0, S) <= t0);
    }
}
