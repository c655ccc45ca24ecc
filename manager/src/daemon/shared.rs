//! What a group's loop reads from and writes to ZooKeeper besides acting: the published
//! topology, the pause switch, the history, the managers' views (its own written, the
//! others read for the vote) and the lock order. Every manager, leader or standby, does
//! this, and only for what the group's watch says changed: nothing is polled.

use std::time::Instant;

use redis_failover_client::wire::unix_ms;
use redis_failover_client::wire::{ManagerView, PauseInfo};
use redis_failover_client::NodeAddr;
use tracing::{debug, error, info, warn};

use super::GroupDaemon;
use crate::core::decide::{GroupState, Votes};
use crate::core::event_names::{
    CORRUPT_ZNODE, PAUSED, PAUSE_READ, RESUMED, VIEWS_READ, VIEW_PUBLISH, ZK_READ,
};
use crate::core::health::Status;
use crate::core::votes::{self, Verdict};
use crate::io::zk::{self, Changes, Leadership, Published};

impl GroupDaemon {
    /// A new term (or leadership resumed) believes nothing from before: it reads what is
    /// published and rediscovers. True when a cycle should follow.
    pub(super) async fn on_leadership(&mut self, leader: Option<Leadership>) -> bool {
        let term = |l: &Option<Leadership>| l.as_ref().map(|l| l.lock.lock_path().to_string());
        let new_term = leader.is_some() && term(&leader) != term(&self.leader);
        let resumed = leader.is_some() && self.leader.is_none();
        self.leader = leader;
        if self.leader.is_none() || new_term || resumed {
            // A held promotion is finished by whoever leads next, as a roll-forward that
            // waits for the fence again.
            self.held = None;
        }
        if new_term || resumed {
            self.state = GroupState::default();
            self.known.published_known = false;
            self.known.pause_known = false;
            self.refresh_published().await;
            self.sync(Changes::all()).await;
            return true;
        }
        false
    }

    /// The leader reads `<root>/nodes` (at a new term, and after a refused write).
    pub(super) async fn refresh_published(&mut self) {
        let Some(leader) = &self.leader else { return };
        let path = self.cfg.paths.nodes();
        match zk::read_published(&leader.client, &path).await {
            Ok(p) => {
                if let Published::Corrupt { error, .. } = &p {
                    error!(group = %self.cfg.name, "{CORRUPT_ZNODE} {path}: {error}; rebuilding it from discovery");
                }
                self.known.published = p;
                self.known.published_known = true;
            }
            Err(e) => warn!(group = %self.cfg.name, "{ZK_READ} {e}"),
        }
    }

    /// Re-reads what changed in ZooKeeper (as the group's watch says): the published
    /// topology (standbys: the leader knows what it wrote), the pause switch, the history,
    /// the managers' views, the lock order; a manual request is looked at by the next cycle.
    /// A failed read is marked changed again, for the next call.
    pub(super) async fn sync(&mut self, changes: Changes) {
        let Some(client) = self.session.borrow().clone() else {
            self.unsynced = Some(Changes::all());
            return;
        };
        let g = self.cfg.name.clone();
        let all = changes.everything;
        let mut retry = Changes::default();
        if (all || changes.nodes) && self.leader.is_none() {
            match zk::read_published(&client, &self.cfg.paths.nodes()).await {
                Ok(p) => self.known.published = p,
                Err(_) => retry.nodes = true,
            }
        }
        if all || changes.paused {
            match zk::read_pause(&client, &self.cfg.paths).await {
                Ok(p) => self.set_pause(p),
                Err(e) => {
                    debug!(group = %g, "{PAUSE_READ} {e}");
                    retry.paused = true;
                }
            }
        }
        if all || changes.manual {
            self.manual_pending = true;
        }
        // The events of this manager's own appends are not read again: it knows what it
        // wrote. Any other event (or a lost one) reads the history.
        if !all && changes.history <= self.known.history_appends {
            self.known.history_appends -= changes.history;
        } else {
            self.known.history_appends = 0;
            match zk::read_history(&client, &self.cfg.paths).await {
                Ok(h) => self.known.history = h,
                Err(_) => retry.history = 1,
            }
        }
        if all {
            match zk::read_views(&client, &self.cfg.paths).await {
                Ok(v) => self.known.views = v.into_iter().collect(),
                Err(e) => {
                    debug!(group = %g, "{VIEWS_READ} {e}");
                    retry.everything = true;
                }
            }
        } else {
            for id in changes.views {
                if id == self.manager_id {
                    continue;
                }
                match zk::read_view(&client, &self.cfg.paths, &id).await {
                    Ok(Some(v)) => {
                        self.known.views.insert(id, v);
                    }
                    Ok(None) => {
                        self.known.views.remove(&id);
                    }
                    Err(e) => {
                        debug!(group = %g, "{VIEWS_READ} {e}");
                        retry.views.insert(id);
                    }
                }
            }
        }
        if all || changes.lock {
            match zk::read_lock_order(&client, &self.cfg.paths).await {
                Ok(order) => self.known.managers_in_line = order,
                Err(_) => retry.lock = true,
            }
        }
        self.unsynced = (!retry.is_empty()).then_some(retry);
    }

