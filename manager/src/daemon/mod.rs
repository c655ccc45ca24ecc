//! One group's loop. Probe observations update the view; every manager publishes its view
//! and keeps what ZooKeeper holds in mind; while this manager leads, each cycle asks the
//! core for one decision, logs it in one line and acts on it (the only place where
//! decisions meet I/O). Standby managers keep probing so that they take over with a warm
//! view.
//!
//! - this file: the group's state and its event loop (probes, leadership, watches, ticks);
//! - [`shared`]: what the group reads from and writes to ZooKeeper besides acting;
//! - [`act`]: one cycle — the decision and its action, with the one promotion sequence;
//! - [`manual`]: an operator's manual failover request, judged and carried out;
//! - [`report`]: what the group shows to HTTP, metrics and the Sentinel endpoint.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_failover_client::wire::ManagerView;
use redis_failover_client::wire::PauseInfo;
use redis_failover_client::NodeAddr;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::GroupConfig;
use crate::core::decide::GroupState;
use crate::core::event_names::{MONITOR, PROBE_ERROR, REBOOT, SDOWN, SDOWN_CLEARED};
use crate::core::guard::Credential;
use crate::core::health::{Evidence, NodeHealth, Transition};
use crate::core::info::{NodeInfo, Role};
use crate::core::select::Policy;
use crate::core::votes::Strategy;
use crate::core::votes::VIEW_HEARTBEAT;
use crate::core::View;
use crate::front::metrics::GroupMetrics;
use crate::front::snapshot::{GroupSettings, GroupSnapshot};
use crate::io::node::{Connector, NodeError};
use crate::io::probe::{self, NodeProbe, Observation, ProbeResult, ProbeSettings};
use crate::io::zk::{self, Changes, History, Leadership, Pending, Published};

mod act;
mod manual;
mod observe;
mod report;
mod shared;

/// How soon the leader looks again while a decision waits for something that may come
/// with time alone (a fence's bound, a replica catching up).
const TICK: Duration = Duration::from_millis(100);
/// How often a settled group's loop wakes when nothing happens: the view's heartbeat, a
/// view aging out of the vote, a failed ZooKeeper read tried again. Every change wakes it
/// at once; what operators see ages on its own ([`GroupSnapshot::now`]).
const IDLE_TICK: Duration = VIEW_HEARTBEAT;
/// How often configured host names are resolved again.
const RESOLVE_EVERY: Duration = Duration::from_secs(30);
/// A promotion that failed (a Redis step refused or timed out) is tried again after this,
/// not at once: each attempt writes its intent to ZooKeeper and logs why it failed.
const PROMOTION_RETRY: Duration = Duration::from_secs(1);
/// How many cycles may follow each other without waiting for an event (a decision that
/// asks for the next one at once, such as reading offsets before a failover).
const MAX_CYCLES_IN_A_ROW: usize = 4;

/// The tunables of a group's decisions.
#[derive(Clone, Debug)]
pub struct Rules {
    /// `--replication-guard`: the user and password replicas authenticate with.
    pub guard: Option<Credential>,
    /// `--on-switch-master`.
    pub hook: Option<crate::io::hook::Hook>,
    /// `--webhook-url`.
    pub webhook: Option<crate::io::webhook::Webhook>,
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

/// A promotion done in Redis whose publication waits until the old master has fenced
/// itself (see `core::decide::Mode::Unreachable`).
pub(super) struct Held {
    pub plan: crate::core::promotion::Promotion,
    pub started: Instant,
    pub until: Instant,
}

/// What the cycle asks of the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    /// Nothing more until something happens.
    Idle,
    /// Another cycle at the next event or tick.
    Soon,
    /// Another cycle at once.
    Now,
}

/// "At most every `period`": one rate limit, replacing a hand-kept `Option<Instant>`.
#[derive(Clone, Copy, Debug)]
struct Every {
    period: Duration,
    last: Option<Instant>,
}

