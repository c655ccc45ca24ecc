//! `failover_bench`'s measurements (the program's documentation is in
//! `src/bin/failover_bench.rs`): its flags, the report, and the `run` of one scenario.

mod run;

use std::time::Duration;

use clap::Parser;
use redis_failover_client::NodeAddr;
use redis_failover_manager::POLL_INTERVAL;
use redis_failover_tests::manager as harness;
use redis_failover_tests::stats::{ms, Stats};
use tokio::runtime::Handle;

use crate::failure::{Scenario, ScenarioArg};
use crate::stats::fmt_stats;

/// Reply timeout of one benchmark `SET`, and connect timeout of a fresh connection.
const SET_TIMEOUT: Duration = Duration::from_millis(50);
/// Pause between two `SET` attempts on one node.
const SET_EVERY: Duration = Duration::from_millis(1);
/// Connect timeout of the connections opened before the signal.
const PREOPEN_TIMEOUT: Duration = Duration::from_secs(2);
/// The key the write probe sets.
const BENCH_KEY: &str = "bench:key";

/// Measures the failover time of redis_node_manager with real ZooKeeper and redis-server
/// processes (a master crash with kill -9, a master hang with SIGSTOP).
#[derive(Parser, Debug)]
#[command(name = "failover_bench", version, about, long_about = None)]
pub struct Opts {
    /// Runs per scenario.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,

    /// Which failure to inflict on the master.
    #[arg(long, value_enum, default_value_t = ScenarioArg::Both)]
    scenario: ScenarioArg,

    /// The manager's --down-after-ms, used for every run.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(30..=3_600_000))]
    down_after_ms: u64,

    /// The manager's --max-failures, used for every run.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    max_failures: u32,

    /// Deadline of every wait of a run (first topology, failover), in seconds; the harness
    /// bounds the trio start-up itself.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_secs: u64,

    /// How long to let the manager run in steady state after its first complete topology,
    /// before the master is hit, in ms.
    #[arg(long, default_value_t = 500)]
    settle_ms: u64,

    /// A random extra delay, uniform in [0, this), added to --settle-ms, so that the signal
    /// falls at a random point of the manager's probe cycle (a fixed delay would hit the same
    /// phase of its 200 ms INFO poll every run) (the manager's poll interval by default).
    #[arg(long, default_value_t = POLL_INTERVAL.as_millis() as u64)]
    jitter_ms: u64,

    /// Run the manager on a production-shaped ZooKeeper: 3 servers on loopback,
    /// forceSync=yes, tickTime=2000 (default: one standalone server, forceSync=no).
    #[arg(long)]
    pub zk_ensemble: bool,

    /// Keep the manager running this long after a measurement, then check that `<root>/nodes`
    /// still names the same master with the same epoch (0 = stop the manager at once).
    #[arg(long, default_value_t = 0)]
    linger_ms: u64,
}

/// What a run works with.
pub struct Settings {
    opts: Opts,
    deadline: Duration,
    zk_connect: String,
    /// Which ZooKeeper the manager runs on, in words.
    zk_shape: &'static str,
    manager_rt: Handle,
}

/// What one successful run measured.
#[derive(Debug)]
struct RunOk {
    /// (a) signal -> a topology with another master read from ZooKeeper.
    to_znode: Duration,
    /// (b) signal -> first `SET` answered `OK`.
    to_write: Duration,
    /// The new master according to the znode.
    winner: NodeAddr,
    /// Its epoch.
    epoch: u64,
    /// `updated_at_ms` of that topology minus the wall-clock time of the signal: when the
    /// manager says it wrote it (same machine, same clock).
    published_after_ms: i128,
    /// How many `SET`s the winner was sent, the successful one included.
    set_attempts: u64,
    /// With --linger-ms: what `<root>/nodes` held after lingering, when the epoch moved on.
    after_linger: Option<String>,
}

impl Settings {
    /// The settings of a bench on the ZooKeeper at `zk_connect` (`zk_shape` says which),
    /// with the managers on `manager_rt`.
    pub fn new(
        opts: Opts,
        zk_connect: String,
        zk_shape: &'static str,
        manager_rt: Handle,
    ) -> Settings {
        Settings {
            deadline: Duration::from_secs(opts.timeout_secs),
            zk_connect,
            zk_shape,
            manager_rt,
            opts,
        }
    }
}

