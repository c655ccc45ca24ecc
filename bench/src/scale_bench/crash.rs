//! One crash of `scale_bench rack`, of one group (the reference) or of K at once: on each
//! chosen group a `redis_failover_client::Client` (synchronous default: a write is
//! acknowledged once a replica has it) writes `SET rack:<group>:<n> <n>` back to back (or
//! one per --write-interval-ms) and logs every acknowledged write with its time; after
//! --write-secs the masters get SIGKILL in one tight loop (the clock starts after the last
//! `kill(2)`); then per group, from that instant:
//! * **published**: a ZooKeeper data watch on the group's `<znode_path>/nodes`, armed before
//!   the kill on the bench's session, timed when the read naming another master returns;
//! * **first write**: the first acknowledgement more than 5 ms after the kill with the
//!   client's topology naming another master than the killed one (the new master's);
//!
//! within --deadline-secs. The writers go on for --linger-ms, then every acknowledged write
//! is read back (`MGET`) from the group's new master. ZooKeeper's requests over
//! --zk-window-secs after the kill (counted from a snapshot taken 0.3 s before it, so that
//! the snapshot's own `ss` is over by the kill): `srvr` sampled every 100 ms (total and peak per 100 ms),
//! split by connection with `cons` (the managers' vs the bench's: its watch session and the K
//! clients' sessions); and the managers' CPU over the same window.

use std::time::{Duration, Instant};

use futures::StreamExt;
use redis_failover_client::{Client, NodeAddr};
use redis_failover_tests::manager::ManagerSet;
use redis_failover_tests::writer::Writer;
use zookeeper_client as zk;

use super::groups::Groups;
use super::procstat::{idle_pct, machine_ticks, CpuMeter};
use super::writes::{lost_writes, prefix, RackWriter};
use super::zkstats::{srvr_received, Overhead, ZkSnapshot, ZkTraffic};
use super::{blocking, secs, RackOpts};
use crate::nodes::node_addr;
use crate::znodes::{arm_topology_watch, watch_for_new_master};

/// An acknowledgement counts as the new master's when it comes this long after the kill.
const ACK_GUARD: Duration = Duration::from_millis(5);
/// How often the log of a writer is looked at for its first write after the kill.
const ACK_POLL: Duration = Duration::from_millis(20);
/// A write still unanswered after this long is abandoned (never expected).
const CALL_BOUND: Duration = Duration::from_secs(10);
/// Bound on connecting a client.
const CONNECT_BOUND: Duration = Duration::from_secs(15);
/// Clients connected at the same time.
const PARALLEL_CONNECTS: usize = 8;
/// Period of the `srvr` samples after the kill.
const SAMPLE: Duration = Duration::from_millis(100);
/// Pause between the snapshot of ZooKeeper's counters and the kill.
const SETTLE: Duration = Duration::from_millis(300);

/// What a crash works on.
pub(super) struct CrashCtx<'a> {
    pub o: &'a RackOpts,
    pub zk: &'a zk::Client,
    pub zk_port: u16,
    pub connect: &'a str,
    pub groups: &'a Groups,
    pub roots: &'a [String],
    pub managers: &'a ManagerSet,
    /// What the bench's own reads add to ZooKeeper's request counter.
    pub own: Overhead,
}

/// One killed group.
pub(super) struct GroupOutcome {
    pub name: String,
    pub published: Option<Duration>,
    pub first_write: Option<Duration>,
    pub new_master: Option<NodeAddr>,
    pub acked: usize,
    pub errors: usize,
    /// `None` when the check could not run.
    pub lost: Option<usize>,
    pub problems: Vec<String>,
}

impl GroupOutcome {
    pub(super) fn succeeded(&self) -> bool {
        self.published.is_some() && self.first_write.is_some()
    }
}

