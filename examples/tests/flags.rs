//! The example programs' command lines: `--help` describes the flags and their environment
//! variables, a bad value is refused naming the flag, and an unreachable ZooKeeper gives one
//! line on stderr that names --zk.

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const PROGRAMS: [(&str, &str); 3] = [
    ("basic", env!("CARGO_BIN_EXE_basic")),
    ("survive_failover", env!("CARGO_BIN_EXE_survive_failover")),
    ("watch_topology", env!("CARGO_BIN_EXE_watch_topology")),
];

fn run(exe: &str, args: &[&str]) -> Output {
    Command::new(exe)
        .args(args)
        .env_remove("REDIS_FAILOVER_ZKSERVERS")
        .env_remove("REDIS_FAILOVER_ZNODE_PATH")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {exe}: {e}"))
}

#[test]
fn help_describes_every_flag_and_its_environment_variable() {
    for (name, exe) in PROGRAMS {
        let out = run(exe, &["--help"]);
        assert!(out.status.success(), "{name} --help: {out:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        for needle in [
            "--zk <HOST:PORT,...>",
            "REDIS_FAILOVER_ZKSERVERS",
            "[default: 127.0.0.1:2181]",
            "--znode-path <PATH>",
            "REDIS_FAILOVER_ZNODE_PATH",
            "[default: /redis_failover]",
            "scripts/demo.sh",
        ] {
            assert!(
                help.contains(needle),
                "{name} --help lacks {needle:?}:\n{help}"
            );
        }
    }
}

#[test]
fn a_bad_value_is_refused_naming_the_flag() {
    for (name, exe) in PROGRAMS {
        for (args, flag) in [
            (&["--zk", "localhost"][..], "--zk"),
            (&["--znode-path", "redis_failover"][..], "--znode-path"),
        ] {
            let out = run(exe, args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {err}");
            assert!(
                err.lines().next().is_some_and(|l| l.contains(flag)),
                "{name} {args:?} does not name {flag}: {err}"
            );
        }
    }
}

#[test]
fn an_unreachable_zookeeper_is_one_line_naming_the_flag() {
    // A port nobody listens on: bind one, read it, close it.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let zk = format!("127.0.0.1:{port}");
    let start = Instant::now();
    // All three at once: each waits for its ZooKeeper session before giving up.
    let children: Vec<_> = PROGRAMS
        .iter()
        .map(|(name, exe)| {
            let child = Command::new(exe)
                .args(["--zk", &zk])
                .env_remove("REDIS_FAILOVER_ZNODE_PATH")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
            (*name, child)
        })
        .collect();
    for (name, child) in children {
        let out = child.wait_with_output().expect("wait for the example");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: not one line on stderr: {err}");
        assert!(
            lines[0].starts_with(&format!("{name}: ")) && lines[0].contains(&zk),
            "{name}: {err}"
        );
        assert!(
            lines[0].contains("--zk"),
            "{name} does not name --zk: {err}"
        );
        assert!(out.stdout.is_empty(), "{name} printed on stdout: {out:?}");
    }
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "giving up took {:?}",
        start.elapsed()
    );
}