    /// Takes a pause read from ZooKeeper, logging a change.
    fn set_pause(&mut self, p: Option<PauseInfo>) {
        let g = &self.cfg.name;
        if p != self.known.pause {
            match &p {
                Some(p) => {
                    warn!(group = %g, "{PAUSED} by {}: {}; no automatic failover until resumed", p.by, p.reason)
                }
                None if self.known.pause.is_some() => {
                    info!(group = %g, "{RESUMED}: automatic failover resumed")
                }
                None => {}
            }
        }
        self.known.pause = p;
        self.known.pause_known = true;
    }

    /// This manager's view of the group, as other managers (and operators) read it.
    pub(super) fn own_view(&self) -> ManagerView {
        let mut v = ManagerView {
            at_ms: unix_ms(),
            sentinel_addr: self.sentinel_addr.clone(),
            ..ManagerView::default()
        };
        for (addr, h) in &self.view {
            match h.status() {
                Status::Up => {
                    let ms = h.latency().map_or(0.0, |l| l.as_secs_f64() * 1000.0);
                    v.available
                        .insert(addr.clone(), (ms * 1000.0).round() / 1000.0);
                }
                Status::Down => v.unavailable.push(addr.clone()),
                Status::Unknown => {}
            }
        }
        v
    }

    /// Writes the own view to `<root>/manager_node_state/<id>` (ephemeral), leader or not:
    /// at once when `changed`, else every [`votes::VIEW_HEARTBEAT`] so that others can tell it is
    /// current.
    pub(super) async fn publish_view(&mut self, changed: bool) {
        let Some(client) = self.session.borrow().clone() else {
            return;
        };
        if changed {
            self.timers.view_published.now();
        }
        if !self.timers.view_published.due(Instant::now()) {
            return;
        }
        let path = self.cfg.paths.manager_node_state_of(&self.manager_id);
        let view = self.own_view();
        match zk::publish_view(&client, &self.cfg.paths, &path, &view, &self.acls).await {
            Ok(()) => {
                self.known.views.insert(self.manager_id.clone(), view);
            }
            Err(e) => {
                debug!(group = %self.cfg.name, "{VIEW_PUBLISH} {e}");
                // Soon again, not a heartbeat later: the others vote with it.
                self.timers.view_published.now();
            }
        }
    }

    /// The managers' verdict on every node (this manager's own probes included).
    pub(super) fn votes(&self) -> Votes {
        let now_ms = unix_ms();
        let vote = self.rules.vote;
        self.view
            .iter()
            .map(|(addr, h)| {
                let own = match h.status() {
                    Status::Down => Some(true),
                    Status::Up => Some(false),
                    Status::Unknown => None,
                };
                let ballots = votes::ballots_for(
                    addr,
                    &self.manager_id,
                    own,
                    &self.known.views,
                    now_ms,
                    vote.max_age,
                );
                (
                    addr.clone(),
                    votes::tally(vote.strategy, vote.required, &ballots),
                )
            })
            .collect()
    }

    /// How the managers voted on `node`, in words, for the history.
    pub(super) fn vote_text(&self, node: &NodeAddr) -> String {
        match self.votes().get(node) {
            Some(Verdict::Down(v) | Verdict::Up(v) | Verdict::Doubtful(v)) => v.clone(),
            None => "this manager's probes alone".to_string(),
        }
    }
}
