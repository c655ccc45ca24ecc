//! The partition-safety rules of [`decide`], without servers: how a down master is told
//! proven gone from merely unreachable, when an unreachable one may be replaced, and which
//! fence each node gets.

use super::*;
use crate::core::fence::{FenceSetting, Fencing};
use crate::core::health::{Evidence, NodeHealth};
use crate::core::info::{NodeInfo, Role};
use crate::core::test_support::{
    self as ts, a, answered, assert_outcome, heard, linked_to, replica_of,
};
use crate::core::votes::Verdict;

const FENCED: Policy = Policy {
    link_grace: Duration::from_secs(20),
    max_lag_bytes: None,
    fencing: Fencing::MinReplicas { max_lag_secs: 2 },
    synchronous_replicas: 0,
    replication_guard: false,
};

fn info(role: Role, fenced: bool) -> NodeInfo {
    NodeInfo {
        fenced,
        ..ts::info(role, 100)
    }
}

fn replica() -> Role {
    replica_of(1, false, false, Some(1))
}

/// Who a failover decision promotes, or why nobody may be.
fn winner_of(d: Decision) -> Result<NodeAddr, String> {
    match d {
        Decision::Failover { winner, .. } => Ok(winner),
        Decision::NoCandidate { reason, .. } => Err(reason),
        other => panic!("{other}"),
    }
}

/// How the master (h:1) failed, as its probes saw it.
#[derive(Clone, Copy)]
enum Failed {
    /// Closed our connection, then refused.
    Gone,
    /// Timeouts, its host unreachable.
    Silent,
    /// Timeouts while its host accepts connections.
    Hung,
}

/// h:1 the master (fenced or not when last seen) failed as `how`; h:2 and h:3 its
/// replicas, h:3 down when `h3_down`.
fn view(how: Failed, fenced: bool, h3_down: bool, now: Instant) -> View {
    let mut v = View::new();
    let mut m = answered(now, info(Role::Master, fenced));
    for i in 1..=3 {
        let at = now + Duration::from_millis(i);
        match how {
            Failed::Gone => m.on_failure_showing(at, "connection: refused", 3, Evidence::Gone),
            Failed::Silent => m.on_failure(at, "no reply within 333 ms", 3),
            Failed::Hung => {
                m.on_failure_showing(at, "no reply within 333 ms (hung)", 3, Evidence::Hung)
            }
        };
    }
    v.insert(a(1), m);
    for (port, down) in [(2, false), (3, h3_down)] {
        let mut h = answered(now, info(replica(), false));
        if down {
            h.on_failure(now + Duration::from_millis(5), "no reply", 1);
        }
        v.insert(a(port), h);
    }
    v
}

fn state(now: Instant) -> GroupState {
    GroupState {
        master: Some(a(1)),
        epoch: 2,
        offsets_read_at: Some(now),
        ..GroupState::default()
    }
}

fn decide_with(v: &View, policy: &Policy, votes: &Votes, now: Instant) -> Decision {
    decide(&state(now), v, None, votes, now, policy)
}

fn mode_of(d: &Decision) -> Result<Mode, String> {
    match d {
        Decision::Failover { mode, .. } => Ok(*mode),
        Decision::NoCandidate { reason, .. } => Err(reason.clone()),
        other => panic!("not a failover decision: {other}"),
    }
}

#[test]
fn a_down_master_is_replaced_the_way_its_failure_allows() {
    let now = Instant::now() + Duration::from_secs(1000);
    let none = Votes::new();
    let unfenced_policy = Policy {
        fencing: Fencing::None,
        ..FENCED
    };
    let hold = Duration::from_secs(4);
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, View, &Policy, Result<Mode, &str>)> = vec![
        (
            "proven gone: at once",
            view(Failed::Gone, true, false, now),
            &FENCED,
            Ok(Mode::Gone),
        ),
        (
            "proven gone, even unfenced and with a replica down",
            view(Failed::Gone, false, true, now),
            &FENCED,
            Ok(Mode::Gone),
        ),
        (
            "hung (its host accepts connections): at once, even unfenced",
            view(Failed::Hung, false, true, now),
            &FENCED,
            Ok(Mode::Hung),
        ),
        (
            "silent and fenced, every replica reachable: published after the fence bound",
            view(Failed::Silent, true, false, now),
            &FENCED,
            Ok(Mode::Unreachable { hold }),
        ),
        (
            "silent and never fenced: it may still take writes",
            view(Failed::Silent, false, false, now),
            &FENCED,
            Err("was not fenced when last seen"),
        ),
        (
            "silent, and a replica unreachable too: it could keep the master writable",
            view(Failed::Silent, true, true, now),
            &FENCED,
            Err("h:3 is unreachable too"),
        ),
        (
            "silent with --fencing none: at once",
            view(Failed::Silent, false, false, now),
            &unfenced_policy,
            Ok(Mode::Unfenced),
        ),
    ];
    for (name, v, policy, want) in cases {
        let got = mode_of(&decide_with(&v, policy, &none, now));
        assert_outcome(name, got, want);
    }
}

