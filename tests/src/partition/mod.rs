//! Partition scenarios (issue 11's "Partition test suite"), as data: a [`Scenario`] says which
//! hosts are cut from which ([`Fault`]), how ([`Mode`]), for how long, and whether the cut
//! flaps. [`run`] sets up the shape on a [`crate::netns::Net`] — master + 2 replicas on
//! three hosts, ZooKeeper on a fourth, 3 `redis_node_manager` processes (on hosts of their own
//! or on ZooKeeper's), an application client on the master's host and one on another host,
//! each writing through [`redis_failover_client::Client`] — applies the fault, heals, waits for
//! convergence and returns a [`Report`]: per client the acknowledged writes and those lost
//! (every acknowledged key read back from the final master), and the timing.
//!
//! With [`System::Sentinel`] the same run has 3 Redis Sentinels on the managers' hosts in
//! place of the managers (ZooKeeper's host stays, idle) and clients writing through redis-rs's
//! Sentinel client ([`crate::sentinel::SentinelWriter`]).
//!
//! The modules: this one (the table and the options), `run` (the run), `ours` and `sentinel`
//! (what watches the trio, and the clients' writers), `report` (the figures).

mod ours;
mod report;
mod run;
mod sentinel;

use std::path::PathBuf;
use std::time::Duration;

pub use crate::netns::Mode;
pub use report::{summary_table, ClientReport, Report, SummaryRow};
pub use run::run;

/// What watches the Redis trio and fails it over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    /// ZooKeeper and 3 `redis_node_manager` processes; clients through our `Client`.
    Ours,
    /// 3 Redis Sentinels (quorum 2); clients through redis-rs's Sentinel client.
    Sentinel,
}

impl System {
    /// `ours` or `sentinel`.
    pub fn name(self) -> &'static str {
        match self {
            System::Ours => "ours",
            System::Sentinel => "sentinel",
        }
    }
}

/// A set of hosts of the scenario's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The host of the first master (and of the near client).
    Master,
    /// The host of first replica `i` (0 or 1).
    Replica(usize),
    /// Every Redis host but the master's.
    Replicas,
    /// ZooKeeper's host.
    Zk,
    /// Manager `i`'s host (ZooKeeper's when the managers run there).
    Manager(usize),
    /// Every manager's host.
    Managers,
    /// The far client's host.
    App,
    /// The host of the manager that leads when the fault is applied (ours only: the one that
    /// published the topology last).
    Leader,
}

/// What is cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The role's hosts are cut from every other address (test process included).
    Isolate(Role),
    /// Every host of the first list is cut from every host of the second, both ways.
    Between(Vec<Role>, Vec<Role>),
}

/// One row of the scenario table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    pub name: &'static str,
    pub fault: Fault,
    pub mode: Mode,
    /// How long the fault lasts.
    pub duration: Duration,
    /// Flapping: cut for `.0`, restored for `.1`, again and again for `duration`.
    pub flap: Option<(Duration, Duration)>,
    /// A second fault, added while the first lasts, once its trigger is seen.
    pub then: Option<Then>,
}

/// A second fault of a [`Scenario`] (same mode; healed with the first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Then {
    pub when: Trigger,
    pub fault: Fault,
}

/// When a [`Then`] fault is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The leader recorded a promotion in ZooKeeper (`promoting` set in the topology): a
    /// failover is under way. Ours only.
    PromotionRecorded,
}

