//! One group's loop: probe observations update the view; while this manager leads, each
//! cycle asks `decide` for one decision, logs it in one line, and acts on it (the only place
//! where decisions meet I/O). Standby managers keep probing so that they can take over with
//! a warm view.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use std::sync::Arc;

use redis_failover_client::{FailoverRecord, NodeAddr, PauseInfo, Topology};
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::config::GroupConfig;
use crate::core::decide::{decide, Decision, GroupState, Votes};
use crate::core::derive::derive_topology;
use crate::core::health::Status;
use crate::core::health::{NodeHealth, Transition};
use crate::core::info::NodeInfo;
use crate::core::manual::judge_manual;
use crate::core::select::Policy;
use crate::core::votes::{self, Strategy};
use crate::core::View;
use crate::front::metrics::GroupMetrics;
use crate::front::snapshot::{GroupSettings, GroupSnapshot, NodeReport};
use crate::io::node::{self, Connector};
use crate::io::probe::{self, NodeProbe, Observation, ProbeResult, ProbeSettings};
use crate::io::zk::{self, Leadership, Published};
use redis_failover_client::wire::{unix_ms, FailoverKind, ManualRequest};
use redis_failover_client::ManagerView;

/// How often the leader re-checks when nothing happens.
const TICK: Duration = Duration::from_millis(100);
/// How often the leader reads the other managers' views (each cycle, but not in bursts).
const VIEWS_READ_EVERY: Duration = Duration::from_millis(50);
/// How often every manager rewrites its view of the nodes (and at once on any change).
const VIEW_EVERY: Duration = Duration::from_millis(500);

/// How often the leader looks for a request in `<root>/manual_failover`.
const MANUAL_CHECK_EVERY: Duration = Duration::from_millis(250);
/// How long a planned switchover may pause writers while the target catches up.
const SWITCHOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// How often configured host names are resolved again.
const RESOLVE_EVERY: Duration = Duration::from_secs(30);
/// Bound on the fresh `INFO` read from candidates right before a promotion.
const REFRESH_TIMEOUT: Duration = Duration::from_millis(300);
/// The same waiting reason is logged again after this long.
const REPEAT_LOG: Duration = Duration::from_secs(30);
/// How many failovers `<root>/failover_history` keeps.
pub const HISTORY_LEN: usize = 20;

/// Explicit failover progress, logged as it advances (Sentinel's `failover-state-*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FailoverState {
    SelectReplica,
    Promote,
    ReconfReplicas,
    Publish,
}

/// The tunables of a group's decisions.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub max_failures: u32,
    /// `--down-after-ms`, reported to operators.
    pub down_after: Duration,
    pub policy: Policy,
    pub vote: VoteSettings,
}

/// How the leader combines managers' views.
#[derive(Clone, Copy, Debug)]
pub struct VoteSettings {
    pub strategy: Strategy,
    pub required: usize,
    /// A view older than this counts as absent.
    pub max_age: Duration,
}

pub struct GroupDaemon {
    cfg: GroupConfig,
    manager_id: String,
    max_failures: u32,
    connector: Connector,
    view: View,
    probes: BTreeMap<NodeAddr, NodeProbe>,
    state: GroupState,
    published: Published,
    leader: Option<Leadership>,
    last_log: Option<(String, Instant)>,
    /// `ip:port` -> configured `host:port`, so that a replica reporting its master by IP is
    /// matched with a node configured by name.
    aliases: BTreeMap<NodeAddr, NodeAddr>,
    aliases_at: Option<Instant>,
    policy: Policy,
    last_manual_check: Option<Instant>,
    /// Other managers' views (read by the leader) and how to combine them.
    views: Vec<(String, ManagerView)>,
    last_views_read: Option<Instant>,
    last_view_published: Option<Instant>,
    vote: VoteSettings,
    session: watch::Receiver<Option<zookeeper_client::Client>>,
    /// What the HTTP endpoint shows.
    snapshot: watch::Sender<GroupSnapshot>,
    /// `published` was read in the current term (a decision on a previous term's copy could
    /// undo what another leader did meanwhile).
    published_known: bool,
    /// `<root>/paused` as last read (every manager reads it).
    pause: Option<PauseInfo>,
    /// `pause` was read in the current term: no failover on a stale answer.
    pause_known: bool,
    /// `<root>/failover_history` as last read.
    history: Vec<FailoverRecord>,
    /// Every live manager's view and the lock order, for operators.
    all_views: BTreeMap<String, ManagerView>,
    managers_in_line: Vec<String>,
    settings: GroupSettings,
    /// Poked when `<root>/nodes` or `<root>/paused` changes (a ZooKeeper watch), so that
    /// standbys show a new topology at once and the leader sees a pause at once.
    changed: Arc<Notify>,
    metrics: Option<Arc<GroupMetrics>>,
    /// This manager's Sentinel-protocol address, announced in its view.
    sentinel_addr: Option<NodeAddr>,
}

