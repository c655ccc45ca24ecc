//! The master's fence with real processes (see docs/safety.md): a fenced master refuses
//! writes once its replicas stop acknowledging, and a hung master (unlike an unreachable
//! one) is replaced without waiting for its fence.

use std::time::{Duration, Instant};

use redis_failover_tests::manager::managed;
use redis_failover_tests::{wait_until, RedisGroup, RedisNode};

const DEADLINE: Duration = Duration::from_secs(30);

/// SETs the node refused before running them (`rejected_calls` of `INFO commandstats`).
fn rejected_sets(node: &RedisNode) -> u64 {
    let info = node.info("commandstats").expect("INFO commandstats");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_set:"))
        .and_then(|l| {
            l.split(',')
                .find_map(|kv| kv.strip_prefix("rejected_calls="))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn fenced(node: &RedisNode) -> Option<()> {
    node.info("replication")
        .filter(|i| i.contains("min_slaves_good_slaves:"))
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_master_refuses_writes_once_its_replicas_stop_acknowledging() {
    let pair = RedisGroup::start(1, &[]);
    // The leader must not see the replica go (it would lift the fence: nothing left to
    // promote); the fence alone acts here.
    let (m, s, t) = managed(&pair, "fence", |c| {
        c.down_after_ms = Some(60_000);
        c.fencing_max_lag_secs = Some(1);
    })
    .await;
    let master = pair.node_at(t.master.as_ref().expect("a master"));
    let replica = pair.node_at(&t.slaves[0]);
    wait_until(DEADLINE, "the master fenced by the leader", || {
        fenced(master)
    });
    master
        .cmd(&["SET", "before", "1"])
        .expect("a fenced master with its replica writes");
    let cut = Instant::now();
    replica.sigstop();
    let refused = wait_until(
        DEADLINE,
        "the master refusing writes (NOREPLICAS)",
        || match master.cmd(&["SET", "during", "1"]) {
            Err(e) if e.code() == Some("NOREPLICAS") => Some(e.to_string()),
            _ => None,
        },
    );
    let took = cut.elapsed();
    println!(
        "fenced {} ms after the replica stopped: {refused}",
        took.as_millis()
    );
    // The client knows a NOREPLICAS write was not applied: it retries it (each try is a
    // call the master rejected) and then reports NOREPLICAS, not "may have been executed".
    let mut client = s.client().await;
    let rejected_before = rejected_sets(master);
    let e = redis::cmd("SET")
        .arg("via-client")
        .arg("1")
        .query_async::<()>(&mut client)
        .await
        .expect_err("a fenced master refuses the write");
    assert_eq!(e.code(), Some("NOREPLICAS"), "{e}");
    assert!(
        rejected_sets(master) >= rejected_before + 2,
        "a NOREPLICAS write was not retried: {e}"
    );
    // The bound the managers wait for (max-lag + 2 s), with room for a slow machine.
    assert!(
        took <= Duration::from_secs(3 + 2),
        "the fence took {took:?}, beyond its bound"
    );
    replica.sigcont();
    wait_until(
        DEADLINE,
        "writes accepted again once the replica is back",
        || master.cmd(&["SET", "after", "1"]).ok(),
    );
    assert_eq!(master.get("before").as_deref(), Some("1"));
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_master_is_replaced_without_the_fence_hold() {
    let trio = RedisGroup::trio();
    let (m, s, before) = managed(&trio, "fence-hung", |c| {
        c.down_after_ms = Some(1000);
        c.fencing_max_lag_secs = Some(1);
    })
    .await;
    let old = before.master.clone().expect("a master");
    wait_until(DEADLINE, "the master fenced by the leader", || {
        fenced(trio.node_at(&old))
    });
    // SIGSTOP: the host still completes TCP handshakes, the process answers nobody; it
    // serves no client either, so there is no fence to wait for (an unreachable master's
    // hold is shown by tests/tests/partition_safety.rs, with a real partition).
    let stopped = Instant::now();
    trio.node_at(&old).sigstop();
    let t = s.wait_new_master(DEADLINE, "a new master", &before).await;
    let took = stopped.elapsed();
    println!("new master published {} ms after SIGSTOP", took.as_millis());
    assert!(
        took < Duration::from_millis(1000 + 3000),
        "published {took:?} after SIGSTOP: held for the fence bound (3 s) as if unreachable"
    );
    let new_master = t.master.clone().expect("a master");
    for n in trio.nodes() {
        if n.node_addr() != old && n.node_addr() != new_master {
            n.wait_follows(
                new_master.port,
                true,
                DEADLINE,
                "the other replica re-pointed",
            );
        }
    }
    trio.node_at(&old).sigcont();
    trio.node_at(&old).wait_follows(
        new_master.port,
        false,
        DEADLINE,
        "the woken old master made a replica",
    );
    m.stop().await.expect("clean stop");
}
