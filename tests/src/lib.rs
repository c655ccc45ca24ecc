//! Integration-test harness for redis_failover.
//!
//! Starts REAL throwaway processes on loopback — a standalone ZooKeeper 3.8 (the Debian
//! `zookeeper.jar`, run directly with `java ... ZooKeeperServerMain zoo.cfg`) and
//! `redis-server` 7.0 instances without persistence — and gives tests handles to stop, kill,
//! freeze (`SIGSTOP`) and restart them.
//!
//! Process hygiene, so that a panicking test never leaves strays behind:
//! * every handle is a Drop guard that kills its process by pid (after `SIGCONT`, in case it
//!   was stopped) and reaps it within a deadline;
//! * as a backstop every child gets `prctl(PR_SET_PDEATHSIG, SIGKILL)`. The kernel sends that
//!   signal when the *thread* that forked the child exits, so all children are forked by one
//!   long-lived spawner thread ([`spawn_guarded`]), which lives as long as the test binary.
//!
//! Every wait is a deadline-bounded poll ([`wait_until`], [`wait_until_async`]).

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, Read, Seek, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

pub use redis;

pub mod chaos;
pub mod http;
pub mod manager;

/// Poll interval of [`wait_until`] / [`wait_until_async`] and of the internal waits.
const POLL: Duration = Duration::from_millis(10);
/// How long a ZooKeeper server may take to answer `srvr` with `Mode:`.
const ZK_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a redis-server may take to answer PING.
const REDIS_READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long replicas of a fresh [`RedisGroup`] may take to report `master_link_status:up`.
const LINK_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process may take to disappear after SIGKILL.
const REAP_TIMEOUT: Duration = Duration::from_secs(10);
/// Grace period between SIGTERM and SIGKILL in [`ZkServer::stop`].
const ZK_STOP_GRACE: Duration = Duration::from_secs(5);
/// `zk_cli` is killed after this long.
const ZK_CLI_TIMEOUT: Duration = Duration::from_secs(20);
/// Connect/read/write timeout of the sync redis helpers.
const REDIS_CMD_TIMEOUT: Duration = Duration::from_secs(1);

/// Default ZooKeeper classpath: the jar's manifest pulls in its own dependencies; slf4j-simple
/// is the logging binding. Overridable with `ZK_CP`.
const ZK_CP: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";
const ZK_JVM_OPTS: &[&str] = &[
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xss512k",
    "-Xms16m",
    "-Xmx256m",
    "-XX:-UsePerfData",
];

// ---------------------------------------------------------------------------------------------
// Generic helpers
// ---------------------------------------------------------------------------------------------

/// Polls `f` every ~10 ms until it returns `Some`, and returns that value.
///
/// # Panics
/// With `"timed out after {timeout:?} waiting for {what}"` when `timeout` elapses first
/// (`f` is always tried once more at the deadline).
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        let now = Instant::now();
        if now >= deadline {
            // one last try exactly at/after the deadline
            if let Some(v) = f() {
                return v;
            }
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

/// Async twin of [`wait_until`], sleeping with `tokio::time` between polls.
///
/// # Panics
/// With `"timed out after {timeout:?} waiting for {what}"`.
pub async fn wait_until_async<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            if let Some(v) = f().await {
                return v;
            }
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL.min(deadline - now)).await;
    }
}

/// Installs a `tracing_subscriber` fmt subscriber writing through the test harness's capture
/// (`with_test_writer`), filtered by `RUST_LOG` (default `info`). Safe to call many times.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(filter)
        .try_init();
}

/// Returns a currently free TCP port on 127.0.0.1 (bind to port 0, read it, release it).
/// Never returns the same port twice within one process.
pub fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let handed_out = HANDED_OUT.get_or_init(|| Mutex::new(HashSet::new()));
    for _ in 0..1000 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("free_port: cannot bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("free_port: local_addr of a bound listener")
            .port();
        if lock(handed_out).insert(port) {
            return port;
        }
    }
    panic!("free_port: no fresh port after 1000 attempts");
}

/// A fresh znode root path like `/t_<name>_<pid>_<counter>`, unique within this test binary
/// (and across concurrently running binaries, through the pid). Characters of `name` other
/// than ASCII alphanumerics and `_` are replaced by `_`.
pub fn unique_root(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("/t_{clean}_{}_{n}", std::process::id())
}

