//! What operators write to a group's znodes — a manual failover request, the pause switch —
//! and the leader's verdict on a request. Used by the CLI subcommands, HTTP and the Sentinel
//! endpoint (any manager or tool may write a request) and by the leader (which ends it).

use std::fmt;
use std::time::Duration;

use redis_failover_client::failover::{self, FailoverError};
use redis_failover_client::wire::{ManualRefusal, PauseInfo};
use redis_failover_client::{NodeAddr, ZnodePaths};
use zookeeper_client as zk;

use super::{bounded, optional, Leadership, Op, ZkError};

/// The pending request in `<root>/manual_failover`, with its znode version.
pub async fn read_manual(
    client: &zk::Client,
    path: &str,
) -> Result<Option<(Vec<u8>, i32)>, ZkError> {
    let data = bounded(Op::Reading, path, async {
        optional(client.get_data(path).await)
    })
    .await?;
    Ok(data.map(|(data, stat)| (data, stat.version)))
}

/// Writes a manual failover request (`h:p`, or `ANY_SLAVE` for `None`) to
/// `<root>/manual_failover`, replacing any earlier one. Any manager or tool may write it; the
/// leader carries it out. The client crate's [`failover::request`], as `Client` uses it.
pub async fn request_manual(
    client: &zk::Client,
    paths: &ZnodePaths,
    to: Option<&NodeAddr>,
    as_identity: bool,
) -> Result<(), ZkError> {
    let data = redis_failover_client::wire::ManualRequest::encode(to);
    failover::operator_write(
        client,
        paths,
        &paths.manual_failover(),
        Some(&data),
        as_identity,
    )
    .await
    .map_err(zk_error)
}

/// What an operator is told when ZooKeeper refuses its request.
pub const OPERATOR_HINT: &str = "give an operator identity the managers accept (--zk-auth-file or REDIS_FAILOVER_ZK_AUTH, listed in their --zk-operator-acl)";

/// A failover error that is not a verdict, as the manager's other ZooKeeper errors read.
fn zk_error(e: FailoverError) -> ZkError {
    match e {
        FailoverError::ZooKeeper(e) => ZkError::Op(e).with_hint(OPERATOR_HINT),
        FailoverError::NoRoot { root } => ZkError::NoRoot { root },
        other => ZkError::Connect(other.to_string()),
    }
}

/// Pauses (`Some`) or resumes (`None`) automatic failover for a group. Needs the group's
/// root to exist (a manager has run).
pub async fn set_pause(
    client: &zk::Client,
    paths: &ZnodePaths,
    pause: Option<&PauseInfo>,
    as_identity: bool,
) -> Result<(), ZkError> {
    let data = pause.map(PauseInfo::to_json);
    failover::operator_write(client, paths, &paths.paused(), data.as_deref(), as_identity)
        .await
        .map_err(zk_error)
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

impl fmt::Display for ManualOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManualOutcome::Done(m) | ManualOutcome::TimedOut(m) => f.write_str(m),
            ManualOutcome::Refused(r) => write!(f, "refused: {r}"),
        }
    }
}

/// Waits (bounded by `wait`) for the leader's verdict on the pending manual request: the
/// client crate's [`failover::verdict`], as `Client::failover` waits for it.
pub async fn await_manual(
    client: &zk::Client,
    paths: &ZnodePaths,
    wait: Duration,
) -> Result<ManualOutcome, ZkError> {
    match failover::verdict(client, paths, wait).await {
        Ok(master) => Ok(ManualOutcome::Done(format!(
            "done: the master is now {master}"
        ))),
        Err(FailoverError::Refused(reason)) => Ok(ManualOutcome::Refused(reason)),
        Err(e @ (FailoverError::TimedOut { .. } | FailoverError::NotPublished { .. })) => {
            Ok(ManualOutcome::TimedOut(e.to_string()))
        }
        Err(e) => Err(zk_error(e)),
    }
}

/// Ends a request: deleted when carried out, replaced by `{"refused":..,"request":..}` when
/// refused (so operators see why), both only if still at `version` and we hold the lock.
pub async fn finish_manual(
    leader: &Leadership,
    path: &str,
    version: i32,
    refused: Option<(&str, &str)>,
) -> Result<(), ZkError> {
    let write = async {
        match refused {
            None => leader.lock.delete(path, Some(version)).await,
            // Deleted and created again, in one lock-checked transaction: an operator's
            // request is writable by its creator only when the tree has ACLs.
            Some((request, reason)) => {
                let body = ManualRefusal::now(request, reason).to_json();
                let mut replace = leader.lock.new_check_writer();
                replace.add_delete(path, Some(version))?;
                replace.add_create(path, &body, &leader.acls.persistent())?;
                replace.commit().await.map(|_| ()).map_err(zk::Error::from)
            }
        }
    };
    bounded(Op::Updating, path, write).await
}
