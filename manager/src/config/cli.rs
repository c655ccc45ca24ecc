//! The command line: flags (clap, each with an environment variable) and subcommands.
//! The doc comments here are `--help` text, written for a terminal, not for rustdoc.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::Parser;
use redis_failover_client::ZnodePaths;

use super::*;

/// Keeps a Redis master/replica group available: probes every node, fails over when the
/// master dies, and publishes {master, slaves, unavailable} in ZooKeeper.
#[derive(Parser, Debug, Default)]
#[command(name = "redis_node_manager", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Redis nodes of the group, host:port,host:port,... (master and replicas, in any order).
    #[arg(
        short = 'n',
        long,
        env = "REDIS_FAILOVER_NODES",
        value_name = "HOST:PORT,..."
    )]
    pub nodes: Option<String>,

    /// ZooKeeper servers, host:port,host:port,...
    #[arg(
        short = 'z',
        long,
        env = "REDIS_FAILOVER_ZKSERVERS",
        global = true,
        value_name = "HOST:PORT,..."
    )]
    pub zkservers: Option<String>,

    /// Redis password (AUTH), the same for every node.
    #[arg(
        short = 'p',
        long,
        env = "REDIS_FAILOVER_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<Secret>,

    /// File holding the Redis password (as container platforms mount secrets; one
    /// trailing newline is ignored); instead of -p.
    #[arg(long, env = "REDIS_FAILOVER_PASSWORD_FILE", value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Redis ACL user name (AUTH user password); needs --password.
    #[arg(long, env = "REDIS_FAILOVER_USERNAME")]
    pub username: Option<String>,

    /// on: every connection to Redis uses TLS (the nodes' tls-port), verified with
    /// --tls-ca-file; implied by --tls-ca-file [default: off].
    #[arg(
        long,
        env = "REDIS_FAILOVER_TLS",
        value_name = "on|off",
        hide_possible_values = true
    )]
    pub tls: Option<Switch>,

    /// CA certificate(s), PEM, that sign the Redis nodes' certificates (needed with --tls).
    #[arg(long, env = "REDIS_FAILOVER_TLS_CA_FILE", value_name = "FILE")]
    pub tls_ca_file: Option<PathBuf>,

    /// Client certificate, PEM, presented to the nodes (for tls-auth-clients yes); with
    /// --tls-key-file.
    #[arg(long, env = "REDIS_FAILOVER_TLS_CERT_FILE", value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// Private key, PEM, of --tls-cert-file.
    #[arg(long, env = "REDIS_FAILOVER_TLS_KEY_FILE", value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// Name the nodes' certificates are verified for [default: each node's host as
    /// given in --nodes].
    #[arg(long, env = "REDIS_FAILOVER_TLS_SERVER_NAME", value_name = "NAME")]
    pub tls_server_name: Option<String>,

    /// Root znode of the group [default: /redis_failover].
    #[arg(
        long,
        env = "REDIS_FAILOVER_ZNODE_PATH",
        value_name = "PATH",
        global = true
    )]
    pub znode_path: Option<String>,

    /// Also watch the groups listed in the group registry in ZooKeeper (--groups-znode),
    /// started and stopped as `group add` / `group remove` change it, without a restart.
    #[arg(long, env = "REDIS_FAILOVER_GROUPS_FROM_ZOOKEEPER")]
    pub groups_from_zookeeper: bool,

    /// Root znode of the group registry, for --groups-from-zookeeper and the group
    /// subcommands [default: /redis_failover_groups].
    #[arg(
        long,
        env = "REDIS_FAILOVER_GROUPS_ZNODE",
        value_name = "PATH",
        global = true
    )]
    pub groups_znode: Option<String>,

    /// Name of the group given by --nodes: the master name Sentinel clients ask for on
    /// --sentinel-addr, the {group} in HTTP paths and the `group` label of metrics on
    /// --http-addr, and the group in logs [default: mymaster].
    #[arg(long, env = "REDIS_FAILOVER_GROUP_NAME", value_name = "NAME")]
    pub group_name: Option<String>,

    /// Consecutive failed probes before a node counts as unavailable [default: 3].
    #[arg(long, env = "REDIS_FAILOVER_MAX_FAILURES", value_name = "N")]
    pub max_failures: Option<u32>,

    /// How long a node that does not answer (hung, SIGSTOPped, cut off) may stay silent
    /// before it is unavailable; a crashed node is seen at once [default: 2000].
    #[arg(long, env = "REDIS_FAILOVER_DOWN_AFTER_MS", value_name = "MS")]
    pub down_after_ms: Option<u64>,

    /// How often a master (and every node of a group that is not calm) is asked for a sign
    /// of life (INFO replication; ROLE between the once-a-second INFOs of a calm group's
    /// master): a hung master is seen about --down-after-ms plus half of this after it stops
    /// answering. Replicas of a calm group are asked every 5 s, or this often if slower
    /// [default: 200].
    #[arg(long, env = "REDIS_FAILOVER_PROBE_INTERVAL_MS", value_name = "MS")]
    pub probe_interval_ms: Option<u64>,

    /// ZooKeeper session timeout; a standby takes over within about this long after the
    /// leader dies [default: 6000].
    #[arg(long, env = "REDIS_FAILOVER_ZK_SESSION_TIMEOUT_MS", value_name = "MS")]
    pub zk_session_timeout_ms: Option<u64>,

    /// Replicas further behind the failed master than this many bytes of replication stream
    /// are not promoted; with none left the group stays without a master [default: no bound].
    #[arg(long, env = "REDIS_FAILOVER_MAX_LAG_BYTES", value_name = "BYTES")]
    pub max_lag_bytes: Option<u64>,

    /// How a master cut off from the managers is kept from taking writes that a failover
    /// would lose: min-replicas (it refuses writes once no replica has acknowledged for
    /// --fencing-max-lag-secs; an unreachable master is replaced only after that) or none
    /// (nothing is set on the nodes; an unreachable master is replaced at once)
    /// [default: min-replicas].
    #[arg(
        long,
        env = "REDIS_FAILOVER_FENCING",
        value_name = "MODE",
        hide_possible_values = true
    )]
    pub fencing: Option<FencingMode>,

    /// min-replicas-max-lag set on the master with --fencing min-replicas, in seconds
    /// [default: 2].
    #[arg(long, env = "REDIS_FAILOVER_FENCING_MAX_LAG_SECS", value_name = "SECS")]
    pub fencing_max_lag_secs: Option<u64>,

    /// on: replicas authenticate to their master as a user the leader creates at run time
    /// (ACL SETUSER), so that a master that restarted empty cannot be synced from before the
    /// leader decides; off: the nodes' authentication is left alone [default: on].
    #[arg(
        long,
        env = "REDIS_FAILOVER_REPLICATION_GUARD",
        value_name = "on|off",
        hide_possible_values = true
    )]
    pub replication_guard: Option<Switch>,

    /// Threads that run the manager's work. 1 runs everything on one thread, the cheapest at
    /// rest (no hand-offs between threads); more for thousands of groups [default: 1].
    #[arg(long, env = "REDIS_FAILOVER_THREADS", value_name = "N")]
    pub threads: Option<u16>,

    /// Probe, vote and publish this manager's view, and log what a leader would do
    /// (`+would-promote ...` with its reasons), but never lead: no Redis command that changes
    /// a role, no write to the topology. For trying it next to a running Sentinel.
    #[arg(long, env = "REDIS_FAILOVER_OBSERVE_ONLY")]
    pub observe_only: bool,

    /// Program the leader runs after every change of master, with Sentinel's
    /// client-reconfig-script arguments [default: none].
    #[arg(long, env = "REDIS_FAILOVER_ON_SWITCH_MASTER", value_name = "PROGRAM")]
    pub on_switch_master: Option<PathBuf>,

    /// Certificate (PEM chain) the HTTP and Sentinel endpoints serve TLS with; with
    /// --endpoint-tls-key-file [default: plain TCP].
    #[arg(
        long,
        env = "REDIS_FAILOVER_ENDPOINT_TLS_CERT_FILE",
        value_name = "FILE"
    )]
    pub endpoint_tls_cert_file: Option<PathBuf>,

    /// Private key (PEM) of --endpoint-tls-cert-file.
    #[arg(
        long,
        env = "REDIS_FAILOVER_ENDPOINT_TLS_KEY_FILE",
        value_name = "FILE"
    )]
    pub endpoint_tls_key_file: Option<PathBuf>,

    /// POST each failover's history record (JSON) here after every change of master,
    /// retried with backoff (http:// only) [default: none].
    #[arg(long, env = "REDIS_FAILOVER_WEBHOOK_URL", value_name = "URL")]
    pub webhook_url: Option<String>,

    /// How long that program may run before it is killed [default: 60000].
    #[arg(long, env = "REDIS_FAILOVER_HOOK_TIMEOUT_MS", value_name = "MS")]
    pub hook_timeout_ms: Option<u64>,

    /// Clients acknowledge a write only once this many replicas have it (the client's
    /// synchronous mode, WAIT N; its default is 1): a failover then promotes only a replica
    /// holding every such write, and only when enough replicas answer to know which; 0 for
    /// clients that use asynchronous() [default: 1, or 0 in a group without replicas].
    #[arg(long, env = "REDIS_FAILOVER_SYNCHRONOUS_REPLICAS", value_name = "N")]
    pub synchronous_replicas: Option<usize>,

    /// How managers' views combine into "a node is down": majority, consensus or single
    /// [default: majority].
    #[arg(long, env = "REDIS_FAILOVER_NODE_STRATEGY", value_name = "STRATEGY")]
    pub node_strategy: Option<crate::core::votes::Strategy>,

    /// Fresh manager views needed before any node is judged down [default: 1].
    #[arg(long, env = "REDIS_FAILOVER_REQUIRED_NODE_MANAGERS", value_name = "N")]
    pub required_node_managers: Option<usize>,

    /// Serve HTTP health checks and status on this address (e.g. 127.0.0.1:8008) [default:
    /// off].
    #[arg(long, env = "REDIS_FAILOVER_HTTP_ADDR", value_name = "HOST:PORT")]
    pub http_addr: Option<std::net::SocketAddr>,

    /// Answer the Redis Sentinel protocol on this address (e.g. 127.0.0.1:26379), so that
    /// Sentinel-aware clients and tools work unchanged [default: off].
    #[arg(long, env = "REDIS_FAILOVER_SENTINEL_ADDR", value_name = "HOST:PORT")]
    pub sentinel_addr: Option<std::net::SocketAddr>,

    /// Password Sentinel clients must give (AUTH / HELLO AUTH) on --sentinel-addr, like
    /// sentinel.conf's `requirepass` [default: none].
    #[arg(
        long,
        env = "REDIS_FAILOVER_SENTINEL_PASSWORD",
        value_name = "PASSWORD"
    )]
    pub sentinel_password: Option<Secret>,

    /// File holding --sentinel-password (one trailing newline is ignored).
    #[arg(
        long,
        env = "REDIS_FAILOVER_SENTINEL_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub sentinel_password_file: Option<PathBuf>,

    /// File holding this process's ZooKeeper identity, `user:password` (digest scheme).
    /// A manager with one creates every znode writable by that identity only (give all
    /// managers the same), readable per --zk-read-acl, and locks a tree it finds open; an
    /// operator's subcommand writes requests with it. Also REDIS_FAILOVER_ZK_AUTH
    /// (`user:password` itself) [default: none: znodes open to all].
    #[arg(
        long,
        env = "REDIS_FAILOVER_ZK_AUTH_FILE",
        value_name = "FILE",
        global = true
    )]
    pub zk_auth_file: Option<PathBuf>,

    /// Who may read the znodes when the managers have an identity: ZooKeeper ACL ids,
    /// comma-separated (`world:anyone`, `digest:USER:HASH`, `ip:10.0.0.0/8`)
    /// [default: world:anyone].
    #[arg(long, env = "REDIS_FAILOVER_ZK_READ_ACL", value_name = "ID,...")]
    pub zk_read_acl: Option<String>,

    /// Operators' ZooKeeper ACL ids (`digest:USER:HASH`, see `zk-digest`), comma-separated:
    /// they may request failovers and pause (create and delete <znode-path>/manual_failover
    /// and /paused) [default: none].
    #[arg(long, env = "REDIS_FAILOVER_ZK_OPERATOR_ACL", value_name = "ID,...")]
    pub zk_operator_acl: Option<String>,

    /// CA certificate(s), PEM, that sign the ZooKeeper servers' certificates: connect to
    /// ZooKeeper over TLS, -z listing the servers' secureClientPort [default: plain TCP].
    #[arg(
        long,
        env = "REDIS_FAILOVER_ZK_TLS_CA_FILE",
        value_name = "FILE",
        global = true
    )]
    pub zk_tls_ca_file: Option<PathBuf>,

    /// Client certificate, PEM, presented to ZooKeeper (for ssl.clientAuth=need); with
    /// --zk-tls-key-file.
    #[arg(
        long,
        env = "REDIS_FAILOVER_ZK_TLS_CERT_FILE",
        value_name = "FILE",
        global = true
    )]
    pub zk_tls_cert_file: Option<PathBuf>,

    /// Private key, PEM, of --zk-tls-cert-file.
    #[arg(
        long,
        env = "REDIS_FAILOVER_ZK_TLS_KEY_FILE",
        value_name = "FILE",
        global = true
    )]
    pub zk_tls_key_file: Option<PathBuf>,

    /// `user:password` from REDIS_FAILOVER_ZK_AUTH (read by `Config::load`, never a flag).
    #[arg(skip)]
    pub zk_auth: Option<Secret>,

    /// Name of this manager, used in its id (`<hostname>-<name>`) [default: the process id].
    #[arg(long, env = "REDIS_FAILOVER_MANAGER_NAME", value_name = "NAME")]
    pub manager_name: Option<String>,

    /// TOML file with the same settings (snake_case keys) and optionally several
    /// [[groups]]; flags override it.
    #[arg(
        short = 'C',
        long,
        env = "REDIS_FAILOVER_CONFIG",
        value_name = "FILE",
        global = true
    )]
    pub config: Option<PathBuf>,
}

