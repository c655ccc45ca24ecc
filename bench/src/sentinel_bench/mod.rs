//! `sentinel_bench`'s measurements (the program's documentation is in
//! `src/bin/sentinel_bench.rs`): its flags, the `runs` of each system, their `summary`
//! and the PNG `timeline`.

mod runs;
mod summary;
mod timeline;

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use redis_failover_client::NodeAddr;
use redis_failover_tests::manager as harness;
use redis_failover_tests::stats::ms;

use crate::failure::{Scenario, ScenarioArg};
use crate::load::load_average;
use crate::sentinel::SentinelProgram;

/// An acknowledgement counts as the new master's when it comes this long after the failure
/// took effect (a reply the old master sent just before could still be read a moment later).
const ACK_GUARD: Duration = Duration::from_millis(5);
/// Connect timeout of both writers (redis-rs's and our client's default).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause of the Sentinel writer when the sentinels named no reachable master.
const SENTINEL_RETRY_PAUSE: Duration = Duration::from_millis(10);
/// A writer call still unanswered after this long is abandoned (never expected).
const CALL_BOUND: Duration = Duration::from_secs(10);
/// Acknowledgements before the run starts its clock (the writer works).
const WARM_ACKS: usize = 20;
/// Bin width of the PNG timelines.
const BIN_MS: f64 = 10.0;

/// Redis Sentinel vs redis_node_manager: kill -9 / SIGSTOP of the master under a writer;
/// time to a new master, write gap, lost writes, failovers.
#[derive(Parser, Debug)]
#[command(name = "sentinel_bench", version, long_about = None)]
pub struct Opts {
    /// Runs per scenario, down-after and system.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,

    /// A short check: 1 run, down-after 500 only, 800 ms linger.
    #[arg(long)]
    pub quick: bool,

    /// Sentinel's down-after-milliseconds and our --down-after-ms, one series each.
    #[arg(long, value_delimiter = ',', default_values_t = [500u64, 1000])]
    pub down_after: Vec<u64>,

    /// Which failure(s).
    #[arg(long, value_enum, default_value_t = ScenarioArg::Both)]
    scenario: ScenarioArg,

    /// Which system(s).
    #[arg(long, value_enum, default_value_t = SystemArg::Both)]
    system: SystemArg,

    /// Reply timeout of both writers (redis-rs's default response timeout is 500 ms; our
    /// client's default command timeout is 2000 ms).
    #[arg(long, default_value_t = 500)]
    command_timeout_ms: u64,

    /// Sentinel's failover-timeout.
    #[arg(long, default_value_t = 5000)]
    failover_timeout_ms: u64,

    /// How long the writer runs before the failure, at least, in ms.
    #[arg(long, default_value_t = 500)]
    settle_ms: u64,

    /// A random extra delay, uniform in [0, this), added to --settle-ms, so that the failure
    /// hits a random point of the sentinels' and managers' probe cycles.
    #[arg(long, default_value_t = 1000)]
    jitter_ms: u64,

    /// How long the writer goes on after its first write on the new master, in ms (failovers
    /// are counted and lost writes checked after it).
    #[arg(long, default_value_t = 1500)]
    pub linger_ms: u64,

    /// Deadline of every wait of a run, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_secs: u64,

    /// No run is started after this many minutes.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    max_minutes: u64,

    /// Run our managers and clients on a production-shaped ZooKeeper: 3 servers on loopback,
    /// forceSync=yes, tickTime=2000 (default: one standalone server, forceSync=no).
    #[arg(long)]
    pub zk_ensemble: bool,

    /// The redis_node_manager binary [default: next to this executable].
    #[arg(long, value_name = "PATH")]
    pub manager_bin: Option<PathBuf>,

    /// The crash timeline PNG (the hang's goes next to it, `_hang` added to the name).
    #[arg(long, default_value = "docs/failover_timeline.png")]
    plot: PathBuf,

    /// Draw no PNG.
    #[arg(long)]
    no_plot: bool,

