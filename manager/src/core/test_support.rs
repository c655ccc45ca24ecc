//! Test-only builders shared by the core's table tests: node addresses, `INFO` answers and
//! probe histories, so that each test states only what differs.

use std::fmt::Debug;
use std::time::Instant;

use redis_failover_client::NodeAddr;

use super::health::NodeHealth;
use super::info::{NodeInfo, Role};

/// The node `h:port`.
pub(crate) fn a(port: u16) -> NodeAddr {
    NodeAddr::new("h", port)
}

/// What `INFO` says of a node in `role` at `offset`: priority 100, not fenced, no
/// replication history ids, no followers.
pub(crate) fn info(role: Role, offset: u64) -> NodeInfo {
    NodeInfo {
        role,
        offset,
        priority: 100,
        fenced: false,
        replid: String::new(),
        replid2: String::new(),
        second_offset: 0,
        followers: Vec::new(),
        lagging: Vec::new(),
    }
}

/// A replica of `h:master`; `link_down_secs` as `INFO` reports it (`None` while the link
/// is up), no last I/O reported.
pub(crate) fn replica_of(
    master: u16,
    link_up: bool,
    syncing: bool,
    link_down_secs: Option<u64>,
) -> Role {
    Role::Replica {
        master: a(master),
        link_up,
        syncing,
        link_down_secs,
        last_io_secs: None,
    }
}

/// A replica of `h:master` with its link up, not syncing.
pub(crate) fn linked_to(master: u16) -> Role {
    replica_of(master, true, false, None)
}

/// A replica of `h:master`, link up, that last heard from its master `secs` ago.
pub(crate) fn heard(master: u16, secs: u64) -> Role {
    let mut role = linked_to(master);
    if let Role::Replica { last_io_secs, .. } = &mut role {
        *last_io_secs = Some(secs);
    }
    role
}

/// A node whose one probe, at `now`, got `info`.
pub(crate) fn answered(now: Instant, info: NodeInfo) -> NodeHealth {
    let mut h = NodeHealth::new();
    h.on_success(now, Some(info), None);
    h
}

/// A table row's check: `got` equals `want`'s value, or is an error containing `want`'s
/// text; `name` names the row in the failure.
pub(crate) fn assert_outcome<T: PartialEq + Debug>(
    name: &str,
    got: Result<T, String>,
    want: Result<T, &str>,
) {
    match (got, want) {
        (Ok(g), Ok(w)) => assert_eq!(g, w, "{name}"),
        (Err(g), Err(w)) => assert!(g.contains(w), "{name}: {g}"),
        (g, w) => panic!("{name}: got {g:?}, want {w:?}"),
    }
}
