//! `soak`: false failovers under CPU starvation, redis_node_manager vs Redis Sentinel.
//!
//! Two phases of --minutes each, one after the other, on the same machine:
//! 1. **ours**: a redis trio (master + 2 replicas), ZooKeeper, 3 `redis_node_manager`
//!    processes with the most aggressive settings we recommend (`--down-after-ms 500`
//!    `--max-failures 3` `--required-node-managers 2`, `majority`, session timeout 6 s), and a
//!    light writer (`SET seq:N N` every --write-every-ms through `redis_failover_client::Client`);
//! 2. **Sentinel**: a fresh trio, 3 Redis Sentinels at `down-after-milliseconds`
//!    --sentinel-down-after-ms (200 by default), quorum 2, `failover-timeout` 5000, and the same
//!    light writer through a Sentinel-aware redis-rs client.
//!
//! Once a phase's system is ready, --hogs busy-loop processes (`sh -c 'while :; do :; done'`,
//! one per core by default) keep every core busy until the phase ends. Nothing fails: every
//! failover is a false one. Counted per phase: failovers (ours: epoch delta of
//! `<root>/nodes`; Sentinel: the most `+switch-master` events one sentinel published),
//! false suspicions (ours: `+sdown` lines in the managers' logs; Sentinel: `+sdown` and `+odown`
//! events on a `PSUBSCRIBE *` to every sentinel), and the writer's errors and longest pause.
//! ctrl-c ends the running phase early (the summary still prints). Every process is killed by
//! a Drop guard.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use redis_failover_bench::load::{load_average, CpuHogs};
use redis_failover_bench::managers::{log_lines, start_managed, wait_ready, ManagerSpec};
use redis_failover_bench::nodes::Trio;
use redis_failover_bench::scaffold::{fail, manager_bin, Scaffold};
use redis_failover_bench::sentinel::{
    ready_and_tapped, start_watched, SentinelProgram, SentinelWriter, Sentinels,
};
use redis_failover_bench::tasks::{join_error, teardown};
use redis_failover_client::{Client, Topology};
use redis_failover_tests::manager as harness;
use redis_failover_tests::manager::ManagerSet;
use redis_failover_tests::stats::ms;
use redis_failover_tests::writer::{ClientWriter, WriteLog, Writer};
use redis_failover_tests::{unique_root, RedisGroup, ZkServer};

/// How often the bench reads `<root>/nodes` (ours) during a phase.
const POLL: Duration = Duration::from_millis(250);
/// Progress line every ...
const PROGRESS_EVERY: Duration = Duration::from_secs(60);

/// False failovers under CPU starvation: 3 redis_node_manager processes vs 3 Redis Sentinels.
#[derive(Parser, Debug)]
#[command(name = "soak", version, long_about = None)]
struct Opts {
    /// Length of each phase, in minutes (fractions allowed).
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,

    /// Which system(s).
    #[arg(long, value_enum, default_value_t = SystemArg::Both)]
    system: SystemArg,

    /// Our managers' --down-after-ms.
    #[arg(long, default_value_t = 500)]
    down_after_ms: u64,

    /// Our managers' --max-failures.
    #[arg(long, default_value_t = 3)]
    max_failures: u32,

    /// Sentinel's down-after-milliseconds.
    #[arg(long, default_value_t = 200)]
    sentinel_down_after_ms: u64,

    /// Busy-loop processes [default: one per core].
    #[arg(long)]
    hogs: Option<usize>,

    /// The writer sends one SET every this many ms.
    #[arg(long, default_value_t = 10)]
    write_every_ms: u64,

    /// Reply timeout of both writers.
    #[arg(long, default_value_t = 500)]
    command_timeout_ms: u64,

    /// Deadline of the set-up waits, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,

