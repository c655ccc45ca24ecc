//! `sentinel_bench`: redis_node_manager side by side with Redis Sentinel, on the same machine,
//! in one program, with identical scenarios alternating between the two systems.
//!
//! Per run, a fresh redis trio (master + 2 replicas, `redis-server` on loopback) watched by
//! * **Sentinel**: 3 real Redis Sentinels (`redis-sentinel`, or `redis-server --sentinel`),
//!   `sentinel monitor mymaster 127.0.0.1 <port> 2`, `down-after-milliseconds` D,
//!   `failover-timeout` 5000, `parallel-syncs` 1; the run starts once every sentinel knows
//!   both replicas and both other sentinels and `SENTINEL CKQUORUM` is OK;
//! * **ours**: 3 `redis_node_manager` processes (the release binary next to this one) on one
//!   ZooKeeper (shared by all runs, fresh znode root per run), `--down-after-ms` D
//!   `--required-node-managers 2` (defaults otherwise: `--max-failures 3`, `majority`); the run
//!   starts once the trio is published, the lock has 3 children and the 3 managers' views
//!   are in ZooKeeper.
//!
//! A writer sends `SET seq:N N` (N = 1, 2, ...) back to back and logs each acknowledged write
//! with its time: for Sentinel through a Sentinel-aware redis-rs client
//! (`redis::sentinel::SentinelClient`: it asks the sentinels for the master, checks it with
//! `ROLE`, and after any error the writer drops its connection and asks again, pausing 10 ms
//! when no master could be reached), for ours through `redis_failover_client::Client`. Both
//! wait at most --command-timeout-ms for a reply and 1 s for a connection. After the writer
//! has run --settle-ms + random [0, --jitter-ms), the master is killed (`kill -9`, scenario
//! `crash`) or frozen (`SIGSTOP`, scenario `hang`; it gets SIGCONT + SIGKILL when the run is
//! torn down). Measured from the signal:
//! * **published**: Sentinel: the first `+switch-master` on a `PSUBSCRIBE *` to each of the 3
//!   sentinels (the earliest of the three); also shown: `+promoted-slave`, from when the
//!   leading sentinel's `SENTINEL get-master-addr-by-name` names the new master; ours: a
//!   ZooKeeper data watch on `<root>/nodes` (timed when the read showing the new master
//!   returns);
//! * **write gap**: the first write acknowledged more than 5 ms after the failure took effect
//!   (SIGKILL reaped / SIGSTOP sent), i.e. on the new master;
//! * **lost**: acknowledged writes whose key does not hold its value on the new master once the
//!   writer has run --linger-ms past the first new write;
//! * **failovers**: Sentinel: the most `+switch-master` events one sentinel published during the
//!   run; ours: the epoch delta of `<root>/nodes`. Must be 1.
//!
//! Then medians per scenario and system, the Sentinel / ours ratios, the targets, a Markdown
//! table, and PNG timelines of acknowledged writes per 10 ms around the failure (the run with
//! the median write gap of each system, at the first --down-after), `--plot` for the crash and
//! `<plot>_hang.png` for the hang. Every process (redis, sentinels, ZooKeeper, managers) is
//! killed by a Drop guard, also when a run fails or panics; every wait has a deadline and the
//! whole bench stops starting runs after --max-minutes.

use redis_failover_bench::sentinel::{
    count_lost, keep_logs, load_average, plot_timelines, ClientWriter, EventTap, ManagerProcs,
    Panel, SentinelProgram, SentinelSettings, SentinelWriter, Sentinels, WriteLog, Writer,
};
use redis_failover_bench::{
    init_logging, join_error, manager_bin, ms, node_addr, random_below, watch_for_new_master,
    Stats, ZK_READ_TIMEOUT,
};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use redis_failover_client::{Client, NodeAddr, Topology, ZnodePaths};
use redis_failover_tests::manager as harness;
use redis_failover_tests::{unique_root, RedisGroup, ZkServer};
use zookeeper_client as zk;

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
/// Poll interval of the set-up waits.
const SETUP_POLL: Duration = Duration::from_millis(20);
/// Bin width of the PNG timelines.
const BIN_MS: f64 = 10.0;

