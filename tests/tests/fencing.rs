//! The master's fence with real processes (see docs/safety.md): a fenced master refuses
//! writes once its replicas stop acknowledging, and an unreachable master's replacement is
//! published only after the fence bound.

use std::time::{Duration, Instant};

use redis_failover_tests::manager::managed;
use redis_failover_tests::{wait_until, RedisGroup, RedisNode};

const DEADLINE: Duration = Duration::from_secs(30);

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
    let (m, _s, t) = managed(&pair, "fence", |c| {
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
async fn an_unreachable_master_is_replaced_only_after_the_fence_bound() {
    let trio = RedisGroup::trio();
    let (m, s, before) = managed(&trio, "fence-hold", |c| {
        c.down_after_ms = Some(1000);
        c.fencing_max_lag_secs = Some(1);
    })
    .await;
    let old = before.master.clone().expect("a master");
    wait_until(DEADLINE, "the master fenced by the leader", || {
        fenced(trio.node_at(&old))
    });
    // Silent, not gone: timeouts, as a partition looks.
    trio.node_at(&old).sigstop();
    s.wait(DEADLINE, "the master withdrawn (master: null)", |t| {
        t.master.is_none() && t.unavailable.contains(&old)
    })
    .await;
    let withdrawn = Instant::now();
    let t = s.wait_new_master(DEADLINE, "a new master", &before).await;
    let held = withdrawn.elapsed();
    println!(
        "new master published {} ms after the old one was withdrawn",
        held.as_millis()
    );
    // Published no earlier than the fence bound (1 + 2 s) after the replicas stopped
    // following the old master, which came after the withdrawal (less one poll of ours).
    assert!(
        held >= Duration::from_millis(3000 - 250),
        "the new master was published {held:?} after the withdrawal, before the old master's fence bound"
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
