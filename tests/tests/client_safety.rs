//! The client's partition-safety options against real processes: the write lease (writes stop
//! once the topology has been unconfirmed for longer than the lease, and resume on their own)
//! and synchronous mode (`WAIT` after every write). Each test has its own ZooKeeper when it
//! stops it.

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis_failover_client::{Client, NOT_REPLICATED, TOPOLOGY_UNCONFIRMED};
use redis_failover_tests::manager::managed_trio;
use redis_failover_tests::writer::{check_lost_acks, ClientWriter, Writer};
use redis_failover_tests::{
    group_topology, incr_twice_in_multi, wait_until_async, RedisGroup, Scene, ZkServer,
};

const DEADLINE: Duration = Duration::from_secs(30);
/// Bound on one write of a [`Writer`], and on stopping it.
const WRITE_BOUND: Duration = Duration::from_secs(20);

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

/// The error of `MULTI`, `cmd`, `EXEC` on `c`, which must fail; `what` names the attempt.
async fn failed_transaction(c: &mut Client, cmd: redis::Cmd, what: &str) -> redis::RedisError {
    redis::pipe()
        .atomic()
        .add_command(cmd)
        .query_async::<redis::Value>(c)
        .await
        .expect_err(what)
}

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
    let e = failed_transaction(
        &mut c,
        redis::Cmd::set("a", 1),
        "a transaction past the lease",
    )
    .await;
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

/// Asserts that `e` is the synchronous-mode error for 0 of 1 replica within `ms`.
fn assert_not_replicated(e: &redis::RedisError, ms: u64) {
    assert_eq!(e.code(), Some(NOT_REPLICATED), "{e}");
    assert_eq!(
        e.detail(),
        Some(
            format!(
                "0 of 1 required replicas acknowledged the write within {ms} ms; it may have \
                 been executed on the master"
            )
            .as_str()
        ),
        "{e}"
    );
}

/// A master with one replica, published under a scene named `name`, and a client in
/// synchronous(1, `timeout`) mode.
async fn synchronous_pair(name: &str, timeout: Duration) -> (RedisGroup, Scene, Client) {
    let pair = RedisGroup::start(1, &[]);
    let s = Scene::new(name).await;
    s.publish(&group_topology(&pair, 0)).await;
    let c = s
        .builder()
        .synchronous(1, timeout)
        .connect()
        .await
        .expect("connect");
    (pair, s, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_writes_wait_for_a_replica() {
    let timeout = Duration::from_millis(500);
    let (pair, s, mut c) = synchronous_pair("client_sync", timeout).await;
    let (master, replica) = (pair.node(0), pair.node(1));
    let mut reader = s
        .builder()
        .synchronous(1, timeout)
        .master_only(true)
        .connect()
        .await
        .expect("connect");

    // With the replica attached: every write path waits for it, and succeeds.
    let waits = master.calls("wait");
    let _: () = c.set("k", 1).await.expect("SET");
    let n: i64 = c.incr("n", 1).await.expect("INCR");
    let (a,): (i64,) = redis::pipe()
        .set("p", 1)
        .ignore()
        .incr("p", 1)
        .query_async(&mut c)
        .await
        .expect("pipeline");
    let (x, y) = incr_twice_in_multi(&mut c, "t").await.expect("transaction");
    assert_eq!((n, a, x, y), (1, 2, 1, 2));
    // Group commit: a WAIT may cover several writes, never none.
    let sent = master.calls("wait") - waits;
    assert!(sent > 0 && sent <= 4, "{sent} WAITs for 4 writes");
    // Acknowledged means on the replica: read it there at once.
    assert_eq!(replica.get("k").as_deref(), Some("1"));
    assert_eq!(replica.get("n").as_deref(), Some("1"));
    assert_eq!(replica.get("p").as_deref(), Some("2"));
    assert_eq!(replica.get("t").as_deref(), Some("2"));

    // The replica frozen: the writes are executed on the master but not confirmed.
    replica.sigstop();
    let started = Instant::now();
    let e = c
        .set::<_, _, ()>("k", 2)
        .await
        .expect_err("SET without a replica");
    assert!(
        started.elapsed() >= timeout,
        "failed after {:?}",
        started.elapsed()
    );
    assert_not_replicated(&e, 500);
    assert_eq!(
        master.get("k").as_deref(),
        Some("2"),
        "executed on the master"
    );
    let e = redis::pipe()
        .set("p", 5)
        .query_async::<redis::Value>(&mut c)
        .await
        .expect_err("pipeline without a replica");
    assert_not_replicated(&e, 500);
    let e = failed_transaction(
        &mut c,
        redis::Cmd::incr("t", 1),
        "transaction without a replica",
    )
    .await;
    assert_not_replicated(&e, 500);
    // Not retried: one SET reached the master per failed write.
    let sets = master.calls("set");
    let _ = c
        .set::<_, _, ()>("k", 3)
        .await
        .expect_err("SET without a replica");
    assert_eq!(
        master.calls("set"),
        sets + 1,
        "a NOT_REPLICATED write was retried"
    );
    // Reads are unaffected (and send no WAIT), also on the master.
    let waits = master.calls("wait");
    for _ in 0..5 {
        let v: Option<i64> = reader.get("k").await.expect("GET");
        assert_eq!(v, Some(3));
    }
    assert_eq!(master.calls("wait"), waits, "a read sent a WAIT");

    replica.sigcont();
    wait_until_async(DEADLINE, "synchronous writes succeed again", || {
        let mut c = c.clone();
        async move { c.set::<_, _, ()>("k", 4).await.ok() }
    })
    .await;
    assert_eq!(replica.get("k").as_deref(), Some("4"));
}

/// Group commit: 50 tasks writing through one client (one master connection) share `WAIT`s,
/// and every acknowledged write is on the replica when acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_synchronous_writers_share_waits() {
    let (pair, _scene, c) = synchronous_pair("client_sync_group", Duration::from_secs(2)).await;
    let (master, replica) = (pair.node(0), pair.node(1));
    let (tasks, per_task) = (50, 40);
    let (waits, sets) = (master.calls("wait"), master.calls("set"));
    let writers: Vec<_> = (0..tasks)
        .map(|t| {
            let mut c = c.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..per_task {
                    let key = format!("g:{t}:{i}");
                    c.set::<_, _, ()>(&key, i).await.expect("synchronous SET");
                    acked.push((key, i));
                }
                acked
            })
        })
        .collect();
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.expect("writer"));
    }
    let writes = (tasks * per_task) as u64;
    assert_eq!(master.calls("set") - sets, writes);
    let sent = master.calls("wait") - waits;
    println!("{writes} writes, {sent} WAITs");
    assert!(
        sent > 0 && sent * 4 <= writes,
        "{sent} WAITs for {writes} concurrent writes: not shared"
    );
    for (key, v) in &acked {
        assert_eq!(
            replica.get(key),
            Some(v.to_string()),
            "{key} not on the replica"
        );
    }
}

