//! Redis Sentinel, side by side with our managers: what `sentinel_bench` and `soak` need of it.
//!
//! * [`procs`] (from `redis_failover_tests::sentinel`): real Sentinel processes
//!   (`redis-sentinel`, or `redis-server --sentinel`) on free loopback ports, monitoring one
//!   master as [`MASTER_NAME`], and commands to them;
//! * [`events`]: a `PSUBSCRIBE *` on every sentinel, each event with the instant it arrived;
//! * [`writer`] (from `redis_failover_tests::sentinel`): a Sentinel-aware redis-rs writer for
//!   [`redis_failover_tests::writer::Writer`].

pub mod events;
pub use redis_failover_tests::sentinel::{procs, writer};

use std::path::PathBuf;
use std::sync::Arc;

use crate::tasks::{join_error, start_trio, teardown};
use crate::watched::{Watched, Watchers};

pub use events::{EventTap, SentinelEvent};
pub use redis_failover_tests::sentinel::{
    sentinel_cmd, SentinelProgram, SentinelSettings, SentinelWriter, Sentinels, MASTER_NAME,
};

impl Watchers for Arc<Sentinels> {
    fn tails(&self, n: usize) -> String {
        Sentinels::tails(self, n)
    }

    fn log_paths(&self) -> Vec<PathBuf> {
        Sentinels::log_paths(self)
    }
}

/// A fresh trio and 3 sentinels on it (quorum 2, parallel-syncs 1) with these timeouts; the
/// trio is torn down again when the sentinels cannot start.
pub async fn start_watched(
    program: SentinelProgram,
    down_after_ms: u64,
    failover_timeout_ms: u64,
) -> Result<Watched<Arc<Sentinels>>, String> {
    let group = start_trio().await?;
    let settings = SentinelSettings {
        quorum: 2,
        down_after_ms,
        failover_timeout_ms,
        parallel_syncs: 1,
    };
    let port = group.node(0).port();
    let started =
        tokio::task::spawn_blocking(move || Sentinels::start(&program, 3, port, settings))
            .await
            .map_err(|e| format!("starting the sentinels: {}", join_error(e)))
            .and_then(|r| r);
    match started {
        Ok(s) => Ok(Watched {
            watchers: Arc::new(s),
            group,
        }),
        Err(e) => {
            teardown("the trio", move || drop(group)).await;
            Err(e)
        }
    }
}

/// Waits (off the runtime's workers) until every sentinel knows the master with 2 replicas
/// and the other sentinels, and `SENTINEL CKQUORUM` is OK; then taps their events.
pub async fn ready_and_tapped(
    sentinels: &Arc<Sentinels>,
    timeout: std::time::Duration,
) -> Result<EventTap, String> {
    let sn = Arc::clone(sentinels);
    tokio::task::spawn_blocking(move || sn.wait_ready(2, timeout))
        .await
        .map_err(|e| format!("waiting for the sentinels: {}", join_error(e)))??;
    EventTap::start(&sentinels.ports()).await
}
