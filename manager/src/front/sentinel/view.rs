//! One group's snapshot read the way Sentinel reports instances: flags, fields and the
//! odown quorum, from the published topology and the managers' views.

use redis_failover_client::wire::ManagerView;
use redis_failover_client::NodeAddr;

use std::time::Duration;

use super::FAILOVER_TIMEOUT_MS;
use crate::core::votes;

use crate::front::snapshot::{GroupSnapshot, NodeReport};

/// One group's snapshot, read the way Sentinel reports instances.
pub(super) struct GroupView<'a> {
    snap: &'a GroupSnapshot,
    /// The master to show: the published one, or the last one while there is none.
    master: Option<NodeAddr>,
    me: &'a str,
    now_ms: u64,
}

impl<'a> GroupView<'a> {
    pub(super) fn new(
        snap: &'a GroupSnapshot,
        remembered: Option<NodeAddr>,
        me: &'a str,
        now_ms: u64,
    ) -> Self {
        let master = match &snap.topology {
            Some(t) => t.master.clone().or(remembered),
            None => remembered,
        };
        Self {
            snap,
            master,
            me,
            now_ms,
        }
    }

    pub(super) fn has_master(&self) -> bool {
        self.snap
            .topology
            .as_ref()
            .is_some_and(|t| t.master.is_some())
    }

    fn down_after_ms(&self) -> u64 {
        match self.snap.settings.down_after_ms {
            0 => crate::config::DEFAULT_DOWN_AFTER_MS,
            ms => ms,
        }
    }

    pub(super) fn quorum(&self) -> usize {
        self.snap.settings.required_node_managers.max(1)
    }

    /// A manager's view counts while it is as recent as the leader's votes require.
    fn fresh(&self, v: &ManagerView) -> bool {
        let max_age = votes::max_view_age(Duration::from_millis(self.down_after_ms()));
        votes::is_fresh(v.at_ms, self.now_ms, max_age)
    }

    /// Every manager's view as read from ZooKeeper, with this manager's own replaced by its
    /// current one (the copy in ZooKeeper lags by up to a publishing interval, and is absent
    /// before the first one).
    fn views(&self) -> impl Iterator<Item = &ManagerView> {
        self.snap
            .views
            .iter()
            .filter(|(id, _)| id.as_str() != self.me)
            .map(|(_, v)| v)
            .chain(std::iter::once(&self.snap.view))
    }

    pub(super) fn usable_managers(&self) -> usize {
        self.views().filter(|v| self.fresh(v)).count()
    }

    /// The fresh views that see `node` down, and how many are required.
    pub(super) fn odown_quorum(&self, node: &NodeAddr) -> (usize, usize) {
        let down = self
            .views()
            .filter(|v| self.fresh(v) && v.unavailable.contains(node))
            .count();
        (down, self.quorum())
    }

    /// This manager's own probes cannot reach `node`.
    fn unreachable(&self, node: &NodeAddr) -> bool {
        self.snap.view.unavailable.contains(node)
            || self
                .snap
                .nodes
                .get(node)
                .is_some_and(|r| r.status == "down")
    }

