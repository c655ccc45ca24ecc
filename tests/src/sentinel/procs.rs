//! Redis Sentinel processes, each with its own config file, monitoring one master as
//! [`MASTER_NAME`]: on free loopback ports in a temp dir ([`Sentinels::start`]), or one per
//! [`Place`] (a host of [`crate::netns::Net`], through `ip netns exec`), bound to and
//! announcing that place's address, with their files in a kept directory
//! ([`Sentinels::start_at`]). Killed by pid by Drop guards. And one-shot commands to them.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis_failover_client::NodeAddr;

use crate::{free_port, log_tail, redis_cmd_at, spawn_guarded, GuardedChild, Place};

use super::MASTER_NAME;

/// How long a sentinel may take to answer PING after it is spawned.
const SENTINEL_READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Connect / reply timeout of the bench's own commands to sentinels.
const SENTINEL_CMD_TIMEOUT: Duration = Duration::from_millis(500);

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
    crate::process::find_program(name, std::env::var_os("PATH").as_deref()).is_some()
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
    ip: String,
    port: u16,
    log: PathBuf,
    child: GuardedChild,
}

/// Sentinel processes monitoring one master. Dropping it kills them, then removes their temp
/// dir (if they have one).
pub struct Sentinels {
    procs: Vec<SentinelProc>,
    settings: SentinelSettings,
    dir: PathBuf,
    // last field: removed after the processes are gone
    _temp: Option<tempfile::TempDir>,
}

impl Sentinels {
    /// Starts `n` sentinels on free loopback ports monitoring 127.0.0.1:`master_port` as
    /// [`MASTER_NAME`], their files in a temp dir, and waits until each answers PING. Blocking.
    pub fn start(
        program: &SentinelProgram,
        n: usize,
        master_port: u16,
        settings: SentinelSettings,
    ) -> Result<Sentinels, String> {
        let temp = tempfile::Builder::new()
            .prefix("rf-sentinel-")
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir for the sentinels: {e}"))?;
        let dir = temp.path().to_path_buf();
        let places = vec![Place::loopback(); n];
        let master = NodeAddr::new("127.0.0.1", master_port);
        Sentinels::start_in(program, &places, &master, settings, dir, Some(temp))
    }

    /// Starts one sentinel per place (bound to and announcing its address, on a free port)
    /// monitoring `master` as [`MASTER_NAME`], with their configs and logs in `dir` (created,
    /// kept), and waits until each answers PING from here. Blocking.
    pub fn start_at(
        program: &SentinelProgram,
        places: &[Place],
        master: &NodeAddr,
        settings: SentinelSettings,
        dir: &std::path::Path,
    ) -> Result<Sentinels, String> {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Sentinels::start_in(program, places, master, settings, dir.to_path_buf(), None)
    }

