//! ZooKeeper: the session (rebuilt after expiry), the per-group leader lock, and reading and
//! compare-and-set writing of `<root>/nodes`.
//!
//! Leadership is a [`watch`] of `Option<Leadership>`: `Some` only while the session is
//! connected and this manager's lock node is the lowest. It turns `None` the moment the
//! connection drops (the session may already be expired on the server, so acting would be a
//! gamble), and comes back after a reconnect only if the lock node is still ours. Every
//! write of the topology is a multi-op that also checks the lock node, so a deposed leader
//! cannot overwrite a newer topology even if it has not noticed yet.

use std::sync::Arc;
use std::time::Duration;

use redis_failover_client::wire::{FailoverRecord, ManualRefusal, ManualRequest, PauseInfo};
use redis_failover_client::{Topology, ZnodePaths};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use zookeeper_client as zk;

/// Bound on every single ZooKeeper request made outside the lock recipe.
pub const ZK_OP_TIMEOUT: Duration = Duration::from_secs(3);

/// Connects within `wait` or says why not.
pub async fn connect(
    servers: &str,
    session_timeout: Duration,
    wait: Duration,
) -> Result<zk::Client, String> {
    redis_failover_client::watcher::connect(servers, session_timeout, wait)
        .await
        .map_err(|e| format!("{e}; check -z/--zkservers and that ZooKeeper is running"))
}

/// Keeps a live session in `tx`: `Some(client)` while the session lives (connected or
/// not), `None` between an expiry and the next session.
pub async fn keep_session(
    servers: String,
    session_timeout: Duration,
    first: zk::Client,
    tx: watch::Sender<Option<zk::Client>>,
    shutdown: CancellationToken,
) {
    let mut client = first;
    loop {
        let mut states = client.state_watcher();
        tx.send_replace(Some(client.clone()));
        loop {
            let state = tokio::select! {
                s = states.changed() => s,
                _ = shutdown.cancelled() => {
                    tx.send_replace(None);
                    drop(client);
                    // The session closes once the other tasks drop their clones too; wait
                    // (bounded) so that the process does not exit before it is sent.
                    let closed = tokio::time::timeout(ZK_OP_TIMEOUT, async {
                        while !states.changed().await.is_terminated() {}
                    })
                    .await;
                    if closed.is_ok() {
                        info!("-zk-session: ZooKeeper session closed");
                    }
                    return;
                }
            };
            match state {
                zk::SessionState::Disconnected => warn!(
                    "-zk-disconnected: lost the ZooKeeper connection; standing by until it returns"
                ),
                zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                    info!(
                        "+zk-reconnected: ZooKeeper session {} resumed",
                        client.session_id()
                    )
                }
                terminal => {
                    warn!(
                        "-zk-session: ZooKeeper session {} ended ({terminal}); opening a new one",
                        client.session_id()
                    );
                    break;
                }
            }
        }
        tx.send_replace(None);
        drop(client);
        let mut delay = Duration::from_millis(200);
        client = loop {
            let attempt = connect(&servers, session_timeout, session_timeout);
            tokio::select! {
                r = attempt => match r {
                    Ok(c) => {
                        info!("+zk-session: new ZooKeeper session {}", c.session_id());
                        break c;
                    }
                    Err(e) => warn!("-zk-session: {e}; retrying"),
                },
                _ = shutdown.cancelled() => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => return,
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        };
    }
}

/// This manager holds a group's lock, through this session.
#[derive(Clone, Debug)]
pub struct Leadership {
    pub client: zk::Client,
    /// Deleted (the lock released) when the last clone is dropped.
    pub lock: Arc<zk::OwnedLockClient>,
}

impl Leadership {
    /// True when a round trip to ZooKeeper now confirms the lock node is still ours. Asked
    /// right before any change to Redis.
    pub async fn confirm(&self) -> bool {
        if self.client.state() != zk::SessionState::SyncConnected {
            return false;
        }
        matches!(
            tokio::time::timeout(ZK_OP_TIMEOUT, self.client.check_stat(self.lock.lock_path())).await,
            Ok(Ok(Some(stat))) if stat.ephemeral_owner == self.client.session_id().0
        )
    }
}

