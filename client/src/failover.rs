//! A manual failover asked of the node manager, and its verdict: the request is written to
//! `<root>/manual_failover` ([`ManualRequest`]); the leading manager carries it out and
//! deletes it, or replaces it with its refusal ([`ManualRefusal`]). [`request`] writes it,
//! [`verdict`] waits for the outcome, [`failover`] does both.
//!
//! The one implementation behind [`Client::failover`](crate::Client::failover) and
//! [`Client::manual_failover`](crate::Client::manual_failover), and the node manager's
//! `redis_node_manager failover`, `POST /failover` and `SENTINEL FAILOVER`; operators'
//! tools with a ZooKeeper session of their own use it the same way:
//!
//! ```no_run
//! # use std::time::Duration;
//! # use redis_failover_client::{failover, session, NodeAddr, ZnodePaths};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let wait = Duration::from_secs(10);
//! let zk = session::connect("zk1:2181", wait, wait).await?;
//! let paths = ZnodePaths::new("/redis_failover")?;
//! let to: NodeAddr = "10.0.0.2:6379".parse()?;
//! match failover::failover(&zk, &paths, Some(&to), Duration::from_secs(30)).await {
//!     Ok(master) => println!("the master is now {master}"),
//!     Err(failover::FailoverError::Refused(why)) => eprintln!("refused: {why}"),
//!     Err(e) => eprintln!("{e}"),
//! }
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use zookeeper_client as zk;

use crate::session::{timed, Op, OpError};
use crate::wire::{ManualRefusal, ManualRequest, NodeAddr, Topology, ZnodePaths};

/// Bound on each ZooKeeper request made here.
pub const OP_TIMEOUT: Duration = Duration::from_secs(3);
/// How often [`verdict`] reads the request again.
const POLL: Duration = Duration::from_millis(50);

/// Why a manual failover did not end with a new master.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FailoverError {
    /// The leading manager refused the request; its reason (an unknown node, a replica out
    /// of sync, the master itself named, ...).
    #[error("refused: {0}")]
    Refused(String),
    /// No manager gave a verdict within the wait (none leads the group, or it is busy).
    #[error(
        "no manager acted on {path} within {}; is a redis_node_manager leading this group?",
        shown(*wait)
    )]
    TimedOut {
        /// `<root>/manual_failover`.
        path: String,
        /// How long it waited.
        wait: Duration,
    },
    /// The request was carried out, but `<root>/nodes` did not name the new master within
    /// the wait (the manager retries publishing; its log says why).
    #[error(
        "the request was carried out, but {path} names no new master yet; see the manager's log"
    )]
    NotPublished {
        /// `<root>/nodes`.
        path: String,
    },
    /// The group's root does not exist: no manager ever ran with this `--znode-path`.
    #[error("{root} does not exist: no manager runs with --znode-path {root}")]
    NoRoot {
        /// The root.
        root: String,
    },
    /// The client had no ZooKeeper session for a session timeout (ZooKeeper unreachable, or
    /// the session being replaced); try again.
    #[error("no ZooKeeper session within the session timeout; try again")]
    NoSession,
    /// ZooKeeper refused a request or did not answer within [`OP_TIMEOUT`].
    #[error(transparent)]
    ZooKeeper(#[from] OpError),
}

/// `30 s`, or `500 ms` for a wait that is not whole seconds.
fn shown(wait: Duration) -> String {
    if wait.subsec_millis() == 0 {
        format!("{} s", wait.as_secs())
    } else {
        format!("{} ms", wait.as_millis())
    }
}

/// Writes a request for a failover to `to`, or to the best replica when `None`
/// (`ANY_SLAVE`), to `<root>/manual_failover`, replacing any earlier one (or its refusal).
/// Returns once written: the leader acts on it within a moment.
pub async fn request(
    zk: &zk::Client,
    paths: &ZnodePaths,
    to: Option<&NodeAddr>,
) -> Result<(), FailoverError> {
    let data = ManualRequest::encode(to);
    operator_write(zk, paths, &paths.manual_failover(), Some(&data), false).await
}

/// What an operator's znode is created with: with an identity (`as_identity`), writable by
/// it and readable by all; without, open to all, as every znode of an open tree.
pub fn operator_options(as_identity: bool) -> zk::CreateOptions<'static> {
    const CREATOR_ALL_ANYONE_READ: &[zk::Acl] = &[
        zk::Acl::new_const(zk::Permission::ALL, "auth", ""),
        zk::Acl::new_const(zk::Permission::READ, "world", "anyone"),
    ];
    if as_identity {
        zk::CreateMode::Persistent.with_acls(zk::Acls::new(CREATOR_ALL_ANYONE_READ))
    } else {
        zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
    }
}

