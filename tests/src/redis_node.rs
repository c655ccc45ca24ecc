//! One redis-server process ([`RedisNode`]) on 127.0.0.1 (or at a [`Place`]: a host of a
//! network namespace) without persistence, with handles to kill, freeze, restart and query it.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis_failover_client::NodeAddr;

use crate::process::{find_program, open_log, spawn_guarded, GuardedChild, Place};
use crate::redis_helpers::{parse_role, redis_cmd_at, value_to_string, NodeRole};
use crate::util::{lock, log_tail};
use crate::wait::{wait_until, POLL};

/// How long a redis-server may take to answer PING.
const REDIS_READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Connect/read/write timeout of the sync redis helpers.
const REDIS_CMD_TIMEOUT: Duration = Duration::from_secs(1);

/// The server the tests start: `REDIS_SERVER_BIN` (a path or a program name, e.g. Valkey's
/// `valkey-server`), else `redis-server`.
pub fn server_bin() -> String {
    std::env::var("REDIS_SERVER_BIN")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "redis-server".to_string())
}

/// Whether the server ([`server_bin`]) is found (a program name is looked up on `path`, a
/// `PATH` value); `Err` is one line saying what to install.
pub fn check_redis(path: Option<&OsStr>) -> Result<(), String> {
    let bin = server_bin();
    if bin != "redis-server" {
        return match find_program(&bin, path) {
            Some(_) => Ok(()),
            None => Err(format!(
                "{bin} (REDIS_SERVER_BIN) not found: give the path of a redis-server or valkey-server"
            )),
        };
    }
    match find_program("redis-server", path) {
        Some(_) => Ok(()),
        None => Err(
            "redis-server not found on PATH: install Debian's redis-server package \
             (apt-get install redis-server) or run .ci/run"
                .to_string(),
        ),
    }
}

/// A redis-server 7 process on 127.0.0.1 without persistence (`--save '' --appendonly no`),
/// using disk-based replication sync. Files live in the dir given to [`RedisNode::start`]:
/// `redis-PORT.log`, `redis-PORT.out` (stdout/stderr), `dump-PORT.rdb` (written by
/// replication sync only — a restarted node loads whatever RDB is there). Dropping it kills it.
#[derive(Debug)]
pub struct RedisNode {
    place: Place,
    port: u16,
    dir: PathBuf,
    extra_args: Vec<String>,
    proc: Mutex<GuardedChild>,
}

impl RedisNode {
    /// Starts `redis-server` on `port` (a replica of 127.0.0.1:`replica_of` if given), with
    /// `extra_args` appended to the command line, and waits until PING answers PONG.
    ///
    /// # Panics
    /// If redis-server is not installed (one line saying what to install), or if it does not
    /// answer within 15 s or exits (the message includes its log tail).
    pub fn start(dir: &Path, port: u16, replica_of: Option<u16>, extra_args: &[&str]) -> RedisNode {
        let extra: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        match Self::try_start(dir, port, replica_of, extra) {
            Ok(node) => node,
            Err((e, _)) => panic!("{e}"),
        }
    }

    /// Starts `redis-server` at `place` (bound to its address, `--protected-mode no`), a
    /// replica of `replica_of` if given, and waits until PING (from this process, through
    /// the bridge for a namespace) answers PONG; `Err` says why not (with the log tail).
    pub fn start_at(
        place: &Place,
        dir: &Path,
        port: u16,
        replica_of: Option<&NodeAddr>,
        extra_args: &[&str],
    ) -> Result<RedisNode, String> {
        let extra: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let master = replica_of.map(|m| (m.host.clone(), m.port));
        Self::try_start_at(place, dir, port, master, extra).map_err(|(e, _)| e)
    }

    /// Err carries the message and whether the process exited (e.g. port already in use).
    pub(crate) fn try_start(
        dir: &Path,
        port: u16,
        replica_of: Option<u16>,
        extra_args: Vec<String>,
    ) -> Result<RedisNode, (String, bool)> {
        let master = replica_of.map(|p| ("127.0.0.1".to_string(), p));
        Self::try_start_at(&Place::loopback(), dir, port, master, extra_args)
    }

    fn try_start_at(
        place: &Place,
        dir: &Path,
        port: u16,
        replica_of: Option<(String, u16)>,
        extra_args: Vec<String>,
    ) -> Result<RedisNode, (String, bool)> {
        let proc = Self::spawn_and_wait(place, dir, port, replica_of, &extra_args)?;
        Ok(RedisNode {
            place: place.clone(),
            port,
            dir: dir.to_path_buf(),
            extra_args,
            proc: Mutex::new(proc),
        })
    }