/// Contends for the group's lock whenever there is a session, and publishes leadership.
pub async fn elect(
    group: String,
    paths: ZnodePaths,
    manager_id: String,
    mut sessions: watch::Receiver<Option<zk::Client>>,
    tx: watch::Sender<Option<Leadership>>,
    shutdown: CancellationToken,
) {
    let lock_dir = paths.lock();
    loop {
        let client = tokio::select! {
            // Skip a session that already ended: its replacement is on the way.
            c = sessions.wait_for(|c| c.as_ref().is_some_and(|c| !c.state().is_terminated())) => match c {
                Ok(c) => c.clone(),
                Err(_) => return,
            },
            _ = shutdown.cancelled() => return,
        };
        let Some(client) = client else { continue };
        let mut states = client.state_watcher();
        let options = zk::LockOptions::new(zk::Acls::anyone_all())
            .with_ancestor_options(zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()));
        let options = match options {
            Ok(o) => o,
            Err(e) => {
                warn!(group = %group, "-leader: cannot prepare the lock options: {e}");
                return;
            }
        };
        let prefix = match zk::LockPrefix::new_curator(&lock_dir, "lock-") {
            Ok(p) => p,
            Err(e) => {
                warn!(group = %group, "-leader: bad lock path {lock_dir}: {e}");
                return;
            }
        };
        // Cancel-safe: dropping the future removes a half-made lock node.
        let locked = tokio::select! {
            r = client.lock(prefix, manager_id.as_bytes(), options) => r.map(|l| l.into_owned()),
            _ = wait_terminal(&mut states) => continue,
            _ = shutdown.cancelled() => return,
        };
        let lock = match locked {
            Ok(l) => Arc::new(l),
            Err(e) => {
                warn!(group = %group, "-leader: could not take the lock under {lock_dir}: {e}; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        let leadership = Leadership {
            client: client.clone(),
            lock: lock.clone(),
        };
        info!(group = %group, "+leader: {manager_id} holds {}", lock.lock_path());
        tx.send_replace(Some(leadership.clone()));
        // Hold it while the session lives; stand down while disconnected.
        let mut suspended = false;
        let lost = loop {
            let state = tokio::select! {
                s = states.changed() => s,
                // Deleted by hand (or by a ZooKeeper admin): we no longer lead.
                _ = lock_gone(&client, lock.lock_path()) => break "lock node deleted",
                _ = shutdown.cancelled() => {
                    tx.send_replace(None);
                    release(&client, &lock).await;
                    info!(group = %group, "-leader: shutting down, lock released");
                    return;
                }
            };
            match state {
                zk::SessionState::Disconnected => {
                    if !suspended {
                        suspended = true;
                        tx.send_replace(None);
                        warn!(group = %group, "-leader: ZooKeeper connection lost; no action until it returns");
                    }
                }
                zk::SessionState::SyncConnected => {
                    if suspended {
                        if leadership.confirm().await {
                            suspended = false;
                            info!(group = %group, "+leader: ZooKeeper connection back, lock still ours");
                            tx.send_replace(Some(leadership.clone()));
                        } else {
                            break "lock node gone after reconnect";
                        }
                    }
                }
                _ => break "ZooKeeper session ended",
            }
        };
        tx.send_replace(None);
        warn!(group = %group, "-leader: {lost}; contending again");
        drop(leadership);
        drop(lock);
    }
}

/// Completes when the lock node no longer exists. Errors (a dropped connection) leave it
/// pending: the session state says what happened, and the caller re-arms it after each state
/// change.
async fn lock_gone(client: &zk::Client, path: &str) {
    loop {
        match tokio::time::timeout(ZK_OP_TIMEOUT, client.check_and_watch_stat(path)).await {
            Ok(Ok((None, _))) => return,
            Ok(Ok((Some(_), watcher))) => {
                if watcher.changed().await.event_type == zk::EventType::NodeDeleted {
                    return;
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
}

async fn wait_terminal(states: &mut zk::StateWatcher) {
    loop {
        if states.changed().await.is_terminated() {
            return;
        }
    }
}

async fn release(client: &zk::Client, lock: &Arc<zk::OwnedLockClient>) {
    let _ = tokio::time::timeout(ZK_OP_TIMEOUT, client.delete(lock.lock_path(), None)).await;
}

/// What `<root>/nodes` holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    Missing,
    /// Unreadable as a topology; the version lets the leader replace it with a checked write.
    Corrupt {
        version: i32,
        error: String,
    },
    Valid {
        topology: Topology,
        version: i32,
    },
}

impl Published {
    pub fn topology(&self) -> Option<&Topology> {
        match self {
            Published::Valid { topology, .. } => Some(topology),
            _ => None,
        }
    }

    fn version(&self) -> Option<i32> {
        match self {
            Published::Missing => None,
            Published::Corrupt { version, .. } | Published::Valid { version, .. } => Some(*version),
        }
    }
}

pub async fn read_published(client: &zk::Client, path: &str) -> Result<Published, String> {
    match tokio::time::timeout(ZK_OP_TIMEOUT, client.get_data(path)).await {
        Err(_) => Err(format!("reading {path} timed out")),
        Ok(Err(zk::Error::NoNode)) => Ok(Published::Missing),
        Ok(Err(e)) => Err(format!("reading {path}: {e}")),
        Ok(Ok((data, stat))) => Ok(match Topology::from_json(&data) {
            Ok(topology) => Published::Valid {
                topology,
                version: stat.version,
            },
            Err(e) => Published::Corrupt {
                version: stat.version,
                error: e.to_string(),
            },
        }),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0} changed under us (someone else wrote it); re-reading")]
    Conflict(String),
    #[error("lost the leader lock while writing {0}")]
    LockLost(String),
    #[error("writing {0}: {1}")]
    Zk(String, String),
}

/// Writes `topology` to `<root>/nodes` if it still is at the version we last read (or still
/// missing), and only while our lock node exists. Returns the new version.
pub async fn publish(
    leader: &Leadership,
    paths: &ZnodePaths,
    previous: &Published,
    topology: &Topology,
) -> Result<i32, PublishError> {
    let path = paths.nodes();
    let data = topology.to_json();
    let write = async {
        match previous.version() {
            Some(v) => leader
                .lock
                .set_data(&path, &data, Some(v))
                .await
                .map(|s| s.version),
            None => {
                // Parents first (mkdir -p); the lock recipe already made the root.
                let dir = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
                match leader.client.mkdir(paths.root(), &dir).await {
                    Ok(()) | Err(zk::Error::NodeExists) => {}
                    Err(e) => return Err(e),
                }
                leader.lock.create(&path, &data, &dir).await.map(|_| 0)
            }
        }
    };
    match tokio::time::timeout(ZK_OP_TIMEOUT, write).await {
        Err(_) => Err(PublishError::Zk(path, "timed out".into())),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(zk::Error::BadVersion | zk::Error::NodeExists | zk::Error::NoNode)) => {
            Err(PublishError::Conflict(path))
        }
        Ok(Err(zk::Error::RuntimeInconsistent)) => Err(PublishError::LockLost(path)),
        Ok(Err(e)) => Err(PublishError::Zk(path, e.to_string())),
    }
}

/// The pending request in `<root>/manual_failover`, with its znode version.
pub async fn read_manual(
    client: &zk::Client,
    path: &str,
) -> Result<Option<(Vec<u8>, i32)>, String> {
    match tokio::time::timeout(ZK_OP_TIMEOUT, client.get_data(path)).await {
        Err(_) => Err(format!("reading {path} timed out")),
        Ok(Err(zk::Error::NoNode)) => Ok(None),
        Ok(Err(e)) => Err(format!("reading {path}: {e}")),
        Ok(Ok((data, stat))) => Ok(Some((data, stat.version))),
    }
}

/// Writes a manual failover request (`h:p`, or `ANY_SLAVE` for `None`) to
/// `<root>/manual_failover`, replacing any earlier one. Any manager or tool may write it; the
/// leader carries it out.
pub async fn request_manual(
    client: &zk::Client,
    paths: &ZnodePaths,
    to: Option<&redis_failover_client::NodeAddr>,
) -> Result<(), String> {
    let path = paths.manual_failover();
    let data = ManualRequest::encode(to);
    operator_write(client, paths, &path, Some(&data)).await
}

/// An operator's write under an existing group root: `Some(data)` creates or replaces the
/// persistent znode `path`, `None` deletes it (absent is fine). A missing root means no
/// manager ever ran there, which is what the error says.
async fn operator_write(
    client: &zk::Client,
    paths: &ZnodePaths,
    path: &str,
    data: Option<&[u8]>,
) -> Result<(), String> {
    let write = async {
        match data {
            None => match client.delete(path, None).await {
                Ok(()) | Err(zk::Error::NoNode) => Ok(()),
                Err(e) => Err(e),
            },
            Some(data) => {
                let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
                match client.create(path, data, &opts).await {
                    Ok(_) => Ok(()),
                    Err(zk::Error::NodeExists) => {
                        client.set_data(path, data, None).await.map(|_| ())
                    }
                    Err(e) => Err(e),
                }
            }
        }
    };
    match tokio::time::timeout(ZK_OP_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(zk::Error::NoNode)) => Err(format!(
            "{} does not exist: no manager runs with --znode-path {}",
            paths.root(),
            paths.root()
        )),
        Ok(Err(e)) => Err(format!("writing {path}: {e}")),
        Err(_) => Err(format!("writing {path} timed out")),
    }
}

/// The leader's verdict on a manual failover request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManualOutcome {
    /// Carried out: `done: the master is now h:p`.
    Done(String),
    /// Refused, with the leader's reason.
    Refused(String),
    /// Nobody acted within the wait.
    TimedOut(String),
}

impl std::fmt::Display for ManualOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManualOutcome::Done(m) | ManualOutcome::TimedOut(m) => f.write_str(m),
            ManualOutcome::Refused(r) => write!(f, "refused: {r}"),
        }
    }
}

