//! The leader's brain: from what the probes saw and what is published, one decision per
//! cycle, each with a sentence that says why. Pure: no I/O, no clock; the daemon acts.
//!
//! Order of concerns, first match wins (as in Patroni's `ha.py`):
//! 1. no master known yet: discover it (from the znode if its master is really a live
//!    master, else from the roles the nodes report), or wait and say why;
//! 2. the master is down: promote the best replica (or finish a promotion already done);
//! 3. the master no longer says it is a master: forget it and rediscover;
//! 4. a live node that is not a replica of the master (a returning old master, a replica of
//!    someone else): make it a replica of the master;
//! 5. the published topology differs from what is true: publish.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use redis_failover_client::{NodeAddr, Topology};

use super::derive::{derive_topology, up_info, Resyncing};
use super::fence::{FenceSetting, Fencing};
use super::guard;
use super::health::Status;
use super::select::{select_replica, Policy};
use super::votes::Verdict;
use super::View;

mod decision;
#[cfg(test)]
mod safety_tests;
#[cfg(test)]
mod tests;

use decision::join;
pub use decision::{Decision, Mode};

/// The leader's belief about its group, kept between cycles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupState {
    /// The group's master; `None` until discovered. It stays set while that master is down
    /// and nobody can replace it, so that it is taken back if it returns.
    pub master: Option<NodeAddr>,
    pub epoch: u64,
    /// `<root>/paused` as last read: no automatic failover while set, and it is copied into
    /// the published topology.
    pub paused: Option<redis_failover_client::wire::PauseInfo>,
    /// The master's restart count (`NodeHealth::restarts`) when it became the master: a
    /// higher count means it restarted since.
    pub master_restarts: u64,
    /// When the replicas' offsets were last read afresh for a failover.
    pub offsets_read_at: Option<Instant>,
    /// The replicas the last promotion re-pointed, published as replicas while their link
    /// to the new master comes up.
    pub resyncing: Resyncing,
    /// The fence this leader set on each node, with the node's restart count then (a
    /// restart loses a `CONFIG SET`).
    pub fences: BTreeMap<NodeAddr, (u64, FenceSetting)>,
    /// When setting a node's fence last failed: retried [`FENCE_RETRY`] later.
    pub fence_failed: BTreeMap<NodeAddr, Instant>,
    /// The nodes this leader put the replication guard on, with their restart count then
    /// (a restart loses it: that is its point).
    pub guards: BTreeMap<NodeAddr, u64>,
    /// When putting the guard on a node last failed: retried [`FENCE_RETRY`] later.
    pub guard_failed: BTreeMap<NodeAddr, Instant>,
    /// A promotion finished for a previous leader ([`Decision::Adopt`] with a hold) is not
    /// published before this.
    pub publish_not_before: Option<Instant>,
    /// When a switchover of an outvoted but reachable master last failed: for
    /// [`SWITCHOVER_RETRY`] it is replaced the way an unreachable one is.
    pub switchover_failed_at: Option<Instant>,
}

impl GroupState {
    /// A fresh belief that keeps only what this leader set on the nodes (fences, guards),
    /// which stays true across a new master or epoch; taken out of `self`.
    pub fn node_settings(&mut self) -> GroupState {
        GroupState {
            fences: std::mem::take(&mut self.fences),
            guards: std::mem::take(&mut self.guards),
            ..GroupState::default()
        }
    }
}

/// See [`GroupState::switchover_failed_at`].
pub const SWITCHOVER_RETRY: Duration = Duration::from_secs(5);

/// Why a down master is not replaced in this cycle.
enum NotNow {
    /// Something may change soon (`-wait`).
    Wait(String),
    /// Not automatically (`-failover-abort-no-good-slave`, the master published unavailable).
    Refuse(String),
}

/// How long after a failed `CONFIG SET` the fence is tried again on that node.
pub const FENCE_RETRY: Duration = Duration::from_secs(10);

