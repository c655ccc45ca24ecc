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
use std::fmt;
use std::time::{Duration, Instant};

use redis_failover_client::wire::ManualRequest;
use redis_failover_client::{NodeAddr, Topology};

use crate::core::health::{NodeHealth, Status};
use crate::core::info::NodeInfo;
use crate::core::votes::Verdict;

/// Every configured node of a group and what the probes know about it.
pub type View = BTreeMap<NodeAddr, NodeHealth>;

/// One decision of the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing can be decided safely yet (not every node probed, nodes disagree).
    Wait { reason: String },
    /// `+discovered`: take `master` as the group's master (it may be down: then the next
    /// cycle fails over from it). No Redis command is sent.
    Adopt {
        master: NodeAddr,
        epoch: u64,
        reason: String,
    },
    /// `+selected-replica`: `failed` is down, promote `winner`.
    Failover {
        failed: NodeAddr,
        winner: NodeAddr,
        reason: String,
    },
    /// `+failover-roll-forward`: the master is down and `winner` already answers as a master
    /// (a promotion that a previous leader or attempt left half done): adopt it with a new
    /// epoch and re-point the others.
    RollForward {
        failed: NodeAddr,
        winner: NodeAddr,
        reason: String,
    },
    /// `-failover-abort-no-good-slave`: the master is down and no replica may be promoted.
    NoCandidate { failed: NodeAddr, reason: String },
    /// `-failover-abort-paused`: the master is down but an operator paused automatic
    /// failover; the topology is published (master listed unavailable) and nothing else.
    Paused { failed: NodeAddr, reason: String },
    /// `-master-lost`: the master answers but is not a master any more; rediscover.
    Forget { master: NodeAddr, reason: String },
    /// `+reconf-replica`: make each of `nodes` a replica of `master`.
    Reconfigure {
        nodes: Vec<NodeAddr>,
        master: NodeAddr,
        reason: String,
    },
    /// `+publish`: write `topology` to `<root>/nodes`.
    Publish { topology: Topology, reason: String },
    /// All is as published.
    Steady,
}

impl Decision {
    /// The stable event name that starts the decision's log line.
    pub fn event(&self) -> &'static str {
        match self {
            Decision::Wait { .. } => "-wait",
            Decision::Adopt { .. } => "+discovered",
            Decision::Failover { .. } => "+selected-replica",
            Decision::RollForward { .. } => "+failover-roll-forward",
            Decision::NoCandidate { .. } => "-failover-abort-no-good-slave",
            Decision::Paused { .. } => "-failover-abort-paused",
            Decision::Forget { .. } => "-master-lost",
            Decision::Reconfigure { .. } => "+reconf-replica",
            Decision::Publish { .. } => "+publish",
            Decision::Steady => "steady",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let event = self.event();
        match self {
            Decision::Wait { reason } => write!(f, "{event}: {reason}"),
            Decision::Adopt {
                master,
                epoch,
                reason,
            } => write!(f, "{event} master {master} epoch {epoch}: {reason}"),
            Decision::Failover {
                failed,
                winner,
                reason,
            }
            | Decision::RollForward {
                failed,
                winner,
                reason,
            } => write!(f, "{event} {winner} to replace {failed}: {reason}"),
            Decision::NoCandidate { failed, reason } | Decision::Paused { failed, reason } => {
                write!(f, "{event} master {failed} is down: {reason}")
            }
            Decision::Forget { master, reason } => write!(f, "{event} {master}: {reason}"),
            Decision::Reconfigure {
                nodes,
                master,
                reason,
            } => write!(f, "{event} {} -> replicaof {master}: {reason}", join(nodes)),
            Decision::Publish { topology, reason } => write!(
                f,
                "{event} master={} slaves=[{}] unavailable=[{}] epoch={}: {reason}",
                topology
                    .master
                    .as_ref()
                    .map_or("null".to_string(), |m| m.to_string()),
                join(&topology.slaves),
                join(&topology.unavailable),
                topology.epoch
            ),
            Decision::Steady => write!(f, "{event}"),
        }
    }
}

fn join(addrs: &[NodeAddr]) -> String {
    addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn up_info<'a>(view: &'a View, addr: &NodeAddr) -> Option<&'a NodeInfo> {
    view.get(addr).filter(|h| h.is_up()).and_then(|h| h.info())
}

