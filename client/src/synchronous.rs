//! Synchronous mode ([`ClientBuilder::synchronous`](crate::ClientBuilder::synchronous)) with
//! group commit: a write to the master is acknowledged only once `WAIT <replicas> <ms>`,
//! sent on the same connection *after the write's reply arrived*, counted enough replicas;
//! otherwise it fails with [`NOT_REPLICATED`](crate::NOT_REPLICATED) (it may have been
//! executed on the master, so it is retried only as a write that may have been applied).
//!
//! The rule: Redis runs one client's commands in order, and `WAIT` waits for the replication
//! offset of its own connection's last write, so a `WAIT` sent on a connection after a
//! write's reply covers that write, and every other write of that connection before it. Each
//! connection object (one redis-rs `MultiplexedConnection`, never across a reconnect) has a
//! [`Syncer`]; a write whose reply arrived *joins* the next `WAIT` to be sent:
//! - no `WAIT` in flight: one is sent now;
//! - one in flight: it may have been sent before the reply, so it does not count; the
//!   joiners of the next round wait for it to answer, then one `WAIT` is sent for them all.
//!
//! Every joiner of a round gets that round's verdict. A write's deadline is `timeout` after
//! its reply; a round's `WAIT` timeout is what is left of its joiners' earliest deadline (at
//! least 1 ms), and a joiner that was not acknowledged before its own, later, deadline joins
//! the next round: a write fails about `timeout` after its reply, not much sooner or later.
//! A connection error fails the round (the writes may have been executed). When the connection is dropped or replaced ([`Syncer::close`]), the joiners
//! still waiting fail with `NOT_REPLICATED`: they are never confirmed by a `WAIT` on another
//! connection, which would cover nothing of theirs.
//!
//! Only requests that may change data wait ([`route::may_replicate`]): reads sent to the
//! master, `PING`, `INFO`, ... do not.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{Cmd, RedisError, RedisResult, Value};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::error::not_replicated;
use crate::route;
use crate::send::Request;

/// The synchronous-mode options of a client.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Synchronous {
    /// Replicas that must acknowledge each write.
    pub(crate) replicas: usize,
    /// How long a write may wait for them after its reply.
    pub(crate) timeout: Duration,
    /// `false` (the default mode): wait for at most as many replicas as the topology lists,
    /// and not at all while it lists none; `true` (set by
    /// [`ClientBuilder::synchronous`](crate::ClientBuilder::synchronous)): always `replicas`.
    pub(crate) strict: bool,
}

/// The default: every write on at least one replica, while the topology lists one.
pub(crate) const DEFAULT: Synchronous = Synchronous {
    replicas: 1,
    timeout: Duration::from_secs(1),
    strict: false,
};

impl Synchronous {
    /// What a write waits for while the topology lists `listed` replicas: `None` when it
    /// does not wait (not strict, no replica listed).
    pub(crate) fn for_listed(self, listed: usize) -> Option<Synchronous> {
        if self.strict {
            return Some(self);
        }
        let replicas = self.replicas.min(listed);
        (replicas > 0).then_some(Synchronous { replicas, ..self })
    }

    /// `WAIT` with at most `left` of the timeout (at least 1 ms: `WAIT n 0` never returns).
    fn wait_cmd(&self, left: Duration) -> Cmd {
        let ms = left.max(MIN_WAIT).as_micros().div_ceil(1000);
        let mut c = redis::cmd("WAIT");
        c.arg(self.replicas).arg(ms.to_string());
        c
    }

    fn fail(&self, acked: Option<i64>, cause: Option<&str>) -> RedisError {
        let timeout = Duration::from_millis(self.timeout.as_millis().max(1) as u64);
        not_replicated(acked, self.replicas, timeout, cause)
    }

    /// What `WAIT` answered.
    fn verdict(&self, wait: RedisResult<Value>) -> Verdict {
        match wait {
            Ok(Value::Int(n)) if n >= 0 && n as u64 >= self.replicas as u64 => Verdict::Acked,
            Ok(Value::Int(n)) => Verdict::Short(n),
            Ok(Value::ServerError(e)) => Verdict::Failed(self.fail(None, Some(&e.to_string()))),
            Ok(other) => {
                Verdict::Failed(self.fail(None, Some(&format!("unexpected reply {other:?}"))))
            }
            // A connection error, as redis-rs reports it: the write may have been executed.
            Err(e) => Verdict::Failed(e),
        }
    }

