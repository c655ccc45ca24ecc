//! What the manager does with its ZooKeeper servers, in the words docs/production.md
//! quotes: a session timeout granted shorter than asked is said and used; a chroot that does
//! not exist is refused.

use std::time::{Duration, Instant};

use redis_failover_tests::manager::{ManagerMode, ManagerSet};
use redis_failover_tests::{shared_zk, wait_showing_log, RedisGroup, Scene, ZkEnsemble};

const BIN: &str = env!("CARGO_BIN_EXE_redis_node_manager");

/// The `n`-th line docs/production.md quotes between ```text fences.
fn documented_line(n: usize) -> String {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/production.md"
    ))
    .expect("docs/production.md");
    let block = doc.split("```text\n").nth(n + 1).expect("a text block");
    block.lines().next().expect("its line").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chroot_that_does_not_exist_is_refused() {
    let want = documented_line(0);
    let trio = RedisGroup::start(1, &[]);
    let zk = format!("{}/redis-ha", shared_zk().connect_string());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args(["-n", &trio.addrs()[0], "-z", &zk, "--znode-path", "/cache"])
            .env("RUST_LOG", "error")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run redis_node_manager")
    });
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("it exits")
        .expect("join");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_granted_session_is_said_and_used() {
    let want = documented_line(1);
    assert!(
        want.contains("granted a session timeout of 40000 ms"),
        "{want}"
    );
    let ens = ZkEnsemble::start(3);
    let trio = RedisGroup::start(1, &[]);
    let s = Scene::at(&ens.connect_string(), "zk_grant").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut flags = ManagerSet::base_flags(&s.connect, &trio.addrs(), &s.root);
    flags.extend(["--zk-session-timeout-ms".to_string(), "60000".to_string()]);
    let mut set = ManagerSet::new(ManagerMode::Process(BIN.into()), flags).log_to(dir.path());
    set.add(None).expect("spawn manager");
    let log = set.log_paths().pop().expect("a log");
    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = format!("no {want:?} in the log");
    wait_showing_log(deadline, &missing, &log, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let found = text.contains(&want).then_some(());
        async move { found }
    })
    .await;
    // And it leads: the group is published.
    let deadline = Instant::now() + Duration::from_secs(60);
    wait_showing_log(deadline, "not published", &log, || async {
        s.topology().await.map(|_| ())
    })
    .await;
}
