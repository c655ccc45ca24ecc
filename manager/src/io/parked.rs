//! The crash detector of one node, and on a master its sign of life: one connection parked
//! in a blocking read (`XREAD BLOCK` on a key never written; read-only, so that a master
//! that refuses or pauses writes still serves it).
//!
//! - A crashed process breaks that connection at once (a FIN, as the kernel sends when a
//!   process exits); reconnecting is then refused, so `--max-failures` failures pile up
//!   within tens of milliseconds ([`ProbeResult::Gone`]). Any reply, even an error, comes
//!   from a live process. On every (re)connect it reads who answers (`INFO server`).
//! - On a master (as the poller's `INFO` says: [`Pulse::want`]) the read is queued
//!   [`DEPTH`] times, each ending after [`beat_period`] on the node's own timer: a live
//!   master answers every `--probe-interval-ms` without being asked, one write every
//!   [`DEPTH`]` / 2` answers instead of a round trip each (the manager's CPU at rest is mostly
//!   its round trips). The poller need not ask it between its `INFO`s then
//!   ([`Pulse::beating`]). No answer by the interval plus a probe's deadline is one failed
//!   probe, as if asked when the answer was due: the poller counts it (it alone counts a
//!   hang's failures, one question at a time) and asks at once, then at every interval, so
//!   a hang is seen `--down-after-ms` after the interval in which it started, as when the
//!   poller asked.
//! - A master turned into a replica ends the read with `UNBLOCKED`: the poller is told to
//!   ask `INFO` at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis_failover_client::NodeAddr;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::core::info::{parse_info_server, Identity};
use crate::io::node::NodeError;
use crate::io::probe::{
    pause, report, retry_delay, Observation, ProbeResult, ProbeSettings, RETRY_SLOW,
};
use crate::io::probe_conn::{command, frame_text, ProbeConn};

/// How long the parked read blocks when it is not a master's sign of life: it only waits
/// for the connection to break, so rarely. Well below the idle timeouts of load balancers
/// and NAT tables (minutes).
const BLOCK: Duration = Duration::from_secs(30);
/// How many reads a master's connection has queued at most; more are written (in one
/// write) once half of them have been answered.
const DEPTH: usize = 16;

/// What the poller and the crash detector of one node tell each other.
#[derive(Debug, Default)]
pub struct Pulse {
    /// The poller's latest `INFO` says master: beat.
    wanted: AtomicBool,
    /// The node answered its latest beat in time, and missed none since the connection
    /// was made: the poller need not ask between its `INFO`s.
    beating: AtomicBool,
    /// Wakes the detector when `wanted` changes (it parks again, the other way).
    changed: Notify,
    /// The latest beat missed: when the one before it came, and when it was due.
    missed: Mutex<Option<(Instant, Instant)>>,
    /// Wakes the poller when a beat was missed.
    pub(crate) miss: Notify,
}

impl Pulse {
    /// The poller's `INFO` says whether the node is a master.
    pub fn want(&self, master: bool) {
        if self.wanted.swap(master, Ordering::Relaxed) != master {
            self.changed.notify_one();
        }
    }

    pub fn beating(&self) -> bool {
        self.beating.load(Ordering::Relaxed)
    }

    /// No beat came since `last`; one was due at `due`.
    fn missed(&self, last: Instant, due: Instant) {
        *self.missed.lock().unwrap_or_else(|e| e.into_inner()) = Some((last, due));
        self.miss.notify_one();
    }

