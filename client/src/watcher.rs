//! Keeps the client's view of `<root>/nodes` current: reads it, watches it, re-reads after
//! every change, every reconnect and every new session (an expired session is replaced) and
//! when a failed command asks (keeping the armed watch: one request, not two), and
//! publishes the last good topology through a [`watch`] channel. A missing or corrupt znode,
//! or ZooKeeper being down, leaves the last good topology in place (logged once); so does a
//! topology with an older epoch than one already seen — the client never goes back in time.
//!
//! Every read that adopts (or re-reads) the topology confirms it ([`Confirmation`]); with a
//! write lease, a heartbeat (`exists` of the znode every quarter lease) confirms it while
//! nothing changes (see [`crate::lease`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tracing::{info, warn};
use zookeeper_client as zk;

use crate::error::TopologyReadError;
use crate::lease::Confirmation;
use crate::session::{self, Op};
use crate::{Topology, ZnodePaths};

/// Bound on one ZooKeeper read.
const ZK_OP_TIMEOUT: Duration = Duration::from_secs(3);

/// The topology as this client knows it.
#[derive(Clone, Debug)]
pub struct TopologyView {
    /// The content of `<root>/nodes`.
    pub topology: Topology,
    /// The znode's version when read.
    pub version: i32,
    /// When it was read.
    pub fetched_at: Instant,
    /// When ZooKeeper became unreachable (session disconnected or expired); `None` while the
    /// watch is live, so the topology is current.
    pub stale_since: Option<Instant>,
}

impl TopologyView {
    /// How long the topology may have been out of date: zero while ZooKeeper is connected
    /// and watching it, else the time since the connection was lost.
    pub fn age(&self) -> Duration {
        self.stale_since.map_or(Duration::ZERO, |t| t.elapsed())
    }
}

/// Reads `<root>/nodes` once, for `connect()`: a clear error when missing or corrupt.
pub(crate) async fn read_once(
    client: &zk::Client,
    paths: &ZnodePaths,
) -> Result<(Topology, i32), TopologyReadError> {
    let path = paths.nodes();
    match session::timed(Op::Reading, &path, ZK_OP_TIMEOUT, client.get_data(&path)).await {
        Err(e) if matches!(e.zk_error(), Some(zk::Error::NoNode)) => {
            Err(TopologyReadError::Missing {
                path,
                root: paths.root().to_string(),
            })
        }
        Err(e) => Err(e.into()),
        Ok((data, stat)) => Topology::from_json(&data)
            .map(|t| (t, stat.version))
            .map_err(|source| TopologyReadError::Corrupt { path, source }),
    }
}

/// Completes when `rx` turns true or its sender is gone (the client was dropped).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Shared between the watcher task and the client.
pub(crate) struct Shared {
    pub(crate) tx: watch::Sender<TopologyView>,
    /// Asks the watcher to re-read now (after a command failed in a way that suggests the
    /// topology changed).
    pub(crate) refresh: Notify,
    /// The current session, for writes such as a manual failover request.
    pub(crate) session: watch::Sender<Option<zk::Client>>,
    /// When the topology was last confirmed.
    pub(crate) confirmed: Confirmation,
}

/// Where and how the watcher opens a new session after one ended.
pub(crate) struct ZkTarget {
    pub(crate) servers: String,
    pub(crate) tls: Option<crate::Tls>,
    pub(crate) session_timeout: Duration,
}