impl GroupDaemon {
    pub fn new(
        cfg: GroupConfig,
        manager_id: String,
        rules: Rules,
        session: watch::Receiver<Option<zookeeper_client::Client>>,
        snapshot: watch::Sender<GroupSnapshot>,
        connector: Connector,
    ) -> Self {
        let Rules {
            max_failures,
            down_after,
            policy,
            vote,
        } = rules;
        let settings = GroupSettings {
            max_failures,
            down_after_ms: down_after.as_millis() as u64,
            node_strategy: vote.strategy.to_string(),
            required_node_managers: vote.required,
        };
        let view = cfg
            .nodes
            .iter()
            .map(|n| (n.clone(), NodeHealth::new()))
            .collect();
        Self {
            cfg,
            manager_id,
            max_failures,
            connector,
            view,
            probes: BTreeMap::new(),
            state: GroupState::default(),
            published: Published::Missing,
            leader: None,
            last_log: None,
            aliases: BTreeMap::new(),
            aliases_at: None,
            policy,
            last_manual_check: None,
            views: Vec::new(),
            last_views_read: None,
            last_view_published: None,
            vote,
            session,
            snapshot,
            published_known: false,
            pause: None,
            pause_known: false,
            history: Vec::new(),
            all_views: BTreeMap::new(),
            managers_in_line: Vec::new(),
            settings,
            changed: Arc::new(Notify::new()),
            metrics: None,
            sentinel_addr: None,
        }
    }

    /// Announces where this manager answers the Sentinel protocol.
    pub fn with_sentinel_addr(mut self, addr: Option<NodeAddr>) -> Self {
        self.sentinel_addr = addr;
        self
    }