/// Offsets read within this long count as fresh for ranking candidates (a read takes at
/// most 300 ms; a failover that failed is retried on them within the next cycles).
pub const OFFSETS_FRESH: Duration = Duration::from_secs(1);

/// What the leader does about a down master that no replica may replace
/// ([`Decision::NoCandidate`]) or that an operator's pause keeps ([`Decision::Paused`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreplaceable {
    /// The topology to publish (the master listed unavailable), unless it already is.
    pub publish: Option<Topology>,
    /// The master restarted meanwhile and answers again: it stays the master, and this
    /// restart count becomes the known one, so that its restart is no reason to fail over
    /// later.
    pub restart_kept: Option<u64>,
}

pub fn unreplaceable(
    state: &GroupState,
    view: &View,
    published: Option<&Topology>,
    failed: &NodeAddr,
    now: Instant,
) -> Unreplaceable {
    let restart_kept = view
        .get(failed)
        .filter(|h| h.is_up() && h.restarts() > state.master_restarts)
        .map(|h| h.restarts());
    let resyncing = state.resyncing.at(now);
    let mut topology = derive_topology(Some(failed), state.epoch, view, resyncing);
    topology.paused = state.paused.clone();
    let publish = (!published.is_some_and(|p| p.same_content(&topology))).then_some(topology);
    Unreplaceable {
        publish,
        restart_kept,
    }
}

/// One cycle: what to do next, given the belief, the probes' view and the published znode
/// (`None` when missing or unreadable).
/// What the managers' votes say about each node; a node without an entry is judged by this
/// manager's own probes alone.
pub type Votes = BTreeMap<NodeAddr, Verdict>;

pub fn decide(
    state: &GroupState,
    view: &View,
    published: Option<&Topology>,
    votes: &Votes,
    now: Instant,
    policy: &Policy,
) -> Decision {
    let Some(master) = &state.master else {
        return discover(view, published, policy);
    };
    if let Some(p) = published.filter(|p| p.epoch > state.epoch) {
        return Decision::Forget {
            master: master.clone(),
            reason: format!(
                "epoch {} is published (by {}), newer than ours ({})",
                p.epoch,
                p.manager.as_deref().unwrap_or("?"),
                state.epoch
            ),
        };
    }
    let Some(master_health) = view.get(master) else {
        return Decision::Forget {
            master: master.clone(),
            reason: "not one of the configured nodes".into(),
        };
    };
    match master_health.status() {
        Status::Unknown => {
            return Decision::Wait {
                reason: format!("master {master} not probed yet"),
            }
        }
        status => match (status, votes.get(master)) {
            (_, Some(Verdict::Down(why))) => {
                return failover(state, Why::judged(why), view, published, now, policy)
            }
            (Status::Down, None) => {
                let why = master_health
                    .last_error()
                    .unwrap_or("unreachable")
                    .to_string();
                return failover(state, Why::judged(&why), view, published, now, policy);
            }
            (Status::Down, Some(Verdict::Up(why) | Verdict::Doubtful(why))) => {
                return Decision::Wait {
                    reason: format!(
                        "master {master} is down for this manager, but not by vote ({why})"
                    ),
                }
            }
            _ => {}
        },
    }
    // A master that restarted lost its memory: it holds what it loaded from disk (an old
    // snapshot, or nothing), and its replicas would resync from it and lose what they have.
    // That is a fact this manager observed (a new run_id), not a judgement on reachability,
    // so it needs no vote; promote before the replicas reconnect (within about a second).
    if master_health.restarts() > state.master_restarts {
        return failover(
            state,
            Why::restarted(RESTARTED),
            view,
            published,
            now,
            policy,
        );
    }
    // The same, when the restart happened while no leader watched it: its replicas, kept
    // from resyncing by the replication guard, hold a history it lacks.
    if let Some(why) = guard::lost_history(view, master, now) {
        return failover(state, Why::restarted(&why), view, published, now, policy);
    }
    if let Some(info) = master_health.info().filter(|i| !i.is_master()) {
        let follows = info
            .master()
            .map_or("nobody".to_string(), |m| m.to_string());
        return Decision::Forget {
            master: master.clone(),
            reason: format!("it now reports role replica of {follows}"),
        };
    }
    let strays: Vec<NodeAddr> = view
        .iter()
        .filter(|(addr, _)| *addr != master)
        .filter_map(|(addr, h)| {
            let info = h.info().filter(|_| h.is_up())?;
            (info.master() != Some(master)).then(|| addr.clone())
        })
        .collect();
    if !strays.is_empty() {
        let why: Vec<String> = strays
            .iter()
            .map(|a| match up_info(view, a).and_then(|i| i.master()) {
                Some(m) => format!("{a} replicates from {m}"),
                None => format!("{a} is a master"),
            })
            .collect();
        return Decision::Reconfigure {
            nodes: strays,
            master: master.clone(),
            reason: why.join(", "),
        };
    }
    let mut topology = derive_topology(Some(master), state.epoch, view, state.resyncing.at(now));
    topology.paused = state.paused.clone();
    // The fence first: a master is replaceable when unreachable only once it is fenced.
    if let Some(d) = fence(state, view, master, now, policy) {
        return d;
    }
    if policy.replication_guard {
        if let Some(d) = guard_step(state, view, master, now) {
            return d;
        }
    }
    if let Some(until) = state.publish_not_before.filter(|t| now < *t) {
        if published.is_none_or(|p| p.master.as_ref() != Some(master)) {
            return Decision::Wait {
                reason: format!(
                    "holding the publication of {master} for {} ms more: a previous leader \
                     promoted it and the old master may take writes until its fence bound",
                    (until - now).as_millis()
                ),
            };
        }
    }
    match published {
        Some(p) if p.same_content(&topology) => Decision::Steady,
        Some(_) => Decision::Publish {
            topology,
            reason: "the published topology differs from the nodes' state".into(),
        },
        None => Decision::Publish {
            topology,
            reason: "nothing valid published yet".into(),
        },
    }
}

