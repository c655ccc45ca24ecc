//! The Redis Sentinel protocol endpoint (`--sentinel-addr`, off by default): answers
//! Sentinel's commands in RESP and publishes Sentinel's events to subscribers, from each
//! group's published topology, so that unmodified Sentinel clients find the master and the
//! replicas and follow failovers. Every manager answers, standby included; nothing is
//! decided here (`SENTINEL FAILOVER` writes the same request as `redis_node_manager
//! failover`, which the leader carries out).
//!
//! A group's name is its Sentinel master name. RESP3 after `HELLO 3` ([`resp3`]). What
//! differs from Sentinel: no Sentinel election (`IS-MASTER-DOWN-BY-ADDR`
//! answers from this manager's own view and never votes), no runtime reconfiguration
//! over this protocol (`SENTINEL SET/MONITOR/REMOVE/RESET/CONFIG SET` are refused; groups
//! are added and removed through the group registry, `redis_node_manager group`, and the
//! groups listed here follow it). `SENTINEL SENTINELS` lists
//! the other managers at the Sentinel address each announces in its view (`ip ?`, `port 0`
//! for one that runs no Sentinel endpoint).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::SinkExt;
use redis_failover_client::wire::unix_ms;
use redis_failover_client::{NodeAddr, Topology};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch, Semaphore};
use tokio::task::JoinSet;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::core::events::{self, Event};

mod codec;
mod commands;
mod conn;
mod glob;
mod resp3;
mod view;

use crate::core::event_names::SENTINEL_ERROR;
use crate::front::snapshot::{GroupList, GroupSnapshot};
use codec::{error, Codec};
use conn::connection;
use view::GroupView;

/// A client that does not take a reply within this long is dropped, so that one slow
/// subscriber cannot hold up the others.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Redis's default `maxclients`.
const MAX_CLIENTS: usize = 10_000;
/// How long open connections get to finish at shutdown before they are aborted.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Events kept for a subscriber that is momentarily behind.
const EVENT_BACKLOG: usize = 1024;
/// The Redis version reported by INFO and HELLO: the Sentinel protocol spoken here is
/// Redis 7.0's.
const REDIS_VERSION: &str = "7.0.0";
/// Sentinel's default, reported as `failover-timeout`; the leader has no such setting.
const FAILOVER_TIMEOUT_MS: u64 = 180_000;
/// Commands allowed on a subscribed connection, as in Redis.
const SUBSCRIBED_COMMANDS: &[&str] = &[
    "subscribe",
    "psubscribe",
    "unsubscribe",
    "punsubscribe",
    "ping",
    "quit",
    "reset",
];
const COMMANDS: &[&str] = &[
    "ping",
    "role",
    "sentinel",
    "info",
    "client",
    "auth",
    "hello",
    "quit",
    "subscribe",
    "psubscribe",
    "unsubscribe",
    "punsubscribe",
];

/// What the endpoint answers from.
pub struct SentinelState {
    pub manager_id: String,
    pub groups: GroupList,
    pub session: watch::Receiver<Option<zookeeper_client::Client>>,
    /// Required from clients (AUTH / HELLO AUTH) when set.
    pub password: Option<String>,
    /// The port listened on, for INFO.
    pub port: u16,
    /// The session has the managers' identity: requests are written as its own.
    pub as_identity: bool,
}

struct Shared {
    state: SentinelState,
    events: broadcast::Sender<Event>,
    /// Per group name, the last master published: shown while the group has none, as
    /// Sentinel keeps showing a down master at its address.
    last_masters: Mutex<BTreeMap<String, NodeAddr>>,
    clients: Arc<Semaphore>,
    next_client_id: AtomicU64,
    started: Instant,
}

impl Shared {
    fn snapshots(&self) -> Vec<GroupSnapshot> {
        self.state.groups.snapshots()
    }

    fn group(&self, name: &str) -> Option<GroupSnapshot> {
        self.state.groups.find(name)
    }

    fn last_master(&self, group: &str) -> Option<NodeAddr> {
        let masters = self.last_masters.lock().unwrap_or_else(|e| e.into_inner());
        masters.get(group).cloned()
    }

    fn set_last_master(&self, group: &str, master: NodeAddr) {
        let mut masters = self.last_masters.lock().unwrap_or_else(|e| e.into_inner());
        masters.insert(group.to_string(), master);
    }

    /// Forgets the groups no longer watched (a group added again starts afresh).
    fn keep_last_masters(&self, names: &[String]) {
        let mut masters = self.last_masters.lock().unwrap_or_else(|e| e.into_inner());
        masters.retain(|name, _| names.contains(name));
    }

    /// This manager's ZooKeeper session is connected, so the published topology it holds is
    /// current.
    fn session_live(&self) -> bool {
        crate::front::live_session(&self.state.session).is_some()
    }

    fn connected_clients(&self) -> usize {
        MAX_CLIENTS - self.clients.available_permits()
    }

