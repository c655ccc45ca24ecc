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

use futures::FutureExt;
use nix::errno::Errno;
use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
use nix::sys::time::TimeSpec;
use redis_failover_client::NodeAddr;
use redis_protocol::bytes::BytesMut;
use redis_protocol::codec::Resp2;
use tokio_util::codec::{Decoder, Encoder};

use crate::io::node::{Connector, NodeError};
use crate::io::probe_conn::{command, identity, Frame, ProbeConn};

/// How many reads are queued at most; half as many more are written (in one write) once
/// half of them have been answered.
const DEPTH: usize = 16;

/// How long each queued read blocks, for the master to answer every `interval`. An idle
/// node notices a blocked read's timeout at its next timer tick (every `1000 / hz` ms, its
/// `configured_hz`), and the next read starts on that tick: blocking [`MARGIN`] less than
/// the whole ticks in an interval lands each answer on the interval's last tick. A busy
/// node notices sooner, so its answers come that much apart too. `None` when a tick is
/// longer than the interval (`hz` set very low, or not reported): answers would come late,
/// and the poller asks `ROLE` instead.
fn period(interval: Duration, hz: Option<u32>) -> Option<Duration> {
    let tick = Duration::from_secs(1) / hz.filter(|h| *h > 0)?;
    let ticks = u32::try_from(interval.as_nanos() / tick.as_nanos()).ok()?;
    (ticks > 0).then(|| {
        (tick * ticks)
            .saturating_sub(MARGIN)
            .max(Duration::from_millis(1))
    })
}

/// How much shorter than its whole ticks a read blocks (see [`period`]): the node's timer
/// runs a little late, never early, so the tick that ends it is never the one before.
const MARGIN: Duration = Duration::from_millis(2);

/// What a calm master's beat says at `now`, between two `INFO`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heard {
    /// An answer came within the interval plus a probe's deadline of the one before (or
    /// of the first reads): alive, and still master (a role change ends the reads).
    InTime,
    /// None did: the answer due at `due` (the interval after the last one) is a probe
    /// asked then that failed.
    Missed { due: Instant },
    /// None did, but the node answered the poller since the last one: its timer does not
    /// serve (`hz` lowered, everything but our questions paused). Ask it instead.
    Unreliable,
}

/// Judges a beat whose latest answer came at `last`; `answered` is when the node last
/// answered the poller's own question. Pure: `now` is an argument.
fn judge(
    now: Instant,
    last: Instant,
    answered: Option<Instant>,
    interval: Duration,
    probe_timeout: Duration,
) -> Heard {
    if now < last + interval + probe_timeout {
        Heard::InTime
    } else if answered.is_some_and(|t| t > last) {
        Heard::Unreliable
    } else {
        Heard::Missed {
            due: last + interval,
        }
    }
}

/// Why a beat ended: the poller drops it and asks `ROLE` again.
#[derive(Debug, thiserror::Error)]
enum BeatError {
    #[error("the node closed the connection")]
    Closed,
    /// `UNBLOCKED` (the master became a replica), an ACL refusal...
    #[error("{0}")]
    Reply(String),
    #[error("connection: {0}")]
    Io(String),
}

/// How long a calm master whose beat could not serve is asked `ROLE` before one is tried
/// again (six times longer when its timer is too coarse or the connection is TLS).
const AGAIN: Duration = Duration::from_secs(10);

/// The poller's hold on its node's beat: the beat, one being opened (on a task of its own,
/// so that the poller never waits for it), and when one may be opened again after one
/// could not serve.
#[derive(Default)]
pub struct BeatSlot {
    beat: Option<Beat>,
    opening: Option<tokio::task::JoinHandle<Result<Option<Beat>, NodeError>>>,
    again: Option<Instant>,
}

/// What the poller needs to open a beat.
pub struct BeatTarget<'a> {
    pub connector: &'a Connector,
    pub node: &'a NodeAddr,
    pub key: &'a str,
    pub interval: Duration,
    pub probe_timeout: Duration,
}

