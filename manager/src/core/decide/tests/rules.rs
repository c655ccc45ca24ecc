//! The rules around the table: votes, manual requests, the lag bound, restarts, offsets
//! read now, unreplaceable masters and replicas resyncing after a promotion.

use super::*;
use crate::core::manual::judge_manual;
use redis_failover_client::wire::ManualRequest;
use N::*;

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
    let mut m = answered(now, info(Role::Master, 1000));
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
            differs(topo(Some(2), &[], &[1, 3], 4)),
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
