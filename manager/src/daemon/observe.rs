//! `--observe-only`: the group's loop decides as a leader would and logs what it would do
//! (`+would-promote <replica> to replace <master>: <the leader's reasons>`, `+would` for
//! anything else), but never leads: it takes no lock, sends no Redis command that changes a
//! role and writes nothing but its own view. For trying the manager next to a running
//! Sentinel before switching. Reading is allowed: offsets are refreshed as a leader would
//! before ranking replicas, so the replica named is the one a leader would promote.

use crate::core::decide::Decision;
use crate::core::event_names::{WOULD, WOULD_PROMOTE};

use super::{GroupDaemon, Next};

impl GroupDaemon {
    /// One decision as a leader's cycle takes it, on what this manager knows as a standby
    /// (the published topology and the pause, kept current by the group's watch).
    pub(super) async fn observe_cycle(&mut self) -> Next {
        let (decision, _) = self.decide_now();
        match decision {
            Decision::Steady => Next::Idle,
            Decision::Wait { .. } => {
                self.log_decision(&decision);
                Next::Soon
            }
            // What a leader believes, kept as its own (no write): the next decision is then
            // the one a leader would take.
            Decision::Adopt { master, epoch, .. } => {
                self.adopt(master, epoch, None);
                Next::Soon
            }
            Decision::Forget { .. } => {
                self.state.master = None;
                Next::Soon
            }
            Decision::RefreshOffsets { nodes, .. } => {
                self.refresh_offsets(&nodes).await;
                Next::Now
            }
            Decision::Failover {
                ref failed,
                ref winner,
                ..
            }
            | Decision::RollForward {
                ref failed,
                ref winner,
                ..
            } => {
                let line = format!("{WOULD_PROMOTE} {winner} to replace {failed}: {decision}");
                self.log_unrepeated(line, false);
                Next::Soon
            }
            other => {
                self.log_unrepeated(format!("{WOULD} {other}"), false);
                Next::Soon
            }
        }
    }
}