/// Locks a mutex, ignoring poisoning (a panicking test must not break the cleanup of others).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The last `n` lines of a (log) file, or a note that it could not be read.
pub fn log_tail(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// `true` when `/proc/<pid>` exists and the process is neither a zombie nor dead.
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // the state is the first field after the parenthesised command name
        Ok(stat) => match stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
        {
            Some(state) => state != "Z" && state != "X" && state != "x",
            None => false,
        },
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Spawner thread + guarded children
// ---------------------------------------------------------------------------------------------

type BuildCommand = Box<dyn FnOnce() -> Command + Send>;
type SpawnRequest = (BuildCommand, Sender<io::Result<Child>>);

fn spawner() -> &'static Sender<SpawnRequest> {
    static SPAWNER: OnceLock<Sender<SpawnRequest>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("test-harness-spawner".into())
            .spawn(move || {
                // The sender lives in a static, so this loop (and thread) lives until the
                // process exits: then PR_SET_PDEATHSIG kills every child forked here.
                for (build, reply) in rx {
                    let result = catch_unwind(AssertUnwindSafe(move || {
                        let mut cmd = build();
                        let parent = std::process::id();
                        // SAFETY: the closure only calls async-signal-safe functions
                        // (prctl, getppid) and allocates nothing on the success path.
                        unsafe {
                            cmd.pre_exec(move || {
                                if libc::prctl(
                                    libc::PR_SET_PDEATHSIG,
                                    libc::SIGKILL as libc::c_ulong,
                                    0,
                                    0,
                                    0,
                                ) != 0
                                {
                                    return Err(io::Error::last_os_error());
                                }
                                // The parent may have died between fork and prctl.
                                if libc::getppid() as u32 != parent {
                                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                                }
                                Ok(())
                            });
                        }
                        cmd.spawn()
                    }))
                    .unwrap_or_else(|_| Err(io::Error::other("building the Command panicked")));
                    // the requester may have given up; then dropping the Child is all we can do
                    let _ = reply.send(result);
                }
            })
            .expect("cannot start the test-harness spawner thread");
        tx
    })
}

/// Spawns a child process from the harness's single long-lived spawner thread, with
/// `PR_SET_PDEATHSIG = SIGKILL`, so it dies at the latest when the test binary exits.
/// `build` runs on the spawner thread and returns the fully configured [`Command`].
pub fn spawn_child(build: impl FnOnce() -> Command + Send + 'static) -> io::Result<Child> {
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner()
        .send((Box::new(build), reply_tx))
        .map_err(|_| io::Error::other("test-harness spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("test-harness spawner thread dropped the request"))?
}

/// Like [`spawn_child`], wrapped in a [`GuardedChild`] that kills the process on drop.
pub fn spawn_guarded(build: impl FnOnce() -> Command + Send + 'static) -> io::Result<GuardedChild> {
    let child = spawn_child(build)?;
    Ok(GuardedChild {
        pid: child.id(),
        child: Mutex::new(child),
    })
}

/// A child process that is killed (SIGCONT, SIGKILL) and reaped when dropped.
/// All methods take `&self`; signals are only sent while the child is not yet reaped, so a
/// recycled pid is never hit.
#[derive(Debug)]
pub struct GuardedChild {
    pid: u32,
    child: Mutex<Child>,
}

impl GuardedChild {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status, if the process has exited (reaps it).
    pub fn exit_status(&self) -> Option<ExitStatus> {
        lock(&self.child).try_wait().ok().flatten()
    }

    /// `true` until the process has exited (a SIGSTOPped process is still running).
    pub fn is_running(&self) -> bool {
        self.exit_status().is_none()
    }

    /// Sends `sig` if the process has not exited yet; returns whether it was sent.
    pub fn signal(&self, sig: libc::c_int) -> bool {
        let mut child = lock(&self.child);
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        // SAFETY: plain kill(2) on our own un-reaped child.
        unsafe { libc::kill(self.pid as libc::pid_t, sig) == 0 }
    }

    /// Waits up to `timeout` for the process to exit (and reaps it).
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGCONT + SIGKILL, then waits (bounded) until it is reaped. Returns whether it is gone.
    pub fn kill(&self) -> bool {
        self.signal(libc::SIGCONT);
        self.signal(libc::SIGKILL);
        self.wait_exit(REAP_TIMEOUT).is_some()
    }

    /// SIGCONT + SIGTERM, waits up to `grace`, then escalates to [`GuardedChild::kill`].
    pub fn terminate(&self, grace: Duration) -> bool {
        self.signal(libc::SIGCONT);
        self.signal(libc::SIGTERM);
        self.wait_exit(grace).is_some() || self.kill()
    }
}

impl Drop for GuardedChild {
    fn drop(&mut self) {
        if !self.kill() {
            eprintln!(
                "test harness: pid {} did not exit within {REAP_TIMEOUT:?} of SIGKILL",
                self.pid
            );
        }
    }
}

fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

// ---------------------------------------------------------------------------------------------
// ZooKeeper
// ---------------------------------------------------------------------------------------------

fn zk_java() -> String {
    std::env::var("ZK_JAVA").unwrap_or_else(|_| "java".to_string())
}

fn zk_classpath() -> String {
    std::env::var("ZK_CP").unwrap_or_else(|_| ZK_CP.to_string())
}

/// Sends a ZooKeeper four-letter command (`srvr`, `ruok`, `mntr`, ...) to 127.0.0.1:`port`
/// and returns the answer, or `None` if nothing could be read within ~1.5 s.
pub fn zk_four_letter(port: u16, cmd: &str) -> Option<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(1)))
        .ok()?;
    stream.write_all(cmd.as_bytes()).ok()?;
    let mut out = Vec::new();
    // ZooKeeper closes the connection after answering; a timeout keeps what was read.
    let _ = stream.read_to_end(&mut out);
    if out.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Runs ZooKeeper's CLI non-interactively against 127.0.0.1:`port`
