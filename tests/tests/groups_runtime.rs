//! Issue 15, item 5: groups added and removed at run time. Two `redis_node_manager`
//! processes started with `--groups-from-zookeeper` and no group; `redis_node_manager group
//! add` (the binary) makes both watch a new group (one leads: a kill -9 of its master fails
//! over), the Sentinel endpoint and /status list it; `DELETE /groups/{name}` makes both stop
//! (the lock released, the group gone from SENTINEL MASTERS and /status), and the nodes'
//! roles stay as they were: no REPLICAOF is sent, and a master killed afterwards is not
//! replaced. Bad input to `group add` / `group remove` is one line naming what is wrong.

use std::path::{Path, PathBuf};
use std::time::Duration;

use redis_failover_tests::http::{get_json, request_async};
use redis_failover_tests::manager::{lock_holders, manager_process, wait_topology, zk_client};
use redis_failover_tests::partition::manager_bin_next_to_tests;
use redis_failover_tests::sentinel::sentinel_cmd;
use redis_failover_tests::{
    for_a_while, free_port, init_tracing, shared_zk, unique_root, wait_until_async, GuardedChild,
    NodeRole, RedisGroup,
};

const DEADLINE: Duration = Duration::from_secs(30);

/// Runs `redis_node_manager ARGS` to its end (killed after 20 s): exit code, stdout, stderr.
async fn run_cli(bin: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(args).env_remove("RUST_LOG").kill_on_drop(true);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("REDIS_FAILOVER_")) {
        cmd.env_remove(k);
    }
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "redis_node_manager {} did not end within 20 s",
                args.join(" ")
            )
        })
        .expect("redis_node_manager runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What every test here starts from: the manager binary, the shared ZooKeeper's address and
/// a temp dir for the managers' logs.
fn setup() -> (PathBuf, String, tempfile::TempDir) {
    init_tracing();
    let bin = manager_bin_next_to_tests().expect("the manager binary");
    let zk = shared_zk().connect_string();
    (bin, zk, tempfile::tempdir().expect("tmp"))
}

/// A manager process with the registry, its Sentinel and HTTP ports.
struct Running {
    _process: GuardedChild,
    sentinel: u16,
    http: u16,
    log: PathBuf,
}

fn start_manager(bin: &Path, zk: &str, registry: &str, name: &str, dir: &Path) -> Running {
    start_manager_with(bin, zk, registry, name, dir, &[])
}

/// [`start_manager`] with more flags (`-n`: groups of its own besides the registry's).
fn start_manager_with(
    bin: &Path,
    zk: &str,
    registry: &str,
    name: &str,
    dir: &Path,
    extra: &[&str],
) -> Running {
    let (sentinel, http) = (free_port(), free_port());
    let log = dir.join(format!("manager-{name}.log"));
    let mut args: Vec<String> = [
        "-z",
        zk,
        "--groups-from-zookeeper",
        "--groups-znode",
        registry,
        "--manager-name",
        name,
        "--sentinel-addr",
        &format!("127.0.0.1:{sentinel}"),
        "--http-addr",
        &format!("127.0.0.1:{http}"),
        "--zk-session-timeout-ms",
        "4000",
        "--down-after-ms",
        "1000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let process = manager_process(bin, &args, "info", Some(&log)).expect("the manager starts");
    Running {
        _process: process,
        sentinel,
        http,
        log,
    }
}

/// `SENTINEL MASTERS` lists `group` (flattened: the field `name` followed by its value).
fn lists(sentinel: u16, group: &str) -> Option<bool> {
    let flat = sentinel_cmd(sentinel, &["SENTINEL", "MASTERS"]).ok()?;
    Some(flat.windows(2).any(|w| w[0] == "name" && w[1] == group))
}

/// REPLICAOF and SLAVEOF calls a node has served.
fn replicaof_calls(node: &redis_failover_tests::RedisNode) -> u64 {
    node.calls("replicaof") + node.calls("slaveof")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_added_at_run_time_is_watched_and_one_removed_is_let_go() {
    let (bin, zk, dir) = setup();
    let (registry, root) = (unique_root("registry"), unique_root("rt_cache"));
    let trio = RedisGroup::trio();
    let managers = [
        start_manager(&bin, &zk, &registry, "a", dir.path()),
        start_manager(&bin, &zk, &registry, "b", dir.path()),
    ];
    let logs = || {
        managers
            .iter()
            .map(|m| redis_failover_tests::log_tail(&m.log, 30))
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    for m in &managers {
        wait_until_async(DEADLINE, "both managers answer /health", || async {
            get_json(m.http, "/health").await
        })
        .await;
        assert_eq!(lists(m.sentinel, "cache"), Some(false), "no group yet");
    }

    // Added with the CLI: both managers watch it, one leads and publishes its topology.
    let nodes = trio.addrs().join(",");
    let added_at = std::time::Instant::now();
    let (code, out, err) = run_cli(
        &bin,
        &[
            "group",
            "add",
            "cache",
            "--nodes",
            &nodes,
            "--znode-path",
            &root,
            "-z",
            &zk,
            "--groups-znode",
            &registry,
        ],
    )
    .await;
    assert_eq!(code, 0, "group add: {out}{err}");
    assert!(out.starts_with("added group cache: "), "{out}");
    let client = zk_client(&zk).await;
    let before = wait_topology(&client, &root, DEADLINE, "the added group published", |t| {
        t.slaves.len() == 2
    })
    .await;
    assert_eq!(before.master, Some(trio.node(0).node_addr()));
    // Not asserted (the machine may be loaded): printed for docs/benchmarks.
    eprintln!(
        "figure: group add (the CLI, its ZooKeeper session included) to the topology published: {} ms",
        added_at.elapsed().as_millis()
    );
    let holders = wait_until_async(DEADLINE, "both managers in the group's lock", || async {
        let h = lock_holders(&client, &root).await;
        (h.len() == 2).then_some(h)
    })
    .await;
    assert!(holders[0] != holders[1], "{holders:?}");
    for m in &managers {
        wait_until_async(DEADLINE, "SENTINEL MASTERS lists the group", || async {
            lists(m.sentinel, "cache").filter(|l| *l)
        })
        .await;
        let addr = sentinel_cmd(
            m.sentinel,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "cache"],
        )
        .expect("GET-MASTER-ADDR-BY-NAME");
        assert_eq!(
            addr,
            vec!["127.0.0.1".to_string(), trio.node(0).port().to_string()]
        );
        let status = get_json(m.http, "/status").await.expect("/status");
        assert!(status["groups"]["cache"].is_object(), "{status}");
    }
    // Sentinel's own way is refused with the way to do it.
    let monitor = ["SENTINEL", "MONITOR", "x", "127.0.0.1", "1", "1"];
    let refused = sentinel_cmd(managers[0].sentinel, &monitor).expect_err("MONITOR refused");
    assert!(
        refused.contains("redis_node_manager group add/remove"),
        "{refused}"
    );
    // The same name again is refused, over HTTP as by the CLI.
    let (code, body) = request_async(
        managers[1].http,
        "POST",
        "/groups/cache",
        r#"{"nodes":"127.0.0.1:1"}"#,
    )
    .await
    .expect("POST /groups/cache answers");
    assert_eq!(code, 409, "{body}");
    assert!(
        body.contains("group \\\"cache\\\" already exists"),
        "{body}"
    );

    // The daemon really runs: a kill -9 of the master fails over.
    trio.node(0).kill9();
    let after = wait_topology(&client, &root, DEADLINE, "a failover", |t| {
        t.master
            .as_ref()
            .is_some_and(|m| *m != trio.node(0).node_addr())
            && t.slaves.len() == 1
    })
    .await;
    let master = after.master.clone().expect("a master");
    let (new_master, replica) = if master == trio.node(1).node_addr() {
        (trio.node(1), trio.node(2))
    } else {
        (trio.node(2), trio.node(1))
    };
    wait_until_async(DEADLINE, "the other replica follows the new master", || async {
        matches!(replica.role(), Some(NodeRole::Replica { master_port, link_up: true }) if master_port == new_master.port())
            .then_some(())
    })
    .await;

    // An entry that cannot be read is a doubtful view: the group stays watched.
    let entry = format!("{registry}/cache");
    let (good, _) = client.get_data(&entry).await.expect("the registry entry");
    client
        .set_data(&entry, b"not json", None)
        .await
        .expect("spoil the entry");
    for m in &managers {
        wait_until_async(DEADLINE, "the spoiled entry is logged", || async {
            let log = std::fs::read_to_string(&m.log).unwrap_or_default();
            log.contains("-group-refused cache: unreadable entry")
                .then_some(())
        })
        .await;
    }
    for_a_while(
        Duration::from_secs(1),
        Duration::from_millis(250),
        || async {
            for m in &managers {
                assert_eq!(lists(m.sentinel, "cache"), Some(true), "{}", logs());
            }
            assert_eq!(lock_holders(&client, &root).await.len(), 2, "{}", logs());
        },
    )
    .await;
    client
        .set_data(&entry, &good, None)
        .await
        .expect("restore the entry");
    let metrics = |port| async move {
        request_async(port, "GET", "/metrics", "")
            .await
            .map(|(_, body)| body)
            .unwrap_or_default()
    };
    assert!(
        metrics(managers[0].http).await.contains("group=\"cache\""),
        "/metrics shows the group"
    );

    // Removed over HTTP: both managers let it go, and send its nodes nothing.
    let calls = [replicaof_calls(new_master), replicaof_calls(replica)];
    let removed_at = std::time::Instant::now();
    let (code, body) = request_async(managers[0].http, "DELETE", "/groups/cache", "")
        .await
        .expect("DELETE /groups/cache answers");
    assert_eq!(code, 200, "{body}");
    for m in &managers {
        wait_until_async(
            DEADLINE,
            "SENTINEL MASTERS no longer lists the group",
            || async { lists(m.sentinel, "cache").filter(|l| !*l) },
        )
        .await;
        let status = get_json(m.http, "/status").await.expect("/status");
        assert!(status["groups"].get("cache").is_none(), "{status}");
        wait_until_async(DEADLINE, "/metrics drops the group", || async {
            (!metrics(m.http).await.contains("group=\"cache\"")).then_some(())
        })
        .await;
        let none = sentinel_cmd(
            m.sentinel,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "cache"],
        )
        .expect("GET-MASTER-ADDR-BY-NAME");
        assert!(none.is_empty(), "{none:?}");
    }
    wait_until_async(
        DEADLINE,
        "both managers released the group's lock",
        || async { lock_holders(&client, &root).await.is_empty().then_some(()) },
    )
    .await;
    eprintln!(
        "figure: DELETE /groups/cache to both managers out of SENTINEL MASTERS and the lock: {} ms",
        removed_at.elapsed().as_millis()
    );
    // Nobody watches it any more: its master killed now is not replaced, and the replica
    // keeps following the dead master (a manager would have promoted it within ~2 s).
    assert_eq!(new_master.role(), Some(NodeRole::Master));
    assert_eq!(
        replicaof_calls(new_master),
        calls[0],
        "REPLICAOF sent after the removal"
    );
    new_master.kill9();
    for_a_while(Duration::from_secs(5), Duration::from_millis(250), || async {
        assert!(
            matches!(replica.role(), Some(NodeRole::Replica { master_port, .. }) if master_port == new_master.port()),
            "the replica of a removed group changed role: {:?}\n{}",
            replica.role(),
            logs()
        );
    })
    .await;
    assert_eq!(
        replicaof_calls(replica),
        calls[1],
        "REPLICAOF sent after the removal"
    );
    let published = wait_topology(&client, &root, DEADLINE, "the topology stays", |_| true).await;
    assert!(published.same_content(&after), "{published:?} vs {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_subcommands_refuse_bad_input_in_one_line() {
    let (bin, zk, _dir) = setup();
    let registry = unique_root("registry_bad");
    let cli = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend([
            "-z".into(),
            zk.clone(),
            "--groups-znode".into(),
            registry.clone(),
        ]);
        all
    };
    let run = |args: Vec<String>| {
        let bin = bin.clone();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            run_cli(&bin, &refs).await
        }
    };
    let one_line = |err: &str, want: &str| {
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines, vec![want], "stderr");
    };

    let (code, _, err) = run(cli(&["group", "add", "cache", "--nodes", "h1:6379,nope"])).await;
    assert_eq!(code, 2, "{err}");
    one_line(
        &err,
        "redis_node_manager group add: --nodes: bad address \"nope\": no port (expected host:port)",
    );

    let (code, _, err) = run(cli(&["group", "add", "a/b", "--nodes", "h1:6379"])).await;
    assert_eq!(code, 2, "{err}");
    one_line(
        &err,
        "redis_node_manager group add: group name \"a/b\" must be 1 to 64 letters, digits, '.', '_' or '-'",
    );

    let (code, out, err) = run(cli(&[
        "group",
        "add",
        "cache",
        "--nodes",
        "h1:6379,h2:6379",
    ]))
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("under /redis_failover_cache"), "{out}");
    let (code, _, err) = run(cli(&["group", "add", "cache", "--nodes", "h3:6379"])).await;
    assert_eq!(code, 2, "{err}");
    one_line(
        &err,
        &format!(
            "redis_node_manager group add: group \"cache\" already exists in {registry} (nodes \
             h1:6379,h2:6379); remove it first (redis_node_manager group remove cache)"
        ),
    );
    let (code, _, err) = run(cli(&[
        "group",
        "add",
        "other",
        "--nodes",
        "h2:6379",
        "--znode-path",
        "/x_other",
    ]))
    .await;
    assert_eq!(code, 2, "{err}");
    one_line(
        &err,
        "redis_node_manager group add: node h2:6379 is already in group \"cache\"",
    );

    let (code, out, err) = run(cli(&["group", "list"])).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("cache")
            && out.contains("/redis_failover_cache")
            && out.contains("h1:6379,h2:6379"),
        "{out}"
    );
    let (code, _, err) = run(cli(&["group", "remove", "cache"])).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(cli(&["group", "remove", "cache"])).await;
    assert_eq!(code, 2, "{err}");
    one_line(
        &err,
        &format!(
            "redis_node_manager group remove: no group \"cache\" in {registry}; \
             `redis_node_manager group list` shows them"
        ),
    );
}