impl BeatSlot {
    /// Reads the beat (at every wake-up, so that its answers never pile up) after taking
    /// one opened since; drops it unless `wanted` (a calm master). When `judged` (between
    /// two `INFO`s), what it says: `None` when there is no beat or it cannot tell, and the
    /// poller asks. `answered`: when the node last answered the poller's own question.
    pub fn hear(
        &mut self,
        now: Instant,
        wanted: bool,
        judged: bool,
        answered: Option<Instant>,
        to: &BeatTarget<'_>,
    ) -> Option<Heard> {
        if let Some(done) = self.opening.take_if(|h| h.is_finished()) {
            match done.now_or_never() {
                Some(Ok(Ok(Some(b)))) => self.beat = Some(b),
                Some(Ok(Ok(None))) => self.again = Some(now + AGAIN * 6),
                Some(Ok(Err(e))) => {
                    tracing::debug!(node = %to.node, "no beat: {e}");
                    self.again = Some(now + AGAIN);
                }
                // The task panicked (a bug): no beat for a while, `ROLE` instead.
                Some(Err(_)) | None => self.again = Some(now + AGAIN),
            }
        }
        if !wanted {
            self.beat = None;
        }
        let last = match self.beat.as_mut().map(Beat::check)? {
            Ok(last) => last,
            Err(e) => {
                tracing::debug!(node = %to.node, "beat ended: {e}");
                self.pause(now);
                return None;
            }
        };
        if !judged {
            return None;
        }
        match judge(now, last, answered, to.interval, to.probe_timeout) {
            Heard::Unreliable => {
                self.pause(now);
                None
            }
            Heard::Missed { due } => {
                self.beat = None;
                Some(Heard::Missed { due })
            }
            Heard::InTime => Some(Heard::InTime),
        }
    }

    /// The node failed: no beat until it is calm again.
    pub fn stop(&mut self) {
        self.beat = None;
    }

    /// Starts opening a beat when `wanted` and there is none.
    pub fn open_if(&mut self, wanted: bool, now: Instant, to: &BeatTarget<'_>) {
        let may = self.again.is_none_or(|t| now >= t);
        if !(wanted && may && self.beat.is_none() && self.opening.is_none()) {
            return;
        }
        let (connector, node, key) = (to.connector.clone(), to.node.clone(), to.key.to_string());
        let (timeout, interval) = (to.probe_timeout, to.interval);
        self.opening = Some(tokio::spawn(async move {
            let open = Beat::open(&connector, &node, timeout, interval, &key);
            tokio::time::timeout(timeout, open)
                .await
                .unwrap_or(Err(NodeError::Timeout(timeout)))
        }));
    }

    /// When the beat's next answer is overdue, to be judged then even between two grid
    /// points.
    pub fn deadline(&self, interval: Duration, probe_timeout: Duration) -> Option<Instant> {
        self.beat
            .as_ref()
            .map(|b| b.last + interval + probe_timeout)
    }

    fn pause(&mut self, now: Instant) {
        self.beat = None;
        self.again = Some(now + AGAIN);
    }
}

