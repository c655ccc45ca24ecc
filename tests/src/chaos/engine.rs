//! The driver of a chaos run: sets up the trio, the managers, the observer and the writer,
//! runs the rounds and the final loss check, and fills the [`Report`].

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis_failover_client::{Client, NodeAddr, Topology, ZnodePaths};
use tokio::runtime::Runtime;
use zookeeper_client as zk;

use super::config::{ManagerMode, Options};
use super::faults::schedule;
use super::observer::{describe, observe, Judge, ObsState, Slot, SweepCtx};
use super::report::{rel_ms, LostWrite, Report};
use crate::manager::{lock_order, ManagerSet};
use crate::util::lock;
use crate::writer::{check_lost, ClientWriter, WriteLog, Writer};
use crate::{RedisGroup, RedisNode};

/// Bound on one write of the writer (the client has its own, shorter, deadlines).
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);
/// Rounds in a row that do not converge before the run is given up (the group is stuck).
const MAX_STUCK_ROUNDS: u32 = 3;

/// What the driver of a run holds.
pub(super) struct Engine<'a> {
    pub(super) rt: &'a Runtime,
    pub(super) opts: &'a Options,
    pub(super) t0: Instant,
    pub(super) group: RedisGroup,
    pub(super) ports: Vec<u16>,
    pub(super) managers: ManagerSet,
    pub(super) obs: Arc<Mutex<ObsState>>,
    /// Started once the group is healthy.
    pub(super) writer: Option<Writer>,
    pub(super) zk: zk::Client,
    pub(super) root: String,
    /// Acknowledged writes already counted as lost.
    pub(super) lost: HashSet<u64>,
    pub(super) observer_log: File,
}

