//! Failover with real processes: crash and hang of the master, choice of the replica,
//! `replica-priority 0`, and nodes that come back.

use std::time::{Duration, Instant};

use redis_failover_tests::manager::{managed, managed_trio};
use redis_failover_tests::{wait_until, NodeRole, RedisGroup, RedisNode};

const DEADLINE: Duration = Duration::from_secs(30);

fn write_keys(node: &RedisNode, prefix: &str, n: usize, value_len: usize) {
    let value = "x".repeat(value_len);
    for i in 0..n {
        node.cmd(&["SET", &format!("{prefix}:{i}"), &value])
            .expect("SET on master");
    }
}

/// Asserts that `node` has `<prefix>:0` to `<prefix>:<n - 1>`; the failure line is
/// "<key> <where>".
fn assert_keys(node: &RedisNode, prefix: &str, n: usize, place: &str) {
    for i in 0..n {
        let key = format!("{prefix}:{i}");
        assert!(node.get(&key).is_some(), "{key} {place}");
    }
}

/// The replicas of a trio, the one with the lower address first (the one a tie-break picks).
fn replicas_by_address(trio: &RedisGroup) -> (usize, usize) {
    if trio.node(1).node_addr() < trio.node(2).node_addr() {
        (1, 2)
    } else {
        (2, 1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_promotes_the_replica_with_the_larger_offset() {
    let trio = RedisGroup::trio();
    // The lagging replica gets the lower address, so that only the offset can make the
    // other one win (ties go to the lower address).
    let (lag_i, good_i) = replicas_by_address(&trio);
    let (lagging, good, master) = (trio.node(lag_i), trio.node(good_i), trio.node(0));
    let (m, s, before) = managed(&trio, "offset", |c| c.down_after_ms = Some(6000)).await;
    assert_eq!(before.epoch, 0);

    // Freeze one replica and write more than socket buffers hold, so that it cannot catch
    // up from its kernel buffers after the master dies.
    lagging.sigstop();
    write_keys(master, "k", 200, 100_000);
    let master_offset = master.offset().expect("master offset");
    wait_until(DEADLINE, "the good replica caught up", || {
        (good.offset()? >= master_offset).then_some(())
    });
    master.kill9();
    lagging.sigcont();

    let t = s.wait_new_master(DEADLINE, "a new master", &before).await;
    assert_eq!(
        t.master,
        Some(good.node_addr()),
        "the replica with the larger offset wins"
    );
    assert_eq!(t.epoch, 1, "epoch bumped once");
    assert!(t.unavailable.contains(&master.node_addr()));
    assert_eq!(good.role(), Some(NodeRole::Master));
    // The other replica is re-pointed to the winner and listed once its link is up.
    let good_port = good.port();
    lagging.wait_follows(
        good_port,
        true,
        DEADLINE,
        "the lagging replica follows the winner",
    );
    let t = s
        .wait(DEADLINE, "the re-pointed replica listed", |t| {
            t.slaves == vec![lagging.node_addr()]
        })
        .await;
    assert_eq!(t.epoch, 1);
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_priority_zero_replica_is_never_promoted() {
    let trio = RedisGroup::trio();
    // Make the replica that would win the tie-break unpromotable.
    let (zero_i, other_i) = replicas_by_address(&trio);
    trio.node(zero_i)
        .cmd(&["CONFIG", "SET", "replica-priority", "0"])
        .expect("config set");
    let (m, s, before) = managed(&trio, "prio0", |_| {}).await;
    trio.node(0).kill9();
    let t = s.wait_new_master(DEADLINE, "a new master", &before).await;
    assert_eq!(t.master, Some(trio.node(other_i).node_addr()));

    // With the promotable one gone too, nobody is promoted: the group says it has no master.
    trio.node(other_i).kill9();
    let t = s
        .wait(DEADLINE, "master null", |t| t.master.is_none())
        .await;
    assert!(t.unavailable.contains(&trio.node(other_i).node_addr()));
    assert!(
        matches!(trio.node(zero_i).role(), Some(NodeRole::Replica { .. })),
        "priority 0 stays a replica"
    );
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_master_is_failed_over_after_down_after() {
    let trio = RedisGroup::trio();
    let down_after = Duration::from_millis(1500);
    let (m, s, before) = managed(&trio, "hang", |c| {
        c.down_after_ms = Some(down_after.as_millis() as u64)
    })
    .await;
    let t0 = Instant::now();
    trio.node(0).sigstop();
    let t = s
        .wait_new_master(DEADLINE, "a new master after SIGSTOP", &before)
        .await;
    let took = t0.elapsed();
    // Not before max-failures probe deadlines have passed, and not much after down-after: a
    // hung process (its host accepts connections, it answers nobody) is replaced at once,
    // without the fence hold of an unreachable one.
    assert!(
        took >= down_after * 2 / 3,
        "failed over after {took:?}, before the hang could be confirmed"
    );
    assert!(
        took <= down_after + Duration::from_secs(5),
        "failed over after {took:?}"
    );
    assert_eq!(t.epoch, 1);
    trio.node(0).sigcont();
    // The old master wakes up believing it is a master; it must come back as a replica.
    let new_port = t.master.as_ref().expect("master").port;
    trio.node(0)
        .wait_follows(new_port, false, DEADLINE, "the woken master made a replica");
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_master_rejoins_as_a_replica() {
    let (trio, m, s, before) = managed_trio("rejoin", |_| {}).await;
    trio.node(0).kill9();
    let old = trio.node(0);
    let t = s.wait_new_master(DEADLINE, "a new master", &before).await;
    let new_master = t.master.clone().expect("master");
    // Restarted as a master (no replicaof), with its old dataset: never a second master.
    old.restart(None);
    let t = s
        .wait(DEADLINE, "the old master listed as a replica", |t| {
            t.slaves.contains(&old.node_addr())
        })
        .await;
    assert_eq!(
        t.master,
        Some(new_master.clone()),
        "the master did not change back"
    );
    assert_eq!(t.slaves.len(), 2);
    assert_eq!(
        old.role(),
        Some(NodeRole::Replica {
            master_port: new_master.port,
            link_up: true
        })
    );
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_is_unavailable_then_rejoins() {
    let (trio, m, s, before) = managed_trio("replica", |_| {}).await;
    let r = trio.node(1);
    r.kill9();
    let t = s
        .wait(DEADLINE, "the replica unavailable", |t| {
            t.unavailable == vec![r.node_addr()]
        })
        .await;
    assert_eq!(
        t.master, before.master,
        "a replica's death is not a failover"
    );
    assert_eq!(t.epoch, before.epoch);
    r.restart(Some(trio.node(0).port()));
    let t = s
        .wait(DEADLINE, "the replica back", |t| {
            t.slaves.len() == 2 && t.unavailable.is_empty()
        })
        .await;
    assert_eq!(t.master, before.master);
    m.stop().await.expect("clean stop");
}

/// A master that restarts faster than a crash can be confirmed (here: killed and started
/// again at once, without persistence) comes back empty. Left as the master, its replicas
/// would resync from it and lose everything; the manager sees the new run_id and promotes a
/// replica that still has the data, then makes the restarted node its replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_restarted_faster_than_a_crash_is_confirmed_is_failed_over() {
    let trio = RedisGroup::trio();
    let master = trio.node(0);
    let (m, s, before) = managed(&trio, "fast_restart", |c| c.max_failures = Some(5)).await;
    write_keys(master, "kept", 50, 100);
    let master_offset = master.offset().expect("master offset");
    for i in 1..3 {
        wait_until(DEADLINE, "replicas caught up", || {
            (trio.node(i).offset()? >= master_offset).then_some(())
        });
    }

    master.restart(None);
    let t = s.wait_new_master(DEADLINE, "a new master", &before).await;
    let new = t.master.clone().expect("master");
    let new_node = trio.node_at(&new);
    assert_keys(
        new_node,
        "kept",
        50,
        &format!("survived on the new master {new}"),
    );
    // The restarted node rejoins as a replica of the new master, never as a second master.
    master.wait_follows(new.port, true, DEADLINE, "the restarted node re-pointed");
    assert!(master.get("kept:0").is_some(), "it got the data back");
    m.stop().await.expect("stop");
}

/// `CONFIG GET name` on `node`, as a string ("" when unset or unanswered).
fn config_get(node: &RedisNode, name: &str) -> String {
    match node.cmd(&["CONFIG", "GET", name]) {
        Ok(redis::Value::Array(v)) => v
            .get(1)
            .and_then(|x| redis::from_redis_value::<String>(x.clone()).ok())
            .unwrap_or_default(),
        Ok(redis::Value::Map(m)) => m
            .first()
            .and_then(|(_, x)| redis::from_redis_value::<String>(x.clone()).ok())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Issue 11, item 7: the master restarts empty while no manager runs (the leader died with
/// it). With the replication guard (the default) its replicas cannot resync from it — they
/// authenticate as a user only the leader creates, at run time, and the restarted process
/// has lost it — and the next leader promotes a replica with the data instead of adopting
/// the empty master. With `--replication-guard off` the replicas resync from the empty
/// master on their own, and the data is gone: what the guard prevents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_restarted_empty_while_no_manager_runs_is_neither_synced_from_nor_adopted() {
    use redis_failover_manager::config::Switch;
    use redis_failover_tests::for_a_while;
    const USER: &str = "redis-failover-replication";
    for guard in [Switch::On, Switch::Off] {
        let trio = RedisGroup::trio();
        let master = trio.node(0);
        let name = format!("unseen_restart_{guard:?}").to_lowercase();
        let (m, s, before) = managed(&trio, &name, |c| c.replication_guard = Some(guard)).await;
        if guard == Switch::On {
            for i in 0..3 {
                wait_until(DEADLINE, "the guard on every node", || {
                    (config_get(trio.node(i), "masteruser") == USER).then_some(())
                });
            }
        }
        write_keys(master, "kept", 50, 100);
        let master_offset = master.offset().expect("master offset");
        for i in 1..3 {
            wait_until(DEADLINE, "replicas caught up", || {
                (trio.node(i).offset()? >= master_offset).then_some(())
            });
        }
        m.stop().await.expect("stop");
        master.restart(None);
        assert!(master.get("kept:0").is_none(), "the master restarted empty");

        if guard == Switch::Off {
            // Nothing stops them: each replica resyncs from the empty master within a
            // second or two and throws its data away.
            for i in 1..3 {
                trio.node(i).wait_follows(
                    master.port(),
                    true,
                    DEADLINE,
                    "resynced from the empty master",
                );
                assert!(
                    trio.node(i).get("kept:0").is_none(),
                    "replica {i} lost its data"
                );
            }
            continue;
        }
        // Replicas retry about once a second: three seconds is three refused attempts.
        for_a_while(
            Duration::from_secs(3),
            Duration::from_millis(100),
            || async {
                for i in 1..3 {
                    let r = trio.node(i);
                    assert!(
                        !r.follows(master.port(), true),
                        "replica {i} synced from the empty master"
                    );
                    assert!(r.get("kept:49").is_some(), "replica {i} kept its data");
                }
            },
        )
        .await;
        let m = s.manager(&trio.addrs(), |_| {});
        let t = s
            .wait_new_master(DEADLINE, "a replica with the data promoted", &before)
            .await;
        let new = t.master.clone().expect("master");
        assert_ne!(new, master.node_addr());
        assert!(t.epoch > before.epoch, "{t:?}");
        let new_node = trio.node_at(&new);
        assert_keys(new_node, "kept", 50, &format!("on {new}"));
        master.wait_follows(new.port, true, DEADLINE, "the restarted node re-pointed");
        wait_until(DEADLINE, "the restarted node got the data back", || {
            master.get("kept:49")
        });
        // The other replica syncs from the new master as the guard's user: its rules are
        // enough for replication.
        let other = (1..3).map(|i| trio.node(i)).find(|n| n.node_addr() != new);
        let other = other.expect("the other replica");
        assert_eq!(config_get(other, "masteruser"), USER);
        other.wait_follows(
            new.port,
            true,
            DEADLINE,
            "the other replica in sync with the new master",
        );
        m.stop().await.expect("stop");
    }
}

/// With the default synchronous acknowledgement (managers `--synchronous-replicas 1`), a
/// replica that died earlier does not block the failover of a crashed master: the master's
/// last `INFO` no longer listed it, so `WAIT` could not count it, and the other replica has
/// every acknowledged write. (A replica still listed would block it: unit tests in
/// `manager/src/core/decide/safety_tests.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_replica_down_a_crashed_master_is_still_replaced_by_default() {
    let trio = RedisGroup::trio();
    let (master, survivor, dead) = (trio.node(0), trio.node(1), trio.node(2));
    let (m, s, before) = managed(&trio, "replica_down", |c| c.down_after_ms = Some(1000)).await;
    dead.kill9();
    s.wait(DEADLINE, "the dead replica published unavailable", |t| {
        t.unavailable.contains(&dead.node_addr())
    })
    .await;
    write_keys(master, "kept", 50, 100);
    let offset = master.offset().expect("master offset");
    wait_until(DEADLINE, "the survivor caught up", || {
        (survivor.offset()? >= offset).then_some(())
    });
    wait_until(DEADLINE, "the master lists one replica", || {
        master
            .info("replication")?
            .contains("connected_slaves:1")
            .then_some(())
    });
    // The manager's view of the master is internal: wait until it has read the master's
    // INFO twice since (every INFO counts, these counting reads included).
    let seen = master.calls("info");
    let mut own = 1;
    wait_until(DEADLINE, "two of the manager's polls of the master", || {
        own += 1;
        (master.calls("info") >= seen + own + 2).then_some(())
    });
    master.kill9();
    let t = s
        .wait_new_master(DEADLINE, "the survivor promoted", &before)
        .await;
    assert_eq!(t.master, Some(survivor.node_addr()), "{t:?}");
    for i in 0..50 {
        assert!(survivor.get(&format!("kept:{i}")).is_some(), "kept:{i}");
    }
    m.stop().await.expect("stop");
}

/// Issue 13, item 4: a replica that hangs at the moment the master crashes does not delay
/// the failover. The new master is published once the other replica follows it (what the
/// clients' `WAIT 1` needs), while the hung one's `REPLICAOF` still waits out its 1.5 s
/// timeout. (The hung replica has the higher address, so that a tie on offsets does not make
/// it the one to promote.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_hung_during_a_crash_failover_does_not_delay_its_publication() {
    let trio = RedisGroup::trio();
    let (a_i, b_i) = replicas_by_address(&trio);
    let (master, survivor, hung) = (trio.node(0), trio.node(a_i), trio.node(b_i));
    let (m, s, before) = managed(&trio, "hung_replica", |c| c.down_after_ms = Some(1000)).await;
    hung.sigstop();
    master.kill9();
    let killed = Instant::now();
    let t = s.wait_new_master(DEADLINE, "a new master", &before).await;
    let published = killed.elapsed();
    assert_eq!(t.master, Some(survivor.node_addr()), "{t:?}");
    assert!(
        published < Duration::from_millis(1500),
        "published {published:?} after the crash: the hung replica's REPLICAOF timeout was waited for"
    );
    hung.sigcont();
    hung.wait_follows(
        survivor.port(),
        true,
        DEADLINE,
        "the woken replica re-pointed",
    );
    m.stop().await.expect("stop");
}
