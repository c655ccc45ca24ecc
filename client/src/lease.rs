//! The client write lease ([`ClientBuilder::write_lease`](crate::ClientBuilder::write_lease)):
//! when the client's knowledge of the topology was last confirmed ([`Confirmation`]), and
//! whether a request may be sent on it ([`Lease::check`]).
//!
//! A confirmation is the moment a ZooKeeper request was *sent* whose answer proved that the
//! topology the client holds is the one in ZooKeeper: the read that adopted it, or a later
//! `exists` of the znode (a heartbeat) that answered the same modification (`mzxid`) while
//! the watch on it had not fired. ZooKeeper delivers a watch event before the answer of any
//! request it handles after the change, so no change can have happened between the
//! moment of that request and its answer without the client seeing it. The moment is taken
//! before sending (a monotonic [`Instant`]): the server handled the request later, so the
//! confirmation is never later than the truth. A reconnect confirms nothing until the znode
//! has been read again (with its watch armed); a heartbeat that is not answered confirms
//! nothing either, so a silent ZooKeeper (`SIGSTOP`, a partition) is noticed within the lease
//! even while the ZooKeeper library still believes it is connected.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::RedisResult;
use tokio::sync::watch;

use crate::error::unconfirmed;
use crate::route::Target;

/// The last confirmation of the topology, shared by the watcher (which records it) and every
/// handle (which reads it before a request: one atomic load and one clock read).
pub(crate) struct Confirmation {
    base: Instant,
    /// Nanoseconds from `base` to the last confirmation, plus one; 0: never confirmed.
    at: AtomicU64,
    /// Counts confirmations, for waiting on the next one.
    count: watch::Sender<u64>,
}

impl Default for Confirmation {
    fn default() -> Self {
        // Confirmations are never earlier than the client; an hour of margin makes sure
        // (clamping an earlier one to `base` would move it later than the truth).
        let now = Instant::now();
        Confirmation {
            base: now.checked_sub(Duration::from_secs(3600)).unwrap_or(now),
            at: AtomicU64::new(0),
            count: watch::channel(0).0,
        }
    }
}

impl Confirmation {
    /// Records that the topology was confirmed by a request sent at `asked`.
    pub(crate) fn confirm(&self, asked: Instant) {
        let nanos = asked.saturating_duration_since(self.base).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1;
        self.at.fetch_max(nanos, Ordering::AcqRel);
        self.count.send_modify(|c| *c = c.wrapping_add(1));
    }

    /// How long ago the topology was last confirmed (`Duration::MAX`: never).
    pub(crate) fn age(&self) -> Duration {
        match self.at.load(Ordering::Acquire) {
            0 => Duration::MAX,
            n => (self.base + Duration::from_nanos(n - 1)).elapsed(),
        }
    }

    /// A receiver that sees every later confirmation.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.count.subscribe()
    }
}

/// The lease options of a client.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lease {
    /// How long after its last confirmation the topology may still be used.
    pub(crate) duration: Duration,
    /// Whether reads from replicas go on past the lease.
    pub(crate) stale_reads: bool,
}

impl Lease {
    /// `Ok` when a request for `target` may be sent now; else the error that says for how
    /// long the topology has been unconfirmed (nothing was sent).
    pub(crate) fn check(&self, confirmation: &Confirmation, target: Target) -> RedisResult<()> {
        if target == Target::Replica && self.stale_reads {
            return Ok(());
        }
        let age = confirmation.age();
        if age < self.duration {
            Ok(())
        } else {
            Err(unconfirmed(age, target == Target::Master))
        }
    }

    /// How often the watcher confirms the topology while nothing changes: a quarter of the
    /// lease (between 10 ms and 2 s), so that a client connected to a live ZooKeeper never
    /// runs out of lease.
    pub(crate) fn heartbeat(&self) -> Duration {
        (self.duration / 4).clamp(Duration::from_millis(10), Duration::from_secs(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmation_ages_from_the_moment_the_request_was_sent() {
        let c = Confirmation::default();
        assert_eq!(c.age(), Duration::MAX, "never confirmed");
        let lease = Lease {
            duration: Duration::from_millis(200),
            stale_reads: true,
        };
        assert!(lease.check(&c, Target::Master).is_err());
        assert!(lease.check(&c, Target::Replica).is_ok(), "stale reads");
        let asked = Instant::now() - Duration::from_millis(150);
        c.confirm(asked);
        assert!(c.age() >= Duration::from_millis(150));
        assert!(lease.check(&c, Target::Master).is_ok());
        // An older confirmation never moves the moment back.
        c.confirm(asked - Duration::from_millis(100));
        assert!(c.age() < Duration::from_millis(200));
        let strict = Lease {
            stale_reads: false,
            ..lease
        };
        let old = Confirmation::default();
        old.confirm(Instant::now() - Duration::from_millis(1500));
        let e = strict
            .check(&old, Target::Replica)
            .expect_err("past the lease");
        let detail = e.detail().expect("detail");
        assert!(
            detail.starts_with("topology unconfirmed for 15")
                && detail.ends_with(" ms: not reading from a topology that may have changed"),
            "{detail}"
        );
        assert_eq!(lease.heartbeat(), Duration::from_millis(50));
    }
}