/// What should be published for `master` given the view. Never more than one master: the
/// `master` field is the only place one can appear, and a node is listed as a replica only
/// when it reports that it replicates from it.
pub fn derive_topology(master: Option<&NodeAddr>, epoch: u64, view: &View) -> Topology {
    let master_up = master
        .and_then(|m| up_info(view, m))
        .is_some_and(|i| i.is_master());
    let mut topo = Topology {
        master: if master_up { master.cloned() } else { None },
        epoch,
        ..Topology::default()
    };
    for (addr, health) in view {
        if Some(addr) == master {
            if !master_up {
                topo.unavailable.push(addr.clone());
            }
            continue;
        }
        let follows_master = health.is_up()
            && health
                .info()
                .is_some_and(|i| master.is_some() && i.master() == master);
        // While the master is up a replica must also have its link up (a replica still
        // loading its first sync serves nothing useful). While it is down, replicas of it
        // still serve reads.
        let listed = follows_master && (!master_up || health.info().is_some_and(|i| i.link_up()));
        if listed {
            topo.slaves.push(addr.clone());
        } else {
            topo.unavailable.push(addr.clone());
        }
    }
    topo
}

/// Tunables of the decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// A replica whose link to the failed master went down longer than this before the
    /// master was seen down holds data too old to promote (Sentinel: 10 x down-after).
    pub link_grace: Duration,
    /// `--max-lag-bytes`: a replica further behind the failed master's last known offset is
    /// not promoted (`None`: no bound).
    pub max_lag_bytes: Option<u64>,
}

/// Ranks promotion candidates: lower `replica-priority`, then larger replication offset,
/// then address (so every manager picks the same one). Only live replicas of the failed
/// master, not in a full sync, whose link was up within `link_grace` of the failure; priority
/// 0 never.
pub fn select_replica<'a>(
    view: &'a View,
    failed: &NodeAddr,
    now: Instant,
    policy: &Policy,
) -> Result<(&'a NodeAddr, String), String> {
    // Replicas lose their link when the master dies: allow the time since then too.
    let since_failure = view
        .get(failed)
        .and_then(|h| h.down_since())
        .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
    let grace = policy.link_grace + since_failure;
    let master_offset = view
        .get(failed)
        .and_then(|h| h.info())
        .map_or(0, |i| i.offset);
    let mut candidates: Vec<(&NodeAddr, &NodeInfo)> = Vec::new();
    let mut excluded = Vec::new();
    for (addr, health) in view {
        if addr == failed {
            continue;
        }
        let Some(info) = health.info().filter(|_| health.is_up()) else {
            excluded.push(format!("{addr} down"));
            continue;
        };
        let linked_recently = info.in_sync_within(grace);
        if info.is_master() {
            excluded.push(format!("{addr} is a master"));
        } else if info.master() != Some(failed) {
            let m = info.master().map_or("?".to_string(), |m| m.to_string());
            excluded.push(format!("{addr} replicates from {m}"));
        } else if info.priority == 0 {
            excluded.push(format!("{addr} has replica-priority 0"));
        } else if info.syncing() {
            excluded.push(format!("{addr} is in a full sync"));
        } else if let Some(max) = policy
            .max_lag_bytes
            .filter(|max| master_offset.saturating_sub(info.offset) > *max)
        {
            excluded.push(format!(
                "{addr} is {} bytes behind (--max-lag-bytes {max})",
                master_offset.saturating_sub(info.offset)
            ));
        } else if !linked_recently {
            excluded.push(format!(
                "{addr} has not been in sync with {failed} recently"
            ));
        } else {
            candidates.push((addr, info));
        }
    }
    candidates.sort_by(|(a, ai), (b, bi)| {
        ai.priority
            .cmp(&bi.priority)
            .then(bi.offset.cmp(&ai.offset))
            .then(a.cmp(b))
    });
    let ranking = candidates
        .iter()
        .map(|(a, i)| format!("{a} (priority {}, offset {})", i.priority, i.offset))
        .collect::<Vec<_>>()
        .join(" > ");
    let excluded = if excluded.is_empty() {
        String::new()
    } else {
        format!("; excluded: {}", excluded.join(", "))
    };
    match candidates.first() {
        Some((winner, _)) => Ok((winner, format!("ranking {ranking}{excluded}"))),
        None => Err(format!("no replica may be promoted{excluded}")),
    }
}

