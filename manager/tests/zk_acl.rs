//! Issue 14, item 3: with an identity (`--zk-auth-file`) the managers create every znode
//! writable by themselves only and readable by all; ZooKeeper itself refuses anyone else's
//! write (a client, zkCli); operators listed in `--zk-operator-acl` request failovers and
//! pause with their own identity; a tree made open is locked when such managers start.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use redis_failover_tests::manager::{zk_client, ManagerMode, ManagerSet};
use redis_failover_tests::{shared_zk, wait_until_async, zk_cli, NodeRole, RedisGroup, Scene};
use zookeeper_client as zk;

const BIN: &str = env!("CARGO_BIN_EXE_redis_node_manager");
const DEADLINE: Duration = Duration::from_secs(30);
const MANAGERS: &str = "managers:m-secret-1";
const OPERATOR: &str = "ops:o-secret-2";

/// Runs the binary with `args`, `stdin` and the operator identity in the environment when
/// `as_operator` (bounded: it is killed after 30 s).
async fn run(args: Vec<String>, stdin: &'static str, as_operator: bool) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(BIN);
        cmd.args(&args)
            .env("RUST_LOG", "error")
            .env_remove("REDIS_FAILOVER_ZK_AUTH");
        if as_operator {
            cmd.env("REDIS_FAILOVER_ZK_AUTH", OPERATOR);
        }
        common::output_within(cmd, stdin.as_bytes())
    })
    .await
    .expect("join")
}

