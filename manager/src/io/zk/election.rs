//! The per-group leader lock (ZooKeeper's lock recipe, Curator's layout). Leadership is a
//! `watch` of `Option<Leadership>`: `Some` only while the session is connected and this
//! manager's lock node is the lowest. It turns `None` the moment the connection drops (the
//! session may already be expired on the server, so acting would be a gamble), and comes
//! back after a reconnect only if the lock node is still ours. Every write of the topology
//! also checks the lock node (see [`super::store::publish`]), so a deposed leader cannot
//! overwrite a newer topology even if it has not noticed yet.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis_failover_client::ZnodePaths;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use zookeeper_client as zk;

use crate::core::event_names::{LEADER, LEADER_LOST};

use super::{ZnodeAcls, ZK_OP_TIMEOUT};

/// This manager holds a group's lock, through this session.
#[derive(Clone, Debug)]
pub struct Leadership {
    pub client: zk::Client,
    /// Deleted (the lock released) when the last clone is dropped.
    pub lock: Arc<zk::OwnedLockClient>,
    /// How long after a confirmation of the lock a Redis command may still be sent on it.
    pub act_window: Duration,
    /// What the znodes it creates are given.
    pub acls: Arc<ZnodeAcls>,
    /// When ZooKeeper last confirmed the lock (a check or a lock-checked write, counted
    /// from its request), for [`Leadership::confirm_recent`].
    last_confirmed: Arc<Mutex<Option<Instant>>>,
}

/// The moment ZooKeeper confirmed this manager's lock (a quorum-ordered check, or a
/// lock-checked write), and how long acting on it stays safe.
///
/// No other manager can take the lock before this manager's session expires, and the
/// session cannot expire sooner than a session timeout after this confirmation (ZooKeeper
/// counts from the last contact). The window is half of that, for clock rates and the time
/// a command takes to reach Redis. A manager paused past it (a GC pause, SIGSTOP, a slow
/// disk) confirms again, or stops acting, instead of sending a command a new leader may
/// already have overtaken.
#[derive(Clone, Copy, Debug)]
pub struct Confirmed {
    at: Instant,
    window: Duration,
}

impl Confirmed {
    pub fn new(at: Instant, window: Duration) -> Self {
        Self { at, window }
    }

    /// How long ago the lock was confirmed.
    pub fn age(&self) -> Duration {
        self.at.elapsed()
    }

    /// True while a Redis command may still be sent on this confirmation.
    pub fn fresh(&self) -> bool {
        self.age() < self.window
    }

    pub fn window(&self) -> Duration {
        self.window
    }
}

/// The window a leader may act in after confirming its lock: half the session timeout.
pub fn act_window(session_timeout: Duration) -> Duration {
    session_timeout / 2
}

impl Leadership {
    pub fn new(
        client: zk::Client,
        lock: Arc<zk::OwnedLockClient>,
        act_window: Duration,
        acls: Arc<ZnodeAcls>,
    ) -> Self {
        Self {
            client,
            lock,
            act_window,
            acls,
            last_confirmed: Arc::default(),
        }
    }

    /// True when ZooKeeper confirms now that the lock node is still ours. Asked right
    /// before any change to Redis.
    ///
    /// The check is a transaction holding only "the lock node exists": a write, ordered and
    /// acknowledged by a ZooKeeper quorum, so a server that lags behind the ensemble (or was
    /// cut off from it) cannot answer it from a stale copy, as it could a read. The lock node
    /// is ephemeral and sequential: it exists only while this manager's session lives, and
    /// nobody else can create it again.
    pub async fn confirm(&self) -> Option<Confirmed> {
        if self.client.state() != zk::SessionState::SyncConnected {
            return None;
        }
        // Counted from before the request: the session lived at least until then.
        let asked = Instant::now();
        let check = self.lock.new_check_writer().commit();
        match tokio::time::timeout(ZK_OP_TIMEOUT, check).await {
            Ok(Ok(_)) => Some(self.confirmed_by_write(asked)),
            _ => None,
        }
    }

    /// A lock-checked write asked at `asked` succeeded: it confirmed the lock as
    /// [`Leadership::confirm`] does.
    pub fn confirmed_by_write(&self, asked: Instant) -> Confirmed {
        let mut last = self
            .last_confirmed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *last = Some(last.map_or(asked, |l| l.max(asked)));
        Confirmed::new(asked, self.act_window)
    }

    /// The last confirmation, while the session is connected and it is younger than half
    /// the act window (so that at least half of it is left to act in); else a new one
    /// ([`Leadership::confirm`]). The steps that follow a failover (fencing the new master,
    /// re-pointing a replica) act on the confirmation of the write that published it
    /// instead of asking ZooKeeper again, one request less each in a burst of failovers.
    pub async fn confirm_recent(&self) -> Option<Confirmed> {
        let last = *self
            .last_confirmed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match last {
            Some(at)
                if at.elapsed() < self.act_window / 2
                    && self.client.state() == zk::SessionState::SyncConnected =>
            {
                Some(Confirmed::new(at, self.act_window))
            }
            _ => self.confirm().await,
        }
    }
}

