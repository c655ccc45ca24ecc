//! The handle applications hold. It implements [`redis::aio::ConnectionLike`], so every
//! `redis::AsyncCommands` method and `redis::pipe()` work on it unchanged; each command is
//! routed (writes to the master, reads to a replica), given a deadline, and retried when the
//! failure proves it was not applied or the command is a read.
//!
//! A request to the master ends as soon as a new topology names another master (or none):
//! its reply, if the deposed node ever sends one, could acknowledge a write that the
//! failover is about to discard. Such a request fails as one that may have been applied
//! (a write says so, a read is retried on the new master).

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Poll, Waker};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, ErrorKind, IntoConnectionInfo, Pipeline,
    RedisError, RedisFuture, RedisResult, ServerErrorKind, Value,
};
use tokio::sync::{watch, Notify};
use tracing::debug;
use zookeeper_client as zk;

use crate::error::{client_error, maybe_executed, no_master, ConnectError};
use crate::route::{self, Target};
use crate::watcher::{self, Shared, TopologyView};
use crate::{NodeAddr, Topology, ZnodePaths};

/// How reads pick a replica.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadPolicy {
    #[default]
    RoundRobin,
    Random,
}

/// Options for [`Client`]; start with [`Client::builder`].
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    zkservers: String,
    znode_path: String,
    password: Option<String>,
    username: Option<String>,
    db: i64,
    connect_timeout: Duration,
    command_timeout: Duration,
    zk_session_timeout: Duration,
    max_retries: u32,
    retry_failure: bool,
    retry_non_idempotent: bool,
    retry_backoff: Duration,
    master_only: bool,
    read_policy: ReadPolicy,
    namespace: Option<Vec<u8>>,
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
    pub fn read_policy(mut self, p: ReadPolicy) -> Self {
        self.read_policy = p;
        self
    }
    /// Prefix every key with `ns` (commands whose keys cannot be found are refused).
    pub fn namespace(mut self, ns: impl Into<Vec<u8>>) -> Self {
        self.namespace = Some(ns.into()).filter(|n: &Vec<u8>| !n.is_empty());
        self
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
        let wait = self.zk_session_timeout.min(Duration::from_secs(15));
        let zk = watcher::connect(&self.zkservers, self.zk_session_timeout, wait)
            .await
            .map_err(ConnectError::ZooKeeper)?;
        let (topology, version) = watcher::read_once(&zk, &paths)
            .await
            .map_err(ConnectError::Topology)?;
        let view = TopologyView {
            topology,
            version,
            fetched_at: std::time::Instant::now(),
            stale_since: None,
        };
        let (tx, rx) = watch::channel(view.clone());
        let (session_tx, session_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            tx,
            refresh: Notify::new(),
            session: session_tx,
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        tokio::spawn(watcher::run(
            self.zkservers.clone(),
            self.zk_session_timeout,
            paths.clone(),
            zk,
            shared.clone(),
            shutdown_rx.clone(),
        ));
        let opener = Opener {
            username: self.username.clone(),
            password: self.password.clone(),
            db: self.db,
            connect_timeout: self.connect_timeout,
            command_timeout: self.command_timeout,
        };
        let conns = Arc::new(RwLock::new(Arc::new(Conns::build(&view, None))));
        let generation = Arc::new(AtomicU64::new(0));
        let generation_tx = Arc::new(watch::channel(0u64).0);
        let watchers = Arc::new(Watchers::default());
        let inner = Arc::new(Inner {
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

/// Opens connections to nodes with the client's credentials and deadlines.
#[derive(Clone)]
struct Opener {
    username: Option<String>,
    password: Option<String>,
    db: i64,
    connect_timeout: Duration,
    command_timeout: Duration,
}

impl Opener {
    async fn open(&self, addr: &NodeAddr) -> RedisResult<MultiplexedConnection> {
        self.open_with(addr, Some(self.command_timeout)).await
    }

    /// A connection whose replies may take `response_timeout` (`None`: no bound, for
    /// `BLPOP key 0`).
    async fn open_with(
        &self,
        addr: &NodeAddr,
        response_timeout: Option<Duration>,
    ) -> RedisResult<MultiplexedConnection> {
        // No CLIENT SETINFO round trip: connecting costs one TCP handshake (plus AUTH/SELECT
        // when configured).
        let mut settings = redis::RedisConnectionInfo::default()
            .set_db(self.db)
            .set_skip_set_lib_name();
        if let Some(u) = &self.username {
            settings = settings.set_username(u);
        }
        if let Some(p) = &self.password {
            settings = settings.set_password(p);
        }
        let info = ConnectionAddr::Tcp(addr.host.clone(), addr.port)
            .into_connection_info()?
            .set_redis_settings(settings);
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(response_timeout);
        let client = redis::Client::open(info)?;
        match tokio::time::timeout(
            self.connect_timeout + Duration::from_millis(50),
            client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(RedisError::from((
                ErrorKind::Io,
                "connect timed out",
                addr.to_string(),
            ))),
        }
    }
}

/// One node's connection, opened on first use and reopened after it breaks.
struct NodeConn {
    addr: NodeAddr,
    conn: RwLock<Option<MultiplexedConnection>>,
}

impl NodeConn {
    fn new(addr: NodeAddr) -> Self {
        Self {
            addr,
            conn: RwLock::new(None),
        }
    }

    async fn get(&self, opener: &Opener) -> RedisResult<MultiplexedConnection> {
        if let Some(c) = self.conn.read().ok().and_then(|g| g.clone()) {
            return Ok(c);
        }
        let c = opener.open(&self.addr).await?;
        if let Ok(mut g) = self.conn.write() {
            *g = Some(c.clone());
        }
        Ok(c)
    }

    fn invalidate(&self) {
        if let Ok(mut g) = self.conn.write() {
            *g = None;
        }
    }
}

/// One node's time as the master, as this client sees it: it lasts through topologies that
/// keep naming the same master, and ends for good when one names another master or none
/// (a node promoted again later starts a new term). Requests sent to the master watch it,
/// so that none keeps waiting for a deposed master's reply.
#[derive(Default)]
struct MasterTerm {
    over: AtomicBool,
}

/// A handle's entry in [`Watchers`]: the waker of the task that last sent a request to a
/// master through the handle (a handle has at most one request in flight).
#[derive(Default)]
struct Watcher {
    waker: Mutex<Option<Waker>>,
}

/// The handles that have sent to a master. When a master's term ends they are all woken,
/// and a request in flight to that master sees the end. A slot per handle rather than a
/// shared `Notify`: registering with a `Notify` locks a mutex shared by every task, twice
/// per command (about +0.1 µs per command in a micro-benchmark); a handle's slot is written
/// only when the task using the handle changes, so a request usually pays one pointer
/// comparison and one atomic load.
#[derive(Default)]
struct Watchers {
    handles: Mutex<Vec<Weak<Watcher>>>,
}

impl Watchers {
    fn add(&self) -> Arc<Watcher> {
        let w = Arc::new(Watcher::default());
        let mut handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        // Dropped handles are pruned whenever the list doubles: amortized O(1).
        if handles.len() >= 16 && handles.len().is_power_of_two() {
            handles.retain(|h| h.strong_count() > 0);
        }
        handles.push(Arc::downgrade(&w));
        w
    }

    /// Marks `term` over, then wakes every handle's task (one that is not waiting for a
    /// master gets one spurious wake-up).
    fn end(&self, term: &MasterTerm) {
        term.over.store(true, Ordering::Release);
        let mut handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        handles.retain(|h| match h.upgrade() {
            Some(w) => {
                if let Some(waker) = w.waker.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                    waker.wake_by_ref();
                }
                true
            }
            None => false,
        });
    }
}

/// The connections for one topology.
struct Conns {
    topology: Topology,
    version: i32,
    master: Option<Arc<NodeConn>>,
    /// Present with `master`; shared with the previous topology's when the master is the same.
    term: Option<Arc<MasterTerm>>,
    replicas: Vec<Arc<NodeConn>>,
}

impl Conns {
    /// Connections for `view`, keeping those of `previous` to nodes that remain (a
    /// connection does not care about its node's role); the others are dropped, which closes
    /// them.
    fn build(view: &TopologyView, previous: Option<&Conns>) -> Conns {
        let reuse = |addr: &NodeAddr| -> Arc<NodeConn> {
            previous
                .and_then(|p| {
                    p.master
                        .iter()
                        .chain(p.replicas.iter())
                        .find(|c| c.addr == *addr)
                        .cloned()
                })
                .unwrap_or_else(|| Arc::new(NodeConn::new(addr.clone())))
        };
        let master = view.topology.master.as_ref().map(reuse);
        let term = master.as_ref().map(|m| {
            previous
                .and_then(|p| p.master.as_ref().zip(p.term.as_ref()))
                .filter(|(pm, _)| pm.addr == m.addr)
                .map_or_else(|| Arc::new(MasterTerm::default()), |(_, t)| t.clone())
        });
        Conns {
            topology: view.topology.clone(),
            version: view.version,
            master,
            term,
            replicas: view.topology.slaves.iter().map(reuse).collect(),
        }
    }

    /// The master's term in `self` when `next` no longer continues it.
    fn term_ended_by(&self, next: &Conns) -> Option<Arc<MasterTerm>> {
        let term = self.term.as_ref()?;
        let continued = next.term.as_ref().is_some_and(|t| Arc::ptr_eq(t, term));
        (!continued).then(|| term.clone())
    }

    /// Opens every connection now (bounded), so the first commands do not pay for it.
    async fn warm_up(&self, opener: &Opener) {
        let all = self.master.iter().chain(self.replicas.iter());
        futures::future::join_all(all.map(|c| async move {
            if let Err(e) = c.get(opener).await {
                debug!(
                    "redis_failover client: cannot connect to {} yet: {e}",
                    c.addr
                );
            }
        }))
        .await;
    }
}

/// Rebuilds the connections whenever the watcher publishes a new topology.
async fn follow(
    mut rx: watch::Receiver<TopologyView>,
    conns: Arc<RwLock<Arc<Conns>>>,
    generation: Arc<AtomicU64>,
    generation_tx: Arc<watch::Sender<u64>>,
    watchers: Arc<Watchers>,
    opener: Opener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = watcher::stopped(&mut shutdown) => return,
        }
        let view = rx.borrow_and_update().clone();
        let (next, ended) = {
            let Ok(current) = conns.read() else { return };
            if current.version == view.version && current.topology.same_content(&view.topology) {
                continue;
            }
            let next = Arc::new(Conns::build(&view, Some(&current)));
            let ended = current.term_ended_by(&next);
            (next, ended)
        };
        if let Ok(mut g) = conns.write() {
            *g = next.clone();
        }
        bump(&generation, &generation_tx);
        // After the swap and the bump: a request woken (or refused) here finds the new
        // connections when it retries.
        if let Some(term) = ended {
            watchers.end(&term);
        }
        debug!(
            "redis_failover client: topology version {} epoch {} master {:?}",
            view.version, view.topology.epoch, view.topology.master
        );
        next.warm_up(&opener).await;
    }
}

struct Inner {
    cfg: ClientBuilder,
    paths: ZnodePaths,
    opener: Opener,
    conns: Arc<RwLock<Arc<Conns>>>,
    topo: watch::Receiver<TopologyView>,
    shared: Arc<Shared>,
    session: watch::Receiver<Option<zk::Client>>,
    /// Bumped whenever the connections change (new topology, a broken connection), so that
    /// every handle drops the connections it holds on to.
    generation: Arc<AtomicU64>,
    /// The same generation, for waiting on it (retries wait for new connections).
    generation_tx: Arc<watch::Sender<u64>>,
    /// Woken when the master's term ends.
    watchers: Arc<Watchers>,
    shutdown: watch::Sender<bool>,
}

/// Moves the generation on: every handle drops its connections on its next command.
fn bump(generation: &AtomicU64, tx: &watch::Sender<u64>) {
    let g = generation.fetch_add(1, Ordering::AcqRel) + 1;
    tx.send_replace(g);
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Ends the watcher (closing the ZooKeeper session) and the connection follower
        // (closing the Redis connections), whoever else still holds a topology receiver.
        self.shutdown.send_replace(true);
    }
}