/// The first trusted node without the replication guard, the master first (see `guard.rs`).
fn guard_step(
    state: &GroupState,
    view: &View,
    master: &NodeAddr,
    now: Instant,
) -> Option<Decision> {
    let master_first = std::iter::once(master).chain(view.keys().filter(|n| *n != master));
    for n in master_first {
        let Some(h) = view.get(n) else { continue };
        if !guard::trusted(view, master, n) || state.guards.get(n) == Some(&h.restarts()) {
            continue;
        }
        if state
            .guard_failed
            .get(n)
            .is_some_and(|t| now < *t + FENCE_RETRY)
        {
            // The master first: a replica told to authenticate as a user its master lacks
            // could not resync.
            if n == master {
                return None;
            }
            continue;
        }
        let reason = if n == master {
            "the master: its replicas may sync from it"
        } else {
            "a replica in sync with the master: it may be promoted"
        };
        return Some(Decision::Guard {
            node: n.clone(),
            reason: reason.into(),
        });
    }
    None
}

/// The first live node whose fence differs from what it should have (see `fence.rs`).
fn fence(
    state: &GroupState,
    view: &View,
    master: &NodeAddr,
    now: Instant,
    policy: &Policy,
) -> Option<Decision> {
    view.iter().filter(|(_, h)| h.is_up()).find_map(|(n, h)| {
        let setting = policy.fencing.wanted(view, master, n)?;
        if state.fences.get(n) == Some(&(h.restarts(), setting)) {
            return None;
        }
        if state
            .fence_failed
            .get(n)
            .is_some_and(|t| now < *t + FENCE_RETRY)
        {
            return None;
        }
        let reason = match (n == master, setting.min_replicas) {
            (true, 0) => "the master has no live replica: nothing to fence against",
            (true, _) => "the master has a live replica: it refuses writes once cut off from it",
            (false, _) => "a replica takes writes at once if promoted",
        };
        Some(Decision::Fence {
            node: n.clone(),
            setting,
            reason: reason.into(),
        })
    })
}

