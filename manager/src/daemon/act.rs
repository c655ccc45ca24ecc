//! One cycle of the leader: the core's one decision, logged in one line, and its action —
//! with the one promotion sequence that every kind of failover runs (see
//! [`crate::core::promotion`] for its steps).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_failover_client::wire::{unix_ms, FailoverRecord};
use redis_failover_client::{NodeAddr, Topology};
use tokio::sync::Notify;
use tracing::{debug, error, info, warn};

use super::{GroupDaemon, Held, Next};
use crate::core::decide::{decide, roll_forward_hold, unreplaceable, Decision, Mode, FENCE_RETRY};
use crate::core::derive::Resyncing;
use crate::core::event_names::{
    FAILOVER_NOT_LEADER, FENCE_FAILED, FENCE_WAIT, GUARD_FAILED, HISTORY_WRITE, HOOK, HOOK_FAILED,
    LEADER_UNCONFIRMED, PROMOTED, PUBLISH_FAILED, REBOOT_KEPT, RECONF_REPLICA,
    RECONF_REPLICA_FAILED, SWITCH_MASTER, SWITCH_MASTER_UNPUBLISHED, WEBHOOK, WEBHOOK_FAILED,
};
use crate::core::fence::FenceSetting;
use crate::core::info::NodeInfo;
use crate::core::promotion::{Kind, Promotion, RedisStep};
use crate::io::node::{self, NodeError};
use crate::io::zk::{self, Changes, Confirmed, Leadership, Published};

/// How long a planned switchover may pause writers while the target catches up.
const SWITCHOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on the fresh `INFO` read from candidates right before a promotion.
const REFRESH_TIMEOUT: Duration = Duration::from_millis(300);
/// The same waiting reason is logged again after this long.
const REPEAT_LOG: Duration = Duration::from_secs(30);
/// How long a promotion waits for the replicas it needs to follow the new master before
/// publishing it anyway (the others are re-pointed meanwhile).
const REPOINT_GRACE: Duration = Duration::from_millis(100);
/// How many failovers `<root>/failover_history` keeps.
const HISTORY_LEN: usize = 20;

/// How a promotion ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Nothing changed in Redis (not recorded, or the Redis step failed).
    Aborted,
    /// The new master answers as master; `published` when the topology says so too.
    Promoted { published: bool },
}

impl GroupDaemon {
    /// One decision and its action.
    pub(super) async fn cycle(&mut self) -> Next {
        let Some(leader) = self.leader.clone() else {
            if self.observe_only {
                return self.observe_cycle().await;
            }
            return Next::Idle;
        };
        if let Some(next) = self.finish_held(&leader).await {
            return next;
        }
        if !self.known.published_known {
            self.refresh_published().await;
            if !self.known.published_known {
                return Next::Idle;
            }
        }
        if !self.known.pause_known {
            self.sync(Changes {
                paused: true,
                ..Changes::default()
            })
            .await;
            if !self.known.pause_known {
                return Next::Soon;
            }
        }
        if self.state.master.is_some() && self.manual_pending {
            self.manual_pending = false;
            if let Some(next) = self.manual_failover(&leader).await {
                return next;
            }
        }
        let (decision, now) = self.decide_now();
        self.log_decision(&decision);
        let (kind, hold) = match &decision {
            Decision::RollForward { failed, .. } => (
                Kind::RollForward,
                roll_forward_hold(&self.view, failed, &self.rules.policy),
            ),
            Decision::Failover {
                mode: Mode::Reachable,
                ..
            } => (Kind::Switchover, Duration::ZERO),
            Decision::Failover {
                mode: Mode::Unreachable { hold },
                ..
            } => (Kind::Failover, *hold),
            _ => (Kind::Failover, Duration::ZERO),
        };
        match decision {
            Decision::Steady => Next::Idle,
            // What it waits for may come with time alone (a fence's bound, a view's age).
            Decision::Wait { .. } => Next::Soon,
            Decision::Adopt {
                master,
                epoch,
                hold,
                ..
            } => {
                // An unreadable znode lost its epoch; every earlier epoch took a write, so
                // its version bounds them all.
                let floor = match &self.known.published {
                    Published::Corrupt { version, .. } => *version as u64 + 1,
                    _ => 0,
                };
                let held = (!hold.is_zero()).then(|| Instant::now() + hold);
                self.adopt(master, epoch.max(floor), held);
                Next::Soon
            }
            Decision::Forget { .. } => {
                self.state.master = None;
                Next::Soon
            }
            Decision::Publish { topology, .. } => {
                self.publish(&leader, topology).await;
                Next::Idle
            }
            Decision::NoCandidate { failed, .. } | Decision::Paused { failed, .. } => {
                let u = unreplaceable(
                    &self.state,
                    &self.view,
                    self.known.published.topology(),
                    &failed,
                    now,
                );
                if let Some(restarts) = u.restart_kept {
                    warn!(group = %self.cfg.name, "{REBOOT_KEPT} {failed}: restarted, but no replica may replace it; keeping it as the master");
                    self.state.master_restarts = restarts;
                }
                if let Some(topology) = u.publish {
                    self.publish(&leader, topology).await;
                }
                Next::Idle
            }
            Decision::Reconfigure { nodes, master, .. } => {
                let not_doing = format!("not re-pointing {nodes:?}");
                let Some(confirmed) = self.confirm_to(&leader, &not_doing).await else {
                    return Next::Idle;
                };
                self.reconfigure(&nodes, &master, confirmed, None).await;
                Next::Soon
            }
            Decision::RefreshOffsets { nodes, .. } => {
                self.refresh_offsets(&nodes).await;
                Next::Now
            }
            Decision::Failover {
                failed,
                winner,
                reason,
                ..
            }
            | Decision::RollForward {
                failed,
                winner,
                reason,
            } => {
                self.failover(&leader, kind, failed, winner, reason, hold)
                    .await
            }
            Decision::Fence { node, setting, .. } => {
                self.fence(&leader, &node, setting).await;
                Next::Soon
            }
            Decision::Guard { node, .. } => {
                let not_doing = format!("not setting the replication guard on {node}");
                if self.confirm_to(&leader, &not_doing).await.is_none() {
                    return Next::Idle;
                }
                self.guard(&node).await;
                Next::Soon
            }
        }
    }