/// A Redis client that follows the topology published by `redis_node_manager`. Cheap to
/// clone; clones share connections and the ZooKeeper session.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    local: Local,
}

/// What one handle keeps between commands: the connections it used, valid while the shared
/// generation is unchanged, so that the hot path takes no lock and clones nothing (as a
/// task holding its own clone of a redis-rs connection).
#[derive(Default)]
struct Local {
    generation: u64,
    conns: Option<Arc<Conns>>,
    /// 0: the master; 1..: the replicas, in `conns` order.
    slots: Vec<Option<MultiplexedConnection>>,
    next_replica: usize,
    /// This handle's entry in [`Watchers`], made on its first request to a master.
    watcher: Option<Arc<Watcher>>,
    /// The waker last put in `watcher` (only this handle writes it).
    registered: Option<Waker>,
}

impl Clone for Local {
    fn clone(&self) -> Self {
        Local {
            generation: self.generation,
            conns: self.conns.clone(),
            slots: self.slots.clone(),
            next_replica: self.next_replica,
            // A clone runs requests of its own, maybe on another task: it needs an entry of
            // its own.
            watcher: None,
            registered: None,
        }
    }
}

/// A request as `ConnectionLike` hands it over.
enum Request<'a> {
    One(&'a Cmd),
    Many(&'a Pipeline, usize, usize),
}

enum Reply {
    One(Value),
    Many(Vec<Value>),
}

/// How a request to the master ended.
enum Watched {
    /// The node answered (or the connection failed) while it was still the master.
    Done(RedisResult<Reply>),
    /// The master's term had already ended: nothing was sent.
    NotSent(RedisError),
    /// The term ended while the request was in flight: the reply is no longer awaited, and
    /// the request may have been applied by the deposed master.
    Abandoned(RedisError),
}

impl Watched {
    /// As [`Client::attempt`] reports a try: the result and whether it may have reached
    /// the server.
    fn into_try(self) -> (RedisResult<Reply>, bool) {
        match self {
            Watched::Done(r) => (r, true),
            Watched::NotSent(e) => (Err(e), false),
            Watched::Abandoned(e) => (Err(e), true),
        }
    }
}

/// Sends `req` on the master's connection `conn`, unless or until `term` ends. `watcher` is
/// the handle's entry in [`Watchers`], `registered` the waker last put there. A reply that
/// is ready when the term ends wins.
async fn send_to_master(
    conn: &mut MultiplexedConnection,
    req: &Request<'_>,
    term: &MasterTerm,
    watcher: &Watcher,
    registered: &mut Option<Waker>,
    addr: &NodeAddr,
) -> Watched {
    if term.over.load(Ordering::Acquire) {
        return Watched::NotSent(master_changed(addr, false));
    }
    let mut sending = pin!(send(conn, req));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = sending.as_mut().poll(cx) {
            return Poll::Ready(Watched::Done(r));
        }
        // Registered before the flag is read: the end of the term sets the flag, then wakes
        // every handle's task, so this sees it now or is woken to see it.
        if !registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            let w = cx.waker().clone();
            *watcher.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(w.clone());
            *registered = Some(w);
        }
        if term.over.load(Ordering::Acquire) {
            return Poll::Ready(Watched::Abandoned(master_changed(addr, true)));
        }
        Poll::Pending
    })
    .await
}

