//! `redis_node_manager`: keeps Redis master/replica groups available, coordinated through
//! ZooKeeper. [`run`] is the whole daemon; `main.rs` only parses flags and sets up logging,
//! so tests run the daemon in-process.
//!
//! # Layout
//! - [`config`]: flags + TOML file -> validated [`Config`].
//! - [`info`], [`health`], [`decide`]: pure decisions (node state from probe history, the
//!   leader's next step, which replica to promote), tested without servers.
//! - [`node`]: Redis connections and verbs; [`probe`]: per-node watching tasks.
//! - [`zk`]: ZooKeeper session, leader lock, compare-and-set publishing.
//! - [`daemon`]: one group's loop, the only place where decisions meet I/O.
//! - [`snapshot`]: what a group's loop shows outside; [`http`] (checks, status, operator
//!   actions), [`metrics`] (Prometheus) and [`sentinel`] (the Sentinel protocol, with
//!   [`events`] derived from topology changes) only read snapshots and write requests.

pub mod config;
pub mod core;
pub mod daemon;
pub mod decide;
pub mod front;
pub mod io;
pub mod zk;

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::{Cli, Config, ConfigError};

use crate::core::event_names::{HTTP_ERROR, MANAGER_STARTED, MANAGER_STOPPING};
use crate::front::{http, metrics, sentinel};
use crate::io::node::{self, Connector, NodeError};
use crate::io::probe;

/// How often each node is polled with `INFO` (besides the parked read that sees a crash at once).
pub use crate::io::probe::POLL_INTERVAL;

/// Why the daemon could not start. Its `Display` is the one line printed before exit 2.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Redis(String),
    #[error("{0}")]
    ZooKeeper(String),
}

/// Checks every node once: a node that is down is fine (it is probed later), but a wrong
/// password or a port that is not Redis is a configuration mistake worth refusing to start.
async fn preflight(config: &Config, connector: &Connector) -> Result<(), StartError> {
    let checks = config.groups.iter().flat_map(|g| {
        g.nodes.iter().map(move |n| async move {
            let r = async {
                let mut c = connector
                    .connect(n, Duration::from_secs(2), Some(Duration::from_secs(2)))
                    .await?;
                // Connected, then dropped on the first command: something listens there,
                // but it is not Redis (a Redis at its client limit would say so).
                node::read_info(&mut c).await.map_err(|e| match e {
                    NodeError::Connection(m) => {
                        NodeError::NotRedis(format!("it closed the connection on INFO: {m}"))
                    }
                    other => other,
                })
            }
            .await;
            (g.name.clone(), n.clone(), r)
        })
    });
    for (group, n, r) in futures::future::join_all(checks).await {
        match r {
            Ok(_) => {}
            Err(e) if e.is_config_mistake() => {
                return Err(StartError::Redis(format!(
                    "Redis node {n} (group {group}): {e}"
                )))
            }
            Err(NodeError::Reply(m)) if m.contains("unknown command") => {
                return Err(StartError::Redis(format!(
                    "Redis node {n} (group {group}) does not look like Redis: {m}"
                )))
            }
            Err(e) => {
                warn!(group = %group, "node {n} is not reachable at start ({e}); it will be probed")
            }
        }
    }
    Ok(())
}

