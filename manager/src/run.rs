//! The whole daemon: start-up checks, one session, per group an election task and a group
//! loop, the operator fronts, and a two-stage shutdown (the groups stop acting before the
//! locks are released and the session closed).

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{self, Config, ConfigError};
use crate::core::event_names::{HTTP_ERROR, MANAGER_STARTED, MANAGER_STOPPING};
use crate::core::guard::Credential;
use crate::core::select::Policy;
use crate::core::votes;
use crate::daemon;
use crate::front::{http, metrics, sentinel};
use crate::io::limits;
use crate::io::node::{self, Connector, NodeError};
use crate::io::probe;
use crate::io::zk::{self, ZkError};

/// Why the daemon could not start. Its `Display` is the one line printed before exit 2.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Redis(String),
    #[error("{0}")]
    ZooKeeper(#[from] ZkError),
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

/// Binds an operator endpoint's address, if one is configured.
async fn listen(
    flag: &str,
    addr: Option<std::net::SocketAddr>,
) -> Result<Option<tokio::net::TcpListener>, StartError> {
    let Some(addr) = addr else { return Ok(None) };
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => Ok(Some(l)),
        Err(e) => Err(StartError::Config(ConfigError(format!(
            "{flag} {addr}: cannot listen: {e}"
        )))),
    }
}

/// Waits for each task to end, at most 5 s each; a task that does not is named in the log.
async fn join_within(tasks: Vec<tokio::task::JoinHandle<()>>, what: &str) {
    for t in tasks {
        if tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .is_err()
        {
            warn!("{what} did not end within 5 s of shutdown");
        }
    }
}

