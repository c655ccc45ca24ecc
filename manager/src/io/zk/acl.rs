//! The znodes' ACLs. Without an identity every znode is open to all (ZooKeeper's default,
//! and this project's before ACLs). With one (`--zk-auth-file`): the managers' identity may
//! do everything, the readers (`--zk-read-acl`, `world:anyone` by default) may read, and on a
//! group's root the operators (`--zk-operator-acl`) may also create and delete children, the
//! requests `manual_failover` and `paused`. [`secure_group`] locks a group's tree that was
//! made open, before the manager does anything else with it; [`lock_open_tree`] does it for
//! that tree and for the group registry's (`registry::ensure_registry`).

use tracing::info;
use zookeeper_client as zk;

use redis_failover_client::ZnodePaths;

use crate::config::{AclId, ZkAccess};
use crate::core::event_names::ACL_LOCKED;

use super::{bounded, optional, Op, ZkError};

/// The ACLs a manager gives what it creates.
#[derive(Clone, Debug)]
pub struct ZnodeAcls {
    /// Every znode but a group's root.
    node: Vec<zk::Acl>,
    /// A group's root: `node` plus the operators' create and delete.
    root: Vec<zk::Acl>,
    secured: bool,
}

impl ZnodeAcls {
    pub fn new(access: &ZkAccess) -> ZnodeAcls {
        if access.identity.is_none() {
            let open = zk::Acls::anyone_all().to_vec();
            return ZnodeAcls {
                node: open.clone(),
                root: open,
                secured: false,
            };
        }
        let mut node = vec![zk::Acl::new(zk::Permission::ALL, zk::AuthId::authed())];
        node.extend(access.readers.iter().map(|r| acl(zk::Permission::READ, r)));
        let mut root = node.clone();
        let requests = zk::Permission::CREATE | zk::Permission::DELETE | zk::Permission::READ;
        root.extend(access.operators.iter().map(|o| acl(requests, o)));
        ZnodeAcls {
            node,
            root,
            secured: true,
        }
    }

    /// Open to all (no identity).
    pub fn open() -> ZnodeAcls {
        ZnodeAcls::new(&ZkAccess::default())
    }

    pub fn persistent(&self) -> zk::CreateOptions<'_> {
        zk::CreateMode::Persistent.with_acls(zk::Acls::new(&self.node))
    }

    pub fn ephemeral(&self) -> zk::CreateOptions<'_> {
        zk::CreateMode::Ephemeral.with_acls(zk::Acls::new(&self.node))
    }

    /// The group's lock: its nodes, and the folders above them, as every other znode.
    pub fn lock_options(&self) -> Result<zk::LockOptions<'_>, zk::Error> {
        zk::LockOptions::new(zk::Acls::new(&self.node)).with_ancestor_options(self.persistent())
    }

    /// A group's root (and the group registry's): operators may create and delete children.
    pub fn root_options(&self) -> zk::CreateOptions<'_> {
        zk::CreateMode::Persistent.with_acls(zk::Acls::new(&self.root))
    }
}

fn acl(permission: zk::Permission, id: &AclId) -> zk::Acl {
    zk::Acl::new(permission, zk::AuthId::new(&id.scheme, &id.id))
}

/// With an identity: creates the group's root with its ACL if it is missing and, when the
/// root is open to all, gives every znode below it and then the root (the operators'
/// requests excepted) the managers' ACLs, logging each (`+acl-locked`). A tree another identity owns is
/// refused by ZooKeeper (`NoAuth`): the error says which managers' identity to use.
pub async fn secure_group(
    client: &zk::Client,
    paths: &ZnodePaths,
    acls: &ZnodeAcls,
) -> Result<(), ZkError> {
    if !acls.secured {
        return Ok(());
    }
    let root = paths.root();
    make_root(client, root, acls).await?;
    let requests = [paths.manual_failover(), paths.paused()];
    lock_open_tree(client, root, acls, |path| {
        requests.iter().any(|r| r == path)
    })
    .await
}

/// Creates `root` with a group root's ACL ([`ZnodeAcls::root_options`]) if it is missing.
pub(super) async fn make_root(
    client: &zk::Client,
    root: &str,
    acls: &ZnodeAcls,
) -> Result<(), ZkError> {
    let mkdir = async {
        match client.mkdir(root, &acls.root_options()).await {
            Ok(()) | Err(zk::Error::NodeExists) => Ok(()),
            Err(e) => Err(e),
        }
    };
    bounded(Op::Writing, root, mkdir)
        .await
        .map_err(|e| e.with_hint(NOT_OURS))
}