/// Runs the manager until `shutdown` completes, then releases the locks, closes the
/// ZooKeeper session and ends every task.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let connector = Connector::new(config.auth.clone());
    // Bound before anything else, so that a taken port is a start-up error.
    let http_listener = match config.http_addr {
        None => None,
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            StartError::Config(ConfigError(format!(
                "--http-addr {addr}: cannot listen: {e}"
            )))
        })?),
    };
    let sentinel_listener = match config.sentinel_addr {
        None => None,
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            StartError::Config(ConfigError(format!(
                "--sentinel-addr {addr}: cannot listen: {e}"
            )))
        })?),
    };
    // What the other managers list in `SENTINEL SENTINELS`: the bound address (the real port
    // when asked for port 0), or this host's name when bound to every interface.
    let sentinel_announce = sentinel_listener
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| {
            let host = if a.ip().is_unspecified() {
                config::hostname()
            } else {
                a.ip().to_string()
            };
            redis_failover_client::NodeAddr::new(host, a.port())
        });
    preflight(&config, &connector).await?;
    let wait = config.zk_session_timeout + Duration::from_secs(1);
    let client = zk::connect(&config.zkservers, config.zk_session_timeout, wait)
        .await
        .map_err(StartError::ZooKeeper)?;
    // A manager id in use by a live manager is a configuration mistake; the view of a crashed
    // process with the same name disappears when its session expires, so wait that long.
    for group in &config.groups {
        let path = group.paths.manager_node_state_of(&config.manager_id);
        let deadline = tokio::time::Instant::now() + config.zk_session_timeout * 3 / 2;
        loop {
            match tokio::time::timeout(zk::ZK_OP_TIMEOUT, client.check_stat(&path)).await {
                Ok(Ok(None)) => break,
                Ok(Ok(Some(_))) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Ok(Ok(Some(_))) => {
                    return Err(StartError::Config(ConfigError(format!(
                        "manager id {} is already used by a running manager ({path} exists); \
                         give each manager its own --manager-name",
                        config.manager_id
                    ))))
                }
                Ok(Err(e)) => return Err(StartError::ZooKeeper(format!("reading {path}: {e}"))),
                Err(_) => return Err(StartError::ZooKeeper(format!("reading {path} timed out"))),
            }
        }
    }
    info!(
        "{MANAGER_STARTED} {} started: ZooKeeper session {}, {} group(s)",
        config.manager_id,
        client.session_id(),
        config.groups.len()
    );

    // Two stages: the groups stop acting first, then the locks are released and the
    // session closed, so that no failover step runs without the lock.
    let stop_all = CancellationToken::new();
    let stop_groups = CancellationToken::new();
    let (session_tx, session_rx) = watch::channel(None);
    let mut tasks = Vec::new();
    let mut group_tasks = Vec::new();
    let mut snapshots = Vec::new();
    let metrics = metrics::Metrics::new();
    tasks.push(tokio::spawn(zk::keep_session(
        config.zkservers.clone(),
        config.zk_session_timeout,
        client,
        session_tx,
        stop_all.clone(),
    )));
    let probe_timeout =
        (config.down_after / config.max_failures.max(1)).max(Duration::from_millis(10));
    for group in &config.groups {
        let (leader_tx, leader_rx) = watch::channel(None);
        tasks.push(tokio::spawn(zk::elect(
            group.name.clone(),
            group.paths.clone(),
            config.manager_id.clone(),
            session_rx.clone(),
            leader_tx,
            stop_all.clone(),
        )));
        let settings = probe::ProbeSettings {
            connector: connector.clone(),
            probe_timeout,
            max_failures: config.max_failures,
            probe_key: format!("_redis_failover_probe:{}", config.manager_id),
        };
        let policy = decide::Policy {
            link_grace: config.down_after * 10,
            max_lag_bytes: config.max_lag_bytes,
        };
        let vote = daemon::VoteSettings {
            strategy: config.node_strategy,
            required: config.required_node_managers,
            max_age: core::votes::max_view_age(config.down_after),
        };
        let (snapshot_tx, snapshot_rx) = watch::channel(http::GroupSnapshot::default());
        snapshots.push(snapshot_rx);
        let rules = daemon::Rules {
            max_failures: config.max_failures,
            down_after: config.down_after,
            policy,
            vote,
        };
        let daemon = daemon::GroupDaemon::new(
            group.clone(),
            config.manager_id.clone(),
            rules,
            session_rx.clone(),
            snapshot_tx,
            connector.clone(),
        )
        .with_metrics(metrics.group(&group.name))
        .with_sentinel_addr(sentinel_announce.clone());
        group_tasks.push(tokio::spawn(daemon.run(
            settings,
            leader_rx,
            stop_groups.clone(),
        )));
    }
    if let Some(listener) = http_listener {
        let state = http::HttpState {
            manager_id: config.manager_id.clone(),
            groups: snapshots.clone(),
            session: session_rx.clone(),
            metrics: metrics.clone(),
        };
        let stop = stop_all.clone();
        tasks.push(tokio::spawn(async move {
            let served = axum::serve(listener, http::router(state))
                .with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(e) = served.await {
                warn!("{HTTP_ERROR}: {e}");
            }
        }));
    }
    if let Some(listener) = sentinel_listener {
        let port = listener.local_addr().map_or(0, |a| a.port());
        let state = sentinel::SentinelState {
            manager_id: config.manager_id.clone(),
            groups: snapshots.clone(),
            session: session_rx.clone(),
            password: config
                .sentinel_password
                .as_ref()
                .map(|p| p.expose().to_string()),
            port,
        };
        tasks.push(tokio::spawn(sentinel::serve(
            listener,
            state,
            stop_all.clone(),
        )));
    }
    drop(session_rx);

    shutdown.await;
    info!("{MANAGER_STOPPING} {} shutting down", config.manager_id);
    stop_groups.cancel();
    for t in group_tasks {
        if tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .is_err()
        {
            warn!("a group loop did not end within 5 s of shutdown");
        }
    }
    stop_all.cancel();
    for t in tasks {
        if tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .is_err()
        {
            warn!("a task did not end within 5 s of shutdown");
        }
    }
    info!("{MANAGER_STOPPING} {} stopped", config.manager_id);
    Ok(())
}

/// `redis_node_manager failover`: writes the request and waits (bounded) for the leader's
/// verdict. `Ok` names the new master; `Err` says why not.
pub async fn request_failover(
    zkservers: &str,
    paths: &redis_failover_client::ZnodePaths,
    to: Option<&redis_failover_client::NodeAddr>,
    wait: Duration,
) -> Result<String, String> {
    let client = zk::connect(zkservers, Duration::from_secs(10), Duration::from_secs(10)).await?;
    zk::request_manual(&client, paths, to).await?;
    match zk::await_manual(&client, paths, wait).await? {
        zk::ManualOutcome::Done(m) => Ok(m),
        other => Err(other.to_string()),
    }
}

