//! TLS to the Redis nodes ([`Tls`]): the CA that signs their certificates, an optional client
//! certificate (for `tls-auth-clients yes`) and an optional name to verify them by. Shared
//! by the client ([`crate::ClientBuilder::tls`]) and `redis_node_manager`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use redis::io::AsyncDNSResolver;
use redis::{
    AsyncConnectionConfig, ClientTlsConfig, ConnectionAddr, IntoConnectionInfo, RedisFuture,
    RedisResult, TlsCertificates,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::wire::NodeAddr;

/// TLS settings for every connection to Redis (PEM contents, not paths).
///
/// Nodes are verified against the CA certificates given, never the system's; the name
/// verified is the node's host as published (an IP address or a DNS name) unless
/// [`Tls::server_name`] gives one for all nodes.
///
/// ```
/// use redis_failover_client::Tls;
/// # fn pem() -> Vec<u8> { Vec::new() }
/// let tls = Tls::new(pem() /* ca.crt */)
///     .client_cert(pem() /* client.crt */, pem() /* client.key */)
///     .server_name("redis.internal");
/// # let _ = tls;
/// ```
#[derive(Clone)]
pub struct Tls {
    ca: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    server_name: Option<String>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("client_cert", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Which part of [`Tls`] is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsPart {
    /// The CA certificates.
    Ca,
    /// The client certificate.
    ClientCert,
    /// The client certificate's private key.
    ClientKey,
    /// The server name.
    ServerName,
}

/// A [`Tls`] setting that cannot be used, and why.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{}: {reason}", match .part {
    TlsPart::Ca => "CA certificate",
    TlsPart::ClientCert => "client certificate",
    TlsPart::ClientKey => "client key",
    TlsPart::ServerName => "server name",
})]
pub struct TlsError {
    /// What is wrong.
    pub part: TlsPart,
    /// Why, in one line.
    pub reason: String,
}

fn bad(part: TlsPart, reason: impl std::fmt::Display) -> TlsError {
    TlsError {
        part,
        reason: reason.to_string().replace(['\r', '\n'], " "),
    }
}

impl Tls {
    /// Trusts the CA certificate(s) in `ca_pem` (PEM) to sign the nodes' certificates.
    pub fn new(ca_pem: impl Into<Vec<u8>>) -> Self {
        Tls {
            ca: ca_pem.into(),
            identity: None,
            server_name: None,
        }
    }

    /// Presents this certificate (PEM, its chain after it) and private key (PEM) to the
    /// nodes, for `tls-auth-clients yes`.
    pub fn client_cert(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Verifies every node's certificate for `name` (and sends it as SNI) instead of the
    /// node's host.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Checks that the PEM holds a CA certificate, that the client certificate and key (if
    /// any) parse and belong together, and that the server name (if any) is a valid name.
    pub fn check(&self) -> Result<(), TlsError> {
        self.rustls_config().map(|_| ())
    }

    /// The name a node's certificate is verified for.
    #[doc(hidden)]
    pub fn name_for<'a>(&'a self, addr: &'a NodeAddr) -> &'a str {
        self.server_name.as_deref().unwrap_or(&addr.host)
    }

    /// The rustls configuration these settings describe (for connections made without the
    /// redis crate).
    #[doc(hidden)]
    pub fn rustls_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        install_crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.ca) {
            let cert = cert.map_err(|e| bad(TlsPart::Ca, format!("not PEM ({e})")))?;
            roots
                .add(cert)
                .map_err(|e| bad(TlsPart::Ca, format!("not a usable CA certificate ({e})")))?;
        }
        if roots.is_empty() {
            return Err(bad(TlsPart::Ca, "no PEM certificate in it"));
        }
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(TlsPart::ClientCert, format!("not PEM ({e})")))?;
                if chain.is_empty() {
                    return Err(bad(TlsPart::ClientCert, "no PEM certificate in it"));
                }
                let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| {
                    bad(
                        TlsPart::ClientKey,
                        format!("no PEM private key in it ({e})"),
                    )
                })?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    bad(
                        TlsPart::ClientKey,
                        format!("does not fit the client certificate ({e})"),
                    )
                })?
            }
        };
        if let Some(name) = &self.server_name {
            ServerName::try_from(name.as_str())
                .map_err(|e| bad(TlsPart::ServerName, format!("{name:?}: {e}")))?;
        }
        Ok(Arc::new(config))
    }

    /// A redis crate client for `addr` over TLS, and `config` with what it needs to reach
    /// the node when the name verified is not its host.
    #[doc(hidden)]
    pub fn redis_client(
        &self,
        addr: &NodeAddr,
        settings: redis::RedisConnectionInfo,
        config: AsyncConnectionConfig,
    ) -> RedisResult<(redis::Client, AsyncConnectionConfig)> {
        install_crypto_provider();
        let name = self.name_for(addr).to_string();
        let info = ConnectionAddr::TcpTls {
            host: name.clone(),
            port: addr.port,
            insecure: false,
            tls_params: None,
        }
        .into_connection_info()?
        .set_redis_settings(settings);
        let certs = TlsCertificates {
            client_tls: self.identity.as_ref().map(|(cert, key)| ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.clone(),
            }),
            root_cert: Some(self.ca.clone()),
        };
        let client = redis::Client::build_with_tls(info, certs)?;
        // The redis crate verifies the certificate for the host it connects to: it is given
        // the server name as host, and this resolver takes it to the node's address.
        let config = if name != addr.host {
            config.set_dns_resolver(Pinned(addr.clone()))
        } else {
            config
        };
        Ok((client, config))
    }
}

