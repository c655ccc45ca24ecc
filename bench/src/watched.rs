//! A fresh Redis trio with what watches it (our manager processes, or Redis Sentinels): the
//! measurement of a run on it, with the watchers' log tails added to a failure, and its
//! teardown off the runtime's workers.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use redis_failover_tests::RedisGroup;

use crate::tasks::teardown;

/// What watches a trio, as far as a run's end needs it.
pub trait Watchers: Send + 'static {
    /// The last `n` lines of each of their logs, each under a header.
    fn tails(&self, n: usize) -> String;

    /// Their log files.
    fn log_paths(&self) -> Vec<PathBuf>;
}

/// A trio and its watchers; dropping it kills them (watchers first).
pub struct Watched<W: Watchers> {
    // Field order: the watchers are dropped (killed) before the trio.
    pub watchers: W,
    pub group: Arc<RedisGroup>,
}

impl<W: Watchers> Watched<W> {
    /// Runs `measure` on the trio and its watchers, with the tails (`tail` lines) of their
    /// logs added to a failure.
    pub async fn measure<'a, T, F, Fut>(&'a self, tail: usize, measure: F) -> Result<T, String>
    where
        F: FnOnce(&'a Arc<RedisGroup>, &'a W) -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        measure(&self.group, &self.watchers)
            .await
            .map_err(|e| format!("{e}{}", self.watchers.tails(tail)))
    }

    /// The watchers' and the Redis nodes' log files.
    pub fn log_paths(&self) -> Vec<PathBuf> {
        let mut logs = self.watchers.log_paths();
        logs.extend(self.group.nodes().iter().map(|n| n.log_path()));
        logs
    }

    /// Kills the watchers, then the trio, off the runtime's workers.
    pub async fn teardown(self) {
        teardown("the watchers and the trio", move || drop(self)).await;
    }
}
