//! `GET /metrics`: Prometheus text. Live measurements (probe latency, failovers carried out)
//! are recorded as they happen; everything else is read from the groups' snapshots when
//! scraped, so the numbers are the ones `/status` shows.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use redis_failover_client::NodeAddr;

use crate::front::snapshot::GroupSnapshot;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    group: String,
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    group: String,
    node: String,
    role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    // 0.1 ms .. ~3.3 s: a loopback probe to a slow-but-alive node.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Every metric this manager exports.
pub struct Metrics {
    registry: Registry,
    node_up: Family<NodeLabels, Gauge>,
    node_role: Family<RoleLabels, Gauge>,
    node_offset: Family<NodeLabels, Gauge>,
    node_lag: Family<NodeLabels, Gauge>,
    node_failures: Family<NodeLabels, Gauge>,
    probe_latency: Family<NodeLabels, Histogram, fn() -> Histogram>,
    failovers: Family<GroupLabels, Counter>,
    last_duration: Family<GroupLabels, FloatGauge>,
    last_at: Family<GroupLabels, FloatGauge>,
    epoch: Family<GroupLabels, Gauge>,
    is_leader: Family<GroupLabels, Gauge>,
    paused: Family<GroupLabels, Gauge>,
    managers: Family<GroupLabels, Gauge>,
    zk_connected: Gauge,
    zk_state: Family<StateLabels, Gauge>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("redis_failover");
        let m = Self {
            node_up: Family::default(),
            node_role: Family::default(),
            node_offset: Family::default(),
            node_lag: Family::default(),
            node_failures: Family::default(),
            probe_latency: Family::new_with_constructor(latency_histogram),
            failovers: Family::default(),
            last_duration: Family::default(),
            last_at: Family::default(),
            epoch: Family::default(),
            is_leader: Family::default(),
            paused: Family::default(),
            managers: Family::default(),
            zk_connected: Gauge::default(),
            zk_state: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "node_up",
            "1 when this manager's probes reach the node, 0 when it is marked down",
            m.node_up.clone(),
        );
        registry.register(
            "node_role",
            "1 for the role the node reports (master or replica)",
            m.node_role.clone(),
        );
        registry.register(
            "node_repl_offset_bytes",
            "master_repl_offset / slave_repl_offset as last read",
            m.node_offset.clone(),
        );
        registry.register(
            "node_repl_lag_bytes",
            "how far a replica is behind the group's master",
            m.node_lag.clone(),
        );
        registry.register(
            "node_consecutive_failures",
            "probes failed in a row",
            m.node_failures.clone(),
        );
        registry.register(
            "probe_latency_seconds",
            "round trip of this manager's probes (INFO replication)",
            m.probe_latency.clone(),
        );
        registry.register(
            "failovers",
            "failovers and switchovers carried out by this manager",
            m.failovers.clone(),
        );
        registry.register(
            "last_failover_duration_seconds",
            "decision to new master published, of the group's last failover (any manager)",
            m.last_duration.clone(),
        );
        registry.register(
            "last_failover_timestamp_seconds",
            "when the group's last failover was published (Unix time)",
            m.last_at.clone(),
        );
        registry.register(
            "epoch",
            "published epoch: bumped on every promotion",
            m.epoch.clone(),
        );
        registry.register(
            "is_leader",
            "1 when this manager holds the group's lock",
            m.is_leader.clone(),
        );
        registry.register(
            "paused",
            "1 while automatic failover is paused by an operator",
            m.paused.clone(),
        );
        registry.register(
            "managers",
            "managers holding or waiting for the group's lock",
            m.managers.clone(),
        );
        registry.register(
            "zookeeper_connected",
            "1 while the ZooKeeper session is connected",
            m.zk_connected.clone(),
        );
        registry.register(
            "zookeeper_session_state",
            "1 for the current ZooKeeper session state",
            m.zk_state.clone(),
        );
        Arc::new(Self { registry, ..m })
    }

    /// The handle a group's loop records into.
    pub fn group(self: &Arc<Self>, name: &str) -> Arc<GroupMetrics> {
        Arc::new(GroupMetrics {
            group: name.to_string(),
            metrics: self.clone(),
            latency: Mutex::default(),
        })
    }

    /// Drops every series of a group no longer watched (`--groups-from-zookeeper`), so that
    /// `/metrics` shows it no more than `/status` does.
    pub fn forget_group(&self, group: &str, nodes: &[NodeAddr]) {
        let gl = GroupLabels {
            group: group.to_string(),
        };
        self.failovers.remove(&gl);
        self.last_duration.remove(&gl);
        self.last_at.remove(&gl);
        for f in [&self.epoch, &self.is_leader, &self.paused, &self.managers] {
            f.remove(&gl);
        }
        for n in nodes {
            let nl = NodeLabels {
                group: group.to_string(),
                node: n.to_string(),
            };
            self.probe_latency.remove(&nl);
            for f in [
                &self.node_up,
                &self.node_offset,
                &self.node_lag,
                &self.node_failures,
            ] {
                f.remove(&nl);
            }
        }
    }

    /// The Prometheus text for the current snapshots and ZooKeeper session state.
    pub fn render(&self, groups: &[GroupSnapshot], zk_state: &str) -> String {
        // Families whose label sets come and go are rebuilt on each scrape.
        self.node_role.clear();
        self.zk_state.clear();
        self.zk_connected.set(i64::from(
            zk_state == "SyncConnected" || zk_state == "ConnectedReadOnly",
        ));
        self.zk_state
            .get_or_create(&StateLabels {
                state: zk_state.to_string(),
            })
            .set(1);
        for g in groups {
            let gl = GroupLabels {
                group: g.name.clone(),
            };
            self.is_leader.get_or_create(&gl).set(i64::from(g.leader));
            self.paused
                .get_or_create(&gl)
                .set(i64::from(g.paused.is_some()));
            self.managers
                .get_or_create(&gl)
                .set(g.managers_in_line.len() as i64);
            // Created at zero so that rate() works from the first failover on.
            let _ = self.failovers.get_or_create(&gl);
            if let Some(t) = &g.topology {
                self.epoch.get_or_create(&gl).set(t.epoch as i64);
            }
            if let Some(last) = g.last_failover() {
                self.last_duration
                    .get_or_create(&gl)
                    .set(last.duration_ms as f64 / 1000.0);
                self.last_at
                    .get_or_create(&gl)
                    .set(last.at_ms as f64 / 1000.0);
            }
            for (addr, n) in &g.nodes {
                let nl = NodeLabels {
                    group: g.name.clone(),
                    node: addr.to_string(),
                };
                self.node_up
                    .get_or_create(&nl)
                    .set(i64::from(n.status == "up"));
                self.node_failures
                    .get_or_create(&nl)
                    .set(i64::from(n.consecutive_failures));
                if let Some(o) = n.offset {
                    self.node_offset.get_or_create(&nl).set(o as i64);
                }
                match n.lag_bytes {
                    Some(l) => {
                        self.node_lag.get_or_create(&nl).set(l as i64);
                    }
                    None => {
                        self.node_lag.remove(&nl);
                    }
                }
                if let Some(role) = &n.role {
                    self.node_role
                        .get_or_create(&RoleLabels {
                            group: g.name.clone(),
                            node: addr.to_string(),
                            role: role.clone(),
                        })
                        .set(1);
                }
            }
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// One group's recording handle.
pub struct GroupMetrics {
    group: String,
    metrics: Arc<Metrics>,
    /// Each node's latency histogram (a handle on the family's), found once: it is
    /// recorded at every probe.
    latency: Mutex<HashMap<NodeAddr, Histogram>>,
}

impl GroupMetrics {
    pub fn observe_latency(&self, node: &NodeAddr, latency: Duration) {
        let mut cache = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
        if !cache.contains_key(node) {
            let h = self
                .metrics
                .probe_latency
                .get_or_create(&NodeLabels {
                    group: self.group.clone(),
                    node: node.to_string(),
                })
                .clone();
            cache.insert(node.clone(), h);
        }
        if let Some(h) = cache.get(node) {
            h.observe(latency.as_secs_f64());
        }
    }

    pub fn failover_done(&self) {
        self.metrics
            .failovers
            .get_or_create(&GroupLabels {
                group: self.group.clone(),
            })
            .inc();
    }
}
