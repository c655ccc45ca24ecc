//! The znode paths under a root (`--znode-path`, default `/redis_failover`), defined once so
//! the manager, the client and operators' tools agree on them.

/// The root used when none is configured; the Ruby `redis_failover` gem uses the same.
pub const DEFAULT_ROOT: &str = "/redis_failover";

/// Paths of one group's znodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZnodePaths {
    root: String,
}

impl ZnodePaths {
    /// Checks that `root` is an absolute ZooKeeper path without a trailing slash and
    /// without empty, `.` or `..` components; the error is a sentence for the operator.
    pub fn new(root: &str) -> Result<Self, String> {
        if !root.starts_with('/') {
            return Err(format!("znode path {root:?} must start with '/'"));
        }
        if root.len() > 1 && root.ends_with('/') {
            return Err(format!("znode path {root:?} must not end with '/'"));
        }
        if root != "/" {
            for part in root[1..].split('/') {
                if part.is_empty() || part == "." || part == ".." {
                    return Err(format!(
                        "znode path {root:?} has an empty, '.' or '..' component"
                    ));
                }
            }
        }
        Ok(Self {
            root: root.to_string(),
        })
    }

    /// [`ZnodePaths::new`] for a tree this project owns (a group's, the group registry): also
    /// refuses `/` and ZooKeeper's own `/zookeeper`, which it must not take over.
    pub fn own(root: &str) -> Result<Self, String> {
        let paths = Self::new(root)?;
        if root == "/" || root == "/zookeeper" || root.starts_with("/zookeeper/") {
            return Err(format!(
                "{root} is reserved; use a path of its own such as {DEFAULT_ROOT}"
            ));
        }
        Ok(paths)
    }

    /// True when the tree at `other` and this one share a znode: the same root, or one
    /// under the other.
    pub fn overlaps(&self, other: &str) -> bool {
        let under = |a: &str, b: &str| a.strip_prefix(b).is_some_and(|r| r.starts_with('/'));
        self.root == other || under(&self.root, other) || under(other, &self.root)
    }

    /// The group's root, as given.
    pub fn root(&self) -> &str {
        &self.root
    }

    fn child(&self, name: &str) -> String {
        if self.root == "/" {
            format!("/{name}")
        } else {
            format!("{}/{name}", self.root)
        }
    }

    /// The published topology, `{"master":..,"slaves":[..],"unavailable":[..],...}`.
    pub fn nodes(&self) -> String {
        self.child("nodes")
    }

    /// Parent of every manager's ephemeral view.
    pub fn manager_node_state(&self) -> String {
        self.child("manager_node_state")
    }

    /// One manager's ephemeral view.
    pub fn manager_node_state_of(&self, manager_id: &str) -> String {
        format!("{}/{manager_id}", self.manager_node_state())
    }

    /// Operators' request for a manual failover: `"h:p"` or `"ANY_SLAVE"`
    /// ([`super::ManualRequest`]), or the leader's [`super::ManualRefusal`].
    pub fn manual_failover(&self) -> String {
        self.child("manual_failover")
    }

    /// Operators' pause switch: while it exists (JSON [`super::PauseInfo`]) the leader makes
    /// no automatic failover; probing, publishing and manual failovers go on.
    pub fn paused(&self) -> String {
        self.child("paused")
    }

    /// The last failovers, newest last (JSON array of [`super::FailoverRecord`], bounded).
    pub fn failover_history(&self) -> String {
        self.child("failover_history")
    }

    /// Parent of the leader lock's ephemeral sequential children.
    pub fn lock(&self) -> String {
        self.child("master_redis_node_manager_lock")
    }
}

impl Default for ZnodePaths {
    fn default() -> Self {
        Self {
            root: DEFAULT_ROOT.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_trees_are_not_zookeepers_and_overlaps_are_seen() {
        for bad in ["/", "/zookeeper", "/zookeeper/config"] {
            let e = ZnodePaths::own(bad).expect_err(bad);
            assert!(e.starts_with(&format!("{bad} is reserved")), "{e}");
        }
        assert!(ZnodePaths::own("/zookeeper_not").is_ok());
        let p = ZnodePaths::own("/rf/a").expect("valid");
        for (other, want) in [
            ("/rf/a", true),
            ("/rf", true),
            ("/rf/a/b", true),
            ("/rf/ab", false),
            ("/rf/b", false),
            ("/r", false),
        ] {
            assert_eq!(p.overlaps(other), want, "{other}");
        }
    }

    #[test]
    fn paths_under_root() {
        let p = ZnodePaths::new("/redis_failover").expect("valid");
        assert_eq!(p.nodes(), "/redis_failover/nodes");
        assert_eq!(p.manual_failover(), "/redis_failover/manual_failover");
        assert_eq!(
            p.manager_node_state_of("a-1"),
            "/redis_failover/manager_node_state/a-1"
        );
        assert_eq!(p.lock(), "/redis_failover/master_redis_node_manager_lock");
        assert_eq!(ZnodePaths::new("/").expect("valid").nodes(), "/nodes");
    }

    #[test]
    fn bad_roots_are_refused() {
        for bad in ["", "redis", "/a/", "/a//b", "/a/./b", "/a/.."] {
            assert!(ZnodePaths::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
