//! The decision table: every branch of [`decide`], and the manual and lag rules, without
//! servers.

use super::*;
use crate::core::fence::Fencing;
use crate::core::health::NodeHealth;
use crate::core::info::{NodeInfo, Role};
use crate::core::manual::judge_manual;
use redis_failover_client::wire::ManualRequest;
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
        let mut h = NodeHealth::new();
        let info = |role, offset, priority| NodeInfo {
            role,
            offset,
            priority,
            fenced: false,
            replid: String::new(),
            replid2: String::new(),
            second_offset: 0,
            followers: Vec::new(),
        };
        let replica = |m: u16, link_up, syncing, down: Option<u64>| Role::Replica {
            master: a(m),
            link_up,
            syncing,
            link_down_secs: down,
            last_io_secs: None,
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
            Decision::Adopt { master: a(1), epoch: 0, hold: Duration::ZERO, reason: "the only node reporting role master".into() },
        ),
        (
            "discovery keeps the published epoch",
            st(None, 0),
            healthy.to_vec(),
            Some(topo(Some(1), &[2, 3], &[], 7)),
            Decision::Adopt { master: a(1), epoch: 7, hold: Duration::ZERO, reason: "the published master is up and reports role master".into() },
        ),
        (
            "discovery: a published master that is a replica now is not kept",
            st(None, 0),
            vec![(1, R(2, 5, 100)), (2, M(5)), (3, R(2, 5, 100))],
            Some(topo(Some(1), &[2, 3], &[], 3)),
            Decision::Adopt { master: a(2), epoch: 4, hold: Duration::ZERO, reason: "the only node reporting role master".into() },
        ),
        (
            "discovery: a down published master with followers is failed over from",
            st(None, 0),
            vec![(1, Down), (2, Rd(1, 5)), (3, Rd(1, 4))],
            Some(topo(Some(1), &[2, 3], &[], 3)),
            Decision::Adopt {
                master: a(1),
                epoch: 3,
                hold: Duration::ZERO,
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
                hold: Duration::ZERO,
                reason: "no live master; every live replica follows this down node, failing over from it".into(),
            },
        ),
        (
            "discovery: two masters, one of them a recorded promotion",
            st(None, 0),
            vec![(1, M(0)), (2, M(9)), (3, R(1, 0, 100))],
            Some(Topology { promoting: Some(a(2)), ..topo(None, &[3], &[1, 2], 5) }),
            Decision::Adopt { master: a(2), epoch: 6, hold: Duration::ZERO, reason: "finishing the promotion recorded in the znode".into() },
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
                mode: Mode::Unfenced,
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
                mode: Mode::Unfenced,
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
                mode: Mode::Unfenced,
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
                mode: Mode::Unfenced,
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
                mode: Mode::Unfenced,
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
    let d =
        |v: &View, votes: &Votes| decide(&st(Some(1), 2), v, Some(&published), votes, now, &POLICY);
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
            fenced: false,
            replid: String::new(),
            replid2: String::new(),
            second_offset: 0,
            followers: Vec::new(),
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
            mode: Mode::Gone,
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
    let none = std::collections::BTreeSet::new();
    let t = derive_topology(Some(&a(1)), 4, &v, &none);
    assert_eq!(t, topo(None, &[3], &[1, 2], 4));
    let t = derive_topology(Some(&a(2)), 5, &v, &none);
    assert_eq!(t, topo(Some(2), &[], &[1, 3], 5));
    let t = derive_topology(None, 0, &v, &none);
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

#[test]
fn a_failover_ranks_on_offsets_read_now() {
    let now = t0();
    let v = view(&[(1, Down), (2, Rd(1, 5)), (3, Rd(1, 4))], now);
    let published = topo(Some(1), &[2, 3], &[], 2);
    let d = |st: &GroupState| decide(st, &v, Some(&published), &Votes::new(), now, &POLICY);
    let never_read = GroupState {
        offsets_read_at: None,
        ..st(Some(1), 2)
    };
    assert_eq!(
        d(&never_read),
        Decision::RefreshOffsets {
            failed: a(1),
            nodes: vec![a(2), a(3)],
            reason: "master down (connection refused); ranking on offsets read now".into(),
        }
    );
    let read_long_ago = GroupState {
        offsets_read_at: Some(now - OFFSETS_FRESH),
        ..st(Some(1), 2)
    };
    assert!(matches!(d(&read_long_ago), Decision::RefreshOffsets { .. }));
    assert!(matches!(d(&st(Some(1), 2)), Decision::Failover { winner, .. } if winner == a(2)));
    // Nobody to promote: no reading, the abort is decided at once.
    let alone = view(&[(1, Down), (2, Sync(1))], now);
    assert!(matches!(
        decide(
            &never_read,
            &alone,
            Some(&published),
            &Votes::new(),
            now,
            &POLICY
        ),
        Decision::NoCandidate { .. }
    ));
}

#[test]
fn an_unreplaceable_master_is_published_unavailable_once_and_a_restarted_one_kept() {
    let now = t0();
    let mut v = view(&[(1, Down), (2, Sync(1))], now);
    let state = st(Some(1), 3);
    let got = unreplaceable(&state, &v, None, &a(1), now);
    // A replica of the down master still serves reads.
    let want = topo(None, &[2], &[1], 3);
    assert_eq!(got.publish.as_ref(), Some(&want));
    assert_eq!(got.restart_kept, None);
    // Already published as such: nothing to write.
    assert_eq!(
        unreplaceable(&state, &v, Some(&want), &a(1), now).publish,
        None
    );
    // The master came back with a new run_id: kept, with its new restart count.
    v.insert(a(1), {
        let mut h = view(&[(1, M(0))], now).remove(&a(1)).expect("node 1");
        h.on_restart();
        h
    });
    let got = unreplaceable(&state, &v, Some(&want), &a(1), now);
    assert_eq!(got.restart_kept, Some(1));
    assert_eq!(got.publish.and_then(|t| t.master), Some(a(1)));
}

/// Right after a promotion the re-pointed replica's link is not up yet: the topology that
/// lists it stays (no `+sdown`), until its link is up or the grace is over.
#[test]
fn a_replica_resyncing_after_a_promotion_is_not_published_down() {
    use crate::core::derive::RESYNC_GRACE;
    let now = t0();
    let v = view(&[(1, Down), (2, M(100)), (3, Rd(2, 90))], now);
    let published = topo(Some(2), &[3], &[1], 4);
    let resyncing = GroupState {
        resyncing: Resyncing::new([a(3)].into(), now),
        ..st(Some(2), 4)
    };
    let d = |st: &GroupState, at| decide(st, &v, Some(&published), &Votes::new(), at, &POLICY);
    assert_eq!(d(&resyncing, now), Decision::Steady);
    // Not resyncing, or still down after the grace: unavailable.
    for (what, st, at) in [
        ("not re-pointed by the promotion", st(Some(2), 4), now),
        ("the grace is over", resyncing.clone(), now + RESYNC_GRACE),
    ] {
        assert_eq!(
            d(&st, at),
            Decision::Publish {
                topology: topo(Some(2), &[], &[1, 3], 4),
                reason: "the published topology differs from the nodes' state".into(),
            },
            "{what}"
        );
    }
    // A full sync is not a partial resync.
    let syncing = view(&[(1, Down), (2, M(100)), (3, Sync(2))], now);
    assert!(matches!(
        decide(&resyncing, &syncing, Some(&published), &Votes::new(), now, &POLICY),
        Decision::Publish { topology, .. } if topology.unavailable == vec![a(1), a(3)]
    ));
}