    /// `+guard`: the replication user and credential on `n` (the leader's lock confirmed
    /// by the caller). Recorded with `n`'s restart count; a failure is retried later.
    async fn guard(&mut self, n: &NodeAddr) -> bool {
        let Some(credential) = self.rules.guard.clone() else {
            return true;
        };
        match node::set_guard(&self.connector, n, &credential).await {
            Ok(()) => {
                self.state.guard_failed.remove(n);
                self.state.guards.insert(n.clone(), self.restarts_of(n));
                true
            }
            Err(e) => {
                warn!(group = %self.cfg.name, "{GUARD_FAILED} {n}: ACL SETUSER {} / CONFIG SET masteruser: {e}; retrying in {} s", credential.user(), FENCE_RETRY.as_secs());
                self.state.guard_failed.insert(n.clone(), Instant::now());
                false
            }
        }
    }

    /// `+fence`: sets `min-replicas-*` on `node` while the lock's confirmation is fresh.
    async fn fence(&mut self, leader: &Leadership, n: &NodeAddr, setting: FenceSetting) {
        let g = self.cfg.name.clone();
        let not_doing = format!("not setting the fence on {n}");
        if self.confirm_to(leader, &not_doing).await.is_none() {
            return;
        }
        match node::set_fence(&self.connector, n, setting).await {
            Ok(()) => {
                self.state.fence_failed.remove(n);
                self.state
                    .fences
                    .insert(n.clone(), (self.restarts_of(n), setting));
                if let Some(p) = self.probes.get(n) {
                    p.poke.notify_one();
                }
            }
            Err(e) => {
                warn!(group = %g, "{FENCE_FAILED} {n}: CONFIG SET {setting}: {e}; retrying in {} s", FENCE_RETRY.as_secs());
                self.state.fence_failed.insert(n.clone(), Instant::now());
            }
        }
    }

    /// A promotion held back until the old master has fenced itself: published once the
    /// hold is over (see [`Mode::Unreachable`]).
    pub(super) async fn finish_held(&mut self, leader: &Leadership) -> Option<Next> {
        let held = self.held.as_ref()?;
        // Proof that the old master is gone (it closed a connection, then refused) ends the
        // wait early: nobody can write to it any more.
        let gone = self
            .view
            .get(&held.plan.from)
            .is_some_and(|h| h.proven_gone());
        if Instant::now() < held.until && !gone {
            return Some(Next::Idle);
        }
        let held = self.held.take()?;
        self.finish(leader, &held.plan, held.started).await;
        Some(Next::Soon)
    }

