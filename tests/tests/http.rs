//! The HTTP endpoint: health, status, and the master/replica checks load balancers use,
//! before and after a failover; bad requests get 4xx with a message.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use redis_failover_tests::manager::{config, wait_topology, zk_client, Manager};
use redis_failover_tests::{
    free_port, init_tracing, shared_zk, unique_root, wait_until_async, RedisGroup,
};

const DEADLINE: Duration = Duration::from_secs(30);

/// One HTTP/1.1 request; returns the status code and the body.
fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancer_checks_follow_a_failover() {
    init_tracing();
    let zk = shared_zk();
    let trio = RedisGroup::trio();
    let root = unique_root("http");
    let port = free_port();
    let m = Manager::start(config(&zk.connect_string(), &trio.addrs(), &root, |c| {
        c.http_addr = Some(format!("127.0.0.1:{port}").parse().expect("addr"));
    }));
    let zkc = zk_client(&zk.connect_string()).await;
    wait_topology(&zkc, &root, DEADLINE, "published", |t| t.slaves.len() == 2).await;
    let (m0, r1) = (trio.node(0).addr(), trio.node(1).addr());
    let get = |path: String| async move {
        tokio::task::spawn_blocking(move || http(port, "GET", &path))
            .await
            .ok()
            .flatten()
    };
    wait_until_async(DEADLINE, "the HTTP checks on the trio", || {
        let (m0, r1) = (m0.clone(), r1.clone());
        async move {
            let ok = get(format!("/master/mymaster/{m0}")).await?.0 == 200
                && get(format!("/replica/mymaster/{r1}")).await?.0 == 200;
            ok.then_some(())
        }
    })
    .await;
    assert_eq!(
        get(format!("/master/mymaster/{r1}")).await.map(|r| r.0),
        Some(503)
    );
    assert_eq!(
        get(format!("/replica/mymaster/{m0}")).await.map(|r| r.0),
        Some(503)
    );

    let (code, body) = get("/health".into()).await.expect("health");
    assert_eq!(code, 200);
    let health: serde_json::Value = serde_json::from_str(&body).expect("health is JSON");
    assert_eq!(health["zookeeper"], "SyncConnected", "{body}");
    let (code, body) = get("/status".into()).await.expect("status");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).expect("status is JSON");
    assert_eq!(
        status["groups"]["mymaster"]["topology"]["master"],
        serde_json::Value::String(m0.clone())
    );

    // Bad requests: unknown group, not an address, unknown path, wrong method.
    let (code, body) = get(format!("/master/nope/{m0}"))
        .await
        .expect("unknown group");
    assert_eq!(code, 404);
    assert!(body.contains("unknown group"), "{body}");
    let (code, body) = get("/master/mymaster/not-an-address".into())
        .await
        .expect("bad node");
    assert_eq!(code, 400);
    assert!(body.contains("bad address"), "{body}");
    assert_eq!(get("/nope".into()).await.map(|r| r.0), Some(404));
    let post = tokio::task::spawn_blocking(move || http(port, "POST", "/health"))
        .await
        .ok()
        .flatten();
    assert_eq!(post.map(|r| r.0), Some(405));

    // After a failover the checks move with the master.
    trio.node(0).kill9();
    let t = wait_topology(&zkc, &root, DEADLINE, "a new master", |t| {
        t.master.as_ref().is_some_and(|m| m.to_string() != m0)
    })
    .await;
    let new = t.master.expect("master").to_string();
    wait_until_async(DEADLINE, "the checks after the failover", || {
        let (new, m0) = (new.clone(), m0.clone());
        async move {
            let ok = get(format!("/master/mymaster/{new}")).await?.0 == 200
                && get(format!("/master/mymaster/{m0}")).await?.0 == 503;
            ok.then_some(())
        }
    })
    .await;
    m.stop().await.expect("stop");
}