const RESTARTED: &str = "it restarted (new run_id) and may have lost writes its replicas have";

/// Why the master is being replaced: a verdict on it (the managers' votes, this manager's
/// probes), or the fact that its process restarted without its data, which proves the old
/// process gone.
#[derive(Clone, Copy)]
struct Why<'a> {
    text: &'a str,
    restarted: bool,
}

impl<'a> Why<'a> {
    fn judged(text: &'a str) -> Self {
        Why {
            text,
            restarted: false,
        }
    }

    fn restarted(text: &'a str) -> Self {
        Why {
            text,
            restarted: true,
        }
    }
}

/// How long a promotion that replaces `failed` other than by a fresh failover decision (a
/// roll-forward of a recorded one, an operator's manual failover) holds its publication:
/// the fence bound unless `failed` is proven gone or fencing is off.
pub fn roll_forward_hold(view: &View, failed: &NodeAddr, policy: &Policy) -> Duration {
    let gone = view
        .get(failed)
        .is_some_and(|h| h.proven_gone() || h.proven_hung());
    if gone {
        Duration::ZERO
    } else {
        policy.fencing.bound()
    }
}

/// How the replacement of the down `master` proceeds, or why it must not ([`Mode`]).
fn mode(
    state: &GroupState,
    master: &NodeAddr,
    why: Why<'_>,
    view: &View,
    now: Instant,
    policy: &Policy,
) -> Result<Mode, NotNow> {
    let Some(h) = view.get(master) else {
        return Ok(Mode::Gone);
    };
    if why.restarted || h.proven_gone() || guard::lost_history(view, master, now).is_some() {
        return Ok(Mode::Gone);
    }
    if h.proven_hung() {
        return Ok(Mode::Hung);
    }
    if h.is_up() && h.info().is_some_and(|i| i.is_master()) {
        if h.failing() {
            return Err(NotNow::Wait(format!(
                "master {master} is down by vote, and this manager's own probes of it are \
                 failing too; waiting for their verdict"
            )));
        }
        let failed_lately = state
            .switchover_failed_at
            .is_some_and(|t| now < t + SWITCHOVER_RETRY);
        if !failed_lately {
            return Ok(Mode::Reachable);
        }
        // The switchover failed just now: replace it as an unreachable one (fenced, the
        // others re-pointed, itself too since it answers, published after the bound).
    }
    if !policy.fencing.enabled() {
        return Ok(Mode::Unfenced);
    }
    // Fenced as its last INFO said, or as this leader set it (CONFIG SET answered OK).
    let set_here = state
        .fences
        .get(master)
        .is_some_and(|(restarts, f)| *restarts == h.restarts() && f.min_replicas > 0);
    if !set_here && !h.info().is_some_and(|i| i.fenced) {
        return Err(NotNow::Refuse(format!(
            "{master} is unreachable but not proven down, and was not fenced when last seen \
             (no replica followed it): it may still take writes on its side of a partition; \
             not promoting (`redis_node_manager failover` can)"
        )));
    }
    let missing: Vec<NodeAddr> = view
        .iter()
        .filter(|(a, h)| *a != master && !h.is_up())
        .map(|(a, _)| a.clone())
        .collect();
    if !missing.is_empty() {
        return Err(NotNow::Refuse(format!(
            "{master} is unreachable but not proven down, and {} unreachable too: a replica \
             on its side could keep it taking writes; not promoting (`redis_node_manager \
             failover` can)",
            match missing.as_slice() {
                [one] => format!("{one} is"),
                many => format!("{} are", join(many)),
            }
        )));
    }
    // A replica that still hears from it says it is alive, only not to the managers: its
    // replicas may still be acknowledging its writes (and `WAIT` counting them).
    if let Fencing::MinReplicas { max_lag_secs } = policy.fencing {
        let hearing: Vec<String> = view
            .iter()
            .filter_map(|(a, h)| {
                let i = up_info(view, a)?;
                let secs = i.heard_from(master)?;
                (secs <= max_lag_secs && h.is_up()).then(|| format!("{a} ({secs} s ago)"))
            })
            .collect();
        if !hearing.is_empty() {
            return Err(NotNow::Wait(format!(
                "{master} is unreachable from the managers, but its replicas still hear from \
                 it: {}; it is alive and may still replicate writes, not replacing it",
                hearing.join(", ")
            )));
        }
    }
    Ok(Mode::Unreachable {
        hold: policy.fencing.bound(),
    })
}

