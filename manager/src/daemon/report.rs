//! What a group's loop shows outside — HTTP, metrics and the Sentinel endpoint read it as
//! a [`GroupSnapshot`] — from the published topology and this manager's own probes.

use std::time::Instant;

use super::GroupDaemon;
use crate::core::health::Status;
use crate::front::snapshot::{GroupSnapshot, NodeReport};

impl GroupDaemon {
    /// What HTTP, the Sentinel endpoint and metrics show of this group.
    pub(super) fn snapshot(&self) -> GroupSnapshot {
        let master = self
            .known
            .published
            .topology()
            .and_then(|t| t.master.clone())
            .or_else(|| self.state.master.clone());
        let master_info = master
            .as_ref()
            .and_then(|m| self.view.get(m))
            .filter(|h| h.is_up())
            .and_then(|h| h.info())
            .filter(|i| i.is_master());
        let master_offset = master_info.map(|i| i.offset);
        // What the master last heard a replica acknowledge, read with its own offset: newer
        // than the replica's own answer while the group is calm (asked every few seconds).
        let acked = |a: &redis_failover_client::NodeAddr| {
            master_info
                .and_then(|m| m.followers.iter().find(|(f, _)| f == a))
                .map(|(_, o)| *o)
        };
        let now = Instant::now();
        let nodes = self
            .view
            .iter()
            .map(|(addr, h)| {
                let info = h.info();
                let report = NodeReport {
                    status: match h.status() {
                        Status::Up => "up",
                        Status::Down => "down",
                        Status::Unknown => "unknown",
                    }
                    .to_string(),
                    role: info
                        .map(|i| if i.is_master() { "master" } else { "replica" }.to_string()),
                    master: info.and_then(|i| i.master().cloned()),
                    link_up: info.is_some_and(|i| i.link_up()),
                    offset: info.map(|i| i.offset),
                    lag_bytes: match (info, master_offset) {
                        (Some(i), Some(mo)) if !i.is_master() && i.master() == master.as_ref() => {
                            Some(mo.saturating_sub(i.offset.max(acked(addr).unwrap_or(0))))
                        }
                        _ => None,
                    },
                    priority: info.map(|i| i.priority),
                    latency_ms: h.latency().map(|l| l.as_secs_f64() * 1000.0),
                    consecutive_failures: h.consecutive_failures(),
                    last_ok_ms_ago: h
                        .last_ok()
                        .map(|t| now.saturating_duration_since(t).as_millis() as u64),
                    down_for_ms: h
                        .down_since()
                        .map(|t| now.saturating_duration_since(t).as_millis() as u64),
                    last_error: h.last_error().map(str::to_string),
                };
                (addr.clone(), report)
            })
            .collect();
        GroupSnapshot {
            name: self.cfg.name.clone(),
            znode_path: self.cfg.paths.root().to_string(),
            leader: self.leader.is_some(),
            topology: self.known.published.topology().cloned(),
            view: self.own_view(),
            nodes,
            views: self.known.views.clone(),
            managers_in_line: self.known.managers_in_line.clone(),
            paused: self.known.pause.clone(),
            history: self.known.history.records.clone(),
            settings: self.settings.clone(),
            taken_at: Some(now),
        }
    }
}
