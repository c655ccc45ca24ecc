//! Configuration: command-line flags (clap, each with an environment variable), an optional
//! TOML file (`-C`), defaults; merged (flags > file > defaults) and validated into a
//! [`Config`] whose errors name the culprit in one line.
//!
//! - `cli`: the flags and subcommands; `file`: the TOML file and secrets;
//! - this file: merging and validation.

use std::ops::RangeInclusive;
use std::time::Duration;

use redis_failover_client::wire::parse_addr_list;
use redis_failover_client::wire::DEFAULT_ROOT;
use redis_failover_client::{NodeAddr, ZnodePaths};

pub const DEFAULT_MAX_FAILURES: u32 = 3;
pub const DEFAULT_DOWN_AFTER_MS: u64 = 2000;
pub const DEFAULT_ZK_SESSION_TIMEOUT_MS: u64 = 6000;
pub const DEFAULT_GROUP_NAME: &str = "mymaster";
pub const DEFAULT_FENCING_MAX_LAG_SECS: u64 = 2;
/// Clients default to synchronous mode with one replica (the client's `synchronous` doc).
pub const DEFAULT_SYNCHRONOUS_REPLICAS: usize = 1;

mod cli;
mod file;
#[cfg(test)]
mod tests;
mod zk_access;

pub use cli::{groups_root, operator_access, zk_target, Cli, Command, GroupCommand, Switch};
pub use file::{FileConfig, FileGroup, NodesValue, Secret};
pub use zk_access::{digest_id, parse_ids, AclId, ZkAccess};

/// How to log in to every Redis node.
#[derive(Clone, Debug, Default)]
pub struct RedisAuth {
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// `--tls` and its files: every connection to Redis over TLS.
    pub tls: Option<redis_failover_client::Tls>,
}

/// One master/replica group and where it is published.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    pub name: String,
    pub nodes: Vec<NodeAddr>,
    pub paths: ZnodePaths,
}

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub zkservers: String,
    /// The groups given by flags or the config file, watched for the manager's lifetime.
    pub groups: Vec<GroupConfig>,
    /// `--groups-from-zookeeper`: the group registry's root, whose groups are watched too.
    pub groups_registry: Option<String>,
    pub auth: RedisAuth,
    pub max_failures: u32,
    pub down_after: Duration,
    pub zk_session_timeout: Duration,
    /// `--probe-interval-ms`.
    pub probe_interval: Duration,
    pub max_lag_bytes: Option<u64>,
    /// `--fencing` and `--fencing-max-lag-secs`.
    pub fencing: crate::core::fence::Fencing,
    /// `--synchronous-replicas` (at most each group's replicas when not given).
    pub synchronous_replicas: usize,
    /// `--synchronous-replicas` as given, if it was: then every group must fit it
    /// ([`synchronous_misfit`]).
    pub synchronous_replicas_given: Option<usize>,
    /// `--replication-guard`.
    pub replication_guard: bool,
    /// `--observe-only`: never lead, log what a leader would do.
    pub observe_only: bool,
    /// `--threads`: 1 runs the daemon on one thread (`main.rs` builds the runtime).
    pub threads: usize,
    /// `--on-switch-master` and its timeout.
    pub on_switch_master: Option<(std::path::PathBuf, Duration)>,
    /// `--webhook-url`, parsed.
    pub webhook: Option<crate::io::webhook::Webhook>,
    /// `--endpoint-tls-cert-file` and `--endpoint-tls-key-file`.
    pub endpoint_tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    pub node_strategy: crate::core::votes::Strategy,
    pub required_node_managers: usize,
    pub http_addr: Option<std::net::SocketAddr>,
    pub sentinel_addr: Option<std::net::SocketAddr>,
    /// Required from Sentinel-protocol clients when set.
    pub sentinel_password: Option<Secret>,
    /// The managers' ZooKeeper identity and who else may read and operate.
    pub zk_access: ZkAccess,
    /// `<hostname>-<name>`: stable for a given config, unique among managers.
    pub manager_id: String,
}