fn failover(
    state: &GroupState,
    why: Why<'_>,
    view: &View,
    published: Option<&Topology>,
    now: Instant,
    policy: &Policy,
) -> Decision {
    let why_down = why.text;
    let Some(master) = &state.master else {
        return Decision::Wait {
            reason: "no master known".into(),
        };
    };
    if let Some((addr, _)) = view.iter().find(|(_, h)| h.status() == Status::Unknown) {
        return Decision::Wait {
            reason: format!("master {master} is down, but {addr} is not probed yet"),
        };
    }
    // A promotion a leader recorded before sending REPLICAOF NO ONE, and the node answers as
    // a master: finish that one. A node that merely says it is a master (restarted without
    // its REPLICAOF, say) is not adopted: it may hold anything.
    if let Some(winner) = published.and_then(|p| p.promoting.as_ref()) {
        if winner != master && up_info(view, winner).is_some_and(|i| i.is_master()) {
            return Decision::RollForward {
                failed: master.clone(),
                winner: winner.clone(),
                reason: format!(
                    "master down ({why_down}) and {winner}, recorded as being promoted, already \
                     is a master"
                ),
            };
        }
    }
    // Paused after the roll-forward: a promotion already recorded is finished, since leaving
    // it half done would leave two nodes answering as master.
    if let Some(p) = &state.paused {
        return Decision::Paused {
            failed: master.clone(),
            reason: format!(
                "automatic failover is paused (by {}: {}); `redis_node_manager resume` or a \
                 manual failover acts",
                if p.by.is_empty() { "?" } else { &p.by },
                if p.reason.is_empty() {
                    "no reason given"
                } else {
                    &p.reason
                }
            ),
        };
    }
    let offsets_fresh = state
        .offsets_read_at
        .is_some_and(|t| now.saturating_duration_since(t) < OFFSETS_FRESH);
    match select_replica(view, master, now, policy) {
        Ok(_) if !offsets_fresh => Decision::RefreshOffsets {
            failed: master.clone(),
            nodes: view
                .iter()
                .filter(|(a, h)| *a != master && h.is_up())
                .map(|(a, _)| a.clone())
                .collect(),
            reason: format!("master down ({why_down}); ranking on offsets read now"),
        },
        Ok((winner, ranking)) => match mode(state, master, why, view, now, policy) {
            Ok(mode) => Decision::Failover {
                failed: master.clone(),
                winner: winner.clone(),
                mode,
                reason: format!("master down ({why_down}); {ranking}"),
            },
            Err(NotNow::Wait(reason)) => Decision::Wait { reason },
            Err(NotNow::Refuse(reason)) => Decision::NoCandidate {
                failed: master.clone(),
                reason,
            },
        },
        Err(reason) => Decision::NoCandidate {
            failed: master.clone(),
            reason,
        },
    }
}

