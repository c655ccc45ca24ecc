//! Chaos engine: one ZooKeeper (given by the caller), a Redis trio (master + 2 replicas) and
//! three node managers, hit by one random fault per round while a writer sends
//! sequence-numbered `SET seq:N N` through [`redis_failover_client::Client`] and an
//! independent observer watches the nodes and the published topology.
//!
//! Used by the short CI test (`tests/tests/chaos.rs`) and the long bench
//! (`bench/src/bin/chaos.rs`).
//!
//! # Faults (one per round)
//! The kinds come in shuffled blocks (every kind once per block, so a short run covers them
//! all); a node fault alternates between the master and a random replica, per kind.
//! * [`FaultKind::Kill`]: `kill -9` of a node; it stays down for a random time in
//!   [`Options::kill_down`], then starts again on the same port;
//! * [`FaultKind::Freeze`]: `SIGSTOP` of a node, `SIGCONT` after a random time in
//!   [`Options::freeze`];
//! * [`FaultKind::Restart`]: a graceful restart (`SIGTERM`, which makes a Redis 7 master wait
//!   for its replicas, then a new process at once);
//! * [`FaultKind::KillLeader`]: the leading manager is killed (a `kill -9` of the process, or,
//!   for in-process managers, its runtime dropped at once: its sockets close and its
//!   ZooKeeper session is left to expire, as after a crash), and started again under the same
//!   `--manager-name` (it waits for the dead session's view to expire, as a restarted daemon
//!   would).
//!
//! A restarted node comes back with the role it had when it went down (a replica:
//! `--replicaof` the master it followed; a master: no `--replicaof`), as if its config file had
//! been rewritten, and with whatever RDB file its last full sync left (no persistence).
//!
//! # What is observed
//! The observer starts a *sweep* every [`Options::sweep_interval`]: `ROLE` to every node on
//! its own connections and a read of `<root>/nodes`, all at once, each with a short deadline.
//! * **split-brain instant**: a sweep in which two nodes answer `ROLE` master within
//!   [`Options::tight_reply`] (so that both answers describe about the same instant; a failover
//!   takes longer than that after a crash) while the topology read in the same sweep (within
//!   [`Options::tight_zk`]) lists both publicly (as the master or among the slaves);
//! * **stale-master instant**: a sweep in which the published master answers as a replica
//!   and has done so for longer than [`Options::stale_master_bound`];
//! * **convergence**: after the fault ended, the first sweep of a run of sweeps lasting at
//!   least [`Options::settle`] in which one master is published (no `promoting`), it answers
//!   master, every other node answers as its replica with the link up and is listed among the
//!   slaves, nothing is unavailable; in addition every manager must hold a lock child (the
//!   killed leader's gone) and the writer must have a write acknowledged that was sent after
//!   that first sweep. Not within [`Options::converge_timeout`]: the round did not converge.
//! * **lost writes**: after each round every acknowledged `seq:N` must be on the published
//!   master with its value. A write missing after a `kill -9` of the master that was
//!   acknowledged before the kill is the asynchronous replication window (as with Sentinel)
//!   and counted apart; any other lost write is unexpected (a bug).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, AsyncConnectionConfig};
use redis_failover_client::{Client, Topology, ZnodePaths};
use tokio::runtime::Runtime;
use zookeeper_client as zk;

use crate::{lock, spawn_guarded, GuardedChild, NodeRole, RedisGroup, RedisNode};

/// Keys per `MGET` of the loss check.
const CHECK_BATCH: usize = 1000;
/// Sweeps allowed in flight at once (a frozen node makes each one last a probe deadline).
const MAX_SWEEPS_IN_FLIGHT: usize = 32;
/// Bound on one ZooKeeper read of the engine (lock children).
const ZK_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on one write of the writer (the client has its own, shorter, deadlines).
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);
/// Rounds in a row that do not converge before the run is given up (the group is stuck).
const MAX_STUCK_ROUNDS: u32 = 3;
/// Details kept per kind of anomaly (counts are always complete).
const MAX_DETAILS: usize = 50;

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/// How the three managers run.
#[derive(Clone, Debug)]
pub enum ManagerMode {
    /// `redis_node_manager` processes (this binary); killing the leader is a real `kill -9`.
    Process(PathBuf),
    /// `redis_failover_manager::run` in this process, each manager on a tokio runtime of its
    /// own; killing the leader drops that runtime at once (`shutdown_background`): its tasks
    /// stop mid-flight, its sockets close, nothing is released, its session expires.
    InProcess,
}

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// `kill -9` of a node, restarted on the same port later.
    Kill,
    /// `SIGSTOP`, then `SIGCONT`.
    Freeze,
    /// `SIGTERM` (graceful shutdown), restarted at once.
    Restart,
    /// `kill -9` of the leading manager, started again.
    KillLeader,
}

impl FaultKind {
    pub const ALL: [FaultKind; 4] = [
        FaultKind::Kill,
        FaultKind::Freeze,
        FaultKind::Restart,
        FaultKind::KillLeader,
    ];

    /// Short name used in the per-round lines.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill-9",
            FaultKind::Freeze => "sigstop",
            FaultKind::Restart => "restart",
            FaultKind::KillLeader => "kill-leader",
        }
    }

    /// Parses a name: `kill` (or `kill-9`), `freeze` (or `sigstop`), `restart`,
    /// `kill-leader`.
    pub fn parse(name: &str) -> Option<FaultKind> {
        match name.trim() {
            "kill" | "kill-9" => Some(FaultKind::Kill),
            "freeze" | "sigstop" => Some(FaultKind::Freeze),
            "restart" => Some(FaultKind::Restart),
            "kill-leader" => Some(FaultKind::KillLeader),
            _ => None,
        }
    }

    fn hits_a_node(self) -> bool {
        self != FaultKind::KillLeader
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Settings of a chaos run. [`Options::default`] gives the bench's defaults.
#[derive(Clone, Debug)]
pub struct Options {
    pub rounds: u32,
    pub seed: u64,
    pub managers: ManagerMode,
    /// Number of managers.
    pub manager_count: usize,
    /// Fault kinds to draw from.
    pub faults: Vec<FaultKind>,
    /// The managers' `--zk-session-timeout-ms`.
    pub session_ms: u64,
    /// The managers' `--down-after-ms` (`None`: the manager's default).
    pub down_after_ms: Option<u64>,
    /// How long a killed node stays down (uniform in the range).
    pub kill_down: (Duration, Duration),
    /// How long a node stays frozen (uniform in the range).
    pub freeze: (Duration, Duration),
    /// Bound on convergence after the fault ended.
    pub converge_timeout: Duration,
    /// How long the converged state must hold.
    pub settle: Duration,
    /// How long the published master may answer as a replica before it counts.
    pub stale_master_bound: Duration,
    /// A `ROLE` reply this fast counts towards a split-brain instant.
    pub tight_reply: Duration,
    /// A topology read this fast counts towards a split-brain instant.
    pub tight_zk: Duration,
    /// A sweep starts this often.
    pub sweep_interval: Duration,
    /// Deadline of one `ROLE` (connection included) and of one znode read of a sweep.
    pub probe_timeout: Duration,
    /// The writer sends a `SET` this often (at most).
    pub write_interval: Duration,
    /// Where the managers' logs (process mode), the observer's log and the nodes' logs go.
    pub log_dir: PathBuf,
    /// Passed to manager processes as `RUST_LOG`.
    pub manager_log_filter: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rounds: 100,
            seed: seed_from_time(),
            managers: ManagerMode::InProcess,
            manager_count: 3,
            faults: FaultKind::ALL.to_vec(),
            session_ms: 4000,
            down_after_ms: None,
            kill_down: (Duration::from_secs(1), Duration::from_secs(5)),
            freeze: (Duration::from_millis(200), Duration::from_secs(3)),
            converge_timeout: Duration::from_secs(30),
            settle: Duration::from_secs(1),
            stale_master_bound: Duration::from_secs(2),
            tight_reply: Duration::from_millis(20),
            tight_zk: Duration::from_millis(100),
            sweep_interval: Duration::from_millis(20),
            probe_timeout: Duration::from_millis(250),
            write_interval: Duration::from_millis(2),
            log_dir: std::env::temp_dir().join(format!("rf-chaos-{}", std::process::id())),
            manager_log_filter: "info".to_string(),
        }
    }
}