    /// The redis_node_manager binary [default: next to this executable].
    #[arg(long, value_name = "PATH")]
    manager_bin: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SystemArg {
    Sentinel,
    Ours,
    Both,
}

/// What one phase counted.
struct PhaseOut {
    system: String,
    settings: String,
    counts: Counts,
    minutes: f64,
    interrupted: bool,
    acked: usize,
    errors: usize,
    first_error: Option<String>,
    longest_gap: Duration,
    hog_shares: Vec<f64>,
    load_start: String,
    load_end: String,
}

/// What each system counts in its own way.
#[derive(Default)]
struct Counts {
    failovers: u64,
    /// Ours: master changes seen by polling; Sentinel: `+switch-master` per sentinel.
    changes: String,
    /// False suspicions of the master, and of any node.
    sdown_master: usize,
    sdown_any: usize,
    /// Sentinel: `+odown` events (per sentinel); ours: "-" .
    odown: String,
    other: String,
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    let scaffold = Scaffold::new("soak").thread_name("soak");
    if !(opts.minutes > 0.0 && opts.minutes <= 24.0 * 60.0) {
        return fail("soak: --minutes must be in (0, 1440]");
    }
    scaffold.run(|env| env.block_on(soak(&opts)))
}

async fn soak(o: &Opts) -> bool {
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hogs = o.hogs.unwrap_or(nproc);
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let interrupted = Arc::clone(&interrupted);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("soak: ctrl-c: ending the phase");
                interrupted.store(true, Ordering::Relaxed);
            }
        });
    }
    println!(
        "soak: {} min per phase, {hogs} busy loop(s) on {nproc} core(s), writer: one SET every {} ms; load average {}",
        o.minutes,
        o.write_every_ms,
        load_average()
    );
    let mut outs = Vec::new();
    let mut ok = true;
    if o.system != SystemArg::Sentinel {
        match ours_phase(o, hogs, &interrupted).await {
            Ok(p) => outs.push(p),
            Err(e) => {
                ok = false;
                println!("ours: FAILED: {e}");
            }
        }
    }
    if o.system != SystemArg::Ours && !interrupted.load(Ordering::Relaxed) {
        match sentinel_phase(o, hogs, &interrupted).await {
            Ok(p) => outs.push(p),
            Err(e) => {
                ok = false;
                println!("sentinel: FAILED: {e}");
            }
        }
    }

    println!();
    println!("Summary:");
    for p in &outs {
        println!(
            "  {:<9} {:.1} min{}  failovers {}  master changes {}  +sdown of the master {}, of any node {}  +odown {}  {}  writer: {} acked, {} errors{}, longest pause {:.1} ms  busy loops got {} of a core  load {} -> {}",
            p.system,
            p.minutes,
            if p.interrupted { " (interrupted)" } else { "" },
            p.counts.failovers,
            p.counts.changes,
            p.counts.sdown_master,
            p.counts.sdown_any,
            p.counts.odown,
            p.counts.other,
            p.acked,
            p.errors,
            p.first_error
                .as_ref()
                .map_or(String::new(), |e| format!(" (first: {e})")),
            ms(p.longest_gap),
            shares(&p.hog_shares),
            p.load_start,
            p.load_end
        );
    }
    println!();
    println!("Markdown:");
    println!();
    println!("| system | settings | minutes under load | failovers (target 0) | false `+sdown` of the master / any node | `+odown` | writer: acked, errors, longest pause | load average start → end |");
    println!("|---|---|---|---|---|---|---|---|");
    for p in &outs {
        println!(
            "| {} | {} | {:.1}{} | **{}** | {} / {} | {} | {}, {}, {:.0} ms | {} → {} |",
            p.system,
            p.settings,
            p.minutes,
            if p.interrupted { " (interrupted)" } else { "" },
            p.counts.failovers,
            p.counts.sdown_master,
            p.counts.sdown_any,
            p.counts.odown,
            p.acked,
            p.errors,
            ms(p.longest_gap),
            p.load_start,
            p.load_end
        );
    }
    println!();
    println!(
        "Load: {hogs} busy-loop processes on {nproc} cores for the whole of each phase (each got {} of a core); writer: `SET seq:N N` every {} ms.",
        outs.iter()
            .map(|p| format!("{}: {}", p.system, shares(&p.hog_shares)))
            .collect::<Vec<_>>()
            .join("; "),
        o.write_every_ms
    );
    ok && outs.iter().all(|p| !p.interrupted)
}

