//! A group's znodes as the managers read and write them: `<root>/nodes` (compare-and-set,
//! lock-checked), every manager's view, the pause switch, the failover history and the lock
//! order. The formats are the client crate's `wire` module.

use redis_failover_client::session::OpError;
use redis_failover_client::wire::ManagerView;
use redis_failover_client::wire::{FailoverRecord, PauseInfo};
use redis_failover_client::{Topology, ZnodePaths};
use zookeeper_client as zk;

use super::{bounded, optional, Leadership, Op, ZkError, ZnodeAcls, ZK_OP_TIMEOUT};

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

pub async fn read_published(client: &zk::Client, path: &str) -> Result<Published, ZkError> {
    let read = bounded(Op::Reading, path, async {
        optional(client.get_data(path).await)
    });
    Ok(match read.await? {
        None => Published::Missing,
        Some((data, stat)) => match Topology::from_json(&data) {
            Ok(topology) => Published::Valid {
                topology,
                version: stat.version,
            },
            Err(e) => Published::Corrupt {
                version: stat.version,
                error: e.to_string(),
            },
        },
    })
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
                match leader
                    .client
                    .mkdir(paths.root(), &leader.acls.persistent())
                    .await
                {
                    Ok(()) | Err(zk::Error::NodeExists) => {}
                    Err(e) => return Err(e),
                }
                leader
                    .lock
                    .create(&path, &data, &leader.acls.persistent())
                    .await
                    .map(|_| 0)
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

/// Writes this manager's view as an ephemeral znode (created on first use, parents made).
pub async fn publish_view(
    client: &zk::Client,
    paths: &ZnodePaths,
    path: &str,
    view: &ManagerView,
    acls: &ZnodeAcls,
) -> Result<(), ZkError> {
    let data = view.to_json();
    let write = async {
        match client.set_data(path, &data, None).await {
            Ok(_) => Ok(()),
            Err(zk::Error::NoNode) => {
                match client
                    .mkdir(&paths.manager_node_state(), &acls.persistent())
                    .await
                {
                    Ok(()) | Err(zk::Error::NodeExists) => {}
                    Err(e) => return Err(e),
                }
                client
                    .create(path, &data, &acls.ephemeral())
                    .await
                    .map(|_| ())
            }
            Err(e) => Err(e),
        }
    };
    bounded(Op::Writing, path, write).await
}

/// Every manager's view under `<root>/manager_node_state` (unreadable ones skipped).
pub async fn read_views(
    client: &zk::Client,
    paths: &ZnodePaths,
) -> Result<Vec<(String, ManagerView)>, ZkError> {
    let dir = paths.manager_node_state();
    let read = async {
        let Some(children) = optional(client.list_children(&dir).await)? else {
            return Ok(Vec::new());
        };
        let mut views = Vec::new();
        for id in children {
            if let Ok((data, _)) = client.get_data(&format!("{dir}/{id}")).await {
                if let Ok(v) = ManagerView::from_json(&data) {
                    views.push((id, v));
                }
            }
        }
        Ok(views)
    };
    bounded(Op::Reading, &dir, read).await
}

/// One manager's view, `None` when it has none (its session ended) or it is unreadable.
pub async fn read_view(
    client: &zk::Client,
    paths: &ZnodePaths,
    id: &str,
) -> Result<Option<ManagerView>, ZkError> {
    let path = paths.manager_node_state_of(id);
    let data = bounded(Op::Reading, &path, async {
        optional(client.get_data(&path).await)
    })
    .await?;
    Ok(data.and_then(|(d, _)| ManagerView::from_json(&d).ok()))
}

/// `<root>/paused`: `None` when automatic failover is not paused. An unreadable payload
/// still pauses (an operator meant to pause; the reason is lost).
pub async fn read_pause(
    client: &zk::Client,
    paths: &ZnodePaths,
) -> Result<Option<PauseInfo>, ZkError> {
    let path = paths.paused();
    let data = bounded(Op::Reading, &path, async {
        optional(client.get_data(&path).await)
    })
    .await?;
    Ok(data.map(|(data, _)| PauseInfo::from_json(&data)))
}

/// `<root>/failover_history` as last read or written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Oldest first (empty when missing or unreadable).
    pub records: Vec<FailoverRecord>,
    /// The znode's version; `None` when it does not exist (yet).
    pub version: Option<i32>,
}

/// `<root>/failover_history`.
pub async fn read_history(client: &zk::Client, paths: &ZnodePaths) -> Result<History, ZkError> {
    let path = paths.failover_history();
    let data = bounded(Op::Reading, &path, async {
        optional(client.get_data(&path).await)
    })
    .await?;
    Ok(match data {
        None => History::default(),
        // A corrupt history is replaced rather than blocking new records.
        Some((data, stat)) => History {
            records: FailoverRecord::list_from_json(&data),
            version: Some(stat.version),
        },
    })
}

