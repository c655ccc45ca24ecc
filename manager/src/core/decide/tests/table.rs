//! Every branch of [`decide`]: one row a case (the group state, the nodes, what is
//! published) and the decision it must give.

use super::*;
use N::*;

#[test]
#[allow(clippy::type_complexity)]
fn decisions() {
    let healthy = [(1, M(100)), (2, R(1, 100, 100)), (3, R(1, 90, 100))];
    let rolled_forward = Decision::RollForward {
        failed: a(1),
        winner: a(2),
        reason: "master down (connection refused) and h:2, recorded as being promoted, already is a master".into(),
    };
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
            differs(topo(Some(1), &[2], &[3], 2)),
        ),
        (
            "a syncing replica is not listed yet",
            st(Some(1), 2),
            vec![(1, M(100)), (2, R(1, 100, 100)), (3, Rd(1, 0))],
            Some(topo(Some(1), &[2, 3], &[], 2)),
            differs(topo(Some(1), &[2], &[3], 2)),
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
            rolled_forward.clone(),
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
            rolled_forward.clone(),
        ),
        (
            "paused: the pause is published with the topology",
            paused(st(Some(1), 2)),
            healthy.to_vec(),
            Some(topo(Some(1), &[2, 3], &[], 2)),
            differs(Topology { paused: paused(st(None, 0)).paused, ..topo(Some(1), &[2, 3], &[], 2) }),
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
