//! [`Topology`], the content of `<root>/nodes`: what the leading node manager writes and
//! every client reads. The JSON keeps the Ruby `redis_failover` gem's keys (`master`,
//! `slaves`, `unavailable`) so its clients and operators' habits keep working; fields are
//! only ever added, never renamed. Pure: no I/O.

use serde::{Deserialize, Serialize};

use super::{NodeAddr, PauseInfo};

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

/// Why a `<root>/nodes` payload was refused.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// Not JSON, or not of this shape.
    #[error("not valid topology JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A node appears twice across `master`, `slaves` and `unavailable`.
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

    /// Encodes the topology, the gem's keys first; `promoting` and `paused` only when set.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_addr as a;

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

    /// Topologies as the leader writes them today, byte for byte: decoded and encoded back
    /// unchanged (`promoting` and `paused` only when set).
    #[test]
    fn todays_topologies_round_trip_byte_for_byte() {
        for json in [
            r#"{"master":"10.0.0.1:6379","slaves":["10.0.0.2:6379"],"unavailable":[],"epoch":3,"updated_at_ms":1767225600000,"manager":"m-1"}"#,
            r#"{"master":null,"slaves":[],"unavailable":["h:1","[::1]:6380"],"epoch":0,"updated_at_ms":0,"manager":null}"#,
            r#"{"master":"h:1","slaves":["h:2"],"unavailable":[],"epoch":4,"updated_at_ms":5,"manager":"m","promoting":"h:2"}"#,
            r#"{"master":"h:1","slaves":[],"unavailable":[],"epoch":1,"updated_at_ms":2,"manager":"m","paused":{"since_ms":7,"reason":"upgrade","by":"ops@h"}}"#,
        ] {
            let t = Topology::from_json(json.as_bytes()).expect(json);
            assert_eq!(String::from_utf8(t.to_json()).expect("utf8"), json);
        }
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