    pub(super) fn other_managers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for id in self
            .snap
            .managers_in_line
            .iter()
            .chain(self.snap.views.keys())
        {
            if id != self.me && !out.contains(id) {
                out.push(id.clone());
            }
        }
        out
    }

    /// Every known replica: the healthy ones, then those the topology holds unavailable
    /// (Sentinel lists down replicas too, flagged `s_down`).
    pub(super) fn replicas(&self) -> Vec<NodeAddr> {
        let Some(t) = &self.snap.topology else {
            return Vec::new();
        };
        t.slaves
            .iter()
            .chain(t.unavailable.iter())
            .filter(|n| Some(*n) != self.master.as_ref())
            .cloned()
            .collect()
    }

    /// `(s_down, o_down)` of the master.
    pub(super) fn master_down(&self) -> (bool, bool) {
        let Some(m) = &self.master else {
            return (true, true);
        };
        if !self.has_master() {
            return (true, true);
        }
        let (seen, required) = self.odown_quorum(m);
        let o_down = seen >= required;
        (self.unreachable(m) || o_down, o_down)
    }

    pub(super) fn status(&self) -> &'static str {
        match self.master_down() {
            (_, true) => "odown",
            (true, false) => "sdown",
            _ => "ok",
        }
    }

    fn ms_since_ok(&self, node: &NodeAddr) -> String {
        self.report_ms(node, |r| r.last_ok_ms_ago)
    }

    fn down_time(&self, node: &NodeAddr) -> String {
        self.report_ms(node, |r| r.down_for_ms)
    }

    /// One duration of a node's probe report, in ms (0 when unknown).
    fn report_ms(&self, node: &NodeAddr, field: impl Fn(&NodeReport) -> Option<u64>) -> String {
        self.snap
            .nodes
            .get(node)
            .and_then(field)
            .unwrap_or(0)
            .to_string()
    }

    /// Since the topology naming the roles was published.
    fn role_time(&self) -> String {
        self.snap
            .topology
            .as_ref()
            .map_or(0, |t| self.now_ms.saturating_sub(t.updated_at_ms))
            .to_string()
    }

    pub(super) fn epoch(&self) -> u64 {
        self.snap.topology.as_ref().map_or(0, |t| t.epoch)
    }

    /// `SENTINEL MASTER`'s fields, in Sentinel's order.
    pub(super) fn master_fields(&self) -> Vec<(&'static str, String)> {
        let (ip, port) = self
            .master
            .as_ref()
            .map_or(("?".to_string(), "0".to_string()), |m| {
                (m.host.clone(), m.port.to_string())
            });
        let (s_down, o_down) = self.master_down();
        let disconnected = self.master.as_ref().is_none_or(|m| self.unreachable(m));
        let mut flags = Vec::new();
        if s_down {
            flags.push("s_down");
        }
        if o_down {
            flags.push("o_down");
        }
        flags.push("master");
        if disconnected {
            flags.push("disconnected");
        }
        let since_ok = self
            .master
            .as_ref()
            .map_or("0".to_string(), |m| self.ms_since_ok(m));
        let replicas = self.replicas().len();
        let mut f = instance_fields(self.snap.name.clone(), ip, port, &flags, &since_ok);
        let down_time = self
            .master
            .as_ref()
            .map_or("0".to_string(), |m| self.down_time(m));
        if s_down {
            f.push(("s-down-time", down_time.clone()));
        }
        if o_down {
            f.push(("o-down-time", down_time));
        }
        f.extend([
            ("down-after-milliseconds", self.down_after_ms().to_string()),
            ("info-refresh", since_ok),
            ("role-reported", "master".into()),
            ("role-reported-time", self.role_time()),
            ("config-epoch", self.epoch().to_string()),
            ("num-slaves", replicas.to_string()),
            (
                "num-other-sentinels",
                self.other_managers().len().to_string(),
            ),
            ("quorum", self.quorum().to_string()),
            ("failover-timeout", FAILOVER_TIMEOUT_MS.to_string()),
            // The leader re-points every replica at once.
            ("parallel-syncs", replicas.max(1).to_string()),
        ]);
        f
    }

    /// `SENTINEL REPLICAS`'s fields for one replica, in Sentinel's order.
    pub(super) fn replica_fields(&self, r: &NodeAddr) -> Vec<(&'static str, String)> {
        let healthy = self
            .snap
            .topology
            .as_ref()
            .is_some_and(|t| t.slaves.contains(r));
        let unreachable = self.unreachable(r);
        let s_down = !healthy || unreachable;
        let mut flags = Vec::new();
        if s_down {
            flags.push("s_down");
        }
        flags.push("slave");
        if unreachable {
            flags.push("disconnected");
        }
        let report = self.snap.nodes.get(r);
        let role = match report.and_then(|n| n.role.as_deref()) {
            Some("master") => "master",
            _ => "slave",
        };
        let link_ok = report.map_or(healthy, |n| n.link_up);
        let follows = report
            .and_then(|n| n.master.clone())
            .or_else(|| healthy.then(|| self.master.clone()).flatten());
        let (mh, mp) = follows.map_or(("?".to_string(), "0".to_string()), |m| {
            (m.host, m.port.to_string())
        });
        let since_ok = self.ms_since_ok(r);
        let mut f = instance_fields(
            r.to_string(),
            r.host.clone(),
            r.port.to_string(),
            &flags,
            &since_ok,
        );
        if s_down {
            f.push(("s-down-time", self.down_time(r)));
        }
        f.extend([
            ("down-after-milliseconds", self.down_after_ms().to_string()),
            ("info-refresh", since_ok),
            ("role-reported", role.into()),
            ("role-reported-time", self.role_time()),
            (
                "master-link-down-time",
                if link_ok { "0" } else { "-1" }.into(),
            ),
            (
                "master-link-status",
                if link_ok { "ok" } else { "err" }.into(),
            ),
            ("master-host", mh),
            ("master-port", mp),
            (
                "slave-priority",
                report.and_then(|n| n.priority).unwrap_or(100).to_string(),
            ),
            (
                "slave-repl-offset",
                report.and_then(|n| n.offset).unwrap_or(0).to_string(),
            ),
            ("replica-announced", "1".into()),
        ]);
        f
    }

    /// `SENTINEL SENTINELS`'s fields for another manager.
    pub(super) fn manager_fields(&self, id: &str) -> Vec<(&'static str, String)> {
        let view = self.snap.views.get(id);
        let fresh = view.is_some_and(|v| self.fresh(v));
        let age = view.map_or("0".to_string(), |v| {
            self.now_ms.saturating_sub(v.at_ms).to_string()
        });
        let flags = if fresh || view.is_none() {
            "sentinel"
        } else {
            "s_down,sentinel"
        };
        let (ip, port) = view
            .and_then(|v| v.sentinel_addr.as_ref())
            .map_or(("?".to_string(), "0".to_string()), |a| {
                (a.host.clone(), a.port.to_string())
            });
        vec![
            ("name", id.to_string()),
            ("ip", ip),
            ("port", port),
            ("runid", id.to_string()),
            ("flags", flags.into()),
            ("link-pending-commands", "0".into()),
            ("link-refcount", "1".into()),
            ("last-ping-sent", "0".into()),
            ("last-ok-ping-reply", age.clone()),
            ("last-ping-reply", age.clone()),
            ("down-after-milliseconds", self.down_after_ms().to_string()),
            ("last-hello-message", age),
            ("voted-leader", "?".into()),
            ("voted-leader-epoch", "0".into()),
        ]
    }

    /// INFO's `masterN:` line.
    pub(super) fn info_line(&self, n: usize) -> String {
        let address = self
            .master
            .as_ref()
            .map_or("?:0".to_string(), |m| format!("{}:{}", m.host, m.port));
        format!(
            "master{n}:name={},status={},address={address},slaves={},sentinels={}",
            self.snap.name,
            self.status(),
            self.replicas().len(),
            self.other_managers().len() + 1
        )
    }
}