    /// An automatic failover (or its roll-forward), through the one promotion sequence.
    async fn failover(
        &mut self,
        leader: &Leadership,
        kind: Kind,
        failed: NodeAddr,
        winner: NodeAddr,
        reason: String,
        hold: Duration,
    ) -> Next {
        // A promotion that failed is tried again at most once per `PROMOTION_RETRY`: its
        // own intent write wakes this loop at once, which would retry (and log, and write
        // to ZooKeeper) as fast as ZooKeeper answers.
        let now = Instant::now();
        if self.timers.promotion_aborted.next(now) > now {
            return Next::Soon;
        }
        let plan = Promotion {
            kind,
            votes: self.vote_text(&failed),
            from: failed,
            to: winner,
            reason,
            hold,
        };
        match self.promote(leader, &plan).await {
            Outcome::Aborted => {
                if kind == Kind::Switchover {
                    self.state.switchover_failed_at = Some(Instant::now());
                }
                self.timers.promotion_aborted.last = Some(Instant::now());
                Next::Soon
            }
            Outcome::Promoted { .. } => {
                self.timers.promotion_aborted.now();
                Next::Soon
            }
        }
    }

    /// What a leader decides now, on this manager's view and what it knows of ZooKeeper
    /// (the leader's cycle and `--observe-only`'s take it the same way), and when.
    pub(super) fn decide_now(&mut self) -> (Decision, Instant) {
        self.state.paused = self.known.pause.clone();
        let now = Instant::now();
        let master = self.state.master.clone();
        self.state
            .resyncing
            .settle(&self.view, master.as_ref(), now);
        let decision = decide(
            &self.state,
            &self.view,
            self.known.published.topology(),
            &self.votes(),
            now,
            &self.rules.policy,
        );
        (decision, now)
    }

    pub(super) fn log_decision(&mut self, d: &Decision) {
        match d {
            Decision::Steady => {}
            Decision::Wait { .. } | Decision::NoCandidate { .. } => {
                self.log_unrepeated(d.to_string(), true)
            }
            _ => {
                info!(group = %self.cfg.name, "{d}");
                self.last_log = None;
            }
        }
    }

    /// Logs `line` (a warning or information) unless it was the last line so logged, less
    /// than [`REPEAT_LOG`] ago.
    pub(super) fn log_unrepeated(&mut self, line: String, warning: bool) {
        let repeat = self
            .last_log
            .as_ref()
            .is_some_and(|(l, at)| *l == line && at.elapsed() < REPEAT_LOG);
        if repeat {
            return;
        }
        if warning {
            warn!(group = %self.cfg.name, "{line}");
        } else {
            info!(group = %self.cfg.name, "{line}");
        }
        self.last_log = Some((line, Instant::now()));
    }