    fn group_view<'a>(&'a self, snap: &'a GroupSnapshot) -> GroupView<'a> {
        let remembered = self
            .last_master(&snap.name)
            .or_else(|| snap.last_failover().map(|r| r.to.clone()));
        GroupView::new(snap, remembered, &self.state.manager_id, unix_ms())
    }
}

/// Serves Sentinel clients on `listener` until `stop` turns true; then ends every task it
/// started (connections get [`SHUTDOWN_GRACE`], then are aborted).
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: SentinelState,
    stop: CancellationToken,
) {
    let (events, _) = broadcast::channel(EVENT_BACKLOG);
    let shared = Arc::new(Shared {
        last_masters: Mutex::new(BTreeMap::new()),
        state,
        events,
        clients: Arc::new(Semaphore::new(MAX_CLIENTS)),
        next_client_id: AtomicU64::new(1),
        started: Instant::now(),
    });
    let mut tasks = JoinSet::new();
    tasks.spawn(follow_groups(shared.clone(), stop.clone()));
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                match (shared.clients.clone().try_acquire_owned(), tls.clone()) {
                    (Ok(permit), None) => {
                        tasks.spawn(connection(
                            shared.clone(),
                            stream,
                            peer.to_string(),
                            stop.clone(),
                            permit,
                        ));
                    }
                    // The handshake in the connection's own task: a slow client holds only it.
                    (Ok(permit), Some(tls)) => {
                        let (shared, stop) = (shared.clone(), stop.clone());
                        tasks.spawn(async move {
                            let handshake = tokio::time::timeout(WRITE_TIMEOUT, tls.accept(stream));
                            if let Ok(Ok(stream)) = handshake.await {
                                connection(shared, stream, peer.to_string(), stop, permit).await;
                            }
                        });
                    }
                    (Err(_), _) => {
                        tasks.spawn(refuse(stream));
                    }
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                warn!("{SENTINEL_ERROR}: accept failed: {e}");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
        // Finished connections leave the set, so it does not grow with every client.
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

async fn refuse(stream: TcpStream) {
    let mut framed = Framed::new(stream, Codec::default());
    let _ = tokio::time::timeout(
        WRITE_TIMEOUT,
        framed.send(error("ERR max number of clients reached")),
    )
    .await;
}

/// Follows the list of groups: each group added is watched for its events
/// ([`watch_group`], which ends when the group's loop does), a group removed is forgotten.
async fn follow_groups(shared: Arc<Shared>, stop: CancellationToken) {
    let mut list = shared.state.groups.clone();
    let mut watched: Vec<watch::Receiver<GroupSnapshot>> = Vec::new();
    let mut tasks = JoinSet::new();
    loop {
        let now = list.channels();
        for rx in now
            .iter()
            .filter(|rx| !watched.iter().any(|w| w.same_channel(rx)))
        {
            tasks.spawn(watch_group(shared.clone(), rx.clone(), stop.clone()));
        }
        watched = now;
        shared.keep_last_masters(&list.names());
        while tasks.try_join_next().is_some() {}
        tokio::select! {
            _ = stop.cancelled() => break,
            more = list.changed() => if !more { break },
        }
    }
    stop.cancelled().await;
    while tasks.join_next().await.is_some() {}
}

/// Publishes the events of every change of the group's topology.
async fn watch_group(
    shared: Arc<Shared>,
    mut rx: watch::Receiver<GroupSnapshot>,
    stop: CancellationToken,
) {
    let mut last: Option<Topology> = None;
    loop {
        let (name, topology, quorum) = {
            let snap = rx.borrow_and_update();
            let quorum = last
                .as_ref()
                .and_then(|t| t.master.as_ref())
                .map(|m| {
                    let view = GroupView::new(&snap, None, &shared.state.manager_id, unix_ms());
                    let (seen, required) = view.odown_quorum(m);
                    // The leader published the change on at least `required` views; the
                    // views read here may lag behind the ones it counted.
                    (seen.max(required), required)
                })
                .unwrap_or((1, 1));
            (snap.name.clone(), snap.topology.clone(), quorum)
        };
        // A topology that is momentarily unknown (ZooKeeper trouble) is no change: the next
        // one is compared with the last one known.
        if let Some(new) = topology {
            if let Some(old) = last.as_ref().filter(|old| !old.same_content(&new)) {
                let remembered = shared.last_master(&name);
                let change = events::Change {
                    group: &name,
                    old,
                    new: &new,
                    last_master: remembered.as_ref(),
                    quorum,
                };
                for e in events::diff(&change) {
                    debug!("sentinel event {} {}", e.channel, e.message);
                    // No subscriber is not an error.
                    let _ = shared.events.send(e);
                }
            }
            if let Some(m) = &new.master {
                shared.set_last_master(&name, m.clone());
            }
            last = Some(new);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
        }
    }
}
