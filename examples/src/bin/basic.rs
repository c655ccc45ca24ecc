//! Connect through ZooKeeper, write, read, print the topology: the whole client API in a
//! screen. Writes go to the master, reads to a replica.
//!
//! `cargo run -p redis-failover-examples --bin basic -- --zk 127.0.0.1:2181 --znode-path /redis_failover`
//! (`--help` for the flags).

use clap::Parser;
use redis::AsyncCommands;
use redis_failover_client::Client;
use redis_failover_examples::{fail, names, GroupArgs, AFTER_HELP};

/// Connects through ZooKeeper, prints the topology, writes to the master and reads from a
/// replica (SET, INCR, GET and a MULTI/EXEC pipeline), then exits.
#[derive(Parser, Debug)]
#[command(name = "basic", after_help = AFTER_HELP)]
struct Args {
    #[command(flatten)]
    group: GroupArgs,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // The only change for a redis-rs program: how it connects.
    let builder = Client::builder(&args.group.zk).znode_path(&args.group.znode_path);
    let connected = builder.connect().await;
    let mut redis = connected.unwrap_or_else(|e| fail("basic", &args.group.explain(&e)));
    let view = redis.topology();
    println!(
        "master {:?}, replicas {:?}, epoch {}, znode version {}",
        view.topology.master.map(|m| m.to_string()),
        names(&view.topology.slaves),
        view.topology.epoch,
        view.version
    );
    let result: redis::RedisResult<()> = async {
        redis
            .set::<_, _, ()>("greeting", "hello from redis_failover")
            .await?;
        let n: i64 = redis.incr("visits", 1).await?;
        // A read right after a write may hit a replica that has not received it yet.
        let greeting: Option<String> = redis.get("greeting").await?;
        println!("visits={n} greeting={greeting:?}");
        let (a, b): (i64, i64) = redis::pipe()
            .atomic()
            .incr("visits", 1)
            .incr("visits", 1)
            .query_async(&mut redis)
            .await?;
        println!("after a MULTI/EXEC pipeline: {a}, {b}");
        Ok(())
    }
    .await;
    if let Err(e) = result {
        fail("basic", &e.to_string());
    }
}
