//! Manual failover requests (`<root>/manual_failover`): a planned switchover under a write
//! loop loses no acknowledged write; `ANY_SLAVE`; refused requests stay visible;
//! `Client::failover` returns the verdict (the new master, the refusal, or a bounded
//! timeout).

use std::time::{Duration, Instant};

use redis_failover_client::{Client, FailoverError, NodeAddr, Topology};
use redis_failover_tests::manager::{managed_trio, Manager};
use redis_failover_tests::writer::{check_lost, ClientWriter, Writer};
use redis_failover_tests::{group_topology, wait_until_async, RedisGroup, Scene};

const DEADLINE: Duration = Duration::from_secs(30);
/// Bound on one write of the writer, and on stopping it.
const WRITE_BOUND: Duration = Duration::from_secs(60);

/// A managed trio (its topology published) in a fresh scene named `name`, and a client.
async fn managed_with_client(name: &str) -> (RedisGroup, Manager, Scene, Client) {
    let (trio, m, scene, _) = managed_trio(name, |_| {}).await;
    let client = scene.client().await;
    (trio, m, scene, client)
}

/// Asks for a manual failover to `target` through `client` and waits until it is published.
async fn request_and_wait(
    client: &Client,
    scene: &Scene,
    target: &NodeAddr,
    what: &str,
) -> Topology {
    client
        .manual_failover(Some(target))
        .await
        .expect("request written");
    scene
        .wait(DEADLINE, what, |t| t.master.as_ref() == Some(target))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_under_writes_loses_no_acknowledged_write() {
    let (trio, m, scene, client) = managed_with_client("switchover").await;
    let target = trio.node(2).node_addr();

    // A writer with sequence-numbered keys, through the client, until told to stop.
    let writer = Writer::spawn(ClientWriter(client.clone()), None, WRITE_BOUND);
    wait_until_async(DEADLINE, "the writer going", || async {
        (trio.node(0).cmd(&["EXISTS", "seq:100"]).ok() == Some(redis::Value::Int(1))).then_some(())
    })
    .await;
    let t = request_and_wait(&client, &scene, &target, "the switchover published").await;
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
    trio.node(0)
        .wait_follows(port, false, DEADLINE, "the old master a replica");
    let request = scene
        .zk
        .get_data(&format!("{}/manual_failover", scene.root))
        .await;
    assert!(
        matches!(request, Err(zookeeper_client::Error::NoNode)),
        "request left: {request:?}"
    );
    m.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_slave_is_served_and_a_bad_request_is_refused_visibly() {
    let (trio, m, scene, client) = managed_with_client("any_slave").await;
    let old = trio.node(0).node_addr();

    // Naming the master itself is refused, and the verdict stays readable.
    client
        .manual_failover(Some(&old))
        .await
        .expect("request written");
    let path = format!("{}/manual_failover", scene.root);
    let verdict = wait_until_async(DEADLINE, "the refusal", || async {
        let (data, _) = scene.zk.get_data(&path).await.ok()?;
        let v: serde_json::Value = serde_json::from_slice(&data).ok()?;
        v.get("refused")
            .and_then(|r| r.as_str())
            .map(str::to_string)
    })
    .await;
    assert!(verdict.contains("already is the master"), "{verdict}");
    let t = scene.topology().await.expect("topology");
    assert_eq!(
        t.master,
        Some(old.clone()),
        "a refused request changed the master"
    );

    client.manual_failover(None).await.expect("request written");
    let t = scene
        .wait(DEADLINE, "ANY_SLAVE served", |t| {
            t.master.is_some() && t.master.as_ref() != Some(&old)
        })
        .await;
    assert_eq!(t.epoch, 1);
    let winner = t.master.expect("master");
    assert!(winner == trio.node(1).node_addr() || winner == trio.node(2).node_addr());
    m.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_master_down_a_manual_request_promotes_the_named_replica() {
    let trio = RedisGroup::trio();
    let scene = Scene::new("manual_down").await;
    // Two views required and one manager: no automatic failover, only the operator's.
    let m = scene.manager(&trio.addrs(), |c| c.required_node_managers = Some(2));
    let before = scene.wait_published(DEADLINE, "published", 2).await;
    let client = scene.client().await;
    trio.node(0).kill9();
    let target = trio.node(2).node_addr();
    let t = request_and_wait(&client, &scene, &target, "the named replica promoted").await;
    assert_eq!(t.epoch, before.epoch + 1);
    assert!(t.unavailable.contains(&trio.node(0).node_addr()));
    m.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failover_call_returns_the_new_master_or_the_refusal() {
    let (trio, m, scene, client) = managed_with_client("failover_call").await;
    let target = trio.node(2).node_addr();

    let master = client
        .failover(Some(&target), DEADLINE)
        .await
        .expect("the switchover is carried out");
    assert_eq!(master, target);
    let t = scene.topology().await.expect("topology");
    assert_eq!(
        t.master,
        Some(target.clone()),
        "returned before it was published"
    );

    // A node the manager does not know: refused, and the reason says what is wrong.
    let unknown: NodeAddr = "127.0.0.1:1".parse().expect("address");
    match client.failover(Some(&unknown), DEADLINE).await {
        Err(FailoverError::Refused(reason)) => assert_eq!(
            reason, "127.0.0.1:1 is not one of the configured nodes",
            "{reason}"
        ),
        other => panic!("not refused: {other:?}"),
    }
    // The master named again: refused too (the verdict is for this request, not the last).
    match client.failover(Some(&target), DEADLINE).await {
        Err(FailoverError::Refused(reason)) => {
            assert!(reason.contains("already is the master"), "{reason}")
        }
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(scene.topology().await.and_then(|t| t.master), Some(target));
    m.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failover_call_times_out_when_no_manager_runs() {
    let trio = RedisGroup::trio();
    let scene = Scene::new("failover_call_alone").await;
    // A topology as a manager left it; no manager runs.
    scene.publish(&group_topology(&trio, 1)).await;
    let client = scene.client().await;
    let wait = Duration::from_millis(500);
    let started = Instant::now();
    let got = client.failover(Some(&trio.node(1).node_addr()), wait).await;
    let took = started.elapsed();
    match got {
        Err(e @ FailoverError::TimedOut { .. }) => assert_eq!(
            e.to_string(),
            format!(
                "no manager acted on {}/manual_failover within 500 ms; is a redis_node_manager \
                 leading this group?",
                scene.root
            )
        ),
        other => panic!("not a timeout: {other:?}"),
    }
    assert!(
        took >= wait && took < wait + Duration::from_secs(5),
        "waited {took:?} for a {wait:?} wait"
    );
}
