//! `zk_outage`'s traffic: a writer (`SET seq:N N`) and a reader (`GET` of the last
//! acknowledged key, routed to a replica) through one `Client`, each at most one command per
//! interval, every outcome logged with its time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis_failover_client::Client;
use redis_failover_tests::writer::{
    key as seq_key, Ack, ClientWriter, SeqWriter, SetFuture, WriteLog, Writer,
};

/// A command still unanswered after this long is given up (and logged as failed).
const CALL_BOUND: Duration = Duration::from_secs(15);
/// How long stopping waits for the command in flight.
const STOP_WITHIN: Duration = Duration::from_secs(20);

/// The writer and the reader.
pub(super) struct Traffic {
    writes: Writer,
    reads: Writer,
}

/// One half of the traffic through the client: the writer, which remembers the last write
/// acknowledged, or the reader, for which each "write" of the op loop is a `GET` of that key.
struct Half {
    client: ClientWriter,
    last_acked: Arc<AtomicU64>,
    reads: bool,
}

impl SeqWriter for Half {
    fn set<'a>(&'a mut self, key: &'a str, n: u64) -> SetFuture<'a> {
        Box::pin(async move {
            if self.reads {
                let seq = self.last_acked.load(Ordering::Relaxed);
                self.client
                    .0
                    .get::<_, Option<u64>>(seq_key(seq))
                    .await
                    .map(|_| None)
                    .map_err(|e| e.to_string())
            } else {
                let node = self.client.set(key, n).await?;
                self.last_acked.store(n, Ordering::Relaxed);
                Ok(node)
            }
        })
    }
}

impl Traffic {
    /// Starts the writer and the reader through `client`, each at most one command per
    /// `every`.
    pub(super) fn start(client: &Client, every: Duration) -> Traffic {
        let last_acked = Arc::new(AtomicU64::new(0));
        let half = |reads| {
            let half = Half {
                client: ClientWriter(client.clone()),
                last_acked: Arc::clone(&last_acked),
                reads,
            };
            Writer::spawn(half, Some(every), CALL_BOUND)
        };
        Traffic {
            writes: half(false),
            reads: half(true),
        }
    }

    /// `writes ...; reads ...` answered in `[from, to)` (see [`window`]).
    pub(super) fn windows(&self, from: Instant, to: Instant) -> String {
        format!(
            "writes {}; reads {}",
            self.writes.with_log(|l| window(l, from, to)),
            self.reads.with_log(|l| window(l, from, to))
        )
    }

    /// Writes and reads acknowledged in `[from, to)`.
    pub(super) fn ok_in(&self, from: Instant, to: Instant) -> (usize, usize) {
        (
            self.writes.with_log(|l| ok_in(l, from, to)),
            self.reads.with_log(|l| ok_in(l, from, to)),
        )
    }

    /// The first write acknowledged at or after `t`.
    pub(super) fn first_write_from(&self, t: Instant) -> Option<Ack> {
        self.writes
            .with_log(|l| l.acks.iter().find(|a| a.at >= t).cloned())
    }

    /// Stops both (each after its command in flight) and returns the writes and the reads.
    pub(super) async fn stop(self) -> (WriteLog, WriteLog) {
        tokio::join!(self.writes.stop(STOP_WITHIN), self.reads.stop(STOP_WITHIN))
    }
}

/// `ok / failed` counts of the commands answered in `[from, to)`, the rate, and the first
/// error.
pub(super) fn window(log: &WriteLog, from: Instant, to: Instant) -> String {
    let ok = ok_in(log, from, to);
    let mut failed = log.errors.iter().filter(|e| e.at >= from && e.at < to);
    let first_error = failed
        .clone()
        .next()
        .map(|e| format!("; first error: {}", e.error))
        .unwrap_or_default();
    let failed = failed.by_ref().count();
    let secs = (to - from).as_secs_f64().max(1e-9);
    format!(
        "{ok} ok ({:.0}/s), {failed} failed{first_error}",
        ok as f64 / secs
    )
}

fn ok_in(log: &WriteLog, from: Instant, to: Instant) -> usize {
    log.acks
        .iter()
        .filter(|a| a.at >= from && a.at < to)
        .count()
}
