//! [`ManagerView`], one manager's own view of the nodes in
//! `<root>/manager_node_state/<manager-id>` (ephemeral). The leader reads every view to
//! count votes; operators read them with `redis_node_manager status`. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{NodeAddr, TopologyError};

/// One manager's own view of the nodes, in `<root>/manager_node_state/<manager-id>`
/// (ephemeral), with the Ruby gem's keys: `{"available":{"h:p":latency_ms},"unavailable":[..]}`
/// plus when it was written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ManagerView {
    /// Nodes this manager can reach, with its last probe latency in ms.
    #[serde(default)]
    pub available: BTreeMap<NodeAddr, f64>,
    /// Nodes this manager cannot reach (or does not consider up).
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
    /// Decodes a view; the gem's format (no `at_ms`) reads as written at time 0.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TopologyError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Encodes the view, with the gem's keys first.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_addr as a;

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

    /// Views as managers write them today, byte for byte: decoded and encoded back unchanged.
    #[test]
    fn todays_views_round_trip_byte_for_byte() {
        for json in [
            r#"{"available":{},"unavailable":[],"at_ms":0}"#,
            r#"{"available":{"10.0.0.1:6379":0.25,"[::1]:6380":1.5},"unavailable":["h:3"],"at_ms":1767225600000}"#,
            r#"{"available":{"h:1":2.0},"unavailable":[],"at_ms":5,"sentinel_addr":"127.0.0.1:26379"}"#,
        ] {
            let v = ManagerView::from_json(json.as_bytes()).expect(json);
            assert_eq!(String::from_utf8(v.to_json()).expect("utf8"), json);
        }
    }
}
