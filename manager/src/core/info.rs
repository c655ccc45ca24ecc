//! What a node says about itself: `INFO replication` text turned into role, replication
//! offset, link status and `replica-priority`. Pure.

use redis_failover_client::NodeAddr;

/// Sentinel's and Redis's default `replica-priority`.
pub const DEFAULT_PRIORITY: u32 = 100;
/// A replica acknowledges its offset every second (`REPLCONF ACK`); a master that last heard
/// from one this many seconds ago (`lag=` in `INFO`) lists it in [`NodeInfo::lagging`].
pub const LAGGING_SECS: u64 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Master,
    Replica {
        /// The master this replica follows, as it reports it (`master_host:master_port`).
        master: NodeAddr,
        /// `master_link_status:up`: the replication stream is flowing.
        link_up: bool,
        /// `master_sync_in_progress:1`: a full sync is under way; its data is not the
        /// master's yet.
        syncing: bool,
        /// `master_link_down_since_seconds` while the link is down; `None` when it is up or
        /// the link never came up (Redis reports -1).
        link_down_secs: Option<u64>,
        /// `master_last_io_seconds_ago` while the link is up: how long ago the master last
        /// sent something (data, or its `PING` every `repl-ping-replica-period`).
        last_io_secs: Option<u64>,
    },
}

/// One node's replication state as of one `INFO replication` reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub role: Role,
    /// `master_repl_offset` on a master, `slave_repl_offset` on a replica: how much of the
    /// replication stream this node has.
    pub offset: u64,
    /// `replica-priority` (reported as `slave_priority`); 0 = never promote.
    pub priority: u32,
    /// A master that reports `min_slaves_good_slaves`: `min-replicas-to-write` and
    /// `min-replicas-max-lag` are both set, so it refuses writes once cut off from its
    /// replicas (see `fence.rs`).
    pub fenced: bool,
    /// `master_replid`: the replication history this node's data belongs to (a master makes
    /// a new one when it starts or is promoted; a replica takes its master's). Empty when
    /// not reported.
    pub replid: String,
    /// `master_replid2`: the history this node continued when it was promoted (all zeros
    /// otherwise), valid up to the offset of its promotion.
    pub replid2: String,
    /// `second_repl_offset`: `replid2`'s history is continued up to (not including) this
    /// offset; 0 when there is none.
    pub second_offset: u64,
    /// On a master, the replicas it lists as online (`slaveN:ip=..,port=..,state=online`),
    /// each with the offset it last acknowledged: the ones `WAIT` can count, and how far.
    pub followers: Vec<(NodeAddr, u64)>,
    /// On a master, the online replicas whose last acknowledgement is over a second old
    /// (`lag` of 2 or more): a replica acknowledges every second, so one of these has
    /// stopped (hung, cut off) or falls behind.
    pub lagging: Vec<NodeAddr>,
}

impl NodeInfo {
    /// The same role, master, link, fence, priority, history and listed replicas: what a
    /// decision looks at, leaving out the offsets and ages that move on every reply.
    pub fn same_shape(&self, other: &NodeInfo) -> bool {
        let role = match (&self.role, &other.role) {
            (Role::Master, Role::Master) => true,
            (
                Role::Replica {
                    master: m1,
                    link_up: l1,
                    syncing: s1,
                    ..
                },
                Role::Replica {
                    master: m2,
                    link_up: l2,
                    syncing: s2,
                    ..
                },
            ) => m1 == m2 && l1 == l2 && s1 == s2,
            _ => false,
        };
        let (mine, theirs) = (self.followers.iter(), other.followers.iter());
        role && self.fenced == other.fenced
            && self.priority == other.priority
            && self.replid == other.replid
            && mine.map(|(a, _)| a).eq(theirs.map(|(a, _)| a))
            && self.lagging == other.lagging
    }

    pub fn is_master(&self) -> bool {
        self.role == Role::Master
    }

    /// The master this node replicates from, if it is a replica.
    pub fn master(&self) -> Option<&NodeAddr> {
        match &self.role {
            Role::Replica { master, .. } => Some(master),
            Role::Master => None,
        }
    }

    pub fn link_up(&self) -> bool {
        matches!(self.role, Role::Replica { link_up: true, .. })
    }

    pub fn syncing(&self) -> bool {
        matches!(self.role, Role::Replica { syncing: true, .. })
    }

    /// How long ago (seconds) this replica last heard from `master` over a link that is up.
    pub fn heard_from(&self, master: &NodeAddr) -> Option<u64> {
        match &self.role {
            Role::Replica {
                master: m,
                link_up: true,
                last_io_secs,
                ..
            } if m == master => *last_io_secs,
            _ => None,
        }
    }

