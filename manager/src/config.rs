//! Configuration: command-line flags (clap, each with an environment variable), an optional
//! TOML file (`-C`), defaults; merged (flags > file > defaults) and validated into a
//! [`Config`] whose errors name the culprit in one line.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use redis_failover_client::wire::DEFAULT_ROOT;
use redis_failover_client::{parse_addr_list, NodeAddr, ZnodePaths};
use serde::Deserialize;

pub const DEFAULT_MAX_FAILURES: u32 = 3;
pub const DEFAULT_DOWN_AFTER_MS: u64 = 2000;
pub const DEFAULT_ZK_SESSION_TIMEOUT_MS: u64 = 6000;
pub const DEFAULT_GROUP_NAME: &str = "mymaster";

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

    /// Redis ACL user name (AUTH user password); needs --password.
    #[arg(long, env = "REDIS_FAILOVER_USERNAME")]
    pub username: Option<String>,

    /// Root znode of the group [default: /redis_failover].
    #[arg(
        long,
        env = "REDIS_FAILOVER_ZNODE_PATH",
        value_name = "PATH",
        global = true
    )]
    pub znode_path: Option<String>,

    /// Name of the group given by --nodes, used in logs [default: mymaster].
    #[arg(long, env = "REDIS_FAILOVER_GROUP_NAME", value_name = "NAME")]
    pub group_name: Option<String>,

    /// Consecutive failed probes before a node counts as unavailable [default: 3].
    #[arg(long, env = "REDIS_FAILOVER_MAX_FAILURES", value_name = "N")]
    pub max_failures: Option<u32>,

    /// How long a node that does not answer (hung, SIGSTOPped, cut off) may stay silent
    /// before it is unavailable; a crashed node is seen at once [default: 2000].
    #[arg(long, env = "REDIS_FAILOVER_DOWN_AFTER_MS", value_name = "MS")]
    pub down_after_ms: Option<u64>,

    /// ZooKeeper session timeout; a standby takes over within about this long after the
    /// leader dies [default: 6000].
    #[arg(long, env = "REDIS_FAILOVER_ZK_SESSION_TIMEOUT_MS", value_name = "MS")]
    pub zk_session_timeout_ms: Option<u64>,

    /// Replicas further behind the failed master than this many bytes of replication stream
    /// are not promoted; with none left the group stays without a master [default: no bound].
    #[arg(long, env = "REDIS_FAILOVER_MAX_LAG_BYTES", value_name = "BYTES")]
    pub max_lag_bytes: Option<u64>,

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
}

/// Where a subcommand finds the group: `-z` and `--znode-path` (or the config file's
/// `zkservers` and `znode_path`), defaulting the path to `/redis_failover`.
pub fn zk_target(cli: &Cli) -> Result<(String, ZnodePaths), ConfigError> {
    let file = match &cli.config {
        None => FileConfig::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError(format!("cannot read config file {}: {e}", path.display()))
            })?;
            toml::from_str(&text).map_err(|e| {
                ConfigError(format!("config file {}: {}", path.display(), e.message()))
            })?
        }
    };
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

/// The TOML file. Unknown keys are refused, so a typo is not silently ignored.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub nodes: Option<NodesValue>,
    pub zkservers: Option<String>,
    pub password: Option<Secret>,
    pub username: Option<String>,
    pub znode_path: Option<String>,
    pub group_name: Option<String>,
    pub max_failures: Option<u32>,
    pub down_after_ms: Option<u64>,
    pub zk_session_timeout_ms: Option<u64>,
    pub manager_name: Option<String>,
    pub max_lag_bytes: Option<u64>,
    pub node_strategy: Option<String>,
    pub required_node_managers: Option<usize>,
    pub http_addr: Option<std::net::SocketAddr>,
    pub sentinel_addr: Option<std::net::SocketAddr>,
    pub sentinel_password: Option<Secret>,
    #[serde(default)]
    pub groups: Vec<FileGroup>,
}

/// `nodes = "h:p,h:p"` or `nodes = ["h:p", "h:p"]`.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum NodesValue {
    List(Vec<String>),
    Csv(String),
}

