//! Retrying: what a failure means ([`classify`]: not applied, maybe applied, final), and
//! [`Client::execute`], which retries a request as the options allow, waiting for new
//! connections or the backoff between tries. A write that may already have been applied is
//! not retried unless `retry_non_idempotent` is set; it fails with an error that says so.
//! A request refused by the write lease (nothing sent) is retried as soon as the topology is
//! confirmed again, within the same retries.

use redis::{ErrorKind, RedisError, RedisResult, ServerErrorKind};
use tracing::debug;

use crate::client::Client;
use crate::error::{is_not_replicated, is_unconfirmed, maybe_executed};
use crate::route::{self, Target};
use crate::send::{Reply, Request};

/// What a failure means for retrying.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Not applied (refused connection, READONLY, LOADING, MASTERDOWN, NOREPLICAS, no
    /// master): safe.
    NotApplied,
    /// The request may have reached the server (broken connection, timeout).
    MaybeApplied,
    /// An answer from Redis (WRONGTYPE, syntax...): never retried.
    Final,
}

pub(crate) fn classify(e: &RedisError) -> Failure {
    if is_not_replicated(e) {
        // Executed on the master, maybe not on enough replicas.
        return Failure::MaybeApplied;
    }
    match e.kind() {
        ErrorKind::Server(ServerErrorKind::ReadOnly)
        | ErrorKind::Server(ServerErrorKind::BusyLoading)
        | ErrorKind::Server(ServerErrorKind::MasterDown) => Failure::NotApplied,
        // A fenced master (min-replicas-to-write) refuses a write before running it.
        _ if e.code() == Some("NOREPLICAS") => Failure::NotApplied,
        _ if e.is_connection_refusal() => Failure::NotApplied,
        _ if e.is_timeout() || e.is_connection_dropped() || e.is_io_error() => {
            Failure::MaybeApplied
        }
        _ => Failure::Final,
    }
}

impl Client {
    /// Waits before retry `attempt`: until the connections change (a new topology swapped
    /// in, or a broken connection dropped) since the failed try, or the backoff passes; after
    /// a refusal by the write lease (`unconfirmed`), also until the topology is confirmed.
    pub(crate) async fn backoff(&self, attempt: u32, unconfirmed: bool) {
        let mut confirmations = unconfirmed.then(|| self.inner.shared.confirmed.subscribe());
        self.inner.shared.refresh.notify_one();
        let wait = self.inner.cfg.retry_backoff * 2u32.saturating_pow(attempt.saturating_sub(1));
        let used = self.local.generation;
        let mut rx = self.inner.generation_tx.subscribe();
        let confirmed = async {
            match confirmations.as_mut() {
                Some(c) => {
                    let _ = c.changed().await;
                }
                None => std::future::pending().await,
            }
        };
        let _ = tokio::time::timeout(wait, async {
            tokio::select! {
                _ = rx.wait_for(|g| *g != used) => {}
                _ = confirmed => {}
            }
        })
        .await;
    }

    /// Sends `req` to the node chosen for `target`, retrying as the policy allows. `first`
    /// is the error of a try already made (by [`Self::try_cached`]).
    pub(crate) async fn execute(
        &mut self,
        name: impl Fn() -> String,
        target: Target,
        is_write: bool,
        blocking: Option<route::BlockTimeout>,
        req: Request<'_>,
        first: Option<RedisError>,
    ) -> RedisResult<Reply> {
        let (retries, retry_writes) = {
            let cfg = &self.inner.cfg;
            let retries = if cfg.retry_failure {
                cfg.max_retries
            } else {
                0
            };
            (retries, cfg.retry_non_idempotent)
        };
        let mut attempt = 0;
        let mut pending = first.map(|e| (e, true));
        loop {
            let (e, sent) = match pending.take() {
                Some(p) => p,
                None => match self.attempt(target, blocking, &req).await {
                    (Ok(v), _) => return Ok(v),
                    (Err(e), sent) => (e, sent),
                },
            };
            let failure = if sent {
                classify(&e)
            } else if e.kind() == ErrorKind::AuthenticationFailed
                || matches!(e.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
            {
                Failure::Final
            } else {
                Failure::NotApplied
            };
            let may_retry = match failure {
                Failure::Final => false,
                Failure::NotApplied => true,
                Failure::MaybeApplied => !is_write || retry_writes,
            };
            if !may_retry || attempt >= retries {
                // NOT_REPLICATED already says that the write may have been executed.
                if failure == Failure::MaybeApplied
                    && is_write
                    && !retry_writes
                    && !is_not_replicated(&e)
                {
                    return Err(maybe_executed(&name(), &e));
                }
                return Err(e);
            }
            attempt += 1;
            debug!(
                "redis_failover client: {} failed ({e}); retry {attempt}/{retries}",
                name()
            );
            self.backoff(attempt, is_unconfirmed(&e)).await;
        }
    }
}
