//! The published topology: what the leading node manager writes to `<root>/nodes` and what
//! every client reads. The JSON keeps the Ruby `redis_failover` gem's keys (`master`,
//! `slaves`, `unavailable`) so its clients and operators' habits keep working; fields are
//! only ever added, never renamed. Pure: no I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Redis node's address as operators write it: `host:port` (`[v6]:port` for IPv6).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeAddr {
    pub host: String,
    pub port: u16,
}

impl NodeAddr {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for NodeAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = |why: &str| format!("bad address {s:?}: {why} (expected host:port)");
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let host = match host.strip_prefix('[') {
            Some(inner) => inner.strip_suffix(']').ok_or_else(|| bad("unclosed '['"))?,
            None if host.contains(':') => return Err(bad("IPv6 hosts need brackets, [::1]:6379")),
            None => host,
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        if host
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == ',')
        {
            return Err(bad("host has a space, ',' or '/'"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad("port is not a number from 1 to 65535"))?;
        if port == 0 {
            return Err(bad("port 0"));
        }
        Ok(Self::new(host, port))
    }
}

impl Serialize for NodeAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodeAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses a comma-separated `host:port` list, refusing empty lists and duplicates.
pub fn parse_addr_list(list: &str) -> Result<Vec<NodeAddr>, String> {
    let mut out: Vec<NodeAddr> = Vec::new();
    for part in list.split(',') {
        if part.trim().is_empty() {
            continue;
        }
        let addr: NodeAddr = part.parse()?;
        if out.contains(&addr) {
            return Err(format!("duplicate address {addr}"));
        }
        out.push(addr);
    }
    if out.is_empty() {
        return Err("empty address list".to_string());
    }
    Ok(out)
}

/// The content of `<root>/nodes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// The node that takes writes; `null` while the group has none (failed master and no
    /// replica fit to promote). Required, `null` included: `{}` is not a topology.
    #[serde(deserialize_with = "Option::deserialize")]
    pub master: Option<NodeAddr>,
    /// Healthy replicas of `master`, in sync with it.
    #[serde(default)]
    pub slaves: Vec<NodeAddr>,
    /// Nodes that are down, or up but not (yet) replicas of `master`.
    #[serde(default)]
    pub unavailable: Vec<NodeAddr>,
    /// Bumped on every promotion; a larger epoch is a newer master.
    #[serde(default)]
    pub epoch: u64,
    /// When the manager wrote this, in ms since the Unix epoch.
    #[serde(default)]
    pub updated_at_ms: u64,
    /// The id of the manager that wrote this.
    #[serde(default)]
    pub manager: Option<String>,
    /// Set by the leader right before it promotes this node (`REPLICAOF NO ONE`), cleared
    /// once the promotion is published: a leader that takes over finishes that promotion and
    /// no other. Clients ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoting: Option<NodeAddr>,
    /// Automatic failover is paused by an operator (`<root>/paused`); copied here by the
    /// leader so that `zkCli.sh get <root>/nodes` shows it. Clients ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<PauseInfo>,
}

/// The content of `<root>/paused`: who paused automatic failover, when and why.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseInfo {
    /// When it was paused, ms since the Unix epoch.
    #[serde(default)]
    pub since_ms: u64,
    #[serde(default)]
    pub reason: String,
    /// Who asked (`user@host` of the CLI, `http <peer>`, ...).
    #[serde(default)]
    pub by: String,
}

/// One entry of `<root>/failover_history`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverRecord {
    /// When the new master was published, ms since the Unix epoch.
    pub at_ms: u64,
    /// `failover` (master down), `manual` (operator, master down) or `switchover`
    /// (operator, master healthy: `FAILOVER TO`, no write lost).
    pub kind: String,
    /// Why: the decision's sentence (failure seen, candidates ranked).
    pub reason: String,
    pub from: NodeAddr,
    pub to: NodeAddr,
    /// From the decision to the new master published.
    pub duration_ms: u64,
    /// How the managers voted on the old master (empty for a switchover).
    #[serde(default)]
    pub votes: String,
    /// The epoch the new master was published with.
    pub epoch: u64,
    /// The manager that did it.
    pub manager: String,
}

/// Why a `<root>/nodes` payload was refused.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("not valid topology JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0} is listed more than once")]
    Duplicate(NodeAddr),
}

impl Topology {
    /// Decodes and checks a znode payload: every node at most once across all lists.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TopologyError> {
        let topo: Topology = serde_json::from_slice(bytes)?;
        let mut seen = std::collections::HashSet::new();
        for addr in topo.all_nodes() {
            if !seen.insert(addr) {
                return Err(TopologyError::Duplicate(addr.clone()));
            }
        }
        Ok(topo)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Every node named, master first.
    pub fn all_nodes(&self) -> impl Iterator<Item = &NodeAddr> {
        // `promoting` names a node listed elsewhere, so it is not counted again.
        self.master
            .iter()
            .chain(self.slaves.iter())
            .chain(self.unavailable.iter())
    }

    /// Same master, replicas, unavailable nodes and epoch; ignores who wrote it and when.
    pub fn same_content(&self, other: &Topology) -> bool {
        self.master == other.master
            && self.slaves == other.slaves
            && self.unavailable == other.unavailable
            && self.epoch == other.epoch
            && self.promoting == other.promoting
            && self.paused == other.paused
    }
}

