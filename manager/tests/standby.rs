//! Three manager processes on one group: one leads, the others stand by; `kill -9` of the
//! leader hands the lock over within the ZooKeeper session timeout, and the new leader
//! fails the master over.

use std::time::{Duration, Instant};

use redis_failover_tests::manager::{lock_holders, ManagerMode, ManagerSet};
use redis_failover_tests::{for_a_while, wait_until_async, NodeRole, RedisGroup, Scene};

const BIN: &str = env!("CARGO_BIN_EXE_redis_node_manager");
const SESSION_MS: u64 = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_leader_is_killed() {
    let trio = RedisGroup::trio();
    let s = Scene::new("standby").await;
    let mut flags = ManagerSet::base_flags(&s.connect, &trio.addrs(), &s.root);
    flags.extend(["--zk-session-timeout-ms".into(), SESSION_MS.to_string()]);
    let mut managers = ManagerSet::new(ManagerMode::Process(BIN.into()), flags);
    let spawn =
        |set: &mut ManagerSet, name: &str| set.add(Some(name)).expect("spawn redis_node_manager");
    let a = spawn(&mut managers, "a");
    let t = s
        .wait_published(Duration::from_secs(30), "published by a", 2)
        .await;
    assert!(
        t.manager.as_deref().is_some_and(|m| m.ends_with("-a")),
        "{:?}",
        t.manager
    );
    let b = spawn(&mut managers, "b");
    wait_until_async(Duration::from_secs(30), "b queued behind a", || async {
        (lock_holders(&s.zk, &s.root).await.len() == 2).then_some(())
    })
    .await;
    let c = spawn(&mut managers, "c");
    let ids = wait_until_async(Duration::from_secs(30), "c queued behind b", || async {
        let ids = lock_holders(&s.zk, &s.root).await;
        (ids.len() == 3).then_some(ids)
    })
    .await;
    assert!(
        ids[0].ends_with("-a") && ids[1].ends_with("-b") && ids[2].ends_with("-c"),
        "{ids:?}"
    );

    let killed = Instant::now();
    assert!(managers.kill(a), "kill -9 of manager a");
    let ids = wait_until_async(Duration::from_secs(30), "a's lock gone", || async {
        let ids = lock_holders(&s.zk, &s.root).await;
        (ids.len() == 2).then_some(ids)
    })
    .await;
    assert!(ids[0].ends_with("-b"), "b leads next: {ids:?}");
    let took = killed.elapsed();
    assert!(
        took < Duration::from_millis(SESSION_MS * 5),
        "lock handed over after {took:?}, session timeout {SESSION_MS} ms"
    );

    // The new leader acts: kill the master, b fails it over and says so in the znode.
    trio.node(0).kill9();
    let t = s
        .wait(Duration::from_secs(30), "failover by b", |t| {
            t.master
                .as_ref()
                .is_some_and(|m| m.port != trio.node(0).port())
        })
        .await;
    assert!(
        t.manager.as_deref().is_some_and(|m| m.ends_with("-b")),
        "{:?}",
        t.manager
    );
    assert_eq!(t.epoch, 1);
    let masters = (1..3)
        .filter(|i| trio.node(*i).role() == Some(NodeRole::Master))
        .count();
    assert_eq!(masters, 1);
    // Exactly one failover, however many managers watched.
    for_a_while(
        Duration::from_secs(2),
        Duration::from_millis(100),
        || async {
            let now = s.topology().await;
            assert_eq!(now.map(|t| t.epoch), Some(1), "a second failover happened");
        },
    )
    .await;
    assert!(managers.is_running(b) && managers.is_running(c));
}
