//! What a group's loop reads from and writes to ZooKeeper besides acting: the published
//! topology, the pause switch, the history, the managers' views (its own written, the
//! others read for the vote) and the lock order. Every manager, leader or standby, does
//! this.

use std::time::{Duration, Instant};

use redis_failover_client::wire::unix_ms;
use redis_failover_client::wire::ManagerView;
use redis_failover_client::NodeAddr;
use tracing::{debug, error, info, warn};

use super::GroupDaemon;
use crate::core::decide::{GroupState, Votes};
use crate::core::event_names::{
    CORRUPT_ZNODE, PAUSED, PAUSE_READ, RESUMED, VIEWS_READ, VIEW_PUBLISH, ZK_READ,
};
use crate::core::health::Status;
use crate::core::votes::{self, Verdict};
use crate::io::zk::{self, Leadership, Published};

/// How often the leader reads the other managers' views (each cycle, but not in bursts).
pub(super) const VIEWS_READ_EVERY: Duration = Duration::from_millis(50);
/// How often every manager rewrites its view of the nodes (and at once on any change).
pub(super) const VIEW_EVERY: Duration = Duration::from_millis(500);

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
            self.read_shared(true).await;
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

    /// Reads what every manager shows operators: the published topology (standbys), the
    /// pause switch, and unless only the watched znodes changed (`nodes_changed`), the
    /// history, every manager's view and the lock order.
    pub(super) async fn read_shared(&mut self, nodes_changed: bool) {
        let Some(client) = self.session.borrow().clone() else {
            return;
        };
        let g = &self.cfg.name;
        // The leader knows what it wrote; a standby reads what the leader wrote.
        if self.leader.is_none() {
            if let Ok(p) = zk::read_published(&client, &self.cfg.paths.nodes()).await {
                self.known.published = p;
            }
        }
        match zk::read_pause(&client, &self.cfg.paths).await {
            Ok(p) => {
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
            Err(e) => debug!(group = %g, "{PAUSE_READ} {e}"),
        }
        if nodes_changed {
            return;
        }
        if let Ok(h) = zk::read_history(&client, &self.cfg.paths).await {
            self.known.history = h;
        }
        if let Ok(v) = zk::read_views(&client, &self.cfg.paths).await {
            self.known.all_views = v.into_iter().collect();
        }
        if let Ok(order) = zk::read_lock_order(&client, &self.cfg.paths).await {
            self.known.managers_in_line = order;
        }
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

    /// Writes the own view to `<root>/manager_node_state/<id>` (ephemeral) every
    /// [`VIEW_EVERY`], leader or not.
    pub(super) async fn publish_view(&mut self) {
        let Some(client) = self.session.borrow().clone() else {
            return;
        };
        if !self.timers.view_published.due(Instant::now()) {
            return;
        }
        self.read_shared(false).await;
        let path = self.cfg.paths.manager_node_state_of(&self.manager_id);
        if let Err(e) = zk::publish_view(&client, &self.cfg.paths, &path, &self.own_view()).await {
            debug!(group = %self.cfg.name, "{VIEW_PUBLISH} {e}");
        }
    }

    /// The leader reads the other managers' views for the vote (not in bursts).
    pub(super) async fn read_views(&mut self, leader: &Leadership) {
        if !self.timers.views_read.due(Instant::now()) {
            return;
        }
        match zk::read_views(&leader.client, &self.cfg.paths).await {
            Ok(v) => self.known.views = v,
            Err(e) => debug!(group = %self.cfg.name, "{VIEWS_READ} {e}"),
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