/// Redis Sentinel vs redis_node_manager: kill -9 / SIGSTOP of the master under a writer;
/// time to a new master, write gap, lost writes, failovers.
#[derive(Parser, Debug)]
#[command(name = "sentinel_bench", version, long_about = None)]
struct Opts {
    /// Runs per scenario, down-after and system.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,

    /// A short check: 1 run, down-after 500 only, 800 ms linger.
    #[arg(long)]
    quick: bool,

    /// Sentinel's down-after-milliseconds and our --down-after-ms, one series each.
    #[arg(long, value_delimiter = ',', default_values_t = [500u64, 1000])]
    down_after: Vec<u64>,

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
    linger_ms: u64,

    /// Deadline of every wait of a run, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_secs: u64,

    /// No run is started after this many minutes.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    max_minutes: u64,

    /// The redis_node_manager binary [default: next to this executable].
    #[arg(long, value_name = "PATH")]
    manager_bin: Option<PathBuf>,

    /// The crash timeline PNG (the hang's goes next to it, `_hang` added to the name).
    #[arg(long, default_value = "docs/failover_timeline.png")]
    plot: PathBuf,

    /// Draw no PNG.
    #[arg(long)]
    no_plot: bool,

    /// Keep every run's manager / sentinel and redis logs in DIR/<scenario>-<D>-<system>-<run>/.
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ScenarioArg {
    Crash,
    Hang,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SystemArg {
    Sentinel,
    Ours,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Crash,
    Hang,
}

impl Scenario {
    fn how(self) -> &'static str {
        match self {
            Scenario::Crash => "kill -9",
            Scenario::Hang => "SIGSTOP",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scenario::Crash => "crash",
            Scenario::Hang => "hang",
        })
    }
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

struct Settings {
    opts: Opts,
    deadline: Duration,
    command_timeout: Duration,
    zk_connect: String,
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

fn main() -> ExitCode {
    let mut opts = Opts::parse();
    init_logging();
    if opts.quick {
        opts.runs = 1;
        opts.down_after = vec![500];
        opts.linger_ms = opts.linger_ms.min(800);
    }
    if opts.down_after.is_empty() || opts.down_after.iter().any(|d| *d < 100 || *d > 60_000) {
        eprintln!("sentinel_bench: --down-after takes values in 100..=60000 ms");
        return ExitCode::FAILURE;
    }
    let with_ours = opts.system != SystemArg::Sentinel;
    let with_sentinel = opts.system != SystemArg::Ours;
    let manager_bin = if with_ours {
        match manager_bin(opts.manager_bin.as_deref(), "sentinel_bench") {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let sentinel = if with_sentinel {
        match SentinelProgram::find() {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("sentinel_bench: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .thread_name("bench")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sentinel_bench: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let zk_server = if with_ours {
        eprintln!("sentinel_bench: starting ZooKeeper ...");
        Some(ZkServer::start())
    } else {
        None
    };
    let settings = Settings {
        deadline: Duration::from_secs(opts.timeout_secs),
        command_timeout: Duration::from_millis(opts.command_timeout_ms),
        zk_connect: zk_server
            .as_ref()
            .map(ZkServer::connect_string)
            .unwrap_or_default(),
        manager_bin,
        sentinel,
        opts,
    };
    let ok = rt.block_on(bench(&settings));
    drop(rt);
    drop(zk_server);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn bench(s: &Settings) -> bool {
    let o = &s.opts;
    let started = Instant::now();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let scenarios = match o.scenario {
        ScenarioArg::Crash => vec![Scenario::Crash],
        ScenarioArg::Hang => vec![Scenario::Hang],
        ScenarioArg::Both => vec![Scenario::Crash, Scenario::Hang],
    };
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
        "sentinel_bench: {} run(s) per scenario / down-after / system, nproc {nproc}, load average {load_before}",
        o.runs
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
            "  ours:     3 x {} {} on one ZooKeeper 3.8 (tickTime 500 ms)",
            b.display(),
            manager_args(0)
                .join(" ")
                .replace("--down-after-ms 0", "--down-after-ms D")
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
                        System::Sentinel => sentinel_run(s, sc, da, run).await,
                        System::Ours => match &zk {
                            Some(zk) => ours_run(s, zk, sc, da, run).await,
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
    let ok = summarize(s, &scenarios, &systems, &results, nproc, &load_before);
    if !o.no_plot {
        for &sc in &scenarios {
            let path = if sc == Scenario::Crash {
                o.plot.clone()
            } else {
                with_suffix(&o.plot, "_hang")
            };
            match plot(s, sc, &results, &path) {
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

async fn start_trio() -> Result<Arc<RedisGroup>, String> {
    tokio::task::spawn_blocking(RedisGroup::trio)
        .await
        .map(Arc::new)
        .map_err(|e| format!("the redis trio did not start: {}", join_error(e)))
}

/// Kills and reaps off the runtime's workers.
async fn teardown(what: &str, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = tokio::task::spawn_blocking(f).await {
        eprintln!(
            "sentinel_bench: tearing down {what} failed: {}",
            join_error(e)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------------

/// With --log-dir: where this run's logs go.
fn run_log_dir(s: &Settings, sc: Scenario, da: u64, sys: System, run: u32) -> Option<PathBuf> {
    s.opts
        .log_dir
        .as_ref()
        .map(|d| d.join(format!("{sc}-{da}-{sys}-{run}")))
}

/// The redis logs of a trio.
fn redis_logs(group: &RedisGroup) -> Vec<PathBuf> {
    group.nodes().iter().map(|n| n.log_path()).collect()
}

async fn sentinel_run(s: &Settings, sc: Scenario, da: u64, run: u32) -> Result<RunOk, String> {
    let Some(program) = s.sentinel.clone() else {
        return Err("no sentinel program".into());
    };
    let group = start_trio().await?;
    let settings = SentinelSettings {
        quorum: 2,
        down_after_ms: da,
        failover_timeout_ms: s.opts.failover_timeout_ms,
        parallel_syncs: 1,
    };
    let master_port = group.node(0).port();
    let started =
        tokio::task::spawn_blocking(move || Sentinels::start(&program, 3, master_port, settings))
            .await
            .map_err(|e| format!("starting the sentinels: {}", join_error(e)))
            .and_then(|r| r);
    let sentinels = match started {
        Ok(sn) => Arc::new(sn),
        Err(e) => {
            teardown("the trio", move || drop(group)).await;
            return Err(e);
        }
    };
    let measured = sentinel_measure(s, sc, &group, &sentinels)
        .await
        .map_err(|e| format!("{e}{}", sentinels.tails(12)));
    if let Some(dir) = run_log_dir(s, sc, da, System::Sentinel, run) {
        keep_logs(&dir, &[sentinels.log_paths(), redis_logs(&group)].concat());
    }
    teardown("the sentinels and the trio", move || {
        drop(sentinels);
        drop(group);
    })
    .await;
    measured
}

async fn sentinel_measure(
    s: &Settings,
    sc: Scenario,
    group: &Arc<RedisGroup>,
    sentinels: &Arc<Sentinels>,
) -> Result<RunOk, String> {
    let sn = Arc::clone(sentinels);
    let deadline = s.deadline;
    tokio::task::spawn_blocking(move || sn.wait_ready(2, deadline))
        .await
        .map_err(|e| format!("waiting for the sentinels: {}", join_error(e)))??;
    let tap = EventTap::start(&sentinels.ports()).await?;
    let writer = Writer::spawn(
        SentinelWriter::new(
            &sentinels.ports(),
            s.command_timeout,
            CONNECT_TIMEOUT,
            SENTINEL_RETRY_PAUSE,
        )?,
        None,
        CALL_BOUND,
    );
    measure(
        s,
        sc,
        group,
        writer,
        Side::Sentinel {
            tap: &tap,
            sentinels,
        },
    )
    .await
}

async fn ours_run(
    s: &Settings,
    zk: &zk::Client,
    sc: Scenario,
    da: u64,
    run: u32,
) -> Result<RunOk, String> {
    let Some(bin) = s.manager_bin.as_deref() else {
        return Err("no redis_node_manager binary".into());
    };
    let group = start_trio().await?;
    let root = unique_root(&format!("sb_{sc}_{da}_{run}"));
    let managers = ManagerProcs::start(
        bin,
        3,
        &s.zk_connect,
        &group,
        &root,
        &manager_args(da),
        "info",
    );
    let measured = match &managers {
        Ok(m) => ours_measure(s, zk, sc, &group, &root, m)
            .await
            .map_err(|e| format!("{e}{}", m.tails(12))),
        Err(e) => Err(e.clone()),
    };
    if let (Some(dir), Ok(m)) = (run_log_dir(s, sc, da, System::Ours, run), &managers) {
        keep_logs(&dir, &[m.log_paths(), redis_logs(&group)].concat());
    }
    teardown("the managers and the trio", move || {
        drop(managers);
        drop(group);
    })
    .await;
    measured
}

async fn count_children(zk: &zk::Client, path: &str) -> usize {
    match tokio::time::timeout(ZK_READ_TIMEOUT, zk.list_children(path)).await {
        Ok(Ok(c)) => c.len(),
        _ => 0,
    }
}

async fn ours_measure(
    s: &Settings,
    zk: &zk::Client,
    sc: Scenario,
    group: &Arc<RedisGroup>,
    root: &str,
    managers: &ManagerProcs,
) -> Result<RunOk, String> {
    let paths = ZnodePaths::new(root).map_err(|e| format!("root {root}: {e}"))?;
    let master = node_addr(group.node(0).port());
    let replicas: Vec<NodeAddr> = group.nodes()[1..]
        .iter()
        .map(|n| node_addr(n.port()))
        .collect();
    let full = |t: &Topology| {
        t.master.as_ref() == Some(&master) && replicas.iter().all(|r| t.slaves.contains(r))
    };
    let setup_deadline = Instant::now() + s.deadline;
    loop {
        let topo = harness::read_topology(zk, root).await;
        let locks = count_children(zk, &paths.lock()).await;
        let views = count_children(zk, &paths.manager_node_state()).await;
        if topo.as_ref().is_some_and(full) && locks == 3 && views == 3 {
            break;
        }
        if let Some(e) = managers.exited() {
            return Err(e);
        }
        if Instant::now() >= setup_deadline {
            return Err(format!(
                "not ready within {:?}: <root>/nodes holds {topo:?}, {locks} lock children, {views} manager views (want the trio, 3, 3)",
                s.deadline
            ));
        }
        tokio::time::sleep(SETUP_POLL).await;
    }
    let client = tokio::time::timeout(
        s.deadline,
        Client::builder(&s.zk_connect)
            .znode_path(root)
            .command_timeout(s.command_timeout)
            .connect_timeout(CONNECT_TIMEOUT)
            .connect(),
    )
    .await
    .map_err(|_| "Client::connect timed out".to_string())?
    .map_err(|e| format!("Client::connect: {e}"))?;
    let writer = Writer::spawn(ClientWriter(client.clone()), None, CALL_BOUND);
    let r = measure(s, sc, group, writer, Side::Ours { zk, root }).await;
    drop(client);
    r
}

/// What differs between the systems in [`measure`].
enum Side<'a> {
    Sentinel {
        tap: &'a EventTap,
        sentinels: &'a Arc<Sentinels>,
    },
    Ours {
        zk: &'a zk::Client,
        root: &'a str,
    },
}

/// Lets the writer run, fails the master, measures, checks.
async fn measure(
    s: &Settings,
    sc: Scenario,
    group: &Arc<RedisGroup>,
    writer: Writer,
    side: Side<'_>,
) -> Result<RunOk, String> {
    let o = &s.opts;
    let old = node_addr(group.node(0).port());

    // 1. The writer works; let it run.
    let warm_deadline = Instant::now() + s.deadline;
    while writer.acked() < WARM_ACKS {
        if Instant::now() >= warm_deadline {
            let log = writer.snapshot();
            return Err(format!(
                "the writer had {} write(s) acknowledged within {:?}; last error: {:?}",
                log.acks.len(),
                s.deadline,
                log.errors.last().map(|e| &e.1)
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let jitter = random_below(o.jitter_ms);
    tokio::time::sleep(Duration::from_millis(o.settle_ms + jitter)).await;

    // 2. Arm the watch (ours); the sentinels' events are being recorded already.
    let mut armed = None;
    let mut epoch0 = 0;
    if let Side::Ours { zk, root } = &side {
        let path = format!("{root}/nodes");
        let (data, _, watcher) =
            tokio::time::timeout(ZK_READ_TIMEOUT, zk.get_and_watch_data(&path))
                .await
                .map_err(|_| format!("reading {path} timed out"))?
                .map_err(|e| format!("reading {path}: {e}"))?;
        let before = Topology::from_json(&data).map_err(|e| format!("{path}: {e}"))?;
        if before.master.as_ref() != Some(&old) {
            return Err(format!(
                "{path} names {:?} before the failure, expected {old}",
                before.master
            ));
        }
        epoch0 = before.epoch;
        armed = Some((path, watcher));
    }

    // 3. The failure.
    let t0 = Instant::now();
    match sc {
        Scenario::Crash => {
            let g = Arc::clone(group);
            tokio::task::spawn_blocking(move || g.node(0).kill9())
                .await
                .map_err(|e| format!("kill -9 of the master: {}", join_error(e)))?;
        }
        Scenario::Hang => group.node(0).sigstop(),
    }
    let t_fail = Instant::now();
    let deadline = tokio::time::Instant::from_std(t0 + s.deadline);

    // 4. The new master, as each system publishes it.
    let (published_at, new_master, promoted_at) = match (&side, armed) {
        (Side::Ours { zk, .. }, Some((path, watcher))) => {
            let found =
                tokio::time::timeout_at(deadline, watch_for_new_master(zk, &path, &old, watcher))
                    .await
                    .map_err(|_| {
                        format!(
                            "no new master in {path} within {:?} of the {}",
                            s.deadline,
                            sc.how()
                        )
                    })??;
            let m = found
                .1
                .master
                .ok_or_else(|| "the new topology has no master".to_string())?;
            (found.0, m, None)
        }
        (Side::Sentinel { tap, .. }, _) => {
            let ev = tap
                .wait_first("+switch-master", t0, deadline)
                .await
                .ok_or_else(|| {
                    format!(
                        "no +switch-master within {:?} of the {}; events: {}",
                        s.deadline,
                        sc.how(),
                        event_summary(tap, t0)
                    )
                })?;
            let m = ev
                .switch_target()
                .ok_or_else(|| format!("cannot parse +switch-master {:?}", ev.payload))?;
            let promoted = tap.first("+promoted-slave", t0).map(|e| e.at);
            (ev.at, m, promoted)
        }
        (Side::Ours { .. }, None) => return Err("the watch was not armed".into()),
    };

    // 5. The first write on the new master.
    let first = writer
        .wait_ack_after(t_fail + ACK_GUARD, deadline)
        .await
        .ok_or_else(|| {
            let log = writer.snapshot();
            format!(
                "no write acknowledged within {:?} of the {} ({} errors; last: {:?})",
                s.deadline,
                sc.how(),
                log.errors.len(),
                log.errors.last().map(|e| &e.1)
            )
        })?;

    // 6. Write on, stop, count.
    tokio::time::sleep(Duration::from_millis(o.linger_ms)).await;
    let t_end = Instant::now();
    let log: WriteLog = writer.stop(Duration::from_secs(3)).await;
    let mut notes = Vec::new();
    let (failovers, final_master) = match &side {
        Side::Ours { zk, root } => {
            let t = harness::read_topology(zk, root)
                .await
                .ok_or_else(|| format!("{root}/nodes unreadable after the run"))?;
            (t.epoch.saturating_sub(epoch0), t.master)
        }
        Side::Sentinel { tap, sentinels } => {
            let sn = Arc::clone(sentinels);
            let (best, answers) = tokio::task::spawn_blocking(move || sn.master_addr())
                .await
                .map_err(|e| format!("asking the sentinels: {}", join_error(e)))?;
            if best.is_none() {
                notes.push(format!("the sentinels disagree on the master: {answers:?}"));
            }
            (tap.failovers(t0) as u64, best)
        }
    };
    let final_master = final_master.unwrap_or_else(|| new_master.clone());
    if final_master != new_master {
        notes.push(format!(
            "{new_master} was published first, {final_master} is the master at the end"
        ));
    }
    if let Some(node) = &first.node {
        if *node != new_master {
            notes.push(format!(
                "the first write after the failure was acknowledged by {node}"
            ));
        }
    }
    let lost = count_lost(&final_master, &log.acks).await?;
    let from = t0.checked_sub(Duration::from_secs(1)).unwrap_or(t0);
    let (longest_gap, gap_start) = log.longest_gap(from, t_end);
    let acks_ms = log
        .acks
        .iter()
        .filter(|a| a.at >= from)
        .map(|a| signed_ms(a.at, t0))
        .collect();
    let rate = |a: Instant, b: Instant| {
        let n = log.acks.iter().filter(|x| x.at >= a && x.at < b).count();
        n as f64 / b.saturating_duration_since(a).as_secs_f64().max(1e-3)
    };
    let rate_before = rate(from.max(log.acks.first().map_or(from, |a| a.at)), t0);
    let rate_after = rate(first.at, t_end);
    Ok(RunOk {
        published: published_at.saturating_duration_since(t0),
        promoted: promoted_at.map(|p| p.saturating_duration_since(t0)),
        write_gap: first.at.duration_since(t0),
        longest_gap,
        longest_gap_at: signed_ms(gap_start, t0),
        new_master,
        acked: log.acks.len(),
        rate_before,
        rate_after,
        lost,
        errors: log.errors.len(),
        failovers,
        acks_ms,
        notes,
    })
}

fn signed_ms(at: Instant, t0: Instant) -> f64 {
    if at >= t0 {
        ms(at.duration_since(t0))
    } else {
        -ms(t0.duration_since(at))
    }
}

/// The sentinels' events since `t0`, for an error message.
fn event_summary(tap: &EventTap, t0: Instant) -> String {
    let evs: Vec<String> = tap
        .events()
        .iter()
        .filter(|e| e.at >= t0)
        .map(|e| {
            format!(
                "[s{} +{:.0} ms] {} {}",
                e.sentinel,
                ms(e.at.duration_since(t0)),
                e.channel,
                e.payload
            )
        })
        .collect();
    if evs.is_empty() {
        "none".into()
    } else {
        evs.join(" | ")
    }
}

// ---------------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------------

fn ok_runs(results: &[(Key, Result<RunOk, String>)], key: Key) -> (Vec<&RunOk>, usize) {
    let all: Vec<&Result<RunOk, String>> = results
        .iter()
        .filter(|(k, _)| *k == key)
        .map(|(_, r)| r)
        .collect();
    let ok: Vec<&RunOk> = all.iter().filter_map(|r| r.as_ref().ok()).collect();
    (ok, all.len())
}

fn median(mut v: Vec<Duration>) -> Option<Duration> {
    v.sort();
    Stats::of(v.into_iter()).map(|s| s.median)
}

fn fmt3(s: Option<Stats>) -> String {
    match s {
        Some(s) => format!(
            "{:.0} / **{:.0}** / {:.0} ms",
            ms(s.min),
            ms(s.median),
            ms(s.max)
        ),
        None => "n/a".into(),
    }
}

fn summarize(
    s: &Settings,
    scenarios: &[Scenario],
    systems: &[System],
    results: &[(Key, Result<RunOk, String>)],
    nproc: usize,
    load_before: &str,
) -> bool {
    let o = &s.opts;
    let mut all_ok = results.iter().all(|(_, r)| r.is_ok());
    println!();
    println!("Summary (min / median / max; medians are what the targets use):");
    let mut table = Vec::new();
    let mut ratios = Vec::new();
    let mut targets = Vec::new();
    for &sc in scenarios {
        for &da in &o.down_after {
            let mut gap_median: Vec<(System, Option<Duration>)> = Vec::new();
            let mut pub_median: Vec<(System, Option<Duration>)> = Vec::new();
            for &sys in systems {
                let (ok, total) = ok_runs(results, (sc, da, sys));
                let published = Stats::of(ok.iter().map(|r| r.published));
                let gap = Stats::of(ok.iter().map(|r| r.write_gap));
                let promoted = Stats::of(ok.iter().filter_map(|r| r.promoted));
                let lost: usize = ok.iter().map(|r| r.lost).sum();
                let max_lost = ok.iter().map(|r| r.lost).max().unwrap_or(0);
                let acked: usize = ok.iter().map(|r| r.acked).sum();
                let failovers: Vec<u64> = ok.iter().map(|r| r.failovers).collect();
                let bad_failovers = failovers.iter().filter(|f| **f != 1).count();
                all_ok &= bad_failovers == 0;
                let mut errors: Vec<usize> = ok.iter().map(|r| r.errors).collect();
                errors.sort_unstable();
                let errors_median = errors.get(errors.len() / 2).copied().unwrap_or(0);
                println!(
                    "  {sc:<5} D={da:<5} {sys:<8} {}/{total} ok  published {}{}  write gap {}  lost {lost} of {acked} (max {max_lost} in a run)  failovers {failovers:?}  writer errors (median per run) {errors_median}",
                    ok.len(),
                    fmt_plain(&published),
                    if sys == System::Sentinel {
                        format!(" (+promoted-slave {})", fmt_plain(&promoted))
                    } else {
                        String::new()
                    },
                    fmt_plain(&gap),
                );
                table.push(format!(
                    "| {sc} (`{}`) | {da} | {} | {}/{total} | {}{} | {} | {lost} of {acked} (max {max_lost}) | {} | {errors_median} |",
                    sc.how(),
                    match sys {
                        System::Sentinel => "Sentinel ×3",
                        System::Ours => "ours ×3 + ZooKeeper",
                    },
                    ok.len(),
                    fmt3(published),
                    if sys == System::Sentinel && promoted.is_some() {
                        format!(" (`+promoted-slave`: {})", fmt3(promoted).replace("**", ""))
                    } else {
                        String::new()
                    },
                    fmt3(gap),
                    if bad_failovers == 0 {
                        format!("1 in {}/{} runs", ok.len(), ok.len())
                    } else {
                        format!("{failovers:?}")
                    },
                ));
                gap_median.push((sys, median(ok.iter().map(|r| r.write_gap).collect())));
                pub_median.push((sys, median(ok.iter().map(|r| r.published).collect())));
            }
            let get = |v: &[(System, Option<Duration>)], sys| {
                v.iter().find(|(s, _)| *s == sys).and_then(|(_, d)| *d)
            };
            if let (Some(sg), Some(og), Some(sp), Some(op)) = (
                get(&gap_median, System::Sentinel),
                get(&gap_median, System::Ours),
                get(&pub_median, System::Sentinel),
                get(&pub_median, System::Ours),
            ) {
                let line = format!(
                    "{sc} D={da}: median write gap ours/Sentinel = {:.3} (Sentinel {:.1}x longer); median time to publish ours/Sentinel = {:.3} (Sentinel {:.1}x longer)",
                    ms(og) / ms(sg),
                    ms(sg) / ms(og),
                    ms(op) / ms(sp),
                    ms(sp) / ms(op)
                );
                println!("  ratio: {line}");
                ratios.push(format!(
                    "| {sc} | {da} | {:.3} ({:.1}x shorter) | {:.3} ({:.1}x shorter) |",
                    ms(og) / ms(sg),
                    ms(sg) / ms(og),
                    ms(op) / ms(sp),
                    ms(sp) / ms(op)
                ));
                if sc == Scenario::Crash && da == 500 {
                    targets.push(target(
                        "crash, D=500: our median write gap <= 200 ms",
                        ms(og) <= 200.0,
                        format!("{:.1} ms", ms(og)),
                    ));
                    targets.push(target(
                        "crash, D=500: our median write gap >= 8x shorter than Sentinel's",
                        ms(sg) >= 8.0 * ms(og),
                        format!("{:.1}x", ms(sg) / ms(og)),
                    ));
                }
            }
            if sc == Scenario::Hang {
                let bound = da as f64 + 300.0;
                if let Some(op) = get(&pub_median, System::Ours) {
                    targets.push(target(
                        &format!("hang, D={da}: our median failure -> new master published <= D + 300 = {bound:.0} ms"),
                        ms(op) <= bound,
                        format!("{:.1} ms", ms(op)),
                    ));
                }
                if let Some(og) = get(&gap_median, System::Ours) {
                    targets.push(target(
                        &format!("hang, D={da}: our median write gap <= D + 300 = {bound:.0} ms"),
                        ms(og) <= bound,
                        format!("{:.1} ms", ms(og)),
                    ));
                }
            }
        }
    }
    if !targets.is_empty() {
        println!();
        println!("Targets:");
        for t in &targets {
            println!("  {t}");
        }
    }
    println!();
    println!("Markdown:");
    println!();
    println!("| scenario | down-after (ms) | system | runs ok | failure → new master published (min / median / max) | failure → first acknowledged write on the new master | acknowledged writes lost (total, max per run) | failovers | writer errors per run (median) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for row in &table {
        println!("{row}");
    }
    if !ratios.is_empty() {
        println!();
        println!("| scenario | down-after (ms) | median write gap, ours / Sentinel | median time to publish, ours / Sentinel |");
        println!("|---|---|---|---|");
        for row in &ratios {
            println!("{row}");
        }
    }
    println!();
    println!(
        "Settings: {} runs per row, alternating Sentinel / ours; nproc {nproc}, load average {load_before} at the start; \
         Sentinel: 3 sentinels, quorum 2, failover-timeout {}; ours: 3 `redis_node_manager` processes `{}` on one ZooKeeper; \
         writers: `SET seq:N N` back to back, reply timeout {} ms; the failure hits {} ms + random [0, {}) ms after the writer starts.",
        o.runs,
        o.failover_timeout_ms,
        manager_args(0).join(" ").replace("--down-after-ms 0", "--down-after-ms D"),
        o.command_timeout_ms,
        o.settle_ms,
        o.jitter_ms
    );
    all_ok
}

fn fmt_plain(s: &Option<Stats>) -> String {
    match s {
        Some(s) => format!(
            "{:.1} / {:.1} / {:.1} ms",
            ms(s.min),
            ms(s.median),
            ms(s.max)
        ),
        None => "n/a".into(),
    }
}

fn target(what: &str, met: bool, got: String) -> String {
    format!("{} {what}: {got}", if met { "MET    " } else { "NOT MET" })
}

// ---------------------------------------------------------------------------------------------
// Timeline PNG
// ---------------------------------------------------------------------------------------------

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let ext = path
        .extension()
        .map_or_else(String::new, |e| format!(".{}", e.to_string_lossy()));
    path.with_file_name(format!("{stem}{suffix}{ext}"))
}

/// The run with the median write gap of each system, at the first --down-after.
fn plot(
    s: &Settings,
    sc: Scenario,
    results: &[(Key, Result<RunOk, String>)],
    path: &Path,
) -> Result<bool, String> {
    let Some(&da) = s.opts.down_after.first() else {
        return Ok(false);
    };
    let mut picked = Vec::new();
    for sys in [System::Ours, System::Sentinel] {
        let (mut ok, _) = ok_runs(results, (sc, da, sys));
        if ok.is_empty() {
            continue;
        }
        ok.sort_by_key(|r| r.write_gap);
        picked.push((sys, ok[(ok.len() - 1) / 2]));
    }
    if picked.is_empty() {
        return Ok(false);
    }
    let longest = picked
        .iter()
        .map(|(_, r)| ms(r.write_gap))
        .fold(0.0, f64::max);
    let to_ms = ((longest + 300.0) / 100.0).ceil() * 100.0;
    let panels: Vec<Panel> = picked
        .iter()
        .map(|(sys, r)| {
            let (name, published) = match sys {
                System::Ours => (
                    format!(
                        "ours: 3 redis_node_manager + ZooKeeper, --down-after-ms {da}, redis_failover_client::Client"
                    ),
                    "new master in ZooKeeper",
                ),
                System::Sentinel => (
                    format!(
                        "Redis Sentinel: 3 sentinels, quorum 2, down-after-milliseconds {da}, redis-rs SentinelClient"
                    ),
                    "+switch-master",
                ),
            };
            let mut marks = vec![(0.0, sc.how().to_string())];
            if let Some(p) = r.promoted {
                marks.push((ms(p), format!("+promoted-slave {:.0} ms", ms(p))));
            }
            marks.push((
                ms(r.published),
                format!("{published} {:.0} ms", ms(r.published)),
            ));
            marks.push((
                ms(r.write_gap),
                format!("first acked write {:.0} ms", ms(r.write_gap)),
            ));
            Panel {
                title: format!(
                    "{name}: write gap {:.0} ms, {} lost",
                    ms(r.write_gap),
                    r.lost
                ),
                acks_ms: r.acks_ms.clone(),
                marks,
            }
        })
        .collect();
    plot_timelines(
        path,
        &format!(
            "{} of the Redis master at t = 0: acknowledged writes per {BIN_MS:.0} ms ({})",
            sc.how(),
            if s.opts.runs > 1 {
                format!(
                    "of each system, its run with the median write gap of {}",
                    s.opts.runs
                )
            } else {
                "one run of each system".to_string()
            }
        ),
        -200.0,
        to_ms,
        BIN_MS,
        &panels,
    )?;
    Ok(true)
}
