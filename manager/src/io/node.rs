//! Talking to one Redis node: connections with deadlines, reading its replication state, and
//! the verbs the leader acts with (`REPLICAOF NO ONE`, `REPLICAOF host port`, `ROLE`).
//! Decides nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, ErrorKind, IntoConnectionInfo, RedisError};
use redis_failover_client::NodeAddr;

use crate::config::RedisAuth;
use crate::core::fence::FenceSetting;
use crate::core::guard::{self, Credential};
use crate::core::info::{parse_info_replication, NodeInfo};

/// How long a leader's command (promote, re-point, confirm) may take on one node.
pub const ACT_TIMEOUT: Duration = Duration::from_millis(1500);

/// How long the connection of a leader's command is kept for the next one to the same node.
/// A failover's steps (the offsets read, the promotion, the re-pointing, the fence) follow
/// each other within milliseconds on the same nodes: each would otherwise open its own (a
/// TCP handshake and the client's setup, one round trip each, and the CPU of a connection's
/// life on both sides, which a burst of failovers pays 30 times over).
const KEEP: Duration = Duration::from_secs(5);

/// Opens connections to the group's nodes with the configured credentials.
#[derive(Clone, Debug)]
pub struct Connector {
    auth: RedisAuth,
    /// The connections of the last commands ([`Connector::act`]), each for [`KEEP`] after
    /// its last use.
    kept: Arc<Mutex<HashMap<NodeAddr, Kept>>>,
}

/// A connection kept after a command; `serial` tells its own expiry from a later use's.
struct Kept {
    conn: MultiplexedConnection,
    serial: u64,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kept({})", self.serial)
    }
}

