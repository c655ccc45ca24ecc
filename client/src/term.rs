//! Master terms and the waker registry. A request sent to the master ends as soon as a new
//! topology names another master (or none): its reply, if the deposed node ever sends one,
//! could acknowledge a write that the failover is about to discard. [`MasterTerm`] is one
//! node's time as the master; [`Watchers`] wakes every handle's task when a term ends;
//! [`send_to_master`] sends a request that gives up on the reply at that moment.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Poll, Waker};

use redis::{RedisError, RedisResult};

use crate::conns::Conn;
use crate::error::{client_error, io_error};
use crate::send::{send, Reply, Request};
use crate::synchronous::Synchronous;
use crate::wire::NodeAddr;

/// One node's time as the master, as this client sees it: it lasts through topologies that
/// keep naming the same master, and ends for good when one names another master or none
/// (a node promoted again later starts a new term). Requests sent to the master watch it,
/// so that none keeps waiting for a deposed master's reply.
#[derive(Default)]
pub(crate) struct MasterTerm {
    pub(crate) over: AtomicBool,
}

/// A handle's entry in [`Watchers`]: the waker of the task that last sent a request to a
/// master through the handle (a handle has at most one request in flight).
#[derive(Default)]
pub(crate) struct Watcher {
    pub(crate) waker: Mutex<Option<Waker>>,
}

/// The handles that have sent to a master. When a master's term ends they are all woken,
/// and a request in flight to that master sees the end. A slot per handle rather than a
/// shared `Notify`: registering with a `Notify` locks a mutex shared by every task, twice
/// per command (about +0.1 µs per command in a micro-benchmark); a handle's slot is written
/// only when the task using the handle changes, so a request usually pays one pointer
/// comparison and one atomic load.
#[derive(Default)]
pub(crate) struct Watchers {
    pub(crate) handles: Mutex<Vec<Weak<Watcher>>>,
}

impl Watchers {
    pub(crate) fn add(&self) -> Arc<Watcher> {
        let w = Arc::new(Watcher::default());
        let mut handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        // Dropped handles are pruned whenever the list doubles: amortized O(1).
        if handles.len() >= 16 && handles.len().is_power_of_two() {
            handles.retain(|h| h.strong_count() > 0);
        }
        handles.push(Arc::downgrade(&w));
        w
    }

    /// Marks `term` over, then wakes every handle's task (one that is not waiting for a
    /// master gets one spurious wake-up).
    pub(crate) fn end(&self, term: &MasterTerm) {
        term.over.store(true, Ordering::Release);
        let mut handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        handles.retain(|h| match h.upgrade() {
            Some(w) => {
                if let Some(waker) = w.waker.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                    waker.wake_by_ref();
                }
                true
            }
            None => false,
        });
    }
}

/// How a request to the master ended.
pub(crate) enum Watched {
    /// The node answered (or the connection failed) while it was still the master.
    Done(RedisResult<Reply>),
    /// The master's term had already ended: nothing was sent.
    NotSent(RedisError),
    /// The term ended while the request was in flight: the reply is no longer awaited, and
    /// the request may have been applied by the deposed master.
    Abandoned(RedisError),
}

impl Watched {
    /// As [`Client::attempt`] reports a try: the result and whether it may have reached
    /// the server.
    pub(crate) fn into_try(self) -> (RedisResult<Reply>, bool) {
        match self {
            Watched::Done(r) => (r, true),
            Watched::NotSent(e) => (Err(e), false),
            Watched::Abandoned(e) => (Err(e), true),
        }
    }
}

/// Sends `req` on the master's connection `conn` (then, in synchronous mode `sync`, joins
/// the connection's next `WAIT` once the reply is in: [`crate::synchronous`]), unless or until `term` ends. `watcher` is the handle's entry in [`Watchers`],
/// `registered` the waker last put there. A reply that is ready when the term ends wins.
pub(crate) async fn send_to_master(
    conn: &mut Conn,
    req: &Request<'_>,
    sync: Option<Synchronous>,
    term: &MasterTerm,
    watcher: &Watcher,
    registered: &mut Option<Waker>,
    addr: &NodeAddr,
) -> Watched {
    if term.over.load(Ordering::Acquire) {
        return Watched::NotSent(master_changed(addr, false));
    }
    let mut sending = pin!(async {
        let reply = send(&mut conn.redis, req).await?;
        if let Some(s) = sync {
            conn.syncer.join(&conn.redis, s).await?;
        }
        Ok(reply)
    });
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = sending.as_mut().poll(cx) {
            return Poll::Ready(Watched::Done(r));
        }
        // Registered before the flag is read: the end of the term sets the flag, then wakes
        // every handle's task, so this sees it now or is woken to see it.
        if !registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            let w = cx.waker().clone();
            *watcher.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(w.clone());
            *registered = Some(w);
        }
        if term.over.load(Ordering::Acquire) {
            return Poll::Ready(Watched::Abandoned(master_changed(addr, true)));
        }
        Poll::Pending
    })
    .await
}

/// The error of a request whose master was deposed; for one `sent`, an I/O error, which the
/// retry logic treats as "may have been applied" (as a timeout).
pub(crate) fn master_changed(addr: &NodeAddr, sent: bool) -> RedisError {
    if sent {
        io_error(format!(
            "master changed: the topology no longer names {addr} as the master; its reply was \
             not awaited"
        ))
    } else {
        client_error(format!(
            "master changed: the topology no longer names {addr} as the master; nothing was sent"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::task::Wake;

    struct Count(AtomicU64);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_end_of_a_term_wakes_every_live_handle() {
        let watchers = Watchers::default();
        let term = MasterTerm::default();
        let counts: Vec<_> = (0..3).map(|_| Arc::new(Count(AtomicU64::new(0)))).collect();
        let mut handles: Vec<_> = counts
            .iter()
            .map(|c| {
                let w = watchers.add();
                *w.waker.lock().expect("lock") = Some(Waker::from(c.clone()));
                w
            })
            .collect();
        drop(handles.pop());
        watchers.end(&term);
        assert!(term.over.load(Ordering::Acquire));
        let woken: Vec<u64> = counts.iter().map(|c| c.0.load(Ordering::SeqCst)).collect();
        assert_eq!(woken, [1, 1, 0]);
        assert_eq!(watchers.handles.lock().expect("lock").len(), 2, "pruned");
    }
}
