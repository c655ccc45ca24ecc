//! What should be published, derived from the probes' view: the one place where a
//! topology is built from the nodes' reported roles.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use redis_failover_client::{NodeAddr, Topology};

use super::info::NodeInfo;
use super::View;

pub(crate) fn up_info<'a>(view: &'a View, addr: &NodeAddr) -> Option<&'a NodeInfo> {
    view.get(addr).filter(|h| h.is_up()).and_then(|h| h.info())
}

/// How long after a promotion a re-pointed replica ([`Resyncing`]) is published as a
/// replica while its link to the new master comes up. Redis connects at once and a partial
/// resync takes milliseconds; past this bound a link still down is a real problem.
pub const RESYNC_GRACE: Duration = Duration::from_secs(5);

/// The replicas a promotion re-pointed at the new master (they accepted `REPLICAOF`) that
/// carry its data: they followed the old master and were not in a full sync, or are the
/// demoted master of a switchover. Redis resumes them with a partial resync (`PSYNC`) and
/// they serve their data meanwhile, so they are not down: they are published as replicas
/// while their link comes up, for at most [`RESYNC_GRACE`]. A node leaves the set once its
/// link is up (the usual rule lists it from then on) or it is seen in a full sync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resyncing {
    nodes: BTreeSet<NodeAddr>,
    until: Option<Instant>,
}

impl Resyncing {
    /// `nodes`, re-pointed at `now`.
    pub fn new(nodes: BTreeSet<NodeAddr>, now: Instant) -> Self {
        let until = (!nodes.is_empty()).then(|| now + RESYNC_GRACE);
        Self { nodes, until }
    }

    /// The nodes still resyncing at `now` (none once the grace is over).
    pub fn at(&self, now: Instant) -> &BTreeSet<NodeAddr> {
        static NONE: BTreeSet<NodeAddr> = BTreeSet::new();
        match self.until {
            Some(until) if now < until => &self.nodes,
            _ => &NONE,
        }
    }

    /// Forgets the nodes whose link to `master` is up, that are down or in a full sync, and
    /// every node once the grace is over.
    pub fn settle(&mut self, view: &View, master: Option<&NodeAddr>, now: Instant) {
        if self.until.is_none_or(|until| now >= until) {
            *self = Self::default();
            return;
        }
        self.nodes.retain(|n| match up_info(view, n) {
            None => false,
            Some(i) => {
                let caught_up = i.link_up() && i.master() == master;
                !(i.syncing() || caught_up)
            }
        });
        if self.nodes.is_empty() {
            *self = Self::default();
        }
    }
}