/// Runs the manager until `shutdown` completes, then releases the locks, closes the
/// ZooKeeper session and ends every task.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let connector = Connector::new(config.auth.clone());
    // Bound before anything else, so that a taken port is a start-up error.
    let http_listener = listen("--http-addr", config.http_addr).await?;
    let sentinel_listener = listen("--sentinel-addr", config.sentinel_addr).await?;
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
    let nodes = config.groups.iter().map(|g| g.nodes.len()).sum();
    limits::raise_fd_limit(nodes).map_err(|e| StartError::Config(ConfigError(e)))?;
    preflight(&config, &connector).await?;
    let wait = config.zk_session_timeout + Duration::from_secs(1);
    let client = zk::connect(
        &config.zkservers,
        &config.zk_access,
        config.zk_session_timeout,
        wait,
    )
    .await?;
    // ZooKeeper grants a session timeout within its own bounds (2 to 20 ticks by default):
    // a leader acts only within half of what it was granted, not of what it asked for, or
    // its lock could expire while it still acts.
    let granted = client.session_timeout();
    let session_timeout = if granted < config.zk_session_timeout {
        warn!(
            "ZooKeeper granted a session timeout of {} ms instead of the {} ms asked \
             (--zk-session-timeout-ms is above its maxSessionTimeout); leaders act within half of it",
            granted.as_millis(),
            config.zk_session_timeout.as_millis()
        );
        granted
    } else {
        config.zk_session_timeout
    };
    // A chroot that does not exist would leave every write failing with "no node" forever;
    // creating it here would let a typo start a second, empty tree for the same nodes.
    if let Some(i) = config.zkservers.find('/') {
        let chroot = &config.zkservers[i..];
        if zk::bounded(zk::Op::Reading, chroot, client.check_stat("/"))
            .await?
            .is_none()
        {
            return Err(StartError::Config(ConfigError(format!(
                "ZooKeeper chroot {chroot} (in -z/--zkservers) does not exist; create it once \
                 (create {chroot} in zkCli) or check its spelling"
            ))));
        }
    }
    // Every group's loop learns of changes through a persistent recursive watch; a server
    // without them would leave it blind to other managers and operators. Checked on a path
    // no group uses (never created), so that dropping the check's watch touches no group's.
    let probe = client.watch(
        "/redis_failover_addwatch_check",
        zookeeper_client::AddWatchMode::PersistentRecursive,
    );
    if let Ok(Err(zookeeper_client::Error::Unimplemented)) =
        tokio::time::timeout(zk::ZK_OP_TIMEOUT, probe).await
    {
        return Err(StartError::Config(ConfigError(format!(
            "ZooKeeper at {} does not support persistent watches (addWatch); \
             redis_node_manager needs ZooKeeper 3.6 or newer",
            config.zkservers
        ))));
    }
    // With an identity, every group's tree is created with the managers' ACLs, or locked
    // if it was made open, before anything else touches it.
    let acls = std::sync::Arc::new(zk::ZnodeAcls::new(&config.zk_access));
    for group in &config.groups {
        zk::secure_group(&client, &group.paths, &acls)
            .await
            .map_err(|e| StartError::Config(ConfigError(e.to_string())))?;
    }
    // A manager id in use by a live manager is a configuration mistake; the view of a crashed
    // process with the same name disappears when its session expires, so wait that long.
    for group in &config.groups {
        let path = group.paths.manager_node_state_of(&config.manager_id);
        let deadline = tokio::time::Instant::now() + config.zk_session_timeout * 3 / 2;
        loop {
            match zk::bounded(zk::Op::Reading, &path, client.check_stat(&path)).await? {
                None => break,
                Some(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Some(_) => {
                    return Err(StartError::Config(ConfigError(format!(
                        "manager id {} is already used by a running manager ({path} exists); \
                         give each manager its own --manager-name",
                        config.manager_id
                    ))))
                }
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
        config.zk_access.clone(),
        config.zk_session_timeout,
        client,
        session_tx,
        stop_all.clone(),
    )));
    let probe_timeout =
        (config.down_after / config.max_failures.max(1)).max(Duration::from_millis(10));
    for group in &config.groups {
        let (leader_tx, leader_rx) = watch::channel(None);
        if config.observe_only {
            // Never contends for the lock: its group loop never leads. The sender lives
            // until shutdown (the loop ends when it is dropped).
            let stop = stop_all.clone();
            tasks.push(tokio::spawn(async move {
                stop.cancelled().await;
                drop(leader_tx);
            }));
        } else {
            tasks.push(tokio::spawn(zk::elect(
                group.name.clone(),
                group.paths.clone(),
                config.manager_id.clone(),
                session_rx.clone(),
                leader_tx,
                zk::LeaderTerms {
                    act_window: zk::act_window(session_timeout),
                    acls: acls.clone(),
                },
                stop_all.clone(),
            )));
        }
        let settings = probe::ProbeSettings {
            connector: connector.clone(),
            probe_timeout,
            interval: config.probe_interval,
            alert: Default::default(),
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
        let (snapshot_tx, snapshot_rx) = watch::channel(http::GroupSnapshot::default());
        snapshots.push(snapshot_rx);
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
            session_rx.clone(),
            snapshot_tx,
            connector.clone(),
        )
        .with_metrics(metrics.group(&group.name))
        .with_sentinel_addr(sentinel_announce.clone())
        .with_acls(acls.clone())
        .observe_only(config.observe_only);
        group_tasks.push(tokio::spawn(daemon.run(
            settings,
            leader_rx,
            stop_groups.clone(),
        )));
    }
    let endpoint_tls = match &config.endpoint_tls {
        Some((cert, key)) => Some(
            crate::front::tls::acceptor(cert, key)
                .map_err(|e| StartError::Config(ConfigError(e)))?,
        ),
        None => None,
    };
    if let Some(listener) = http_listener {
        let state = http::HttpState {
            manager_id: config.manager_id.clone(),
            groups: snapshots.clone(),
            session: session_rx.clone(),
            metrics: metrics.clone(),
            as_identity: config.zk_access.identity.is_some(),
        };
        let stop = stop_all.clone();
        match endpoint_tls.clone() {
            Some(tls) => {
                tasks.push(tokio::spawn(http::serve_tls(
                    listener,
                    tls,
                    http::router(state),
                    stop,
                )));
            }
            None => tasks.push(tokio::spawn(async move {
                let served = axum::serve(listener, http::router(state))
                    .with_graceful_shutdown(async move { stop.cancelled().await });
                if let Err(e) = served.await {
                    warn!("{HTTP_ERROR}: {e}");
                }
            })),
        }
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
            as_identity: config.zk_access.identity.is_some(),
        };
        tasks.push(tokio::spawn(sentinel::serve(
            listener,
            endpoint_tls.clone(),
            state,
            stop_all.clone(),
        )));
    }
    drop(session_rx);

    shutdown.await;
    info!("{MANAGER_STOPPING} {} shutting down", config.manager_id);
    stop_groups.cancel();
    join_within(group_tasks, "a group loop").await;
    stop_all.cancel();
    join_within(tasks, "a task").await;
    info!("{MANAGER_STOPPING} {} stopped", config.manager_id);
    Ok(())
}
