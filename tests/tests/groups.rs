//! One manager, several groups from a config file: each group is watched and failed over
//! on its own, under its own znode path.

use std::time::Duration;

use redis_failover_manager::config::{Cli, FileConfig};
use redis_failover_manager::Config;
use redis_failover_tests::manager::{wait_topology, zk_client, Manager};
use redis_failover_tests::{init_tracing, shared_zk, unique_root, wait_until_async, RedisGroup};

const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_fail_over_independently() {
    init_tracing();
    let zk = shared_zk();
    let (one, two) = (RedisGroup::start(1, &[]), RedisGroup::start(1, &[]));
    let (root1, root2) = (unique_root("group_one"), unique_root("group_two"));
    let toml_text = format!(
        "zkservers = \"{}\"\nzk_session_timeout_ms = 4000\n\n\
         [[groups]]\nname = \"one\"\nnodes = {:?}\nznode_path = \"{root1}\"\n\n\
         [[groups]]\nname = \"two\"\nnodes = {:?}\nznode_path = \"{root2}\"\n",
        zk.connect_string(),
        one.addrs(),
        two.addrs(),
    );
    let file: FileConfig = toml::from_str(&toml_text).expect("config file parses");
    let config = Config::merge(Cli::default(), file).expect("valid config");
    assert_eq!(config.groups.len(), 2);
    let m = Manager::start(config);
    let client = zk_client(&zk.connect_string()).await;
    let before1 = wait_topology(&client, &root1, DEADLINE, "group one", |t| {
        t.slaves.len() == 1
    })
    .await;
    let before2 = wait_topology(&client, &root2, DEADLINE, "group two", |t| {
        t.slaves.len() == 1
    })
    .await;
    assert_eq!(
        before1.master.as_ref().map(|m| m.port),
        Some(one.node(0).port())
    );
    assert_eq!(
        before2.master.as_ref().map(|m| m.port),
        Some(two.node(0).port())
    );

    two.node(0).kill9();
    let after2 = wait_topology(&client, &root2, DEADLINE, "group two failed over", |t| {
        t.master
            .as_ref()
            .is_some_and(|m| m.port == two.node(1).port())
    })
    .await;
    assert_eq!(after2.epoch, 1);
    let after1 = wait_topology(&client, &root1, DEADLINE, "group one", |_| true).await;
    assert!(
        after1.same_content(&before1),
        "group one changed: {after1:?}"
    );
    m.stop().await.expect("clean stop");
}

/// A rack failure: half of the groups' masters killed in the same instant. Every one of
/// them gets a new master holding every write its replica acknowledged (`WAIT 1`) before
/// the kill, the other groups keep theirs, and each new master takes writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masters_killed_together_are_all_replaced_and_lose_no_acknowledged_write() {
    init_tracing();
    let zk = shared_zk();
    const GROUPS: usize = 8;
    const KEYS: usize = 50;
    let trios: Vec<RedisGroup> = (0..GROUPS).map(|_| RedisGroup::trio()).collect();
    let roots: Vec<String> = (0..GROUPS)
        .map(|i| unique_root(&format!("rack_{i}")))
        .collect();
    let mut toml_text = format!(
        "zkservers = \"{}\"\nzk_session_timeout_ms = 4000\ndown_after_ms = 1000\n",
        zk.connect_string()
    );
    for (i, (trio, root)) in trios.iter().zip(&roots).enumerate() {
        toml_text.push_str(&format!(
            "\n[[groups]]\nname = \"g{i}\"\nnodes = {:?}\nznode_path = \"{root}\"\n",
            trio.addrs()
        ));
    }
    let file: FileConfig = toml::from_str(&toml_text).expect("config file parses");
    let config = Config::merge(Cli::default(), file).expect("valid config");
    let m = Manager::start(config);
    let client = zk_client(&zk.connect_string()).await;
    let mut before = Vec::new();
    for root in &roots {
        before.push(wait_topology(&client, root, DEADLINE, root, |t| t.slaves.len() == 2).await);
    }
    // Writes acknowledged by a replica, as the client's synchronous default does.
    let mut acked: Vec<Vec<String>> = vec![Vec::new(); GROUPS];
    for (i, trio) in trios.iter().enumerate() {
        for k in 0..KEYS {
            let key = format!("rack:{i}:{k}");
            trio.node(0)
                .cmd(&["SET", &key, "v"])
                .expect("SET on the master");
            if matches!(trio.node(0).cmd(&["WAIT", "1", "1000"]), Ok(redis::Value::Int(n)) if n >= 1)
            {
                acked[i].push(key);
            }
        }
        assert!(!acked[i].is_empty(), "group {i}: no write acknowledged");
    }
    let killed: Vec<usize> = (0..GROUPS).step_by(2).collect();
    for &i in &killed {
        trios[i].node(0).kill9();
    }
    for &i in &killed {
        let old = trios[i].node(0).node_addr();
        let t = wait_topology(&client, &roots[i], DEADLINE, "a new master", |t| {
            t.master.as_ref().is_some_and(|m| *m != old)
        })
        .await;
        let new = t.master.expect("a master");
        let node = (1..3)
            .map(|n| trios[i].node(n))
            .find(|n| n.node_addr() == new)
            .expect("the new master is one of the replicas");
        let lost: Vec<&String> = acked[i]
            .iter()
            .filter(|k| node.get(k).as_deref() != Some("v"))
            .collect();
        assert!(
            lost.is_empty(),
            "group {i} lost {} acknowledged writes: {lost:?}",
            lost.len()
        );
        // Once its remaining replica follows it (its fence asks for one).
        wait_until_async(DEADLINE, "the new master takes writes", || async {
            node.cmd(&["SET", "rack:after", "1"]).ok().map(|_| ())
        })
        .await;
    }
    for i in (0..GROUPS).filter(|i| !killed.contains(i)) {
        let t = wait_topology(&client, &roots[i], DEADLINE, "unchanged", |_| true).await;
        assert_eq!(t.master, before[i].master, "group {i} changed master");
    }
    m.stop().await.expect("clean stop");
}
