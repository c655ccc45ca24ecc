//! `redis_node_manager` processes for the benches, started through the harness's
//! [`ManagerSet`] (`--manager-name m1`, `m2`, ...; each logging to `<log dir>/manager-<name>.log`;
//! killed when the set drops): a fresh trio with its managers, the wait until they are ready,
//! and the lines of their logs.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use redis_failover_client::{Topology, ZnodePaths};
use redis_failover_tests::manager::{self as harness, ManagerMode, ManagerSet};
use redis_failover_tests::RedisGroup;
use zookeeper_client as zk;

use crate::nodes::Trio;
use crate::tasks::{start_trio, teardown};
use crate::wait::{poll_until, Check};
use crate::watched::{Watched, Watchers};
use crate::znodes::count_children;

/// Poll interval of [`wait_ready`].
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
    /// Flags after `-z`, `-n`, `--znode-path`.
    pub extra: Vec<String>,
    /// `RUST_LOG` of the processes.
    pub rust_log: &'a str,
}

impl ManagerSpec<'_> {
    /// Starts the managers on `group`'s nodes (`-n`), logging into the group's directory.
    pub fn start(&self, group: &RedisGroup) -> Result<ManagerSet, String> {
        let mut flags = ManagerSet::base_flags(self.zk, &group.addrs(), self.root);
        flags.extend(self.extra.iter().cloned());
        let names: Vec<String> = (1..=self.count).map(|i| format!("m{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        ManagerSet::new(ManagerMode::Process(self.bin.to_path_buf()), flags)
            .rust_log(self.rust_log)
            .log_to(group.dir())
            .start_named(&names)
    }
}

impl Watchers for ManagerSet {
    fn tails(&self, n: usize) -> String {
        ManagerSet::tails(self, n)
    }

    fn log_paths(&self) -> Vec<PathBuf> {
        ManagerSet::log_paths(self)
    }
}

/// A fresh trio and the managers of `spec` on it (the trio is torn down again when they
/// cannot start).
pub async fn start_managed(spec: &ManagerSpec<'_>) -> Result<Watched<ManagerSet>, String> {
    let group = start_trio().await?;
    match spec.start(&group) {
        Ok(watchers) => Ok(Watched { watchers, group }),
        Err(e) => {
            teardown("the trio", move || drop(group)).await;
            Err(e)
        }
    }
}

/// Waits until `<root>/nodes` names `trio` with every replica, the lock has a child per
/// manager and every manager's view is in ZooKeeper (polling every 20 ms, at most
/// `timeout`); fails at once when a manager exits. Returns the topology.
pub async fn wait_ready(
    managers: &ManagerSet,
    zk: &zk::Client,
    root: &str,
    trio: &Trio,
    timeout: Duration,
) -> Result<Topology, String> {
    let paths = ZnodePaths::new(root).map_err(|e| format!("root {root}: {e}"))?;
    let n = managers.len();
    poll_until(timeout, READY_POLL, || async {
        let topo = harness::read_topology(zk, root).await;
        let locks = count_children(zk, &paths.lock()).await;
        let views = count_children(zk, &paths.manager_node_state()).await;
        if let Some(t) = topo.as_ref().filter(|t| trio.published_in(t)) {
            if locks == n && views == n {
                return Check::Done(t.clone());
            }
        }
        if let Some(e) = managers.exited() {
            return Check::Failed(e);
        }
        Check::Waiting(format!(
            "not ready within {timeout:?}: <root>/nodes holds {topo:?}, {locks} lock children, {views} manager views (want the trio, {n}, {n})"
        ))
    })
    .await
}

/// The lines of the managers' logs that contain `needle`, manager by manager.
pub fn log_lines(managers: &ManagerSet, needle: &str) -> Vec<String> {
    managers
        .log_paths()
        .iter()
        .flat_map(|log| match File::open(log) {
            Ok(f) => BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .filter(|l| l.contains(needle))
                .collect(),
            Err(_) => Vec::new(),
        })
        .collect()
}
