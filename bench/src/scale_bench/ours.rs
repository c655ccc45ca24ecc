//! Our side of a run: the TOML config file with one `[[groups]]` per Redis group (`name =
//! "g<i>"`, its 3 `nodes`, `znode_path = "<root>/g<i>"`; the format of docs/operations.md,
//! "Config file"), the `redis_node_manager` processes on it (the harness's [`ManagerSet`]:
//! `-C <file> -z <zk> --down-after-ms D [--required-node-managers R] --manager-name m<j>`,
//! each logging to `manager-m<j>.log`, killed by pid when the set drops), and the wait until
//! every group's `<znode_path>/nodes` names its master and both replicas.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis_failover_tests::manager::{read_topology, ManagerMode, ManagerSet};
use zookeeper_client as zk;

use super::groups::Groups;
use crate::tasks::{join_error, teardown};

/// Poll interval of [`Ours::wait_published`].
const PUBLISHED_POLL: Duration = Duration::from_millis(250);
/// Topology reads at the same time.
const PARALLEL_READS: usize = 32;
/// Grace of SIGTERM before SIGKILL when the managers are stopped (the harness's).
const STOP_GRACE_NOTE: &str = "SIGTERM, 10 s, then SIGKILL";

/// How to start the managers.
pub(crate) struct OursSpec<'a> {
    pub bin: &'a Path,
    pub zk: &'a str,
    /// Parent of the groups' znode paths.
    pub root: &'a str,
    pub managers: usize,
    pub down_after_ms: u64,
    /// `--required-node-managers`, when given.
    pub required: Option<usize>,
    /// `--probe-interval-ms`, when given.
    pub probe_interval_ms: Option<u64>,
}

/// The managers of a run, on every group.
pub(crate) struct Ours {
    pub managers: ManagerSet,
    /// `<root>/g<i>`, by group.
    pub roots: Vec<String>,
}

/// Writes the config file at `path`: one `[[groups]]` per group, under `root`.
pub(crate) fn write_config(
    path: &Path,
    groups: &Groups,
    root: &str,
) -> Result<Vec<String>, String> {
    let mut text = String::from("# scale_bench: one [[groups]] per Redis group\n");
    let mut roots = Vec::with_capacity(groups.len());
    for (i, g) in groups.iter().enumerate() {
        let name = Groups::name(i);
        let znode = format!("{root}/{name}");
        let nodes: Vec<String> = g.addrs().iter().map(|a| format!("{a:?}")).collect();
        let _ = write!(
            text,
            "\n[[groups]]\nname = \"{name}\"\nnodes = [{}]\nznode_path = \"{znode}\"\n",
            nodes.join(", ")
        );
        roots.push(znode);
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(roots)
}

impl Ours {
    /// Writes the config into `dir` and starts the managers (logging into `dir`).
    pub(crate) fn start(spec: &OursSpec<'_>, groups: &Groups, dir: &Path) -> Result<Ours, String> {
        let config = dir.join("managers.toml");
        let roots = write_config(&config, groups, spec.root)?;
        let mut flags: Vec<String> = vec![
            "-C".into(),
            config.display().to_string(),
            "-z".into(),
            spec.zk.to_string(),
            "--down-after-ms".into(),
            spec.down_after_ms.to_string(),
        ];
        if let Some(r) = spec.required {
            flags.extend(["--required-node-managers".into(), r.to_string()]);
        }
        if let Some(ms) = spec.probe_interval_ms {
            flags.extend(["--probe-interval-ms".into(), ms.to_string()]);
        }
        let names: Vec<String> = (1..=spec.managers).map(|i| format!("m{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let managers = ManagerSet::new(ManagerMode::Process(spec.bin.to_path_buf()), flags)
            .rust_log(&std::env::var("SCALE_BENCH_MANAGER_LOG").unwrap_or_else(|_| "warn".into()))
            .log_to(dir)
            .start_named(&names)?;
        Ok(Ours { managers, roots })
    }

    /// The managers' pids (those running).
    pub(crate) fn pids(&self) -> Vec<u32> {
        (0..self.managers.len())
            .filter_map(|i| self.managers.process(i).map(|p| p.pid()))
            .collect()
    }

    /// Waits until every group's `<root>/nodes` names its master and both replicas (polling
    /// every 250 ms, at most `timeout`); fails at once when a manager exits.
    pub(crate) async fn wait_published(
        &self,
        zk: &zk::Client,
        groups: &Groups,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut missing: Vec<usize> = (0..groups.len()).collect();
        loop {
            let still: Vec<(usize, String)> =
                futures::stream::iter(missing.iter().map(|&i| async move {
                    match read_topology(zk, &self.roots[i]).await {
                        Some(t) if groups.trio(i).published_in(&t) => None,
                        other => Some((i, format!("{other:?}"))),
                    }
                }))
                .buffered(PARALLEL_READS)
                .filter_map(|x| async move { x })
                .collect()
                .await;
            let Some((first, what)) = still.first() else {
                return Ok(());
            };
            if let Some(e) = self.managers.exited() {
                return Err(e);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} of {} groups not published within {timeout:?}; e.g. {}/nodes holds {what}{}",
                    still.len(),
                    groups.len(),
                    self.roots[*first],
                    self.managers.tails(10)
                ));
            }
            missing = still.iter().map(|(i, _)| *i).collect();
            tokio::time::sleep(PUBLISHED_POLL).await;
        }
    }

    /// Stops every manager (SIGTERM, 10 s, then SIGKILL, by pid), off the runtime's workers.
    pub(crate) async fn stop(self) {
        let mut managers = self.managers;
        let stopped = tokio::task::spawn_blocking(move || {
            managers.stop_all();
            managers
        })
        .await;
        match stopped {
            Ok(m) => teardown("the managers", move || drop(m)).await,
            Err(e) => eprintln!(
                "stopping the managers ({STOP_GRACE_NOTE}) failed: {}",
                join_error(e)
            ),
        }
    }
}

/// A ZooKeeper session for the bench (closed when the last handle drops), within 15 s.
pub(crate) use redis_failover_tests::manager::try_zk_client as zk_session;
