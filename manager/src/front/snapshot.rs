//! What one group's loop shows to the outside (HTTP, the Sentinel endpoint, metrics), as a
//! value refreshed through a `watch` channel: readers never reach into the loop, and every
//! manager, standby included, fills it from the published topology and its own probes.

use std::collections::BTreeMap;

use redis_failover_client::wire::{FailoverRecord, ManagerView, PauseInfo};
use redis_failover_client::{NodeAddr, Topology};
use serde::Serialize;

/// One node as this manager's probes see it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NodeReport {
    /// `up`, `down` (after `--max-failures` failures) or `unknown` (not probed yet).
    pub status: String,
    /// `master` or `replica` by the node's last `INFO replication`; `None` before any.
    pub role: Option<String>,
    /// The master a replica follows.
    pub master: Option<NodeAddr>,
    /// A replica's `master_link_status:up`.
    pub link_up: bool,
    /// `master_repl_offset` / `slave_repl_offset`.
    pub offset: Option<u64>,
    /// How far a replica is behind the group's master (bytes), when both are known.
    pub lag_bytes: Option<u64>,
    /// `replica-priority`.
    pub priority: Option<u32>,
    /// Last probe round trip.
    pub latency_ms: Option<f64>,
    pub consecutive_failures: u32,
    /// Time since the last successful probe.
    pub last_ok_ms_ago: Option<u64>,
    /// Time since the node was marked down.
    pub down_for_ms: Option<u64>,
    pub last_error: Option<String>,
}

/// The settings a group is watched with (what Sentinel reports as `quorum`,
/// `down-after-milliseconds`, ...).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GroupSettings {
    pub max_failures: u32,
    pub down_after_ms: u64,
    /// `--node-strategy`.
    pub node_strategy: String,
    /// `--required-node-managers`: views needed before the leader acts.
    pub required_node_managers: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GroupSnapshot {
    pub name: String,
    pub znode_path: String,
    /// This manager holds the group's lock.
    pub leader: bool,
    /// The published topology, as last read (ZooKeeper watch) or written by this manager.
    pub topology: Option<Topology>,
    /// This manager's own view of the nodes.
    pub view: ManagerView,
    /// Details of every configured node, by this manager's probes.
    pub nodes: BTreeMap<NodeAddr, NodeReport>,
    /// Every live manager's view as published in ZooKeeper (this one's included), by id.
    pub views: BTreeMap<String, ManagerView>,
    /// The manager ids in lock order: the leader first, then the standbys in the order they
    /// would take over.
    pub managers_in_line: Vec<String>,
    /// `<root>/paused`, when automatic failover is paused.
    pub paused: Option<PauseInfo>,
    /// `<root>/failover_history`, oldest first.
    pub history: Vec<FailoverRecord>,
    pub settings: GroupSettings,
}

impl GroupSnapshot {
    /// The most recent failover, if any is recorded.
    pub fn last_failover(&self) -> Option<&FailoverRecord> {
        self.history.last()
    }
}
