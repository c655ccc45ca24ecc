//! In-process code "on" a host: [`Host::spawn`] starts an OS thread that enters the host's
//! network namespace (`setns(CLONE_NEWNET)`: per thread, inherited by the threads it starts)
//! and runs an async body on a current-thread tokio runtime there, so that every socket the
//! body opens (a [`redis_failover_client::Client`], a [`crate::writer::Writer`]) is the
//! host's. The result comes back through a [`HostTask`].

use std::fs::File;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

use super::net::Host;
use crate::util::panic_text;
use crate::wait::POLL;

/// The result of a body running on a host, to be joined with a bound.
pub struct HostTask<T> {
    what: String,
    rx: Receiver<Result<T, String>>,
}

impl Host {
    /// Runs `body()` on a new thread inside this host's namespace, on a current-thread tokio
    /// runtime with every driver; `what` names it in errors. A body that panics gives an
    /// `Err` with the panic message. The body should end by itself or on a signal the caller
    /// holds (the thread is not killed).
    pub fn spawn<T, F, Fut>(&self, what: &str, body: F) -> Result<HostTask<T>, String>
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
    {
        let (tx, rx) = mpsc::channel();
        let ns = self.ns.clone();
        let name = format!("{what} on {}", self.name);
        let label = name.clone();
        std::thread::Builder::new()
            .name(format!("host-{}", self.name))
            .spawn(move || {
                let result = enter(&ns).and_then(|()| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| format!("{label}: cannot build a runtime: {e}"))?;
                    catch_unwind(AssertUnwindSafe(|| rt.block_on(body()))).map_err(|p| {
                        format!(
                            "{label} panicked: {}",
                            panic_text(&*p).unwrap_or_else(|| "(not a string)".to_string())
                        )
                    })
                });
                let _ = tx.send(result);
            })
            .map_err(|e| format!("{name}: cannot start a thread: {e}"))?;
        Ok(HostTask { what: name, rx })
    }
}

/// Moves the calling thread into network namespace `ns`.
fn enter(ns: &str) -> Result<(), String> {
    let path = format!("/var/run/netns/{ns}");
    let file = File::open(&path).map_err(|e| format!("cannot open {path}: {e}"))?;
    // SAFETY: setns on a valid fd we own; it changes only this thread's network namespace.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "setns({path}, CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

impl<T> HostTask<T> {
    /// Waits up to `timeout` for the body's result (without blocking the runtime).
    pub async fn join(self, timeout: Duration) -> Result<T, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.rx.try_recv() {
                Ok(r) => return r,
                Err(TryRecvError::Disconnected) => {
                    return Err(format!("{}: the thread ended without a result", self.what))
                }
                Err(TryRecvError::Empty) if Instant::now() >= deadline => {
                    return Err(format!("{}: no result within {timeout:?}", self.what))
                }
                Err(TryRecvError::Empty) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// [`HostTask::join`] for blocking code.
    pub fn join_blocking(self, timeout: Duration) -> Result<T, String> {
        match self.rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                Err(format!("{}: no result within {timeout:?}", self.what))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(format!("{}: the thread ended without a result", self.what))
            }
        }
    }
}
