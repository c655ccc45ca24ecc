//! ZooKeeper down: the manager must not promote anyone (it cannot know whether it still
//! leads), and it finishes the job once ZooKeeper is back. Its own ZooKeeper, since this
//! test stops it.

use std::time::Duration;

use redis_failover_tests::http::request_async;
use redis_failover_tests::manager::{wait_topology, zk_client};
use redis_failover_tests::{
    for_a_while, free_port, group_topology, wait_until_async, NodeRole, RedisGroup, Scene, ZkServer,
};

const DEADLINE: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_promotion_while_zookeeper_is_down() {
    let zk = ZkServer::start();
    let trio = RedisGroup::trio();
    let s = Scene::on(&zk, "zk_outage").await;
    let session_ms = 3000;
    let m = s.manager(&trio.addrs(), |c| {
        c.zk_session_timeout_ms = Some(session_ms)
    });
    let before = s
        .wait_published(DEADLINE, "the healthy trio published", 2)
        .await;
    let root = s.root.clone();
    drop(s);

    zk.stop();
    trio.node(0).kill9();
    // Watch the replicas for longer than the session timeout: neither may become master.
    let watch = Duration::from_millis(session_ms * 2);
    for_a_while(watch, Duration::from_millis(50), || async {
        trio.assert_replicas_kept("while ZooKeeper was down");
    })
    .await;

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

    let zk = ZkServer::start();
    let trio = RedisGroup::trio();
    let s = Scene::on(&zk, "client_zk_outage").await;
    let topology = group_topology(&trio, 1);
    s.publish(&topology).await;
    let mut c = s.client().await;
    drop(s);
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
    // Its own ZooKeeper, so that the connection count is this test's alone.
    let zk = ZkServer::start();
    let trio = RedisGroup::start(1, &[]);
    let s = Scene::on(&zk, "client_drop").await;
    let mut t = group_topology(&trio, 0);
    s.publish(&t).await;
    let baseline = zk_connections(&zk).expect("mntr");
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(s.client().await);
    }
    assert_eq!(zk_connections(&zk), Some(baseline + 5));
    // A topology change, and a receiver kept beyond the client's life.
    let kept = clients[0].subscribe();
    t.epoch = 1;
    s.publish(&t).await;
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

/// `SENTINEL get-master-addr-by-name mymaster` on a manager's Sentinel port (None: nil or no
/// answer).
fn sentinel_master(port: u16) -> Option<(String, u16)> {
    let client =
        redis_failover_tests::redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut c = client
        .get_connection_with_timeout(Duration::from_secs(1))
        .ok()?;
    redis_failover_tests::redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg("mymaster")
        .query::<Option<(String, u16)>>(&mut c)
        .ok()
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_do_not_vouch_for_an_unconfirmed_topology() {
    let zk = ZkServer::start();
    let trio = RedisGroup::trio();
    let s = Scene::on(&zk, "zk_unconfirmed").await;
    let (http_port, sentinel_port) = (free_port(), free_port());
    let m = s.manager(&trio.addrs(), |c| {
        c.zk_session_timeout_ms = Some(3000);
        c.http_addr = Some(format!("127.0.0.1:{http_port}").parse().expect("addr"));
        c.sentinel_addr = Some(format!("127.0.0.1:{sentinel_port}").parse().expect("addr"));
    });
    s.wait_published(DEADLINE, "the healthy trio published", 2)
        .await;
    drop(s);
    let master = trio.node(0).addr();
    let (host, port) = master.rsplit_once(':').expect("host:port");
    let want = Some((host.to_string(), port.parse::<u16>().expect("port")));
    let check = format!("/master/mymaster/{master}");
    wait_until_async(DEADLINE, "the master vouched for", || async {
        let code = request_async(http_port, "GET", &check, "").await?.0;
        (code == 200 && sentinel_master(sentinel_port) == want).then_some(())
    })
    .await;

    // ZooKeeper gone: another manager could promote meanwhile, so this one vouches for
    // nothing — not even the master it last saw, which still runs.
    zk.stop();
    let body = wait_until_async(DEADLINE, "503 while ZooKeeper is down", || async {
        let (code, body) = request_async(http_port, "GET", &check, "").await?;
        (code == 503).then_some(body)
    })
    .await;
    assert!(body.contains("topology unconfirmed"), "{body}");
    assert_eq!(
        sentinel_master(sentinel_port),
        None,
        "Sentinel endpoint names no master"
    );

    zk.restart();
    wait_until_async(
        DEADLINE,
        "vouched for again once ZooKeeper is back",
        || async {
            let code = request_async(http_port, "GET", &check, "").await?.0;
            (code == 200 && sentinel_master(sentinel_port) == want).then_some(())
        },
    )
    .await;
    m.stop().await.expect("clean stop");
}
