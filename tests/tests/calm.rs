//! A calm group's probes (`health::calm`): its master is asked nothing between its
//! once-a-second `INFO`s (its parked read answers on the master's own timer, every probe
//! interval) and its replicas every few seconds, the master vouching for them in between;
//! a replica that hangs is still taken out of the read pool, once its master stops hearing
//! from it.

use std::time::{Duration, Instant};

use redis_failover_tests::manager::managed;
use redis_failover_tests::{wait_until, RedisGroup, RedisNode};

const DEADLINE: Duration = Duration::from_secs(30);

/// `INFO`, `ROLE` and `XREAD` calls the node has run (one `INFO commandstats`, which the
/// next reading counts as one more `INFO`; a blocked `XREAD` counts once it has ended).
fn counts(node: &RedisNode) -> [u64; 3] {
    let calls = node.calls_of(&["info", "role", "xread"]);
    [calls[0], calls[1], calls[2]]
}

/// `INFO`, `ROLE` and `XREAD` calls of each node of `trio` during `window` (the readings'
/// own `INFO` taken off).
fn calls_during(trio: &RedisGroup, window: Duration) -> Vec<[u64; 3]> {
    let before: Vec<[u64; 3]> = trio.nodes().iter().map(counts).collect();
    std::thread::sleep(window);
    trio.nodes()
        .iter()
        .zip(before)
        .map(|(n, [info, role, xread])| {
            let [i, r, x] = counts(n);
            [
                i.saturating_sub(info + 1),
                r.saturating_sub(role),
                x.saturating_sub(xread),
            ]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calm_group_asks_its_replicas_rarely_and_still_sees_one_hang() {
    let trio = RedisGroup::trio();
    let (m, s, _) = managed(&trio, "calm", |_| {}).await;
    // Calm once the master lists both replicas as heard from: then a replica gets an INFO
    // every 5 s, not every second as before.
    let window = Duration::from_secs(6);
    let calls = tokio::task::block_in_place(|| {
        wait_until(DEADLINE, "the replicas asked at most twice in 6 s", || {
            let calls = calls_during(&trio, window);
            calls[1..]
                .iter()
                .all(|[info, _, _]| *info <= 2)
                .then_some(calls)
        })
    });
    println!(
        "[INFO, ROLE, XREAD] calls in {window:?}: master {:?}, replicas {:?}",
        calls[0],
        &calls[1..]
    );
    let [master_info, master_role, master_xread] = calls[0];
    assert!(
        (4..=12).contains(&master_info),
        "the master's INFO once a second: {master_info} in {window:?}"
    );
    assert_eq!(
        master_role, 0,
        "nothing asked between the master's INFOs: {master_role} ROLE in {window:?}"
    );
    // Every 200 ms (the default probe interval) on the master's own timer: 30 in 6 s.
    assert!(
        (20..=45).contains(&master_xread),
        "the master's parked read answers every probe interval: {master_xread} in {window:?}"
    );
    for (i, [_, role, xread]) in calls[1..].iter().enumerate() {
        assert_eq!(*role, 0, "replica {}: no ROLE probes", i + 1);
        assert!(
            *xread <= 1,
            "replica {}: its parked read blocks 30 s: {xread} ended in {window:?}",
            i + 1
        );
    }

    // A replica that hangs stops acknowledging; its master's INFO shows it, the group is no
    // longer calm, and the replica's own probes time out: it leaves the read pool.
    let hung = trio.node(1);
    let t0 = Instant::now();
    hung.sigstop();
    let t = s
        .wait(DEADLINE, "the hung replica out of the read pool", |t| {
            !t.slaves.contains(&hung.node_addr())
        })
        .await;
    let took = t0.elapsed();
    println!("a hung replica of a calm group left the read pool after {took:?}");
    assert!(
        t.unavailable.contains(&hung.node_addr()),
        "listed unavailable: {t:?}"
    );
    hung.sigcont();
    s.wait(DEADLINE, "the replica back in the read pool", |t| {
        t.slaves.contains(&hung.node_addr())
    })
    .await;
    m.stop().await.expect("clean stop");
}
