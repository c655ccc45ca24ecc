//! TLS for tests: certificates made at test time ([`TlsFiles`], with `rcgen`) and a trio of
//! redis-server wired by their TLS ports ([`TlsTrio`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use redis_failover_client::{NodeAddr, Tls};

use crate::redis_node::RedisNode;
use crate::util::free_port;

/// A CA, a server certificate for 127.0.0.1 and `localhost` signed by it (usable as a
/// client certificate too, as redis-server presents it to its master), a client
/// certificate signed by it, and a second CA that signed nothing of these. PEM files in a
/// temp dir, removed on drop.
pub struct TlsFiles {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The nodes' certificate and key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// The clients' (and the manager's) certificate and key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// Another CA, which signed none of the above.
    pub other_ca: PathBuf,
    dir: tempfile::TempDir,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let pem = params.self_signed(&key).expect("CA certificate").pem();
    (params, key, pem)
}

fn leaf(
    names: &[&str],
    cn: &str,
    usages: Vec<ExtendedKeyUsagePurpose>,
    issuer: &Issuer<'_, KeyPair>,
) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = usages;
    let cert = params.signed_by(&key, issuer).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

impl TlsFiles {
    /// Generates everything into a fresh temp dir.
    pub fn generate() -> TlsFiles {
        let dir = tempfile::Builder::new()
            .prefix("rf-tls-")
            .tempdir()
            .expect("TlsFiles: temp dir");
        let (params, key, ca_pem) = ca("redis-failover test CA");
        let issuer = Issuer::new(params, key);
        let (server_pem, server_key) = leaf(
            &["127.0.0.1", "localhost"],
            "redis node",
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            &issuer,
        );
        let (client_pem, client_key) = leaf(
            &[],
            "redis client",
            vec![ExtendedKeyUsagePurpose::ClientAuth],
            &issuer,
        );
        let (_, _, other_pem) = ca("another CA");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write a PEM file");
            path
        };
        TlsFiles {
            ca: write("ca.crt", &ca_pem),
            server_cert: write("server.crt", &server_pem),
            server_key: write("server.key", &server_key),
            client_cert: write("client.crt", &client_pem),
            client_key: write("client.key", &client_key),
            other_ca: write("other-ca.crt", &other_pem),
            dir,
        }
    }

    /// The temp dir holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Client settings: this CA, and the client certificate when `with_cert`.
    pub fn client_tls(&self, with_cert: bool) -> Tls {
        let read = |p: &Path| std::fs::read(p).expect("read a PEM file");
        let tls = Tls::new(read(&self.ca));
        if with_cert {
            tls.client_cert(read(&self.client_cert), read(&self.client_key))
        } else {
            tls
        }
    }
}

/// A master and two replicas with a TLS port each, replicating over TLS
/// (`--tls-replication yes`, replicas pointed at the master's TLS port). Each keeps a plain
/// port too, for the harness's own checks (PING at start, roles, kill): only the TLS ports
/// are given to managers and published to clients.
pub struct TlsTrio {
    nodes: Vec<RedisNode>,
    tls_ports: Vec<u16>,
    // last: removed after the nodes are killed
    _dir: tempfile::TempDir,
}

impl TlsTrio {
    /// Starts the trio with the certificates of `files`; `mutual`: `--tls-auth-clients yes`
    /// (else `no`). Waits until both replicas' links are up.
    pub fn start(files: &TlsFiles, mutual: bool) -> TlsTrio {
        let dir = tempfile::Builder::new()
            .prefix("rf-redis-tls-")
            .tempdir()
            .expect("TlsTrio: temp dir");
        let mut nodes = Vec::new();
        let mut tls_ports: Vec<u16> = Vec::new();
        for i in 0..3 {
            let tls_port = free_port();
            let mut args: Vec<String> = [
                "--tls-port",
                &tls_port.to_string(),
                "--tls-cert-file",
                &files.server_cert.display().to_string(),
                "--tls-key-file",
                &files.server_key.display().to_string(),
                "--tls-ca-cert-file",
                &files.ca.display().to_string(),
                "--tls-auth-clients",
                if mutual { "yes" } else { "no" },
                "--tls-replication",
                "yes",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            if i > 0 {
                args.extend([
                    "--replicaof".to_string(),
                    "127.0.0.1".to_string(),
                    tls_ports[0].to_string(),
                ]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            nodes.push(RedisNode::start(dir.path(), free_port(), None, &args));
            tls_ports.push(tls_port);
        }
        let trio = TlsTrio {
            nodes,
            tls_ports,
            _dir: dir,
        };
        for node in &trio.nodes[1..] {
            let master = node.wait_link_up(Duration::from_secs(30));
            assert_eq!(
                master, trio.tls_ports[0],
                "replicas follow the master's TLS port"
            );
        }
        trio
    }

    /// `127.0.0.1:<tls-port>` of every node, master first: what managers are given.
    pub fn tls_addrs(&self) -> Vec<String> {
        self.tls_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// Node `i` (0 = the initial master), for the harness's checks over its plain port.
    pub fn node(&self, i: usize) -> &RedisNode {
        &self.nodes[i]
    }

    /// The TLS port of node `i`.
    pub fn tls_port(&self, i: usize) -> u16 {
        self.tls_ports[i]
    }

    /// The index of the node whose TLS address is `addr`.
    ///
    /// # Panics
    /// When no node has it.
    pub fn index_of(&self, addr: &NodeAddr) -> usize {
        self.tls_ports
            .iter()
            .position(|p| addr.host == "127.0.0.1" && addr.port == *p)
            .unwrap_or_else(|| panic!("{addr} is no node's TLS address"))
    }
}