/// With an identity: when `root` exists and is open to all, gives every znode below it that
/// is open to all (those `skip` names excepted) `acls.node`, then `root` itself `acls.root`,
/// logging each (`+acl-locked`). Used for a group's tree and for the group registry. The root
/// is locked last: a locked root means the whole tree is (only managers and operators can
/// create under it), so a manager that starts again reads one ACL; the tree is walked once
/// more after, for a znode created between the walk and the root's lock.
pub(crate) async fn lock_open_tree(
    client: &zk::Client,
    root: &str,
    acls: &ZnodeAcls,
    skip: impl Fn(&str) -> bool,
) -> Result<(), ZkError> {
    if !acls.secured || !acl_of(client, root).await?.is_some_and(|a| is_open(&a)) {
        return Ok(());
    }
    lock_below(client, root, acls, &skip).await?;
    lock_if_open(client, root, &acls.root).await?;
    lock_below(client, root, acls, &skip).await
}

/// The ACL of `path`; `None` when it does not exist.
async fn acl_of(client: &zk::Client, path: &str) -> Result<Option<Vec<zk::Acl>>, ZkError> {
    let acl = bounded(Op::Reading, path, async {
        optional(client.get_acl(path).await)
    })
    .await
    .map_err(|e| e.with_hint(NOT_OURS))?;
    Ok(acl.map(|(a, _)| a))
}

/// Every znode below `root` (deepest last), those open to all given `acls.node`, deepest first.
async fn lock_below(
    client: &zk::Client,
    root: &str,
    acls: &ZnodeAcls,
    skip: &impl Fn(&str) -> bool,
) -> Result<(), ZkError> {
    let mut tree = vec![root.to_string()];
    let mut i = 0;
    while let Some(path) = tree.get(i).cloned() {
        i += 1;
        let children = bounded(Op::Reading, &path, async {
            optional(client.list_children(&path).await)
        })
        .await
        .map_err(|e| e.with_hint(NOT_OURS))?;
        tree.extend(
            children
                .into_iter()
                .flatten()
                .map(|c| format!("{path}/{c}")),
        );
    }
    for path in tree.iter().skip(1).rev() {
        if !skip(path) {
            lock_if_open(client, path, &acls.node).await?;
        }
    }
    Ok(())
}

/// Gives `path` the ACL `want` when it is open to all, logging it (`+acl-locked`).
async fn lock_if_open(client: &zk::Client, path: &str, want: &[zk::Acl]) -> Result<(), ZkError> {
    if !acl_of(client, path).await?.is_some_and(|a| is_open(&a)) {
        return Ok(());
    }
    let set = async {
        match client.set_acl(path, want, None).await {
            // Removed since it was read: nothing left to lock.
            Ok(_) | Err(zk::Error::NoNode) => Ok(()),
            Err(e) => Err(e),
        }
    };
    bounded(Op::Writing, path, set)
        .await
        .map_err(|e| e.with_hint(NOT_OURS))?;
    info!("{ACL_LOCKED} {path}: was open to all; now writable by the managers only");
    Ok(())
}

pub(crate) const NOT_OURS: &str =
    "the tree belongs to another ZooKeeper identity: give every manager \
                        the same --zk-auth-file";

/// Anyone may write it.
fn is_open(acls: &[zk::Acl]) -> bool {
    acls.iter().any(|a| {
        a.scheme() == "world" && a.id() == "anyone" && a.permission().has(zk::Permission::WRITE)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_ids;

    fn access(readers: &str, operators: &str) -> ZkAccess {
        ZkAccess {
            identity: Some("m:pw".into()),
            readers: parse_ids(readers, "r").expect("readers"),
            operators: if operators.is_empty() {
                Vec::new()
            } else {
                parse_ids(operators, "o").expect("operators")
            },
            tls: None,
        }
    }

    #[test]
    fn acls_follow_the_access() {
        let open = ZnodeAcls::open();
        assert!(is_open(&open.node) && is_open(&open.root));

        let a = ZnodeAcls::new(&access("world:anyone", "digest:ops:h="));
        assert!(!is_open(&a.node) && !is_open(&a.root));
        assert_eq!(a.node.len(), 2, "{:?}", a.node);
        assert_eq!(a.root.len(), 3, "{:?}", a.root);
        let ops = &a.root[2];
        assert_eq!((ops.scheme(), ops.id()), ("digest", "ops:h="));
        assert!(ops
            .permission()
            .has(zk::Permission::CREATE | zk::Permission::DELETE));
        assert!(!ops.permission().has(zk::Permission::WRITE));

        let private = ZnodeAcls::new(&access("digest:app:x=", ""));
        assert_eq!(private.node[1].scheme(), "digest");
        assert_eq!(private.node[1].permission(), zk::Permission::READ);
    }
}
