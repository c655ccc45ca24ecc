//! Watches that poke a group's loop when a znode (or a child of a folder) is created,
//! changed or deleted, re-armed after each event and on each new session.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zookeeper_client as zk;

use super::ZK_OP_TIMEOUT;

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
