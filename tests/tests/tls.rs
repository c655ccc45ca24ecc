//! TLS to Redis with real processes: certificates made at test time, three redis-server
//! wired by their TLS ports (`--tls-replication yes`), a manager with `--tls-ca-file` given
//! only the TLS ports, and clients built with `.tls(...)`.
//!
//! - a crash failover over TLS, a client writing before and after it and reading every
//!   acknowledged key back;
//! - mutual TLS (`tls-auth-clients yes`): the client certificate is enough, and without it
//!   the manager refuses to start and a client's command fails, each saying why;
//! - a CA that did not sign the nodes' certificate: a one-line error at manager start;
//! - the flags' own mistakes (a missing file, a file without a certificate, a certificate
//!   without its key), each naming its flag.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use redis_failover_client::{Client, Tls};
use redis_failover_manager::config::{Cli, FileConfig};
use redis_failover_manager::Config;
use redis_failover_tests::redis::AsyncCommands;
use redis_failover_tests::tls::{TlsFiles, TlsTrio};
use redis_failover_tests::{NodeRole, Scene};

const DEADLINE: Duration = Duration::from_secs(30);

fn with_ca(files: &TlsFiles) -> impl FnOnce(&mut Cli) + '_ {
    move |c: &mut Cli| c.tls_ca_file = Some(files.ca.clone())
}

/// Writes `<prefix>:0` to `<prefix>:49`, each retried until the deadline, and notes each
/// acknowledged key in `acked`; `how` ends the failure line.
async fn write_fifty(client: &mut Client, prefix: &str, how: &str, acked: &mut Vec<String>) {
    for i in 0..50 {
        let key = format!("{prefix}:{i}");
        assert!(
            write_until(client, &key, Instant::now() + DEADLINE).await,
            "{key} written {how}"
        );
        acked.push(key);
    }
}

/// A client of the scene's group over `tls`, sending everything to the master; `what`
/// names it if it cannot start.
async fn master_client(scene: &Scene, tls: Tls, what: &str) -> Client {
    scene
        .builder()
        .tls(tls)
        .master_only(true)
        .connect()
        .await
        .expect(what)
}

/// Certificates, a trio of nodes on their TLS ports (asking for client certificates when
/// `mutual`) and a fresh scene named `name`.
async fn tls_trio(mutual: bool, name: &str) -> (TlsFiles, TlsTrio, Scene) {
    let files = TlsFiles::generate();
    let trio = TlsTrio::start(&files, mutual);
    let scene = Scene::new(name).await;
    (files, trio, scene)
}

/// Asserts that `e` is one line holding every one of `words`; `what` says what it tells.
fn assert_line(e: &str, words: &[&str], what: &str) {
    assert!(!e.contains('\n'), "one line: {e}");
    assert!(words.iter().all(|w| e.contains(w)), "{what}: {e}");
}

