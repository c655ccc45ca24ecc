//! The plan of a promotion. Every way a replica becomes the master — an automatic failover,
//! finishing one a previous leader left half done, a manual failover of a down master, a
//! planned switchover from a live one — runs the same sequence (`daemon/act.rs`):
//!
//! 1. **record**: a lock-checked write of the topology with `promoting` set, so that a
//!    leader taking over finishes this promotion and no other (a roll-forward only
//!    confirms the lock: the record is already there);
//! 2. **promote**: the Redis step of the kind (`REPLICAOF NO ONE`, `FAILOVER TO`, or a
//!    check that the recorded node already is a master);
//! 3. **confirm** the lock, then **re-point** the other live nodes, all at once; a failover
//!    goes on to publish once the replicas the clients' `WAIT` needs accepted (or after
//!    100 ms: a hung node finishes in the background), a held promotion or a switchover once
//!    every call ended;
//! 4. **publish** the new master (`+switch-master`) and append the failover history. The
//!    re-pointed nodes that carry the new master's data are published as its replicas while
//!    their link comes up ([`Promotion::resyncing`]): a re-pointed replica is not down.
//!
//! The differences between the kinds are data on [`Kind`]; the topologies written at each
//! step are derived here.

use std::collections::BTreeSet;

use redis_failover_client::wire::{FailoverKind, FailoverRecord};
use redis_failover_client::{NodeAddr, Topology};

use super::derive::{derive_topology, up_info};
use super::event_names as ev;
use super::View;

/// Why a replica becomes the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The master is down (by vote, or it restarted): promote the best replica.
    Failover,
    /// The master is down and the replica recorded as being promoted already is a master.
    RollForward,
    /// An operator asked for a failover while the master is down.
    Manual,
    /// An operator asked for a failover while the master is up: `FAILOVER TO`, no write lost.
    Switchover,
}

/// The Redis command that makes the new master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisStep {
    /// `REPLICAOF NO ONE` on the replica.
    PromoteReplica,
    /// Only check that the node answers `ROLE master` (a previous attempt promoted it).
    CheckMaster,
    /// `FAILOVER TO <host> <port>` on the live master: writers pause until the target has
    /// every acknowledged write.
    FailoverTo,
}

impl Kind {
    /// Whether the promotion is recorded (`promoting`) before any Redis command. A
    /// roll-forward finishes a promotion that already is recorded.
    pub fn records_intent(self) -> bool {
        self != Kind::RollForward
    }

    pub fn redis_step(self) -> RedisStep {
        match self {
            Kind::Failover | Kind::Manual => RedisStep::PromoteReplica,
            Kind::RollForward => RedisStep::CheckMaster,
            Kind::Switchover => RedisStep::FailoverTo,
        }
    }

    /// After a switchover the old master is a live replica to re-point; after a failover it
    /// is down, and rejoins as a replica when it returns.
    pub fn repoints_old_master(self) -> bool {
        self == Kind::Switchover
    }

    /// How the failover history names it.
    pub fn history(self) -> FailoverKind {
        match self {
            Kind::Failover | Kind::RollForward => FailoverKind::Failover,
            Kind::Manual => FailoverKind::Manual,
            Kind::Switchover => FailoverKind::Switchover,
        }
    }

    /// The events logged when the promotion cannot be recorded, and when the Redis step
    /// fails.
    pub fn abort_events(self) -> (&'static str, &'static str) {
        match self {
            Kind::Switchover => (ev::SWITCHOVER_NOT_LEADER, ev::SWITCHOVER_FAILED),
            _ => (ev::FAILOVER_NOT_LEADER, ev::PROMOTE_FAILED),
        }
    }

    /// Appended to the `+switch-master` line.
    pub fn suffix(self) -> &'static str {
        match self {
            Kind::Switchover => " (switchover)",
            _ => "",
        }
    }
}

/// One promotion: from the old master to the new one, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promotion {
    pub kind: Kind,
    /// The master being replaced (down, or live for a switchover).
    pub from: NodeAddr,
    /// The replica becoming the master.
    pub to: NodeAddr,
    /// Why, for the history.
    pub reason: String,
    /// How the managers voted on `from`, for the history.
    pub votes: String,
    /// How long after re-pointing the others the new master is published: zero, or the
    /// fence bound when `from` may still be taking writes (see `decide::Mode`).
    pub hold: std::time::Duration,
}

impl Promotion {
    /// Written (lock-checked) before any Redis command: `to` being promoted. A failover
    /// withdraws `from` even if it answers (it restarted without its data, or it is being
    /// replaced while alive): no client may write to it, least of all without waiting for a
    /// replica because none is listed next to it. A switchover keeps naming it: `FAILOVER
    /// TO` pauses its writers and loses nothing.
    pub fn intent(&self, epoch: u64, view: &View) -> Topology {
        let mut t = derive_topology(Some(&self.from), epoch, view, &BTreeSet::new());
        if self.kind != Kind::Switchover && t.master.as_ref() == Some(&self.from) {
            t.master = None;
            t.unavailable.push(self.from.clone());
            t.unavailable.sort();
        }
        t.promoting = Some(self.to.clone());
        t
    }

