//! Several managers: each publishes its view; the leader fails over only when enough views
//! agree (`--required-node-managers`, `--node-strategy`); a manager id can be used once.

use std::time::Duration;

use redis_failover_client::ManagerView;
use redis_failover_tests::manager::{config, read_topology, wait_topology, zk_client, Manager};
use redis_failover_tests::{
    init_tracing, shared_zk, unique_root, wait_until_async, NodeRole, RedisGroup,
};

const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_failover_without_the_required_views_then_one_with_them() {
    init_tracing();
    let zk = shared_zk();
    let trio = RedisGroup::trio();
    let root = unique_root("required");
    let cfg = |name: &str| {
        let name = name.to_string();
        config(&zk.connect_string(), &trio.addrs(), &root, move |c| {
            c.required_node_managers = Some(2);
            c.manager_name = Some(name);
        })
    };
    let a = Manager::start(cfg("a"));
    let zkc = zk_client(&zk.connect_string()).await;
    let before = wait_topology(&zkc, &root, DEADLINE, "published by a", |t| {
        t.slaves.len() == 2
    })
    .await;

    // Its view is there for others (and operators) to read.
    let views = format!("{root}/manager_node_state");
    let view = wait_until_async(DEADLINE, "a's view", || async {
        let ids = zkc.list_children(&views).await.ok()?;
        let id = ids.into_iter().find(|i| i.ends_with("-a"))?;
        let (data, _) = zkc.get_data(&format!("{views}/{id}")).await.ok()?;
        ManagerView::from_json(&data)
            .ok()
            .filter(|v| v.available.len() == 3)
    })
    .await;
    assert!(view.unavailable.is_empty() && view.at_ms > 0);

    // One view of the two required: the dead master is not replaced.
    trio.node(0).kill9();
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < until {
        for i in 1..3 {
            assert!(
                matches!(trio.node(i).role(), Some(NodeRole::Replica { .. })),
                "promoted on one view"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        read_topology(&zkc, &root).await.map(|t| t.epoch),
        Some(before.epoch)
    );

    // A second manager brings the second view: now the vote carries.
    let b = Manager::start(cfg("b"));
    let t = wait_topology(
        &zkc,
        &root,
        DEADLINE,
        "a failover once two views agree",
        |t| t.master.is_some() && t.master != before.master,
    )
    .await;
    assert_eq!(t.epoch, before.epoch + 1);
    b.stop().await.expect("stop b");
    a.stop().await.expect("stop a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_id_in_use_is_refused() {
    init_tracing();
    let zk = shared_zk();
    let trio = RedisGroup::start(1, &[]);
    let root = unique_root("dup_id");
    let cfg = || {
        config(&zk.connect_string(), &trio.addrs(), &root, |c| {
            c.manager_name = Some("same".into());
            c.zk_session_timeout_ms = Some(2000);
        })
    };
    let first = Manager::start(cfg());
    let zkc = zk_client(&zk.connect_string()).await;
    let views = format!("{root}/manager_node_state");
    wait_until_async(DEADLINE, "the first manager's view", || async {
        (zkc.list_children(&views).await.ok()?.len() == 1).then_some(())
    })
    .await;
    let second = Manager::start(cfg());
    let err = second.stop_after_start_error().await;
    assert!(err.contains("already used by a running manager"), "{err}");
    first.stop().await.expect("stop");
}