/// What should be published for `master` given the view. Never more than one master: the
/// `master` field is the only place one can appear, and a node is listed as a replica only
/// when it reports that it replicates from it. While the master is up and answers, a
/// replica must also have its link up, unless it is one of `resyncing` ([`Resyncing`]) and
/// not in a full sync.
pub fn derive_topology(
    master: Option<&NodeAddr>,
    epoch: u64,
    view: &View,
    resyncing: &BTreeSet<NodeAddr>,
) -> Topology {
    let master_up = master
        .and_then(|m| up_info(view, m))
        .is_some_and(|i| i.is_master());
    // A master that failed its latest probe may be dying (a crash is confirmed within tens
    // of milliseconds): its replicas' links are down because of it, and they keep serving
    // reads as when it is down, rather than leave the read pool for that while.
    let master_answers = master_up
        && !master
            .and_then(|m| view.get(m))
            .is_some_and(|h| h.failing());
    let mut topo = Topology {
        master: if master_up { master.cloned() } else { None },
        epoch,
        ..Topology::default()
    };
    for (addr, health) in view {
        if Some(addr) == master {
            if !master_up {
                topo.unavailable.push(addr.clone());
            }
            continue;
        }
        let info = health.info().filter(|_| health.is_up());
        let follows_master = info.is_some_and(|i| master.is_some() && i.master() == master);
        // While the master is up a replica must also have its link up (a replica still
        // loading its first sync serves nothing useful), or be resuming by a partial resync
        // after a promotion. While it is down, replicas of it still serve reads.
        let serving =
            info.is_some_and(|i| i.link_up() || (resyncing.contains(addr) && !i.syncing()));
        if follows_master && (!master_answers || serving) {
            topo.slaves.push(addr.clone());
        } else {
            topo.unavailable.push(addr.clone());
        }
    }
    topo
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::info::Role;
    use crate::core::test_support::{a, answered, info, replica_of};

    /// How a node of the table reports itself.
    #[derive(Clone, Copy)]
    enum N {
        Master,
        /// A replica of `port`: link up, link down (connecting, or a partial resync under
        /// way), or in a full sync.
        Up(u16),
        Connecting(u16),
        FullSync(u16),
        Down,
        /// Master, up, but its latest probe failed.
        Failing,
    }

    fn view(nodes: &[(u16, N)], now: Instant) -> View {
        let mut v = View::new();
        for &(port, n) in nodes {
            let replica =
                |m, link_up, syncing| replica_of(m, link_up, syncing, (!link_up).then_some(0));
            let role = match n {
                N::Master | N::Down | N::Failing => Role::Master,
                N::Up(m) => replica(m, true, false),
                N::Connecting(m) => replica(m, false, false),
                N::FullSync(m) => replica(m, false, true),
            };
            let mut h = answered(now, info(role, 10));
            match n {
                N::Down => {
                    h.on_failure(now, "connection refused", 1);
                }
                N::Failing => {
                    h.on_failure(now, "connection refused", 3);
                }
                _ => {}
            }
            v.insert(a(port), h);
        }
        v
    }

    fn set(ports: &[u16]) -> BTreeSet<NodeAddr> {
        ports.iter().map(|p| a(*p)).collect()
    }

    /// Which nodes are listed as replicas (the others are unavailable), for h:1 the master.
    #[test]
    fn a_resyncing_replica_is_listed_while_its_link_comes_up() {
        use N::*;
        let now = Instant::now();
        #[allow(clippy::type_complexity)]
        let cases: Vec<(&str, Vec<(u16, N)>, &[u16], &[u16])> = vec![
            ("link up: listed", vec![(1, Master), (2, Up(1))], &[], &[2]),
            (
                "link down, not resyncing: unavailable",
                vec![(1, Master), (2, Connecting(1))],
                &[],
                &[],
            ),
            (
                "link down, resyncing: listed",
                vec![(1, Master), (2, Connecting(1))],
                &[2],
                &[2],
            ),
            (
                "a full sync is not a partial resync",
                vec![(1, Master), (2, FullSync(1))],
                &[2],
                &[],
            ),
            (
                "resyncing from another master",
                vec![(1, Master), (2, Connecting(3)), (3, Master)],
                &[2],
                &[],
            ),
            (
                "a dead node is never listed",
                vec![(1, Master), (2, Down)],
                &[2],
                &[],
            ),
            (
                "the master is never a replica too",
                vec![(1, Master), (2, Up(1))],
                &[1],
                &[2],
            ),
            (
                "master failing, not yet down: its replicas still serve reads",
                vec![(1, Failing), (2, Connecting(1)), (3, Up(1))],
                &[],
                &[2, 3],
            ),
            (
                "master down: its replicas serve reads",
                vec![(1, Down), (2, Connecting(1)), (3, FullSync(1))],
                &[],
                &[2, 3],
            ),
        ];
        for (what, nodes, resyncing, want) in cases {
            let v = view(&nodes, now);
            let t = derive_topology(Some(&a(1)), 3, &v, &set(resyncing));
            assert_eq!(
                t.slaves,
                want.iter().map(|p| a(*p)).collect::<Vec<_>>(),
                "{what}"
            );
            // Every configured node is either the master, a replica or unavailable, once.
            let mut all: Vec<NodeAddr> = t
                .master
                .iter()
                .chain(&t.slaves)
                .chain(&t.unavailable)
                .cloned()
                .collect();
            all.sort();
            assert_eq!(
                all,
                nodes.iter().map(|(p, _)| a(*p)).collect::<Vec<_>>(),
                "{what}"
            );
            assert!(t.master.is_none() || !t.slaves.contains(&a(1)), "{what}");
        }
    }

    #[test]
    fn resyncing_ends_with_the_link_up_a_full_sync_or_the_grace() {
        use N::*;
        let now = Instant::now();
        let r = Resyncing::new(set(&[2, 3, 4, 5]), now);
        assert_eq!(r.at(now), &set(&[2, 3, 4, 5]));
        assert!(r.at(now + RESYNC_GRACE).is_empty(), "over after the grace");
        assert!(Resyncing::new(set(&[]), now).at(now).is_empty());

        let v = view(
            &[
                (1, Master),
                (2, Up(1)),
                (3, Connecting(1)),
                (4, FullSync(1)),
                (5, Down),
            ],
            now,
        );
        let mut settled = r.clone();
        settled.settle(&v, Some(&a(1)), now);
        assert_eq!(settled.at(now), &set(&[3]), "only the one still connecting");
        let mut late = r.clone();
        late.settle(&v, Some(&a(1)), now + RESYNC_GRACE);
        assert_eq!(late, Resyncing::default());
        // A link up to another node than the master is not the resync being waited for.
        let mut other = Resyncing::new(set(&[2]), now);
        other.settle(&v, Some(&a(9)), now);
        assert_eq!(other.at(now), &set(&[2]));
    }
}