    /// Feeds probe latencies and failover counts to `/metrics`.
    pub fn with_metrics(mut self, metrics: Arc<GroupMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// What HTTP, the Sentinel endpoint and metrics show of this group.
    fn snapshot(&self) -> GroupSnapshot {
        let master = self
            .published
            .topology()
            .and_then(|t| t.master.clone())
            .or_else(|| self.state.master.clone());
        let master_offset = master
            .as_ref()
            .and_then(|m| self.view.get(m))
            .filter(|h| h.is_up())
            .and_then(|h| h.info())
            .filter(|i| i.is_master())
            .map(|i| i.offset);
        let now = Instant::now();
        let nodes = self
            .view
            .iter()
            .map(|(addr, h)| {
                let info = h.info();
                let report = NodeReport {
                    status: match h.status() {
                        Status::Up => "up",
                        Status::Down => "down",
                        Status::Unknown => "unknown",
                    }
                    .to_string(),
                    role: info
                        .map(|i| if i.is_master() { "master" } else { "replica" }.to_string()),
                    master: info.and_then(|i| i.master().cloned()),
                    link_up: info.is_some_and(|i| i.link_up()),
                    offset: info.map(|i| i.offset),
                    lag_bytes: match (info, master_offset) {
                        (Some(i), Some(mo)) if !i.is_master() && i.master() == master.as_ref() => {
                            Some(mo.saturating_sub(i.offset))
                        }
                        _ => None,
                    },
                    priority: info.map(|i| i.priority),
                    latency_ms: h.latency().map(|l| l.as_secs_f64() * 1000.0),
                    consecutive_failures: h.consecutive_failures(),
                    last_ok_ms_ago: h
                        .last_ok()
                        .map(|t| now.saturating_duration_since(t).as_millis() as u64),
                    down_for_ms: h
                        .down_since()
                        .map(|t| now.saturating_duration_since(t).as_millis() as u64),
                    last_error: h.last_error().map(str::to_string),
                };
                (addr.clone(), report)
            })
            .collect();
        GroupSnapshot {
            name: self.cfg.name.clone(),
            znode_path: self.cfg.paths.root().to_string(),
            leader: self.leader.is_some(),
            topology: self.published.topology().cloned(),
            view: self.own_view(),
            nodes,
            views: self.all_views.clone(),
            managers_in_line: self.managers_in_line.clone(),
            paused: self.pause.clone(),
            history: self.history.clone(),
            settings: self.settings.clone(),
        }
    }

    /// Resolves configured host names (bounded; again every [`RESOLVE_EVERY`], so that a DNS
    /// failure at start or a moved name heals), for matching replicas' reports.
    async fn resolve_aliases(&mut self) {
        if self.aliases_at.is_some_and(|t| t.elapsed() < RESOLVE_EVERY) {
            return;
        }
        self.aliases_at = Some(Instant::now());
        for node in &self.cfg.nodes {
            let lookup = tokio::net::lookup_host((node.host.as_str(), node.port));
            if let Ok(Ok(addrs)) = tokio::time::timeout(Duration::from_secs(2), lookup).await {
                for a in addrs {
                    let ip = NodeAddr::new(a.ip().to_string(), a.port());
                    if ip != *node {
                        self.aliases.entry(ip).or_insert_with(|| node.clone());
                    }
                }
            }
        }
    }

    /// A replica's reported master, named as configured.
    fn canonical(&self, mut info: NodeInfo) -> NodeInfo {
        if let crate::core::info::Role::Replica { master, .. } = &mut info.role {
            if let Some(configured) = self.aliases.get(master) {
                *master = configured.clone();
            }
        }
        info
    }

    pub async fn run(
        mut self,
        settings: ProbeSettings,
        mut leadership: watch::Receiver<Option<Leadership>>,
        shutdown: CancellationToken,
    ) {
        self.resolve_aliases().await;
        let (tx, mut rx) = mpsc::channel::<Observation>(1024);
        for node in &self.cfg.nodes {
            let p = probe::spawn(node.clone(), settings.clone(), tx.clone(), shutdown.clone());
            self.probes.insert(node.clone(), p);
        }
        drop(tx);
        let watcher = tokio::spawn(zk::watch_changes(
            self.session.clone(),
            vec![self.cfg.paths.nodes(), self.cfg.paths.paused()],
            Vec::new(),
            self.changed.clone(),
            shutdown.clone(),
        ));
        // Another manager's view changing (it saw a node go down) matters to the leader's
        // vote at once, not at its next tick.
        let views_changed = Arc::new(Notify::new());
        let views_watcher = tokio::spawn(zk::watch_changes(
            self.session.clone(),
            Vec::new(),
            vec![self.cfg.paths.manager_node_state()],
            views_changed.clone(),
            shutdown.clone(),
        ));
        let changed = self.changed.clone();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut again = false;
        loop {
            // Probe ages change on every pass, so there is no unchanged snapshot to skip.
            self.snapshot.send_replace(self.snapshot());
            if again {
                // Decide on everything the probes have said so far.
                while let Ok(obs) = rx.try_recv() {
                    self.observe(obs);
                }
                self.resolve_aliases().await;
                again = self.cycle().await;
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                changed = leadership.changed() => {
                    if changed.is_err() { break; }
                    let now_leader = leadership.borrow_and_update().clone();
                    again = self.on_leadership(now_leader).await;
                }
                obs = rx.recv() => match obs {
                    Some(obs) => {
                        if self.observe(obs) {
                            // Other managers vote with this view: tell them at once.
                            self.last_view_published = None;
                            self.publish_view().await;
                            again = true;
                        }
                    }
                    None => break,
                },
                _ = changed.notified() => {
                    self.read_shared(true).await;
                    again = true;
                }
                _ = views_changed.notified() => {
                    if self.leader.is_some() {
                        self.last_views_read = None;
                        again = true;
                    }
                }
                _ = tick.tick() => {
                    self.publish_view().await;
                    again = true;
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), watcher).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), views_watcher).await;
        for (_, p) in std::mem::take(&mut self.probes) {
            for t in p.tasks {
                let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
            }
        }
        debug!(group = %self.cfg.name, "group loop ended");
    }