/// ZooKeeper and the managers over the window after the kill.
pub(super) struct After {
    pub zk: ZkTraffic,
    /// Most `srvr` requests within one 100 ms sample.
    pub peak_100ms: u64,
    pub manager_cpu_pct: f64,
    /// How long the `kill(2)` loop took, and whether under `SCHED_FIFO`.
    pub kill_spread: Duration,
    pub realtime: bool,
    /// The machine's idle CPU while the writers ran, before the kill, in %.
    pub idle_before_pct: f64,
}

pub(super) struct CrashResult {
    pub groups: Vec<GroupOutcome>,
    pub after: After,
}

/// SIGKILL to every pid in one burst; returns how long the loop took and whether it ran
/// under `SCHED_FIFO`. A normal thread that wakes a killed process may be preempted by it:
/// 30 kills then took 30 ms on a 2-core machine, the first masters dying well before the
/// clock starts. Under `SCHED_FIFO` (root) nothing preempts the loop.
fn kill_burst(pids: &[libc::pid_t]) -> (Duration, bool) {
    let fifo = libc::sched_param { sched_priority: 1 };
    // SAFETY: sets this thread's policy (pid 0: the caller), restored below.
    let realtime = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &fifo) } == 0;
    let t0 = Instant::now();
    for pid in pids {
        // SAFETY: kill(2) of our own child, still running or a zombie (checked by the
        // caller; only kill9 reaps it), so the pid is still its.
        unsafe {
            libc::kill(*pid, libc::SIGKILL);
        }
    }
    let spread = t0.elapsed();
    if realtime {
        let normal = libc::sched_param { sched_priority: 0 };
        // SAFETY: as above, back to the default policy.
        unsafe {
            libc::sched_setscheduler(0, libc::SCHED_OTHER, &normal);
        }
    }
    (spread, realtime)
}

