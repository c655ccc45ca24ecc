//! A test's scene on ZooKeeper: a fresh znode root, a ZooKeeper session for the test, and
//! short ways to start a manager, publish or read a topology and connect a client there.

use std::time::Duration;

use std::path::PathBuf;

use redis_failover_client::{session, Client, ClientBuilder, NodeAddr, Tls, Topology};
use redis_failover_manager::config::Cli;
use zookeeper_client as zk;

use crate::manager::{config, read_topology, wait_topology, write_raw, zk_client, Manager};
use crate::tls::TlsFiles;
use crate::{init_tracing, shared_zk, unique_root, RedisGroup, ZkServer};

/// A fresh root (from [`unique_root`]) on one ZooKeeper, and a session to it.
pub struct Scene {
    /// The ZooKeeper connect string.
    pub connect: String,
    /// The znode root of this test.
    pub root: String,
    /// A ZooKeeper session for the test itself.
    pub zk: zk::Client,
    /// With a ZooKeeper serving TLS: what managers and clients are given.
    zk_tls: Option<ZkTls>,
}

/// The client side of a ZooKeeper serving TLS: the files (a manager's flags) and the
/// settings (a client's), with the client certificate.
struct ZkTls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    tls: Tls,
}

impl Scene {
    /// A scene named after `name` on the shared ZooKeeper (tracing set up).
    pub async fn new(name: &str) -> Scene {
        Scene::on(shared_zk(), name).await
    }

    /// A scene named after `name` on `zk` (tracing set up).
    pub async fn on(zk: &ZkServer, name: &str) -> Scene {
        Scene::at(&zk.connect_string(), name).await
    }

    /// A scene named after `name` on the ZooKeeper servers of `connect` (`host:port,...`,
    /// e.g. a [`crate::ZkEnsemble`]'s).
    pub async fn at(connect: &str, name: &str) -> Scene {
        init_tracing();
        let root = unique_root(name);
        let zk = zk_client(connect).await;
        Scene {
            connect: connect.to_string(),
            root,
            zk,
            zk_tls: None,
        }
    }

    /// A scene named after `name` on `zk`, a server serving TLS only
    /// ([`ZkServer::start_tls`] with `files`): the test's session, its managers
    /// (`--zk-tls-*` flags, before `tweak`'s) and its clients (`zookeeper_tls`) connect with
    /// `files`' CA and client certificate.
    pub async fn on_tls(zk: &ZkServer, files: &TlsFiles, name: &str) -> Scene {
        init_tracing();
        let tls = files.client_tls(true);
        let wait = Duration::from_secs(15);
        let options = session::Options {
            auth: None,
            tls: Some(&tls),
        };
        let client = session::connect_as(&zk.connect_string(), options, wait, wait)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Scene {
            connect: zk.connect_string(),
            root: unique_root(name),
            zk: client,
            zk_tls: Some(ZkTls {
                ca: files.ca.clone(),
                cert: files.client_cert.clone(),
                key: files.client_key.clone(),
                tls,
            }),
        }
    }

    /// The `--zk-tls-*` flags of this scene's managers (none without TLS).
    pub fn zk_tls_flags(&self) -> Vec<String> {
        let Some(t) = &self.zk_tls else {
            return Vec::new();
        };
        [
            ("--zk-tls-ca-file", &t.ca),
            ("--zk-tls-cert-file", &t.cert),
            ("--zk-tls-key-file", &t.key),
        ]
        .iter()
        .flat_map(|(flag, path)| [flag.to_string(), path.display().to_string()])
        .collect()
    }

    /// Starts an in-process manager of `nodes` under this root ([`config`], flags adjusted
    /// by `tweak`).
    pub fn manager(&self, nodes: &[String], tweak: impl FnOnce(&mut Cli)) -> Manager {
        Manager::start(config(&self.connect, nodes, &self.root, |c| {
            if let Some(t) = &self.zk_tls {
                c.zk_tls_ca_file = Some(t.ca.clone());
                c.zk_tls_cert_file = Some(t.cert.clone());
                c.zk_tls_key_file = Some(t.key.clone());
            }
            tweak(c)
        }))
    }

    /// Starts an in-process manager named `name` of `group` under this root, flags adjusted
    /// by `tweak`.
    pub fn named_manager(
        &self,
        group: &RedisGroup,
        name: &str,
        tweak: impl FnOnce(&mut Cli),
    ) -> Manager {
        self.manager(&group.addrs(), |c| {
            c.manager_name = Some(name.to_string());
            tweak(c);
        })
    }

    /// `<root>/nodes`, if it holds a topology.
    pub async fn topology(&self) -> Option<Topology> {
        read_topology(&self.zk, &self.root).await
    }

    /// Waits until `<root>/nodes` holds a topology for which `pred` holds; panics after
    /// `timeout` naming `what`.
    pub async fn wait(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Topology) -> bool,
    ) -> Topology {
        wait_topology(&self.zk, &self.root, timeout, what, pred).await
    }

    /// Waits until a topology with `replicas` replicas is published (the healthy group).
    pub async fn wait_published(&self, timeout: Duration, what: &str, replicas: usize) -> Topology {
        self.wait(timeout, what, |t| t.slaves.len() == replicas)
            .await
    }

    /// Waits until another master than `before`'s is published.
    pub async fn wait_new_master(
        &self,
        timeout: Duration,
        what: &str,
        before: &Topology,
    ) -> Topology {
        self.wait(timeout, what, |t| {
            t.master.is_some() && t.master != before.master
        })
        .await
    }

    /// Writes `data` to `<root>/<rel>` (creating it and its parents).
    pub async fn write(&self, rel: &str, data: &[u8]) {
        write_raw(&self.zk, &format!("{}/{rel}", self.root), data).await;
    }

    /// Publishes `t` in `<root>/nodes` by hand (as a manager would).
    pub async fn publish(&self, t: &Topology) {
        self.write("nodes", &t.to_json()).await;
    }

    /// Publishes `group`'s topology (its first node master) at `epoch`, and returns it.
    pub async fn publish_group(&self, group: &RedisGroup, epoch: u64) -> Topology {
        let t = group_topology(group, epoch);
        self.publish(&t).await;
        t
    }

    /// A client builder for this root, to set more options on.
    pub fn builder(&self) -> ClientBuilder {
        let builder = Client::builder(&self.connect).znode_path(&self.root);
        match &self.zk_tls {
            Some(t) => builder.zookeeper_tls(t.tls.clone()),
            None => builder,
        }
    }

    /// A client following this root (panics when it cannot connect).
    pub async fn client(&self) -> Client {
        self.builder().connect().await.expect("connect")
    }
}

/// `group`'s nodes as a topology: node 0 the master, the others its replicas.
pub fn group_topology(group: &RedisGroup, epoch: u64) -> Topology {
    let addr = |i: usize| -> NodeAddr { group.node(i).addr().parse().expect("address") };
    Topology {
        master: Some(addr(0)),
        slaves: (1..group.len()).map(addr).collect(),
        epoch,
        ..Topology::default()
    }
}
