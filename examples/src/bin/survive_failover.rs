//! Writes and reads in a loop and prints every topology change and every error the client
//! had to surface. Run it, then `kill -9` the master (see `scripts/demo.sh`).
//!
//! `cargo run -p redis-failover-examples --bin survive_failover -- 127.0.0.1:2181 /redis_failover [seconds]`

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis_failover_client::Client;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let zk = args.next().unwrap_or_else(|| "127.0.0.1:2181".to_string());
    let root = args.next().unwrap_or_else(|| "/redis_failover".to_string());
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);
    let mut redis = match Client::builder(&zk).znode_path(&root).connect().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("survive_failover: {e}");
            std::process::exit(1);
        }
    };
    let mut changes = redis.subscribe();
    let start = Instant::now();
    let (mut ok, mut errors, mut seq) = (0u64, 0u64, 0u64);
    let mut last_report = Instant::now();
    while start.elapsed() < Duration::from_secs(seconds) {
        if changes.has_changed().unwrap_or(false) {
            let v = changes.borrow_and_update().clone();
            println!(
                "{:>7.3}s topology: master {:?} replicas {:?} epoch {}",
                start.elapsed().as_secs_f64(),
                v.topology.master.map(|m| m.to_string()),
                v.topology
                    .slaves
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
                v.topology.epoch
            );
        }
        seq += 1;
        let r: redis::RedisResult<Option<u64>> = async {
            redis.set::<_, _, ()>(format!("seq:{seq}"), seq).await?;
            redis.get("seq:1").await
        }
        .await;
        match r {
            Ok(_) => ok += 1,
            Err(e) => {
                errors += 1;
                println!("{:>7.3}s error: {e}", start.elapsed().as_secs_f64());
            }
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            println!(
                "{:>7.3}s {ok} ok, {errors} errors",
                start.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
    }
    println!("done: {ok} write+read rounds ok, {errors} errors surfaced");
}
