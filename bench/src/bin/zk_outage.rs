//! `zk_outage`: what a ZooKeeper outage does to a healthy group.
//!
//! A throwaway ZooKeeper, a Redis trio (master + 2 replicas), three `redis_node_manager`
//! processes (the release binary next to this one, each with `--http-addr`) and a
//! `redis_failover_client::Client` with a writer (`SET seq:N N`) and a reader (`GET` of the
//! last acknowledged key, routed to a replica) running all the time. Then:
//!
//! 1. ZooKeeper is stopped (SIGTERM) for --outage-secs (60);
//! 2. --kill-after-secs (20) into the outage the Redis master is killed (`kill -9`);
//! 3. until ZooKeeper returns, every node's `ROLE` is polled every 50 ms: no replica may
//!    become master (nobody may be promoted without ZooKeeper); the managers' logs and
//!    `GET /health` show what they did;
//! 4. ZooKeeper is started again (same data dir and port); measured: ZooKeeper back -> new
//!    master published in `<root>/nodes` -> the client's topology names it -> the first write
//!    acknowledged after ZooKeeper came back;
//! 5. checks: one failover in all, the survivors agree, the old master (restarted) rejoins as
//!    a replica, and every acknowledged write is on the new master except those acknowledged
//!    just before the `kill -9` (asynchronous replication).
//!
//! Prints a step-by-step report with timestamps (seconds since the traffic started). Exit 0
//! when every check passed. Every process is killed by pid on the way out (the harness's
//! guards), also when a step fails or panics. `tests/tests/zk_outage.rs` holds the short
//! in-process versions of the first checks.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use clap::Parser;
use redis::AsyncCommands;
use redis_failover_bench::{
    init_logging, manager_bin, ms, node_addr, open, panic_message, warn_if_stale,
};
use redis_failover_client::{Client, NodeAddr, ZnodePaths};
use redis_failover_tests::manager::{read_topology, zk_client};
use redis_failover_tests::{
    free_port, log_tail, spawn_guarded, unique_root, GuardedChild, NodeRole, RedisGroup, ZkServer,
};
use tokio::runtime::Runtime;

/// Names of the three manager processes.
const MANAGER_NAMES: [&str; 3] = ["m1", "m2", "m3"];
/// Poll interval of the ROLE checks during the outage.
const ROLE_POLL: Duration = Duration::from_millis(50);
/// Keys per `MGET` of the loss check.
const CHECK_BATCH: usize = 1000;
/// Failover actions a manager must not log while ZooKeeper is down (`+selected-replica` is
/// a decision: it is reported, and must be followed by an abort).
const ACTION_EVENTS: [&str; 5] = [
    "+promoted",
    "+switch-master",
    "+reconf-replica",
    "+publish",
    "+failover-roll-forward",
];

/// Stops ZooKeeper under a healthy group, kills the master during the outage, and checks that
/// nobody is promoted until ZooKeeper is back and that the group then fails over.
#[derive(Parser, Debug)]
#[command(name = "zk_outage", version, long_about = None)]
struct Opts {
    /// How long ZooKeeper stays down, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(2..))]
    outage_secs: u64,

    /// When the master is killed, in seconds after ZooKeeper went down (must be less than
    /// --outage-secs).
    #[arg(long, default_value_t = 20)]
    kill_after_secs: u64,

    /// Traffic before ZooKeeper is stopped, in seconds.
    #[arg(long, default_value_t = 5)]
    baseline_secs: u64,

    /// The managers' --zk-session-timeout-ms [default: the manager's own default].
    #[arg(long)]
    session_ms: Option<u64>,

    /// The redis_node_manager binary [default: next to this executable].
    #[arg(long, value_name = "PATH")]
    manager_bin: Option<PathBuf>,

    /// Deadline of every wait, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,

    /// The writer and the reader each send one command per this many ms (at most).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    op_interval_ms: u64,

