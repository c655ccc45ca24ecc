//! What the example programs share: where the group is (`--zk`, `--znode-path`, with the
//! same environment variables as `redis_node_manager`) and one-line errors that name the flag
//! to fix.

use redis_failover_client::{ConnectError, NodeAddr, TopologyReadError};

/// Default ZooKeeper servers of the examples (a local ZooKeeper on its standard port).
pub const DEFAULT_ZK: &str = "127.0.0.1:2181";
/// Default root znode, the same as `redis_node_manager`'s.
pub const DEFAULT_ZNODE_PATH: &str = "/redis_failover";
/// Printed at the end of every example's `--help`.
pub const AFTER_HELP: &str = "Against scripts/demo.sh: give the --zk (and --znode-path) it \
                              prints, e.g. --zk 127.0.0.1:22181 --znode-path /redis_failover.";

/// Where the group's topology is: the flags every example takes.
#[derive(clap::Args, Debug, Clone)]
pub struct GroupArgs {
    /// ZooKeeper servers the node manager publishes to, host:port,host:port,...
    #[arg(
        short = 'z',
        long = "zk",
        visible_alias = "zkservers",
        env = "REDIS_FAILOVER_ZKSERVERS",
        default_value = DEFAULT_ZK,
        value_name = "HOST:PORT,...",
        value_parser = zk_servers
    )]
    pub zk: String,

    /// Root znode of the group: the node manager's --znode-path.
    #[arg(
        long,
        env = "REDIS_FAILOVER_ZNODE_PATH",
        default_value = DEFAULT_ZNODE_PATH,
        value_name = "PATH",
        value_parser = znode_path
    )]
    pub znode_path: String,
}

impl GroupArgs {
    /// `e` in one line, with the flag (and environment variable) that is probably wrong.
    pub fn explain(&self, e: &ConnectError) -> String {
        match e {
            ConnectError::ZooKeeper(_) => format!("{e} (check --zk / REDIS_FAILOVER_ZKSERVERS)"),
            ConnectError::Topology(TopologyReadError::Missing { .. }) => {
                format!("{e} (check --znode-path / REDIS_FAILOVER_ZNODE_PATH)")
            }
            _ => e.to_string(),
        }
    }
}

/// Nodes as `host:port` strings, for printing a topology's replicas.
pub fn names(nodes: &[NodeAddr]) -> Vec<String> {
    nodes.iter().map(NodeAddr::to_string).collect()
}

/// Prints `<program>: <msg>` on stderr (one line) and exits with status 1.
pub fn fail(program: &str, msg: &str) -> ! {
    eprintln!("{program}: {}", msg.replace('\n', " "));
    std::process::exit(1);
}

/// `--zk`: a list of host:port, optionally followed by a /chroot.
fn zk_servers(s: &str) -> Result<String, String> {
    let hosts = s.split('/').next().unwrap_or("");
    if redis_failover_client::wire::parse_addr_list(hosts)?.is_empty() {
        return Err("no ZooKeeper server given".into());
    }
    Ok(s.to_string())
}

/// `--znode-path`: an absolute znode path.
fn znode_path(s: &str) -> Result<String, String> {
    redis_failover_client::ZnodePaths::new(s)?;
    Ok(s.to_string())
}
