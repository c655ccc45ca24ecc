//! The operator fronts: what every manager (leader or standby) shows and accepts from
//! outside. They read each group's [`snapshot`] and write operator requests to ZooKeeper;
//! they never act on Redis themselves.
//!
//! - [`snapshot`]: what a group's loop shows, refreshed through a `watch` channel.
//! - [`http`]: health checks for load balancers, `/status`, `/metrics`, `POST` actions.
//! - [`metrics`]: the Prometheus registry behind `/metrics`.
//! - [`sentinel`]: the Redis Sentinel protocol, so unmodified Sentinel clients work.
//! - [`cli`]: the `failover`, `pause`/`resume` and `status` subcommands.
//! - [`tls`]: the certificate the HTTP and Sentinel endpoints serve TLS with, if given.

use tokio::sync::watch;
use zookeeper_client as zk;

pub mod cli;
pub mod http;
pub mod metrics;
pub mod sentinel;
pub mod snapshot;
pub(crate) mod tls;

/// This manager's ZooKeeper session while it is connected: only then is the topology it
/// holds current (without it another manager may have replaced the master meanwhile).
pub(crate) fn live_session(session: &watch::Receiver<Option<zk::Client>>) -> Option<zk::Client> {
    session
        .borrow()
        .clone()
        .filter(|c| c.state() == zk::SessionState::SyncConnected)
}
