//! The `redis_node_manager` binary: bad input gives one line naming the culprit and exit
//! code 2 (never a panic); SIGTERM releases the lock and exits 0.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use redis_failover_tests::manager::{ManagerMode, ManagerSet};
use redis_failover_tests::{free_port, shared_zk, RedisGroup, RedisNode, Scene};

const BIN: &str = env!("CARGO_BIN_EXE_redis_node_manager");

/// Runs the binary to completion (bounded) with a clean environment for our variables.
fn run(args: &[&str]) -> Output {
    run_env(args, &[("RUST_LOG", Some("error"))])
}

/// [`run`] with environment changes: `(name, Some(value))` sets, `(name, None)` removes.
fn run_env(args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
    let mut cmd = Command::new(BIN);
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("REDIS_FAILOVER_") {
            cmd.env_remove(k);
        }
    }
    common::output_within(cmd, b"")
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

/// Starts the daemon as a process on `trio` in a fresh scene named after `name` (killed
/// when the set drops) and waits until it has published the trio.
async fn managed_process(trio: &RedisGroup, name: &str, extra: &[&str]) -> (ManagerSet, Scene) {
    let s = Scene::new(name).await;
    let mut flags = ManagerSet::base_flags(&s.connect, &trio.addrs(), &s.root);
    flags.extend(extra.iter().map(|a| a.to_string()));
    let mut set = ManagerSet::new(ManagerMode::Process(BIN.into()), flags);
    set.add(None).expect("spawn manager");
    s.wait_published(Duration::from_secs(30), "published", 2)
        .await;
    (set, s)
}

/// Runs the binary with `args` on a blocking thread.
async fn run_async(args: Vec<String>) -> Output {
    run_env_async(args, &[("RUST_LOG", Some("error"))]).await
}

/// [`run_env`] on a blocking thread.
async fn run_env_async(args: Vec<String>, env: &[(&'static str, Option<&'static str>)]) -> Output {
    let env = env.to_vec();
    tokio::task::spawn_blocking(move || {
        run_env(&args.iter().map(String::as_str).collect::<Vec<_>>(), &env)
    })
    .await
    .expect("join")
}

/// `sub` followed by `-z <scene's ZooKeeper> --znode-path <scene's root>`.
fn on_scene(sub: &[&str], s: &Scene) -> Vec<String> {
    on_root(sub, s, &s.root)
}

/// `sub` followed by `-z <scene's ZooKeeper> --znode-path <root>`.
fn on_root(sub: &[&str], s: &Scene, root: &str) -> Vec<String> {
    let mut v: Vec<String> = sub.iter().map(|a| a.to_string()).collect();
    v.extend([
        "-z".into(),
        s.connect.clone(),
        "--znode-path".into(),
        root.to_string(),
    ]);
    v
}

/// Asserts exit code `code` (showing stderr if not) and returns stdout.
fn assert_exit(out: &Output, code: i32) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
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

/// clap's own errors come in the program's format: one line, exit 2; `--help` and
/// `--version` print as clap does, exit 0.
#[test]
fn bad_flags_are_one_line_in_the_program_s_format() {
    assert_refused(
        &["--no-such-flag"],
        &["redis_node_manager: unexpected argument '--no-such-flag' found; see --help"],
    );
    assert_refused(
        &["status", "--no-such-flag"],
        &["redis_node_manager: unexpected argument '--no-such-flag' found; see --help"],
    );
    assert_refused(
        &["--max-failures", "many"],
        &[
            "redis_node_manager: invalid value 'many' for '--max-failures <N>'",
            "; see --help",
        ],
    );
    assert_refused(
        &["no-such-subcommand"],
        &["unrecognized subcommand 'no-such-subcommand'; see --help"],
    );
    for w in ["error:", "Usage:", "For more information"] {
        let out = run(&["--no-such-flag"]);
        assert!(!String::from_utf8_lossy(&out.stderr).contains(w));
    }
    let out = run(&["--help"]);
    let help = assert_exit(&out, 0);
    assert!(
        help.starts_with("Keeps a Redis") || help.contains("Usage: redis_node_manager"),
        "{help}"
    );
    // --group-name says what else the name is.
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("the master name Sentinel clients ask for")
            && flat.contains("HTTP paths")
            && flat.contains("label of metrics"),
        "{help}"
    );
    let out = run(&["--version"]);
    assert!(assert_exit(&out, 0).starts_with("redis_node_manager "));
}

