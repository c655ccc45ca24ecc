//! One run of `sentinel_bench`, the same for both systems: a fresh trio watched by 3 sentinels
//! or 3 of our managers, a writer, the master killed or frozen; then the time to a new
//! master, the write gap, the lost writes and the failovers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_failover_client::Client;
use redis_failover_tests::manager as harness;
use redis_failover_tests::manager::ManagerSet;
use redis_failover_tests::stats::{ms, rel_ms};
use redis_failover_tests::writer::{check_lost, ClientWriter, WriteLog, Writer};
use redis_failover_tests::{unique_root, RedisGroup};
use zookeeper_client as zk;

use super::{
    manager_args, Key, RunOk, Settings, ACK_GUARD, CALL_BOUND, CONNECT_TIMEOUT,
    SENTINEL_RETRY_PAUSE, WARM_ACKS,
};
use crate::failure::Scenario;
use crate::load::keep_logs;
use crate::managers::{start_managed, wait_ready, ManagerSpec};
use crate::nodes::{node_addr, Trio};
use crate::sentinel::{ready_and_tapped, start_watched, EventTap, SentinelWriter, Sentinels};
use crate::tasks::{join_error, Killing};
use crate::time::jitter;
use crate::watched::{Watched, Watchers};
use crate::znodes::{arm_topology_watch, watch_for_new_master};

/// Ends a run: with --log-dir, keeps its logs in `<dir>/<scenario>-<D>-<system>-<run>/`;
/// tears the trio and its watchers down; returns what was measured.
async fn conclude<W: Watchers>(
    s: &Settings,
    (sc, da, sys): Key,
    run: u32,
    trio: Watched<W>,
    measured: Result<RunOk, String>,
) -> Result<RunOk, String> {
    if let Some(d) = &s.opts.log_dir {
        keep_logs(&d.join(format!("{sc}-{da}-{sys}-{run}")), &trio.log_paths());
    }
    trio.teardown().await;
    measured
}

pub(super) async fn sentinel_run(s: &Settings, key: Key, run: u32) -> Result<RunOk, String> {
    let (sc, da, _) = key;
    let Some(program) = s.sentinel.clone() else {
        return Err("no sentinel program".into());
    };
    let trio = start_watched(program, da, s.opts.failover_timeout_ms).await?;
    let measured = trio
        .measure(12, |group, sentinels| {
            sentinel_measure(s, sc, group, sentinels)
        })
        .await;
    conclude(s, key, run, trio, measured).await
}

async fn sentinel_measure(
    s: &Settings,
    sc: Scenario,
    group: &Arc<RedisGroup>,
    sentinels: &Arc<Sentinels>,
) -> Result<RunOk, String> {
    let tap = ready_and_tapped(sentinels, s.deadline).await?;
    let writer = Writer::spawn(
        SentinelWriter::new(
            &sentinels.ports(),
            s.command_timeout,
            CONNECT_TIMEOUT,
            SENTINEL_RETRY_PAUSE,
        )?,
        None,
        CALL_BOUND,
    );
    measure(
        s,
        sc,
        group,
        writer,
        Side::Sentinel {
            tap: &tap,
            sentinels,
        },
    )
    .await
}

pub(super) async fn ours_run(
    s: &Settings,
    key: Key,
    run: u32,
    zk: &zk::Client,
) -> Result<RunOk, String> {
    let (sc, da, _) = key;
    let Some(bin) = s.manager_bin.as_deref() else {
        return Err("no redis_node_manager binary".into());
    };
    let root = unique_root(&format!("sb_{sc}_{da}_{run}"));
    let spec = ManagerSpec {
        bin,
        count: 3,
        zk: &s.zk_connect,
        root: &root,
        extra: manager_args(da),
        rust_log: "info",
    };
    let trio = start_managed(&spec).await?;
    let measured = trio
        .measure(12, |group, m| ours_measure(s, sc, zk, &root, group, m))
        .await;
    conclude(s, key, run, trio, measured).await
}

