//! What the bench reads of the managers' znodes, always within [`ZK_READ_TIMEOUT`]: the
//! topology with a data watch armed, the first topology naming a new master (followed with
//! one-shot watches), and the number of children of a directory (lock, views).

use std::time::{Duration, Instant};

use redis_failover_client::{NodeAddr, Topology};
use zookeeper_client as zk;

/// Bound on one ZooKeeper read of the bench.
pub const ZK_READ_TIMEOUT: Duration = Duration::from_secs(3);

/// Reads the topology at `path` and leaves a data watch on it.
pub async fn arm_topology_watch(
    zk: &zk::Client,
    path: &str,
) -> Result<(Topology, zk::OneshotWatcher), String> {
    let (data, _, watcher) = tokio::time::timeout(ZK_READ_TIMEOUT, zk.get_and_watch_data(path))
        .await
        .map_err(|_| format!("reading {path} timed out"))?
        .map_err(|e| format!("reading {path}: {e}"))?;
    let topology = Topology::from_json(&data).map_err(|e| format!("{path}: {e}"))?;
    Ok((topology, watcher))
}

/// Follows `path` with one-shot data watches until it holds a topology whose master is
/// neither `null` nor `old`; returns when that read returned, the topology, and the watch
/// that read left (dropping it asks ZooKeeper to remove it: a caller measuring ZooKeeper's
/// load keeps it until its window is over).
pub async fn watch_for_new_master(
    zk: &zk::Client,
    path: &str,
    old: &NodeAddr,
    first: zk::OneshotWatcher,
) -> Result<(Instant, Topology, zk::OneshotWatcher), String> {
    let mut watcher = Some(first);
    loop {
        if let Some(w) = watcher.take() {
            // A node event, or a session event when the connection broke: read again either way.
            let _event = w.changed().await;
        } else {
            // The previous read failed: retry soon, without a watch to wait on.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        match tokio::time::timeout(ZK_READ_TIMEOUT, zk.get_and_watch_data(path)).await {
            Ok(Ok((data, _stat, next))) => {
                let at = Instant::now();
                if let Ok(t) = Topology::from_json(&data) {
                    if t.master.as_ref().is_some_and(|m| m != old) {
                        return Ok((at, t, next));
                    }
                }
                watcher = Some(next);
            }
            Ok(Err(zk::Error::NoNode)) => return Err(format!("{path} was deleted")),
            Ok(Err(e)) => tracing::warn!("reading {path}: {e}; retrying"),
            Err(_) => tracing::warn!("reading {path} timed out; retrying"),
        }
    }
}

/// How many children `path` has (0 when it cannot be read).
pub async fn count_children(zk: &zk::Client, path: &str) -> usize {
    match tokio::time::timeout(ZK_READ_TIMEOUT, zk.list_children(path)).await {
        Ok(Ok(c)) => c.len(),
        _ => 0,
    }
}
