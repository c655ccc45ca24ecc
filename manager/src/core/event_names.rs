//! Every event name the manager logs: the first word of a log line, stable across releases
//! so that operators can grep and alert on it (Sentinel's habit: `+` something began or was
//! done, `-` something ended, failed or was refused). The code logs through these constants,
//! and a test prints [`ALL`] into the events table of docs/operations.md, so the list, the
//! code and the docs cannot drift apart.

macro_rules! event_names {
    ($($ident:ident = $name:literal : $meaning:literal;)*) => {
        $(
            #[doc = $meaning]
            pub const $ident: &str = $name;
        )*
        /// Every event name with its one-line meaning, in the order of the docs' table.
        pub const ALL: &[(&str, &str)] = &[$(($name, $meaning)),*];
    };
}

event_names! {
    MANAGER_STARTED = "+manager": "the manager started: its ZooKeeper session and how many groups it watches";
    MANAGER_STOPPING = "-manager": "the manager is shutting down (SIGTERM, ctrl-c), then stopped";
    MONITOR = "+monitor": "a node answered for the first time, with its role";
    SDOWN = "+sdown": "a node is now unavailable to this manager (the reason names the failed probes)";
    SDOWN_CLEARED = "-sdown": "a node that was unavailable answers again";
    REBOOT = "+reboot": "a node answers with a new run_id: it restarted (a restarted master is failed over without a vote)";
    REBOOT_KEPT = "-reboot-kept": "a restarted master is kept because no replica may replace it";
    PROBE_ERROR = "-probe-error": "a probe failed for a reason that looks like a configuration mistake (password, ACL)";
    LEADER = "+leader": "this manager took a group's lock, or kept it across a ZooKeeper reconnect";
    LEADER_LOST = "-leader": "this manager lost or suspended a group's lock (the reason says why); it acts no more";
    LEADER_UNCONFIRMED = "-leader-unconfirmed": "the lock could not be confirmed in ZooKeeper right before a Redis command, so the command was not sent";
    WAIT = "-wait": "the leader cannot decide safely yet (the reason says what it waits for)";
    DISCOVERED = "+discovered": "the leader took a node as the group's master (from the znode or the nodes' roles)";
    MASTER_LOST = "-master-lost": "the master answers but is no longer a master; the leader rediscovers";
    REFRESH_OFFSETS = "+refresh-offsets": "the master is down: the replicas' offsets are read afresh before ranking them";
    SELECTED_REPLICA = "+selected-replica": "the master is down: this replica is promoted (the line gives the ranking and the votes)";
    FAILOVER_ROLL_FORWARD = "+failover-roll-forward": "the master is down and a recorded promotion already made this replica a master: it is adopted";
    PROMOTED = "+promoted": "the promoted replica answers ROLE master";
    RECONF_REPLICA = "+reconf-replica": "a node was told REPLICAOF the master";
    RECONF_REPLICA_FAILED = "-reconf-replica-failed": "REPLICAOF failed on a node; retried on a later cycle";
    FENCE = "+fence": "the leader set min-replicas-to-write / min-replicas-max-lag on a node (`--fencing min-replicas`): a master with a live replica is fenced, others are not";
    FENCE_FAILED = "-fence-failed": "CONFIG SET of the fence failed on a node (CONFIG renamed or not allowed?); retried 10 s later";
    GUARD = "+guard": "the leader created the replication user on a node it trusts and set the node's masteruser/masterauth to it (`--replication-guard on`): a restarted node loses both, so its replicas cannot resync from it before the leader decides";
    GUARD_FAILED = "-guard-failed": "ACL SETUSER or CONFIG SET of the replication guard failed on a node (ACL or CONFIG not allowed?); retried 10 s later";
    FENCE_WAIT = "+fence-wait": "an unreachable master was replaced in Redis; the new master is published once the old one has fenced itself";
    SWITCH_MASTER = "+switch-master": "a new master is published (`+switch-master <group> <old ip> <old port> <new ip> <new port>`, as Sentinel)";
    SWITCH_MASTER_UNPUBLISHED = "-switch-master-unpublished": "the new master answers as master but the znode could not be written yet; retried";
    NO_GOOD_SLAVE = "-failover-abort-no-good-slave": "the master is down and no replica may be promoted; the master is published as unavailable";
    FAILOVER_PAUSED = "-failover-abort-paused": "the master is down but automatic failover is paused; it is published as unavailable";
    FAILOVER_NOT_LEADER = "-failover-abort-not-leader": "the promotion could not be recorded under the lock in ZooKeeper, so nothing was promoted";
    PROMOTE_FAILED = "-failover-abort-promote-failed": "promoting the replica failed; tried again a second later";
    PUBLISH = "+publish": "the topology is written to the znode (the line shows it)";
    PUBLISH_FAILED = "-publish-failed": "writing the topology was refused (changed under us, or the lock was lost); re-read";
    CORRUPT_ZNODE = "-corrupt-znode": "the topology znode is unreadable; the leader rebuilds it from discovery";
    PAUSED = "+paused": "an operator paused automatic failover (by whom, why)";
    RESUMED = "-paused": "automatic failover resumed";
    MANUAL_FAILOVER = "+manual-failover": "a manual failover request was taken (a switchover if the master is up)";
    MANUAL_FAILOVER_DONE = "+manual-failover-done": "a manual failover request was carried out";
    MANUAL_FAILOVER_REFUSED = "-manual-failover-refused": "a manual failover request was refused (the reason is also written to the znode)";
    MANUAL_FAILOVER_ERROR = "-manual-failover": "the verdict on a manual request could not be written to ZooKeeper";
    SWITCHOVER_NOT_LEADER = "-switchover-abort-not-leader": "a switchover could not be recorded under the lock; nothing changed";
    SWITCHOVER_FAILED = "-switchover-failed": "FAILOVER TO did not complete; the old master stays master";
    ZK_DISCONNECTED = "-zk-disconnected": "the ZooKeeper connection dropped; the session may still live";
    ZK_RECONNECTED = "+zk-reconnected": "the ZooKeeper connection is back and the session resumed";
    ZK_SESSION_ENDED = "-zk-session": "the ZooKeeper session ended (or a new one could not be opened yet), or closed at shutdown";
    ZK_SESSION = "+zk-session": "a new ZooKeeper session was opened after the old one ended";
    HOOK = "+hook": "`--on-switch-master` ran after a change of master and exited 0 (its output follows)";
    HOOK_FAILED = "-hook": "`--on-switch-master` exited non-zero, was killed at its timeout, or could not start";
    WEBHOOK = "+webhook": "`--webhook-url` acknowledged a failover's record (2xx)";
    WEBHOOK_FAILED = "-webhook": "`--webhook-url` did not acknowledge a failover's record after its retries";
    WOULD_PROMOTE = "+would-promote": "`--observe-only`: a leader would promote this replica now (the line gives the leader's decision and reasons); nothing was done";
    WOULD = "+would": "`--observe-only`: what a leader would do now (its decision follows); nothing was done";
    GROUP_ADDED = "+group": "`--groups-from-zookeeper`: a group listed in the registry is now watched (started at run time)";
    GROUP_REMOVED = "-group": "`--groups-from-zookeeper`: a group gone from the registry is no longer watched (its lock released, its nodes left as they are)";
    GROUP_REFUSED = "-group-refused": "`--groups-from-zookeeper`: a registry entry is not watched (unreadable, or its name, znode path or a node is another group's); the line says why";
    REGISTRY_UNREAD = "-registry-unread": "`--groups-from-zookeeper`: the registry could not be read; the groups watched stay as they are until it can";
    ACL_LOCKED = "+acl-locked": "a znode of the group, or of the group registry, was open to all: it now has the managers' ACL (`--zk-auth-file`)";
    ZK_READ = "-zk-read": "a ZooKeeper read failed (the leader retries on the next cycle)";
    VIEW_PUBLISH = "-view-publish": "this manager's view could not be written to ZooKeeper";
    VIEWS_READ = "-views-read": "the other managers' views could not be read";
    PAUSE_READ = "-pause-read": "the pause switch could not be read";
    HISTORY_WRITE = "-history-write": "a failover could not be appended to the failover history";
    SENTINEL_FAILOVER = "+sentinel-failover": "a Sentinel client asked for a failover (SENTINEL FAILOVER); the request is written for the leader";
    HTTP_ERROR = "-http": "the HTTP endpoint stopped with an error";
    SENTINEL_ERROR = "-sentinel": "the Sentinel endpoint could not accept a connection, or a subscriber fell behind";
}

/// The events table as Markdown, as printed into the docs.
pub fn markdown_table() -> String {
    let mut out = String::from("| event | meaning |\n|---|---|\n");
    for (name, meaning) in ALL {
        out.push_str(&format!("| `{name}` | {meaning} |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = BTreeSet::new();
        for (name, meaning) in ALL {
            assert!(seen.insert(*name), "{name} listed twice");
            assert!(
                name.starts_with(['+', '-'])
                    && name[1..]
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '-'),
                "{name}: an event name is + or - and lowercase words"
            );
            assert!(
                !meaning.is_empty() && !meaning.contains('\n'),
                "{name}: one line"
            );
        }
    }
}