impl Connector {
    pub fn new(auth: RedisAuth) -> Self {
        Self {
            auth,
            kept: Arc::default(),
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<NodeAddr, Kept>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the connection kept for `addr`, if any.
    fn take_kept(&self, addr: &NodeAddr) -> Option<MultiplexedConnection> {
        self.kept().remove(addr).map(|k| k.conn)
    }

    /// Keeps `conn` for the next command to `addr`, closed after [`KEEP`] unless used again.
    fn keep(&self, addr: &NodeAddr, conn: MultiplexedConnection) {
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.kept().insert(addr.clone(), Kept { conn, serial });
        let (kept, addr) = (Arc::downgrade(&self.kept), addr.clone());
        let until = tokio::time::Instant::now() + KEEP;
        tokio::spawn(async move {
            tokio::time::sleep_until(until).await;
            if let Some(kept) = kept.upgrade() {
                let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
                if kept.get(&addr).is_some_and(|k| k.serial == serial) {
                    kept.remove(&addr);
                }
            }
        });
    }

    /// A redis crate client for `addr` (with the credentials when `login`), over TLS when
    /// configured, and the connection options it needs.
    fn client(
        &self,
        addr: &NodeAddr,
        login: bool,
        config: AsyncConnectionConfig,
    ) -> Result<(redis::Client, AsyncConnectionConfig), RedisError> {
        let mut redis = redis::RedisConnectionInfo::default().set_skip_set_lib_name();
        if login {
            if let Some(user) = &self.auth.username {
                redis = redis.set_username(user);
            }
            if let Some(pass) = &self.auth.password {
                redis = redis.set_password(pass.expose());
            }
        }
        match &self.auth.tls {
            Some(tls) => tls.redis_client(addr, redis, config),
            None => {
                let info = ConnectionAddr::Tcp(addr.host.clone(), addr.port)
                    .into_connection_info()?
                    .set_redis_settings(redis);
                Ok((redis::Client::open(info)?, config))
            }
        }
    }

    /// The TLS settings, when connections to Redis use TLS.
    pub(crate) fn tls(&self) -> Option<&redis_failover_client::Tls> {
        self.auth.tls.as_ref()
    }

    /// A connection whose setup (TCP + AUTH) must finish within `connect_timeout`; every
    /// request on it fails after `response_timeout` (`None` for parked blocking reads, which
    /// are bounded by their own block time).
    pub async fn connect(
        &self,
        addr: &NodeAddr,
        connect_timeout: Duration,
        response_timeout: Option<Duration>,
    ) -> Result<MultiplexedConnection, NodeError> {
        let opened = open(
            self.client(addr, true, options(connect_timeout, response_timeout))?,
            connect_timeout,
        )
        .await;
        let opened = match (opened, &self.auth.tls) {
            // Under TLS 1.3 a node checks a client certificate after the handshake has
            // completed on this side: its refusal is seen here, not on the caller's command.
            // Any reply (even an error: PING may be denied by ACL) means it was accepted.
            (Ok(mut conn), Some(_)) => {
                match redis::cmd("PING").query_async::<()>(&mut conn).await {
                    Err(e) if e.is_io_error() || e.is_connection_dropped() => {
                        Err(NodeError::from(e))
                    }
                    _ => Ok(conn),
                }
            }
            (r, _) => r,
        };
        match opened {
            Err(NodeError::Auth(_)) if self.auth.password.is_some() => {
                Err(self.why_auth_failed(addr, connect_timeout).await)
            }
            Err(e) => Err(self.explain_tls(addr, e, connect_timeout).await),
            r => r,
        }
    }

    /// `e`, or, under TLS, why the node refuses the connection when that is the cause
    /// ([`redis_failover_client::Tls::diagnose`]), with the flags to check.
    pub(crate) async fn explain_tls(
        &self,
        addr: &NodeAddr,
        e: NodeError,
        timeout: Duration,
    ) -> NodeError {
        let Some(tls) = &self.auth.tls else { return e };
        if !matches!(e, NodeError::Connection(_) | NodeError::NotRedis(_)) {
            return e;
        }
        match tls.diagnose(addr, timeout).await {
            Some(d) => NodeError::Tls(tls_words(d)),
            None => e,
        }
    }

    /// `AUTH [user] password` as a command's words, when credentials are configured.
    pub(crate) fn auth_args(&self) -> Option<Vec<String>> {
        let pass = self.auth.password.as_ref()?;
        let mut args = vec!["AUTH".to_string()];
        args.extend(self.auth.username.clone());
        args.push(pass.expose().to_string());
        Some(args)
    }

    /// The client library does not keep the node's answer to a failed AUTH; this asks again
    /// on a connection without credentials and turns the answer into what is wrong.
    pub(crate) async fn why_auth_failed(&self, addr: &NodeAddr, timeout: Duration) -> NodeError {
        let plain = match self.client(addr, false, options(timeout, Some(timeout))) {
            Ok(c) => c,
            Err(e) => return NodeError::from(e),
        };
        let mut auth = redis::cmd("AUTH");
        if let Some(user) = &self.auth.username {
            auth.arg(user);
        }
        if let Some(pass) = &self.auth.password {
            auth.arg(pass.expose());
        }
        let answer = async {
            let mut conn = open(plain, timeout).await?;
            auth.query_async::<()>(&mut conn)
                .await
                .map_err(NodeError::from)
        };
        let answer = tokio::time::timeout(timeout, answer)
            .await
            .unwrap_or(Err(NodeError::Timeout(timeout)));
        match answer {
            Err(NodeError::Auth(AuthProblem::WrongPass)) => {
                NodeError::Auth(match &self.auth.username {
                    Some(u) => AuthProblem::WrongUserOrPass(u.clone()),
                    None => AuthProblem::WrongPass,
                })
            }
            Err(NodeError::Reply(m)) if m.contains("without any password configured") => {
                NodeError::Auth(AuthProblem::NoPasswordSet)
            }
            Err(e @ NodeError::Auth(_)) => e,
            _ => NodeError::Auth(AuthProblem::Other(
                "the node refused the credentials".into(),
            )),
        }
    }

    /// Runs `f` on the connection kept from the last command to `addr` ([`KEEP`]) or on a
    /// new one, all within `ACT_TIMEOUT`. `f` must be safe to run twice: when the kept
    /// connection turns out broken (the node restarted, a network dropped it), `f` runs
    /// again on a new one. A connection is kept after a command that got an answer (even an
    /// error reply), not after a timeout.
    pub async fn act<T, F, Fut>(&self, addr: &NodeAddr, f: F) -> Result<T, NodeError>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = Result<T, NodeError>>,
    {
        let work = async {
            if let Some(conn) = self.take_kept(addr) {
                let r = self.run_keeping(addr, conn, &f).await;
                if !matches!(r, Err(NodeError::Connection(_))) {
                    return r;
                }
            }
            let conn = self.connect(addr, ACT_TIMEOUT, Some(ACT_TIMEOUT)).await?;
            self.run_keeping(addr, conn, &f).await
        };
        tokio::time::timeout(ACT_TIMEOUT, work)
            .await
            .unwrap_or(Err(NodeError::Timeout(ACT_TIMEOUT)))
    }

    /// Runs `f` on `conn`, then keeps `conn` if the node answered (even with an error reply).
    async fn run_keeping<T, F, Fut>(
        &self,
        addr: &NodeAddr,
        conn: MultiplexedConnection,
        f: &F,
    ) -> Result<T, NodeError>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = Result<T, NodeError>>,
    {
        let r = f(conn.clone()).await;
        if r.is_ok() || matches!(r, Err(NodeError::Reply(_))) {
            self.keep(addr, conn);
        }
        r
    }
}

/// Connection options: setup bounded by `connect_timeout`, each reply by `response_timeout`.
fn options(connect_timeout: Duration, response_timeout: Option<Duration>) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect_timeout))
        .set_response_timeout(response_timeout)
}