    /// Where the managers' logs go [default: a new directory under the temp dir, kept].
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

/// Prints timestamped steps and collects failed checks.
struct Steps {
    t0: Instant,
    /// Seconds since midnight UTC at `t0` (to place the managers' log lines).
    t0_wall: f64,
    failures: Vec<String>,
}

/// Seconds since midnight UTC now.
fn wall_secs_of_day() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() % 86_400.0)
}

/// Seconds since midnight of a log line's `YYYY-MM-DDTHH:MM:SS.ffffffZ` timestamp.
fn line_secs_of_day(line: &str) -> Option<f64> {
    let ts = line.split_whitespace().next()?;
    let time = ts.split_once('T')?.1.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

impl Steps {
    /// A log line's time on this report's clock (seconds since `t0`).
    fn line_at(&self, line: &str) -> Option<f64> {
        let mut d = line_secs_of_day(line)? - self.t0_wall;
        if d < -43_200.0 {
            d += 86_400.0;
        }
        Some(d)
    }

    fn at(&self, t: Instant) -> String {
        if t >= self.t0 {
            format!("[{:8.3} s]", (t - self.t0).as_secs_f64())
        } else {
            format!("[{:8.3} s]", -(self.t0 - t).as_secs_f64())
        }
    }

    fn step(&self, t: Instant, what: &str) {
        println!("{} {what}", self.at(t));
    }

    fn now(&self, what: &str) {
        self.step(Instant::now(), what);
    }

    fn detail(&self, what: &str) {
        println!("             {what}");
    }

    fn check(&mut self, ok: bool, what: &str) {
        println!(
            "             check: {what}: {}",
            if ok { "ok" } else { "FAILED" }
        );
        if !ok {
            self.failures.push(what.to_string());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Traffic
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Op {
    seq: u64,
    sent: Instant,
    at: Instant,
    ok: bool,
    /// The master in the client's topology when the reply came.
    via: Option<NodeAddr>,
    error: Option<String>,
}

#[derive(Default)]
struct Traffic {
    writes: Vec<Op>,
    reads: Vec<Op>,
}

impl Traffic {
    fn last_acked(&self) -> u64 {
        self.writes.iter().rev().find(|o| o.ok).map_or(0, |o| o.seq)
    }
}

async fn writer(
    mut client: Client,
    log: Arc<Mutex<Traffic>>,
    stop: Arc<AtomicBool>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        seq += 1;
        let sent = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(15),
            client.set::<_, _, ()>(format!("seq:{seq}"), seq),
        )
        .await;
        let at = Instant::now();
        let via = client.topology().topology.master;
        let (ok, error) = match r {
            Ok(Ok(())) => (true, None),
            Ok(Err(e)) => (false, Some(e.to_string())),
            Err(_) => (false, Some("no answer within 15 s".to_string())),
        };
        lock(&log).writes.push(Op {
            seq,
            sent,
            at,
            ok,
            via,
            error,
        });
    }
}

async fn reader(
    mut client: Client,
    log: Arc<Mutex<Traffic>>,
    stop: Arc<AtomicBool>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let seq = lock(&log).last_acked();
        let sent = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(15),
            client.get::<_, Option<u64>>(format!("seq:{seq}")),
        )
        .await;
        let at = Instant::now();
        let (ok, error) = match r {
            Ok(Ok(_)) => (true, None),
            Ok(Err(e)) => (false, Some(e.to_string())),
            Err(_) => (false, Some("no answer within 15 s".to_string())),
        };
        lock(&log).reads.push(Op {
            seq,
            sent,
            at,
            ok,
            via: None,
            error,
        });
    }
}

/// `ok / failed` counts of `ops` answered in `[from, to)`, the first error, and the rate.
fn window(ops: &[Op], from: Instant, to: Instant) -> String {
    let inside: Vec<&Op> = ops.iter().filter(|o| o.at >= from && o.at < to).collect();
    let ok = inside.iter().filter(|o| o.ok).count();
    let failed = inside.len() - ok;
    let secs = (to - from).as_secs_f64().max(1e-9);
    let first_error = inside
        .iter()
        .find_map(|o| o.error.as_deref())
        .map(|e| format!("; first error: {e}"))
        .unwrap_or_default();
    format!(
        "{ok} ok ({:.0}/s), {failed} failed{first_error}",
        ok as f64 / secs
    )
}