#[test]
fn a_master_outvoted_but_reachable_is_handed_over_by_a_switchover() {
    let now = Instant::now() + Duration::from_secs(1000);
    let mut v = view(Failed::Silent, true, false, now);
    if let Some(m) = v.get_mut(&a(1)) {
        m.on_success(
            now + Duration::from_millis(10),
            Some(info(Role::Master, true)),
            None,
        );
    }
    let mut votes = Votes::new();
    votes.insert(a(1), Verdict::Down("2 of 3 managers".into()));
    let later = now + Duration::from_millis(20);
    let d = decide_with(&v, &FENCED, &votes, later);
    assert_eq!(mode_of(&d), Ok(Mode::Reachable), "{d}");
    assert!(d.to_string().contains("switchover"), "{d}");
    // A switchover that just failed is not retried at once: the master is replaced as an
    // unreachable one (fenced, published after the bound).
    let failed = GroupState {
        switchover_failed_at: Some(later),
        ..state(later)
    };
    let d = decide(&failed, &v, None, &votes, later, &FENCED);
    assert_eq!(
        mode_of(&d),
        Ok(Mode::Unreachable {
            hold: Duration::from_secs(4)
        }),
        "{d}"
    );
    // This manager's own probes failing too: wait for their verdict, do not hand over.
    if let Some(m) = v.get_mut(&a(1)) {
        m.on_failure(later, "connection refused", 3);
    }
    let d = decide_with(&v, &FENCED, &votes, later);
    assert!(
        matches!(&d, Decision::Wait { reason } if reason.contains("own probes")),
        "{d}"
    );
}

#[test]
fn the_line_says_which_case_applied_and_how_long_it_waits() {
    let now = Instant::now() + Duration::from_secs(1000);
    let d = decide_with(
        &view(Failed::Silent, true, false, now),
        &FENCED,
        &Votes::new(),
        now,
    );
    let line = d.to_string();
    assert!(line.starts_with("+selected-replica h:2 to replace h:1 (unreachable, publishing after the 4000 ms fence bound): master down"), "{line}");
}

#[test]
fn each_live_node_gets_its_fence_once_per_restart() {
    let now = Instant::now() + Duration::from_secs(1000);
    let mut v = View::new();
    v.insert(a(1), answered(now, info(Role::Master, false)));
    v.insert(a(2), answered(now, info(linked_to(1), false)));
    let published = derive_topology(Some(&a(1)), 2, &v, &Default::default());
    let mut st = state(now);
    let set = |k| FenceSetting {
        min_replicas: k,
        max_lag_secs: 2,
    };
    let next =
        |st: &GroupState, v: &View| decide(st, v, Some(&published), &Votes::new(), now, &FENCED);
    assert!(
        matches!(next(&st, &v), Decision::Fence { node, setting, .. } if node == a(1) && setting == set(1))
    );
    st.fences.insert(a(1), (0, set(1)));
    assert!(
        matches!(next(&st, &v), Decision::Fence { node, setting, .. } if node == a(2) && setting == set(0))
    );
    st.fences.insert(a(2), (0, set(0)));
    assert_eq!(next(&st, &v), Decision::Steady);
    // A restart loses CONFIG SET: fenced again.
    if let Some(h) = v.get_mut(&a(1)) {
        h.on_restart();
    }
    st.master_restarts = 1;
    assert!(matches!(next(&st, &v), Decision::Fence { node, .. } if node == a(1)));
    // A failed CONFIG SET is not retried at once.
    st.fence_failed.insert(a(1), now);
    assert_eq!(next(&st, &v), Decision::Steady);
    // With --fencing none nothing is set.
    let off = Policy {
        fencing: Fencing::None,
        ..FENCED
    };
    let fresh = GroupState {
        master_restarts: 1,
        ..state(now)
    };
    assert_eq!(
        decide(&fresh, &v, Some(&published), &Votes::new(), now, &off),
        Decision::Steady
    );
}

