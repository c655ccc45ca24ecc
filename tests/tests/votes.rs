//! Several managers: each publishes its view; the leader fails over only when enough views
//! agree (`--required-node-managers`, `--node-strategy`); a manager id can be used once.

use std::time::Duration;

use redis_failover_manager::config::Cli;
use redis_failover_tests::manager::{lock_holders, manager_view, Manager};
use redis_failover_tests::{for_a_while, wait_until_async, RedisGroup, Scene};

const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_failover_without_the_required_views_then_one_with_them() {
    let trio = RedisGroup::trio();
    let s = Scene::new("required").await;
    let required = |c: &mut Cli| c.required_node_managers = Some(2);
    let a = s.named_manager(&trio, "a", required);
    let before = s.wait_published(DEADLINE, "published by a", 2).await;

    // Its view is there for others (and operators) to read.
    let view = wait_until_async(DEADLINE, "a's view", || async {
        manager_view(&s.zk, &s.root, "-a")
            .await
            .filter(|v| v.available.len() == 3)
    })
    .await;
    assert!(view.unavailable.is_empty() && view.at_ms > 0);

    // One view of the two required: the dead master is not replaced.
    trio.node(0).kill9();
    for_a_while(
        Duration::from_secs(3),
        Duration::from_millis(50),
        || async {
            trio.assert_replicas_kept("on one view");
        },
    )
    .await;
    assert_eq!(s.topology().await.map(|t| t.epoch), Some(before.epoch));

    // A second manager brings the second view: now the vote carries.
    let b = s.named_manager(&trio, "b", required);
    let t = s
        .wait_new_master(DEADLINE, "a failover once two views agree", &before)
        .await;
    assert_eq!(t.epoch, before.epoch + 1);
    b.stop().await.expect("stop b");
    a.stop().await.expect("stop a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_id_in_use_is_refused() {
    let trio = RedisGroup::start(1, &[]);
    let s = Scene::new("dup_id").await;
    let short_session = |c: &mut Cli| c.zk_session_timeout_ms = Some(2000);
    let first = s.named_manager(&trio, "same", short_session);
    let views = format!("{}/manager_node_state", s.root);
    wait_until_async(DEADLINE, "the first manager's view", || async {
        (s.zk.list_children(&views).await.ok()?.len() == 1).then_some(())
    })
    .await;
    let second = s.named_manager(&trio, "same", short_session);
    let err = second.stop_after_start_error().await;
    assert!(err.contains("already used by a running manager"), "{err}");
    first.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_finishes_a_recorded_promotion_and_no_other() {
    use redis_failover_client::{NodeAddr, Topology};

    let trio = RedisGroup::trio();
    let s = Scene::new("roll_forward").await;
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
    s.publish(&left).await;
    trio.node(0).kill9();
    trio.node(2).must(&["REPLICAOF", "NO", "ONE"]);
    trio.node(0).restart(None);

    let m = s.manager(&trio.addrs(), |_| {});
    let t = s
        .wait(DEADLINE, "the promotion finished", |t| {
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
        trio.node(i)
            .wait_follows(port, false, DEADLINE, "the others re-pointed");
    }
    m.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_managers_one_leader_no_flapping_and_a_single_failover() {
    let trio = RedisGroup::trio();
    let s = Scene::new("three").await;
    let managers: Vec<Manager> = ["a", "b", "c"]
        .iter()
        .map(|n| s.named_manager(&trio, n, |_| {}))
        .collect();
    let before = s.wait_published(DEADLINE, "published", 2).await;
    let leader = || async {
        let holders = lock_holders(&s.zk, &s.root).await;
        Some((holders.len(), holders.first()?.clone()))
    };
    let (n, first_leader) = wait_until_async(DEADLINE, "three contenders", || async {
        leader().await.filter(|(n, _)| *n == 3)
    })
    .await;
    assert_eq!(n, 3);
    // Healthy managers keep the same leader (the Ruby gem's #37 was a lock flapping).
    for_a_while(
        Duration::from_secs(3),
        Duration::from_millis(100),
        || async {
            assert_eq!(
                leader().await.map(|(_, l)| l),
                Some(first_leader.clone()),
                "leadership moved"
            );
        },
    )
    .await;
    // One failover, by whoever leads, however many managers watch.
    trio.node(0).kill9();
    let t = s.wait_new_master(DEADLINE, "a failover", &before).await;
    assert_eq!(t.epoch, before.epoch + 1);
    for_a_while(
        Duration::from_secs(2),
        Duration::from_millis(100),
        || async {
            let now = s.topology().await.expect("topology");
            assert_eq!(now.epoch, t.epoch, "a second failover happened");
        },
    )
    .await;
    for m in managers {
        m.stop().await.expect("stop");
    }
}

/// Three managers; the third logs in as an ACL user that is then disabled on the master
/// only, so it alone cannot reach the master. Returns whether a failover followed.
async fn one_blind_manager(strategy: &str) -> bool {
    let trio = RedisGroup::trio();
    for n in trio.nodes() {
        n.cmd(&["ACL", "SETUSER", "blind", "on", ">pw", "~*", "&*", "+@all"])
            .expect("ACL SETUSER");
    }
    let s = Scene::new(&format!("blind_{strategy}")).await;
    let cfg = |name: &str, blind: bool| {
        s.named_manager(&trio, name, |c| {
            c.node_strategy = Some(strategy.parse().expect("strategy"));
            if blind {
                c.username = Some("blind".into());
                c.password = Some("pw".parse().expect("secret"));
            }
        })
    };
    let managers = vec![cfg("a", false), cfg("b", false), cfg("c", true)];
    let before = s.wait_published(DEADLINE, "published", 2).await;
    let master = before.master.clone().expect("master");
    let view_of = |suffix: &'static str| manager_view(&s.zk, &s.root, suffix);
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
    trio.node(0).must(&["ACL", "SETUSER", "blind", "off"]);
    trio.node(0).must(&["CLIENT", "KILL", "USER", "blind"]);
    wait_until_async(DEADLINE, "c sees the master down", || async {
        view_of("-c")
            .await
            .filter(|v| v.unavailable.contains(&master))
            .map(|_| ())
    })
    .await;
    // Give the vote time to act (bounded), watching the epoch and the recorded promotion
    // (the master answers, so a failover is held until its fence bound before the new
    // master is published; the decision shows at once as `promoting`).
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut failed_over = false;
    while tokio::time::Instant::now() < until && !failed_over {
        failed_over = s
            .topology()
            .await
            .is_some_and(|t| t.epoch > before.epoch || t.promoting.is_some());
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