    /// Keep every run's manager / sentinel and redis logs in DIR/<scenario>-<D>-<system>-<run>/.
    // The text is also the flag's --help, which shows the angle brackets as they are.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SystemArg {
    Sentinel,
    Ours,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum System {
    Sentinel,
    Ours,
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            System::Sentinel => "sentinel",
            System::Ours => "ours",
        })
    }
}

pub struct Settings {
    opts: Opts,
    deadline: Duration,
    command_timeout: Duration,
    zk_connect: String,
    /// Which ZooKeeper our managers run on, in words.
    zk_shape: &'static str,
    manager_bin: Option<PathBuf>,
    sentinel: Option<SentinelProgram>,
}

/// What one successful run measured.
struct RunOk {
    /// Failure -> new master published.
    published: Duration,
    /// Sentinel: failure -> `+promoted-slave`.
    promoted: Option<Duration>,
    /// Failure -> first write acknowledged by the new master.
    write_gap: Duration,
    /// Longest time without an acknowledged write, from 1 s before the failure to the end.
    longest_gap: Duration,
    /// Where it starts, relative to the failure, in ms.
    longest_gap_at: f64,
    new_master: NodeAddr,
    acked: usize,
    /// Acknowledged writes per second in the second before the failure, and from the first
    /// write on the new master to the end.
    rate_before: f64,
    rate_after: f64,
    lost: usize,
    errors: usize,
    failovers: u64,
    /// Acknowledgement times relative to the failure, in ms (from 1 s before it).
    acks_ms: Vec<f64>,
    notes: Vec<String>,
}

type Key = (Scenario, u64, System);

impl Opts {
    /// `--quick` applied, and the values checked.
    pub fn check(&mut self) -> Result<(), String> {
        if self.quick {
            self.runs = 1;
            self.down_after = vec![500];
            self.linger_ms = self.linger_ms.min(800);
        }
        if self.down_after.is_empty() || self.down_after.iter().any(|d| *d < 100 || *d > 60_000) {
            return Err("sentinel_bench: --down-after takes values in 100..=60000 ms".into());
        }
        Ok(())
    }

    /// Whether our managers run (they need the binary and ZooKeeper).
    pub fn with_ours(&self) -> bool {
        self.system != SystemArg::Sentinel
    }

    /// Whether Redis Sentinel runs (it needs a sentinel program).
    pub fn with_sentinel(&self) -> bool {
        self.system != SystemArg::Ours
    }
}

impl Settings {
    /// The settings of a bench whose managers run on the ZooKeeper at `zk_connect` (`zk_shape`
    /// says which; both unused without our managers), from `manager_bin`, and whose
    /// sentinels run `sentinel`.
    pub fn new(
        opts: Opts,
        zk_connect: String,
        zk_shape: &'static str,
        manager_bin: Option<PathBuf>,
        sentinel: Option<SentinelProgram>,
    ) -> Settings {
        Settings {
            deadline: Duration::from_secs(opts.timeout_secs),
            command_timeout: Duration::from_millis(opts.command_timeout_ms),
            zk_connect,
            zk_shape,
            manager_bin,
            sentinel,
            opts,
        }
    }
}