/// A configuration error: one line that names the culprit.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// `value` of `flag` is within `range`, or the one line saying it is not.
fn within(flag: &str, value: u64, range: RangeInclusive<u64>) -> Result<(), ConfigError> {
    if range.contains(&value) {
        return Ok(());
    }
    let (lo, hi) = range.into_inner();
    err(format!("{flag} {value} is out of range ({lo} to {hi})"))
}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

impl Config {
    /// Reads `-C` if given and `REDIS_FAILOVER_ZK_AUTH`, then merges.
    pub fn load(mut cli: Cli) -> Result<Config, ConfigError> {
        let file = FileConfig::read(cli.config.as_deref())?;
        cli.zk_auth = zk_auth_env();
        Self::merge(cli, file)
    }

    /// Flags override the file; the file overrides defaults.
    pub fn merge(cli: Cli, file: FileConfig) -> Result<Config, ConfigError> {
        let groups_registry =
            if cli.groups_from_zookeeper || file.groups_from_zookeeper == Some(true) {
                Some(groups_root(&cli, &file)?)
            } else {
                None
            };
        let zkservers = match cli.zkservers.or(file.zkservers) {
            Some(z) => z,
            None => return err("no ZooKeeper servers: give -z/--zkservers host:port,..."),
        };
        validate_zkservers(&zkservers)?;

        let mut groups = Vec::new();
        let nodes = cli.nodes.or(file.nodes.as_ref().map(NodesValue::csv));
        if let Some(nodes) = nodes {
            let name = cli
                .group_name
                .or(file.group_name)
                .unwrap_or_else(|| DEFAULT_GROUP_NAME.to_string());
            let root = cli
                .znode_path
                .or(file.znode_path)
                .unwrap_or_else(|| DEFAULT_ROOT.to_string());
            groups.push(group(&name, &nodes, &root, "-n/--nodes", "--znode-path")?);
        } else if cli.znode_path.is_some() && file.groups.is_empty() {
            return err("--znode-path given without -n/--nodes");
        }
        for g in &file.groups {
            groups.push(group(
                &g.name,
                &g.nodes.csv(),
                &g.znode_path,
                &format!("nodes of group {:?}", g.name),
                &format!("znode_path of group {:?}", g.name),
            )?);
        }
        if groups.is_empty() && groups_registry.is_none() {
            return err("no Redis nodes: give -n/--nodes host:port,... or [[groups]] in -C FILE");
        }
        for (i, g) in groups.iter().enumerate() {
            for other in &groups[..i] {
                if other.name == g.name {
                    return err(format!("two groups are named {:?}", g.name));
                }
                if other.paths == g.paths {
                    return err(format!(
                        "groups {:?} and {:?} share znode path {}; each group needs its own",
                        other.name,
                        g.name,
                        g.paths.root()
                    ));
                }
                if let Some(n) = g.nodes.iter().find(|n| other.nodes.contains(n)) {
                    return err(format!(
                        "node {n} is in both groups {:?} and {:?}",
                        other.name, g.name
                    ));
                }
            }
        }

        // The default (1) applies to each group as far as it has replicas; a number given
        // must fit every group.
        let given = cli.synchronous_replicas.or(file.synchronous_replicas);
        if let Some(why) = groups.iter().find_map(|g| synchronous_misfit(given, g)) {
            return err(why);
        }
        let synchronous_replicas = given.unwrap_or(DEFAULT_SYNCHRONOUS_REPLICAS);
        let password = secret(
            cli.password.or(file.password),
            cli.password_file
                .as_deref()
                .or(file.password_file.as_deref()),
            "-p/--password",
            "--password-file",
        )?
        .filter(|p| !p.expose().is_empty());
        let sentinel_password = secret(
            cli.sentinel_password.or(file.sentinel_password),
            cli.sentinel_password_file
                .as_deref()
                .or(file.sentinel_password_file.as_deref()),
            "--sentinel-password",
            "--sentinel-password-file",
        )?;
        let mut zk_access = ZkAccess::new(
            cli.zk_auth,
            cli.zk_auth_file.as_deref().or(file.zk_auth_file.as_deref()),
            cli.zk_read_acl.as_deref().or(file.zk_read_acl.as_deref()),
            cli.zk_operator_acl
                .as_deref()
                .or(file.zk_operator_acl.as_deref()),
        )?;
        zk_access.tls = zk_tls_settings(
            cli.zk_tls_ca_file.or(file.zk_tls_ca_file),
            cli.zk_tls_cert_file.or(file.zk_tls_cert_file),
            cli.zk_tls_key_file.or(file.zk_tls_key_file),
        )?;
        let username = cli.username.or(file.username).filter(|u| !u.is_empty());
        if username.is_some() && password.is_none() {
            return err("--username needs -p/--password");
        }
        let tls = tls_settings(
            cli.tls.or(file.tls),
            cli.tls_ca_file.or(file.tls_ca_file),
            cli.tls_cert_file.or(file.tls_cert_file),
            cli.tls_key_file.or(file.tls_key_file),
            cli.tls_server_name.or(file.tls_server_name),
        )?;
        let max_failures = cli
            .max_failures
            .or(file.max_failures)
            .unwrap_or(DEFAULT_MAX_FAILURES);
        if max_failures == 0 {
            return err("--max-failures must be at least 1");
        }
        let down_after_ms = cli
            .down_after_ms
            .or(file.down_after_ms)
            .unwrap_or(DEFAULT_DOWN_AFTER_MS);
        within("--down-after-ms", down_after_ms, 30..=3_600_000)?;
        let session_ms = cli
            .zk_session_timeout_ms
            .or(file.zk_session_timeout_ms)
            .unwrap_or(DEFAULT_ZK_SESSION_TIMEOUT_MS);
        // Below 2 s a leader's single Redis step (up to 1.5 s) could outlive its session.
        within("--zk-session-timeout-ms", session_ms, 2000..=600_000)?;
        let probe_ms = cli
            .probe_interval_ms
            .or(file.probe_interval_ms)
            .unwrap_or(crate::io::probe::POLL_INTERVAL.as_millis() as u64);
        if !(10..=down_after_ms.max(10)).contains(&probe_ms) {
            return err(format!(
                "--probe-interval-ms {probe_ms} is out of range (10 to --down-after-ms, {down_after_ms})"
            ));
        }
        let node_strategy = match (cli.node_strategy, file.node_strategy) {
            (Some(s), _) => s,
            (None, Some(s)) => s
                .parse()
                .map_err(|e: String| ConfigError(format!("node_strategy: {e}")))?,
            (None, None) => crate::core::votes::Strategy::default(),
        };
        let required_node_managers = cli
            .required_node_managers
            .or(file.required_node_managers)
            .unwrap_or(1);
        if required_node_managers == 0 {
            return err("--required-node-managers must be at least 1");
        }
        let max_lag_secs = cli
            .fencing_max_lag_secs
            .or(file.fencing_max_lag_secs)
            .unwrap_or(DEFAULT_FENCING_MAX_LAG_SECS);
        within("--fencing-max-lag-secs", max_lag_secs, 1..=60)?;
        let fencing = match cli.fencing.or(file.fencing) {
            Some(cli::FencingMode::None) => crate::core::fence::Fencing::None,
            _ => crate::core::fence::Fencing::MinReplicas { max_lag_secs },
        };
        let name = cli
            .manager_name
            .or(file.manager_name)
            .unwrap_or_else(|| std::process::id().to_string());
        if name.is_empty() || name.contains('/') {
            return err(format!(
                "--manager-name {name:?} must be non-empty and without '/'"
            ));
        }
        Ok(Config {
            zkservers,
            groups,
            groups_registry,
            auth: RedisAuth {
                username,
                password,
                tls,
            },
            max_failures,
            down_after: Duration::from_millis(down_after_ms),
            zk_session_timeout: Duration::from_millis(session_ms),
            probe_interval: Duration::from_millis(probe_ms),
            max_lag_bytes: cli.max_lag_bytes.or(file.max_lag_bytes),
            fencing,
            synchronous_replicas,
            synchronous_replicas_given: given,
            endpoint_tls: match (
                cli.endpoint_tls_cert_file.or(file.endpoint_tls_cert_file),
                cli.endpoint_tls_key_file.or(file.endpoint_tls_key_file),
            ) {
                (Some(c), Some(k)) => Some((c, k)),
                (None, None) => None,
                _ => {
                    return err(
                        "give --endpoint-tls-cert-file and --endpoint-tls-key-file together",
                    )
                }
            },
            webhook: cli
                .webhook_url
                .or(file.webhook_url)
                .map(|u| crate::io::webhook::Webhook::parse(&u))
                .transpose()
                .map_err(ConfigError)?,
            observe_only: cli.observe_only || file.observe_only == Some(true),
            threads: match cli.threads.or(file.threads) {
                None => 1,
                Some(n @ 1..=256) => n as usize,
                Some(n) => return err(format!("--threads {n} is out of range (1 to 256)")),
            },
            on_switch_master: cli.on_switch_master.or(file.on_switch_master).map(|p| {
                let ms = cli
                    .hook_timeout_ms
                    .or(file.hook_timeout_ms)
                    .unwrap_or(60_000);
                (p, Duration::from_millis(ms))
            }),
            replication_guard: cli.replication_guard.or(file.replication_guard)
                != Some(cli::Switch::Off),
            node_strategy,
            required_node_managers,
            http_addr: cli.http_addr.or(file.http_addr),
            sentinel_addr: cli.sentinel_addr.or(file.sentinel_addr),
            sentinel_password,
            zk_access,
            manager_id: format!("{}-{name}", hostname()),
        })
    }
}

