//! A calm master's sign of life between the poller's `INFO`s, without a round trip: a
//! connection of its own with reads queued ([`DEPTH`] `XREAD BLOCK`s on a key never
//! written), each ending on the master's own timer every `--probe-interval-ms`
//! ([`period`]). The runtime does not watch this socket: the poller reads it without
//! waiting when it wakes on its grid anyway, and the kernel's timestamp of the latest
//! answer (`SO_TIMESTAMPNS`) says when the master last answered.
//!
//! Why not watched: each master answers on its own timer's phase, so 100 masters' answers
//! would wake the manager some 300 times a second where the grid lets all the probes of an
//! interval share one wake-up. Measured at 100 groups, that cost more than the `ROLE` round
//! trips it replaced (3.1% of a core against 2.2%). The crash detector's parked read
//! (`parked.rs`) still sees a crash at once.

use std::io::{IoSliceMut, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
use nix::sys::time::TimeSpec;
use redis_failover_client::NodeAddr;
use redis_protocol::bytes::BytesMut;
use redis_protocol::codec::Resp2;
use tokio_util::codec::{Decoder, Encoder};

use crate::core::info::parse_info_server;
use crate::io::node::{Connector, NodeError};
use crate::io::probe_conn::{command, frame_text, Frame, ProbeConn};

/// How many reads are queued at most; half as many more are written (in one write) once
/// half of them have been answered.
pub const DEPTH: usize = 16;

/// How long each queued read blocks, for an idle master to answer every `interval`: it
/// notices a blocked read's timeout at its next timer tick (`1000 / hz` ms, its
/// `configured_hz`; a busy one sooner), so half a tick short of the interval lands the
/// answer on the interval's own tick. `None` when a tick is longer than half the interval
/// (`hz` set very low, or not reported): answers would come late, and the poller asks
/// `ROLE` instead.
pub fn period(interval: Duration, hz: Option<u32>) -> Option<Duration> {
    let tick = Duration::from_secs(1) / hz.filter(|h| *h > 0)?;
    (tick * 2 <= interval).then(|| interval - tick / 2)
}

/// Why a beat ended: the poller drops it and asks `ROLE` again.
#[derive(Debug, thiserror::Error)]
pub enum BeatError {
    #[error("the node closed the connection")]
    Closed,
    /// `UNBLOCKED` (the master became a replica), an ACL refusal...
    #[error("{0}")]
    Reply(String),
    #[error("connection: {0}")]
    Io(String),
}

pub struct Beat {
    sock: TcpStream,
    codec: Resp2,
    /// Bytes received and not parsed yet.
    buf: BytesMut,
    /// [`DEPTH`]` / 2` reads, encoded once.
    reads: Vec<u8>,
    queued: usize,
    /// When the latest answer arrived, or the reads were first written.
    last: Instant,
    /// When the socket was last found empty: nothing read later arrived before it.
    checked: Instant,
}

impl Beat {
    /// Connects and logs in as the poller does, reads the node's `hz` (`INFO server`) and
    /// queues [`DEPTH`] reads, within `timeout`. `Ok(None)` when a beat cannot serve: over
    /// TLS (the socket is read outside the TLS stream's hands), or a timer too coarse.
    pub async fn open(
        connector: &Connector,
        node: &NodeAddr,
        timeout: Duration,
        interval: Duration,
        key: &str,
    ) -> Result<Option<Beat>, NodeError> {
        if connector.tls().is_some() {
            return Ok(None);
        }
        let mut conn = ProbeConn::connect(connector, node, timeout).await?;
        let info = async {
            conn.queue(&command(&["INFO", "server"]), 1).await?;
            conn.reply().await
        };
        let hz = match tokio::time::timeout(timeout, info).await {
            Err(_) => return Err(NodeError::Timeout(timeout)),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(frame)) => frame
                .as_ref()
                .and_then(frame_text)
                .and_then(|t| parse_info_server(&t).ok())
                .and_then(|id| id.hz),
        };
        let Some(block) = period(interval, hz) else {
            return Ok(None);
        };
        let Some(sock) = conn.into_std() else {
            return Ok(None);
        };
        let io = |e: Errno| NodeError::Connection(e.to_string());
        setsockopt(&sock, sockopt::ReceiveTimestampns, &true).map_err(io)?;
        let ms = block.as_millis().max(1).to_string();
        let read = command(&["XREAD", "BLOCK", &ms, "STREAMS", key, "$"]);
        let mut codec = Resp2::default();
        let mut reads = BytesMut::new();
        for _ in 0..DEPTH / 2 {
            codec
                .encode(read.clone(), &mut reads)
                .map_err(|e| NodeError::NotRedis(e.to_string()))?;
        }
        let now = Instant::now();
        let mut beat = Beat {
            sock,
            codec,
            buf: BytesMut::new(),
            reads: reads.to_vec(),
            queued: 0,
            last: now,
            checked: now,
        };
        for _ in 0..2 {
            beat.top_up()
                .map_err(|e| NodeError::Connection(e.to_string()))?;
        }
        Ok(Some(beat))
    }

    /// Reads what arrived, without waiting, and queues more reads once half were answered.
    /// Returns when the latest answer arrived (or the reads were first written).
    pub fn check(&mut self) -> Result<Instant, BeatError> {
        let mut arrived: Option<SystemTime> = None;
        loop {
            let mut chunk = [0u8; 1024];
            let mut space = nix::cmsg_space!(TimeSpec);
            let mut iov = [IoSliceMut::new(&mut chunk)];
            let fd = self.sock.as_raw_fd();
            let (n, stamp) =
                match recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_DONTWAIT) {
                    Ok(msg) => {
                        let stamp = msg.cmsgs().ok().and_then(|mut all| {
                            all.find_map(|c| match c {
                                ControlMessageOwned::ScmTimestampns(ts) => Some(ts),
                                _ => None,
                            })
                        });
                        (msg.bytes, stamp)
                    }
                    Err(Errno::EAGAIN) => break,
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(BeatError::Io(e.to_string())),
                };
            if n == 0 {
                return Err(BeatError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(ts) = stamp {
                let at = SystemTime::UNIX_EPOCH + Duration::from(ts);
                arrived = Some(arrived.map_or(at, |a| a.max(at)));
            }
        }
        let mut answered = false;
        while let Some(frame) = self
            .codec
            .decode(&mut self.buf)
            .map_err(|e| BeatError::Io(e.to_string()))?
        {
            self.queued = self.queued.saturating_sub(1);
            if let Frame::Error(e) = frame {
                return Err(BeatError::Reply(e.to_string()));
            }
            answered = true;
        }
        let now = Instant::now();
        if answered {
            // The kernel's clock is the wall clock: how long ago, on it, is how long ago
            // on ours; and an answer read now arrived after the last time none was there.
            let ago = arrived
                .and_then(|a| SystemTime::now().duration_since(a).ok())
                .unwrap_or_default();
            let at = now.checked_sub(ago).unwrap_or(now);
            self.last = at.clamp(self.checked.min(now), now);
        }
        self.checked = now;
        if self.queued <= DEPTH / 2 {
            self.top_up()?;
        }
        Ok(self.last)
    }

    /// When the latest answer arrived (or the reads were first written).
    pub fn last(&self) -> Instant {
        self.last
    }

    /// Writes [`DEPTH`]` / 2` more reads in one write.
    fn top_up(&mut self) -> Result<(), BeatError> {
        match self.sock.write(&self.reads) {
            Ok(n) if n == self.reads.len() => {
                self.queued += DEPTH / 2;
                Ok(())
            }
            // A few hundred bytes into an empty send buffer; anything else is a connection
            // in trouble.
            Ok(n) => Err(BeatError::Io(format!(
                "{n} of {} bytes written",
                self.reads.len()
            ))),
            Err(e) => Err(BeatError::Io(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_answers_on_the_interval_s_own_tick() {
        let ms = Duration::from_millis;
        let cases = [
            // (interval, hz, period)
            (ms(200), Some(10), Some(ms(150))),
            (ms(200), Some(100), Some(ms(195))),
            (ms(400), Some(5), Some(ms(300))),
            (ms(1000), Some(10), Some(ms(950))),
            (ms(100), Some(20), Some(ms(75))),
            // A tick longer than half the interval: the poller asks instead.
            (ms(200), Some(5), None),
            (ms(100), Some(10), None),
            (ms(200), Some(1), None),
            // Not reported: unknown timing, the poller asks.
            (ms(200), None, None),
            (ms(200), Some(0), None),
        ];
        for (interval, hz, want) in cases {
            assert_eq!(
                period(interval, hz),
                want,
                "interval {interval:?}, hz {hz:?}"
            );
        }
    }
}
