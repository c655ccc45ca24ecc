//! Issue 15, item 1: what Valkey 8 changed that a manager sees. Run against Valkey by
//! `.ci/run`'s second pass (`REDIS_SERVER_BIN=valkey-server`); against Redis these tests say
//! `SKIPPED (needs Valkey)` and pass.
//!
//! Dual-channel replication (`dual-channel-replication-enabled yes`): during a full sync the
//! master's INFO lists the replica's RDB connection as one more `slaveN`
//! (`type=rdb-channel`), which made Sentinel record phantom replicas (valkey-io/valkey#2338).
//! The manager must publish only the configured nodes, and the resynced replica once it has
//! caught up; a crash failover works as on Redis.

use std::time::Duration;

use redis_failover_tests::manager::managed;
use redis_failover_tests::{for_a_while, server_bin, wait_until, RedisGroup};

const DEADLINE: Duration = Duration::from_secs(60);

/// `Some(version line)` when the server the tests start is Valkey.
fn valkey() -> Option<String> {
    let out = std::process::Command::new(server_bin())
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.contains("Valkey").then_some(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_channel_full_sync_publishes_no_phantom_replica() {
    let Some(version) = valkey() else {
        eprintln!(
            "SKIPPED (needs Valkey: REDIS_SERVER_BIN=valkey-server, as .ci/run's second pass sets)"
        );
        return;
    };
    println!("{}", version.trim());
    let trio = RedisGroup::start(2, &["--dual-channel-replication-enabled", "yes"]);
    let (m, s, before) = managed(&trio, "valkey_dual", |_| {}).await;
    let configured: Vec<String> = trio.addrs();
    // A replica misses more writes than the backlog holds: it must sync in full, on two
    // channels, and the data makes that take a moment.
    let (master, replica) = (trio.node(0), trio.node(2));
    master
        .cmd(&["CONFIG", "SET", "repl-backlog-size", "16384"])
        .expect("CONFIG SET");
    replica.kill9();
    for i in 0..2000 {
        master
            .cmd(&["SET", &format!("big:{i}"), &"v".repeat(4096)])
            .expect("SET");
    }
    replica.restart(Some(master.port()));
    // While it syncs (two channels) and after: only configured nodes, never a phantom.
    let mut saw_rdb_channel = false;
    for_a_while(Duration::from_secs(4), Duration::from_millis(20), || {
        let info = master.cmd(&["INFO", "replication"]).ok();
        saw_rdb_channel |= format!("{info:?}").contains("rdb-channel");
        let topology = s.topology();
        let configured = configured.clone();
        async move {
            if let Some(t) = topology.await {
                for n in t.slaves.iter().chain(t.unavailable.iter()) {
                    assert!(
                        configured.contains(&n.to_string()),
                        "phantom replica {n} in {t:?}"
                    );
                }
            }
        }
    })
    .await;
    println!("an rdb-channel entry seen in the master's INFO: {saw_rdb_channel}");
    s.wait(DEADLINE, "the resynced replica published", |t| {
        t.slaves.len() == 2 && t.unavailable.is_empty()
    })
    .await;
    wait_until(DEADLINE, "the replica has the data", || {
        replica.get("big:1999").map(|_| ())
    });

    // And a crash failover.
    master.kill9();
    let t = s
        .wait_new_master(DEADLINE, "a failover on Valkey", &before)
        .await;
    assert_eq!(t.epoch, before.epoch + 1);
    m.stop().await.expect("stop");
}