impl NodesValue {
    fn csv(&self) -> String {
        match self {
            NodesValue::List(l) => l.join(","),
            NodesValue::Csv(s) => s.clone(),
        }
    }
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct FileGroup {
    pub name: String,
    pub nodes: NodesValue,
    pub znode_path: String,
}

/// A password that never shows in logs or `Debug` output.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// Refuses anything but a string without echoing the value (a TOML type error would
/// otherwise print the password).
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(E::custom("password must be a string (in quotes)"))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(E::custom("password must be a string (in quotes)"))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom("password must be a string (in quotes)"))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom("password must be a string (in quotes)"))
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// How to log in to every Redis node.
#[derive(Clone, Debug, Default)]
pub struct RedisAuth {
    pub username: Option<String>,
    pub password: Option<Secret>,
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
    pub groups: Vec<GroupConfig>,
    pub auth: RedisAuth,
    pub max_failures: u32,
    pub down_after: Duration,
    pub zk_session_timeout: Duration,
    pub max_lag_bytes: Option<u64>,
    pub node_strategy: crate::core::votes::Strategy,
    pub required_node_managers: usize,
    pub http_addr: Option<std::net::SocketAddr>,
    pub sentinel_addr: Option<std::net::SocketAddr>,
    /// Required from Sentinel-protocol clients when set.
    pub sentinel_password: Option<Secret>,
    /// `<hostname>-<name>`: stable for a given config, unique among managers.
    pub manager_id: String,
}

/// A configuration error: one line that names the culprit.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