    /// Applies one probe result; true when a node changed state (worth a cycle now).
    fn observe(&mut self, obs: Observation) -> bool {
        let result = match obs.result {
            ProbeResult::Ok { info, latency } => ProbeResult::Ok {
                info: info.map(|i| self.canonical(i)),
                latency,
            },
            other => other,
        };
        let Some(h) = self.view.get_mut(&obs.node) else {
            return false;
        };
        let t = match result {
            ProbeResult::Ok { info, latency } => {
                if let (Some(m), Some(l)) = (&self.metrics, latency) {
                    m.observe_latency(&obs.node, l);
                }
                h.on_success(obs.at, info, latency)
            }
            ProbeResult::Restarted { run_id } => {
                warn!(group = %self.cfg.name, "+reboot {}: answers with a new run_id {run_id}", obs.node);
                h.on_restart();
                return true;
            }
            ProbeResult::Failed(e) => {
                // Once per streak, not once per probe.
                if e.is_config_mistake() && h.consecutive_failures() == 0 {
                    warn!(group = %self.cfg.name, "-probe-error {}: {e}", obs.node);
                }
                h.on_failure(obs.at, &e.to_string(), self.max_failures)
            }
        };
        match t {
            Some(Transition::Down { reason }) => {
                warn!(group = %self.cfg.name, "+sdown {}: {reason}", obs.node);
                true
            }
            Some(Transition::Up { was_down }) => {
                let role = match h.info() {
                    Some(i) if i.is_master() => "master".to_string(),
                    Some(i) => format!(
                        "replica of {}",
                        i.master().map_or("?".into(), |m| m.to_string())
                    ),
                    None => "?".to_string(),
                };
                if was_down {
                    info!(group = %self.cfg.name, "-sdown {}: answers again as {role}", obs.node);
                } else {
                    info!(group = %self.cfg.name, "+monitor {}: up as {role}", obs.node);
                }
                true
            }
            None => false,
        }
    }

    async fn on_leadership(&mut self, leader: Option<Leadership>) -> bool {
        let term = |l: &Option<Leadership>| l.as_ref().map(|l| l.lock.lock_path().to_string());
        let new_term = leader.is_some() && term(&leader) != term(&self.leader);
        let resumed = leader.is_some() && self.leader.is_none();
        self.leader = leader;
        if new_term || resumed {
            // Believe nothing from before: read what is published, rediscover.
            self.state = GroupState::default();
            self.published_known = false;
            self.pause_known = false;
            self.refresh_published().await;
            self.read_shared(true).await;
            return true;
        }
        false
    }

    async fn refresh_published(&mut self) {
        let Some(leader) = &self.leader else { return };
        let path = self.cfg.paths.nodes();
        match zk::read_published(&leader.client, &path).await {
            Ok(p) => {
                if let Published::Corrupt { error, .. } = &p {
                    error!(group = %self.cfg.name, "-corrupt-znode {path}: {error}; rebuilding it from discovery");
                }
                self.published = p;
                self.published_known = true;
            }
            Err(e) => warn!(group = %self.cfg.name, "-zk-read {e}"),
        }
    }

    fn log_decision(&mut self, d: &Decision) {
        let line = d.to_string();
        match d {
            Decision::Steady => {}
            Decision::Wait { .. } | Decision::NoCandidate { .. } => {
                let repeat = self
                    .last_log
                    .as_ref()
                    .is_some_and(|(l, at)| *l == line && at.elapsed() < REPEAT_LOG);
                if !repeat {
                    warn!(group = %self.cfg.name, "{line}");
                    self.last_log = Some((line, Instant::now()));
                }
            }
            _ => {
                info!(group = %self.cfg.name, "{line}");
                self.last_log = None;
            }
        }
    }

