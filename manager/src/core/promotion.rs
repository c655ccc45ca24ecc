//! The plan of a promotion. Every way a replica becomes the master — an automatic failover,
//! finishing one a previous leader left half done, a manual failover of a down master, a
//! planned switchover from a live one — runs the same sequence (`daemon/act.rs`):
//!
//! 1. **record**: a lock-checked write of the topology with `promoting` set, so that a
//!    leader taking over finishes this promotion and no other (a roll-forward only
//!    confirms the lock: the record is already there);
//! 2. **promote**: the Redis step of the kind (`REPLICAOF NO ONE`, `FAILOVER TO`, or a
//!    check that the recorded node already is a master);
//! 3. **confirm** the lock, then **re-point** the other live nodes;
//! 4. **publish** the new master (`+switch-master`) and append the failover history.
//!
//! The differences between the kinds are data on [`Kind`]; the topologies written at each
//! step are derived here.

use redis_failover_client::wire::{FailoverKind, FailoverRecord};
use redis_failover_client::{NodeAddr, Topology};

use super::derive::derive_topology;
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
}

impl Promotion {
    /// Written (lock-checked) before any Redis command: `from` still named, `to` being
    /// promoted.
    pub fn intent(&self, epoch: u64, view: &View) -> Topology {
        let mut t = derive_topology(Some(&self.from), epoch, view);
        t.promoting = Some(self.to.clone());
        t
    }

    /// The live nodes to make replicas of `to` once it is the master.
    pub fn to_repoint(&self, view: &View) -> Vec<NodeAddr> {
        view.iter()
            .filter(|(a, h)| {
                **a != self.to && (**a != self.from || self.kind.repoints_old_master()) && h.is_up()
            })
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// Published once `to` is the master, at the new `epoch`.
    pub fn result(&self, epoch: u64, view: &View) -> Topology {
        derive_topology(Some(&self.to), epoch, view)
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::health::NodeHealth;
    use crate::core::info::{NodeInfo, Role};
    use std::time::Instant;

    fn a(port: u16) -> NodeAddr {
        NodeAddr::new("h", port)
    }

    fn node(role: Role) -> NodeHealth {
        let mut h = NodeHealth::new();
        let info = NodeInfo {
            role,
            offset: 10,
            priority: 100,
        };
        h.on_success(Instant::now(), Some(info), None);
        h
    }

    fn replica_of(port: u16) -> NodeHealth {
        node(Role::Replica {
            master: a(port),
            link_up: true,
            syncing: false,
            link_down_secs: None,
        })
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
        v.insert(a(3), replica_of(1));
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
        let result = plan(Kind::Failover).result(5, &v);
        assert_eq!(result.master, Some(a(2)));
        assert_eq!(result.promoting, None);
        assert!(result.unavailable.contains(&a(1)));
        let record = plan(Kind::Manual).record(7, 30, 5, "m1");
        assert_eq!(
            (record.kind, record.epoch, record.manager.as_str()),
            (FailoverKind::Manual, 5, "m1")
        );
    }
}
