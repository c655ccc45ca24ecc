//! The pure core: what the probes' answers mean, how managers' views combine, what the
//! leader does next, and the names of the events it logs. No I/O and no clock here: `now`
//! comes in as an argument, so every rule is tested by tables without servers.
//!
//! - [`info`]: `INFO replication` parsed into a node's role, offset and link.
//! - [`health`]: one node's state (up, down, unknown) from its probe history.
//! - [`votes`]: several managers' views combined into "this node is down".
//! - [`event_names`]: every event name the manager logs, with its meaning.
//! - [`events`]: Sentinel's pub/sub events derived from two successive topologies.

pub mod event_names;
pub mod events;
pub mod health;
pub mod info;
pub mod votes;