/// (`java ... org.apache.zookeeper.ZooKeeperMain -server 127.0.0.1:PORT <args>`), kills it
/// after 20 s, and returns its stdout (stderr is discarded). E.g. `zk_cli(port, &["get", "/x"])`.
pub fn zk_cli(port: u16, args: &[&str]) -> String {
    let out = tempfile::tempfile().expect("zk_cli: cannot create a temp file for stdout");
    let out_for_child = out
        .try_clone()
        .expect("zk_cli: cannot clone the stdout temp file handle");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let child = spawn_guarded(move || {
        let mut cmd = Command::new(zk_java());
        cmd.args([
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-XX:-UsePerfData",
            "-cp",
            &zk_classpath(),
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=error",
            "org.apache.zookeeper.ZooKeeperMain",
            "-server",
            &format!("127.0.0.1:{port}"),
        ])
        .args(&args)
        .stdin(Stdio::null())
        .stdout(out_for_child)
        .stderr(Stdio::null());
        cmd
    })
    .expect("zk_cli: cannot spawn java");
    if child.wait_exit(ZK_CLI_TIMEOUT).is_none() {
        eprintln!("zk_cli: still running after {ZK_CLI_TIMEOUT:?}, killing it");
        child.kill();
    }
    drop(child);
    let mut out = out;
    let mut text = Vec::new();
    out.rewind()
        .expect("zk_cli: cannot rewind the stdout temp file");
    out.read_to_end(&mut text)
        .expect("zk_cli: cannot read the stdout temp file");
    String::from_utf8_lossy(&text).into_owned()
}

/// A throwaway standalone ZooKeeper server on 127.0.0.1, with its config, data and log in a
/// temp dir. Dropping it stops the server and removes the dir.
#[derive(Debug)]
pub struct ZkServer {
    port: u16,
    proc: Mutex<Option<GuardedChild>>,
    // last field: dropped after the process is gone
    dir: tempfile::TempDir,
}