/// An operator's write under an existing group root (a manual failover request, the pause
/// switch): `Some(data)` creates or replaces the persistent znode `path`, `None` deletes it
/// (absent is fine). A missing root means no manager ever ran there: [`FailoverError::NoRoot`].
///
/// `as_identity`: the session has an identity (the managers' `--zk-operator-acl` lets it
/// create and delete under the root); the znode is then writable by it and readable by all,
/// and one that exists is replaced (deleted and created again in one transaction, as its
/// writer may have been the leader). Without: open to all, as every znode of an open tree.
pub async fn operator_write(
    zk: &zk::Client,
    paths: &ZnodePaths,
    path: &str,
    data: Option<&[u8]>,
    as_identity: bool,
) -> Result<(), FailoverError> {
    let opts = operator_options(as_identity);
    let write = async {
        match data {
            None => match zk.delete(path, None).await {
                Ok(()) | Err(zk::Error::NoNode) => Ok(()),
                Err(e) => Err(e),
            },
            Some(data) => match zk.create(path, data, &opts).await {
                Ok(_) => Ok(()),
                Err(zk::Error::NodeExists) if as_identity => {
                    let mut replace = zk.new_multi_writer();
                    replace.add_delete(path, None)?;
                    replace.add_create(path, data, &opts)?;
                    replace.commit().await.map(|_| ()).map_err(zk::Error::from)
                }
                Err(zk::Error::NodeExists) => zk.set_data(path, data, None).await.map(|_| ()),
                Err(e) => Err(e),
            },
        }
    };
    match timed(Op::Writing, path, OP_TIMEOUT, write).await {
        Ok(()) => Ok(()),
        Err(OpError::Failed {
            source: zk::Error::NoNode,
            ..
        }) => Err(FailoverError::NoRoot {
            root: paths.root().to_string(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// What `<root>/manual_failover` says of a request written earlier.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Request {
    /// Still there: not judged yet.
    Pending,
    /// Replaced by the leader's refusal.
    Refused(String),
    /// Gone: carried out.
    Done,
}

impl Request {
    fn of(data: Option<&[u8]>) -> Request {
        match data {
            None => Request::Done,
            Some(d) => ManualRefusal::from_json(d)
                .map_or(Request::Pending, |r| Request::Refused(r.refused)),
        }
    }
}

/// The new master once a carried-out request is published: the master of a topology that
/// records no promotion under way.
fn published_master(data: Option<&[u8]>) -> Option<NodeAddr> {
    let topology = Topology::from_json(data?).ok()?;
    topology
        .promoting
        .is_none()
        .then_some(topology.master)
        .flatten()
}

/// Waits, at most `wait` (plus one bounded read), for the leader's verdict on the request
/// pending in `<root>/manual_failover`: the new master as published, or why not.
pub async fn verdict(
    zk: &zk::Client,
    paths: &ZnodePaths,
    wait: Duration,
) -> Result<NodeAddr, FailoverError> {
    let path = paths.manual_failover();
    let nodes = paths.nodes();
    let deadline = tokio::time::Instant::now() + wait;
    let mut done = false;
    loop {
        if !done {
            match Request::of(read(zk, &path).await?.as_deref()) {
                Request::Pending => {}
                Request::Refused(why) => return Err(FailoverError::Refused(why)),
                Request::Done => done = true,
            }
        }
        if done {
            if let Some(master) = published_master(read(zk, &nodes).await?.as_deref()) {
                return Ok(master);
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(if done {
                FailoverError::NotPublished { path: nodes }
            } else {
                FailoverError::TimedOut { path, wait }
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// [`request`], then [`verdict`]: the new master, or why not.
pub async fn failover(
    zk: &zk::Client,
    paths: &ZnodePaths,
    to: Option<&NodeAddr>,
    wait: Duration,
) -> Result<NodeAddr, FailoverError> {
    request(zk, paths, to).await?;
    verdict(zk, paths, wait).await
}

/// The data of `path`, `None` when it does not exist.
async fn read(zk: &zk::Client, path: &str) -> Result<Option<Vec<u8>>, OpError> {
    let get = async {
        match zk.get_data(path).await {
            Ok((data, _)) => Ok(Some(data)),
            Err(zk::Error::NoNode) => Ok(None),
            Err(e) => Err(e),
        }
    };
    timed(Op::Reading, path, OP_TIMEOUT, get).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_addr;

    #[test]
    fn the_znode_tells_the_verdict() {
        let refusal = ManualRefusal::now("h:9", "h:9 is not one of the configured nodes");
        let cases: Vec<(Option<Vec<u8>>, Request)> = vec![
            (None, Request::Done),
            (Some(b"h:2".to_vec()), Request::Pending),
            (Some(b"ANY_SLAVE".to_vec()), Request::Pending),
            (
                Some(refusal.to_json()),
                Request::Refused("h:9 is not one of the configured nodes".into()),
            ),
        ];
        for (data, want) in cases {
            assert_eq!(Request::of(data.as_deref()), want, "{data:?}");
        }
    }

    #[test]
    fn the_new_master_is_read_once_no_promotion_is_under_way() {
        let t = |master: Option<&str>, promoting: Option<&str>| {
            Topology {
                master: master.map(test_addr),
                promoting: promoting.map(test_addr),
                ..Topology::default()
            }
            .to_json()
        };
        assert_eq!(
            published_master(Some(&t(Some("h:2"), None))),
            Some(test_addr("h:2"))
        );
        // The intent a leader records before promoting still names the old master.
        assert_eq!(published_master(Some(&t(Some("h:1"), Some("h:2")))), None);
        assert_eq!(published_master(Some(&t(None, None))), None);
        assert_eq!(published_master(Some(b"not json")), None);
        assert_eq!(published_master(None), None);
    }

    #[test]
    fn errors_read_as_the_cli_prints_them() {
        assert_eq!(
            FailoverError::Refused("h:1 already is the master".into()).to_string(),
            "refused: h:1 already is the master"
        );
        assert_eq!(
            FailoverError::TimedOut {
                path: "/r/manual_failover".into(),
                wait: Duration::from_secs(30),
            }
            .to_string(),
            "no manager acted on /r/manual_failover within 30 s; is a redis_node_manager \
             leading this group?"
        );
        let e = FailoverError::TimedOut {
            path: "/r/manual_failover".into(),
            wait: Duration::from_millis(1500),
        };
        assert!(e.to_string().contains(" within 1500 ms; "), "{e}");
        assert_eq!(
            FailoverError::NoRoot { root: "/r".into() }.to_string(),
            "/r does not exist: no manager runs with --znode-path /r"
        );
    }
}
