//! The node manager for tests and benchmarks: one in-process [`Manager`] ([`config`],
//! [`managed`]), sets of managers in-process or as processes ([`ManagerSet`]), and ZooKeeper
//! helpers to read what they publish ([`zk_client`], [`wait_topology`], [`lock_holders`], ...).

use std::time::Duration;

use redis_failover_client::Topology;
use redis_failover_manager::config::{Cli, FileConfig};
use redis_failover_manager::{run, Config, StartError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::Scene;

mod set;
mod zk_read;

pub use set::{manager_process, manager_process_at, ManagerMode, ManagerSet};
pub use zk_read::{
    lock_holders, lock_order, manager_view, read_history, read_topology, try_zk_client,
    wait_topology, write_raw, zk_client,
};

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

/// Starts a manager on `group` in a fresh [`Scene`] named after `name` (on the shared
/// ZooKeeper, flags adjusted by `tweak`) and waits until it has published every node as the
/// master or one of its replicas. Returns the manager, the scene and the topology.
pub async fn managed(
    group: &crate::RedisGroup,
    name: &str,
    tweak: impl FnOnce(&mut Cli),
) -> (Manager, Scene, Topology) {
    let scene = Scene::new(name).await;
    let m = scene.manager(&group.addrs(), tweak);
    let t = scene
        .wait_published(
            Duration::from_secs(30),
            "the healthy group published",
            group.len() - 1,
        )
        .await;
    (m, scene, t)
}

/// [`managed`] on a fresh [`crate::RedisGroup::trio`], which it returns first.
pub async fn managed_trio(
    name: &str,
    tweak: impl FnOnce(&mut Cli),
) -> (crate::RedisGroup, Manager, Scene, Topology) {
    let trio = crate::RedisGroup::trio();
    let (m, scene, t) = managed(&trio, name, tweak).await;
    (trio, m, scene, t)
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