impl Every {
    const fn new(period: Duration) -> Self {
        Self { period, last: None }
    }

    /// True (and counts as done) when `period` has passed since the last time.
    fn due(&mut self, now: Instant) -> bool {
        let due = self
            .last
            .is_none_or(|t| now.saturating_duration_since(t) >= self.period);
        if due {
            self.last = Some(now);
        }
        due
    }

    /// When [`Every::due`] turns true (now if it is).
    fn next(&self, now: Instant) -> Instant {
        self.last.map_or(now, |t| (t + self.period).max(now))
    }

    /// Makes the next [`Every::due`] true.
    fn now(&mut self) {
        self.last = None;
    }
}

/// What ZooKeeper holds for the group, as last read.
#[derive(Debug)]
struct Known {
    /// `<root>/nodes`.
    published: Published,
    /// `published` was read in the current term (a decision on a previous term's copy could
    /// undo what another leader did meanwhile).
    published_known: bool,
    /// `<root>/paused` (every manager reads it).
    pause: Option<PauseInfo>,
    /// `pause` was read in the current term: no failover on a stale answer.
    pause_known: bool,
    /// `<root>/failover_history`.
    history: History,
    /// This manager's appends to the history whose watch events have not come yet: those
    /// events are not read again.
    history_appends: u32,
    /// Every live manager's view (this one's as last written): the leader votes with the
    /// others', operators see them all.
    views: BTreeMap<String, ManagerView>,
    /// The lock order, for operators.
    managers_in_line: Vec<String>,
}

/// The rate limits of the loop's periodic work.
#[derive(Debug)]
struct Timers {
    /// Every manager rewrites its view (and at once on any change).
    view_published: Every,
    /// Configured host names are resolved again.
    resolve: Every,
    /// A promotion that failed (its last attempt), retried once this has passed.
    promotion_aborted: Every,
}