/// `--tls` and its files, read and checked: each mistake names its flag.
fn tls_settings(
    switch: Option<cli::Switch>,
    ca: Option<std::path::PathBuf>,
    cert: Option<std::path::PathBuf>,
    key: Option<std::path::PathBuf>,
    server_name: Option<String>,
) -> Result<Option<redis_failover_client::Tls>, ConfigError> {
    let on = match switch {
        Some(cli::Switch::On) => true,
        Some(cli::Switch::Off) => false,
        None => ca.is_some(),
    };
    if !on {
        if switch == Some(cli::Switch::Off)
            && (ca.is_some() || cert.is_some() || key.is_some() || server_name.is_some())
        {
            return err("--tls off, but a --tls-* setting is given; remove one of them");
        }
        if cert.is_some() || key.is_some() || server_name.is_some() {
            return err("--tls-cert-file, --tls-key-file and --tls-server-name need --tls-ca-file");
        }
        return Ok(None);
    }
    let Some(ca) = ca else {
        return err("--tls on needs --tls-ca-file (the CA that signs the nodes' certificates)");
    };
    read_tls("--tls", ca, cert, key, server_name).map(Some)
}

/// `--zk-tls-ca-file` and the client certificate's files, read and checked: TLS to
/// ZooKeeper when a CA is given.
fn zk_tls_settings(
    ca: Option<std::path::PathBuf>,
    cert: Option<std::path::PathBuf>,
    key: Option<std::path::PathBuf>,
) -> Result<Option<redis_failover_client::Tls>, ConfigError> {
    match ca {
        Some(ca) => read_tls("--zk-tls", ca, cert, key, None).map(Some),
        None if cert.is_some() || key.is_some() => {
            err("--zk-tls-cert-file and --zk-tls-key-file need --zk-tls-ca-file")
        }
        None => Ok(None),
    }
}

