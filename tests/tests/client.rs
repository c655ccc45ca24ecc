//! The client library against real processes: routing, redis-rs compatibility, following a
//! failover, safe retries, and a corrupt or missing znode.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis_failover_client::{Client, ClientBuilder, ConnectError, Topology};
use redis_failover_tests::manager::managed_trio;
use redis_failover_tests::{
    for_a_while, group_topology, incr_twice_in_multi, wait_until_async, RedisGroup, RedisNode,
    Scene, ZkServer,
};

const DEADLINE: Duration = Duration::from_secs(30);
/// Bound on one write of a [`Writer`](redis_failover_tests::writer::Writer), and on stopping it.
const WRITE_BOUND: Duration = Duration::from_secs(60);

/// The error of connecting with `builder` (panics naming `what` when it connects).
async fn connect_err(builder: ClientBuilder, what: &str) -> ConnectError {
    builder.connect().await.err().expect(what)
}

/// Waits until `c` has adopted the topology of `epoch`.
async fn wait_epoch(c: &Client, epoch: u64) {
    let mut sub = c.subscribe();
    wait_until_async(DEADLINE, &format!("epoch {epoch} seen"), || {
        let e = sub.borrow_and_update().topology.epoch;
        async move { (e == epoch).then_some(()) }
    })
    .await;
}