/// The leader's belief about its group, kept between cycles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupState {
    /// The group's master; `None` until discovered. It stays set while that master is down
    /// and nobody can replace it, so that it is taken back if it returns.
    pub master: Option<NodeAddr>,
    pub epoch: u64,
    /// `<root>/paused` as last read: no automatic failover while set, and it is copied into
    /// the published topology.
    pub paused: Option<redis_failover_client::PauseInfo>,
    /// The master's restart count (`NodeHealth::restarts`) when it became the master: a
    /// higher count means it restarted since.
    pub master_restarts: u64,
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
        return discover(view, published);
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
                return failover(state, why, view, published, now, policy)
            }
            (Status::Down, None) => {
                let why = master_health
                    .last_error()
                    .unwrap_or("unreachable")
                    .to_string();
                return failover(state, &why, view, published, now, policy);
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
            "it restarted (new run_id) and may have lost writes its replicas have",
            view,
            published,
            now,
            policy,
        );
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
    let mut topology = derive_topology(Some(master), state.epoch, view);
    topology.paused = state.paused.clone();
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

fn failover(
    state: &GroupState,
    why_down: &str,
    view: &View,
    published: Option<&Topology>,
    now: Instant,
    policy: &Policy,
) -> Decision {
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
    match select_replica(view, master, now, policy) {
        Ok((winner, ranking)) => Decision::Failover {
            failed: master.clone(),
            winner: winner.clone(),
            reason: format!("master down ({why_down}); {ranking}"),
        },
        Err(reason) => Decision::NoCandidate {
            failed: master.clone(),
            reason,
        },
    }
}