impl ZkServer {
    /// Starts a ZooKeeper on a free port and waits (up to 30 s) until `srvr` answers `Mode:`.
    ///
    /// # Panics
    /// If it is not ready in time (the message includes the tail of its log).
    pub fn start() -> ZkServer {
        let mut last_err = String::new();
        // A port picked by free_port() can be grabbed by someone else before ZooKeeper binds
        // it; the server then exits at once, and we try again on another port.
        for _ in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("rf-zk-")
                .tempdir()
                .expect("ZkServer: cannot create a temp dir");
            let zk = ZkServer {
                port: free_port(),
                proc: Mutex::new(None),
                dir,
            };
            zk.write_config().expect("ZkServer: cannot write zoo.cfg");
            match zk.spawn_and_wait() {
                Ok(()) => return zk,
                Err(e) => {
                    let exited = lock(&zk.proc).as_ref().is_some_and(|p| !p.is_running());
                    if !exited {
                        panic!("{e}");
                    }
                    last_err = e;
                }
            }
        }
        panic!("{last_err}");
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `"127.0.0.1:PORT"`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The temp dir holding `zoo.cfg`, `data/` and `zk.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of the server's log (stdout + stderr of the JVM).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("zk.log")
    }

    /// Pid of the current server process, if one was started and not stopped.
    pub fn pid(&self) -> Option<u32> {
        lock(&self.proc).as_ref().map(GuardedChild::pid)
    }

    /// `true` while the server process exists (even if it is not serving yet).
    pub fn is_running(&self) -> bool {
        lock(&self.proc)
            .as_ref()
            .is_some_and(GuardedChild::is_running)
    }

    /// The answer to the `srvr` four-letter command, if the server answers.
    pub fn srvr(&self) -> Option<String> {
        zk_four_letter(self.port, "srvr")
    }

    /// SIGTERM, then SIGKILL after 5 s; waits until the process is reaped.
    pub fn stop(&self) {
        if let Some(p) = lock(&self.proc).take() {
            p.terminate(ZK_STOP_GRACE);
        }
    }

    /// SIGKILL; waits until the process is reaped. The data dir survives.
    pub fn kill(&self) {
        if let Some(p) = lock(&self.proc).take() {
            p.kill();
        }
    }

    /// Freezes the server (SIGSTOP): it keeps its port but answers nothing, so sessions expire.
    pub fn sigstop(&self) {
        if let Some(p) = lock(&self.proc).as_ref() {
            p.signal(libc::SIGSTOP);
        }
    }

    /// Resumes a SIGSTOPped server.
    pub fn sigcont(&self) {
        if let Some(p) = lock(&self.proc).as_ref() {
            p.signal(libc::SIGCONT);
        }
    }

    /// Starts the server again on the same port with the same data dir (stopping it first if
    /// it is still running) and waits until it is ready.
    ///
    /// # Panics
    /// If it is not ready within 30 s.
    pub fn restart(&self) {
        self.stop();
        if let Err(e) = self.spawn_and_wait() {
            panic!("{e}");
        }
    }

    fn write_config(&self) -> io::Result<()> {
        let data = self.dir.path().join("data");
        fs::create_dir_all(&data)?;
        let cfg = format!(
            "tickTime=500\n\
             dataDir={}\n\
             clientPort={}\n\
             clientPortAddress=127.0.0.1\n\
             maxClientCnxns=0\n\
             minSessionTimeout=1000\n\
             maxSessionTimeout=60000\n\
             admin.enableServer=false\n\
             4lw.commands.whitelist=ruok,srvr,stat,mntr,cons,dump,wchs,wchc,conf,envi,crst,srst\n\
             forceSync=no\n",
            data.display(),
            self.port
        );
        fs::write(self.dir.path().join("zoo.cfg"), cfg)
    }

    fn spawn_and_wait(&self) -> Result<(), String> {
        let cfg = self.dir.path().join("zoo.cfg");
        let log_path = self.log_path();
        let log = open_log(&log_path)
            .map_err(|e| format!("ZkServer: cannot open {}: {e}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("ZkServer: cannot clone log handle: {e}"))?;
        let level = std::env::var("ZK_LOG_LEVEL").unwrap_or_else(|_| "warn".to_string());
        let started = Instant::now();
        let child = spawn_guarded(move || {
            let mut cmd = Command::new(zk_java());
            cmd.args(ZK_JVM_OPTS)
                .arg("-cp")
                .arg(zk_classpath())
                .arg(format!("-Dorg.slf4j.simpleLogger.defaultLogLevel={level}"))
                .arg("-Dzookeeper.jmx.log4j.disable=true")
                .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
                .arg(cfg)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err);
            cmd
        })
        .map_err(|e| format!("ZkServer: cannot spawn {}: {e}", zk_java()))?;
        let mut slot = lock(&self.proc);
        *slot = Some(child);
        let child = slot.as_ref().expect("ZkServer: child was just stored");
        let deadline = started + ZK_READY_TIMEOUT;
        loop {
            if self.srvr().is_some_and(|out| out.contains("Mode:")) {
                return Ok(());
            }
            if let Some(status) = child.exit_status() {
                return Err(format!(
                    "ZooKeeper on port {} exited ({status}) before it was ready; tail of {}:\n{}",
                    self.port,
                    log_path.display(),
                    log_tail(&log_path, 40)
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "ZooKeeper on port {} not ready (srvr without `Mode:`) after {ZK_READY_TIMEOUT:?}; tail of {}:\n{}",
                    self.port,
                    log_path.display(),
                    log_tail(&log_path, 40)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.stop();
    }
}

static SHARED_ZK: OnceLock<ZkServer> = OnceLock::new();

extern "C" fn cleanup_shared_zk() {
    if let Some(zk) = SHARED_ZK.get() {
        // try_lock: never block process exit on a lock some stuck thread may hold
        if let Ok(mut slot) = zk.proc.try_lock() {
            if let Some(p) = slot.take() {
                p.kill();
            }
        }
        let _ = fs::remove_dir_all(zk.dir.path());
    }
}

/// One ZooKeeper per test binary, started lazily on first use. Give each test its own
/// [`unique_root`]. It is killed when the binary exits (an `atexit` hook that also removes
/// its temp dir, with `PR_SET_PDEATHSIG` of the spawner thread as a backstop).
pub fn shared_zk() -> &'static ZkServer {
    SHARED_ZK.get_or_init(|| {
        let zk = ZkServer::start();
        // SAFETY: registering a plain extern "C" fn with no captured state.
        unsafe {
            libc::atexit(cleanup_shared_zk);
        }
        zk
    })
}

// ---------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------

/// Replication role of a redis node, parsed from `INFO replication`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// `role:master`.
    Master,
    /// `role:slave`, with its `master_port` and whether `master_link_status:up`.
    Replica { master_port: u16, link_up: bool },
}

/// Parses the text of `INFO replication` into a [`NodeRole`].
pub fn parse_role(info: &str) -> Option<NodeRole> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    match field("role")? {
        "master" => Some(NodeRole::Master),
        "slave" | "replica" => Some(NodeRole::Replica {
            master_port: field("master_port")?.parse().ok()?,
            link_up: field("master_link_status") == Some("up"),
        }),
        _ => None,
    }
}

fn value_to_string(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::VerbatimString { text, .. } => Some(text.clone()),
        redis::Value::Okay => Some("OK".to_string()),
        redis::Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Runs one command against 127.0.0.1:`port` on a fresh connection whose connect, read and
/// write timeouts are all `timeout`.
pub fn redis_cmd_timeout(
    port: u16,
    timeout: Duration,
    args: &[&str],
) -> redis::RedisResult<redis::Value> {
    let (name, rest) = args.split_first().ok_or_else(|| {
        redis::RedisError::from(io::Error::new(
            io::ErrorKind::InvalidInput,
            "redis_cmd: empty command",
        ))
    })?;
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut con = client.get_connection_with_timeout(timeout)?;
    con.set_read_timeout(Some(timeout))?;
    con.set_write_timeout(Some(timeout))?;
    let mut cmd = redis::cmd(name);
    for a in rest {
        cmd.arg(*a);
    }
    cmd.query(&mut con)
}

/// A redis-server 7 process on 127.0.0.1 without persistence (`--save '' --appendonly no`),
/// using disk-based replication sync. Files live in the dir given to [`RedisNode::start`]:
/// `redis-PORT.log`, `redis-PORT.out` (stdout/stderr), `dump-PORT.rdb` (written by
/// replication sync only — a restarted node loads whatever RDB is there). Dropping it kills it.
#[derive(Debug)]
pub struct RedisNode {
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
    /// If it does not answer within 15 s or exits (the message includes its log tail).
    pub fn start(dir: &Path, port: u16, replica_of: Option<u16>, extra_args: &[&str]) -> RedisNode {
        let extra: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        match Self::try_start(dir, port, replica_of, extra) {
            Ok(node) => node,
            Err((e, _)) => panic!("{e}"),
        }
    }

    /// Err carries the message and whether the process exited (e.g. port already in use).
    fn try_start(
        dir: &Path,
        port: u16,
        replica_of: Option<u16>,
        extra_args: Vec<String>,
    ) -> Result<RedisNode, (String, bool)> {
        let proc = Self::spawn_and_wait(dir, port, replica_of, &extra_args)?;
        Ok(RedisNode {
            port,
            dir: dir.to_path_buf(),
            extra_args,
            proc: Mutex::new(proc),
        })
    }

    fn spawn_and_wait(
        dir: &Path,
        port: u16,
        replica_of: Option<u16>,
        extra_args: &[String],
    ) -> Result<GuardedChild, (String, bool)> {
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
            "127.0.0.1",
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
        if let Some(master) = replica_of {
            args.extend(["--replicaof".into(), "127.0.0.1".into(), master.to_string()]);
        }
        args.extend(extra_args.iter().cloned());
        let started = Instant::now();
        let proc = spawn_guarded(move || {
            let mut cmd = Command::new("redis-server");
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
            let pong = redis_cmd_timeout(port, Duration::from_millis(200), &["PING"]);
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

    /// `"127.0.0.1:PORT"`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
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

    /// Starts the node again on the same port and dir with the same extra args (killing it
    /// first if it still runs), as a replica of `replica_of` if given; waits for PONG.
    ///
    /// # Panics
    /// If it does not answer within 15 s.
    pub fn restart(&self, replica_of: Option<u16>) {
        let mut proc = lock(&self.proc);
        proc.kill();
        match Self::spawn_and_wait(&self.dir, self.port, replica_of, &self.extra_args) {
            Ok(p) => *proc = p,
            Err((e, _)) => panic!("restart: {e}"),
        }
    }

    /// Runs one command (fresh connection, ~1 s connect/read/write timeouts).
    pub fn cmd(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        redis_cmd_timeout(self.port, REDIS_CMD_TIMEOUT, args)
    }

    /// Runs one command with the given connect/read/write timeout.
    pub fn cmd_timeout(
        &self,
        timeout: Duration,
        args: &[&str],
    ) -> redis::RedisResult<redis::Value> {
        redis_cmd_timeout(self.port, timeout, args)
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

/// A temp dir with a master (`node(0)`) and replicas of it. Dropping it kills all nodes,
/// then removes the dir.
#[derive(Debug)]
pub struct RedisGroup {
    nodes: Vec<RedisNode>,
    // last field: dropped after the nodes are killed
    dir: tempfile::TempDir,
}

impl RedisGroup {
    /// A master and 2 replicas, both replicas linked (`master_link_status:up`).
    pub fn trio() -> RedisGroup {
        Self::start(2, &[])
    }

    /// A master (`node(0)`) and `n_replicas` replicas of it on free ports, every node started
    /// with `extra_args`; waits (up to 30 s) until every replica reports its link up.
    ///
    /// # Panics
    /// If a node does not start or a link does not come up in time.
    pub fn start(n_replicas: usize, extra_args: &[&str]) -> RedisGroup {
        let dir = tempfile::Builder::new()
            .prefix("rf-redis-")
            .tempdir()
            .expect("RedisGroup: cannot create a temp dir");
        let extra: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let mut nodes: Vec<RedisNode> = Vec::with_capacity(n_replicas + 1);
        for i in 0..=n_replicas {
            let replica_of = if i == 0 { None } else { Some(nodes[0].port) };
            nodes.push(Self::start_on_some_port(dir.path(), replica_of, &extra));
        }
        let group = RedisGroup { nodes, dir };
        for node in &group.nodes[1..] {
            let master = node.wait_link_up(LINK_UP_TIMEOUT);
            assert_eq!(
                master,
                group.nodes[0].port,
                "replica {} follows the wrong master",
                node.addr()
            );
        }
        group
    }

    /// Starts a node on a free port, retrying on another port if it exits at once (a port
    /// picked by free_port() may be taken by someone else before redis binds it).
    fn start_on_some_port(dir: &Path, replica_of: Option<u16>, extra: &[String]) -> RedisNode {
        let mut last = String::new();
        for _ in 0..3 {
            match RedisNode::try_start(dir, free_port(), replica_of, extra.to_vec()) {
                Ok(node) => return node,
                Err((e, true)) => last = e,
                Err((e, false)) => panic!("{e}"),
            }
        }
        panic!("{last}");
    }

    /// The shared temp dir of all nodes.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `"127.0.0.1:PORT"` of every node, master first.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(RedisNode::addr).collect()
    }

    /// Ports of every node, master first.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisNode::port).collect()
    }

    /// Number of nodes (master included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a group has at least its master.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// All nodes, master first.
    pub fn nodes(&self) -> &[RedisNode] {
        &self.nodes
    }

    /// Node `i` (0 = the initial master).
    pub fn node(&self, i: usize) -> &RedisNode {
        &self.nodes[i]
    }

    /// Node `i`, mutably.
    pub fn node_mut(&mut self, i: usize) -> &mut RedisNode {
        &mut self.nodes[i]
    }
}

impl Drop for RedisGroup {
    fn drop(&mut self) {
        // SIGKILL everyone first so replicas do not spin reconnecting while others die,
        // then reap each (the nodes' own Drop does that).
        for node in &self.nodes {
            let proc = lock(&node.proc);
            proc.signal(libc::SIGCONT);
            proc.signal(libc::SIGKILL);
        }
        self.nodes.clear();
    }
}
