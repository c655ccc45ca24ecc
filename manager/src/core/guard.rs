//! The replication guard: a master that restarted empty is never synced from before the
//! leader has decided about it. Pure.
//!
//! A Redis replica reconnects to its master on its own, about once a second, and when the
//! master restarted without its data (a new `run_id`, a new replication id) it resyncs from
//! it and throws its own data away — also while no leader is acting (the leader's manager
//! died with the master, say). With `--replication-guard on` (the default) every replica
//! authenticates to its master as a user that the leader creates at run time
//! (`ACL SETUSER`, never saved to a file): a restarted process has lost that user, so its
//! replicas' `AUTH` fails and they keep their data until the leader acts. The leader puts
//! the user (and the replica's `masteruser`/`masterauth`, used if it is a replica) on a node
//! only while it trusts the node's data:
//!
//! - the group's master, once no replica holds a replication history it lacks
//!   ([`lost_history`]: a master that restarted while nobody watched is replaced first);
//! - a replica of that master whose link is up (it holds the master's data).
//!
//! A restart loses both settings, so they are put back after each restart, like the fence.

use std::time::{Duration, Instant};

use redis_failover_client::NodeAddr;

use super::derive::up_info;
use super::info::{NodeInfo, Role};
use super::View;

/// The ACL user replicas authenticate as (`masteruser`).
pub const USER: &str = "redis-failover-replication";

/// What the user may do: exactly what a replica needs from its master.
pub const USER_RULES: [&str; 6] = ["on", "resetpass", "-@all", "+psync", "+replconf", "+ping"];

/// The user and password replicas authenticate with. Every manager of a group derives the
/// same password (SHA-1 of a fixed label, the group's root and the Redis password the
/// managers use), so none is stored or exchanged; it gives nothing the managers' own
/// password does not (without one the nodes are open anyway). Never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    password: String,
}

impl Credential {
    pub fn derive(root: &str, redis_password: Option<&str>) -> Self {
        let mut h = sha1_smol::Sha1::new();
        for part in [
            "redis-failover replication guard",
            root,
            redis_password.unwrap_or(""),
        ] {
            h.update(part.as_bytes());
            h.update(&[0]);
        }
        Credential {
            password: h.digest().to_string(),
        }
    }

    pub fn user(&self) -> &'static str {
        USER
    }

    pub fn password(&self) -> &str {
        &self.password
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({USER}, password hidden)")
    }
}

/// Why the group's `master` holds less than its replicas, when it does: every one of its
/// live replicas (at least one) holds data of a replication history the master does not
/// continue (another `master_replid` than the master's, and not one that its
/// `master_replid2` covers up to the replica's offset), with its link down and no full sync
/// under way, and the master's process started after (or about when) they lost their link. That is a master that restarted
/// without its data (or with an old snapshot) while this leader did not see its `run_id`
/// change — the replication guard kept the replicas from resyncing: promoting one of them
/// keeps their data. (A replica that is ahead of a newly promoted master is not such a
/// case: the promoted process was running long before.)
pub fn lost_history(view: &View, master: &NodeAddr, now: Instant) -> Option<String> {
    let mh = view.get(master)?;
    let m = up_info(view, master).filter(|i| i.is_master() && !i.replid.is_empty())?;
    let started = mh.started_at()?;
    let replicas: Vec<(&NodeAddr, _)> = view
        .keys()
        .filter(|a| *a != master)
        .filter_map(|a| Some((a, up_info(view, a)?)))
        .filter(|(_, i)| i.master() == Some(master))
        .collect();
    // On the master's own history (the same `master_replid`) a replica is never ahead in
    // this sense, whatever the offsets say: the master's may be a poll old, or the master
    // merely cut off (a REJECT resets the replicas' links as a crash does).
    let continued = |i: &NodeInfo| {
        i.replid == m.replid || (i.replid == m.replid2 && i.offset < m.second_offset)
    };
    let ahead = |i: &&NodeInfo| {
        let Role::Replica {
            link_up: false,
            syncing: false,
            link_down_secs: Some(down),
            ..
        } = i.role
        else {
            return false;
        };
        // Whole seconds on both sides: a second of slack each.
        let lost_at = now.checked_sub(Duration::from_secs(down + 1));
        let started_after = lost_at.is_none_or(|t| started + Duration::from_secs(1) >= t);
        started_after && !i.replid.is_empty() && i.offset > 0 && !continued(i)
    };
    if replicas.is_empty() || !replicas.iter().all(|(_, i)| ahead(i)) {
        return None;
    }
    let (best, info) = replicas.iter().max_by_key(|(_, i)| i.offset)?;
    Some(format!(
        "it restarted without its data: it serves replication history {} from offset {}, \
         while its replicas, which lost it before it started, hold more ({best}: offset {} \
         of {})",
        m.replid, m.offset, info.offset, info.replid
    ))
}