/// One manager's own view of the nodes, in `<root>/manager_node_state/<manager-id>`
/// (ephemeral), with the Ruby gem's keys: `{"available":{"h:p":latency_ms},"unavailable":[..]}`
/// plus when it was written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ManagerView {
    /// Nodes this manager can reach, with its last probe latency in ms.
    #[serde(default)]
    pub available: std::collections::BTreeMap<NodeAddr, f64>,
    #[serde(default)]
    pub unavailable: Vec<NodeAddr>,
    /// When it was written, ms since the Unix epoch; an old view counts as absent.
    #[serde(default)]
    pub at_ms: u64,
    /// Where this manager answers the Sentinel protocol (`host:port`), so that the others
    /// can list it in `SENTINEL SENTINELS`; absent when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel_addr: Option<NodeAddr>,
}

impl ManagerView {
    pub fn from_json(bytes: &[u8]) -> Result<Self, TopologyError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> NodeAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn addresses_parse_and_print() {
        let cases = [
            (
                "127.0.0.1:6379",
                Some(("127.0.0.1", 6379)),
                "127.0.0.1:6379",
            ),
            (" redis-1:7000 ", Some(("redis-1", 7000)), "redis-1:7000"),
            ("[::1]:6380", Some(("::1", 6380)), "[::1]:6380"),
        ];
        for (input, want, shown) in cases {
            let got: NodeAddr = input.parse().expect(input);
            let (h, p) = want.expect("case");
            assert_eq!((got.host.as_str(), got.port), (h, p));
            assert_eq!(got.to_string(), shown);
        }
        for bad in [
            "",
            "6379",
            "host",
            ":6379",
            "host:",
            "host:0",
            "host:70000",
            "host:abc",
            "::1:6379",
            "[::1:6379",
            "a b:1",
        ] {
            let err = bad.parse::<NodeAddr>().expect_err(bad);
            assert!(err.contains("bad address"), "{err}");
        }
    }

    #[test]
    fn address_lists() {
        let l = parse_addr_list("h:1, h:2").expect("list");
        assert_eq!(l, vec![a("h:1"), a("h:2")]);
        assert!(parse_addr_list("h:1,h:1")
            .expect_err("dup")
            .contains("duplicate address h:1"));
        assert!(parse_addr_list(" , ").expect_err("empty").contains("empty"));
        assert!(parse_addr_list("h:1,nope").is_err());
    }

    #[test]
    fn ruby_gem_json_is_read() {
        let t = Topology::from_json(br#"{"master":"h:1","slaves":["h:2"],"unavailable":[]}"#)
            .expect("gem format");
        assert_eq!(t.master, Some(a("h:1")));
        assert_eq!(t.slaves, vec![a("h:2")]);
        assert_eq!(t.epoch, 0);
        let t =
            Topology::from_json(br#"{"master":null,"slaves":[],"unavailable":["h:1"],"future":1}"#)
                .expect("null master and unknown keys");
        assert_eq!(t.master, None);
    }

    #[test]
    fn round_trip_keeps_gem_keys() {
        let t = Topology {
            master: Some(a("h:1")),
            slaves: vec![a("h:2")],
            unavailable: vec![a("h:3")],
            epoch: 4,
            updated_at_ms: 5,
            manager: Some("m".into()),
            promoting: None,
            paused: None,
        };
        let json = String::from_utf8(t.to_json()).expect("utf8");
        assert!(!json.contains("paused"), "absent when not paused: {json}");
        assert!(
            json.starts_with(r#"{"master":"h:1","slaves":["h:2"],"unavailable":["h:3"],"epoch":4"#),
            "{json}"
        );
        assert_eq!(Topology::from_json(json.as_bytes()).expect("decode"), t);
        let paused = Topology {
            paused: Some(PauseInfo {
                since_ms: 7,
                reason: "upgrade".into(),
                by: "ops".into(),
            }),
            ..t.clone()
        };
        let json = paused.to_json();
        assert_eq!(Topology::from_json(&json).expect("decode"), paused);
        assert!(
            !paused.same_content(&t),
            "pausing is a change worth publishing"
        );
    }

    #[test]
    fn manager_views_keep_the_gem_keys() {
        let mut v = ManagerView {
            at_ms: 7,
            ..ManagerView::default()
        };
        v.available.insert(a("h:1"), 2.5);
        v.unavailable.push(a("h:2"));
        let json = String::from_utf8(v.to_json()).expect("utf8");
        assert_eq!(
            json,
            r#"{"available":{"h:1":2.5},"unavailable":["h:2"],"at_ms":7}"#
        );
        assert_eq!(ManagerView::from_json(json.as_bytes()).expect("decode"), v);
        let gem = ManagerView::from_json(br#"{"available":{"h:1":1},"unavailable":[]}"#)
            .expect("the gem's format, without at_ms");
        assert_eq!(gem.at_ms, 0);
        assert!(ManagerView::from_json(b"\"garbage\"").is_err());
    }

    #[test]
    fn corrupt_payloads_are_refused() {
        for bad in [
            &b"garbage"[..],
            b"{}",
            br#"{"master":"nope"}"#,
            br#"{"master":"h:1","slaves":["h:1"]}"#,
            br#"{"master":5}"#,
        ] {
            assert!(
                Topology::from_json(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
