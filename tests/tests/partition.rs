//! The partition harness itself (`redis_failover_tests::netns`), with real redis-server and
//! ZooKeeper processes on network-namespace hosts: DROP makes a host silent, REJECT refuses
//! at once, a replication link follows the cut and the heal, a writer runs on a host, and
//! nothing is left behind, also after a panic. Needs root and iptables: without them each
//! test says `SKIPPED (needs root and iptables)` on stderr (fails with `RF_REQUIRE_NETNS=1`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use redis_failover_client::{Client, Topology};
use redis_failover_tests::manager::{write_raw, zk_client};
use redis_failover_tests::netns::{self, leftovers, skip_unless_available, Host, Mode, Net};
use redis_failover_tests::writer::{check_lost_acks, ClientWriter, Writer};
use redis_failover_tests::{
    init_tracing, pid_alive, redis_cmd_at, unique_root, wait_until, wait_until_async, RedisNode,
    ZkServer,
};

const DEADLINE: Duration = Duration::from_secs(20);

/// A net of `names`, or `None` when the test is skipped.
fn net(test: &str, names: &[&str]) -> Option<Net> {
    if !skip_unless_available(test) {
        return None;
    }
    init_tracing();
    Some(Net::new(names).expect("create the net"))
}

/// A throwaway redis-server on `host` (a replica of `master` if given).
fn redis_on(host: &Host, dir: &tempfile::TempDir, master: Option<&RedisNode>) -> RedisNode {
    let master = master.map(RedisNode::node_addr);
    let args = ["--repl-timeout", "2", "--repl-ping-replica-period", "1"];
    RedisNode::start_at(
        &host.place(),
        dir.path(),
        redis_failover_tests::free_port(),
        master.as_ref(),
        &args,
    )
    .expect("start redis-server on a host")
}

/// `PING` to `node` from `from`, with `timeout` for connect, read and write: the reply (or
/// error) and how long it took.
fn ping_from(
    from: &Host,
    node: &RedisNode,
    timeout: Duration,
) -> (Result<String, String>, Duration) {
    let (ip, port) = (node.place().ip.clone(), node.port());
    from.spawn("PING", move || async move {
        let start = Instant::now();
        let r = redis_cmd_at(&ip, port, timeout, &["PING"]);
        let r = match r {
            Ok(redis::Value::SimpleString(s)) => Ok(s),
            Ok(v) => Err(format!("unexpected reply {v:?}")),
            Err(e) => Err(e.to_string()),
        };
        (r, start.elapsed())
    })
    .expect("spawn on a host")
    .join_blocking(timeout * 4 + Duration::from_secs(5))
    .expect("the PING thread answers")
}

