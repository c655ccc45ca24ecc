//! One `failover_bench` run: a fresh trio, root and in-process manager; the master killed or
//! frozen; (a) the new master in ZooKeeper and (b) the first write accepted, from the signal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis_failover_client::NodeAddr;
use redis_failover_manager::Cli;
use redis_failover_tests::manager::{self as harness, Manager};
use redis_failover_tests::stats::ms;
use redis_failover_tests::{connect_async, unique_root, unix_ms, RedisGroup};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zookeeper_client as zk;

use super::{RunOk, Settings, BENCH_KEY, PREOPEN_TIMEOUT, SET_EVERY, SET_TIMEOUT};
use crate::failure::Scenario;
use crate::inprocess::{self, finish_run};
use crate::nodes::Trio;
use crate::tasks::{join_error, start_trio, Killing};
use crate::time::jitter;
use crate::znodes::{arm_topology_watch, watch_for_new_master};

/// One run: fresh trio, root and manager; fail the master; measure; clean up.
pub(super) async fn run_once(
    s: &Settings,
    zk: &zk::Client,
    scenario: Scenario,
    run: u32,
) -> Result<RunOk, String> {
    let group = start_trio().await?;
    let root = unique_root(&format!("bench_{scenario}_{run}"));
    let addrs: Vec<String> = group.addrs();
    let opts = &s.opts;
    let config = harness::config(&s.zk_connect, &addrs, &root, |c: &mut Cli| {
        c.max_failures = Some(opts.max_failures);
        c.down_after_ms = Some(opts.down_after_ms);
        c.manager_name = Some(format!("bench-{scenario}-{run}"));
    });
    let manager = inprocess::start(&s.manager_rt, config);

    let measured = measure(s, zk, scenario, &group, &root, &manager).await;

    if scenario == Scenario::Hang {
        group.node(0).sigcont();
    }
    finish_run(manager, group, measured, &format!("{scenario} run {run}")).await
}

