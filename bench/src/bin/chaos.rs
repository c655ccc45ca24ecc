//! `chaos`: a Redis trio (master + 2 replicas) and three `redis_node_manager` processes on a
//! throwaway ZooKeeper, hit by one random fault per round — `kill -9` of a node (master
//! included) and its restart on the same port 1–5 s later, `SIGSTOP` of a node and `SIGCONT`
//! 0.2–3 s later, a graceful restart of a node (`SIGTERM`, then at once a new process), a
//! `kill -9` of the leading manager (then a new one under the same name) — while a writer
//! sends `SET seq:N N` through `redis_failover_client::Client` and an observer polls every
//! node's `ROLE` and `<root>/nodes` every 20 ms.
//!
//! Prints a line per round and a summary, and exits 1 when a split-brain instant was seen, a
//! round did not converge within --converge-secs, or an acknowledged write was lost outside
//! the asynchronous-replication window of a master crash. The engine and the exact rules are
//! in `redis_failover_tests::chaos`.
//!
//! ```sh
//! cargo build --release -p redis-failover-manager -p redis-failover-bench
//! ./target/release/chaos --rounds 100            # --seed N repeats a run
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use redis_failover_bench::scaffold::{fail, warn_if_stale, Scaffold};
use redis_failover_tests::chaos::{self, FaultKind, ManagerMode, Options};

/// Random faults against a Redis trio and three node managers; counts split-brain instants,
/// rounds that do not converge and lost acknowledged writes.
#[derive(Parser, Debug)]
#[command(name = "chaos", version, long_about = None)]
struct Opts {
    /// Rounds (one fault each).
    #[arg(long, default_value_t = 100)]
    rounds: u32,

    /// Seed of the fault schedule [default: from the clock; printed].
    #[arg(long)]
    seed: Option<u64>,

    /// Fault kinds to draw from.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Fault::Kill, Fault::Freeze, Fault::Restart, Fault::KillLeader])]
    faults: Vec<Fault>,

    /// The redis_node_manager binary [default: next to this executable].
    #[arg(long, value_name = "PATH")]
    manager_bin: Option<PathBuf>,

    /// Run the managers in this process (each on a runtime of its own, dropped at once to kill
    /// it) instead of as processes.
    #[arg(long)]
    in_process: bool,

    /// The managers' --zk-session-timeout-ms.
    #[arg(long, default_value_t = 4000, value_parser = clap::value_parser!(u64).range(1000..=60_000))]
    session_ms: u64,

    /// The managers' --down-after-ms [default: the manager's own default].
    #[arg(long)]
    down_after_ms: Option<u64>,

    /// A killed node stays down between these bounds, in ms.
    #[arg(long, num_args = 2, value_names = ["MIN", "MAX"], default_values_t = [1000, 5000])]
    kill_down_ms: Vec<u64>,

    /// A frozen node stays frozen between these bounds, in ms.
    #[arg(long, num_args = 2, value_names = ["MIN", "MAX"], default_values_t = [200, 3000])]
    freeze_ms: Vec<u64>,

    /// A round must converge within this long after its fault ended.
    #[arg(long, default_value_t = 30)]
    converge_secs: u64,

    /// The writer sends one SET per this many ms (at most).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    write_interval_ms: u64,

    /// Where the logs go [default: a new directory under the temp dir, kept].
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,

    /// RUST_LOG of the manager processes.
    #[arg(long, default_value = "info")]
    manager_log: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Fault {
    Kill,
    Freeze,
    Restart,
    KillLeader,
}

impl From<Fault> for FaultKind {
    fn from(f: Fault) -> FaultKind {
        match f {
            Fault::Kill => FaultKind::Kill,
            Fault::Freeze => FaultKind::Freeze,
            Fault::Restart => FaultKind::Restart,
            Fault::KillLeader => FaultKind::KillLeader,
        }
    }
}

fn range(v: &[u64], what: &str) -> Result<(Duration, Duration), String> {
    match v {
        [lo, hi] if lo <= hi => Ok((Duration::from_millis(*lo), Duration::from_millis(*hi))),
        _ => Err(format!("{what}: give MIN MAX with MIN <= MAX")),
    }
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    let scaffold = Scaffold::new("chaos");
    let managers = if opts.in_process {
        ManagerMode::InProcess
    } else {
        let bin = match scaffold.manager_bin(opts.manager_bin.as_deref()) {
            Ok(b) => b,
            Err(e) => return fail(format!("{e} (or run --in-process)")),
        };
        warn_if_stale(&bin, "chaos");
        ManagerMode::Process(bin)
    };
    let (kill_down, freeze) = match (
        range(&opts.kill_down_ms, "--kill-down-ms"),
        range(&opts.freeze_ms, "--freeze-ms"),
    ) {
        (Ok(k), Ok(f)) => (k, f),
        (Err(e), _) | (_, Err(e)) => return fail(format!("chaos: {e}")),
    };
    let seed = opts.seed.unwrap_or_else(chaos::seed_from_time);
    let log_dir = opts.log_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("rf-chaos-{seed}-{}", std::process::id()))
    });
    let options = Options {
        rounds: opts.rounds,
        seed,
        managers,
        faults: opts.faults.iter().map(|f| FaultKind::from(*f)).collect(),
        session_ms: opts.session_ms,
        down_after_ms: opts.down_after_ms,
        kill_down,
        freeze,
        converge_timeout: Duration::from_secs(opts.converge_secs),
        write_interval: Duration::from_millis(opts.write_interval_ms),
        log_dir,
        manager_log_filter: opts.manager_log.clone(),
        ..Options::default()
    };

    // The engine runs its own runtimes and threads.
    scaffold.without_runtime().zookeeper().run(|env| {
        let result = chaos::run(&options, &env.zk().connect_string(), &mut |line| {
            println!("{line}")
        });
        match result {
            Err(e) => fail(format!("chaos: {e}")),
            Ok(report) => {
                println!();
                print!("{}", report.summary());
                for a in &report.anomalies {
                    println!("  round {} t={:.3}s {}", a.round, a.at_s, a.what);
                }
                if report.passed() {
                    ExitCode::SUCCESS
                } else {
                    println!("repeat with --seed {seed}");
                    ExitCode::FAILURE
                }
            }
        }
    })
}
