//! Opening ZooKeeper sessions, for the client and the node manager alike: [`connect`] (one
//! bounded try, with an error that names the servers), [`reconnect`] (patiently, with
//! backoff, after a session ended), and [`timed`] (one bounded request, with an error that
//! names what was done to which znode).
//!
//! A session survives a dropped connection (the library reconnects within the session
//! timeout and keeps the watches); only an expired or closed session needs a new one. The
//! owner of a session loop looks like this:
//!
//! ```no_run
//! # use std::time::Duration;
//! # use redis_failover_client::session;
//! # async fn run() -> Result<(), session::SessionError> {
//! let servers = "127.0.0.1:2181";
//! let timeout = Duration::from_secs(10);
//! let mut client = session::connect(servers, timeout, timeout).await?;
//! loop {
//!     // ... use `client` until its state watcher reports a terminal state ...
//!     # break;
//!     client = session::reconnect(servers, timeout, Duration::from_millis(100), |e| {
//!         eprintln!("{e}; retrying");
//!     })
//!     .await;
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::time::Duration;

use zookeeper_client as zk;

use crate::tls::{Tls, TlsDiagnosis};
use crate::wire::NodeAddr;

/// The longest wait between two tries of [`reconnect`].
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// Why no session could be opened.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Every server refused the TCP connection, also after a short grace for a ZooKeeper
    /// that is just starting: nothing listens there.
    #[error("cannot connect to ZooKeeper at {servers}: connection refused (is ZooKeeper running there?)")]
    ConnectionRefused {
        /// The connection string.
        servers: String,
    },
    /// ZooKeeper answered, and refused (or the connection string is wrong).
    #[error("cannot connect to ZooKeeper at {servers}: {source}")]
    Refused {
        /// The connection string.
        servers: String,
        /// ZooKeeper's answer.
        #[source]
        source: zk::Error,
    },
    /// A TLS handshake with a server fails for a reason of configuration (its certificate
    /// not trusted, a client certificate required or refused, a port without TLS).
    #[error("cannot connect to ZooKeeper at {servers}: TLS with {addr}: {}", tls_failure(.diagnosis))]
    Tls {
        /// The connection string.
        servers: String,
        /// The server that refused.
        addr: NodeAddr,
        /// Why.
        diagnosis: TlsDiagnosis,
    },
    /// The TLS settings cannot be used (the message says which part and why).
    #[error("ZooKeeper TLS settings: {0}")]
    BadTls(#[source] crate::TlsError),
    /// No session within the wait: a server accepts connections but does not answer, or the
    /// addresses lead nowhere.
    #[error("cannot connect to ZooKeeper at {servers}: no answer within {} ms", wait.as_millis())]
    Unreachable {
        /// The connection string.
        servers: String,
        /// How long it waited.
        wait: Duration,
    },
}

/// What a failed TLS handshake with a ZooKeeper server means, and what to check in
/// [`ClientBuilder::zookeeper_tls`](crate::ClientBuilder::zookeeper_tls).
fn tls_failure(diagnosis: &TlsDiagnosis) -> String {
    match diagnosis {
        TlsDiagnosis::CertificateNotAccepted(d) => format!(
            "the server's certificate is not accepted ({d}); check the CA given to zookeeper_tls"
        ),
        TlsDiagnosis::ClientCertificateRequired => "the server asks for a client certificate \
             (ssl.clientAuth=need); give one with Tls::client_cert to zookeeper_tls"
            .to_string(),
        TlsDiagnosis::Refused(d) => format!(
            "the server refused the handshake ({d}); check the client certificate given to \
             zookeeper_tls"
        ),
        TlsDiagnosis::NotTls(d) => {
            format!("the server does not speak TLS on this port ({d}); give its secureClientPort")
        }
    }
}

/// How a session reaches ZooKeeper besides the servers: an identity and TLS.
#[derive(Clone, Copy, Default)]
pub struct Options<'a> {
    /// `(scheme, auth)`, e.g. `("digest", b"user:password")`: ZooKeeper checks it on every
    /// connection of the session.
    pub auth: Option<(&'a str, &'a [u8])>,
    /// TLS to every server (their `secureClientPort`); `None`: plain TCP.
    pub tls: Option<&'a Tls>,
}

/// How long [`connect`] keeps trying servers that refuse the connection (ZooKeeper may be
/// starting) before it says so.
pub const REFUSED_GRACE: Duration = Duration::from_millis(1500);
/// A session usually opens within milliseconds; the servers are only probed when it did not.
const PROBE_AFTER: Duration = Duration::from_millis(200);
/// The pause between two probes of servers that refused.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// The bound of one probe's TCP connect.
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Opens a session on `servers` (`host:port,...[/chroot]`) with `session_timeout`, giving up
/// after `wait`. When every server refuses the TCP connection (for [`REFUSED_GRACE`]), it
/// gives up at once with [`SessionError::ConnectionRefused`] rather than after `wait`.
pub async fn connect(
    servers: &str,
    session_timeout: Duration,
    wait: Duration,
) -> Result<zk::Client, SessionError> {
    connect_as(servers, Options::default(), session_timeout, wait).await
}

