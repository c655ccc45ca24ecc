//! `failover_bench`: how fast does `redis_node_manager` fail over, on this machine, with real
//! processes?
//!
//! One throwaway ZooKeeper for the whole bench. Per run: a fresh redis trio (master + 2
//! replicas), a fresh znode root, and a manager running in this process (on its own tokio
//! runtime, as if it were its own process). Once the manager publishes the trio's master with
//! both replicas, the master is killed (`kill -9`, scenario `crash`) or frozen (`SIGSTOP`,
//! scenario `hang`), and two times are measured from the signal:
//!
//! * (a) until `<root>/nodes` names a different master, seen through a ZooKeeper data watch
//!   (`get_and_watch_data` loop; the time is taken when the read that shows the new master
//!   returns, so it includes the watch notification and one read round trip);
//! * (b) until `SET bench:key <n>` succeeds on a surviving node: one task per survivor, started
//!   right after the signal, sends `SET` every 1 ms on a pre-opened connection (50 ms reply
//!   timeout; a fresh connection after any error). Replicas answer `READONLY`; the first `OK`
//!   ends it.
//!
//! Every wait has a deadline; a run that misses one is reported as failed and counted.

use redis_failover_bench::{
    finish_run, fmt_stats, init_logging, join_error, ms, node_addr, open, random_below,
    watch_for_new_master, Stats, ZK_READ_TIMEOUT,
};
use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use redis::aio::MultiplexedConnection;
use redis_failover_client::{NodeAddr, Topology};
use redis_failover_manager::Cli;
use redis_failover_manager::POLL_INTERVAL;
use redis_failover_tests::manager::{self as harness, Manager};
use redis_failover_tests::{unique_root, RedisGroup, ZkServer};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zookeeper_client as zk;

/// Reply timeout of one benchmark `SET`, and connect timeout of a fresh connection.
const SET_TIMEOUT: Duration = Duration::from_millis(50);
/// Pause between two `SET` attempts on one node.
const SET_EVERY: Duration = Duration::from_millis(1);
/// Connect timeout of the connections opened before the signal.
const PREOPEN_TIMEOUT: Duration = Duration::from_secs(2);
/// Poll interval while waiting for the manager's first topology.
const SETUP_POLL: Duration = Duration::from_millis(10);
/// Bound on one ZooKeeper read of the bench itself.
/// The key the write probe sets.
const BENCH_KEY: &str = "bench:key";

/// Measures the failover time of redis_node_manager with real ZooKeeper and redis-server
/// processes (a master crash with kill -9, a master hang with SIGSTOP).
#[derive(Parser, Debug)]
#[command(name = "failover_bench", version, about, long_about = None)]
struct Opts {
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

