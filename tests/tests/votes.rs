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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_finishes_a_recorded_promotion_and_no_other() {
    use redis_failover_client::{NodeAddr, Topology};
    use redis_failover_tests::manager::write_raw;

    init_tracing();
    let zk = shared_zk();
    let trio = RedisGroup::trio();
    let root = unique_root("roll_forward");
    let addr = |i: usize| -> NodeAddr { trio.node(i).addr().parse().expect("address") };
    // What a leader killed between promotion and re-pointing leaves behind: the promotion of
    // node 2 recorded, node 2 promoted, node 1 still following the old master, which has
    // meanwhile restarted as a master of its own (without persistence it comes back empty,
    // or with a stale RDB): two nodes claim master, and only the recorded one may win.
    let mut left = Topology {
        master: None,
        slaves: vec![addr(1), addr(2)],
        unavailable: vec![addr(0)],
        epoch: 3,
        ..Topology::default()
    };
    left.promoting = Some(addr(2));
    let zkc = zk_client(&zk.connect_string()).await;
    write_raw(&zkc, &format!("{root}/nodes"), &left.to_json()).await;
    trio.node(0).kill9();
    trio.node(2)
        .cmd(&["REPLICAOF", "NO", "ONE"])
        .expect("promote by hand");
    trio.node(0).restart(None);

    let m = Manager::start(config(&zk.connect_string(), &trio.addrs(), &root, |_| {}));
    let t = wait_topology(&zkc, &root, DEADLINE, "the promotion finished", |t| {
        t.master.is_some() && t.promoting.is_none()
    })
    .await;
    assert_eq!(
        t.master,
        Some(addr(2)),
        "the recorded promotion is the one finished"
    );
    assert_eq!(t.epoch, 4);
    let port = trio.node(2).port();
    for i in [0, 1] {
        redis_failover_tests::wait_until(DEADLINE, "the others re-pointed", || {
            matches!(trio.node(i).role(), Some(NodeRole::Replica { master_port, .. }) if master_port == port)
                .then_some(())
        });
    }
    m.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_managers_one_leader_no_flapping_and_a_single_failover() {
    init_tracing();
    let zk = shared_zk();
    let trio = RedisGroup::trio();
    let root = unique_root("three");
    let cfg = |name: &str| {
        let name = name.to_string();
        config(&zk.connect_string(), &trio.addrs(), &root, move |c| {
            c.manager_name = Some(name)
        })
    };
    let managers: Vec<Manager> = ["a", "b", "c"]
        .iter()
        .map(|n| Manager::start(cfg(n)))
        .collect();
    let zkc = zk_client(&zk.connect_string()).await;
    let before = wait_topology(&zkc, &root, DEADLINE, "published", |t| t.slaves.len() == 2).await;
    let lock = format!("{root}/master_redis_node_manager_lock");
    let leader = || async {
        let mut children = zkc.list_children(&lock).await.ok()?;
        children.sort_by_key(|c| c.rsplit('-').next().map(str::to_string));
        let first = children.first()?.clone();
        let (data, _) = zkc.get_data(&format!("{lock}/{first}")).await.ok()?;
        Some((children.len(), String::from_utf8_lossy(&data).to_string()))
    };
    let (n, first_leader) = wait_until_async(DEADLINE, "three contenders", || async {
        leader().await.filter(|(n, _)| *n == 3)
    })
    .await;
    assert_eq!(n, 3);
    // Healthy managers keep the same leader (the Ruby gem's #37 was a lock flapping).
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < until {
        assert_eq!(
            leader().await.map(|(_, l)| l),
            Some(first_leader.clone()),
            "leadership moved"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One failover, by whoever leads, however many managers watch.
    trio.node(0).kill9();
    let t = wait_topology(&zkc, &root, DEADLINE, "a failover", |t| {
        t.master.is_some() && t.master != before.master
    })
    .await;
    assert_eq!(t.epoch, before.epoch + 1);
    let settle = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < settle {
        let now = read_topology(&zkc, &root).await.expect("topology");
        assert_eq!(now.epoch, t.epoch, "a second failover happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for m in managers {
        m.stop().await.expect("stop");
    }
}

/// Three managers; the third logs in as an ACL user that is then disabled on the master
/// only, so it alone cannot reach the master. Returns whether a failover followed.
async fn one_blind_manager(strategy: &str) -> bool {
    init_tracing();
    let zk = shared_zk();
    let trio = RedisGroup::trio();
    for n in trio.nodes() {
        n.cmd(&["ACL", "SETUSER", "blind", "on", ">pw", "~*", "&*", "+@all"])
            .expect("ACL SETUSER");
    }
    let root = unique_root(&format!("blind_{strategy}"));
    let cfg = |name: &str, blind: bool| {
        let (name, strategy) = (name.to_string(), strategy.to_string());
        config(&zk.connect_string(), &trio.addrs(), &root, move |c| {
            c.manager_name = Some(name);
            c.node_strategy = Some(strategy.parse().expect("strategy"));
            if blind {
                c.username = Some("blind".into());
                c.password = Some("pw".parse().expect("secret"));
            }
        })
    };
    let managers = vec![
        Manager::start(cfg("a", false)),
        Manager::start(cfg("b", false)),
        Manager::start(cfg("c", true)),
    ];
    let zkc = zk_client(&zk.connect_string()).await;
    let before = wait_topology(&zkc, &root, DEADLINE, "published", |t| t.slaves.len() == 2).await;
    let master = before.master.clone().expect("master");
    let views = format!("{root}/manager_node_state");
    let view_of = |suffix: &'static str| {
        let zkc = &zkc;
        let views = &views;
        async move {
            let ids = zkc.list_children(views).await.ok()?;
            let id = ids.into_iter().find(|i| i.ends_with(suffix))?;
            let (data, _) = zkc.get_data(&format!("{views}/{id}")).await.ok()?;
            ManagerView::from_json(&data).ok()
        }
    };
    // Steady state first: every manager has reported every node available (a view that
    // does not mention a node casts no ballot on it).
    for suffix in ["-a", "-b", "-c"] {
        wait_until_async(DEADLINE, "a full view from every manager", || async {
            view_of(suffix)
                .await
                .filter(|v| v.available.len() == 3)
                .map(|_| ())
        })
        .await;
    }

    // Blind c to the master only.
    trio.node(0)
        .cmd(&["ACL", "SETUSER", "blind", "off"])
        .expect("ACL off");
    trio.node(0)
        .cmd(&["CLIENT", "KILL", "USER", "blind"])
        .expect("CLIENT KILL");
    wait_until_async(DEADLINE, "c sees the master down", || async {
        view_of("-c")
            .await
            .filter(|v| v.unavailable.contains(&master))
            .map(|_| ())
    })
    .await;
    // Give the vote time to act (bounded), watching the epoch.
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut failed_over = false;
    while tokio::time::Instant::now() < until && !failed_over {
        failed_over = read_topology(&zkc, &root)
            .await
            .is_some_and(|t| t.epoch > before.epoch);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for m in managers {
        m.stop().await.expect("stop");
    }
    failed_over
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_blind_manager_is_outvoted_under_majority() {
    assert!(
        !one_blind_manager("majority").await,
        "failed over on one manager's word"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_blind_manager_is_enough_under_single() {
    assert!(
        one_blind_manager("single").await,
        "no failover although one manager saw the master down"
    );
}