/// [`connect`] with `options`: an identity, TLS. With TLS, a handshake that fails for a
/// reason of configuration is reported at once ([`SessionError::Tls`]).
pub async fn connect_as(
    servers: &str,
    options: Options<'_>,
    session_timeout: Duration,
    wait: Duration,
) -> Result<zk::Client, SessionError> {
    let start = tokio::time::Instant::now();
    let mut connector = zk::Client::connector();
    if let Some((scheme, auth)) = options.auth {
        connector = connector.with_auth(scheme, auth);
    }
    if let Some(tls) = options.tls {
        connector = connector.with_tls(tls.zookeeper_options().map_err(SessionError::BadTls)?);
    }
    let connector = connector.with_session_timeout(session_timeout);
    let connecting = async {
        match options.tls {
            // Every server without a scheme over TLS.
            Some(_) => connector.secure_connect(servers).await,
            None => connector.connect(servers).await,
        }
    };
    let refused = async {
        tokio::time::sleep(PROBE_AFTER).await;
        all_refuse(servers).await
    };
    let misconfigured = async {
        tokio::time::sleep(PROBE_AFTER).await;
        match options.tls {
            Some(tls) => tls_trouble(tls, servers).await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        r = tokio::time::timeout(wait, connecting) => r,
        true = refused => {
            return Err(SessionError::ConnectionRefused { servers: servers.to_string() });
        }
        (addr, diagnosis) = misconfigured => {
            return Err(SessionError::Tls { servers: servers.to_string(), addr, diagnosis });
        }
    };
    match result {
        Ok(Ok(c)) => Ok(c),
        // The library gave up within its session timeout.
        Ok(Err(zk::Error::Timeout)) => Err(SessionError::Unreachable {
            servers: servers.to_string(),
            wait: start.elapsed().min(wait),
        }),
        Ok(Err(source)) => Err(SessionError::Refused {
            servers: servers.to_string(),
            source,
        }),
        Err(_) => Err(SessionError::Unreachable {
            servers: servers.to_string(),
            wait,
        }),
    }
}

/// The `host:port`s of `servers`, unless it cannot be parsed into them (the session attempt
/// then says what is wrong).
fn server_addrs(servers: &str) -> Option<Vec<&str>> {
    let hosts = servers.split('/').next().unwrap_or("");
    let addrs: Vec<&str> = hosts.split(',').map(str::trim).collect();
    if addrs.is_empty() || addrs.iter().any(|a| a.is_empty() || !a.contains(':')) {
        return None;
    }
    Some(addrs)
}

/// The first server of `servers` and why its TLS handshake fails ([`Tls::diagnose`]), once
/// every server's fails for a reason of configuration; pending while one accepts it (or is
/// out of reach: the session attempt then says so).
async fn tls_trouble(tls: &Tls, servers: &str) -> (NodeAddr, TlsDiagnosis) {
    let addrs: Vec<NodeAddr> = server_addrs(servers)
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    let diagnoses = futures::future::join_all(
        addrs
            .iter()
            .map(|a| tls.diagnose(a, PROBE_CONNECT_TIMEOUT * 4)),
    )
    .await;
    match diagnoses.into_iter().collect::<Option<Vec<_>>>() {
        Some(all) if !all.is_empty() => (addrs[0].clone(), all[0].clone()),
        _ => std::future::pending().await,
    }
}

/// `true` once every server of `servers` has refused TCP connections for [`REFUSED_GRACE`];
/// never returns (pending) as soon as one accepts, answers otherwise, or the string cannot be
/// parsed into `host:port`s (the session attempt then says what is wrong).
async fn all_refuse(servers: &str) -> bool {
    let Some(addrs) = server_addrs(servers) else {
        return std::future::pending().await;
    };
    let deadline = tokio::time::Instant::now() + REFUSED_GRACE;
    loop {
        for addr in &addrs {
            if !probe_refused(addr).await {
                return std::future::pending().await;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return true;
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// `true` when `addr` refuses a TCP connection (within [`PROBE_CONNECT_TIMEOUT`]); an
/// accepted connection is closed at once.
async fn probe_refused(addr: &str) -> bool {
    match tokio::time::timeout(PROBE_CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
        Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        Ok(Ok(_)) | Err(_) => false,
    }
}

/// Opens a new session, trying until one opens: each try waits up to `session_timeout`,
/// failed tries are reported to `on_error` and followed by a pause of `first_delay`,
/// doubled after each failure up to [`MAX_RECONNECT_DELAY`]. Cancel-safe: to stop trying
/// (shutdown), drop the future, e.g. in a `tokio::select!`.
pub async fn reconnect(
    servers: &str,
    session_timeout: Duration,
    first_delay: Duration,
    on_error: impl FnMut(&SessionError),
) -> zk::Client {
    reconnect_as(
        servers,
        Options::default(),
        session_timeout,
        first_delay,
        on_error,
    )
    .await
}

/// [`reconnect`] with `options`, as [`connect_as`].
pub async fn reconnect_as(
    servers: &str,
    options: Options<'_>,
    session_timeout: Duration,
    first_delay: Duration,
    mut on_error: impl FnMut(&SessionError),
) -> zk::Client {
    let mut delay = first_delay;
    loop {
        match connect_as(servers, options, session_timeout, session_timeout).await {
            Ok(c) => return c,
            Err(e) => on_error(&e),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RECONNECT_DELAY);
    }
}

/// What a ZooKeeper request was doing, as error messages say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `reading <path>`.
    Reading,
    /// `writing <path>` (create, set or delete).
    Writing,
    /// `updating <path>` (a conditional change of a znode the caller owns).
    Updating,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Reading => "reading",
            Op::Writing => "writing",
            Op::Updating => "updating",
        })
    }
}

/// A ZooKeeper request on `path` that failed: `reading /x/nodes: ...`,
/// `writing /x/manual_failover timed out`.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// No answer within the bound.
    #[error("{op} {path} timed out")]
    TimedOut {
        /// What was being done.
        op: Op,
        /// To which znode.
        path: String,
    },
    /// ZooKeeper answered with an error.
    #[error("{op} {path}: {source}")]
    Failed {
        /// What was being done.
        op: Op,
        /// To which znode.
        path: String,
        /// ZooKeeper's error (`NoNode`, `BadVersion`, `ConnectionLoss`, ...).
        #[source]
        source: zk::Error,
    },
}

