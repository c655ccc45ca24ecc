//! The group registry: groups added and removed at run time (`redis_node_manager group add`,
//! `POST /groups/{name}`), one znode per group under the registry's root
//! ([`DEFAULT_GROUPS_ROOT`] unless `--groups-znode` says otherwise), each holding a
//! [`GroupEntry`]. Managers started with `--groups-from-zookeeper` watch it and start or stop
//! watching the groups it lists. Pure.

use serde::{Deserialize, Serialize};

use super::{NodeAddr, ZnodePaths};

/// The registry's root when none is configured.
pub const DEFAULT_GROUPS_ROOT: &str = "/redis_failover_groups";

/// The content of `<registry>/<name>`: a group's nodes and where its topology is published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    /// The group's Redis nodes (master and replicas, any order).
    pub nodes: Vec<NodeAddr>,
    /// The group's root znode (its topology, views, lock).
    pub znode_path: String,
    /// When it was added, ms since the Unix epoch.
    #[serde(default)]
    pub added_ms: u64,
    /// Who added it (`user@host` of the CLI, `http (<manager>)`).
    #[serde(default)]
    pub by: String,
}

impl GroupEntry {
    /// Decodes `<registry>/<name>`, checking what a manager relies on: at least one node and
    /// a valid znode path.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let entry: GroupEntry =
            serde_json::from_slice(bytes).map_err(|e| format!("not a group entry: {e}"))?;
        if entry.nodes.is_empty() {
            return Err("no nodes".into());
        }
        if let Some((_, n)) = entry
            .nodes
            .iter()
            .enumerate()
            .find(|(i, n)| entry.nodes[..*i].contains(n))
        {
            return Err(format!("node {n} is listed twice"));
        }
        entry.paths()?;
        Ok(entry)
    }

    /// Encodes the entry for `<registry>/<name>`.
    pub fn to_json(&self) -> Vec<u8> {
        // Addresses, strings and integers: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The group's znode paths (not `/` or under `/zookeeper`).
    pub fn paths(&self) -> Result<ZnodePaths, String> {
        ZnodePaths::own(&self.znode_path)
    }
}

/// Where a group added without a znode path is published: `/redis_failover_<name>`.
pub fn default_group_root(name: &str) -> String {
    format!("{}_{name}", super::DEFAULT_ROOT)
}

/// A group name the registry accepts: 1 to 64 of `A-Z a-z 0-9 . _ -`, not `.` or `..` (it is
/// a znode's name and the Sentinel master name clients ask for).
pub fn check_group_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() || name.len() > 64 || !ok_chars || name == "." || name == ".." {
        return Err(format!(
            "group name {name:?} must be 1 to 64 letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(())
}

/// The registry znode of group `name` under `root`.
pub fn group_entry_path(root: &str, name: &str) -> String {
    if root == "/" {
        format!("/{name}")
    } else {
        format!("{root}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_addr as a;

    #[test]
    fn entries_round_trip_byte_for_byte() {
        let json = r#"{"nodes":["h:1","h:2"],"znode_path":"/rf_cache","added_ms":1767225600000,"by":"ops@host-1"}"#;
        let e = GroupEntry::from_json(json.as_bytes()).expect("entry");
        assert_eq!(e.nodes, vec![a("h:1"), a("h:2")]);
        assert_eq!(String::from_utf8(e.to_json()).expect("utf8"), json);
        // Written by hand: only nodes and znode_path are needed.
        let e = GroupEntry::from_json(br#"{"nodes":["h:1"],"znode_path":"/x"}"#).expect("entry");
        assert_eq!((e.added_ms, e.by.as_str()), (0, ""));
    }

    #[test]
    fn bad_entries_say_why() {
        let table: &[(&[u8], &str)] = &[
            (b"h:1,h:2", "not a group entry"),
            (br#"{"nodes":[],"znode_path":"/x"}"#, "no nodes"),
            (
                br#"{"nodes":["h:1"],"znode_path":"x"}"#,
                "must start with '/'",
            ),
            (br#"{"nodes":["h"],"znode_path":"/x"}"#, "not a group entry"),
            (
                br#"{"nodes":["h:1","h:2","h:1"],"znode_path":"/x"}"#,
                "node h:1 is listed twice",
            ),
            (br#"{"nodes":["h:1"],"znode_path":"/"}"#, "/ is reserved"),
            (
                br#"{"nodes":["h:1"],"znode_path":"/zookeeper/quota"}"#,
                "/zookeeper/quota is reserved",
            ),
        ];
        for (bytes, want) in table {
            let e = GroupEntry::from_json(bytes).expect_err("refused");
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn names_are_znode_and_sentinel_safe() {
        for good in ["cache", "mymaster", "a.b_c-1", &"x".repeat(64)] {
            assert!(check_group_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ü", &"x".repeat(65)] {
            assert!(check_group_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(default_group_root("cache"), "/redis_failover_cache");
        assert_eq!(group_entry_path("/g", "c"), "/g/c");
        assert_eq!(group_entry_path("/", "c"), "/c");
    }
}