/// The TLS settings in the files of `{prefix}-ca-file`, `{prefix}-cert-file` and
/// `{prefix}-key-file` (and `{prefix}-server-name`): each mistake names its flag.
fn read_tls(
    prefix: &str,
    ca: std::path::PathBuf,
    cert: Option<std::path::PathBuf>,
    key: Option<std::path::PathBuf>,
    server_name: Option<String>,
) -> Result<redis_failover_client::Tls, ConfigError> {
    use redis_failover_client::{Tls, TlsPart};
    let [ca_flag, cert_flag, key_flag, name_flag] =
        ["ca-file", "cert-file", "key-file", "server-name"].map(|f| format!("{prefix}-{f}"));
    let read = |flag: &str, path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| ConfigError(format!("{flag} {}: cannot read it: {e}", path.display())))
    };
    let mut tls = Tls::new(read(&ca_flag, &ca)?);
    match (&cert, &key) {
        (Some(c), Some(k)) => tls = tls.client_cert(read(&cert_flag, c)?, read(&key_flag, k)?),
        (None, None) => {}
        _ => {
            return err(format!(
                "{cert_flag} and {key_flag} go together; give both or neither"
            ))
        }
    }
    if let Some(name) = &server_name {
        tls = tls.server_name(name);
    }
    tls.check().map_err(|e| {
        let (flag, path) = match e.part {
            TlsPart::Ca => (&ca_flag, Some(&ca)),
            TlsPart::ClientCert => (&cert_flag, cert.as_ref()),
            TlsPart::ClientKey => (&key_flag, key.as_ref()),
            TlsPart::ServerName => (&name_flag, None),
        };
        match path {
            Some(p) => ConfigError(format!("{flag} {}: {}", p.display(), e.reason)),
            None => ConfigError(format!("{flag}: {}", e.reason)),
        }
    })?;
    Ok(tls)
}