    /// The one promotion sequence: record, promote, confirm and re-point, publish.
    pub(super) async fn promote(&mut self, leader: &Leadership, plan: &Promotion) -> Outcome {
        let g = self.cfg.name.clone();
        let (from, to) = (&plan.from, &plan.to);
        let started = Instant::now();
        let (not_leader, step_failed) = plan.kind.abort_events();
        // 1. The gate: no change to Redis until a lock-checked write to ZooKeeper has
        // recorded which node is being promoted, so that a leader taking over finishes this
        // promotion and no other.
        let confirmed = if plan.kind.records_intent() {
            let intent = plan.intent(self.state.epoch, &self.view);
            let asked = Instant::now();
            if !self.publish(leader, intent).await {
                warn!(group = %g, "{not_leader}: could not record the promotion of {to} in ZooKeeper; not promoting");
                return Outcome::Aborted;
            }
            leader.confirmed_by_write(asked)
        } else {
            let Some(confirmed) = leader.confirm().await else {
                warn!(group = %g, "{FAILOVER_NOT_LEADER}: cannot confirm the lock in ZooKeeper; not adopting {to}");
                return Outcome::Aborted;
            };
            confirmed
        };
        // 2. The Redis step of this kind, only while the lock's confirmation is fresh.
        if !self.still_leading(&confirmed, &format!("not promoting {to}")) {
            return Outcome::Aborted;
        }
        let step = plan.kind.redis_step();
        // In a switchover the old master follows `to` as soon as `FAILOVER TO` hands over,
        // authenticating as the guard's user: `to` must have it first (it may have just
        // restarted, its user gone, before the guard was set on it again).
        if step == RedisStep::FailoverTo && self.rules.guard.is_some() && !self.guard(to).await {
            error!(group = %g, "{step_failed} {from} -> {to}: the replication user could not be set on {to}; {from} stays master");
            return Outcome::Aborted;
        }
        let known = self.known_priority(to);
        let promoted = match step {
            RedisStep::PromoteReplica => node::promote(&self.connector, to, known).await,
            RedisStep::CheckMaster => node::check_master(&self.connector, to, known).await,
            RedisStep::FailoverTo => {
                node::switchover(&self.connector, from, to, SWITCHOVER_TIMEOUT).await
            }
        };
        let info = match promoted {
            Ok(info) => info,
            Err(e) if step == RedisStep::FailoverTo => {
                error!(group = %g, "{step_failed} {from} -> {to}: {e}; {from} stays master");
                return Outcome::Aborted;
            }
            Err(e) => {
                error!(group = %g, "{step_failed} {to}: {e}; state: master {from} down, {to} recorded as being promoted, role unknown; retrying on the next cycle");
                return Outcome::Aborted;
            }
        };
        self.set_info(to, info);
        let how = match step {
            RedisStep::FailoverTo => "master after FAILOVER TO in",
            _ => "answers ROLE master after",
        };
        info!(group = %g, "{PROMOTED} {to}: {how} {} ms", started.elapsed().as_millis());
        self.adopt(to.clone(), self.state.epoch + 1, None);
        // 3. Re-point the others, still as the leader: on the gate's confirmation while it
        // is fresh (the Redis step takes milliseconds), else on a new one.
        let confirmed = if confirmed.fresh() {
            confirmed
        } else {
            let Some(confirmed) = leader.confirm().await else {
                warn!(group = %g, "{LEADER_UNCONFIRMED}: {to} is master (epoch {}), not re-pointing the others; the next leader finishes", self.state.epoch);
                return Outcome::Promoted { published: false };
            };
            confirmed
        };
        // The others authenticate to it as the guard's user: it must have it (it normally
        // has, as a replica in sync; not when the guard failed on it, or after a restart).
        if self.rules.guard.is_some() && self.state.guards.get(to) != Some(&self.restarts_of(to)) {
            self.guard(to).await;
        }
        let others = plan.to_repoint(&self.view);
        let carrying = plan.carry_data(&self.view);
        // A failover is published at once, not after a hung node's timeout: once as many
        // replicas carrying the data as clients wait for (`WAIT N`) follow the new master
        // (within `REPOINT_GRACE`); the others are re-pointed meanwhile. A held promotion
        // re-points them all first (none may keep the old master unfenced), and so does a
        // planned switchover (nothing is down: every node is published as it is).
        let enough = (plan.hold.is_zero() && plan.kind != Kind::Switchover)
            .then(|| self.rules.policy.synchronous_replicas.min(carrying.len()));
        let accepted = self
            .reconfigure(&others, to, confirmed, enough.map(|n| (n, &carrying)))
            .await;
        let resyncing = Promotion::resyncing(&carrying, &accepted);
        // 4. Publish, then the history. A re-pointed replica is published as one while its
        // link comes up: it is not down.
        self.state.resyncing = Resyncing::new(resyncing, Instant::now());
        if !plan.hold.is_zero() {
            info!(group = %g, "{FENCE_WAIT} {to} is master in Redis (epoch {}) and no replica follows {from} any more; publishing it in {} ms, once {from} has fenced itself",
                self.state.epoch, plan.hold.as_millis());
            self.held = Some(Held {
                plan: plan.clone(),
                started,
                until: Instant::now() + plan.hold,
            });
            return Outcome::Promoted { published: false };
        }
        self.finish(leader, plan, started).await
    }