    /// Keep the manager running this long after a measurement, then check that `<root>/nodes`
    /// still names the same master with the same epoch (0 = stop the manager at once).
    #[arg(long, default_value_t = 0)]
    linger_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ScenarioArg {
    Crash,
    Hang,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// `kill -9` the master.
    Crash,
    /// `SIGSTOP` the master (`SIGCONT` at the end of the run).
    Hang,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Crash => "crash",
            Scenario::Hang => "hang",
        }
    }

    fn how(self) -> &'static str {
        match self {
            Scenario::Crash => "`kill -9`",
            Scenario::Hang => "`SIGSTOP`",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
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

struct Settings {
    opts: Opts,
    deadline: Duration,
    zk_connect: String,
    manager_rt: Handle,
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    init_logging();

    let bench_rt = match tokio::runtime::Builder::new_multi_thread()
        .thread_name("bench")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("failover_bench: cannot start the bench's tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The manager gets a runtime of its own, sized like the daemon's (`Runtime::new()`), so
    // that the bench's probes do not share its worker threads.
    let manager_rt = match tokio::runtime::Builder::new_multi_thread()
        .thread_name("manager")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("failover_bench: cannot start the manager's tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };

    eprintln!("failover_bench: starting ZooKeeper ...");
    let zk_server = ZkServer::start();
    let settings = Settings {
        deadline: Duration::from_secs(opts.timeout_secs),
        zk_connect: zk_server.connect_string(),
        manager_rt: manager_rt.handle().clone(),
        opts,
    };
    let all_ok = bench_rt.block_on(bench(&settings));
    // Every manager was stopped (or aborted) by now; end the runtimes, then ZooKeeper.
    drop(bench_rt);
    drop(manager_rt);
    drop(zk_server);
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs every scenario and prints the lines, summaries and Markdown table. True when no run
/// failed.
async fn bench(s: &Settings) -> bool {
    let scenarios: Vec<Scenario> = match s.opts.scenario {
        ScenarioArg::Crash => vec![Scenario::Crash],
        ScenarioArg::Hang => vec![Scenario::Hang],
        ScenarioArg::Both => vec![Scenario::Crash, Scenario::Hang],
    };
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let zk = harness::zk_client(&s.zk_connect).await;

    println!(
        "failover_bench: {} run(s) per scenario, --down-after-ms {}, --max-failures {}, nproc {nproc}, deadline {} s per wait",
        s.opts.runs, s.opts.down_after_ms, s.opts.max_failures, s.opts.timeout_secs
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
            let r = run_once(s, &zk, scenario, run).await;
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
            "| {} ({}) | {}/{} | {} | {} |",
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
         ZooKeeper 3.8 standalone and redis-server on loopback; the new master in ZooKeeper is \
         seen through a data watch; writes are tried every {} ms on every surviving node; the master \
         is hit at a random point of the manager's {} ms poll cycle.",
        s.opts.down_after_ms,
        s.opts.max_failures,
        s.opts.runs,
        SET_EVERY.as_millis(),
        POLL_INTERVAL.as_millis()
    );
    all_ok
}

/// One run: fresh trio, root and manager; fail the master; measure; clean up.
async fn run_once(
    s: &Settings,
    zk: &zk::Client,
    scenario: Scenario,
    run: u32,
) -> Result<RunOk, String> {
    let group = tokio::task::spawn_blocking(RedisGroup::trio)
        .await
        .map_err(|e| format!("the redis trio did not start: {}", join_error(e)))?;
    let group = Arc::new(group);
    let root = unique_root(&format!("bench_{scenario}_{run}"));
    let addrs: Vec<String> = group.addrs();
    let opts = &s.opts;
    let config = harness::config(&s.zk_connect, &addrs, &root, |c: &mut Cli| {
        c.max_failures = Some(opts.max_failures);
        c.down_after_ms = Some(opts.down_after_ms);
        c.manager_name = Some(format!("bench-{scenario}-{run}"));
    });
    let manager = {
        let _on_manager_rt = s.manager_rt.enter();
        Manager::start(config)
    };

    let measured = measure(s, zk, scenario, &group, &root, &manager).await;

    if scenario == Scenario::Hang {
        group.node(0).sigcont();
    }
    finish_run(manager, group, measured, &format!("{scenario} run {run}")).await
}

/// Waits for the steady topology, fails the master, measures (a) and (b).
async fn measure(
    s: &Settings,
    zk: &zk::Client,
    scenario: Scenario,
    group: &Arc<RedisGroup>,
    root: &str,
    manager: &Manager,
) -> Result<RunOk, String> {
    let master = node_addr(group.node(0).port());
    let survivors: Vec<NodeAddr> = group.nodes()[1..]
        .iter()
        .map(|n| node_addr(n.port()))
        .collect();

    // 1. The manager has discovered the trio and published it.
    let setup_deadline = Instant::now() + s.deadline;
    let mut last: Option<Topology> = None;
    loop {
        let topo = harness::read_topology(zk, root).await;
        if let Some(t) = &topo {
            if t.master.as_ref() == Some(&master) && survivors.iter().all(|r| t.slaves.contains(r))
            {
                break;
            }
        }
        if topo.is_some() {
            last = topo;
        }
        if manager.is_finished() {
            return Err(format!(
                "the manager ended before publishing master {master} with slaves {} (run with RUST_LOG=info to see why)",
                join(&survivors)
            ));
        }
        if Instant::now() >= setup_deadline {
            return Err(format!(
                "timed out after {:?} waiting for the manager to publish master {master} with slaves {}; last topology: {last:?}",
                s.deadline,
                join(&survivors)
            ));
        }
        tokio::time::sleep(SETUP_POLL).await;
    }
    let jitter = random_below(s.opts.jitter_ms);
    tokio::time::sleep(Duration::from_millis(s.opts.settle_ms + jitter)).await;

    // 2. Arm the watch and open the write connections before the signal.
    let path = format!("{root}/nodes");
    let (_, _, watcher) = tokio::time::timeout(ZK_READ_TIMEOUT, zk.get_and_watch_data(&path))
        .await
        .map_err(|_| format!("reading {path} (to arm the watch) timed out"))?
        .map_err(|e| format!("reading {path} (to arm the watch): {e}"))?;
    let mut conns = Vec::new();
    for addr in &survivors {
        conns.push(
            open(addr, PREOPEN_TIMEOUT, SET_TIMEOUT)
                .await
                .map_err(|e| {
                    format!("cannot open the write connection to {addr} before the signal: {e}")
                })?,
        );
    }

    // 3. Signal.
    let t0 = Instant::now();
    let t0_wall_ms = unix_ms(SystemTime::now());
    let killer: Option<JoinHandle<()>> = match scenario {
        Scenario::Crash => {
            let g = Arc::clone(group);
            // kill9 waits (polling) until the process is reaped: off the runtime's workers.
            Some(tokio::task::spawn_blocking(move || g.node(0).kill9()))
        }
        Scenario::Hang => {
            group.node(0).sigstop();
            None
        }
    };
    let deadline = tokio::time::Instant::from_std(t0 + s.deadline);
    let (tx, mut rx) = mpsc::channel::<(NodeAddr, Instant, u64)>(survivors.len());
    let writers: Vec<JoinHandle<()>> = survivors
        .iter()
        .cloned()
        .zip(conns)
        .map(|(addr, conn)| tokio::spawn(write_until_ok(addr, conn, tx.clone())))
        .collect();
    drop(tx);
    let mut znode = {
        let zk = zk.clone();
        let path = path.clone();
        let old = master.clone();
        tokio::spawn(async move { watch_for_new_master(&zk, &path, &old, watcher).await })
    };

    // 4. Collect (a) and (b), each within the deadline.
    let a = tokio::time::timeout_at(deadline, &mut znode).await;
    let b = tokio::time::timeout_at(deadline, rx.recv()).await;
    znode.abort();
    for w in &writers {
        w.abort();
    }
    if let Some(k) = killer {
        k.await
            .map_err(|e| format!("kill -9 of the master failed: {}", join_error(e)))?;
    }

    let (seen_at, topo) = match a {
        Err(_) => {
            let now = harness::read_topology(zk, root).await;
            return Err(format!(
                "(a) timed out: no topology with a master other than {master} within {:?} of the {}; {path} holds {now:?}{}",
                s.deadline,
                scenario.how(),
                match &b {
                    Ok(Some((node, at, _))) => format!(
                        "; meanwhile {node} accepted a write {:.1} ms after the signal",
                        ms(at.duration_since(t0))
                    ),
                    _ => "; and no surviving node accepted a write either".to_string(),
                }
            ));
        }
        Ok(Err(e)) => return Err(format!("(a) the watch task failed: {}", join_error(e))),
        Ok(Ok(Err(e))) => return Err(format!("(a) {e}")),
        Ok(Ok(Ok(found))) => found,
    };
    let winner = topo
        .master
        .clone()
        .ok_or_else(|| "(a) the new topology has no master".to_string())?;
    let (writer, written_at, set_attempts) = match b {
        Ok(Some(w)) => w,
        Ok(None) => return Err("(b) every write task ended without an OK".to_string()),
        Err(_) => {
            return Err(format!(
                "(b) timed out: no surviving node accepted `SET {BENCH_KEY}` within {:?} of the {}, although {path} names {winner} as master since {:.1} ms",
                s.deadline,
                scenario.how(),
                ms(seen_at.duration_since(t0))
            ))
        }
    };
    if writer != winner {
        return Err(format!(
            "the first write was accepted by {writer}, but {path} names {winner} as master"
        ));
    }
    let after_linger = if s.opts.linger_ms > 0 {
        tokio::time::sleep(Duration::from_millis(s.opts.linger_ms)).await;
        let now = harness::read_topology(zk, root).await;
        match &now {
            Some(t) if t.master.as_ref() == Some(&winner) && t.epoch == topo.epoch => None,
            Some(t) if t.master.as_ref() == Some(&winner) => Some(format!(
                "{} ms later {path} names the same master but epoch {} (was {})",
                s.opts.linger_ms, t.epoch, topo.epoch
            )),
            _ => {
                return Err(format!(
                    "{winner} (epoch {}) was published {:.1} ms after the {}, but {} ms later {path} holds {now:?}",
                    topo.epoch,
                    ms(seen_at.duration_since(t0)),
                    scenario.how(),
                    s.opts.linger_ms
                ))
            }
        }
    } else {
        None
    };
    Ok(RunOk {
        to_znode: seen_at.duration_since(t0),
        to_write: written_at.duration_since(t0),
        winner,
        epoch: topo.epoch,
        published_after_ms: i128::from(topo.updated_at_ms) - i128::from(t0_wall_ms),
        set_attempts,
        after_linger,
    })
}

/// Sends `SET bench:key <n>` to `addr` every [`SET_EVERY`] until one is answered `OK`, then
/// reports the node, the time and `n`. `READONLY` (a replica) means try again; any other
/// error or a timeout means a fresh connection.
async fn write_until_ok(
    addr: NodeAddr,
    conn: MultiplexedConnection,
    tx: mpsc::Sender<(NodeAddr, Instant, u64)>,
) {
    let mut conn = Some(conn);
    let mut n: u64 = 0;
    // Absolute 1 ms ticks (a `sleep(1 ms)` after each reply would round up to ~2 ms).
    let mut every = tokio::time::interval(SET_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        if conn.is_none() {
            conn = open(&addr, SET_TIMEOUT, SET_TIMEOUT).await.ok();
        }
        if let Some(c) = conn.as_mut() {
            n += 1;
            let mut cmd = redis::cmd("SET");
            cmd.arg(BENCH_KEY).arg(n);
            let set = cmd.query_async::<redis::Value>(c);
            match tokio::time::timeout(SET_TIMEOUT, set).await {
                Ok(Ok(redis::Value::Okay)) => {
                    let _ = tx.send((addr, Instant::now(), n)).await;
                    return;
                }
                Ok(Ok(redis::Value::SimpleString(s))) if s == "OK" => {
                    let _ = tx.send((addr, Instant::now(), n)).await;
                    return;
                }
                Ok(Err(e)) if e.code() == Some("READONLY") => {}
                // Anything else (LOADING, a dropped connection, a timeout): start afresh.
                Ok(_) | Err(_) => conn = None,
            }
        }
    }
}

fn join(addrs: &[NodeAddr]) -> String {
    addrs
        .iter()
        .map(NodeAddr::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