/// One try to open a connection, bounded by `connect_timeout`.
async fn open(
    (client, config): (redis::Client, AsyncConnectionConfig),
    connect_timeout: Duration,
) -> Result<MultiplexedConnection, NodeError> {
    match tokio::time::timeout(
        connect_timeout + Duration::from_millis(50),
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    {
        Ok(r) => r.map_err(NodeError::from),
        Err(_) => Err(NodeError::Timeout(connect_timeout)),
    }
}

/// What is wrong with the credentials, as far as the node says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthProblem {
    /// `-p` given, but the node has no password (`ERR AUTH <password> called without any
    /// password configured for the default user`).
    #[error("the node has no password set, but -p/--password was given")]
    NoPasswordSet,
    /// `WRONGPASS` for the default user.
    #[error("authentication failed: wrong password for the default user; check -p/--password")]
    WrongPass,
    /// `WRONGPASS` for an ACL user: Redis does not say whether the user is missing, disabled
    /// or the password wrong.
    #[error(
        "authentication failed: user {0:?} does not exist, is disabled, or has another \
         password (Redis does not say which); check --username and -p/--password"
    )]
    WrongUserOrPass(String),
    /// `NOAUTH`: the node has a password and none was given.
    #[error("authentication required: the node has a password; give -p/--password")]
    Required,
    /// `NOPERM`: logged in, but the user may not run a command the manager needs. Holds the
    /// node's reply (`NOPERM this user has no permissions to run the 'replicaof' command`);
    /// the message names the ACL rule to add ([`acl_rule_to_add`]).
    #[error(
        "the Redis user lacks a permission: {0}; add {rule} to its ACL (see {ACL_DOC})",
        rule = acl_rule_to_add(.0)
    )]
    NoPerm(String),
    /// Anything else.
    #[error("authentication failed ({0}); check -p/--password and --username")]
    Other(String),
}

/// Where the Redis users the manager and clients need are documented, named in the message
/// of a missing permission.
pub const ACL_DOC: &str = "docs/production.md#redis-users";

/// The key the crash detector parks its blocking read on is `_redis_failover_probe:<id>`.
const PROBE_KEYS: &str = "~_redis_failover_probe:*";

/// The ACL rule that lets the user do what a `NOPERM` reply refused: `+replicaof` for
/// `... to run the 'replicaof' command` (`+config|set` for a subcommand), the probe keys'
/// pattern for a key, or, when the reply says neither, `the rules it lacks` (the message
/// then points to the page that lists them). Redis 7.0 says
/// `this user has no permissions to run the 'x' command`, later versions and Valkey
/// `User u has no permissions to run the 'x' command`.
pub fn acl_rule_to_add(noperm: &str) -> String {
    let command = noperm
        .split_once("to run the '")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(name, _)| name.to_ascii_lowercase())
        .filter(|name| !name.is_empty() && !name.contains(char::is_whitespace));
    match command {
        Some(name) => format!("+{name}"),
        None if noperm.contains("key") => PROBE_KEYS.to_string(),
        None => "the rules it lacks".to_string(),
    }
}