/// DROP: a PING from another host times out (it neither answers nor is refused), and
/// answers again after the heal.
#[test]
fn drop_makes_a_host_silent_until_healed() {
    let Some(net) = net("drop_makes_a_host_silent_until_healed", &["a", "b"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let (a, b) = (net.host("a").expect("a"), net.host("b").expect("b"));
    let node = redis_on(a, &dir, None);
    let t = Duration::from_millis(500);
    assert_eq!(
        ping_from(b, &node, t).0,
        Ok("PONG".into()),
        "reachable before the cut"
    );

    net.isolate("a", Mode::Drop).expect("isolate a");
    let (r, took) = ping_from(b, &node, t);
    assert!(r.is_err(), "a PING through DROP got {r:?}");
    assert!(
        took >= t - Duration::from_millis(50),
        "DROP should time out, not refuse: {r:?} after {took:?}"
    );
    assert!(!node.ping(t), "the test process is cut off too");

    net.heal_all().expect("heal");
    net.heal_all().expect("healing twice is harmless");
    wait_until(DEADLINE, "PONG from b after the heal", || {
        (ping_from(b, &node, t).0 == Ok("PONG".into())).then_some(())
    });
}

/// REJECT: a connect from another host is refused or reset at once (well under the 3 s
/// timeout a DROP would take); a cut between two hosts leaves the third one through.
#[test]
fn reject_refuses_at_once_and_cut_is_between_two_hosts() {
    let Some(net) = net("reject_refuses_at_once", &["a", "b", "c"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let h = |n| net.host(n).expect("host");
    let node = redis_on(h("a"), &dir, None);
    let t = Duration::from_secs(3);

    let cut = net.isolate("a", Mode::Reject).expect("isolate a");
    let (r, took) = ping_from(h("b"), &node, t);
    assert!(r.is_err(), "a PING through REJECT got {r:?}");
    assert!(
        took < Duration::from_secs(1),
        "REJECT took {took:?} ({r:?})"
    );
    net.undo(&cut).expect("undo");
    net.undo(&cut).expect("undoing twice is harmless");
    assert_eq!(ping_from(h("b"), &node, t).0, Ok("PONG".into()));

    net.cut("a", "b", Mode::Reject).expect("cut a-b");
    let (r, took) = ping_from(h("b"), &node, t);
    assert!(
        r.is_err() && took < Duration::from_secs(1),
        "b->a: {r:?} after {took:?}"
    );
    assert_eq!(
        ping_from(h("c"), &node, t).0,
        Ok("PONG".into()),
        "c still reaches a"
    );
    assert!(node.ping(t), "the test process still reaches a");
    let rules = net.rules_of("a").expect("rules");
    assert!(rules.contains("tcp-reset"), "{rules}");
    net.heal_all().expect("heal");
    assert!(!net.rules_of("a").expect("rules").contains("REJECT"));
}

/// The replication link between a master on one host and its replica on another goes down
/// when the master's host is isolated (DROP) and comes back after the heal.
#[test]
fn replication_link_follows_the_partition() {
    let Some(net) = net("replication_link_follows_the_partition", &["a", "b"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let master = redis_on(net.host("a").expect("a"), &dir, None);
    let replica = redis_on(net.host("b").expect("b"), &dir, Some(&master));
    replica.wait_follows(master.port(), true, DEADLINE, "the link up before the cut");

    net.isolate("a", Mode::Drop).expect("isolate a");
    wait_until(
        DEADLINE,
        "the replica's link down (repl-timeout 2 s)",
        || {
            (!replica.follows(master.port(), true) && replica.follows(master.port(), false))
                .then_some(())
        },
    );
    net.heal_all().expect("heal");
    replica.wait_follows(master.port(), true, DEADLINE, "the link up after the heal");
}

/// Dropping a net removes its namespaces, veths and bridge, also when the test panicked with
/// a partition in place; leftovers of a dead process are removed by the next net.
#[test]
fn nothing_is_left_behind() {
    if !skip_unless_available("nothing_is_left_behind") {
        return;
    }
    let ours = |names: &[String]| -> Vec<String> {
        let now = leftovers().expect("list");
        now.namespaces
            .into_iter()
            .chain(now.links)
            .filter(|n| names.contains(n))
            .collect()
    };
    let net = Net::new(&["a", "b", "c"]).expect("net");
    let names = net.owned_names();
    assert_eq!(
        ours(&names).len(),
        7,
        "bridge, 3 namespaces, 3 veths exist: {names:?}"
    );
    drop(net);
    assert_eq!(
        ours(&names),
        Vec::<String>::new(),
        "left behind after a drop"
    );

    let (tx, rx) = mpsc::channel();
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        let net = Net::new(&["x", "y"]).expect("net");
        tx.send(net.owned_names()).expect("send");
        net.isolate("x", Mode::Reject).expect("isolate");
        panic!("a test fails with a partition in place");
    }));
    assert!(panicked.is_err());
    let names = rx.recv().expect("the names");
    assert_eq!(
        ours(&names),
        Vec::<String>::new(),
        "left behind after a panic"
    );

    // A crashed run's leftovers: names owned by a pid that is not alive.
    let dead = (0x3f_0000u32..)
        .find(|p| !pid_alive(*p))
        .expect("a dead pid");
    let stale_ns = format!("{}{dead:x}_0_s", netns::PREFIX);
    let stale_br = format!("{}{dead:x}_0b", netns::PREFIX);
    let ip = |args: &[&str]| {
        netns::ip(args).unwrap_or_else(|e| panic!("{e}"));
    };
    ip(&["netns", "add", &stale_ns]);
    ip(&["link", "add", &stale_br, "type", "bridge"]);
    let stale = vec![stale_ns, stale_br];
    assert_eq!(ours(&stale).len(), 2);
    drop(Net::new(&["z"]).expect("net"));
    assert_eq!(
        ours(&stale),
        Vec::<String>::new(),
        "stale leftovers removed"
    );
}

/// A [`ClientWriter`] on one host writes through the client library to a Redis on another
/// host (ZooKeeper on a third); every acknowledged write is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_on_a_host_writes_to_redis_on_another() {
    let Some(net) = net("a_client_on_a_host_writes", &["redis", "app", "zk"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let node = redis_on(net.host("redis").expect("redis"), &dir, None);
    let zk = ZkServer::start_at(&net.host("zk").expect("zk").place());
    let root = unique_root("partition_writer");
    let session = zk_client(&zk.connect_string()).await;
    let topology = Topology {
        master: Some(node.node_addr()),
        epoch: 1,
        ..Topology::default()
    };
    write_raw(&session, &format!("{root}/nodes"), &topology.to_json()).await;

    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let connect = zk.connect_string();
    let app = net.host("app").expect("app");
    let task = app
        .spawn("writer", move || async move {
            let client = Client::builder(connect).znode_path(&root).connect().await?;
            let writer = Writer::spawn(
                ClientWriter(client),
                Some(Duration::from_millis(2)),
                Duration::from_secs(2),
            );
            wait_until_async(DEADLINE, "50 acknowledged writes", || {
                let n = writer.acked();
                async move { (n >= 50).then_some(()) }
            })
            .await;
            let _ = ready_tx.send(());
            let _ = stop_rx.await;
            Ok::<_, redis_failover_client::ConnectError>(writer.stop(DEADLINE).await)
        })
        .expect("spawn the writer");
    ready_rx
        .recv_timeout(DEADLINE * 2)
        .expect("the writer got going");
    let list: String = node
        .cmd(&["CLIENT", "LIST"])
        .ok()
        .and_then(|v| redis::from_redis_value(v).ok())
        .expect("CLIENT LIST answers");
    assert!(
        list.contains(&format!("addr={}:", app.ip)),
        "no client from the app host: {list}"
    );
    let _ = stop_tx.send(());
    let log = task
        .join(DEADLINE * 2)
        .await
        .expect("the writer's log")
        .expect("connect");
    assert!(log.acks.len() >= 50, "{} acks", log.acks.len());
    let lost = check_lost_acks(&node.node_addr(), &log)
        .await
        .expect("loss check");
    assert!(lost.is_empty(), "{} acknowledged writes lost", lost.len());
}
