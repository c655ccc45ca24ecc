//! A writer with an acknowledgement log, and the lost-write check.
//!
//! [`Writer::spawn`] starts a task that sends `SET seq:N N` (N = 1, 2, ...; see [`key`])
//! back to back or one every `every`, through anything that implements [`SeqWriter`] (our
//! [`Client`] through [`ClientWriter`]), and logs every outcome with its times in a
//! [`WriteLog`]. [`check_lost`] then reads every acknowledged key back from a node and returns
//! the ones that are missing (or hold another value).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis_failover_client::{Client, NodeAddr};
use tokio::task::JoinHandle;

use crate::redis_helpers::connect_async;
use crate::util::lock;

/// Keys per `MGET` of the loss check.
const CHECK_BATCH: usize = 1000;
/// Bound on connecting to the node of a loss check.
const CHECK_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on one `MGET` of a loss check.
const CHECK_MGET_TIMEOUT: Duration = Duration::from_secs(10);

/// The key of write number `seq`: `seq:<seq>` (its value is `seq`).
pub fn key(seq: u64) -> String {
    format!("seq:{seq}")
}

/// One acknowledged `SET seq:N N`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub seq: u64,
    /// When the call started.
    pub sent: Instant,
    /// When the acknowledgement was seen.
    pub at: Instant,
    /// The node that acknowledged it, when the writer knows ([`ClientWriter`]: the master in
    /// the client's topology right after the acknowledgement).
    pub node: Option<NodeAddr>,
}

/// One write that failed (or was not answered within the call bound).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteError {
    pub seq: u64,
    /// When the call started.
    pub sent: Instant,
    /// When it failed.
    pub at: Instant,
    pub error: String,
}

/// What a [`Writer`] saw, in the order it happened.
#[derive(Clone, Debug, Default)]
pub struct WriteLog {
    pub acks: Vec<Ack>,
    pub errors: Vec<WriteError>,
}

impl WriteLog {
    /// The sequence numbers of every acknowledged write.
    pub fn acked_seqs(&self) -> Vec<u64> {
        self.acks.iter().map(|a| a.seq).collect()
    }

    /// The acknowledgement of write `seq`, if it was acknowledged.
    pub fn ack(&self, seq: u64) -> Option<&Ack> {
        // Acks are pushed in the order of their sequence numbers.
        self.acks
            .binary_search_by_key(&seq, |a| a.seq)
            .ok()
            .map(|i| &self.acks[i])
    }

    /// The acknowledgements seen after `after`, in order.
    pub fn acks_after(&self, after: Instant) -> &[Ack] {
        // Acks are pushed in order; the tail is short after a failure.
        let i = self.acks.partition_point(|a| a.at <= after);
        &self.acks[i..]
    }

    /// The first acknowledgement seen after `after`.
    pub fn first_ack_after(&self, after: Instant) -> Option<&Ack> {
        self.acks_after(after).first()
    }

    /// The longest time without an acknowledgement within [`from`, `to`]: between two
    /// consecutive ones, or from the last one to `to` (not from `from` to the first one, so a
    /// writer that started after `from` is not charged for it); with where it starts.
    pub fn longest_gap(&self, from: Instant, to: Instant) -> (Duration, Instant) {
        let mut in_range = self.acks.iter().filter(|a| a.at >= from && a.at <= to);
        let Some(first) = in_range.next() else {
            return (to.saturating_duration_since(from), from);
        };
        let mut prev = first.at;
        let mut best = (Duration::ZERO, prev);
        for a in in_range {
            let g = a.at.duration_since(prev);
            if g > best.0 {
                best = (g, prev);
            }
            prev = a.at;
        }
        let tail = to.saturating_duration_since(prev);
        if tail > best.0 {
            best = (tail, prev);
        }
        best
    }
}

/// The future of one [`SeqWriter::set`]: the node that acknowledged it (when known), or the
/// error as text.
pub type SetFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<NodeAddr>, String>> + Send + 'a>>;

/// Something that can `SET key n` and say which node acknowledged it (when it knows).
pub trait SeqWriter: Send + 'static {
    fn set<'a>(&'a mut self, key: &'a str, n: u64) -> SetFuture<'a>;
}

/// Writes through our [`Client`]; the node of an acknowledgement is the master in the
/// client's topology right after it.
pub struct ClientWriter(pub Client);

impl SeqWriter for ClientWriter {
    fn set<'a>(&'a mut self, key: &'a str, n: u64) -> SetFuture<'a> {
        Box::pin(async move {
            self.0
                .set::<_, _, ()>(key, n)
                .await
                .map_err(|e| e.to_string())?;
            Ok(self.0.topology().topology.master)
        })
    }
}

