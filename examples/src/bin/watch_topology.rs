//! Prints `<root>/nodes` every time the node manager changes it: the smallest program that
//! follows failovers, using only ZooKeeper and the shared schema.
//!
//! `cargo run -p redis-failover-examples --bin watch_topology -- 127.0.0.1:2181 /redis_failover`

use std::time::Duration;

use redis_failover_client::{Topology, ZnodePaths};
use zookeeper_client as zk;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let servers = args.next().unwrap_or_else(|| "127.0.0.1:2181".to_string());
    let root = args.next().unwrap_or_else(|| "/redis_failover".to_string());
    let paths = match ZnodePaths::new(&root) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("watch_topology: {e}");
            std::process::exit(2);
        }
    };
    let connecting = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&servers);
    let client = match tokio::time::timeout(Duration::from_secs(15), connecting).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => fail(&format!("cannot connect to ZooKeeper at {servers}: {e}")),
        Err(_) => fail(&format!(
            "ZooKeeper at {servers} did not answer within 15 s"
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
                        t.slaves.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                        t.unavailable
                            .iter()
                            .map(|s| s.to_string())
                            .collect::<Vec<_>>(),
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
    eprintln!("watch_topology: {msg}");
    std::process::exit(1);
}
