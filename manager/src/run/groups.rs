//! The groups a manager watches, as a set that changes while it runs: the groups of the
//! flags or config file from start to shutdown, and with `--groups-from-zookeeper` those of
//! the group registry, started and stopped as it changes. One start path ([`Starter::start`])
//! for both; one stop path ([`RunningGroup::stop`]) that ends the group's loop before its
//! lock is released and never sends its Redis nodes anything.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use redis_failover_client::wire::GroupEntry;
use redis_failover_client::{NodeAddr, ZnodePaths};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{synchronous_misfit, Config, GroupConfig};
use crate::core::admit::{admit, clash};
use crate::core::event_names::{GROUP_ADDED, GROUP_REFUSED, GROUP_REMOVED, REGISTRY_UNREAD};
use crate::core::guard::Credential;
use crate::core::select::Policy;
use crate::core::votes;
use crate::daemon;
use crate::front::metrics::Metrics;
use crate::front::snapshot::{GroupList, GroupSnapshot};
use crate::io::node::Connector;
use crate::io::zk::registry::{read_registry, Entries};
use crate::io::zk::{self, ZnodeAcls};
use crate::io::{limits, probe};

/// How long a stopping group's loop, then its election, may take before it is left behind.
const STOP_WITHIN: Duration = Duration::from_secs(5);
/// How soon the registry is read again after a read (or a group's start) failed.
const RETRY: Duration = Duration::from_secs(2);

/// Everything a group's start needs that is the same for every group.
pub(super) struct Starter {
    pub config: Config,
    pub connector: Connector,
    pub session: watch::Receiver<Option<zookeeper_client::Client>>,
    pub acls: Arc<ZnodeAcls>,
    pub metrics: Arc<Metrics>,
    pub sentinel_announce: Option<NodeAddr>,
    /// The session timeout ZooKeeper granted.
    pub session_timeout: Duration,
    /// Stage one of the shutdown: the groups' loops stop.
    pub stop_groups: CancellationToken,
    /// Stage two: the locks are released, the session closed.
    pub stop_all: CancellationToken,
}

/// A group being watched: its loop and its election, each with its own stop.
pub(super) struct RunningGroup {
    pub cfg: GroupConfig,
    snapshot: watch::Receiver<GroupSnapshot>,
    stop_loop: CancellationToken,
    stop_election: CancellationToken,
    group_loop: JoinHandle<()>,
    election: JoinHandle<()>,
}

impl Starter {
    /// Starts watching `group`: its election task (or, with `--observe-only`, none) and its
    /// loop. Both stop with the manager's shutdown stages, or with [`RunningGroup::stop`].
    pub fn start(&self, group: &GroupConfig) -> RunningGroup {
        let config = &self.config;
        let stop_loop = self.stop_groups.child_token();
        let stop_election = self.stop_all.child_token();
        let (leader_tx, leader_rx) = watch::channel(None);
        let election = if config.observe_only {
            // Never contends for the lock: its group loop never leads. The sender lives
            // until the group stops (the loop ends when it is dropped).
            let stop = stop_election.clone();
            tokio::spawn(async move {
                stop.cancelled().await;
                drop(leader_tx);
            })
        } else {
            tokio::spawn(zk::elect(
                group.name.clone(),
                group.paths.clone(),
                config.manager_id.clone(),
                self.session.clone(),
                leader_tx,
                zk::LeaderTerms {
                    act_window: zk::act_window(self.session_timeout),
                    acls: self.acls.clone(),
                },
                stop_election.clone(),
            ))
        };
        let settings = probe::ProbeSettings {
            connector: self.connector.clone(),
            probe_timeout: (config.down_after / config.max_failures.max(1))
                .max(Duration::from_millis(10)),
            interval: config.probe_interval,
            // Not calm until the group's loop has seen every node answer.
            alert: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            max_failures: config.max_failures,
            probe_key: format!("_redis_failover_probe:{}", config.manager_id),
        };
        let policy = Policy {
            link_grace: config.down_after * 10,
            max_lag_bytes: config.max_lag_bytes,
            fencing: config.fencing,
            synchronous_replicas: config
                .synchronous_replicas
                .min(group.nodes.len().saturating_sub(1)),
            replication_guard: config.replication_guard,
        };
        let vote = daemon::VoteSettings {
            strategy: config.node_strategy,
            required: config.required_node_managers,
            max_age: votes::max_view_age(config.down_after),
        };
        // Named from the start, so that the fronts never list a nameless group.
        let (snapshot_tx, snapshot) = watch::channel(GroupSnapshot {
            name: group.name.clone(),
            znode_path: group.paths.root().to_string(),
            ..GroupSnapshot::default()
        });
        let rules = daemon::Rules {
            webhook: config.webhook.clone(),
            hook: config
                .on_switch_master
                .clone()
                .map(|(program, timeout)| crate::io::hook::Hook { program, timeout }),
            guard: config.replication_guard.then(|| {
                Credential::derive(
                    group.paths.root(),
                    config.auth.password.as_ref().map(|p| p.expose()),
                )
            }),
            max_failures: config.max_failures,
            down_after: config.down_after,
            policy,
            vote,
        };
        let daemon = daemon::GroupDaemon::new(
            group.clone(),
            config.manager_id.clone(),
            rules,
            self.session.clone(),
            snapshot_tx,
            self.connector.clone(),
        )
        .with_metrics(self.metrics.group(&group.name))
        .with_sentinel_addr(self.sentinel_announce.clone())
        .with_acls(self.acls.clone())
        .observe_only(config.observe_only);
        let group_loop = tokio::spawn(daemon.run(settings, leader_rx, stop_loop.clone()));
        RunningGroup {
            cfg: group.clone(),
            snapshot,
            stop_loop,
            stop_election,
            group_loop,
            election,
        }
    }
}