/// What a [`Leadership`] carries besides the lock: how long it may act after a
/// confirmation, and the ACLs of what it creates.
pub struct LeaderTerms {
    pub act_window: Duration,
    pub acls: Arc<ZnodeAcls>,
}

/// Contends for the group's lock whenever there is a session, and publishes leadership.
pub async fn elect(
    group: String,
    paths: ZnodePaths,
    manager_id: String,
    mut sessions: watch::Receiver<Option<zk::Client>>,
    tx: watch::Sender<Option<Leadership>>,
    terms: LeaderTerms,
    shutdown: CancellationToken,
) {
    let LeaderTerms { act_window, acls } = terms;
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
        let options = match acls.lock_options() {
            Ok(o) => o,
            Err(e) => {
                warn!(group = %group, "{LEADER_LOST}: cannot prepare the lock options: {e}");
                return;
            }
        };
        let prefix = match zk::LockPrefix::new_curator(&lock_dir, "lock-") {
            Ok(p) => p,
            Err(e) => {
                warn!(group = %group, "{LEADER_LOST}: bad lock path {lock_dir}: {e}");
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
                warn!(group = %group, "{LEADER_LOST}: could not take the lock under {lock_dir}: {e}; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        let leadership = Leadership::new(client.clone(), lock.clone(), act_window, acls.clone());
        info!(group = %group, "{LEADER}: {manager_id} holds {}", lock.lock_path());
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
                    info!(group = %group, "{LEADER_LOST}: shutting down, lock released");
                    return;
                }
            };
            match state {
                zk::SessionState::Disconnected => {
                    if !suspended {
                        suspended = true;
                        tx.send_replace(None);
                        warn!(group = %group, "{LEADER_LOST}: ZooKeeper connection lost; no action until it returns");
                    }
                }
                zk::SessionState::SyncConnected => {
                    if suspended {
                        if leadership.confirm().await.is_some() {
                            suspended = false;
                            info!(group = %group, "{LEADER}: ZooKeeper connection back, lock still ours");
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
        warn!(group = %group, "{LEADER_LOST}: {lost}; contending again");
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

#[cfg(test)]
mod tests {
    use super::*;
    use redis_failover_tests::manager::zk_client;
    use redis_failover_tests::shared_zk;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn confirm_is_true_only_while_the_lock_node_is_ours() {
        let dir = format!("/t_confirm_{}/lock", std::process::id());
        let leader = super::super::test_leadership(&dir).await;
        assert!(
            leader.confirm().await.is_some_and(|c| c.fresh()),
            "just taken"
        );
        // Deleted by someone else (an admin, or an expiry seen by the ensemble first).
        let other = zk_client(&shared_zk().connect_string()).await;
        other
            .delete(leader.lock.lock_path(), None)
            .await
            .expect("delete the lock node");
        assert!(leader.confirm().await.is_none(), "the lock node is gone");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_recent_confirmation_is_reused_for_half_the_window_only() {
        let dir = format!("/t_confirm_recent_{}/lock", std::process::id());
        let taken = super::super::test_leadership(&dir).await;
        let window = Duration::from_millis(400);
        let leader = Leadership::new(
            taken.client.clone(),
            taken.lock.clone(),
            window,
            taken.acls.clone(),
        );
        assert!(leader.confirm().await.is_some(), "just taken");
        let other = zk_client(&shared_zk().connect_string()).await;
        other
            .delete(leader.lock.lock_path(), None)
            .await
            .expect("delete the lock node");
        // Within half the window the last confirmation stands (no other manager can take
        // the lock before this session expires, a session timeout after it)...
        let reused = leader.confirm_recent().await.expect("reused");
        assert!(reused.fresh() && reused.age() < window / 2, "{reused:?}");
        // ... and after it, ZooKeeper is asked again, and says no.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match leader.confirm_recent().await {
                None => break,
                Some(c) => assert!(c.age() < window / 2, "only reused while recent: {c:?}"),
            }
            assert!(Instant::now() < deadline, "still confirmed after 5 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn a_confirmation_is_acted_on_only_within_its_window() {
        let now = Instant::now();
        assert!(Confirmed::new(now, Duration::from_secs(3)).fresh());
        let old = Confirmed::new(now - Duration::from_millis(3001), Duration::from_secs(3));
        assert!(
            !old.fresh(),
            "a manager paused past the window must not act on it"
        );
        assert_eq!(act_window(Duration::from_secs(6)), Duration::from_secs(3));
    }
}
