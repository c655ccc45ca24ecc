//! The TOML file (`-C`) and secrets that never print.

use std::fmt;

use serde::Deserialize;

use super::ConfigError;

/// The TOML file. Unknown keys are refused, so a typo is not silently ignored.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub nodes: Option<NodesValue>,
    pub zkservers: Option<String>,
    pub password: Option<Secret>,
    pub username: Option<String>,
    pub tls: Option<super::cli::Switch>,
    pub tls_ca_file: Option<std::path::PathBuf>,
    pub tls_cert_file: Option<std::path::PathBuf>,
    pub tls_key_file: Option<std::path::PathBuf>,
    pub tls_server_name: Option<String>,
    pub znode_path: Option<String>,
    pub group_name: Option<String>,
    pub groups_from_zookeeper: Option<bool>,
    pub groups_znode: Option<String>,
    pub max_failures: Option<u32>,
    pub down_after_ms: Option<u64>,
    pub zk_session_timeout_ms: Option<u64>,
    pub probe_interval_ms: Option<u64>,
    pub manager_name: Option<String>,
    pub max_lag_bytes: Option<u64>,
    pub fencing: Option<super::cli::FencingMode>,
    pub fencing_max_lag_secs: Option<u64>,
    pub synchronous_replicas: Option<usize>,
    pub replication_guard: Option<super::cli::Switch>,
    pub observe_only: Option<bool>,
    pub threads: Option<u16>,
    pub on_switch_master: Option<std::path::PathBuf>,
    pub webhook_url: Option<String>,
    pub endpoint_tls_cert_file: Option<std::path::PathBuf>,
    pub endpoint_tls_key_file: Option<std::path::PathBuf>,
    pub hook_timeout_ms: Option<u64>,
    pub node_strategy: Option<String>,
    pub required_node_managers: Option<usize>,
    pub http_addr: Option<std::net::SocketAddr>,
    pub sentinel_addr: Option<std::net::SocketAddr>,
    pub sentinel_password: Option<Secret>,
    pub password_file: Option<std::path::PathBuf>,
    pub sentinel_password_file: Option<std::path::PathBuf>,
    pub zk_auth_file: Option<std::path::PathBuf>,
    pub zk_read_acl: Option<String>,
    pub zk_operator_acl: Option<String>,
    pub zk_tls_ca_file: Option<std::path::PathBuf>,
    pub zk_tls_cert_file: Option<std::path::PathBuf>,
    pub zk_tls_key_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub groups: Vec<FileGroup>,
}

impl FileConfig {
    /// The file at `path` (`-C`), or the empty file when none is given.
    pub fn read(path: Option<&std::path::Path>) -> Result<FileConfig, ConfigError> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        toml::from_str(&text)
            .map_err(|e| ConfigError(format!("config file {}: {}", path.display(), e.message())))
    }
}

/// `nodes = "h:p,h:p"` or `nodes = ["h:p", "h:p"]`.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum NodesValue {
    List(Vec<String>),
    Csv(String),
}

impl NodesValue {
    pub fn csv(&self) -> String {
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

    /// The content of `path` (`what` names the setting in the error), without one trailing
    /// newline: what `echo secret > file` and container platforms' mounted secrets hold.
    pub fn from_file(path: &std::path::Path, what: &str) -> Result<Secret, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{what} {}: {e}", path.display())))?;
        let text = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text);
        if text.is_empty() {
            return Err(ConfigError(format!("{what} {} is empty", path.display())));
        }
        Ok(Secret(text.to_string()))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
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
