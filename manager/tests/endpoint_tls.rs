//! Issue 14, item 4: with `--endpoint-tls-cert-file` and `--endpoint-tls-key-file` the HTTP
//! and Sentinel endpoints serve TLS only: a client that trusts the CA gets `/health` and
//! `SENTINEL GET-MASTER-ADDR-BY-NAME` over TLS; plain TCP gets no answer.

use std::sync::Arc;
use std::time::Duration;

use redis_failover_tests::redis;
use redis_failover_tests::tls::TlsFiles;
use redis_failover_tests::{free_port, RedisGroup, Scene};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEADLINE: Duration = Duration::from_secs(30);

/// The HTTP answer to `GET path` over TLS, trusting `ca` (bounded).
async fn https_get(port: u16, ca: &std::path::Path, path: &str) -> String {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("the CA") {
        roots.add(cert.expect("PEM")).expect("a CA");
    }
    redis_failover_client::install_crypto_provider();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let talk = async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let name = ServerName::try_from("localhost").expect("name");
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(
            format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut out = Vec::new();
        tls.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&out).to_string())
    };
    tokio::time::timeout(DEADLINE, talk)
        .await
        .expect("in time")
        .expect("an HTTPS answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoints_serve_tls_with_the_given_certificate() {
    let files = TlsFiles::generate();
    let trio = RedisGroup::trio();
    let s = Scene::new("endpoint_tls").await;
    let (http, sentinel) = (free_port(), free_port());
    let m = s.manager(&trio.addrs(), |c| {
        c.http_addr = Some(format!("127.0.0.1:{http}").parse().expect("addr"));
        c.sentinel_addr = Some(format!("127.0.0.1:{sentinel}").parse().expect("addr"));
        c.endpoint_tls_cert_file = Some(files.server_cert.clone());
        c.endpoint_tls_key_file = Some(files.server_key.clone());
    });
    s.wait_published(DEADLINE, "published", 2).await;

    let health = https_get(http, &files.ca, "/health").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"status\":\"up\""), "{health}");

    let ca = std::fs::read(&files.ca).expect("ca");
    let certs = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(ca),
    };
    let client = redis::Client::build_with_tls(format!("rediss://localhost:{sentinel}/"), certs)
        .expect("a TLS client");
    let master = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg("mymaster")
            .query_async::<Vec<String>>(&mut conn)
            .await
    };
    let master = tokio::time::timeout(DEADLINE, master)
        .await
        .expect("in time")
        .expect("SENTINEL over TLS");
    assert_eq!(
        master,
        vec!["127.0.0.1".to_string(), trio.node(0).port().to_string()]
    );

    // Plain TCP gets nothing it can read as HTTP.
    let plain = redis_failover_tests::http::request_async(http, "GET", "/health", "").await;
    assert!(
        plain.as_ref().is_none_or(|(code, _)| *code != 200),
        "{plain:?}"
    );
    m.stop().await.expect("stop");
}
