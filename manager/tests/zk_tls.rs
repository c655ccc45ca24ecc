//! ZooKeeper over TLS with real processes: a ZooKeeper serving TLS only (`secureClientPort`,
//! no `clientPort`, `ssl.clientAuth=need`, certificates made at test time), a manager with
//! `--zk-tls-*`, clients with `zookeeper_tls`, and the `status` subcommand.
//!
//! - a crash failover seen by a client over TLS, every acknowledged write read back;
//! - without a client certificate, or trusting another CA, a manager, a subcommand and a
//!   client are refused, each in one line saying what to give.

use std::process::Command;
use std::time::{Duration, Instant};

use redis_failover_tests::tls::TlsFiles;
use redis_failover_tests::writer::{check_lost_acks, ClientWriter, Writer};
use redis_failover_tests::{free_port, wait_until_async, RedisGroup, Scene, ZkServer};

mod common;

const DEADLINE: Duration = Duration::from_secs(30);
/// Bound on one write of the [`Writer`], and on stopping it.
const WRITE_BOUND: Duration = Duration::from_secs(20);

/// `redis_node_manager <args>` (bounded): exit success, stdout, stderr.
fn run(args: &[String]) -> (bool, String, String) {
    let mut cmd = Command::new(common::BIN);
    cmd.args(args);
    let out = common::output_within(cmd, b"");
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_over_zookeeper_tls_keeps_every_acknowledged_write() {
    let files = TlsFiles::generate();
    let zk = ZkServer::start_tls(&files);
    let cfg = std::fs::read_to_string(zk.dir().join("zoo.cfg")).expect("zoo.cfg");
    assert!(
        cfg.contains("secureClientPort=") && !cfg.contains("\nclientPort="),
        "TLS only"
    );
    let trio = RedisGroup::trio();
    let scene = Scene::on_tls(&zk, &files, "zk-tls").await;
    let m = scene.manager(&trio.addrs(), |_| {});
    let before = scene
        .wait_published(DEADLINE, "the topology published over TLS", 2)
        .await;
    let old_master = before.master.clone().expect("a master");

    let mut status = vec!["status".to_string(), "-z".into(), scene.connect.clone()];
    status.extend(["--znode-path".into(), scene.root.clone()]);
    status.extend(scene.zk_tls_flags());
    let (ok, out, err) = run(&status);
    assert!(ok, "status over TLS: {err}");
    assert!(out.contains(&format!("master       {old_master}")), "{out}");

    let client = scene.builder().connect().await.expect("a client over TLS");
    let writer = Writer::spawn(ClientWriter(client.clone()), None, WRITE_BOUND);
    wait_until_async(DEADLINE, "writes acknowledged", || {
        let n = writer.acked();
        async move { (n >= 200).then_some(()) }
    })
    .await;
    trio.node_at(&old_master).kill9();
    let killed = Instant::now();
    let after = scene
        .wait_new_master(DEADLINE, "a new master", &before)
        .await;
    let new_master = after.master.clone().expect("a master");
    wait_until_async(DEADLINE, "the client follows over TLS", || {
        let seen = client.topology().topology.master;
        let want = after.master.clone();
        async move { (seen == want).then_some(()) }
    })
    .await;
    writer
        .wait_ack_after(
            killed + Duration::from_millis(1),
            tokio::time::Instant::now() + DEADLINE,
        )
        .await
        .expect("writes acknowledged after the failover");
    let log = writer.stop(WRITE_BOUND).await;
    let lost = check_lost_acks(&new_master, &log)
        .await
        .expect("loss check");
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost",
        lost.len(),
        log.acks.len()
    );
    println!(
        "{} acknowledged writes, none lost; {old_master} -> {new_master}",
        log.acks.len()
    );
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_client_certificate_or_another_ca_is_refused_in_one_line() {
    let files = TlsFiles::generate();
    let zk = ZkServer::start_tls(&files);
    let scene = Scene::on_tls(&zk, &files, "zk-tls-refused").await;
    let one_line = |e: &str| {
        println!("{}", e.trim_end());
        assert!(!e.trim_end().contains('\n'), "one line: {e}")
    };

    // The server needs a client certificate: a manager without one stops at start.
    let m = scene.manager(&[format!("127.0.0.1:{}", free_port())], |c| {
        c.zk_tls_cert_file = None;
        c.zk_tls_key_file = None;
    });
    let e = m.stop_after_start_error().await;
    one_line(&e);
    assert!(
        e.contains("the server asks for a client certificate (ssl.clientAuth=need)")
            && e.contains("give --zk-tls-cert-file and --zk-tls-key-file"),
        "{e}"
    );

    // A subcommand trusting another CA.
    let mut status = vec!["status".to_string(), "-z".into(), scene.connect.clone()];
    status.extend([
        "--zk-tls-ca-file".into(),
        files.other_ca.display().to_string(),
    ]);
    let (ok, _, err) = run(&status);
    assert!(!ok);
    one_line(&err);
    assert!(
        err.starts_with("redis_node_manager status: cannot connect to ZooKeeper at ")
            && err.contains("not accepted")
            && err.contains("UnknownIssuer")
            && err.contains("check --zk-tls-ca-file"),
        "{err}"
    );

    // A client without a certificate.
    let e = scene
        .builder()
        .zookeeper_tls(files.client_tls(false))
        .connect()
        .await
        .map(|_| ())
        .expect_err("refused without a certificate")
        .to_string();
    one_line(&e);
    assert!(e.contains("asks for a client certificate"), "{e}");
}
