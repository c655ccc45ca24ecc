//! The `redis_node_manager` binary: bad input gives one line naming the culprit and exit
//! code 2 (never a panic); SIGTERM releases the lock and exits 0.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use redis_failover_tests::manager::{wait_topology, zk_client};
use redis_failover_tests::{
    free_port, shared_zk, spawn_guarded, unique_root, GuardedChild, RedisGroup, RedisNode,
};

const BIN: &str = env!("CARGO_BIN_EXE_redis_node_manager");

/// Runs the binary to completion (bounded) with a clean environment for our variables.
fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("REDIS_FAILOVER_") {
            cmd.env_remove(k);
        }
    }
    let child = cmd.spawn().expect("spawn redis_node_manager");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            // SAFETY: killing our own child by pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("redis_node_manager {args:?} did not exit within 30 s");
        }
    }
}

/// Asserts exit code 2 and a single stderr line containing every `want`.
fn assert_refused(args: &[&str], want: &[&str]) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: stderr {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: want one line, got:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for w in want {
        assert!(lines[0].contains(w), "{args:?}: {:?} lacks {w:?}", lines[0]);
    }
}

/// Starts the daemon as a process on `trio` under `root` (killed when the guard drops) and
/// waits until it has published the trio.
async fn managed_process(
    trio: &RedisGroup,
    root: &str,
    extra: &[&str],
) -> (GuardedChild, zookeeper_client::Client) {
    let zk = shared_zk();
    let mut args: Vec<String> = vec![
        "-z".into(),
        zk.connect_string(),
        "-n".into(),
        trio.addrs().join(","),
        "--znode-path".into(),
        root.to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let child = spawn_guarded(move || {
        let mut c = Command::new(BIN);
        c.args(&args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    })
    .expect("spawn manager");
    let client = zk_client(&zk.connect_string()).await;
    wait_topology(&client, root, Duration::from_secs(30), "published", |t| {
        t.slaves.len() == 2
    })
    .await;
    (child, client)
}

#[test]
fn malformed_and_missing_input_is_refused() {
    let zk = "127.0.0.1:1";
    assert_refused(
        &["-z", zk, "-n", "127.0.0.1"],
        &["-n/--nodes", "\"127.0.0.1\"", "no port"],
    );
    assert_refused(&["-z", zk, "-n", "h:1,h:70000"], &["-n/--nodes", "h:70000"]);
    assert_refused(&["-z", zk, "-n", "h:1,h:1"], &["duplicate address h:1"]);
    assert_refused(&["-z", zk, "-n", ""], &["-n/--nodes", "empty address list"]);
    assert_refused(&["-n", "h:1"], &["no ZooKeeper servers", "-z/--zkservers"]);
    assert_refused(
        &["-z", zk, "-n", "h:1", "--max-failures", "0"],
        &["--max-failures"],
    );
}

#[test]
fn unknown_config_keys_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("manager.toml");
    std::fs::write(
        &path,
        "zkservers = \"127.0.0.1:1\"\nnodes = \"h:1\"\nmax_failure = 3\n",
    )
    .expect("write");
    assert_refused(
        &["-C", path.to_str().expect("utf8")],
        &["manager.toml", "unknown field `max_failure`"],
    );
}

#[test]
fn unreachable_zookeeper_is_reported_within_a_bound() {
    let trio = RedisGroup::start(0, &[]);
    let zk = format!("127.0.0.1:{}", free_port());
    let started = std::time::Instant::now();
    assert_refused(
        &[
            "-z",
            &zk,
            "-n",
            &trio.node(0).addr(),
            "--zk-session-timeout-ms",
            "2000",
        ],
        &["ZooKeeper", &zk],
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn wrong_password_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let node = RedisNode::start(
        dir.path(),
        free_port(),
        None,
        &["--requirepass", "right-one"],
    );
    let zk = shared_zk().connect_string();
    assert_refused(
        &["-z", &zk, "-n", &node.addr(), "-p", "wrong-one"],
        &[&node.addr(), "authentication failed", "--password"],
    );
    // No password at all against a protected node is the same mistake.
    assert_refused(
        &["-z", &zk, "-n", &node.addr()],
        &[&node.addr(), "authentication"],
    );
    let out = run(&["-z", &zk, "-n", &node.addr(), "-p", "wrong-one"]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("wrong-one"),
        "password leaked"
    );
}

#[test]
fn a_port_that_is_not_redis_is_refused() {
    let zk = shared_zk();
    let not_redis = format!("127.0.0.1:{}", zk.port());
    assert_refused(
        &["-z", &zk.connect_string(), "-n", &not_redis],
        &[&not_redis, "Redis"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_the_lock_and_exits_zero() {
    let trio = RedisGroup::trio();
    let root = unique_root("sigterm");
    let (child, client) = managed_process(&trio, &root, &[]).await;
    let lock = format!("{root}/master_redis_node_manager_lock");
    assert_eq!(
        client
            .list_children(&lock)
            .await
            .expect("lock children")
            .len(),
        1
    );

    assert!(
        child.terminate(Duration::from_secs(10)),
        "did not exit on SIGTERM"
    );
    let status = child.exit_status().expect("exited");
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    let children = client.list_children(&lock).await.expect("lock children");
    assert!(children.is_empty(), "lock not released: {children:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failover_subcommand_reports_the_outcome() {
    let zk = shared_zk();
    let trio = RedisGroup::trio();
    let root = unique_root("failover_cmd");
    let (_manager, _client) = managed_process(&trio, &root, &[]).await;

    let target = trio.node(1).addr();
    let zk_arg = zk.connect_string();
    let run_async = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };
    let out = run_async(vec![
        "failover".into(),
        "--to".into(),
        target.clone(),
        "-z".into(),
        zk_arg.clone(),
        "--znode-path".into(),
        root.clone(),
    ])
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("the master is now {target}")),
        "{stdout}"
    );

    // A node that is not a replica of the master: refused, exit 1, the reason printed.
    let out = run_async(vec![
        "failover".into(),
        "--to".into(),
        "127.0.0.1:1".into(),
        "-z".into(),
        zk_arg,
        "--znode-path".into(),
        root.clone(),
    ])
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused") && stderr.contains("not one of the configured nodes"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_subcommand_shows_the_group() {
    let zk = shared_zk();
    let trio = RedisGroup::trio();
    let root = unique_root("status_cmd");
    let (_manager, _client) = managed_process(&trio, &root, &["--manager-name", "st"]).await;
    let zk_arg = zk.connect_string();
    let (root2, zk2) = (root.clone(), zk_arg.clone());
    let out =
        tokio::task::spawn_blocking(move || run(&["status", "-z", &zk2, "--znode-path", &root2]))
            .await
            .expect("join");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("master       {}", trio.node(0).addr())),
        "{text}"
    );
    assert!(text.contains("leader") && text.contains("-st"), "{text}");
    let out = tokio::task::spawn_blocking(move || {
        run(&["status", "--json", "-z", &zk_arg, "--znode-path", &root])
    })
    .await
    .expect("join");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(
        v["topology"]["master"],
        serde_json::Value::String(trio.node(0).addr())
    );
    assert!(
        v["managers_in_line"][0]
            .as_str()
            .is_some_and(|id| id.ends_with("-st")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_subcommands_switch_automatic_failover() {
    let zk = shared_zk();
    let trio = RedisGroup::trio();
    let root = unique_root("pause_cmd");
    let (_manager, client) = managed_process(&trio, &root, &["--manager-name", "pz"]).await;
    let zk_arg = zk.connect_string();
    let cmd = |args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&args)
        })
        .await
        .expect("join")
    };
    let with_target = |sub: &[&str]| {
        let mut v: Vec<String> = sub.iter().map(|s| s.to_string()).collect();
        v.extend([
            "-z".into(),
            zk_arg.clone(),
            "--znode-path".into(),
            root.clone(),
        ]);
        v
    };

    let out = cmd(with_target(&["pause", "--reason", "disk swap"])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("paused"), "{stdout}");
    let t = wait_topology(
        &client,
        &root,
        Duration::from_secs(30),
        "paused in the znode",
        |t| t.paused.is_some(),
    )
    .await;
    let p = t.paused.expect("paused");
    assert_eq!(p.reason, "disk swap");
    assert!(p.by.contains('@'), "who paused: {p:?}");
    let out = cmd(with_target(&["status"])).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("paused       yes") && text.contains("disk swap"),
        "{text}"
    );

    let out = cmd(with_target(&["resume"])).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_topology(
        &client,
        &root,
        Duration::from_secs(30),
        "resumed in the znode",
        |t| t.paused.is_none(),
    )
    .await;
    let out = cmd(with_target(&["status"])).await;
    assert!(!String::from_utf8_lossy(&out.stdout).contains("paused"));

    // A root no manager ever used: a clear error, exit 1.
    let out = cmd(vec![
        "pause".into(),
        "-z".into(),
        zk_arg.clone(),
        "--znode-path".into(),
        "/no_such_root_for_pause".into(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
}
