//! An operator's manual failover request judged against the view: which replica it
//! promotes, or why it is refused.

use std::time::Instant;

use redis_failover_client::wire::ManualRequest;
use redis_failover_client::NodeAddr;

use super::decide::GroupState;
use super::derive::up_info;
use super::select::{select_replica, Policy};
use super::View;

/// Which replica a manual request promotes, or why it is refused. With the master up the
/// target must be a replica of it with its link up; with the master down the usual
/// candidate rules apply.
pub fn judge_manual(
    state: &GroupState,
    view: &View,
    request: &ManualRequest,
    now: Instant,
    policy: &Policy,
) -> Result<NodeAddr, String> {
    let Some(master) = &state.master else {
        return Err("no master is known yet".into());
    };
    let master_up = up_info(view, master).is_some_and(|i| i.is_master());
    match request {
        ManualRequest::Refused => Err("already refused".into()),
        ManualRequest::Invalid(e) => Err(e.clone()),
        ManualRequest::AnySlave => select_replica(view, master, now, policy)
            .map(|(w, _)| w.clone())
            .map_err(|e| format!("ANY_SLAVE: {e}")),
        ManualRequest::To(to) => {
            if to == master {
                return Err(format!("{to} already is the master"));
            }
            if !view.contains_key(to) {
                return Err(format!("{to} is not one of the configured nodes"));
            }
            let Some(info) = up_info(view, to) else {
                return Err(format!("{to} is down"));
            };
            if info.master() != Some(master) {
                return Err(format!("{to} is not a replica of the master {master}"));
            }
            if master_up && !info.link_up() {
                return Err(format!("{to} is not in sync with {master} (link down)"));
            }
            match select_replica(view, master, now, policy) {
                Err(e) => Err(format!("{to} may not be promoted: {e}")),
                Ok(_) => {
                    // Any ranked candidate may be named; the ranking only picks for ANY_SLAVE.
                    let mut one = View::new();
                    one.insert(master.clone(), view[master].clone());
                    one.insert(to.clone(), view[to].clone());
                    select_replica(&one, master, now, policy)
                        .map(|(w, _)| w.clone())
                        .map_err(|e| format!("{to} may not be promoted: {e}"))
                }
            }
        }
    }
}
