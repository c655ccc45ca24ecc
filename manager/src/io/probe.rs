//! Watching one node. Two tasks per node, each reporting [`Observation`]s; neither decides
//! anything (that is `health.rs` and `decide.rs`):
//!
//! - the **crash detector** (`parked.rs`) keeps a connection parked in a blocking read,
//!   which a crashed process breaks at once.
//! - the **poller** (here) asks every `--probe-interval-ms` on a master, on a node whose
//!   role it does not know yet and on every node of a group that is not calm
//!   (`health::calm`: a node not up or failing, or a replica its master does not hear
//!   from); a replica of a calm group every [`CALM_REPLICA_EVERY`], its master vouching for
//!   it in between. The question is `INFO replication`, except between the [`INFO_EVERY`]
//!   `INFO`s of a calm master: nothing while its beat (`beat.rs`: reads queued on a
//!   connection of its own, which the master ends on its own timer every interval, and
//!   this task reads without waiting when it wakes) answers in time, else `ROLE`; an answer
//!   that changes nothing does not wake the group's loop. Each has a deadline of
//!   `down-after / max-failures` and is retried at once after a failure, so a hung node
//!   (SIGSTOP, a black-holed link) collects `max-failures` failures in about `down-after`;
//!   a beat that did not come by the interval plus that deadline is the first of them.
//!   `replica-priority` is read with `INFO` on each new connection and every
//!   [`PRIORITY_EVERY`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_failover_client::NodeAddr;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::core::info::NodeInfo;
use crate::io::beat::{BeatSlot, BeatTarget, Heard};
use crate::io::node::{Connector, NodeError};
use crate::io::parked::Detector;
use crate::io::probe_conn::ProbeConn;

/// How often the poller asks a master for a sign of life unless `--probe-interval-ms` says
/// otherwise: a hung master is caught about `down-after` plus half of this after it starts.
/// Which replicas it lists, and how far each acknowledged, decides which replica may
/// replace it (`select.rs`), so that is as fresh as probing too.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How often a calm master is asked `INFO` (in between, its beat or `ROLE`): which
/// replicas it lists, how far each acknowledged and when each last did (`lag`) are at most
/// this old while its group is calm, and read at every probe from the moment it is not.
const INFO_EVERY: Duration = Duration::from_secs(1);
/// How often a replica of a calm group is asked (or the interval, if longer): its master
/// lists it as online and heard from within the last second at every `INFO`, and the moment
/// it does not (a hung or cut-off replica stops acknowledging) the group is not calm and
/// every node is asked at once and then at every probe. Each probe is a round trip, most
/// of the manager's CPU at rest.
const CALM_REPLICA_EVERY: Duration = Duration::from_secs(5);
/// How often it asks for `replica-priority` (`CONFIG GET`, a second round trip), which
/// changes only when an operator changes it: on every new connection and then this often.
const PRIORITY_EVERY: Duration = Duration::from_secs(10);
/// Spacing of retries after a failure: short, so a crash is confirmed quickly...
const RETRY_FAST: Duration = Duration::from_millis(20);
/// ...and longer once the node is known to be down, so a dead node is not hammered.
pub(crate) const RETRY_SLOW: Duration = Duration::from_millis(250);

#[derive(Clone, Debug)]
pub enum ProbeResult {
    /// The node answered; `info` when the probe read `INFO replication`.
    Ok {
        info: Option<NodeInfo>,
        latency: Option<Duration>,
    },
    Failed(NodeError),
    /// A failure that proves the process gone: it closed our parked connection (a FIN, as
    /// the kernel sends when the process exits; a firewall can only reset or drop) and then
    /// its port refused us.
    Gone(NodeError),
    /// Which process answers, read on every (re)connect: `restarted` when its `run_id` is
    /// not the one it had (it restarted, maybe too fast for any probe to fail), and how long
    /// it has been running.
    Identified {
        run_id: String,
        restarted: bool,
        uptime: Duration,
    },
}

#[derive(Clone, Debug)]
pub struct Observation {
    pub node: NodeAddr,
    /// When the probe asked (for `INFO`) or saw the failure.
    pub at: Instant,
    pub result: ProbeResult,
}