/// Runs until `shutdown` is notified or every receiver is gone; confirms the topology every
/// `heartbeat` while nothing changes, when given.
pub(crate) async fn run(
    zk: ZkTarget,
    heartbeat: Option<Duration>,
    paths: ZnodePaths,
    first: zk::Client,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut client = first;
    let mut logged: Option<String> = None;
    loop {
        shared.session.send_replace(Some(client.clone()));
        let session = Session {
            client: &client,
            paths: &paths,
            shared: &shared,
            heartbeat,
        };
        session.watch(&mut shutdown, &mut logged).await;
        if *shutdown.borrow() || shared.tx.is_closed() {
            return;
        }
        mark_stale(&shared);
        shared.session.send_replace(None);
        // The session ended: open a new one, patiently; the last topology keeps serving.
        let options = session::Options {
            auth: None,
            tls: zk.tls.as_ref(),
        };
        let reconnect = session::reconnect_as(
            &zk.servers,
            options,
            zk.session_timeout,
            Duration::from_millis(100),
            |e| {
                note(
                    &mut logged,
                    format!("redis_failover client: {e}; serving the last topology"),
                )
            },
        );
        client = tokio::select! {
            c = reconnect => c,
            _ = stopped(&mut shutdown) => return,
        };
        info!(
            "redis_failover client: new ZooKeeper session {}",
            client.session_id()
        );
    }
}

fn mark_stale(shared: &Shared) {
    shared.tx.send_if_modified(|v| {
        if v.stale_since.is_none() {
            v.stale_since = Some(Instant::now());
            true
        } else {
            false
        }
    });
}

/// Logs a warning once per distinct message.
fn note(logged: &mut Option<String>, msg: String) {
    if logged.as_deref() != Some(msg.as_str()) {
        warn!("{msg}");
        *logged = Some(msg);
    }
}

/// One session's view of the znode.
struct Session<'a> {
    client: &'a zk::Client,
    paths: &'a ZnodePaths,
    shared: &'a Shared,
    heartbeat: Option<Duration>,
}

/// The wait on a one-shot watch armed by a read, kept across the reads that do not need a
/// new one.
type Armed = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Completes when the armed watch fires; never without one.
async fn fired(armed: &mut Option<Armed>) {
    match armed {
        Some(w) => w.await,
        None => std::future::pending().await,
    }
}

/// Why the watcher woke.
enum Wake {
    /// The armed watch fired (a change, or the session's end): read and arm a new one.
    Changed,
    /// Read again (a refresh asked by a failed command, the retry timer, a reconnect).
    Read,
    /// Confirm the topology (the heartbeat).
    Beat,
    /// Nothing to do (the connection dropped: the topology is marked stale).
    Nothing,
}

