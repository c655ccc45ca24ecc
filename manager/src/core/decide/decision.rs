//! The leader's decisions: one per cycle, each with a stable event name and a sentence that
//! says why (the log line).

use std::fmt;
use std::time::Duration;

use redis_failover_client::{NodeAddr, Topology};

use crate::core::event_names as ev;
use crate::core::fence::FenceSetting;

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
        /// How long its publication waits (a promotion finished for a previous leader, from
        /// a master that may still take writes until its fence bound).
        hold: Duration,
        reason: String,
    },
    /// `+refresh-offsets`: `failed` is down and a replica may replace it; read `nodes`'
    /// offsets now (they are up to a poll interval old) and decide again at once.
    RefreshOffsets {
        failed: NodeAddr,
        nodes: Vec<NodeAddr>,
        reason: String,
    },
    /// `+selected-replica`: `failed` is down, promote `winner`, the way `mode` says.
    Failover {
        failed: NodeAddr,
        winner: NodeAddr,
        mode: Mode,
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
    /// `+fence`: set `setting` on `node` (see `fence.rs`).
    Fence {
        node: NodeAddr,
        setting: FenceSetting,
        reason: String,
    },
    /// `+guard`: put the replication user and credential on `node` (see `guard.rs`).
    Guard { node: NodeAddr, reason: String },
    /// `+publish`: write `topology` to `<root>/nodes`.
    Publish { topology: Topology, reason: String },
    /// All is as published.
    Steady,
}

/// How the failed master is known to be down, and so how its replacement proceeds (see
/// `docs/safety.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Proven gone: it closed our connection and then refused new ones (its process
    /// exited), or it restarted. Nobody can write to the old process: promote and publish
    /// at once.
    Gone,
    /// Hung: its host completes TCP handshakes on its port but the process answers nobody
    /// (SIGSTOP, a blocking command). A hung process serves no client either: promote and
    /// publish at once.
    Hung,
    /// Unreachable only (timeouts, resets, refusals without a close): it may still serve
    /// clients on its side of a partition. It is published unavailable, the winner is
    /// promoted and the other replicas re-pointed (so none acknowledges the old master any
    /// more), and the new master is published `hold` later, once the old one has fenced
    /// itself (`min-replicas-max-lag`).
    Unreachable { hold: Duration },
    /// Unreachable, with `--fencing none`: promote and publish at once (availability
    /// first; writes the old master takes meanwhile are lost when it rejoins).
    Unfenced,
    /// Outvoted, but this leader still reaches it as a master: a switchover (`FAILOVER
    /// TO`), which loses no acknowledged write.
    Reachable,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Gone => write!(f, "proven gone, publishing at once"),
            Mode::Hung => write!(
                f,
                "hung: its host accepts connections, the process answers nobody; publishing at once"
            ),
            Mode::Unreachable { hold } => write!(
                f,
                "unreachable, publishing after the {} ms fence bound",
                hold.as_millis()
            ),
            Mode::Unfenced => write!(f, "unreachable, --fencing none: publishing at once"),
            Mode::Reachable => write!(f, "still reachable by this leader: switchover"),
        }
    }
}

impl Decision {
    /// The stable event name that starts the decision's log line.
    pub fn event(&self) -> &'static str {
        match self {
            Decision::Wait { .. } => ev::WAIT,
            Decision::Adopt { .. } => ev::DISCOVERED,
            Decision::RefreshOffsets { .. } => ev::REFRESH_OFFSETS,
            Decision::Failover { .. } => ev::SELECTED_REPLICA,
            Decision::RollForward { .. } => ev::FAILOVER_ROLL_FORWARD,
            Decision::NoCandidate { .. } => ev::NO_GOOD_SLAVE,
            Decision::Paused { .. } => ev::FAILOVER_PAUSED,
            Decision::Forget { .. } => ev::MASTER_LOST,
            Decision::Reconfigure { .. } => ev::RECONF_REPLICA,
            Decision::Fence { .. } => ev::FENCE,
            Decision::Guard { .. } => ev::GUARD,
            Decision::Publish { .. } => ev::PUBLISH,
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
                hold,
                reason,
            } => {
                write!(f, "{event} master {master} epoch {epoch}: {reason}")?;
                if !hold.is_zero() {
                    write!(
                        f,
                        "; publishing it in {} ms, once the old master has fenced itself",
                        hold.as_millis()
                    )?;
                }
                Ok(())
            }
            Decision::Failover {
                failed,
                winner,
                mode,
                reason,
            } => write!(f, "{event} {winner} to replace {failed} ({mode}): {reason}"),
            Decision::RollForward {
                failed,
                winner,
                reason,
            } => write!(f, "{event} {winner} to replace {failed}: {reason}"),
            Decision::NoCandidate { failed, reason } | Decision::Paused { failed, reason } => {
                write!(f, "{event} master {failed} is down: {reason}")
            }
            Decision::Forget { master, reason } => write!(f, "{event} {master}: {reason}"),
            Decision::RefreshOffsets {
                failed,
                nodes,
                reason,
            } => write!(
                f,
                "{event} {} (master {failed} is down): {reason}",
                join(nodes)
            ),
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
            Decision::Fence {
                node,
                setting,
                reason,
            } => write!(f, "{event} {node}: {setting}: {reason}"),
            Decision::Guard { node, reason } => write!(
                f,
                "{event} {node}: replicas authenticate as {}: {reason}",
                crate::core::guard::USER
            ),
            Decision::Steady => write!(f, "{event}"),
        }
    }
}

pub(crate) fn join(addrs: &[NodeAddr]) -> String {
    addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