/// A manager process with the managers' identity (in a file) and `extra` flags.
fn secured_manager(
    s: &Scene,
    trio: &RedisGroup,
    dir: &std::path::Path,
    extra: &[&str],
) -> ManagerSet {
    let auth = dir.join("zk-auth");
    std::fs::write(&auth, format!("{MANAGERS}\n")).expect("write the identity file");
    let mut flags = ManagerSet::base_flags(&s.connect, &trio.addrs(), &s.root);
    flags.extend(["--zk-auth-file".to_string(), auth.display().to_string()]);
    flags.extend(extra.iter().map(|a| a.to_string()));
    let mut set = ManagerSet::new(ManagerMode::Process(BIN.into()), flags)
        .rust_log("info")
        .log_to(dir);
    set.add(None).expect("spawn manager");
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_managers_write_what_they_created() {
    let trio = RedisGroup::trio();
    let s = Scene::new("acl_owned").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let _m = secured_manager(&s, &trio, dir.path(), &[]);
    let before = s.wait_published(DEADLINE, "published with ACLs", 2).await;

    // Anyone reads; nobody without the identity writes, creates or deletes.
    let nodes = format!("{}/nodes", s.root);
    let plain = zk_client(&s.connect).await;
    let (data, _) = plain.get_data(&nodes).await.expect("world-readable");
    assert!(!data.is_empty());
    assert_eq!(
        plain.set_data(&nodes, b"{}", None).await.err(),
        Some(zk::Error::NoAuth)
    );
    let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    assert_eq!(
        plain
            .create(&format!("{}/x", s.root), b"", &open)
            .await
            .err(),
        Some(zk::Error::NoAuth)
    );
    assert_eq!(
        plain.delete(&nodes, None).await.err(),
        Some(zk::Error::NoAuth)
    );
    // zkCli too: the znode is unchanged after its `set`.
    let (_, stat) = plain.get_data(&nodes).await.expect("get");
    tokio::task::spawn_blocking({
        let (port, nodes) = (shared_zk().port(), nodes.clone());
        move || zk_cli(port, &["set", &nodes, "{}"])
    })
    .await
    .expect("join");
    let (after, stat_after) = plain.get_data(&nodes).await.expect("get");
    assert_eq!(stat_after.version, stat.version, "zkCli changed {nodes}");
    assert_ne!(after, b"{}".to_vec());

    // The managers still do their job under their ACLs: a failover.
    trio.node(0).kill9();
    let t = s
        .wait_new_master(DEADLINE, "a failover with ACLs", &before)
        .await;
    assert_eq!(t.epoch, before.epoch + 1);
    let (acl, _) = plain.get_acl(&nodes).await.expect("acl");
    assert!(
        acl.iter()
            .all(|a| a.scheme() != "world" || a.permission() == zk::Permission::READ),
        "{acl:?}"
    );
}

/// The ACL id (`digest:ops:...`) of the operator identity `ops:o-secret-2`, by the
/// `zk-digest` subcommand.
async fn operator_id() -> String {
    let digest = run(vec!["zk-digest".into()], "ops:o-secret-2\n", false).await;
    assert!(digest.status.success(), "{digest:?}");
    String::from_utf8_lossy(&digest.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_pause_and_fail_over_with_their_own_identity() {
    // The operator's ACL id, as the zk-digest subcommand prints it.
    let operator_id = operator_id().await;
    assert!(operator_id.starts_with("digest:ops:"), "{operator_id}");

    let trio = RedisGroup::trio();
    let s = Scene::new("acl_operator").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let _m = secured_manager(&s, &trio, dir.path(), &["--zk-operator-acl", &operator_id]);
    let before = s.wait_published(DEADLINE, "published with ACLs", 2).await;
    let on = |sub: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = sub.iter().map(|x| x.to_string()).collect();
        a.extend([
            "-z".into(),
            s.connect.clone(),
            "--znode-path".into(),
            s.root.clone(),
        ]);
        a
    };

    // Without an identity ZooKeeper refuses, and the error says what to give.
    let refused = run(on(&["pause"]), "", false).await;
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let err = String::from_utf8_lossy(&refused.stderr);
    // The line docs/production.md quotes, for its group at /cache.
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/production.md"
    ))
    .expect("docs/production.md");
    let quoted = doc
        .lines()
        .find(|l| l.starts_with("redis_node_manager pause: "))
        .expect("the quoted refusal");
    assert_eq!(err.trim(), quoted.replace("/cache", &s.root));

    let paused = run(on(&["pause", "--reason", "acl test"]), "", true).await;
    assert!(paused.status.success(), "{paused:?}");
    s.wait(DEADLINE, "paused shown", |t| t.paused.is_some())
        .await;
    let resumed = run(on(&["resume"]), "", true).await;
    assert!(resumed.status.success(), "{resumed:?}");
    s.wait(DEADLINE, "resumed", |t| t.paused.is_none()).await;

    // A planned switchover, asked by the operator, carried out by the managers.
    let target = trio.node(1).addr();
    let done = run(on(&["failover", "--to", &target]), "", true).await;
    assert!(done.status.success(), "{done:?}");
    let t = s.wait_new_master(DEADLINE, "the switchover", &before).await;
    assert_eq!(t.master.map(|m| m.to_string()), Some(target.clone()));
    wait_until_async(DEADLINE, "the target is master", || async {
        (trio.node(1).role() == Some(NodeRole::Master)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_tree_is_locked_when_managers_with_an_identity_start() {
    let trio = RedisGroup::trio();
    let s = Scene::new("acl_migrate").await;
    // A manager without an identity makes the tree open to all.
    let open = s.manager(&trio.addrs(), |_| {});
    s.wait_published(DEADLINE, "published open", 2).await;
    open.stop().await.expect("stop");
    let nodes = format!("{}/nodes", s.root);
    let plain = zk_client(&s.connect).await;
    plain
        .set_data(
            &format!("{}/nodes", s.root),
            &plain.get_data(&nodes).await.expect("get").0,
            None,
        )
        .await
        .expect("an open tree is writable by anyone");

    let dir = tempfile::tempdir().expect("tempdir");
    let m = secured_manager(&s, &trio, dir.path(), &[]);
    wait_until_async(DEADLINE, "the tree locked", || async {
        let (acl, _) = plain.get_acl(&nodes).await.ok()?;
        let locked = acl
            .iter()
            .all(|a| a.scheme() != "world" || a.permission() == zk::Permission::READ);
        locked.then_some(())
    })
    .await;
    assert_eq!(
        plain.set_data(&nodes, b"{}", None).await.err(),
        Some(zk::Error::NoAuth)
    );
    let log = std::fs::read_to_string(&m.log_paths()[0]).unwrap_or_default();
    assert!(log.contains(&format!("+acl-locked {}", s.root)), "{log}");
}

/// An operator identity, a group and a one-node group to add, a scene, a registry of its own
/// and the added group's znode path.
async fn registry_scene(name: &str) -> (String, RedisGroup, RedisGroup, Scene, String, String) {
    let operator_id = operator_id().await;
    let (trio, extra_group) = (RedisGroup::trio(), RedisGroup::start(1, &[]));
    let s = Scene::new(name).await;
    let (registry, added_root) = (format!("{}_registry", s.root), format!("{}_added", s.root));
    (operator_id, trio, extra_group, s, registry, added_root)
}

/// A manager's flags for the registry at `registry`, with `operator_id` as the operators.
fn registry_flags<'a>(operator_id: &'a str, registry: &'a str) -> [&'a str; 5] {
    [
        "--zk-operator-acl",
        operator_id,
        "--groups-from-zookeeper",
        "--groups-znode",
        registry,
    ]
}

/// Issue 15, item 5, under ACLs: the managers create the group registry so that operators
/// (and only they, besides the managers) add and remove groups; a group added by an operator
/// is watched, and its tree gets the managers' ACLs like any other group's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_add_and_remove_groups_with_their_own_identity() {
    let (operator_id, trio, extra_group, s, registry, added_root) =
        registry_scene("acl_registry").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let flags = registry_flags(&operator_id, &registry);
    let _m = secured_manager(&s, &trio, dir.path(), &flags);
    let plain = zk_client(&s.connect).await;
    wait_until_async(DEADLINE, "the managers created the registry", || async {
        plain.check_stat(&registry).await.ok().flatten()
    })
    .await;
    let nodes = extra_group.addrs().join(",");
    let add = group_add(&s, &registry, "extra", &nodes, &added_root);

    // Without an identity ZooKeeper refuses, and the line says what to give.
    let refused = run(add.clone(), "", false).await;
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.starts_with("redis_node_manager group add: ")
            && err.contains("not authorized")
            && err.contains("--zk-operator-acl"),
        "{err}"
    );

    let added = run(add, "", true).await;
    assert!(added.status.success(), "{added:?}");
    let topology = format!("{added_root}/nodes");
    wait_until_async(DEADLINE, "the added group published", || async {
        plain.get_data(&topology).await.ok()
    })
    .await;
    assert_eq!(
        plain.set_data(&topology, b"{}", None).await.err(),
        Some(zk::Error::NoAuth),
        "the added group's tree has the managers' ACLs"
    );
    let entry = format!("{registry}/extra");
    assert_eq!(
        plain.delete(&entry, None).await.err(),
        Some(zk::Error::NoAuth),
        "only operators and managers remove entries"
    );
    let removed = run(
        vec![
            "group".into(),
            "remove".into(),
            "extra".into(),
            "-z".into(),
            s.connect.clone(),
            "--groups-znode".into(),
            registry.clone(),
        ],
        "",
        true,
    )
    .await;
    assert!(removed.status.success(), "{removed:?}");
    assert_eq!(plain.check_stat(&entry).await.ok().flatten(), None);
}

/// `group add` arguments for group `name` on `nodes` under `znode_path`, in `registry`.
fn group_add(s: &Scene, registry: &str, name: &str, nodes: &str, znode_path: &str) -> Vec<String> {
    [
        "group",
        "add",
        name,
        "--nodes",
        nodes,
        "--znode-path",
        znode_path,
        "-z",
        &s.connect,
        "--groups-znode",
        registry,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

/// A group registry made open to all (by `group add` without an identity, before any manager
/// ran) is locked when managers with an identity start: its root and its entries become
/// writable by the managers only (operators may still add and remove entries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_registry_is_locked_when_managers_with_an_identity_start() {
    let (operator_id, trio, extra_group, s, registry, added_root) =
        registry_scene("acl_open_registry").await;
    let nodes = extra_group.addrs().join(",");
    let added = run(
        group_add(&s, &registry, "extra", &nodes, &added_root),
        "",
        false,
    )
    .await;
    assert!(added.status.success(), "{added:?}");
    let plain = zk_client(&s.connect).await;
    let entry = format!("{registry}/extra");
    let (data, _) = plain.get_data(&entry).await.expect("the entry");
    plain
        .set_data(&entry, &data, None)
        .await
        .expect("an open registry is writable by anyone");

    let dir = tempfile::tempdir().expect("tempdir");
    let flags = registry_flags(&operator_id, &registry);
    let m = secured_manager(&s, &trio, dir.path(), &flags);
    let world_reads_only = |acl: &[zk::Acl]| {
        acl.iter()
            .all(|a| a.scheme() != "world" || a.permission() == zk::Permission::READ)
    };
    wait_until_async(DEADLINE, "the registry locked", || async {
        let (acl, _) = plain.get_acl(&registry).await.ok()?;
        world_reads_only(&acl).then_some(acl)
    })
    .await;
    let (root_acl, _) = plain.get_acl(&registry).await.expect("the root's ACL");
    assert!(
        // ZooKeeper shows a digest's user, not its hash.
        root_acl.iter().any(|a| a.scheme() == "digest"
            && a.id().starts_with("ops:")
            && a.permission()
                == zk::Permission::CREATE | zk::Permission::DELETE | zk::Permission::READ),
        "operators may add and remove entries: {root_acl:?}"
    );
    let (entry_acl, _) = plain.get_acl(&entry).await.expect("the entry's ACL");
    assert!(world_reads_only(&entry_acl), "{entry_acl:?}");

    assert_eq!(
        plain
            .create(
                &format!("{registry}/intruder"),
                b"{}",
                &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
            )
            .await
            .err(),
        Some(zk::Error::NoAuth),
        "no entry added without an identity"
    );
    assert_eq!(
        plain.set_data(&entry, b"{}", None).await.err(),
        Some(zk::Error::NoAuth),
        "no entry rewritten without an identity"
    );
    let log = std::fs::read_to_string(&m.log_paths()[0]).unwrap_or_default();
    assert!(log.contains(&format!("+acl-locked {registry}:")), "{log}");
    assert!(log.contains(&format!("+acl-locked {entry}:")), "{log}");
}

/// `group add` with an identity does not create a missing registry (it would be the
/// operator's, and shut the managers out): one line says to start a manager first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_does_not_create_the_registry() {
    let s = Scene::new("acl_no_registry").await;
    let (registry, added_root) = (format!("{}_registry", s.root), format!("{}_added", s.root));
    let add = group_add(&s, &registry, "extra", "127.0.0.1:6390", &added_root);
    let refused = run(add, "", true).await;
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr),
        format!(
            "redis_node_manager group add: no group registry at {registry}: start a manager \
             with --groups-from-zookeeper first (it creates the registry with the managers' \
             ACL)\n"
        )
    );
    let plain = zk_client(&s.connect).await;
    assert_eq!(plain.check_stat(&registry).await.ok().flatten(), None);
}