/// A seed from the clock (printed by callers so that a run can be repeated).
pub fn seed_from_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(32)
}

/// splitmix64: small, seedable, good enough to pick faults.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Uniform in `[lo, hi]` at millisecond resolution.
    pub fn duration(&mut self, (lo, hi): (Duration, Duration)) -> Duration {
        let (lo_ms, hi_ms) = (lo.as_millis() as u64, hi.as_millis() as u64);
        Duration::from_millis(lo_ms + self.below(hi_ms.saturating_sub(lo_ms) + 1))
    }

    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

// ---------------------------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------------------------

/// An acknowledged write that is not on the master after a round.
#[derive(Clone, Debug)]
pub struct LostWrite {
    pub seq: u64,
    /// When the `SET` was sent, relative to the fault, in ms.
    pub sent_ms_from_fault: f64,
    /// When it was acknowledged, relative to the fault (negative: before), in ms.
    pub acked_ms_from_fault: f64,
    /// The master in the client's topology when it was acknowledged (port).
    pub via_port: Option<u16>,
    pub why: String,
}

/// What happened in one round.
#[derive(Clone, Debug)]
pub struct RoundReport {
    pub round: u32,
    pub fault: FaultKind,
    /// `master 127.0.0.1:p`, `replica 127.0.0.1:p` or `leader <name>`.
    pub target: String,
    pub target_was_master: bool,
    /// How long the node stayed down or frozen.
    pub hold: Option<Duration>,
    /// Seconds since the start of the run when the fault was injected.
    pub at_s: f64,
    /// From the end of the fault (restart, SIGCONT, new manager started) to convergence.
    pub converged_after: Option<Duration>,
    /// From the fault to convergence.
    pub converged_from_fault: Option<Duration>,
    pub master_before: Option<u16>,
    pub master_after: Option<u16>,
    pub epoch_before: u64,
    pub epoch_after: u64,
    /// From the fault to the first publication of another master.
    pub new_master_after: Option<Duration>,
    /// For [`FaultKind::KillLeader`]: from the kill to another manager holding the lock.
    pub takeover_after: Option<Duration>,
    pub acked: usize,
    pub errors: usize,
    /// The first few errors: seq, when sent and failed (from the fault), the message.
    pub error_details: Vec<String>,
    /// Longest gap between two acknowledged writes from the fault to the end of the round
    /// (the first gap counted from the fault).
    pub max_write_gap: Duration,
    /// Where that gap ended, relative to the fault, in ms.
    pub max_write_gap_end_ms: f64,
    pub lost_async: Vec<LostWrite>,
    pub lost_unexpected: Vec<LostWrite>,
    pub split_brain: u64,
    pub stale_master: u64,
    /// Why it did not converge (the last sweep, the managers' logs).
    pub failure: Option<String>,
    /// The loss check could not run (it is retried after the next round).
    pub check_error: Option<String>,
}

impl RoundReport {
    pub fn converged(&self) -> bool {
        self.converged_after.is_some()
    }

    /// One line for the log.
    pub fn line(&self) -> String {
        let hold = self
            .hold
            .map(|h| format!(" {:.1}s", h.as_secs_f64()))
            .unwrap_or_default();
        let conv = match (self.converged_after, self.converged_from_fault) {
            (Some(a), Some(f)) => format!(
                "converged {:.2}s after the fault ended ({:.2}s after the fault)",
                a.as_secs_f64(),
                f.as_secs_f64()
            ),
            _ => "NOT CONVERGED".to_string(),
        };
        let failover = match (self.master_before, self.master_after) {
            (Some(b), Some(a)) if a != b => format!(
                " | failover :{b} -> :{a} epoch {}->{}{}",
                self.epoch_before,
                self.epoch_after,
                self.new_master_after
                    .map(|d| format!(" published {:.0} ms after the fault", ms(d)))
                    .unwrap_or_default()
            ),
            _ if self.epoch_after != self.epoch_before => format!(
                " | epoch {}->{} (master :{})",
                self.epoch_before,
                self.epoch_after,
                self.master_after.map_or("?".into(), |p| p.to_string())
            ),
            _ => String::new(),
        };
        let takeover = self
            .takeover_after
            .map(|d| format!(" | lock taken over {:.2}s after the kill", d.as_secs_f64()))
            .unwrap_or_default();
        let lost = if self.lost_async.is_empty() && self.lost_unexpected.is_empty() {
            "lost 0".to_string()
        } else {
            format!(
                "lost {} in the async window, {} UNEXPECTED",
                self.lost_async.len(),
                self.lost_unexpected.len()
            )
        };
        let anomalies = if self.split_brain + self.stale_master > 0 {
            format!(
                " | SPLIT-BRAIN instants {} stale-master instants {}",
                self.split_brain, self.stale_master
            )
        } else {
            String::new()
        };
        let check = self
            .check_error
            .as_ref()
            .map(|e| format!(" | loss check failed: {e}"))
            .unwrap_or_default();
        format!(
            "round {:>3} t={:>7.1}s {:<11} {}{hold} | {conv}{failover}{takeover} | writes {} acked, {} errors, max gap {:.0} ms (ending {:+.0} ms from the fault) | {lost}{anomalies}{check}",
            self.round,
            self.at_s,
            self.fault.name(),
            self.target,
            self.acked,
            self.errors,
            ms(self.max_write_gap),
            self.max_write_gap_end_ms,
        )
    }
}

/// A split-brain or stale-master instant, as the observer saw it.
#[derive(Clone, Debug)]
pub struct Anomaly {
    pub round: u32,
    pub at_s: f64,
    pub what: String,
}

/// The whole run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub manager_mode: String,
    pub rounds: Vec<RoundReport>,
    pub duration: Duration,
    pub sweeps: u64,
    /// Sweeps not started because too many were in flight.
    pub sweeps_skipped: u64,
    pub split_brain_instants: u64,
    pub stale_master_instants: u64,
    pub anomalies: Vec<Anomaly>,
    /// Sweeps in which two nodes answered master at all (any latency, listed or not): for
    /// the log, not a failure.
    pub two_masters_loose: u64,
    pub acked: usize,
    pub errors: usize,
    pub lost_async: usize,
    pub lost_unexpected: usize,
    /// Acknowledged writes missing in the check after the writer stopped that no round check
    /// had found.
    pub lost_at_end: Vec<LostWrite>,
    pub final_check_error: Option<String>,
    /// The epoch published at the end (one per promotion).
    pub final_epoch: u64,
    /// `+switch-master` lines in the managers' logs (process mode).
    pub switch_master_logged: Option<usize>,
    /// Where the logs are.
    pub log_dir: PathBuf,
    /// Set when the run was cut short (infrastructure failure or a stuck group).
    pub aborted: Option<String>,
}

impl Report {
    pub fn not_converged(&self) -> usize {
        self.rounds.iter().filter(|r| !r.converged()).count()
    }

