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

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use redis::aio::MultiplexedConnection;
use redis_failover_bench::failure::{Scenario, ScenarioArg};
use redis_failover_bench::inprocess::{self, finish_run};
use redis_failover_bench::nodes::Trio;
use redis_failover_bench::scaffold::Scaffold;
use redis_failover_bench::stats::fmt_stats;
use redis_failover_bench::tasks::{join_error, start_trio, Killing};
use redis_failover_bench::time::jitter;
use redis_failover_bench::znodes::{arm_topology_watch, watch_for_new_master};
use redis_failover_client::NodeAddr;
use redis_failover_manager::probe::POLL_INTERVAL;
use redis_failover_manager::Cli;
use redis_failover_tests::manager::{self as harness, Manager};
use redis_failover_tests::stats::ms;
use redis_failover_tests::stats::Stats;
use redis_failover_tests::unix_ms;
use redis_failover_tests::{connect_async, unique_root, RedisGroup};
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

/// What a run works with.
struct Settings {
    opts: Opts,
    deadline: Duration,
    zk_connect: String,
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

fn main() -> ExitCode {
    let opts = Opts::parse();
    Scaffold::new("failover_bench")
        .zookeeper()
        .manager_runtime()
        .run(|env| {
            let settings = Settings {
                deadline: Duration::from_secs(opts.timeout_secs),
                zk_connect: env.zk().connect_string(),
                manager_rt: env.manager_handle(),
                opts,
            };
            env.block_on(bench(&settings))
        })
}

/// Runs every scenario and prints the lines, summaries and Markdown table. True when no run
/// failed.
async fn bench(s: &Settings) -> bool {
    let scenarios = s.opts.scenario.scenarios();
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
    let group = start_trio().await?;
    let root = unique_root(&format!("bench_{scenario}_{run}"));
    let addrs: Vec<String> = group.addrs();
    let opts = &s.opts;
    let config = harness::config(&s.zk_connect, &addrs, &root, |c: &mut Cli| {
        c.max_failures = Some(opts.max_failures);
        c.down_after_ms = Some(opts.down_after_ms);
        c.manager_name = Some(format!("bench-{scenario}-{run}"));
    });
    let manager = inprocess::start(&s.manager_rt, config);

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
    let trio = Trio::of(group);
    let (master, survivors) = (trio.master.clone(), trio.replicas.clone());

    // 1. The manager has discovered the trio and published it.
    inprocess::wait_published(zk, root, &trio, manager, s.deadline).await?;
    tokio::time::sleep(Duration::from_millis(s.opts.settle_ms) + jitter(s.opts.jitter_ms)).await;

    // 2. Arm the watch and open the write connections before the signal.
    let path = format!("{root}/nodes");
    let (_, watcher) = arm_topology_watch(zk, &path).await?;
    let mut conns = Vec::new();
    for addr in &survivors {
        conns.push(connect_async(addr, PREOPEN_TIMEOUT).await.map_err(|e| {
            format!("cannot open the write connection to {addr} before the signal: {e}")
        })?);
    }

    // 3. Signal.
    let t0 = Instant::now();
    let t0_wall_ms = unix_ms();
    let killer = match scenario {
        Scenario::Crash => Some(Killing::start(group, 0)),
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
        k.done().await?;
    }

    let (seen_at, topo) = match a {
        Err(_) => {
            let now = harness::read_topology(zk, root).await;
            return Err(format!(
                "(a) timed out: no topology with a master other than {master} within {:?} of the `{}`; {path} holds {now:?}{}",
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
                "(b) timed out: no surviving node accepted `SET {BENCH_KEY}` within {:?} of the `{}`, although {path} names {winner} as master since {:.1} ms",
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
                    "{winner} (epoch {}) was published {:.1} ms after the `{}`, but {} ms later {path} holds {now:?}",
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
            conn = connect_async(&addr, SET_TIMEOUT).await.ok();
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
