//! The classification of a lost write: the asynchronous-replication window of a master
//! crash (expected, as with Sentinel) or unexpected (a bug), with the reason.

use std::time::{Duration, Instant};

use super::config::FaultKind;
use super::report::{ms, rel_ms, LostWrite, RoundReport};
use crate::writer::Ack;

/// The observer sees a failover begin up to one sweep (20 ms) after it did, and the client
/// follows a published topology within a few ms.
const RESTART_WINDOW_SLACK: Duration = Duration::from_millis(40);

/// What the classification of a lost write knows about its round.
pub(super) struct LossCtx {
    kind: FaultKind,
    target_was_master: bool,
    t_fault: Instant,
    /// When the target's old process was gone (a restart), else `t_fault`.
    t_gone: Instant,
    t_restored: Instant,
    /// When the observer first saw the failover begin (a promotion recorded or another
    /// master published).
    failover_at: Option<Instant>,
    master_before: Option<u16>,
}

impl LossCtx {
    /// The context of `report`'s round: the fault at `t_fault`, over at `t_restored`, the
    /// failover seen beginning at `failover_at`.
    pub(super) fn new(
        report: &RoundReport,
        t_fault: Instant,
        t_gone: Instant,
        t_restored: Instant,
        failover_at: Option<Instant>,
    ) -> LossCtx {
        LossCtx {
            kind: report.fault,
            target_was_master: report.target_was_master,
            t_fault,
            t_gone,
            t_restored,
            failover_at,
            master_before: report.before.master,
        }
    }
}

/// Whether a lost write is the async-replication window of a master crash (`true`) or
/// unexpected, with the reason.
pub(super) fn classify(c: &LossCtx, ack: Option<&Ack>, seq: u64) -> (LostWrite, bool) {
    let Some(ack) = ack else {
        return (
            LostWrite {
                seq,
                sent_ms_from_fault: 0.0,
                acked_ms_from_fault: 0.0,
                via_port: None,
                why: "not in the writer's log".into(),
            },
            false,
        );
    };
    let rel = rel_ms(ack.at, c.t_fault);
    let old = c.master_before.map_or("?".to_string(), |p| format!(":{p}"));
    let (why, legit) = match (c.kind, c.target_was_master, c.failover_at) {
        // A restarted master answers as soon as it is up, before any manager can see its new
        // run_id (and before the harness's own PONG poll notices it: the boundary is the old
        // process gone, not the restart seen): what it acknowledges until the failover
        // reaches the client (a few tens of ms) goes when it is made a replica. Inherent to asynchronous replication, like the
        // window before a kill -9 (`min-replicas-to-write 1` on the nodes closes both).
        (FaultKind::Restart, true, Some(f))
            if ack.at >= c.t_gone && ack.sent <= f + RESTART_WINDOW_SLACK =>
        {
            (
                format!(
                    "acknowledged by the restarted master {old} {:.0} ms after the old process \
                     was gone, before the failover reached the client (restart window)",
                    ms(ack.at - c.t_gone)
                ),
                true,
            )
        }
        (FaultKind::Kill, true, _) if ack.at <= c.t_fault => (
            format!(
                "acknowledged {:.1} ms before the kill -9 of the master (async replication)",
                -rel
            ),
            true,
        ),
        (_, true, Some(f)) if ack.sent < f && ack.at > f => (
            format!(
                "sent to the master {old} before the failover began and acknowledged {:.0} ms \
                 after the observer saw it begin, by the deposed master's address ({}), which \
                 then became a replica and dropped it ({:.0} ms from send to acknowledgement)",
                ms(ack.at - f),
                match c.kind {
                    FaultKind::Freeze => "the frozen master, after SIGCONT",
                    FaultKind::Restart => "the old master, restarted as a master",
                    _ => "the old master",
                },
                ms(ack.at - ack.sent)
            ),
            false,
        ),
        (FaultKind::Restart, true, None) => (
            format!(
                "the master {old} was restarted ({:.0} ms from SIGTERM to the new process answering) \
                 and nobody failed over: it came back as master with an older data set (no \
                 persistence; the RDB of its last full sync at best) and the replicas resynced from it",
                ms(c.t_restored - c.t_fault)
            ),
            false,
        ),
        (kind, on_master, _) => (
            format!(
                "lost in a {kind} round ({} target), acknowledged {rel:+.1} ms from the fault",
                if on_master { "master" } else { "non-master" }
            ),
            false,
        ),
    };
    (
        LostWrite {
            seq,
            sent_ms_from_fault: rel_ms(ack.sent, c.t_fault),
            acked_ms_from_fault: rel,
            via_port: ack.node.as_ref().map(|n| n.port),
            why,
        },
        legit,
    )
}
