//! ZooKeeper traffic as the bench counts it, without a ZooKeeper session of its own:
//! * requests: the `Received:` counter of the `srvr` four-letter word (every packet the
//!   server received, pings included, and the four-letter words themselves: what the bench's
//!   own calls add is measured once, [`srvr_overhead`], [`snapshot_overhead`], and taken
//!   off), and per connection the `recved=` of `cons`;
//! * bytes: `ss -tinpH` of the client sockets to ZooKeeper's port: `bytes_sent` (to
//!   ZooKeeper) and `bytes_received` (from it) of each socket, with the pid owning it.

use std::collections::HashMap;
use std::process::Command;
use std::time::Instant;

use redis_failover_tests::zk_four_letter;

/// `Received:` of `srvr`.
pub(crate) fn srvr_received(port: u16) -> Result<u64, String> {
    let out = zk_four_letter(port, "srvr").ok_or("ZooKeeper did not answer srvr")?;
    out.lines()
        .find_map(|l| l.strip_prefix("Received:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no Received: in srvr's answer {out:?}"))
}

/// What the bench's own reads add to `Received:`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Overhead {
    /// One `srvr`.
    pub srvr: u64,
    /// One [`ZkSnapshot::take`].
    pub snapshot: u64,
}

impl Overhead {
    /// The machine and this overhead, for a bench's first line: `nproc N; load average L;
    /// ZooKeeper requests one srvr / <snapshot> of the bench adds: S / T (taken off)`.
    pub(crate) fn with_machine(self, snapshot: &str) -> String {
        format!(
            "nproc {}; load average {}; ZooKeeper requests one srvr / {snapshot} of the bench \
             adds: {} / {} (taken off)",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            crate::load::load_average(),
            self.srvr,
            self.snapshot
        )
    }

    /// Measured now: nobody else may talk to ZooKeeper. Blocking.
    pub(crate) fn measure(port: u16) -> Result<Overhead, String> {
        Ok(Overhead {
            srvr: srvr_overhead(port)?,
            snapshot: snapshot_overhead(port)?,
        })
    }

    /// [`Overhead::measure`] off the runtime's threads; `None` (said on stderr) when
    /// ZooKeeper's counters cannot be read.
    pub(crate) async fn measured(port: u16) -> Option<Overhead> {
        match super::blocking(move || Overhead::measure(port)).await {
            Ok(n) => Some(n),
            Err(e) => {
                eprintln!("scale_bench: reading ZooKeeper's counters: {e}");
                None
            }
        }
    }
}

/// How much one `srvr` adds to `Received:` (four-letter words count), from three calls in a
/// row while nobody else talks to ZooKeeper.
fn srvr_overhead(port: u16) -> Result<u64, String> {
    let a = srvr_received(port)?;
    let _ = srvr_received(port)?;
    let c = srvr_received(port)?;
    Ok(c.saturating_sub(a) / 2)
}

/// How much one [`ZkSnapshot::take`] adds to `Received:` itself (expected 0: four-letter
/// words count: `srvr` and `cons`), from three in a row while nobody else talks to ZooKeeper.
fn snapshot_overhead(port: u16) -> Result<u64, String> {
    let a = ZkSnapshot::take(port)?;
    let _ = ZkSnapshot::take(port)?;
    let c = ZkSnapshot::take(port)?;
    Ok(c.received.saturating_sub(a.received) / 2)
}

/// `recved=` of every connection `cons` lists, by its client port.
pub(crate) fn cons_recved(port: u16) -> Result<HashMap<u16, u64>, String> {
    let out = zk_four_letter(port, "cons").ok_or("ZooKeeper did not answer cons")?;
    let mut m = HashMap::new();
    // ` /127.0.0.1:46548[1](queued=0,recved=1234,sent=1235,sid=0x...,...)`
    for l in out.lines() {
        let l = l.trim();
        let (Some(addr), Some(stats)) = (l.split('[').next(), l.split_once('(')) else {
            continue;
        };
        let client_port = addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
        let recved = stats
            .1
            .split(',')
            .find_map(|kv| kv.strip_prefix("recved="))
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(p), Some(r)) = (client_port, recved) {
            m.insert(p, r);
        }
    }
    Ok(m)
}

