//! `SENTINEL ...` subcommands and INFO, answered from the groups' snapshots through
//! [`GroupView`]. Nothing is decided here: `SENTINEL FAILOVER` writes the same request as
//! `redis_node_manager failover`, which the leader carries out.

use redis_failover_client::wire::{unix_ms, ManualRequest};
use redis_failover_client::{NodeAddr, ZnodePaths};
use redis_protocol::bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame as Frame;
use tracing::info;

use super::codec::{arity, bulk, error, fields, int, ok, simple};
use super::conn::Client;
use super::glob::glob;
use super::view::GroupView;
use super::{Shared, MAX_CLIENTS, REDIS_VERSION};
use crate::core::event_names::SENTINEL_FAILOVER;
use crate::front::snapshot::GroupSnapshot;

impl Client {
    pub(super) async fn sentinel(&mut self, shared: &Shared, args: &[String]) -> Frame {
        let Some(sub) = args.get(1).map(|s| s.to_ascii_lowercase()) else {
            return arity("sentinel");
        };
        let with_group = |n: usize| -> Result<Option<GroupSnapshot>, Frame> {
            if args.len() != n {
                return Err(arity(&format!("sentinel|{sub}")));
            }
            Ok(shared.group(&args[2]))
        };
        let no_such = || error("ERR No such master with that name");
        // `SENTINEL <sub> <name>` answered from the group's view.
        let for_group = |f: &dyn Fn(&GroupView<'_>) -> Frame| match with_group(3) {
            Err(e) => e,
            Ok(None) => no_such(),
            Ok(Some(s)) => f(&shared.group_view(&s)),
        };
        match sub.as_str() {
            // Valkey 8 names them `primary`; both spellings are answered.
            "masters" | "primaries" => {
                if args.len() != 2 {
                    return arity("sentinel|masters");
                }
                let masters = shared
                    .snapshots()
                    .iter()
                    .map(|s| fields(shared.group_view(s).master_fields()))
                    .collect();
                Frame::Array(masters)
            }
            "master" | "primary" => for_group(&|g| fields(g.master_fields())),
            "replicas" | "slaves" => for_group(&|g| {
                Frame::Array(
                    g.replicas()
                        .iter()
                        .map(|r| fields(g.replica_fields(r)))
                        .collect(),
                )
            }),
            "sentinels" => for_group(&|g| {
                Frame::Array(
                    g.other_managers()
                        .iter()
                        .map(|id| fields(g.manager_fields(id)))
                        .collect(),
                )
            }),
            "get-master-addr-by-name" | "get-primary-addr-by-name" => match with_group(3) {
                Err(e) => e,
                // Without a live ZooKeeper session the master may have been replaced: nil,
                // as Sentinel answers when it knows no master, rather than a deposed one.
                Ok(Some(_)) if !shared.session_live() => Frame::Null,
                Ok(Some(s)) => match s.topology.and_then(|t| t.master) {
                    Some(m) => Frame::Array(vec![bulk(m.host), bulk(m.port.to_string())]),
                    None => Frame::Null,
                },
                Ok(None) => Frame::Null,
            },
            "failover" => match with_group(3) {
                Err(e) => e,
                Ok(None) => no_such(),
                Ok(Some(s)) => self.failover(shared, &s).await,
            },
            "ckquorum" => match with_group(3) {
                Err(e) => e,
                Ok(None) => no_such(),
                Ok(Some(s)) => {
                    let g = shared.group_view(&s);
                    let (usable, required) = (g.usable_managers(), g.quorum());
                    if usable >= required {
                        Frame::SimpleString(Bytes::from(format!(
                            "OK {usable} usable Sentinels. Quorum and failover authorization \
                             can be reached"
                        )))
                    } else {
                        error(format!(
                            "NOQUORUM {usable} usable Sentinels. Not enough available \
                             Sentinels to reach the specified quorum for this master \
                             ({required} required)"
                        ))
                    }
                }
            },
            "is-master-down-by-addr" | "is-primary-down-by-addr" => {
                if args.len() != 6 {
                    return arity("sentinel|is-master-down-by-addr");
                }
                if args[4].parse::<i64>().is_err() {
                    return error("ERR value is not an integer or out of range");
                }
                let node = args[3]
                    .parse::<u16>()
                    .ok()
                    .map(|port| NodeAddr::new(args[2].clone(), port));
                let down = node.is_some_and(|n| {
                    shared.snapshots().iter().any(|s| {
                        s.view.unavailable.contains(&n)
                            && s.topology
                                .as_ref()
                                .is_none_or(|t| t.all_nodes().any(|x| *x == n))
                    })
                });
                // No Sentinel election happens here: never a vote, leader "*", epoch 0.
                Frame::Array(vec![int(i64::from(down)), bulk("*"), int(0)])
            }
            "myid" if args.len() == 2 => bulk(shared.state.manager_id.clone()),
            "myid" => arity("sentinel|myid"),
            "config" => match args.get(2).map(|s| s.to_ascii_lowercase()).as_deref() {
                Some("get") if args.len() == 4 => config_get(&args[3]),
                Some("get") => arity("sentinel|config|get"),
                Some("set") => error(
                    "ERR SENTINEL CONFIG SET is not supported: redis_node_manager is \
                     configured by its flags and config file",
                ),
                _ => error(
                    "ERR Only SENTINEL CONFIG GET <option> / SET <option> <value> are supported.",
                ),
            },
            // No scripts run here, so none is pending.
            "pending-scripts" if args.len() == 2 => Frame::Array(Vec::new()),
            "pending-scripts" => arity("sentinel|pending-scripts"),
            "help" => Frame::Array(HELP.iter().map(|l| simple(l)).collect()),
            "monitor" | "remove" => error(format!(
                "ERR SENTINEL {} is not supported: add and remove groups with \
                 `redis_node_manager group add/remove` (or POST/DELETE /groups/NAME) for the \
                 managers started with --groups-from-zookeeper",
                sub.to_ascii_uppercase()
            )),
            "set" | "reset" | "flushconfig" | "simulate-failure" | "debug" | "info-cache" => {
                error(format!(
                    "ERR SENTINEL {} is not supported: redis_node_manager takes its groups from \
                 its configuration and ZooKeeper",
                    sub.to_ascii_uppercase()
                ))
            }
            _ => error(format!(
                "ERR unknown subcommand '{}'. Try SENTINEL HELP.",
                args[1]
            )),
        }
    }