pub(super) fn run_on(
    rt: &Runtime,
    opts: &Options,
    zk_connect: &str,
    out: &mut dyn FnMut(&str),
) -> Result<Report, String> {
    let t0 = Instant::now();
    let mut rng = fastrand::Rng::with_seed(opts.seed);
    let plan = schedule(opts, &mut rng);
    let mode = match &opts.managers {
        ManagerMode::Process(bin) => {
            format!("{} processes ({})", opts.manager_count, bin.display())
        }
        ManagerMode::InProcess => format!(
            "{} in-process (own runtime each; kill = runtime dropped at once)",
            opts.manager_count
        ),
    };
    out(&format!(
        "chaos: seed {}, {} rounds, managers: {mode}, session {} ms, down-after {}, logs in {}",
        opts.seed,
        opts.rounds,
        opts.session_ms,
        opts.down_after_ms
            .map_or("default".to_string(), |d| format!("{d} ms")),
        opts.log_dir.display()
    ));

    let group = RedisGroup::trio();
    let ports = group.ports();
    let root = crate::unique_root("chaos");
    let paths = ZnodePaths::new(&root).map_err(|e| format!("root {root}: {e}"))?;
    let names: Vec<String> = (1..=opts.manager_count).map(|i| format!("m{i}")).collect();
    let mut flags = ManagerSet::base_flags(zk_connect, &group.addrs(), &root);
    flags.extend([
        "--zk-session-timeout-ms".into(),
        opts.session_ms.to_string(),
    ]);
    if let Some(d) = opts.down_after_ms {
        flags.extend(["--down-after-ms".into(), d.to_string()]);
    }
    let managers = ManagerSet::new(opts.managers.clone(), flags)
        .log_to(&opts.log_dir)
        .rust_log(&opts.manager_log_filter)
        .start_named(&names.iter().map(String::as_str).collect::<Vec<_>>())?;
    let zk = rt.block_on(crate::manager::zk_client(zk_connect));
    let observer_log = File::create(opts.log_dir.join("observer.log"))
        .map_err(|e| format!("observer.log: {e}"))?;
    let mut engine = Engine {
        rt,
        opts,
        t0,
        ports: ports.clone(),
        group,
        managers,
        obs: Arc::new(Mutex::new(ObsState::default())),
        writer: None,
        zk: zk.clone(),
        root: root.clone(),
        lost: HashSet::new(),
        observer_log,
    };

    // The observer starts first, so that it sees everything.
    let stop_obs = Arc::new(AtomicBool::new(false));
    let sweep_ctx = Arc::new(SweepCtx {
        ports: ports.clone(),
        slots: ports.iter().map(|_| Slot::default()).collect(),
        zk: zk.clone(),
        path: paths.nodes(),
        timeout: opts.probe_timeout,
    });
    let judge = Judge {
        ports: ports.clone(),
        tight_reply: opts.tight_reply,
        tight_zk: opts.tight_zk,
        stale_master_bound: opts.stale_master_bound,
        t0,
    };
    let observer = rt.spawn(observe(
        sweep_ctx,
        judge,
        Arc::clone(&engine.obs),
        Arc::clone(&stop_obs),
        opts.sweep_interval,
    ));

    // Healthy and published, every manager contending, then the writer.
    let setup = engine.wait_converged(t0, None, false, Duration::from_secs(60));
    if let Err(e) = setup {
        stop_obs.store(true, Ordering::Relaxed);
        engine.managers.stop_all();
        return Err(format!(
            "the group never became healthy: {e}{}",
            engine.managers.tails(30)
        ));
    }
    let client = rt
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(30),
                Client::builder(zk_connect).znode_path(&root).connect(),
            )
            .await
        })
        .map_err(|_| "Client::connect timed out".to_string())?
        .map_err(|e| format!("Client::connect: {e}"))?;
    engine.writer = Some({
        let _in = rt.enter();
        Writer::spawn(
            ClientWriter(client),
            Some(opts.write_interval),
            WRITE_TIMEOUT,
        )
    });
    out(&format!(
        "chaos: trio {:?} healthy, {} managers contending, writer started ({:.1} s)",
        ports,
        names.len(),
        t0.elapsed().as_secs_f64()
    ));

    let mut report = Report {
        seed: opts.seed,
        manager_mode: mode,
        log_dir: opts.log_dir.clone(),
        ..Report::default()
    };
    let mut stuck = 0;
    for (i, (kind, on_master)) in plan.into_iter().enumerate() {
        let round = i as u32 + 1;
        let fault = engine.pick(kind, on_master, &mut rng);
        let r = engine.round(round, fault, &mut rng);
        out(&r.line());
        if let Some(f) = &r.failure {
            out(&format!("  round {round}: {f}"));
        }
        for l in r.lost_unexpected.iter().take(5) {
            out(&format!(
                "  round {round}: UNEXPECTED loss of seq:{} (sent {:+.1} ms, acknowledged {:+.1} ms from the fault, client's master then :{}): {}",
                l.seq,
                l.sent_ms_from_fault,
                l.acked_ms_from_fault,
                l.via_port.map_or("?".into(), |p| p.to_string()),
                l.why
            ));
        }
        if r.lost_unexpected.len() > 5 {
            let first = r.lost_unexpected.iter().map(|l| l.seq).min().unwrap_or(0);
            let last = r.lost_unexpected.iter().map(|l| l.seq).max().unwrap_or(0);
            out(&format!(
                "  round {round}: ... {} unexpected losses in all, seq:{first}..seq:{last}",
                r.lost_unexpected.len()
            ));
        }
        {
            for e in r.error_details.iter().take(3) {
                out(&format!("  round {round}: writer error {e}"));
            }
        }
        stuck = if r.converged() { 0 } else { stuck + 1 };
        report.rounds.push(r);
        if stuck >= MAX_STUCK_ROUNDS {
            report.aborted = Some(format!(
                "{MAX_STUCK_ROUNDS} rounds in a row did not converge; the group looks stuck"
            ));
            break;
        }
        if let Some(e) = engine.managers.exited() {
            report.aborted = Some(format!("{e}{}", engine.managers.tails(30)));
            break;
        }
    }

    // The writer stops; every acknowledged write must be on the final master.
    if let Some(w) = engine.writer.as_mut() {
        rt.block_on(w.halt(WRITE_TIMEOUT * 2));
    }
    let final_master = lock(&engine.obs)
        .latest
        .as_ref()
        .and_then(|s| s.topo.as_ref())
        .and_then(|t| t.master.as_ref())
        .map(|m| m.port);
    let (acked, errors) = engine.with_log(|w| (w.acks.len(), w.errors.len()));
    report.acked = acked;
    report.errors = errors;
    match final_master {
        None => report.final_check_error = Some("no master published at the end".into()),
        Some(port) => match engine.check(port) {
            Err(e) => report.final_check_error = Some(e),
            Ok(missing) => {
                let lost = engine.with_log(|w| {
                    missing
                        .iter()
                        .map(|n| {
                            let ack = w.ack(*n);
                            LostWrite {
                                seq: *n,
                                sent_ms_from_fault: ack.map_or(0.0, |a| rel_ms(a.sent, t0)),
                                acked_ms_from_fault: ack.map_or(0.0, |a| rel_ms(a.at, t0)),
                                via_port: ack.and_then(|a| a.node.as_ref()).map(|n| n.port),
                                why: "missing in the final check (after the last round's check)"
                                    .into(),
                            }
                        })
                        .collect::<Vec<_>>()
                });
                engine.lost.extend(missing);
                report.lost_at_end.extend(lost);
            }
        },
    }
    report.final_epoch = lock(&engine.obs)
        .latest
        .as_ref()
        .and_then(|s| s.topo.as_ref())
        .map_or(0, |t| t.epoch);

    stop_obs.store(true, Ordering::Relaxed);
    let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), observer).await });
    engine.flush_observer_log();
    {
        let o = lock(&engine.obs);
        report.sweeps = o.sweeps;
        report.sweeps_skipped = o.skipped;
        report.split_brain_instants = o.split_brain;
        report.stale_master_instants = o.stale_master;
        report.two_masters_loose = o.two_masters_loose;
        report.anomalies = o.anomalies.clone();
    }
    report.lost_async = report.rounds.iter().map(|r| r.lost_async.len()).sum();
    report.lost_unexpected = report.rounds.iter().map(|r| r.lost_unexpected.len()).sum();
    engine.managers.stop_all();
    report.switch_master_logged = engine.managers.count_in_logs("+switch-master");
    // Keep the nodes' logs next to the managers'.
    for p in &engine.ports {
        let from = engine.group.dir().join(format!("redis-{p}.log"));
        let _ = fs::copy(&from, opts.log_dir.join(format!("redis-{p}.log")));
    }
    drop(zk);
    report.duration = t0.elapsed();
    Ok(report)
}

