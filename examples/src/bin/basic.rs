//! Connect through ZooKeeper, write, read, print the topology: the whole client API in a
//! screen. Writes go to the master, reads to a replica.
//!
//! `cargo run -p redis-failover-examples --bin basic -- 127.0.0.1:2181 /redis_failover`

use redis::AsyncCommands;
use redis_failover_client::Client;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let zk = args.next().unwrap_or_else(|| "127.0.0.1:2181".to_string());
    let root = args.next().unwrap_or_else(|| "/redis_failover".to_string());
    // The only change for a redis-rs program: how it connects.
    let mut redis = match Client::builder(&zk).znode_path(&root).connect().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("basic: {e}");
            std::process::exit(1);
        }
    };
    let view = redis.topology();
    println!(
        "master {:?}, replicas {:?}, epoch {}, znode version {}",
        view.topology.master.map(|m| m.to_string()),
        view.topology
            .slaves
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
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
        eprintln!("basic: {e}");
        std::process::exit(1);
    }
}
