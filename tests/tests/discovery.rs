//! Start-up: what the manager publishes from a healthy trio, and how it treats an existing,
//! stale or corrupt `<root>/nodes` and nodes that disagree.

use std::time::Duration;

use redis_failover_client::{NodeAddr, Topology};
use redis_failover_tests::manager::{
    config, read_topology, wait_topology, write_raw, zk_client, Manager,
};
use redis_failover_tests::{init_tracing, shared_zk, unique_root, zk_cli, RedisGroup, RedisNode};

const DEADLINE: Duration = Duration::from_secs(20);

fn addr(s: &str) -> NodeAddr {
    s.parse().expect("address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_publishes_the_trio_as_json() {
    init_tracing();
    let zk = shared_zk();
    let trio = RedisGroup::trio();
    let root = unique_root("discovery");
    let m = Manager::start(config(&zk.connect_string(), &trio.addrs(), &root, |_| {}));
    let client = zk_client(&zk.connect_string()).await;
    let t = wait_topology(&client, &root, DEADLINE, "the trio published", |t| {
        t.slaves.len() == 2
    })
    .await;
    assert_eq!(t.master, Some(addr(&trio.node(0).addr())));
    let mut want: Vec<NodeAddr> = (1..3).map(|i| addr(&trio.node(i).addr())).collect();
    want.sort();
    assert_eq!(t.slaves, want);
    assert!(t.unavailable.is_empty());
    assert!(t.manager.as_deref().is_some_and(|m| !m.is_empty()));
    assert!(t.updated_at_ms > 0);

    // Operators read it with zkCli: plain JSON with the Ruby gem's keys.
    let out = zk_cli(zk.port(), &["get", &format!("{root}/nodes")]);
    let line = out
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line in zkCli output:\n{out}"));
    let shown = Topology::from_json(line.as_bytes()).expect("zkCli shows valid JSON");
    assert_eq!(shown.master, t.master);
    assert!(
        line.contains(r#""slaves":["#) && line.contains(r#""unavailable":[]"#),
        "{line}"
    );

    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_znode_is_rebuilt_from_discovery() {
    init_tracing();
    let zk = shared_zk();
    let trio = RedisGroup::trio();
    let root = unique_root("corrupt");
    let client = zk_client(&zk.connect_string()).await;
    write_raw(&client, &format!("{root}/nodes"), b"{not json").await;
    let m = Manager::start(config(&zk.connect_string(), &trio.addrs(), &root, |_| {}));
    let t = wait_topology(
        &client,
        &root,
        DEADLINE,
        "a valid topology replacing garbage",
        |t| t.slaves.len() == 2,
    )
    .await;
    assert_eq!(t.master, Some(addr(&trio.node(0).addr())));
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_published_master_is_not_kept() {
    init_tracing();
    let zk = shared_zk();
    let trio = RedisGroup::trio();
    let root = unique_root("stale");
    let client = zk_client(&zk.connect_string()).await;
    // What a previous manager published, then the master died while no manager ran.
    let before = Topology {
        master: Some(addr(&trio.node(0).addr())),
        slaves: vec![addr(&trio.node(1).addr()), addr(&trio.node(2).addr())],
        epoch: 4,
        ..Topology::default()
    };
    write_raw(&client, &format!("{root}/nodes"), &before.to_json()).await;
    trio.node(0).kill9();
    let m = Manager::start(config(&zk.connect_string(), &trio.addrs(), &root, |_| {}));
    let t = wait_topology(
        &client,
        &root,
        DEADLINE,
        "a live master replacing the dead one",
        |t| t.master.is_some() && t.master != before.master,
    )
    .await;
    assert_eq!(t.epoch, 5, "a promotion bumps the published epoch");
    assert!(t.unavailable.contains(&addr(&trio.node(0).addr())));
    let winner = t.master.clone().expect("master");
    let w = trio
        .nodes()
        .iter()
        .find(|n| addr(&n.addr()) == winner)
        .expect("winner is a trio node");
    assert_eq!(w.role(), Some(redis_failover_tests::NodeRole::Master));
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_masters_are_not_guessed_between() {
    init_tracing();
    let zk = shared_zk();
    let dir = tempfile::tempdir().expect("tmp");
    let a = RedisNode::start(dir.path(), redis_failover_tests::free_port(), None, &[]);
    let b = RedisNode::start(dir.path(), redis_failover_tests::free_port(), None, &[]);
    let root = unique_root("two_masters");
    let m = Manager::start(config(
        &zk.connect_string(),
        &[a.addr(), b.addr()],
        &root,
        |_| {},
    ));
    let client = zk_client(&zk.connect_string()).await;
    // First evidence that the manager leads (so it would act if it were going to)...
    let lock = format!("{root}/master_redis_node_manager_lock");
    redis_failover_tests::wait_until_async(DEADLINE, "the manager holds the lock", || async {
        (client.list_children(&lock).await.ok()?.len() == 1).then_some(())
    })
    .await;
    // ...then it must keep waiting: nothing is published and neither node is touched.
    // Observe for a while (bounded) and check at every step.
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < until {
        assert_eq!(
            read_topology(&client, &root).await,
            None,
            "published despite two masters"
        );
        assert_eq!(a.role(), Some(redis_failover_tests::NodeRole::Master));
        assert_eq!(b.role(), Some(redis_failover_tests::NodeRole::Master));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Once an operator makes one a replica, discovery succeeds.
    b.cmd(&["REPLICAOF", "127.0.0.1", &a.port().to_string()])
        .expect("replicaof");
    let t = wait_topology(&client, &root, DEADLINE, "the fixed pair published", |t| {
        t.slaves.len() == 1
    })
    .await;
    assert_eq!(t.master, Some(addr(&a.addr())));
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_configured_by_name_match_replicas_reporting_ips() {
    init_tracing();
    let zk = shared_zk();
    let trio = RedisGroup::trio();
    let root = unique_root("by_name");
    // The replicas were started with `replicaof 127.0.0.1 <port>`; the operator names them.
    let named: Vec<String> = trio
        .ports()
        .iter()
        .map(|p| format!("localhost:{p}"))
        .collect();
    let m = Manager::start(config(&zk.connect_string(), &named, &root, |_| {}));
    let client = zk_client(&zk.connect_string()).await;
    let t = wait_topology(&client, &root, DEADLINE, "the named trio published", |t| {
        t.slaves.len() == 2
    })
    .await;
    assert_eq!(t.master, Some(addr(&named[0])));
    m.stop().await.expect("clean stop");
}