/// Runs every scenario, down-after and system, prints a line per run, the summary, the
/// Markdown tables and the timelines. True when every run passed.
pub async fn bench(s: &Settings) -> bool {
    let o = &s.opts;
    let started = Instant::now();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let scenarios = o.scenario.scenarios();
    let systems = match o.system {
        SystemArg::Sentinel => vec![System::Sentinel],
        SystemArg::Ours => vec![System::Ours],
        SystemArg::Both => vec![System::Sentinel, System::Ours],
    };
    let zk = if systems.contains(&System::Ours) {
        Some(harness::zk_client(&s.zk_connect).await)
    } else {
        None
    };
    let load_before = load_average();
    println!(
        "sentinel_bench: {} run(s) per scenario / down-after / system, nproc {nproc}, load average {load_before}, on {}",
        o.runs, s.zk_shape
    );
    if let Some(p) = &s.sentinel {
        println!(
            "  sentinel: 3 x {}, quorum 2, down-after-milliseconds D, failover-timeout {}, parallel-syncs 1",
            p.describe(),
            o.failover_timeout_ms
        );
    }
    if let Some(b) = &s.manager_bin {
        println!(
            "  ours:     3 x {} {} on {}",
            b.display(),
            manager_args(0)
                .join(" ")
                .replace("--down-after-ms 0", "--down-after-ms D"),
            s.zk_shape
        );
    }
    println!(
        "  writers: SET seq:N N back to back, reply timeout {} ms, connect timeout {} ms; Sentinel: redis::sentinel::SentinelClient, re-resolving after any error; ours: redis_failover_client::Client",
        o.command_timeout_ms,
        CONNECT_TIMEOUT.as_millis()
    );
    println!(
        "  the master is hit {} ms + random [0, {}) ms after the writer starts; writes go on {} ms after the first one on the new master",
        o.settle_ms, o.jitter_ms, o.linger_ms
    );
    println!();

    let mut results: Vec<(Key, Result<RunOk, String>)> = Vec::new();
    let mut skipped = 0usize;
    let budget = Duration::from_secs(o.max_minutes * 60);
    for run in 1..=o.runs {
        for &da in &o.down_after {
            for &sc in &scenarios {
                for &sys in &systems {
                    if started.elapsed() >= budget {
                        skipped += 1;
                        continue;
                    }
                    let r = match sys {
                        System::Sentinel => runs::sentinel_run(s, (sc, da, sys), run).await,
                        System::Ours => match &zk {
                            Some(zk) => runs::ours_run(s, (sc, da, sys), run, zk).await,
                            None => Err("no ZooKeeper".to_string()),
                        },
                    };
                    print_run(run, sc, da, sys, &r);
                    results.push(((sc, da, sys), r));
                }
            }
        }
    }
    if skipped > 0 {
        println!(
            "{skipped} run(s) skipped: the bench ran past --max-minutes {}",
            o.max_minutes
        );
    }
    let ok = summary::summarize(s, &scenarios, &systems, &results, nproc, &load_before);
    if !o.no_plot {
        for &sc in &scenarios {
            let path = if sc == Scenario::Crash {
                o.plot.clone()
            } else {
                timeline::with_suffix(&o.plot, "_hang")
            };
            match timeline::plot(s, sc, &results, &path) {
                Ok(true) => println!("timeline: {}", path.display()),
                Ok(false) => {}
                Err(e) => println!("timeline {}: FAILED: {e}", path.display()),
            }
        }
    }
    println!(
        "load average at the end: {}; {:.1} min in all",
        load_average(),
        started.elapsed().as_secs_f64() / 60.0
    );
    ok && skipped == 0
}

fn print_run(run: u32, sc: Scenario, da: u64, sys: System, r: &Result<RunOk, String>) {
    let head = format!("{sc:<5} D={da:<5} {sys:<8} run {run:>2}:");
    match r {
        Ok(k) => println!(
            "{head} published {:>7.1} ms{}  write gap {:>7.1} ms  longest gap {:>7.1} ms (from {:+.1} ms)  new master {}  acked {:>6} ({:.0}/s before, {:.0}/s after)  lost {}  failovers {}  errors {}{}",
            ms(k.published),
            k.promoted
                .map_or(String::new(), |p| format!(" (+promoted-slave {:>7.1} ms)", ms(p))),
            ms(k.write_gap),
            ms(k.longest_gap),
            k.longest_gap_at,
            k.new_master,
            k.acked,
            k.rate_before,
            k.rate_after,
            k.lost,
            k.failovers,
            k.errors,
            if k.notes.is_empty() {
                String::new()
            } else {
                format!("  NOTE: {}", k.notes.join("; "))
            }
        ),
        Err(e) => println!("{head} FAILED: {e}"),
    }
}

/// Our managers' flags for down-after `da` (besides -z, -n, --znode-path, --manager-name).
fn manager_args(da: u64) -> Vec<String> {
    vec![
        "--down-after-ms".into(),
        da.to_string(),
        "--required-node-managers".into(),
        "2".into(),
    ]
}