/// The error `c` answers `cmd` with (panics naming `what` when it succeeds).
async fn refused(c: &mut Client, cmd: &redis::Cmd, what: &str) -> redis::RedisError {
    cmd.query_async::<redis::Value>(c).await.expect_err(what)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_go_to_the_master_and_reads_to_replicas() {
    let (trio, m, scene, _) = managed_trio("routing", |_| {}).await;
    let mut c = scene.client().await;
    for i in 0..100 {
        let _: () = c.set(format!("k{i}"), i).await.expect("SET");
    }
    // Replicas may lag a little behind the master: wait for the last key.
    // (EXISTS, not GET, so that the check does not count as a read below.)
    let has = |i: usize| trio.node(i).cmd(&["EXISTS", "k99"]).ok() == Some(redis::Value::Int(1));
    wait_until_async(DEADLINE, "replicas caught up", || async {
        (has(1) && has(2)).then_some(())
    })
    .await;
    for i in 0..100 {
        let v: Option<i64> = c.get(format!("k{i}")).await.expect("GET");
        assert_eq!(v, Some(i));
    }
    assert_eq!(trio.node(0).calls("get"), 0, "a read reached the master");
    let (r1, r2) = (trio.node(1).calls("get"), trio.node(2).calls("get"));
    assert_eq!(r1 + r2, 100);
    assert_eq!((r1, r2), (50, 50), "round robin over both replicas");
    assert!(trio.node(0).calls("set") >= 100);

    // redis-rs pipelines: all reads -> a replica; any write -> the master, as a whole.
    let (a, b): (Option<i64>, Option<i64>) = redis::pipe()
        .get("k1")
        .get("k2")
        .query_async(&mut c)
        .await
        .expect("read pipeline");
    assert_eq!((a, b), (Some(1), Some(2)));
    let before = trio.node(0).calls("get");
    let (_, v): ((), Option<i64>) = redis::pipe()
        .set("p", 7)
        .ignore()
        .get("p")
        .query_async(&mut c)
        .await
        .map(|(v,): (Option<i64>,)| ((), v))
        .expect("write pipeline");
    assert_eq!(v, Some(7), "read-your-write inside a pipeline with a write");
    assert_eq!(
        trio.node(0).calls("get"),
        before + 1,
        "the pipeline's GET ran on the master"
    );
    let (x, y) = incr_twice_in_multi(&mut c, "ctr")
        .await
        .expect("MULTI/EXEC");
    assert_eq!((x, y), (1, 2));

    // Server errors come back as they are, never retried.
    let _: () = c.lpush("list", "x").await.expect("LPUSH");
    let err = c
        .get::<_, Option<String>>("list")
        .await
        .expect_err("WRONGTYPE");
    assert_eq!(err.code(), Some("WRONGTYPE"), "{err}");
    m.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_fall_back_to_the_master_and_master_only_is_honoured() {
    let (trio, m, scene, _) = managed_trio("fallback", |_| {}).await;
    let mut only = scene
        .builder()
        .master_only(true)
        .connect()
        .await
        .expect("connect");
    let _: () = only.set("a", 1).await.expect("SET");
    for _ in 0..10 {
        let _: Option<i64> = only.get("a").await.expect("GET");
    }
    assert_eq!(
        trio.node(0).calls("get"),
        10,
        "master_only sends reads to the master"
    );
    assert_eq!(trio.node(1).calls("get") + trio.node(2).calls("get"), 0);

    let mut c = scene.client().await;
    trio.node(1).kill9();
    trio.node(2).kill9();
    let mut sub = c.subscribe();
    wait_until_async(DEADLINE, "no replica left in the client's topology", || {
        let seen = sub.borrow_and_update().topology.slaves.is_empty();
        async move { seen.then_some(()) }
    })
    .await;
    for _ in 0..10 {
        let v: Option<i64> = c.get("a").await.expect("GET without replicas");
        assert_eq!(v, Some(1));
    }
    assert_eq!(
        trio.node(0).calls("get"),
        20,
        "reads fell back to the master"
    );
    m.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_loop_survives_a_master_crash() {
    let (trio, m, scene, _) = managed_trio("survive", |_| {}).await;
    let mut c = scene.client().await;
    let old_master = c.topology().topology.master.clone();
    let mut acked: HashMap<u64, Instant> = HashMap::new();
    let mut errors = Vec::new();
    let start = Instant::now();
    let mut killed_at = None;
    let mut switched_at = None;
    let mut after_switch = 0;
    let mut seq = 0u64;
    while after_switch < 300 {
        assert!(
            start.elapsed() < DEADLINE,
            "the loop did not recover: {errors:?}"
        );
        seq += 1;
        match c.set::<_, _, ()>(format!("seq:{seq}"), seq).await {
            Ok(()) => {
                acked.insert(seq, Instant::now());
                if switched_at.is_some() {
                    after_switch += 1;
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
        if seq == 300 {
            killed_at = Some(Instant::now());
            trio.node(0).kill9();
        }
        if killed_at.is_some()
            && switched_at.is_none()
            && c.topology().topology.master != old_master
        {
            switched_at = Some(Instant::now());
        }
    }
    let new_master = c.topology().topology.master.clone().expect("a master");
    let node = trio.node_at(&new_master);
    let killed_at = killed_at.expect("killed");
    let mut missing = Vec::new();
    for (s, at) in &acked {
        if node.get(&format!("seq:{s}")).is_none() {
            missing.push((*s, *at));
        }
    }
    eprintln!(
        "write loop: {} acknowledged, {} errors surfaced, {} acknowledged writes missing (all acknowledged before the kill: {})",
        acked.len(),
        errors.len(),
        missing.len(),
        missing.iter().all(|(_, at)| *at <= killed_at)
    );
    // Asynchronous replication may lose what the master acknowledged just before it died,
    // never what the new master acknowledged.
    assert!(
        missing.iter().all(|(_, at)| *at <= killed_at),
        "lost writes acknowledged after the kill: {missing:?}"
    );
    assert!(errors.len() <= 3, "too many errors surfaced: {errors:?}");
    m.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_or_missing_znode_keeps_the_last_good_topology() {
    let trio = RedisGroup::trio();
    let scene = Scene::new("client_corrupt").await;
    let root = &scene.root;
    // No znode yet: connect says so.
    let err = connect_err(scene.builder(), "missing znode").await;
    assert!(
        err.to_string()
            .contains(&format!("{root}/nodes does not exist")),
        "{err}"
    );
    let good = group_topology(&trio, 3);
    scene.write("nodes", b"{broken").await;
    let err = connect_err(scene.builder(), "corrupt znode").await;
    assert!(err.to_string().contains("is corrupt"), "{err}");

    scene.publish(&good).await;
    let c = scene.client().await;
    assert_eq!(c.topology().topology.epoch, 3);
    scene.write("nodes", b"garbage").await;
    // Bounded observation: the view never changes and commands keep working.
    for_a_while(Duration::from_secs(1), Duration::from_millis(50), || {
        let mut c = c.clone();
        let good = &good;
        async move {
            let _: () = c.set("x", 1).await.expect("SET with a corrupt znode");
            assert_eq!(c.topology().topology, *good);
        }
    })
    .await;
    // A valid topology again is picked up.
    let newer = Topology {
        epoch: 4,
        ..good.clone()
    };
    scene.publish(&newer).await;
    wait_epoch(&c, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topology_with_an_older_epoch_is_never_adopted() {
    let trio = RedisGroup::trio();
    let scene = Scene::new("client_epoch").await;
    let newest = scene.publish_group(&trio, 5).await;
    let c = scene.client().await;
    assert_eq!(c.topology().topology, newest);
    // What a ZooKeeper server lagging behind would show: an older epoch naming another master.
    let older = Topology {
        master: Some(trio.node(1).node_addr()),
        slaves: vec![trio.node(0).node_addr()],
        epoch: 4,
        ..newest.clone()
    };
    scene.publish(&older).await;
    // Bounded observation: the client keeps the newer topology.
    for_a_while(
        Duration::from_secs(1),
        Duration::from_millis(50),
        || async {
            assert_eq!(c.topology().topology, newest, "went back to an older epoch");
        },
    )
    .await;
    // A newer epoch is adopted.
    let next = Topology { epoch: 6, ..older };
    scene.publish(&next).await;
    wait_epoch(&c, 6).await;
    assert_eq!(c.topology().topology.master, next.master);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_cut_mid_flight_is_not_sent_twice() {
    let dir = tempfile::tempdir().expect("tmp");
    let master = RedisNode::start(dir.path(), redis_failover_tests::free_port(), None, &[]);
    let scene = Scene::new("idempotent").await;
    scene
        .publish(&Topology {
            master: Some(master.node_addr()),
            ..Topology::default()
        })
        .await;
    let builder = scene
        .builder()
        .command_timeout(Duration::from_millis(300))
        .retry_backoff(Duration::from_millis(10));

    // Default: the INCR reaches the frozen master, times out, and is not sent again.
    let mut c = builder.clone().connect().await.expect("connect");
    master.sigstop();
    let err = c.incr::<_, _, i64>("n", 1).await.expect_err("timeout");
    assert!(err.to_string().contains("may have been executed"), "{err}");
    master.sigcont();
    wait_until_async(DEADLINE, "the INCR applied once", || async {
        (master.get("n").as_deref() == Some("1")).then_some(())
    })
    .await;
    // Reads are retried: a GET against a frozen master fails only after every retry.
    // With the opt-in, the same write is retried and lands more than once.
    let mut c = builder
        .retry_non_idempotent(true)
        .max_retries(2)
        .connect()
        .await
        .expect("connect");
    master.sigstop();
    let r = c.incr::<_, _, i64>("m", 1).await;
    master.sigcont();
    assert!(r.is_err());
    wait_until_async(DEADLINE, "all three INCRs applied", || async {
        (master.get("m").as_deref() == Some("3")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_errors_are_clear() {
    let err = connect_err(
        Client::builder(format!("127.0.0.1:{}", redis_failover_tests::free_port()))
            .zk_session_timeout(Duration::from_millis(1500)),
        "no ZooKeeper",
    )
    .await;
    assert!(err.to_string().contains("ZooKeeper at 127.0.0.1:"), "{err}");
    let err = connect_err(Client::builder("nonsense"), "bad servers").await;
    assert!(err.to_string().contains("zkservers"), "{err}");
    let single = RedisGroup::start(0, &[]);
    let scene = Scene::new("pubsub").await;
    scene.publish(&group_topology(&single, 0)).await;
    let mut c = scene.client().await;
    let err = refused(&mut c, redis::cmd("SUBSCRIBE").arg("ch"), "pub/sub refused").await;
    assert!(err.to_string().contains("SUBSCRIBE"), "{err}");
    let err = refused(&mut c, redis::cmd("SELECT").arg(1), "SELECT refused").await;
    assert!(err.to_string().contains("SELECT"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_blocking_commands_and_manual_failover_requests() {
    let trio = RedisGroup::start(1, &[]);
    let scene = Scene::new("client_misc").await;
    scene.publish(&group_topology(&trio, 0)).await;
    let mut c = scene
        .builder()
        .namespace("app:")
        .connect()
        .await
        .expect("connect");

    // Keys get the prefix on the server, and reads find them again.
    let _: () = c.set("user", "ann").await.expect("SET");
    let _: () = c.mset(&[("a", 1), ("b", 2)]).await.expect("MSET");
    assert_eq!(trio.node(0).get("app:user").as_deref(), Some("ann"));
    assert_eq!(trio.node(0).get("user"), None);
    let vals: Vec<Option<i64>> = redis::cmd("MGET")
        .arg("a")
        .arg("b")
        .query_async(&mut c)
        .await
        .expect("MGET");
    assert_eq!(vals.len(), 2);
    // Commands whose keys cannot be found are refused rather than run unprefixed.
    let err = refused(&mut c, redis::cmd("KEYS").arg("*"), "KEYS refused").await;
    assert!(err.to_string().contains("namespace"), "{err}");

    // A blocking command waits its own timeout, longer than the command timeout.
    let mut quick = scene
        .builder()
        .command_timeout(Duration::from_millis(200))
        .connect()
        .await
        .expect("connect");
    let started = Instant::now();
    let popped: Option<(String, String)> = quick
        .blpop("empty", 0.6)
        .await
        .expect("BLPOP with its own timeout");
    assert_eq!(popped, None);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "BLPOP returned after {:?}",
        started.elapsed()
    );

    // Manual failover requests are written where the node manager looks for them.
    let path = format!("{}/manual_failover", scene.root);
    c.manual_failover(Some(&trio.node(1).node_addr()))
        .await
        .expect("request");
    let (data, _) = scene.zk.get_data(&path).await.expect("request written");
    assert_eq!(String::from_utf8_lossy(&data), trio.node(1).addr());
    c.manual_failover(None).await.expect("request");
    let (data, _) = scene.zk.get_data(&path).await.expect("request written");
    assert_eq!(String::from_utf8_lossy(&data), "ANY_SLAVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_flight_on_a_deposed_master_is_not_acknowledged() {
    use redis_failover_tests::writer::{check_lost, ClientWriter, Writer};

    let (trio, m, scene, before) = managed_trio("deposed", |c| c.down_after_ms = Some(500)).await;
    // A command timeout far longer than the failover: the write is still waiting for the
    // frozen master when the client learns of the new one.
    let timeout = Duration::from_secs(10);
    let c = scene
        .builder()
        .command_timeout(timeout)
        .connect()
        .await
        .expect("connect");
    let old = trio.node(0);
    let mut first = c.clone();
    let _: () = first.set("before", 1).await.expect("SET before the freeze");

    old.sigstop();
    let frozen_at = Instant::now();
    // One write in flight on the frozen master (its connection is open: the kernel takes the
    // bytes), and a loop of writes that records every acknowledgement.
    let mut one = c.clone();
    let in_flight = tokio::spawn(async move {
        let r = one.set::<_, _, ()>("in_flight", "x").await;
        (r, Instant::now())
    });
    let writer = Writer::spawn(
        ClientWriter(c.clone()),
        Some(Duration::from_millis(2)),
        WRITE_BOUND,
    );

    let t = scene
        .wait_new_master(DEADLINE, "a new master", &before)
        .await;
    let new_master = t.master.clone().expect("master");
    let mut sub = c.subscribe();
    wait_until_async(DEADLINE, "the client follows the new master", || {
        let seen = sub.borrow_and_update().topology.master == t.master;
        async move { seen.then_some(()) }
    })
    .await;
    // The in-flight write must end now, not when the old master wakes up or at the timeout.
    let until = Instant::now() + Duration::from_secs(3);
    while !in_flight.is_finished() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ended_while_frozen = in_flight.is_finished();
    old.sigcont();
    let resumed_at = Instant::now();
    let (r, ended_at) = in_flight.await.expect("in-flight task");
    assert!(
        r.is_err(),
        "the client acknowledged a write in flight on the deposed master (ended {:?} after the \
         freeze, {:?} after SIGCONT)",
        ended_at - frozen_at,
        ended_at.saturating_duration_since(resumed_at)
    );
    let err = r.expect_err("checked");
    assert!(
        err.to_string().contains("may have been executed")
            && err.to_string().contains("master changed"),
        "{err}"
    );
    assert!(
        ended_while_frozen && ended_at - frozen_at < timeout,
        "the in-flight write ended {:?} after the freeze",
        ended_at - frozen_at
    );

    // The old master wakes up as a master, is made a replica of the new one, and loses what
    // it applied meanwhile: no write the client acknowledged may be among it.
    let node = trio.node_at(&new_master);
    let new_port = node.port();
    old.wait_follows(new_port, true, DEADLINE, "the old master made a replica");
    // Some more writes once the old master is a replica again.
    let so_far = writer.acked();
    wait_until_async(DEADLINE, "50 more writes acknowledged", || {
        let n = writer.acked();
        async move { (n >= so_far + 50).then_some(()) }
    })
    .await;
    let log = writer.stop(WRITE_BOUND).await;
    let acked = log.acked_seqs();
    let errors: Vec<String> = log.errors.iter().map(|e| e.error.clone()).collect();
    let missing = check_lost(&new_master, &acked)
        .await
        .expect("the loss check reads the new master");
    eprintln!(
        "deposed master: in-flight write ended {:?} after the freeze ({err}); loop: {} acknowledged, {} errors {errors:?}",
        ended_at - frozen_at,
        acked.len(),
        errors.len()
    );
    assert!(
        missing.is_empty(),
        "acknowledged writes missing on the new master: {missing:?}"
    );
    assert!(!acked.is_empty(), "the loop made no progress: {errors:?}");
    assert_eq!(node.get("in_flight"), None, "the write was not retried");
    m.stop().await.expect("stop");
}

/// ZooKeeper's count of the requests it received (`srvr`'s `Received:`).
fn zk_received(zk: &ZkServer) -> u64 {
    let srvr = zk.srvr().expect("srvr answers");
    srvr.lines()
        .find_map(|l| l.strip_prefix("Received:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Received: in {srvr:?}"))
}

/// A command that fails on a dead master asks the client to read the znode again (every
/// client of the group at once, when a master dies). That read leaves the armed watch in
/// place instead of replacing it (removing a watch is a request too): one ZooKeeper request
/// per refresh, not two. The watch still tells of the next topology.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_after_a_failed_command_is_one_zookeeper_request() {
    // A ZooKeeper of its own: the count is of this test's requests only.
    let zk = ZkServer::start();
    let trio = RedisGroup::trio();
    let scene = Scene::on(&zk, "client_refresh").await;
    let first = scene.publish_group(&trio, 1).await;
    let mut c = scene
        .builder()
        .max_retries(1)
        .retry_backoff(Duration::from_millis(20))
        .asynchronous()
        .connect()
        .await
        .expect("connect");
    let _: () = c.set("k", 1).await.expect("SET on a live master");
    trio.node(0).kill9();
    const COMMANDS: u64 = 20;
    let before = zk_received(&zk);
    for _ in 0..COMMANDS {
        // One refused try, one refresh, one retry refused again.
        let r: redis::RedisResult<()> = c.set("k", 2).await;
        assert!(r.is_err(), "the master is dead: {r:?}");
    }
    let asked = zk_received(&zk) - before;
    eprintln!("{asked} ZooKeeper requests for {COMMANDS} failed commands");
    // Each failed command read the znode once (a few more may be the sessions' pings);
    // replacing the watch each time would have made it twice that.
    assert!(
        (COMMANDS / 2..=COMMANDS + 5).contains(&asked),
        "{asked} ZooKeeper requests for {COMMANDS} failed commands"
    );
    let next = Topology {
        master: first.slaves.first().cloned(),
        slaves: first.slaves[1..].to_vec(),
        epoch: 2,
        ..first.clone()
    };
    trio.node(1).must(&["REPLICAOF", "NO", "ONE"]);
    scene.publish(&next).await;
    wait_epoch(&c, 2).await;
    let _: () = c.set("k", 3).await.expect("SET on the new master");
}
