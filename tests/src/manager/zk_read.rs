//! ZooKeeper helpers for tests: a session, reading and waiting for the published topology,
//! the managers' views and the lock order, and writing raw znodes.

use std::time::Duration;

use redis_failover_client::wire::ManagerView;
use redis_failover_client::{Topology, ZnodePaths};
use zookeeper_client as zk;

/// Bound on one ZooKeeper read of [`lock_order`] and [`manager_view`].
const ZK_TIMEOUT: Duration = Duration::from_secs(3);

/// A ZooKeeper session for the test itself.
pub async fn zk_client(connect: &str) -> zk::Client {
    try_zk_client(connect)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// [`zk_client`] for programs that report a failure instead of panicking: a session
/// (10 s timeout) within 15 s.
pub async fn try_zk_client(connect: &str) -> Result<zk::Client, String> {
    tokio::time::timeout(
        Duration::from_secs(15),
        zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(connect),
    )
    .await
    .map_err(|_| format!("connecting to ZooKeeper at {connect} timed out"))?
    .map_err(|e| format!("connecting to ZooKeeper at {connect}: {e}"))
}

/// `<root>/nodes` decoded; `None` when missing, unreadable or corrupt.
pub async fn read_topology(zk: &zk::Client, root: &str) -> Option<Topology> {
    let path = format!("{root}/nodes");
    let (data, _) = tokio::time::timeout(Duration::from_secs(3), zk.get_data(&path))
        .await
        .ok()?
        .ok()?;
    Topology::from_json(&data).ok()
}

/// Polls `<root>/nodes` until `pred` holds; panics after `timeout` naming `what`.
pub async fn wait_topology(
    zk: &zk::Client,
    root: &str,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&Topology) -> bool,
) -> Topology {
    crate::wait_until_async(timeout, what, || async {
        read_topology(zk, root).await.filter(|t| pred(t))
    })
    .await
}

/// Writes raw bytes to a znode, creating it and its parents.
pub async fn write_raw(zk: &zk::Client, path: &str, data: &[u8]) {
    let dir = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    if let Some((parent, _)) = path.rsplit_once('/') {
        if !parent.is_empty() {
            match zk.mkdir(parent, &dir).await {
                Ok(()) | Err(zk::Error::NodeExists) => {}
                Err(e) => panic!("mkdir {parent}: {e}"),
            }
        }
    }
    match zk.create(path, data, &dir).await {
        Ok(_) => {}
        Err(zk::Error::NodeExists) => {
            zk.set_data(path, data, None).await.expect("set_data");
        }
        Err(e) => panic!("create {path}: {e}"),
    }
}

/// The lock's children under `root`, in lock order (the holder first): the sequence number,
/// the child's name and the manager id it holds. Children that vanish while being read are
/// left out; an empty list when the lock znode does not exist.
pub async fn lock_order(zk: &zk::Client, root: &str) -> Result<Vec<(u64, String, String)>, String> {
    let dir = ZnodePaths::new(root)
        .map_err(|e| format!("root {root}: {e}"))?
        .lock();
    let children = match tokio::time::timeout(ZK_TIMEOUT, zk.list_children(&dir)).await {
        Err(_) => return Err(format!("listing {dir} timed out")),
        Ok(Err(zk::Error::NoNode)) => return Ok(Vec::new()),
        Ok(Err(e)) => return Err(format!("listing {dir}: {e}")),
        Ok(Ok(c)) => c,
    };
    let mut out = Vec::new();
    for child in children {
        let digits = child.len() - child.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let Ok(seq) = child[child.len() - digits..].parse::<u64>() else {
            continue;
        };
        let path = format!("{dir}/{child}");
        match tokio::time::timeout(ZK_TIMEOUT, zk.get_data(&path)).await {
            Err(_) => return Err(format!("reading {path} timed out")),
            Ok(Err(zk::Error::NoNode)) => {}
            Ok(Err(e)) => return Err(format!("reading {path}: {e}")),
            Ok(Ok((data, _))) => {
                out.push((seq, child, String::from_utf8_lossy(&data).into_owned()))
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The manager ids holding the lock's children under `root`, in lock order (the holder
/// first); empty when they cannot be read.
pub async fn lock_holders(zk: &zk::Client, root: &str) -> Vec<String> {
    lock_order(zk, root)
        .await
        .map(|order| order.into_iter().map(|(_, _, id)| id).collect())
        .unwrap_or_default()
}

/// The view published under `root` by the manager whose id ends with `suffix` (e.g. `-a`
/// for `--manager-name a`), if there is one and it parses.
pub async fn manager_view(zk: &zk::Client, root: &str, suffix: &str) -> Option<ManagerView> {
    let views = ZnodePaths::new(root).ok()?.manager_node_state();
    let ids = zk.list_children(&views).await.ok()?;
    let id = ids.into_iter().find(|i| i.ends_with(suffix))?;
    let (data, _) = zk.get_data(&format!("{views}/{id}")).await.ok()?;
    ManagerView::from_json(&data).ok()
}

/// `<root>/failover_history` (empty when missing or unreadable).
pub async fn read_history(
    zk: &zk::Client,
    root: &str,
) -> Vec<redis_failover_client::wire::FailoverRecord> {
    let Ok(paths) = ZnodePaths::new(root) else {
        return Vec::new();
    };
    match tokio::time::timeout(ZK_TIMEOUT, zk.get_data(&paths.failover_history())).await {
        Ok(Ok((data, _))) => redis_failover_client::wire::FailoverRecord::list_from_json(&data),
        _ => Vec::new(),
    }
}
