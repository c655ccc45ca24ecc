//! Issue 14, item 6: secrets come from files (`--password-file`, `--sentinel-password-file`,
//! `--zk-auth-file`) as container platforms mount them, and never show: after a run with
//! known secrets (a failover included, logging at `debug`), none is in the log, `/status`,
//! `/metrics`, the Sentinel endpoint's answers, any znode, or an error message.

use std::time::Duration;

use redis_failover_tests::http::request_async;
use redis_failover_tests::manager::{zk_client, ManagerMode, ManagerSet};
use redis_failover_tests::{free_port, redis, redis_cmd_at, RedisGroup, Scene};

mod common;
use common::BIN;

const DEADLINE: Duration = Duration::from_secs(30);
const REDIS_SECRET: &str = "r-secret-3141";
const ZK_SECRET: &str = "z-secret-5926";
const SENTINEL_SECRET: &str = "s-secret-5358";

/// Every znode's data under `root`, with its path.
async fn tree(client: &zookeeper_client::Client, root: &str) -> String {
    let mut out = String::new();
    let mut todo = vec![root.to_string()];
    while let Some(path) = todo.pop() {
        if let Ok((data, _)) = client.get_data(&path).await {
            out.push_str(&format!("{path} {}\n", String::from_utf8_lossy(&data)));
        }
        if let Ok(children) = client.list_children(&path).await {
            todo.extend(children.into_iter().map(|c| format!("{path}/{c}")));
        }
    }
    out
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [REDIS_SECRET, ZK_SECRET, SENTINEL_SECRET] {
        assert!(!text.contains(secret), "{what} shows a secret:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_files_never_show() {
    // The harness links the trio without a password; it gets one then.
    let trio = RedisGroup::trio();
    for setting in ["masterauth", "requirepass"] {
        for i in 0..3 {
            let node = trio.node(i);
            redis_cmd_at(
                "127.0.0.1",
                node.port(),
                DEADLINE,
                &["CONFIG", "SET", setting, REDIS_SECRET],
            )
            .expect("CONFIG SET");
        }
    }
    let s = Scene::new("secrets").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write a secret file");
        p.display().to_string()
    };
    let redis_file = write("redis-password", format!("{REDIS_SECRET}\n"));
    let zk_file = write("zk-auth", format!("managers:{ZK_SECRET}\n"));
    let sentinel_file = write("sentinel-password", format!("{SENTINEL_SECRET}\n"));
    let (http, sentinel) = (free_port(), free_port());
    let mut flags = ManagerSet::base_flags(&s.connect, &trio.addrs(), &s.root);
    for f in [
        "--password-file",
        &redis_file,
        "--zk-auth-file",
        &zk_file,
        "--sentinel-password-file",
        &sentinel_file,
        "--http-addr",
        &format!("127.0.0.1:{http}"),
        "--sentinel-addr",
        &format!("127.0.0.1:{sentinel}"),
    ] {
        flags.push(f.to_string());
    }
    let mut set = ManagerSet::new(ManagerMode::Process(BIN.into()), flags)
        .rust_log("debug")
        .log_to(dir.path());
    set.add(None).expect("spawn manager");
    let before = s
        .wait_published(DEADLINE, "published with secrets from files", 2)
        .await;
    trio.node(0).kill9();
    s.wait_new_master(DEADLINE, "a failover", &before).await;

    let (code, status) = request_async(http, "GET", "/status", "")
        .await
        .expect("/status");
    assert_eq!(code, 200);
    assert_no_secret("/status", &status);
    let (_, metrics) = request_async(http, "GET", "/metrics", "")
        .await
        .expect("/metrics");
    assert_no_secret("/metrics", &metrics);
    // The Sentinel endpoint wants its password, and does not echo it.
    let url = format!("redis://:{SENTINEL_SECRET}@127.0.0.1:{sentinel}/");
    let masters = async {
        let client = redis::Client::open(url).expect("url");
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("SENTINEL")
            .arg("MASTERS")
            .query_async::<redis::Value>(&mut conn)
            .await
    };
    let masters = tokio::time::timeout(DEADLINE, masters)
        .await
        .expect("in time")
        .expect("SENTINEL MASTERS with the password");
    let masters = format!("{masters:?}");
    assert!(masters.contains("mymaster"), "{masters}");
    assert_no_secret("SENTINEL MASTERS", &masters);
    let client = zk_client(&s.connect).await;
    assert_no_secret("the znodes", &tree(&client, &s.root).await);
    set.stop_all();
    let log = std::fs::read_to_string(&set.log_paths()[0]).expect("the log");
    assert!(
        log.contains("+switch-master"),
        "the log has the run:\n{log}"
    );
    assert_no_secret("the log", &log);

    // An error about a secret names the setting, not the secret.
    let wrong = write("wrong", "not-the-password\n".into());
    let manager = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["-z", &s.connect, "-n", &trio.addrs()[1]])
            .args(extra);
        cmd
    };
    let mut cmd = manager(&["--password-file", &wrong]);
    cmd.env("RUST_LOG", "debug");
    let out = common::output_within(cmd, b"");
    assert_eq!(out.status.code(), Some(2));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("wrong password"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
    let both = common::output_within(manager(&["-p", "x", "--password-file", &wrong]), b"");
    assert_eq!(both.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&both.stderr)
            .contains("give -p/--password or --password-file, not both"),
        "{both:?}"
    );
}