    fn spawn_and_wait(
        place: &Place,
        dir: &Path,
        port: u16,
        replica_of: Option<(String, u16)>,
        extra_args: &[String],
    ) -> Result<GuardedChild, (String, bool)> {
        check_redis(std::env::var_os("PATH").as_deref()).map_err(|e| (e, false))?;
        fs::create_dir_all(dir)
            .map_err(|e| (format!("cannot create {}: {e}", dir.display()), false))?;
        let log_path = dir.join(format!("redis-{port}.log"));
        let out_path = dir.join(format!("redis-{port}.out"));
        let out = open_log(&out_path)
            .map_err(|e| (format!("cannot open {}: {e}", out_path.display()), false))?;
        let out_err = out
            .try_clone()
            .map_err(|e| (format!("cannot clone a file handle: {e}"), false))?;
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            &place.ip,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir.display().to_string(),
            "--dbfilename",
            &format!("dump-{port}.rdb"),
            "--logfile",
            &log_path.display().to_string(),
            "--pidfile",
            &dir.join(format!("redis-{port}.pid")).display().to_string(),
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
            "--repl-diskless-sync",
            "no",
            "--repl-diskless-load",
            "disabled",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some((host, master)) = replica_of {
            args.extend(["--replicaof".into(), host, master.to_string()]);
        }
        args.extend(extra_args.iter().cloned());
        let started = Instant::now();
        let place = place.clone();
        let ip = place.ip.clone();
        let proc = spawn_guarded(move || {
            let mut cmd = place.command(server_bin());
            cmd.args(&args)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(out_err);
            cmd
        })
        .map_err(|e| (format!("cannot spawn redis-server: {e}"), false))?;
        let tails = || {
            format!(
                "tail of {}:\n{}\ntail of {}:\n{}",
                log_path.display(),
                log_tail(&log_path, 30),
                out_path.display(),
                log_tail(&out_path, 10)
            )
        };
        let deadline = started + REDIS_READY_TIMEOUT;
        loop {
            let pong = redis_cmd_at(&ip, port, Duration::from_millis(200), &["PING"]);
            // A node started with --requirepass answers NOAUTH: it is up all the same.
            let ready = match &pong {
                Ok(v) => value_to_string(v).as_deref() == Some("PONG"),
                Err(e) => e.code() == Some("NOAUTH"),
            };
            if ready {
                return Ok(proc);
            }
            if let Some(status) = proc.exit_status() {
                return Err((
                    format!(
                        "redis-server on port {port} exited ({status}) before answering PING; {}",
                        tails()
                    ),
                    true,
                ));
            }
            if Instant::now() >= deadline {
                return Err((
                    format!(
                        "redis-server on port {port} did not answer PONG within {REDIS_READY_TIMEOUT:?}; {}",
                        tails()
                    ),
                    false,
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `"IP:PORT"` (`127.0.0.1:PORT` unless started at another [`Place`]).
    pub fn addr(&self) -> String {
        format!("{}:{}", self.place.ip, self.port)
    }

    /// [`RedisNode::addr`] as a [`NodeAddr`].
    pub fn node_addr(&self) -> NodeAddr {
        NodeAddr::new(self.place.ip.clone(), self.port)
    }

    /// Where it runs.
    pub fn place(&self) -> &Place {
        &self.place
    }

    /// The directory holding this node's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of this node's redis log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("redis-{}.log", self.port))
    }

    /// Pid of the current (or, after [`RedisNode::kill9`], the last) process.
    pub fn pid(&self) -> u32 {
        lock(&self.proc).pid()
    }

    /// `true` until the process has exited (a SIGSTOPped node is still running).
    pub fn is_running(&self) -> bool {
        lock(&self.proc).is_running()
    }

    /// SIGKILL, and wait until the process is reaped.
    ///
    /// # Panics
    /// If it is still there 10 s after SIGKILL.
    pub fn kill9(&self) {
        let proc = lock(&self.proc);
        assert!(
            proc.kill(),
            "redis-server pid {} (port {}) survived SIGKILL",
            proc.pid(),
            self.port
        );
    }

    /// Freezes the process (SIGSTOP): the port still accepts connections but nothing answers.
    pub fn sigstop(&self) {
        lock(&self.proc).signal(libc::SIGSTOP);
    }

    /// Resumes a SIGSTOPped process.
    pub fn sigcont(&self) {
        lock(&self.proc).signal(libc::SIGCONT);
    }

    /// SIGCONT + SIGTERM (a graceful shutdown), waits up to `grace`, then SIGKILL; returns
    /// whether the process is gone.
    pub fn terminate(&self, grace: Duration) -> bool {
        lock(&self.proc).terminate(grace)
    }

    /// SIGCONT + SIGKILL without waiting (the drop of the node reaps it).
    pub(crate) fn kill_nowait(&self) {
        let proc = lock(&self.proc);
        proc.signal(libc::SIGCONT);
        proc.signal(libc::SIGKILL);
    }

    /// Starts the node again on the same port and dir with the same extra args (killing it
    /// first if it still runs), as a replica of port `replica_of` on this node's own address
    /// if given; waits for PONG.
    ///
    /// # Panics
    /// If it does not answer within 15 s.
    pub fn restart(&self, replica_of: Option<u16>) {
        let mut proc = lock(&self.proc);
        proc.kill();
        let master = replica_of.map(|p| (self.place.ip.clone(), p));
        match Self::spawn_and_wait(&self.place, &self.dir, self.port, master, &self.extra_args) {
            Ok(p) => *proc = p,
            Err((e, _)) => panic!("restart: {e}"),
        }
    }

    /// Runs one command (fresh connection, ~1 s connect/read/write timeouts).
    pub fn cmd(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        redis_cmd_at(&self.place.ip, self.port, REDIS_CMD_TIMEOUT, args)
    }

    /// Runs one command that must succeed (panics naming it and the node otherwise).
    pub fn must(&self, args: &[&str]) -> redis::Value {
        self.cmd(args)
            .unwrap_or_else(|e| panic!("{args:?} on {}: {e}", self.addr()))
    }

    /// Runs one command with the given connect/read/write timeout.
    pub fn cmd_timeout(
        &self,
        timeout: Duration,
        args: &[&str],
    ) -> redis::RedisResult<redis::Value> {
        redis_cmd_at(&self.place.ip, self.port, timeout, args)
    }

    /// `true` if PING answers PONG within `timeout`.
    pub fn ping(&self, timeout: Duration) -> bool {
        self.cmd_timeout(timeout, &["PING"])
            .ok()
            .and_then(|v| value_to_string(&v))
            .as_deref()
            == Some("PONG")
    }

    /// `GET key` as a string (`None` if missing or on error).
    pub fn get(&self, key: &str) -> Option<String> {
        self.cmd(&["GET", key])
            .ok()
            .and_then(|v| value_to_string(&v))
    }

    /// The text of `INFO <section>`, or `None` on error.
    pub fn info(&self, section: &str) -> Option<String> {
        self.cmd(&["INFO", section])
            .ok()
            .and_then(|v| value_to_string(&v))
    }

    /// How many times the node ran command `name` (`cmdstat_<name>` of `INFO commandstats`;
    /// 0 when never). Panics when the node does not answer: a count nobody read proves
    /// nothing.
    pub fn calls(&self, name: &str) -> u64 {
        self.calls_of(&[name])[0]
    }

    /// [`RedisNode::calls`] of each of `names`, read with one `INFO commandstats` (which
    /// the node counts as one more `INFO` once it has answered).
    pub fn calls_of(&self, names: &[&str]) -> Vec<u64> {
        let info = self.info("commandstats").unwrap_or_else(|| {
            panic!(
                "{}: no answer to INFO commandstats (counting {names:?})",
                self.addr()
            )
        });
        names
            .iter()
            .map(|name| {
                info.lines()
                    .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:calls=")))
                    .and_then(|rest| rest.split(',').next()?.parse().ok())
                    .unwrap_or(0)
            })
            .collect()
    }

    /// Role from `INFO replication`, or `None` if the node does not answer.
    pub fn role(&self) -> Option<NodeRole> {
        parse_role(&self.info("replication")?)
    }

    /// `master_repl_offset` from `INFO replication` (the processed offset on a replica too).
    pub fn offset(&self) -> Option<u64> {
        let info = self.info("replication")?;
        info.lines()
            .find_map(|l| l.trim().strip_prefix("master_repl_offset:"))
            .and_then(|v| v.trim().parse().ok())
    }

    /// True when this node answers as a replica of 127.0.0.1:`master_port`, with its link up
    /// if `link_up` is asked for.
    pub fn follows(&self, master_port: u16, link_up: bool) -> bool {
        matches!(self.role(), Some(NodeRole::Replica { master_port: p, link_up: up })
            if p == master_port && (up || !link_up))
    }

    /// Waits (up to `timeout`) until [`RedisNode::follows`]`(master_port, link_up)`.
    ///
    /// # Panics
    /// On timeout, naming `what`.
    pub fn wait_follows(&self, master_port: u16, link_up: bool, timeout: Duration, what: &str) {
        wait_until(timeout, what, || {
            self.follows(master_port, link_up).then_some(())
        });
    }

    /// Waits (up to `timeout`) until this node is a replica with `master_link_status:up`,
    /// and returns its master's port.
    ///
    /// # Panics
    /// On timeout.
    pub fn wait_link_up(&self, timeout: Duration) -> u16 {
        wait_until(
            timeout,
            &format!("replica {} to report master_link_status:up", self.addr()),
            || match self.role() {
                Some(NodeRole::Replica {
                    master_port,
                    link_up: true,
                }) => Some(master_port),
                _ => None,
            },
        )
    }
}