    /// Whether `req`, sent to the master, must be followed by a `WAIT`.
    pub(crate) fn needed_for(req: &Request<'_>) -> bool {
        match req {
            Request::One(cmd) => route::may_replicate(cmd),
            Request::Many(p, ..) => p.cmd_iter().any(route::may_replicate),
        }
    }
}

/// The group commit of one connection (see the module doc). Dropping it closes it.
pub(crate) struct Syncer {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the driver: a round has its first joiner, or the syncer closed.
    wake: Notify,
    /// The last round whose `WAIT` answered, and its verdict; [`CLOSED`] once closed.
    done: watch::Sender<(u64, Verdict)>,
}

#[derive(Clone)]
enum Verdict {
    Acked,
    /// Fewer replicas than required acknowledged within the round's timeout.
    Short(i64),
    Failed(RedisError),
}

#[derive(Default)]
struct State {
    /// The round joiners join now: the next `WAIT` to be sent (rounds count from 1).
    next: u64,
    /// The earliest deadline of the joiners of round `next`, if it has any.
    deadline: Option<Instant>,
    /// The most replicas a joiner of round `next` needs (joiners may differ when the
    /// topology changes: [`Synchronous::for_listed`]).
    replicas: usize,
    /// Whether the driver task runs (started on the first join).
    driving: bool,
    closed: bool,
}

const CLOSED: u64 = u64::MAX;
/// How long past its own timeout a `WAIT` may take to answer before it counts as failed
/// (Redis answers a `WAIT` within about 100 ms of its timeout).
const WAIT_GRACE: Duration = Duration::from_secs(1);

