//! Side by side with Redis Sentinel: what `sentinel_bench` and `soak` share.
//!
//! * [`Sentinels`]: real Redis Sentinel processes (`redis-sentinel`, or `redis-server
//!   --sentinel`) on free loopback ports, each with its own config file in a temp dir,
//!   monitoring one master as [`MASTER_NAME`]; killed by Drop guards.
//! * [`EventTap`]: a `PSUBSCRIBE *` on every sentinel, recording each event (`+sdown`,
//!   `+odown`, `+promoted-slave`, `+switch-master`, ...) with the instant it arrived.
//! * [`ManagerProcs`]: `redis_node_manager` processes (the release binary next to the bench)
//!   on one group, logging to files.
//! * Writers: [`Writer`] runs `SET seq:N N` with increasing `N`, back to back or paced, and
//!   logs every acknowledged write with its time; through our [`Client`] ([`ClientWriter`]) or
//!   through a Sentinel-aware redis-rs client that re-resolves the master after any error
//!   ([`SentinelWriter`]).
//! * [`CpuHogs`]: busy-loop child processes that keep the cores busy.
//! * [`plot_timelines`]: a PNG of acknowledged writes per bin around a failure.

use std::collections::HashMap;
use std::fs::{self, File};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{AsyncCommands, AsyncConnectionConfig, ConnectionAddr};
use redis_failover_client::{Client, NodeAddr};
use redis_failover_tests::{
    free_port, log_tail, redis_cmd_timeout, spawn_guarded, GuardedChild, RedisGroup,
};
use tokio::task::JoinHandle;

use crate::open;

/// The master's name in every sentinel's config (and our managers' default `--group-name`).
pub const MASTER_NAME: &str = "mymaster";
/// How long a sentinel may take to answer PING after it is spawned.
const SENTINEL_READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Connect / reply timeout of the bench's own commands to sentinels.
const SENTINEL_CMD_TIMEOUT: Duration = Duration::from_millis(500);
/// Keys per `MGET` of the loss check.
const CHECK_BATCH: usize = 1000;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Redis Sentinel processes
// ---------------------------------------------------------------------------------------------

/// How to start a sentinel: `redis-sentinel CONF`, or `redis-server CONF --sentinel` when only
/// the redis-server package is installed.
#[derive(Clone, Debug)]
pub struct SentinelProgram {
    program: String,
    extra: Vec<String>,
}

impl SentinelProgram {
    /// `redis-sentinel` if it is on the PATH, else `redis-server --sentinel`.
    pub fn find() -> Result<SentinelProgram, String> {
        if on_path("redis-sentinel") {
            Ok(SentinelProgram {
                program: "redis-sentinel".into(),
                extra: Vec::new(),
            })
        } else if on_path("redis-server") {
            Ok(SentinelProgram {
                program: "redis-server".into(),
                extra: vec!["--sentinel".into()],
            })
        } else {
            Err("neither redis-sentinel nor redis-server is on the PATH; run scripts/install-sentinel.sh".into())
        }
    }