    /// The latest missed beat, once: when the one before it came, and when it was due.
    pub fn take_miss(&self) -> Option<(Instant, Instant)> {
        self.missed.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn wanted(&self) -> bool {
        self.wanted.load(Ordering::Relaxed)
    }

    fn set_beating(&self, on: bool) {
        self.beating.store(on, Ordering::Relaxed);
    }
}

/// How long each of a master's queued reads blocks, for it to answer every `interval`.
/// An idle node notices a blocked read's timeout at its next timer tick (`1000 / hz` ms; a
/// busy one sooner), so half a tick short of the interval lands an idle node's answer on
/// the interval's own tick, and a busy node's no later. `None` when a tick is longer than
/// half the interval (`hz` set very low): answers would come late, and the poller asks
/// instead.
pub fn beat_period(interval: Duration, hz: Option<u32>) -> Option<Duration> {
    let tick = Duration::from_secs(1) / hz.filter(|h| *h > 0)?;
    (tick * 2 <= interval).then(|| interval - tick / 2)
}

/// How one parked connection ended.
#[derive(Debug)]
enum Parked {
    Shutdown,
    /// The node closed it cleanly: reconnect; a refusal then proves the process gone.
    Closed,
    /// Reset, or a read past its deadline when not beating: reconnect.
    Broken,
    /// `UNBLOCKED`: the master became a replica (the node closes the connection after it).
    Unblocked,
    /// The poller's view of the role changed: park again the other way.
    Changed,
    /// No beat since `last` by its deadline: one failed probe, as if asked at `due`.
    Missed {
        last: Instant,
        due: Instant,
    },
}

pub(crate) struct Detector {
    pub node: NodeAddr,
    pub s: ProbeSettings,
    pub pulse: Arc<Pulse>,
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
            self.pulse.set_beating(false);
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
            let hz = match identity {
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
                    id.hz
                }
                // Refused (an ACL without `+info`): the poller says why.
                Ok(None) => None,
                Err(Parked::Shutdown) => return,
                Err(Parked::Closed) => {
                    closed = true;
                    continue;
                }
                Err(_) => continue,
            };
            // It answered: alive now, not only once the parked read returns.
            if !self.alive(&mut failures).await {
                return;
            }
            let master = self.pulse.wanted();
            let beat = beat_period(self.s.interval, hz).filter(|_| master);
            let end = self.park(&mut conn, master, beat, &mut failures).await;
            self.pulse.set_beating(false);
            tracing::debug!(node = %self.node, ?beat, "parked read ended: {end:?}");
            match end {
                Parked::Shutdown => return,
                Parked::Closed => closed = true,
                Parked::Broken | Parked::Changed => {}
                Parked::Unblocked => self.poke.notify_one(),
                // The poller counts it (it alone counts a hang's failures, one question at
                // a time) and asks at once.
                Parked::Missed { last, due } => self.pulse.missed(last, due),
            }
        }
    }

    /// `INFO server` on a new connection. Waits as long as a parked read: a hung node is
    /// the poller's to report, and its answer, once it comes, is this one's. `Ok(None)` when
    /// the node refused it.
    async fn identify(&self, conn: &mut ProbeConn) -> Result<Option<Identity>, Parked> {
        let asked = async {
            conn.queue(&command(&["INFO", "server"]), 1).await?;
            conn.reply().await
        };
        let answer = tokio::select! {
            r = tokio::time::timeout(BLOCK + self.s.probe_timeout * 2, asked) => r,
            _ = self.shutdown.cancelled() => return Err(Parked::Shutdown),
        };
        match answer {
            Ok(Ok(Some(frame))) => match frame_text(&frame).map(|t| parse_info_server(&t)) {
                Some(Ok(id)) => Ok(Some(id)),
                _ => Ok(None),
            },
            Ok(Ok(None)) => Err(Parked::Closed),
            Ok(Err(NodeError::Reply(_) | NodeError::Auth(_))) => Ok(None),
            Ok(Err(_)) | Err(_) => Err(Parked::Broken),
        }
    }

    /// Keeps reads queued on `conn` until it ends: [`DEPTH`] of `beat` each on a master,
    /// else one of [`BLOCK`] at a time. `master` is what the poller said when it was made.
    async fn park(
        &self,
        conn: &mut ProbeConn,
        master: bool,
        beat: Option<Duration>,
        failures: &mut u32,
    ) -> Parked {
        let read = |block: Duration| {
            let ms = block.as_millis().max(1).to_string();
            command(&["XREAD", "BLOCK", &ms, "STREAMS", &self.s.probe_key, "$"])
        };
        let (beat_read, long_read) = (beat.map(read), read(BLOCK));
        let changed = self.pulse.changed.notified();
        tokio::pin!(changed);
        let mut queued = 0usize;
        // An error reply (an ACL without `+xread`, `LOADING`, `MASTERDOWN`): one read at a
        // time, [`RETRY_SLOW`] apart, until one is answered.
        let mut refused = false;
        // When the latest answer came, or the first read was written.
        let mut last = Instant::now();
        loop {
            let beating = beat_read.is_some() && !refused;
            let (cmd, depth) = match &beat_read {
                Some(r) if beating => (r, DEPTH),
                _ => (&long_read, 1),
            };
            if queued == 0 || (beating && queued <= DEPTH / 2) {
                if refused && !pause(RETRY_SLOW, &self.shutdown).await {
                    return Parked::Shutdown;
                }
                let write =
                    tokio::time::timeout(self.s.probe_timeout, conn.queue(cmd, depth - queued));
                match write.await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) | Err(_) => return Parked::Broken,
                }
                if queued == 0 {
                    last = Instant::now();
                }
                queued = depth;
            }
            let deadline = match beat {
                // The next answer is due by the interval after the last one.
                Some(_) if beating => last + self.s.interval + self.s.probe_timeout,
                // Bounded: the node answers nil after BLOCK; a hung node is caught by the
                // deadline, which then only costs a reconnect (the poller reports the hang).
                _ => last + BLOCK + self.s.probe_timeout * 2,
            };
            let reply = tokio::select! {
                r = conn.reply() => r,
                _ = tokio::time::sleep_until(deadline.into()) => {
                    return match beat {
                        Some(_) if beating => Parked::Missed {
                            last,
                            due: last + self.s.interval,
                        },
                        _ => Parked::Broken,
                    };
                }
                _ = &mut changed => {
                    if self.pulse.wanted() != master {
                        return Parked::Changed;
                    }
                    // A change undone before this connection was made.
                    changed.set(self.pulse.changed.notified());
                    continue;
                }
                _ = self.shutdown.cancelled() => return Parked::Shutdown,
            };
            queued = queued.saturating_sub(1);
            last = Instant::now();
            match reply {
                Ok(Some(_)) => {
                    refused = false;
                    self.pulse.set_beating(beat.is_some());
                }
                Ok(None) => return Parked::Closed,
                Err(NodeError::Reply(e)) if e.starts_with("UNBLOCKED") => return Parked::Unblocked,
                Err(NodeError::Reply(_) | NodeError::Auth(_)) => {
                    refused = true;
                    self.pulse.set_beating(false);
                }
                Err(_) => return Parked::Broken,
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_answers_on_the_interval_s_own_tick() {
        let ms = Duration::from_millis;
        let cases = [
            // (interval, hz, beat)
            (ms(200), Some(10), Some(ms(150))),
            (ms(200), Some(100), Some(ms(195))),
            (ms(400), Some(5), Some(ms(300))),
            (ms(200), Some(5), None),
            (ms(1000), Some(10), Some(ms(950))),
            (ms(100), Some(20), Some(ms(75))),
            (ms(100), Some(10), None),
            // A tick longer than half the interval: the poller asks instead.
            (ms(200), Some(4), None),
            (ms(50), Some(10), None),
            (ms(200), Some(1), None),
            // Not reported: unknown timing, the poller asks.
            (ms(200), None, None),
            (ms(200), Some(0), None),
        ];
        for (interval, hz, want) in cases {
            assert_eq!(
                beat_period(interval, hz),
                want,
                "interval {interval:?}, hz {hz:?}"
            );
        }
    }

    #[test]
    fn the_detector_is_woken_only_when_the_role_changes() {
        let p = Pulse::default();
        assert!(!p.wanted(), "not a master until INFO says so");
        p.want(false);
        p.want(true);
        assert!(p.wanted());
        // One stored wake-up for the change; none for the repeated `true`.
        p.want(true);
        let woken = p.changed.notified();
        tokio::pin!(woken);
        assert!(woken.as_mut().enable(), "the change is pending");
    }
}