    /// Writes a manual failover request for the leader, as `redis_node_manager failover`
    /// does; like Sentinel, answers once it is started, not done.
    async fn failover(&self, shared: &Shared, s: &GroupSnapshot) -> Frame {
        let Some(t) = &s.topology else {
            return error("ERR No topology is published for this master yet");
        };
        if t.slaves.is_empty() {
            return error("NOGOODSLAVE No suitable replica to promote");
        }
        let Some(zk) = shared.state.session.borrow().clone() else {
            return error("ERR No ZooKeeper session right now; try again");
        };
        let paths = match ZnodePaths::new(&s.znode_path) {
            Ok(p) => p,
            Err(e) => return error(format!("ERR {e}")),
        };
        match crate::io::zk::read_manual(&zk, &paths.manual_failover()).await {
            // An earlier request the leader refused stays in the znode until the next one.
            Ok(Some((data, _))) if ManualRequest::parse(&data) != ManualRequest::Refused => {
                return error("INPROG Failover already in progress")
            }
            Ok(_) => {}
            Err(e) => return error(format!("ERR {e}")),
        }
        match crate::io::zk::request_manual(&zk, &paths, None, shared.state.as_identity).await {
            Ok(()) => {
                info!(
                    "{SENTINEL_FAILOVER} {}: requested by Sentinel client {} (id {})",
                    s.name, self.peer, self.id
                );
                ok()
            }
            Err(e) => error(format!("ERR {e}")),
        }
    }
}

