//! One persistent recursive watch per group root (ZooKeeper 3.6+ `addWatch`): ZooKeeper
//! pushes every creation, change and deletion under the root, and the group's loop re-reads
//! only what changed. Nothing is polled, and nothing is re-armed after an event.
//!
//! Events can be lost while the connection is down (ZOOKEEPER-4698), so a reconnection, a
//! new session and the watch's own (re)registration all mark everything as changed.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis_failover_client::ZnodePaths;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use zookeeper_client as zk;

use super::ZK_OP_TIMEOUT;

/// What changed under a group's root since the loop last looked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Events may have been missed: re-read everything.
    pub everything: bool,
    /// `<root>/nodes`.
    pub nodes: bool,
    /// `<root>/paused`.
    pub paused: bool,
    /// `<root>/manual_failover`.
    pub manual: bool,
    /// Events on `<root>/failover_history` (the leader's own appends among them).
    pub history: u32,
    /// A child of `<root>/lock` came or went.
    pub lock: bool,
    /// The manager ids whose view (`<root>/manager_node_state/<id>`) changed, came or went.
    pub views: BTreeSet<String>,
}

impl Changes {
    pub fn all() -> Self {
        Self {
            everything: true,
            ..Self::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Records an event on `path`; false when the path is none of the group's znodes (a
    /// group nested under this root, say).
    pub fn note(&mut self, paths: &ZnodePaths, path: &str) -> bool {
        let in_dir = |dir: String| {
            path.strip_prefix(dir.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .filter(|child| !child.is_empty() && !child.contains('/'))
                .map(str::to_string)
        };
        if path == paths.nodes() {
            self.nodes = true;
        } else if path == paths.paused() {
            self.paused = true;
        } else if path == paths.manual_failover() {
            self.manual = true;
        } else if path == paths.failover_history() {
            self.history += 1;
        } else if let Some(id) = in_dir(paths.manager_node_state()) {
            self.views.insert(id);
        } else if in_dir(paths.lock()).is_some() {
            self.lock = true;
        } else {
            return false;
        }
        true
    }
}

/// The changes a watch has collected, taken by the group's loop.
#[derive(Debug, Default)]
pub struct Pending {
    changes: Mutex<Changes>,
    notify: Notify,
}

impl Pending {
    fn add(&self, f: impl FnOnce(&mut Changes) -> bool) {
        let noted = match self.changes.lock() {
            Ok(mut c) => f(&mut c),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        };
        if noted {
            self.notify.notify_one();
        }
    }

    /// Waits until something changed, and takes it.
    pub async fn changed(&self) -> Changes {
        loop {
            let taken = match self.changes.lock() {
                Ok(mut c) => std::mem::take(&mut *c),
                Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
            };
            if !taken.is_empty() {
                return taken;
            }
            self.notify.notified().await;
        }
    }
}

/// Keeps a persistent recursive watch on the group's root for as long as `shutdown` is
/// not cancelled, on every session in turn, recording changes in `pending`.
pub async fn watch_group(
    sessions: watch::Receiver<Option<zk::Client>>,
    paths: ZnodePaths,
    pending: Arc<Pending>,
    shutdown: CancellationToken,
) {
    let root = paths.root().to_string();
    watch_tree(sessions, &root, shutdown, |event| match event {
        Some(path) => pending.add(|c| c.note(&paths, path)),
        None => pending.add(|c| {
            c.everything = true;
            true
        }),
    })
    .await
}

/// Keeps a persistent recursive watch on `root` for as long as `shutdown` is not cancelled,
/// on every session in turn: `on_event(Some(path))` for each event under it, `on_event(None)`
/// when events may have been missed (the watch (re)registered, the connection back).
pub async fn watch_tree(
    mut sessions: watch::Receiver<Option<zk::Client>>,
    root: &str,
    shutdown: CancellationToken,
    on_event: impl Fn(Option<&str>),
) {
    loop {
        let client = sessions
            .borrow_and_update()
            .clone()
            .filter(|c| !c.state().is_terminated());
        let registered = match &client {
            Some(c) => tokio::time::timeout(
                ZK_OP_TIMEOUT,
                c.watch(root, zk::AddWatchMode::PersistentRecursive),
            )
            .await
            .ok()
            .and_then(Result::ok),
            None => None,
        };
        let Some(mut watcher) = registered else {
            // No session, or ZooKeeper unreachable: try again on the next session or soon.
            tokio::select! {
                r = sessions.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.cancelled() => return,
            }
            continue;
        };
        // Whatever happened before the watch was in place is unknown.
        on_event(None);
        loop {
            tokio::select! {
                event = watcher.changed() => {
                    if event.event_type == zk::EventType::Session {
                        if event.session_state.is_terminated() {
                            // No more events come on this session (and asking for one
                            // would panic): wait for the next.
                            break;
                        }
                        if event.session_state == zk::SessionState::SyncConnected {
                            on_event(None);
                        }
                        continue;
                    }
                    on_event(Some(&event.path));
                }
                r = sessions.changed() => {
                    if r.is_err() { return }
                    break;
                }
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_sorted_by_znode() {
        let paths = ZnodePaths::new("/rf").expect("root");
        type Check = fn(&Changes) -> bool;
        let table: &[(&str, bool, Check)] = &[
            ("/rf/nodes", true, |c| c.nodes),
            ("/rf/paused", true, |c| c.paused),
            ("/rf/manual_failover", true, |c| c.manual),
            ("/rf/failover_history", true, |c| c.history == 1),
            (
                "/rf/master_redis_node_manager_lock/_c_1-lock-0000000001",
                true,
                |c| c.lock,
            ),
            ("/rf/manager_node_state/m2", true, |c| {
                c.views.contains("m2")
            }),
            // A group nested under this root, or the folders themselves: not ours.
            ("/rf/cache/nodes", false, Changes::is_empty),
            ("/rf/manager_node_state", false, Changes::is_empty),
            ("/rf/manager_node_state/m2/x", false, Changes::is_empty),
            ("/rf", false, Changes::is_empty),
        ];
        for (path, noted, check) in table {
            let mut c = Changes::default();
            assert_eq!(c.note(&paths, path), *noted, "{path}");
            assert!(check(&c), "{path}: {c:?}");
        }
    }

    #[tokio::test]
    async fn pending_changes_are_merged_until_taken() {
        let p = Pending::default();
        let paths = ZnodePaths::new("/rf").expect("root");
        p.add(|c| c.note(&paths, "/rf/nodes"));
        p.add(|c| c.note(&paths, "/rf/manager_node_state/m1"));
        p.add(|c| c.note(&paths, "/rf/cache/nodes"));
        let taken = tokio::time::timeout(Duration::from_secs(1), p.changed())
            .await
            .expect("changes are there");
        assert!(taken.nodes && taken.views.contains("m1") && !taken.paused);
        let nothing = tokio::time::timeout(Duration::from_millis(50), p.changed()).await;
        assert!(nothing.is_err(), "taken once: {nothing:?}");
    }
}