impl Syncer {
    pub(crate) fn new() -> Self {
        Syncer {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    next: 1,
                    ..State::default()
                }),
                wake: Notify::new(),
                done: watch::Sender::new((0, Verdict::Acked)),
            }),
        }
    }

    /// Waits until a `WAIT` sent on `conn` (the connection this syncer belongs to) after
    /// this call counted `sync.replicas` replicas, for at most `sync.timeout`: call it once
    /// the write's reply arrived.
    pub(crate) async fn join(
        &self,
        conn: &MultiplexedConnection,
        sync: Synchronous,
    ) -> RedisResult<()> {
        let deadline = Instant::now() + sync.timeout;
        let mut done = self.shared.done.subscribe();
        loop {
            let round = self.enter(conn, sync, deadline)?;
            // A later round's verdict also holds: its `WAIT` was sent later on the connection.
            let verdict = match done.wait_for(|(r, _)| *r >= round).await {
                Ok(v) if v.0 != CLOSED => v.1.clone(),
                _ => return Err(closed(&sync)),
            };
            match verdict {
                Verdict::Acked => return Ok(()),
                // The round waited for more replicas than this joiner needs.
                Verdict::Short(n) if n >= 0 && n as u64 >= sync.replicas as u64 => return Ok(()),
                // The round's timeout was an earlier joiner's: this one waits on, in the next.
                Verdict::Short(_) if deadline > Instant::now() + MIN_WAIT => continue,
                Verdict::Short(n) => return Err(sync.fail(Some(n), None)),
                Verdict::Failed(e) => return Err(e),
            }
        }
    }

    /// Joins round `next` with `deadline`: the round it will be told about.
    fn enter(
        &self,
        conn: &MultiplexedConnection,
        sync: Synchronous,
        deadline: Instant,
    ) -> RedisResult<u64> {
        let mut st = self.shared.lock();
        if st.closed {
            return Err(closed(&sync));
        }
        match st.deadline {
            None => {
                st.deadline = Some(deadline);
                st.replicas = sync.replicas;
                self.shared.wake.notify_one();
            }
            Some(d) => {
                st.deadline = Some(d.min(deadline));
                st.replicas = st.replicas.max(sync.replicas);
            }
        }
        if !st.driving {
            st.driving = true;
            tokio::spawn(drive(self.shared.clone(), conn.clone(), sync));
        }
        Ok(st.next)
    }

    /// Fails the joiners still waiting, and every later one; ends the driver.
    pub(crate) fn close(&self) {
        let mut st = self.shared.lock();
        if !st.closed {
            st.closed = true;
            self.shared
                .done
                .send_modify(|v| *v = (CLOSED, Verdict::Acked));
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The shortest `WAIT` timeout (`WAIT n 0` would wait forever).
const MIN_WAIT: Duration = Duration::from_millis(1);

fn closed(sync: &Synchronous) -> RedisError {
    sync.fail(
        None,
        Some("the connection was closed or replaced before WAIT answered"),
    )
}

/// Sends one `WAIT` per round, for all of its joiners, until the syncer closes.
async fn drive(shared: Arc<Shared>, mut conn: MultiplexedConnection, sync: Synchronous) {
    loop {
        let next = {
            let mut st = shared.lock();
            if st.closed {
                return;
            }
            let round = st.next;
            let replicas = st.replicas;
            st.deadline.take().map(|d| {
                st.next += 1;
                (round, d, Synchronous { replicas, ..sync })
            })
        };
        let Some((round, deadline, sync)) = next else {
            // A permit is kept when nobody waits: a join just before this is not missed.
            shared.wake.notified().await;
            continue;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        // Bounded also when the connection has no response timeout (a blocking command's
        // own connection) and the master goes silent.
        let wait = match tokio::time::timeout(
            left + WAIT_GRACE,
            conn.send_packed_command(&sync.wait_cmd(left)),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "WAIT did not answer",
            ))),
        };
        let verdict = sync.verdict(wait);
        let st = shared.lock();
        if st.closed {
            return;
        }
        shared.done.send_modify(|v| *v = (round, verdict));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::tests::{cmd, words};

    #[test]
    fn only_requests_that_may_write_wait() {
        let one = |line: &str| Synchronous::needed_for(&Request::One(&cmd(&words(line))));
        for line in [
            "SET k v",
            "INCR k",
            "EVAL return 1 0",
            "FCALL f 0",
            "PUBLISH c m",
        ] {
            assert!(one(line), "{line}");
        }
        for line in [
            "ping", "PING", "ECHO x", "INFO", "GET k", "SCAN 0", "TOUCH k",
        ] {
            assert!(!one(line), "{line}");
        }
        assert!(one("NOSUCHCOMMAND x"));
        let mut reads = redis::pipe();
        reads.get("a").cmd("PING");
        assert!(!Synchronous::needed_for(&Request::Many(&reads, 0, 2)));
        let mut mixed = reads.clone();
        mixed.set("a", 1);
        assert!(Synchronous::needed_for(&Request::Many(&mixed, 0, 3)));
        let mut tx = redis::pipe();
        tx.atomic().incr("t", 1);
        assert!(Synchronous::needed_for(&Request::Many(&tx, 3, 1)));
    }

    #[test]
    fn the_default_waits_for_the_replicas_the_topology_lists() {
        let n = |s: Synchronous, listed| s.for_listed(listed).map(|s| s.replicas);
        assert_eq!(n(DEFAULT, 0), None, "no replica listed: no WAIT");
        assert_eq!(n(DEFAULT, 1), Some(1));
        assert_eq!(n(DEFAULT, 2), Some(1));
        let two = Synchronous {
            replicas: 2,
            ..DEFAULT
        };
        assert_eq!(n(two, 1), Some(1));
        assert_eq!(n(two, 3), Some(2));
        let strict = Synchronous {
            strict: true,
            ..two
        };
        assert_eq!(n(strict, 0), Some(2), "strict: always the number asked for");
        assert_eq!(n(strict, 1), Some(2));
    }

    #[test]
    fn wait_never_gets_timeout_zero() {
        let s = Synchronous {
            timeout: Duration::from_millis(500),
            ..DEFAULT
        };
        let ms = |d| crate::route::tests::strings(&s.wait_cmd(d))[2].clone();
        assert_eq!(ms(Duration::ZERO), "1");
        assert_eq!(ms(Duration::from_micros(1500)), "2");
        assert_eq!(ms(Duration::from_millis(500)), "500");
    }
}