fn ok_in(ops: &[Op], from: Instant, to: Instant) -> usize {
    ops.iter()
        .filter(|o| o.ok && o.at >= from && o.at < to)
        .count()
}

// ---------------------------------------------------------------------------------------------
// Managers
// ---------------------------------------------------------------------------------------------

struct ManagerProc {
    name: &'static str,
    child: GuardedChild,
    log: PathBuf,
    http: SocketAddr,
}

fn start_managers(
    bin: &Path,
    zk: &str,
    group: &RedisGroup,
    root: &str,
    session_ms: Option<u64>,
    dir: &Path,
) -> Result<Vec<ManagerProc>, String> {
    let mut out = Vec::new();
    for name in MANAGER_NAMES {
        let log = dir.join(format!("manager-{name}.log"));
        let file = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let file2 = file
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut args: Vec<String> = vec![
            "-z".into(),
            zk.to_string(),
            "-n".into(),
            group.addrs().join(","),
            "--znode-path".into(),
            root.to_string(),
            "--manager-name".into(),
            name.to_string(),
            "--http-addr".into(),
            http.to_string(),
        ];
        if let Some(s) = session_ms {
            args.extend(["--zk-session-timeout-ms".into(), s.to_string()]);
        }
        let bin = bin.to_path_buf();
        let child = spawn_guarded(move || {
            let mut cmd = Command::new(bin);
            cmd.args(&args)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(file)
                .stderr(file2);
            cmd
        })
        .map_err(|e| format!("cannot start redis_node_manager {name}: {e}"))?;
        out.push(ManagerProc {
            name,
            child,
            log,
            http,
        });
    }
    Ok(out)
}

/// The body of `GET path` on `addr` (HTTP/1.1, `Connection: close`), within ~1 s.
fn http_get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    match text.split_once("\r\n\r\n") {
        Some((_, body)) => Ok(body.trim().to_string()),
        None => Err(format!("no HTTP answer from {addr}")),
    }
}

/// Every manager's `GET /health`, one line each.
fn health(steps: &Steps, managers: &[ManagerProc]) {
    for m in managers {
        let alive = if m.child.is_running() {
            "running"
        } else {
            "EXITED"
        };
        match http_get(m.http, "/health") {
            Ok(body) => steps.detail(&format!("{} ({alive}) /health: {body}", m.name)),
            Err(e) => steps.detail(&format!("{} ({alive}) /health: no answer ({e})", m.name)),
        }
    }
}

fn log_len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

/// The text appended to `path` after byte `from`.
fn log_since(path: &Path, from: u64) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b[(from as usize).min(b.len())..]).into_owned())
        .unwrap_or_default()
}

/// The event of a manager log line (`+sdown`, `-leader`, ...), if any.
fn event_of(line: &str) -> Option<&str> {
    line.split_whitespace()
        .find(|w| (w.starts_with('+') || w.starts_with('-')) && w.len() > 2)
        .map(|w| w.trim_end_matches(':'))
}

// ---------------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------------