/// A ZooKeeper address that accepts connections but never answers: "no answer within".
#[test]
fn a_silent_zookeeper_is_reported_as_no_answer() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let zk = silent.local_addr().expect("addr").to_string();
    let trio = RedisGroup::start(0, &[]);
    assert_refused(
        &[
            "-z",
            &zk,
            "-n",
            &trio.node(0).addr(),
            "--zk-session-timeout-ms",
            "2000",
        ],
        &[
            &format!("cannot connect to ZooKeeper at {zk}: no answer within"),
            "check -z/--zkservers",
        ],
    );
    drop(silent);
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

/// A port nothing listens on: "connection refused" at once (the daemon and a subcommand),
/// not "timeout" after the whole wait (10 s for a subcommand).
#[test]
fn unreachable_zookeeper_is_reported_within_a_bound() {
    let trio = RedisGroup::start(0, &[]);
    let zk = format!("127.0.0.1:{}", free_port());
    let node = trio.node(0).addr();
    let daemon = ["-z", &zk, "-n", &node, "--zk-session-timeout-ms", "2000"];
    let status = ["status", "-z", &zk];
    let refused = format!(
        "cannot connect to ZooKeeper at {zk}: connection refused (is ZooKeeper running there?)"
    );
    for (args, code, prefix) in [
        (&daemon[..], 2, "redis_node_manager: "),
        (&status[..], 1, "redis_node_manager status: "),
    ] {
        let started = std::time::Instant::now();
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert_eq!(stderr.trim(), format!("{prefix}{refused}"));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
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
    // Each mistake gets its own line.
    assert_refused(
        &["-z", &zk, "-n", &node.addr(), "-p", "wrong-one"],
        &["wrong password for the default user"],
    );
    assert_refused(
        &["-z", &zk, "-n", &node.addr()],
        &["authentication required: the node has a password; give -p/--password"],
    );
    assert_refused(
        &[
            "-z",
            &zk,
            "-n",
            &node.addr(),
            "--username",
            "ghost",
            "-p",
            "right-one",
        ],
        &["user \"ghost\" does not exist, is disabled, or has another password"],
    );
}

/// `-p` against a node without a password is not "authentication failed".
#[test]
fn a_password_for_a_node_without_one_is_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let node = RedisNode::start(dir.path(), free_port(), None, &[]);
    let zk = shared_zk().connect_string();
    assert_refused(
        &["-z", &zk, "-n", &node.addr(), "-p", "secret"],
        &[&format!(
            "Redis node {} (group mymaster): the node has no password set, but -p/--password \
             was given",
            node.addr()
        )],
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
    let (managers, s) = managed_process(&trio, "sigterm", &[]).await;
    let child = managers.process(0).expect("the manager process");
    let lock = format!("{}/master_redis_node_manager_lock", s.root);
    assert_eq!(
        s.zk.list_children(&lock)
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
    let children = s.zk.list_children(&lock).await.expect("lock children");
    assert!(children.is_empty(), "lock not released: {children:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failover_subcommand_reports_the_outcome() {
    let trio = RedisGroup::trio();
    let (_managers, s) = managed_process(&trio, "failover_cmd", &[]).await;

    let target = trio.node(1).addr();
    let out = run_async(on_scene(&["failover", "--to", &target], &s)).await;
    let stdout = assert_exit(&out, 0);
    assert!(
        stdout.contains(&format!("the master is now {target}")),
        "{stdout}"
    );

    // A node that is not a replica of the master: refused, exit 1, the reason printed.
    let out = run_async(on_scene(&["failover", "--to", "127.0.0.1:1"], &s)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused") && stderr.contains("not one of the configured nodes"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_subcommand_shows_the_group() {
    let trio = RedisGroup::trio();
    let (_managers, s) = managed_process(&trio, "status_cmd", &["--manager-name", "st"]).await;
    let out = run_async(on_scene(&["status"], &s)).await;
    let text = assert_exit(&out, 0);
    assert!(
        text.contains(&format!("master       {}", trio.node(0).addr())),
        "{text}"
    );
    assert!(text.contains("leader") && text.contains("-st"), "{text}");
    // A subcommand prints its result, not the libraries' info lines; RUST_LOG still rules.
    let out = run_env_async(on_scene(&["status"], &s), &[("RUST_LOG", None)]).await;
    assert_exit(&out, 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "stderr: {stderr}");
    let out = run_env_async(on_scene(&["status"], &s), &[("RUST_LOG", Some("info"))]).await;
    assert_exit(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("INFO"),
        "RUST_LOG=info shows the info lines"
    );

    // A root with nothing under it: no group there, exit 1, one line saying what to check.
    let out = run_async(on_root(&["status"], &s, "/no_such_root_for_status")).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "redis_node_manager status: no group at /no_such_root_for_status: nothing published \
         there and no manager running; check --znode-path (and -z/--zkservers)"
    );
    assert!(out.stdout.is_empty());

    let out = run_async(on_scene(&["status", "--json"], &s)).await;
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
    let trio = RedisGroup::trio();
    let (_managers, s) = managed_process(&trio, "pause_cmd", &["--manager-name", "pz"]).await;

    let out = run_async(on_scene(&["pause", "--reason", "disk swap"], &s)).await;
    let stdout = assert_exit(&out, 0);
    assert!(stdout.starts_with("paused"), "{stdout}");
    let t = s
        .wait(Duration::from_secs(30), "paused in the znode", |t| {
            t.paused.is_some()
        })
        .await;
    let p = t.paused.expect("paused");
    assert_eq!(p.reason, "disk swap");
    assert!(p.by.contains('@'), "who paused: {p:?}");

    let out = run_async(on_scene(&["status"], &s)).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("paused       yes") && text.contains("disk swap"),
        "{text}"
    );

    // Without $USER and $LOGNAME: the user name of the uid, not `?`.
    let out = run_env_async(
        on_scene(&["pause", "--reason", "no env"], &s),
        &[
            ("RUST_LOG", Some("error")),
            ("USER", None),
            ("LOGNAME", None),
        ],
    )
    .await;
    assert_exit(&out, 0);
    let id = Command::new("id").arg("-un").output().expect("id -un");
    let me = String::from_utf8_lossy(&id.stdout).trim().to_string();
    let t = s
        .wait(Duration::from_secs(30), "paused again", |t| {
            t.paused.as_ref().is_some_and(|p| p.reason == "no env")
        })
        .await;
    let p = t.paused.expect("paused");
    assert!(
        p.by.starts_with(&format!("{me}@")),
        "who paused: {p:?}, want {me}@..."
    );
    let out = run_async(on_scene(&["resume"], &s)).await;
    assert_exit(&out, 0);
    s.wait(Duration::from_secs(30), "resumed in the znode", |t| {
        t.paused.is_none()
    })
    .await;
    let out = run_async(on_scene(&["status"], &s)).await;
    assert!(!String::from_utf8_lossy(&out.stdout).contains("paused"));

    // A root no manager ever used: a clear error, exit 1.
    let out = run_async(on_root(&["pause"], &s, "/no_such_root_for_pause")).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
}

/// The daemon raises its own open-file limit to what its nodes need; when the hard limit is
/// too low, it says so in one line, naming what to change, before touching anything.
#[test]
fn an_open_file_limit_too_low_for_the_nodes_is_refused() {
    let script = "ulimit -Sn 40 && ulimit -Hn 40 && exec \"$0\" \"$@\"";
    let out = Command::new("sh")
        .args([
            "-c",
            script,
            BIN,
            "-z",
            "127.0.0.1:1",
            "-n",
            "127.0.0.1:1,127.0.0.1:2",
        ])
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .expect("run under sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "redis_node_manager: 2 nodes need 72 open files but the hard limit is 40; raise it \
         (ulimit -Hn 72, or LimitNOFILE=72 in the systemd unit) or split the groups between \
         managers"
    );
}
