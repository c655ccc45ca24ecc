//! [`ClientBuilder`]: the client's options, and [`ClientBuilder::connect`], which opens the
//! ZooKeeper session, reads the topology, starts the watcher and the connection follower,
//! and opens the first connections.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use crate::client::{Client, Inner, Local};
use crate::conns::{follow, Conns, Opener};
use crate::error::ConnectError;
use crate::lease::{Confirmation, Lease};
use crate::session;
use crate::synchronous::Synchronous;
use crate::term::Watchers;
use crate::watcher::{self, Shared, TopologyView};
use crate::wire::ZnodePaths;

/// How reads pick a replica.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadPolicy {
    /// Each handle takes the replicas in turn.
    #[default]
    RoundRobin,
    /// A replica picked at random for each read.
    Random,
}

/// Options for [`Client`]; start with [`Client::builder`].
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    pub(crate) zkservers: String,
    pub(crate) znode_path: String,
    pub(crate) password: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) db: i64,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) zk_session_timeout: Duration,
    pub(crate) max_retries: u32,
    pub(crate) retry_failure: bool,
    pub(crate) retry_non_idempotent: bool,
    pub(crate) retry_backoff: Duration,
    pub(crate) master_only: bool,
    pub(crate) read_policy: ReadPolicy,
    pub(crate) namespace: Option<Vec<u8>>,
    pub(crate) write_lease: Option<Duration>,
    pub(crate) stale_reads: bool,
    pub(crate) synchronous: Option<Synchronous>,
    pub(crate) tls: Option<crate::Tls>,
    pub(crate) zookeeper_tls: Option<crate::Tls>,
}