/// `--fencing`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FencingMode {
    MinReplicas,
    None,
}

/// An on/off option.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Switch {
    On,
    Off,
}

/// What to do instead of running the daemon.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Ask the leading manager to fail over: a planned switchover (no acknowledged write
    /// lost) while the master is healthy, a promotion when it is down. Writes
    /// <znode-path>/manual_failover and waits for the outcome.
    Failover {
        /// The replica to promote [default: the best one, ANY_SLAVE].
        #[arg(long, value_name = "HOST:PORT")]
        to: Option<String>,
        /// How long to wait for the manager's verdict, in seconds.
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        wait_secs: u64,
    },
    /// Print the group as ZooKeeper holds it: master, replicas, unavailable nodes, epoch,
    /// the leading manager and every manager's view.
    Status {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Pause automatic failover for the group (maintenance): managers keep probing and
    /// publishing, a down master is listed unavailable but not replaced, manual failovers
    /// still work. Writes <znode-path>/paused; shown in the znode, `status` and /status.
    Pause {
        /// Why, for the other operators [default: none].
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Resume automatic failover (deletes <znode-path>/paused); a master that is down now
    /// is replaced at once.
    Resume,
    /// Add, remove or list the groups of the group registry in ZooKeeper (--groups-znode):
    /// every manager started with --groups-from-zookeeper starts or stops watching them.
    Group {
        #[command(subcommand)]
        action: GroupCommand,
    },
    /// Print the ZooKeeper ACL id (`digest:USER:HASH`) of the identity `user:password`
    /// read from standard input, for --zk-read-acl and --zk-operator-acl.
    ZkDigest,
}

/// `redis_node_manager group ...`.
#[derive(clap::Subcommand, Debug)]
pub enum GroupCommand {
    /// Add a group: the managers start watching its nodes and publish its topology under
    /// --znode-path [default: /redis_failover_NAME]. Refused when NAME exists.
    Add {
        /// The group's name (its Sentinel master name): letters, digits, '.', '_', '-'.
        name: String,
        /// The group's Redis nodes, host:port,host:port,... (master and replicas).
        #[arg(short = 'n', long, value_name = "HOST:PORT,...")]
        nodes: String,
    },
    /// Remove a group: the managers stop watching it (its nodes' roles are left as they
    /// are, its znodes stay).
    Remove {
        /// The group's name.
        name: String,
    },
    /// List the registry's groups.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// The group registry's root a subcommand or the daemon uses: --groups-znode (or the config
/// file's `groups_znode`), else /redis_failover_groups.
pub fn groups_root(cli: &Cli, file: &FileConfig) -> Result<String, ConfigError> {
    let root = cli
        .groups_znode
        .clone()
        .or(file.groups_znode.clone())
        .unwrap_or_else(|| redis_failover_client::wire::DEFAULT_GROUPS_ROOT.to_string());
    ZnodePaths::own(&root).map_err(|e| ConfigError(format!("--groups-znode: {e}")))?;
    Ok(root)
}

/// A subcommand's ZooKeeper identity (an operator's): `REDIS_FAILOVER_ZK_AUTH` or
/// `--zk-auth-file` (or the config file's `zk_auth_file`), and its TLS settings.
pub fn operator_access(cli: &Cli) -> Result<ZkAccess, ConfigError> {
    let file = FileConfig::read(cli.config.as_deref())?;
    let mut access = ZkAccess::new(
        zk_auth_env(),
        cli.zk_auth_file.as_deref().or(file.zk_auth_file.as_deref()),
        None,
        None,
    )?;
    access.tls = zk_tls_settings(
        cli.zk_tls_ca_file.clone().or(file.zk_tls_ca_file),
        cli.zk_tls_cert_file.clone().or(file.zk_tls_cert_file),
        cli.zk_tls_key_file.clone().or(file.zk_tls_key_file),
    )?;
    Ok(access)
}

/// Where a subcommand finds the group: `-z` and `--znode-path` (or the config file's
/// `zkservers` and `znode_path`), defaulting the path to `/redis_failover`.
pub fn zk_target(cli: &Cli) -> Result<(String, ZnodePaths), ConfigError> {
    let file = FileConfig::read(cli.config.as_deref())?;
    let Some(zk) = cli.zkservers.clone().or(file.zkservers) else {
        return err("no ZooKeeper servers: give -z/--zkservers host:port,...");
    };
    validate_zkservers(&zk)?;
    let root = cli
        .znode_path
        .clone()
        .or(file.znode_path)
        .unwrap_or_else(|| DEFAULT_ROOT.to_string());
    let paths = ZnodePaths::new(&root).map_err(|e| ConfigError(format!("--znode-path: {e}")))?;
    Ok((zk, paths))
}
