//! The pure core: what the probes' answers mean, how managers' views combine, what the
//! leader does next, and the names of the events it logs. No I/O and no clock here: `now`
//! comes in as an argument, so every rule is tested by tables without servers.
//!
//! - [`info`]: `INFO replication` parsed into a node's role, offset and link.
//! - [`health`]: one node's state (up, down, unknown) from its probe history.
//! - [`votes`]: several managers' views combined into "this node is down".
//! - [`decide`]: the leader's one decision per cycle.
//! - [`select`]: which replica may replace a failed master, best first.
//! - [`derive`]: the topology to publish, from the nodes' roles.
//! - [`manual`]: an operator's manual failover request, judged.
//! - [`fence`]: self-fencing of the master (`min-replicas-to-write`) and its time bound.
//! - [`guard`]: the replication user that keeps replicas from syncing from a restarted master.
//! - [`promotion`]: the one promotion sequence's plan, for every kind of failover.
//! - [`event_names`]: every event name the manager logs, with its meaning.
//! - [`events`]: Sentinel's pub/sub events derived from two successive topologies.
//! - [`admit`]: which groups of the run-time registry may be watched, the same on every manager.

use std::collections::BTreeMap;

use redis_failover_client::NodeAddr;

pub mod admit;
pub mod decide;
pub mod derive;
pub mod event_names;
pub mod events;
pub mod fence;
pub mod guard;
pub mod health;
pub mod info;
pub mod manual;
pub mod promotion;
pub mod select;
#[cfg(test)]
pub(crate) mod test_support;
pub mod votes;

/// Every configured node of a group and what the probes know about it.
pub type View = BTreeMap<NodeAddr, health::NodeHealth>;