/// A task writing `SET seq:N N` (N = 1, 2, ...) back to back, or one every `every`, and
/// logging each outcome. Dropping it aborts the task.
pub struct Writer {
    log: Arc<Mutex<WriteLog>>,
    stop: Arc<AtomicBool>,
    task: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts writing through `w` on the current tokio runtime, back to back when `every` is
    /// `None`, else at most one write every `every`. A call that takes longer than
    /// `call_bound` is abandoned and logged as an error (`no answer within ...`).
    pub fn spawn<W: SeqWriter>(mut w: W, every: Option<Duration>, call_bound: Duration) -> Writer {
        let log = Arc::new(Mutex::new(WriteLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let log = Arc::clone(&log);
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut tick = every.map(|e| {
                    let mut i = tokio::time::interval(e);
                    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    i
                });
                let mut seq: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(t) = tick.as_mut() {
                        t.tick().await;
                    }
                    seq += 1;
                    let key = key(seq);
                    let sent = Instant::now();
                    let r = tokio::time::timeout(call_bound, w.set(&key, seq)).await;
                    let at = Instant::now();
                    let mut log = lock(&log);
                    match r {
                        Ok(Ok(node)) => log.acks.push(Ack {
                            seq,
                            sent,
                            at,
                            node,
                        }),
                        Ok(Err(error)) => log.errors.push(WriteError {
                            seq,
                            sent,
                            at,
                            error,
                        }),
                        Err(_) => log.errors.push(WriteError {
                            seq,
                            sent,
                            at,
                            error: format!("no answer within {call_bound:?}"),
                        }),
                    }
                }
            })
        };
        Writer {
            log,
            stop,
            task: Some(task),
        }
    }

    /// Runs `f` on the log so far (without copying it).
    pub fn with_log<R>(&self, f: impl FnOnce(&WriteLog) -> R) -> R {
        f(&lock(&self.log))
    }

    /// A copy of the log so far.
    pub fn snapshot(&self) -> WriteLog {
        lock(&self.log).clone()
    }

    /// Number of acknowledged writes so far.
    pub fn acked(&self) -> usize {
        lock(&self.log).acks.len()
    }

    /// Waits (polling every 1 ms; the time is the acknowledgement's own) for the first
    /// acknowledgement after `after`, until `deadline`.
    pub async fn wait_ack_after(
        &self,
        after: Instant,
        deadline: tokio::time::Instant,
    ) -> Option<Ack> {
        loop {
            if let Some(a) = lock(&self.log).first_ack_after(after) {
                return Some(a.clone());
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Stops after the write in progress (abandoning it after `within`); the log stays
    /// readable.
    pub async fn halt(&mut self, within: Duration) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(within, &mut task).await.is_err() {
                task.abort();
            }
        }
    }

    /// [`Writer::halt`], and returns the log.
    pub async fn stop(mut self, within: Duration) -> WriteLog {
        self.halt(within).await;
        self.snapshot()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// The writes among `seqs` that `node` does not hold with their value (`GET seq:N` is not
/// `N`), read back with `MGET` in batches; `Err` when the node cannot be read.
pub async fn check_lost(node: &NodeAddr, seqs: &[u64]) -> Result<Vec<u64>, String> {
    check_lost_in(node, "", seqs).await
}

/// [`check_lost`] of a writer whose client prefixes its keys with `namespace`
/// ([`redis_failover_client::ClientBuilder::namespace`]): reads `<namespace>seq:N`.
pub async fn check_lost_in(
    node: &NodeAddr,
    namespace: &str,
    seqs: &[u64],
) -> Result<Vec<u64>, String> {
    let mut conn = tokio::time::timeout(
        CHECK_CONNECT_TIMEOUT,
        connect_async(node, CHECK_CONNECT_TIMEOUT),
    )
    .await
    .map_err(|_| format!("loss check: connecting to {node} timed out"))?
    .map_err(|e| format!("loss check: {e}"))?;
    let mut missing = Vec::new();
    for chunk in seqs.chunks(CHECK_BATCH) {
        let keys: Vec<String> = chunk
            .iter()
            .map(|n| format!("{namespace}{}", key(*n)))
            .collect();
        let values: Vec<Option<u64>> = tokio::time::timeout(
            CHECK_MGET_TIMEOUT,
            redis::cmd("MGET").arg(&keys).query_async(&mut conn),
        )
        .await
        .map_err(|_| format!("loss check: MGET on {node} timed out"))?
        .map_err(|e| format!("loss check: MGET on {node}: {e}"))?;
        missing.extend(
            chunk
                .iter()
                .zip(&values)
                .filter(|(n, v)| **v != Some(**n))
                .map(|(n, _)| *n),
        );
    }
    Ok(missing)
}

/// [`check_lost`] of every acknowledged write of `log`: the acknowledgements missing on `node`.
pub async fn check_lost_acks(node: &NodeAddr, log: &WriteLog) -> Result<Vec<Ack>, String> {
    check_lost_acks_in(node, "", log).await
}

/// [`check_lost_acks`] of a writer whose client prefixes its keys with `namespace`.
pub async fn check_lost_acks_in(
    node: &NodeAddr,
    namespace: &str,
    log: &WriteLog,
) -> Result<Vec<Ack>, String> {
    let missing = check_lost_in(node, namespace, &log.acked_seqs()).await?;
    Ok(missing
        .into_iter()
        .filter_map(|n| log.ack(n).cloned())
        .collect())
}
