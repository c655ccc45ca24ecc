//! The events the sentinels publish: a `PSUBSCRIBE *` on every sentinel, recording each
//! event (`+sdown`, `+odown`, `+promoted-slave`, `+switch-master`, ...) with the instant it
//! arrived.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use redis_failover_client::NodeAddr;
use tokio::task::JoinHandle;

use crate::tasks::lock;

/// One event a sentinel published.
#[derive(Clone, Debug)]
pub struct SentinelEvent {
    /// When the bench received it.
    pub at: Instant,
    /// Which sentinel (index into the ports given to [`EventTap::start`]).
    pub sentinel: usize,
    /// `+switch-master`, `+sdown`, ...
    pub channel: String,
    pub payload: String,
}

impl SentinelEvent {
    /// For `+switch-master <name> <old ip> <old port> <new ip> <new port>`: the new master.
    pub fn switch_target(&self) -> Option<NodeAddr> {
        let f: Vec<&str> = self.payload.split_whitespace().collect();
        match f.as_slice() {
            [_, _, _, ip, port] => port.parse().ok().map(|p| NodeAddr::new(*ip, p)),
            _ => None,
        }
    }

    /// Whether an `+sdown` / `+odown` / ... event is about the master (`master <name> ...`).
    pub fn about_master(&self) -> bool {
        self.payload.starts_with("master ")
    }
}

/// `PSUBSCRIBE *` on every sentinel; keeps every event with the time it arrived.
pub struct EventTap {
    events: Arc<Mutex<Vec<SentinelEvent>>>,
    tasks: Vec<JoinHandle<()>>,
    sentinels: usize,
}

impl EventTap {
    pub async fn start(ports: &[u16]) -> Result<EventTap, String> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut tap = EventTap {
            events: Arc::clone(&events),
            tasks: Vec::new(),
            sentinels: ports.len(),
        };
        for (i, port) in ports.iter().copied().enumerate() {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .map_err(|e| format!("sentinel {port}: {e}"))?;
            let mut pubsub =
                tokio::time::timeout(Duration::from_secs(2), client.get_async_pubsub())
                    .await
                    .map_err(|_| format!("sentinel {port}: no pub/sub connection within 2 s"))?
                    .map_err(|e| format!("sentinel {port}: {e}"))?;
            tokio::time::timeout(Duration::from_secs(2), pubsub.psubscribe("*"))
                .await
                .map_err(|_| format!("sentinel {port}: PSUBSCRIBE timed out"))?
                .map_err(|e| format!("sentinel {port}: PSUBSCRIBE: {e}"))?;
            let mut stream = pubsub.into_on_message();
            let events = Arc::clone(&events);
            tap.tasks.push(tokio::spawn(async move {
                while let Some(msg) = stream.next().await {
                    let at = Instant::now();
                    lock(&events).push(SentinelEvent {
                        at,
                        sentinel: i,
                        channel: msg.get_channel_name().to_string(),
                        payload: String::from_utf8_lossy(msg.get_payload_bytes()).into_owned(),
                    });
                }
            }));
        }
        Ok(tap)
    }

    /// Every event received so far, in arrival order per sentinel.
    pub fn events(&self) -> Vec<SentinelEvent> {
        lock(&self.events).clone()
    }

    /// The first `channel` event (from any sentinel) that arrived at or after `since`.
    pub fn first(&self, channel: &str, since: Instant) -> Option<SentinelEvent> {
        lock(&self.events)
            .iter()
            .filter(|e| e.channel == channel && e.at >= since)
            .min_by_key(|e| e.at)
            .cloned()
    }

    /// Waits (polling every 2 ms; the time is the event's arrival) for the first `channel`
    /// event at or after `since`, until `deadline`.
    pub async fn wait_first(
        &self,
        channel: &str,
        since: Instant,
        deadline: tokio::time::Instant,
    ) -> Option<SentinelEvent> {
        loop {
            if let Some(e) = self.first(channel, since) {
                return Some(e);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Per sentinel, how many `channel` events (about the master only, with `master_only`)
    /// arrived at or after `since`.
    pub fn counts(&self, channel: &str, since: Instant, master_only: bool) -> Vec<usize> {
        let mut counts = vec![0; self.sentinels];
        for e in lock(&self.events).iter() {
            if e.channel == channel && e.at >= since && (!master_only || e.about_master()) {
                if let Some(c) = counts.get_mut(e.sentinel) {
                    *c += 1;
                }
            }
        }
        counts
    }

    /// Failovers since `since`: the most `+switch-master` events any one sentinel published
    /// (each sentinel announces every failover it learns of once).
    pub fn failovers(&self, since: Instant) -> usize {
        self.counts("+switch-master", since, false)
            .into_iter()
            .max()
            .unwrap_or(0)
    }
}

impl Drop for EventTap {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