struct Beat {
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
    /// Connects and logs in as the poller does (within `timeout`; the caller bounds the
    /// whole), reads the node's `hz` (`INFO server`) and queues [`DEPTH`] reads. `Ok(None)` when a beat cannot serve: over
    /// TLS (the socket is read outside the TLS stream's hands), or a timer too coarse.
    async fn open(
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
        let answer = conn.ask(&["INFO", "server"]).await?;
        let hz = answer.as_ref().and_then(identity).and_then(|id| id.hz);
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
    fn check(&mut self) -> Result<Instant, BeatError> {
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
            // Less than asked for: nothing more was there (one system call, not two).
            if n < chunk.len() {
                break;
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
            self.last = at.clamp(self.checked, now);
        }
        self.checked = now;
        if self.queued <= DEPTH / 2 {
            self.top_up()?;
        }
        Ok(self.last)
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
    fn a_beat_is_judged_by_its_last_answer() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let (interval, timeout) = (ms(200), ms(333));
        let at = |m: u64| t0 + ms(m);
        // (what, now, last answer, last answer to the poller, verdict)
        let cases = [
            ("just answered", at(1000), at(1000), None, Heard::InTime),
            ("an interval ago", at(1200), at(1000), None, Heard::InTime),
            (
                "late, within the deadline",
                at(1532),
                at(1000),
                None,
                Heard::InTime,
            ),
            (
                "past the deadline: the answer due at 1200 failed",
                at(1533),
                at(1000),
                None,
                Heard::Missed { due: at(1200) },
            ),
            (
                "the poller heard from it before that answer: still a miss",
                at(1600),
                at(1000),
                Some(at(900)),
                Heard::Missed { due: at(1200) },
            ),
            (
                "the poller heard from it since: its timer does not serve",
                at(1600),
                at(1000),
                Some(at(1100)),
                Heard::Unreliable,
            ),
        ];
        for (what, now, last, answered, want) in cases {
            assert_eq!(
                judge(now, last, answered, interval, timeout),
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn a_master_answers_on_the_interval_s_own_tick() {
        let ms = Duration::from_millis;
        let cases = [
            // (interval, hz, period)
            (ms(200), Some(10), Some(ms(198))),
            (ms(250), Some(10), Some(ms(198))),
            (ms(200), Some(100), Some(ms(198))),
            (ms(200), Some(5), Some(ms(198))),
            (ms(1000), Some(10), Some(ms(998))),
            (ms(100), Some(20), Some(ms(98))),
            (ms(10), Some(500), Some(ms(8))),
            (ms(10), Some(100), Some(ms(8))),
            (ms(3), Some(500), Some(ms(1))),
            // A tick longer than the interval: the poller asks instead.
            (ms(200), Some(4), None),
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

    /// A real master answers every interval on its own timer, not while it is stopped
    /// (SIGSTOP), again once it runs; with a timer too coarse, no beat opens.
    #[tokio::test]
    async fn a_real_master_beats_every_interval_and_not_while_it_hangs() {
        use redis_failover_tests::{free_port, wait_until_async, RedisNode};
        let dir = tempfile::tempdir().expect("temp dir");
        let node = RedisNode::start(dir.path(), free_port(), None, &[]);
        let connector = Connector::new(Default::default());
        let (interval, timeout) = (Duration::from_millis(200), Duration::from_secs(2));
        let addr = node.node_addr();
        let mut beat = Beat::open(&connector, &addr, timeout, interval, "k")
            .await
            .expect("connects")
            .expect("hz 10 serves a 200 ms interval");
        let mut answers = std::collections::BTreeSet::new();
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let last = beat.check().expect("answers");
            let age = last.elapsed();
            assert!(
                age < interval + Duration::from_millis(150),
                "the latest answer is {age:?} old"
            );
            answers.insert(last);
        }
        assert!(
            (7..=14).contains(&answers.len()),
            "{} answers in 2 s, one per 200 ms expected",
            answers.len()
        );

        node.sigstop();
        let stopped = Instant::now();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let last = beat.check().expect("a hung node breaks nothing");
        assert!(
            last <= stopped + Duration::from_millis(20),
            "no answer while stopped: the latest came {:?} after SIGSTOP",
            last.saturating_duration_since(stopped)
        );
        node.sigcont();
        wait_until_async(timeout * 5, "answers again after SIGCONT", || {
            let last = beat.check().expect("answers");
            std::future::ready((last > stopped + Duration::from_millis(700)).then_some(()))
        })
        .await;

        node.must(&["CONFIG", "SET", "hz", "1"]);
        let coarse = Beat::open(&connector, &addr, timeout, interval, "k")
            .await
            .expect("connects");
        assert!(coarse.is_none(), "a 1 s tick cannot answer every 200 ms");
    }
}
