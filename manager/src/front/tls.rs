//! TLS for the operator endpoints: with `--endpoint-tls-cert-file` and
//! `--endpoint-tls-key-file`, the HTTP (`--http-addr`) and Sentinel (`--sentinel-addr`)
//! endpoints accept TLS connections only, with that certificate (PEM chain) and key.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The acceptor for `cert` (PEM, the chain) and `key` (PEM); the error is one line naming
/// the flag whose file is wrong.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let read = |p: &Path, flag: &str| {
        std::fs::read(p).map_err(|e| format!("{flag} {}: cannot read it: {e}", p.display()))
    };
    let cert_pem = read(cert, "--endpoint-tls-cert-file")?;
    let key_pem = read(key, "--endpoint-tls-key-file")?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--endpoint-tls-cert-file {}: not PEM ({e})", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--endpoint-tls-cert-file {}: no PEM certificate in it",
            cert.display()
        ));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        format!(
            "--endpoint-tls-key-file {}: no PEM private key in it ({e})",
            key.display()
        )
    })?;
    redis_failover_client::install_crypto_provider();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            format!(
                "--endpoint-tls-key-file {}: does not fit the certificate ({e})",
                key.display()
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
