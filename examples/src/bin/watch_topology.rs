//! Prints `<root>/nodes` every time the node manager changes it: the smallest program that
//! follows failovers, using only ZooKeeper and the shared schema.
//!
//! `cargo run -p redis-failover-examples --bin watch_topology -- --zk 127.0.0.1:2181 --znode-path /redis_failover`
//! (`--help` for the flags).

use std::time::Duration;

use clap::Parser;
use redis_failover_client::{Topology, ZnodePaths};
use redis_failover_examples::{names, GroupArgs, AFTER_HELP};
use zookeeper_client as zk;

/// Prints <znode-path>/nodes (master, replicas, unavailable nodes, epoch) now and every time
/// the node manager changes it, with ZooKeeper watches only (no Redis connection). Runs until
/// interrupted.
#[derive(Parser, Debug)]
#[command(name = "watch_topology", after_help = AFTER_HELP)]
struct Args {
    #[command(flatten)]
    group: GroupArgs,
}

/// How long to wait for a ZooKeeper session before giving up.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() {
    let Args { group } = Args::parse();
    let servers = group.zk;
    let paths = match ZnodePaths::new(&group.znode_path) {
        Ok(p) => p,
        Err(e) => fail(&format!("--znode-path: {e}")),
    };
    let connecting = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&servers);
    let client = match tokio::time::timeout(CONNECT_WAIT, connecting).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => fail(&format!(
            "cannot connect to ZooKeeper at {servers}: {e} (check --zk / REDIS_FAILOVER_ZKSERVERS)"
        )),
        Err(_) => fail(&format!(
            "cannot reach ZooKeeper at {servers} within {} s (check --zk / REDIS_FAILOVER_ZKSERVERS)",
            CONNECT_WAIT.as_secs()
        )),
    };
    let path = paths.nodes();
    loop {
        // A one-shot watch is set by every read; wait for the next change, then read again.
        let changed = match client.get_and_watch_data(&path).await {
            Ok((data, stat, watcher)) => {
                match Topology::from_json(&data) {
                    Ok(t) => println!(
                        "version {}: master={} slaves={:?} unavailable={:?} epoch={}",
                        stat.version,
                        t.master.map_or("null".to_string(), |m| m.to_string()),
                        names(&t.slaves),
                        names(&t.unavailable),
                        t.epoch
                    ),
                    Err(e) => println!("version {}: {path} is corrupt: {e}", stat.version),
                }
                watcher.changed()
            }
            Err(zk::Error::NoNode) => match client.check_and_watch_stat(&path).await {
                Ok((_, watcher)) => {
                    println!("{path} does not exist yet; waiting");
                    watcher.changed()
                }
                Err(e) => fail(&format!("watching {path}: {e}")),
            },
            Err(e) => fail(&format!("reading {path}: {e}")),
        };
        let event = changed.await;
        if event.event_type == zk::EventType::Session {
            fail(&format!(
                "ZooKeeper session ended ({:?})",
                event.session_state
            ));
        }
    }
}

fn fail(msg: &str) -> ! {
    redis_failover_examples::fail("watch_topology", msg)
}
