//! The whole daemon: start-up checks, one session, per group an election task and a group
//! loop, the operator fronts, and a two-stage shutdown (the groups stop acting before the
//! locks are released and the session closed).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{self, Config, ConfigError};
use crate::core::event_names::{HTTP_ERROR, MANAGER_STARTED, MANAGER_STOPPING};
use crate::front::{http, metrics, sentinel};
use crate::io::limits;
use crate::io::node::{self, Connector, NodeError};
use crate::io::zk::{self, ZkError};

mod groups;

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
    let acls = Arc::new(zk::ZnodeAcls::new(&config.zk_access));
    for group in &config.groups {
        zk::secure_group(&client, &group.paths, &acls)
            .await
            .map_err(|e| StartError::Config(ConfigError(e.to_string())))?;
    }
    if let Some(root) = &config.groups_registry {
        zk::registry::ensure_registry(&client, root, &acls)
            .await
            .map_err(|e| StartError::Config(ConfigError(format!("--groups-znode {root}: {e}"))))?;
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
        "{MANAGER_STARTED} {} started: ZooKeeper session {}, {} group(s){}",
        config.manager_id,
        client.session_id(),
        config.groups.len(),
        config
            .groups_registry
            .as_ref()
            .map_or(String::new(), |r| format!(
                " and those of the group registry {r}"
            ))
    );

    // Two stages: the groups stop acting first, then the locks are released and the
    // session closed, so that no failover step runs without the lock.
    let stop_all = CancellationToken::new();
    let stop_groups = CancellationToken::new();
    let (session_tx, session_rx) = watch::channel(None);
    let mut tasks = Vec::new();
    let metrics = metrics::Metrics::new();
    tasks.push(tokio::spawn(zk::keep_session(
        config.zkservers.clone(),
        config.zk_access.clone(),
        config.zk_session_timeout,
        client,
        session_tx,
        stop_all.clone(),
    )));
    tasks.push(tokio::spawn(crate::io::probe::pace(
        config.probe_interval,
        stop_all.clone(),
    )));
    let starter = Arc::new(groups::Starter {
        config: config.clone(),
        connector: connector.clone(),
        session: session_rx.clone(),
        acls: acls.clone(),
        metrics: metrics.clone(),
        sentinel_announce: sentinel_announce.clone(),
        session_timeout,
        stop_groups: stop_groups.clone(),
        stop_all: stop_all.clone(),
    });
    let fixed = config.groups.iter().map(|g| starter.start(g)).collect();
    let (running, snapshots) = groups::Groups::new(fixed);
    let groups_task = tokio::spawn(groups::keep_groups(
        running,
        starter.clone(),
        config.groups_registry.clone(),
    ));
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
            registry: config.groups_registry.clone(),
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
    drop(starter);

    shutdown.await;
    info!("{MANAGER_STOPPING} {} shutting down", config.manager_id);
    stop_groups.cancel();
    let running = match tokio::time::timeout(Duration::from_secs(15), groups_task).await {
        Ok(Ok(mut running)) => {
            running.join_loops().await;
            Some(running)
        }
        _ => {
            warn!("the groups did not stop within 15 s of shutdown");
            None
        }
    };
    stop_all.cancel();
    if let Some(running) = running {
        running.join_elections().await;
    }
    join_within(tasks, "a task").await;
    info!("{MANAGER_STOPPING} {} stopped", config.manager_id);
    Ok(())
}
