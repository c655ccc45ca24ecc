//! Commands the Redis nodes process: `total_commands_processed` of `INFO stats`, read on a
//! raw TCP connection with one hand-written `INFO stats` and nothing else (no `HELLO`, no
//! `CLIENT SETINFO`), so that the bench's own share is exactly one command per read: a node
//! counts a command once it has run it, so a read does not see itself, and the reading at the
//! end of a window holds the one at its start ([`OWN_COMMANDS_PER_WINDOW`]).

use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Bound on one read (connect, command, answer).
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// Nodes read at the same time.
const PARALLEL: usize = 32;
/// The bench's commands a node counts between two readings: the first `INFO stats`.
pub(crate) const OWN_COMMANDS_PER_WINDOW: u64 = 1;

/// `total_commands_processed` of 127.0.0.1:`port`.
pub(crate) async fn total_commands(port: u16) -> Result<u64, String> {
    tokio::time::timeout(READ_TIMEOUT, read_info(port))
        .await
        .map_err(|_| format!("INFO stats on port {port}: no answer within {READ_TIMEOUT:?}"))?
        .map_err(|e| format!("INFO stats on port {port}: {e}"))
}

async fn read_info(port: u16) -> std::io::Result<u64> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(b"*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n").await?;
    let mut r = BufReader::new(s);
    let mut head = String::new();
    r.read_line(&mut head).await?;
    let len: usize = head
        .trim_end()
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| bad(&format!("unexpected reply {head:?}")))?;
    let mut body = vec![0u8; len + 2];
    r.read_exact(&mut body).await?;
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| bad("no total_commands_processed"))
}

/// Every node's count, with when it was read.
pub(crate) struct RedisSnapshot(Vec<(u64, Instant)>);

impl RedisSnapshot {
    /// Reads every node of `ports` (a few at a time).
    pub(crate) async fn take(ports: &[u16]) -> Result<RedisSnapshot, String> {
        let reads: Vec<Result<(u64, Instant), String>> = futures::stream::iter(
            ports
                .iter()
                .map(|p| async move { total_commands(*p).await.map(|n| (n, Instant::now())) }),
        )
        .buffered(PARALLEL)
        .collect()
        .await;
        reads
            .into_iter()
            .collect::<Result<_, _>>()
            .map(RedisSnapshot)
    }

    /// Commands per second and node from `self` to `later` (same ports, same order), averaged
    /// over the nodes, the bench's own reads taken off.
    pub(crate) fn rate_to(&self, later: &RedisSnapshot) -> f64 {
        let rates: Vec<f64> = self
            .0
            .iter()
            .zip(&later.0)
            .map(|((c0, t0), (c1, t1))| {
                let dt = t1.duration_since(*t0).as_secs_f64().max(1e-9);
                c1.saturating_sub(*c0)
                    .saturating_sub(OWN_COMMANDS_PER_WINDOW) as f64
                    / dt
            })
            .collect();
        if rates.is_empty() {
            0.0
        } else {
            rates.iter().sum::<f64>() / rates.len() as f64
        }
    }
}
