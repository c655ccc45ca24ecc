//! Writes and reads in a loop and prints every topology change and every error the client
//! had to surface. Run it, then `kill -9` the master (see `scripts/demo.sh`).
//!
//! `cargo run -p redis-failover-examples --bin survive_failover -- --zk 127.0.0.1:2181 --znode-path /redis_failover --seconds 60`
//! (`--help` for the flags).

use std::time::{Duration, Instant};

use clap::Parser;
use redis::AsyncCommands;
use redis_failover_client::Client;
use redis_failover_examples::{fail, names, GroupArgs, AFTER_HELP};

/// Writes and reads in a loop for --seconds, printing every topology change the client
/// follows and every error it had to surface, and a count every 5 s. Kill the master while
/// it runs.
#[derive(Parser, Debug)]
#[command(name = "survive_failover", after_help = AFTER_HELP)]
struct Args {
    #[command(flatten)]
    group: GroupArgs,

    /// How long to run, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    seconds: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let seconds = args.seconds;
    let builder = Client::builder(&args.group.zk).znode_path(&args.group.znode_path);
    let connected = builder.connect().await;
    let mut redis = connected.unwrap_or_else(|e| fail("survive_failover", &args.group.explain(&e)));
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
                names(&v.topology.slaves),
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