impl Tls {
    /// These settings for the ZooKeeper client (which verifies each server's certificate for
    /// its host as given in the connection string: a server name cannot be set).
    pub(crate) fn zookeeper_options(&self) -> Result<zookeeper_client::TlsOptions, TlsError> {
        self.check()?;
        if let Some(name) = &self.server_name {
            return Err(bad(
                TlsPart::ServerName,
                format!("{name:?}: ZooKeeper servers are verified for their host as given"),
            ));
        }
        install_crypto_provider();
        let text = |part: TlsPart, pem: &[u8]| {
            std::str::from_utf8(pem)
                .map(str::to_string)
                .map_err(|_| bad(part, "not PEM (not text)"))
        };
        let options = zookeeper_client::TlsOptions::new()
            .with_pem_ca(&text(TlsPart::Ca, &self.ca)?)
            .map_err(|e| bad(TlsPart::Ca, e))?;
        match &self.identity {
            None => Ok(options),
            Some((cert, key)) => options
                .with_pem_identity(
                    &text(TlsPart::ClientCert, cert)?,
                    &text(TlsPart::ClientKey, key)?,
                )
                .map_err(|e| bad(TlsPart::ClientCert, e)),
        }
    }
}

/// Makes ring rustls' crypto provider for the process, once. The ZooKeeper client's TLS
/// brings rustls' other provider (aws-lc-rs) along, and rustls then picks neither by
/// itself; every TLS setup here (and the redis crate's, and the manager's endpoints) calls
/// this first.
#[doc(hidden)]
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err: a provider is installed already (by the program), which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// `e`, or, when TLS with the node fails for a reason of configuration
/// ([`Tls::diagnose`]), an error that says so in one line, with what to check.
pub(crate) async fn explain(
    tls: &Tls,
    addr: &NodeAddr,
    e: redis::RedisError,
    timeout: Duration,
) -> redis::RedisError {
    // A node that is down or out of reach says nothing about TLS; not asked again.
    if e.is_timeout() || e.is_connection_refusal() {
        return e;
    }
    let why = match tls.diagnose(addr, timeout).await {
        None => return e,
        Some(TlsDiagnosis::CertificateNotAccepted(d)) => format!(
            "TLS with {addr}: the node's certificate is not accepted ({d}); check the CA \
             given to Tls::new and Tls::server_name"
        ),
        Some(TlsDiagnosis::ClientCertificateRequired) => format!(
            "TLS with {addr}: the node asks for a client certificate (tls-auth-clients yes); \
             give one with Tls::client_cert"
        ),
        Some(TlsDiagnosis::Refused(d)) => format!(
            "TLS with {addr}: the node refused the handshake ({d}); check the certificate \
             given to Tls::client_cert"
        ),
        Some(TlsDiagnosis::NotTls(d)) => {
            format!("TLS with {addr}: the node does not speak TLS on this port ({d})")
        }
    };
    crate::error::io_error(why)
}

/// Why TLS with a node fails, found by [`Tls::diagnose`].
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsDiagnosis {
    /// The node's certificate is not trusted or not for the name verified (rustls' words).
    CertificateNotAccepted(String),
    /// The node asked for a client certificate and none is configured.
    ClientCertificateRequired,
    /// The node refused the handshake after it (rustls' words: the alert it sent).
    Refused(String),
    /// The port does not speak TLS (rustls' words).
    NotTls(String),
}