pub struct GroupDaemon {
    cfg: GroupConfig,
    manager_id: String,
    rules: Rules,
    connector: Connector,
    /// What the probes see of every configured node.
    view: View,
    probes: BTreeMap<NodeAddr, NodeProbe>,
    /// `ip:port` -> configured `host:port`, so that a replica reporting its master by IP is
    /// matched with a node configured by name.
    aliases: BTreeMap<NodeAddr, NodeAddr>,
    /// The leader's belief, between cycles.
    state: GroupState,
    leader: Option<Leadership>,
    known: Known,
    timers: Timers,
    /// The last waiting line logged, not repeated for a while.
    last_log: Option<(String, Instant)>,
    session: watch::Receiver<Option<zookeeper_client::Client>>,
    /// What HTTP, metrics and the Sentinel endpoint show.
    snapshot: watch::Sender<GroupSnapshot>,
    settings: GroupSettings,
    /// What changed under the group's root (its ZooKeeper watch), so that standbys show a
    /// new topology at once, the leader sees a pause, a request or a view at once.
    pending: Arc<Pending>,
    /// Changes whose reading failed, read again at the next pass.
    unsynced: Option<Changes>,
    /// A node changed state since this manager's view was last written.
    view_changed: bool,
    /// `<root>/manual_failover` changed since the leader last looked.
    manual_pending: bool,
    /// The version of the request whose switchover failed once already, and when.
    manual_retried: Option<(i32, Instant)>,
    metrics: Option<Arc<GroupMetrics>>,
    /// This manager's Sentinel-protocol address, announced in its view.
    sentinel_addr: Option<NodeAddr>,
    /// A promotion waiting for the old master's fence before it is published.
    held: Option<Held>,
    /// What the znodes this manager creates are given (its view).
    acls: Arc<zk::ZnodeAcls>,
    /// `--observe-only`: decides as a leader would, logs it, does nothing.
    observe_only: bool,
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
        let settings = GroupSettings {
            max_failures: rules.max_failures,
            down_after_ms: rules.down_after.as_millis() as u64,
            node_strategy: rules.vote.strategy.to_string(),
            required_node_managers: rules.vote.required,
        };
        let view = cfg
            .nodes
            .iter()
            .map(|n| (n.clone(), NodeHealth::new()))
            .collect();
        Self {
            cfg,
            manager_id,
            rules,
            connector,
            view,
            probes: BTreeMap::new(),
            aliases: BTreeMap::new(),
            state: GroupState::default(),
            leader: None,
            known: Known {
                published: Published::Missing,
                published_known: false,
                pause: None,
                pause_known: false,
                history: History::default(),
                history_appends: 0,
                views: BTreeMap::new(),
                managers_in_line: Vec::new(),
            },
            timers: Timers {
                view_published: Every::new(VIEW_HEARTBEAT),
                resolve: Every::new(RESOLVE_EVERY),
                promotion_aborted: Every::new(PROMOTION_RETRY),
            },
            last_log: None,
            session,
            snapshot,
            settings,
            pending: Arc::new(Pending::default()),
            unsynced: None,
            view_changed: false,
            manual_pending: false,
            manual_retried: None,
            metrics: None,
            sentinel_addr: None,
            held: None,
            acls: Arc::new(zk::ZnodeAcls::open()),
            observe_only: false,
        }
    }

    /// Announces where this manager answers the Sentinel protocol.
    pub fn with_sentinel_addr(mut self, addr: Option<NodeAddr>) -> Self {
        self.sentinel_addr = addr;
        self
    }

    /// `--observe-only`: never leads; each cycle logs what a leader would do.
    pub fn observe_only(mut self, on: bool) -> Self {
        self.observe_only = on;
        self
    }

    /// The ACLs of the znodes it creates (open to all unless the managers have an identity).
    pub fn with_acls(mut self, acls: Arc<zk::ZnodeAcls>) -> Self {
        self.acls = acls;
        self
    }

    /// Feeds probe latencies and failover counts to `/metrics`.
    pub fn with_metrics(mut self, metrics: Arc<GroupMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub async fn run(
        mut self,
        settings: ProbeSettings,
        mut leadership: watch::Receiver<Option<Leadership>>,
        shutdown: CancellationToken,
    ) {
        self.resolve_aliases().await;
        let alert = settings.alert.clone();
        let (tx, mut rx) = mpsc::channel::<Observation>(1024);
        for node in &self.cfg.nodes {
            let p = probe::spawn(node.clone(), settings.clone(), tx.clone(), shutdown.clone());
            self.probes.insert(node.clone(), p);
        }
        drop(tx);
        let watcher = tokio::spawn(zk::watch_group(
            self.session.clone(),
            self.cfg.paths.clone(),
            self.pending.clone(),
            shutdown.clone(),
        ));
        let pending = self.pending.clone();
        // The first heartbeat of each group falls at a random point of the period, so that
        // many groups' views are not all rewritten in the same instant.
        self.timers.view_published.last =
            Instant::now().checked_sub(VIEW_HEARTBEAT.mul_f64(fastrand::f64()));
        let mut next_tick = Instant::now();
        let mut again = false;
        let mut settled = false;
        loop {
            // The group is no longer calm (a node not up or failing, a replica its master
            // does not hear from): every node is asked at every probe from now on, and the
            // calm ones (replicas, asked every few seconds) are asked at once.
            let now_alert = !crate::core::health::calm(&self.view);
            if now_alert && !alert.swap(now_alert, std::sync::atomic::Ordering::Relaxed) {
                for p in self.probes.values() {
                    p.poke.notify_one();
                }
            } else if !now_alert {
                alert.store(false, std::sync::atomic::Ordering::Relaxed);
            }
            // Whatever woke the loop and asked for a cycle also changed what operators see.
            if again {
                again = self.cycles(&mut rx).await;
                settled = !again && self.held.is_none();
                if !settled {
                    next_tick = next_tick.min(Instant::now() + TICK);
                }
                self.snapshot.send_replace(self.snapshot());
            }
            if self.view_changed {
                // Other managers vote with this view: tell them at once (a leader acts
                // first: nobody waits for its view).
                self.view_changed = false;
                self.publish_view(true).await;
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                changed = leadership.changed() => {
                    if changed.is_err() { break; }
                    let now_leader = leadership.borrow_and_update().clone();
                    again = self.on_leadership(now_leader).await;
                    if !again {
                        self.snapshot.send_replace(self.snapshot());
                    }
                }
                obs = rx.recv() => match obs {
                    Some(obs) => {
                        again |= self.observe(obs);
                    }
                    None => break,
                },
                changes = pending.changed() => {
                    self.sync(changes).await;
                    again = true;
                }
                _ = hold_over(self.held.as_ref().map(|h| h.until)) => {
                    again = true;
                }
                _ = tokio::time::sleep_until(next_tick.into()) => {
                    if let Some(retry) = self.unsynced.take() {
                        self.sync(retry).await;
                    }
                    self.publish_view(false).await;
                    again = true;
                    let now = Instant::now();
                    next_tick = if settled {
                        // Not sooner than a busy tick: a failing write asks to be retried
                        // at once.
                        (now + IDLE_TICK)
                            .min(self.timers.view_published.next(now))
                            .max(now + TICK)
                    } else {
                        now + TICK
                    };
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), watcher).await;
        for (_, p) in std::mem::take(&mut self.probes) {
            for t in p.tasks {
                let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
            }
        }
        debug!(group = %self.cfg.name, "group loop ended");
    }

    /// Runs cycles on everything the probes have said so far, as long as each asks for the
    /// next at once (bounded); true when one more should follow at the next event.
    async fn cycles(&mut self, rx: &mut mpsc::Receiver<Observation>) -> bool {
        for _ in 0..MAX_CYCLES_IN_A_ROW {
            while let Ok(obs) = rx.try_recv() {
                self.observe(obs);
            }
            self.resolve_aliases().await;
            match self.cycle().await {
                Next::Now => continue,
                Next::Soon => return true,
                Next::Idle => return false,
            }
        }
        true
    }

    /// Applies one probe result (a node that changed state — up, down, restarted — marks
    /// the view to be written); true when the leader should look at once (also when a node
    /// changed role, master, link or replicas, not just its offsets).
    fn observe(&mut self, obs: Observation) -> bool {
        let g = &self.cfg.name;
        let result = match obs.result {
            ProbeResult::Ok { info, latency } => ProbeResult::Ok {
                info: info.map(|i| canonical(&self.aliases, i)),
                latency,
            },
            other => other,
        };
        let Some(h) = self.view.get_mut(&obs.node) else {
            return false;
        };
        let node = &obs.node;
        let t = match result {
            ProbeResult::Ok { info, latency } => {
                if let (Some(m), Some(l)) = (&self.metrics, latency) {
                    m.observe_latency(node, l);
                }
                let reshaped = match (h.info(), &info) {
                    (Some(old), Some(new)) => !old.same_shape(new),
                    (None, Some(_)) => true,
                    _ => false,
                };
                match h.on_success(obs.at, info, latency) {
                    None => return reshaped,
                    t => t,
                }
            }
            ProbeResult::Identified {
                run_id,
                restarted,
                uptime,
            } => {
                h.on_identified(obs.at.checked_sub(uptime));
                if !restarted {
                    return false;
                }
                warn!(group = %g, "{REBOOT} {node}: answers with a new run_id {run_id}");
                h.on_restart();
                self.view_changed = true;
                return true;
            }
            ProbeResult::Failed(e) => {
                // Once per streak, not once per probe.
                if e.is_config_mistake() && h.consecutive_failures() == 0 {
                    warn!(group = %g, "{PROBE_ERROR} {node}: {e}");
                }
                let evidence = match e {
                    NodeError::Silent(_) => Evidence::Hung,
                    _ => Evidence::None,
                };
                h.on_failure_showing(obs.at, &e.to_string(), self.rules.max_failures, evidence)
            }
            ProbeResult::Gone(e) => h.on_failure_showing(
                obs.at,
                &e.to_string(),
                self.rules.max_failures,
                Evidence::Gone,
            ),
        };
        let changed = match t {
            Some(Transition::Down { reason }) => {
                warn!(group = %g, "{SDOWN} {node}: {reason}");
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
                    info!(group = %g, "{SDOWN_CLEARED} {node}: answers again as {role}");
                } else {
                    info!(group = %g, "{MONITOR} {node}: up as {role}");
                }
                true
            }
            None => false,
        };
        self.view_changed |= changed;
        changed
    }

    /// Resolves configured host names (bounded; again every [`RESOLVE_EVERY`], so that a DNS
    /// failure at start or a moved name heals), for matching replicas' reports.
    async fn resolve_aliases(&mut self) {
        if !self.timers.resolve.due(Instant::now()) {
            return;
        }
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

    /// Records a node's state read by the leader itself (after a command or a refresh).
    fn set_info(&mut self, addr: &NodeAddr, info: NodeInfo) {
        let info = canonical(&self.aliases, info);
        if let Some(h) = self.view.get_mut(addr) {
            h.on_success(Instant::now(), Some(info), None);
        }
    }

    /// `replica-priority` as the probes last read it: the leader's commands read the rest
    /// of `INFO` in the same round trip as the command, and this instead of a `CONFIG GET`.
    fn known_priority(&self, node: &NodeAddr) -> Option<u32> {
        self.view
            .get(node)
            .and_then(|h| h.info())
            .map(|i| i.priority)
    }

    fn restarts_of(&self, node: &NodeAddr) -> u64 {
        self.view.get(node).map_or(0, |h| h.restarts())
    }

    /// Takes `master` as the group's master at `epoch` (with the pause as known and the
    /// nodes' settings kept), its publication held until `publish_not_before`.
    fn adopt(&mut self, master: NodeAddr, epoch: u64, publish_not_before: Option<Instant>) {
        self.state = GroupState {
            master_restarts: self.restarts_of(&master),
            master: Some(master),
            epoch,
            paused: self.known.pause.clone(),
            publish_not_before,
            ..self.state.node_settings()
        };
    }
}

/// A replica's reported master, named as configured.
fn canonical(aliases: &BTreeMap<NodeAddr, NodeAddr>, mut info: NodeInfo) -> NodeInfo {
    if let Role::Replica { master, .. } = &mut info.role {
        if let Some(configured) = aliases.get(master) {
            *master = configured.clone();
        }
    }
    for (f, _) in &mut info.followers {
        if let Some(configured) = aliases.get(f) {
            *f = configured.clone();
        }
    }
    info
}

/// Resolves when a held promotion may be published; never without one.
async fn hold_over(until: Option<Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_is_due_once_per_period_and_at_once_when_asked() {
        let t0 = Instant::now();
        let mut e = Every::new(Duration::from_millis(100));
        assert!(e.due(t0), "due the first time");
        assert!(!e.due(t0 + Duration::from_millis(99)));
        assert!(e.due(t0 + Duration::from_millis(100)));
        e.now();
        assert!(
            e.due(t0 + Duration::from_millis(101)),
            "due at once after now()"
        );
        assert!(!e.due(t0 + Duration::from_millis(102)));
        let t1 = t0 + Duration::from_millis(101);
        assert_eq!(
            e.next(t1),
            t1 + Duration::from_millis(100),
            "next after due"
        );
        e.now();
        assert_eq!(e.next(t1), t1, "now when asked for at once");
    }
}