/// Writes `key`, retrying until `deadline` (the master may be changing); true once
/// acknowledged.
async fn write_until(client: &mut Client, key: &str, deadline: Instant) -> bool {
    loop {
        let r: redis_failover_tests::redis::RedisResult<()> = client.set(key, key).await;
        match r {
            Ok(()) => return true,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_failover_over_tls_keeps_every_acknowledged_write() {
    let (files, trio, scene) = tls_trio(false, "tls-failover").await;
    let m = scene.manager(&trio.tls_addrs(), with_ca(&files));
    let before = scene
        .wait_published(DEADLINE, "the trio published over TLS", 2)
        .await;
    assert_eq!(before.master.as_ref().map(|a| trio.index_of(a)), Some(0));

    let mut client = scene
        .builder()
        .tls(files.client_tls(false))
        .connect()
        .await
        .expect("a TLS client connects");
    let mut acked = Vec::new();
    write_fifty(&mut client, "before", "over TLS", &mut acked).await;

    trio.node(0).kill9();
    let after = scene
        .wait_new_master(DEADLINE, "a new master after the crash", &before)
        .await;
    let new = trio.index_of(after.master.as_ref().expect("a master"));
    assert_ne!(new, 0);
    assert_eq!(trio.node(new).role(), Some(NodeRole::Master));
    // The other replica replicates from the new master's TLS port (REPLICAOF with the
    // address the manager knows, over TLS since tls-replication is on).
    let other = 3 - new;
    trio.node(other).wait_follows(
        trio.tls_port(new),
        true,
        DEADLINE,
        "the other replica follows the new master's TLS port",
    );

    write_fifty(
        &mut client,
        "after",
        "over TLS after the failover",
        &mut acked,
    )
    .await;

    // Every acknowledged key, read back from the new master over TLS.
    let mut reader = master_client(&scene, files.client_tls(false), "a TLS reader connects").await;
    for key in &acked {
        let v: Option<String> = reader.get(key).await.expect("GET over TLS");
        assert_eq!(
            v.as_deref(),
            Some(key.as_str()),
            "{key} survived the failover"
        );
    }
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_works_with_the_client_certificate_and_says_why_without() {
    let (files, trio, scene) = tls_trio(true, "tls-mutual").await;

    // Without a client certificate the manager stops at start, saying what to give.
    let m = scene.manager(&trio.tls_addrs(), with_ca(&files));
    let e = m.stop_after_start_error().await;
    assert_line(
        &e,
        &[
            "TLS: the node asks for a client certificate",
            "--tls-cert-file and --tls-key-file",
        ],
        "names the missing certificate",
    );

    let m = scene.manager(&trio.tls_addrs(), |c| {
        c.tls_ca_file = Some(files.ca.clone());
        c.tls_cert_file = Some(files.client_cert.clone());
        c.tls_key_file = Some(files.client_key.clone());
    });
    scene
        .wait_published(DEADLINE, "the trio published over mutual TLS", 2)
        .await;

    let mut client = master_client(
        &scene,
        files.client_tls(true),
        "a client with a certificate connects",
    )
    .await;
    let _: () = client.set("k", "v").await.expect("SET with a certificate");
    let v: Option<String> = client.get("k").await.expect("GET with a certificate");
    assert_eq!(v.as_deref(), Some("v"));

    let mut anonymous = scene
        .builder()
        .tls(files.client_tls(false))
        .max_retries(0)
        .connect()
        .await
        .expect("the client starts (it reaches ZooKeeper)");
    let r: redis_failover_tests::redis::RedisResult<()> = anonymous.set("k2", "v").await;
    let e = r
        .expect_err("no SET without a client certificate")
        .to_string();
    assert_line(
        &e,
        &["asks for a client certificate", "Tls::client_cert"],
        "says a certificate is needed",
    );
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_is_a_one_line_error_at_start() {
    let (files, trio, scene) = tls_trio(false, "tls-wrong-ca").await;
    let m = scene.manager(&trio.tls_addrs(), |c| {
        c.tls_ca_file = Some(files.other_ca.clone())
    });
    let e = m.stop_after_start_error().await;
    assert_line(
        &e,
        &["not accepted", "--tls-ca-file", "UnknownIssuer"],
        "says the certificate is not trusted and which flag to check",
    );
    assert!(scene.topology().await.is_none(), "nothing published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_name_is_verified_instead_of_the_host() {
    let (files, trio, scene) = tls_trio(false, "tls-server-name").await;

    // The certificate is for 127.0.0.1 and localhost: another name is refused at start.
    let m = scene.manager(&trio.tls_addrs(), |c| {
        c.tls_ca_file = Some(files.ca.clone());
        c.tls_server_name = Some("redis.example".into());
    });
    let e = m.stop_after_start_error().await;
    assert!(
        e.contains("not accepted")
            && e.contains("--tls-server-name")
            && e.contains("not valid for name"),
        "{e}"
    );

    let m = scene.manager(&trio.tls_addrs(), |c| {
        c.tls_ca_file = Some(files.ca.clone());
        c.tls_server_name = Some("localhost".into());
    });
    scene
        .wait_published(DEADLINE, "the trio published, verified as localhost", 2)
        .await;
    let mut client = scene
        .builder()
        .tls(files.client_tls(false).server_name("localhost"))
        .connect()
        .await
        .expect("connect");
    let _: () = client
        .set("k", "v")
        .await
        .expect("SET verified as localhost");

    let mut wrong = scene
        .builder()
        .tls(files.client_tls(false).server_name("redis.example"))
        .max_retries(0)
        .connect()
        .await
        .expect("the client starts");
    let r: redis_failover_tests::redis::RedisResult<()> = wrong.set("k", "v").await;
    let e = r.expect_err("refused for another name").to_string();
    assert!(
        e.contains("not accepted") && e.contains("not valid for name \"redis.example\""),
        "{e}"
    );
    m.stop().await.expect("clean stop");
}

fn merge(tweak: impl FnOnce(&mut Cli)) -> Result<Config, String> {
    let mut cli = Cli {
        zkservers: Some("127.0.0.1:2181".into()),
        nodes: Some("127.0.0.1:6379".into()),
        ..Cli::default()
    };
    tweak(&mut cli);
    Config::merge(cli, FileConfig::default()).map_err(|e| e.to_string())
}

#[test]
fn each_tls_flag_mistake_names_its_flag() {
    let files = TlsFiles::generate();
    let missing = files.dir().join("nope.crt");
    let e = merge(|c| c.tls_ca_file = Some(missing.clone())).expect_err("missing CA");
    assert!(
        e.starts_with(&format!(
            "--tls-ca-file {}: cannot read it",
            missing.display()
        )),
        "{e}"
    );

    let not_pem: PathBuf = files.dir().join("not.pem");
    std::fs::write(&not_pem, "hello").expect("write");
    let e = merge(|c| c.tls_ca_file = Some(not_pem.clone())).expect_err("no certificate");
    assert!(
        e.contains("--tls-ca-file") && e.contains("no PEM certificate"),
        "{e}"
    );

    // A client certificate with its key file: none, one without a key, another's key.
    let key_cases: [(Option<&PathBuf>, &str, &[&str]); 3] = [
        (
            None,
            "a certificate without its key",
            &["--tls-cert-file and --tls-key-file"],
        ),
        (
            Some(&files.ca),
            "a key file without a key",
            &["--tls-key-file"],
        ),
        (
            Some(&files.server_key),
            "a key of another certificate",
            &["--tls-key-file", "does not fit"],
        ),
    ];
    for (key, mistake, words) in key_cases {
        let e = merge(|c| {
            c.tls_ca_file = Some(files.ca.clone());
            c.tls_cert_file = Some(files.client_cert.clone());
            c.tls_key_file = key.cloned();
        })
        .expect_err(mistake);
        assert!(words.iter().all(|w| e.contains(w)), "{e}");
    }

    let e = merge(|c| c.tls = Some(redis_failover_manager::config::Switch::On))
        .expect_err("--tls on without a CA");
    assert!(e.contains("--tls-ca-file"), "{e}");

    let ok = merge(|c| c.tls_ca_file = Some(files.ca.clone())).expect("a CA alone is enough");
    assert!(ok.auth.tls.is_some(), "--tls-ca-file implies --tls");
    let off = merge(|_| {}).expect("no TLS");
    assert!(off.auth.tls.is_none());
}
