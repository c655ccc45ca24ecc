//! Helpers shared by the benchmark programs (`src/bin/*`): logging, addresses, connections
//! with deadlines, unit conversions.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use redis_failover_client::{NodeAddr, Topology};
use tokio::task::JoinError;
use zookeeper_client as zk;

pub mod sentinel;

/// Bound on one ZooKeeper read in [`watch_for_new_master`].
pub const ZK_READ_TIMEOUT: Duration = Duration::from_secs(3);

/// Logs to stderr, `warn` unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

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

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A random number in `[0, n)` (0 when `n` is 0), from std's randomly keyed hasher.
pub fn random_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    if n == 0 {
        return 0;
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() % n
}

pub fn join_error(e: JoinError) -> String {
    if e.is_panic() {
        panic_message(e.into_panic())
    } else {
        e.to_string()
    }
}

pub fn panic_message(p: Box<dyn Any + Send>) -> String {
    match p.downcast::<String>() {
        Ok(s) => format!("panicked: {s}"),
        Err(p) => match p.downcast::<&'static str>() {
            Ok(s) => format!("panicked: {s}"),
            Err(_) => "panicked".to_string(),
        },
    }
}

/// min / median / max of a sample.
pub struct Stats {
    pub min: Duration,
    pub median: Duration,
    pub max: Duration,
}

impl Stats {
    pub fn of(sample: impl Iterator<Item = Duration>) -> Option<Stats> {
        let mut v: Vec<Duration> = sample.collect();
        v.sort();
        let (first, last) = (*v.first()?, *v.last()?);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2
        };
        Some(Stats {
            min: first,
            median,
            max: last,
        })
    }
}

pub fn fmt_stats(s: &Option<Stats>) -> String {
    match s {
        Some(s) => format!(
            "{:.1} / {:.1} / {:.1} ms",
            ms(s.min),
            ms(s.median),
            ms(s.max)
        ),
        None => "n/a (no successful run)".to_string(),
    }
}

/// Follows `path` with one-shot data watches until it holds a topology whose master is
/// neither `null` nor `old`; returns when that read returned, and the topology.
pub async fn watch_for_new_master(
    zk: &zk::Client,
    path: &str,
    old: &NodeAddr,
    first: zk::OneshotWatcher,
) -> Result<(Instant, Topology), String> {
    let mut watcher = Some(first);
    loop {
        if let Some(w) = watcher.take() {
            // A node event, or a session event when the connection broke: read again either way.
            let _event = w.changed().await;
        } else {
            // The previous read failed: retry soon, without a watch to wait on.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        match tokio::time::timeout(ZK_READ_TIMEOUT, zk.get_and_watch_data(path)).await {
            Ok(Ok((data, _stat, next))) => {
                let at = Instant::now();
                if let Ok(t) = Topology::from_json(&data) {
                    if t.master.as_ref().is_some_and(|m| m != old) {
                        return Ok((at, t));
                    }
                }
                watcher = Some(next);
            }
            Ok(Err(zk::Error::NoNode)) => return Err(format!("{path} was deleted")),
            Ok(Err(e)) => tracing::warn!("reading {path}: {e}; retrying"),
            Err(_) => tracing::warn!("reading {path} timed out; retrying"),
        }
    }
}

/// Ends a run: stops the in-process manager (as a task: `Manager::stop` panics past its own
/// deadline, which then fails this run instead of the bench), drops the Redis group off the
/// runtime's workers (killing and reaping blocks), and returns `measured` unless stopping
/// failed. `what` names the run in messages.
pub async fn finish_run<T, G: Send + 'static>(
    manager: redis_failover_tests::manager::Manager,
    group: G,
    measured: Result<T, String>,
    what: &str,
) -> Result<T, String> {
    let stopped = tokio::spawn(manager.stop()).await;
    if let Err(e) = tokio::task::spawn_blocking(move || drop(group)).await {
        eprintln!(
            "dropping the Redis nodes of {what} failed: {}",
            join_error(e)
        );
    }
    let ok = measured?;
    match stopped {
        Ok(Ok(())) => Ok(ok),
        Ok(Err(e)) => Err(format!("the manager returned an error: {e}")),
        Err(e) => Err(format!("stopping the manager failed: {}", join_error(e))),
    }
}

/// The `redis_node_manager` binary: `given`, else the one next to this executable.
pub fn manager_bin(given: Option<&Path>, me: &str) -> Result<PathBuf, String> {
    let bin = match given {
        Some(b) => b.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|e| format!("{me}: cannot locate this executable ({e}); give --manager-bin"))?
            .with_file_name("redis_node_manager"),
    };
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{me}: {} not found; build it first: cargo build --release -p redis-failover-manager \
             (or give --manager-bin PATH)",
            bin.display()
        ))
    }
}

/// Warns when `bin` is older than the running program: a benchmark of a stale manager
/// measures yesterday's code.
pub fn warn_if_stale(bin: &Path, me: &str) {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let exe = std::env::current_exe().ok();
    if let (Some(b), Some(e)) = (modified(bin), exe.as_deref().and_then(modified)) {
        if b < e {
            eprintln!(
                "{me}: warning: {} is older than this program; rebuild it (cargo build --release \
                 -p redis-failover-manager) to test the current manager",
                bin.display()
            );
        }
    }
}