    /// A replica whose link is up, or went down at most `grace` ago (by its own account).
    pub fn in_sync_within(&self, grace: std::time::Duration) -> bool {
        match &self.role {
            Role::Replica { link_up: true, .. } => true,
            Role::Replica {
                link_down_secs: Some(s),
                ..
            } => *s <= grace.as_secs(),
            _ => false,
        }
    }
}

/// Parses the text of `INFO replication`. `priority` comes from `CONFIG GET
/// replica-priority` when the caller has it, since masters do not report it in `INFO`.
pub fn parse_info_replication(text: &str, priority: Option<u32>) -> Result<NodeInfo, String> {
    let mut role = None;
    let mut master_host = None;
    let mut master_port = None;
    let mut link_up = false;
    let mut syncing = false;
    let mut link_down_secs = None;
    let mut last_io_secs = None;
    let mut master_offset = None;
    let mut slave_offset = None;
    let mut info_priority = None;
    let mut fenced = false;
    let mut replid = String::new();
    let mut replid2 = String::new();
    let mut second_offset = 0;
    let mut followers = Vec::new();
    let mut lagging = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.trim_end_matches('\r').split_once(':') else {
            continue;
        };
        match key {
            "role" => role = Some(value.to_string()),
            "master_host" => master_host = Some(value.to_string()),
            "master_port" => master_port = value.parse::<u16>().ok(),
            "master_link_status" => link_up = value == "up",
            "master_sync_in_progress" => syncing = value == "1",
            "master_link_down_since_seconds" => link_down_secs = value.parse::<u64>().ok(),
            "master_last_io_seconds_ago" => last_io_secs = value.parse::<u64>().ok(),
            "master_repl_offset" => master_offset = value.parse::<u64>().ok(),
            "slave_repl_offset" => slave_offset = value.parse::<u64>().ok(),
            "slave_priority" | "replica_priority" => info_priority = value.parse::<u32>().ok(),
            "min_slaves_good_slaves" | "min_replicas_good_replicas" => fenced = true,
            "master_replid" => replid = value.to_string(),
            "master_replid2" => replid2 = value.to_string(),
            "second_repl_offset" => second_offset = value.parse::<u64>().unwrap_or(0),
            k if k.starts_with("slave") && k[5..].parse::<u32>().is_ok() => {
                if let Some((addr, offset, lag)) = online_follower(value) {
                    if lag.is_some_and(|l| l >= LAGGING_SECS) {
                        lagging.push(addr.clone());
                    }
                    followers.push((addr, offset));
                }
            }
            _ => {}
        }
    }
    let priority = priority.or(info_priority).unwrap_or(DEFAULT_PRIORITY);
    match role.as_deref() {
        Some("master") => Ok(NodeInfo {
            role: Role::Master,
            offset: master_offset.unwrap_or(0),
            priority,
            fenced,
            replid,
            replid2,
            second_offset,
            followers,
            lagging,
        }),
        Some("slave") | Some("replica") => {
            let (Some(host), Some(port)) = (master_host, master_port) else {
                return Err("INFO replication of a replica lacks master_host/master_port".into());
            };
            Ok(NodeInfo {
                role: Role::Replica {
                    master: NodeAddr::new(host, port),
                    link_up,
                    syncing,
                    link_down_secs: if link_up { None } else { link_down_secs },
                    last_io_secs: if link_up { last_io_secs } else { None },
                },
                // A replica whose link never came up has no slave_repl_offset worth trusting.
                offset: slave_offset.or(master_offset).unwrap_or(0),
                priority,
                fenced: false,
                replid,
                replid2,
                second_offset,
                followers: Vec::new(),
                lagging: Vec::new(),
            })
        }
        Some(other) => Err(format!("unexpected role:{other} in INFO replication")),
        None => Err("INFO replication has no role: line".into()),
    }
}

/// The address, acknowledged offset and `lag` (seconds since its last acknowledgement) of a
/// `slaveN:ip=..,port=..,state=online,offset=..,lag=..` entry, if online.
fn online_follower(value: &str) -> Option<(NodeAddr, u64, Option<u64>)> {
    let field = |name: &str| {
        value
            .split(',')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    };
    if field("state")? != "online" {
        return None;
    }
    // Valkey's dual-channel replication lists the full sync's second connection as one more
    // `slaveN` (`type=rdb-channel`): the same replica, not another (valkey-io/valkey#2338).
    // Its other connection says `type=main-channel`, and a replica that syncs over one
    // connection `type=replica` (Valkey 8.1).
    if field("type") == Some("rdb-channel") {
        return None;
    }
    let addr = NodeAddr::new(field("ip")?, field("port")?.parse::<u16>().ok()?);
    let lag = field("lag").and_then(|l| l.parse().ok());
    Some((addr, field("offset")?.parse().ok()?, lag))
}