    fn start_in(
        program: &SentinelProgram,
        places: &[Place],
        master: &NodeAddr,
        settings: SentinelSettings,
        dir: PathBuf,
        temp: Option<tempfile::TempDir>,
    ) -> Result<Sentinels, String> {
        let mut sentinels = Sentinels {
            procs: Vec::new(),
            settings,
            dir,
            _temp: temp,
        };
        for place in places {
            let mut last = String::new();
            let mut started = None;
            // A port picked by free_port() may be taken before the sentinel binds it.
            for _ in 0..3 {
                match sentinels.start_one(program, place, master) {
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
        place: &Place,
        master: &NodeAddr,
    ) -> Result<SentinelProc, String> {
        let port = free_port();
        let ip = place.ip.clone();
        let dir = self.dir.as_path();
        let name = format!("sentinel-{ip}-{port}");
        let conf = dir.join(format!("{name}.conf"));
        let log = dir.join(format!("{name}.log"));
        let s = self.settings;
        let text = format!(
            "port {port}\n\
             bind {ip}\n\
             protected-mode no\n\
             daemonize no\n\
             dir {dir}\n\
             logfile {log}\n\
             sentinel announce-ip {ip}\n\
             sentinel monitor {MASTER_NAME} {master_ip} {master_port} {quorum}\n\
             sentinel down-after-milliseconds {MASTER_NAME} {down}\n\
             sentinel failover-timeout {MASTER_NAME} {failover}\n\
             sentinel parallel-syncs {MASTER_NAME} {parallel}\n",
            dir = dir.display(),
            log = log.display(),
            master_ip = master.host,
            master_port = master.port,
            quorum = s.quorum,
            down = s.down_after_ms,
            failover = s.failover_timeout_ms,
            parallel = s.parallel_syncs,
        );
        fs::write(&conf, text).map_err(|e| format!("{}: {e}", conf.display()))?;
        let out_path = dir.join(format!("{name}.out"));
        let out = File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
        let out2 = out
            .try_clone()
            .map_err(|e| format!("{}: {e}", out_path.display()))?;
        let (bin, extra) = (program.program.clone(), program.extra.clone());
        let (conf_arg, place2) = (conf.clone(), place.clone());
        let child = spawn_guarded(move || {
            let mut cmd = place2.command(bin);
            cmd.arg(conf_arg)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(out2);
            cmd
        })
        .map_err(|e| format!("cannot start {}: {e}", program.program))?;
        let who = format!("sentinel {ip}:{port}");
        wait_sentinel_ping(
            &child,
            (&ip, port),
            SENTINEL_READY_TIMEOUT,
            &who,
            (&log, &out_path),
        )?;
        Ok(SentinelProc {
            ip,
            port,
            log,
            child,
        })
    }

    /// The sentinels' ports.
    pub fn ports(&self) -> Vec<u16> {
        self.procs.iter().map(|p| p.port).collect()
    }

    /// The sentinels' addresses.
    pub fn addrs(&self) -> Vec<NodeAddr> {
        self.procs
            .iter()
            .map(|p| NodeAddr::new(p.ip.clone(), p.port))
            .collect()
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
                match sentinel_master_fields(&p.ip, p.port) {
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
                            match sentinel_cmd_at(
                                &p.ip,
                                p.port,
                                &["SENTINEL", "CKQUORUM", MASTER_NAME],
                            ) {
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
        let answers = self.master_addrs(SENTINEL_CMD_TIMEOUT);
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

    /// `SENTINEL get-master-addr-by-name` of every sentinel, in order, each on a fresh
    /// connection bounded by `timeout` (blocking).
    pub fn master_addrs(&self, timeout: Duration) -> Vec<Result<NodeAddr, String>> {
        self.procs
            .iter()
            .map(|p| {
                let args = ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME];
                let v = redis_cmd_at(&p.ip, p.port, timeout, &args)
                    .map(|v| flatten(&v))
                    .map_err(|e| format!("{}:{}: {e}", p.ip, p.port))?;
                match v.as_slice() {
                    [host, port] => port
                        .parse()
                        .map(|port| NodeAddr::new(host.clone(), port))
                        .map_err(|_| format!("bad port {port:?}")),
                    _ => Err(format!("unexpected answer {v:?}")),
                }
            })
            .collect()
    }

    /// A message when a sentinel process has exited.
    pub fn exited(&self) -> Option<String> {
        self.procs.iter().find_map(|p| {
            p.child.exit_status().map(|st| {
                format!(
                    "sentinel {}:{} exited ({st}); tail of its log:\n{}",
                    p.ip,
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
                    "\n--- tail of sentinel {}:{}'s log:\n{}",
                    p.ip,
                    p.port,
                    log_tail(&p.log, n)
                )
            })
            .collect()
    }
}

/// One command to the sentinel on 127.0.0.1:`port` on a fresh connection, the reply
/// flattened to strings.
pub fn sentinel_cmd(port: u16, args: &[&str]) -> Result<Vec<String>, String> {
    sentinel_cmd_at("127.0.0.1", port, args)
}

/// [`sentinel_cmd`] to the sentinel on `ip`:`port`.
pub fn sentinel_cmd_at(ip: &str, port: u16, args: &[&str]) -> Result<Vec<String>, String> {
    let v = redis_cmd_at(ip, port, SENTINEL_CMD_TIMEOUT, args)
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
fn sentinel_master_fields(ip: &str, port: u16) -> Result<HashMap<String, String>, String> {
    let flat = sentinel_cmd_at(ip, port, &["SENTINEL", "MASTER", MASTER_NAME])?;
    Ok(flat
        .chunks(2)
        .filter_map(|kv| match kv {
            [k, v] => Some((k.clone(), v.clone())),
            _ => None,
        })
        .collect())
}

/// Waits until the sentinel `child` answers PING at `ip:port`, for at most `timeout`.
/// Otherwise the error says that `who` exited or did not answer, with the tail of its log
/// (and of its stdout and stderr, `logs.1`, when it exited).
pub fn wait_sentinel_ping(
    child: &GuardedChild,
    (ip, port): (&str, u16),
    timeout: Duration,
    who: &str,
    (log, out): (&Path, &Path),
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if redis_cmd_at(ip, port, Duration::from_millis(200), &["PING"]).is_ok() {
            return Ok(());
        }
        if let Some(st) = child.exit_status() {
            return Err(format!(
                "{who} exited ({st}) before answering PING; tail of {}:\n{}\n{}",
                log.display(),
                log_tail(log, 20),
                log_tail(out, 5)
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{who} did not answer PING within {timeout:?}; tail of {}:\n{}",
                log.display(),
                log_tail(log, 20)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
