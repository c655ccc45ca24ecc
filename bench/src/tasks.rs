//! Tasks and what goes wrong in them: join errors and panics as messages, and the blocking
//! work of a run (starting a Redis trio, killing and reaping processes) moved off the
//! runtime's workers, and locks on what tasks share.

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard};

use redis_failover_tests::RedisGroup;
use tokio::task::{JoinError, JoinHandle};

/// A failed task as a message (its panic message when it panicked).
pub fn join_error(e: JoinError) -> String {
    if e.is_panic() {
        panic_message(e.into_panic())
    } else {
        e.to_string()
    }
}

/// `panicked: <message>`.
pub fn panic_message(p: Box<dyn Any + Send>) -> String {
    redis_failover_tests::panic_text(&*p)
        .map_or("panicked".to_string(), |s| format!("panicked: {s}"))
}

/// A fresh Redis trio (master + 2 replicas), started off the runtime's workers.
pub async fn start_trio() -> Result<Arc<RedisGroup>, String> {
    tokio::task::spawn_blocking(RedisGroup::trio)
        .await
        .map(Arc::new)
        .map_err(|e| format!("the redis trio did not start: {}", join_error(e)))
}

/// A `kill -9` of a Redis node under way, off the runtime's workers (it waits until the
/// process is reaped).
pub struct Killing(JoinHandle<()>);

impl Killing {
    /// Kills node `i` of `group`.
    pub fn start(group: &Arc<RedisGroup>, i: usize) -> Killing {
        let g = Arc::clone(group);
        Killing(tokio::task::spawn_blocking(move || g.node(i).kill9()))
    }

    /// Waits until the node is gone.
    pub async fn done(self) -> Result<(), String> {
        self.0
            .await
            .map_err(|e| format!("kill -9 of the master failed: {}", join_error(e)))
    }
}

/// Runs `f` (dropping processes: killing and reaping blocks) off the runtime's workers; a
/// failure is printed, naming `what`.
pub async fn teardown(what: &str, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = tokio::task::spawn_blocking(f).await {
        eprintln!("tearing down {what} failed: {}", join_error(e));
    }
}

/// Locks a mutex shared with tasks, ignoring poisoning (a panicked task must not break the
/// report).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