/// Kills the masters of `chosen` (group indices) under writers and measures; `background`
/// groups get writers too, and are not killed: the single crash runs under the same write
/// load as the rack's (a machine that the rack's writers keep busy is as busy for the one
/// reference failover).
pub(super) async fn crash(
    c: &CrashCtx<'_>,
    chosen: &[usize],
    background: &[usize],
) -> Result<CrashResult, String> {
    let o = c.o;
    // 1. A client and a writer per group, the killed ones first.
    let written: Vec<usize> = chosen.iter().chain(background).copied().collect();
    let clients: Vec<Result<Client, String>> =
        futures::stream::iter(written.iter().map(|&i| async move {
            let root = &c.roots[i];
            tokio::time::timeout(
                CONNECT_BOUND,
                Client::builder(c.connect).znode_path(root).connect(),
            )
            .await
            .map_err(|_| format!("Client::connect to {root} timed out"))?
            .map_err(|e| format!("Client::connect to {root}: {e}"))
        }))
        .buffered(PARALLEL_CONNECTS)
        .collect()
        .await;
    let clients = clients.into_iter().collect::<Result<Vec<_>, _>>()?;
    let writers: Vec<Writer> = clients
        .into_iter()
        .zip(&written)
        .map(|(client, &i)| {
            let w = RackWriter {
                client,
                prefix: prefix(i),
            };
            let every =
                (o.write_interval_ms > 0).then(|| Duration::from_millis(o.write_interval_ms));
            Writer::spawn(w, every, CALL_BOUND)
        })
        .collect();
    let machine0 = machine_ticks()?;
    tokio::time::sleep(secs(o.write_secs)).await;
    let idle_before_pct = idle_pct(machine0, machine_ticks()?);
    if let Some((w, &i)) = writers.iter().zip(&written).find(|(w, _)| w.acked() == 0) {
        let log = w.snapshot();
        return Err(format!(
            "the writer of {} had no write acknowledged in {} s; last error: {:?}",
            Groups::name(i),
            o.write_secs,
            log.errors.last().map(|e| &e.error)
        ));
    }

    // 2. The watches, armed on the masters as started.
    let mut watches = Vec::with_capacity(chosen.len());
    for &i in chosen {
        let path = format!("{}/nodes", c.roots[i]);
        let old = node_addr(c.groups.get(i).node(0).port());
        let (before, w) = arm_topology_watch(c.zk, &path).await?;
        if before.master.as_ref() != Some(&old) {
            return Err(format!(
                "{path} names {:?} before the kill, not {old}",
                before.master
            ));
        }
        watches.push((path, old, w));
    }

    // 3. The kill, in one tight loop; the sampler of the window after it.
    let zk_port = c.zk_port;
    let z0 = blocking(move || ZkSnapshot::take(zk_port)).await?;
    let received0 = blocking(move || srvr_received(zk_port)).await?;
    // The snapshot runs `ss` over every connection of the machine (tens of ms of CPU): let
    // it end before the kill, not compete with the failovers it measures.
    tokio::time::sleep(SETTLE).await;
    let cpu = CpuMeter::start(&manager_pids(c.managers))?;
    let mut pids: Vec<libc::pid_t> = Vec::with_capacity(chosen.len());
    for &i in chosen {
        let master = c.groups.get(i).node(0);
        // Running now (not exited, not reaped): only this program reaps it, in kill9 below.
        if !master.is_running() {
            return Err(format!(
                "the master of {} is gone before the kill",
                Groups::name(i)
            ));
        }
        pids.push(master.pid() as libc::pid_t);
    }
    let (kill_spread, realtime) = kill_burst(&pids);
    let t_kill = Instant::now();
    let window = secs(o.zk_window_secs);
    let sampler =
        tokio::task::spawn_blocking(move || sample(zk_port, received0, t_kill, window, cpu));
    let reap: Vec<_> = chosen.iter().map(|&i| c.groups.get(i).clone()).collect();
    let reaped = tokio::task::spawn_blocking(move || {
        for g in &reap {
            g.node(0).kill9();
        }
    });

    // 4. Per group: published, first write.
    let deadline = tokio::time::Instant::from_std(t_kill + secs(o.deadline_secs));
    let measured: Vec<Observed> = futures::future::join_all(
        watches
            .into_iter()
            .zip(&writers)
            .map(|(watch, writer)| observe(c, watch, writer, t_kill, deadline)),
    )
    .await;
    reaped.await.map_err(|e| {
        format!(
            "reaping the killed masters: {}",
            crate::tasks::join_error(e)
        )
    })?;
    tokio::time::sleep(Duration::from_millis(o.linger_ms)).await;
    let mut logs = Vec::with_capacity(writers.len());
    for w in writers {
        logs.push(w.stop(Duration::from_secs(3)).await);
    }

    // 5. Lost writes, on each group's new master.
    let mut outcomes = Vec::with_capacity(chosen.len());
    let mut kept_watches = Vec::with_capacity(chosen.len());
    for ((&i, seen), log) in chosen.iter().zip(measured).zip(&logs) {
        let Observed {
            published,
            first,
            why,
            watch,
        } = seen;
        kept_watches.extend(watch);
        let mut problems: Vec<String> = why.into_iter().collect();
        if first.is_none() {
            problems.push(format!(
                "no write acknowledged within {} s of the kill ({} errors; last: {:?})",
                o.deadline_secs,
                log.errors.len(),
                log.errors.last().map(|e| &e.error)
            ));
        }
        let new_master = published.as_ref().map(|(_, m)| m.clone());
        let lost = match &new_master {
            Some(m) => match lost_writes(m, &prefix(i), log).await {
                Ok(n) => Some(n),
                Err(e) => {
                    problems.push(e);
                    None
                }
            },
            None => None,
        };
        outcomes.push(GroupOutcome {
            name: Groups::name(i),
            published: published.map(|(at, _)| at.saturating_duration_since(t_kill)),
            first_write: first.map(|at| at.saturating_duration_since(t_kill)),
            new_master,
            acked: log.acks.len(),
            errors: log.errors.len(),
            lost,
            problems,
        });
    }

    // 6. The window after the kill.
    let (samples, z1, manager_cpu_pct) = sampler
        .await
        .map_err(|e| format!("the ZooKeeper sampler: {}", crate::tasks::join_error(e)))??;
    drop(kept_watches);
    // What the bench's own reads add taken off: a srvr per sample, and the snapshots.
    let peak_100ms = samples
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]).saturating_sub(c.own.srvr))
        .max()
        .unwrap_or(0);
    let own = c.own.snapshot + c.own.srvr * samples.len() as u64;
    let zk = ZkTraffic::between(&z0, &z1, &manager_pids(c.managers), own);
    Ok(CrashResult {
        groups: outcomes,
        after: After {
            zk,
            peak_100ms,
            manager_cpu_pct,
            kill_spread,
            realtime,
            idle_before_pct,
        },
    })
}

