//! Issue 14: ZooKeeper as production runs it, a 3-server ensemble with fsync on and
//! `tickTime=2000` ([`ZkEnsemble`]), under real managers and clients. A ZooKeeper server
//! dying must stop nothing while a quorum remains; without a quorum nobody is promoted, and
//! once it returns exactly one failover happens; a client whose server dies moves to
//! another and keeps following the topology. Each test starts its own ensemble.

use std::time::Duration;

use redis::AsyncCommands;
use redis_failover_tests::manager::zk_client;
use redis_failover_tests::{
    for_a_while, wait_client_follows, NodeRole, RedisGroup, Scene, ZkEnsemble,
};
use zookeeper_client as zk;

const DEADLINE: Duration = Duration::from_secs(60);

/// The Redis nodes of `trio` that say they are master.
fn masters(trio: &RedisGroup) -> Vec<String> {
    (0..3)
        .filter(|i| trio.node(*i).role() == Some(NodeRole::Master))
        .map(|i| trio.node(i).addr())
        .collect()
}

/// Three ZooKeeper servers, a trio of nodes, and a scene named `name` on the ensemble.
async fn ensemble_scene(name: &str) -> (ZkEnsemble, RedisGroup, Scene) {
    let ens = ZkEnsemble::start(3);
    let trio = RedisGroup::trio();
    let s = Scene::at(&ens.connect_string(), name).await;
    (ens, trio, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_then_the_leader_of_zookeeper_dying_stops_nothing() {
    let ens = ZkEnsemble::start(3);
    let trio = RedisGroup::trio();
    // All three servers and a chroot, as production gives them; the chroot exists first.
    let plain = zk_client(&ens.connect_string()).await;
    plain
        .create(
            "/redis-ha",
            b"",
            &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .expect("create the chroot");
    let s = Scene::at(
        &format!("{}/redis-ha", ens.connect_string()),
        "ensemble_members",
    )
    .await;
    let a = s.named_manager(&trio, "a", |_| {});
    let b = s.named_manager(&trio, "b", |_| {});
    let before = s
        .wait_published(DEADLINE, "published on the ensemble", 2)
        .await;
    let under_chroot = format!("/redis-ha{}/nodes", s.root);
    assert!(
        plain
            .check_stat(&under_chroot)
            .await
            .expect("stat")
            .is_some(),
        "{under_chroot}: the topology lives under the chroot"
    );
    drop(plain);
    let mut client = s.client().await;
    let _: () = client.set("k:0", 0).await.expect("SET");

    // A follower dies: the other two are a quorum, writes and the managers carry on.
    let follower = ens.followers()[0];
    ens.member(follower).kill();
    for i in 1..=20 {
        let _: () = client
            .set(format!("k:{i}"), i)
            .await
            .expect("SET with a follower dead");
    }
    ens.restart(&[follower]);

    // The leader dies: the others elect a new one.
    let leader = ens.wait_leader();
    ens.member(leader).kill();
    let new_leader = ens.wait_leader();
    assert_ne!(new_leader, leader);
    for i in 21..=40 {
        let _: () = client
            .set(format!("k:{i}"), i)
            .await
            .expect("SET across the ZooKeeper leader's death");
    }

    // A Redis crash is still failed over, once.
    trio.node(0).kill9();
    let t = s
        .wait_new_master(DEADLINE, "a failover on the new quorum", &before)
        .await;
    assert_eq!(t.epoch, before.epoch + 1);
    let new_master =
        wait_client_follows(&client, &t, DEADLINE, "the client follows the new master").await;
    let _: () = client.set("k:41", 41).await.expect("SET on the new master");
    assert_eq!(masters(&trio), vec![new_master.to_string()]);
    for i in 0..=41u64 {
        let v: Option<u64> = client.get(format!("k:{i}")).await.expect("GET");
        assert_eq!(v, Some(i), "k:{i}");
    }
    b.stop().await.expect("stop b");
    a.stop().await.expect("stop a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_promotion_without_a_quorum_and_exactly_one_once_it_returns() {
    let (ens, trio, s) = ensemble_scene("ensemble_quorum").await;
    // The shortest session the ensemble grants (2 × tickTime).
    let session_ms = 4000;
    let a = s.named_manager(&trio, "a", |c| c.zk_session_timeout_ms = Some(session_ms));
    let before = s
        .wait_published(DEADLINE, "published on the ensemble", 2)
        .await;

    // Two of three servers die: the last one cannot form a quorum and serves nobody.
    let leader = ens.wait_leader();
    let follower = ens.followers()[0];
    ens.member(leader).kill();
    ens.member(follower).kill();
    trio.node(0).kill9();
    for_a_while(
        Duration::from_millis(session_ms * 2),
        Duration::from_millis(50),
        || async {
            trio.assert_replicas_kept("without a ZooKeeper quorum");
        },
    )
    .await;

    // The quorum returns: one failover, and no second one after it.
    ens.restart(&[leader, follower]);
    let t = s
        .wait_new_master(DEADLINE, "a failover once the quorum is back", &before)
        .await;
    assert_eq!(t.epoch, before.epoch + 1);
    let promoted = t.master.clone().expect("a master").to_string();
    for_a_while(
        Duration::from_secs(3),
        Duration::from_millis(100),
        || async {
            assert_eq!(
                masters(&trio),
                vec![promoted.clone()],
                "one master in Redis"
            );
            let now = s.topology().await.expect("topology");
            assert_eq!(now.epoch, before.epoch + 1, "no second promotion: {now:?}");
        },
    )
    .await;
    a.stop().await.expect("stop a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_server_dies_moves_to_another_and_keeps_following() {
    let (ens, trio, s) = ensemble_scene("ensemble_client").await;
    let a = s.named_manager(&trio, "a", |_| {});
    let before = s
        .wait_published(DEADLINE, "published on the ensemble", 2)
        .await;

    // Which server the client's session lands on: the one whose session list grows.
    let sessions = |ens: &ZkEnsemble| -> Vec<Vec<String>> {
        (0..ens.len()).map(|i| ens.sessions_on(i)).collect()
    };
    let old = sessions(&ens);
    let mut client = s.client().await;
    let new = sessions(&ens);
    let server = (0..ens.len())
        .find(|i| new[*i].iter().any(|sid| !old[*i].contains(sid)))
        .expect("the client's session on one of the servers");
    ens.member(server).kill();

    // The topology changes after the move: the client must see it.
    trio.node(0).kill9();
    let t = s
        .wait_new_master(
            DEADLINE,
            "a failover after the client's server died",
            &before,
        )
        .await;
    wait_client_follows(
        &client,
        &t,
        DEADLINE,
        "the moved client follows the failover",
    )
    .await;
    let _: () = client.set("after", 1).await.expect("SET on the new master");
    let on_others: usize = (0..ens.len())
        .filter(|i| *i != server)
        .map(|i| ens.sessions_on(i).len())
        .sum();
    assert!(on_others > 0, "sessions moved to the live servers");
    a.stop().await.expect("stop a");
}