impl Config {
    /// Reads `-C` if given, then merges.
    pub fn load(cli: Cli) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            None => FileConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(format!("cannot read config file {}: {e}", path.display()))
                })?;
                toml::from_str(&text).map_err(|e| {
                    let msg = e.message().to_string();
                    ConfigError(format!("config file {}: {msg}", path.display()))
                })?
            }
        };
        Self::merge(cli, file)
    }

    /// Flags override the file; the file overrides defaults.
    pub fn merge(cli: Cli, file: FileConfig) -> Result<Config, ConfigError> {
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
        if groups.is_empty() {
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

        let password = cli.password.or(file.password).filter(|p| !p.0.is_empty());
        let username = cli.username.or(file.username).filter(|u| !u.is_empty());
        if username.is_some() && password.is_none() {
            return err("--username needs -p/--password");
        }
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
        if !(30..=3_600_000).contains(&down_after_ms) {
            return err(format!(
                "--down-after-ms {down_after_ms} is out of range (30 to 3600000)"
            ));
        }
        let session_ms = cli
            .zk_session_timeout_ms
            .or(file.zk_session_timeout_ms)
            .unwrap_or(DEFAULT_ZK_SESSION_TIMEOUT_MS);
        // Below 2 s a leader's single Redis step (up to 1.5 s) could outlive its session.
        if !(2000..=600_000).contains(&session_ms) {
            return err(format!(
                "--zk-session-timeout-ms {session_ms} is out of range (2000 to 600000)"
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
            auth: RedisAuth { username, password },
            max_failures,
            down_after: Duration::from_millis(down_after_ms),
            zk_session_timeout: Duration::from_millis(session_ms),
            max_lag_bytes: cli.max_lag_bytes.or(file.max_lag_bytes),
            node_strategy,
            required_node_managers,
            http_addr: cli.http_addr.or(file.http_addr),
            sentinel_addr: cli.sentinel_addr.or(file.sentinel_addr),
            sentinel_password: cli.sentinel_password.or(file.sentinel_password),
            manager_id: format!("{}-{name}", hostname()),
        })
    }
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
    let paths = ZnodePaths::new(root).map_err(|e| ConfigError(format!("{root_flag}: {e}")))?;
    if paths.root() == "/"
        || paths.root() == "/zookeeper"
        || paths.root().starts_with("/zookeeper/")
    {
        return err(format!(
            "{root_flag}: {} is reserved; use a path of its own such as /redis_failover",
            paths.root()
        ));
    }
    Ok(GroupConfig {
        name: name.to_string(),
        nodes,
        paths,
    })
}

/// `host:port[,host:port...][/chroot]`, as ZooKeeper's own clients take it.
fn validate_zkservers(z: &str) -> Result<(), ConfigError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["redis_node_manager"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).expect("flags parse")
    }

    fn load(args: &[&str], toml_text: &str) -> Result<Config, String> {
        let file: FileConfig = toml::from_str(toml_text).map_err(|e| e.message().to_string())?;
        Config::merge(cli(args), file).map_err(|e| e.0)
    }

    #[test]
    fn flags_alone() {
        let c = load(
            &[
                "-n",
                "127.0.0.1:7000,127.0.0.1:7001",
                "-z",
                "127.0.0.1:2181",
            ],
            "",
        )
        .expect("valid");
        assert_eq!(c.groups.len(), 1);
        assert_eq!(c.groups[0].name, "mymaster");
        assert_eq!(c.groups[0].paths.root(), "/redis_failover");
        assert_eq!(c.groups[0].nodes.len(), 2);
        assert_eq!(c.max_failures, 3);
        assert_eq!(c.down_after, Duration::from_millis(2000));
    }

    #[test]
    fn flags_override_the_file() {
        let c = load(
            &["-z", "z:1", "--max-failures", "5", "-p", "s3cret"],
            "nodes = [\"h:1\", \"h:2\"]\nmax_failures = 2\ndown_after_ms = 700\npassword = \"file\"\n",
        )
        .expect("valid");
        assert_eq!(c.max_failures, 5);
        assert_eq!(c.down_after, Duration::from_millis(700));
        assert_eq!(c.auth.password.as_ref().map(Secret::expose), Some("s3cret"));
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "password leaked in Debug"
        );
    }

    #[test]
    fn several_groups_from_the_file() {
        let c = load(
            &[],
            r#"
zkservers = "z:1,z:2/chroot"
[[groups]]
name = "a"
nodes = "h:1,h:2"
znode_path = "/rf/a"
[[groups]]
name = "b"
nodes = ["h:3"]
znode_path = "/rf/b"
"#,
        )
        .expect("valid");
        let names: Vec<_> = c.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(c.groups[1].paths.nodes(), "/rf/b/nodes");
    }

    #[test]
    fn bad_input_names_the_culprit() {
        let cases: Vec<(Vec<&str>, &str, &str)> = vec![
            (vec!["-n", "h:1"], "", "no ZooKeeper servers"),
            (vec!["-z", "z:1"], "", "no Redis nodes"),
            (
                vec!["-z", "z:1", "-n", "h"],
                "",
                "-n/--nodes: bad address \"h\": no port",
            ),
            (
                vec!["-z", "z:1", "-n", "h:1,h:99999"],
                "",
                "-n/--nodes: bad address \"h:99999\"",
            ),
            (
                vec!["-z", "z:1", "-n", "h:1,h:1"],
                "",
                "-n/--nodes: duplicate address h:1",
            ),
            (
                vec!["-z", "z:1", "-n", ","],
                "",
                "-n/--nodes: empty address list",
            ),
            (
                vec!["-z", "nope", "-n", "h:1"],
                "",
                "-z/--zkservers: bad address \"nope\"",
            ),
            (
                vec!["-z", "z:1", "-n", "h:1", "--znode-path", "rf"],
                "",
                "--znode-path: znode path \"rf\" must start with '/'",
            ),
            (
                vec!["-z", "z:1", "-n", "h:1", "--znode-path", "/zookeeper"],
                "",
                "is reserved",
            ),
            (
                vec!["-z", "z:1", "-n", "h:1", "--max-failures", "0"],
                "",
                "--max-failures must be at least 1",
            ),
            (
                vec!["-z", "z:1", "-n", "h:1", "--down-after-ms", "5"],
                "",
                "--down-after-ms 5 is out of range",
            ),
            (
                vec!["-z", "z:1", "-n", "h:1", "--zk-session-timeout-ms", "10"],
                "",
                "--zk-session-timeout-ms 10 is out of range",
            ),
            (
                vec!["-z", "z:1", "-n", "h:1", "--username", "u"],
                "",
                "--username needs -p/--password",
            ),
            (
                vec!["-z", "z:1", "-n", "h:1"],
                "[[groups]]\nname=\"b\"\nnodes=\"h:1\"\nznode_path=\"/b\"\n",
                "node h:1 is in both groups \"mymaster\" and \"b\"",
            ),
            (
                vec!["-z", "z:1", "-n", "h:1"],
                "[[groups]]\nname=\"b\"\nnodes=\"h:2\"\nznode_path=\"/redis_failover\"\n",
                "share znode path /redis_failover",
            ),
        ];
        for (args, file, want) in cases {
            let got = load(&args, file).expect_err(want);
            assert!(got.contains(want), "{args:?}: got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn a_mistyped_password_is_not_echoed() {
        let e = toml::from_str::<FileConfig>("password = 9876543210\n").expect_err("not a string");
        assert!(
            e.message().contains("password must be a string"),
            "{}",
            e.message()
        );
        assert!(!e.to_string().contains("9876543210") || !e.message().contains("9876543210"));
        assert!(!e.message().contains("9876543210"), "{}", e.message());
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let e = toml::from_str::<FileConfig>("max_failure = 3\n").expect_err("typo");
        assert!(
            e.message().contains("unknown field `max_failure`"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn config_file_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("rfcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let path = dir.join("bad.toml");
        std::fs::write(&path, "zkservers = \"z:1\"\nnodez = \"h:1\"\n").expect("write");
        let e = Config::load(cli(&["-C", path.to_str().expect("utf8")])).expect_err("bad key");
        assert!(e.0.contains("bad.toml") && e.0.contains("nodez"), "{}", e.0);
        let e = Config::load(cli(&["-C", "/nonexistent/x.toml"])).expect_err("missing");
        assert!(
            e.0.contains("cannot read config file /nonexistent/x.toml"),
            "{}",
            e.0
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