/// Why a node did not answer as hoped, in words fit for a log line.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeError {
    #[error("no reply within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// No reply, although the node's host accepts TCP connections on its port at once: the
    /// process is hung (SIGSTOP, a blocking command), not cut off by the network.
    #[error("no reply within {} ms (its host accepts connections: the process is hung)", .0.as_millis())]
    Silent(Duration),
    #[error("{0}")]
    Auth(AuthProblem),
    #[error("does not speak the Redis protocol ({0}); is this port a Redis server?")]
    NotRedis(String),
    #[error("connection: {0}")]
    Connection(String),
    /// The TLS handshake failed for a reason of configuration (an untrusted certificate,
    /// no client certificate for a node that asks for one, a port without TLS).
    #[error("TLS: {0}")]
    Tls(String),
    /// The node's host refused the connection (nothing listens on the port, or a firewall
    /// rejects it: alone, this proves nothing).
    #[error("connection: {0}")]
    Refused(String),
    #[error("{0}")]
    Reply(String),
}

impl NodeError {
    /// The node is reachable and answers, but we are not allowed in, or it is not Redis:
    /// a configuration mistake rather than a failure of the node.
    pub fn is_config_mistake(&self) -> bool {
        matches!(
            self,
            NodeError::Auth(_) | NodeError::NotRedis(_) | NodeError::Tls(_)
        )
    }
}

impl From<RedisError> for NodeError {
    fn from(e: RedisError) -> Self {
        match e.code().unwrap_or("") {
            "NOAUTH" => return NodeError::Auth(AuthProblem::Required),
            "WRONGPASS" => return NodeError::Auth(AuthProblem::WrongPass),
            "NOPERM" => {
                // The node's own words, as the probe connection keeps them.
                let reply = format!("NOPERM {}", e.detail().unwrap_or(""));
                return NodeError::Auth(AuthProblem::NoPerm(reply.replace(['\r', '\n'], " ")));
            }
            _ => {}
        }
        if e.kind() == ErrorKind::AuthenticationFailed {
            return NodeError::Auth(AuthProblem::Other(one_line(&e)));
        }
        if e.kind() == ErrorKind::Parse {
            return NodeError::NotRedis(one_line(&e));
        }
        if e.is_timeout() {
            return NodeError::Timeout(Duration::ZERO);
        }
        if e.is_connection_refusal() {
            return NodeError::Refused(one_line(&e));
        }
        if let Some(problem) = tls_problem(&one_line(&e)) {
            return NodeError::Tls(problem);
        }
        if e.is_io_error() || e.is_connection_dropped() {
            return NodeError::Connection(one_line(&e));
        }
        NodeError::Reply(one_line(&e))
    }
}

/// A TLS failure that configuration causes, from rustls' words, said with the flags to
/// check; `None` for anything else.
pub(crate) fn tls_problem(text: &str) -> Option<String> {
    redis_failover_client::TlsDiagnosis::from_text(text).map(tls_words)
}

/// What to tell the operator about a TLS failure.
fn tls_words(d: redis_failover_client::TlsDiagnosis) -> String {
    use redis_failover_client::TlsDiagnosis as D;
    match d {
        D::CertificateNotAccepted(d) => format!(
            "the node's certificate is not accepted ({d}); check --tls-ca-file and --tls-server-name"
        ),
        D::ClientCertificateRequired => "the node asks for a client certificate \
             (tls-auth-clients yes); give --tls-cert-file and --tls-key-file"
            .to_string(),
        D::Refused(d) => format!(
            "the node refused the handshake ({d}); check --tls-cert-file and --tls-key-file"
        ),
        D::NotTls(d) => {
            format!("the node does not speak TLS on this port ({d}); is it its tls-port?")
        }
    }
}

fn one_line(e: &RedisError) -> String {
    e.to_string().replace(['\r', '\n'], " ")
}

/// Reads `INFO replication` and `replica-priority` (from `CONFIG GET` when allowed, since a
/// master does not report it in `INFO`).
pub async fn read_info(conn: &mut MultiplexedConnection) -> Result<NodeInfo, NodeError> {
    read_info_with(conn, None).await
}

