//! `ha_bench`: how long does the group go without a working leader when the leading
//! `redis_node_manager` is killed, and how long do writers pause during a planned switchover?
//! Real processes: one throwaway ZooKeeper for the whole bench, a fresh redis trio (master +
//! 2 replicas) and a fresh znode root per run.
//!
//! 1. `takeover`: three `redis_node_manager` PROCESSES (the release binary next to this one)
//!    watch the trio with `--zk-session-timeout-ms <--session-ms>`. Once `<root>/nodes` names
//!    the trio and three children exist under `<root>/master_redis_node_manager_lock` (data:
//!    the manager id, `<hostname>-<name>`; the lowest sequence suffix leads), the leading
//!    manager's process is killed with SIGKILL, and the bench measures kill -> the lowest lock
//!    child belongs to another manager (a ZooKeeper child watch; timed when the read that shows
//!    it returns). A killed process cannot close its session, so its lock node lives until
//!    ZooKeeper expires the session: the figure is bounded below by about the session timeout
//!    (less the time since the session's last heartbeat), and ZooKeeper checks expiries on
//!    tick boundaries (tickTime 500 ms in the harness). Then, as a check that the new leader
//!    acts, the redis master is killed (`kill -9`) and the bench measures kill -> a new master
//!    published in `<root>/nodes` (data watch), and counts the failovers (the epoch delta a
//!    little later; it must be 1).
//! 2. `switchover`: a manager in this process, a `redis_failover_client::Client`, and one
//!    writer task sending `SET seq:N N` back to back through the client and recording the
//!    instant each one is acknowledged. After --write-ms of writing, `client.manual_failover`
//!    asks for a switchover to a replica; once the client's topology names that replica, the
//!    writer goes on for another --write-ms. Measured: the longest gap between two consecutive
//!    acknowledged writes (the write pause), the errors the writer saw, and the acknowledged
//!    writes missing on the new master afterwards (lost; must be 0).
//!
//! Every wait has a deadline; every process is killed by a Drop guard. Logging is quiet
//! (`warn`) unless `RUST_LOG` says otherwise; the manager processes get `RUST_LOG=warn` and
//! log to files in the run's temp dir (their tails are printed when a run fails).

use redis_failover_bench::{
    finish_run, fmt_stats, init_logging, join_error, manager_bin, ms, node_addr, open,
    random_below, watch_for_new_master, Stats, ZK_READ_TIMEOUT,
};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use redis::AsyncCommands;
use redis_failover_client::{Client, NodeAddr, Topology, ZnodePaths};
use redis_failover_manager::Cli;
use redis_failover_tests::manager::{self as harness, Manager};
use redis_failover_tests::{
    log_tail, spawn_guarded, unique_root, zk_four_letter, GuardedChild, RedisGroup, ZkServer,
};
use tokio::runtime::Handle;
use zookeeper_client as zk;

/// Bound on one ZooKeeper read of the bench itself.
/// Poll interval of the set-up waits.
const SETUP_POLL: Duration = Duration::from_millis(10);
/// Names of the three manager processes (`--manager-name`).
const MANAGER_NAMES: [&str; 3] = ["m1", "m2", "m3"];
/// Keys per `MGET` of the loss check.
const CHECK_BATCH: usize = 1000;

/// Measures leader takeover after `kill -9` of the leading redis_node_manager process and the
/// write pause of a planned switchover, with real ZooKeeper and redis-server processes.
#[derive(Parser, Debug)]
#[command(name = "ha_bench", version, long_about = None)]
struct Opts {
    /// Runs per scenario.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,

    /// Which scenario(s) to run.
    #[arg(long, value_enum, default_value_t = ScenarioArg::Both)]
    scenario: ScenarioArg,

    /// The managers' --zk-session-timeout-ms in the takeover scenario (the harness's ZooKeeper
    /// grants 1000..=60000).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1000..=60_000))]
    session_ms: u64,

    /// The redis_node_manager binary [default: next to this executable].
    #[arg(long, value_name = "PATH")]
    manager_bin: Option<PathBuf>,

    /// Deadline of every wait of a run, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_secs: u64,

    /// Takeover: how long to let the three managers run once the lock has its three children,
    /// before the leader is killed, in ms.
    #[arg(long, default_value_t = 500)]
    settle_ms: u64,

    /// Takeover: a random extra delay, uniform in [0, this), added to --settle-ms, so that the
    /// kill falls at a random point of ZooKeeper's 500 ms expiry tick.
    #[arg(long, default_value_t = 500)]
    jitter_ms: u64,

    /// Takeover: after the new master is published, wait this long before reading the epoch
    /// again to count the failovers, in ms.
    #[arg(long, default_value_t = 1000)]
    linger_ms: u64,