/// What [`observe`] saw of one group.
struct Observed {
    /// When the read naming the new master returned, and the new master.
    published: Option<(Instant, NodeAddr)>,
    /// The first acknowledgement after the kill (and [`ACK_GUARD`]).
    first: Option<Instant>,
    /// Why nothing was published.
    why: Option<String>,
    /// The watch the last read left, kept until the window after the kill is over: dropped,
    /// it would add a request (`removeWatches`) to the burst being measured.
    watch: Option<zk::OneshotWatcher>,
}

/// Follows one group's watch and writer from the kill until both saw the new master, or
/// `deadline`.
async fn observe(
    c: &CrashCtx<'_>,
    (path, old, watch): (String, NodeAddr, zk::OneshotWatcher),
    writer: &Writer,
    t_kill: Instant,
    deadline: tokio::time::Instant,
) -> Observed {
    let published = async {
        match tokio::time::timeout_at(deadline, watch_for_new_master(c.zk, &path, &old, watch))
            .await
        {
            Ok(Ok((at, t, w))) => (t.master.map(|m| (at, m)), None, Some(w)),
            Ok(Err(e)) => (None, Some(e), None),
            Err(_) => (
                None,
                Some(format!(
                    "no new master in {path} within {} s",
                    c.o.deadline_secs
                )),
                None,
            ),
        }
    };
    let first = first_ack_after(writer, &old, t_kill + ACK_GUARD, deadline);
    let ((published, why, watch), first) = tokio::join!(published, first);
    Observed {
        published,
        first,
        why,
        watch,
    }
}

/// When the first write after `after` was acknowledged by another node than `old` (the
/// writer's own timestamp, so the coarse polling, which spares the CPU the managers need,
/// does not delay it), until `deadline`. On a busy machine a client may read the old
/// master's last replies a few ms after the kill: those are not the new master's.
async fn first_ack_after(
    writer: &Writer,
    old: &NodeAddr,
    after: Instant,
    deadline: tokio::time::Instant,
) -> Option<Instant> {
    loop {
        let first = writer.with_log(|l| {
            l.acks_after(after)
                .iter()
                .find(|a| a.node.as_ref() != Some(old))
                .map(|a| a.at)
        });
        if let Some(at) = first {
            return Some(at);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(ACK_POLL).await;
    }
}

fn manager_pids(m: &ManagerSet) -> Vec<u32> {
    (0..m.len())
        .filter_map(|i| m.process(i).map(|p| p.pid()))
        .collect()
}

type Sampled = Result<(Vec<u64>, ZkSnapshot, f64), String>;

/// `srvr` Received every 100 ms from `received0` until `t0 + window`, then a full snapshot
/// and the managers' CPU. Blocking.
fn sample(port: u16, received0: u64, t0: Instant, window: Duration, cpu: CpuMeter) -> Sampled {
    let mut samples = vec![received0];
    let mut k = 1u32;
    while t0 + SAMPLE * k <= t0 + window {
        let next = t0 + SAMPLE * k;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        samples.push(srvr_received(port)?);
        k += 1;
    }
    let cpu_pct = cpu.percent()?;
    let snap = ZkSnapshot::take(port)?;
    Ok((samples, snap, cpu_pct))
}
