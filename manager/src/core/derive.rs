//! What should be published, derived from the probes' view: the one place where a
//! topology is built from the nodes' reported roles.

use redis_failover_client::{NodeAddr, Topology};

use super::info::NodeInfo;
use super::View;

pub(crate) fn up_info<'a>(view: &'a View, addr: &NodeAddr) -> Option<&'a NodeInfo> {
    view.get(addr).filter(|h| h.is_up()).and_then(|h| h.info())
}

/// What should be published for `master` given the view. Never more than one master: the
/// `master` field is the only place one can appear, and a node is listed as a replica only
/// when it reports that it replicates from it.
pub fn derive_topology(master: Option<&NodeAddr>, epoch: u64, view: &View) -> Topology {
    let master_up = master
        .and_then(|m| up_info(view, m))
        .is_some_and(|i| i.is_master());
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
        let follows_master = health.is_up()
            && health
                .info()
                .is_some_and(|i| master.is_some() && i.master() == master);
        // While the master is up a replica must also have its link up (a replica still
        // loading its first sync serves nothing useful). While it is down, replicas of it
        // still serve reads.
        let listed = follows_master && (!master_up || health.info().is_some_and(|i| i.link_up()));
        if listed {
            topo.slaves.push(addr.clone());
        } else {
            topo.unavailable.push(addr.clone());
        }
    }
    topo
}