/// Settings shared by every probe of a group.
#[derive(Clone, Debug)]
pub struct ProbeSettings {
    pub connector: Connector,
    /// Deadline of one probe: `down-after / max-failures`.
    pub probe_timeout: Duration,
    /// `--probe-interval-ms`: how often the poller asks for a sign of life.
    pub interval: Duration,
    /// Set by the group's loop while the group is not calm (`health::calm`): every probe of
    /// the group is then an `INFO` at the interval, so that what a failover decides on
    /// (replicas still hearing from their master, offsets, links) is as fresh as probing.
    pub alert: Arc<AtomicBool>,
    pub max_failures: u32,
    /// Key the parked read blocks on; never written.
    pub probe_key: String,
}

/// Handle to one node's probe tasks.
pub struct NodeProbe {
    /// Wakes the poller for an immediate `INFO` (after the leader changed the node).
    pub poke: Arc<Notify>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts both tasks for `node`; they end when `shutdown` turns true.
pub fn spawn(
    node: NodeAddr,
    settings: ProbeSettings,
    tx: mpsc::Sender<Observation>,
    shutdown: CancellationToken,
) -> NodeProbe {
    let poke = Arc::new(Notify::new());
    let detector = Detector {
        node: node.clone(),
        s: settings.clone(),
        poke: poke.clone(),
        tx: tx.clone(),
        shutdown: shutdown.clone(),
    };
    let tasks = vec![
        tokio::spawn(detector.run()),
        tokio::spawn(poller(node, settings, tx, shutdown, poke.clone())),
    ];
    NodeProbe { poke, tasks }
}

pub(crate) async fn report(
    tx: &mpsc::Sender<Observation>,
    node: &NodeAddr,
    result: ProbeResult,
) -> bool {
    report_at(tx, node, result, Instant::now()).await
}

async fn report_at(
    tx: &mpsc::Sender<Observation>,
    node: &NodeAddr,
    result: ProbeResult,
    at: Instant,
) -> bool {
    tx.send(Observation {
        node: node.clone(),
        at,
        result,
    })
    .await
    .is_ok()
}

/// Sleeps, or returns false at shutdown.
pub(crate) async fn pause(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = shutdown.cancelled() => return false,
    }
    !shutdown.is_cancelled()
}

pub(crate) fn retry_delay(failures: u32, max_failures: u32) -> Duration {
    if failures < max_failures {
        RETRY_FAST
    } else {
        RETRY_SLOW
    }
}

/// Whether the node's host completes a TCP handshake on its port within `timeout`: its
/// kernel does that for a process that is alive but hung (SIGSTOP), not across a network
/// that drops packets (a timeout) or rejects them (refused).
async fn accepts_tcp(node: &NodeAddr, timeout: Duration) -> bool {
    let connect = tokio::net::TcpStream::connect((node.host.as_str(), node.port));
    matches!(tokio::time::timeout(timeout, connect).await, Ok(Ok(_)))
}

/// What one poll got.
enum Answer {
    /// `INFO replication` (with `replica-priority`).
    Info(NodeInfo),
    /// Between two `INFO`s of a calm master: whether it still answers `master` (`ROLE`, or
    /// its beat answered in time: `true`).
    Role(bool),
}

