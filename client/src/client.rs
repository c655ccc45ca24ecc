//! [`Client`], the handle applications hold: what every clone shares ([`Inner`]: options,
//! the connection set, the topology receiver), what one handle keeps between commands
//! ([`Local`]), and one try of a request: picking the node for a route, taking its
//! connection and sending, to the master through [`send_to_master`].
//!
//! Each command is routed (writes to the master, reads to a replica), given a deadline, and
//! retried when the failure proves it was not applied or the command is a read
//! ([`crate::retry`]). A request to the master ends as soon as a new topology names another
//! master (or none): its reply, if the deposed node ever sends one, could acknowledge a
//! write that the failover is about to discard. Such a request fails as one that may have
//! been applied (a write says so, a read is retried on the new master).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::Waker;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{RedisError, RedisResult};
use tokio::sync::watch;
use zookeeper_client as zk;

use crate::builder::{ClientBuilder, ReadPolicy};
use crate::conns::{bump, Conn, Conns, NodeConn, Opener};
use crate::error::no_master;
use crate::failover::{self, FailoverError};
use crate::lease::Lease;
use crate::route::{self, Target};
use crate::send::{send, Reply, Request};
use crate::synchronous::Synchronous;
use crate::term::{send_to_master, Watched, Watcher, Watchers};
use crate::watcher::{Shared, TopologyView};
use crate::wire::{NodeAddr, ZnodePaths};

/// What every clone of a [`Client`] shares.
pub(crate) struct Inner {
    pub(crate) cfg: ClientBuilder,
    /// `cfg`'s write lease, if any.
    pub(crate) lease: Option<Lease>,
    /// `cfg`'s synchronous mode, if set.
    pub(crate) sync: Option<Synchronous>,
    pub(crate) paths: ZnodePaths,
    pub(crate) opener: Opener,
    pub(crate) conns: Arc<RwLock<Arc<Conns>>>,
    pub(crate) topo: watch::Receiver<TopologyView>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) session: watch::Receiver<Option<zk::Client>>,
    /// Bumped whenever the connections change (new topology, a broken connection), so that
    /// every handle drops the connections it holds on to.
    pub(crate) generation: Arc<AtomicU64>,
    /// The same generation, for waiting on it (retries wait for new connections).
    pub(crate) generation_tx: Arc<watch::Sender<u64>>,
    /// Woken when the master's term ends.
    pub(crate) watchers: Arc<Watchers>,
    pub(crate) shutdown: watch::Sender<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Ends the watcher (closing the ZooKeeper session) and the connection follower
        // (closing the Redis connections), whoever else still holds a topology receiver.
        self.shutdown.send_replace(true);
    }
}

/// A Redis client that follows the topology published by `redis_node_manager`. Cheap to
/// clone; clones share connections and the ZooKeeper session. Made by
/// [`Client::builder`]; used through [`redis::AsyncCommands`] and `redis::pipe()`.
///
/// - **Routing.** Writes, and anything not known to be a plain read, go to the master;
///   reads go to a replica (or to the master when there is none, or with
///   [`ClientBuilder::master_only`]). A pipeline goes to a replica only if every command in
///   it would. Replica reads see replication lag.
/// - **Failover.** A new topology in ZooKeeper swaps the connections at once. A request in
///   flight to a master that the new topology deposes is not awaited: its reply could
///   acknowledge a write the failover discards.
/// - **Retries.** A failure that proves the command was not applied (connection refused,
///   `READONLY`, `LOADING`, `MASTERDOWN`, no master) is retried up to
///   [`ClientBuilder::max_retries`] times, waiting for a new topology or the backoff. A
///   read that may have reached the server is retried too; a write is not (unless
///   [`ClientBuilder::retry_non_idempotent`]): it fails with an error saying it may have
///   been applied. Errors from Redis itself (`WRONGTYPE`, ...) are returned as they are.
/// - **Refused.** Pub/sub, `SELECT`, `MULTI`/`EXEC`/`WATCH` and commands that change one
///   connection's state fail with an error that says what to use instead.
/// - **Manual failover.** [`Client::failover`] asks the node manager to move the master (a
///   switchover without lost writes while the master is up) and waits for its verdict:
///
/// ```no_run
/// # use std::time::Duration;
/// # use redis_failover_client::{Client, FailoverError, NodeAddr};
/// # async fn run(redis: Client) -> Result<(), Box<dyn std::error::Error>> {
/// let to: NodeAddr = "10.0.0.2:6379".parse()?;
/// match redis.failover(Some(&to), Duration::from_secs(30)).await {
///     Ok(master) => println!("the master is now {master}"),
///     // The leading manager's reason: an unknown node, a replica out of sync, ...
///     Err(FailoverError::Refused(why)) => eprintln!("refused: {why}"),
///     // No manager acted within the wait, or ZooKeeper did not answer.
///     Err(e) => return Err(e.into()),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    pub(crate) local: Local,
}

