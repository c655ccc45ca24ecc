//! Which replica may replace a failed master, and in which order: Sentinel's ranking with
//! this project's stricter eligibility (link recency, lag bound, no full sync).

use std::time::{Duration, Instant};

use redis_failover_client::NodeAddr;

use super::info::NodeInfo;
use super::View;

/// Tunables of the decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// A replica whose link to the failed master went down longer than this before the
    /// master was seen down holds data too old to promote (Sentinel: 10 x down-after).
    pub link_grace: Duration,
    /// `--max-lag-bytes`: a replica further behind the failed master's last known offset is
    /// not promoted (`None`: no bound).
    pub max_lag_bytes: Option<u64>,
    /// `--fencing`: how an unreachable master is kept from taking writes a failover would
    /// lose, and so how long its replacement waits.
    pub fencing: super::fence::Fencing,
    /// `--synchronous-replicas`: clients acknowledge a write once this many replicas have
    /// it (`WAIT`); 0 when they do not.
    pub synchronous_replicas: usize,
    /// `--replication-guard`: the leader puts the replication user on trusted nodes
    /// (`guard.rs`).
    pub replication_guard: bool,
}

/// Ranks promotion candidates: lower `replica-priority`, then larger replication offset,
/// then address (so every manager picks the same one). Only live replicas of the failed
/// master, not in a full sync, whose link was up within `link_grace` of the failure; priority
/// 0 never.
pub fn select_replica<'a>(
    view: &'a View,
    failed: &NodeAddr,
    now: Instant,
    policy: &Policy,
) -> Result<(&'a NodeAddr, String), String> {
    // Replicas lose their link when the master dies: allow the time since then too.
    let since_failure = view
        .get(failed)
        .and_then(|h| h.down_since())
        .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
    let grace = policy.link_grace + since_failure;
    let master_offset = view
        .get(failed)
        .and_then(|h| h.info())
        .map_or(0, |i| i.offset);
    let mut candidates: Vec<(&NodeAddr, &NodeInfo)> = Vec::new();
    let mut excluded = Vec::new();
    for (addr, health) in view {
        if addr == failed {
            continue;
        }
        let Some(info) = health.info().filter(|_| health.is_up()) else {
            excluded.push(format!("{addr} down"));
            continue;
        };
        let linked_recently = info.in_sync_within(grace);
        if info.is_master() {
            excluded.push(format!("{addr} is a master"));
        } else if info.master() != Some(failed) {
            let m = info.master().map_or("?".to_string(), |m| m.to_string());
            excluded.push(format!("{addr} replicates from {m}"));
        } else if info.priority == 0 {
            excluded.push(format!("{addr} has replica-priority 0"));
        } else if info.syncing() {
            excluded.push(format!("{addr} is in a full sync"));
        } else if let Some(max) = policy
            .max_lag_bytes
            .filter(|max| master_offset.saturating_sub(info.offset) > *max)
        {
            excluded.push(format!(
                "{addr} is {} bytes behind (--max-lag-bytes {max})",
                master_offset.saturating_sub(info.offset)
            ));
        } else if !linked_recently {
            excluded.push(format!(
                "{addr} has not been in sync with {failed} recently"
            ));
        } else {
            candidates.push((addr, info));
        }
    }
    if policy.synchronous_replicas > 0 {
        synchronous(view, failed, policy.synchronous_replicas, &mut candidates)?;
    }
    candidates.sort_by(|(a, ai), (b, bi)| {
        ai.priority
            .cmp(&bi.priority)
            .then(bi.offset.cmp(&ai.offset))
            .then(a.cmp(b))
    });
    let ranking = candidates
        .iter()
        .map(|(a, i)| format!("{a} (priority {}, offset {})", i.priority, i.offset))
        .collect::<Vec<_>>()
        .join(" > ");
    let excluded = if excluded.is_empty() {
        String::new()
    } else {
        format!("; excluded: {}", excluded.join(", "))
    };
    match candidates.first() {
        Some((winner, _)) => Ok((winner, format!("ranking {ranking}{excluded}"))),
        None => Err(format!("no replica may be promoted{excluded}")),
    }
}