async fn poller(
    node: NodeAddr,
    s: ProbeSettings,
    tx: mpsc::Sender<Observation>,
    shutdown: CancellationToken,
    poke: Arc<Notify>,
) {
    let mut conn: Option<ProbeConn> = None;
    let mut failures = 0u32;
    // `replica-priority` and when it was read, while the connection lasts.
    let mut priority: Option<(u32, Instant)> = None;
    // A replica, as its last `INFO` said, and when that `INFO` was asked.
    let mut is_replica = false;
    let mut info_at: Option<Instant> = None;
    // The node refused `ROLE` (an ACL without it): `INFO` every time.
    let mut role_denied = false;
    let mut poked = false;
    // A calm master's sign of life between its `INFO`s (`beat.rs`).
    let mut beat = BeatSlot::default();
    let target = BeatTarget {
        connector: &s.connector,
        node: &node,
        key: &s.probe_key,
        interval: s.interval,
        probe_timeout: s.probe_timeout,
    };
    // When the node last answered a question of this task.
    let mut answered: Option<Instant> = None;
    // Made once and polled again each time: a poller runs several times a second, and a
    // new wait (on the shutdown, on a poke) per probe was a measurable share of its cost.
    let stopped = shutdown.cancelled();
    tokio::pin!(stopped);
    let mut poke_wait = Box::pin(poke.notified());
    loop {
        let mut started = Instant::now();
        let calm = !s.alert.load(Ordering::Relaxed);
        // A calm master is not asked between its `INFO`s while its beat answers in time;
        // else `ROLE`: as much a sign of life, with a role change still seen at once, and
        // nothing to tell the group's loop.
        let light = calm
            && !poked
            && !is_replica
            && !role_denied
            && conn.is_some()
            && info_at.is_some_and(|t| started.saturating_duration_since(t) < INFO_EVERY);
        poked = false;
        let wanted = calm && !is_replica && !role_denied && failures == 0;
        let verdict = match beat.hear(started, wanted, light, answered, &target) {
            // No beat, or one that cannot tell (`hear` drops it): ask.
            None | Some(Heard::Unreliable) => None,
            Some(Heard::InTime) => Some(Ok(Answer::Role(true))),
            // The answer due then did not come: a probe asked then that failed.
            Some(Heard::Missed { due }) => {
                started = due;
                Some(Err(NodeError::Timeout(s.probe_timeout)))
            }
        };
        let known = priority
            .filter(|(_, at)| started.saturating_duration_since(*at) < PRIORITY_EVERY)
            .map(|(p, _)| p);
        let attempt = async {
            // A connection dropped under a live node (CLIENT KILL, an idle timeout) is
            // retried once with a fresh one before it counts as a failure.
            let mut fresh = conn.is_none();
            loop {
                if conn.is_none() {
                    conn = Some(ProbeConn::connect(&s.connector, &node, s.probe_timeout).await?);
                }
                let Some(c) = conn.as_mut() else {
                    return Err(NodeError::Connection("not connected".into()));
                };
                let answer = if light {
                    c.still_master().await.map(Answer::Role)
                } else {
                    c.info(known).await.map(Answer::Info)
                };
                match answer {
                    Err(NodeError::Connection(_)) if !fresh => {
                        conn = None;
                        fresh = true;
                    }
                    other => return other,
                }
            }
        };
        let by_beat = verdict.is_some();
        let outcome = match verdict {
            Some(v) => {
                drop(attempt);
                v
            }
            None => tokio::select! {
                r = tokio::time::timeout(s.probe_timeout, attempt) => r.unwrap_or(Err(NodeError::Timeout(s.probe_timeout))),
                _ = &mut stopped => return,
            },
        };
        let (result, wait) = match outcome {
            // Alive and still master: nothing the last `INFO` did not say.
            Ok(Answer::Role(true)) => {
                if !by_beat {
                    answered = Some(Instant::now());
                }
                (None, None)
            }
            // No longer master: `INFO` at once says what it is now.
            Ok(Answer::Role(false)) => {
                info_at = None;
                continue;
            }
            // `ROLE` refused (an ACL without it): `INFO` from now on.
            Err(NodeError::Reply(_) | NodeError::Auth(_)) if light => {
                role_denied = true;
                continue;
            }
            Ok(Answer::Info(info)) => {
                answered = Some(Instant::now());
                failures = 0;
                is_replica = !info.is_master();
                info_at = Some(started);
                if known.is_none() {
                    priority = Some((info.priority, started));
                }
                let latency = Some(started.elapsed());
                (
                    Some(ProbeResult::Ok {
                        info: Some(info),
                        latency,
                    }),
                    None,
                )
            }
            Err(e) => {
                // A timed-out or broken connection may hold stale replies: start afresh.
                let e = match e {
                    NodeError::Timeout(_) if accepts_tcp(&node, s.probe_timeout).await => {
                        NodeError::Silent(s.probe_timeout)
                    }
                    NodeError::Timeout(_) => NodeError::Timeout(s.probe_timeout),
                    other => other,
                };
                conn = None;
                beat.stop();
                priority = None;
                info_at = None;
                failures += 1;
                (
                    Some(ProbeResult::Failed(e)),
                    Some(retry_delay(failures, s.max_failures)),
                )
            }
        };
        // Stamped with when the request was sent: a reply is only as new as its question,
        // and the leader must not take it over what it saw after acting on the node.
        if let Some(result) = result {
            if !report_at(&tx, &node, result, started).await {
                return;
            }
        }
        // A calm master without a beat gets one (a connection of its own, set up once).
        let wanted = calm && !is_replica && !role_denied && failures == 0 && info_at.is_some();
        beat.open_if(wanted, Instant::now(), &target);
        let next = match wait {
            Some(d) => Instant::now() + d,
            None if calm && is_replica => {
                on_grid(Instant::now(), s.interval.max(CALM_REPLICA_EVERY))
            }
            None => on_grid(Instant::now(), s.interval),
        };
        // A beat's deadline between two grid points is judged when it falls.
        let next = match beat.deadline(s.interval, s.probe_timeout) {
            Some(due) => next.min(due),
            None => next,
        };
        // A poke (the leader changed the node, or the group is no longer calm) asks at
        // once, with `INFO`.
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = poke_wait.as_mut() => {
                poked = true;
                poke_wait.set(poke.notified());
            }
            _ = &mut stopped => return,
        }
    }
}