    /// Why the run failed; empty when it passed.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(a) = &self.aborted {
            out.push(format!("run aborted: {a}"));
        }
        if self.split_brain_instants > 0 {
            out.push(format!(
                "{} split-brain instant(s) in the published topology",
                self.split_brain_instants
            ));
        }
        if self.stale_master_instants > 0 {
            out.push(format!(
                "{} instant(s) with a published master answering as a replica for longer than the bound",
                self.stale_master_instants
            ));
        }
        for r in self.rounds.iter().filter(|r| !r.converged()) {
            out.push(format!(
                "round {} ({} {}) did not converge: {}",
                r.round,
                r.fault,
                r.target,
                r.failure.as_deref().unwrap_or("?")
            ));
        }
        if self.lost_unexpected > 0 || !self.lost_at_end.is_empty() {
            out.push(format!(
                "{} acknowledged write(s) lost outside the async-replication window of a master crash",
                self.lost_unexpected + self.lost_at_end.len()
            ));
        }
        if let Some(e) = &self.final_check_error {
            out.push(format!("the final loss check failed: {e}"));
        }
        out
    }

    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// The multi-line summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let w = &mut s;
        let _ = writeln!(
            w,
            "chaos summary (seed {}, managers: {})",
            self.seed, self.manager_mode
        );
        let _ = writeln!(
            w,
            "  rounds            {} run, {} converged, {} not; {:.0} s in all",
            self.rounds.len(),
            self.rounds.len() - self.not_converged(),
            self.not_converged(),
            self.duration.as_secs_f64()
        );
        let mut kinds: BTreeMap<(FaultKind, bool), Vec<&RoundReport>> = BTreeMap::new();
        for r in &self.rounds {
            let on_master = r.fault.hits_a_node() && r.target_was_master;
            kinds.entry((r.fault, on_master)).or_default().push(r);
        }
        let _ = writeln!(
            w,
            "  per fault         rounds | converged after the fault ended min/median/max | fault -> new master published min/median/max | failovers | max write gap"
        );
        for ((kind, on_master), rs) in &kinds {
            let label = match (kind.hits_a_node(), on_master) {
                (false, _) => kind.name().to_string(),
                (true, true) => format!("{} master", kind.name()),
                (true, false) => format!("{} replica", kind.name()),
            };
            let conv = stats(rs.iter().filter_map(|r| r.converged_after));
            let fo = stats(rs.iter().filter_map(|r| r.new_master_after));
            let failovers: u64 = rs
                .iter()
                .map(|r| r.epoch_after.saturating_sub(r.epoch_before))
                .sum();
            let gap = rs.iter().map(|r| r.max_write_gap).max().unwrap_or_default();
            let _ = writeln!(
                w,
                "    {label:<18} {:>3} | {} | {} | {failovers:>3} | {:.0} ms",
                rs.len(),
                fmt_stats_s(&conv),
                fmt_stats_ms(&fo),
                ms(gap)
            );
        }
        let takeovers = stats(self.rounds.iter().filter_map(|r| r.takeover_after));
        if takeovers.is_some() {
            let _ = writeln!(
                w,
                "  leader takeover   kill of the leading manager -> another holds the lock: {}",
                fmt_stats_s(&takeovers)
            );
        }
        let _ = writeln!(
            w,
            "  observer          {} sweeps ({} skipped), split-brain instants {}, stale-master instants {}, sweeps with two nodes answering master at all {}",
            self.sweeps, self.sweeps_skipped, self.split_brain_instants, self.stale_master_instants, self.two_masters_loose
        );
        let _ = writeln!(
            w,
            "  writes            {} acknowledged, {} errors surfaced to the writer",
            self.acked, self.errors
        );
        let async_ages: Vec<f64> = self
            .rounds
            .iter()
            .flat_map(|r| r.lost_async.iter().map(|l| -l.acked_ms_from_fault))
            .filter(|age| *age >= 0.0)
            .collect();
        let _ = writeln!(
            w,
            "  lost in the async replication windows (kill -9 / restart of the master): {}{}",
            self.lost_async,
            if async_ages.is_empty() {
                String::new()
            } else {
                format!(
                    " (acknowledged {:.1} to {:.1} ms before the kill)",
                    async_ages.iter().copied().fold(f64::INFINITY, f64::min),
                    async_ages.iter().copied().fold(0.0, f64::max)
                )
            }
        );
        let _ = writeln!(
            w,
            "  lost otherwise (bugs): {} in round checks, {} more in the final check",
            self.lost_unexpected,
            self.lost_at_end.len()
        );
        let _ = writeln!(
            w,
            "  final epoch       {}{}",
            self.final_epoch,
            self.switch_master_logged
                .map(|n| format!(" ({n} +switch-master lines in the managers' logs)"))
                .unwrap_or_default()
        );
        let _ = writeln!(w, "  logs              {}", self.log_dir.display());
        let failures = self.failures();
        if failures.is_empty() {
            let _ = writeln!(w, "  result            PASS");
        } else {
            let _ = writeln!(w, "  result            FAIL");
            for f in failures {
                let _ = writeln!(w, "    - {f}");
            }
        }
        s
    }
}

use std::fmt::Write as _;

struct Stats {
    min: Duration,
    median: Duration,
    max: Duration,
}

fn stats(sample: impl Iterator<Item = Duration>) -> Option<Stats> {
    let mut v: Vec<Duration> = sample.collect();
    v.sort();
    let (min, max) = (*v.first()?, *v.last()?);
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2
    };
    Some(Stats { min, median, max })
}

fn fmt_stats_s(s: &Option<Stats>) -> String {
    match s {
        Some(s) => format!(
            "{:.2} / {:.2} / {:.2} s",
            s.min.as_secs_f64(),
            s.median.as_secs_f64(),
            s.max.as_secs_f64()
        ),
        None => "-".to_string(),
    }
}

fn fmt_stats_ms(s: &Option<Stats>) -> String {
    match s {
        Some(s) => format!(
            "{:.0} / {:.0} / {:.0} ms",
            ms(s.min),
            ms(s.median),
            ms(s.max)
        ),
        None => "-".to_string(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Signed ms from `origin` to `t`.
fn rel_ms(t: Instant, origin: Instant) -> f64 {
    if t >= origin {
        ms(t - origin)
    } else {
        -ms(origin - t)
    }
}

// ---------------------------------------------------------------------------------------------
// Observer
// ---------------------------------------------------------------------------------------------

/// A node's answer to `ROLE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Master,
    /// `ROLE` of a replica: its master's port and the link state (`connected` when up).
    Replica {
        master_port: u16,
        state: String,
    },
    Other(String),
    NoAnswer(String),
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Master => f.write_str("master"),
            Role::Replica { master_port, state } => {
                write!(f, "replica of :{master_port} ({state})")
            }
            Role::Other(s) => write!(f, "? {s}"),
            Role::NoAnswer(e) => write!(f, "no answer ({e})"),
        }
    }
}

fn value_text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Parses a `ROLE` reply.
pub fn parse_role_reply(v: &redis::Value) -> Role {
    let redis::Value::Array(items) = v else {
        return Role::Other(format!("{v:?}"));
    };
    match items.first().and_then(value_text).as_deref() {
        Some("master") => Role::Master,
        Some("slave") | Some("replica") => {
            let port = items
                .get(2)
                .and_then(value_text)
                .and_then(|p| p.parse().ok());
            let state = items.get(3).and_then(value_text).unwrap_or_default();
            match port {
                Some(master_port) => Role::Replica { master_port, state },
                None => Role::Other(format!("{v:?}")),
            }
        }
        _ => Role::Other(format!("{v:?}")),
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<MultiplexedConnection>>>;

async fn connect(port: u16, timeout: Duration) -> Result<MultiplexedConnection, String> {
    let client =
        redis::Client::open(format!("redis://127.0.0.1:{port}/")).map_err(|e| e.to_string())?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| e.to_string())
}

/// `ROLE` on the node's shared connection (opened if needed), within `timeout` in all.
async fn probe_role(port: u16, slot: Slot, timeout: Duration) -> (Role, Duration) {
    let start = Instant::now();
    let result = tokio::time::timeout(timeout, async {
        let mut conn = {
            let mut guard = slot.lock().await;
            match guard.as_ref() {
                Some(c) => c.clone(),
                None => {
                    let c = connect(port, timeout).await?;
                    *guard = Some(c.clone());
                    c
                }
            }
        };
        redis::cmd("ROLE")
            .query_async::<redis::Value>(&mut conn)
            .await
            .map_err(|e| {
                if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
                    format!("connection: {e}")
                } else {
                    e.to_string()
                }
            })
    })
    .await;
    let rtt = start.elapsed();
    let role = match result {
        Ok(Ok(v)) => parse_role_reply(&v),
        Ok(Err(e)) => {
            // A broken or refused connection is opened afresh next time.
            if let Ok(mut g) = slot.try_lock() {
                *g = None;
            }
            Role::NoAnswer(e)
        }
        Err(_) => Role::NoAnswer(format!("no reply within {} ms", timeout.as_millis())),
    };
    (role, rtt)
}

