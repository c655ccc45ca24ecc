//! The decision table's fixtures: test views written as one letter a node, the group state
//! and published topologies; [`table`] checks every branch of [`decide`], [`rules`] the
//! manual, lag, vote and restart rules, without servers.

use super::*;
use crate::core::fence::Fencing;
use crate::core::health::NodeHealth;
use crate::core::info::{NodeInfo, Role};
use crate::core::test_support::{a, answered, info, linked_to, replica_of};
use std::time::{Duration, Instant};

mod rules;
mod table;

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
    fencing: Fencing::None,
    synchronous_replicas: 0,
    replication_guard: false,
};

/// A base time far enough from the clock's origin to subtract hours from.
fn t0() -> Instant {
    Instant::now() + Duration::from_secs(100_000)
}

fn view(nodes: &[(u16, N)], now: Instant) -> View {
    let mut v = View::new();
    for (port, n) in nodes {
        let h = match *n {
            N::M(off) => answered(now, info(Role::Master, off)),
            N::R(m, off, priority) => answered(
                now,
                NodeInfo {
                    priority,
                    ..info(linked_to(m), off)
                },
            ),
            N::Rd(m, off) => answered(now, info(replica_of(m, false, false, Some(1)), off)),
            N::Sync(m) => answered(now, info(replica_of(m, false, true, None), 0)),
            N::Stale(m, off) => answered(now, info(replica_of(m, false, false, Some(3600)), off)),
            N::Down => down(now, 0),
            N::Unknown => NodeHealth::new(),
        };
        v.insert(a(*port), h);
    }
    v
}

/// A master last seen at `offset`, then refused three probes in a row (down).
fn down(now: Instant, offset: u64) -> NodeHealth {
    let mut h = answered(now, info(Role::Master, offset));
    for _ in 0..3 {
        h.on_failure(now + Duration::from_millis(5), "connection refused", 3);
    }
    h
}

/// The publication of `topology` because it differs from what the nodes report.
fn differs(topology: Topology) -> Decision {
    Decision::Publish {
        topology,
        reason: "the published topology differs from the nodes' state".into(),
    }
}

fn st(master: Option<u16>, epoch: u64) -> GroupState {
    GroupState {
        master: master.map(a),
        epoch,
        paused: None,
        master_restarts: 0,
        // Offsets just read: the table's failovers rank on them.
        offsets_read_at: Some(t0()),
        resyncing: Resyncing::default(),
        ..GroupState::default()
    }
}

fn paused(state: GroupState) -> GroupState {
    GroupState {
        paused: Some(redis_failover_client::wire::PauseInfo {
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
