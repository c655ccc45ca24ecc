//! The Redis nodes of a run: N groups `g1` .. `gN` of 3 `redis-server` processes each
//! (master + 2 replicas on loopback, distinct free ports, `--save ''`, no persistence: the
//! harness's `RedisGroup::trio`, which waits until both replicas report their link up),
//! started a few at a time off the runtime's workers. Every process is killed by pid when
//! the groups are dropped (the harness's guards), also when a start fails half-way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis_failover_tests::RedisGroup;

use crate::nodes::Trio;
use crate::tasks::{start_trio, teardown};

/// Groups started at the same time.
const PARALLEL: usize = 8;

/// N groups; dropping them kills every node.
pub(crate) struct Groups {
    list: Vec<Arc<RedisGroup>>,
}

impl Groups {
    /// Starts `n` groups, all within `timeout`; prints how long it took.
    pub(crate) async fn start(n: usize, timeout: Duration) -> Result<Groups, String> {
        let t0 = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut list = Vec::with_capacity(n);
        let mut pending = futures::stream::iter((0..n).map(|_| start_trio())).buffered(PARALLEL);
        let failure = loop {
            match tokio::time::timeout_at(deadline, pending.next()).await {
                Ok(Some(Ok(g))) => list.push(g),
                Ok(Some(Err(e))) => break Some(e),
                Ok(None) => break None,
                Err(_) => {
                    break Some(format!(
                        "{} of {n} Redis groups started within {timeout:?}",
                        list.len()
                    ))
                }
            }
        };
        // Starts still under way finish on their blocking threads; their groups are dropped
        // (killed) there.
        drop(pending);
        let groups = Groups { list };
        if let Some(e) = failure {
            groups.teardown().await;
            return Err(format!("starting {n} Redis groups: {e}"));
        }
        eprintln!(
            "scale_bench: {n} groups ({} redis-server) up, replicas linked, in {:.1} s",
            3 * n,
            t0.elapsed().as_secs_f64()
        );
        Ok(groups)
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// Group `i` (0-based; its name is [`Groups::name`]`(i)`).
    pub(crate) fn get(&self, i: usize) -> &Arc<RedisGroup> {
        &self.list[i]
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<RedisGroup>> {
        self.list.iter()
    }

    /// `g<i+1>`.
    pub(crate) fn name(i: usize) -> String {
        format!("g{}", i + 1)
    }

    /// Group `i`'s master (node 0) and replicas as started.
    pub(crate) fn trio(&self, i: usize) -> Trio {
        Trio::of(&self.list[i])
    }

    /// The ports of every node of every group.
    pub(crate) fn ports(&self) -> Vec<u16> {
        self.list.iter().flat_map(|g| g.ports()).collect()
    }

    /// Kills every node, off the runtime's workers.
    pub(crate) async fn teardown(self) {
        let n = self.list.len();
        teardown(&format!("{n} Redis groups"), move || drop(self)).await;
    }
}
