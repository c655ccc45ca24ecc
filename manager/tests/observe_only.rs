//! Issue 15, item 3: `--observe-only` next to a live group whose master fails: nothing
//! changes (no role, no topology written, no lock taken), and the log names the replica a
//! leader would promote, with the leader's reasons; the manager still publishes its view.

use std::time::{Duration, Instant};

use redis_failover_tests::manager::{lock_holders, manager_view, ManagerMode, ManagerSet};
use redis_failover_tests::{for_a_while, wait_showing_log, RedisGroup, Scene};

const BIN: &str = env!("CARGO_BIN_EXE_redis_node_manager");
const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_names_the_replica_it_would_promote_and_changes_nothing() {
    let trio = RedisGroup::trio();
    let s = Scene::new("observe_only").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut flags = ManagerSet::base_flags(&s.connect, &trio.addrs(), &s.root);
    flags.extend(["--observe-only", "--down-after-ms", "1000"].map(String::from));
    let mut set = ManagerSet::new(ManagerMode::Process(BIN.into()), flags)
        .rust_log("info")
        .log_to(dir.path());
    set.add(Some("obs")).expect("spawn the observer");
    let log = set.log_paths().pop().expect("its log");

    // It votes: its view is there, with every node up.
    let deadline = Instant::now() + DEADLINE;
    wait_showing_log(deadline, "no view", &log, || async {
        let view = manager_view(&s.zk, &s.root, "-obs").await;
        view.filter(|v| v.available.len() == 3)
    })
    .await;

    trio.node(0).kill9();
    let line = wait_showing_log(deadline + DEADLINE, "no +would-promote", &log, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let line = text.lines().find(|l| l.contains("+would-promote "));
        let line = line.map(str::to_string);
        async move { line }
    })
    .await;
    println!("{line}");
    let old = trio.node(0).addr();
    let named: Vec<String> = (1..3)
        .map(|i| trio.node(i).addr())
        .filter(|a| line.contains(&format!("+would-promote {a} to replace {old}")))
        .collect();
    assert_eq!(named.len(), 1, "one replica named: {line}");
    assert!(
        line.contains("+selected-replica"),
        "the leader's decision and reasons: {line}"
    );

    // Nothing changes: no promotion, no topology, no lock.
    for_a_while(
        Duration::from_secs(3),
        Duration::from_millis(100),
        || async {
            trio.assert_replicas_kept("by an observer");
            assert!(
                s.topology().await.is_none(),
                "the observer wrote a topology"
            );
            assert!(
                lock_holders(&s.zk, &s.root).await.is_empty(),
                "the observer took the lock"
            );
        },
    )
    .await;
    set.stop_all();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    for never in ["+promoted", "+switch-master", "+reconf-replica", "+leader"] {
        assert!(
            !text.contains(never),
            "{never} logged by an observer:\n{text}"
        );
    }
}
