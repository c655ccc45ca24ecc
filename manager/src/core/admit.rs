//! Which groups of the registry (`--groups-from-zookeeper`) may be watched, decided from the
//! registry's content alone, so that every manager reading it makes the same choice: two
//! entries that name the same Redis nodes or share a tree must never each get a leader.
//! [`clash`] is the one check of a group against another, used wherever groups meet.

use std::collections::BTreeMap;

use redis_failover_client::wire::GroupEntry;
use redis_failover_client::{NodeAddr, ZnodePaths};

/// The entries that may be watched, and why each other one may not. Taken in the order they
/// were added (`added_ms`, then name), an entry is refused when its tree overlaps the
/// registry's (`registry`) or an admitted entry's, or when it names a node an admitted entry
/// has: the earlier entry wins, whatever this manager already watches.
pub fn admit(
    registry: &str,
    entries: BTreeMap<String, GroupEntry>,
) -> (BTreeMap<String, GroupEntry>, BTreeMap<String, String>) {
    let mut order: Vec<(String, GroupEntry)> = entries.into_iter().collect();
    order.sort_by(|(a, ea), (b, eb)| (ea.added_ms, a).cmp(&(eb.added_ms, b)));
    let (mut admitted, mut refused) = (BTreeMap::new(), BTreeMap::new());
    for (name, entry) in order {
        match why_not(registry, &admitted, &entry) {
            Some(why) => {
                refused.insert(name, why);
            }
            None => {
                admitted.insert(name, entry);
            }
        }
    }
    (admitted, refused)
}

fn why_not(
    registry: &str,
    admitted: &BTreeMap<String, GroupEntry>,
    entry: &GroupEntry,
) -> Option<String> {
    let paths = match entry.paths() {
        Ok(p) => p,
        Err(e) => return Some(e),
    };
    clash_with_registry(&paths, registry).or_else(|| {
        admitted.iter().find_map(|(other, e)| {
            let why = clash(&paths, &entry.nodes, other, &e.znode_path, |n| {
                e.nodes.contains(n)
            })?;
            Some(format!("{why}, added earlier"))
        })
    })
}

/// Why a group at `root` cannot be watched with the registry at `registry`: one tree inside
/// the other.
pub fn clash_with_registry(root: &ZnodePaths, registry: &str) -> Option<String> {
    root.overlaps(registry).then(|| {
        format!(
            "znode path {} overlaps the group registry {registry}; give the group its own",
            root.root()
        )
    })
}

/// Why a group at `root` over `nodes` cannot be watched beside group `other`, at
/// `other_root` and over the nodes `other_has` says: their trees share a znode, or they
/// share a node. Every check of one group against another (the registry's entries among
/// themselves, against the groups a manager watches, `group add`) is this one.
pub fn clash(
    root: &ZnodePaths,
    nodes: &[NodeAddr],
    other: &str,
    other_root: &str,
    other_has: impl Fn(&NodeAddr) -> bool,
) -> Option<String> {
    if root.overlaps(other_root) {
        return Some(format!(
            "znode path {} overlaps group {other:?}'s ({other_root})",
            root.root()
        ));
    }
    let shared = nodes.iter().find(|n| other_has(n))?;
    Some(format!("node {shared} is already in group {other:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis_failover_client::wire::parse_addr_list;

    fn entry(nodes: &str, path: &str, added_ms: u64) -> GroupEntry {
        GroupEntry {
            nodes: parse_addr_list(nodes).expect("nodes"),
            znode_path: path.to_string(),
            added_ms,
            by: String::new(),
        }
    }

    #[test]
    fn the_earlier_entry_wins_on_every_manager() {
        let reg = "/redis_failover_groups";
        // (name, nodes, path, added_ms) -> refused because (None: admitted)
        let table: &[(&str, &str, &str, u64, Option<&str>)] = &[
            (
                "alpha",
                "h:1,h:2",
                "/rf_alpha",
                20,
                Some("node h:1 is already in group \"zeta\", added earlier"),
            ),
            ("zeta", "h:1,h:3", "/rf_zeta", 10, None),
            (
                "beta",
                "h:4",
                "/rf_zeta/sub",
                30,
                Some("znode path /rf_zeta/sub overlaps group \"zeta\"'s (/rf_zeta), added earlier"),
            ),
            (
                "gamma",
                "h:5",
                "/redis_failover_groups/x",
                1,
                Some("overlaps the group registry"),
            ),
            ("delta", "h:6", "/rf_delta", 30, None),
            // Same instant: the name decides.
            (
                "b",
                "h:7",
                "/rf_b",
                40,
                Some("node h:7 is already in group \"a\""),
            ),
            ("a", "h:7", "/rf_a", 40, None),
        ];
        let entries = table
            .iter()
            .map(|(n, nodes, p, at, _)| (n.to_string(), entry(nodes, p, *at)))
            .collect();
        let (admitted, refused) = admit(reg, entries);
        for (name, .., want) in table {
            match want {
                None => assert!(admitted.contains_key(*name), "{name} admitted: {refused:?}"),
                Some(why) => {
                    let got = refused.get(*name).expect(name);
                    assert!(got.contains(why), "{name}: {got}");
                    assert!(!admitted.contains_key(*name));
                }
            }
        }
    }
}