    /// One decision and its action; true when another cycle should follow at once.
    async fn cycle(&mut self) -> bool {
        let Some(leader) = self.leader.clone() else {
            return false;
        };
        if !self.published_known {
            self.refresh_published().await;
            if !self.published_known {
                return false;
            }
        }
        if !self.pause_known {
            self.read_shared(true).await;
            if !self.pause_known {
                return false;
            }
        }
        if self.state.master.is_some()
            && self
                .last_manual_check
                .is_none_or(|t| t.elapsed() >= MANUAL_CHECK_EVERY)
        {
            self.last_manual_check = Some(Instant::now());
            if let Some(again) = self.manual_failover(&leader).await {
                return again;
            }
        }
        if self
            .last_views_read
            .is_none_or(|t| t.elapsed() >= VIEWS_READ_EVERY)
        {
            self.last_views_read = Some(Instant::now());
            self.read_views(&leader).await;
        }
        self.state.paused = self.pause.clone();
        let decide_now = |d: &Self| {
            decide(
                &d.state,
                &d.view,
                d.published.topology(),
                &d.votes(),
                Instant::now(),
                &d.policy,
            )
        };
        let mut decision = decide_now(self);
        if matches!(decision, Decision::Failover { .. }) {
            // Rank on offsets read now, not up to a poll interval ago.
            self.refresh_replicas().await;
            decision = decide_now(self);
        }
        self.log_decision(&decision);
        match decision {
            Decision::Steady | Decision::Wait { .. } => false,
            Decision::Adopt { master, epoch, .. } => {
                // An unreadable znode lost its epoch; every earlier epoch took a write, so
                // its version bounds them all.
                let floor = match &self.published {
                    Published::Corrupt { version, .. } => *version as u64 + 1,
                    _ => 0,
                };
                self.state = GroupState {
                    master_restarts: self.restarts_of(&master),
                    master: Some(master),
                    epoch: epoch.max(floor),
                    paused: self.pause.clone(),
                };
                true
            }
            Decision::Forget { .. } => {
                self.state.master = None;
                true
            }
            Decision::Publish { topology, .. } => {
                self.publish(&leader, topology).await;
                false
            }
            Decision::NoCandidate { failed, .. } | Decision::Paused { failed, .. } => {
                // A restarted master nobody can (or may) replace stays the master: its
                // restart is then history, not a reason to fail over later.
                if self.view.get(&failed).is_some_and(|h| h.is_up())
                    && self.restarts_of(&failed) > self.state.master_restarts
                {
                    warn!(group = %self.cfg.name, "-reboot-kept {failed}: restarted, but no replica may replace it; keeping it as the master");
                    self.state.master_restarts = self.restarts_of(&failed);
                }
                let mut t = derive_topology(Some(&failed), self.state.epoch, &self.view);
                t.paused = self.pause.clone();
                if !self
                    .published
                    .topology()
                    .is_some_and(|p| p.same_content(&t))
                {
                    self.publish(&leader, t).await;
                }
                false
            }
            Decision::Reconfigure { nodes, master, .. } => {
                if !leader.confirm().await {
                    warn!(group = %self.cfg.name, "-leader-unconfirmed: not re-pointing {nodes:?}");
                    return false;
                }
                self.reconfigure(&nodes, &master).await;
                true
            }
            Decision::Failover {
                failed,
                winner,
                reason,
            } => {
                let why = Why::new(FailoverKind::Failover, reason, self.vote_text(&failed));
                self.failover(&leader, failed, winner, true, why).await
            }
            Decision::RollForward {
                failed,
                winner,
                reason,
            } => {
                let why = Why::new(FailoverKind::Failover, reason, self.vote_text(&failed));
                self.failover(&leader, failed, winner, false, why).await
            }
        }
    }

    async fn failover(
        &mut self,
        leader: &Leadership,
        failed: NodeAddr,
        winner: NodeAddr,
        promote: bool,
        why: Why,
    ) -> bool {
        let g = self.cfg.name.clone();
        let started = Instant::now();
        let mut step = FailoverState::SelectReplica;
        // The gate: no change to Redis until a lock-checked write to ZooKeeper has recorded
        // which node is being promoted, so that a leader taking over finishes this promotion
        // and no other.
        if promote {
            let mut intent = derive_topology(Some(&failed), self.state.epoch, &self.view);
            intent.promoting = Some(winner.clone());
            if !self.publish(leader, intent).await {
                warn!(group = %g, "-failover-abort-not-leader: could not record the promotion of {winner} in ZooKeeper; not promoting");
                return false;
            }
        } else if !leader.confirm().await {
            warn!(group = %g, "-failover-abort-not-leader: cannot confirm the lock in ZooKeeper; not adopting {winner}");
            return false;
        }
        step = advance(&g, step, FailoverState::Promote);
        let promoted = if promote {
            node::promote(&self.connector, &winner).await
        } else {
            node::check_master(&self.connector, &winner).await
        };
        let info = match promoted {
            Ok(info) => info,
            Err(e) => {
                error!(group = %g, "-failover-abort-promote-failed {winner}: {e}; state: master {failed} down, {winner} recorded as being promoted, role unknown; retrying on the next cycle");
                return false;
            }
        };
        self.set_info(&winner, info);
        info!(group = %g, "+promoted {winner}: answers ROLE master after {} ms", started.elapsed().as_millis());
        self.state = GroupState {
            master: Some(winner.clone()),
            epoch: self.state.epoch + 1,
            paused: self.pause.clone(),
            master_restarts: self.restarts_of(&winner),
        };
        if !leader.confirm().await {
            warn!(group = %g, "-leader-unconfirmed: {winner} is master (epoch {}), not re-pointing the others; the next leader finishes", self.state.epoch);
            return false;
        }
        step = advance(&g, step, FailoverState::ReconfReplicas);
        let others: Vec<NodeAddr> = self
            .view
            .iter()
            .filter(|(a, h)| **a != winner && **a != failed && h.is_up())
            .map(|(a, _)| a.clone())
            .collect();
        self.reconfigure(&others, &winner).await;
        advance(&g, step, FailoverState::Publish);
        let topology = derive_topology(Some(&winner), self.state.epoch, &self.view);
        if self.publish(leader, topology).await {
            info!(
                group = %g,
                "+switch-master {} {} {} {} {} epoch {} in {} ms",
                g, failed.host, failed.port, winner.host, winner.port, self.state.epoch,
                started.elapsed().as_millis()
            );
            self.record(leader, why, failed, winner, started).await;
        } else {
            error!(group = %g, "-switch-master-unpublished: {winner} is master in Redis (epoch {}) but the znode is not updated yet; retrying", self.state.epoch);
        }
        true
    }