/// `redis_node_manager pause` / `resume`: sets or clears `<root>/paused`.
pub async fn set_pause(
    zkservers: &str,
    paths: &redis_failover_client::ZnodePaths,
    pause: Option<&redis_failover_client::PauseInfo>,
) -> Result<(), String> {
    let client = zk::connect(zkservers, Duration::from_secs(10), Duration::from_secs(10)).await?;
    zk::set_pause(&client, paths, pause).await
}

/// What `redis_node_manager status` shows.
#[derive(Debug, serde::Serialize)]
pub struct StatusReport {
    pub znode_path: String,
    pub topology: Option<redis_failover_client::Topology>,
    /// Why `topology` is missing, if it is.
    pub topology_error: Option<String>,
    /// The manager holding the lock, then the standbys in the order they would take over.
    pub managers_in_line: Vec<String>,
    pub views: std::collections::BTreeMap<String, redis_failover_client::ManagerView>,
    /// `<root>/paused`, when automatic failover is paused.
    pub paused: Option<redis_failover_client::PauseInfo>,
    /// The recorded failovers, oldest first.
    pub history: Vec<redis_failover_client::FailoverRecord>,
}

/// Reads everything `status` shows, with bounded waits.
pub async fn status(
    zkservers: &str,
    paths: &redis_failover_client::ZnodePaths,
) -> Result<StatusReport, String> {
    let client = zk::connect(zkservers, Duration::from_secs(10), Duration::from_secs(10)).await?;
    let (topology, topology_error) = match zk::read_published(&client, &paths.nodes()).await? {
        zk::Published::Valid { topology, .. } => (Some(topology), None),
        zk::Published::Missing => (None, Some(format!("{} does not exist", paths.nodes()))),
        zk::Published::Corrupt { error, .. } => {
            (None, Some(format!("{} is corrupt: {error}", paths.nodes())))
        }
    };
    let managers_in_line = zk::read_lock_order(&client, paths).await?;
    let views = zk::read_views(&client, paths).await?.into_iter().collect();
    let paused = zk::read_pause(&client, paths).await?;
    let history = zk::read_history(&client, paths).await?;
    Ok(StatusReport {
        znode_path: paths.root().to_string(),
        topology,
        topology_error,
        managers_in_line,
        views,
        paused,
        history,
    })
}

impl std::fmt::Display for StatusReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[redis_failover_client::NodeAddr]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        writeln!(f, "group at {}", self.znode_path)?;
        match (&self.topology, &self.topology_error) {
            (Some(t), _) => {
                let master = t
                    .master
                    .as_ref()
                    .map_or("none".to_string(), |m| m.to_string());
                writeln!(f, "  master       {master}")?;
                writeln!(f, "  replicas     {}", list(&t.slaves))?;
                writeln!(f, "  unavailable  {}", list(&t.unavailable))?;
                writeln!(f, "  epoch        {}", t.epoch)?;
                if let Some(p) = &t.promoting {
                    writeln!(f, "  promoting    {p}")?;
                }
            }
            (None, e) => writeln!(f, "  topology     {}", e.as_deref().unwrap_or("unknown"))?,
        }
        if let Some(p) = &self.paused {
            writeln!(
                f,
                "  paused       yes: no automatic failover (by {}, {}{})",
                p.by,
                ago(p.since_ms),
                if p.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", p.reason)
                }
            )?;
        }
        match self.managers_in_line.split_first() {
            Some((leader, standbys)) => {
                writeln!(f, "  leader       {leader}")?;
                writeln!(
                    f,
                    "  standbys     {}",
                    if standbys.is_empty() {
                        "-".to_string()
                    } else {
                        standbys.join(", ")
                    }
                )?;
            }
            None => writeln!(f, "  leader       none (no manager running)")?,
        }
        if !self.history.is_empty() {
            writeln!(
                f,
                "  failovers (last {}, newest first)",
                self.history.len().min(5)
            )?;
            for r in self.history.iter().rev().take(5) {
                writeln!(
                    f,
                    "    {:<10} {} -> {}  epoch {}  {} ms  {}  by {}",
                    r.kind,
                    r.from,
                    r.to,
                    r.epoch,
                    r.duration_ms,
                    ago(r.at_ms),
                    r.manager
                )?;
            }
        }
        if !self.views.is_empty() {
            writeln!(f, "  views")?;
            for (id, v) in &self.views {
                let up: Vec<String> = v
                    .available
                    .iter()
                    .map(|(a, ms)| format!("{a} ({ms:.1} ms)"))
                    .collect();
                writeln!(
                    f,
                    "    {id:<24} up: {}  down: {}",
                    if up.is_empty() {
                        "-".to_string()
                    } else {
                        up.join(", ")
                    },
                    list(&v.unavailable)
                )?;
            }
        }
        Ok(())
    }
}

/// `12 s ago` for a Unix time in ms.
fn ago(at_ms: u64) -> String {
    let now = redis_failover_client::wire::unix_ms();
    let secs = now.saturating_sub(at_ms) / 1000;
    match secs {
        0..=119 => format!("{secs} s ago"),
        120..=7199 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    }
}