/// The error of a request whose master was deposed; for one `sent`, an I/O error, which the
/// retry logic treats as "may have been applied" (as a timeout).
fn master_changed(addr: &NodeAddr, sent: bool) -> RedisError {
    if sent {
        RedisError::from((
            ErrorKind::Io,
            "redis_failover: master changed",
            format!("the topology no longer names {addr} as the master; its reply was not awaited"),
        ))
    } else {
        client_error(
            "redis_failover: master changed",
            format!("the topology no longer names {addr} as the master; nothing was sent"),
        )
    }
}

/// Sends on `conn` through its inherent (unboxed) methods: the client's own future is the
/// only allocation per command, as with a plain connection.
async fn send(conn: &mut MultiplexedConnection, req: &Request<'_>) -> RedisResult<Reply> {
    match req {
        Request::One(cmd) => match conn.send_packed_command(cmd).await? {
            // redis-rs hands error replies over as values (the caller's `query` turns them
            // into errors); the ones that mean "not applied here, ask the topology" must be
            // seen by the retry logic.
            Value::ServerError(e) if not_applied_reply(&e) => Err(e.into()),
            v => Ok(Reply::One(v)),
        },
        Request::Many(p, offset, count) => {
            let values = conn.send_packed_commands(p, *offset, *count).await?;
            // Retried only when every reply says "not applied" (a pipeline of writes sent to a
            // demoted master, or its aborted MULTI/EXEC): none of it took effect.
            let mut all = values.iter().filter_map(|v| match v {
                Value::ServerError(e) => Some(e),
                _ => None,
            });
            if let Some(first) = all.next() {
                let count_errors = 1 + all.clone().count();
                if count_errors == values.len()
                    && not_applied_reply(first)
                    && all.all(not_applied_reply)
                {
                    return Err(first.clone().into());
                }
            }
            Ok(Reply::Many(values))
        }
    }
}