/// Why `group` cannot be watched with `--synchronous-replicas` `given` (the default fits every
/// group: it waits for as many replicas as a group has, up to 1): more than its replicas.
pub fn synchronous_misfit(given: Option<usize>, group: &GroupConfig) -> Option<String> {
    let (n, replicas) = (given?, group.nodes.len().saturating_sub(1));
    (n > replicas).then(|| {
        format!(
            "--synchronous-replicas {n} is more than the {replicas} replicas of group {:?}; \
             no write could ever be acknowledged",
            group.name
        )
    })
}

fn group(
    name: &str,
    nodes: &str,
    root: &str,
    nodes_flag: &str,
    root_flag: &str,
) -> Result<GroupConfig, ConfigError> {
    if name.is_empty() {
        return err("a group has an empty name");
    }
    let nodes = parse_addr_list(nodes).map_err(|e| ConfigError(format!("{nodes_flag}: {e}")))?;
    let paths = ZnodePaths::own(root).map_err(|e| ConfigError(format!("{root_flag}: {e}")))?;
    Ok(GroupConfig {
        name: name.to_string(),
        nodes,
        paths,
    })
}

/// `REDIS_FAILOVER_ZK_AUTH`, the ZooKeeper identity `user:password` (an environment
/// variable or a file only: a flag would show it in `ps`).
pub fn zk_auth_env() -> Option<Secret> {
    std::env::var("REDIS_FAILOVER_ZK_AUTH")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| Secret::from(v.as_str()))
}

/// A secret given directly or in a file, not both.
fn secret(
    given: Option<Secret>,
    file: Option<&std::path::Path>,
    flag: &str,
    file_flag: &str,
) -> Result<Option<Secret>, ConfigError> {
    match (given, file) {
        (Some(_), Some(_)) => err(format!("give {flag} or {file_flag}, not both")),
        (Some(s), None) => Ok(Some(s)),
        (None, Some(p)) => Secret::from_file(p, file_flag).map(Some),
        (None, None) => Ok(None),
    }
}

/// `host:port[,host:port...][/chroot]`, as ZooKeeper's own clients take it.
fn validate_zkservers(z: &str) -> Result<(), ConfigError> {
    if z.contains("://") {
        return err(
            "-z/--zkservers: give host:port,... without a scheme (--zk-tls-ca-file turns TLS on)",
        );
    }
    let (hosts, chroot) = match z.find('/') {
        Some(i) => (&z[..i], Some(&z[i..])),
        None => (z, None),
    };
    parse_addr_list(hosts).map_err(|e| ConfigError(format!("-z/--zkservers: {e}")))?;
    if let Some(c) = chroot {
        ZnodePaths::new(c).map_err(|e| ConfigError(format!("-z/--zkservers chroot: {e}")))?;
    }
    Ok(())
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}