    /// The promotion's last step: publish the new master, then the history.
    async fn finish(&mut self, leader: &Leadership, plan: &Promotion, started: Instant) -> Outcome {
        let g = self.cfg.name.clone();
        let (from, to) = (&plan.from, &plan.to);
        let resyncing = self.state.resyncing.at(Instant::now()).clone();
        let topology = plan.result(self.state.epoch, &self.view, &resyncing);
        if !self.publish(leader, topology).await {
            error!(group = %g, "{SWITCH_MASTER_UNPUBLISHED}: {to} is master in Redis (epoch {}) but the znode is not updated yet; retrying", self.state.epoch);
            return Outcome::Promoted { published: false };
        }
        info!(
            group = %g,
            "{SWITCH_MASTER} {} {} {} {} {} epoch {} in {} ms{}",
            g, from.host, from.port, to.host, to.port, self.state.epoch,
            started.elapsed().as_millis(),
            plan.kind.suffix()
        );
        let record = self.record(leader, plan, started).await;
        let at_ms = record.at_ms;
        if let Some(webhook) = self.rules.webhook.clone() {
            let (g, body) = (g.clone(), serde_json::to_vec(&record).unwrap_or_default());
            tokio::spawn(async move {
                match webhook.notify(body).await {
                    (true, how) => info!(group = %g, "{WEBHOOK} delivered: {how}"),
                    (false, how) => warn!(group = %g, "{WEBHOOK_FAILED} {how}"),
                }
            });
        }
        if let Some(hook) = self.rules.hook.clone() {
            // In the background: the failover is done; the program may take its time.
            let (leader, paths, from, to) = (
                leader.clone(),
                self.cfg.paths.clone(),
                from.clone(),
                to.clone(),
            );
            tokio::spawn(async move {
                let (ok, text) = hook.run(&g, &from, &to).await;
                let line = format!("{} {}: {text}", hook.program.display(), from_to(&from, &to));
                if ok {
                    info!(group = %g, "{HOOK} {line}");
                } else {
                    warn!(group = %g, "{HOOK_FAILED} {line}");
                }
                if let Err(e) = zk::annotate_history(&leader, &paths, at_ms, &text).await {
                    warn!(group = %g, "{HISTORY_WRITE} {e}");
                }
            });
        }
        Outcome::Promoted { published: true }
    }

    /// The lock confirmed recently ([`Leadership::confirm_recent`]) or now, fresh enough to
    /// send a Redis command on; `None` (and the log says `not_doing`) when it cannot be
    /// confirmed or the confirmation came too late.
    async fn confirm_to(&self, leader: &Leadership, not_doing: &str) -> Option<Confirmed> {
        let Some(confirmed) = leader.confirm_recent().await else {
            warn!(group = %self.cfg.name, "{LEADER_UNCONFIRMED}: {not_doing}");
            return None;
        };
        self.still_leading(&confirmed, not_doing)
            .then_some(confirmed)
    }

    /// False (and says so) when the lock's confirmation is too old to act on: this manager
    /// was held up (a pause, a slow step) long enough for a new leader to have taken over.
    fn still_leading(&self, confirmed: &Confirmed, not_doing: &str) -> bool {
        if confirmed.fresh() {
            return true;
        }
        warn!(group = %self.cfg.name, "{LEADER_UNCONFIRMED}: the lock was confirmed {} ms ago, longer than the {} ms a leader may act on it; {not_doing}",
            confirmed.age().as_millis(), confirmed.window().as_millis());
        false
    }

    /// `REPLICAOF master` on each of `nodes`, at once, while `confirmed` is fresh; a failure
    /// is retried on a later cycle. Returns the nodes that accepted it, once every call
    /// ended, or with `until = Some((enough, counting))` once `enough` of those in
    /// `counting` accepted it or [`REPOINT_GRACE`] passed: the calls still running then
    /// finish in a task of their own, which logs them.
    async fn reconfigure(
        &mut self,
        nodes: &[NodeAddr],
        master: &NodeAddr,
        confirmed: Confirmed,
        until: Option<(usize, &BTreeSet<NodeAddr>)>,
    ) -> Vec<NodeAddr> {
        use futures::stream::{FuturesUnordered, StreamExt};
        let mut accepted = Vec::new();
        if !self.still_leading(&confirmed, &format!("not re-pointing {nodes:?}")) {
            return accepted;
        }
        let mut calls: FuturesUnordered<_> = nodes
            .iter()
            .map(|n| {
                let (connector, n, master) = (self.connector.clone(), n.clone(), master.clone());
                let known = self.known_priority(&n);
                async move {
                    let r = node::replicaof(&connector, &n, &master, known).await;
                    (n, r)
                }
            })
            .collect();
        let g = self.cfg.name.clone();
        let none = BTreeSet::new();
        let (enough, counting) = until.unwrap_or((usize::MAX, &none));
        let mut counted = 0;
        // Healthy nodes answer REPLICAOF within milliseconds; one that has not answered
        // within the grace is not waited for (unless every call is: `until` is `None`).
        let grace = tokio::time::sleep(REPOINT_GRACE);
        tokio::pin!(grace);
        while counted < enough {
            let next = tokio::select! {
                next = calls.next() => next,
                _ = &mut grace, if until.is_some() => None,
            };
            let Some((n, r)) = next else {
                break;
            };
            log_repoint(&g, &n, master, &r);
            if let Ok(info) = r {
                self.set_info(&n, info);
                counted += usize::from(counting.contains(&n));
                accepted.push(n.clone());
            }
            if let Some(p) = self.probes.get(&n) {
                p.poke.notify_one();
            }
        }
        if calls.is_empty() {
            return accepted;
        }
        let pokes: BTreeMap<NodeAddr, Arc<Notify>> = self
            .probes
            .iter()
            .map(|(n, p)| (n.clone(), p.poke.clone()))
            .collect();
        let master = master.clone();
        tokio::spawn(async move {
            while let Some((n, r)) = calls.next().await {
                log_repoint(&g, &n, &master, &r);
                if let Some(p) = pokes.get(&n) {
                    p.notify_one();
                }
            }
        });
        accepted
    }