    /// The live nodes to make replicas of `to` once it is the master, the old master too
    /// if it answers (demoted by a switchover, or restarted): it must not take writes.
    pub fn to_repoint(&self, view: &View) -> Vec<NodeAddr> {
        view.iter()
            .filter(|(a, h)| **a != self.to && h.is_up())
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// Which of the nodes to re-point carry `to`'s data, read from the view before they are
    /// re-pointed: the replicas of `from` (or already of `to`, in a roll-forward) that are
    /// not in a full sync, and `from` itself after a switchover (`FAILOVER TO` made it a
    /// replica with every write). Re-pointed, Redis resumes them by a partial resync. A
    /// replica of another node, or one in a full sync, has other data than `to`: not one.
    pub fn carry_data(&self, view: &View) -> BTreeSet<NodeAddr> {
        self.to_repoint(view)
            .into_iter()
            .filter(|n| {
                let Some(info) = up_info(view, n) else {
                    return false;
                };
                let upstream = info.master();
                let demoted =
                    *n == self.from && self.kind.repoints_old_master() && info.is_master();
                !info.syncing()
                    && (demoted || upstream == Some(&self.from) || upstream == Some(&self.to))
            })
            .collect()
    }

    /// The nodes published as replicas of `to` while their link comes up: those of
    /// `carrying` (from [`Promotion::carry_data`]) that accepted `REPLICAOF`.
    pub fn resyncing(carrying: &BTreeSet<NodeAddr>, accepted: &[NodeAddr]) -> BTreeSet<NodeAddr> {
        accepted
            .iter()
            .filter(|n| carrying.contains(*n))
            .cloned()
            .collect()
    }

    /// Published once `to` is the master, at the new `epoch`; `resyncing` (from
    /// [`Promotion::resyncing`]) are listed as its replicas even before their link is up.
    pub fn result(&self, epoch: u64, view: &View, resyncing: &BTreeSet<NodeAddr>) -> Topology {
        derive_topology(Some(&self.to), epoch, view, resyncing)
    }

    /// The history entry of a finished promotion.
    pub fn record(
        &self,
        at_ms: u64,
        duration_ms: u64,
        epoch: u64,
        manager: &str,
    ) -> FailoverRecord {
        FailoverRecord {
            at_ms,
            kind: self.kind.history(),
            reason: self.reason.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            duration_ms,
            votes: self.votes.clone(),
            epoch,
            manager: manager.to_string(),
            hook: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::health::NodeHealth;
    use crate::core::info::Role;
    use crate::core::test_support::{a, answered, info, replica_of};
    use std::time::Instant;

    fn node(role: Role) -> NodeHealth {
        answered(Instant::now(), info(role, 10))
    }

    /// h:1 the old master (live for a switchover, down otherwise), h:2 promoted, h:3 a
    /// replica of h:1, h:4 down.
    fn view(old_master_up: bool) -> View {
        let mut v = View::new();
        let mut old = node(Role::Master);
        if !old_master_up {
            old.on_failure(Instant::now(), "refused", 1);
        }
        v.insert(a(1), old);
        v.insert(a(2), node(Role::Master));
        v.insert(a(3), replica(1, true, false));
        let mut down = NodeHealth::new();
        down.on_failure(Instant::now(), "refused", 1);
        v.insert(a(4), down);
        v
    }

    fn plan(kind: Kind) -> Promotion {
        Promotion {
            kind,
            from: a(1),
            to: a(2),
            reason: "test".into(),
            votes: String::new(),
            hold: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn kinds_differ_only_in_their_data() {
        let table = [
            (
                Kind::Failover,
                true,
                RedisStep::PromoteReplica,
                false,
                FailoverKind::Failover,
            ),
            (
                Kind::RollForward,
                false,
                RedisStep::CheckMaster,
                false,
                FailoverKind::Failover,
            ),
            (
                Kind::Manual,
                true,
                RedisStep::PromoteReplica,
                false,
                FailoverKind::Manual,
            ),
            (
                Kind::Switchover,
                true,
                RedisStep::FailoverTo,
                true,
                FailoverKind::Switchover,
            ),
        ];
        for (kind, records, step, repoints_old, history) in table {
            assert_eq!(kind.records_intent(), records, "{kind:?}");
            assert_eq!(kind.redis_step(), step, "{kind:?}");
            assert_eq!(kind.repoints_old_master(), repoints_old, "{kind:?}");
            assert_eq!(kind.history(), history, "{kind:?}");
        }
        assert_eq!(Kind::Switchover.abort_events().1, ev::SWITCHOVER_FAILED);
        assert_eq!(Kind::Failover.abort_events().0, ev::FAILOVER_NOT_LEADER);
    }

    #[test]
    fn the_others_are_repointed_and_the_down_old_master_is_not() {
        assert_eq!(plan(Kind::Failover).to_repoint(&view(false)), vec![a(3)]);
        // After FAILOVER TO the old master is a live replica: re-point it too.
        assert_eq!(
            plan(Kind::Switchover).to_repoint(&view(true)),
            vec![a(1), a(3)]
        );
    }

    #[test]
    fn the_intent_names_the_promoted_node_and_the_result_its_master() {
        let v = view(false);
        let intent = plan(Kind::Failover).intent(4, &v);
        assert_eq!(intent.promoting, Some(a(2)));
        assert_eq!(intent.epoch, 4);
        assert_eq!(
            intent.master, None,
            "the down old master is not published as master"
        );
        // An old master that answers (restarted without its data) is withdrawn too.
        let intent = plan(Kind::Failover).intent(4, &view(true));
        assert_eq!(intent.master, None, "a live old master is withdrawn");
        assert!(intent.unavailable.contains(&a(1)), "{intent:?}");
        let intent = plan(Kind::Switchover).intent(4, &view(true));
        assert_eq!(intent.master, Some(a(1)), "a switchover keeps it named");
        let result = plan(Kind::Failover).result(5, &v, &BTreeSet::new());
        assert_eq!(result.master, Some(a(2)));
        assert_eq!(result.promoting, None);
        assert!(result.unavailable.contains(&a(1)));
        let record = plan(Kind::Manual).record(7, 30, 5, "m1");
        assert_eq!(
            (record.kind, record.epoch, record.manager.as_str()),
            (FailoverKind::Manual, 5, "m1")
        );
    }

    fn with(mut v: View, port: u16, h: NodeHealth) -> View {
        v.insert(a(port), h);
        v
    }

    fn replica(of: u16, link_up: bool, syncing: bool) -> NodeHealth {
        node(replica_of(of, link_up, syncing, None))
    }

    /// Which re-pointed nodes keep their data (and are published as replicas while their
    /// link comes up): the replicas of the old master not in a full sync, and the demoted
    /// master of a switchover; never a replica of another node, one in a full sync, or a
    /// dead node.
    #[test]
    fn the_replicas_of_the_old_master_carry_its_data() {
        let set = |ports: &[u16]| ports.iter().map(|p| a(*p)).collect::<BTreeSet<_>>();
        #[allow(clippy::type_complexity)]
        let cases: Vec<(&str, Kind, View, &[u16])> = vec![
            (
                "failover: the replica of the dead master",
                Kind::Failover,
                view(false),
                &[3],
            ),
            (
                "switchover: the demoted master too",
                Kind::Switchover,
                view(true),
                &[1, 3],
            ),
            (
                "a replica of the old master with its link down (it is dead)",
                Kind::Manual,
                with(view(false), 3, replica(1, false, false)),
                &[3],
            ),
            (
                "already re-pointed by a previous leader",
                Kind::RollForward,
                with(view(false), 3, replica(2, false, false)),
                &[3],
            ),
            (
                "a full sync has other data",
                Kind::Failover,
                with(view(false), 3, replica(1, false, true)),
                &[],
            ),
            (
                "a replica of another node has other data",
                Kind::Failover,
                with(view(false), 3, replica(9, true, false)),
                &[],
            ),
            (
                "another master has other data",
                Kind::Failover,
                with(view(false), 3, node(Role::Master)),
                &[],
            ),
        ];
        for (what, kind, v, want) in cases {
            assert_eq!(plan(kind).carry_data(&v), set(want), "{what}");
        }
        // Only those that accepted REPLICAOF.
        assert_eq!(
            Promotion::resyncing(&set(&[1, 3]), &[a(3), a(4)]),
            set(&[3])
        );
    }

    /// The result lists the re-pointed replicas as replicas of the new master while their
    /// link comes up, and keeps the invariants: one master, the dead never listed.
    #[test]
    fn a_re_pointed_replica_is_published_as_a_replica() {
        // After the re-point: h:2 master, h:3 follows it with its link not up yet.
        let v = with(
            with(view(false), 2, node(Role::Master)),
            3,
            replica(2, false, false),
        );
        let p = plan(Kind::Failover);
        let resyncing = Promotion::resyncing(&p.carry_data(&view(false)), &[a(3)]);
        let t = p.result(5, &v, &resyncing);
        assert_eq!(t.master, Some(a(2)));
        assert_eq!(t.slaves, vec![a(3)], "the re-pointed replica is not down");
        assert_eq!(t.unavailable, vec![a(1), a(4)], "the dead stay unavailable");
        // Without the resync (a replica that did not accept REPLICAOF, say): unavailable.
        let t = p.result(5, &v, &BTreeSet::new());
        assert_eq!(t.unavailable, vec![a(1), a(3), a(4)]);
        // A switchover: the demoted master, now a replica of h:2, is listed too.
        let v = with(
            with(view(true), 1, replica(2, false, false)),
            3,
            replica(2, false, false),
        );
        let p = plan(Kind::Switchover);
        let resyncing = Promotion::resyncing(&p.carry_data(&view(true)), &[a(1), a(3)]);
        let t = p.result(2, &v, &resyncing);
        assert_eq!(
            (t.master, t.slaves, t.unavailable),
            (Some(a(2)), vec![a(1), a(3)], vec![a(4)])
        );
    }
}
