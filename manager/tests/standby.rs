//! Three manager processes on one group: one leads, the others stand by; `kill -9` of the
//! leader hands the lock over within the ZooKeeper session timeout, and the new leader
//! fails the master over.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis_failover_tests::manager::{wait_topology, zk_client};
use redis_failover_tests::{
    shared_zk, spawn_guarded, unique_root, wait_until_async, GuardedChild, NodeRole, RedisGroup,
};

const BIN: &str = env!("CARGO_BIN_EXE_redis_node_manager");
const SESSION_MS: u64 = 2000;

fn spawn_manager(zk: &str, nodes: &[String], root: &str, name: &str) -> GuardedChild {
    let (zk, nodes, root, name) = (
        zk.to_string(),
        nodes.join(","),
        root.to_string(),
        name.to_string(),
    );
    spawn_guarded(move || {
        let mut c = Command::new(BIN);
        c.args([
            "-z",
            &zk,
            "-n",
            &nodes,
            "--znode-path",
            &root,
            "--manager-name",
            &name,
        ])
        .args(["--zk-session-timeout-ms", &SESSION_MS.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        c
    })
    .expect("spawn redis_node_manager")
}

/// The manager ids stored in the lock's children, in lock order.
async fn contenders(zk: &zookeeper_client::Client, root: &str) -> Vec<String> {
    let dir = format!("{root}/master_redis_node_manager_lock");
    let mut children = zk.list_children(&dir).await.unwrap_or_default();
    children.sort_by_key(|c| c.rsplit('-').next().map(str::to_string));
    let mut ids = Vec::new();
    for c in children {
        if let Ok((data, _)) = zk.get_data(&format!("{dir}/{c}")).await {
            ids.push(String::from_utf8_lossy(&data).to_string());
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_leader_is_killed() {
    let zk = shared_zk();
    let trio = RedisGroup::trio();
    let root = unique_root("standby");
    let client = zk_client(&zk.connect_string()).await;
    let a = spawn_manager(&zk.connect_string(), &trio.addrs(), &root, "a");
    let t = wait_topology(
        &client,
        &root,
        Duration::from_secs(30),
        "published by a",
        |t| t.slaves.len() == 2,
    )
    .await;
    assert!(
        t.manager.as_deref().is_some_and(|m| m.ends_with("-a")),
        "{:?}",
        t.manager
    );
    let b = spawn_manager(&zk.connect_string(), &trio.addrs(), &root, "b");
    wait_until_async(Duration::from_secs(30), "b queued behind a", || async {
        (contenders(&client, &root).await.len() == 2).then_some(())
    })
    .await;
    let c = spawn_manager(&zk.connect_string(), &trio.addrs(), &root, "c");
    let ids = wait_until_async(Duration::from_secs(30), "c queued behind b", || async {
        let ids = contenders(&client, &root).await;
        (ids.len() == 3).then_some(ids)
    })
    .await;
    assert!(
        ids[0].ends_with("-a") && ids[1].ends_with("-b") && ids[2].ends_with("-c"),
        "{ids:?}"
    );

    let killed = Instant::now();
    assert!(a.kill(), "kill -9 of manager a");
    let ids = wait_until_async(Duration::from_secs(30), "a's lock gone", || async {
        let ids = contenders(&client, &root).await;
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
    let t = wait_topology(
        &client,
        &root,
        Duration::from_secs(30),
        "failover by b",
        |t| {
            t.master
                .as_ref()
                .is_some_and(|m| m.port != trio.node(0).port())
        },
    )
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
    let settle = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < settle {
        let now = redis_failover_tests::manager::read_topology(&client, &root).await;
        assert_eq!(now.map(|t| t.epoch), Some(1), "a second failover happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(b.is_running() && c.is_running());
}