/// Runs every scenario and prints the lines, summaries and Markdown table. True when no run
/// failed.
pub async fn bench(s: &Settings) -> bool {
    let scenarios = s.opts.scenario.scenarios();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let zk = harness::zk_client(&s.zk_connect).await;

    println!(
        "failover_bench: {} run(s) per scenario, --down-after-ms {}, --max-failures {}, nproc {nproc}, deadline {} s per wait, on {}",
        s.opts.runs, s.opts.down_after_ms, s.opts.max_failures, s.opts.timeout_secs, s.zk_shape
    );
    println!(
        "the master is hit {} ms + random [0, {}) ms after the manager first publishes the full trio",
        s.opts.settle_ms, s.opts.jitter_ms
    );
    println!(
        "(a) = signal -> <root>/nodes names another master, seen with a ZooKeeper data watch \
         (get_and_watch_data loop, timed when the read showing the new master returns)"
    );
    println!(
        "(b) = signal -> first `SET {BENCH_KEY} <n>` answered OK by a surviving node (one task \
         per survivor, SET every {} ms, {} ms reply timeout, pre-opened connection)",
        SET_EVERY.as_millis(),
        SET_TIMEOUT.as_millis()
    );
    println!();

    let mut results: Vec<(Scenario, Vec<Result<RunOk, String>>)> = Vec::new();
    for &scenario in &scenarios {
        let mut runs = Vec::new();
        for run in 1..=s.opts.runs {
            let r = run::run_once(s, &zk, scenario, run).await;
            match &r {
                Ok(ok) => println!(
                    "{scenario:<5} run {run:>2}: a = {:>8.1} ms  b = {:>8.1} ms  winner {} (epoch {}; manager's updated_at_ms = signal + {} ms; {} SETs sent to it){}",
                    ms(ok.to_znode),
                    ms(ok.to_write),
                    ok.winner,
                    ok.epoch,
                    ok.published_after_ms,
                    ok.set_attempts,
                    ok.after_linger
                        .as_ref()
                        .map_or(String::new(), |n| format!("; NOTE: {n}")),
                ),
                Err(e) => println!("{scenario:<5} run {run:>2}: FAILED: {e}"),
            }
            runs.push(r);
        }
        results.push((scenario, runs));
    }

    println!();
    println!(
        "Summary (min / median / max; settings: runs {}, down-after-ms {}, max-failures {}, nproc {nproc}):",
        s.opts.runs, s.opts.down_after_ms, s.opts.max_failures
    );
    let mut rows = Vec::new();
    let mut all_ok = true;
    for (scenario, runs) in &results {
        let ok: Vec<&RunOk> = runs.iter().filter_map(|r| r.as_ref().ok()).collect();
        let failed = runs.len() - ok.len();
        all_ok &= failed == 0;
        let a = Stats::of(ok.iter().map(|r| r.to_znode));
        let b = Stats::of(ok.iter().map(|r| r.to_write));
        println!(
            "  {scenario:<5} {}/{} ok, {failed} failed",
            ok.len(),
            runs.len()
        );
        println!(
            "    (a) signal -> new master in ZooKeeper: {}",
            fmt_stats(&a)
        );
        println!(
            "    (b) signal -> first write accepted:    {}",
            fmt_stats(&b)
        );
        rows.push(format!(
            "| {} (`{}`) | {}/{} | {} | {} |",
            scenario,
            scenario.how(),
            ok.len(),
            runs.len(),
            fmt_stats(&a),
            fmt_stats(&b)
        ));
    }

    println!();
    println!("Markdown:");
    println!();
    println!(
        "| scenario | runs ok | master failure → new master in ZooKeeper (min / median / max) | master failure → first write accepted (min / median / max) |"
    );
    println!("|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    println!();
    println!(
        "Settings: `--down-after-ms {}`, `--max-failures {}`, {} runs per scenario, nproc {nproc}; \
         {}, redis-server on loopback; the new master in ZooKeeper is \
         seen through a data watch; writes are tried every {} ms on every surviving node; the master \
         is hit at a random point of the manager's {} ms poll cycle.",
        s.opts.down_after_ms,
        s.opts.max_failures,
        s.opts.runs,
        s.zk_shape,
        SET_EVERY.as_millis(),
        POLL_INTERVAL.as_millis()
    );
    all_ok
}
