//! Self-fencing: what keeps a master that is cut off from the managers from acknowledging
//! writes that a failover would throw away. Pure.
//!
//! With `--fencing min-replicas` (the default) the leader sets `min-replicas-to-write 1`
//! and `min-replicas-max-lag L` on the master while it has a live replica: Redis then
//! refuses writes (`NOREPLICAS`) once no replica has acknowledged the replication stream
//! for `L` seconds. A master cut off from every replica therefore stops taking writes
//! within [`Fencing::bound`] of the last acknowledgement it got; a failover of a master that
//! is unreachable (rather than proven gone) publishes the new master only after that bound
//! (see `decide.rs`). Replicas get `min-replicas-to-write 0`, so that a promoted replica
//! takes writes at once; the leader fences it as soon as a replica follows it.
//!
//! A master with no live replica gets `min-replicas-to-write 0` as well: with nothing to
//! promote there is nothing to fence against, and it keeps taking writes. The price: an
//! unreachable master that was last seen without a fence is not replaced automatically
//! (it may still be taking writes); an operator's `redis_node_manager failover` is.

use std::time::Duration;

use redis_failover_client::NodeAddr;

use super::derive::up_info;
use super::View;

/// `--fencing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fencing {
    /// Nothing is set on the nodes, and an unreachable master is replaced like a crashed
    /// one: availability first (Sentinel's behaviour).
    None,
    /// `min-replicas-to-write 1` / `min-replicas-max-lag max_lag_secs` on the master.
    MinReplicas { max_lag_secs: u64 },
}

/// The `min-replicas-*` pair the leader sets on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FenceSetting {
    pub min_replicas: u32,
    pub max_lag_secs: u64,
}

impl std::fmt::Display for FenceSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "min-replicas-to-write {} min-replicas-max-lag {}",
            self.min_replicas, self.max_lag_secs
        )
    }
}

impl Fencing {
    /// How long after its last acknowledgement from a replica a fenced master may still
    /// acknowledge a write: Redis counts lag in whole seconds (`L` allows up to `L + 1`)
    /// and refreshes its count of good replicas once a second.
    pub fn bound(&self) -> Duration {
        match self {
            Fencing::None => Duration::ZERO,
            Fencing::MinReplicas { max_lag_secs } => Duration::from_secs(max_lag_secs + 2),
        }
    }

    pub fn enabled(&self) -> bool {
        matches!(self, Fencing::MinReplicas { .. })
    }

    /// What `node` should have, given the group's `master`: the fence on a master with a
    /// live replica following it, none elsewhere. `None` when fencing is off (the nodes'
    /// own configuration is left alone).
    pub fn wanted(&self, view: &View, master: &NodeAddr, node: &NodeAddr) -> Option<FenceSetting> {
        let Fencing::MinReplicas { max_lag_secs } = *self else {
            return None;
        };
        let followed = node == master
            && view.keys().any(|n| {
                n != master && up_info(view, n).is_some_and(|i| i.master() == Some(master))
            });
        Some(FenceSetting {
            min_replicas: u32::from(followed),
            max_lag_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::health::NodeHealth;
    use crate::core::info::Role;
    use crate::core::test_support::{a, answered, info, linked_to};
    use std::time::Instant;

    fn up(role: Role) -> NodeHealth {
        answered(Instant::now(), info(role, 1))
    }

    #[test]
    fn the_master_is_fenced_only_while_a_replica_follows_it() {
        let on = Fencing::MinReplicas { max_lag_secs: 2 };
        let set = |k| {
            Some(FenceSetting {
                min_replicas: k,
                max_lag_secs: 2,
            })
        };
        let mut v = View::new();
        v.insert(a(1), up(Role::Master));
        v.insert(a(2), up(linked_to(1)));
        assert_eq!(on.wanted(&v, &a(1), &a(1)), set(1), "master with a replica");
        assert_eq!(
            on.wanted(&v, &a(1), &a(2)),
            set(0),
            "replicas are not fenced"
        );
        v.get_mut(&a(2))
            .map(|h| h.on_failure(Instant::now(), "refused", 1));
        assert_eq!(on.wanted(&v, &a(1), &a(1)), set(0), "no live replica");
        assert_eq!(Fencing::None.wanted(&v, &a(1), &a(1)), None, "off");
        assert_eq!(on.bound(), Duration::from_secs(4));
        assert_eq!(Fencing::None.bound(), Duration::ZERO);
    }
}