/// The scenario table. Issue 11's other scenarios are added here as rows.
pub fn scenarios() -> Vec<Scenario> {
    let s = Duration::from_secs;
    let ms = Duration::from_millis;
    vec![
        Scenario {
            name: "master-client-isolated-drop-12s",
            fault: Fault::Isolate(Role::Master),
            mode: Mode::Drop,
            duration: s(12),
            flap: None,
            then: None,
        },
        Scenario {
            name: "master-client-isolated-reject-5s",
            fault: Fault::Isolate(Role::Master),
            mode: Mode::Reject,
            duration: s(5),
            flap: None,
            then: None,
        },
        Scenario {
            name: "master-client-isolated-drop-30s",
            fault: Fault::Isolate(Role::Master),
            mode: Mode::Drop,
            duration: s(30),
            flap: None,
            then: None,
        },
        Scenario {
            name: "master-client-isolated-reject-30s",
            fault: Fault::Isolate(Role::Master),
            mode: Mode::Reject,
            duration: s(30),
            flap: None,
            then: None,
        },
        Scenario {
            name: "master-alone-isolated-drop-5s",
            fault: Fault::Between(
                vec![Role::Master],
                vec![Role::Replicas, Role::Zk, Role::Managers],
            ),
            mode: Mode::Drop,
            duration: s(5),
            flap: None,
            then: None,
        },
        Scenario {
            name: "manager0-cut-from-master-drop-10s",
            fault: Fault::Between(vec![Role::Manager(0)], vec![Role::Master]),
            mode: Mode::Drop,
            duration: s(10),
            flap: None,
            then: None,
        },
        Scenario {
            name: "master-link-flapping-20s",
            fault: Fault::Isolate(Role::Master),
            mode: Mode::Drop,
            duration: s(20),
            flap: Some((ms(300), ms(300))),
            then: None,
        },
        Scenario {
            name: "leader-cut-from-zk-mid-failover-20s",
            fault: Fault::Isolate(Role::Master),
            mode: Mode::Drop,
            duration: s(20),
            flap: None,
            then: Some(Then {
                when: Trigger::PromotionRecorded,
                fault: Fault::Between(vec![Role::Leader], vec![Role::Zk]),
            }),
        },
    ]
}

/// The scenario named `name`.
pub fn scenario(name: &str) -> Option<Scenario> {
    scenarios().into_iter().find(|s| s.name == name)
}

/// How a scenario runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// What watches the trio ([`System::Ours`] by default).
    pub system: System,
    /// The `redis_node_manager` binary.
    pub manager_bin: PathBuf,
    /// Each manager (or sentinel) on a host of its own (`true`), or all on ZooKeeper's host.
    pub managers_on_own_hosts: bool,
    /// The managers' `--down-after-ms` (`None`: their default), or the sentinels'
    /// `down-after-milliseconds` (`None`: 1000).
    pub down_after_ms: Option<u64>,
    /// The managers' `--zk-session-timeout-ms`.
    pub session_ms: u64,
    /// One write per this long per client (`None`: back to back).
    pub write_interval: Option<Duration>,
    /// Bound on one write of a client.
    pub write_bound: Duration,
    /// Writes before the fault.
    pub warm_up: Duration,
    /// Bound on convergence after the heal.
    pub converge_timeout: Duration,
    /// Where the processes' logs go (kept).
    pub log_dir: PathBuf,
    /// `RUST_LOG` of the managers.
    pub manager_log: String,
    /// The clients' replication mode and the managers' `--synchronous-replicas n`: `None`,
    /// the defaults (every write on one replica while the topology lists one); `(0, _)`,
    /// asynchronous (`asynchronous()`); `(n, timeout)`, strict `synchronous(n, timeout)`.
    /// Ours only.
    pub synchronous: Option<(usize, Duration)>,
    /// More flags for every manager (e.g. `--fencing none`). Ours only.
    pub manager_flags: Vec<String>,
}

impl Options {
    /// Defaults: managers on hosts of their own, their default `--down-after-ms`, 4 s
    /// sessions, back-to-back writes with a 5 s bound, 2 s of warm-up, 60 s to converge,
    /// logs under the temp dir.
    pub fn new(manager_bin: PathBuf) -> Options {
        Options {
            system: System::Ours,
            manager_bin,
            managers_on_own_hosts: true,
            down_after_ms: None,
            session_ms: 4000,
            write_interval: None,
            write_bound: Duration::from_secs(5),
            warm_up: Duration::from_secs(2),
            converge_timeout: Duration::from_secs(60),
            log_dir: std::env::temp_dir().join(format!("rf-partition-{}", std::process::id())),
            manager_log: "info".to_string(),
            synchronous: None,
            manager_flags: Vec::new(),
        }
    }
}

/// The `redis_node_manager` binary cargo built next to the running test binary (`cargo test
/// --workspace` builds it; `cargo build -p redis-failover-manager` otherwise).
pub fn manager_bin_next_to_tests() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("this test's path: {e}"))?;
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("redis_node_manager"))
        .filter(|b| b.is_file())
        .ok_or_else(|| {
            "redis_node_manager is not next to the test binaries: cargo build -p \
             redis-failover-manager"
                .to_string()
        })
}
