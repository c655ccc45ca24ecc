//! The group registry (`--groups-znode`, `/redis_failover_groups` by default): one znode per
//! group added at run time, holding a [`GroupEntry`]. Operators add and remove entries
//! (`redis_node_manager group add/remove`, `POST/DELETE /groups/{name}`); managers started
//! with `--groups-from-zookeeper` read it (see `run.rs`). Nothing here touches a group's own
//! tree or its Redis nodes.

use std::collections::BTreeMap;

use redis_failover_client::failover::operator_options;
use redis_failover_client::wire::groups::{check_group_name, default_group_root, group_entry_path};
use redis_failover_client::wire::GroupEntry;
use zookeeper_client as zk;

use super::acl::{lock_open_tree, make_root};
use super::operator::OPERATOR_HINT;
use super::{bounded, optional, Op, ZkError, ZnodeAcls};
use crate::core::admit::{clash, clash_with_registry};

/// The registry as read: each entry by name, or why it cannot be used.
pub type Entries = BTreeMap<String, Result<GroupEntry, String>>;

/// The entries as JSON, by name: each entry, or `{"error": why}` for one that cannot be used
/// (`group list --json`, `GET /groups`).
pub fn entries_json(entries: Entries) -> BTreeMap<String, serde_json::Value> {
    entries
        .into_iter()
        .map(|(name, e)| {
            let v = match e {
                Ok(e) => serde_json::to_value(e).unwrap_or_default(),
                Err(why) => serde_json::json!({ "error": why }),
            };
            (name, v)
        })
        .collect()
}

/// A group the caller watches (a manager's, for `POST /groups`), checked against an entry
/// being added.
pub struct Watched {
    pub name: String,
    pub root: String,
    pub nodes: Vec<redis_failover_client::NodeAddr>,
}

/// Why a registry change was not made.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Bad input (a name, a path, a node another group has).
    #[error("{0}")]
    Invalid(String),
    /// `add` of a name the registry already has.
    #[error("{0}")]
    Exists(String),
    /// `add` of an entry over one of the caller's own configured groups.
    #[error("{0}")]
    Taken(String),
    /// `remove` of a name the registry does not have.
    #[error("{0}")]
    Missing(String),
    #[error(transparent)]
    Zk(#[from] ZkError),
}

/// The entry of a group being added: `nodes` parsed as `-n/--nodes` is (`nodes_field` names
/// the flag or field in the error), the znode path defaulting to `/redis_failover_<name>`.
pub fn new_entry(
    name: &str,
    nodes: &str,
    nodes_field: &str,
    znode_path: Option<&str>,
    by: String,
) -> Result<GroupEntry, RegistryError> {
    check_group_name(name).map_err(RegistryError::Invalid)?;
    let nodes = redis_failover_client::wire::parse_addr_list(nodes)
        .map_err(|e| RegistryError::Invalid(format!("{nodes_field}: {e}")))?;
    let entry = GroupEntry {
        nodes,
        znode_path: znode_path.map_or_else(|| default_group_root(name), str::to_string),
        added_ms: redis_failover_client::wire::unix_ms(),
        by,
    };
    entry
        .paths()
        .map_err(|e| RegistryError::Invalid(format!("--znode-path: {e}")))?;
    Ok(entry)
}

/// Reads every entry under `root`; `None` when `root` does not exist.
pub async fn read_registry(client: &zk::Client, root: &str) -> Result<Option<Entries>, ZkError> {
    let children = bounded(Op::Reading, root, async {
        optional(client.list_children(root).await)
    })
    .await?;
    let Some(mut names) = children else {
        return Ok(None);
    };
    names.sort();
    let mut entries = Entries::new();
    for name in names {
        let path = group_entry_path(root, &name);
        let data = bounded(Op::Reading, &path, async {
            optional(client.get_data(&path).await)
        })
        .await?;
        // Removed between the listing and the read: gone.
        let Some((data, _)) = data else { continue };
        let entry = check_group_name(&name).and_then(|()| GroupEntry::from_json(&data));
        entries.insert(name, entry);
    }
    Ok(Some(entries))
}

/// Creates the registry's root if it is missing, with a group root's ACL (the managers' own,
/// readers may read, operators may add and remove entries). With an identity, a root that
/// is open to all (made by `group add` without one, or before ACLs) is locked: each entry
/// open to all gets the managers' ACL, then the root a group root's, each logged
/// (`+acl-locked`).
pub async fn ensure_registry(
    client: &zk::Client,
    root: &str,
    acls: &ZnodeAcls,
) -> Result<(), ZkError> {
    make_root(client, root, acls).await?;
    lock_open_tree(client, root, acls, |_| false).await
}