impl RunningGroup {
    /// Stops watching the group: its loop and probes end first (no Redis command is sent
    /// after, and none is sent to stop), then its lock is released; its view is deleted so
    /// that `status` no longer lists this manager. Its topology and history stay.
    async fn stop(self, session: &watch::Receiver<Option<zookeeper_client::Client>>, id: &str) {
        self.stop_loop.cancel();
        if tokio::time::timeout(STOP_WITHIN, self.group_loop)
            .await
            .is_err()
        {
            warn!(group = %self.cfg.name, "the group's loop did not end within 5 s");
        }
        self.stop_election.cancel();
        let _ = tokio::time::timeout(STOP_WITHIN, self.election).await;
        if let Some(client) = crate::front::live_session(session) {
            let path = self.cfg.paths.manager_node_state_of(id);
            let _ = tokio::time::timeout(zk::ZK_OP_TIMEOUT, client.delete(&path, None)).await;
        }
    }
}

/// The running groups and the list the fronts read.
pub(super) struct Groups {
    running: Vec<RunningGroup>,
    /// How many of `running` come from the flags or the config file (the first ones).
    fixed: usize,
    list: watch::Sender<Vec<watch::Receiver<GroupSnapshot>>>,
    /// The last refusal logged per registry entry, not repeated.
    refused: BTreeMap<String, String>,
    registry_unread: bool,
}

impl Groups {
    /// The groups of the flags or config file, already started.
    pub fn new(fixed: Vec<RunningGroup>) -> (Groups, GroupList) {
        let (list, rx) = watch::channel(Vec::new());
        let groups = Groups {
            fixed: fixed.len(),
            running: fixed,
            list,
            refused: BTreeMap::new(),
            registry_unread: false,
        };
        groups.publish();
        (groups, GroupList::new(rx))
    }

    fn publish(&self) {
        self.list
            .send_replace(self.running.iter().map(|g| g.snapshot.clone()).collect());
    }

    /// Stage one of the shutdown: waits for every group's loop (already told to stop).
    pub async fn join_loops(&mut self) {
        for g in &mut self.running {
            if tokio::time::timeout(STOP_WITHIN, &mut g.group_loop)
                .await
                .is_err()
            {
                warn!(group = %g.cfg.name, "the group's loop did not end within 5 s of shutdown");
            }
        }
    }

    /// Stage two: waits for every election (its lock released).
    pub async fn join_elections(self) {
        for g in self.running {
            let _ = tokio::time::timeout(STOP_WITHIN, g.election).await;
        }
    }

    fn refuse(&mut self, name: &str, why: String) {
        if self.refused.get(name) != Some(&why) {
            warn!(group = %name, "{GROUP_REFUSED} {name}: {why}");
            self.refused.insert(name.to_string(), why);
        }
    }

