//! What one group's loop shows to the outside (HTTP, the Sentinel endpoint, metrics), as a
//! value refreshed through a `watch` channel: readers never reach into the loop, and every
//! manager, standby included, fills it from the published topology and its own probes.

use std::collections::BTreeMap;
use std::time::Instant;

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
    /// When the group's loop took it: the ages in `nodes` are as of then.
    #[serde(skip)]
    pub taken_at: Option<Instant>,
}

impl GroupSnapshot {
    /// The latest snapshot, its ages brought up to now (the loop refreshes it on every
    /// change, and only every few seconds when nothing changes).
    pub fn now(rx: &tokio::sync::watch::Receiver<GroupSnapshot>) -> GroupSnapshot {
        let mut s = rx.borrow().clone();
        if let Some(taken) = s.taken_at {
            let since = taken.elapsed().as_millis() as u64;
            for r in s.nodes.values_mut() {
                r.last_ok_ms_ago = r.last_ok_ms_ago.map(|ms| ms + since);
                r.down_for_ms = r.down_for_ms.map(|ms| ms + since);
            }
        }
        s
    }

    /// The most recent failover, if any is recorded.
    pub fn last_failover(&self) -> Option<&FailoverRecord> {
        self.history.last()
    }
}

/// The groups this manager watches, each as its loop's snapshot channel, in the order they
/// were started. It changes while the manager runs (`--groups-from-zookeeper`): the fronts
/// read it afresh on every request.
#[derive(Clone, Debug)]
pub struct GroupList(
    tokio::sync::watch::Receiver<Vec<tokio::sync::watch::Receiver<GroupSnapshot>>>,
);

impl GroupList {
    pub fn new(
        rx: tokio::sync::watch::Receiver<Vec<tokio::sync::watch::Receiver<GroupSnapshot>>>,
    ) -> Self {
        Self(rx)
    }

    /// The groups' channels now.
    pub fn channels(&self) -> Vec<tokio::sync::watch::Receiver<GroupSnapshot>> {
        self.0.borrow().clone()
    }

    /// Every group's snapshot now ([`GroupSnapshot::now`]).
    pub fn snapshots(&self) -> Vec<GroupSnapshot> {
        self.0.borrow().iter().map(GroupSnapshot::now).collect()
    }

    /// The snapshot of the group named `name`.
    pub fn find(&self, name: &str) -> Option<GroupSnapshot> {
        self.0
            .borrow()
            .iter()
            .find(|g| g.borrow().name == name)
            .map(GroupSnapshot::now)
    }

    /// The groups' names now.
    pub fn names(&self) -> Vec<String> {
        self.0
            .borrow()
            .iter()
            .map(|g| g.borrow().name.clone())
            .collect()
    }

    /// Waits until the list changes; false once it can change no more.
    pub async fn changed(&mut self) -> bool {
        self.0.changed().await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ages_are_brought_up_to_the_moment_of_reading() {
        let node: NodeAddr = "h:1".parse().expect("address");
        let mut s = GroupSnapshot {
            taken_at: Instant::now().checked_sub(Duration::from_secs(2)),
            ..GroupSnapshot::default()
        };
        let report = NodeReport {
            last_ok_ms_ago: Some(5),
            down_for_ms: Some(7),
            ..NodeReport::default()
        };
        s.nodes.insert(node.clone(), report);
        s.nodes
            .insert("h:2".parse().expect("address"), NodeReport::default());
        let (_tx, rx) = tokio::sync::watch::channel(s);
        let now = GroupSnapshot::now(&rx);
        let r = &now.nodes[&node];
        assert!(r.last_ok_ms_ago.is_some_and(|ms| ms >= 2005), "{r:?}");
        assert!(r.down_for_ms.is_some_and(|ms| ms >= 2007), "{r:?}");
        let never = &now.nodes[&"h:2".parse::<NodeAddr>().expect("address")];
        assert_eq!(never.last_ok_ms_ago, None, "unknown stays unknown");
    }
}