/// The global options Sentinel has, with the values that describe this endpoint.
fn config_get(pattern: &str) -> Frame {
    const OPTIONS: &[(&str, &str)] = &[
        ("resolve-hostnames", "no"),
        ("announce-hostnames", "no"),
        ("announce-ip", ""),
        ("announce-port", "0"),
        ("sentinel-user", ""),
        ("sentinel-pass", ""),
    ];
    Frame::Array(
        OPTIONS
            .iter()
            .filter(|(k, _)| glob(pattern.as_bytes(), k.as_bytes(), true))
            .flat_map(|(k, v)| [bulk(*k), bulk(*v)])
            .collect(),
    )
}

const HELP: &[&str] = &[
    "SENTINEL <subcommand> [<arg> [value] [opt] ...]. Subcommands are (answered by \
     redis_node_manager from the topology published in ZooKeeper):",
    "CKQUORUM <master-name>",
    "    Check that enough managers publish fresh views to judge nodes down.",
    "CONFIG GET <param>",
    "    Get a global Sentinel configuration parameter.",
    "GET-MASTER-ADDR-BY-NAME <master-name> (or GET-PRIMARY-ADDR-BY-NAME)",
    "    Return the ip and port number of the master with that name.",
    "FAILOVER <master-name>",
    "    Ask the leading manager for a failover (a switchover while the master is healthy).",
    "IS-MASTER-DOWN-BY-ADDR <ip> <port> <current-epoch> <runid> (or IS-PRIMARY-DOWN-BY-ADDR)",
    "    Check if the node is down from this manager's point of view (never votes).",
    "MASTER <master-name> (or PRIMARY)",
    "    Show the state and info of the specified master.",
    "MASTERS (or PRIMARIES)",
    "    Show a list of monitored masters and their state.",
    "MYID",
    "    Return the ID of this manager.",
    "REPLICAS <master-name>",
    "    Show a list of replicas for this master and their state.",
    "SENTINELS <master-name>",
    "    Show the other managers of this master.",
    "HELP",
    "    Prints this help.",
];

pub(super) fn info(shared: &Shared, args: &[String]) -> Frame {
    let all = ["server", "clients", "sentinel"];
    let wanted: Vec<String> = if args.len() == 1 {
        all.iter().map(|s| s.to_string()).collect()
    } else {
        args[1..].iter().map(|s| s.to_ascii_lowercase()).collect()
    };
    let everything = wanted
        .iter()
        .any(|w| matches!(w.as_str(), "all" | "everything" | "default"));
    let mut sections = Vec::new();
    for name in all {
        if !everything && !wanted.iter().any(|w| w == name) {
            continue;
        }
        let mut lines: Vec<String> = Vec::new();
        match name {
            "server" => {
                let uptime = shared.started.elapsed().as_secs();
                lines.extend([
                    "# Server".to_string(),
                    format!("redis_version:{REDIS_VERSION}"),
                    "redis_mode:sentinel".to_string(),
                    format!("redis_failover_version:{}", env!("CARGO_PKG_VERSION")),
                    format!("manager_id:{}", shared.state.manager_id),
                    format!("process_id:{}", std::process::id()),
                    format!("run_id:{}", shared.state.manager_id),
                    format!("tcp_port:{}", shared.state.port),
                    format!("server_time_usec:{}", unix_ms() * 1000),
                    format!("uptime_in_seconds:{uptime}"),
                    format!("uptime_in_days:{}", uptime / 86_400),
                ]);
            }
            "clients" => lines.extend([
                "# Clients".to_string(),
                format!("connected_clients:{}", shared.connected_clients()),
                format!("maxclients:{MAX_CLIENTS}"),
            ]),
            _ => {
                let snaps = shared.snapshots();
                lines.extend([
                    "# Sentinel".to_string(),
                    format!("sentinel_masters:{}", snaps.len()),
                    "sentinel_tilt:0".to_string(),
                    "sentinel_tilt_since_seconds:-1".to_string(),
                    "sentinel_running_scripts:0".to_string(),
                    "sentinel_scripts_queue_length:0".to_string(),
                    "sentinel_simulate_failure_flags:0".to_string(),
                ]);
                for (n, s) in snaps.iter().enumerate() {
                    lines.push(shared.group_view(s).info_line(n));
                }
            }
        }
        sections.push(lines.join("\r\n") + "\r\n");
    }
    bulk(sections.join("\r\n"))
}