/// An error reply that proves the command was not applied because of the node's role or
/// state: `READONLY`, `LOADING`, `MASTERDOWN`, or a `MULTI`/`EXEC` aborted for one of them.
fn not_applied_reply(e: &redis::ServerError) -> bool {
    match e.kind() {
        Some(
            ServerErrorKind::ReadOnly | ServerErrorKind::BusyLoading | ServerErrorKind::MasterDown,
        ) => true,
        Some(ServerErrorKind::ExecAbort) => e.details().is_some_and(|d| {
            ["READONLY", "LOADING", "MASTERDOWN"]
                .iter()
                .any(|c| d.contains(c))
        }),
        _ => false,
    }
}

/// What a failure means for retrying.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// Not applied (refused connection, READONLY, LOADING, MASTERDOWN, no master): safe.
    NotApplied,
    /// The request may have reached the server (broken connection, timeout).
    MaybeApplied,
    /// An answer from Redis (WRONGTYPE, syntax...): never retried.
    Final,
}

fn classify(e: &RedisError) -> Failure {
    match e.kind() {
        ErrorKind::Server(ServerErrorKind::ReadOnly)
        | ErrorKind::Server(ServerErrorKind::BusyLoading)
        | ErrorKind::Server(ServerErrorKind::MasterDown) => Failure::NotApplied,
        _ if e.is_connection_refusal() => Failure::NotApplied,
        _ if e.is_timeout() || e.is_connection_dropped() || e.is_io_error() => {
            Failure::MaybeApplied
        }
        _ => Failure::Final,
    }
}

