//! Deadline-bounded polls: every wait of the harness and of the tests is one of these.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

/// Poll interval of [`wait_until`] / [`wait_until_async`] and of the internal waits.
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// Polls `f` every ~10 ms until it returns `Some`, and returns that value.
///
/// # Panics
/// With `"timed out after {timeout:?} waiting for {what}"` when `timeout` elapses first
/// (`f` is always tried once more at the deadline).
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        let now = Instant::now();
        if now >= deadline {
            // one last try exactly at/after the deadline
            if let Some(v) = f() {
                return v;
            }
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

/// Async twin of [`wait_until`], sleeping with `tokio::time` between polls.
///
/// # Panics
/// With `"timed out after {timeout:?} waiting for {what}"`.
pub async fn wait_until_async<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            if let Some(v) = f().await {
                return v;
            }
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL.min(deadline - now)).await;
    }
}

/// Runs `check` every `every` until `duration` has passed (a bounded observation, for
/// asserting that something does not happen: `check` asserts).
pub async fn for_a_while<F, Fut>(duration: Duration, every: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let until = tokio::time::Instant::now() + duration;
    while tokio::time::Instant::now() < until {
        check().await;
        tokio::time::sleep(every).await;
    }
}

/// Waits until `client` routes to the master that `published` names, within `timeout`, and
/// returns that master; `what` names the wait in the panic.
pub async fn wait_client_follows(
    client: &redis_failover_client::Client,
    published: &redis_failover_client::Topology,
    timeout: Duration,
    what: &str,
) -> redis_failover_client::NodeAddr {
    let master = published.master.clone().expect("a master");
    wait_until_async(timeout, what, || {
        let ok = client.topology().topology.master.as_ref() == Some(&master);
        async move { ok.then_some(()) }
    })
    .await;
    master
}

/// Polls `f` every 100 ms until it returns `Some`, and returns that value; at `until` panics
/// with `what` and the last 30 lines of `log` (the log of the process waited on, to see why).
pub async fn wait_showing_log<T, F, Fut>(until: Instant, what: &str, log: &Path, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < until,
            "{what}:\n{}",
            crate::log_tail(log, 30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