    /// Switchover: how long to write before the request, and again after the client sees the
    /// new master, in ms.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    write_ms: u64,

    /// Switchover: a random extra delay, uniform in [0, this), added to the writing before the
    /// request, so that the request falls at a random point of the replicas' 1 s
    /// `REPLCONF ACK` cycle (0: the request comes at the same point of each run's timeline).
    #[arg(long, default_value_t = 0)]
    switch_jitter_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ScenarioArg {
    Takeover,
    Switchover,
    Both,
}

struct Settings {
    opts: Opts,
    deadline: Duration,
    zk_connect: String,
    zk_port: u16,
    manager_bin: Option<PathBuf>,
    manager_rt: Handle,
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    init_logging();

    let manager_bin = if opts.scenario == ScenarioArg::Switchover {
        None
    } else {
        match manager_bin(opts.manager_bin.as_deref(), "ha_bench") {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    };

    let build_rt = |name: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name(name)
            .enable_all()
            .build()
    };
    let bench_rt = match build_rt("bench") {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ha_bench: cannot start the bench's tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The in-process manager of the switchover gets a runtime of its own, as if it were its
    // own process.
    let manager_rt = match build_rt("manager") {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ha_bench: cannot start the manager's tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };

    eprintln!("ha_bench: starting ZooKeeper ...");
    let zk_server = ZkServer::start();
    let settings = Settings {
        deadline: Duration::from_secs(opts.timeout_secs),
        zk_connect: zk_server.connect_string(),
        zk_port: zk_server.port(),
        manager_bin,
        manager_rt: manager_rt.handle().clone(),
        opts,
    };
    let all_ok = bench_rt.block_on(bench(&settings));
    drop(bench_rt);
    drop(manager_rt);
    drop(zk_server);
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn bench(s: &Settings) -> bool {
    let o = &s.opts;
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let zk = harness::zk_client(&s.zk_connect).await;
    let (do_takeover, do_switchover) = (
        o.scenario != ScenarioArg::Switchover,
        o.scenario != ScenarioArg::Takeover,
    );
    println!(
        "ha_bench: {} run(s) per scenario, nproc {nproc}, deadline {} s per wait; ZooKeeper 3.8 \
         standalone (tickTime 500 ms) and redis-server on loopback, fresh trio and root per run",
        o.runs, o.timeout_secs
    );

    let mut ok = true;
    let mut takeovers: Vec<Result<TakeoverOk, String>> = Vec::new();
    let mut switchovers: Vec<Result<SwitchoverOk, String>> = Vec::new();
    if do_takeover {
        println!();
        println!(
            "1. takeover: 3 redis_node_manager processes ({}), --zk-session-timeout-ms {} (--session-ms), RUST_LOG=warn",
            s.manager_bin
                .as_ref()
                .map_or(String::new(), |b| b.display().to_string()),
            o.session_ms
        );
        println!(
            "   the leader is killed {} ms + random [0, {}) ms after the lock has 3 children and <root>/nodes names the trio;",
            o.settle_ms, o.jitter_ms
        );
        println!(
            "   takeover = SIGKILL -> lowest child of <root>/master_redis_node_manager_lock owned by another manager (child watch);"
        );
        println!(
            "   then master kill = `kill -9` of the redis master -> <root>/nodes names another master (data watch); \
             failovers = epoch delta {} ms later (must be 1)",
            o.linger_ms
        );
        for run in 1..=o.runs {
            let r = takeover_run(s, &zk, run).await;
            match &r {
                Ok(t) => {
                    let check = t.check_failure();
                    ok &= check.is_none();
                    println!(
                        "takeover   run {run:>2}: takeover {:>8.1} ms ({} -> {}; session to={})  master kill -> new master {:>7.1} ms ({} by {}; epoch {} -> {}, failovers {}){}",
                        ms(t.takeover),
                        t.old_leader,
                        t.new_leader,
                        t.negotiated_timeout
                            .map_or("?".to_string(), |v| format!("{v} ms")),
                        ms(t.master_failover),
                        t.new_master,
                        t.published_by.as_deref().unwrap_or("?"),
                        t.epoch_before,
                        t.epoch_after,
                        t.failovers(),
                        check.map_or(String::new(), |c| format!("  CHECK FAILED: {c}"))
                    );
                }
                Err(e) => {
                    ok = false;
                    println!("takeover   run {run:>2}: FAILED: {e}");
                }
            }
            takeovers.push(r);
        }
    }
    if do_switchover {
        println!();
        println!(
            "2. switchover: in-process manager, Client (defaults: 2 s command timeout, 3 retries, 100 ms backoff), \
             one writer sending `SET seq:N N` back to back;"
        );
        println!(
            "   {} ms{} of writes, then client.manual_failover(Some(replica)), wait until the client's topology names it, {} ms more;",
            o.write_ms,
            if o.switch_jitter_ms > 0 {
                format!(" + random [0, {}) ms", o.switch_jitter_ms)
            } else {
                String::new()
            },
            o.write_ms
        );
        println!(
            "   pause = longest gap between consecutive acknowledged writes; lost = acknowledged keys missing on the new master"
        );
        for run in 1..=o.runs {
            let r = switchover_run(s, &zk, run).await;
            match &r {
                Ok(w) => {
                    ok &= w.lost == 0;
                    println!(
                        "switchover run {run:>2}: pause {:>7.1} ms (request {:+.1} .. {:+.1} ms)  request -> client sees {} {:>6.1} ms (epoch {})  acked {} ({:.0}/s before, typical gap {:.3} ms)  errors {}  lost {}{}",
                        ms(w.pause),
                        w.pause_from_ms,
                        w.pause_to_ms,
                        w.new_master,
                        ms(w.request_to_topology),
                        w.epoch,
                        w.acked,
                        w.rate_before,
                        ms(w.median_gap),
                        w.errors,
                        w.lost,
                        w.first_error
                            .as_ref()
                            .map_or(String::new(), |e| format!("  (first error: {e})"))
                    );
                }
                Err(e) => {
                    ok = false;
                    println!("switchover run {run:>2}: FAILED: {e}");
                }
            }
            switchovers.push(r);
        }
    }

    // Summary and Markdown.
    println!();
    println!(
        "Summary (min / median / max; runs {}, nproc {nproc}):",
        o.runs
    );
    let mut rows = Vec::new();
    if do_takeover {
        let good: Vec<&TakeoverOk> = takeovers.iter().filter_map(|r| r.as_ref().ok()).collect();
        let take = Stats::of(good.iter().map(|t| t.takeover));
        let fail = Stats::of(good.iter().map(|t| t.master_failover));
        let one = good.iter().filter(|t| t.failovers() == 1).count();
        let passed = good.iter().filter(|t| t.check_failure().is_none()).count();
        println!(
            "  takeover   {}/{} ok ({} with every check passed), --session-ms {}",
            good.len(),
            takeovers.len(),
            passed,
            o.session_ms
        );
        println!(
            "    leader SIGKILL -> another manager holds the lock: {}  (bounded below by about the {} ms session timeout, counted from the leader's last heartbeat and rounded up to ZooKeeper's 500 ms expiry tick)",
            fmt_stats(&take),
            o.session_ms
        );
        println!(
            "    redis master kill -9 -> new master published:    {}  (exactly 1 failover in {}/{} runs)",
            fmt_stats(&fail),
            one,
            good.len()
        );
        rows.push(format!(
            "| leader takeover after `kill -9` of the leading manager (`--zk-session-timeout-ms {}`) | {}/{} | SIGKILL → lowest lock child owned by another manager | {} | bounded below by ≈ the session timeout (from the last heartbeat, + up to one 500 ms ZooKeeper tick) |",
            o.session_ms,
            good.len(),
            takeovers.len(),
            fmt_stats(&take)
        ));
        rows.push(format!(
            "| … then `kill -9` of the redis master, handled by the new leader | {}/{} | kill → new master in ZooKeeper | {} | exactly 1 failover (epoch +1) in {}/{} runs |",
            good.len(),
            takeovers.len(),
            fmt_stats(&fail),
            one,
            good.len()
        ));
    }
    if do_switchover {
        let good: Vec<&SwitchoverOk> = switchovers.iter().filter_map(|r| r.as_ref().ok()).collect();
        let pause = Stats::of(good.iter().map(|w| w.pause));
        let seen = Stats::of(good.iter().map(|w| w.request_to_topology));
        let errors: u64 = good.iter().map(|w| w.errors).sum();
        let lost: usize = good.iter().map(|w| w.lost).sum();
        let acked: usize = good.iter().map(|w| w.acked).sum();
        println!("  switchover {}/{} ok", good.len(), switchovers.len());
        println!(
            "    write pause (longest gap between acks):      {}",
            fmt_stats(&pause)
        );
        println!(
            "    request -> client's topology names replica:  {}",
            fmt_stats(&seen)
        );
        println!(
            "    errors surfaced to the writer: {errors} in total; acknowledged writes lost: {lost} of {acked}"
        );
        rows.push(format!(
            "| switchover (`client.manual_failover(Some(replica))`) under a back-to-back writer | {}/{} | write pause: longest gap between acknowledged writes | {} | errors {errors}, lost {lost} of {acked} acknowledged |",
            good.len(),
            switchovers.len(),
            fmt_stats(&pause)
        ));
    }
    println!();
    println!("Markdown:");
    println!();
    println!("| scenario | runs ok | measured | min / median / max | checks |");
    println!("|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    println!();
    println!(
        "Settings: {} runs per scenario, nproc {nproc}; ZooKeeper 3.8 standalone (tickTime 500 ms) and redis-server 7 on loopback; \
         takeover: 3 manager processes, `--zk-session-timeout-ms {}`, the lock handover seen through a child watch; \
         switchover: in-process manager, `redis_failover_client::Client` with default options, {} ms{} of writes before the request, {} ms after the switch.",
        o.runs,
        o.session_ms,
        o.write_ms,
        if o.switch_jitter_ms > 0 {
            format!(" + random [0, {}) ms", o.switch_jitter_ms)
        } else {
            String::new()
        },
        o.write_ms
    );
    ok
}

// ---------------------------------------------------------------------------------------------
// 1. Leader takeover
// ---------------------------------------------------------------------------------------------

struct TakeoverOk {
    takeover: Duration,
    old_leader: String,
    new_leader: String,
    /// The leader's session timeout as ZooKeeper granted it (`cons`, `to=`).
    negotiated_timeout: Option<u64>,
    master_failover: Duration,
    new_master: NodeAddr,
    /// `manager` field of the topology that named the new master.
    published_by: Option<String>,
    new_leader_id: String,
    epoch_before: u64,
    epoch_after: u64,
}

impl TakeoverOk {
    fn failovers(&self) -> i128 {
        i128::from(self.epoch_after) - i128::from(self.epoch_before)
    }

    fn check_failure(&self) -> Option<String> {
        let mut bad = Vec::new();
        if self.failovers() != 1 {
            bad.push(format!("{} failovers, expected 1", self.failovers()));
        }
        if self.published_by.as_deref() != Some(self.new_leader_id.as_str()) {
            bad.push(format!(
                "the new master was published by {:?}, not by the new leader {}",
                self.published_by, self.new_leader_id
            ));
        }
        (!bad.is_empty()).then(|| bad.join("; "))
    }
}

/// The three manager processes of a run, with their log files.
struct Managers {
    procs: Vec<(String, Arc<GuardedChild>, PathBuf)>,
}

impl Managers {
    fn start(bin: &Path, s: &Settings, group: &RedisGroup, root: &str) -> Result<Managers, String> {
        let mut procs = Vec::new();
        for name in MANAGER_NAMES {
            let log = group.dir().join(format!("manager-{name}.log"));
            let file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
            let file2 = file
                .try_clone()
                .map_err(|e| format!("{}: {e}", log.display()))?;
            let args: Vec<String> = vec![
                "-z".into(),
                s.zk_connect.clone(),
                "-n".into(),
                group.addrs().join(","),
                "--znode-path".into(),
                root.to_string(),
                "--manager-name".into(),
                name.to_string(),
                "--zk-session-timeout-ms".into(),
                s.opts.session_ms.to_string(),
            ];
            let bin = bin.to_path_buf();
            let child = spawn_guarded(move || {
                let mut cmd = Command::new(bin);
                cmd.args(&args)
                    .env("RUST_LOG", "warn")
                    .stdin(Stdio::null())
                    .stdout(file)
                    .stderr(file2);
                cmd
            })
            .map_err(|e| format!("cannot start redis_node_manager {name}: {e}"))?;
            procs.push((name.to_string(), Arc::new(child), log));
        }
        Ok(Managers { procs })
    }

    /// The process whose `--manager-name` gives the id `id` (`<hostname>-<name>`).
    fn by_id(&self, id: &str) -> Option<&(String, Arc<GuardedChild>, PathBuf)> {
        let exact = hostname().map(|h| {
            self.procs
                .iter()
                .find(|(name, _, _)| id == format!("{h}-{name}"))
        });
        match exact {
            Some(Some(p)) => Some(p),
            _ => self
                .procs
                .iter()
                .find(|(name, _, _)| id.ends_with(&format!("-{name}"))),
        }
    }

    fn exited(&self) -> Option<String> {
        self.procs.iter().find_map(|(name, p, _)| {
            p.exit_status()
                .map(|st| format!("redis_node_manager {name} exited ({st})"))
        })
    }

    fn tails(&self) -> String {
        self.procs
            .iter()
            .map(|(name, _, log)| format!("\n--- tail of {name}'s log:\n{}", log_tail(log, 15)))
            .collect()
    }
}

/// The manager's own hostname rule (`/proc/sys/kernel/hostname`).
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// One child of the lock directory.
#[derive(Clone, Debug)]
struct Holder {
    seq: u64,
    child: String,
    id: String,
    session: i64,
}

/// The sequence number at the end of a lock child's name.
fn seq_of(child: &str) -> Option<u64> {
    let digits = child.len() - child.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    child[child.len() - digits..].parse().ok()
}

/// Every child of the lock directory with its data (the manager id), lowest sequence first.
async fn lock_holders(zk: &zk::Client, dir: &str) -> Result<Vec<Holder>, String> {
    let children = match tokio::time::timeout(ZK_READ_TIMEOUT, zk.list_children(dir)).await {
        Err(_) => return Err(format!("listing {dir} timed out")),
        Ok(Err(zk::Error::NoNode)) => return Ok(Vec::new()),
        Ok(Err(e)) => return Err(format!("listing {dir}: {e}")),
        Ok(Ok(c)) => c,
    };
    let mut out = Vec::new();
    for child in children {
        let Some(seq) = seq_of(&child) else { continue };
        if let Some((id, session)) = holder_of(zk, dir, &child).await? {
            out.push(Holder {
                seq,
                child,
                id,
                session,
            });
        }
    }
    out.sort_by_key(|h| h.seq);
    Ok(out)
}

/// The data (manager id) and owner session of one lock child; `None` when it is gone.
async fn holder_of(
    zk: &zk::Client,
    dir: &str,
    child: &str,
) -> Result<Option<(String, i64)>, String> {
    let path = format!("{dir}/{child}");
    match tokio::time::timeout(ZK_READ_TIMEOUT, zk.get_data(&path)).await {
        Err(_) => Err(format!("reading {path} timed out")),
        Ok(Err(zk::Error::NoNode)) => Ok(None),
        Ok(Err(e)) => Err(format!("reading {path}: {e}")),
        Ok(Ok((data, stat))) => Ok(Some((
            String::from_utf8_lossy(&data).into_owned(),
            stat.ephemeral_owner,
        ))),
    }
}

/// The session timeout ZooKeeper granted to session `sid` (`cons`: `sid=0x..,...,to=N`).
async fn negotiated_timeout(zk_port: u16, sid: i64) -> Option<u64> {
    let cons = tokio::task::spawn_blocking(move || zk_four_letter(zk_port, "cons"))
        .await
        .ok()??;
    let needle = format!("sid=0x{:x},", sid as u64);
    let line = cons.lines().find(|l| l.contains(&needle))?;
    let to = line
        .split(['(', ',', ')'])
        .find_map(|f| f.strip_prefix("to="))?;
    to.parse().ok()
}

async fn takeover_run(s: &Settings, zk: &zk::Client, run: u32) -> Result<TakeoverOk, String> {
    let Some(bin) = s.manager_bin.as_deref() else {
        return Err("no redis_node_manager binary".to_string());
    };
    let group = tokio::task::spawn_blocking(RedisGroup::trio)
        .await
        .map_err(|e| format!("the redis trio did not start: {}", join_error(e)))?;
    let group = Arc::new(group);
    let root = unique_root(&format!("ha_takeover_{run}"));
    let managers = Managers::start(bin, s, &group, &root);
    let measured = match &managers {
        Ok(m) => measure_takeover(s, zk, &group, &root, m)
            .await
            .map_err(|e| format!("{e}{}", m.tails())),
        Err(e) => Err(e.clone()),
    };
    // Kill and reap off the runtime's workers: managers first, then the trio.
    let cleanup = tokio::task::spawn_blocking(move || {
        drop(managers);
        drop(group);
    })
    .await;
    if let Err(e) = cleanup {
        eprintln!(
            "ha_bench: cleaning up takeover run {run} failed: {}",
            join_error(e)
        );
    }
    measured
}

async fn measure_takeover(
    s: &Settings,
    zk: &zk::Client,
    group: &Arc<RedisGroup>,
    root: &str,
    managers: &Managers,
) -> Result<TakeoverOk, String> {
    let paths = ZnodePaths::new(root).map_err(|e| format!("root {root}: {e}"))?;
    let lock_dir = paths.lock();
    let master = node_addr(group.node(0).port());
    let replicas: Vec<NodeAddr> = group.nodes()[1..]
        .iter()
        .map(|n| node_addr(n.port()))
        .collect();

    // 1. The trio is published and every manager contends for the lock.
    let setup_deadline = Instant::now() + s.deadline;
    loop {
        let topo = harness::read_topology(zk, root).await;
        let published = topo.as_ref().is_some_and(|t| {
            t.master.as_ref() == Some(&master) && replicas.iter().all(|r| t.slaves.contains(r))
        });
        let holders = lock_holders(zk, &lock_dir).await?;
        if published && holders.len() == MANAGER_NAMES.len() {
            break;
        }
        if let Some(e) = managers.exited() {
            return Err(e);
        }
        if Instant::now() >= setup_deadline {
            return Err(format!(
                "timed out after {:?} waiting for <root>/nodes to name master {master} with its replicas \
                 (holds {topo:?}) and for {} lock children (found {})",
                s.deadline,
                MANAGER_NAMES.len(),
                holders.len()
            ));
        }
        tokio::time::sleep(SETUP_POLL).await;
    }
    let jitter = random_below(s.opts.jitter_ms);
    tokio::time::sleep(Duration::from_millis(s.opts.settle_ms + jitter)).await;
    if let Some(e) = managers.exited() {
        return Err(e);
    }

    // 2. Who leads, and its process.
    let holders = lock_holders(zk, &lock_dir).await?;
    let leader = holders
        .first()
        .cloned()
        .ok_or_else(|| format!("{lock_dir} has no children"))?;
    if holders.len() != MANAGER_NAMES.len() {
        return Err(format!(
            "{lock_dir} has {} children after settling: {holders:?}",
            holders.len()
        ));
    }
    let (old_leader, leader_proc, _) = managers.by_id(&leader.id).ok_or_else(|| {
        format!(
            "no manager process has the id {:?} of the lowest lock child",
            leader.id
        )
    })?;
    let negotiated = negotiated_timeout(s.zk_port, leader.session).await;

    // 3. Arm the child watch, kill the leader, follow the lock.
    let (_, _, mut watcher) =
        tokio::time::timeout(ZK_READ_TIMEOUT, zk.get_and_watch_children(&lock_dir))
            .await
            .map_err(|_| format!("watching {lock_dir} timed out"))?
            .map_err(|e| format!("watching {lock_dir}: {e}"))?;
    let victim = Arc::clone(leader_proc);
    let t0 = Instant::now();
    let killer = tokio::task::spawn_blocking(move || victim.kill());
    let deadline = tokio::time::Instant::from_std(t0 + s.deadline);
    let (seen_at, new_holder) = loop {
        let changed = tokio::time::timeout_at(deadline, watcher.changed()).await;
        if changed.is_err() {
            let now = lock_holders(zk, &lock_dir).await;
            return Err(format!(
                "no other manager held the lock within {:?} of the SIGKILL of {old_leader} ({}); children now: {now:?}",
                s.deadline, leader.id
            ));
        }
        let (children, _, next) =
            tokio::time::timeout(ZK_READ_TIMEOUT, zk.get_and_watch_children(&lock_dir))
                .await
                .map_err(|_| format!("watching {lock_dir} timed out"))?
                .map_err(|e| format!("watching {lock_dir}: {e}"))?;
        let at = Instant::now();
        watcher = next;
        let lowest = children
            .iter()
            .filter_map(|c| seq_of(c).map(|q| (q, c)))
            .min();
        if let Some((seq, child)) = lowest {
            if *child != leader.child {
                if let Some((id, session)) = holder_of(zk, &lock_dir, child).await? {
                    if id != leader.id {
                        break (
                            at,
                            Holder {
                                seq,
                                child: child.clone(),
                                id,
                                session,
                            },
                        );
                    }
                }
            }
        }
    };
    let takeover = seen_at.duration_since(t0);
    let reaped = killer
        .await
        .map_err(|e| format!("SIGKILL of {old_leader}: {}", join_error(e)))?;
    if !reaped {
        return Err(format!("{old_leader} survived SIGKILL"));
    }
    let new_leader = managers
        .by_id(&new_holder.id)
        .map_or_else(|| new_holder.id.clone(), |(n, _, _)| n.clone());

    // 4. The new leader acts: kill -9 the redis master, wait for a new master in ZooKeeper.
    let nodes_path = paths.nodes();
    let (data, _, watcher) =
        tokio::time::timeout(ZK_READ_TIMEOUT, zk.get_and_watch_data(&nodes_path))
            .await
            .map_err(|_| format!("reading {nodes_path} timed out"))?
            .map_err(|e| format!("reading {nodes_path}: {e}"))?;
    let before = Topology::from_json(&data).map_err(|e| format!("{nodes_path}: {e}"))?;
    if before.master.as_ref() != Some(&master) {
        return Err(format!(
            "after the takeover {nodes_path} names master {:?}, expected {master}",
            before.master
        ));
    }
    let g = Arc::clone(group);
    let t1 = Instant::now();
    let redis_killer = tokio::task::spawn_blocking(move || g.node(0).kill9());
    let deadline = tokio::time::Instant::from_std(t1 + s.deadline);
    let found = tokio::time::timeout_at(
        deadline,
        watch_for_new_master(zk, &nodes_path, &master, watcher),
    )
    .await;
    redis_killer
        .await
        .map_err(|e| format!("kill -9 of the redis master: {}", join_error(e)))?;
    let (published_at, topo) = match found {
        Err(_) => {
            let now = harness::read_topology(zk, root).await;
            return Err(format!(
                "the new leader {new_leader} published no new master within {:?} of the `kill -9` of {master}; {nodes_path} holds {now:?}",
                s.deadline
            ));
        }
        Ok(Err(e)) => return Err(e),
        Ok(Ok(found)) => found,
    };
    let new_master = topo
        .master
        .clone()
        .ok_or_else(|| "the new topology has no master".to_string())?;
    tokio::time::sleep(Duration::from_millis(s.opts.linger_ms)).await;
    let after = harness::read_topology(zk, root)
        .await
        .ok_or_else(|| format!("{nodes_path} unreadable after lingering"))?;
    if after.master.as_ref() != Some(&new_master) {
        return Err(format!(
            "{new_master} was published {:.1} ms after the kill, but {} ms later {nodes_path} holds {after:?}",
            ms(published_at.duration_since(t1)),
            s.opts.linger_ms
        ));
    }
    Ok(TakeoverOk {
        takeover,
        old_leader: old_leader.clone(),
        new_leader,
        negotiated_timeout: negotiated,
        master_failover: published_at.duration_since(t1),
        new_master,
        published_by: topo.manager.clone(),
        new_leader_id: new_holder.id,
        epoch_before: before.epoch,
        epoch_after: after.epoch,
    })
}

// ---------------------------------------------------------------------------------------------
// 2. Switchover write pause
// ---------------------------------------------------------------------------------------------

struct SwitchoverOk {
    pause: Duration,
    /// Start and end of the longest gap, relative to the request, in ms.
    pause_from_ms: f64,
    pause_to_ms: f64,
    request_to_topology: Duration,
    new_master: NodeAddr,
    epoch: u64,
    acked: usize,
    /// Acknowledged writes per second before the request.
    rate_before: f64,
    median_gap: Duration,
    errors: u64,
    first_error: Option<String>,
    lost: usize,
}

#[derive(Default)]
struct WriterOut {
    /// (n, when `SET seq:n n` was acknowledged), in order.
    acks: Vec<(u64, Instant)>,
    errors: u64,
    first_error: Option<String>,
    timed_out: bool,
}

/// `SET seq:N N` back to back through `client` until `stop` (or `deadline`).
async fn writer(
    mut client: Client,
    stop: Arc<AtomicBool>,
    deadline: tokio::time::Instant,
) -> WriterOut {
    let mut out = WriterOut::default();
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("seq:{n}");
        let r = tokio::time::timeout_at(deadline, client.set::<_, _, ()>(&key, n)).await;
        let now = Instant::now();
        match r {
            Err(_) => {
                out.timed_out = true;
                break;
            }
            Ok(Ok(())) => out.acks.push((n, now)),
            Ok(Err(e)) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    out
}

async fn switchover_run(s: &Settings, zk: &zk::Client, run: u32) -> Result<SwitchoverOk, String> {
    let group = tokio::task::spawn_blocking(RedisGroup::trio)
        .await
        .map_err(|e| format!("the redis trio did not start: {}", join_error(e)))?;
    let group = Arc::new(group);
    let root = unique_root(&format!("ha_switchover_{run}"));
    let config = harness::config(&s.zk_connect, &group.addrs(), &root, |c: &mut Cli| {
        c.manager_name = Some(format!("ha-switchover-{run}"));
    });
    let manager = {
        let _on_manager_rt = s.manager_rt.enter();
        Manager::start(config)
    };

    let measured = measure_switchover(s, zk, &group, &root, &manager).await;

    finish_run(manager, group, measured, &format!("switchover run {run}")).await
}

async fn measure_switchover(
    s: &Settings,
    zk: &zk::Client,
    group: &Arc<RedisGroup>,
    root: &str,
    manager: &Manager,
) -> Result<SwitchoverOk, String> {
    let master = node_addr(group.node(0).port());
    let replicas: Vec<NodeAddr> = group.nodes()[1..]
        .iter()
        .map(|n| node_addr(n.port()))
        .collect();
    let target = replicas[0].clone();
    let full = |t: &Topology| {
        t.master.as_ref() == Some(&master) && replicas.iter().all(|r| t.slaves.contains(r))
    };

    // 1. The manager publishes the trio; a client follows it.
    let setup_deadline = Instant::now() + s.deadline;
    loop {
        let topo = harness::read_topology(zk, root).await;
        if topo.as_ref().is_some_and(full) {
            break;
        }
        if manager.is_finished() {
            return Err(
                "the manager ended before publishing the trio (RUST_LOG=info shows why)".into(),
            );
        }
        if Instant::now() >= setup_deadline {
            return Err(format!(
                "timed out after {:?} waiting for the manager to publish master {master} with its replicas; <root>/nodes holds {topo:?}",
                s.deadline
            ));
        }
        tokio::time::sleep(SETUP_POLL).await;
    }
    let client = tokio::time::timeout(
        s.deadline,
        Client::builder(&s.zk_connect).znode_path(root).connect(),
    )
    .await
    .map_err(|_| "Client::connect timed out".to_string())?
    .map_err(|e| format!("Client::connect: {e}"))?;
    let mut topo_rx = client.subscribe();
    if !full(&topo_rx.borrow_and_update().topology) {
        return Err(format!(
            "the client reads {:?}, expected master {master} with its replicas",
            client.topology().topology
        ));
    }

    // 2. Write, request the switchover, wait for it, write on.
    let stop = Arc::new(AtomicBool::new(false));
    let jitter = random_below(s.opts.switch_jitter_ms);
    let hard_deadline = tokio::time::Instant::now()
        + s.deadline
        + Duration::from_millis(2 * s.opts.write_ms + jitter);
    let t_start = Instant::now();
    let mut writer_task = tokio::spawn(writer(client.clone(), Arc::clone(&stop), hard_deadline));
    tokio::time::sleep(Duration::from_millis(s.opts.write_ms + jitter)).await;
    let t_req = Instant::now();
    let requested = client.manual_failover(Some(&target)).await;
    let switched = match requested {
        Err(e) => Err(format!("client.manual_failover: {e}")),
        Ok(()) => {
            let deadline = tokio::time::Instant::from_std(t_req + s.deadline);
            loop {
                if topo_rx.borrow_and_update().topology.master.as_ref() == Some(&target) {
                    break Ok(Instant::now());
                }
                match tokio::time::timeout_at(deadline, topo_rx.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break Err("the client's topology channel closed".to_string()),
                    Err(_) => {
                        break Err(format!(
                            "the client's topology did not name {target} as master within {:?} of the request; it holds {:?}; <root>/nodes holds {:?}",
                            s.deadline,
                            client.topology().topology,
                            harness::read_topology(zk, root).await
                        ))
                    }
                }
            }
        }
    };
    if switched.is_ok() {
        tokio::time::sleep(Duration::from_millis(s.opts.write_ms)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let out = match tokio::time::timeout_at(hard_deadline, &mut writer_task).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(format!("the writer failed: {}", join_error(e))),
        Err(_) => {
            writer_task.abort();
            return Err("the writer did not stop in time".to_string());
        }
    };
    let t_topo = switched?;
    if out.timed_out {
        return Err("a write was still unanswered at the run's deadline".to_string());
    }
    let topo = client.topology().topology;
    drop(topo_rx);
    drop(client);

    // 3. The figures.
    let acks = &out.acks;
    if acks.len() < 2 {
        return Err(format!("only {} write(s) acknowledged", acks.len()));
    }
    let mut gaps: Vec<(Duration, Instant, Instant)> = acks
        .windows(2)
        .map(|w| (w[1].1.duration_since(w[0].1), w[0].1, w[1].1))
        .collect();
    let (pause, from, to) = gaps
        .iter()
        .copied()
        .max_by_key(|g| g.0)
        .ok_or_else(|| "no gap".to_string())?;
    gaps.sort_by_key(|g| g.0);
    let median_gap = gaps[gaps.len() / 2].0;
    let before = acks.iter().filter(|(_, at)| *at < t_req).count();
    let rel = |at: Instant| -> f64 {
        if at >= t_req {
            ms(at.duration_since(t_req))
        } else {
            -ms(t_req.duration_since(at))
        }
    };

    // 4. Every acknowledged write is on the new master.
    let mut conn = open(&target, Duration::from_secs(2), Duration::from_secs(5))
        .await
        .map_err(|e| format!("loss check: {e}"))?;
    let mut lost = 0;
    for chunk in acks.chunks(CHECK_BATCH) {
        let keys: Vec<String> = chunk.iter().map(|(n, _)| format!("seq:{n}")).collect();
        let values: Vec<Option<u64>> = tokio::time::timeout(
            Duration::from_secs(5),
            redis::cmd("MGET").arg(&keys).query_async(&mut conn),
        )
        .await
        .map_err(|_| format!("loss check: MGET on {target} timed out"))?
        .map_err(|e| format!("loss check: MGET on {target}: {e}"))?;
        lost += chunk
            .iter()
            .zip(&values)
            .filter(|((n, _), v)| **v != Some(*n))
            .count();
    }

    Ok(SwitchoverOk {
        pause,
        pause_from_ms: rel(from),
        pause_to_ms: rel(to),
        request_to_topology: t_topo.duration_since(t_req),
        new_master: target,
        epoch: topo.epoch,
        acked: acks.len(),
        rate_before: before as f64 / t_req.duration_since(t_start).as_secs_f64(),
        median_gap,
        errors: out.errors,
        first_error: out.first_error,
        lost,
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------