/// Refuses what a routing client cannot do on a shared, reconnecting connection.
fn check_supported(special: route::Special, cmd: &Cmd) -> RedisResult<()> {
    let why = match special {
        route::Special::PubSub => "needs a dedicated connection: use Client::master_connection() for pub/sub",
        route::Special::Select => "is not supported: the database is a client option (ClientBuilder::db)",
        route::Special::Transaction => "is not supported: use an atomic pipeline (redis::pipe().atomic())",
        route::Special::ConnectionState => "is not supported: it changes one connection's state, which is not kept across reconnects",
        route::Special::Blocking | route::Special::None => return Ok(()),
    };
    Err(client_error(
        "redis_failover: command not supported",
        format!("{} {why}", command_name(cmd)),
    ))
}

fn command_name(cmd: &Cmd) -> String {
    cmd.args_iter()
        .next()
        .and_then(|a| match a {
            redis::Arg::Simple(b) => Some(String::from_utf8_lossy(b).to_uppercase()),
            _ => None,
        })
        .unwrap_or_default()
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
        }
    }

    fn current(&self) -> Arc<Conns> {
        match self.inner.conns.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The topology as last read, with its version, epoch and age.
    pub fn topology(&self) -> TopologyView {
        self.inner.topo.borrow().clone()
    }

    /// A receiver that sees every topology change (`changed().await`).
    pub fn subscribe(&self) -> watch::Receiver<TopologyView> {
        self.inner.topo.clone()
    }

    /// A connection to the current master, for what the client does not route (pub/sub
    /// subscriptions, `MONITOR`). It does not follow failovers.
    pub async fn master_connection(&self) -> RedisResult<MultiplexedConnection> {
        let conns = self.current();
        let master = conns.master.as_ref().ok_or_else(no_master)?;
        self.inner.opener.open(&master.addr).await
    }

    /// Asks the node manager to fail over: to `to`, or to the best replica when `None`
    /// (`ANY_SLAVE`), by writing `<root>/manual_failover` as the Ruby client does.
    pub async fn manual_failover(&self, to: Option<&NodeAddr>) -> Result<(), ConnectError> {
        let session = self.inner.session.borrow().clone();
        let zk = session.ok_or_else(|| {
            ConnectError::ZooKeeper("no ZooKeeper session right now; try again".into())
        })?;
        let path = self.inner.paths.manual_failover();
        let data = crate::wire::ManualRequest::encode(to);
        let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        let write = async {
            match zk.create(&path, &data, &opts).await {
                Ok(_) => Ok(()),
                Err(zk::Error::NodeExists) => zk.set_data(&path, &data, None).await.map(|_| ()),
                Err(e) => Err(e),
            }
        };
        match tokio::time::timeout(Duration::from_secs(5), write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ConnectError::ZooKeeper(format!("writing {path}: {e}"))),
            Err(_) => Err(ConnectError::ZooKeeper(format!("writing {path} timed out"))),
        }
    }

    /// Makes `local` match the current connections.
    fn sync_local(&mut self) {
        let generation = self.inner.generation.load(Ordering::Acquire);
        if self.local.conns.is_none() || self.local.generation != generation {
            let conns = self.current();
            self.local.slots = vec![None; 1 + conns.replicas.len()];
            self.local.conns = Some(conns);
            self.local.generation = generation;
        }
    }

    /// The slot (0: master, 1..: replicas) for `target`. No reference counts are touched:
    /// on the hot path they would bounce between cores.
    fn pick(&mut self, target: Target) -> Option<usize> {
        let conns = self.local.conns.as_deref()?;
        if target == Target::Replica && !self.inner.cfg.master_only && !conns.replicas.is_empty() {
            let n = conns.replicas.len();
            let i = match self.inner.cfg.read_policy {
                // Advanced by `rotate` once a try is made on the chosen replica.
                ReadPolicy::RoundRobin => self.local.next_replica,
                ReadPolicy::Random => random_index(),
            } % n;
            return Some(1 + i);
        }
        conns.master.is_some().then_some(0)
    }

    fn rotate(&mut self) {
        self.local.next_replica = self.local.next_replica.wrapping_add(1);
    }

    fn node_at(&self, slot: usize) -> Option<Arc<NodeConn>> {
        let conns = self.local.conns.as_deref()?;
        match slot {
            0 => conns.master.clone(),
            i => conns.replicas.get(i - 1).cloned(),
        }
    }

    /// Waits before retry `attempt`: until the topology changes or the backoff passes.
    /// Waits before retry `attempt`: until the connections change (a new topology swapped
    /// in, or a broken connection dropped) since the failed try, or the backoff passes.
    async fn backoff(&self, attempt: u32) {
        self.inner.shared.refresh.notify_one();
        let wait = self.inner.cfg.retry_backoff * 2u32.saturating_pow(attempt.saturating_sub(1));
        let used = self.local.generation;
        let mut rx = self.inner.generation_tx.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(|g| *g != used)).await;
    }

    /// The node's shared connection, or for a blocking command a connection of its own that
    /// waits as long as the command may block (plus the usual command timeout), so that it
    /// neither times out early nor holds up the other commands.
    async fn connection(
        &self,
        node: &NodeConn,
        blocking: Option<route::BlockTimeout>,
    ) -> RedisResult<MultiplexedConnection> {
        let opener = &self.inner.opener;
        match blocking {
            None => node.get(opener).await,
            Some(route::BlockTimeout::Forever) => opener.open_with(&node.addr, None).await,
            Some(route::BlockTimeout::After(d)) => {
                opener
                    .open_with(&node.addr, Some(d + opener.command_timeout))
                    .await
            }
        }
    }

    /// The first try on the connection this handle already holds, if it holds one: a small
    /// future for the common case; `None` when there is no such connection.
    async fn try_cached(
        &mut self,
        target: Target,
        req: &Request<'_>,
    ) -> Option<RedisResult<Reply>> {
        self.sync_local();
        let slot = self.pick(target)?;
        let r = if slot == 0 {
            self.ensure_watcher();
            let local = &mut self.local;
            let conns = local.conns.as_deref()?;
            let (master, term) = (conns.master.as_deref()?, conns.term.as_deref()?);
            let watcher = local.watcher.as_deref()?;
            let conn = local.slots.get_mut(0)?.as_mut()?;
            let registered = &mut local.registered;
            match send_to_master(conn, req, term, watcher, registered, &master.addr).await {
                Watched::Done(r) => r,
                // The retrying path finds the new master.
                Watched::NotSent(_) => return None,
                Watched::Abandoned(e) => return Some(Err(e)),
            }
        } else {
            let conn = self.local.slots.get_mut(slot)?.as_mut()?;
            send(conn, req).await
        };
        self.rotate();
        if let Err(e) = &r {
            self.on_send_error(slot, e);
        }
        Some(r)
    }

    /// Gives this handle its entry in [`Watchers`] (once).
    fn ensure_watcher(&mut self) {
        if self.local.watcher.is_none() {
            self.local.watcher = Some(self.inner.watchers.add());
        }
    }

    /// A broken or timed-out connection: every handle drops its copy; the next use
    /// reconnects.
    fn on_send_error(&mut self, slot: usize, e: &RedisError) {
        if e.is_connection_dropped() || e.is_timeout() || e.is_io_error() {
            if let Some(node) = self.node_at(slot) {
                node.invalidate();
            }
            bump(&self.inner.generation, &self.inner.generation_tx);
        }
    }

    /// One try: the result, and whether the request may have reached a server.
    async fn attempt(
        &mut self,
        target: Target,
        blocking: Option<route::BlockTimeout>,
        req: &Request<'_>,
    ) -> (RedisResult<Reply>, bool) {
        self.sync_local();
        let picked = self.pick(target);
        self.rotate();
        // `sent`: whether the request may have reached a server.
        let term = match (picked, self.local.conns.as_deref()) {
            (Some(0), Some(c)) => c.term.clone(),
            _ => None,
        };
        if term.is_some() {
            self.ensure_watcher();
        }
        let watcher = self.local.watcher.clone();
        match picked {
            None => (Err(no_master()), false),
            Some(slot) if blocking.is_some() => match self.node_at(slot) {
                None => (Err(no_master()), false),
                Some(node) => match self.connection(&node, blocking).await {
                    Err(e) => (Err(e), false),
                    Ok(mut conn) => match (&term, &watcher) {
                        // Its own connection, dropped (closed) with the request.
                        (Some(t), Some(w)) => {
                            let registered = &mut self.local.registered;
                            send_to_master(&mut conn, req, t, w, registered, &node.addr)
                                .await
                                .into_try()
                        }
                        _ => (send(&mut conn, req).await, true),
                    },
                },
            },
            Some(slot) => {
                let mut ready = Ok(());
                if !matches!(self.local.slots.get(slot), Some(Some(_))) {
                    ready = match self.node_at(slot) {
                        None => Err(no_master()),
                        Some(node) => node.get(&self.inner.opener).await.map(|c| {
                            if let Some(s) = self.local.slots.get_mut(slot) {
                                *s = Some(c);
                            }
                        }),
                    };
                }
                let local = &mut self.local;
                let master = local.conns.as_deref().and_then(|c| c.master.as_deref());
                let watch = term.as_deref().zip(watcher.as_deref()).zip(master);
                match (ready, local.slots.get_mut(slot), watch) {
                    (Err(e), ..) => (Err(e), false),
                    (Ok(()), Some(Some(conn)), Some(((t, w), m))) => {
                        let registered = &mut local.registered;
                        match send_to_master(conn, req, t, w, registered, &m.addr).await {
                            Watched::Done(r) => {
                                if let Err(e) = &r {
                                    self.on_send_error(slot, e);
                                }
                                (r, true)
                            }
                            // The connection is fine: the node is no longer the master.
                            w => w.into_try(),
                        }
                    }
                    (Ok(()), Some(Some(conn)), None) => {
                        let r = send(conn, req).await;
                        if let Err(e) = &r {
                            self.on_send_error(slot, e);
                        }
                        (r, true)
                    }
                    (Ok(()), ..) => (Err(no_master()), false),
                }
            }
        }
    }

    /// Sends `req` to the node chosen for `target`, retrying as the policy allows. `first`
    /// is the error of a try already made (by [`Self::try_cached`]).
    async fn execute(
        &mut self,
        name: impl Fn() -> String,
        target: Target,
        is_write: bool,
        blocking: Option<route::BlockTimeout>,
        req: Request<'_>,
        first: Option<RedisError>,
    ) -> RedisResult<Reply> {
        let (retries, retry_writes) = {
            let cfg = &self.inner.cfg;
            let retries = if cfg.retry_failure {
                cfg.max_retries
            } else {
                0
            };
            (retries, cfg.retry_non_idempotent)
        };
        let mut attempt = 0;
        let mut pending = first.map(|e| (e, true));
        loop {
            let (e, sent) = match pending.take() {
                Some(p) => p,
                None => match self.attempt(target, blocking, &req).await {
                    (Ok(v), _) => return Ok(v),
                    (Err(e), sent) => (e, sent),
                },
            };
            let failure = if sent {
                classify(&e)
            } else if e.kind() == ErrorKind::AuthenticationFailed
                || matches!(e.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
            {
                Failure::Final
            } else {
                Failure::NotApplied
            };
            let may_retry = match failure {
                Failure::Final => false,
                Failure::NotApplied => true,
                Failure::MaybeApplied => !is_write || retry_writes,
            };
            if !may_retry || attempt >= retries {
                if failure == Failure::MaybeApplied && is_write && !retry_writes {
                    return Err(maybe_executed(&name(), &e));
                }
                return Err(e);
            }
            attempt += 1;
            debug!(
                "redis_failover client: {} failed ({e}); retry {attempt}/{retries}",
                name()
            );
            self.backoff(attempt).await;
        }
    }
}

