//! Manual failover requests (`<root>/manual_failover`): a planned switchover under a write
//! loop loses no acknowledged write; `ANY_SLAVE`; refused requests stay visible.

use std::time::Duration;

use redis_failover_client::{Client, NodeAddr};
use redis_failover_tests::manager::{config, managed, wait_topology, zk_client, Manager};
use redis_failover_tests::writer::{check_lost, ClientWriter, Writer};
use redis_failover_tests::{
    init_tracing, shared_zk, unique_root, wait_until_async, NodeRole, RedisGroup,
};

const DEADLINE: Duration = Duration::from_secs(30);
/// Bound on one write of the writer, and on stopping it.
const WRITE_BOUND: Duration = Duration::from_secs(60);

fn addr(s: &str) -> NodeAddr {
    s.parse().expect("address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_under_writes_loses_no_acknowledged_write() {
    let trio = RedisGroup::trio();
    let (m, _, root, _) = managed(&trio, "switchover", |_| {}).await;
    let zk = shared_zk().connect_string();
    let client = Client::builder(&zk)
        .znode_path(&root)
        .connect()
        .await
        .expect("connect");
    let target = addr(&trio.node(2).addr());

    // A writer with sequence-numbered keys, through the client, until told to stop.
    let writer = Writer::spawn(ClientWriter(client.clone()), None, WRITE_BOUND);
    wait_until_async(DEADLINE, "the writer going", || async {
        (trio.node(0).cmd(&["EXISTS", "seq:100"]).ok() == Some(redis::Value::Int(1))).then_some(())
    })
    .await;
    client
        .manual_failover(Some(&target))
        .await
        .expect("request written");
    let zkc = zk_client(&zk).await;
    let t = wait_topology(&zkc, &root, DEADLINE, "the switchover published", |t| {
        t.master.as_ref() == Some(&target)
    })
    .await;
    assert_eq!(t.epoch, 1);
    // Keep writing on the new master for a while, then stop.
    let mut sub = client.subscribe();
    wait_until_async(DEADLINE, "the client on the new master", || {
        let on = sub.borrow_and_update().topology.master.as_ref() == Some(&target);
        async move { on.then_some(()) }
    })
    .await;
    let before = trio.node(2).cmd(&["DBSIZE"]).ok();
    wait_until_async(DEADLINE, "writes on the new master", || async {
        (trio.node(2).cmd(&["DBSIZE"]).ok() != before).then_some(())
    })
    .await;
    let log = writer.stop(WRITE_BOUND).await;
    let lost = check_lost(&target, &log.acked_seqs())
        .await
        .expect("the loss check reads the new master");
    let errors: Vec<String> = log.errors.iter().map(|e| e.error.clone()).collect();
    eprintln!(
        "switchover: {} acknowledged, {} errors surfaced, {} lost; first errors: {:?}",
        log.acks.len(),
        errors.len(),
        lost.len(),
        errors.iter().take(3).collect::<Vec<_>>()
    );
    assert!(
        lost.is_empty(),
        "acknowledged writes lost in a switchover: {lost:?}"
    );
    // READONLY from the demoted master is retried on the new one, never surfaced.
    assert!(
        errors.is_empty(),
        "errors surfaced during a switchover: {errors:?}"
    );
    // The old master follows the new one, and the request is gone.
    let port = target.port;
    redis_failover_tests::wait_until(DEADLINE, "the old master a replica", || {
        matches!(trio.node(0).role(), Some(NodeRole::Replica { master_port, .. }) if master_port == port).then_some(())
    });
    let request = zkc.get_data(&format!("{root}/manual_failover")).await;
    assert!(
        matches!(request, Err(zookeeper_client::Error::NoNode)),
        "request left: {request:?}"
    );
    m.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_slave_is_served_and_a_bad_request_is_refused_visibly() {
    let trio = RedisGroup::trio();
    let (m, _, root, _) = managed(&trio, "any_slave", |_| {}).await;
    let zk = shared_zk().connect_string();
    let client = Client::builder(&zk)
        .znode_path(&root)
        .connect()
        .await
        .expect("connect");
    let zkc = zk_client(&zk).await;
    let old = addr(&trio.node(0).addr());

    // Naming the master itself is refused, and the verdict stays readable.
    client
        .manual_failover(Some(&old))
        .await
        .expect("request written");
    let path = format!("{root}/manual_failover");
    let verdict = wait_until_async(DEADLINE, "the refusal", || async {
        let (data, _) = zkc.get_data(&path).await.ok()?;
        let v: serde_json::Value = serde_json::from_slice(&data).ok()?;
        v.get("refused")
            .and_then(|r| r.as_str())
            .map(str::to_string)
    })
    .await;
    assert!(verdict.contains("already is the master"), "{verdict}");
    let t = redis_failover_tests::manager::read_topology(&zkc, &root)
        .await
        .expect("topology");
    assert_eq!(
        t.master,
        Some(old.clone()),
        "a refused request changed the master"
    );

    client.manual_failover(None).await.expect("request written");
    let t = wait_topology(&zkc, &root, DEADLINE, "ANY_SLAVE served", |t| {
        t.master.is_some() && t.master.as_ref() != Some(&old)
    })
    .await;
    assert_eq!(t.epoch, 1);
    let winner = t.master.expect("master");
    assert!(winner == addr(&trio.node(1).addr()) || winner == addr(&trio.node(2).addr()));
    m.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_master_down_a_manual_request_promotes_the_named_replica() {
    init_tracing();
    let trio = RedisGroup::trio();
    let root = unique_root("manual_down");
    // Two views required and one manager: no automatic failover, only the operator's.
    let m = Manager::start(config(
        &shared_zk().connect_string(),
        &trio.addrs(),
        &root,
        |c| c.required_node_managers = Some(2),
    ));
    let zk = shared_zk().connect_string();
    let zkc = zk_client(&zk).await;
    let before = wait_topology(&zkc, &root, DEADLINE, "published", |t| t.slaves.len() == 2).await;
    let client = Client::builder(&zk)
        .znode_path(&root)
        .connect()
        .await
        .expect("connect");
    trio.node(0).kill9();
    let target = addr(&trio.node(2).addr());
    client
        .manual_failover(Some(&target))
        .await
        .expect("request written");
    let t = wait_topology(&zkc, &root, DEADLINE, "the named replica promoted", |t| {
        t.master.as_ref() == Some(&target)
    })
    .await;
    assert_eq!(t.epoch, before.epoch + 1);
    assert!(t.unavailable.contains(&addr(&trio.node(0).addr())));
    m.stop().await.expect("stop");
}
