//! The manager's ZooKeeper session: opened at start, kept in a `watch` channel that every
//! task reads, and replaced by a new one (with backoff) after it expires.

use std::time::Duration;

use redis_failover_client::session;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use zookeeper_client as zk;

use crate::core::event_names::{ZK_DISCONNECTED, ZK_RECONNECTED, ZK_SESSION, ZK_SESSION_ENDED};

use super::{ZkError, ZK_OP_TIMEOUT};
use crate::config::ZkAccess;

/// Connects within `wait` or says why not.
pub async fn connect(
    servers: &str,
    access: &ZkAccess,
    session_timeout: Duration,
    wait: Duration,
) -> Result<zk::Client, ZkError> {
    session::connect_as(servers, access.session(), session_timeout, wait)
        .await
        .map_err(|e| ZkError::Connect(explain(&e)))
}

/// `e` in one line, with what to check, named by flag.
fn explain(e: &session::SessionError) -> String {
    use redis_failover_client::TlsDiagnosis;
    use session::SessionError;
    match e {
        // Says already what to check.
        SessionError::ConnectionRefused { .. } => e.to_string(),
        SessionError::Tls {
            servers,
            addr,
            diagnosis,
        } => {
            let what = match diagnosis {
                TlsDiagnosis::CertificateNotAccepted(d) => format!(
                    "the server's certificate is not accepted ({d}); check --zk-tls-ca-file \
                     (the CA that signs the servers' certificates, for their hosts as -z gives them)"
                ),
                TlsDiagnosis::ClientCertificateRequired => "the server asks for a client \
                     certificate (ssl.clientAuth=need); give --zk-tls-cert-file and --zk-tls-key-file"
                    .to_string(),
                TlsDiagnosis::Refused(d) => format!(
                    "the server refused the handshake ({d}); check --zk-tls-cert-file (the \
                     servers' ssl.trustStore must trust it)"
                ),
                TlsDiagnosis::NotTls(d) => format!(
                    "the server does not speak TLS on this port ({d}); -z/--zkservers must \
                     list the servers' secureClientPort"
                ),
            };
            format!("cannot connect to ZooKeeper at {servers}: TLS with {addr}: {what}")
        }
        SessionError::BadTls(_) => {
            format!("{e}; check --zk-tls-ca-file, --zk-tls-cert-file and --zk-tls-key-file")
        }
        _ => format!("{e}; check -z/--zkservers and that ZooKeeper is running"),
    }
}

/// Keeps a live session in `tx`: `Some(client)` while the session lives (connected or
/// not), `None` between an expiry and the next session.
pub async fn keep_session(
    servers: String,
    access: ZkAccess,
    session_timeout: Duration,
    first: zk::Client,
    tx: watch::Sender<Option<zk::Client>>,
    shutdown: CancellationToken,
) {
    let mut client = first;
    loop {
        let mut states = client.state_watcher();
        tx.send_replace(Some(client.clone()));
        loop {
            let state = tokio::select! {
                s = states.changed() => s,
                _ = shutdown.cancelled() => {
                    tx.send_replace(None);
                    drop(client);
                    // The session closes once the other tasks drop their clones too; wait
                    // (bounded) so that the process does not exit before it is sent.
                    let closed = tokio::time::timeout(ZK_OP_TIMEOUT, async {
                        while !states.changed().await.is_terminated() {}
                    })
                    .await;
                    if closed.is_ok() {
                        info!("{ZK_SESSION_ENDED}: ZooKeeper session closed");
                    }
                    return;
                }
            };
            match state {
                zk::SessionState::Disconnected => warn!(
                    "{ZK_DISCONNECTED}: lost the ZooKeeper connection; standing by until it returns"
                ),
                zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                    info!(
                        "{ZK_RECONNECTED}: ZooKeeper session {} resumed",
                        client.session_id()
                    )
                }
                terminal => {
                    warn!(
                        "{ZK_SESSION_ENDED}: ZooKeeper session {} ended ({terminal}); opening a new one",
                        client.session_id()
                    );
                    break;
                }
            }
        }
        tx.send_replace(None);
        drop(client);
        let reconnect = session::reconnect_as(
            &servers,
            access.session(),
            session_timeout,
            Duration::from_millis(200),
            |e| warn!("{ZK_SESSION_ENDED}: {}; retrying", explain(e)),
        );
        client = tokio::select! {
            c = reconnect => c,
            _ = shutdown.cancelled() => return,
        };
        info!(
            "{ZK_SESSION}: new ZooKeeper session {}",
            client.session_id()
        );
    }
}