/// One sweep: `ROLE` of every node and `<root>/nodes`, all at once.
#[derive(Clone, Debug)]
struct Sweep {
    start: Instant,
    roles: Vec<(Role, Duration)>,
    topo: Option<Topology>,
    topo_rtt: Duration,
}

struct SweepCtx {
    ports: Vec<u16>,
    slots: Vec<Slot>,
    zk: zk::Client,
    path: String,
    timeout: Duration,
}

async fn sweep(ctx: Arc<SweepCtx>) -> Sweep {
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (i, (&port, slot)) in ctx.ports.iter().zip(&ctx.slots).enumerate() {
        let (slot, timeout) = (Arc::clone(slot), ctx.timeout);
        set.spawn(async move { (i, probe_role(port, slot, timeout).await) });
    }
    let t0 = Instant::now();
    let topo = match tokio::time::timeout(ctx.timeout * 2, ctx.zk.get_data(&ctx.path)).await {
        Ok(Ok((data, _))) => Topology::from_json(&data).ok(),
        _ => None,
    };
    let topo_rtt = t0.elapsed();
    let mut roles = vec![(Role::NoAnswer("not probed".into()), Duration::ZERO); ctx.ports.len()];
    while let Some(r) = set.join_next().await {
        if let Ok((i, x)) = r {
            roles[i] = x;
        }
    }
    Sweep {
        start,
        roles,
        topo,
        topo_rtt,
    }
}

/// Bounds the observer judges by.
#[derive(Clone, Debug)]
struct Judge {
    ports: Vec<u16>,
    tight_reply: Duration,
    tight_zk: Duration,
    stale_master_bound: Duration,
    t0: Instant,
}

/// What the observer knows; shared with the driver.
#[derive(Default)]
struct ObsState {
    round: u32,
    sweeps: u64,
    skipped: u64,
    split_brain: u64,
    stale_master: u64,
    two_masters_loose: u64,
    round_split_brain: u64,
    round_stale_master: u64,
    anomalies: Vec<Anomaly>,
    /// The newest sweep absorbed in order (by start).
    latest: Option<Sweep>,
    /// Start of the current run of converged sweeps.
    converged_since: Option<Instant>,
    /// The published master answering as a replica since.
    stale_since: Option<(u16, Instant)>,
    /// Every distinct published topology, when first seen.
    publications: Vec<(Instant, Topology)>,
    /// Lines for observer.log, drained by the driver.
    log: Vec<String>,
}

fn public_ports(t: &Topology) -> Vec<u16> {
    t.master.iter().chain(&t.slaves).map(|a| a.port).collect()
}

fn describe(s: &Sweep, ports: &[u16]) -> String {
    let roles: Vec<String> = ports
        .iter()
        .zip(&s.roles)
        .map(|(p, (r, rtt))| format!(":{p} {r} [{:.1} ms]", ms(*rtt)))
        .collect();
    let topo = match &s.topo {
        Some(t) => format!(
            "master {} slaves [{}] unavailable [{}] epoch {}{} [{:.1} ms]",
            t.master
                .as_ref()
                .map_or("null".into(), |m| format!(":{}", m.port)),
            t.slaves
                .iter()
                .map(|a| format!(":{}", a.port))
                .collect::<Vec<_>>()
                .join(","),
            t.unavailable
                .iter()
                .map(|a| format!(":{}", a.port))
                .collect::<Vec<_>>()
                .join(","),
            t.epoch,
            t.promoting
                .as_ref()
                .map(|p| format!(" promoting :{}", p.port))
                .unwrap_or_default(),
            ms(s.topo_rtt)
        ),
        None => format!("znode unreadable [{:.1} ms]", ms(s.topo_rtt)),
    };
    format!("{}; published: {topo}", roles.join(", "))
}

/// The group is healthy in this sweep (see the module doc).
fn converged(s: &Sweep, ports: &[u16]) -> bool {
    let Some(t) = &s.topo else { return false };
    if t.promoting.is_some() || !t.unavailable.is_empty() {
        return false;
    }
    let Some(m) = &t.master else { return false };
    let Some(mi) = ports.iter().position(|p| *p == m.port) else {
        return false;
    };
    if s.roles[mi].0 != Role::Master {
        return false;
    }
    ports.iter().enumerate().all(|(i, p)| {
        i == mi
            || (matches!(&s.roles[i].0, Role::Replica { master_port, state }
                    if *master_port == m.port && state == "connected")
                && t.slaves.iter().any(|a| a.port == *p))
    })
}

impl ObsState {
    fn absorb(&mut self, s: Sweep, j: &Judge) {
        self.sweeps += 1;
        let at_s = (s.start - j.t0).as_secs_f64();
        let masters: Vec<u16> = j
            .ports
            .iter()
            .zip(&s.roles)
            .filter(|(_, (r, _))| *r == Role::Master)
            .map(|(p, _)| *p)
            .collect();
        if masters.len() >= 2 {
            self.two_masters_loose += 1;
        }
        // (a) split brain: two tight master answers, both listed publicly by a tight read.
        if let Some(t) = &s.topo {
            if s.topo_rtt <= j.tight_zk {
                let public = public_ports(t);
                let tight_public_masters: Vec<u16> = j
                    .ports
                    .iter()
                    .zip(&s.roles)
                    .filter(|(p, (r, rtt))| {
                        *r == Role::Master && *rtt <= j.tight_reply && public.contains(p)
                    })
                    .map(|(p, _)| *p)
                    .collect();
                if tight_public_masters.len() >= 2 {
                    self.split_brain += 1;
                    self.round_split_brain += 1;
                    let what = format!("SPLIT-BRAIN: {}", describe(&s, &j.ports));
                    self.log
                        .push(format!("{at_s:9.3} round {} {what}", self.round));
                    if self.anomalies.len() < MAX_DETAILS {
                        self.anomalies.push(Anomaly {
                            round: self.round,
                            at_s,
                            what,
                        });
                    }
                }
            }
        }
        if masters.len() >= 2 {
            self.log.push(format!(
                "{at_s:9.3} round {} two nodes answer master: {}",
                self.round,
                describe(&s, &j.ports)
            ));
        }
        // The rest follows the sweeps in the order they started.
        if self.latest.as_ref().is_some_and(|l| s.start <= l.start) {
            return;
        }
        // (a') the published master answering as a replica for too long.
        match s.topo.as_ref().and_then(|t| t.master.as_ref()) {
            Some(m) => {
                let role = j
                    .ports
                    .iter()
                    .position(|p| *p == m.port)
                    .map(|i| &s.roles[i].0);
                match role {
                    Some(Role::Replica { .. }) => match self.stale_since {
                        Some((p, since)) if p == m.port => {
                            if s.start - since > j.stale_master_bound {
                                self.stale_master += 1;
                                self.round_stale_master += 1;
                                let what = format!(
                                    "STALE MASTER for {:.0} ms: {}",
                                    ms(s.start - since),
                                    describe(&s, &j.ports)
                                );
                                self.log
                                    .push(format!("{at_s:9.3} round {} {what}", self.round));
                                if self.anomalies.len() < MAX_DETAILS {
                                    self.anomalies.push(Anomaly {
                                        round: self.round,
                                        at_s,
                                        what,
                                    });
                                }
                            }
                        }
                        _ => self.stale_since = Some((m.port, s.start)),
                    },
                    Some(Role::Master) => self.stale_since = None,
                    _ => {}
                }
            }
            None => self.stale_since = None,
        }
        if let Some(t) = &s.topo {
            let changed = self.publications.last().is_none_or(|(_, last)| {
                let mut a = last.clone();
                a.updated_at_ms = t.updated_at_ms;
                a != *t
            });
            if changed {
                self.log.push(format!(
                    "{at_s:9.3} round {} published: {}",
                    self.round,
                    describe(&s, &j.ports)
                ));
                self.publications.push((s.start, t.clone()));
            }
        }
        if converged(&s, &j.ports) {
            self.converged_since.get_or_insert(s.start);
        } else {
            self.converged_since = None;
        }
        self.latest = Some(s);
    }
}