/// Which process answers, from its `INFO server`: read on every new connection of the crash
/// detector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// A new one means the process restarted.
    pub run_id: String,
    pub uptime: std::time::Duration,
    /// `configured_hz` (or `hz` before Redis 5): how often the node's timers run, which is
    /// when a blocked read's timeout is noticed on an idle node. `None` if not reported.
    pub hz: Option<u32>,
}

/// Parses `INFO server` text into an [`Identity`].
pub fn parse_info_server(text: &str) -> Result<Identity, String> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let run_id = field("run_id:").ok_or("INFO server has no run_id")?;
    let uptime = field("uptime_in_seconds:")
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or("INFO server has no uptime_in_seconds")?;
    let hz = field("configured_hz:")
        .or_else(|| field("hz:"))
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|hz| *hz > 0);
    Ok(Identity {
        run_id,
        uptime: std::time::Duration::from_secs(uptime),
        hz,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=7001,state=online,offset=42,lag=0\r\nmaster_failover_state:no-failover\r\nmaster_replid:abc\r\nmaster_repl_offset:42\r\n";
    const REPLICA: &str = "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:7000\r\nmaster_link_status:up\r\nmaster_last_io_seconds_ago:0\r\nmaster_sync_in_progress:0\r\nslave_read_repl_offset:40\r\nslave_repl_offset:40\r\nslave_priority:10\r\nslave_read_only:1\r\nmaster_repl_offset:40\r\n";

    #[test]
    fn a_dual_channel_sync_lists_no_phantom_replica() {
        let text = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
            slave0:ip=127.0.0.1,port=7001,state=online,offset=42,lag=0,type=main-channel\r\n\
            slave1:ip=127.0.0.1,port=7001,state=online,offset=0,lag=0,type=rdb-channel\r\n\
            master_replid:abc\r\nmaster_repl_offset:42\r\n";
        let info = parse_info_replication(text, None).expect("parses");
        assert_eq!(info.followers, vec![(NodeAddr::new("127.0.0.1", 7001), 42)]);
    }

    #[test]
    fn valkey_s_replica_type_is_an_online_replica() {
        // As Valkey 8.1.8 lists a replica that syncs over one connection.
        let text = "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n\
            slave0:ip=127.0.0.1,port=7001,state=online,offset=0,lag=1,type=replica\r\n\
            master_replid:abc\r\nmaster_repl_offset:0\r\n";
        let info = parse_info_replication(text, None).expect("parses");
        assert_eq!(info.followers, vec![(NodeAddr::new("127.0.0.1", 7001), 0)]);
        assert!(info.lagging.is_empty(), "lag 1 s is heard from");
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn table() {
        let h = |p| NodeAddr::new("127.0.0.1", p);
        let cases: Vec<(&str, &str, Option<u32>, Result<NodeInfo, &str>)> = vec![
            ("master", MASTER, None, Ok(NodeInfo { role: Role::Master, offset: 42, priority: 100, fenced: false, replid: "abc".into(), replid2: String::new(), second_offset: 0, followers: vec![(h(7001), 42)], lagging: Vec::new() })),
            ("master with CONFIG priority", MASTER, Some(0), Ok(NodeInfo { role: Role::Master, offset: 42, priority: 0, fenced: false, replid: "abc".into(), replid2: String::new(), second_offset: 0, followers: vec![(h(7001), 42)], lagging: Vec::new() })),
            ("replica", REPLICA, None, Ok(NodeInfo { role: Role::Replica { master: h(7000), link_up: true, syncing: false, link_down_secs: None, last_io_secs: Some(0) }, offset: 40, priority: 10, fenced: false, replid: String::new(), replid2: String::new(), second_offset: 0, followers: Vec::new(), lagging: Vec::new() })),
            ("CONFIG wins over INFO", REPLICA, Some(0), Ok(NodeInfo { role: Role::Replica { master: h(7000), link_up: true, syncing: false, link_down_secs: None, last_io_secs: Some(0) }, offset: 40, priority: 0, fenced: false, replid: String::new(), replid2: String::new(), second_offset: 0, followers: Vec::new(), lagging: Vec::new() })),
            (
                "replica with link down",
                "role:slave\nmaster_host:10.0.0.1\nmaster_port:6379\nmaster_link_status:down\nmaster_link_down_since_seconds:12\nmaster_sync_in_progress:1\nslave_repl_offset:7\n",
                None,
                Ok(NodeInfo { role: Role::Replica { master: NodeAddr::new("10.0.0.1", 6379), link_up: false, syncing: true, link_down_secs: Some(12), last_io_secs: None }, offset: 7, priority: 100, fenced: false, replid: String::new(), replid2: String::new(), second_offset: 0, followers: Vec::new(), lagging: Vec::new() }),
            ),
            ("fenced master", "role:master\r\nmin_slaves_good_slaves:1\r\nmaster_repl_offset:5\r\n", None, Ok(NodeInfo { role: Role::Master, offset: 5, priority: 100, fenced: true, replid: String::new(), replid2: String::new(), second_offset: 0, followers: Vec::new(), lagging: Vec::new() })),
            ("no role", "# Replication\r\n", None, Err("no role")),
            ("replica without master", "role:slave\n", None, Err("lacks master_host")),
            ("sentinel", "role:sentinel\n", None, Err("unexpected role:sentinel")),
        ];
        for (name, text, prio, want) in cases {
            let got = parse_info_replication(text, prio);
            crate::core::test_support::assert_outcome(name, got, want);
        }
    }

    #[test]
    fn shape_leaves_out_what_moves_on_every_reply() {
        let replica = |text: &str| parse_info_replication(text, None).expect("parses");
        let base = replica(REPLICA);
        for (what, from, to) in [
            ("offset", "slave_repl_offset:40", "slave_repl_offset:90"),
            (
                "last io",
                "master_last_io_seconds_ago:0",
                "master_last_io_seconds_ago:3",
            ),
        ] {
            let moved = replica(&REPLICA.replace(from, to));
            assert!(base.same_shape(&moved), "{what} is not shape");
        }
        for (what, from, to) in [
            ("master", "master_port:7000", "master_port:7009"),
            ("link", "master_link_status:up", "master_link_status:down"),
            (
                "sync",
                "master_sync_in_progress:0",
                "master_sync_in_progress:1",
            ),
            ("priority", "slave_priority:10", "slave_priority:0"),
            ("role", "role:slave", "role:master"),
        ] {
            let changed = replica(&REPLICA.replace(from, to));
            assert!(!base.same_shape(&changed), "{what} is shape");
        }
        let master = replica(MASTER);
        let more = replica(&MASTER.replace(
            "lag=0\r\n",
            "lag=0\r\nslave1:ip=127.0.0.1,port=7002,state=online,offset=40,lag=0\r\n",
        ));
        assert!(!master.same_shape(&more), "a newly listed replica is shape");
        let acked = replica(&MASTER.replace("offset=42", "offset=41"));
        assert!(master.same_shape(&acked), "an ack offset is not shape");
        let late = replica(&MASTER.replace("lag=0", "lag=1"));
        assert!(
            master.same_shape(&late) && late.lagging.is_empty(),
            "a lag of 1 s is not shape"
        );
        let silent = replica(&MASTER.replace("lag=0", "lag=2"));
        assert_eq!(
            silent.lagging,
            vec![NodeAddr::new("127.0.0.1", 7001)],
            "lag 2 s"
        );
        assert_eq!(silent.followers, master.followers, "still listed online");
        assert!(!master.same_shape(&silent), "a replica gone quiet is shape");
    }

    #[test]
    fn info_server_names_the_process_and_its_timer() {
        let text = "# Server\r\nredis_version:7.0.15\r\nrun_id:abc123\r\nuptime_in_seconds:42\r\nhz:10\r\nconfigured_hz:25\r\n";
        let id = parse_info_server(text).expect("parses");
        assert_eq!(id.run_id, "abc123");
        assert_eq!(id.uptime, std::time::Duration::from_secs(42));
        assert_eq!(id.hz, Some(25), "configured_hz, not the dynamic hz");
        let old =
            parse_info_server("run_id:x\r\nuptime_in_seconds:1\r\nhz:100\r\n").expect("parses");
        assert_eq!(old.hz, Some(100), "hz when configured_hz is missing");
        let none = parse_info_server("run_id:x\r\nuptime_in_seconds:1\r\n").expect("parses");
        assert_eq!(none.hz, None);
        assert_eq!(
            parse_info_server("uptime_in_seconds:1\r\n"),
            Err("INFO server has no run_id".to_string())
        );
    }
}