/// [`read_info`], with `replica-priority` as last read by `CONFIG GET` when the caller has
/// it (`known`): then only `INFO` is sent.
pub async fn read_info_with(
    conn: &mut MultiplexedConnection,
    known: Option<u32>,
) -> Result<NodeInfo, NodeError> {
    let text: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(conn)
        .await?;
    if known.is_some() {
        return parse_info_replication(&text, known).map_err(NodeError::NotRedis);
    }
    let priority: Option<u32> = match redis::cmd("CONFIG")
        .arg("GET")
        .arg("replica-priority")
        .query_async::<Vec<String>>(conn)
        .await
    {
        Ok(kv) => kv.get(1).and_then(|v| v.parse().ok()),
        // CONFIG may be renamed or forbidden by ACL; INFO's slave_priority then serves.
        Err(e) if e.kind() == ErrorKind::Io || e.is_timeout() => return Err(e.into()),
        Err(_) => None,
    };
    parse_info_replication(&text, priority).map_err(NodeError::NotRedis)
}

/// `INFO replication` (and `replica-priority` unless `known`), on a kept connection when
/// there is one: the promotion and re-pointing that follow use it again.
pub async fn info(
    connector: &Connector,
    addr: &NodeAddr,
    known: Option<u32>,
) -> Result<NodeInfo, NodeError> {
    connector
        .act(addr, |mut conn| async move {
            read_info_with(&mut conn, known).await
        })
        .await
}

/// `REPLICAOF NO ONE`, then waits until `ROLE` says master.
pub async fn promote(
    connector: &Connector,
    addr: &NodeAddr,
    known: Option<u32>,
) -> Result<NodeInfo, NodeError> {
    connector
        .act(addr, |mut conn| async move {
            // One round trip: `REPLICAOF NO ONE` takes effect before its reply, so the `ROLE`
            // and `INFO` queued behind it see the master it made (else `ROLE` is polled).
            let mut p = redis::pipe();
            p.cmd("REPLICAOF").arg("NO").arg("ONE");
            p.cmd("ROLE").cmd("INFO").arg("replication");
            let [_ok, role, text] = replies(&mut conn, &mut p).await?;
            let role: redis::Role = value(role)?;
            if matches!(role, redis::Role::Primary { .. }) {
                return parse_info(value(text)?, known);
            }
            confirm_master(&mut conn, known).await
        })
        .await
}

