//! `redis_node_manager` processes on one group (`--manager-name m1`, `m2`, ...), each
//! logging to `<log dir>/manager-<name>.log`, killed by Drop guards; with what the benches ask
//! of them: are they ready, has one exited, the tails and lines of their logs, which one has a
//! given id.

use std::fs::File;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use redis_failover_client::{Topology, ZnodePaths};
use redis_failover_tests::manager as harness;
use redis_failover_tests::{free_port, log_tail, spawn_guarded, GuardedChild, RedisGroup};
use zookeeper_client as zk;

use crate::nodes::Trio;
use crate::tasks::{start_trio, teardown};
use crate::wait::{poll_until, Check};
use crate::znodes::count_children;

/// Poll interval of [`ManagerProcs::wait_ready`].
const READY_POLL: Duration = Duration::from_millis(20);

/// How to start the managers of a run.
pub struct ManagerSpec<'a> {
    /// The `redis_node_manager` binary.
    pub bin: &'a Path,
    /// How many (named `m1`, `m2`, ...).
    pub count: usize,
    /// ZooKeeper's connect string (`-z`).
    pub zk: &'a str,
    /// `--znode-path`.
    pub root: &'a str,
    /// Flags after `-z`, `-n`, `--znode-path`, `--manager-name` (and `--http-addr`).
    pub extra: Vec<String>,
    /// `RUST_LOG` of the processes.
    pub rust_log: &'a str,
    /// Give each an `--http-addr` on a free loopback port.
    pub http: bool,
    /// Where the logs go (the group's directory when `None`).
    pub log_dir: Option<&'a Path>,
}

/// One manager process.
pub struct ManagerProc {
    /// `--manager-name`.
    pub name: String,
    pub child: Arc<GuardedChild>,
    pub log: PathBuf,
    /// `--http-addr`, when asked for.
    pub http: Option<SocketAddr>,
}

/// The manager processes of a run. Dropping it kills them.
pub struct ManagerProcs {
    pub procs: Vec<ManagerProc>,
}

impl ManagerProcs {
    /// Starts the managers of `spec` on `group`'s nodes (`-n`).
    pub fn start(spec: &ManagerSpec, group: &RedisGroup) -> Result<ManagerProcs, String> {
        let dir = spec.log_dir.unwrap_or_else(|| group.dir());
        let mut procs = Vec::new();
        for i in 1..=spec.count {
            let name = format!("m{i}");
            let log = dir.join(format!("manager-{name}.log"));
            let file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
            let file2 = file
                .try_clone()
                .map_err(|e| format!("{}: {e}", log.display()))?;
            let http = spec
                .http
                .then(|| SocketAddr::from(([127, 0, 0, 1], free_port())));
            let mut args: Vec<String> = vec![
                "-z".into(),
                spec.zk.to_string(),
                "-n".into(),
                group.addrs().join(","),
                "--znode-path".into(),
                spec.root.to_string(),
                "--manager-name".into(),
                name.clone(),
            ];
            if let Some(h) = http {
                args.extend(["--http-addr".into(), h.to_string()]);
            }
            args.extend(spec.extra.iter().cloned());
            let bin = spec.bin.to_path_buf();
            let rust_log = spec.rust_log.to_string();
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
            procs.push(ManagerProc {
                name,
                child: Arc::new(child),
                log,
                http,
            });
        }
        Ok(ManagerProcs { procs })
    }

    /// A message when a manager process has exited.
    pub fn exited(&self) -> Option<String> {
        self.procs.iter().find_map(|p| {
            p.child.exit_status().map(|st| {
                format!(
                    "redis_node_manager {} exited ({st}); tail of its log:\n{}",
                    p.name,
                    log_tail(&p.log, 15)
                )
            })
        })
    }

    /// The process whose `--manager-name` gives the id `id` (`<hostname>-<name>`, the
    /// manager's own rule).
    pub fn by_id(&self, id: &str) -> Option<&ManagerProc> {
        let exact =
            hostname().and_then(|h| self.procs.iter().find(|p| id == format!("{h}-{}", p.name)));
        exact.or_else(|| {
            self.procs
                .iter()
                .find(|p| id.ends_with(&format!("-{}", p.name)))
        })
    }

    /// Waits until `<root>/nodes` names `trio` with every replica, the lock has a child per
    /// manager and every manager's view is in ZooKeeper (polling every 20 ms, at most
    /// `timeout`); fails at once when a manager exits. Returns the topology.
    pub async fn wait_ready(
        &self,
        zk: &zk::Client,
        root: &str,
        trio: &Trio,
        timeout: Duration,
    ) -> Result<Topology, String> {
        let paths = ZnodePaths::new(root).map_err(|e| format!("root {root}: {e}"))?;
        let n = self.procs.len();
        poll_until(timeout, READY_POLL, || async {
            let topo = harness::read_topology(zk, root).await;
            let locks = count_children(zk, &paths.lock()).await;
            let views = count_children(zk, &paths.manager_node_state()).await;
            if let Some(t) = topo.as_ref().filter(|t| trio.published_in(t)) {
                if locks == n && views == n {
                    return Check::Done(t.clone());
                }
            }
            if let Some(e) = self.exited() {
                return Check::Failed(e);
            }
            Check::Waiting(format!(
                "not ready within {timeout:?}: <root>/nodes holds {topo:?}, {locks} lock children, {views} manager views (want the trio, {n}, {n})"
            ))
        })
        .await
    }

    /// The managers' log files.
    pub fn log_paths(&self) -> Vec<PathBuf> {
        self.procs.iter().map(|p| p.log.clone()).collect()
    }

    /// The tail of each manager's log.
    pub fn tails(&self, n: usize) -> String {
        self.procs
            .iter()
            .map(|p| format!("\n--- tail of {}'s log:\n{}", p.name, log_tail(&p.log, n)))
            .collect()
    }

    /// Per manager, the log lines that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<Vec<String>> {
        self.procs
            .iter()
            .map(|p| match File::open(&p.log) {
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
        for p in &self.procs {
            p.child.kill();
        }
    }

    /// Stops every manager: SIGTERM, SIGKILL after `grace` (blocking).
    pub fn terminate_all(&self, grace: Duration) {
        for p in &self.procs {
            p.child.terminate(grace);
        }
    }
}

/// A fresh Redis trio with manager processes on it.
pub struct ManagedTrio {
    pub group: Arc<RedisGroup>,
    /// The managers, or why they did not start.
    pub managers: Result<ManagerProcs, String>,
}

impl ManagedTrio {
    /// Starts a fresh trio and the managers of `spec` on it.
    pub async fn start(spec: &ManagerSpec<'_>) -> Result<ManagedTrio, String> {
        let group = start_trio().await?;
        let managers = ManagerProcs::start(spec, &group);
        Ok(ManagedTrio { group, managers })
    }

    /// Runs `measure` on the managers (when they started), with the tails (`tail` lines) of
    /// their logs added to a failure.
    pub async fn measure<'a, T, F, Fut>(&'a self, tail: usize, measure: F) -> Result<T, String>
    where
        F: FnOnce(&'a ManagerProcs) -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        match &self.managers {
            Ok(m) => measure(m)
                .await
                .map_err(|e| format!("{e}{}", m.tails(tail))),
            Err(e) => Err(e.clone()),
        }
    }

    /// Kills the managers, then the trio (off the runtime's workers).
    pub async fn teardown(self) {
        teardown("the managers and the trio", move || {
            drop(self.managers);
            drop(self.group);
        })
        .await;
    }
}

/// The manager's own hostname rule (`/proc/sys/kernel/hostname`).
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}