/// What one handle keeps between commands: the connections it used, valid while the shared
/// generation is unchanged, so that the hot path takes no lock and clones nothing (as a
/// task holding its own clone of a redis-rs connection).
#[derive(Default)]
pub(crate) struct Local {
    pub(crate) generation: u64,
    pub(crate) conns: Option<Arc<Conns>>,
    /// 0: the master; 1..: the replicas, in `conns` order.
    pub(crate) slots: Vec<Option<Conn>>,
    pub(crate) next_replica: usize,
    /// This handle's entry in [`Watchers`], made on its first request to a master.
    pub(crate) watcher: Option<Arc<Watcher>>,
    /// The waker last put in `watcher` (only this handle writes it).
    pub(crate) registered: Option<Waker>,
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

impl Client {
    pub(crate) fn current(&self) -> Arc<Conns> {
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

    /// Asks the node manager to fail over — to `to`, or to the best replica when `None` —
    /// and waits, at most `wait`, for its verdict: the new master once it is published, or
    /// why not ([`FailoverError::Refused`] with the leader's reason,
    /// [`FailoverError::TimedOut`] when no manager acted). See [`Client`] for an example.
    ///
    /// While the master is up this is a switchover (`FAILOVER TO`: writers pause until the
    /// target has every acknowledged write); while it is down, the named replica (or the
    /// best one) is promoted. The client follows the new master as after any failover.
    pub async fn failover(
        &self,
        to: Option<&NodeAddr>,
        wait: Duration,
    ) -> Result<NodeAddr, FailoverError> {
        let zk = self.session().await?;
        failover::failover(&zk, &self.inner.paths, to, wait).await
    }

    /// Asks the node manager to fail over — to `to`, or to the best replica when `None`
    /// (`ANY_SLAVE`) — by writing `<root>/manual_failover` as the Ruby client does, and
    /// returns once it is written, without waiting for the verdict: a request the manager
    /// refuses is only seen in the znode. [`Client::failover`] waits for the verdict.
    pub async fn manual_failover(&self, to: Option<&NodeAddr>) -> Result<(), FailoverError> {
        let zk = self.session().await?;
        failover::request(&zk, &self.inner.paths, to).await
    }

    /// The client's ZooKeeper session; while it is being replaced, the next one, waited for
    /// up to the session timeout.
    async fn session(&self) -> Result<zk::Client, FailoverError> {
        let mut rx = self.inner.session.clone();
        let bound = self.inner.cfg.zk_session_timeout;
        let session = match tokio::time::timeout(bound, rx.wait_for(Option::is_some)).await {
            Ok(Ok(session)) => session.clone(),
            _ => None,
        };
        session.ok_or(FailoverError::NoSession)
    }

    /// Makes `local` match the current connections.
    pub(crate) fn sync_local(&mut self) {
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
    pub(crate) fn pick(&mut self, target: Target) -> Option<usize> {
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

    pub(crate) fn rotate(&mut self) {
        self.local.next_replica = self.local.next_replica.wrapping_add(1);
    }

    pub(crate) fn node_at(&self, slot: usize) -> Option<Arc<NodeConn>> {
        let conns = self.local.conns.as_deref()?;
        match slot {
            0 => conns.master.clone(),
            i => conns.replicas.get(i - 1).cloned(),
        }
    }

    /// The node's shared connection, or for a blocking command a connection of its own that
    /// waits as long as the command may block (plus the usual command timeout), so that it
    /// neither times out early nor holds up the other commands.
    pub(crate) async fn connection(
        &self,
        node: &NodeConn,
        blocking: Option<route::BlockTimeout>,
    ) -> RedisResult<Conn> {
        let opener = &self.inner.opener;
        let timeout = match blocking {
            None => return node.get(opener).await,
            Some(route::BlockTimeout::Forever) => None,
            Some(route::BlockTimeout::After(d)) => Some(d + opener.command_timeout),
        };
        opener.open_with(&node.addr, timeout).await.map(Conn::new)
    }

    /// `Ok` unless the write lease forbids sending to `target` now ([`Lease::check`]).
    pub(crate) fn check_lease(&self, target: Target) -> RedisResult<()> {
        match &self.inner.lease {
            None => Ok(()),
            Some(lease) => lease.check(&self.inner.shared.confirmed, target),
        }
    }

    /// The synchronous mode for `req` to `target`: requests to the master that may write.
    /// In the default (not strict) mode, how many replicas the topology lists decides.
    fn sync_for(&self, target: Target, req: &Request<'_>) -> Option<Synchronous> {
        let sync = self
            .inner
            .sync
            .filter(|_| target == Target::Master && Synchronous::needed_for(req))?;
        let listed = self.local.conns.as_deref().map_or(0, |c| c.replicas.len());
        sync.for_listed(listed)
    }

    /// The first try on the connection this handle already holds, if it holds one: a small
    /// future for the common case; `None` when there is no such connection (or the lease
    /// forbids sending: the retrying path says so).
    pub(crate) async fn try_cached(
        &mut self,
        target: Target,
        req: &Request<'_>,
    ) -> Option<RedisResult<Reply>> {
        self.check_lease(target).ok()?;
        self.sync_local();
        let slot = self.pick(target)?;
        let r = if slot == 0 {
            let sync = self.sync_for(target, req);
            self.ensure_watcher();
            let local = &mut self.local;
            let conns = local.conns.as_deref()?;
            let (master, term) = (conns.master.as_deref()?, conns.term.as_deref()?);
            let watcher = local.watcher.as_deref()?;
            let conn = local.slots.get_mut(0)?.as_mut()?;
            let registered = &mut local.registered;
            match send_to_master(conn, req, sync, term, watcher, registered, &master.addr).await {
                Watched::Done(r) => r,
                // The retrying path finds the new master.
                Watched::NotSent(_) => return None,
                Watched::Abandoned(e) => return Some(Err(e)),
            }
        } else {
            let conn = self.local.slots.get_mut(slot)?.as_mut()?;
            send(&mut conn.redis, req).await
        };
        self.rotate();
        if let Err(e) = &r {
            self.on_send_error(slot, e);
        }
        Some(r)
    }

    /// Gives this handle its entry in [`Watchers`] (once).
    pub(crate) fn ensure_watcher(&mut self) {
        if self.local.watcher.is_none() {
            self.local.watcher = Some(self.inner.watchers.add());
        }
    }

    /// A broken or timed-out connection: every handle drops its copy; the next use
    /// reconnects.
    pub(crate) fn on_send_error(&mut self, slot: usize, e: &RedisError) {
        if e.is_connection_dropped() || e.is_timeout() || e.is_io_error() {
            if let Some(node) = self.node_at(slot) {
                node.invalidate(self.local.slots.get(slot).and_then(Option::as_ref));
            }
            bump(&self.inner.generation, &self.inner.generation_tx);
        }
    }

    /// One try: the result, and whether the request may have reached a server.
    pub(crate) async fn attempt(
        &mut self,
        target: Target,
        blocking: Option<route::BlockTimeout>,
        req: &Request<'_>,
    ) -> (RedisResult<Reply>, bool) {
        if let Err(e) = self.check_lease(target) {
            return (Err(e), false);
        }
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
        let sync = self.sync_for(target, req);
        match picked {
            None => (Err(no_master()), false),
            Some(slot) if blocking.is_some() => match self.node_at(slot) {
                None => (Err(no_master()), false),
                Some(node) => match self.connection(&node, blocking).await {
                    Err(e) => (Err(e), false),
                    Ok(mut conn) => {
                        // Connecting took time: the lease is checked again before sending.
                        if let Err(e) = self.check_lease(target) {
                            return (Err(e), false);
                        }
                        match (&term, &watcher) {
                            // Its own connection, dropped (closed) with the request.
                            (Some(t), Some(w)) => {
                                let registered = &mut self.local.registered;
                                send_to_master(&mut conn, req, sync, t, w, registered, &node.addr)
                                    .await
                                    .into_try()
                            }
                            _ => (send(&mut conn.redis, req).await, true),
                        }
                    }
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
                    // Connecting took time: the lease is checked again before sending.
                    if let Err(e) = self.check_lease(target) {
                        return (Err(e), false);
                    }
                }
                let local = &mut self.local;
                let master = local.conns.as_deref().and_then(|c| c.master.as_deref());
                let watch = term.as_deref().zip(watcher.as_deref()).zip(master);
                match (ready, local.slots.get_mut(slot), watch) {
                    (Err(e), ..) => (Err(e), false),
                    (Ok(()), Some(Some(conn)), Some(((t, w), m))) => {
                        let registered = &mut local.registered;
                        match send_to_master(conn, req, sync, t, w, registered, &m.addr).await {
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
                        let r = send(&mut conn.redis, req).await;
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
}

fn random_index() -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::Instant::now().elapsed().as_nanos() as u64);
    h.finish() as usize
}