    /// Reads `INFO replication` from `nodes` at once, within [`REFRESH_TIMEOUT`]; a node
    /// that does not answer keeps its last known state. The state then notes when offsets
    /// were read (`offsets_read_at`), for the ranking that follows.
    pub(super) async fn refresh_offsets(&mut self, nodes: &[NodeAddr]) {
        let reads = nodes.iter().map(|n| {
            let connector = self.connector.clone();
            let known = self.known_priority(n);
            async move {
                // On the connection the promotion and the re-pointing then use again.
                let r =
                    tokio::time::timeout(REFRESH_TIMEOUT, node::info(&connector, n, known)).await;
                (n, r)
            }
        });
        for (n, r) in futures::future::join_all(reads).await {
            if let Ok(Ok(info)) = r {
                self.set_info(n, info);
            }
        }
        self.state.offsets_read_at = Some(Instant::now());
    }

    /// Writes the topology (lock-checked compare-and-set); true when it landed.
    pub(super) async fn publish(&mut self, leader: &Leadership, mut topology: Topology) -> bool {
        topology.paused = self.known.pause.clone();
        topology.updated_at_ms = unix_ms();
        topology.manager = Some(self.manager_id.clone());
        let asked = Instant::now();
        match zk::publish(leader, &self.cfg.paths, &self.known.published, &topology).await {
            Ok(version) => {
                // Lock-checked: it confirmed the lock too.
                leader.confirmed_by_write(asked);
                debug!(group = %self.cfg.name, "published {} version {version}", self.cfg.paths.nodes());
                self.known.published = Published::Valid { topology, version };
                true
            }
            Err(e) => {
                warn!(group = %self.cfg.name, "{PUBLISH_FAILED}: {e}");
                self.refresh_published().await;
                false
            }
        }
    }

    /// Appends a finished promotion to `<root>/failover_history` and counts it; returns the
    /// record.
    async fn record(
        &mut self,
        leader: &Leadership,
        plan: &Promotion,
        started: Instant,
    ) -> FailoverRecord {
        let duration_ms = started.elapsed().as_millis() as u64;
        let record = plan.record(unix_ms(), duration_ms, self.state.epoch, &self.manager_id);
        if let Some(m) = &self.metrics {
            m.failover_done();
        }
        let known = &self.known.history;
        match zk::append_history(leader, &self.cfg.paths, known, &record, HISTORY_LEN).await {
            Ok(history) => {
                self.known.history = history;
                self.known.history_appends += 1;
            }
            Err(e) => warn!(group = %self.cfg.name, "{HISTORY_WRITE} {e}"),
        }
        record
    }
}

/// `from -> to` for the hook's log line.
fn from_to(from: &NodeAddr, to: &NodeAddr) -> String {
    format!("{from} -> {to}")
}

/// `+reconf-replica` or `-reconf-replica-failed` for one `REPLICAOF` call.
fn log_repoint(g: &str, n: &NodeAddr, master: &NodeAddr, r: &Result<NodeInfo, NodeError>) {
    match r {
        Ok(_) => info!(group = %g, "{RECONF_REPLICA} {n}: REPLICAOF {master} sent"),
        Err(e) => {
            warn!(group = %g, "{RECONF_REPLICA_FAILED} {n}: REPLICAOF {master}: {e}; retrying on a later cycle")
        }
    }
}