struct Setup<'a> {
    rt: &'a Runtime,
    opts: &'a Opts,
    zk: &'a ZkServer,
    bin: &'a Path,
    dir: &'a Path,
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    init_logging();
    if opts.kill_after_secs >= opts.outage_secs {
        eprintln!("zk_outage: --kill-after-secs must be less than --outage-secs");
        return ExitCode::FAILURE;
    }
    let bin = match manager_bin(opts.manager_bin.as_deref(), "zk_outage") {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    warn_if_stale(&bin, "zk_outage");
    let dir = opts.log_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("rf-zk-outage-{}", std::process::id()))
    });
    if let Err(e) = fs::create_dir_all(&dir) {
        eprintln!("zk_outage: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zk_outage: cannot start a tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("zk_outage: starting ZooKeeper ...");
    let zk = ZkServer::start();
    let setup = Setup {
        rt: &rt,
        opts: &opts,
        zk: &zk,
        bin: &bin,
        dir: &dir,
    };
    // Everything the scenario starts is dropped (killed) before it returns, also on panic.
    let result = catch_unwind(AssertUnwindSafe(|| scenario(&setup)));
    rt.shutdown_timeout(Duration::from_secs(10));
    drop(zk);
    println!("logs: {}", dir.display());
    match result {
        Ok(Ok(())) => {
            println!("result: PASS");
            ExitCode::SUCCESS
        }
        Ok(Err(failures)) => {
            println!("result: FAIL");
            for f in failures {
                println!("  - {f}");
            }
            ExitCode::FAILURE
        }
        Err(p) => {
            println!("result: FAIL ({})", panic_message(p));
            ExitCode::FAILURE
        }
    }
}

/// Runs the scenario; `Err` lists the failed checks.
fn scenario(s: &Setup) -> Result<(), Vec<String>> {
    let deadline = Duration::from_secs(s.opts.timeout_secs);
    let group = RedisGroup::trio();
    let root = unique_root("zk_outage_bench");
    let paths = ZnodePaths::new(&root).map_err(|e| vec![format!("root {root}: {e}")])?;
    let managers = start_managers(
        s.bin,
        &s.zk.connect_string(),
        &group,
        &root,
        s.opts.session_ms,
        s.dir,
    )
    .map_err(|e| vec![e])?;
    let result = scenario_with(s, &group, &root, &paths, &managers, deadline);
    if result.is_err() {
        for m in &managers {
            println!("--- tail of {}:\n{}", m.log.display(), log_tail(&m.log, 25));
        }
    }
    // Managers first (they would otherwise react to the nodes dying), then the trio.
    for m in &managers {
        m.child.terminate(Duration::from_secs(10));
    }
    drop(managers);
    drop(group);
    result
}

fn scenario_with(
    s: &Setup,
    group: &RedisGroup,
    root: &str,
    paths: &ZnodePaths,
    managers: &[ManagerProc],
    deadline: Duration,
) -> Result<(), Vec<String>> {
    let rt = s.rt;
    let zk_connect = s.zk.connect_string();
    let master = node_addr(group.node(0).port());
    let survivors = [1usize, 2];
    let mut steps = Steps {
        t0: Instant::now(),
        t0_wall: wall_secs_of_day(),
        failures: Vec::new(),
    };
    println!(
        "zk_outage: ZooKeeper {zk_connect}, trio {:?} (master {master}), 3 redis_node_manager processes ({}), session timeout {}, outage {} s, master killed {} s into it",
        group.ports(),
        s.bin.display(),
        s.opts
            .session_ms
            .map_or("default".to_string(), |m| format!("{m} ms")),
        s.opts.outage_secs,
        s.opts.kill_after_secs
    );

    // 1. Healthy: published with both replicas, three lock children.
    let zkc = rt.block_on(zk_client(&zk_connect));
    let lock_dir = paths.lock();
    let healthy = poll(deadline, || {
        let t = rt.block_on(read_topology(&zkc, root))?;
        let children = rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(3), zkc.list_children(&lock_dir)).await
            })
            .ok()?
            .ok()?;
        (t.master.as_ref() == Some(&master) && t.slaves.len() == 2 && children.len() == 3)
            .then_some(t)
    });
    let Some(before) = healthy else {
        return Err(vec![format!(
            "the group was not published with its 2 replicas and 3 managers within {deadline:?}"
        )]);
    };
    let client = rt
        .block_on(async {
            tokio::time::timeout(
                deadline,
                Client::builder(&zk_connect).znode_path(root).connect(),
            )
            .await
        })
        .map_err(|_| vec!["Client::connect timed out".to_string()])?
        .map_err(|e| vec![format!("Client::connect: {e}")])?;
    let traffic = Arc::new(Mutex::new(Traffic::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let every = Duration::from_millis(s.opts.op_interval_ms);
    steps.t0 = Instant::now();
    steps.t0_wall = wall_secs_of_day();
    let w = rt.spawn(writer(
        client.clone(),
        Arc::clone(&traffic),
        Arc::clone(&stop),
        every,
    ));
    let r = rt.spawn(reader(
        client.clone(),
        Arc::clone(&traffic),
        Arc::clone(&stop),
        every,
    ));
    steps.now(&format!(
        "healthy: master {master}, replicas {:?}, epoch {}; writer and reader started",
        before
            .slaves
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        before.epoch
    ));
    health(&steps, managers);
    std::thread::sleep(Duration::from_secs(s.opts.baseline_secs));

    // 2. ZooKeeper down.
    let log_marks: Vec<u64> = managers.iter().map(|m| log_len(&m.log)).collect();
    let t_stop = Instant::now();
    s.zk.stop();
    let t_down = Instant::now();
    steps.step(
        t_stop,
        &format!(
            "ZooKeeper stopped: SIGTERM (the process was gone {:.0} ms later)",
            ms(t_down - t_stop)
        ),
    );
    {
        let t = lock(&traffic);
        steps.detail(&format!(
            "before the outage: writes {}; reads {}",
            window(&t.writes, steps.t0, t_down),
            window(&t.reads, steps.t0, t_down)
        ));
    }
    let mut sub = client.subscribe();
    let stale = poll(deadline, || sub.borrow_and_update().stale_since);
    match stale {
        Some(at) => steps.step(
            at,
            "the client notices: its topology is stale (kept, and served from)",
        ),
        None => steps.check(false, "the client notices ZooKeeper is gone"),
    }

    // 3. Watch the roles until the kill, kill the master, watch until ZooKeeper returns.
    let kill_at = t_down + Duration::from_secs(s.opts.kill_after_secs);
    let back_at = t_down + Duration::from_secs(s.opts.outage_secs);
    let mut promoted: Vec<String> = Vec::new();
    let mut role_checks = 0u64;
    watch_roles(
        &steps,
        group,
        kill_at,
        &[0, 1, 2],
        &mut promoted,
        &mut role_checks,
    );
    let t_kill = Instant::now();
    group.node(0).kill9();
    steps.step(t_kill, &format!("kill -9 of the master {master}"));
    {
        let t = lock(&traffic);
        let (w, rd) = (
            ok_in(&t.writes, t_down, t_kill),
            ok_in(&t.reads, t_down, t_kill),
        );
        steps.detail(&format!(
            "ZooKeeper down, master alive ({:.1} s): writes {}; reads {}",
            (t_kill - t_down).as_secs_f64(),
            window(&t.writes, t_down, t_kill),
            window(&t.reads, t_down, t_kill)
        ));
        steps.check(
            w > 0 && rd > 0,
            "the client kept writing and reading on the live master while ZooKeeper was down",
        );
    }
    let mid = t_kill + (back_at - t_kill) / 2;
    watch_roles(
        &steps,
        group,
        mid,
        &survivors,
        &mut promoted,
        &mut role_checks,
    );
    steps.now("half-way between the kill and ZooKeeper's return: the managers say");
    health(&steps, managers);
    watch_roles(
        &steps,
        group,
        back_at,
        &survivors,
        &mut promoted,
        &mut role_checks,
    );
    steps.now(&format!(
        "end of the outage: {role_checks} ROLE checks every {} ms since ZooKeeper went down",
        ROLE_POLL.as_millis()
    ));
    for p in &promoted {
        steps.detail(p);
    }
    steps.check(
        promoted.is_empty(),
        "no replica became master while ZooKeeper was down",
    );
    let mut actions = Vec::new();
    for (m, mark) in managers.iter().zip(&log_marks) {
        let text = log_since(&m.log, *mark);
        let mut seen: Vec<(String, usize, String)> = Vec::new();
        for line in text.lines() {
            let Some(ev) = event_of(line) else { continue };
            if ACTION_EVENTS.contains(&ev) {
                actions.push(format!("{}: {line}", m.name));
            }
            match seen.iter_mut().find(|(e, _, _)| e == ev) {
                Some(entry) => entry.1 += 1,
                None => seen.push((ev.to_string(), 1, line.to_string())),
            }
        }
        let summary: Vec<String> = seen.iter().map(|(e, n, _)| format!("{e} x{n}")).collect();
        steps.detail(&format!(
            "{} logged during the outage: {}",
            m.name,
            if summary.is_empty() {
                "nothing".to_string()
            } else {
                summary.join(", ")
            }
        ));
        for (_, _, first) in seen.iter().take(6) {
            steps.detail(&format!(
                "  {}",
                first.chars().take(220).collect::<String>()
            ));
        }
    }
    for a in actions.iter().take(5) {
        steps.detail(&format!("action while ZooKeeper was down: {a}"));
    }
    let decisions: Vec<String> = managers
        .iter()
        .zip(&log_marks)
        .flat_map(|(m, mark)| {
            log_since(&m.log, *mark)
                .lines()
                .filter(|l| {
                    matches!(
                        event_of(l),
                        Some("+selected-replica") | Some("-failover-abort-not-leader")
                    )
                })
                .map(|l| format!("{}: {}", m.name, l.chars().take(200).collect::<String>()))
                .collect::<Vec<_>>()
        })
        .collect();
    if !decisions.is_empty() {
        steps.detail(
            "a failover was decided but not carried out (the promotion is recorded in ZooKeeper first, which failed):",
        );
        for d in decisions.iter().take(6) {
            steps.detail(&format!("  {d}"));
        }
    }
    steps.check(
        actions.is_empty(),
        "no manager logged a failover step or a publication while ZooKeeper was down",
    );
    {
        let t = lock(&traffic);
        steps.detail(&format!(
            "ZooKeeper down, master dead ({:.1} s): writes {}; reads {}",
            (back_at - t_kill).as_secs_f64(),
            window(&t.writes, t_kill, Instant::now()),
            window(&t.reads, t_kill, Instant::now())
        ));
    }

    // 4. ZooKeeper back.
    let t_restart = Instant::now();
    s.zk.restart();
    let t_back = Instant::now();
    steps.step(
        t_back,
        &format!(
            "ZooKeeper answers again (same port and data dir; {:.0} ms to start)",
            ms(t_back - t_restart)
        ),
    );
    let zkc = rt.block_on(zk_client(&zk_connect));
    let children = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(3), zkc.list_children(&lock_dir)).await
    });
    if let Ok(Ok(children)) = children {
        steps.now(&format!(
            "lock children now: {} (the old sessions come back with ZooKeeper's data and keep \
             their lock children until they expire, one session timeout after the restart)",
            children.len()
        ));
    }
    let published = poll(deadline, || {
        let t = rt.block_on(read_topology(&zkc, root))?;
        t.master
            .as_ref()
            .filter(|m| **m != master)
            .map(|_| (Instant::now(), t.clone()))
    });
    let Some((t_published, after)) = published else {
        steps.check(
            false,
            &format!("a new master is published within {deadline:?} of ZooKeeper's return"),
        );
        stop.store(true, Ordering::Relaxed);
        return Err(steps.failures);
    };
    let new_master = after.master.clone().unwrap_or_else(|| master.clone());
    steps.step(
        t_published,
        &format!(
            "new master {new_master} published (epoch {} -> {}): {:.0} ms after ZooKeeper came back",
            before.epoch,
            after.epoch,
            ms(t_published - t_back)
        ),
    );
    let followed = poll(deadline, || {
        (client.topology().topology.master.as_ref() == Some(&new_master)).then(Instant::now)
    });
    match followed {
        Some(t) => steps.step(
            t,
            &format!(
                "the client's topology names {new_master}: {:.0} ms after ZooKeeper came back",
                ms(t - t_back)
            ),
        ),
        None => steps.check(false, "the client follows the new master"),
    }
    let first_write = poll(deadline, || {
        lock(&traffic)
            .writes
            .iter()
            .find(|o| o.ok && o.at >= t_back)
            .cloned()
    });
    match &first_write {
        Some(o) => steps.step(
            o.at,
            &format!(
                "first write acknowledged since ZooKeeper came back (seq:{}, client's master {}, sent {:.0} ms after): {:.0} ms after ZooKeeper came back",
                o.seq,
                o.via.as_ref().map_or("none".to_string(), ToString::to_string),
                ms(o.sent.saturating_duration_since(t_back)),
                ms(o.at - t_back)
            ),
        ),
        None => steps.check(false, "a write is acknowledged after ZooKeeper's return"),
    }
    let mut timeline: Vec<(f64, String)> = managers
        .iter()
        .flat_map(|m| {
            log_since(&m.log, 0)
                .lines()
                .filter(|l| {
                    matches!(
                        event_of(l),
                        Some(
                            "+zk-session"
                                | "+zk-reconnected"
                                | "+leader"
                                | "+discovered"
                                | "+selected-replica"
                                | "+promoted"
                                | "+switch-master"
                                | "+publish"
                        )
                    )
                })
                .filter_map(|l| {
                    let at = steps.line_at(l)?;
                    (at >= (t_back - steps.t0).as_secs_f64() - 0.5).then(|| {
                        let text = l.split_once("  ").map_or(l, |(_, rest)| rest.trim());
                        (
                            at,
                            format!("{}: {}", m.name, text.chars().take(170).collect::<String>()),
                        )
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect();
    timeline.sort_by(|a, b| a.0.total_cmp(&b.0));
    steps.detail("the managers' log since ZooKeeper came back (up to the first publication):");
    for (at, line) in &timeline {
        println!("[{at:8.3} s]   {line}");
        if line.contains("+publish") {
            break;
        }
    }
    let switched_by: Vec<&str> = managers
        .iter()
        .filter(|m| log_since(&m.log, 0).contains("+switch-master"))
        .map(|m| m.name)
        .collect();
    steps.detail(&format!("+switch-master logged by {switched_by:?}"));

    // 5. Checks after the failover.
    std::thread::sleep(Duration::from_secs(1));
    health(&steps, managers);
    let roles: Vec<Option<NodeRole>> = survivors.iter().map(|i| group.node(*i).role()).collect();
    let masters = roles
        .iter()
        .filter(|r| **r == Some(NodeRole::Master))
        .count();
    steps.detail(&format!(
        "survivors: {}",
        survivors
            .iter()
            .zip(&roles)
            .map(|(i, r)| format!("{} {r:?}", group.node(*i).addr()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    steps.check(masters == 1, "exactly one master among the survivors");
    let final_topo = rt.block_on(read_topology(&zkc, root));
    let epoch_now = final_topo.as_ref().map_or(0, |t| t.epoch);
    steps.check(
        epoch_now == before.epoch + 1,
        &format!(
            "one failover in all (epoch {} -> {epoch_now})",
            before.epoch
        ),
    );
    let switches: usize = managers
        .iter()
        .map(|m| log_since(&m.log, 0).matches("+switch-master").count())
        .sum();
    steps.check(
        switches == 1,
        &format!("one +switch-master in the managers' logs ({switches})"),
    );

    // The old master comes back (as a master, with whatever it had) and must be demoted.
    let t_old = Instant::now();
    group.node(0).restart(None);
    steps.step(
        t_old,
        &format!("old master {master} restarted (as a master)"),
    );
    let rejoined = poll(deadline, || {
        let t = rt.block_on(read_topology(&zkc, root))?;
        (t.master.as_ref() == Some(&new_master) && t.slaves.contains(&master)).then(Instant::now)
    });
    match rejoined {
        Some(t) => steps.step(
            t,
            &format!(
                "{master} listed as a replica of {new_master}: {:.0} ms after its restart",
                ms(t - t_old)
            ),
        ),
        None => steps.check(false, "the old master rejoins as a replica"),
    }

    // 6. Traffic stops; every acknowledged write must be on the new master.
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(20), w).await;
        let _ = tokio::time::timeout(Duration::from_secs(20), r).await;
    });
    let t_end = Instant::now();
    let (acked, lost_async, lost_other) = {
        let t = lock(&traffic);
        steps.detail(&format!(
            "after ZooKeeper came back: writes {}; reads {}",
            window(&t.writes, t_back, t_end),
            window(&t.reads, t_back, t_end)
        ));
        let acked: Vec<(u64, Instant)> = t
            .writes
            .iter()
            .filter(|o| o.ok)
            .map(|o| (o.seq, o.at))
            .collect();
        drop(t);
        let missing = rt.block_on(missing_on(&new_master, &acked));
        match missing {
            Err(e) => {
                steps.check(false, &format!("loss check: {e}"));
                (acked.len(), Vec::new(), Vec::new())
            }
            Ok(missing) => {
                let (a, o): (Vec<_>, Vec<_>) =
                    missing.into_iter().partition(|(_, at)| *at <= t_kill);
                (acked.len(), a, o)
            }
        }
    };
    steps.detail(&format!(
        "{acked} writes acknowledged in all; missing on {new_master}: {} acknowledged before the kill -9 (async replication window{}), {} others",
        lost_async.len(),
        lost_async
            .iter()
            .map(|(_, at)| ms(t_kill - *at))
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
            .map(|x| format!(", up to {x:.1} ms before it"))
            .unwrap_or_default(),
        lost_other.len()
    ));
    steps.check(
        lost_other.is_empty(),
        "no acknowledged write lost outside the async-replication window of the master's crash",
    );
    drop(client);
    if steps.failures.is_empty() {
        Ok(())
    } else {
        Err(steps.failures)
    }
}

/// Polls `ROLE` (`INFO replication`) of `nodes` every [`ROLE_POLL`] until `until`; a node
/// other than the initial master (node 0) answering master is recorded in `promoted`.
fn watch_roles(
    steps: &Steps,
    group: &RedisGroup,
    until: Instant,
    nodes: &[usize],
    promoted: &mut Vec<String>,
    checks: &mut u64,
) {
    while Instant::now() < until {
        for &i in nodes {
            let role = group.node(i).role();
            *checks += 1;
            if i != 0 && role == Some(NodeRole::Master) && promoted.len() < 10 {
                promoted.push(format!(
                    "{} answered master at {}",
                    group.node(i).addr(),
                    steps.at(Instant::now())
                ));
            }
        }
        std::thread::sleep(ROLE_POLL.min(until.saturating_duration_since(Instant::now())));
    }
}

/// Polls `f` every 10 ms until it returns `Some` or `timeout` passes.
fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The acknowledged writes `(seq, acked at)` that `addr` does not hold with their value.
async fn missing_on(
    addr: &NodeAddr,
    acked: &[(u64, Instant)],
) -> Result<Vec<(u64, Instant)>, String> {
    let mut conn = open(addr, Duration::from_secs(2), Duration::from_secs(10)).await?;
    let mut missing = Vec::new();
    for chunk in acked.chunks(CHECK_BATCH) {
        let keys: Vec<String> = chunk.iter().map(|(n, _)| format!("seq:{n}")).collect();
        let values: Vec<Option<u64>> = tokio::time::timeout(
            Duration::from_secs(10),
            redis::cmd("MGET").arg(&keys).query_async(&mut conn),
        )
        .await
        .map_err(|_| format!("MGET on {addr} timed out"))?
        .map_err(|e| format!("MGET on {addr}: {e}"))?;
        missing.extend(
            chunk
                .iter()
                .zip(&values)
                .filter_map(|(a, v)| (*v != Some(a.0)).then_some(*a)),
        );
    }
    Ok(missing)
}