#[test]
fn in_synchronous_mode_only_a_replica_with_every_acknowledged_write_is_promoted() {
    let now = Instant::now() + Duration::from_secs(1000);
    // h:1 gone; h:2 preferred by priority but behind; h:3 has the most data.
    let mut v = view(Failed::Gone, true, false, now);
    let set = |v: &mut View, port, offset, priority| {
        if let Some(h) = v.get_mut(&a(port)) {
            let mut i = info(replica(), false);
            i.offset = offset;
            i.priority = priority;
            h.on_success(now + Duration::from_millis(10), Some(i), None);
        }
    };
    set(&mut v, 2, 100, 10);
    set(&mut v, 3, 120, 100);
    let winner = |v: &View, n| match decide_with(
        v,
        &Policy {
            synchronous_replicas: n,
            ..FENCED
        },
        &Votes::new(),
        now + Duration::from_millis(20),
    ) {
        Decision::Failover { winner, .. } => Ok(winner),
        Decision::NoCandidate { reason, .. } => Err(reason),
        other => panic!("{other}"),
    };
    assert_eq!(winner(&v, 0), Ok(a(2)), "asynchronous: priority first");
    assert_eq!(winner(&v, 1), Ok(a(3)), "synchronous: the most data");
    // With h:3 unreachable, h:2 alone cannot tell whether it has every acknowledged write.
    if let Some(h) = v.get_mut(&a(3)) {
        h.on_failure(now + Duration::from_millis(15), "no reply", 1);
    }
    let refused = winner(&v, 1).expect_err("not enough replicas answer");
    assert!(refused.contains("only 1 of 2 replicas"), "{refused}");
    // With N = 2 (every replica has every acknowledged write), one replica is enough.
    assert_eq!(winner(&v, 2), Ok(a(2)));
}

#[test]
fn an_unreachable_master_its_replicas_still_hear_is_not_replaced() {
    let now = Instant::now() + Duration::from_secs(1000);
    let none = Votes::new();
    let hearing = |secs: u64| {
        let mut v = view(Failed::Silent, true, false, now);
        let mut h = NodeHealth::new();
        let role = heard(1, secs);
        h.on_success(now, Some(info(role, false)), None);
        v.insert(a(2), h);
        decide_with(&v, &FENCED, &none, now)
    };
    for secs in [0, 2] {
        let d = hearing(secs);
        assert!(
            matches!(&d, Decision::Wait { reason } if reason.contains(&format!("h:2 ({secs} s ago)"))
                && reason.contains("its replicas still hear from it")),
            "last heard {secs} s ago (max-lag 2): {d}"
        );
    }
    // Silent for longer than the fence's lag: the replicas can no longer be acknowledging
    // its writes.
    let d = hearing(3);
    assert_eq!(
        mode_of(&d),
        Ok(Mode::Unreachable {
            hold: Duration::from_secs(4)
        }),
        "{d}"
    );
}

fn with_history(role: Role, replid: &str, offset: u64) -> NodeInfo {
    NodeInfo {
        offset,
        replid: replid.into(),
        ..info(role, false)
    }
}

#[test]
fn the_guard_goes_on_the_master_first_then_on_replicas_in_sync() {
    let now = Instant::now() + Duration::from_secs(1000);
    let guarded = Policy {
        replication_guard: true,
        fencing: Fencing::None,
        ..FENCED
    };
    let linked = heard(1, 0);
    let mut v = View::new();
    for (port, role) in [(1, Role::Master), (2, linked.clone()), (3, replica())] {
        v.insert(a(port), answered(now, with_history(role, "r", 100)));
    }
    let mut st = state(now);
    let published = derive_topology(Some(&a(1)), st.epoch, &v, st.resyncing.at(now));
    let mut order = Vec::new();
    for _ in 0..4 {
        match decide(&st, &v, Some(&published), &Votes::new(), now, &guarded) {
            Decision::Guard { node, .. } => {
                st.guards.insert(node.clone(), 0);
                order.push(node);
            }
            Decision::Steady => break,
            other => panic!("unexpected: {other}"),
        }
    }
    assert_eq!(
        order,
        vec![a(1), a(2)],
        "h:3's link is down: not trusted yet"
    );
    // While the guard fails on the master, no replica gets it: it could not resync.
    let failing = GroupState {
        guard_failed: [(a(1), now)].into(),
        ..state(now)
    };
    let d = decide(&failing, &v, Some(&published), &Votes::new(), now, &guarded);
    assert!(!matches!(d, Decision::Guard { .. }), "{d}");
    // A restart loses the guard: it goes back on once the node is in sync again.
    if let Some(h) = v.get_mut(&a(2)) {
        h.on_restart();
    }
    let d = decide(&st, &v, Some(&published), &Votes::new(), now, &guarded);
    assert!(
        matches!(&d, Decision::Guard { node, .. } if *node == a(2)),
        "restarted: {d}"
    );
}

