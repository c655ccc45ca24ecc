//! Everything written to ZooKeeper, defined once for the node manager, the client and
//! operators' tools. Pure: encoding, decoding and invariants, no I/O.
//!
//! | znode (under the group's root)             | type                               | written by         |
//! |--------------------------------------------|------------------------------------|--------------------|
//! | `nodes`                                    | [`Topology`]                       | the leader         |
//! | `manager_node_state/<manager-id>`          | [`ManagerView`] (ephemeral)        | every manager      |
//! | `manual_failover`                          | [`ManualRequest`] / [`ManualRefusal`] | operators / the leader |
//! | `paused`                                   | [`PauseInfo`]                      | operators          |
//! | `failover_history`                         | a list of [`FailoverRecord`]       | the leader         |
//! | `master_redis_node_manager_lock/lock-*`    | the manager id (leader election)   | every manager      |
//!
//! Besides the groups' trees, the group registry (`/redis_failover_groups/<name>`, a
//! [`GroupEntry`] each) lists the groups added at run time ([`groups`]).
//!
//! [`ZnodePaths`] builds those paths from the root (`--znode-path`, default
//! [`DEFAULT_ROOT`]). The JSON keeps the Ruby `redis_failover` gem's keys where the gem has
//! them; fields are only ever added, never renamed, and every encoder writes the bytes the
//! first versions wrote (each file's tests decode today's exact strings and encode them
//! back).

mod addr;
pub mod groups;
mod history;
mod manual;
mod paths;
mod pause;
mod topology;
mod view;

pub use addr::{parse_addr_list, NodeAddr};
pub use groups::{GroupEntry, DEFAULT_GROUPS_ROOT};
pub use history::{FailoverKind, FailoverRecord};
pub use manual::{ManualRefusal, ManualRequest, ANY_SLAVE};
pub use paths::{ZnodePaths, DEFAULT_ROOT};
pub use pause::PauseInfo;
pub use topology::{Topology, TopologyError};
pub use view::ManagerView;

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in ms since the Unix epoch: the clock of every `*_ms` field on the wire. 0 if the
/// system clock is before 1970.
pub fn unix_ms() -> u64 {
    unix_ms_at(SystemTime::now())
}

/// `t` in ms since the Unix epoch (0 if `t` is before 1970).
pub fn unix_ms_at(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An address written in a test, `h:p`.
#[cfg(test)]
pub(crate) fn test_addr(s: &str) -> NodeAddr {
    s.parse().expect("test address")
}