/// The fields every Sentinel instance reply starts with, in Sentinel's order.
fn instance_fields(
    name: String,
    ip: String,
    port: String,
    flags: &[&str],
    since_ok: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("name", name),
        ("ip", ip),
        ("port", port),
        ("runid", String::new()),
        ("flags", flags.join(",")),
        ("link-pending-commands", "0".into()),
        ("link-refcount", "1".into()),
        ("last-ping-sent", "0".into()),
        ("last-ok-ping-reply", since_ok.to_string()),
        ("last-ping-reply", since_ok.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::snapshot::{GroupSettings, NodeReport};
    use redis_failover_client::Topology;

    fn a(s: &str) -> NodeAddr {
        s.parse().expect("test address")
    }

    fn snapshot(topology: Topology) -> GroupSnapshot {
        GroupSnapshot {
            name: "g".into(),
            znode_path: "/r".into(),
            topology: Some(topology),
            settings: GroupSettings {
                down_after_ms: 1000,
                required_node_managers: 1,
                ..GroupSettings::default()
            },
            ..GroupSnapshot::default()
        }
    }

    fn get<'a>(f: &'a [(&'static str, String)], k: &str) -> &'a str {
        f.iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no field {k} in {f:?}"))
    }

    #[test]
    fn masters_and_replicas_carry_sentinel_flags() {
        let mut s = snapshot(Topology {
            master: Some(a("h:1")),
            slaves: vec![a("h:2")],
            unavailable: vec![a("h:3")],
            epoch: 4,
            ..Topology::default()
        });
        s.nodes.insert(
            a("h:2"),
            NodeReport {
                link_up: true,
                offset: Some(77),
                priority: Some(10),
                master: Some(a("h:1")),
                ..NodeReport::default()
            },
        );
        s.view.unavailable.push(a("h:3"));
        let g = GroupView::new(&s, None, "me", 10_000);
        let m = g.master_fields();
        assert_eq!(get(&m, "name"), "g");
        assert_eq!((get(&m, "ip"), get(&m, "port")), ("h", "1"));
        assert_eq!(get(&m, "flags"), "master");
        assert_eq!(get(&m, "config-epoch"), "4");
        assert_eq!(get(&m, "num-slaves"), "2");
        assert_eq!(get(&m, "quorum"), "1");
        assert_eq!(get(&m, "down-after-milliseconds"), "1000");
        assert_eq!(g.replicas(), vec![a("h:2"), a("h:3")]);
        let r = g.replica_fields(&a("h:2"));
        assert_eq!(get(&r, "name"), "h:2");
        assert_eq!(get(&r, "flags"), "slave");
        assert_eq!(get(&r, "master-link-status"), "ok");
        assert_eq!(get(&r, "slave-repl-offset"), "77");
        assert_eq!(get(&r, "slave-priority"), "10");
        assert_eq!((get(&r, "master-host"), get(&r, "master-port")), ("h", "1"));
        let down = g.replica_fields(&a("h:3"));
        assert_eq!(get(&down, "flags"), "s_down,slave,disconnected");
        assert_eq!(get(&down, "master-link-status"), "err");
        assert_eq!(
            g.info_line(0),
            "master0:name=g,status=ok,address=h:1,slaves=2,sentinels=1"
        );

        // No master published: the last one is shown, objectively down.
        let s = snapshot(Topology {
            master: None,
            unavailable: vec![a("h:1"), a("h:2")],
            ..Topology::default()
        });
        let g = GroupView::new(&s, Some(a("h:1")), "me", 10_000);
        let m = g.master_fields();
        assert_eq!((get(&m, "ip"), get(&m, "port")), ("h", "1"));
        assert!(get(&m, "flags").starts_with("s_down,o_down,master"));
        assert_eq!(g.replicas(), vec![a("h:2")]);
        assert!(g.info_line(0).contains("status=odown"));
        let g = GroupView::new(&s, None, "me", 10_000);
        let m = g.master_fields();
        assert_eq!((get(&m, "ip"), get(&m, "port")), ("?", "0"));
    }

    #[test]
    fn quorum_comes_from_fresh_views() {
        let mut s = snapshot(Topology {
            master: Some(a("h:1")),
            ..Topology::default()
        });
        s.settings.required_node_managers = 2;
        let view = |at_ms, down: &[&str]| ManagerView {
            at_ms,
            unavailable: down.iter().map(|d| a(d)).collect(),
            ..ManagerView::default()
        };
        s.views.insert("me".into(), view(1_000, &[]));
        s.view = view(29_500, &["h:1"]);
        s.views.insert("other".into(), view(29_000, &["h:1"]));
        // Older than three view heartbeats.
        s.views.insert("stale".into(), view(1_000, &["h:1"]));
        s.managers_in_line = vec!["other".into(), "me".into()];
        let g = GroupView::new(&s, None, "me", 30_000);
        assert_eq!(g.usable_managers(), 2);
        assert_eq!(g.odown_quorum(&a("h:1")), (2, 2));
        assert_eq!(g.master_down(), (true, true));
        assert_eq!(g.other_managers(), vec!["other", "stale"]);
        let stale = g.manager_fields("stale");
        assert_eq!(get(&stale, "flags"), "s_down,sentinel");
        assert_eq!(get(&stale, "runid"), "stale");
    }
}