/// Polls `ROLE` until the node reports master (bounded by the caller's deadline), then
/// returns its fresh replication state (`replica-priority` read unless `known`).
async fn confirm_master(
    conn: &mut MultiplexedConnection,
    known: Option<u32>,
) -> Result<NodeInfo, NodeError> {
    let start = Instant::now();
    loop {
        let role: redis::Role = redis::cmd("ROLE").query_async(conn).await?;
        if matches!(role, redis::Role::Primary { .. }) {
            return read_info_with(conn, known).await;
        }
        if start.elapsed() > ACT_TIMEOUT {
            return Err(NodeError::Reply("ROLE still not master".into()));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `REPLICAOF host port`, then returns the node's fresh replication state, in one round
/// trip (`replica-priority` as `known` says, else as its `INFO` does).
pub async fn replicaof(
    connector: &Connector,
    addr: &NodeAddr,
    master: &NodeAddr,
    known: Option<u32>,
) -> Result<NodeInfo, NodeError> {
    connector
        .act(addr, |mut conn| async move {
            let mut p = redis::pipe();
            p.cmd("REPLICAOF").arg(&master.host).arg(master.port);
            p.cmd("INFO").arg("replication");
            let [_ok, text] = replies(&mut conn, &mut p).await?;
            parse_info(value(text)?, known)
        })
        .await
}

/// Sends `p` (`N` commands) in one round trip and returns their replies, or the first
/// error reply as that command alone would have returned it.
async fn replies<const N: usize>(
    conn: &mut MultiplexedConnection,
    p: &mut redis::Pipeline,
) -> Result<[redis::Value; N], NodeError> {
    let all: Vec<redis::Value> = p.ignore_errors().query_async(conn).await?;
    let all = all
        .into_iter()
        .map(|v| v.extract_error().map_err(NodeError::from))
        .collect::<Result<Vec<_>, _>>()?;
    all.try_into().map_err(|v: Vec<_>| {
        NodeError::NotRedis(format!("{} replies to a pipeline of {N} commands", v.len()))
    })
}

/// A reply of [`replies`] as `T`; another shape is not Redis as we know it.
fn value<T: redis::FromRedisValue>(v: redis::Value) -> Result<T, NodeError> {
    redis::from_redis_value(v).map_err(|e| NodeError::NotRedis(e.to_string()))
}

fn parse_info(text: String, known: Option<u32>) -> Result<NodeInfo, NodeError> {
    parse_info_replication(&text, known).map_err(NodeError::NotRedis)
}

/// `CONFIG SET min-replicas-to-write k min-replicas-max-lag L` (see `core/fence.rs`).
pub async fn set_fence(
    connector: &Connector,
    addr: &NodeAddr,
    setting: FenceSetting,
) -> Result<(), NodeError> {
    connector
        .act(addr, |mut conn| async move {
            let _: String = redis::cmd("CONFIG")
                .arg("SET")
                .arg("min-replicas-to-write")
                .arg(setting.min_replicas)
                .arg("min-replicas-max-lag")
                .arg(setting.max_lag_secs)
                .query_async(&mut conn)
                .await?;
            Ok(())
        })
        .await
}

/// The replication guard on one node (`core/guard.rs`): the replication user (created or
/// reset, never saved to a file) and the node's own `masteruser`/`masterauth`, used while it
/// is a replica.
pub async fn set_guard(
    connector: &Connector,
    addr: &NodeAddr,
    credential: &Credential,
) -> Result<(), NodeError> {
    connector
        .act(addr, |mut conn| async move {
            let mut acl = redis::cmd("ACL");
            acl.arg("SETUSER").arg(credential.user());
            for rule in guard::USER_RULES {
                acl.arg(rule);
            }
            acl.arg(format!(">{}", credential.password()));
            let _: String = acl.query_async(&mut conn).await?;
            let _: String = redis::cmd("CONFIG")
                .arg("SET")
                .arg("masteruser")
                .arg(credential.user())
                .arg("masterauth")
                .arg(credential.password())
                .query_async(&mut conn)
                .await?;
            Ok(())
        })
        .await
}

/// Confirms the node answers as a master and returns its state.
pub async fn check_master(
    connector: &Connector,
    addr: &NodeAddr,
    known: Option<u32>,
) -> Result<NodeInfo, NodeError> {
    connector
        .act(addr, |mut conn| async move {
            confirm_master(&mut conn, known).await
        })
        .await
}

/// A planned switchover: `FAILOVER TO host port TIMEOUT ms` on the live master, which pauses
/// its writers, waits until `to` has all of its replication stream, then hands over (and
/// becomes a replica of `to`), so no acknowledged write is lost. Waits (bounded by `timeout`
/// plus a second) until `to` answers as master; aborts the `FAILOVER` if it does not.
pub async fn switchover(
    connector: &Connector,
    master: &NodeAddr,
    to: &NodeAddr,
    timeout: Duration,
) -> Result<NodeInfo, NodeError> {
    let ms = timeout.as_millis() as u64;
    connector
        .act(master, |mut conn| async move {
            let _: String = redis::cmd("FAILOVER")
                .arg("TO")
                .arg(&to.host)
                .arg(to.port)
                .arg("TIMEOUT")
                .arg(ms)
                .query_async(&mut conn)
                .await?;
            Ok(())
        })
        .await?;
    let deadline = Instant::now() + timeout + Duration::from_secs(1);
    loop {
        if let Ok(info) = info(connector, to, None).await {
            if info.is_master() {
                return Ok(info);
            }
        }
        if Instant::now() > deadline {
            let aborted = connector
                .act(master, |mut conn| async move {
                    let _: redis::Value = redis::cmd("FAILOVER")
                        .arg("ABORT")
                        .query_async(&mut conn)
                        .await?;
                    Ok(())
                })
                .await;
            let aborted = match aborted {
                Ok(()) => "aborted".to_string(),
                Err(e) => format!("FAILOVER ABORT failed: {e}"),
            };
            return Err(NodeError::Reply(format!(
                "{to} did not become master within {} ms of FAILOVER TO; {aborted}",
                timeout.as_millis()
            )));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The connection's own address as the node sees it (`CLIENT INFO`'s `addr=`): another
    /// connection has another port, also after a restart of the node.
    async fn client_id(connector: &Connector, addr: &NodeAddr) -> Result<String, NodeError> {
        let info: String = connector
            .act(addr, |mut conn| async move {
                Ok(redis::cmd("CLIENT")
                    .arg("INFO")
                    .query_async(&mut conn)
                    .await?)
            })
            .await?;
        let own = info.split(' ').find(|kv| kv.starts_with("addr="));
        Ok(own.expect("CLIENT INFO names addr=").to_string())
    }

    #[tokio::test]
    async fn a_command_s_connection_is_kept_for_the_next_one_and_replaced_when_broken() {
        use redis_failover_tests::{free_port, RedisNode};
        let dir = tempfile::tempdir().expect("temp dir");
        let node = RedisNode::start(dir.path(), free_port(), None, &[]);
        let addr = node.node_addr();
        let connector = Connector::new(Default::default());
        let first = client_id(&connector, &addr).await.expect("first command");
        let again = client_id(&connector, &addr).await.expect("second command");
        assert_eq!(
            first, again,
            "the second command runs on the first one's connection"
        );
        // A clone (as each task of the daemon holds) shares what is kept.
        let clone = connector.clone();
        assert_eq!(
            client_id(&clone, &addr).await.expect("third command"),
            first
        );
        // The node restarts: the kept connection is broken; the command still runs, once,
        // on a new connection.
        node.restart(None);
        let after = client_id(&connector, &addr).await.expect("after a restart");
        assert_ne!(after, first, "a new connection after the restart");
        assert_eq!(
            client_id(&connector, &addr).await.expect("kept again"),
            after
        );
        // An error reply leaves the connection usable: kept.
        let refused = connector
            .act(&addr, |mut conn| async move {
                Ok(redis::cmd("NO-SUCH-COMMAND")
                    .query_async::<()>(&mut conn)
                    .await?)
            })
            .await;
        assert!(matches!(refused, Err(NodeError::Reply(_))), "{refused:?}");
        assert_eq!(
            client_id(&connector, &addr).await.expect("still kept"),
            after
        );
        // Closed once unused for KEEP.
        tokio::time::pause();
        tokio::time::advance(KEEP - Duration::from_millis(100)).await;
        assert_eq!(connector.kept().len(), 1, "kept until KEEP has passed");
        tokio::time::advance(Duration::from_millis(200)).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(connector.kept().is_empty(), "closed after KEEP unused");
    }

    fn message(reply: &str) -> String {
        NodeError::Auth(AuthProblem::NoPerm(reply.to_string())).to_string()
    }

    #[test]
    fn a_missing_permission_names_the_rule_to_add() {
        assert_eq!(
            message("NOPERM this user has no permissions to run the 'replicaof' command"),
            "the Redis user lacks a permission: NOPERM this user has no permissions to run the \
             'replicaof' command; add +replicaof to its ACL (see docs/production.md#redis-users)"
        );
        // Later Redis versions and Valkey name the user; subcommands are `command|sub`.
        assert_eq!(
            acl_rule_to_add(
                "NOPERM User redis-failover has no permissions to run the 'config|set' command"
            ),
            "+config|set"
        );
        assert_eq!(
            acl_rule_to_add(
                "NOPERM this user has no permissions to access one of the keys used as arguments"
            ),
            "~_redis_failover_probe:*"
        );
        assert_eq!(
            acl_rule_to_add("NOPERM No permissions to access a key"),
            "~_redis_failover_probe:*"
        );
        assert_eq!(
            acl_rule_to_add("NOPERM something new"),
            "the rules it lacks"
        );
    }

    #[test]
    fn a_noperm_reply_is_kept_as_the_node_sent_it() {
        let reply = "NOPERM this user has no permissions to run the 'failover' command";
        let e = redis::parse_redis_value(format!("-{reply}\r\n").as_bytes())
            .and_then(redis::Value::extract_error)
            .expect_err("an error reply");
        match NodeError::from(e) {
            NodeError::Auth(AuthProblem::NoPerm(text)) => assert_eq!(text, reply),
            other => panic!("not NoPerm: {other:?}"),
        }
    }
}