/// Whether the leader may put the guard on `node` now: the group's `master` (once
/// [`lost_history`] found nothing), or a replica of it whose link is up.
pub fn trusted(view: &View, master: &NodeAddr, node: &NodeAddr) -> bool {
    let Some(info) = up_info(view, node) else {
        return false;
    };
    if node == master {
        info.is_master()
    } else {
        info.master() == Some(master) && info.link_up()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::health::NodeHealth;
    use crate::core::info::{NodeInfo, Role};
    use crate::core::test_support::{a, answered, info};

    fn node(role: Role, replid: &str, offset: u64) -> NodeHealth {
        let info = NodeInfo {
            replid: replid.into(),
            ..info(role, offset)
        };
        answered(Instant::now(), info)
    }

    /// A master with history `replid` at `offset`, continuing `replid2` up to `second`,
    /// started `age` before `now`.
    fn master(
        replid: &str,
        (replid2, second): (&str, u64),
        offset: u64,
        age: u64,
        now: Instant,
    ) -> NodeHealth {
        let info = NodeInfo {
            replid: replid.into(),
            replid2: replid2.into(),
            second_offset: second,
            ..info(Role::Master, offset)
        };
        let mut h = answered(Instant::now(), info);
        h.on_identified(now.checked_sub(Duration::from_secs(age)));
        h
    }

    /// A replica of h:1; its link down for `down` seconds unless `up`.
    fn replica(up: bool, syncing: bool, down: u64) -> Role {
        Role::Replica {
            master: a(1),
            link_up: up,
            syncing,
            link_down_secs: (!up).then_some(down),
            last_io_secs: up.then_some(0),
        }
    }

    #[test]
    fn a_master_without_its_replicas_history_is_found() {
        let now = Instant::now() + Duration::from_secs(10_000);
        let zeros = ("0000", 0);
        let restarted = || master("new", ("old", 1), 0, 2, now);
        let lost = |down| node(replica(false, false, down), "old", 900);
        #[allow(clippy::type_complexity)]
        let cases: Vec<(&str, NodeHealth, Vec<NodeHealth>, bool)> = vec![
            (
                "restarted (an old snapshot at offset 0), replicas locked out with their data",
                restarted(),
                vec![lost(5), node(replica(false, false, 5), "old", 950)],
                true,
            ),
            (
                "restarted empty (no snapshot at all)",
                master("new", zeros, 0, 2, now),
                vec![lost(5), node(replica(false, false, 5), "old", 950)],
                true,
            ),
            (
                "the same history: a replica that is merely behind",
                master("old", zeros, 1000, 2, now),
                vec![lost(5)],
                false,
            ),
            (
                "cut off (REJECT), the master's offset a poll old, started recently",
                master("old", zeros, 800, 2, now),
                vec![lost(0), node(replica(false, false, 1), "old", 950)],
                false,
            ),
            (
                "promoted long ago; the replica has more of the previous history",
                master("new", ("old", 801), 1000, 1000, now),
                vec![lost(5)],
                false,
            ),
            (
                "the replica lost its link after the master started",
                master("new", zeros, 0, 10, now),
                vec![lost(3)],
                false,
            ),
            (
                "one replica already follows it (link up)",
                restarted(),
                vec![lost(5), node(replica(true, false, 0), "new", 0)],
                false,
            ),
            (
                "a replica in a full sync",
                restarted(),
                vec![node(replica(false, true, 5), "old", 900)],
                false,
            ),
            ("no replica", restarted(), vec![], false),
        ];
        for (name, m, replicas, want) in cases {
            let mut v = View::new();
            v.insert(a(1), m);
            for (i, r) in replicas.into_iter().enumerate() {
                v.insert(a(2 + i as u16), r);
            }
            let got = lost_history(&v, &a(1), now);
            assert_eq!(got.is_some(), want, "{name}: {got:?}");
            if let Some(why) = got {
                assert!(why.contains("h:3: offset 950"), "{name}: {why}");
            }
        }
    }

    #[test]
    fn every_manager_derives_the_same_hidden_password_per_group() {
        let c = Credential::derive("/redis_failover", Some("s3cret"));
        assert_eq!(c, Credential::derive("/redis_failover", Some("s3cret")));
        assert_ne!(c, Credential::derive("/other", Some("s3cret")));
        assert_ne!(c, Credential::derive("/redis_failover", None));
        assert_eq!(c.password().len(), 40);
        assert!(!format!("{c:?}").contains(c.password()));
    }

    #[test]
    fn only_the_master_and_its_linked_replicas_are_guarded() {
        let now = Instant::now();
        let mut v = View::new();
        v.insert(a(1), master("r", ("0", 0), 10, 100, now));
        v.insert(a(2), node(replica(true, false, 0), "r", 10));
        v.insert(a(3), node(replica(false, false, 1), "r", 10));
        assert!(trusted(&v, &a(1), &a(1)));
        assert!(trusted(&v, &a(1), &a(2)));
        assert!(!trusted(&v, &a(1), &a(3)), "link down: not yet");
        assert!(!trusted(&v, &a(2), &a(2)), "a replica is no master");
    }
}