    /// This manager's view of the group, as other managers (and operators) read it.
    fn own_view(&self) -> ManagerView {
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
    async fn publish_view(&mut self) {
        if self
            .last_view_published
            .is_some_and(|t| t.elapsed() < VIEW_EVERY)
        {
            return;
        }
        let Some(client) = self.session.borrow().clone() else {
            return;
        };
        self.last_view_published = Some(Instant::now());
        self.read_shared(false).await;
        let path = self.cfg.paths.manager_node_state_of(&self.manager_id);
        if let Err(e) = zk::publish_view(&client, &self.cfg.paths, &path, &self.own_view()).await {
            debug!(group = %self.cfg.name, "-view-publish {e}");
        }
    }

    async fn read_views(&mut self, leader: &Leadership) {
        match zk::read_views(&leader.client, &self.cfg.paths).await {
            Ok(v) => self.views = v,
            Err(e) => debug!(group = %self.cfg.name, "-views-read {e}"),
        }
    }

    /// The managers' verdict on every node (this manager's own probes included).
    fn votes(&self) -> Votes {
        let now_ms = unix_ms();
        let max_age = self.vote.max_age;
        self.view
            .iter()
            .map(|(addr, h)| {
                let own = match h.status() {
                    Status::Down => Some(true),
                    Status::Up => Some(false),
                    Status::Unknown => None,
                };
                let ballots =
                    votes::ballots_for(addr, &self.manager_id, own, &self.views, now_ms, max_age);
                (
                    addr.clone(),
                    votes::tally(self.vote.strategy, self.vote.required, &ballots),
                )
            })
            .collect()
    }

    /// Carries out or refuses a pending manual failover request; `None` when there is none
    /// (or it could not be read), else whether another cycle should follow at once.
    async fn manual_failover(&mut self, leader: &Leadership) -> Option<bool> {
        let g = self.cfg.name.clone();
        let path = self.cfg.paths.manual_failover();
        let (data, version) = match zk::read_manual(&leader.client, &path).await {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => {
                warn!(group = %g, "-zk-read {e}");
                return None;
            }
        };
        let request = ManualRequest::parse(&data);
        if request == ManualRequest::Refused {
            return None;
        }
        let text = String::from_utf8_lossy(&data).trim().to_string();
        let master = self.state.master.clone()?;
        let target = match judge_manual(
            &self.state,
            &self.view,
            &request,
            Instant::now(),
            &self.policy,
        ) {
            Ok(t) => t,
            Err(reason) => {
                warn!(group = %g, "-manual-failover-refused {text}: {reason}");
                if let Err(e) =
                    zk::finish_manual(leader, &path, version, Some((&text, &reason))).await
                {
                    warn!(group = %g, "-manual-failover {e}");
                }
                return Some(false);
            }
        };
        let master_up = self.view.get(&master).is_some_and(|h| h.is_up());
        let how = if master_up {
            format!("switchover from {master} to {target}")
        } else {
            format!("master down, promoting {target}")
        };
        info!(group = %g, "+manual-failover {text}: {how}");
        let done = if master_up {
            let why = Why::new(
                FailoverKind::Switchover,
                format!("manual request {text}: {how}"),
                String::new(),
            );
            self.switchover(leader, master, target.clone(), why).await
        } else {
            let why = Why::new(
                FailoverKind::Manual,
                format!("manual request {text}: {how}"),
                self.vote_text(&master),
            );
            self.failover(leader, master, target.clone(), true, why)
                .await
                && self.state.master.as_ref() == Some(&target)
        };
        if done {
            info!(group = %g, "+manual-failover-done {text}: {target} is master, epoch {}", self.state.epoch);
            if let Err(e) = zk::finish_manual(leader, &path, version, None).await {
                warn!(group = %g, "-manual-failover {e}");
            }
        } else {
            let reason = format!("the promotion of {target} failed; see the manager's log");
            if let Err(e) = zk::finish_manual(leader, &path, version, Some((&text, &reason))).await
            {
                warn!(group = %g, "-manual-failover {e}");
            }
        }
        Some(true)
    }

    /// A planned switchover from a live master (`FAILOVER TO`): writers pause until `target`
    /// has every acknowledged write, so none is lost. True when `target` is master.
    async fn switchover(
        &mut self,
        leader: &Leadership,
        master: NodeAddr,
        target: NodeAddr,
        why: Why,
    ) -> bool {
        let g = self.cfg.name.clone();
        let started = Instant::now();
        let mut intent = derive_topology(Some(&master), self.state.epoch, &self.view);
        intent.promoting = Some(target.clone());
        if !self.publish(leader, intent).await {
            warn!(group = %g, "-switchover-abort-not-leader: could not record the switchover to {target}");
            return false;
        }
        match node::switchover(&self.connector, &master, &target, SWITCHOVER_TIMEOUT).await {
            Ok(info) => self.set_info(&target, info),
            Err(e) => {
                error!(group = %g, "-switchover-failed {master} -> {target}: {e}; {master} stays master");
                return false;
            }
        }
        info!(group = %g, "+promoted {target}: master after FAILOVER TO in {} ms", started.elapsed().as_millis());
        self.state = GroupState {
            master: Some(target.clone()),
            epoch: self.state.epoch + 1,
            paused: self.pause.clone(),
            master_restarts: self.restarts_of(&target),
        };
        if !leader.confirm().await {
            warn!(group = %g, "-leader-unconfirmed: {target} is master (epoch {}), not re-pointing the others", self.state.epoch);
            return true;
        }
        let others: Vec<NodeAddr> = self
            .view
            .iter()
            .filter(|(a, h)| **a != target && h.is_up())
            .map(|(a, _)| a.clone())
            .collect();
        self.reconfigure(&others, &target).await;
        let topology = derive_topology(Some(&target), self.state.epoch, &self.view);
        if self.publish(leader, topology).await {
            info!(
                group = %g,
                "+switch-master {} {} {} {} {} epoch {} in {} ms (switchover)",
                g, master.host, master.port, target.host, target.port, self.state.epoch,
                started.elapsed().as_millis()
            );
            self.record(leader, why, master, target, started).await;
        }
        true
    }

    async fn reconfigure(&mut self, nodes: &[NodeAddr], master: &NodeAddr) {
        let g = self.cfg.name.clone();
        let calls = nodes.iter().map(|n| {
            let connector = self.connector.clone();
            let n = n.clone();
            let master = master.clone();
            async move {
                let r = node::replicaof(&connector, &n, &master).await;
                (n, r)
            }
        });
        for (n, r) in futures::future::join_all(calls).await {
            match r {
                Ok(info) => {
                    info!(group = %g, "+reconf-replica {n}: REPLICAOF {master} sent");
                    self.set_info(&n, info);
                }
                Err(e) => {
                    warn!(group = %g, "-reconf-replica-failed {n}: REPLICAOF {master}: {e}; retrying on a later cycle")
                }
            }
            if let Some(p) = self.probes.get(&n) {
                p.poke.notify_one();
            }
        }
    }

    /// Reads `INFO replication` from every live node but the master, at once, within
    /// [`REFRESH_TIMEOUT`]; a node that does not answer keeps its last known state.
    async fn refresh_replicas(&mut self) {
        let targets: Vec<NodeAddr> = self
            .view
            .iter()
            .filter(|(a, h)| Some(*a) != self.state.master.as_ref() && h.is_up())
            .map(|(a, _)| a.clone())
            .collect();
        let reads = targets.into_iter().map(|n| {
            let connector = self.connector.clone();
            async move {
                let r = tokio::time::timeout(REFRESH_TIMEOUT, async {
                    let mut c = connector
                        .connect(&n, REFRESH_TIMEOUT, Some(REFRESH_TIMEOUT))
                        .await?;
                    node::read_info(&mut c).await
                })
                .await;
                (n, r)
            }
        });
        for (n, r) in futures::future::join_all(reads).await {
            if let Ok(Ok(info)) = r {
                self.set_info(&n, info);
            }
        }
    }

    fn set_info(&mut self, addr: &NodeAddr, info: NodeInfo) {
        let info = self.canonical(info);
        if let Some(h) = self.view.get_mut(addr) {
            h.on_success(Instant::now(), Some(info), None);
        }
    }

    fn restarts_of(&self, node: &NodeAddr) -> u64 {
        self.view.get(node).map_or(0, |h| h.restarts())
    }

    /// How the managers voted on `node`, in words, for the history.
    fn vote_text(&self, node: &NodeAddr) -> String {
        match self.votes().get(node) {
            Some(votes::Verdict::Down(v) | votes::Verdict::Up(v) | votes::Verdict::Doubtful(v)) => {
                v.clone()
            }
            None => "this manager's probes alone".to_string(),
        }
    }

    /// Appends a finished failover to `<root>/failover_history` and counts it.
    async fn record(
        &mut self,
        leader: &Leadership,
        why: Why,
        from: NodeAddr,
        to: NodeAddr,
        started: Instant,
    ) {
        let record = FailoverRecord {
            at_ms: unix_ms(),
            kind: why.kind,
            reason: why.reason,
            from,
            to,
            duration_ms: started.elapsed().as_millis() as u64,
            votes: why.votes,
            epoch: self.state.epoch,
            manager: self.manager_id.clone(),
        };
        if let Some(m) = &self.metrics {
            m.failover_done();
        }
        match zk::append_history(&leader.client, &self.cfg.paths, &record, HISTORY_LEN).await {
            Ok(history) => self.history = history,
            Err(e) => warn!(group = %self.cfg.name, "-history-write {e}"),
        }
    }

    /// Reads what every manager shows operators: the published topology (standbys), the
    /// pause switch, and unless only the watched znodes changed (`nodes_changed`), the
    /// history, every manager's view and the lock order.
    async fn read_shared(&mut self, nodes_changed: bool) {
        let Some(client) = self.session.borrow().clone() else {
            return;
        };
        // The leader knows what it wrote; a standby reads what the leader wrote.
        if self.leader.is_none() {
            if let Ok(p) = zk::read_published(&client, &self.cfg.paths.nodes()).await {
                self.published = p;
            }
        }
        match zk::read_pause(&client, &self.cfg.paths).await {
            Ok(p) => {
                if p != self.pause {
                    match &p {
                        Some(p) => {
                            warn!(group = %self.cfg.name, "+paused by {}: {}; no automatic failover until resumed", p.by, p.reason)
                        }
                        None if self.pause.is_some() => {
                            info!(group = %self.cfg.name, "-paused: automatic failover resumed")
                        }
                        None => {}
                    }
                }
                self.pause = p;
                self.pause_known = true;
            }
            Err(e) => debug!(group = %self.cfg.name, "-pause-read {e}"),
        }
        if nodes_changed {
            return;
        }
        if let Ok(h) = zk::read_history(&client, &self.cfg.paths).await {
            self.history = h;
        }
        if let Ok(v) = zk::read_views(&client, &self.cfg.paths).await {
            self.all_views = v.into_iter().collect();
        }
        if let Ok(order) = zk::read_lock_order(&client, &self.cfg.paths).await {
            self.managers_in_line = order;
        }
    }

    /// Writes the topology; true when it landed.
    async fn publish(&mut self, leader: &Leadership, mut topology: Topology) -> bool {
        topology.paused = self.pause.clone();
        topology.updated_at_ms = unix_ms();
        topology.manager = Some(self.manager_id.clone());
        match zk::publish(leader, &self.cfg.paths, &self.published, &topology).await {
            Ok(version) => {
                debug!(group = %self.cfg.name, "published {} version {version}", self.cfg.paths.nodes());
                self.published = Published::Valid { topology, version };
                true
            }
            Err(e) => {
                warn!(group = %self.cfg.name, "-publish-failed: {e}");
                self.refresh_published().await;
                false
            }
        }
    }
}

/// Why a failover happened, for the history.
struct Why {
    kind: FailoverKind,
    reason: String,
    votes: String,
}

impl Why {
    fn new(kind: FailoverKind, reason: impl Into<String>, votes: String) -> Self {
        Self {
            kind,
            reason: reason.into(),
            votes,
        }
    }
}

fn advance(group: &str, from: FailoverState, to: FailoverState) -> FailoverState {
    debug!(group = %group, "failover-state {from:?} -> {to:?}");
    to
}
