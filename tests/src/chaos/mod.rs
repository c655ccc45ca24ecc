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
//!
//! The seed drives a `fastrand::Rng`: the same seed gives the same schedule of faults,
//! targets and hold times. The writer is the harness's [`crate::writer::Writer`]; the managers
//! are a [`crate::manager::ManagerSet`].
//!
//! The modules: [`config`] (what to run), `engine` (the driver), `faults`, `round`,
//! `observer`, `losses` (the classification of a lost write) and [`report`].

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

pub mod config;
mod engine;
mod faults;
mod losses;
mod observer;
pub mod report;
mod round;

pub use config::{seed_from_time, FaultKind, ManagerMode, Options};
pub use observer::{parse_role_reply, Role};
pub use report::{Anomaly, LostWrite, Published, Report, RoundReport, RoundTimes};

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
    let result = catch_unwind(AssertUnwindSafe(|| {
        engine::run_on(&rt, opts, zk_connect, out)
    }));
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
