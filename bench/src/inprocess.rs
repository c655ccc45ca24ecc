//! A manager in this process, on a runtime of its own (as if it were its own process): its
//! start, the wait for its first complete topology, and the end of a run.

use std::cell::RefCell;
use std::time::Duration;

use redis_failover_client::Topology;
use redis_failover_manager::Config;
use redis_failover_tests::manager::{self as harness, Manager};
use tokio::runtime::Handle;
use zookeeper_client as zk;

use crate::nodes::Trio;
use crate::tasks::{join_error, teardown};
use crate::wait::{poll_until, Check};

/// Poll interval while waiting for the manager's first topology.
const SETUP_POLL: Duration = Duration::from_millis(10);

/// Starts a manager with `config` on the runtime `rt`.
pub fn start(rt: &Handle, config: Config) -> Manager {
    let _on_manager_rt = rt.enter();
    Manager::start(config)
}

/// Waits until `<root>/nodes` names the trio's master with every replica (at most `timeout`);
/// fails at once when the manager ends.
pub async fn wait_published(
    zk: &zk::Client,
    root: &str,
    trio: &Trio,
    manager: &Manager,
    timeout: Duration,
) -> Result<Topology, String> {
    let master = &trio.master;
    // The last topology read, for the timeout's message.
    let last: RefCell<Option<Topology>> = RefCell::new(None);
    let last = &last;
    poll_until(timeout, SETUP_POLL, || async move {
            let topo = harness::read_topology(zk, root).await;
            if let Some(t) = topo.as_ref().filter(|t| trio.published_in(t)) {
                return Check::Done(t.clone());
            }
            if topo.is_some() {
                *last.borrow_mut() = topo;
            }
            if manager.is_finished() {
                return Check::Failed(format!(
                    "the manager ended before publishing master {master} with slaves {} (run with RUST_LOG=info to see why)",
                    trio.replica_list()
                ));
            }
            Check::Waiting(format!(
                "timed out after {timeout:?} waiting for the manager to publish master {master} with slaves {}; last topology: {:?}",
                trio.replica_list(),
                last.borrow()
            ))
    })
    .await
}

/// Ends a run: stops the in-process manager (as a task: `Manager::stop` panics past its own
/// deadline, which then fails this run instead of the bench), drops the Redis group off the
/// runtime's workers (killing and reaping blocks), and returns `measured` unless stopping
/// failed. `what` names the run in messages.
pub async fn finish_run<T, G: Send + 'static>(
    manager: Manager,
    group: G,
    measured: Result<T, String>,
    what: &str,
) -> Result<T, String> {
    let stopped = tokio::spawn(manager.stop()).await;
    teardown(&format!("the Redis nodes of {what}"), move || drop(group)).await;
    let ok = measured?;
    match stopped {
        Ok(Ok(())) => Ok(ok),
        Ok(Err(e)) => Err(format!("the manager returned an error: {e}")),
        Err(e) => Err(format!("stopping the manager failed: {}", join_error(e))),
    }
}