impl Engine<'_> {
    pub(super) fn node(&self, i: usize) -> &RedisNode {
        self.group.node(i)
    }

    /// The published master's node index, from the latest sweep.
    pub(super) fn published_master(&self) -> Option<usize> {
        let o = lock(&self.obs);
        let port = o.latest.as_ref()?.topo.as_ref()?.master.as_ref()?.port;
        self.ports.iter().position(|p| *p == port)
    }

    pub(super) fn latest_topology(&self) -> Option<Topology> {
        lock(&self.obs).latest.as_ref().and_then(|s| s.topo.clone())
    }

    pub(super) fn flush_observer_log(&mut self) {
        let lines: Vec<String> = std::mem::take(&mut lock(&self.obs).log);
        for l in lines {
            let _ = writeln!(self.observer_log, "{l}");
        }
    }

    /// Runs `f` on the writer's log (empty before the writer starts).
    pub(super) fn with_log<R>(&self, f: impl FnOnce(&WriteLog) -> R) -> R {
        match &self.writer {
            Some(w) => w.with_log(f),
            None => f(&WriteLog::default()),
        }
    }

    /// Waits until the group is converged (see the module doc) in sweeps started after
    /// `after`, for `settle`, with every manager contending (and `killed` not holding the
    /// lock) and a write sent after convergence acknowledged. Returns the first converged
    /// sweep's start.
    pub(super) fn wait_converged(
        &self,
        after: Instant,
        killed: Option<&str>,
        need_write: bool,
        timeout: Duration,
    ) -> Result<Instant, String> {
        let deadline = after + timeout;
        let mut managers_ok = false;
        let mut last_lock_check: Option<Instant> = None;
        let mut lock_state = String::from("not read yet");
        loop {
            let now = Instant::now();
            // A run of converged sweeps that began before `after` and still lasts counts
            // from `after`.
            let since = lock(&self.obs).converged_since.map(|s| s.max(after));
            if let Some(since) = since {
                if !managers_ok
                    && last_lock_check.is_none_or(|t| now - t >= Duration::from_millis(200))
                {
                    last_lock_check = Some(now);
                    match self.rt.block_on(lock_order(&self.zk, &self.root)) {
                        Ok(order) => {
                            let ids: Vec<&str> =
                                order.iter().map(|(_, _, id)| id.as_str()).collect();
                            managers_ok = ids.len() == self.managers.len()
                                && killed.is_none_or(|k| ids.first() != Some(&k));
                            lock_state = format!("lock children (holder first): {ids:?}");
                        }
                        Err(e) => lock_state = e,
                    }
                }
                let settled = now.duration_since(since) >= self.opts.settle;
                let writer_ok = !need_write
                    || self.with_log(|w| w.acks.last().is_some_and(|a| a.sent >= since));
                if settled && managers_ok && writer_ok {
                    return Ok(since);
                }
            }
            if now >= deadline {
                let o = lock(&self.obs);
                let last = o
                    .latest
                    .as_ref()
                    .map_or("no sweep yet".to_string(), |s| describe(s, &self.ports));
                let converged = o.converged_since.is_some();
                let last_ack = self.with_log(|w| w.acks.last().map(|a| a.at));
                return Err(format!(
                    "not converged within {:.0} s; group {}; last sweep: {last}; managers: {lock_state}; last acknowledged write {}",
                    timeout.as_secs_f64(),
                    if converged { "converged" } else { "not converged" },
                    last_ack.map_or("never".to_string(), |t| format!("{:.1} s ago", t.elapsed().as_secs_f64()))
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Acknowledged writes not known lost and missing on `port`.
    pub(super) fn check(&self, port: u16) -> Result<Vec<u64>, String> {
        let seqs: Vec<u64> = self.with_log(|w| {
            w.acks
                .iter()
                .map(|a| a.seq)
                .filter(|n| !self.lost.contains(n))
                .collect()
        });
        self.rt
            .block_on(check_lost(&NodeAddr::new("127.0.0.1", port), &seqs))
    }

    /// From `t_fault` to the first read of the lock children whose holder is not `killed`
    /// (polled every 20 ms, bounded by the convergence timeout).
    pub(super) fn takeover_time(&self, killed: &str, t_fault: Instant) -> Option<Duration> {
        let deadline = t_fault + self.opts.converge_timeout;
        while Instant::now() < deadline {
            if let Ok(order) = self.rt.block_on(lock_order(&self.zk, &self.root)) {
                if order.first().is_some_and(|(_, _, id)| id != killed) {
                    return Some(t_fault.elapsed());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}