#[test]
fn a_master_that_restarted_while_nobody_watched_is_replaced_by_a_replica_with_the_data() {
    let now = Instant::now() + Duration::from_secs(1000);
    let mut v = View::new();
    let mut m = answered(now, with_history(Role::Master, "new", 0));
    // Started after its replicas lost their link (a second ago: `replica()`).
    m.on_identified(now.checked_sub(Duration::from_millis(500)));
    v.insert(a(1), m);
    for (port, offset) in [(2, 900), (3, 950)] {
        v.insert(
            a(port),
            answered(now, with_history(replica(), "old", offset)),
        );
    }
    // A leader that never saw its run_id change: no vote says it is down, it answers.
    let d = decide_with(&v, &FENCED, &Votes::new(), now);
    match &d {
        Decision::Failover {
            failed,
            winner,
            mode,
            reason,
        } => {
            assert_eq!((failed, winner, *mode), (&a(1), &a(3), Mode::Gone), "{d}");
            assert!(reason.contains("it restarted without its data"), "{d}");
        }
        other => panic!("not a failover: {other}"),
    }
}

#[test]
fn a_promotion_finished_for_a_cut_off_leader_is_published_only_after_the_fence_bound() {
    let now = Instant::now() + Duration::from_secs(1000);
    // h:1 went silent (unreachable, not proven gone); the previous leader recorded h:2's
    // promotion and promoted it, then was cut off while holding its publication.
    let mut v = view(Failed::Silent, true, false, now);
    let linked = heard(2, 0);
    for (port, role) in [(2, Role::Master), (3, linked)] {
        v.insert(a(port), answered(now, info(role, false)));
    }
    let recorded = Topology {
        master: None,
        slaves: vec![a(3)],
        unavailable: vec![a(1)],
        epoch: 2,
        updated_at_ms: 0,
        manager: Some("the cut-off leader".into()),
        promoting: Some(a(2)),
        paused: None,
    };
    let fresh = GroupState::default();
    let d = decide(&fresh, &v, Some(&recorded), &Votes::new(), now, &FENCED);
    let Decision::Adopt { master, hold, .. } = &d else {
        panic!("not an adoption: {d}");
    };
    assert_eq!((master, *hold), (&a(2), Duration::from_secs(4)), "{d}");
    let adopted = GroupState {
        master: Some(a(2)),
        epoch: 3,
        publish_not_before: Some(now + *hold),
        fences: [
            (
                a(2),
                (
                    0,
                    FenceSetting {
                        min_replicas: 1,
                        max_lag_secs: 2,
                    },
                ),
            ),
            (
                a(3),
                (
                    0,
                    FenceSetting {
                        min_replicas: 0,
                        max_lag_secs: 2,
                    },
                ),
            ),
        ]
        .into(),
        ..GroupState::default()
    };
    let d = decide(
        &adopted,
        &v,
        Some(&recorded),
        &Votes::new(),
        now + Duration::from_secs(1),
        &FENCED,
    );
    assert!(
        matches!(&d, Decision::Wait { reason } if reason.contains("holding the publication of h:2")),
        "{d}"
    );
    let d = decide(
        &adopted,
        &v,
        Some(&recorded),
        &Votes::new(),
        now + Duration::from_secs(5),
        &FENCED,
    );
    assert!(
        matches!(&d, Decision::Publish { topology, .. } if topology.master == Some(a(2))),
        "{d}"
    );
    // A master proven gone needs no hold.
    let gone = view(Failed::Gone, true, false, now);
    let mut v2 = v.clone();
    v2.insert(a(1), gone[&a(1)].clone());
    let d = decide(&fresh, &v2, Some(&recorded), &Votes::new(), now, &FENCED);
    assert!(
        matches!(&d, Decision::Adopt { hold, .. } if hold.is_zero()),
        "{d}"
    );
}

