//! Chaos, short: a Redis trio and three managers under random faults (kill -9 and later
//! restart of a node, SIGSTOP/SIGCONT, graceful restart, kill of the leading manager), with a
//! writer going through the client and an observer watching every node's `ROLE` and the
//! published topology (the engine: `redis_failover_tests::chaos`; the long run:
//! `cargo run --release -p redis-failover-bench --bin chaos`).
//!
//! Passes when no split-brain instant is seen, every round converges, and no acknowledged
//! write is lost except in the asynchronous-replication window of a master crash.
//!
//! Environment: `CHAOS_ROUNDS` (default 8), `CHAOS_SEED` (default: from the clock; printed,
//! so that a failing run can be repeated), `CHAOS_FAULTS` (a comma-separated subset of
//! `kill,freeze,restart,kill-leader`; default all), `CHAOS_MANAGER_BIN` (run the managers as
//! `redis_node_manager` processes from that path; default: in-process managers, each on a
//! runtime of its own that is dropped at once to "kill" it, since this crate cannot rely on
//! the binary being built). The logs are kept (and their directory printed) when it fails.

use std::path::PathBuf;

use redis_failover_tests::chaos::{self, FaultKind, ManagerMode, Options};
use redis_failover_tests::{init_tracing, shared_zk};

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

#[test]
fn chaos_rounds_converge_without_split_brain_or_lost_writes() {
    init_tracing();
    let dir = tempfile::Builder::new()
        .prefix("rf-chaos-test-")
        .tempdir()
        .expect("temp dir for the logs");
    let opts = Options {
        rounds: env_u64("CHAOS_ROUNDS").map_or(8, |n| n as u32),
        seed: env_u64("CHAOS_SEED").unwrap_or_else(chaos::seed_from_time),
        managers: std::env::var_os("CHAOS_MANAGER_BIN").map_or(ManagerMode::InProcess, |p| {
            ManagerMode::Process(PathBuf::from(p))
        }),
        faults: std::env::var("CHAOS_FAULTS").map_or(FaultKind::ALL.to_vec(), |list| {
            list.split(',')
                .map(|f| {
                    FaultKind::parse(f)
                        .unwrap_or_else(|| panic!("CHAOS_FAULTS: unknown fault {f:?}"))
                })
                .collect()
        }),
        log_dir: dir.path().to_path_buf(),
        ..Options::default()
    };
    let seed = opts.seed;
    let zk = shared_zk();
    let report = chaos::run(&opts, &zk.connect_string(), &mut |line| println!("{line}"))
        .unwrap_or_else(|e| panic!("chaos set-up failed (seed {seed}): {e}"));
    println!("{}", report.summary());
    for a in &report.anomalies {
        println!("round {} t={:.3}s {}", a.round, a.at_s, a.what);
    }
    if !report.passed() {
        let kept = dir.keep();
        panic!(
            "chaos failed (repeat with CHAOS_SEED={seed}); logs kept in {}:\n{}",
            kept.display(),
            report.failures().join("\n")
        );
    }
}
