//! One manager, several groups from a config file: each group is watched and failed over
//! on its own, under its own znode path.

use std::time::Duration;

use redis_failover_manager::config::{Cli, FileConfig};
use redis_failover_manager::Config;
use redis_failover_tests::manager::{wait_topology, zk_client, Manager};
use redis_failover_tests::{init_tracing, shared_zk, unique_root, RedisGroup};

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
