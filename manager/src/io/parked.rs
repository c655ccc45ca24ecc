//! The crash detector of one node: one connection parked in a blocking read (`XREAD BLOCK`
//! on a key never written; read-only, so that a master that refuses or pauses writes still
//! serves it, and a replica too).
//!
//! - A crashed process breaks that connection at once (a FIN, as the kernel sends when a
//!   process exits); reconnecting is then refused, so `--max-failures` failures pile up
//!   within tens of milliseconds ([`ProbeResult::Gone`]). Any reply, even an error, comes
//!   from a live process. It never reports a timeout: hangs are the poller's.
//! - On every (re)connect it reads who answers (`INFO server`): a process that restarted
//!   faster than a crash can be confirmed comes back with a new `run_id`.
//! - A master turned into a replica ends the read with `UNBLOCKED`: the poller is told to
//!   ask `INFO` at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_failover_client::NodeAddr;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::core::info::Identity;
use crate::io::node::NodeError;
use crate::io::probe::{
    pause, report, retry_delay, Observation, ProbeResult, ProbeSettings, RETRY_SLOW,
};
use crate::io::probe_conn::{command, identity, ProbeConn};

/// How long the parked read blocks before it is re-issued: it only waits for the
/// connection to break, so rarely. Well below the idle timeouts of load balancers and NAT
/// tables (minutes).
const BLOCK: Duration = Duration::from_secs(30);

/// How one parked connection ended.
#[derive(Debug)]
enum Parked {
    Shutdown,
    /// The node closed it cleanly: reconnect; a refusal then proves the process gone.
    Closed,
    /// Reset, or no answer by the read's deadline (a hung node, the poller's to report):
    /// reconnect.
    Broken,
    /// `UNBLOCKED`: the master became a replica (the node closes the connection after it).
    Unblocked,
}

pub(crate) struct Detector {
    pub node: NodeAddr,
    pub s: ProbeSettings,
    /// The poller's: asks it for `INFO` at once.
    pub poke: Arc<Notify>,
    pub tx: mpsc::Sender<Observation>,
    pub shutdown: CancellationToken,
}

impl Detector {
    pub async fn run(self) {
        let mut failures = 0u32;
        let mut run_id: Option<String> = None;
        // The node closed the parked connection cleanly, and has not answered since.
        let mut closed = false;
        while !self.shutdown.is_cancelled() {
            let connect = ProbeConn::connect(&self.s.connector, &self.node, self.s.probe_timeout);
            let conn = tokio::select! {
                c = connect => c,
                _ = self.shutdown.cancelled() => return,
            };
            let mut conn = match conn {
                // Not `closed = false` yet: the kernel of a process that is exiting may still
                // accept a connection, then reset it.
                Ok(c) => c,
                // A connect that hangs is the poller's to report.
                Err(NodeError::Timeout(_)) => continue,
                Err(e) => {
                    failures += 1;
                    let result = match e {
                        NodeError::Refused(_) if closed => ProbeResult::Gone(e),
                        e => ProbeResult::Failed(e),
                    };
                    if !report(&self.tx, &self.node, result).await {
                        return;
                    }
                    if !pause(retry_delay(failures, self.s.max_failures), &self.shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            // Every reconnect asks who answers: a process that restarted faster than a crash
            // can be confirmed (a graceful restart takes ~20 ms) comes back with whatever it
            // loaded from disk, possibly older than its replicas.
            let identity = self.identify(&mut conn).await;
            if identity.is_ok() {
                // It answered on this connection.
                closed = false;
            }
            match identity {
                Ok(Some(id)) => {
                    let identified = ProbeResult::Identified {
                        restarted: run_id.as_ref().is_some_and(|old| *old != id.run_id),
                        run_id: id.run_id.clone(),
                        uptime: id.uptime,
                    };
                    if !report(&self.tx, &self.node, identified).await {
                        return;
                    }
                    run_id = Some(id.run_id);
                }
                // Refused (an ACL without `+info`): the poller says why.
                Ok(None) => {}
                Err(Parked::Shutdown) => return,
                Err(Parked::Closed) => {
                    closed = true;
                    continue;
                }
                Err(_) => continue,
            }
            // It answered: alive now, not only once the parked read returns.
            if !self.alive(&mut failures).await {
                return;
            }
            let end = self.park(&mut conn, &mut failures).await;
            tracing::debug!(node = %self.node, "parked read ended: {end:?}");
            match end {
                Parked::Shutdown => return,
                Parked::Closed => closed = true,
                Parked::Broken => {}
                Parked::Unblocked => self.poke.notify_one(),
            }
        }
    }

    /// `INFO server` on a new connection. Waits as long as a parked read: a hung node is
    /// the poller's to report, and its answer, once it comes, is this one's. `Ok(None)` when
    /// the node refused it.
    async fn identify(&self, conn: &mut ProbeConn) -> Result<Option<Identity>, Parked> {
        let asked = conn.ask(&["INFO", "server"]);
        let answer = tokio::select! {
            r = tokio::time::timeout(BLOCK + self.s.probe_timeout * 2, asked) => r,
            _ = self.shutdown.cancelled() => return Err(Parked::Shutdown),
        };
        match answer {
            Ok(Ok(Some(frame))) => Ok(identity(&frame)),
            Ok(Ok(None)) => Err(Parked::Closed),
            Ok(Err(NodeError::Reply(_) | NodeError::Auth(_))) => Ok(None),
            Ok(Err(_)) | Err(_) => Err(Parked::Broken),
        }
    }

    /// Keeps one read parked on `conn` until it ends.
    async fn park(&self, conn: &mut ProbeConn, failures: &mut u32) -> Parked {
        let ms = BLOCK.as_millis().to_string();
        let read = command(&["XREAD", "BLOCK", &ms, "STREAMS", &self.s.probe_key, "$"]);
        // After an error reply (an ACL without `+xread`, `LOADING`, `MASTERDOWN`) the next
        // read is [`RETRY_SLOW`] later.
        let mut refused = false;
        loop {
            if refused && !pause(RETRY_SLOW, &self.shutdown).await {
                return Parked::Shutdown;
            }
            let issued = Instant::now();
            let write = tokio::time::timeout(self.s.probe_timeout, conn.queue(&read, 1));
            if !matches!(write.await, Ok(Ok(()))) {
                return Parked::Broken;
            }
            // Bounded: the node answers nil after BLOCK; a hung node is caught by the
            // deadline, which then only costs a reconnect (the poller reports the hang).
            let deadline = issued + BLOCK + self.s.probe_timeout * 2;
            let reply = tokio::select! {
                r = tokio::time::timeout_at(deadline.into(), conn.reply()) => r,
                _ = self.shutdown.cancelled() => return Parked::Shutdown,
            };
            refused = match reply {
                Err(_elapsed) => return Parked::Broken,
                Ok(Ok(Some(_))) => false,
                Ok(Ok(None)) => return Parked::Closed,
                Ok(Err(NodeError::Reply(e))) if e.starts_with("UNBLOCKED") => {
                    return Parked::Unblocked
                }
                Ok(Err(NodeError::Reply(_) | NodeError::Auth(_))) => true,
                Ok(Err(_)) => return Parked::Broken,
            };
            if !self.alive(failures).await {
                return Parked::Shutdown;
            }
        }
    }

    /// Reports a success if failures were reported since the last one.
    async fn alive(&self, failures: &mut u32) -> bool {
        if *failures == 0 {
            return true;
        }
        *failures = 0;
        let ok = ProbeResult::Ok {
            info: None,
            latency: None,
        };
        report(&self.tx, &self.node, ok).await
    }
}