/// Runs sweeps until `stop`, feeding `state`.
async fn observe(
    ctx: Arc<SweepCtx>,
    judge: Judge,
    state: Arc<Mutex<ObsState>>,
    stop: Arc<AtomicBool>,
    every: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Sweep>();
    let sem = Arc::new(tokio::sync::Semaphore::new(MAX_SWEEPS_IN_FLIGHT));
    let launcher_state = Arc::clone(&state);
    let launcher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            match Arc::clone(&sem).try_acquire_owned() {
                Ok(permit) => {
                    let (ctx, tx) = (Arc::clone(&ctx), tx.clone());
                    tokio::spawn(async move {
                        let s = sweep(ctx).await;
                        let _ = tx.send(s);
                        drop(permit);
                    });
                }
                Err(_) => lock(&launcher_state).skipped += 1,
            }
        }
    });
    while let Some(s) = rx.recv().await {
        lock(&state).absorb(s, &judge);
    }
    let _ = launcher.await;
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Ack {
    seq: u64,
    sent: Instant,
    at: Instant,
    /// The master port in the client's topology when acknowledged.
    via: Option<u16>,
}

#[derive(Default)]
struct WriterLog {
    acks: Vec<Ack>,
    /// (seq, sent, failed at, error)
    errors: Vec<(u64, Instant, Instant, String)>,
}

async fn writer(
    mut client: Client,
    log: Arc<Mutex<WriterLog>>,
    stop: Arc<AtomicBool>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        seq += 1;
        let sent = Instant::now();
        let r = tokio::time::timeout(
            WRITE_TIMEOUT,
            client.set::<_, _, ()>(format!("seq:{seq}"), seq),
        )
        .await;
        let at = Instant::now();
        match r {
            Ok(Ok(())) => {
                let via = client.topology().topology.master.map(|a| a.port);
                lock(&log).acks.push(Ack { seq, sent, at, via });
            }
            Ok(Err(e)) => lock(&log).errors.push((seq, sent, at, e.to_string())),
            Err(_) => lock(&log).errors.push((
                seq,
                sent,
                at,
                format!("no answer within {} s", WRITE_TIMEOUT.as_secs()),
            )),
        }
    }
}

/// The acknowledged writes among `acks` that `port` does not hold with their value.
async fn missing_on(port: u16, acks: &[u64]) -> Result<Vec<u64>, String> {
    let mut conn = tokio::time::timeout(
        Duration::from_secs(5),
        connect(port, Duration::from_secs(5)),
    )
    .await
    .map_err(|_| format!("connecting to :{port} timed out"))??;
    let mut missing = Vec::new();
    for chunk in acks.chunks(CHECK_BATCH) {
        let keys: Vec<String> = chunk.iter().map(|n| format!("seq:{n}")).collect();
        let values: Vec<Option<u64>> = tokio::time::timeout(
            Duration::from_secs(10),
            redis::cmd("MGET").arg(&keys).query_async(&mut conn),
        )
        .await
        .map_err(|_| format!("MGET on :{port} timed out"))?
        .map_err(|e| format!("MGET on :{port}: {e}"))?;
        missing.extend(
            chunk
                .iter()
                .zip(&values)
                .filter(|(n, v)| **v != Some(**n))
                .map(|(n, _)| *n),
        );
    }
    Ok(missing)
}

// ---------------------------------------------------------------------------------------------
// Managers
// ---------------------------------------------------------------------------------------------

enum Running {
    Process(GuardedChild),
    InProcess {
        rt: Runtime,
        manager: crate::manager::Manager,
    },
}

struct ManagerSlot {
    name: String,
    running: Option<Running>,
    log: PathBuf,
    starts: u32,
}

struct Managers {
    mode: ManagerMode,
    slots: Vec<ManagerSlot>,
    zk: String,
    nodes: Vec<String>,
    root: String,
    session_ms: u64,
    down_after_ms: Option<u64>,
    log_filter: String,
}

impl Managers {
    fn start(&mut self, i: usize) -> Result<(), String> {
        let slot = &mut self.slots[i];
        slot.starts += 1;
        let name = slot.name.clone();
        let running = match &self.mode {
            ManagerMode::Process(bin) => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&slot.log)
                    .map_err(|e| format!("{}: {e}", slot.log.display()))?;
                let file2 = file
                    .try_clone()
                    .map_err(|e| format!("{}: {e}", slot.log.display()))?;
                let mut args: Vec<String> = vec![
                    "-z".into(),
                    self.zk.clone(),
                    "-n".into(),
                    self.nodes.join(","),
                    "--znode-path".into(),
                    self.root.clone(),
                    "--manager-name".into(),
                    name.clone(),
                    "--zk-session-timeout-ms".into(),
                    self.session_ms.to_string(),
                ];
                if let Some(d) = self.down_after_ms {
                    args.extend(["--down-after-ms".into(), d.to_string()]);
                }
                let (bin, filter) = (bin.clone(), self.log_filter.clone());
                let child = spawn_guarded(move || {
                    let mut cmd = Command::new(bin);
                    cmd.args(&args)
                        .env("RUST_LOG", filter)
                        .stdin(Stdio::null())
                        .stdout(file)
                        .stderr(file2);
                    cmd
                })
                .map_err(|e| format!("cannot start redis_node_manager {name}: {e}"))?;
                Running::Process(child)
            }
            ManagerMode::InProcess => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name(format!("manager-{name}"))
                    .enable_all()
                    .build()
                    .map_err(|e| format!("manager {name}: cannot build a runtime: {e}"))?;
                let (session_ms, down_after_ms) = (self.session_ms, self.down_after_ms);
                let config = crate::manager::config(&self.zk, &self.nodes, &self.root, |c| {
                    c.manager_name = Some(name.clone());
                    c.zk_session_timeout_ms = Some(session_ms);
                    c.down_after_ms = down_after_ms;
                });
                let manager = {
                    let _in = rt.enter();
                    crate::manager::Manager::start(config)
                };
                Running::InProcess { rt, manager }
            }
        };
        slot.running = Some(running);
        Ok(())
    }

    /// Kills manager `i` abruptly (see [`ManagerMode`]).
    fn kill(&mut self, i: usize) {
        match self.slots[i].running.take() {
            Some(Running::Process(child)) => {
                child.kill();
            }
            Some(Running::InProcess { rt, manager }) => {
                rt.shutdown_background();
                drop(manager);
            }
            None => {}
        }
    }

    /// Stops every manager cleanly (bounded).
    fn stop_all(&mut self) {
        for slot in &mut self.slots {
            match slot.running.take() {
                Some(Running::Process(child)) => {
                    child.terminate(Duration::from_secs(10));
                }
                Some(Running::InProcess { rt, manager }) => {
                    let stopped = rt.block_on(async {
                        tokio::time::timeout(Duration::from_secs(15), tokio::spawn(manager.stop()))
                            .await
                    });
                    if !matches!(stopped, Ok(Ok(Ok(())))) {
                        eprintln!("chaos: manager {} did not stop cleanly", slot.name);
                    }
                    rt.shutdown_timeout(Duration::from_secs(5));
                }
                None => {}
            }
        }
    }

    /// A manager that ended by itself, if any.
    fn exited(&self) -> Option<String> {
        self.slots.iter().find_map(|s| match &s.running {
            Some(Running::Process(c)) => c
                .exit_status()
                .map(|st| format!("redis_node_manager {} exited ({st})", s.name)),
            Some(Running::InProcess { manager, .. }) if manager.is_finished() => {
                Some(format!("manager {} ended", s.name))
            }
            _ => None,
        })
    }

    /// The slot whose `--manager-name` gives the id `id` (`<hostname>-<name>`).
    fn by_id(&self, id: &str) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| id.ends_with(&format!("-{}", s.name)))
    }

    fn tails(&self, n: usize) -> String {
        match self.mode {
            ManagerMode::InProcess => String::new(),
            ManagerMode::Process(_) => self
                .slots
                .iter()
                .map(|s| {
                    format!(
                        "\n--- tail of {}:\n{}",
                        s.log.display(),
                        crate::log_tail(&s.log, n)
                    )
                })
                .collect(),
        }
    }

    /// `+switch-master` lines in all logs (process mode).
    fn switch_master_lines(&self) -> Option<usize> {
        match self.mode {
            ManagerMode::InProcess => None,
            ManagerMode::Process(_) => Some(
                self.slots
                    .iter()
                    .map(|s| {
                        fs::read_to_string(&s.log)
                            .map(|t| t.matches("+switch-master").count())
                            .unwrap_or(0)
                    })
                    .sum(),
            ),
        }
    }
}