impl Session<'_> {
    /// Follows the znode within one session; returns when the session has ended.
    ///
    /// A read asked by a failed command (many clients ask at once when a master dies) keeps
    /// the watch still armed instead of replacing it: removing a watch is one more request
    /// to ZooKeeper, and the armed one tells of the next change all the same.
    async fn watch(&self, shutdown: &mut watch::Receiver<bool>, logged: &mut Option<String>) {
        let (client, shared) = (self.client, self.shared);
        let path = self.paths.nodes();
        let mut states = client.state_watcher();
        let mut armed: Option<Armed> = None;
        loop {
            // The `mzxid` of the topology the client holds, when this read proved it current.
            let mut adopted = None;
            let asked = Instant::now();
            let read = if armed.is_some() {
                let read = client.get_data(&path);
                tokio::time::timeout(ZK_OP_TIMEOUT, read)
                    .await
                    .map(|r| r.map(|(data, stat)| (data, stat, None)))
            } else {
                let read = client.get_and_watch_data(&path);
                tokio::time::timeout(ZK_OP_TIMEOUT, read)
                    .await
                    .map(|r| r.map(|(data, stat, w)| (data, stat, Some(w))))
            };
            // ZooKeeper answered (a missing znode included: its creation is watched).
            let answered = matches!(read, Ok(Ok(_)) | Ok(Err(zk::Error::NoNode)));
            match read {
                Ok(Ok((data, stat, watcher))) => {
                    match Topology::from_json(&data) {
                        Ok(topology) if topology.epoch < shared.tx.borrow().topology.epoch => {
                            // Never back in time: an older epoch comes from a ZooKeeper server
                            // that lags behind the one read before (a new session may land on
                            // it), not from a manager, whose epochs only grow.
                            let ours = shared.tx.borrow().topology.epoch;
                            note(logged, format!(
                                "redis_failover client: {path} holds epoch {} (master {}), older than epoch {ours} already seen; keeping the newer topology (a lagging ZooKeeper server; if the group was rebuilt from scratch, restart the client)",
                                topology.epoch,
                                topology.master.as_ref().map_or("none".to_string(), |m| m.to_string()),
                            ));
                        }
                        Ok(topology) => {
                            *logged = None;
                            shared.tx.send_if_modified(|v| {
                                let changed = v.version != stat.version || !v.topology.same_content(&topology);
                                *v = TopologyView {
                                    topology,
                                    version: stat.version,
                                    fetched_at: Instant::now(),
                                    stale_since: None,
                                };
                                changed
                            });
                            shared.confirmed.confirm(asked);
                            adopted = Some(stat.mzxid);
                        }
                        Err(e) => note(logged, format!(
                            "redis_failover client: {path} is corrupt ({e}); keeping the last good topology"
                        )),
                    }
                    if let Some(w) = watcher {
                        armed = Some(Box::pin(async move {
                            w.changed().await;
                        }));
                    }
                }
                Ok(Err(zk::Error::NoNode)) => {
                    note(
                        logged,
                        format!(
                            "redis_failover client: {path} is missing; keeping the last good topology"
                        ),
                    );
                    // A data watch does not tell of a creation: watch for one instead.
                    armed = None;
                    if let Ok(Ok((_, w))) =
                        tokio::time::timeout(ZK_OP_TIMEOUT, client.check_and_watch_stat(&path))
                            .await
                    {
                        armed = Some(Box::pin(async move {
                            w.changed().await;
                        }));
                    }
                }
                Ok(Err(e)) if client.state().is_terminated() => {
                    note(
                        logged,
                        format!("redis_failover client: ZooKeeper session ended ({e})"),
                    );
                    return;
                }
                Ok(Err(e)) => {
                    note(logged, format!("redis_failover client: reading {path}: {e}; keeping the last good topology"));
                }
                Err(_) => mark_stale(shared),
            }
            if client.state().is_terminated() {
                return;
            }
            // Wait for a change, a reconnect, a refresh request or the end; confirm the
            // topology every heartbeat meanwhile. A read that failed is tried again soon.
            let mut retry = Box::pin(tokio::time::sleep(if answered && armed.is_some() {
                Duration::from_secs(3600)
            } else {
                Duration::from_millis(200)
            }));
            let beat = self.heartbeat.unwrap_or(Duration::from_secs(3600));
            let mut beats = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
            beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let wake = tokio::select! {
                    _ = fired(&mut armed) => Wake::Changed,
                    _ = &mut retry => Wake::Read,
                    _ = shared.refresh.notified() => Wake::Read,
                    _ = stopped(shutdown) => return,
                    _ = beats.tick(), if self.heartbeat.is_some() && adopted.is_some() => Wake::Beat,
                    state = states.changed() => match state {
                        zk::SessionState::Disconnected => {
                            mark_stale(shared);
                            Wake::Nothing
                        }
                        // Watches survive a reconnect, but a change while disconnected may
                        // have been missed: read again, with a new watch (only that read
                        // confirms the topology).
                        zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => Wake::Changed,
                        _ => return,
                    },
                };
                match wake {
                    Wake::Changed => {
                        armed = None;
                        break;
                    }
                    Wake::Read => break,
                    Wake::Nothing => {}
                    Wake::Beat => {
                        let asked = Instant::now();
                        let limit = ZK_OP_TIMEOUT.min(beat * 2);
                        match tokio::time::timeout(limit, client.check_stat(&path)).await {
                            Ok(Ok(Some(stat))) if Some(stat.mzxid) == adopted => {
                                // A change handled before this answer was notified before it:
                                // the watch has fired by now if there was one.
                                if let Some(w) = armed.as_mut() {
                                    if futures::poll!(w.as_mut()).is_ready() {
                                        armed = None;
                                        break;
                                    }
                                }
                                shared.confirmed.confirm(asked);
                            }
                            // Changed or gone, and the watch not seen yet: read again.
                            Ok(Ok(_)) => break,
                            // No answer (in time): nothing confirmed.
                            _ => {}
                        }
                    }
                }
            }
        }
    }
}
