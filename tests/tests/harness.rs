//! Tests of the harness itself, against real ZooKeeper and redis-server processes.

use std::time::Duration;

use redis_failover_tests::{
    check_redis, check_zookeeper, find_program, free_port, init_tracing, parse_role, pid_alive,
    shared_zk, unique_root, wait_until, wait_until_async, zk_cli, zk_four_letter, NodeRole,
    RedisGroup, RedisNode, ZkServer,
};

const T: Duration = Duration::from_secs(10);

/// Without the packages, the harness says in one line what is missing and what to install
/// (instead of `cannot spawn java: No such file or directory`).
#[test]
fn missing_packages_are_named_in_one_line() {
    let empty = tempfile::tempdir().expect("tmp");
    let bare = std::env::join_paths([empty.path()]).expect("a PATH");
    let one_line = |e: String, want: &[&str]| {
        assert_eq!(e.lines().count(), 1, "{e}");
        for w in want {
            assert!(e.contains(w), "{e:?} lacks {w:?}");
        }
    };
    one_line(
        check_redis(Some(&bare)).expect_err("no redis-server there"),
        &[
            "redis-server not found",
            "apt-get install redis-server",
            ".ci/run",
        ],
    );
    one_line(
        check_redis(None).expect_err("no PATH at all"),
        &["redis-server not found"],
    );
    let real_cp = "/usr/share/java/zookeeper.jar";
    one_line(
        check_zookeeper(Some(&bare), "java", real_cp).expect_err("no java there"),
        &["java not found", "apt-get install zookeeper", ".ci/run"],
    );
    one_line(
        check_zookeeper(Some(&bare), "/nonexistent/bin/java", real_cp).expect_err("no such java"),
        &[
            "/nonexistent/bin/java not found (ZK_JAVA)",
            "apt-get install zookeeper",
        ],
    );
    // java found (any executable stands in), the jar not.
    let path = std::env::var_os("PATH");
    let sh = find_program("sh", path.as_deref()).expect("sh on PATH");
    let sh = sh.to_str().expect("utf-8");
    one_line(
        check_zookeeper(path.as_deref(), sh, "/nonexistent/zookeeper.jar")
            .expect_err("no such jar"),
        &[
            "/nonexistent/zookeeper.jar missing",
            "apt-get install zookeeper",
            "ZK_CP",
        ],
    );
    // The suite itself runs with both installed.
    assert_eq!(check_redis(path.as_deref()), Ok(()));
    assert_eq!(
        check_zookeeper(
            path.as_deref(),
            "java",
            "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"
        ),
        Ok(())
    );
}

#[test]
fn zk_starts_standalone_and_restarts_on_same_port() {
    init_tracing();
    let zk = ZkServer::start();
    let port = zk.port();
    assert_eq!(zk.connect_string(), format!("127.0.0.1:{port}"));
    assert!(zk.is_running());
    let srvr = zk.srvr().expect("srvr answers on a started ZooKeeper");
    assert!(srvr.contains("Mode: standalone"), "srvr said: {srvr}");
    let pid = zk.pid().expect("a started ZooKeeper has a pid");

    zk.stop();
    assert!(!zk.is_running());
    assert!(
        !pid_alive(pid),
        "ZooKeeper pid {pid} still alive after stop"
    );
    assert!(
        zk_four_letter(port, "srvr").is_none(),
        "stopped ZK answered"
    );

    zk.restart();
    assert_eq!(zk.port(), port);
    assert!(zk.is_running());
    let srvr = zk_four_letter(port, "srvr").expect("srvr answers after restart");
    assert!(srvr.contains("Mode: standalone"), "srvr said: {srvr}");

    // kill -9 then restart also works (same data dir)
    zk.kill();
    assert!(!zk.is_running());
    zk.restart();
    assert!(zk.srvr().is_some_and(|s| s.contains("Mode:")));
    let pid = zk.pid().expect("restarted ZooKeeper has a pid");
    drop(zk);
    assert!(
        !pid_alive(pid),
        "ZooKeeper pid {pid} still alive after drop"
    );
}

#[test]
fn shared_zk_and_zk_cli_show_json() {
    let zk = shared_zk();
    assert!(std::ptr::eq(zk, shared_zk()), "shared_zk is one server");
    let root = unique_root("zk/cli test");
    assert!(root.starts_with("/t_zk_cli_test_"), "{root}");
    assert_ne!(root, unique_root("zk/cli test"));

    let json = r#"{"master":"127.0.0.1:1234","epoch":7}"#;
    zk_cli(zk.port(), &["create", &root, json]);
    let out = zk_cli(zk.port(), &["get", &root]);
    assert!(out.contains(json), "zkCli get {root} printed:\n{out}");
    let out = zk_cli(zk.port(), &["ls", "/"]);
    assert!(out.contains(&root[1..]), "zkCli ls / printed:\n{out}");
}

