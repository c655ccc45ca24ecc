//! Issue 15, item 2: `--on-switch-master` runs after a published change of master with
//! Sentinel's client-reconfig-script arguments; its exit and output reach the failover
//! history; a program that hangs is killed at its timeout and the failover is not delayed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use redis_failover_client::NodeAddr;
use redis_failover_tests::manager::read_history;
use redis_failover_tests::{for_a_while, wait_until_async, RedisGroup, Scene};

const DEADLINE: Duration = Duration::from_secs(30);

fn script(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("on-switch-master.sh");
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write the script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

/// What the history records of the program run for the failover to `to`, once recorded.
async fn recorded_hook(s: &Scene, to: &NodeAddr, what: &str) -> String {
    let record = wait_until_async(DEADLINE, what, || async {
        read_history(&s.zk, &s.root)
            .await
            .into_iter()
            .find(|r| r.to == *to && r.hook.is_some())
    })
    .await;
    record.hook.expect("a hook outcome")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_program_gets_the_new_master_and_its_answer_is_in_the_history() {
    let dir = tempfile::tempdir().expect("tmp");
    let args = dir.path().join("args");
    let program = script(
        dir.path(),
        &format!("echo \"$@\" > {}; echo moved the VIP", args.display()),
    );
    let trio = RedisGroup::trio();
    let s = Scene::new("hook").await;
    let m = s.manager(&trio.addrs(), |c| {
        c.on_switch_master = Some(program.clone())
    });
    let before = s.wait_published(DEADLINE, "published", 2).await;
    trio.node(0).kill9();
    let t = s.wait_new_master(DEADLINE, "a failover", &before).await;
    let (from, to) = (
        trio.node(0).node_addr(),
        t.master.clone().expect("a master"),
    );
    let want = format!(
        "mymaster leader start {} {} {} {}",
        from.host, from.port, to.host, to.port
    );
    let got = wait_until_async(DEADLINE, "the program ran", || async {
        std::fs::read_to_string(&args)
            .ok()
            .filter(|a| a.ends_with('\n'))
    })
    .await;
    assert_eq!(got.trim(), want);
    let hook = recorded_hook(&s, &to, "its answer in the history").await;
    assert!(
        hook.starts_with("exit 0 in ") && hook.ends_with(": moved the VIP"),
        "{hook}"
    );
    m.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_that_hangs_is_killed_and_delays_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let program = script(dir.path(), "sleep 600");
    let trio = RedisGroup::trio();
    let s = Scene::new("hook_hangs").await;
    let m = s.manager(&trio.addrs(), |c| {
        c.on_switch_master = Some(program.clone());
        c.hook_timeout_ms = Some(1500);
    });
    let before = s.wait_published(DEADLINE, "published", 2).await;
    trio.node(0).kill9();
    let killed = Instant::now();
    let t = s.wait_new_master(DEADLINE, "a failover", &before).await;
    assert!(
        killed.elapsed() < Duration::from_millis(1500),
        "published {:?} after the kill: the program was waited for",
        killed.elapsed()
    );
    let to = t.master.clone().expect("a master");
    let hook = recorded_hook(&s, &to, "the kill in the history").await;
    assert_eq!(hook, "killed after 1500 ms");
    m.stop().await.expect("stop");
}

/// `--webhook-url`: a real local HTTP receiver that fails twice, then answers 200, gets the
/// failover's record until it acknowledges it (three POSTs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_gets_the_record_until_it_acknowledges_it() {
    use std::sync::{Arc, Mutex};

    let bodies: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let seen = bodies.clone();
    let app = axum::Router::new().route(
        "/hooks/redis",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let seen = seen.clone();
            async move {
                let mut b = seen.lock().expect("lock");
                b.push(body);
                if b.len() < 3 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let trio = RedisGroup::trio();
    let s = Scene::new("webhook").await;
    let m = s.manager(&trio.addrs(), |c| {
        c.webhook_url = Some(format!("http://127.0.0.1:{port}/hooks/redis"));
    });
    let before = s.wait_published(DEADLINE, "published", 2).await;
    trio.node(0).kill9();
    let t = s.wait_new_master(DEADLINE, "a failover", &before).await;
    let to = t.master.clone().expect("a master").to_string();
    let got = wait_until_async(DEADLINE, "three POSTs", || {
        let b = bodies.lock().expect("lock").clone();
        async move { (b.len() >= 3).then_some(b) }
    })
    .await;
    for body in &got {
        assert_eq!(body["to"], serde_json::Value::String(to.clone()), "{body}");
        assert_eq!(body["kind"], "failover", "{body}");
    }
    // Acknowledged: no fourth.
    for_a_while(Duration::from_secs(2), Duration::from_millis(50), || {
        let n = bodies.lock().expect("lock").len();
        async move { assert_eq!(n, 3, "a POST after the 2xx") }
    })
    .await;
    m.stop().await.expect("stop");
    server.abort();
}
