//! Keeps the client's view of `<root>/nodes` current: reads it, watches it, re-reads after
//! every change, every reconnect and every new session (an expired session is replaced), and
//! publishes the last good topology through a [`watch`] channel. A missing or corrupt znode,
//! or ZooKeeper being down, leaves the last good topology in place (logged once); so does a
//! topology with an older epoch than one already seen — the client never goes back in time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tracing::{info, warn};
use zookeeper_client as zk;

use crate::error::TopologyReadError;
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
}

/// Runs until `shutdown` is notified or every receiver is gone.
pub(crate) async fn run(
    servers: String,
    session_timeout: Duration,
    paths: ZnodePaths,
    first: zk::Client,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut client = first;
    let mut logged: Option<String> = None;
    loop {
        shared.session.send_replace(Some(client.clone()));
        watch_session(&client, &paths, &shared, &mut shutdown, &mut logged).await;
        if *shutdown.borrow() || shared.tx.is_closed() {
            return;
        }
        mark_stale(&shared);
        shared.session.send_replace(None);
        // The session ended: open a new one, patiently; the last topology keeps serving.
        let reconnect =
            session::reconnect(&servers, session_timeout, Duration::from_millis(100), |e| {
                note(
                    &mut logged,
                    format!("redis_failover client: {e}; serving the last topology"),
                )
            });
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

/// Follows the znode within one session; returns when the session has ended.
async fn watch_session(
    client: &zk::Client,
    paths: &ZnodePaths,
    shared: &Shared,
    shutdown: &mut watch::Receiver<bool>,
    logged: &mut Option<String>,
) {
    let path = paths.nodes();
    let mut states = client.state_watcher();
    loop {
        let read = tokio::time::timeout(ZK_OP_TIMEOUT, client.get_and_watch_data(&path)).await;
        let watcher = match read {
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
                    }
                    Err(e) => note(logged, format!(
                        "redis_failover client: {path} is corrupt ({e}); keeping the last good topology"
                    )),
                }
                Some(watcher)
            }
            Ok(Err(zk::Error::NoNode)) => {
                note(
                    logged,
                    format!(
                        "redis_failover client: {path} is missing; keeping the last good topology"
                    ),
                );
                match tokio::time::timeout(ZK_OP_TIMEOUT, client.check_and_watch_stat(&path)).await
                {
                    Ok(Ok((_, w))) => Some(w),
                    _ => None,
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
                None
            }
            Err(_) => {
                mark_stale(shared);
                None
            }
        };
        if client.state().is_terminated() {
            return;
        }
        // Wait for a change, a reconnect, a refresh request or the end.
        let mut retry = Box::pin(tokio::time::sleep(if watcher.is_some() {
            Duration::from_secs(3600)
        } else {
            Duration::from_millis(200)
        }));
        let changed = async {
            match watcher {
                Some(w) => {
                    w.changed().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::pin!(changed);
        loop {
            tokio::select! {
                _ = &mut changed => break,
                _ = &mut retry => break,
                _ = shared.refresh.notified() => break,
                _ = stopped(shutdown) => return,
                state = states.changed() => match state {
                    zk::SessionState::Disconnected => mark_stale(shared),
                    // Watches survive a reconnect, but a change while disconnected may have
                    // been missed: read again.
                    zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => break,
                    _ => return,
                },
            }
        }
    }
}