/// Two entries over the same node, written at once (two `group add` racing, or zkCli, pass
/// each other's check): every manager watches the one added first and refuses the other,
/// whatever it watched before, so the node never gets two leaders. And `POST /groups` to a
/// manager refuses an entry over one of its configured (`-n`) groups, which the registry
/// does not list: managers without that group would lead it a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_entries_are_settled_alike_and_a_configured_group_is_not_doubled() {
    let (bin, zk, dir) = setup();
    let (registry, fixed_root) = (unique_root("registry_c"), unique_root("rt_fixed"));
    let (fixed, shared) = (RedisGroup::trio(), RedisGroup::trio());
    let fixed_nodes = fixed.addrs().join(",");
    let managers = [
        start_manager_with(
            &bin,
            &zk,
            &registry,
            "c1",
            dir.path(),
            &["-n", &fixed_nodes, "--znode-path", &fixed_root],
        ),
        start_manager_with(
            &bin,
            &zk,
            &registry,
            "c2",
            dir.path(),
            &["--synchronous-replicas", "2"],
        ),
    ];
    for m in &managers {
        wait_until_async(DEADLINE, "both managers answer /health", || async {
            get_json(m.http, "/health").await
        })
        .await;
    }
    let client = zk_client(&zk).await;
    let open =
        zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
    let addrs = shared.addrs();
    let entry = |nodes: &[String], path: &str, added_ms: u64| {
        serde_json::json!({"nodes": nodes, "znode_path": path, "added_ms": added_ms, "by": "test"})
            .to_string()
    };
    // "zeta" was added first although its name sorts last; "solo" has one replica.
    let (zeta_root, alpha_root) = (unique_root("rt_zeta"), unique_root("rt_alpha"));
    let solo = RedisGroup::start(1, &[]);
    for (name, body) in [
        ("zeta", entry(&addrs, &zeta_root, 10)),
        ("alpha", entry(&addrs[2..], &alpha_root, 20)),
        ("solo", entry(&solo.addrs(), &unique_root("rt_solo"), 30)),
    ] {
        client
            .create(&format!("{registry}/{name}"), body.as_bytes(), &open)
            .await
            .expect("write an entry");
    }
    let refusal = format!(
        "-group-refused alpha: node {} is already in group \"zeta\", added earlier",
        addrs[2]
    );
    for m in &managers {
        wait_until_async(DEADLINE, "the later entry is refused", || async {
            let log = std::fs::read_to_string(&m.log).unwrap_or_default();
            log.contains(&refusal).then_some(())
        })
        .await;
        wait_until_async(DEADLINE, "zeta is watched", || async {
            lists(m.sentinel, "zeta").filter(|l| *l)
        })
        .await;
        assert_eq!(lists(m.sentinel, "alpha"), Some(false), "alpha refused");
    }
    // A group that cannot fit the manager's --synchronous-replicas is refused, as it would be
    // at start (c1 has the default, which fits every group).
    let misfit = "-group-refused solo: --synchronous-replicas 2 is more than the 1 replicas of \
                  group \"solo\"; no write could ever be acknowledged";
    wait_until_async(DEADLINE, "c2 refuses solo", || async {
        let log = std::fs::read_to_string(&managers[1].log).unwrap_or_default();
        log.contains(misfit).then_some(())
    })
    .await;
    assert_eq!(lists(managers[1].sentinel, "solo"), Some(false));
    wait_until_async(DEADLINE, "c1 watches solo", || async {
        lists(managers[0].sentinel, "solo").filter(|l| *l)
    })
    .await;
    let tree = client
        .list_children(&alpha_root)
        .await
        .map(|c| c.len())
        .unwrap_or(0);
    assert_eq!(tree, 0, "nobody took alpha's lock or published it");

    // A configured group of c1: its nodes and its tree are refused, with a reason.
    for (body, why) in [
        (
            format!(r#"{{"nodes":"{}"}}"#, fixed.addrs()[1]),
            format!("node {} is already in group", fixed.addrs()[1]),
        ),
        (
            format!(r#"{{"nodes":"127.0.0.1:1","znode_path":"{fixed_root}/sub"}}"#),
            format!("znode path {fixed_root}/sub overlaps group"),
        ),
    ] {
        let (code, answer) = request_async(managers[0].http, "POST", "/groups/dup", &body)
            .await
            .expect("POST /groups/dup answers");
        assert_eq!(code, 409, "{answer}");
        assert!(answer.contains(&why), "{answer}");
    }
    let (code, answer) = request_async(
        managers[0].http,
        "POST",
        "/groups/root",
        r#"{"nodes":"127.0.0.1:1","znode_path":"/"}"#,
    )
    .await
    .expect("POST /groups/root answers");
    assert_eq!(code, 400, "{answer}");
    assert!(answer.contains("/ is reserved"), "{answer}");
    let listed = client.list_children(&registry).await.expect("the registry");
    assert_eq!(listed.len(), 3, "nothing added: {listed:?}");
}