#[test]
fn in_synchronous_mode_a_replica_the_master_no_longer_listed_does_not_block_the_failover() {
    let now = Instant::now() + Duration::from_secs(1000);
    // h:1's last INFO (offset 100) lists `followers`; then it is gone. h:2 answers at
    // `h2_offset`; h:3 does not answer.
    let run = |followers: Vec<(NodeAddr, u64)>, h2_offset: u64| {
        let mut v = View::new();
        let mut m = NodeHealth::new();
        let last = NodeInfo {
            offset: 100,
            replid: "r".into(),
            followers,
            ..info(Role::Master, true)
        };
        m.on_success(now, Some(last), None);
        for i in 1..=3 {
            let at = now + Duration::from_millis(i);
            m.on_failure_showing(at, "connection: refused", 3, Evidence::Gone);
        }
        v.insert(a(1), m);
        let mut h2 = NodeHealth::new();
        let r = NodeInfo {
            offset: h2_offset,
            replid: "r".into(),
            ..info(replica(), false)
        };
        h2.on_success(now + Duration::from_millis(5), Some(r), None);
        v.insert(a(2), h2);
        let mut h3 = answered(now, info(replica(), false));
        h3.on_failure(now + Duration::from_millis(5), "no reply", 1);
        v.insert(a(3), h3);
        let sync = Policy {
            synchronous_replicas: 1,
            ..FENCED
        };
        winner_of(decide_with(
            &v,
            &sync,
            &Votes::new(),
            now + Duration::from_millis(20),
        ))
    };
    // h:3 had left the master before its last INFO: WAIT could not count it; h:2 has
    // everything up to that INFO and the rest was acknowledged by h:2.
    assert_eq!(run(vec![(a(2), 100)], 100), Ok(a(2)));
    // h:3 was online then: it may hold a write h:2 lacks.
    let refused = run(vec![(a(2), 100), (a(3), 100)], 100).expect_err("h:3 may hold a write");
    assert!(refused.contains("only 1 of 2 replicas"), "{refused}");
    // h:2 behind the master's last offset: h:3 may have acknowledged what h:2 lacks.
    let refused = run(vec![(a(2), 90)], 90).expect_err("h:2 behind");
    assert!(
        refused.contains("h:3 does not answer, and no replica that answers has offset 100"),
        "{refused}"
    );
}

#[test]
fn in_synchronous_mode_a_replica_hung_before_the_masters_last_info_does_not_block_the_failover() {
    let now = Instant::now() + Duration::from_secs(1000);
    let ms = Duration::from_millis;
    // h:3 stops answering (hung: its host accepts connections) at `h3_down`; h:1's last
    // INFO, asked at +100 ms, still lists it online with the offset it acknowledged, 80.
    let run = |h3_down: Duration, evidence: Evidence| {
        let mut v = View::new();
        let mut h3 = answered(now, info(replica(), false));
        for i in 0..3 {
            h3.on_failure_showing(now + h3_down + ms(i), "no reply within 333 ms", 3, evidence);
        }
        v.insert(a(3), h3);
        let mut m = NodeHealth::new();
        let last = NodeInfo {
            offset: 100,
            replid: "r".into(),
            followers: vec![(a(2), 100), (a(3), 80)],
            ..info(Role::Master, true)
        };
        m.on_success(now + ms(100), Some(last), None);
        for i in 1..=3 {
            m.on_failure_showing(now + ms(200 + i), "connection: refused", 3, Evidence::Gone);
        }
        v.insert(a(1), m);
        let mut h2 = NodeHealth::new();
        let r = NodeInfo {
            offset: 100,
            replid: "r".into(),
            ..info(replica(), false)
        };
        h2.on_success(now + ms(210), Some(r), None);
        v.insert(a(2), h2);
        let sync = Policy {
            synchronous_replicas: 1,
            ..FENCED
        };
        winner_of(decide_with(&v, &sync, &Votes::new(), now + ms(300)))
    };
    assert_eq!(
        run(ms(10), Evidence::Hung),
        Ok(a(2)),
        "hung before the INFO"
    );
    let after = run(ms(150), Evidence::Hung).expect_err("hung only after the INFO");
    assert!(after.contains("only 1 of 2 replicas"), "{after}");
    let silent = run(ms(10), Evidence::None).expect_err("merely unreachable: may be alive");
    assert!(silent.contains("only 1 of 2 replicas"), "{silent}");
}
