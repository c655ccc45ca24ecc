//! The Sentinel side of a partition run: 3 `redis-sentinel` processes on the managers' hosts
//! (quorum 2, `down-after-milliseconds` of the run, failover-timeout 5 s, parallel-syncs 1,
//! each bound to and announcing its host's address), what they name as the master (the first
//! new one, convergence), and the clients' writer: redis-rs's Sentinel client in a
//! [`SentinelWriter`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_failover_client::NodeAddr;

use super::run::{manager_host, one_master_followed, Watch, START_TIMEOUT, WATCH_EVERY};
use super::Options;
use crate::netns::Net;
use crate::sentinel::{SentinelProgram, SentinelSettings, SentinelWriter, Sentinels};
use crate::RedisNode;

/// `down-after-milliseconds` when the options leave it open.
const DEFAULT_DOWN_AFTER_MS: u64 = 1000;
const FAILOVER_TIMEOUT_MS: u64 = 5000;
/// Bound on one `SENTINEL get-master-addr-by-name` of the watcher and the convergence check.
const ASK_TIMEOUT: Duration = Duration::from_millis(300);
/// The writers' bounds: a reply, a connection, and the pause after the sentinels could not
/// name a reachable master.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The sentinels, running (killed by pid when dropped).
pub(super) struct SentinelSide {
    sentinels: Arc<Sentinels>,
}

/// Runs blocking `f` off the runtime's workers.
async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("{what}: {e}"))
}

impl SentinelSide {
    /// Starts a sentinel on each manager host monitoring `nodes[0]`, and waits until each
    /// knows the master, its 2 replicas and the 2 other sentinels, with its quorum reachable.
    pub(super) async fn start(
        net: &Net,
        o: &Options,
        nodes: &[RedisNode],
    ) -> Result<SentinelSide, String> {
        let program = SentinelProgram::find()?;
        let places = (0..3)
            .map(|i| net.host(manager_host(o, i)).map(|h| h.place()))
            .collect::<Result<Vec<_>, String>>()?;
        let settings = SentinelSettings {
            quorum: 2,
            down_after_ms: o.down_after_ms.unwrap_or(DEFAULT_DOWN_AFTER_MS),
            failover_timeout_ms: FAILOVER_TIMEOUT_MS,
            parallel_syncs: 1,
        };
        let (master, dir) = (nodes[0].node_addr(), o.log_dir.join("sentinels"));
        let sentinels = blocking("starting the sentinels", move || {
            Sentinels::start_at(&program, &places, &master, settings, &dir)
        })
        .await??;
        let sentinels = Arc::new(sentinels);
        let s = Arc::clone(&sentinels);
        blocking("waiting for the sentinels", move || {
            s.wait_ready(2, START_TIMEOUT)
        })
        .await??;
        Ok(SentinelSide { sentinels })
    }

    /// A client's writer (keys under `namespace`), as a redis-rs application would build it.
    pub(super) fn writer(
        sentinels: &[NodeAddr],
        namespace: String,
    ) -> Result<SentinelWriter, String> {
        Ok(
            SentinelWriter::over(sentinels, COMMAND_TIMEOUT, CONNECT_TIMEOUT, RETRY_PAUSE)?
                .namespace(namespace),
        )
    }

    /// The sentinels' addresses.
    pub(super) fn addrs(&self) -> Vec<NodeAddr> {
        self.sentinels.addrs()
    }

    /// The node every other node replicates from (link up), when exactly one answers master
    /// and every sentinel names it.
    pub(super) async fn converged(&self, nodes: &[RedisNode]) -> Option<usize> {
        let m = one_master_followed(nodes)?;
        let want = nodes[m].node_addr();
        let s = Arc::clone(&self.sentinels);
        let answers = blocking("asking the sentinels", move || s.master_addrs(ASK_TIMEOUT))
            .await
            .ok()?;
        answers
            .iter()
            .all(|a| a.as_ref().is_ok_and(|a| *a == want))
            .then_some(m)
    }

    /// Watches from here (see [`Watch`]) for the first time any sentinel names another
    /// master.
    pub(super) fn watch(&self, w: Watch) -> tokio::task::JoinHandle<Option<Instant>> {
        let s = Arc::clone(&self.sentinels);
        tokio::task::spawn_blocking(move || loop {
            let named_other = s
                .master_addrs(ASK_TIMEOUT)
                .iter()
                .any(|a| a.as_ref().is_ok_and(|a| *a != w.first));
            if named_other {
                return Some(Instant::now());
            }
            if w.over() {
                return None;
            }
            std::thread::sleep(WATCH_EVERY);
        })
    }

    /// A message when a sentinel process has exited.
    pub(super) fn exited(&self) -> Option<String> {
        self.sentinels.exited()
    }
}