impl OpError {
    /// ZooKeeper's own error, unless the request timed out.
    pub fn zk_error(&self) -> Option<&zk::Error> {
        match self {
            OpError::TimedOut { .. } => None,
            OpError::Failed { source, .. } => Some(source),
        }
    }
}

/// Runs one ZooKeeper request bounded by `limit`; a failure names `op` and `path`.
pub async fn timed<T>(
    op: Op,
    path: &str,
    limit: Duration,
    request: impl Future<Output = Result<T, zk::Error>>,
) -> Result<T, OpError> {
    match tokio::time::timeout(limit, request).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(OpError::Failed {
            op,
            path: path.to_string(),
            source,
        }),
        Err(_) => Err(OpError::TimedOut {
            op,
            path: path.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_before() {
        let e = SessionError::Unreachable {
            servers: "h:2181".into(),
            wait: Duration::from_millis(1500),
        };
        assert_eq!(
            e.to_string(),
            "cannot connect to ZooKeeper at h:2181: no answer within 1500 ms"
        );
        let e = SessionError::ConnectionRefused {
            servers: "h:2181".into(),
        };
        assert_eq!(
            e.to_string(),
            "cannot connect to ZooKeeper at h:2181: connection refused (is ZooKeeper running there?)"
        );
        let e = SessionError::Refused {
            servers: "h:2181".into(),
            source: zk::Error::SessionExpired,
        };
        assert_eq!(
            e.to_string(),
            format!(
                "cannot connect to ZooKeeper at h:2181: {}",
                zk::Error::SessionExpired
            )
        );
        let e = OpError::TimedOut {
            op: Op::Writing,
            path: "/r/manual_failover".into(),
        };
        assert_eq!(e.to_string(), "writing /r/manual_failover timed out");
        assert!(e.zk_error().is_none());
        let e = OpError::Failed {
            op: Op::Reading,
            path: "/r/nodes".into(),
            source: zk::Error::NoNode,
        };
        assert_eq!(
            e.to_string(),
            format!("reading /r/nodes: {}", zk::Error::NoNode)
        );
        assert!(matches!(e.zk_error(), Some(zk::Error::NoNode)));
    }

    /// A port nothing listens on: refused quickly (after the grace), not after the wait.
    #[tokio::test]
    async fn refused_connections_are_reported_quickly() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let servers = format!("127.0.0.1:{port}");
        let started = std::time::Instant::now();
        let wait = Duration::from_secs(10);
        let e = connect(&servers, wait, wait).await.expect_err("no session");
        assert!(matches!(e, SessionError::ConnectionRefused { .. }), "{e}");
        assert!(e.to_string().contains("connection refused"), "{e}");
        assert!(
            started.elapsed() >= REFUSED_GRACE,
            "{:?}",
            started.elapsed()
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    /// A server that accepts but never answers: "no answer within" the wait.
    #[tokio::test]
    async fn a_silent_server_is_reported_as_no_answer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let servers = listener.local_addr().expect("addr").to_string();
        let wait = Duration::from_millis(2500);
        let started = std::time::Instant::now();
        let e = connect(&servers, Duration::from_secs(10), wait)
            .await
            .expect_err("no session");
        assert!(matches!(e, SessionError::Unreachable { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!("cannot connect to ZooKeeper at {servers}: no answer within 2500 ms")
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(listener);
    }

    #[tokio::test]
    async fn timed_bounds_a_request() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<(), zk::Error>(())
        };
        let r = timed(Op::Reading, "/p", Duration::from_millis(10), slow).await;
        assert!(matches!(
            r,
            Err(OpError::TimedOut {
                op: Op::Reading,
                ..
            })
        ));
        let r = timed(Op::Reading, "/p", Duration::from_secs(1), async {
            Err::<(), _>(zk::Error::NoNode)
        })
        .await;
        assert!(matches!(r, Err(OpError::Failed { .. })));
    }
}