impl Tls {
    /// Opens a TLS connection to `addr` within `timeout` only to see whether, and why, the
    /// node refuses it: `None` when it accepts it (or cannot be reached: that is for the
    /// caller's own error to say). Under TLS 1.3 the node checks a client certificate after
    /// the handshake has completed on this side, and its refusal may be lost to a broken
    /// pipe on a connection that writes at once: this one waits for it without writing.
    #[doc(hidden)]
    pub async fn diagnose(&self, addr: &NodeAddr, timeout: Duration) -> Option<TlsDiagnosis> {
        use tokio::io::AsyncReadExt;
        let asked = Arc::new(Asked::default());
        let config = match (self.rustls_config(), &self.identity) {
            (Err(_), _) => return None,
            (Ok(config), Some(_)) => config,
            (Ok(config), None) => {
                let mut config = (*config).clone();
                config.client_auth_cert_resolver = asked.clone();
                Arc::new(config)
            }
        };
        let name = ServerName::try_from(self.name_for(addr).to_string()).ok()?;
        let required = || {
            asked
                .0
                .load(std::sync::atomic::Ordering::Relaxed)
                .then_some(TlsDiagnosis::ClientCertificateRequired)
        };
        let work = async {
            let tcp = tokio::net::TcpStream::connect((addr.host.as_str(), addr.port))
                .await
                .ok()?;
            let mut tls = match tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
            {
                Ok(tls) => tls,
                // Under TLS 1.2 the refusal of a missing client certificate ends the
                // handshake itself (ZooKeeper's alert is BadCertificate).
                Err(e) => {
                    return match classify(&e.to_string()) {
                        Some(d @ TlsDiagnosis::CertificateNotAccepted(_)) => Some(d),
                        other => required().or(other),
                    }
                }
            };
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_millis(500), tls.read(&mut byte)).await;
            match read {
                // Nothing said within the wait: the node accepted the connection.
                Err(_) => None,
                Ok(Err(e)) => required().or_else(|| classify(&e.to_string())),
                Ok(Ok(_)) => required(),
            }
        };
        tokio::time::timeout(timeout, work).await.ok().flatten()
    }
}

fn classify(text: &str) -> Option<TlsDiagnosis> {
    TlsDiagnosis::from_text(text)
}

impl TlsDiagnosis {
    /// The failure rustls' words (in an error's text) describe, if any.
    pub fn from_text(text: &str) -> Option<TlsDiagnosis> {
        let text = text.replace(['\r', '\n'], " ");
        let at = |marker: &str| {
            text.find(marker).map(|i| {
                // Without the closing parentheses of what the words were quoted in.
                let mut d = text[i..].trim_end().to_string();
                while d.ends_with(')') && d.matches(')').count() > d.matches('(').count() {
                    d.pop();
                    d.truncate(d.trim_end().len());
                }
                d
            })
        };
        if let Some(d) = at("invalid peer certificate") {
            Some(TlsDiagnosis::CertificateNotAccepted(d))
        } else if text.contains("received fatal alert: CertificateRequired") {
            Some(TlsDiagnosis::ClientCertificateRequired)
        } else if let Some(d) = at("received fatal alert") {
            Some(TlsDiagnosis::Refused(d))
        } else {
            at("received corrupt message").map(TlsDiagnosis::NotTls)
        }
    }
}

/// Records whether the node asked for a client certificate, and gives none.
#[derive(Debug, Default)]
struct Asked(std::sync::atomic::AtomicBool);

impl rustls::client::ResolvesClientCert for Asked {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// Resolves any name to one node's address.
struct Pinned(NodeAddr);

impl AsyncDNSResolver for Pinned {
    fn resolve<'a, 'b: 'a>(
        &'a self,
        _host: &'b str,
        port: u16,
    ) -> RedisFuture<'a, Box<dyn Iterator<Item = SocketAddr> + Send + 'a>> {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.0.host.as_str(), port))
                .await?
                .collect();
            Ok(Box::new(addrs.into_iter()) as Box<dyn Iterator<Item = SocketAddr> + Send>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_a_certificate_is_refused_and_named() {
        let e = Tls::new(b"hello".to_vec())
            .check()
            .expect_err("no certificate");
        assert_eq!(e.part, TlsPart::Ca);
        assert_eq!(e.to_string(), "CA certificate: no PEM certificate in it");
    }
}