/// Waits for the steady topology, fails the master, measures (a) and (b).
async fn measure(
    s: &Settings,
    zk: &zk::Client,
    scenario: Scenario,
    group: &Arc<RedisGroup>,
    root: &str,
    manager: &Manager,
) -> Result<RunOk, String> {
    let trio = Trio::of(group);
    let (master, survivors) = (trio.master.clone(), trio.replicas.clone());

    // 1. The manager has discovered the trio and published it.
    inprocess::wait_published(zk, root, &trio, manager, s.deadline).await?;
    tokio::time::sleep(Duration::from_millis(s.opts.settle_ms) + jitter(s.opts.jitter_ms)).await;

    // 2. Arm the watch and open the write connections before the signal.
    let path = format!("{root}/nodes");
    let (_, watcher) = arm_topology_watch(zk, &path).await?;
    let mut conns = Vec::new();
    for addr in &survivors {
        conns.push(connect_async(addr, PREOPEN_TIMEOUT).await.map_err(|e| {
            format!("cannot open the write connection to {addr} before the signal: {e}")
        })?);
    }

    // 3. Signal.
    let t0 = Instant::now();
    let t0_wall_ms = unix_ms();
    let killer = match scenario {
        Scenario::Crash => Some(Killing::start(group, 0)),
        Scenario::Hang => {
            group.node(0).sigstop();
            None
        }
    };
    let deadline = tokio::time::Instant::from_std(t0 + s.deadline);
    let (tx, mut rx) = mpsc::channel::<(NodeAddr, Instant, u64)>(survivors.len());
    let writers: Vec<JoinHandle<()>> = survivors
        .iter()
        .cloned()
        .zip(conns)
        .map(|(addr, conn)| tokio::spawn(write_until_ok(addr, conn, tx.clone())))
        .collect();
    drop(tx);
    let mut znode = {
        let zk = zk.clone();
        let path = path.clone();
        let old = master.clone();
        tokio::spawn(async move { watch_for_new_master(&zk, &path, &old, watcher).await })
    };

    // 4. Collect (a) and (b), each within the deadline.
    let a = tokio::time::timeout_at(deadline, &mut znode).await;
    let b = tokio::time::timeout_at(deadline, rx.recv()).await;
    znode.abort();
    for w in &writers {
        w.abort();
    }
    if let Some(k) = killer {
        k.done().await?;
    }

    let (seen_at, topo, _watch) = match a {
        Err(_) => {
            let now = harness::read_topology(zk, root).await;
            return Err(format!(
                "(a) timed out: no topology with a master other than {master} within {:?} of the `{}`; {path} holds {now:?}{}",
                s.deadline,
                scenario.how(),
                match &b {
                    Ok(Some((node, at, _))) => format!(
                        "; meanwhile {node} accepted a write {:.1} ms after the signal",
                        ms(at.duration_since(t0))
                    ),
                    _ => "; and no surviving node accepted a write either".to_string(),
                }
            ));
        }
        Ok(Err(e)) => return Err(format!("(a) the watch task failed: {}", join_error(e))),
        Ok(Ok(Err(e))) => return Err(format!("(a) {e}")),
        Ok(Ok(Ok(found))) => found,
    };
    let winner = topo
        .master
        .clone()
        .ok_or_else(|| "(a) the new topology has no master".to_string())?;
    let (writer, written_at, set_attempts) = match b {
        Ok(Some(w)) => w,
        Ok(None) => return Err("(b) every write task ended without an OK".to_string()),
        Err(_) => {
            return Err(format!(
                "(b) timed out: no surviving node accepted `SET {BENCH_KEY}` within {:?} of the `{}`, although {path} names {winner} as master since {:.1} ms",
                s.deadline,
                scenario.how(),
                ms(seen_at.duration_since(t0))
            ))
        }
    };
    if writer != winner {
        return Err(format!(
            "the first write was accepted by {writer}, but {path} names {winner} as master"
        ));
    }
    let after_linger = if s.opts.linger_ms > 0 {
        tokio::time::sleep(Duration::from_millis(s.opts.linger_ms)).await;
        let now = harness::read_topology(zk, root).await;
        match &now {
            Some(t) if t.master.as_ref() == Some(&winner) && t.epoch == topo.epoch => None,
            Some(t) if t.master.as_ref() == Some(&winner) => Some(format!(
                "{} ms later {path} names the same master but epoch {} (was {})",
                s.opts.linger_ms, t.epoch, topo.epoch
            )),
            _ => {
                return Err(format!(
                    "{winner} (epoch {}) was published {:.1} ms after the `{}`, but {} ms later {path} holds {now:?}",
                    topo.epoch,
                    ms(seen_at.duration_since(t0)),
                    scenario.how(),
                    s.opts.linger_ms
                ))
            }
        }
    } else {
        None
    };
    Ok(RunOk {
        to_znode: seen_at.duration_since(t0),
        to_write: written_at.duration_since(t0),
        winner,
        epoch: topo.epoch,
        published_after_ms: i128::from(topo.updated_at_ms) - i128::from(t0_wall_ms),
        set_attempts,
        after_linger,
    })
}

/// Sends `SET bench:key <n>` to `addr` every [`SET_EVERY`] until one is answered `OK`, then
/// reports the node, the time and `n`. `READONLY` (a replica) means try again; any other
/// error or a timeout means a fresh connection.
async fn write_until_ok(
    addr: NodeAddr,
    conn: MultiplexedConnection,
    tx: mpsc::Sender<(NodeAddr, Instant, u64)>,
) {
    let mut conn = Some(conn);
    let mut n: u64 = 0;
    // Absolute 1 ms ticks (a `sleep(1 ms)` after each reply would round up to ~2 ms).
    let mut every = tokio::time::interval(SET_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        if conn.is_none() {
            conn = connect_async(&addr, SET_TIMEOUT).await.ok();
        }
        if let Some(c) = conn.as_mut() {
            n += 1;
            let mut cmd = redis::cmd("SET");
            cmd.arg(BENCH_KEY).arg(n);
            let set = cmd.query_async::<redis::Value>(c);
            match tokio::time::timeout(SET_TIMEOUT, set).await {
                Ok(Ok(redis::Value::Okay)) => {
                    let _ = tx.send((addr, Instant::now(), n)).await;
                    return;
                }
                Ok(Ok(redis::Value::SimpleString(s))) if s == "OK" => {
                    let _ = tx.send((addr, Instant::now(), n)).await;
                    return;
                }
                Ok(Err(e)) if e.code() == Some("READONLY") => {}
                // Anything else (LOADING, a dropped connection, a timeout): start afresh.
                Ok(_) | Err(_) => conn = None,
            }
        }
    }
}
