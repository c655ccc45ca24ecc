//! ZooKeeper down: the manager must not promote anyone (it cannot know whether it still
//! leads), and it finishes the job once ZooKeeper is back. Its own ZooKeeper, since this
//! test stops it.

use std::time::Duration;

use redis_failover_tests::manager::{config, wait_topology, zk_client, Manager};
use redis_failover_tests::{init_tracing, unique_root, NodeRole, RedisGroup, ZkServer};

const DEADLINE: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_promotion_while_zookeeper_is_down() {
    init_tracing();
    let zk = ZkServer::start();
    let trio = RedisGroup::trio();
    let root = unique_root("zk_outage");
    let session_ms = 3000;
    let m = Manager::start(config(&zk.connect_string(), &trio.addrs(), &root, |c| {
        c.zk_session_timeout_ms = Some(session_ms)
    }));
    let client = zk_client(&zk.connect_string()).await;
    let before = wait_topology(
        &client,
        &root,
        DEADLINE,
        "the healthy trio published",
        |t| t.slaves.len() == 2,
    )
    .await;
    drop(client);

    zk.stop();
    trio.node(0).kill9();
    // Watch the replicas for longer than the session timeout: neither may become master.
    let until = tokio::time::Instant::now() + Duration::from_millis(session_ms * 2);
    while tokio::time::Instant::now() < until {
        for i in 1..3 {
            assert!(
                matches!(trio.node(i).role(), Some(NodeRole::Replica { .. })),
                "{} was promoted while ZooKeeper was down",
                trio.node(i).addr()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    zk.restart();
    let client = zk_client(&zk.connect_string()).await;
    let t = wait_topology(
        &client,
        &root,
        DEADLINE,
        "a failover once ZooKeeper is back",
        |t| t.master.is_some() && t.master != before.master,
    )
    .await;
    assert_eq!(t.epoch, before.epoch + 1);
    let promoted: Vec<_> = (1..3)
        .filter(|i| trio.node(*i).role() == Some(NodeRole::Master))
        .collect();
    assert_eq!(promoted.len(), 1, "exactly one master among the survivors");
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_keep_serving_while_zookeeper_is_down() {
    use redis::AsyncCommands;
    use redis_failover_client::{Client, Topology};
    use redis_failover_tests::manager::write_raw;

    init_tracing();
    let zk = ZkServer::start();
    let trio = RedisGroup::trio();
    let root = unique_root("client_zk_outage");
    let addr = |i: usize| trio.node(i).addr().parse().expect("address");
    let topology = Topology {
        master: Some(addr(0)),
        slaves: vec![addr(1), addr(2)],
        epoch: 1,
        ..Topology::default()
    };
    let zkc = zk_client(&zk.connect_string()).await;
    write_raw(&zkc, &format!("{root}/nodes"), &topology.to_json()).await;
    drop(zkc);
    let mut c = Client::builder(zk.connect_string())
        .znode_path(&root)
        .connect()
        .await
        .expect("connect");
    assert_eq!(c.topology().age(), Duration::ZERO);

    zk.stop();
    let mut sub = c.subscribe();
    redis_failover_tests::wait_until_async(
        DEADLINE,
        "the client notices ZooKeeper is gone",
        || {
            let stale = sub.borrow_and_update().stale_since.is_some();
            async move { stale.then_some(()) }
        },
    )
    .await;
    // Reads and writes keep working on the last topology (bounded observation).
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut n = 0u64;
    while tokio::time::Instant::now() < until {
        n += 1;
        let _: () = c.set("k", n).await.expect("SET while ZooKeeper is down");
        let _: Option<u64> = c.get("k").await.expect("GET while ZooKeeper is down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let age = c.topology().age();
    assert!(
        age >= Duration::from_secs(1),
        "age {age:?} does not show the outage"
    );
    assert_eq!(c.topology().topology, topology);

    zk.restart();
    redis_failover_tests::wait_until_async(DEADLINE, "the client is current again", || {
        let fresh = c.topology().stale_since.is_none();
        async move { fresh.then_some(()) }
    })
    .await;
    let _: () = c.set("k", 0).await.expect("SET after ZooKeeper is back");
}

/// `zk_num_alive_connections` from the 4-letter `mntr` command.
fn zk_connections(zk: &ZkServer) -> Option<u64> {
    let out = redis_failover_tests::zk_four_letter(zk.port(), "mntr")?;
    out.lines()
        .find_map(|l| l.strip_prefix("zk_num_alive_connections"))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_clients_close_their_sessions() {
    use redis_failover_client::{Client, Topology};
    use redis_failover_tests::manager::write_raw;

    init_tracing();
    // Its own ZooKeeper, so that the connection count is this test's alone.
    let zk = ZkServer::start();
    let trio = RedisGroup::start(1, &[]);
    let root = unique_root("client_drop");
    let addr = |i: usize| trio.node(i).addr().parse().expect("address");
    let zkc = zk_client(&zk.connect_string()).await;
    let mut t = Topology {
        master: Some(addr(0)),
        slaves: vec![addr(1)],
        ..Topology::default()
    };
    write_raw(&zkc, &format!("{root}/nodes"), &t.to_json()).await;
    let baseline = zk_connections(&zk).expect("mntr");
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(
            Client::builder(zk.connect_string())
                .znode_path(&root)
                .connect()
                .await
                .expect("connect"),
        );
    }
    assert_eq!(zk_connections(&zk), Some(baseline + 5));
    // A topology change, and a receiver kept beyond the client's life.
    let kept = clients[0].subscribe();
    t.epoch = 1;
    write_raw(&zkc, &format!("{root}/nodes"), &t.to_json()).await;
    redis_failover_tests::wait_until_async(DEADLINE, "the change seen", || {
        let seen = clients.iter().all(|c| c.topology().topology.epoch == 1);
        async move { seen.then_some(()) }
    })
    .await;
    drop(clients);
    redis_failover_tests::wait_until_async(DEADLINE, "every client session closed", || async {
        (zk_connections(&zk) == Some(baseline)).then_some(())
    })
    .await;
    drop(kept);
}