/// The replica frozen while several writers wait for one round after another: every one of
/// them fails with NOT_REPLICATED, about its own timeout after its reply; none succeeds. A
/// write sent while a `WAIT` blocks the connection is answered only once that `WAIT` returns
/// (up to the timeout, plus Redis's timer granularity), hence the bound of 3 timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_synchronous_writers_all_fail_when_the_replica_is_frozen() {
    let timeout = Duration::from_millis(500);
    let (pair, _scene, c) = synchronous_pair("client_sync_frozen", timeout).await;
    let (master, replica) = (pair.node(0), pair.node(1));
    let _: () = c
        .clone()
        .set("warm", 1)
        .await
        .expect("SET with the replica");
    replica.sigstop();
    let waits = master.calls("wait");
    // Staggered, so that later writers join while an earlier WAIT is in flight.
    let writers: Vec<_> = (0..8u64)
        .map(|i| {
            let mut c = c.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50 * i)).await;
                let started = Instant::now();
                let r = c.set::<_, _, ()>(format!("f:{i}"), i).await;
                (i, r, started.elapsed())
            })
        })
        .collect();
    for w in writers {
        let (i, r, took) = w.await.expect("writer");
        println!("write {i}: {took:?} {r:?}");
        let e = r.expect_err("a write acknowledged without the replica");
        assert_not_replicated(&e, 500);
        assert!(
            took >= timeout && took < timeout * 3,
            "write {i} failed after {took:?}"
        );
        assert_eq!(master.get(&format!("f:{i}")), Some(i.to_string()));
    }
    let sent = master.calls("wait") - waits;
    assert!((1..=16).contains(&sent), "{sent} WAITs for 8 writes");
    replica.sigcont();
    wait_until_async(DEADLINE, "synchronous writes succeed again", || {
        let mut c = c.clone();
        async move { c.set::<_, _, ()>("k", 1).await.ok() }
    })
    .await;
}

/// `kill -9` of the master under load in synchronous(1) mode: the manager promotes the
/// replica with the largest offset, which holds every write a replica acknowledged, so
/// every acknowledged write is on the new master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_write_is_lost_when_the_master_is_killed_in_synchronous_mode() {
    let (trio, m, scene, before) = managed_trio("client_sync_kill", |_| {}).await;
    let c = scene
        .builder()
        .synchronous(1, Duration::from_secs(1))
        .connect()
        .await
        .expect("connect");
    let writers: Vec<Writer> = (0..4)
        .map(|_| Writer::spawn(ClientWriter(c.clone()), None, WRITE_BOUND))
        .collect();
    wait_until_async(DEADLINE, "writes acknowledged", || {
        let n: usize = writers.iter().map(Writer::acked).sum();
        async move { (n >= 2000).then_some(()) }
    })
    .await;
    trio.node(0).kill9();
    let killed = Instant::now();
    let t = scene
        .wait_new_master(DEADLINE, "a new master", &before)
        .await;
    let new_master = t.master.clone().expect("master");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    for w in &writers {
        w.wait_ack_after(killed + Duration::from_millis(1), deadline)
            .await
            .expect("writes acknowledged after the failover");
    }
    let mut logs = Vec::new();
    for w in writers {
        logs.push(w.stop(WRITE_BOUND).await);
    }
    // The writers all write `SET seq:N N`: a key holds its value whoever set it.
    let mut acked = 0;
    for log in &logs {
        acked += log.acks.len();
        let lost = check_lost_acks(&new_master, log).await.expect("loss check");
        assert!(
            lost.is_empty(),
            "{} of {} acknowledged writes lost: {:?}",
            lost.len(),
            log.acks.len(),
            lost.iter().take(5).collect::<Vec<_>>()
        );
    }
    println!("{acked} acknowledged writes, none lost; new master {new_master}");
    m.stop().await.expect("stop");
}
