//! Settings of a chaos run: the fault kinds ([`FaultKind`]) and the [`Options`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::manager::ManagerMode;

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

    pub(super) fn hits_a_node(self) -> bool {
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
    crate::unix_ms() ^ u64::from(std::process::id()).rotate_left(32)
}
