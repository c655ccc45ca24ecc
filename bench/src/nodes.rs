//! The Redis nodes of a run as the bench addresses them: `127.0.0.1:port`, connections with
//! deadlines, and the trio's master and replicas.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use redis_failover_client::{NodeAddr, Topology};
use redis_failover_tests::RedisGroup;

/// `127.0.0.1:port`.
pub fn node_addr(port: u16) -> NodeAddr {
    NodeAddr::new("127.0.0.1", port)
}

/// A plain redis-rs connection to `addr`, set up within `connect`, each reply within
/// `response`.
pub async fn open(
    addr: &NodeAddr,
    connect: Duration,
    response: Duration,
) -> Result<MultiplexedConnection, String> {
    let client =
        redis::Client::open(format!("redis://{addr}/")).map_err(|e| format!("{addr}: {e}"))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect))
        .set_response_timeout(Some(response));
    match tokio::time::timeout(
        connect + Duration::from_millis(10),
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("connecting to {addr}: {e}")),
        Err(_) => Err(format!(
            "connecting to {addr}: no connection within {} ms",
            connect.as_millis()
        )),
    }
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
        self.replicas
            .iter()
            .map(NodeAddr::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}