fn discover(view: &View, published: Option<&Topology>, policy: &Policy) -> Decision {
    if let Some((addr, _)) = view.iter().find(|(_, h)| h.status() == Status::Unknown) {
        return Decision::Wait {
            reason: format!("discovery waits for the first probe of {addr}"),
        };
    }
    let published_epoch = published.map_or(0, |p| p.epoch);
    // A master other than the published one is a change clients must see as newer.
    let epoch_for = |m: &NodeAddr| match published {
        Some(p) if p.master.as_ref() != Some(m) => published_epoch + 1,
        _ => published_epoch,
    };
    // A promotion recorded by a leader that died before publishing it: finish that one, even
    // if another node (an old master restarted without its REPLICAOF) also claims master.
    if let Some(p) = published.and_then(|t| t.promoting.as_ref()) {
        if up_info(view, p).is_some_and(|i| i.is_master()) {
            // Its leader may have been cut off while holding the publication for an
            // unreachable old master's fence: hold it again, unless every node it replaced
            // is proven gone.
            let hold = published
                .map(|t| t.unavailable.iter())
                .into_iter()
                .flatten()
                .map(|n| roll_forward_hold(view, n, policy))
                .max()
                .unwrap_or(Duration::ZERO);
            return Decision::Adopt {
                master: p.clone(),
                epoch: published_epoch + 1,
                hold,
                reason: "finishing the promotion recorded in the znode".into(),
            };
        }
    }
    let follows = |m: &NodeAddr| {
        view.values()
            .any(|h| h.is_up() && h.info().and_then(|i| i.master()) == Some(m))
    };
    if let Some(m) = published.and_then(|p| p.master.as_ref()) {
        if let Some(h) = view.get(m) {
            if h.is_up() && h.info().is_some_and(|i| i.is_master()) {
                return Decision::Adopt {
                    master: m.clone(),
                    epoch: published_epoch,
                    hold: Duration::ZERO,
                    reason: "the published master is up and reports role master".into(),
                };
            }
            if h.status() == Status::Down && follows(m) {
                return Decision::Adopt {
                    master: m.clone(),
                    epoch: published_epoch,
                    hold: Duration::ZERO,
                    reason: "the published master is down and replicas still follow it; \
                             failing over from it"
                        .into(),
                };
            }
        }
    }
    let masters: Vec<&NodeAddr> = view
        .iter()
        .filter(|(_, h)| h.is_up() && h.info().is_some_and(|i| i.is_master()))
        .map(|(a, _)| a)
        .collect();
    let unknown_upstreams: Vec<String> = view
        .iter()
        .filter(|(_, h)| h.is_up())
        .filter_map(|(a, h)| {
            let m = h.info()?.master()?;
            (!view.contains_key(m)).then(|| format!("{a} replicates from {m}"))
        })
        .collect();
    if !unknown_upstreams.is_empty() {
        return Decision::Wait {
            reason: format!(
                "nodes disagree: {} (not a configured node); not guessing, check -n/--nodes",
                unknown_upstreams.join(", ")
            ),
        };
    }
    match masters.as_slice() {
        [m] => Decision::Adopt {
            master: (*m).clone(),
            epoch: epoch_for(m),
            hold: Duration::ZERO,
            reason: "the only node reporting role master".into(),
        },
        [] => {
            let upstreams: std::collections::BTreeSet<&NodeAddr> = view
                .values()
                .filter(|h| h.is_up())
                .filter_map(|h| h.info()?.master())
                .collect();
            match upstreams.iter().collect::<Vec<_>>().as_slice() {
                [m] if view.get(*m).is_some_and(|h| h.status() == Status::Down) => {
                    Decision::Adopt {
                        master: (**m).clone(),
                        epoch: epoch_for(m),
                        hold: Duration::ZERO,
                        reason: "no live master; every live replica follows this down node, \
                                 failing over from it"
                            .into(),
                    }
                }
                _ => Decision::Wait {
                    reason: format!(
                        "no node reports role master (live replicas follow: [{}]); not guessing",
                        join(&upstreams.into_iter().cloned().collect::<Vec<_>>())
                    ),
                },
            }
        }
        several => Decision::Wait {
            reason: format!(
                "nodes disagree: {} all report role master; not guessing, make all but one \
                 replicas (REPLICAOF)",
                join(&several.iter().map(|a| (*a).clone()).collect::<Vec<_>>())
            ),
        },
    }
}