    /// Makes the registry's groups (at `root`) the ones watched besides the fixed ones:
    /// stops those gone, changed or now refused, starts those new. Entries that conflict
    /// with each other are settled by [`admit`], from the registry alone, so that no two
    /// managers watch two groups over the same nodes; one that conflicts with a fixed group
    /// is refused here. An entry that cannot be read leaves its group as it is. False when
    /// something should be tried again soon.
    async fn reconcile(&mut self, starter: &Starter, root: &str, entries: Entries) -> bool {
        let mut settled = true;
        let readable: BTreeMap<String, GroupEntry> = entries
            .iter()
            .filter_map(|(n, e)| Some((n.clone(), e.as_ref().ok()?.clone())))
            .collect();
        for (name, e) in &entries {
            if let Err(why) = e {
                self.refuse(name, format!("unreadable entry, left as it is: {why}"));
            }
        }
        // Entries that conflict with each other: every manager refuses the same ones.
        let (wanted, conflicting) = admit(root, readable);
        for (name, why) in conflicting {
            self.refuse(&name, why);
        }
        // Gone from the registry (an unreadable entry is not gone), or changed.
        let mut i = self.fixed;
        while i < self.running.len() {
            let g = &self.running[i];
            let keep = match (entries.get(&g.cfg.name), wanted.get(&g.cfg.name)) {
                (Some(Err(_)), _) => true,
                (_, Some(e)) => e.nodes == g.cfg.nodes && e.znode_path == g.cfg.paths.root(),
                _ => false,
            };
            if keep {
                i += 1;
                continue;
            }
            let g = self.running.remove(i);
            self.publish();
            let name = g.cfg.name.clone();
            let nodes = g.cfg.nodes.clone();
            g.stop(&starter.session, &starter.config.manager_id).await;
            starter.metrics.forget_group(&name, &nodes);
            info!(group = %name, "{GROUP_REMOVED} {name}: no longer watched (its nodes left as they are)");
        }
        self.refused.retain(|n, _| entries.contains_key(n));
        for (name, entry) in wanted {
            if self.running.iter().any(|g| g.cfg.name == name) {
                if self.running[..self.fixed]
                    .iter()
                    .any(|g| g.cfg.name == name)
                {
                    self.refuse(
                        &name,
                        "a group of the flags or config file has this name; it stays as configured"
                            .into(),
                    );
                }
                continue;
            }
            let paths = match ZnodePaths::new(&entry.znode_path) {
                Ok(p) => p,
                Err(e) => {
                    self.refuse(&name, e);
                    continue;
                }
            };
            let group = GroupConfig {
                name: name.clone(),
                nodes: entry.nodes.clone(),
                paths,
            };
            let misfit = synchronous_misfit(starter.config.synchronous_replicas_given, &group);
            if let Some(why) = self.conflict(&group).or(misfit) {
                self.refuse(&name, why);
                continue;
            }
            let nodes = self
                .running
                .iter()
                .map(|g| g.cfg.nodes.len())
                .sum::<usize>();
            if let Err(e) = limits::raise_fd_limit(nodes + group.nodes.len()) {
                self.refuse(&name, e);
                continue;
            }
            let Some(client) = crate::front::live_session(&starter.session) else {
                settled = false;
                continue;
            };
            if let Err(e) = zk::secure_group(&client, &group.paths, &starter.acls).await {
                self.refuse(&name, e.to_string());
                settled = false;
                continue;
            }
            self.refused.remove(&name);
            self.running.push(starter.start(&group));
            self.publish();
            let nodes: Vec<String> = group.nodes.iter().map(ToString::to_string).collect();
            info!(
                group = %name,
                "{GROUP_ADDED} {name}: watching {} under {}",
                nodes.join(","),
                group.paths.root()
            );
        }
        settled
    }

    /// Why `group` cannot be watched next to the running ones, if it cannot.
    fn conflict(&self, group: &GroupConfig) -> Option<String> {
        self.running.iter().find_map(|g| {
            clash(
                &group.paths,
                &group.nodes,
                &g.cfg.name,
                g.cfg.paths.root(),
                |n| g.cfg.nodes.contains(n),
            )
        })
    }
}

/// Keeps the registry's groups watched until stage one of the shutdown, then returns the
/// set for the shutdown's stages. Without a registry it only waits.
pub(super) async fn keep_groups(
    mut groups: Groups,
    starter: Arc<Starter>,
    registry: Option<String>,
) -> Groups {
    let Some(root) = registry else {
        starter.stop_groups.cancelled().await;
        return groups;
    };
    let changed = Arc::new(Notify::new());
    let watcher = {
        let changed = changed.clone();
        let (session, stop, root) = (
            starter.session.clone(),
            starter.stop_groups.clone(),
            root.clone(),
        );
        tokio::spawn(async move {
            // Any event, a reconnection or a new session: read it all again (it is small).
            zk::watch_tree(session, &root, stop, |_| changed.notify_one()).await
        })
    };
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = starter.stop_groups.cancelled() => break,
            _ = changed.notified() => {}
            _ = sleep_until(retry_at) => {}
        }
        retry_at = None;
        let read = match crate::front::live_session(&starter.session) {
            Some(client) => match read_registry(&client, &root).await {
                Ok(Some(entries)) => Ok(entries),
                Ok(None) => Err(format!("{root} does not exist")),
                Err(e) => Err(e.to_string()),
            },
            None => Err("no ZooKeeper connection".to_string()),
        };
        // Never act on a doubtful view: unread (or gone) means nothing changes.
        let entries = match read {
            Ok(entries) => entries,
            Err(e) => {
                if !groups.registry_unread {
                    warn!("{REGISTRY_UNREAD}: {e}; the groups watched stay as they are");
                }
                groups.registry_unread = true;
                retry_at = Some(tokio::time::Instant::now() + RETRY);
                continue;
            }
        };
        groups.registry_unread = false;
        if !groups.reconcile(&starter, &root, entries).await {
            retry_at = Some(tokio::time::Instant::now() + RETRY);
        }
    }
    let _ = tokio::time::timeout(STOP_WITHIN, watcher).await;
    groups
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