/// Synchronous mode: every acknowledged write is on at least `n` of the group's replicas, so
/// the offsets of `R - n + 1` of them (R: the configured replicas) include a replica with
/// every such write, and only a replica with the largest offset among them may be promoted.
///
/// A replica that does not answer is left out of R when what it may have acknowledged is
/// known from the failed master's last `INFO`, and the promoted replica has at least that:
/// - the `INFO` did not list it as an online replica (`WAIT` was not counting it then): it
///   acknowledged at most that `INFO`'s offset;
/// - or it listed it with the offset it had acknowledged, while this manager already had it
///   down as hung or gone (a process that answers nobody acknowledges nothing more).
///
/// Not covered: a replica this manager cannot reach that reconnected to the master within
/// the last poll before the master failed.
fn synchronous(
    view: &View,
    failed: &NodeAddr,
    n: usize,
    candidates: &mut Vec<(&NodeAddr, &NodeInfo)>,
) -> Result<(), String> {
    let configured = view.len().saturating_sub(1);
    let holders: Vec<(&NodeAddr, u64)> = view
        .iter()
        .filter(|(a, _)| *a != failed)
        .filter_map(|(a, h)| {
            let info = h.info().filter(|_| h.is_up())?;
            (info.master() == Some(failed) && !info.syncing()).then_some((a, info.offset))
        })
        .collect();
    // The failed master's last word on who followed it, how far, and when it said so.
    let last = view.get(failed).and_then(|h| {
        let i = h.info().filter(|i| i.is_master() && !i.replid.is_empty())?;
        Some((i, h.info_at()?))
    });
    let mut excused: Vec<&NodeAddr> = Vec::new();
    let mut floor = 0;
    if let Some((m, asked)) = last {
        for (a, h) in view.iter().filter(|(a, _)| *a != failed) {
            if holders.iter().any(|(x, _)| x == &a) {
                continue;
            }
            let acked = match m.followers.iter().find(|(f, _)| f == a) {
                None => Some(m.offset),
                Some((_, acked)) => {
                    let silent_before = (h.proven_hung() || h.proven_gone())
                        && h.down_since().is_some_and(|t| t < asked);
                    silent_before.then_some(*acked)
                }
            };
            if let Some(acked) = acked {
                excused.push(a);
                floor = floor.max(acked);
            }
        }
    }
    if !excused.is_empty() {
        candidates.retain(|(_, i)| i.offset >= floor);
        if candidates.is_empty() {
            let names: Vec<String> = excused.iter().map(|a| a.to_string()).collect();
            return Err(format!(
                "synchronous mode ({n}): {} does not answer, and no replica that answers has \
                 offset {floor}, which it may have acknowledged: a write acknowledged before \
                 may be only there",
                names.join(", ")
            ));
        }
    }
    let replicas = configured - excused.len();
    let needed = replicas.saturating_sub(n) + 1;
    if holders.len() < needed {
        return Err(format!(
            "synchronous mode ({n}): only {} of {replicas} replicas answer with their data; \
             an acknowledged write may be only on the others, {needed} are needed",
            holders.len()
        ));
    }
    let most = holders.iter().map(|(_, o)| *o).max().unwrap_or(0);
    candidates.retain(|(_, i)| i.offset >= most);
    if candidates.is_empty() {
        let best: Vec<String> = holders
            .iter()
            .filter(|(_, o)| *o == most)
            .map(|(a, _)| a.to_string())
            .collect();
        return Err(format!(
            "synchronous mode ({n}): no replica with every acknowledged write (offset {most}: \
             {}) may be promoted",
            best.join(", ")
        ));
    }
    Ok(())
}