async fn ours_measure(
    s: &Settings,
    sc: Scenario,
    zk: &zk::Client,
    root: &str,
    group: &Arc<RedisGroup>,
    managers: &ManagerSet,
) -> Result<RunOk, String> {
    wait_ready(managers, zk, root, &Trio::of(group), s.deadline).await?;
    let client = tokio::time::timeout(
        s.deadline,
        Client::builder(&s.zk_connect)
            .znode_path(root)
            .command_timeout(s.command_timeout)
            .connect_timeout(CONNECT_TIMEOUT)
            .connect(),
    )
    .await
    .map_err(|_| "Client::connect timed out".to_string())?
    .map_err(|e| format!("Client::connect: {e}"))?;
    let writer = Writer::spawn(ClientWriter(client.clone()), None, CALL_BOUND);
    let r = measure(s, sc, group, writer, Side::Ours { zk, root }).await;
    drop(client);
    r
}

/// What differs between the systems in [`measure`].
enum Side<'a> {
    Sentinel {
        tap: &'a EventTap,
        sentinels: &'a Arc<Sentinels>,
    },
    Ours {
        zk: &'a zk::Client,
        root: &'a str,
    },
}

/// Lets the writer run, fails the master, measures, checks.
async fn measure(
    s: &Settings,
    sc: Scenario,
    group: &Arc<RedisGroup>,
    writer: Writer,
    side: Side<'_>,
) -> Result<RunOk, String> {
    let o = &s.opts;
    let old = node_addr(group.node(0).port());

    // 1. The writer works; let it run.
    let warm_deadline = Instant::now() + s.deadline;
    while writer.acked() < WARM_ACKS {
        if Instant::now() >= warm_deadline {
            let log = writer.snapshot();
            return Err(format!(
                "the writer had {} write(s) acknowledged within {:?}; last error: {:?}",
                log.acks.len(),
                s.deadline,
                log.errors.last().map(|e| &e.error)
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(o.settle_ms) + jitter(o.jitter_ms)).await;

    // 2. Arm the watch (ours); the sentinels' events are being recorded already.
    let mut armed = None;
    let mut epoch0 = 0;
    if let Side::Ours { zk, root } = &side {
        let path = format!("{root}/nodes");
        let (before, watcher) = arm_topology_watch(zk, &path).await?;
        if before.master.as_ref() != Some(&old) {
            return Err(format!(
                "{path} names {:?} before the failure, expected {old}",
                before.master
            ));
        }
        epoch0 = before.epoch;
        armed = Some((path, watcher));
    }

    // 3. The failure.
    let t0 = Instant::now();
    match sc {
        Scenario::Crash => Killing::start(group, 0).done().await?,
        Scenario::Hang => group.node(0).sigstop(),
    }
    let t_fail = Instant::now();
    let deadline = tokio::time::Instant::from_std(t0 + s.deadline);

    // 4. The new master, as each system publishes it.
    let (published_at, new_master, promoted_at) = match (&side, armed) {
        (Side::Ours { zk, .. }, Some((path, watcher))) => {
            let found =
                tokio::time::timeout_at(deadline, watch_for_new_master(zk, &path, &old, watcher))
                    .await
                    .map_err(|_| {
                        format!(
                            "no new master in {path} within {:?} of the {}",
                            s.deadline,
                            sc.how()
                        )
                    })??;
            let m = found
                .1
                .master
                .ok_or_else(|| "the new topology has no master".to_string())?;
            (found.0, m, None)
        }
        (Side::Sentinel { tap, .. }, _) => {
            let ev = tap
                .wait_first("+switch-master", t0, deadline)
                .await
                .ok_or_else(|| {
                    format!(
                        "no +switch-master within {:?} of the {}; events: {}",
                        s.deadline,
                        sc.how(),
                        event_summary(tap, t0)
                    )
                })?;
            let m = ev
                .switch_target()
                .ok_or_else(|| format!("cannot parse +switch-master {:?}", ev.payload))?;
            let promoted = tap.first("+promoted-slave", t0).map(|e| e.at);
            (ev.at, m, promoted)
        }
        (Side::Ours { .. }, None) => return Err("the watch was not armed".into()),
    };

    // 5. The first write on the new master.
    let first = writer
        .wait_ack_after(t_fail + ACK_GUARD, deadline)
        .await
        .ok_or_else(|| {
            let log = writer.snapshot();
            format!(
                "no write acknowledged within {:?} of the {} ({} errors; last: {:?})",
                s.deadline,
                sc.how(),
                log.errors.len(),
                log.errors.last().map(|e| &e.error)
            )
        })?;

    // 6. Write on, stop, count.
    tokio::time::sleep(Duration::from_millis(o.linger_ms)).await;
    let t_end = Instant::now();
    let log: WriteLog = writer.stop(Duration::from_secs(3)).await;
    let mut notes = Vec::new();
    let (failovers, final_master) = match &side {
        Side::Ours { zk, root } => {
            let t = harness::read_topology(zk, root)
                .await
                .ok_or_else(|| format!("{root}/nodes unreadable after the run"))?;
            (t.epoch.saturating_sub(epoch0), t.master)
        }
        Side::Sentinel { tap, sentinels } => {
            let sn = Arc::clone(sentinels);
            let (best, answers) = tokio::task::spawn_blocking(move || sn.master_addr())
                .await
                .map_err(|e| format!("asking the sentinels: {}", join_error(e)))?;
            if best.is_none() {
                notes.push(format!("the sentinels disagree on the master: {answers:?}"));
            }
            (tap.failovers(t0) as u64, best)
        }
    };
    let final_master = final_master.unwrap_or_else(|| new_master.clone());
    if final_master != new_master {
        notes.push(format!(
            "{new_master} was published first, {final_master} is the master at the end"
        ));
    }
    if let Some(node) = &first.node {
        if *node != new_master {
            notes.push(format!(
                "the first write after the failure was acknowledged by {node}"
            ));
        }
    }
    let lost = check_lost(&final_master, &log.acked_seqs()).await?.len();
    let from = t0.checked_sub(Duration::from_secs(1)).unwrap_or(t0);
    let (longest_gap, gap_start) = log.longest_gap(from, t_end);
    let acks_ms = log
        .acks
        .iter()
        .filter(|a| a.at >= from)
        .map(|a| rel_ms(a.at, t0))
        .collect();
    let rate = |a: Instant, b: Instant| {
        let n = log.acks.iter().filter(|x| x.at >= a && x.at < b).count();
        n as f64 / b.saturating_duration_since(a).as_secs_f64().max(1e-3)
    };
    let rate_before = rate(from.max(log.acks.first().map_or(from, |a| a.at)), t0);
    let rate_after = rate(first.at, t_end);
    Ok(RunOk {
        published: published_at.saturating_duration_since(t0),
        promoted: promoted_at.map(|p| p.saturating_duration_since(t0)),
        write_gap: first.at.duration_since(t0),
        longest_gap,
        longest_gap_at: rel_ms(gap_start, t0),
        new_master,
        acked: log.acks.len(),
        rate_before,
        rate_after,
        lost,
        errors: log.errors.len(),
        failovers,
        acks_ms,
        notes,
    })
}

/// The sentinels' events since `t0`, for an error message.
fn event_summary(tap: &EventTap, t0: Instant) -> String {
    let evs: Vec<String> = tap
        .events()
        .iter()
        .filter(|e| e.at >= t0)
        .map(|e| {
            format!(
                "[s{} +{:.0} ms] {} {}",
                e.sentinel,
                ms(e.at.duration_since(t0)),
                e.channel,
                e.payload
            )
        })
        .collect();
    if evs.is_empty() {
        "none".into()
    } else {
        evs.join(" | ")
    }
}
