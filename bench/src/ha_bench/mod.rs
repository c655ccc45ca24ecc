//! `ha_bench`'s measurements (the program's documentation is in `src/bin/ha_bench.rs`): its
//! flags, the two scenarios (`takeover`, `switchover`) and their `report`.

mod report;
mod switchover;
mod takeover;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use redis_failover_client::NodeAddr;
use redis_failover_tests::manager as harness;
use redis_failover_tests::stats::ms;
use redis_failover_tests::ZkServer;
use tokio::runtime::Handle;

/// Poll interval of the set-up waits.
const SETUP_POLL: Duration = Duration::from_millis(10);
/// How many manager processes the takeover runs.
const MANAGERS: usize = 3;

/// Measures leader takeover after `kill -9` of the leading redis_node_manager process and the
/// write pause of a planned switchover, with real ZooKeeper and redis-server processes.
#[derive(Parser, Debug)]
#[command(name = "ha_bench", version, long_about = None)]
pub struct Opts {
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
    pub manager_bin: Option<PathBuf>,

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

pub struct Settings {
    opts: Opts,
    deadline: Duration,
    zk_connect: String,
    zk_port: u16,
    manager_bin: Option<PathBuf>,
    manager_rt: Handle,
}

impl Opts {
    /// Whether the takeover scenario runs (it needs the manager binary).
    pub fn takeover(&self) -> bool {
        self.scenario != ScenarioArg::Switchover
    }

    /// Whether the switchover scenario runs.
    pub fn switchover(&self) -> bool {
        self.scenario != ScenarioArg::Takeover
    }

    /// ` + random [0, N) ms` with --switch-jitter-ms N, else nothing.
    fn switch_jitter_note(&self) -> String {
        if self.switch_jitter_ms > 0 {
            format!(" + random [0, {}) ms", self.switch_jitter_ms)
        } else {
            String::new()
        }
    }
}

impl Settings {
    /// The settings of a bench on the ZooKeeper `zk`, with the in-process manager of the
    /// switchover on `manager_rt` and the takeover's managers from `manager_bin`.
    pub fn new(
        opts: Opts,
        zk: &ZkServer,
        manager_bin: Option<PathBuf>,
        manager_rt: Handle,
    ) -> Settings {
        Settings {
            deadline: Duration::from_secs(opts.timeout_secs),
            zk_connect: zk.connect_string(),
            zk_port: zk.port(),
            manager_bin,
            manager_rt,
            opts,
        }
    }
}

/// Runs the scenarios, prints a line per run, the summary and the Markdown table. True when
/// every run passed its checks.
pub async fn bench(s: &Settings) -> bool {
    let o = &s.opts;
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let zk = harness::zk_client(&s.zk_connect).await;
    println!(
        "ha_bench: {} run(s) per scenario, nproc {nproc}, deadline {} s per wait; ZooKeeper 3.8 \
         standalone (tickTime 500 ms) and redis-server on loopback, fresh trio and root per run",
        o.runs, o.timeout_secs
    );

    let mut ok = true;
    let mut takeovers: Vec<Result<TakeoverOk, String>> = Vec::new();
    let mut switchovers: Vec<Result<SwitchoverOk, String>> = Vec::new();
    if o.takeover() {
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
            let r = takeover::run(s, &zk, run).await;
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
    if o.switchover() {
        println!();
        println!(
            "2. switchover: in-process manager, Client (defaults: 2 s command timeout, 3 retries, 100 ms backoff), \
             one writer sending `SET seq:N N` back to back;"
        );
        println!(
            "   {} ms{} of writes, then client.manual_failover(Some(replica)), wait until the client's topology names it, {} ms more;",
            o.write_ms,
            o.switch_jitter_note(),
            o.write_ms
        );
        println!(
            "   pause = longest gap between consecutive acknowledged writes; lost = acknowledged keys missing on the new master"
        );
        for run in 1..=o.runs {
            let r = switchover::run(s, &zk, run).await;
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

    report::summary(s, nproc, &takeovers, &switchovers);
    ok
}

/// What one successful takeover run measured.
pub struct TakeoverOk {
    /// SIGKILL of the leader -> another manager holds the lock.
    takeover: Duration,
    /// The killed leader's and the new leader's `--manager-name`.
    old_leader: String,
    new_leader: String,
    /// The leader's session timeout as ZooKeeper granted it (`cons`, `to=`).
    negotiated_timeout: Option<u64>,
    /// `kill -9` of the Redis master -> a new master published.
    master_failover: Duration,
    new_master: NodeAddr,
    /// `manager` field of the topology that named the new master.
    published_by: Option<String>,
    /// The new leader's manager id (`<hostname>-<name>`).
    new_leader_id: String,
    /// `<root>/nodes`'s epoch before the master's kill, and a while after it.
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

/// What one successful switchover run measured.
pub struct SwitchoverOk {
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
    errors: usize,
    first_error: Option<String>,
    lost: usize,
}
