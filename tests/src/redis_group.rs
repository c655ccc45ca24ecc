//! A replication group ([`RedisGroup`]): a master and replicas of it in one temp dir.

use std::path::Path;
use std::time::Duration;

use redis_failover_client::NodeAddr;

use crate::redis_helpers::NodeRole;
use crate::redis_node::RedisNode;
use crate::util::free_port;

/// How long replicas of a fresh [`RedisGroup`] may take to report `master_link_status:up`.
const LINK_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// A temp dir with a master (`node(0)`) and replicas of it. Dropping it kills all nodes,
/// then removes the dir.
#[derive(Debug)]
pub struct RedisGroup {
    nodes: Vec<RedisNode>,
    // last field: dropped after the nodes are killed
    dir: tempfile::TempDir,
}

impl RedisGroup {
    /// A master and 2 replicas, both replicas linked (`master_link_status:up`).
    pub fn trio() -> RedisGroup {
        Self::start(2, &[])
    }

    /// A master (`node(0)`) and `n_replicas` replicas of it on free ports, every node started
    /// with `extra_args`; waits (up to 30 s) until every replica reports its link up.
    ///
    /// # Panics
    /// If a node does not start or a link does not come up in time.
    pub fn start(n_replicas: usize, extra_args: &[&str]) -> RedisGroup {
        let dir = tempfile::Builder::new()
            .prefix("rf-redis-")
            .tempdir()
            .expect("RedisGroup: cannot create a temp dir");
        let extra: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let mut nodes: Vec<RedisNode> = Vec::with_capacity(n_replicas + 1);
        for i in 0..=n_replicas {
            let replica_of = if i == 0 { None } else { Some(nodes[0].port()) };
            nodes.push(Self::start_on_some_port(dir.path(), replica_of, &extra));
        }
        let group = RedisGroup { nodes, dir };
        for node in &group.nodes[1..] {
            let master = node.wait_link_up(LINK_UP_TIMEOUT);
            assert_eq!(
                master,
                group.nodes[0].port(),
                "replica {} follows the wrong master",
                node.addr()
            );
        }
        group
    }

    /// Starts a node on a free port, retrying on another port if it exits at once (a port
    /// picked by free_port() may be taken by someone else before redis binds it).
    fn start_on_some_port(dir: &Path, replica_of: Option<u16>, extra: &[String]) -> RedisNode {
        let mut last = String::new();
        for _ in 0..3 {
            match RedisNode::try_start(dir, free_port(), replica_of, extra.to_vec()) {
                Ok(node) => return node,
                Err((e, true)) => last = e,
                Err((e, false)) => panic!("{e}"),
            }
        }
        panic!("{last}");
    }

    /// The shared temp dir of all nodes.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `"127.0.0.1:PORT"` of every node, master first.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(RedisNode::addr).collect()
    }

    /// Ports of every node, master first.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisNode::port).collect()
    }

    /// Number of nodes (master included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a group has at least its master.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// All nodes, master first.
    pub fn nodes(&self) -> &[RedisNode] {
        &self.nodes
    }

    /// The node at `addr`.
    ///
    /// # Panics
    /// When no node of the group is at `addr`.
    pub fn node_at(&self, addr: &NodeAddr) -> &RedisNode {
        self.nodes
            .iter()
            .find(|n| n.node_addr() == *addr)
            .unwrap_or_else(|| panic!("{addr} is not a node of the group"))
    }

    /// Node `i` (0 = the initial master).
    pub fn node(&self, i: usize) -> &RedisNode {
        &self.nodes[i]
    }

    /// Asserts that every node but the first (a trio's replicas) still reports role replica;
    /// the failure line is "<node> was promoted <why>".
    pub fn assert_replicas_kept(&self, why: &str) {
        for n in &self.nodes[1..] {
            assert!(
                matches!(n.role(), Some(NodeRole::Replica { .. })),
                "{} was promoted {why}",
                n.addr()
            );
        }
    }

    /// Node `i`, mutably.
    pub fn node_mut(&mut self, i: usize) -> &mut RedisNode {
        &mut self.nodes[i]
    }
}

impl Drop for RedisGroup {
    fn drop(&mut self) {
        // SIGKILL everyone first so replicas do not spin reconnecting while others die,
        // then reap each (the nodes' own Drop does that).
        for node in &self.nodes {
            node.kill_nowait();
        }
        self.nodes.clear();
    }
}
