//! ZooKeeper, one job per module:
//! - [`session`]: the session, rebuilt after expiry, shared through a `watch` channel;
//! - [`election`]: the per-group leader lock and [`Leadership`], confirmed before every act;
//! - [`store`]: the group's znodes — compare-and-set publishing of `<root>/nodes`, the
//!   managers' views, the pause switch, the failover history, the lock order;
//! - [`operator`]: requests written by operators (manual failover, pause) and their verdicts;
//! - [`watch`]: one persistent recursive watch per group root, telling its loop what changed;
//! - [`acl`]: the znodes' ACLs, and locking a tree made open;
//! - [`registry`]: the group registry (groups added and removed at run time).
//!
//! Every request is bounded by [`ZK_OP_TIMEOUT`] and fails with a [`ZkError`] that names the
//! znode.

use std::future::Future;
use std::time::Duration;

use zookeeper_client as zk;

pub(crate) mod acl;
pub(crate) mod election;
pub(crate) mod operator;
pub(crate) mod registry;
pub(crate) mod session;
pub(crate) mod store;
pub(crate) mod watch;

pub(crate) use acl::{secure_group, ZnodeAcls};
pub(crate) use election::{act_window, elect, Confirmed, LeaderTerms, Leadership};
pub(crate) use operator::{
    await_manual, finish_manual, read_manual, request_manual, set_pause, ManualOutcome,
};
pub(crate) use session::{connect, keep_session};
pub(crate) use store::{
    annotate_history, append_history, publish, publish_view, read_history, read_lock_order,
    read_pause, read_published, read_view, read_views, History, Published,
};
pub(crate) use watch::{watch_group, watch_tree, Changes, Pending};

/// Bound on every single ZooKeeper request made outside the lock recipe.
pub const ZK_OP_TIMEOUT: Duration = Duration::from_secs(3);

/// What a request was doing, for its error message (shared with the client).
pub use redis_failover_client::session::Op;
use redis_failover_client::session::OpError;

/// A ZooKeeper request that did not succeed. The message names the znode.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// A request that timed out or that ZooKeeper refused.
    #[error(transparent)]
    Op(#[from] OpError),
    #[error("{root} does not exist: no manager runs with --znode-path {root}")]
    NoRoot { root: String },
    /// `group add` with an identity and no group registry: the managers create it, with
    /// their ACL, so that they may write it too.
    #[error(
        "no group registry at {root}: start a manager with --groups-from-zookeeper first \
         (it creates the registry with the managers' ACL)"
    )]
    NoRegistry { root: String },
    #[error("writing {0}: kept changing under us")]
    Contended(String),
    /// A lock-checked write found the leader lock gone: this manager leads no more.
    #[error("lost the leader lock while writing {0}")]
    LockLost(String),
    /// No session: the message says why and what to check.
    #[error("{0}")]
    Connect(String),
    /// ZooKeeper refused for want of permission (`NoAuth`): the message says which identity
    /// to give.
    #[error("{0}")]
    NoAuth(String),
}

impl ZkError {
    /// A `NoAuth` refusal becomes [`ZkError::NoAuth`] saying `hint`; anything else is kept.
    pub(crate) fn with_hint(self, hint: &str) -> ZkError {
        match &self {
            ZkError::Op(e) if matches!(e.zk_error(), Some(zk::Error::NoAuth)) => {
                ZkError::NoAuth(format!("{self} (no permission): {hint}"))
            }
            _ => self,
        }
    }
}

/// Runs one request within [`ZK_OP_TIMEOUT`].
pub(crate) async fn bounded<T>(
    op: Op,
    path: &str,
    request: impl Future<Output = Result<T, zk::Error>>,
) -> Result<T, ZkError> {
    Ok(redis_failover_client::session::timed(op, path, ZK_OP_TIMEOUT, request).await?)
}

/// `NoNode` as `None`: most znodes here are optional.
pub(crate) fn optional<T>(r: Result<T, zk::Error>) -> Result<Option<T>, zk::Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(zk::Error::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
/// Takes the lock under `dir` with a fresh session.
pub(crate) async fn test_leadership(dir: &str) -> Leadership {
    let client = redis_failover_tests::manager::zk_client(
        &redis_failover_tests::shared_zk().connect_string(),
    )
    .await;
    let acls = std::sync::Arc::new(ZnodeAcls::open());
    let options = acls.lock_options().expect("lock options");
    let prefix = zk::LockPrefix::new_curator(dir, "lock-").expect("lock prefix");
    let lock = tokio::time::timeout(Duration::from_secs(10), client.lock(prefix, b"m1", options))
        .await
        .expect("lock within 10 s")
        .expect("lock taken")
        .into_owned();
    Leadership::new(
        client,
        std::sync::Arc::new(lock),
        Duration::from_secs(3),
        acls,
    )
}
