//! The HTTP endpoint: health, status, and the master/replica checks load balancers use,
//! before and after a failover; the pause switch, manual failover, history and metrics;
//! bad requests get 4xx with a message.

use std::time::Duration;

use redis_failover_tests::http::{get_json, request, request_async};
use redis_failover_tests::manager::Manager;
use redis_failover_tests::{free_port, wait_until_async, NodeRole, RedisGroup, Scene};

const DEADLINE: Duration = Duration::from_secs(30);

fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    request(port, method, path, "")
}

/// The load-balancer check of `node` as `kind` (`master` or `replica`), and the code wanted.
fn check(kind: &str, node: &str, code: u16) -> (String, u16) {
    (format!("/{kind}/mymaster/{node}"), code)
}

/// Waits until `GET path` answers `code` for every `(path, code)`, in order.
async fn wait_codes(port: u16, what: &str, want: &[(String, u16)]) {
    wait_until_async(DEADLINE, what, || async {
        for (path, code) in want {
            if request_async(port, "GET", path, "").await?.0 != *code {
                return None;
            }
        }
        Some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancer_checks_follow_a_failover() {
    let (trio, m, s, port) = http_managed("http").await;
    let (m0, r1) = (trio.node(0).addr(), trio.node(1).addr());
    let get = |path: String| async move {
        tokio::task::spawn_blocking(move || http(port, "GET", &path))
            .await
            .ok()
            .flatten()
    };
    let trio_ok = [check("master", &m0, 200), check("replica", &r1, 200)];
    wait_codes(port, "the HTTP checks on the trio", &trio_ok).await;
    let (code, body) = get(format!("/master/mymaster/{r1}")).await.expect("503");
    assert_eq!(code, 503);
    assert!(body.contains("is not the master of mymaster"), "{body}");
    let (code, body) = get(format!("/replica/mymaster/{m0}")).await.expect("503");
    assert_eq!(code, 503);
    assert!(body.contains("is not a replica of mymaster"), "{body}");

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
    let t = s
        .wait(DEADLINE, "a new master", |t| {
            t.master.as_ref().is_some_and(|m| m.to_string() != m0)
        })
        .await;
    let new = t.master.expect("master").to_string();
    let moved = [check("master", &new, 200), check("master", &m0, 503)];
    wait_codes(port, "the checks after the failover", &moved).await;
    m.stop().await.expect("stop");
}

/// A manager with HTTP on a trio, under its own root; returns what the tests need.
async fn http_managed(name: &str) -> (RedisGroup, Manager, Scene, u16) {
    let trio = RedisGroup::trio();
    let s = Scene::new(name).await;
    let port = free_port();
    let m = s.manager(&trio.addrs(), |c| {
        c.http_addr = Some(format!("127.0.0.1:{port}").parse().expect("addr"));
    });
    s.wait_published(DEADLINE, "published", 2).await;
    (trio, m, s, port)
}

/// One sample's value from Prometheus text, by metric name and label values.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape =
        prometheus_parse::Scrape::parse(lines).expect("/metrics parses as Prometheus text");
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_a_failover_and_resume_lets_it_happen() {
    let (trio, m, s, port) = http_managed("http-pause").await;
    let m0 = trio.node(0).addr();

    let (code, body) = request_async(port, "POST", "/pause", r#"{"reason":"kernel upgrade"}"#)
        .await
        .expect("pause");
    assert_eq!(code, 200, "{body}");
    // Visible in the znode (for zkCli.sh) and in /status.
    let t = s
        .wait(DEADLINE, "the pause in the znode", |t| t.paused.is_some())
        .await;
    assert_eq!(
        t.paused.map(|p| p.reason),
        Some("kernel upgrade".to_string())
    );
    let status = get_json(port, "/status").await.expect("status");
    assert_eq!(
        status["groups"]["mymaster"]["paused"]["reason"], "kernel upgrade",
        "{status}"
    );

    // The master dies: it is published unavailable (the decision was made) but not replaced.
    trio.node(0).kill9();
    let t = s
        .wait(DEADLINE, "the dead master listed unavailable", |t| {
            t.unavailable.iter().any(|a| a.to_string() == m0)
        })
        .await;
    // `master: null`, as when no replica may be promoted: writers fail fast, nobody is
    // sent to a replica.
    assert_eq!(t.master, None, "no new master while paused: {t:?}");
    assert!(
        t.promoting.is_none(),
        "no promotion started while paused: {t:?}"
    );
    for i in 1..3 {
        let role = trio.node(i).role();
        assert!(
            matches!(role, Some(NodeRole::Replica { .. })),
            "node {i} must not be promoted while paused: {role:?}"
        );
    }

    // Resume: the failover happens, and is recorded with its reason and the votes.
    let (code, body) = request_async(port, "POST", "/resume", "")
        .await
        .expect("resume");
    assert_eq!(code, 200, "{body}");
    let t = s
        .wait(DEADLINE, "a new master after resume", |t| {
            t.master.as_ref().is_some_and(|m| m.to_string() != m0) && t.paused.is_none()
        })
        .await;
    let new = t.master.expect("master").to_string();
    let status = wait_until_async(DEADLINE, "the failover in /status", || async {
        let s = get_json(port, "/status").await?;
        (!s["groups"]["mymaster"]["last_failover"].is_null()).then_some(s)
    })
    .await;
    let last = &status["groups"]["mymaster"]["last_failover"];
    assert_eq!(last["kind"], "failover", "{last}");
    assert_eq!(last["from"], m0.as_str(), "{last}");
    assert_eq!(last["to"], new.as_str(), "{last}");
    assert!(
        last["reason"]
            .as_str()
            .is_some_and(|r| r.contains("master down")),
        "{last}"
    );
    assert!(
        last["votes"].as_str().is_some_and(|v| !v.is_empty()),
        "{last}"
    );
    assert!(status["groups"]["mymaster"]["paused"].is_null(), "{status}");
    assert!(
        status["groups"]["mymaster"]["leader_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{status}"
    );
    assert_eq!(status["groups"]["mymaster"]["leader"], true, "{status}");

    // Metrics: parseable, and they say what happened.
    let (code, text) = request_async(port, "GET", "/metrics", "")
        .await
        .expect("metrics");
    assert_eq!(code, 200);
    let g = [("group", "mymaster")];
    assert_eq!(
        sample(&text, "redis_failover_failovers_total", &g),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "redis_failover_is_leader", &g),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "redis_failover_paused", &g),
        Some(0.0),
        "{text}"
    );
    assert!(
        sample(&text, "redis_failover_epoch", &g).is_some_and(|e| e >= 1.0),
        "{text}"
    );
    assert!(
        sample(&text, "redis_failover_last_failover_duration_seconds", &g)
            .is_some_and(|d| d > 0.0 && d < 30.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "redis_failover_node_up", &[("node", m0.as_str())]),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "redis_failover_node_role",
            &[("node", new.as_str()), ("role", "master")]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "redis_failover_probe_latency_seconds_count",
            &[("node", new.as_str())]
        )
        .is_some_and(|c| c > 0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "redis_failover_zookeeper_connected", &[]),
        Some(1.0),
        "{text}"
    );
    m.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_failover_over_http_and_bad_requests() {
    let (trio, m, s, port) = http_managed("http-failover").await;
    let (m0, r1) = (trio.node(0).addr(), trio.node(1).addr());

    // Bad requests: a message and a 4xx, nothing written.
    for (body, code, says) in [
        ("{not json", 400, "bad JSON"),
        (r#"{"to":"nope"}"#, 400, "bad address"),
        (r#"{"group":"other"}"#, 404, "unknown group"),
        (r#"{"target":"h:1"}"#, 400, "unknown field"),
    ] {
        let (c, b) = request_async(port, "POST", "/failover", body)
            .await
            .expect("answer");
        assert_eq!(c, code, "{body} -> {b}");
        assert!(b.contains(says), "{body} -> {b}");
        assert!(
            serde_json::from_str::<serde_json::Value>(&b).is_ok(),
            "JSON message: {b}"
        );
    }
    let (c, b) = request_async(port, "GET", "/failover", "")
        .await
        .expect("answer");
    assert_eq!(c, 405, "{b}");
    assert!(b.contains("POST"), "{b}");
    // A node that is not in the group: refused by the leader, with its reason.
    let (c, b) = request_async(port, "POST", "/failover", r#"{"to":"127.0.0.1:1"}"#)
        .await
        .expect("answer");
    assert_eq!(c, 409, "{b}");
    assert!(b.contains("refused"), "{b}");

    // A planned switchover to a named replica.
    let (c, b) = request_async(port, "POST", "/failover", &format!(r#"{{"to":"{r1}"}}"#))
        .await
        .expect("answer");
    assert_eq!(c, 200, "{b}");
    assert!(b.contains(&r1), "{b}");
    let t = s
        .wait(DEADLINE, "the switchover", |t| {
            t.master.as_ref().is_some_and(|m| m.to_string() == r1) && t.slaves.len() == 2
        })
        .await;
    assert!(t.epoch >= 1);
    let status = wait_until_async(DEADLINE, "the switchover in /status", || async {
        let s = get_json(port, "/status").await?;
        (s["groups"]["mymaster"]["last_failover"]["kind"] == "switchover").then_some(s)
    })
    .await;
    let last = &status["groups"]["mymaster"]["last_failover"];
    assert_eq!(last["from"], m0.as_str(), "{last}");
    assert_eq!(last["to"], r1.as_str(), "{last}");
    m.stop().await.expect("stop");
}

/// Issue 15, item 4: a replica whose link to the master is down is out of the read pool
/// (`/replica` and `/read-only` 503) although it answers and is still published as a
/// replica; so is one further behind than `?max_lag_bytes`; back in once it has caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_its_link_down_or_too_far_behind_is_out_of_the_read_pool() {
    let (trio, m, _s, port) = http_managed("http_lag").await;
    let (m0, r1) = (trio.node(0).addr(), trio.node(1).addr());
    let in_pool = [
        check("replica", &r1, 200),
        check("read-only", &r1, 200),
        check("read-only", &m0, 200),
        (format!("/replica/mymaster/{r1}?max_lag_bytes=1000000"), 200),
    ];
    wait_codes(port, "the replica in the read pool", &in_pool).await;

    // Its link breaks: it asks the master for a password the master does not have.
    trio.node(1).must(&["CONFIG", "SET", "masterauth", "nope"]);
    trio.node(1).must(&["CLIENT", "KILL", "TYPE", "master"]);
    let out = [
        check("replica", &r1, 503),
        check("read-only", &r1, 503),
        check("read-only", &m0, 200),
    ];
    wait_codes(port, "the replica out of the read pool", &out).await;
    let (_, body) = request_async(port, "GET", &format!("/replica/mymaster/{r1}"), "")
        .await
        .expect("503");
    // Either reason takes it out: its link is down, or the leader no longer publishes it.
    assert!(
        body.contains("link to the master is down") || body.contains("not a published replica"),
        "{body}"
    );

    // Writes it misses while its link is down put it behind.
    for i in 0..200 {
        trio.node(0)
            .must(&["SET", &format!("lag:{i}"), &"x".repeat(1000)]);
    }
    trio.node(1).must(&["CONFIG", "SET", "masterauth", ""]);
    wait_codes(port, "the replica back once caught up", &in_pool).await;
    wait_codes(
        port,
        "a lag bound of 0 holds once caught up",
        &[(format!("/read-only/mymaster/{r1}?max_lag_bytes=0"), 200)],
    )
    .await;
    let (code, body) = request_async(port, "GET", &format!("/replica/mymaster/{r1}?lag=1"), "")
        .await
        .expect("400");
    assert_eq!(code, 400, "{body}");
    m.stop().await.expect("stop");
}
