//! An operator's request in `<root>/manual_failover` (written by `redis_node_manager
//! failover`, `POST /failover`, `SENTINEL FAILOVER` or `Client::manual_failover`): the
//! leader judges it with the core's rule and carries it out through the one promotion
//! sequence — a switchover (`FAILOVER TO`, no write lost) while the master is up, a
//! promotion of the named replica while it is down — then deletes the request, or replaces
//! it with the refusal and its reason.

use std::time::{Duration, Instant};

use redis_failover_client::wire::ManualRequest;
use tracing::{info, warn};

use super::act::Outcome;
use super::{GroupDaemon, Next};
use crate::core::decide::roll_forward_hold;
use crate::core::event_names::{
    MANUAL_FAILOVER, MANUAL_FAILOVER_DONE, MANUAL_FAILOVER_ERROR, MANUAL_FAILOVER_REFUSED, ZK_READ,
};
use crate::core::manual::judge_manual;
use crate::core::promotion::{Kind, Promotion};
use crate::io::zk::{self, Leadership};

impl GroupDaemon {
    /// Carries out or refuses a pending request; `None` when there is none (or it could not
    /// be read), else what the loop should do next.
    pub(super) async fn manual_failover(&mut self, leader: &Leadership) -> Option<Next> {
        let g = self.cfg.name.clone();
        let path = self.cfg.paths.manual_failover();
        let (data, version) = match zk::read_manual(&leader.client, &path).await {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => {
                warn!(group = %g, "{ZK_READ} {e}");
                self.manual_pending = true;
                return None;
            }
        };
        let request = ManualRequest::parse(&data);
        if request == ManualRequest::Refused {
            return None;
        }
        let text = String::from_utf8_lossy(&data).trim().to_string();
        let master = self.state.master.clone()?;
        // Judged once the probes tell whether the master died, not before: while it fails
        // its probes (known within down-after, tens of milliseconds for a crash), and for
        // down-after after a switchover to it did not happen. Judged sooner, a request could
        // be refused for a replica link that is down only because the master is dying.
        let (master_up, failing) = self
            .view
            .get(&master)
            .map_or((false, false), |h| (h.is_up(), h.failing()));
        let retried_lately = self
            .manual_retried
            .is_some_and(|(v, at)| v == version && at.elapsed() < self.rules.down_after);
        if failing || (master_up && retried_lately) {
            self.manual_pending = true;
            return Some(Next::Soon);
        }
        let verdict = judge_manual(
            &self.state,
            &self.view,
            &request,
            Instant::now(),
            &self.rules.policy,
        );
        let target = match verdict {
            Ok(t) => t,
            Err(reason) => {
                warn!(group = %g, "{MANUAL_FAILOVER_REFUSED} {text}: {reason}");
                self.finish_manual(leader, &path, version, Some((&text, &reason)))
                    .await;
                return Some(Next::Idle);
            }
        };
        let master_up = self.view.get(&master).is_some_and(|h| h.is_up());
        let (kind, how, votes) = if master_up {
            let how = format!("switchover from {master} to {target}");
            (Kind::Switchover, how, String::new())
        } else {
            let how = format!("master down, promoting {target}");
            (Kind::Manual, how, self.vote_text(&master))
        };
        info!(group = %g, "{MANUAL_FAILOVER} {text}: {how}");
        let hold = match kind {
            Kind::Manual => roll_forward_hold(&self.view, &master, &self.rules.policy),
            _ => Duration::ZERO,
        };
        let plan = Promotion {
            kind,
            from: master,
            to: target.clone(),
            reason: format!("manual request {text}: {how}"),
            votes,
            hold,
        };
        let outcome = self.promote(leader, &plan).await;
        if matches!(outcome, Outcome::Promoted { .. }) {
            info!(group = %g, "{MANUAL_FAILOVER_DONE} {text}: {target} is master, epoch {}", self.state.epoch);
            self.finish_manual(leader, &path, version, None).await;
        } else if kind == Kind::Switchover && self.manual_retried.map(|(v, _)| v) != Some(version) {
            // The master may have died as the request came in (its probes had not told yet):
            // judged again once they tell (or after down-after), as a promotion if it is
            // down by then.
            warn!(group = %g, "{MANUAL_FAILOVER} {text}: the switchover did not happen; judging the request again");
            self.manual_retried = Some((version, Instant::now()));
            self.manual_pending = true;
        } else {
            let reason = format!("the promotion of {target} failed; see the manager's log");
            self.finish_manual(leader, &path, version, Some((&text, &reason)))
                .await;
        }
        Some(Next::Soon)
    }

    async fn finish_manual(
        &self,
        leader: &Leadership,
        path: &str,
        version: i32,
        refused: Option<(&str, &str)>,
    ) {
        if let Err(e) = zk::finish_manual(leader, path, version, refused).await {
            warn!(group = %self.cfg.name, "{MANUAL_FAILOVER_ERROR} {e}");
        }
    }
}