/// The manager ids of the lock's children, the holder first, and the holder's child name.
async fn lock_order(zk: &zk::Client, dir: &str) -> Result<Vec<(u64, String, String)>, String> {
    let children = match tokio::time::timeout(ZK_TIMEOUT, zk.list_children(dir)).await {
        Err(_) => return Err(format!("listing {dir} timed out")),
        Ok(Err(zk::Error::NoNode)) => return Ok(Vec::new()),
        Ok(Err(e)) => return Err(format!("listing {dir}: {e}")),
        Ok(Ok(c)) => c,
    };
    let mut out = Vec::new();
    for child in children {
        let digits = child.len() - child.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let Ok(seq) = child[child.len() - digits..].parse::<u64>() else {
            continue;
        };
        let path = format!("{dir}/{child}");
        match tokio::time::timeout(ZK_TIMEOUT, zk.get_data(&path)).await {
            Err(_) => return Err(format!("reading {path} timed out")),
            Ok(Err(zk::Error::NoNode)) => {}
            Ok(Err(e)) => return Err(format!("reading {path}: {e}")),
            Ok(Ok((data, _))) => {
                out.push((seq, child, String::from_utf8_lossy(&data).into_owned()))
            }
        }
    }
    out.sort();
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// Runs the chaos described by `opts` against the ZooKeeper at `zk_connect`, printing a line
/// per round (and progress) through `out`. Every process it starts is stopped by pid before it
/// returns, also when it panics (the harness's guards).
///
/// Returns `Err` only when the set-up fails; failures of the group are in the [`Report`].
pub fn run(opts: &Options, zk_connect: &str, out: &mut dyn FnMut(&str)) -> Result<Report, String> {
    fs::create_dir_all(&opts.log_dir)
        .map_err(|e| format!("cannot create {}: {e}", opts.log_dir.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("chaos")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build the chaos runtime: {e}"))?;
    let result = catch_unwind(AssertUnwindSafe(|| run_on(&rt, opts, zk_connect, out)));
    rt.shutdown_timeout(Duration::from_secs(10));
    match result {
        Ok(r) => r,
        Err(p) => Err(match p.downcast::<String>() {
            Ok(s) => format!("the chaos run panicked: {s}"),
            Err(p) => match p.downcast::<&'static str>() {
                Ok(s) => format!("the chaos run panicked: {s}"),
                Err(_) => "the chaos run panicked".to_string(),
            },
        }),
    }
}

struct Fault {
    kind: FaultKind,
    /// Node index, for node faults.
    node: Option<usize>,
}

/// The fault schedule: shuffled blocks of every kind; node faults alternate master/replica
/// per kind (the first pick random), the replica random.
fn schedule(opts: &Options, rng: &mut Rng) -> Vec<(FaultKind, bool)> {
    let kinds = if opts.faults.is_empty() {
        FaultKind::ALL.to_vec()
    } else {
        opts.faults.clone()
    };
    let mut on_master: BTreeMap<FaultKind, bool> = kinds.iter().map(|k| (*k, rng.coin())).collect();
    let mut out = Vec::new();
    while out.len() < opts.rounds as usize {
        let mut block = kinds.clone();
        for i in (1..block.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            block.swap(i, j);
        }
        for k in block {
            let m = on_master.entry(k).or_insert(false);
            out.push((k, *m));
            *m = !*m;
        }
    }
    out.truncate(opts.rounds as usize);
    out
}

struct Engine<'a> {
    rt: &'a Runtime,
    opts: &'a Options,
    t0: Instant,
    group: RedisGroup,
    ports: Vec<u16>,
    managers: Managers,
    obs: Arc<Mutex<ObsState>>,
    writes: Arc<Mutex<WriterLog>>,
    zk: zk::Client,
    lock_dir: String,
    /// Acknowledged writes already counted as lost.
    lost: HashSet<u64>,
    observer_log: File,
}

fn run_on(
    rt: &Runtime,
    opts: &Options,
    zk_connect: &str,
    out: &mut dyn FnMut(&str),
) -> Result<Report, String> {
    let t0 = Instant::now();
    let mut rng = Rng::new(opts.seed);
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
    let mut managers = Managers {
        mode: opts.managers.clone(),
        slots: names
            .iter()
            .map(|n| ManagerSlot {
                name: n.clone(),
                running: None,
                log: opts.log_dir.join(format!("manager-{n}.log")),
                starts: 0,
            })
            .collect(),
        zk: zk_connect.to_string(),
        nodes: group.addrs(),
        root: root.clone(),
        session_ms: opts.session_ms,
        down_after_ms: opts.down_after_ms,
        log_filter: opts.manager_log_filter.clone(),
    };
    for i in 0..names.len() {
        managers.start(i)?;
    }
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
        writes: Arc::new(Mutex::new(WriterLog::default())),
        zk: zk.clone(),
        lock_dir: paths.lock(),
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
    let stop_writer = Arc::new(AtomicBool::new(false));
    let writer_task = rt.spawn(writer(
        client,
        Arc::clone(&engine.writes),
        Arc::clone(&stop_writer),
        opts.write_interval,
    ));
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
    stop_writer.store(true, Ordering::Relaxed);
    let _ = rt.block_on(async { tokio::time::timeout(WRITE_TIMEOUT * 2, writer_task).await });
    let final_master = lock(&engine.obs)
        .latest
        .as_ref()
        .and_then(|s| s.topo.as_ref())
        .and_then(|t| t.master.as_ref())
        .map(|m| m.port);
    let (acked, errors) = {
        let w = lock(&engine.writes);
        (w.acks.len(), w.errors.len())
    };
    report.acked = acked;
    report.errors = errors;
    match final_master {
        None => report.final_check_error = Some("no master published at the end".into()),
        Some(port) => match engine.check(port) {
            Err(e) => report.final_check_error = Some(e),
            Ok(missing) => {
                let w = lock(&engine.writes);
                for n in missing {
                    engine.lost.insert(n);
                    let ack = w.acks.iter().find(|a| a.seq == n);
                    report.lost_at_end.push(LostWrite {
                        seq: n,
                        sent_ms_from_fault: ack.map_or(0.0, |a| rel_ms(a.sent, t0)),
                        acked_ms_from_fault: ack.map_or(0.0, |a| rel_ms(a.at, t0)),
                        via_port: ack.and_then(|a| a.via),
                        why: "missing in the final check (after the last round's check)".into(),
                    });
                }
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
    report.switch_master_logged = engine.managers.switch_master_lines();
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
    fn node(&self, i: usize) -> &RedisNode {
        self.group.node(i)
    }

    /// The published master's node index, from the latest sweep.
    fn published_master(&self) -> Option<usize> {
        let o = lock(&self.obs);
        let port = o.latest.as_ref()?.topo.as_ref()?.master.as_ref()?.port;
        self.ports.iter().position(|p| *p == port)
    }

    fn latest_topology(&self) -> Option<Topology> {
        lock(&self.obs).latest.as_ref().and_then(|s| s.topo.clone())
    }

    fn pick(&self, kind: FaultKind, on_master: bool, rng: &mut Rng) -> Fault {
        if !kind.hits_a_node() {
            return Fault { kind, node: None };
        }
        let master = self.published_master().unwrap_or(0);
        let node = if on_master {
            master
        } else {
            let replicas: Vec<usize> = (0..self.ports.len()).filter(|i| *i != master).collect();
            replicas[rng.below(replicas.len() as u64) as usize]
        };
        Fault {
            kind,
            node: Some(node),
        }
    }

    /// The role a node would come back with: what it is now.
    fn role_to_restore(&self, i: usize) -> Option<u16> {
        match self.node(i).role() {
            Some(NodeRole::Master) => None,
            Some(NodeRole::Replica { master_port, .. }) => Some(master_port),
            None => {
                let m = self.published_master();
                (m != Some(i)).then(|| m.map(|m| self.ports[m])).flatten()
            }
        }
    }

    fn flush_observer_log(&mut self) {
        let lines: Vec<String> = std::mem::take(&mut lock(&self.obs).log);
        for l in lines {
            let _ = writeln!(self.observer_log, "{l}");
        }
    }

    /// Waits until the group is converged (see the module doc) in sweeps started after
    /// `after`, for `settle`, with every manager contending (and `killed` not holding the
    /// lock) and a write sent after convergence acknowledged. Returns the first converged
    /// sweep's start.
    fn wait_converged(
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
                    match self.rt.block_on(lock_order(&self.zk, &self.lock_dir)) {
                        Ok(order) => {
                            let ids: Vec<&str> =
                                order.iter().map(|(_, _, id)| id.as_str()).collect();
                            managers_ok = ids.len() == self.managers.slots.len()
                                && killed.is_none_or(|k| ids.first() != Some(&k));
                            lock_state = format!("lock children (holder first): {ids:?}");
                        }
                        Err(e) => lock_state = e,
                    }
                }
                let settled = now.duration_since(since) >= self.opts.settle;
                let writer_ok = !need_write
                    || lock(&self.writes)
                        .acks
                        .last()
                        .is_some_and(|a| a.sent >= since);
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
                let last_ack = lock(&self.writes).acks.last().map(|a| a.at);
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
    fn check(&self, port: u16) -> Result<Vec<u64>, String> {
        let seqs: Vec<u64> = lock(&self.writes)
            .acks
            .iter()
            .map(|a| a.seq)
            .filter(|n| !self.lost.contains(n))
            .collect();
        self.rt.block_on(missing_on(port, &seqs))
    }

    fn round(&mut self, round: u32, fault: Fault, rng: &mut Rng) -> RoundReport {
        {
            let mut o = lock(&self.obs);
            o.round = round;
            o.round_split_brain = 0;
            o.round_stale_master = 0;
        }
        let before = self.latest_topology().unwrap_or_default();
        let round_start = Instant::now();
        let target_was_master = fault.node.is_some() && fault.node == self.published_master();
        let mut report = RoundReport {
            round,
            fault: fault.kind,
            target: String::new(),
            target_was_master,
            hold: None,
            at_s: (round_start - self.t0).as_secs_f64(),
            converged_after: None,
            converged_from_fault: None,
            master_before: before.master.as_ref().map(|m| m.port),
            master_after: None,
            epoch_before: before.epoch,
            epoch_after: before.epoch,
            new_master_after: None,
            takeover_after: None,
            acked: 0,
            errors: 0,
            error_details: Vec::new(),
            max_write_gap: Duration::ZERO,
            max_write_gap_end_ms: 0.0,
            lost_async: Vec::new(),
            lost_unexpected: Vec::new(),
            split_brain: 0,
            stale_master: 0,
            failure: None,
            check_error: None,
        };

        // 1. The fault.
        let mut killed_id = None;
        let (t_fault, t_restored) = match (fault.kind, fault.node) {
            (FaultKind::KillLeader, _) => {
                let order = self.rt.block_on(lock_order(&self.zk, &self.lock_dir));
                let holder = order
                    .ok()
                    .and_then(|o| o.first().map(|(_, _, id)| id.clone()));
                let slot = holder.as_deref().and_then(|id| self.managers.by_id(id));
                match (holder, slot) {
                    (Some(id), Some(i)) => {
                        report.target = format!("leader {}", self.managers.slots[i].name);
                        let t = Instant::now();
                        self.managers.kill(i);
                        let started = self.managers.start(i);
                        if let Err(e) = started {
                            report.failure = Some(format!("could not start a new manager: {e}"));
                        }
                        killed_id = Some(id);
                        (t, Instant::now())
                    }
                    _ => {
                        report.target = "leader ?".into();
                        report.failure = Some("no leader found to kill".into());
                        let t = Instant::now();
                        (t, t)
                    }
                }
            }
            (kind, Some(i)) => {
                let addr = self.node(i).addr();
                report.target = format!(
                    "{} {addr}",
                    if target_was_master {
                        "master"
                    } else {
                        "replica"
                    }
                );
                match kind {
                    FaultKind::Kill => {
                        let role = self.role_to_restore(i);
                        let hold = rng.duration(self.opts.kill_down);
                        report.hold = Some(hold);
                        let t = Instant::now();
                        self.node(i).kill9();
                        std::thread::sleep(hold);
                        self.node(i).restart(role);
                        (t, Instant::now())
                    }
                    FaultKind::Freeze => {
                        let hold = rng.duration(self.opts.freeze);
                        report.hold = Some(hold);
                        let t = Instant::now();
                        self.node(i).sigstop();
                        std::thread::sleep(hold);
                        self.node(i).sigcont();
                        (t, Instant::now())
                    }
                    _ => {
                        let role = self.role_to_restore(i);
                        let t = Instant::now();
                        let gone = lock(&self.node(i).proc).terminate(Duration::from_secs(20));
                        if !gone {
                            report.failure = Some(format!("{addr} survived SIGTERM + SIGKILL"));
                        }
                        self.node(i).restart(role);
                        (t, Instant::now())
                    }
                }
            }
            (_, None) => {
                let t = Instant::now();
                (t, t)
            }
        };

        // 2. Convergence.
        if let Some(id) = &killed_id {
            report.takeover_after = self.takeover_time(id, t_fault);
        }
        let converged = self.wait_converged(
            t_restored,
            killed_id.as_deref(),
            true,
            self.opts.converge_timeout,
        );
        match converged {
            Ok(at) => {
                let at = at.max(t_restored);
                report.converged_after = Some(at - t_restored);
                report.converged_from_fault = Some(at - t_fault);
            }
            Err(e) => {
                let prior = report
                    .failure
                    .take()
                    .map(|f| format!("{f}; "))
                    .unwrap_or_default();
                report.failure = Some(format!("{prior}{e}{}", self.managers.tails(20)));
            }
        }

        // 3. Figures from the observer.
        let failover_began: Option<Instant>;
        {
            let o = lock(&self.obs);
            report.split_brain = o.round_split_brain;
            report.stale_master = o.round_stale_master;
            let after = o.latest.as_ref().and_then(|s| s.topo.as_ref());
            report.master_after = after.and_then(|t| t.master.as_ref()).map(|m| m.port);
            report.epoch_after = after.map_or(before.epoch, |t| t.epoch);
            report.new_master_after = o
                .publications
                .iter()
                .filter(|(at, _)| *at >= t_fault)
                .find(|(_, t)| {
                    t.master.is_some() && t.master.as_ref().map(|m| m.port) != report.master_before
                })
                .map(|(at, _)| *at - t_fault);
            // The failover began when the observer first saw the old master replaced, or a
            // promotion recorded (`promoting`, published before `REPLICAOF NO ONE`).
            failover_began = o
                .publications
                .iter()
                .filter(|(at, _)| *at >= t_fault)
                .find(|(_, t)| {
                    t.promoting.is_some()
                        || t.master.as_ref().map(|m| m.port) != report.master_before
                })
                .map(|(at, _)| *at);
        }
        self.flush_observer_log();

        // 4. Lost writes: everything acknowledged so far must be on the published master.
        match report.master_after.filter(|_| report.converged()) {
            None => report.check_error = Some("no converged master to check".into()),
            Some(port) => match self.check(port) {
                Err(e) => report.check_error = Some(e),
                Ok(missing) => {
                    let ctx = LossCtx {
                        kind: fault.kind,
                        target_was_master,
                        t_fault,
                        t_restored,
                        failover_at: failover_began,
                        master_before: report.master_before,
                    };
                    let w = lock(&self.writes);
                    for n in missing {
                        let ack = w.acks.iter().find(|a| a.seq == n).cloned();
                        let lost = classify(&ctx, ack.as_ref(), n);
                        if lost.1 {
                            report.lost_async.push(lost.0);
                        } else {
                            report.lost_unexpected.push(lost.0);
                        }
                    }
                    drop(w);
                    for l in report.lost_async.iter().chain(&report.lost_unexpected) {
                        self.lost.insert(l.seq);
                    }
                }
            },
        }

        // 5. The writer's view of the round.
        let round_end = Instant::now();
        {
            let w = lock(&self.writes);
            let in_round: Vec<&Ack> = w
                .acks
                .iter()
                .filter(|a| a.at >= round_start && a.at < round_end)
                .collect();
            report.acked = in_round.len();
            // The longest wait for an acknowledgement from the fault on (the first one counts
            // from the fault): what the fault cost the writer.
            let mut prev = t_fault;
            for a in in_round.iter().filter(|a| a.at >= t_fault) {
                if a.at - prev > report.max_write_gap {
                    report.max_write_gap = a.at - prev;
                    report.max_write_gap_end_ms = rel_ms(a.at, t_fault);
                }
                prev = a.at;
            }
            let errs: Vec<_> = w
                .errors
                .iter()
                .filter(|(_, _, at, _)| *at >= round_start && *at < round_end)
                .collect();
            report.errors = errs.len();
            report.error_details = errs
                .iter()
                .take(5)
                .map(|(seq, sent, at, e)| {
                    format!(
                        "seq:{seq} sent {:+.1} ms, failed {:+.1} ms from the fault: {e}",
                        rel_ms(*sent, t_fault),
                        rel_ms(*at, t_fault)
                    )
                })
                .collect();
        }
        report
    }

    /// From `t_fault` to the first read of the lock children whose holder is not `killed`
    /// (polled every 20 ms, bounded by the convergence timeout).
    fn takeover_time(&self, killed: &str, t_fault: Instant) -> Option<Duration> {
        let deadline = t_fault + self.opts.converge_timeout;
        while Instant::now() < deadline {
            if let Ok(order) = self.rt.block_on(lock_order(&self.zk, &self.lock_dir)) {
                if order.first().is_some_and(|(_, _, id)| id != killed) {
                    return Some(t_fault.elapsed());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// The observer sees a failover begin up to one sweep (20 ms) after it did, and the client
/// follows a published topology within a few ms.
const RESTART_WINDOW_SLACK: Duration = Duration::from_millis(40);

/// What the classification of a lost write knows about its round.
struct LossCtx {
    kind: FaultKind,
    target_was_master: bool,
    t_fault: Instant,
    t_restored: Instant,
    /// When the observer first saw the failover begin (a promotion recorded or another
    /// master published).
    failover_at: Option<Instant>,
    master_before: Option<u16>,
}

/// Whether a lost write is the async-replication window of a master crash (`true`) or
/// unexpected, with the reason.
fn classify(c: &LossCtx, ack: Option<&Ack>, seq: u64) -> (LostWrite, bool) {
    let Some(ack) = ack else {
        return (
            LostWrite {
                seq,
                sent_ms_from_fault: 0.0,
                acked_ms_from_fault: 0.0,
                via_port: None,
                why: "not in the writer's log".into(),
            },
            false,
        );
    };
    let rel = rel_ms(ack.at, c.t_fault);
    let old = c.master_before.map_or("?".to_string(), |p| format!(":{p}"));
    let (why, legit) = match (c.kind, c.target_was_master, c.failover_at) {
        // A restarted master answers as soon as it is up, before any manager can see its new
        // run_id: what it acknowledges (the old process is gone by then) until the failover
        // reaches the client (a few tens of ms) goes when it is made a replica. Inherent to asynchronous replication, like the
        // window before a kill -9 (`min-replicas-to-write 1` on the nodes closes both).
        (FaultKind::Restart, true, Some(f))
            if ack.at >= c.t_restored && ack.sent <= f + RESTART_WINDOW_SLACK =>
        {
            (
                format!(
                    "acknowledged by the restarted master {old} {:.0} ms after it came back, \
                     before the failover reached the client (restart window)",
                    ms(ack.at - c.t_restored)
                ),
                true,
            )
        }
        (FaultKind::Kill, true, _) if ack.at <= c.t_fault => (
            format!(
                "acknowledged {:.1} ms before the kill -9 of the master (async replication)",
                -rel
            ),
            true,
        ),
        (_, true, Some(f)) if ack.sent < f && ack.at > f => (
            format!(
                "sent to the master {old} before the failover began and acknowledged {:.0} ms \
                 after the observer saw it begin, by the deposed master's address ({}), which \
                 then became a replica and dropped it ({:.0} ms from send to acknowledgement)",
                ms(ack.at - f),
                match c.kind {
                    FaultKind::Freeze => "the frozen master, after SIGCONT",
                    FaultKind::Restart => "the old master, restarted as a master",
                    _ => "the old master",
                },
                ms(ack.at - ack.sent)
            ),
            false,
        ),
        (FaultKind::Restart, true, None) => (
            format!(
                "the master {old} was restarted ({:.0} ms from SIGTERM to the new process answering) \
                 and nobody failed over: it came back as master with an older data set (no \
                 persistence; the RDB of its last full sync at best) and the replicas resynced from it",
                ms(c.t_restored - c.t_fault)
            ),
            false,
        ),
        (kind, on_master, _) => (
            format!(
                "lost in a {kind} round ({} target), acknowledged {rel:+.1} ms from the fault",
                if on_master { "master" } else { "non-master" }
            ),
            false,
        ),
    };
    (
        LostWrite {
            seq,
            sent_ms_from_fault: rel_ms(ack.sent, c.t_fault),
            acked_ms_from_fault: rel,
            via_port: ack.via,
            why,
        },
        legit,
    )
}