fn shares(v: &[f64]) -> String {
    v.iter()
        .map(|s| format!("{:.0}%", s * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The ticks of a phase: every [`POLL`] until its end or ctrl-c.
struct PhaseClock {
    start: Instant,
    end: Instant,
    next_progress: Instant,
    first: bool,
    interrupted: bool,
}

impl PhaseClock {
    fn new(start: Instant, minutes: f64) -> PhaseClock {
        PhaseClock {
            start,
            end: start + Duration::from_secs_f64(minutes * 60.0),
            next_progress: start + PROGRESS_EVERY,
            first: true,
            interrupted: false,
        }
    }

    /// Waits for the next tick: `None` once the phase is over (or ctrl-c ended it), else
    /// whether a progress line is due.
    async fn tick(&mut self, interrupted: &AtomicBool) -> Option<bool> {
        if !self.first {
            tokio::time::sleep(POLL.min(self.end.saturating_duration_since(Instant::now()))).await;
        }
        self.first = false;
        if interrupted.load(Ordering::Relaxed) {
            self.interrupted = true;
            return None;
        }
        let now = Instant::now();
        if now >= self.end {
            return None;
        }
        if now >= self.next_progress {
            self.next_progress += PROGRESS_EVERY;
            return Some(true);
        }
        Some(false)
    }

    fn minutes(&self) -> f64 {
        self.start.elapsed().as_secs_f64() / 60.0
    }
}

/// A phase under load: the busy loops and the clock.
struct Loaded {
    cpu: CpuHogs,
    load_start: String,
    t_start: Instant,
    clock: PhaseClock,
}

impl Loaded {
    /// Starts the busy loops and the clock.
    fn start(o: &Opts, hogs: usize) -> Result<Loaded, String> {
        let load_start = load_average();
        let cpu = CpuHogs::start(hogs)?;
        let t_start = Instant::now();
        Ok(Loaded {
            cpu,
            load_start,
            t_start,
            clock: PhaseClock::new(t_start, o.minutes),
        })
    }

    /// Stops the busy loops and the writer (unless the phase `failed`), and puts the phase's
    /// figures together (all but the [`Counts`]).
    async fn end(
        self,
        failed: Option<String>,
        writer: Writer,
        system: &str,
        settings: String,
    ) -> Result<PhaseOut, String> {
        let hog_shares = self.cpu.core_shares();
        let load_end = load_average();
        let elapsed = self.t_start.elapsed();
        let cpu = self.cpu;
        tokio::task::spawn_blocking(move || cpu.stop())
            .await
            .map_err(|e| format!("stopping the busy loops: {}", join_error(e)))?;
        if let Some(e) = failed {
            return Err(e);
        }
        let log: WriteLog = writer.stop(Duration::from_secs(3)).await;
        Ok(PhaseOut {
            system: system.into(),
            settings,
            counts: Counts::default(),
            minutes: elapsed.as_secs_f64() / 60.0,
            interrupted: self.clock.interrupted,
            acked: log.acks.len(),
            errors: log.errors.len(),
            first_error: log.errors.first().map(|e| e.error.clone()),
            longest_gap: log.longest_gap(self.t_start, self.t_start + elapsed).0,
            hog_shares,
            load_start: self.load_start,
            load_end,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Ours
// ---------------------------------------------------------------------------------------------

fn our_args(o: &Opts) -> Vec<String> {
    vec![
        "--down-after-ms".into(),
        o.down_after_ms.to_string(),
        "--max-failures".into(),
        o.max_failures.to_string(),
        "--required-node-managers".into(),
        "2".into(),
    ]
}

async fn ours_phase(o: &Opts, hogs: usize, interrupted: &AtomicBool) -> Result<PhaseOut, String> {
    let bin = manager_bin(o.manager_bin.as_deref(), "soak")?;
    eprintln!("soak: ours: starting ZooKeeper, the trio and 3 managers ...");
    let zk_server = tokio::task::spawn_blocking(ZkServer::start)
        .await
        .map_err(|e| format!("ZooKeeper did not start: {}", join_error(e)))?;
    let zk_connect = zk_server.connect_string();
    let root = unique_root("soak");
    let spec = ManagerSpec {
        bin: &bin,
        count: 3,
        zk: &zk_connect,
        root: &root,
        extra: our_args(o),
        rust_log: "info",
    };
    let out = match start_managed(&spec).await {
        Ok(trio) => {
            let out = trio
                .measure(15, |group, m| {
                    ours_measure(o, hogs, interrupted, &zk_connect, group, &root, m)
                })
                .await;
            trio.teardown().await;
            out
        }
        Err(e) => Err(e),
    };
    teardown("ZooKeeper", move || drop(zk_server)).await;
    out
}

async fn ours_measure(
    o: &Opts,
    hogs: usize,
    interrupted: &AtomicBool,
    zk_connect: &str,
    group: &Arc<RedisGroup>,
    root: &str,
    managers: &ManagerSet,
) -> Result<PhaseOut, String> {
    let zk = harness::zk_client(zk_connect).await;
    let trio = Trio::of(group);
    let master = &trio.master;
    let before = wait_ready(
        managers,
        &zk,
        root,
        &trio,
        Duration::from_secs(o.timeout_secs),
    )
    .await?;
    let client = tokio::time::timeout(
        Duration::from_secs(o.timeout_secs),
        Client::builder(zk_connect)
            .znode_path(root)
            .command_timeout(Duration::from_millis(o.command_timeout_ms))
            .connect(),
    )
    .await
    .map_err(|_| "Client::connect timed out".to_string())?
    .map_err(|e| format!("Client::connect: {e}"))?;
    let writer = Writer::spawn(
        ClientWriter(client.clone()),
        Some(Duration::from_millis(o.write_every_ms)),
        Duration::from_secs(10),
    );
    // Log positions before the load starts: only what happens under load counts.
    let sdown0 = log_lines(managers, "+sdown").len();
    let mut load = Loaded::start(o, hogs)?;
    let t_start = load.t_start;
    println!(
        "ours: 3 managers `{}`, load started ({hogs} busy loops); master {master}, epoch {}",
        our_args(o).join(" "),
        before.epoch
    );
    let mut last: Topology = before.clone();
    let mut changes = 0u64;
    let mut failed = None;
    while let Some(progress) = load.clock.tick(interrupted).await {
        if let Some(t) = harness::read_topology(&zk, root).await {
            if t.master != last.master {
                changes += 1;
                println!(
                    "ours: +{:.1} s: master {:?} -> {:?} (epoch {})",
                    t_start.elapsed().as_secs_f64(),
                    last.master,
                    t.master,
                    t.epoch
                );
            }
            last = t;
        }
        if progress {
            println!(
                "ours: {:.0} min: epoch {}, {} writes acked, load {}",
                load.clock.minutes(),
                last.epoch,
                writer.acked(),
                load_average()
            );
        }
        if let Some(e) = managers.exited() {
            failed = Some(e);
            break;
        }
    }
    let settings = format!("3 managers, `{}`", our_args(o).join(" "));
    let out = load.end(failed, writer, "ours", settings).await;
    drop(client);
    let mut out = out?;
    let after = harness::read_topology(&zk, root)
        .await
        .ok_or_else(|| format!("{root}/nodes unreadable at the end"))?;
    let sdown_lines: Vec<String> = log_lines(managers, "+sdown")
        .into_iter()
        .skip(sdown0)
        .collect();
    let sdown_master = sdown_lines
        .iter()
        .filter(|l| l.contains(&format!("+sdown {master}")))
        .count();
    let switches: usize = log_lines(managers, "+switch-master").len();
    let zk_trouble: usize = log_lines(managers, "-zk-").len();
    for l in sdown_lines.iter().take(10) {
        println!("ours: log: {l}");
    }
    out.counts = Counts {
        failovers: after.epoch.saturating_sub(before.epoch),
        changes: changes.to_string(),
        sdown_master,
        sdown_any: sdown_lines.len(),
        odown: "-".into(),
        other: format!("+switch-master log lines {switches}, -zk-* log lines {zk_trouble}"),
    };
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Sentinel
// ---------------------------------------------------------------------------------------------

async fn sentinel_phase(
    o: &Opts,
    hogs: usize,
    interrupted: &AtomicBool,
) -> Result<PhaseOut, String> {
    let program = SentinelProgram::find()?;
    eprintln!("soak: sentinel: starting the trio and 3 sentinels ...");
    let trio = start_watched(program, o.sentinel_down_after_ms, 5000).await?;
    let out = trio
        .measure(15, |group, sentinels| {
            sentinel_measure(o, hogs, interrupted, group, sentinels)
        })
        .await;
    trio.teardown().await;
    out
}

async fn sentinel_measure(
    o: &Opts,
    hogs: usize,
    interrupted: &AtomicBool,
    group: &Arc<RedisGroup>,
    sentinels: &Arc<Sentinels>,
) -> Result<PhaseOut, String> {
    let tap = ready_and_tapped(sentinels, Duration::from_secs(o.timeout_secs)).await?;
    let writer = Writer::spawn(
        SentinelWriter::new(
            &sentinels.ports(),
            Duration::from_millis(o.command_timeout_ms),
            Duration::from_secs(1),
            Duration::from_millis(10),
        )?,
        Some(Duration::from_millis(o.write_every_ms)),
        Duration::from_secs(10),
    );
    let master = Trio::of(group).master;
    let mut load = Loaded::start(o, hogs)?;
    let t_start = load.t_start;
    println!(
        "sentinel: 3 sentinels, quorum 2, down-after-milliseconds {}, failover-timeout 5000; load started ({hogs} busy loops); master {master}",
        o.sentinel_down_after_ms
    );
    let mut seen = 0usize;
    let mut failed = None;
    while let Some(progress) = load.clock.tick(interrupted).await {
        let evs = tap.events();
        for e in evs.iter().skip(seen) {
            if e.at >= t_start
                && matches!(
                    e.channel.as_str(),
                    "+switch-master" | "+odown" | "+try-failover" | "+tilt"
                )
            {
                println!(
                    "sentinel: +{:.1} s: [sentinel {}] {} {}",
                    e.at.duration_since(t_start).as_secs_f64(),
                    e.sentinel,
                    e.channel,
                    e.payload
                );
            }
        }
        seen = evs.len();
        if progress {
            println!(
                "sentinel: {:.0} min: {} failover(s), {} writes acked, load {}",
                load.clock.minutes(),
                tap.failovers(t_start),
                writer.acked(),
                load_average()
            );
        }
        if let Some(e) = sentinels.exited() {
            failed = Some(e);
            break;
        }
    }
    let per = |ch: &str, master_only: bool| tap.counts(ch, t_start, master_only);
    let sum = |v: Vec<usize>| v.iter().sum::<usize>();
    let fmt = |v: Vec<usize>| {
        format!(
            "{} ({})",
            v.iter().sum::<usize>(),
            v.iter().map(usize::to_string).collect::<Vec<_>>().join("+")
        )
    };
    let settings = format!(
        "3 sentinels, quorum 2, `down-after-milliseconds {}`, `failover-timeout 5000`",
        o.sentinel_down_after_ms
    );
    let mut out = load.end(failed, writer, "Sentinel", settings).await?;
    out.counts = Counts {
        failovers: tap.failovers(t_start) as u64,
        changes: fmt(per("+switch-master", false)),
        sdown_master: sum(per("+sdown", true)),
        sdown_any: sum(per("+sdown", false)),
        odown: fmt(per("+odown", false)),
        other: format!(
            "+try-failover {}, +tilt {}",
            fmt(per("+try-failover", false)),
            fmt(per("+tilt", false))
        ),
    };
    Ok(out)
}