/// Waits (bounded by `wait`) for the leader's verdict on the pending manual request.
pub async fn await_manual(
    client: &zk::Client,
    paths: &ZnodePaths,
    wait: Duration,
) -> Result<ManualOutcome, String> {
    let path = paths.manual_failover();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match read_manual(client, &path).await? {
            None => {
                let master = match read_published(client, &paths.nodes()).await {
                    Ok(Published::Valid { topology, .. }) => topology
                        .master
                        .map_or("null".to_string(), |m| m.to_string()),
                    _ => "?".to_string(),
                };
                return Ok(ManualOutcome::Done(format!(
                    "done: the master is now {master}"
                )));
            }
            Some((data, _)) => {
                if let Some(refusal) = ManualRefusal::from_json(&data) {
                    return Ok(ManualOutcome::Refused(refusal.refused));
                }
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Ok(ManualOutcome::TimedOut(format!(
                "no manager acted on {path} within {} s; is a redis_node_manager leading this group?",
                wait.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ends a request: deleted when carried out, replaced by `{"refused":..,"request":..}` when
/// refused (so operators see why), both only if still at `version` and we hold the lock.
pub async fn finish_manual(
    leader: &Leadership,
    path: &str,
    version: i32,
    refused: Option<(&str, &str)>,
) -> Result<(), String> {
    let write = async {
        match refused {
            None => leader.lock.delete(path, Some(version)).await,
            Some((request, reason)) => {
                let body = ManualRefusal::now(request, reason).to_json();
                leader
                    .lock
                    .set_data(path, &body, Some(version))
                    .await
                    .map(|_| ())
            }
        }
    };
    match tokio::time::timeout(ZK_OP_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("updating {path}: {e}")),
        Err(_) => Err(format!("updating {path} timed out")),
    }
}

/// Writes this manager's view as an ephemeral znode (created on first use, parents made).
pub async fn publish_view(
    client: &zk::Client,
    paths: &ZnodePaths,
    path: &str,
    view: &redis_failover_client::ManagerView,
) -> Result<(), String> {
    let data = view.to_json();
    let write = async {
        match client.set_data(path, &data, None).await {
            Ok(_) => Ok(()),
            Err(zk::Error::NoNode) => {
                let dir = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
                match client.mkdir(&paths.manager_node_state(), &dir).await {
                    Ok(()) | Err(zk::Error::NodeExists) => {}
                    Err(e) => return Err(e),
                }
                let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
                client.create(path, &data, &eph).await.map(|_| ())
            }
            Err(e) => Err(e),
        }
    };
    match tokio::time::timeout(ZK_OP_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("writing {path}: {e}")),
        Err(_) => Err(format!("writing {path} timed out")),
    }
}

/// Every manager's view under `<root>/manager_node_state` (unreadable ones skipped).
pub async fn read_views(
    client: &zk::Client,
    paths: &ZnodePaths,
) -> Result<Vec<(String, redis_failover_client::ManagerView)>, String> {
    let dir = paths.manager_node_state();
    let read = async {
        let children = match client.list_children(&dir).await {
            Ok(c) => c,
            Err(zk::Error::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut views = Vec::new();
        for id in children {
            if let Ok((data, _)) = client.get_data(&format!("{dir}/{id}")).await {
                if let Ok(v) = redis_failover_client::ManagerView::from_json(&data) {
                    views.push((id, v));
                }
            }
        }
        Ok(views)
    };
    match tokio::time::timeout(ZK_OP_TIMEOUT, read).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("reading {dir}: {e}")),
        Err(_) => Err(format!("reading {dir} timed out")),
    }
}

/// Pokes `notify` whenever one of `paths` is created, changed or deleted, or (for each of
/// `dirs`) a child is added, removed or rewritten, through ZooKeeper watches re-armed after
/// each event and on each new session. Ends with `shutdown`.
pub async fn watch_changes(
    mut sessions: watch::Receiver<Option<zk::Client>>,
    paths: Vec<String>,
    dirs: Vec<String>,
    notify: Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
) {
    loop {
        let client = sessions
            .borrow_and_update()
            .clone()
            .filter(|c| !c.state().is_terminated());
        let mut watchers = Vec::new();
        if let Some(client) = &client {
            let mut watched: Vec<String> = paths.clone();
            for d in &dirs {
                match tokio::time::timeout(ZK_OP_TIMEOUT, client.list_and_watch_children(d)).await {
                    Ok(Ok((children, w))) => {
                        watchers.push(Box::pin(w.changed()));
                        watched.extend(children.iter().map(|c| format!("{d}/{c}")));
                    }
                    // Not there yet: watch for its creation.
                    _ => watched.push(d.clone()),
                }
            }
            for p in &watched {
                if let Ok(Ok((_, w))) =
                    tokio::time::timeout(ZK_OP_TIMEOUT, client.check_and_watch_stat(p)).await
                {
                    watchers.push(Box::pin(w.changed()));
                }
            }
        }
        if watchers.is_empty() {
            // No session, or ZooKeeper unreachable: the periodic reads cover it meanwhile.
            tokio::select! {
                r = sessions.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.cancelled() => return,
            }
            continue;
        }
        tokio::select! {
            _ = futures::future::select_all(watchers) => notify.notify_one(),
            r = sessions.changed() => if r.is_err() { return },
            // A safety net: re-arm now and then even if an event was missed.
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// `<root>/paused`: `None` when automatic failover is not paused. An unreadable payload
/// still pauses (an operator meant to pause; the reason is lost).
pub async fn read_pause(
    client: &zk::Client,
    paths: &ZnodePaths,
) -> Result<Option<PauseInfo>, String> {
    let path = paths.paused();
    match tokio::time::timeout(ZK_OP_TIMEOUT, client.get_data(&path)).await {
        Err(_) => Err(format!("reading {path} timed out")),
        Ok(Err(zk::Error::NoNode)) => Ok(None),
        Ok(Err(e)) => Err(format!("reading {path}: {e}")),
        Ok(Ok((data, _))) => Ok(Some(PauseInfo::from_json(&data))),
    }
}

/// Pauses (`Some`) or resumes (`None`) automatic failover for a group. Needs the group's
/// root to exist (a manager has run).
pub async fn set_pause(
    client: &zk::Client,
    paths: &ZnodePaths,
    pause: Option<&PauseInfo>,
) -> Result<(), String> {
    let data = pause.map(PauseInfo::to_json);
    operator_write(client, paths, &paths.paused(), data.as_deref()).await
}

/// `<root>/failover_history`, oldest first (empty when missing or unreadable).
pub async fn read_history(
    client: &zk::Client,
    paths: &ZnodePaths,
) -> Result<Vec<FailoverRecord>, String> {
    Ok(read_history_versioned(client, paths).await?.0)
}

async fn read_history_versioned(
    client: &zk::Client,
    paths: &ZnodePaths,
) -> Result<(Vec<FailoverRecord>, Option<i32>), String> {
    let path = paths.failover_history();
    match tokio::time::timeout(ZK_OP_TIMEOUT, client.get_data(&path)).await {
        Err(_) => Err(format!("reading {path} timed out")),
        Ok(Err(zk::Error::NoNode)) => Ok((Vec::new(), None)),
        Ok(Err(e)) => Err(format!("reading {path}: {e}")),
        // A corrupt history is replaced rather than blocking new records.
        Ok(Ok((data, stat))) => Ok((FailoverRecord::list_from_json(&data), Some(stat.version))),
    }
}

/// Appends `record`, keeping the newest `keep`; compare-and-set, retried a few times.
/// Returns the history as written.
pub async fn append_history(
    client: &zk::Client,
    paths: &ZnodePaths,
    record: &FailoverRecord,
    keep: usize,
) -> Result<Vec<FailoverRecord>, String> {
    let path = paths.failover_history();
    for _ in 0..5 {
        let (mut history, version) = read_history_versioned(client, paths).await?;
        history.push(record.clone());
        let excess = history.len().saturating_sub(keep);
        history.drain(..excess);
        let data = FailoverRecord::list_to_json(&history);
        let write = async {
            match version {
                Some(v) => client.set_data(&path, &data, Some(v)).await.map(|_| ()),
                None => {
                    let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
                    client.create(&path, &data, &opts).await.map(|_| ())
                }
            }
        };
        match tokio::time::timeout(ZK_OP_TIMEOUT, write).await {
            Ok(Ok(())) => return Ok(history),
            Ok(Err(zk::Error::BadVersion | zk::Error::NodeExists)) => continue,
            Ok(Err(e)) => return Err(format!("writing {path}: {e}")),
            Err(_) => return Err(format!("writing {path} timed out")),
        }
    }
    Err(format!("writing {path}: kept changing under us"))
}

/// The manager ids holding or waiting for the group's lock, the holder first.
pub async fn read_lock_order(
    client: &zk::Client,
    paths: &ZnodePaths,
) -> Result<Vec<String>, String> {
    let lock = paths.lock();
    let read = async {
        let mut children = match client.list_children(&lock).await {
            Ok(c) => c,
            Err(zk::Error::NoNode) => Vec::new(),
            Err(e) => return Err(format!("reading {lock}: {e}")),
        };
        // Lock order is the sequence suffix.
        children.sort_by_key(|c| c.rsplit('-').next().map(str::to_string));
        let mut ids = Vec::new();
        for c in children {
            if let Ok((data, _)) = client.get_data(&format!("{lock}/{c}")).await {
                ids.push(String::from_utf8_lossy(&data).to_string());
            }
        }
        Ok(ids)
    };
    tokio::time::timeout(ZK_OP_TIMEOUT, read)
        .await
        .map_err(|_| format!("reading {lock} timed out"))?
}