/// A client socket to ZooKeeper.
#[derive(Clone, Debug)]
pub(crate) struct Sock {
    pub pid: Option<u32>,
    pub local_port: u16,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// The established client sockets to ZooKeeper's `port` on this machine (`ss -tinpH`).
pub(crate) fn zk_sockets(port: u16) -> Result<Vec<Sock>, String> {
    let out = Command::new("ss")
        .args([
            "-tinpH",
            "state",
            "established",
            &format!("( dport = :{port} )"),
        ])
        .output()
        .map_err(|e| format!("cannot run ss: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ss failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut socks = Vec::new();
    // A socket line (`Recv-Q Send-Q local peer users:((..,pid=N,..))`), then an indented
    // line of TCP info.
    for l in text.lines() {
        if !l.starts_with(char::is_whitespace) {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let local_port = cols.get(2).and_then(|a| a.rsplit(':').next()?.parse().ok());
            let pid = l
                .split("pid=")
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok());
            if let Some(local_port) = local_port {
                socks.push(Sock {
                    pid,
                    local_port,
                    bytes_sent: 0,
                    bytes_received: 0,
                });
            }
        } else if let Some(s) = socks.last_mut() {
            s.bytes_sent = tcp_info(l, "bytes_sent:");
            s.bytes_received = tcp_info(l, "bytes_received:");
        }
    }
    Ok(socks)
}

fn tcp_info(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// ZooKeeper's counters at one instant.
pub(crate) struct ZkSnapshot {
    at: Instant,
    received: u64,
    cons: HashMap<u16, u64>,
    socks: Vec<Sock>,
}

impl ZkSnapshot {
    pub(crate) fn take(port: u16) -> Result<ZkSnapshot, String> {
        let received = srvr_received(port)?;
        let cons = cons_recved(port)?;
        let socks = zk_sockets(port)?;
        Ok(ZkSnapshot {
            at: Instant::now(),
            received,
            cons,
            socks,
        })
    }

    /// The sockets of processes other than `pids`.
    pub(crate) fn others(&self, pids: &[u32]) -> usize {
        self.socks
            .iter()
            .filter(|s| !s.pid.is_some_and(|p| pids.contains(&p)))
            .count()
    }
}

/// ZooKeeper traffic between two snapshots.
#[derive(Clone, Debug)]
pub(crate) struct ZkTraffic {
    pub secs: f64,
    /// `srvr` `Received:` delta, the bench's own snapshot's share taken off.
    pub requests: u64,
    /// `cons` `recved=` deltas of the connections of `pids` (a connection opened between
    /// the snapshots counts in full).
    pub requests_of_pids: u64,
    /// Bytes `pids` sent to ZooKeeper / received from it (sockets present in both
    /// snapshots, plus new ones in full).
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Sockets of `pids` at the end; sockets of other processes at the end.
    pub sockets: usize,
    pub other_sockets: usize,
}

impl ZkTraffic {
    /// The traffic from `a` to `b` of the processes `pids`; `own` requests (what one
    /// snapshot adds, [`snapshot_overhead`]) are taken off the total.
    pub(crate) fn between(a: &ZkSnapshot, b: &ZkSnapshot, pids: &[u32], own: u64) -> ZkTraffic {
        let mine: Vec<&Sock> = b
            .socks
            .iter()
            .filter(|s| s.pid.is_some_and(|p| pids.contains(&p)))
            .collect();
        let before = |port: u16| a.socks.iter().find(|s| s.local_port == port);
        let (mut bytes_in, mut bytes_out, mut reqs) = (0, 0, 0);
        for s in &mine {
            let (sent0, recv0) =
                before(s.local_port).map_or((0, 0), |o| (o.bytes_sent, o.bytes_received));
            bytes_in += s.bytes_sent.saturating_sub(sent0);
            bytes_out += s.bytes_received.saturating_sub(recv0);
            let r1 = b.cons.get(&s.local_port).copied().unwrap_or(0);
            let r0 = a.cons.get(&s.local_port).copied().unwrap_or(0);
            reqs += r1.saturating_sub(r0);
        }
        ZkTraffic {
            secs: b.at.duration_since(a.at).as_secs_f64().max(1e-9),
            requests: b.received.saturating_sub(a.received).saturating_sub(own),
            requests_of_pids: reqs,
            bytes_in,
            bytes_out,
            sockets: mine.len(),
            other_sockets: b.others(pids),
        }
    }

    pub(crate) fn per_sec(&self, v: u64) -> f64 {
        v as f64 / self.secs
    }
}