fn discover(view: &View, published: Option<&Topology>) -> Decision {
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
            return Decision::Adopt {
                master: p.clone(),
                epoch: published_epoch + 1,
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
                    reason: "the published master is up and reports role master".into(),
                };
            }
            if h.status() == Status::Down && follows(m) {
                return Decision::Adopt {
                    master: m.clone(),
                    epoch: published_epoch,
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

/// Which replica a manual request promotes, or why it is refused. With the master up the
/// target must be a replica of it with its link up; with the master down the usual
/// candidate rules apply.
pub fn judge_manual(
    state: &GroupState,
    view: &View,
    request: &ManualRequest,
    now: Instant,
    policy: &Policy,
) -> Result<NodeAddr, String> {
    let Some(master) = &state.master else {
        return Err("no master is known yet".into());
    };
    let master_up = up_info(view, master).is_some_and(|i| i.is_master());
    match request {
        ManualRequest::Refused => Err("already refused".into()),
        ManualRequest::Invalid(e) => Err(e.clone()),
        ManualRequest::AnySlave => select_replica(view, master, now, policy)
            .map(|(w, _)| w.clone())
            .map_err(|e| format!("ANY_SLAVE: {e}")),
        ManualRequest::To(to) => {
            if to == master {
                return Err(format!("{to} already is the master"));
            }
            if !view.contains_key(to) {
                return Err(format!("{to} is not one of the configured nodes"));
            }
            let Some(info) = up_info(view, to) else {
                return Err(format!("{to} is down"));
            };
            if info.master() != Some(master) {
                return Err(format!("{to} is not a replica of the master {master}"));
            }
            if master_up && !info.link_up() {
                return Err(format!("{to} is not in sync with {master} (link down)"));
            }
            match select_replica(view, master, now, policy) {
                Err(e) => Err(format!("{to} may not be promoted: {e}")),
                Ok(_) => {
                    // Any ranked candidate may be named; the ranking only picks for ANY_SLAVE.
                    let mut one = View::new();
                    one.insert(master.clone(), view[master].clone());
                    one.insert(to.clone(), view[to].clone());
                    select_replica(&one, master, now, policy)
                        .map(|(w, _)| w.clone())
                        .map_err(|e| format!("{to} may not be promoted: {e}"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::info::Role;
    use std::time::{Duration, Instant};

    fn a(port: u16) -> NodeAddr {
        NodeAddr::new("h", port)
    }

    /// A node in a test view: `M` master, `R(p)` replica of port p, `Rd(p)` replica whose link
    /// just went down, `Sync(p)` replica in its first full sync, `Stale(p)` replica whose link
    /// has been down for an hour, `Down`, `Unknown`; then offset and priority.
    #[derive(Clone, Copy)]
    enum N {
        M(u64),
        R(u16, u64, u32),
        Rd(u16, u64),
        Sync(u16),
        Stale(u16, u64),
        Down,
        Unknown,
    }

    const POLICY: Policy = Policy {
        link_grace: Duration::from_secs(20),
        max_lag_bytes: None,
    };

    /// A base time far enough from the clock's origin to subtract hours from.
    fn t0() -> Instant {
        Instant::now() + Duration::from_secs(100_000)
    }

    fn view(nodes: &[(u16, N)], now: Instant) -> View {
        let mut v = View::new();
        for (port, n) in nodes {
            let mut h = NodeHealth::new();
            let info = |role, offset, priority| NodeInfo {
                role,
                offset,
                priority,
            };
            let replica = |m: u16, link_up, syncing, down: Option<u64>| Role::Replica {
                master: a(m),
                link_up,
                syncing,
                link_down_secs: down,
            };
            match *n {
                N::M(off) => {
                    h.on_success(now, Some(info(Role::Master, off, 100)), None);
                }
                N::R(m, off, prio) => {
                    h.on_success(
                        now,
                        Some(info(replica(m, true, false, None), off, prio)),
                        None,
                    );
                }
                N::Rd(m, off) => {
                    h.on_success(
                        now,
                        Some(info(replica(m, false, false, Some(1)), off, 100)),
                        None,
                    );
                }
                N::Sync(m) => {
                    h.on_success(now, Some(info(replica(m, false, true, None), 0, 100)), None);
                }
                N::Stale(m, off) => {
                    h.on_success(
                        now,
                        Some(info(replica(m, false, false, Some(3600)), off, 100)),
                        None,
                    );
                }
                N::Down => {
                    h.on_success(now, Some(info(Role::Master, 0, 100)), None);
                    for _ in 0..3 {
                        h.on_failure(now + Duration::from_millis(5), "connection refused", 3);
                    }
                }
                N::Unknown => {}
            }
            v.insert(a(*port), h);
        }
        v
    }

    fn st(master: Option<u16>, epoch: u64) -> GroupState {
        GroupState {
            master: master.map(a),
            epoch,
            paused: None,
            master_restarts: 0,
        }
    }

    fn paused(state: GroupState) -> GroupState {
        GroupState {
            paused: Some(redis_failover_client::PauseInfo {
                since_ms: 1,
                reason: "upgrade".into(),
                by: "ops".into(),
            }),
            ..state
        }
    }

    fn topo(master: Option<u16>, slaves: &[u16], unavailable: &[u16], epoch: u64) -> Topology {
        Topology {
            master: master.map(a),
            slaves: slaves.iter().map(|p| a(*p)).collect(),
            unavailable: unavailable.iter().map(|p| a(*p)).collect(),
            epoch,
            ..Topology::default()
        }
    }

    use N::*;

    #[test]
    #[allow(clippy::type_complexity)]
    fn decisions() {
        let healthy = [(1, M(100)), (2, R(1, 100, 100)), (3, R(1, 90, 100))];
        let cases: Vec<(&str, GroupState, Vec<(u16, N)>, Option<Topology>, Decision)> = vec![
            (
                "discovery waits for every node",
                st(None, 0),
                vec![(1, M(0)), (2, Unknown)],
                None,
                Decision::Wait { reason: "discovery waits for the first probe of h:2".into() },
            ),
            (
                "discovery: the only master",
                st(None, 0),
                healthy.to_vec(),
                None,
                Decision::Adopt { master: a(1), epoch: 0, reason: "the only node reporting role master".into() },
            ),
            (
                "discovery keeps the published epoch",
                st(None, 0),
                healthy.to_vec(),
                Some(topo(Some(1), &[2, 3], &[], 7)),
                Decision::Adopt { master: a(1), epoch: 7, reason: "the published master is up and reports role master".into() },
            ),
            (
                "discovery: a published master that is a replica now is not kept",
                st(None, 0),
                vec![(1, R(2, 5, 100)), (2, M(5)), (3, R(2, 5, 100))],
                Some(topo(Some(1), &[2, 3], &[], 3)),
                Decision::Adopt { master: a(2), epoch: 4, reason: "the only node reporting role master".into() },
            ),
            (
                "discovery: a down published master with followers is failed over from",
                st(None, 0),
                vec![(1, Down), (2, Rd(1, 5)), (3, Rd(1, 4))],
                Some(topo(Some(1), &[2, 3], &[], 3)),
                Decision::Adopt {
                    master: a(1),
                    epoch: 3,
                    reason: "the published master is down and replicas still follow it; failing over from it".into(),
                },
            ),
            (
                "discovery without znode: all replicas follow one down node",
                st(None, 0),
                vec![(1, Down), (2, Rd(1, 5)), (3, Rd(1, 4))],
                None,
                Decision::Adopt {
                    master: a(1),
                    epoch: 0,
                    reason: "no live master; every live replica follows this down node, failing over from it".into(),
                },
            ),
            (
                "discovery: two masters, one of them a recorded promotion",
                st(None, 0),
                vec![(1, M(0)), (2, M(9)), (3, R(1, 0, 100))],
                Some(Topology { promoting: Some(a(2)), ..topo(None, &[3], &[1, 2], 5) }),
                Decision::Adopt { master: a(2), epoch: 6, reason: "finishing the promotion recorded in the znode".into() },
            ),
            (
                "discovery: two masters",
                st(None, 0),
                vec![(1, M(0)), (2, M(0)), (3, R(1, 0, 100))],
                None,
                Decision::Wait {
                    reason: "nodes disagree: h:1,h:2 all report role master; not guessing, make all but one replicas (REPLICAOF)".into(),
                },
            ),
            (
                "discovery: a replica of an unknown node",
                st(None, 0),
                vec![(1, M(0)), (2, R(9, 0, 100))],
                None,
                Decision::Wait {
                    reason: "nodes disagree: h:2 replicates from h:9 (not a configured node); not guessing, check -n/--nodes".into(),
                },
            ),
            (
                "discovery: no master at all",
                st(None, 0),
                vec![(1, Down), (2, Down)],
                None,
                Decision::Wait { reason: "no node reports role master (live replicas follow: []); not guessing".into() },
            ),
            (
                "steady",
                st(Some(1), 2),
                healthy.to_vec(),
                Some(topo(Some(1), &[2, 3], &[], 2)),
                Decision::Steady,
            ),
            (
                "first publish",
                st(Some(1), 2),
                healthy.to_vec(),
                None,
                Decision::Publish { topology: topo(Some(1), &[2, 3], &[], 2), reason: "nothing valid published yet".into() },
            ),
            (
                "a replica went down",
                st(Some(1), 2),
                vec![(1, M(100)), (2, R(1, 100, 100)), (3, Down)],
                Some(topo(Some(1), &[2, 3], &[], 2)),
                Decision::Publish {
                    topology: topo(Some(1), &[2], &[3], 2),
                    reason: "the published topology differs from the nodes' state".into(),
                },
            ),
            (
                "a syncing replica is not listed yet",
                st(Some(1), 2),
                vec![(1, M(100)), (2, R(1, 100, 100)), (3, Rd(1, 0))],
                Some(topo(Some(1), &[2, 3], &[], 2)),
                Decision::Publish {
                    topology: topo(Some(1), &[2], &[3], 2),
                    reason: "the published topology differs from the nodes' state".into(),
                },
            ),
            (
                "the returning old master is made a replica",
                st(Some(2), 3),
                vec![(1, M(0)), (2, M(100)), (3, R(2, 100, 100))],
                Some(topo(Some(2), &[3], &[1], 3)),
                Decision::Reconfigure { nodes: vec![a(1)], master: a(2), reason: "h:1 is a master".into() },
            ),
            (
                "a replica of the old master is re-pointed",
                st(Some(2), 3),
                vec![(1, Down), (2, M(100)), (3, Rd(1, 100))],
                Some(topo(Some(2), &[], &[1, 3], 3)),
                Decision::Reconfigure { nodes: vec![a(3)], master: a(2), reason: "h:3 replicates from h:1".into() },
            ),
            (
                "master down: the larger offset wins",
                st(Some(1), 2),
                vec![(1, Down), (2, Rd(1, 90)), (3, Rd(1, 100))],
                None,
                Decision::Failover {
                    failed: a(1),
                    winner: a(3),
                    reason: "master down (connection refused); ranking h:3 (priority 100, offset 100) > h:2 (priority 100, offset 90)".into(),
                },
            ),
            (
                "master down: a lower priority beats a larger offset, priority 0 never",
                st(Some(1), 2),
                vec![(1, Down), (2, R(1, 10, 50)), (3, R(1, 100, 100)), (4, R(1, 200, 0))],
                None,
                Decision::Failover {
                    failed: a(1),
                    winner: a(2),
                    reason: "master down (connection refused); ranking h:2 (priority 50, offset 10) > h:3 (priority 100, offset 100); excluded: h:4 has replica-priority 0".into(),
                },
            ),
            (
                "master down: ties go to the lower address",
                st(Some(1), 2),
                vec![(1, Down), (3, R(1, 7, 100)), (2, R(1, 7, 100))],
                None,
                Decision::Failover {
                    failed: a(1),
                    winner: a(2),
                    reason: "master down (connection refused); ranking h:2 (priority 100, offset 7) > h:3 (priority 100, offset 7)".into(),
                },
            ),
            (
                "master down: nobody fit",
                st(Some(1), 2),
                vec![(1, Down), (2, R(1, 10, 0)), (3, Down)],
                None,
                Decision::NoCandidate {
                    failed: a(1),
                    reason: "no replica may be promoted; excluded: h:2 has replica-priority 0, h:3 down".into(),
                },
            ),
            (
                "master down: a recorded promotion is rolled forward",
                st(Some(1), 2),
                vec![(1, Down), (2, M(10)), (3, Rd(1, 10))],
                Some(Topology { promoting: Some(a(2)), ..topo(None, &[3], &[1, 2], 2) }),
                Decision::RollForward {
                    failed: a(1),
                    winner: a(2),
                    reason: "master down (connection refused) and h:2, recorded as being promoted, already is a master".into(),
                },
            ),
            (
                "paused: a down master is not replaced",
                paused(st(Some(1), 2)),
                vec![(1, Down), (2, Rd(1, 90)), (3, Rd(1, 100))],
                None,
                Decision::Paused {
                    failed: a(1),
                    reason: "automatic failover is paused (by ops: upgrade); `redis_node_manager resume` or a manual failover acts".into(),
                },
            ),
            (
                "paused: a recorded promotion is still finished (never two masters)",
                paused(st(Some(1), 2)),
                vec![(1, Down), (2, M(10)), (3, Rd(1, 10))],
                Some(Topology { promoting: Some(a(2)), ..topo(None, &[3], &[1, 2], 2) }),
                Decision::RollForward {
                    failed: a(1),
                    winner: a(2),
                    reason: "master down (connection refused) and h:2, recorded as being promoted, already is a master".into(),
                },
            ),
            (
                "paused: the pause is published with the topology",
                paused(st(Some(1), 2)),
                healthy.to_vec(),
                Some(topo(Some(1), &[2, 3], &[], 2)),
                Decision::Publish {
                    topology: Topology { paused: paused(st(None, 0)).paused, ..topo(Some(1), &[2, 3], &[], 2) },
                    reason: "the published topology differs from the nodes' state".into(),
                },
            ),
            (
                "paused and published as paused: steady",
                paused(st(Some(1), 2)),
                healthy.to_vec(),
                Some(Topology { paused: paused(st(None, 0)).paused, ..topo(Some(1), &[2, 3], &[], 2) }),
                Decision::Steady,
            ),
            (
                "master down: a node that merely claims master is not adopted",
                st(Some(1), 2),
                vec![(1, Down), (2, M(10)), (3, Rd(1, 10))],
                Some(topo(Some(1), &[2, 3], &[], 2)),
                Decision::Failover {
                    failed: a(1),
                    winner: a(3),
                    reason: "master down (connection refused); ranking h:3 (priority 100, offset 10); excluded: h:2 is a master".into(),
                },
            ),
            (
                "master down: only in-sync replicas of the failed master are candidates",
                st(Some(1), 2),
                vec![(1, Down), (2, Sync(1)), (3, Stale(1, 99)), (4, R(9, 99, 100)), (5, Rd(1, 5))],
                None,
                Decision::Failover {
                    failed: a(1),
                    winner: a(5),
                    reason: "master down (connection refused); ranking h:5 (priority 100, offset 5); excluded: h:2 is in a full sync, h:3 has not been in sync with h:1 recently, h:4 replicates from h:9".into(),
                },
            ),
            (
                "master down: a never-synced replica is no candidate at all",
                st(Some(1), 2),
                vec![(1, Down), (2, Sync(1))],
                None,
                Decision::NoCandidate {
                    failed: a(1),
                    reason: "no replica may be promoted; excluded: h:2 is in a full sync".into(),
                },
            ),
            (
                "a newer epoch published by someone else: rediscover",
                st(Some(1), 2),
                healthy.to_vec(),
                Some(Topology { manager: Some("other".into()), ..topo(Some(1), &[2, 3], &[], 5) }),
                Decision::Forget { master: a(1), reason: "epoch 5 is published (by other), newer than ours (2)".into() },
            ),
            (
                "master down: waits for unprobed nodes",
                st(Some(1), 2),
                vec![(1, Down), (2, Unknown), (3, R(1, 1, 100))],
                None,
                Decision::Wait { reason: "master h:1 is down, but h:2 is not probed yet".into() },
            ),
            (
                "master demoted behind our back",
                st(Some(1), 2),
                vec![(1, R(2, 0, 100)), (2, M(0))],
                None,
                Decision::Forget { master: a(1), reason: "it now reports role replica of h:2".into() },
            ),
        ];
        for (name, state, nodes, published, want) in cases {
            let now = t0();
            let got = decide(
                &state,
                &view(&nodes, now),
                published.as_ref(),
                &Votes::new(),
                now,
                &POLICY,
            );
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn votes_decide_whether_the_master_is_down() {
        let now = t0();
        let published = topo(Some(1), &[2, 3], &[], 2);
        let down_for_me = view(&[(1, Down), (2, Rd(1, 5)), (3, Rd(1, 4))], now);
        let up_for_me = view(&[(1, M(5)), (2, R(1, 5, 100)), (3, R(1, 4, 100))], now);
        let vote = |v: Verdict| Votes::from([(a(1), v)]);
        let d = |v: &View, votes: &Votes| {
            decide(&st(Some(1), 2), v, Some(&published), votes, now, &POLICY)
        };
        // Down for me, outvoted: wait, and say why.
        assert_eq!(
            d(&down_for_me, &vote(Verdict::Up("majority: down for 1 [me], up for 2 [a,b]".into()))),
            Decision::Wait { reason: "master h:1 is down for this manager, but not by vote (majority: down for 1 [me], up for 2 [a,b])".into() }
        );
        // Too few views: never act.
        assert!(matches!(
            d(&down_for_me, &vote(Verdict::Doubtful("only 1 of 2".into()))),
            Decision::Wait { .. }
        ));
        // Up for me, down by vote (e.g. `single`): fail over, naming the votes.
        match d(
            &up_for_me,
            &vote(Verdict::Down(
                "single: down for 1 [a], up for 1 [me]".into(),
            )),
        ) {
            Decision::Failover { winner, reason, .. } => {
                assert_eq!(winner, a(2));
                assert!(
                    reason.starts_with("master down (single: down for 1 [a], up for 1 [me])"),
                    "{reason}"
                );
            }
            other => panic!("expected a failover, got {other}"),
        }
        // No votes: my own probes decide, as a lone manager.
        assert!(matches!(
            d(&down_for_me, &Votes::new()),
            Decision::Failover { .. }
        ));
        assert_eq!(d(&up_for_me, &Votes::new()), Decision::Steady);
    }

    #[test]
    fn manual_requests_are_judged() {
        let now = t0();
        let healthy = view(
            &[
                (1, M(10)),
                (2, R(1, 10, 100)),
                (3, R(1, 9, 0)),
                (4, Sync(1)),
            ],
            now,
        );
        let st1 = st(Some(1), 1);
        let judge = |r: ManualRequest| judge_manual(&st1, &healthy, &r, now, &POLICY);
        assert_eq!(judge(ManualRequest::To(a(2))), Ok(a(2)));
        assert_eq!(judge(ManualRequest::AnySlave), Ok(a(2)));
        assert_eq!(
            judge(ManualRequest::To(a(1))),
            Err("h:1 already is the master".into())
        );
        assert_eq!(
            judge(ManualRequest::To(a(9))),
            Err("h:9 is not one of the configured nodes".into())
        );
        assert_eq!(
            judge(ManualRequest::To(a(4))),
            Err("h:4 is not in sync with h:1 (link down)".into())
        );
        assert!(judge(ManualRequest::To(a(3)))
            .expect_err("priority 0")
            .contains("replica-priority 0"));
        assert_eq!(
            judge_manual(
                &st(None, 0),
                &healthy,
                &ManualRequest::AnySlave,
                now,
                &POLICY
            ),
            Err("no master is known yet".into())
        );
    }

    #[test]
    fn the_lag_bound_excludes_replicas_too_far_behind() {
        let now = t0();
        let mut v = view(&[(2, Rd(1, 900)), (3, Rd(1, 400))], now);
        // The failed master was last seen at offset 1000.
        let mut m = NodeHealth::new();
        m.on_success(
            now,
            Some(NodeInfo {
                role: Role::Master,
                offset: 1000,
                priority: 100,
            }),
            None,
        );
        for _ in 0..3 {
            m.on_failure(now, "connection refused", 3);
        }
        v.insert(a(1), m);
        let bound = |max| Policy {
            max_lag_bytes: max,
            ..POLICY
        };
        let pick = |p: Policy| select_replica(&v, &a(1), now, &p).map(|(w, _)| w.clone());
        assert_eq!(pick(bound(None)), Ok(a(2)));
        assert_eq!(pick(bound(Some(100))), Ok(a(2)));
        let err = pick(bound(Some(50))).expect_err("both too far behind");
        assert_eq!(
            err,
            "no replica may be promoted; excluded: h:2 is 100 bytes behind (--max-lag-bytes 50), h:3 is 600 bytes behind (--max-lag-bytes 50)"
        );
    }

    #[test]
    fn a_master_that_restarted_is_replaced_without_a_vote() {
        let now = t0();
        let mut v = view(&[(1, M(50)), (2, R(1, 400, 100)), (3, R(1, 390, 100))], now);
        let votes_up = Votes::from([(a(1), Verdict::Up("majority: up for 3".into()))]);
        let d = |v: &View, st: &GroupState| {
            decide(
                st,
                v,
                Some(&topo(Some(1), &[2, 3], &[], 2)),
                &votes_up,
                now,
                &POLICY,
            )
        };
        // Not restarted: steady.
        assert_eq!(d(&v, &st(Some(1), 2)), Decision::Steady);
        if let Some(h) = v.get_mut(&a(1)) {
            h.on_restart();
        }
        assert_eq!(
            d(&v, &st(Some(1), 2)),
            Decision::Failover {
                failed: a(1),
                winner: a(2),
                reason: "master down (it restarted (new run_id) and may have lost writes its replicas have); ranking h:2 (priority 100, offset 400) > h:3 (priority 100, offset 390)".into(),
            }
        );
        // A restart seen before it became the master (counted in the state) is history.
        let known = GroupState {
            master_restarts: 1,
            ..st(Some(1), 2)
        };
        assert_eq!(d(&v, &known), Decision::Steady);
    }

    #[test]
    fn derived_topology_never_lists_two_masters_or_a_dead_master() {
        let v = view(&[(1, Down), (2, M(5)), (3, R(1, 5, 100))], t0());
        let t = derive_topology(Some(&a(1)), 4, &v);
        assert_eq!(t, topo(None, &[3], &[1, 2], 4));
        let t = derive_topology(Some(&a(2)), 5, &v);
        assert_eq!(t, topo(Some(2), &[], &[1, 3], 5));
        let t = derive_topology(None, 0, &v);
        assert_eq!(t, topo(None, &[], &[1, 2, 3], 0));
    }

    #[test]
    fn decisions_read_as_one_line() {
        let d = Decision::Reconfigure {
            nodes: vec![a(1), a(3)],
            master: a(2),
            reason: "h:1 is a master".into(),
        };
        assert_eq!(
            d.to_string(),
            "+reconf-replica h:1,h:3 -> replicaof h:2: h:1 is a master"
        );
        let d = Decision::Publish {
            topology: topo(None, &[], &[1], 9),
            reason: "r".into(),
        };
        assert_eq!(
            d.to_string(),
            "+publish master=null slaves=[] unavailable=[h:1] epoch=9: r"
        );
    }
}