/// Adds what `--on-switch-master` said to the record published at `at_ms` (if the history
/// still holds it), compare-and-set and lock-checked as [`append_history`].
pub async fn annotate_history(
    leader: &Leadership,
    paths: &ZnodePaths,
    at_ms: u64,
    hook: &str,
) -> Result<(), ZkError> {
    let path = paths.failover_history();
    for _ in 0..5 {
        let History {
            records: mut history,
            version,
        } = read_history(&leader.client, paths).await?;
        let (Some(record), Some(version)) =
            (history.iter_mut().find(|r| r.at_ms == at_ms), version)
        else {
            return Ok(());
        };
        record.hook = Some(hook.to_string());
        let data = FailoverRecord::list_to_json(&history);
        let write = async {
            match leader.lock.set_data(&path, &data, Some(version)).await {
                Err(zk::Error::BadVersion) => Ok(false),
                other => other.map(|_| true),
            }
        };
        match bounded(Op::Writing, &path, write).await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(e),
        }
    }
    Err(ZkError::Contended(path))
}

/// Appends `record`, keeping the newest `keep`; compare-and-set and lock-checked (like the
/// topology: a deposed leader cannot write history late), retried a few times. The first
/// try appends to `known` (what the caller last read or wrote) without reading it again;
/// a conflict reads it. Returns the history as written.
pub async fn append_history(
    leader: &Leadership,
    paths: &ZnodePaths,
    known: &History,
    record: &FailoverRecord,
    keep: usize,
) -> Result<History, ZkError> {
    let path = paths.failover_history();
    let mut base = known.clone();
    for attempt in 0..5 {
        if attempt > 0 {
            base = read_history(&leader.client, paths).await?;
        }
        let mut history = base.records.clone();
        history.push(record.clone());
        let excess = history.len().saturating_sub(keep);
        history.drain(..excess);
        let data = FailoverRecord::list_to_json(&history);
        let write = async {
            let written = match base.version {
                Some(v) => leader
                    .lock
                    .set_data(&path, &data, Some(v))
                    .await
                    .map(|stat| stat.version),
                None => leader
                    .lock
                    .create(&path, &data, &leader.acls.persistent())
                    .await
                    .map(|_| 0),
            };
            // Someone else appended meanwhile: read again and retry.
            match written {
                Err(zk::Error::BadVersion | zk::Error::NodeExists) => Ok(None),
                other => other.map(Some),
            }
        };
        match bounded(Op::Writing, &path, write).await {
            Ok(Some(version)) => {
                return Ok(History {
                    records: history,
                    version: Some(version),
                })
            }
            Ok(None) => {}
            Err(ZkError::Op(OpError::Failed {
                source: zk::Error::RuntimeInconsistent,
                ..
            })) => return Err(ZkError::LockLost(path)),
            Err(e) => return Err(e),
        }
    }
    Err(ZkError::Contended(path))
}

/// The manager ids holding or waiting for the group's lock, the holder first.
pub async fn read_lock_order(
    client: &zk::Client,
    paths: &ZnodePaths,
) -> Result<Vec<String>, ZkError> {
    let lock = paths.lock();
    let read = async {
        let mut children = optional(client.list_children(&lock).await)?.unwrap_or_default();
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
    bounded(Op::Reading, &lock, read).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::zk::test_leadership;
    use redis_failover_client::wire::FailoverKind;
    use redis_failover_client::NodeAddr;

    fn record(epoch: u64) -> FailoverRecord {
        FailoverRecord {
            at_ms: 1,
            kind: FailoverKind::Failover,
            reason: "test".into(),
            from: NodeAddr::new("h", 1),
            to: NodeAddr::new("h", 2),
            duration_ms: 5,
            votes: String::new(),
            epoch,
            manager: "m1".into(),
            hook: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn history_is_written_only_under_the_lock() {
        let root = format!("/t_history_{}", std::process::id());
        let paths = ZnodePaths::new(&root).expect("root");
        let leader = test_leadership(&paths.lock()).await;
        let epochs = |h: &History| h.records.iter().map(|r| r.epoch).collect::<Vec<_>>();
        let written = append_history(&leader, &paths, &History::default(), &record(1), 20)
            .await
            .expect("written while leading");
        assert_eq!(epochs(&written), vec![1]);
        // On what it wrote (not read again), and on a stale copy (the conflict is read):
        // nothing is lost either way.
        let second = append_history(&leader, &paths, &written, &record(2), 20)
            .await
            .expect("appended to what it wrote");
        assert_eq!(epochs(&second), vec![1, 2]);
        let third = append_history(&leader, &paths, &written, &record(3), 20)
            .await
            .expect("appended to a stale copy");
        assert_eq!(epochs(&third), vec![1, 2, 3]);
        let read = read_history(&leader.client, &paths).await.expect("read");
        assert_eq!(read, third, "what it returns is what ZooKeeper holds");
        // Deposed (the lock node gone): a late write is refused and changes nothing.
        leader
            .client
            .delete(leader.lock.lock_path(), None)
            .await
            .expect("delete the lock node");
        let late = append_history(&leader, &paths, &third, &record(4), 20).await;
        assert!(matches!(late, Err(ZkError::LockLost(_))), "{late:?}");
        let kept = read_history(&leader.client, &paths).await.expect("read");
        assert_eq!(epochs(&kept), vec![1, 2, 3]);
    }
}
