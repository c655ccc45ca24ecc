//! The client's partition-safety options against real processes: the write lease (writes stop
//! once the topology has been unconfirmed for longer than the lease, and resume on their own)
//! and synchronous mode (`WAIT` after every write). Each test has its own ZooKeeper when it
//! stops it.

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis_failover_client::{Client, TOPOLOGY_UNCONFIRMED};
use redis_failover_tests::{group_topology, wait_until_async, RedisGroup, Scene, ZkServer};

const DEADLINE: Duration = Duration::from_secs(30);

/// The N of `topology unconfirmed for N ms: <rest>` in `e` (panics on another error).
fn unconfirmed_ms(e: &redis::RedisError, rest: &str) -> u128 {
    assert_eq!(e.code(), Some(TOPOLOGY_UNCONFIRMED), "{e}");
    let detail = e.detail().unwrap_or_default();
    let ms = detail
        .strip_prefix("topology unconfirmed for ")
        .and_then(|d| d.strip_suffix(&format!(" ms: {rest}")))
        .and_then(|n| n.parse().ok());
    ms.unwrap_or_else(|| panic!("unexpected error text: {detail:?}"))
}

const NOT_WRITING: &str = "not writing to a master that may have been replaced";
const NOT_READING: &str = "not reading from a topology that may have changed";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_stop_past_the_lease_and_resume_when_zookeeper_is_back() {
    let zk = ZkServer::start();
    let trio = RedisGroup::trio();
    let s = Scene::on(&zk, "client_lease").await;
    s.publish(&group_topology(&trio, 1)).await;
    let lease = Duration::from_secs(1);
    let connect = |stale: bool| s.builder().write_lease(lease).stale_reads(stale).connect();
    let mut c: Client = connect(true).await.expect("connect");
    let mut strict: Client = connect(false).await.expect("connect");
    let mut plain: Client = s.client().await;
    // Longer than the lease with ZooKeeper up: the heartbeats keep the topology confirmed.
    let until = tokio::time::Instant::now() + lease * 2;
    while tokio::time::Instant::now() < until {
        let _: () = c.set("k", 1).await.expect("SET with ZooKeeper up");
        let _: Option<i64> = strict.get("k").await.expect("GET with ZooKeeper up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // ZooKeeper frozen: its connections stay open and silent.
    zk.sigstop();
    let frozen = Instant::now();
    let mut n = 0u64;
    let (e, failed_after) = loop {
        n += 1;
        match c.set::<_, _, ()>("k", n).await {
            Ok(()) => {
                assert!(frozen.elapsed() < DEADLINE, "writes never stopped");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => break (e, frozen.elapsed()),
        }
    };
    let ms = unconfirmed_ms(&e, NOT_WRITING);
    println!("first refused write: {failed_after:?} after the freeze, {ms} ms unconfirmed");
    assert!(
        ms >= lease.as_millis(),
        "failed {ms} ms after the last confirmation"
    );
    // The last confirmation was at most a heartbeat (a quarter lease) before the freeze.
    assert!(
        failed_after >= lease * 3 / 4 - Duration::from_millis(50),
        "the first write failed {failed_after:?} after the freeze, before the lease ran out"
    );
    assert!(n > 1, "writes went on within the lease");

    // Past the lease: nothing reaches the master, whatever the write path.
    let master = trio.node(0);
    let sets = master.calls("set");
    let e = c
        .set::<_, _, ()>("k", 0)
        .await
        .expect_err("SET past the lease");
    unconfirmed_ms(&e, NOT_WRITING);
    let e = redis::pipe()
        .set("a", 1)
        .incr("b", 1)
        .query_async::<redis::Value>(&mut c)
        .await
        .expect_err("a pipeline past the lease");
    unconfirmed_ms(&e, NOT_WRITING);
    let e = redis::pipe()
        .atomic()
        .set("a", 1)
        .query_async::<redis::Value>(&mut c)
        .await
        .expect_err("a transaction past the lease");
    unconfirmed_ms(&e, NOT_WRITING);
    assert_eq!(master.calls("set"), sets, "a write was sent past the lease");
    // Reads: from the last topology with stale_reads(true) (the default), refused without.
    let _: Option<i64> = c.get("k").await.expect("a stale read");
    let e = strict
        .get::<_, Option<i64>>("k")
        .await
        .expect_err("a strict read");
    unconfirmed_ms(&e, NOT_READING);
    // Without a lease, writes go on (the default).
    let _: () = plain.set("k", 2).await.expect("SET without a lease");

    zk.sigcont();
    wait_until_async(DEADLINE, "writes succeed again", || {
        let mut c = c.clone();
        async move { c.set::<_, _, ()>("k", 3).await.ok() }
    })
    .await;
    let _: () = c.set("k", 4).await.expect("SET once confirmed");
    let v: Option<i64> = strict.get("k").await.expect("a strict read once confirmed");
    assert!(v.is_some());
}
