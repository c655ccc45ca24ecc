//! The node manager, run in-process for tests and benchmarks, and ZooKeeper helpers to read
//! what it publishes.

use std::time::Duration;

use redis_failover_client::Topology;
use redis_failover_manager::config::{Cli, FileConfig};
use redis_failover_manager::{run, Config, StartError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use zookeeper_client as zk;

/// Builds a validated config as the command line would: `-z zk -n nodes --znode-path root`
/// plus whatever `tweak` sets.
pub fn config(zk: &str, nodes: &[String], root: &str, tweak: impl FnOnce(&mut Cli)) -> Config {
    let mut cli = Cli {
        zkservers: Some(zk.to_string()),
        nodes: Some(nodes.join(",")),
        znode_path: Some(root.to_string()),
        zk_session_timeout_ms: Some(4000),
        ..Cli::default()
    };
    tweak(&mut cli);
    Config::merge(cli, FileConfig::default()).expect("test config is valid")
}

/// Starts a manager on `group` under a fresh root named after `name` (on the shared
/// ZooKeeper, flags adjusted by `tweak`) and waits until it has published every node as the
/// master or one of its replicas. Returns the manager, a ZooKeeper session for the test, the
/// root and the topology.
pub async fn managed(
    group: &crate::RedisGroup,
    name: &str,
    tweak: impl FnOnce(&mut Cli),
) -> (Manager, zk::Client, String, Topology) {
    crate::init_tracing();
    let connect = crate::shared_zk().connect_string();
    let root = crate::unique_root(name);
    let m = Manager::start(config(&connect, &group.addrs(), &root, tweak));
    let client = zk_client(&connect).await;
    let replicas = group.len() - 1;
    let t = wait_topology(
        &client,
        &root,
        Duration::from_secs(30),
        "the healthy group published",
        |t| t.slaves.len() == replicas,
    )
    .await;
    (m, client, root, t)
}

/// A manager running in this process. Dropping it asks it to stop (and aborts it).
pub struct Manager {
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), StartError>>>,
}

impl Manager {
    /// Starts `run(config, ..)` on the current tokio runtime.
    pub fn start(config: Config) -> Manager {
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(run(config, async move {
            let _ = rx.await;
        }));
        Manager {
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    /// Asks for a clean shutdown and waits (bounded) for `run` to return.
    pub async fn stop(mut self) -> Result<(), StartError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let handle = self.handle.take().expect("manager handle");
        tokio::time::timeout(Duration::from_secs(20), handle)
            .await
            .expect("manager did not stop within 20 s")
            .expect("manager task panicked")
    }

    /// Waits (bounded) for `run` to fail at start and returns its error message.
    pub async fn stop_after_start_error(mut self) -> String {
        let handle = self.handle.take().expect("manager handle");
        match tokio::time::timeout(Duration::from_secs(30), handle).await {
            Ok(Ok(Err(e))) => e.to_string(),
            Ok(Ok(Ok(()))) => panic!("the manager ended without an error"),
            Ok(Err(e)) => panic!("manager task: {e}"),
            Err(_) => panic!("the manager did not fail within 30 s"),
        }
    }

    /// True once `run` has returned (for example with a start-up error).
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

/// A ZooKeeper session for the test itself.
pub async fn zk_client(connect: &str) -> zk::Client {
    tokio::time::timeout(
        Duration::from_secs(15),
        zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(connect),
    )
    .await
    .expect("ZooKeeper connect timed out")
    .expect("ZooKeeper connect")
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
