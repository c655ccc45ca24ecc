//! Our side of a partition run: ZooKeeper on its host, 3 `redis_node_manager` processes on the
//! managers' hosts, the topology they publish (the first new master, convergence), and the
//! clients' writer: our [`Client`] in a [`ClientWriter`].

use std::time::{Duration, Instant};

use redis_failover_client::{Client, Topology};
use zookeeper_client as zk;

use super::run::{manager_host, Watch, START_TIMEOUT, WATCH_EVERY};
use super::{Options, Scenario};
use crate::manager::{read_topology, wait_topology, zk_client, ManagerMode, ManagerSet};
use crate::netns::Net;
use crate::writer::ClientWriter;
use crate::{unique_root, RedisNode, ZkServer};

/// ZooKeeper and the managers, running. Fields drop in order: the managers before ZooKeeper.
pub(super) struct Ours {
    managers: ManagerSet,
    session: zk::Client,
    root: String,
    zk: ZkServer,
}

impl Ours {
    /// Starts ZooKeeper on host `zk` and a manager on each manager host, and waits until they
    /// publish `nodes[0]` as the master with the other two as replicas.
    pub(super) async fn start(
        net: &Net,
        o: &Options,
        sc: &Scenario,
        nodes: &[RedisNode],
    ) -> Result<Ours, String> {
        let zk = ZkServer::start_at(&net.host("zk")?.place());
        let root = unique_root(sc.name);
        let addrs: Vec<String> = nodes.iter().map(RedisNode::addr).collect();
        let mut flags = ManagerSet::base_flags(&zk.connect_string(), &addrs, &root);
        flags.extend(["--zk-session-timeout-ms".into(), o.session_ms.to_string()]);
        if let Some(d) = o.down_after_ms {
            flags.extend(["--down-after-ms".into(), d.to_string()]);
        }
        if let Some((n, _)) = o.synchronous {
            flags.extend(["--synchronous-replicas".into(), n.to_string()]);
        }
        flags.extend(o.manager_flags.iter().cloned());
        let mut managers = ManagerSet::new(ManagerMode::Process(o.manager_bin.clone()), flags)
            .log_to(&o.log_dir)
            .rust_log(&o.manager_log);
        for i in 0..3 {
            let place = net.host(manager_host(o, i))?.place();
            managers.add_at(Some(&format!("m{i}")), &place)?;
        }
        let session = zk_client(&zk.connect_string()).await;
        let first = Some(nodes[0].node_addr());
        wait_topology(&session, &root, START_TIMEOUT, "the group published", |t| {
            t.master == first && t.slaves.len() == 2
        })
        .await;
        Ok(Ours {
            managers,
            session,
            root,
            zk,
        })
    }

    /// A client's writer (keys under `namespace`), as the application would build it.
    pub(super) async fn writer(
        connect: String,
        root: String,
        namespace: String,
        synchronous: Option<(usize, Duration)>,
    ) -> Result<ClientWriter, String> {
        let mut builder = Client::builder(connect)
            .znode_path(&root)
            .namespace(namespace);
        builder = match synchronous {
            None => builder,
            Some((0, _)) => builder.asynchronous(),
            Some((n, timeout)) => builder.synchronous(n, timeout),
        };
        let client = builder.connect().await.map_err(|e| e.to_string())?;
        Ok(ClientWriter(client))
    }

    /// The index of the manager that recorded a promotion (`promoting` set in the published
    /// topology), once one is recorded.
    pub(super) async fn promotion_recorded(&self) -> Option<usize> {
        let t = read_topology(&self.session, &self.root).await?;
        t.promoting.as_ref()?;
        let id = t.manager?;
        (0..3).find(|i| id.ends_with(&format!("-m{i}")))
    }

    /// What a client needs to connect: ZooKeeper's connect string and the group's root.
    pub(super) fn connect_info(&self) -> (String, String) {
        (self.zk.connect_string(), self.root.clone())
    }

    /// The node every other node replicates from (link up), when exactly one answers master
    /// and ZooKeeper publishes it with the others as replicas.
    pub(super) async fn converged(&self, nodes: &[RedisNode]) -> Option<usize> {
        let m = super::run::one_master_followed(nodes)?;
        let t = read_topology(&self.session, &self.root).await?;
        (t.master == Some(nodes[m].node_addr()) && t.slaves.len() == nodes.len() - 1).then_some(m)
    }

    /// Watches from here (see [`Watch`]) for the first topology naming another master.
    pub(super) fn watch(&self, w: Watch) -> tokio::task::JoinHandle<Option<Instant>> {
        let (session, root) = (self.session.clone(), self.root.clone());
        tokio::spawn(async move {
            loop {
                let t: Option<Topology> = read_topology(&session, &root).await;
                if t.is_some_and(|t| t.master.is_some() && t.master != Some(w.first.clone())) {
                    return Some(Instant::now());
                }
                if w.over() {
                    return None;
                }
                tokio::time::sleep(WATCH_EVERY).await;
            }
        })
    }

    /// A message when a manager process has exited.
    pub(super) fn exited(&self) -> Option<String> {
        self.managers.exited()
    }
}