fn random_index() -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::Instant::now().elapsed().as_nanos() as u64);
    h.finish() as usize
}

impl ConnectionLike for Client {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let owned;
            let cmd = match &self.inner.cfg.namespace {
                Some(ns) => {
                    owned = route::namespaced(cmd, ns)
                        .map_err(|e| client_error("redis_failover: namespace", e.to_string()))?;
                    &owned
                }
                None => cmd,
            };
            let plan = route::plan(cmd);
            check_supported(plan.special, cmd)?;
            let is_write = plan.target == Target::Master;
            let name = || command_name(cmd);
            let req = Request::One(cmd);
            let first = if plan.block.is_none() {
                match self.try_cached(plan.target, &req).await {
                    Some(Ok(Reply::One(v))) => return Ok(v),
                    Some(Err(e)) if classify(&e) == Failure::Final => return Err(e),
                    Some(r) => r.err(),
                    None => None,
                }
            } else {
                None
            };
            // The retrying path is a large future: boxed, so only the rare call pays for it.
            match Box::pin(self.execute(name, plan.target, is_write, plan.block, req, first))
                .await?
            {
                Reply::One(v) => Ok(v),
                Reply::Many(_) => Err(client_error(
                    "redis_failover: internal error",
                    "a pipeline reply to a single command".into(),
                )),
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            for cmd in pipeline.cmd_iter() {
                check_supported(route::classify(cmd), cmd)?;
            }
            let owned;
            let pipeline = match &self.inner.cfg.namespace {
                Some(ns) => {
                    owned = route::namespaced_pipeline(pipeline, ns)
                        .map_err(|e| client_error("redis_failover: namespace", e.to_string()))?;
                    &owned
                }
                None => pipeline,
            };
            let target = route::route_pipeline(pipeline);
            let is_write = target == Target::Master;
            let req = Request::Many(pipeline, offset, count);
            let first = match self.try_cached(target, &req).await {
                Some(Ok(Reply::Many(v))) => return Ok(v),
                Some(Err(e)) if classify(&e) == Failure::Final => return Err(e),
                Some(r) => r.err(),
                None => None,
            };
            match Box::pin(self.execute(
                || "pipeline".to_string(),
                target,
                is_write,
                None,
                req,
                first,
            ))
            .await?
            {
                Reply::Many(v) => Ok(v),
                Reply::One(_) => Err(client_error(
                    "redis_failover: internal error",
                    "a single reply to a pipeline".into(),
                )),
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.cfg.db
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    fn view(master: Option<&str>, slaves: &[&str], version: i32) -> TopologyView {
        TopologyView {
            topology: Topology {
                master: master.map(|m| m.parse().expect("addr")),
                slaves: slaves.iter().map(|s| s.parse().expect("addr")).collect(),
                ..Topology::default()
            },
            version,
            fetched_at: std::time::Instant::now(),
            stale_since: None,
        }
    }

    #[test]
    fn a_master_term_lasts_until_another_master_or_none_is_named() {
        let a = Conns::build(&view(Some("10.0.0.1:6379"), &["10.0.0.2:6379"], 1), None);
        // Replicas change, the master stays: the same term.
        let b = Conns::build(&view(Some("10.0.0.1:6379"), &[], 2), Some(&a));
        assert!(a.term_ended_by(&b).is_none());
        // Another master: the term ends.
        let c = Conns::build(
            &view(Some("10.0.0.2:6379"), &["10.0.0.1:6379"], 3),
            Some(&b),
        );
        assert!(a.term_ended_by(&c).is_some() && b.term_ended_by(&c).is_some());
        // No master: it ends too.
        let none = Conns::build(&view(None, &["10.0.0.1:6379"], 4), Some(&c));
        assert!(none.term.is_none() && c.term_ended_by(&none).is_some());
        // The first master again: a term of its own, which an old request cannot share.
        let d = Conns::build(&view(Some("10.0.0.1:6379"), &[], 5), Some(&none));
        let (old, new) = (a.term.expect("term"), d.term.expect("term"));
        assert!(!Arc::ptr_eq(&old, &new));
    }

    struct Count(AtomicU64);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_end_of_a_term_wakes_every_live_handle() {
        let watchers = Watchers::default();
        let term = MasterTerm::default();
        let counts: Vec<_> = (0..3).map(|_| Arc::new(Count(AtomicU64::new(0)))).collect();
        let mut handles: Vec<_> = counts
            .iter()
            .map(|c| {
                let w = watchers.add();
                *w.waker.lock().expect("lock") = Some(Waker::from(c.clone()));
                w
            })
            .collect();
        drop(handles.pop());
        watchers.end(&term);
        assert!(term.over.load(Ordering::Acquire));
        let woken: Vec<u64> = counts.iter().map(|c| c.0.load(Ordering::SeqCst)).collect();
        assert_eq!(woken, [1, 1, 0]);
        assert_eq!(watchers.handles.lock().expect("lock").len(), 2, "pruned");
    }
}