#[test]
fn trio_replicates() {
    let g = RedisGroup::trio();
    assert_eq!(g.len(), 3);
    let master = g.node(0);
    assert_eq!(master.role(), Some(NodeRole::Master));
    for i in 1..3 {
        assert_eq!(
            g.node(i).role(),
            Some(NodeRole::Replica {
                master_port: master.port(),
                link_up: true
            })
        );
    }
    let addrs = g.addrs();
    assert_eq!(addrs.len(), 3);
    assert_eq!(addrs[0], format!("127.0.0.1:{}", master.port()));

    master
        .cmd(&["SET", "harness-key", "v1"])
        .expect("SET on master");
    assert_eq!(master.get("harness-key").as_deref(), Some("v1"));
    for i in 1..3 {
        wait_until(T, "the key to appear on a replica", || {
            (g.node(i).get("harness-key").as_deref() == Some("v1")).then_some(())
        });
    }
    let m_off = master.offset().expect("master offset");
    assert!(m_off > 0);
    wait_until(T, "replica offset to catch up", || {
        (g.node(1).offset()? >= m_off).then_some(())
    });
}

#[test]
fn kill9_and_restart() {
    let mut g = RedisGroup::start(1, &[]);
    let master_port = g.node(0).port();
    let node = g.node_mut(1);
    let old_pid = node.pid();
    node.kill9();
    assert!(!node.is_running());
    assert!(!pid_alive(old_pid));
    assert!(!node.ping(Duration::from_millis(300)));

    node.restart(Some(master_port));
    assert!(node.is_running());
    assert_ne!(node.pid(), old_pid);
    assert!(node.ping(Duration::from_secs(1)));
    assert_eq!(node.wait_link_up(T), master_port);

    // restart of the master as a standalone master, after kill9
    let master = g.node(0);
    master.kill9();
    assert!(!master.is_running());
    master.restart(None);
    assert!(master.ping(Duration::from_secs(1)));
    assert_eq!(master.role(), Some(NodeRole::Master));
}

#[test]
fn sigstop_and_sigcont() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = RedisNode::start(dir.path(), free_port(), None, &[]);
    assert!(node.ping(Duration::from_millis(300)));
    node.sigstop();
    assert!(
        !node.ping(Duration::from_millis(300)),
        "a stopped node answered"
    );
    assert!(node.is_running(), "a stopped node still runs");
    node.sigcont();
    assert!(node.ping(Duration::from_secs(3)), "resumed node is silent");

    // a node that is stopped when dropped is still killed
    let pid = node.pid();
    node.sigstop();
    drop(node);
    assert!(!pid_alive(pid), "stopped node survived drop");
}

#[test]
fn dropping_a_group_kills_its_processes() {
    let g = RedisGroup::trio();
    let pids: Vec<u32> = g.nodes().iter().map(RedisNode::pid).collect();
    let dir = g.dir().to_path_buf();
    assert!(pids.iter().all(|&p| pid_alive(p)));
    g.node(2).sigstop();
    drop(g);
    for pid in pids {
        // Either gone, or (pid already recycled) some other process that is not a zombie.
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            assert!(
                !stat.contains("(redis-server)") && !stat.contains(") Z "),
                "pid {pid} still there after drop: {stat}"
            );
        }
        assert!(!pid_alive(pid) || !stat_is_redis(pid), "pid {pid} alive");
    }
    assert!(!dir.exists(), "group dir {} not removed", dir.display());
}

#[test]
fn extra_args_are_passed() {
    let g = RedisGroup::start(0, &["--maxmemory", "32mb"]);
    let v = g
        .node(0)
        .cmd(&["CONFIG", "GET", "maxmemory"])
        .expect("CONFIG GET maxmemory");
    assert!(format!("{v:?}").contains("33554432"), "{v:?}");
}

#[test]
fn parse_role_reads_info() {
    let info = "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:7001\r\nmaster_link_status:down\r\n";
    assert_eq!(
        parse_role(info),
        Some(NodeRole::Replica {
            master_port: 7001,
            link_up: false
        })
    );
    assert_eq!(
        parse_role("role:master\r\nconnected_slaves:0\r\n"),
        Some(NodeRole::Master)
    );
    assert_eq!(parse_role("garbage"), None);
}

#[test]
fn free_ports_are_distinct() {
    let a = free_port();
    let b = free_port();
    assert_ne!(a, b);
    assert_ne!(a, 0);
}

#[test]
#[should_panic(expected = "timed out after 50ms waiting for nothing")]
fn wait_until_times_out() {
    wait_until::<()>(Duration::from_millis(50), "nothing", || None);
}

#[test]
fn wait_until_returns_value() {
    let mut n = 0;
    let v = wait_until(T, "three calls", || {
        n += 1;
        (n >= 3).then_some(n * 10)
    });
    assert_eq!(v, 30);
}

#[tokio::test]
async fn wait_until_async_returns_value() {
    let start = tokio::time::Instant::now();
    let v = wait_until_async(T, "50 ms", || async move {
        (start.elapsed() >= Duration::from_millis(50)).then_some(7)
    })
    .await;
    assert_eq!(v, 7);
}

#[tokio::test]
#[should_panic(expected = "timed out after 30ms waiting for never")]
async fn wait_until_async_times_out() {
    wait_until_async::<(), _, _>(Duration::from_millis(30), "never", || async { None }).await;
}

fn stat_is_redis(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains("(redis-server)"))
}
