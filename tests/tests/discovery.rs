//! Start-up: what the manager publishes from a healthy trio, and how it treats an existing,
//! stale or corrupt `<root>/nodes` and nodes that disagree.

use std::time::Duration;

use redis_failover_client::{NodeAddr, Topology};
use redis_failover_tests::{
    for_a_while, free_port, shared_zk, wait_until_async, zk_cli, NodeRole, RedisGroup, RedisNode,
    Scene,
};

const DEADLINE: Duration = Duration::from_secs(20);

fn addr(s: &str) -> NodeAddr {
    s.parse().expect("address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_publishes_the_trio_as_json() {
    let trio = RedisGroup::trio();
    let s = Scene::new("discovery").await;
    let m = s.manager(&trio.addrs(), |_| {});
    let t = s.wait_published(DEADLINE, "the trio published", 2).await;
    assert_eq!(t.master, Some(trio.node(0).node_addr()));
    let mut want: Vec<NodeAddr> = (1..3).map(|i| addr(&trio.node(i).addr())).collect();
    want.sort();
    assert_eq!(t.slaves, want);
    assert!(t.unavailable.is_empty());
    assert!(t.manager.as_deref().is_some_and(|m| !m.is_empty()));
    assert!(t.updated_at_ms > 0);

    // Operators read it with zkCli: plain JSON with the Ruby gem's keys.
    let out = zk_cli(shared_zk().port(), &["get", &format!("{}/nodes", s.root)]);
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
    let trio = RedisGroup::trio();
    let s = Scene::new("corrupt").await;
    s.write("nodes", b"{not json").await;
    let m = s.manager(&trio.addrs(), |_| {});
    let t = s
        .wait_published(DEADLINE, "a valid topology replacing garbage", 2)
        .await;
    assert_eq!(t.master, Some(trio.node(0).node_addr()));
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_published_master_is_withdrawn_and_replaced_on_request() {
    let trio = RedisGroup::trio();
    let s = Scene::new("stale").await;
    // What a previous manager published, then the master died while no manager ran: this
    // manager never saw it close a connection (no proof it is gone) nor fenced (it may be
    // alive behind a firewall, taking writes), so it withdraws it but does not replace it.
    let before = s.publish_group(&trio, 4).await;
    trio.node(0).kill9();
    let m = s.manager(&trio.addrs(), |_| {});
    let old = trio.node(0).node_addr();
    s.wait(DEADLINE, "the dead master withdrawn", |t| {
        t.master.is_none() && t.unavailable.contains(&old)
    })
    .await;
    for_a_while(
        Duration::from_secs(2),
        Duration::from_millis(100),
        || async {
            let t = s.topology().await.expect("topology");
            assert_eq!(
                t.master, None,
                "promoted without proof the old master is gone"
            );
        },
    )
    .await;
    // An operator decides.
    let client = s.client().await;
    let winner = client
        .failover(None, Duration::from_secs(30))
        .await
        .expect("the manual failover is carried out");
    let t = s
        .wait_new_master(DEADLINE, "a live master replacing the dead one", &before)
        .await;
    assert_eq!(t.master.as_ref(), Some(&winner));
    assert_eq!(t.epoch, 5, "a promotion bumps the published epoch");
    assert!(t.unavailable.contains(&old));
    assert_eq!(trio.node_at(&winner).role(), Some(NodeRole::Master));
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_masters_are_not_guessed_between() {
    let dir = tempfile::tempdir().expect("tmp");
    let a = RedisNode::start(dir.path(), free_port(), None, &[]);
    let b = RedisNode::start(dir.path(), free_port(), None, &[]);
    let s = Scene::new("two_masters").await;
    let m = s.manager(&[a.addr(), b.addr()], |_| {});
    // First evidence that the manager leads (so it would act if it were going to)...
    let lock = format!("{}/master_redis_node_manager_lock", s.root);
    wait_until_async(DEADLINE, "the manager holds the lock", || async {
        (s.zk.list_children(&lock).await.ok()?.len() == 1).then_some(())
    })
    .await;
    // ...then it must keep waiting: nothing is published and neither node is touched.
    // Observe for a while (bounded) and check at every step.
    for_a_while(
        Duration::from_secs(3),
        Duration::from_millis(100),
        || async {
            assert_eq!(s.topology().await, None, "published despite two masters");
            assert_eq!(a.role(), Some(NodeRole::Master));
            assert_eq!(b.role(), Some(NodeRole::Master));
        },
    )
    .await;
    // Once an operator makes one a replica, discovery succeeds.
    b.cmd(&["REPLICAOF", "127.0.0.1", &a.port().to_string()])
        .expect("replicaof");
    let t = s
        .wait_published(DEADLINE, "the fixed pair published", 1)
        .await;
    assert_eq!(t.master, Some(a.node_addr()));
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_configured_by_name_match_replicas_reporting_ips() {
    let trio = RedisGroup::trio();
    let s = Scene::new("by_name").await;
    // The replicas were started with `replicaof 127.0.0.1 <port>`; the operator names them.
    let named: Vec<String> = trio
        .ports()
        .iter()
        .map(|p| format!("localhost:{p}"))
        .collect();
    let m = s.manager(&named, |_| {});
    let t = s
        .wait_published(DEADLINE, "the named trio published", 2)
        .await;
    assert_eq!(t.master, Some(addr(&named[0])));
    m.stop().await.expect("clean stop");
}