    /// `redis-sentinel` or `redis-server --sentinel`, with its version.
    pub fn describe(&self) -> String {
        let version = Command::new(&self.program)
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .and_then(|v| {
                v.split_whitespace()
                    .find_map(|w| w.strip_prefix("v=").map(str::to_string))
            })
            .unwrap_or_else(|| "?".into());
        let mut s = self.program.clone();
        for e in &self.extra {
            s.push(' ');
            s.push_str(e);
        }
        format!("{s} {version}")
    }
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// The Sentinel settings of one master.
#[derive(Clone, Copy, Debug)]
pub struct SentinelSettings {
    pub quorum: u32,
    pub down_after_ms: u64,
    pub failover_timeout_ms: u64,
    pub parallel_syncs: u32,
}

struct SentinelProc {
    port: u16,
    log: PathBuf,
    child: GuardedChild,
}

/// Sentinel processes on free loopback ports, monitoring one master. Dropping it kills them,
/// then removes their temp dir.
pub struct Sentinels {
    procs: Vec<SentinelProc>,
    settings: SentinelSettings,
    // last field: removed after the processes are gone
    dir: tempfile::TempDir,
}

impl Sentinels {
    /// Starts `n` sentinels monitoring 127.0.0.1:`master_port` as [`MASTER_NAME`] and waits
    /// until each answers PING. Blocking.
    pub fn start(
        program: &SentinelProgram,
        n: usize,
        master_port: u16,
        settings: SentinelSettings,
    ) -> Result<Sentinels, String> {
        let dir = tempfile::Builder::new()
            .prefix("rf-sentinel-")
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir for the sentinels: {e}"))?;
        let mut sentinels = Sentinels {
            procs: Vec::new(),
            settings,
            dir,
        };
        for _ in 0..n {
            let mut last = String::new();
            let mut started = None;
            // A port picked by free_port() may be taken before the sentinel binds it.
            for _ in 0..3 {
                match sentinels.start_one(program, master_port) {
                    Ok(p) => {
                        started = Some(p);
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            match started {
                Some(p) => sentinels.procs.push(p),
                None => return Err(last),
            }
        }
        Ok(sentinels)
    }

    fn start_one(
        &self,
        program: &SentinelProgram,
        master_port: u16,
    ) -> Result<SentinelProc, String> {
        let port = free_port();
        let dir = self.dir.path();
        let conf = dir.join(format!("sentinel-{port}.conf"));
        let log = dir.join(format!("sentinel-{port}.log"));
        let s = self.settings;
        let text = format!(
            "port {port}\n\
             bind 127.0.0.1\n\
             protected-mode no\n\
             daemonize no\n\
             dir {dir}\n\
             logfile {log}\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} {quorum}\n\
             sentinel down-after-milliseconds {MASTER_NAME} {down}\n\
             sentinel failover-timeout {MASTER_NAME} {failover}\n\
             sentinel parallel-syncs {MASTER_NAME} {parallel}\n",
            dir = dir.display(),
            log = log.display(),
            quorum = s.quorum,
            down = s.down_after_ms,
            failover = s.failover_timeout_ms,
            parallel = s.parallel_syncs,
        );
        fs::write(&conf, text).map_err(|e| format!("{}: {e}", conf.display()))?;
        let out_path = dir.join(format!("sentinel-{port}.out"));
        let out = File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
        let out2 = out
            .try_clone()
            .map_err(|e| format!("{}: {e}", out_path.display()))?;
        let (bin, extra) = (program.program.clone(), program.extra.clone());
        let conf_arg = conf.clone();
        let child = spawn_guarded(move || {
            let mut cmd = Command::new(bin);
            cmd.arg(conf_arg)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(out2);
            cmd
        })
        .map_err(|e| format!("cannot start {}: {e}", program.program))?;
        let deadline = Instant::now() + SENTINEL_READY_TIMEOUT;
        loop {
            if redis_cmd_timeout(port, Duration::from_millis(200), &["PING"]).is_ok() {
                return Ok(SentinelProc { port, log, child });
            }
            if let Some(st) = child.exit_status() {
                return Err(format!(
                    "sentinel on port {port} exited ({st}) before answering PING; tail of {}:\n{}\n{}",
                    log.display(),
                    log_tail(&log, 20),
                    log_tail(&out_path, 5)
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "sentinel on port {port} did not answer PING within {SENTINEL_READY_TIMEOUT:?}; tail of {}:\n{}",
                    log.display(),
                    log_tail(&log, 20)
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The sentinels' ports.
    pub fn ports(&self) -> Vec<u16> {
        self.procs.iter().map(|p| p.port).collect()
    }

    pub fn settings(&self) -> SentinelSettings {
        self.settings
    }

    /// Waits (blocking) until every sentinel sees the master as `master` with `replicas`
    /// replicas and every other sentinel, and `SENTINEL CKQUORUM` answers OK: from then on a
    /// failure of the master is acted on.
    pub fn wait_ready(&self, replicas: usize, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let others = (self.procs.len() - 1).to_string();
        let replicas = replicas.to_string();
        loop {
            let mut missing = Vec::new();
            for p in &self.procs {
                match sentinel_master_fields(p.port) {
                    Ok(f) => {
                        let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("?");
                        if get("flags") != "master"
                            || get("num-slaves") != replicas
                            || get("num-other-sentinels") != others
                        {
                            missing.push(format!(
                                "{}: flags {} num-slaves {} num-other-sentinels {}",
                                p.port,
                                get("flags"),
                                get("num-slaves"),
                                get("num-other-sentinels")
                            ));
                        } else {
                            match sentinel_cmd(p.port, &["SENTINEL", "CKQUORUM", MASTER_NAME]) {
                                Ok(v) if v.first().is_some_and(|s| s.starts_with("OK")) => {}
                                Ok(v) => missing.push(format!("{}: CKQUORUM {v:?}", p.port)),
                                Err(e) => missing.push(format!("{}: CKQUORUM {e}", p.port)),
                            }
                        }
                    }
                    Err(e) => missing.push(format!("{}: {e}", p.port)),
                }
            }
            if missing.is_empty() {
                return Ok(());
            }
            if let Some(e) = self.exited() {
                return Err(e);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the sentinels were not ready within {timeout:?}: {}",
                    missing.join("; ")
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `SENTINEL get-master-addr-by-name` of every sentinel (blocking): the answer most of them
    /// give, and all answers.
    pub fn master_addr(&self) -> (Option<NodeAddr>, Vec<Result<NodeAddr, String>>) {
        let answers: Vec<Result<NodeAddr, String>> = self
            .procs
            .iter()
            .map(|p| {
                let v = sentinel_cmd(
                    p.port,
                    &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
                )?;
                match v.as_slice() {
                    [host, port] => port
                        .parse()
                        .map(|port| NodeAddr::new(host.clone(), port))
                        .map_err(|_| format!("bad port {port:?}")),
                    _ => Err(format!("unexpected answer {v:?}")),
                }
            })
            .collect();
        let mut counts: HashMap<&NodeAddr, usize> = HashMap::new();
        for a in answers.iter().flatten() {
            *counts.entry(a).or_default() += 1;
        }
        let best = counts
            .into_iter()
            .filter(|(_, c)| *c * 2 > self.procs.len())
            .map(|(a, _)| a.clone())
            .next();
        (best, answers)
    }

    /// A message when a sentinel process has exited.
    pub fn exited(&self) -> Option<String> {
        self.procs.iter().find_map(|p| {
            p.child.exit_status().map(|st| {
                format!(
                    "sentinel {} exited ({st}); tail of its log:\n{}",
                    p.port,
                    log_tail(&p.log, 15)
                )
            })
        })
    }

    /// The sentinels' log files.
    pub fn log_paths(&self) -> Vec<PathBuf> {
        self.procs.iter().map(|p| p.log.clone()).collect()
    }

    /// The tail of each sentinel's log.
    pub fn tails(&self, n: usize) -> String {
        self.procs
            .iter()
            .map(|p| {
                format!(
                    "\n--- tail of sentinel {}'s log:\n{}",
                    p.port,
                    log_tail(&p.log, n)
                )
            })
            .collect()
    }
}

/// One sentinel command on a fresh connection, the reply flattened to strings.
pub fn sentinel_cmd(port: u16, args: &[&str]) -> Result<Vec<String>, String> {
    let v = redis_cmd_timeout(port, SENTINEL_CMD_TIMEOUT, args)
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    Ok(flatten(&v))
}

fn flatten(v: &redis::Value) -> Vec<String> {
    match v {
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().flat_map(flatten).collect()
        }
        redis::Value::Map(pairs) => pairs
            .iter()
            .flat_map(|(k, v)| flatten(k).into_iter().chain(flatten(v)))
            .collect(),
        redis::Value::BulkString(b) => vec![String::from_utf8_lossy(b).into_owned()],
        redis::Value::SimpleString(s) => vec![s.clone()],
        redis::Value::VerbatimString { text, .. } => vec![text.clone()],
        redis::Value::Okay => vec!["OK".into()],
        redis::Value::Int(i) => vec![i.to_string()],
        redis::Value::Nil => Vec::new(),
        other => vec![format!("{other:?}")],
    }
}

/// `SENTINEL MASTER mymaster` as a field map.
fn sentinel_master_fields(port: u16) -> Result<HashMap<String, String>, String> {
    let flat = sentinel_cmd(port, &["SENTINEL", "MASTER", MASTER_NAME])?;
    Ok(flat
        .chunks(2)
        .filter_map(|kv| match kv {
            [k, v] => Some((k.clone(), v.clone())),
            _ => None,
        })
        .collect())
}

/// One event a sentinel published.
#[derive(Clone, Debug)]
pub struct SentinelEvent {
    /// When the bench received it.
    pub at: Instant,
    /// Which sentinel (index into the ports given to [`EventTap::start`]).
    pub sentinel: usize,
    /// `+switch-master`, `+sdown`, ...
    pub channel: String,
    pub payload: String,
}

impl SentinelEvent {
    /// For `+switch-master <name> <old ip> <old port> <new ip> <new port>`: the new master.
    pub fn switch_target(&self) -> Option<NodeAddr> {
        let f: Vec<&str> = self.payload.split_whitespace().collect();
        match f.as_slice() {
            [_, _, _, ip, port] => port.parse().ok().map(|p| NodeAddr::new(*ip, p)),
            _ => None,
        }
    }

    /// Whether an `+sdown` / `+odown` / ... event is about the master (`master <name> ...`).
    pub fn about_master(&self) -> bool {
        self.payload.starts_with("master ")
    }
}

/// `PSUBSCRIBE *` on every sentinel; keeps every event with the time it arrived.
pub struct EventTap {
    events: Arc<Mutex<Vec<SentinelEvent>>>,
    tasks: Vec<JoinHandle<()>>,
    sentinels: usize,
}

impl EventTap {
    pub async fn start(ports: &[u16]) -> Result<EventTap, String> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut tap = EventTap {
            events: Arc::clone(&events),
            tasks: Vec::new(),
            sentinels: ports.len(),
        };
        for (i, port) in ports.iter().copied().enumerate() {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .map_err(|e| format!("sentinel {port}: {e}"))?;
            let mut pubsub =
                tokio::time::timeout(Duration::from_secs(2), client.get_async_pubsub())
                    .await
                    .map_err(|_| format!("sentinel {port}: no pub/sub connection within 2 s"))?
                    .map_err(|e| format!("sentinel {port}: {e}"))?;
            tokio::time::timeout(Duration::from_secs(2), pubsub.psubscribe("*"))
                .await
                .map_err(|_| format!("sentinel {port}: PSUBSCRIBE timed out"))?
                .map_err(|e| format!("sentinel {port}: PSUBSCRIBE: {e}"))?;
            let mut stream = pubsub.into_on_message();
            let events = Arc::clone(&events);
            tap.tasks.push(tokio::spawn(async move {
                while let Some(msg) = stream.next().await {
                    let at = Instant::now();
                    lock(&events).push(SentinelEvent {
                        at,
                        sentinel: i,
                        channel: msg.get_channel_name().to_string(),
                        payload: String::from_utf8_lossy(msg.get_payload_bytes()).into_owned(),
                    });
                }
            }));
        }
        Ok(tap)
    }

    /// Every event received so far, in arrival order per sentinel.
    pub fn events(&self) -> Vec<SentinelEvent> {
        lock(&self.events).clone()
    }

    /// The first `channel` event (from any sentinel) that arrived at or after `since`.
    pub fn first(&self, channel: &str, since: Instant) -> Option<SentinelEvent> {
        lock(&self.events)
            .iter()
            .filter(|e| e.channel == channel && e.at >= since)
            .min_by_key(|e| e.at)
            .cloned()
    }

    /// Waits (polling every 2 ms; the time is the event's arrival) for the first `channel`
    /// event at or after `since`, until `deadline`.
    pub async fn wait_first(
        &self,
        channel: &str,
        since: Instant,
        deadline: tokio::time::Instant,
    ) -> Option<SentinelEvent> {
        loop {
            if let Some(e) = self.first(channel, since) {
                return Some(e);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Per sentinel, how many `channel` events (about the master only, with `master_only`)
    /// arrived at or after `since`.
    pub fn counts(&self, channel: &str, since: Instant, master_only: bool) -> Vec<usize> {
        let mut counts = vec![0; self.sentinels];
        for e in lock(&self.events).iter() {
            if e.channel == channel && e.at >= since && (!master_only || e.about_master()) {
                if let Some(c) = counts.get_mut(e.sentinel) {
                    *c += 1;
                }
            }
        }
        counts
    }

    /// Failovers since `since`: the most `+switch-master` events any one sentinel published
    /// (each sentinel announces every failover it learns of once).
    pub fn failovers(&self, since: Instant) -> usize {
        self.counts("+switch-master", since, false)
            .into_iter()
            .max()
            .unwrap_or(0)
    }
}

impl Drop for EventTap {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Our managers as processes
// ---------------------------------------------------------------------------------------------

/// `redis_node_manager` processes on one group (`--manager-name m1`, `m2`, ...), each logging
/// to `<log dir>/manager-<name>.log`. Dropping it kills them.
pub struct ManagerProcs {
    procs: Vec<(String, GuardedChild, PathBuf)>,
}

impl ManagerProcs {
    /// Starts `n` managers: `-z zk -n nodes --znode-path root --manager-name mI` plus `extra`,
    /// with `RUST_LOG=rust_log`.
    pub fn start(
        bin: &Path,
        n: usize,
        zk: &str,
        group: &RedisGroup,
        root: &str,
        extra: &[String],
        rust_log: &str,
    ) -> Result<ManagerProcs, String> {
        let mut procs = Vec::new();
        for i in 1..=n {
            let name = format!("m{i}");
            let log = group.dir().join(format!("manager-{name}.log"));
            let file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
            let file2 = file
                .try_clone()
                .map_err(|e| format!("{}: {e}", log.display()))?;
            let mut args: Vec<String> = vec![
                "-z".into(),
                zk.to_string(),
                "-n".into(),
                group.addrs().join(","),
                "--znode-path".into(),
                root.to_string(),
                "--manager-name".into(),
                name.clone(),
            ];
            args.extend(extra.iter().cloned());
            let bin = bin.to_path_buf();
            let rust_log = rust_log.to_string();
            let child = spawn_guarded(move || {
                let mut cmd = Command::new(bin);
                cmd.args(&args)
                    .env("RUST_LOG", rust_log)
                    .env("NO_COLOR", "1")
                    .stdin(Stdio::null())
                    .stdout(file)
                    .stderr(file2);
                cmd
            })
            .map_err(|e| format!("cannot start redis_node_manager {name}: {e}"))?;
            procs.push((name, child, log));
        }
        Ok(ManagerProcs { procs })
    }

    /// A message when a manager process has exited.
    pub fn exited(&self) -> Option<String> {
        self.procs.iter().find_map(|(name, p, log)| {
            p.exit_status().map(|st| {
                format!(
                    "redis_node_manager {name} exited ({st}); tail of its log:\n{}",
                    log_tail(log, 15)
                )
            })
        })
    }

    /// The managers' log files.
    pub fn log_paths(&self) -> Vec<PathBuf> {
        self.procs.iter().map(|(_, _, log)| log.clone()).collect()
    }

    /// The tail of each manager's log.
    pub fn tails(&self, n: usize) -> String {
        self.procs
            .iter()
            .map(|(name, _, log)| format!("\n--- tail of {name}'s log:\n{}", log_tail(log, n)))
            .collect()
    }

    /// Per manager, the log lines that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<Vec<String>> {
        self.procs
            .iter()
            .map(|(_, _, log)| match File::open(log) {
                Ok(f) => BufReader::new(f)
                    .lines()
                    .map_while(Result::ok)
                    .filter(|l| l.contains(needle))
                    .collect(),
                Err(_) => Vec::new(),
            })
            .collect()
    }

    /// Kills every manager (blocking).
    pub fn kill_all(&self) {
        for (_, p, _) in &self.procs {
            p.kill();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------------------------

/// One acknowledged `SET seq:N N`.
#[derive(Clone, Debug)]
pub struct Ack {
    pub n: u64,
    /// When the call started.
    pub sent: Instant,
    /// When the acknowledgement was seen.
    pub at: Instant,
    /// The node that acknowledged it, when the writer knows.
    pub node: Option<NodeAddr>,
}

/// What a [`Writer`] saw.
#[derive(Clone, Debug, Default)]
pub struct WriteLog {
    pub acks: Vec<Ack>,
    /// (when, error) of every write that failed.
    pub errors: Vec<(Instant, String)>,
}

impl WriteLog {
    /// The first acknowledgement seen after `after`.
    pub fn first_ack_after(&self, after: Instant) -> Option<&Ack> {
        // Acks are pushed in order; the tail is short after a failure.
        let i = self.acks.partition_point(|a| a.at <= after);
        self.acks.get(i)
    }

    /// The longest time without an acknowledgement within [`from`, `to`]: between two
    /// consecutive ones, or from the last one to `to` (not from `from` to the first one, so a
    /// writer that started after `from` is not charged for it); with where it starts.
    pub fn longest_gap(&self, from: Instant, to: Instant) -> (Duration, Instant) {
        let mut in_range = self.acks.iter().filter(|a| a.at >= from && a.at <= to);
        let Some(first) = in_range.next() else {
            return (to.saturating_duration_since(from), from);
        };
        let mut prev = first.at;
        let mut best = (Duration::ZERO, prev);
        for a in in_range {
            let g = a.at.duration_since(prev);
            if g > best.0 {
                best = (g, prev);
            }
            prev = a.at;
        }
        let tail = to.saturating_duration_since(prev);
        if tail > best.0 {
            best = (tail, prev);
        }
        best
    }
}

type SetFuture<'a> = Pin<Box<dyn Future<Output = Result<Option<NodeAddr>, String>> + Send + 'a>>;

/// Something that can `SET key n` and say which node acknowledged it (when it knows).
pub trait SeqWriter: Send + 'static {
    fn set<'a>(&'a mut self, key: &'a str, n: u64) -> SetFuture<'a>;
}

/// Writes through our [`Client`] (it does not say which node took the write).
pub struct ClientWriter(pub Client);

impl SeqWriter for ClientWriter {
    fn set<'a>(&'a mut self, key: &'a str, n: u64) -> SetFuture<'a> {
        Box::pin(async move {
            self.0
                .set::<_, _, ()>(key, n)
                .await
                .map(|()| None)
                .map_err(|e| e.to_string())
        })
    }
}

/// A Sentinel-aware writer as a typical redis-rs application writes it: it asks the
/// sentinels for the master (`redis::sentinel::SentinelClient`, which also checks that the
/// named node answers `ROLE` as a master), keeps one multiplexed connection to it, and after
/// any error drops that connection and asks the sentinels again on the next write (pausing
/// `retry_pause` when the sentinels could not name a reachable master).
pub struct SentinelWriter {
    sentinel: SentinelClient,
    conn: Option<(NodeAddr, MultiplexedConnection)>,
    config: AsyncConnectionConfig,
    connect_timeout: Duration,
    lookup_timeout: Duration,
    retry_pause: Duration,
}

impl SentinelWriter {
    /// Over the sentinels on `ports`; each write waits at most `command_timeout` for its
    /// reply, a connection at most `connect_timeout`.
    pub fn new(
        ports: &[u16],
        command_timeout: Duration,
        connect_timeout: Duration,
        retry_pause: Duration,
    ) -> Result<SentinelWriter, String> {
        let urls: Vec<String> = ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}/"))
            .collect();
        let sentinel = SentinelClient::build(
            urls,
            MASTER_NAME.to_string(),
            None,
            SentinelServerType::Master,
        )
        .map_err(|e| format!("SentinelClient::build: {e}"))?;
        Ok(SentinelWriter {
            sentinel,
            conn: None,
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(command_timeout)),
            connect_timeout,
            // Up to 3 sentinels are asked at once, each lookup then checks the named master
            // (redis-rs: 1 s connect, 500 ms reply bounds); a bound on the whole lookup.
            lookup_timeout: Duration::from_secs(3),
            retry_pause,
        })
    }

    async fn connect(&mut self) -> Result<(), String> {
        let client = tokio::time::timeout(self.lookup_timeout, self.sentinel.async_get_client())
            .await
            .map_err(|_| "asking the sentinels for the master timed out".to_string())?
            .map_err(|e| format!("asking the sentinels for the master: {e}"))?;
        let addr = match client.get_connection_info().addr() {
            ConnectionAddr::Tcp(host, port) => NodeAddr::new(host.clone(), *port),
            other => return Err(format!("unexpected master address {other:?}")),
        };
        let conn = tokio::time::timeout(
            self.connect_timeout + Duration::from_millis(50),
            client.get_multiplexed_async_connection_with_config(&self.config),
        )
        .await
        .map_err(|_| format!("connecting to {addr} timed out"))?
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
        self.conn = Some((addr, conn));
        Ok(())
    }
}

impl SeqWriter for SentinelWriter {
    fn set<'a>(&'a mut self, key: &'a str, n: u64) -> SetFuture<'a> {
        Box::pin(async move {
            if self.conn.is_none() {
                if let Err(e) = self.connect().await {
                    tokio::time::sleep(self.retry_pause).await;
                    return Err(e);
                }
            }
            let Some((addr, conn)) = self.conn.as_mut() else {
                return Err("no connection".into());
            };
            match redis::cmd("SET")
                .arg(key)
                .arg(n)
                .query_async::<()>(conn)
                .await
            {
                Ok(()) => Ok(Some(addr.clone())),
                Err(e) => {
                    let msg = format!("{addr}: {e}");
                    self.conn = None;
                    Err(msg)
                }
            }
        })
    }
}

/// A task writing `SET seq:N N` (N = 1, 2, ...) back to back, or one every `every`, and
/// logging each outcome. Dropping it aborts the task.
pub struct Writer {
    log: Arc<Mutex<WriteLog>>,
    stop: Arc<AtomicBool>,
    task: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts writing through `w`; a call that takes longer than `call_bound` is abandoned
    /// and logged as an error.
    pub fn spawn<W: SeqWriter>(mut w: W, every: Option<Duration>, call_bound: Duration) -> Writer {
        let log = Arc::new(Mutex::new(WriteLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let log = Arc::clone(&log);
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut tick = every.map(|e| {
                    let mut i = tokio::time::interval(e);
                    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    i
                });
                let mut n: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(t) = tick.as_mut() {
                        t.tick().await;
                    }
                    n += 1;
                    let key = format!("seq:{n}");
                    let sent = Instant::now();
                    let r = tokio::time::timeout(call_bound, w.set(&key, n)).await;
                    let at = Instant::now();
                    let mut log = lock(&log);
                    match r {
                        Ok(Ok(node)) => log.acks.push(Ack { n, sent, at, node }),
                        Ok(Err(e)) => log.errors.push((at, e)),
                        Err(_) => log
                            .errors
                            .push((at, format!("no answer within {call_bound:?}"))),
                    }
                }
            })
        };
        Writer {
            log,
            stop,
            task: Some(task),
        }
    }

    /// A copy of the log so far.
    pub fn snapshot(&self) -> WriteLog {
        lock(&self.log).clone()
    }

    /// Number of acknowledged writes so far.
    pub fn acked(&self) -> usize {
        lock(&self.log).acks.len()
    }

    /// Waits (polling every 1 ms; the time is the acknowledgement's own) for the first
    /// acknowledgement after `after`, until `deadline`.
    pub async fn wait_ack_after(
        &self,
        after: Instant,
        deadline: tokio::time::Instant,
    ) -> Option<Ack> {
        loop {
            if let Some(a) = lock(&self.log).first_ack_after(after) {
                return Some(a.clone());
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Stops after the write in progress (abandoning it after `within`), and returns the log.
    pub async fn stop(mut self, within: Duration) -> WriteLog {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(within, &mut task).await.is_err() {
                task.abort();
            }
        }
        lock(&self.log).clone()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// How many of the acknowledged writes are not on `addr` (`GET seq:N` is not `N`).
pub async fn count_lost(addr: &NodeAddr, acks: &[Ack]) -> Result<usize, String> {
    let mut conn = open(addr, Duration::from_secs(2), Duration::from_secs(5))
        .await
        .map_err(|e| format!("loss check: {e}"))?;
    let mut lost = 0;
    for chunk in acks.chunks(CHECK_BATCH) {
        let keys: Vec<String> = chunk.iter().map(|a| format!("seq:{}", a.n)).collect();
        let values: Vec<Option<u64>> = tokio::time::timeout(
            Duration::from_secs(5),
            redis::cmd("MGET").arg(&keys).query_async(&mut conn),
        )
        .await
        .map_err(|_| format!("loss check: MGET on {addr} timed out"))?
        .map_err(|e| format!("loss check: MGET on {addr}: {e}"))?;
        lost += chunk
            .iter()
            .zip(&values)
            .filter(|(a, v)| **v != Some(a.n))
            .count();
    }
    Ok(lost)
}

// ---------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------

/// Busy-loop processes (`sh -c 'while :; do :; done'`), killed on drop.
pub struct CpuHogs {
    procs: Vec<GuardedChild>,
    started: Instant,
}

impl CpuHogs {
    pub fn start(n: usize) -> Result<CpuHogs, String> {
        let mut procs = Vec::new();
        for _ in 0..n {
            procs.push(
                spawn_guarded(|| {
                    let mut cmd = Command::new("sh");
                    cmd.args(["-c", "while :; do :; done"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null());
                    cmd
                })
                .map_err(|e| format!("cannot start a busy loop: {e}"))?,
            );
        }
        Ok(CpuHogs {
            procs,
            started: Instant::now(),
        })
    }

    /// Per hog, the share of one core it got since it started (from `/proc/PID/schedstat`).
    pub fn core_shares(&self) -> Vec<f64> {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        self.procs
            .iter()
            .map(|p| {
                fs::read_to_string(format!("/proc/{}/schedstat", p.pid()))
                    .ok()
                    .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
                    .map_or(0.0, |ns| ns / 1e9 / wall)
            })
            .collect()
    }

    /// Kills them (blocking).
    pub fn stop(self) {
        for p in &self.procs {
            p.kill();
        }
    }
}

/// Copies `files` into `dir` (created), keeping their names; errors are printed, not fatal.
pub fn keep_logs(dir: &Path, files: &[PathBuf]) {
    if let Err(e) = fs::create_dir_all(dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return;
    }
    for f in files {
        if let Some(name) = f.file_name() {
            if let Err(e) = fs::copy(f, dir.join(name)) {
                eprintln!("cannot copy {} to {}: {e}", f.display(), dir.display());
            }
        }
    }
}

/// `/proc/loadavg`'s three load averages, as `uptime` prints them.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| "?".into())
}

// ---------------------------------------------------------------------------------------------
// PNG timelines
// ---------------------------------------------------------------------------------------------

/// One panel of [`plot_timelines`]: acknowledged writes per bin, and labelled instants.
pub struct Panel {
    pub title: String,
    /// Acknowledgement times relative to the failure, in ms.
    pub acks_ms: Vec<f64>,
    /// (time in ms, label) drawn as vertical lines.
    pub marks: Vec<(f64, String)>,
}

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers DejaVu Sans as plotters' `sans-serif` (once).
fn register_font() -> Result<(), String> {
    use std::sync::OnceLock;
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        for path in FONT_PATHS {
            if let Ok(bytes) = fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                return plotters::style::register_font(
                    "sans-serif",
                    plotters::style::FontStyle::Normal,
                    bytes,
                )
                .map_err(|_| format!("{path}: not a usable font"));
            }
        }
        Err(format!(
            "no DejaVu Sans font ({}); install fonts-dejavu-core (scripts/install-sentinel.sh)",
            FONT_PATHS.join(", ")
        ))
    })
    .clone()
}

/// Draws `panels` one above the other, sharing the x axis [`from_ms`, `to_ms`] and the y
/// scale: acknowledged writes per `bin_ms`, as bars, with each panel's marks as labelled
/// vertical lines.
pub fn plot_timelines(
    path: &Path,
    title: &str,
    from_ms: f64,
    to_ms: f64,
    bin_ms: f64,
    panels: &[Panel],
) -> Result<(), String> {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};

    register_font()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let bins = ((to_ms - from_ms) / bin_ms).ceil().max(1.0) as usize;
    let counts: Vec<Vec<u32>> = panels
        .iter()
        .map(|p| {
            let mut c = vec![0u32; bins];
            for &t in &p.acks_ms {
                if t >= from_ms && t < to_ms {
                    let i = ((t - from_ms) / bin_ms) as usize;
                    if let Some(slot) = c.get_mut(i) {
                        *slot += 1;
                    }
                }
            }
            c
        })
        .collect();
    let y_top = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    // The bars take the lower 60%; the marks' labels go in the band above them.
    let y_max = y_top / 0.6;

    let height = 60 + 330 * panels.len() as u32;
    let root = BitMapBackend::new(path, (1400, height)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 24))
        .map_err(|e| err(&e))?;
    let areas = root.split_evenly((panels.len(), 1));
    let colors = [RGBColor(31, 119, 180), RGBColor(214, 39, 40)];
    for (i, ((panel, area), c)) in panels.iter().zip(&areas).zip(&counts).enumerate() {
        let color = colors[i % colors.len()];
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 19))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(from_ms..to_ms, 0f64..y_max)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("ms since the failure")
            .y_desc(format!("acked writes per {bin_ms} ms"))
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .x_labels(16)
            .y_labels(6)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(c.iter().enumerate().filter(|(_, n)| **n > 0).map(|(j, n)| {
                let x0 = from_ms + j as f64 * bin_ms;
                Rectangle::new([(x0, 0.0), (x0 + bin_ms, f64::from(*n))], color.filled())
            }))
            .map_err(|e| err(&e))?;
        for (k, (t, label)) in panel.marks.iter().enumerate() {
            let mark_color = if k == 0 { BLACK } else { RGBColor(70, 70, 70) };
            chart
                .draw_series(LineSeries::new(
                    [(*t, 0.0), (*t, y_max)],
                    mark_color.stroke_width(2),
                ))
                .map_err(|e| err(&e))?;
            // Stacked from the top so that close marks do not overlap; to the left of the
            // line in the right part of the plot.
            let right = *t > from_ms + 0.6 * (to_ms - from_ms);
            let (text, anchor) = if right {
                (format!("{label} "), HPos::Right)
            } else {
                (format!(" {label}"), HPos::Left)
            };
            let y = y_max * (0.98 - 0.09 * k as f64);
            chart
                .draw_series(std::iter::once(Text::new(
                    text,
                    (*t, y),
                    ("sans-serif", 16)
                        .into_font()
                        .color(&mark_color)
                        .pos(Pos::new(anchor, VPos::Top)),
                )))
                .map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
