//! What a chaos run reports: per round ([`RoundReport`]), per lost write ([`LostWrite`]),
//! per anomaly ([`Anomaly`]) and for the whole run ([`Report`], with its summary).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use super::config::FaultKind;
pub(super) use crate::stats::{fmt_ms, fmt_s, ms, rel_ms, Stats};

/// Details kept per kind of anomaly (counts are always complete).
pub(super) const MAX_DETAILS: usize = 50;

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

/// The published master (its port) and epoch at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Published {
    pub master: Option<u16>,
    pub epoch: u64,
}

/// How long the steps of a round took (`None`: the step did not happen).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundTimes {
    /// From the end of the fault (restart, SIGCONT, new manager started) to convergence.
    pub converged_after: Option<Duration>,
    /// From the fault to convergence.
    pub converged_from_fault: Option<Duration>,
    /// From the fault to the first publication of another master.
    pub new_master_after: Option<Duration>,
    /// For [`FaultKind::KillLeader`]: from the kill to another manager holding the lock.
    pub takeover_after: Option<Duration>,
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
    /// What was published before the fault.
    pub before: Published,
    /// What was published at the end of the round.
    pub after: Published,
    pub times: RoundTimes,
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
        self.times.converged_after.is_some()
    }

    /// One line for the log.
    pub fn line(&self) -> String {
        let hold = self
            .hold
            .map(|h| format!(" {:.1}s", h.as_secs_f64()))
            .unwrap_or_default();
        let conv = match (self.times.converged_after, self.times.converged_from_fault) {
            (Some(a), Some(f)) => format!(
                "converged {:.2}s after the fault ended ({:.2}s after the fault)",
                a.as_secs_f64(),
                f.as_secs_f64()
            ),
            _ => "NOT CONVERGED".to_string(),
        };
        let failover = match (self.before.master, self.after.master) {
            (Some(b), Some(a)) if a != b => format!(
                " | failover :{b} -> :{a} epoch {}->{}{}",
                self.before.epoch,
                self.after.epoch,
                self.times
                    .new_master_after
                    .map(|d| format!(" published {:.0} ms after the fault", ms(d)))
                    .unwrap_or_default()
            ),
            _ if self.after.epoch != self.before.epoch => format!(
                " | epoch {}->{} (master :{})",
                self.before.epoch,
                self.after.epoch,
                self.after.master.map_or("?".into(), |p| p.to_string())
            ),
            _ => String::new(),
        };
        let takeover = self
            .times
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
            let conv = Stats::of(rs.iter().filter_map(|r| r.times.converged_after));
            let fo = Stats::of(rs.iter().filter_map(|r| r.times.new_master_after));
            let failovers: u64 = rs
                .iter()
                .map(|r| r.after.epoch.saturating_sub(r.before.epoch))
                .sum();
            let gap = rs.iter().map(|r| r.max_write_gap).max().unwrap_or_default();
            let _ = writeln!(
                w,
                "    {label:<18} {:>3} | {} | {} | {failovers:>3} | {:.0} ms",
                rs.len(),
                fmt_s(&conv, 2),
                fmt_ms(&fo, 0),
                ms(gap)
            );
        }
        let takeovers = Stats::of(self.rounds.iter().filter_map(|r| r.times.takeover_after));
        if takeovers.is_some() {
            let _ = writeln!(
                w,
                "  leader takeover   kill of the leading manager -> another holds the lock: {}",
                fmt_s(&takeovers, 2)
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