impl ClientBuilder {
    /// ZooKeeper root of the group (`--znode-path` of the manager); default `/redis_failover`.
    pub fn znode_path(mut self, path: impl Into<String>) -> Self {
        self.znode_path = path.into();
        self
    }
    /// Redis password (AUTH), the same for every node.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }
    /// Redis ACL user (with [`Self::password`]).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }
    /// Connects to every Redis node over TLS (the nodes' `tls-port`, as the manager
    /// publishes it when run with `--tls`). Checked by [`Self::connect`].
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// use redis_failover_client::{Client, Tls};
    /// let tls = Tls::new(std::fs::read("/etc/redis/tls/ca.crt")?)
    ///     // Only for `tls-auth-clients yes`:
    ///     .client_cert(
    ///         std::fs::read("/etc/redis/tls/client.crt")?,
    ///         std::fs::read("/etc/redis/tls/client.key")?,
    ///     );
    /// let client = Client::builder("zk1:2181,zk2:2181,zk3:2181")
    ///     .tls(tls)
    ///     .connect()
    ///     .await?;
    /// # let _ = client;
    /// # Ok(())
    /// # }
    /// ```
    pub fn tls(mut self, tls: crate::Tls) -> Self {
        self.tls = Some(tls);
        self
    }
    /// Connects to ZooKeeper over TLS: the servers given to [`Client::builder`] are their
    /// `secureClientPort`s, each verified for its host as given there; a client certificate
    /// is presented when the servers ask for one (`ssl.clientAuth=need`). A CA that does not
    /// sign the servers' certificates, or a missing client certificate, fails
    /// [`Self::connect`] at once with an error that says so. Independent of [`Self::tls`].
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// use redis_failover_client::{Client, Tls};
    /// let zk_tls = Tls::new(std::fs::read("/etc/zookeeper/tls/ca.crt")?)
    ///     // Only for ssl.clientAuth=need:
    ///     .client_cert(
    ///         std::fs::read("/etc/zookeeper/tls/client.crt")?,
    ///         std::fs::read("/etc/zookeeper/tls/client.key")?,
    ///     );
    /// let client = Client::builder("zk1:2281,zk2:2281,zk3:2281")
    ///     .zookeeper_tls(zk_tls)
    ///     .connect()
    ///     .await?;
    /// # let _ = client;
    /// # Ok(())
    /// # }
    /// ```
    pub fn zookeeper_tls(mut self, tls: crate::Tls) -> Self {
        self.zookeeper_tls = Some(tls);
        self
    }
    /// Database number selected on every connection (`SELECT` itself is refused).
    pub fn db(mut self, db: i64) -> Self {
        self.db = db;
        self
    }
    /// Bound on opening a connection to a node (default 1 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }
    /// Bound on one command or pipeline round trip (default 2 s). Blocking commands
    /// (`BLPOP key 5`) need a larger one.
    pub fn command_timeout(mut self, t: Duration) -> Self {
        self.command_timeout = t;
        self
    }
    /// ZooKeeper session timeout (default 10 s).
    pub fn zk_session_timeout(mut self, t: Duration) -> Self {
        self.zk_session_timeout = t;
        self
    }
    /// Retries after a retryable failure (default 3).
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }
    /// Whether to retry at all (default true).
    pub fn retry_failure(mut self, yes: bool) -> Self {
        self.retry_failure = yes;
        self
    }
    /// Also retry writes that may already have been applied (the connection broke or timed
    /// out after sending). Default false: such a write returns an error that says so.
    pub fn retry_non_idempotent(mut self, yes: bool) -> Self {
        self.retry_non_idempotent = yes;
        self
    }
    /// First wait before a retry, doubled each time; a retry also starts as soon as the
    /// topology changes (default 100 ms).
    pub fn retry_backoff(mut self, t: Duration) -> Self {
        self.retry_backoff = t;
        self
    }
    /// Send everything, reads included, to the master (default false).
    pub fn master_only(mut self, yes: bool) -> Self {
        self.master_only = yes;
        self
    }
    /// How reads pick a replica (default [`ReadPolicy::RoundRobin`]).
    pub fn read_policy(mut self, p: ReadPolicy) -> Self {
        self.read_policy = p;
        self
    }
    /// Prefix every key with `ns` (commands whose keys cannot be found are refused).
    pub fn namespace(mut self, ns: impl Into<Vec<u8>>) -> Self {
        self.namespace = Some(ns.into()).filter(|n: &Vec<u8>| !n.is_empty());
        self
    }

    /// Sends a request to the master only while the client's topology is confirmed: its
    /// ZooKeeper session answers and its watch on the topology is armed, or it last did so
    /// less than `lease` ago (measured on a monotonic clock from the moment the confirming
    /// request was sent; a reconnect confirms nothing until the topology has been read again).
    /// Past the lease a write fails at once, without being sent, with the error coded
    /// [`TOPOLOGY_UNCONFIRMED`](crate::TOPOLOGY_UNCONFIRMED)
    /// (`topology unconfirmed for N ms: not writing to a master that may have been replaced`);
    /// the usual retries ([`Self::max_retries`]) start again as soon as the topology is
    /// confirmed. Requests already sent keep the usual rules. While the lease is set, the
    /// client confirms the topology with ZooKeeper every quarter lease (a cheap `exists`).
    ///
    /// Default: no lease. Writes then go on through a ZooKeeper outage, as the managers
    /// cannot promote anyone while ZooKeeper is down for them too; a client cut off from
    /// ZooKeeper alone is protected by the managers, which fence an unreachable master before
    /// promoting another. A lease adds a client-side bound for deployments that want it: the
    /// cost is that writes stop `lease` after the client loses ZooKeeper, also when
    /// nothing else failed. Choose it well above ZooKeeper's usual pauses (1 s or more).
    pub fn write_lease(mut self, lease: Duration) -> Self {
        self.write_lease = Some(lease);
        self
    }
    /// With a [`Self::write_lease`]: whether reads from replicas go on past the lease, from
    /// the last topology (default true: replica reads are eventually consistent anyway, and
    /// reads keep working while ZooKeeper is away). `false`: such reads fail past the lease as
    /// writes do (`topology unconfirmed for N ms: not reading from a topology that may have
    /// changed`). Reads routed to the master (with [`Self::master_only`], or when there is no
    /// replica) follow this option too; everything else sent to the master is a write.
    pub fn stale_reads(mut self, yes: bool) -> Self {
        self.stale_reads = yes;
        self
    }

    /// Strict synchronous mode: an acknowledged write means "on the master and on at least
    /// `replicas` replicas", always. Once the reply to a request that may write (a command, a
    /// pipeline, a transaction, through `AsyncCommands` or `redis::pipe()`) arrives from the
    /// master, the client waits for a `WAIT replicas timeout` sent after it on the same
    /// connection (one `WAIT` serves every write that was answered before it was sent: group
    /// commit), and returns the reply only when `WAIT` counted at least `replicas` within
    /// `timeout` of the reply; otherwise the request fails with the error coded
    /// [`NOT_REPLICATED`](crate::NOT_REPLICATED)
    /// (`0 of 1 required replicas acknowledged the write within 500 ms; it may have been
    /// executed on the master`). Such a write is one that may have been applied: it is not
    /// retried unless [`Self::retry_non_idempotent`]. Reads from replicas are unaffected.
    ///
    /// A `WAIT` holds the master's connection (requests queued behind it wait too) until the
    /// replicas acknowledge: so the command timeout of every connection grows by `timeout`.
    ///
    /// Default: on, but not strict: each write waits for 1 replica within 1 s, for as many
    /// as the topology lists when it lists fewer, and for none while it lists none (a group
    /// without a live replica keeps taking writes, as Patroni's `synchronous_mode` does; such
    /// writes are on the master only). Strict mode fails those writes instead. See
    /// [`Self::asynchronous`] to turn it off.
    pub fn synchronous(mut self, replicas: usize, timeout: Duration) -> Self {
        self.synchronous = Some(Synchronous {
            replicas,
            timeout,
            strict: true,
        });
        self
    }

    /// Redis's own asynchronous replication: a write is acknowledged once the master has it,
    /// as with a plain Redis client. Faster (no `WAIT`), but a write acknowledged just
    /// before the master crashes or is cut off may be lost in the failover (docs/safety.md
    /// says when). Run the managers with `--synchronous-replicas 0` to match.
    pub fn asynchronous(mut self) -> Self {
        self.synchronous = None;
        self
    }

    pub(crate) fn lease(&self) -> Option<Lease> {
        self.write_lease.map(|duration| Lease {
            duration,
            stale_reads: self.stale_reads,
        })
    }

    /// Connects to ZooKeeper, reads the topology and opens connections to its nodes. Fails
    /// with a clear error when ZooKeeper cannot be reached or the znode is missing or
    /// corrupt.
    pub async fn connect(self) -> Result<Client, ConnectError> {
        let paths = ZnodePaths::new(&self.znode_path).map_err(ConnectError::Config)?;
        crate::wire::parse_addr_list(self.zkservers.split('/').next().unwrap_or(""))
            .map_err(|e| ConnectError::Config(format!("zkservers: {e}")))?;
        if self.username.is_some() && self.password.is_none() {
            return Err(ConnectError::Config("username needs a password".into()));
        }
        if self
            .write_lease
            .is_some_and(|l| l < Duration::from_millis(1))
        {
            return Err(ConnectError::Config(
                "write_lease must be at least 1 ms".into(),
            ));
        }
        if let Some(tls) = &self.tls {
            tls.check()
                .map_err(|e| ConnectError::Config(format!("tls: {e}")))?;
        }
        if let Some(tls) = &self.zookeeper_tls {
            tls.zookeeper_options()
                .map_err(|e| ConnectError::Config(format!("zookeeper_tls: {e}")))?;
        }
        let wait = self.zk_session_timeout.min(Duration::from_secs(15));
        let options = session::Options {
            auth: None,
            tls: self.zookeeper_tls.as_ref(),
        };
        let zk =
            session::connect_as(&self.zkservers, options, self.zk_session_timeout, wait).await?;
        let confirmed = Confirmation::default();
        confirmed.confirm(Instant::now());
        let (topology, version) = watcher::read_once(&zk, &paths).await?;
        let view = TopologyView {
            topology,
            version,
            fetched_at: Instant::now(),
            stale_since: None,
        };
        let (tx, rx) = watch::channel(view.clone());
        let (session_tx, session_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            tx,
            refresh: Notify::new(),
            session: session_tx,
            confirmed,
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        tokio::spawn(watcher::run(
            watcher::ZkTarget {
                servers: self.zkservers.clone(),
                tls: self.zookeeper_tls.clone(),
                session_timeout: self.zk_session_timeout,
            },
            self.lease().map(|l| l.heartbeat()),
            paths.clone(),
            zk,
            shared.clone(),
            shutdown_rx.clone(),
        ));
        let opener = Opener {
            username: self.username.clone(),
            password: self.password.clone(),
            db: self.db,
            tls: self.tls.clone(),
            connect_timeout: self.connect_timeout,
            // A request may be queued behind a `WAIT` on the master's connection.
            command_timeout: self.command_timeout
                + self.synchronous.map_or(Duration::ZERO, |s| s.timeout),
        };
        let conns = Arc::new(RwLock::new(Arc::new(Conns::build(&view, None))));
        let generation = Arc::new(AtomicU64::new(0));
        let generation_tx = Arc::new(watch::channel(0u64).0);
        let watchers = Arc::new(Watchers::default());
        let inner = Arc::new(Inner {
            lease: self.lease(),
            sync: self.synchronous,
            cfg: self,
            paths,
            opener,
            conns: conns.clone(),
            topo: rx.clone(),
            shared,
            session: session_rx,
            generation: generation.clone(),
            generation_tx: generation_tx.clone(),
            watchers: watchers.clone(),
            shutdown,
        });
        tokio::spawn(follow(
            rx,
            conns,
            generation,
            generation_tx,
            watchers,
            inner.opener.clone(),
            shutdown_rx,
        ));
        let client = Client {
            inner,
            local: Local::default(),
        };
        client.current().warm_up(&client.inner.opener).await;
        Ok(client)
    }
}

impl Client {
    /// Starts a builder for the ZooKeeper servers `zkservers` (`host:port,...`).
    pub fn builder(zkservers: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            zkservers: zkservers.into(),
            znode_path: crate::wire::DEFAULT_ROOT.to_string(),
            password: None,
            username: None,
            db: 0,
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(2),
            zk_session_timeout: Duration::from_secs(10),
            max_retries: 3,
            retry_failure: true,
            retry_non_idempotent: false,
            retry_backoff: Duration::from_millis(100),
            master_only: false,
            read_policy: ReadPolicy::RoundRobin,
            namespace: None,
            write_lease: None,
            stale_reads: true,
            synchronous: Some(crate::synchronous::DEFAULT),
            tls: None,
            zookeeper_tls: None,
        }
    }
}
