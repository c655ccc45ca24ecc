//! The Redis nodes of a run as the bench addresses them: `127.0.0.1:port`, and the trio's
//! master and replicas.

use redis_failover_client::{NodeAddr, Topology};
use redis_failover_tests::RedisGroup;

/// `127.0.0.1:port`.
pub fn node_addr(port: u16) -> NodeAddr {
    NodeAddr::new("127.0.0.1", port)
}

/// The addresses of a group as it starts: node 0 the master, the others its replicas.
#[derive(Clone, Debug)]
pub struct Trio {
    pub master: NodeAddr,
    pub replicas: Vec<NodeAddr>,
}

impl Trio {
    pub fn of(group: &RedisGroup) -> Trio {
        Trio {
            master: node_addr(group.node(0).port()),
            replicas: group.nodes()[1..]
                .iter()
                .map(|n| node_addr(n.port()))
                .collect(),
        }
    }

    /// Whether `t` names the master with every replica.
    pub fn published_in(&self, t: &Topology) -> bool {
        t.master.as_ref() == Some(&self.master)
            && self.replicas.iter().all(|r| t.slaves.contains(r))
    }

    /// The replicas, comma-separated.
    pub fn replica_list(&self) -> String {
        redis_failover_tests::comma_list(&self.replicas)
    }
}