/// Keeps one timer of the runtime due half an interval after each of the pollers' grid
/// wake-ups ([`on_grid`]), until `shutdown`. Tokio wakes its own driver (a write to an
/// eventfd, then one more pass of its loop) for every timer registered earlier than the
/// wake-up the driver last planned; once the grid's timers have fired nothing else is due
/// soon, so every poller's next sleep and every probe's deadline did that: 357 system calls
/// a second at 100 groups, about one per probe (found with `strace -c` and `perf record -e
/// syscalls:sys_enter_write`; 9 a second with this timer). With this timer always due
/// sooner, none of them is earlier.
pub async fn pace(interval: Duration, shutdown: CancellationToken) {
    loop {
        let next = between_grid(Instant::now(), interval);
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// The first instant after `now` half-way between two points of [`on_grid`]'s grid.
fn between_grid(now: Instant, interval: Duration) -> Instant {
    let half = interval / 2;
    on_grid(now + half, interval) - half
}

/// The next multiple of `interval` since the process's first probe: every poller of the
/// process wakes at the same instants, so that hundreds of nodes' probes go out, and their
/// replies come back, in one pass of the runtime instead of one wake-up each.
fn on_grid(now: Instant, interval: Duration) -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| now);
    let step = interval.as_nanos().max(1);
    let since = now.saturating_duration_since(epoch).as_nanos();
    let n = since / step + 1;
    epoch + Duration::from_nanos((n * step).min(u64::MAX as u128) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_wake_on_one_grid() {
        let i = Duration::from_millis(200);
        let t0 = Instant::now();
        let first = on_grid(t0, i);
        assert!(first > t0 && first <= t0 + i, "within one interval");
        for offset_ms in [0u64, 1, 50, 199] {
            let at = first - i + Duration::from_millis(offset_ms);
            assert_eq!(on_grid(at.max(t0), i), first, "same slot, same wake-up");
        }
        assert_eq!(on_grid(first, i), first + i, "strictly later");
    }

    #[test]
    fn the_pacing_timer_falls_between_two_grid_wake_ups() {
        let i = Duration::from_millis(200);
        let half = i / 2;
        let t0 = Instant::now();
        let first = on_grid(t0, i);
        for offset_ms in [0u64, 1, 99, 100, 101, 199] {
            let now = first + Duration::from_millis(offset_ms);
            let next = between_grid(now, i);
            assert!(
                next > now && next <= now + i,
                "{offset_ms}: within one interval"
            );
            let from_grid = next.duration_since(first).as_millis() % i.as_millis();
            assert_eq!(
                from_grid,
                half.as_millis(),
                "{offset_ms}: half-way between wake-ups"
            );
        }
    }
}
