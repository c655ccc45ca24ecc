//! Bounded waits: a condition polled until it holds, fails, or its deadline passes.

use std::future::Future;
use std::time::{Duration, Instant};

/// One look at what a wait waits for.
pub enum Check<T> {
    /// It holds: the wait returns this.
    Done(T),
    /// Not yet; the text says what is missing (the error when the deadline passes).
    Waiting(String),
    /// It never will: the wait fails with this.
    Failed(String),
}

/// Calls `check` every `every` until it is [`Check::Done`] or [`Check::Failed`]; after
/// `timeout`, the last [`Check::Waiting`] text is the error.
pub async fn poll_until<T, F, Fut>(
    timeout: Duration,
    every: Duration,
    mut check: F,
) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Check<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Check::Done(v) => return Ok(v),
            Check::Failed(e) => return Err(e),
            Check::Waiting(missing) if Instant::now() >= deadline => return Err(missing),
            Check::Waiting(_) => tokio::time::sleep(every).await,
        }
    }
}

/// Polls `f` (blocking) every 10 ms until it returns `Some` or `timeout` passes.
pub fn poll_blocking<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
