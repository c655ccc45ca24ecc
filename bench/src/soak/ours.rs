//! `soak` phase 1: 3 of our managers (the most aggressive settings we recommend) on a trio and
//! ZooKeeper, a light writer through our `Client`; failovers, false suspicions, writer pauses.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use redis_failover_client::{Client, Topology};
use redis_failover_tests::manager as harness;
use redis_failover_tests::manager::ManagerSet;
use redis_failover_tests::writer::{ClientWriter, Writer};
use redis_failover_tests::{unique_root, RedisGroup, ZkServer};

use super::load::Loaded;
use super::{Counts, Opts, PhaseOut};
use crate::load::load_average;
use crate::managers::{log_lines, start_managed, wait_ready, ManagerSpec};
use crate::nodes::Trio;
use crate::scaffold::manager_bin;
use crate::tasks::{join_error, teardown};

fn our_args(o: &Opts) -> Vec<String> {
    vec![
        "--down-after-ms".into(),
        o.down_after_ms.to_string(),
        "--max-failures".into(),
        o.max_failures.to_string(),
        "--required-node-managers".into(),
        "2".into(),
    ]
}

/// Runs the phase.
pub(super) async fn phase(
    o: &Opts,
    hogs: usize,
    interrupted: &AtomicBool,
) -> Result<PhaseOut, String> {
    let bin = manager_bin(o.manager_bin.as_deref(), "soak")?;
    eprintln!("soak: ours: starting ZooKeeper, the trio and 3 managers ...");
    let zk_server = tokio::task::spawn_blocking(ZkServer::start)
        .await
        .map_err(|e| format!("ZooKeeper did not start: {}", join_error(e)))?;
    let zk_connect = zk_server.connect_string();
    let root = unique_root("soak");
    let spec = ManagerSpec {
        bin: &bin,
        count: 3,
        zk: &zk_connect,
        root: &root,
        extra: our_args(o),
        rust_log: "info",
    };
    let out = match start_managed(&spec).await {
        Ok(trio) => {
            let out = trio
                .measure(15, |group, m| {
                    measure(o, hogs, interrupted, &zk_connect, group, &root, m)
                })
                .await;
            trio.teardown().await;
            out
        }
        Err(e) => Err(e),
    };
    teardown("ZooKeeper", move || drop(zk_server)).await;
    out
}

async fn measure(
    o: &Opts,
    hogs: usize,
    interrupted: &AtomicBool,
    zk_connect: &str,
    group: &Arc<RedisGroup>,
    root: &str,
    managers: &ManagerSet,
) -> Result<PhaseOut, String> {
    let zk = harness::zk_client(zk_connect).await;
    let trio = Trio::of(group);
    let master = &trio.master;
    let before = wait_ready(
        managers,
        &zk,
        root,
        &trio,
        Duration::from_secs(o.timeout_secs),
    )
    .await?;
    let client = tokio::time::timeout(
        Duration::from_secs(o.timeout_secs),
        Client::builder(zk_connect)
            .znode_path(root)
            .command_timeout(Duration::from_millis(o.command_timeout_ms))
            .connect(),
    )
    .await
    .map_err(|_| "Client::connect timed out".to_string())?
    .map_err(|e| format!("Client::connect: {e}"))?;
    let writer = Writer::spawn(
        ClientWriter(client.clone()),
        Some(Duration::from_millis(o.write_every_ms)),
        Duration::from_secs(10),
    );
    // Log positions before the load starts: only what happens under load counts.
    let sdown0 = log_lines(managers, "+sdown").len();
    let mut load = Loaded::start(o, hogs)?;
    let t_start = load.t_start;
    println!(
        "ours: 3 managers `{}`, load started ({hogs} busy loops); master {master}, epoch {}",
        our_args(o).join(" "),
        before.epoch
    );
    let mut last: Topology = before.clone();
    let mut changes = 0u64;
    let mut failed = None;
    while let Some(progress) = load.clock.tick(interrupted).await {
        if let Some(t) = harness::read_topology(&zk, root).await {
            if t.master != last.master {
                changes += 1;
                println!(
                    "ours: +{:.1} s: master {:?} -> {:?} (epoch {})",
                    t_start.elapsed().as_secs_f64(),
                    last.master,
                    t.master,
                    t.epoch
                );
            }
            last = t;
        }
        if progress {
            println!(
                "ours: {:.0} min: epoch {}, {} writes acked, load {}",
                load.clock.minutes(),
                last.epoch,
                writer.acked(),
                load_average()
            );
        }
        if let Some(e) = managers.exited() {
            failed = Some(e);
            break;
        }
    }
    let settings = format!("3 managers, `{}`", our_args(o).join(" "));
    let out = load.end(failed, writer, "ours", settings).await;
    drop(client);
    let mut out = out?;
    let after = harness::read_topology(&zk, root)
        .await
        .ok_or_else(|| format!("{root}/nodes unreadable at the end"))?;
    let sdown_lines: Vec<String> = log_lines(managers, "+sdown")
        .into_iter()
        .skip(sdown0)
        .collect();
    let sdown_master = sdown_lines
        .iter()
        .filter(|l| l.contains(&format!("+sdown {master}")))
        .count();
    let switches: usize = log_lines(managers, "+switch-master").len();
    let zk_trouble: usize = log_lines(managers, "-zk-").len();
    for l in sdown_lines.iter().take(10) {
        println!("ours: log: {l}");
    }
    out.counts = Counts {
        failovers: after.epoch.saturating_sub(before.epoch),
        changes: changes.to_string(),
        sdown_master,
        sdown_any: sdown_lines.len(),
        odown: "-".into(),
        other: format!("+switch-master log lines {switches}, -zk-* log lines {zk_trouble}"),
    };
    Ok(out)
}