/// Adds group `name` to the registry at `root`: refused when the name is taken, or when its
/// znode path or one of its nodes is another entry's. `as_identity`: written as the
/// session's identity (see [`operator_options`]). A missing registry is created open to all
/// without an identity; with one it is refused ([`ZkError::NoRegistry`]): the managers create
/// it at start (`--groups-from-zookeeper`), with their ACL, and an operator's would shut them
/// out of it.
pub async fn add_group(
    client: &zk::Client,
    root: &str,
    name: &str,
    entry: &GroupEntry,
    as_identity: bool,
    watched: &[Watched],
) -> Result<(), RegistryError> {
    check_group_name(name).map_err(RegistryError::Invalid)?;
    let paths = entry.paths().map_err(RegistryError::Invalid)?;
    if entry.nodes.is_empty() {
        return Err(RegistryError::Invalid("no nodes given".into()));
    }
    if let Some(why) = clash_with_registry(&paths, root) {
        return Err(RegistryError::Invalid(why));
    }
    let entries = read_registry(client, root).await?.unwrap_or_default();
    if let Some(existing) = entries.get(name) {
        let nodes = match existing {
            Ok(e) => e
                .nodes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            Err(_) => "unreadable".to_string(),
        };
        return Err(exists(name, root, &nodes));
    }
    for (other, e) in entries
        .iter()
        .filter_map(|(n, e)| Some((n, e.as_ref().ok()?)))
    {
        if let Some(why) = clash(&paths, &entry.nodes, other, &e.znode_path, |n| {
            e.nodes.contains(n)
        }) {
            return Err(RegistryError::Invalid(why));
        }
    }
    // The groups of the caller's flags and config file, which the registry does not list:
    // managers without them would give the entry a second leader over the same nodes.
    for w in watched.iter().filter(|w| !entries.contains_key(&w.name)) {
        if w.name == name {
            return Err(RegistryError::Taken(format!(
                "group {name:?} is one of this manager's configured groups"
            )));
        }
        if let Some(why) = clash(&paths, &entry.nodes, &w.name, &w.root, |n| {
            w.nodes.contains(n)
        }) {
            return Err(RegistryError::Taken(why));
        }
    }
    let options = operator_options(as_identity);
    if as_identity {
        let stat = bounded(Op::Reading, root, client.check_stat(root)).await?;
        if stat.is_none() {
            return Err(ZkError::NoRegistry {
                root: root.to_string(),
            }
            .into());
        }
    } else {
        let mkdir = async {
            match client.mkdir(root, &options).await {
                Ok(()) | Err(zk::Error::NodeExists) => Ok(()),
                Err(e) => Err(e),
            }
        };
        bounded(Op::Writing, root, mkdir)
            .await
            .map_err(|e| e.with_hint(OPERATOR_HINT))?;
    }
    let entry_path = group_entry_path(root, name);
    let create = async {
        match client.create(&entry_path, &entry.to_json(), &options).await {
            Ok(_) => Ok(true),
            Err(zk::Error::NodeExists) => Ok(false),
            Err(e) => Err(e),
        }
    };
    match bounded(Op::Writing, &entry_path, create).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(exists(name, root, "just added by someone else")),
        Err(e) => Err(e.with_hint(OPERATOR_HINT).into()),
    }
}

fn exists(name: &str, root: &str, nodes: &str) -> RegistryError {
    RegistryError::Exists(format!(
        "group {name:?} already exists in {root} (nodes {nodes}); remove it first \
         (redis_node_manager group remove {name})"
    ))
}

/// Removes group `name` from the registry at `root`; the managers stop watching it. Its
/// own tree (topology, history) stays.
pub async fn remove_group(
    client: &zk::Client,
    root: &str,
    name: &str,
) -> Result<(), RegistryError> {
    check_group_name(name).map_err(RegistryError::Invalid)?;
    let path = group_entry_path(root, name);
    let delete = async {
        match client.delete(&path, None).await {
            Ok(()) => Ok(true),
            Err(zk::Error::NoNode) => Ok(false),
            Err(e) => Err(e),
        }
    };
    match bounded(Op::Writing, &path, delete).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(RegistryError::Missing(format!(
            "no group {name:?} in {root}; `redis_node_manager group list` shows them"
        ))),
        Err(e) => Err(e.with_hint(OPERATOR_HINT).into()),
    }
}
