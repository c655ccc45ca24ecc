//! `client_bench`'s measurements (the program's documentation is in `src/bin/client_bench.rs`):
//! its flags, the two parts (`throughput`, `propagation`) and what they share: the
//! topology written by hand, bounded waits, and the check that dropped clients close their
//! ZooKeeper sessions.

mod propagation;
mod throughput;

use std::time::Duration;

use clap::{Parser, ValueEnum};
use redis_failover_client::{Client, Topology};
use redis_failover_tests::manager as harness;
use redis_failover_tests::zk_four_letter;
use tokio::time::Instant;
use zookeeper_client as zk;

use crate::nodes::node_addr;
use crate::wait::{poll_until, Check};

/// Poll interval of the bench's own waits.
const POLL: Duration = Duration::from_millis(10);

/// Benchmarks redis_failover_client::Client against plain redis-rs (throughput, latency) and
/// measures how fast many clients follow a topology change, with real ZooKeeper and
/// redis-server processes.
#[derive(Parser, Debug)]
#[command(name = "client_bench", version, about, long_about = None)]
pub struct Opts {
    /// Operations per round (per side).
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
    ops: u64,

    /// Concurrent tasks sharing the one connection / client.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    tasks: u64,

    /// Rounds per side (plain, client, plain, client, ...).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,

    /// Size of the keyspace.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    keys: u64,

    /// Share of GETs in percent (the rest are SETs).
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u64).range(0..=100))]
    get_percent: u64,

    /// Size of the SET values in bytes (the keyspace is filled with such values first).
    #[arg(long, default_value_t = 32)]
    value_size: usize,

    /// Operations of the unmeasured warm-up round run on each side before the rounds.
    #[arg(long, default_value_t = 20_000)]
    warmup_ops: u64,

    /// Client instances following the topology in the propagation test.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    clients: u64,

    /// Topology changes (master A -> B -> A -> ...).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    changes: u32,

    /// Interval of each client's INCR loop in the propagation test, in ms (absolute ticks; it
    /// bounds the resolution of the "routed" time).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    write_every_ms: u64,

    /// Deadline of every wait (start-up, connect, one propagation, role changes), in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_secs: u64,

    /// Deadline of one throughput round, in seconds.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    round_timeout_secs: u64,

    /// The client side's replication mode in the throughput test: N > 0, strict synchronous
    /// mode (`WAIT N`, shared by concurrent writes: group commit; the trio has 2 replicas);
    /// 0, `asynchronous()` [default: the client's default, one replica while the topology
    /// lists one].
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=2))]
    synchronous: Option<u64>,

    /// `WAIT`'s timeout with --synchronous, in ms.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    synchronous_timeout_ms: u64,

    /// Which part to run.
    #[arg(long, value_enum, default_value_t = Part::Both)]
    only: Part,

    /// Which side(s) of the throughput test to run (one side alone: for profiling).
    #[arg(long, value_enum, default_value_t = Side::Both)]
    side: Side,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Side {
    Plain,
    Client,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Part {
    Throughput,
    Propagation,
    Both,
}

/// What both parts work with.
struct Env<'a> {
    o: &'a Opts,
    zk_connect: &'a str,
    zk_port: u16,
    /// A session of the bench's own.
    zk: zk::Client,
    /// The trio's ports, master first.
    ports: &'a [u16],
}

/// Runs the parts `--only` asks for; true when none failed.
pub async fn bench(o: &Opts, zk_connect: &str, zk_port: u16, ports: &[u16]) -> bool {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let env = Env {
        o,
        zk_connect,
        zk_port,
        zk: harness::zk_client(zk_connect).await,
        ports,
    };
    println!(
        "client_bench: nproc {nproc} (shared by this process, redis-server x3 and ZooKeeper); \
         redis trio {}; deadline {} s per wait",
        ports
            .iter()
            .map(|p| node_addr(*p).to_string())
            .collect::<Vec<_>>()
            .join(", "),
        o.timeout_secs
    );
    let mut ok = true;
    if o.only != Part::Propagation {
        println!();
        if let Err(e) = throughput::run(&env).await {
            println!("throughput: FAILED: {e}");
            ok = false;
        }
    }
    if o.only != Part::Throughput {
        println!();
        if let Err(e) = propagation::run(&env).await {
            println!("propagation: FAILED: {e}");
            ok = false;
        }
    }
    ok
}

/// Writes `<root>/nodes` with `write_raw`, bounded.
async fn publish(
    zk: &zk::Client,
    root: &str,
    t: &Topology,
    timeout: Duration,
) -> Result<(), String> {
    let path = format!("{root}/nodes");
    tokio::time::timeout(timeout, harness::write_raw(zk, &path, &t.to_json()))
        .await
        .map_err(|_| format!("writing {path} timed out"))
}

/// Polls `f` every [`POLL`] until it holds.
async fn wait_until(timeout: Duration, what: &str, f: impl Fn() -> bool) -> Result<(), String> {
    poll_until(timeout, POLL, || {
        let done = f();
        async move {
            if done {
                Check::Done(())
            } else {
                Check::Waiting(format!("timed out after {timeout:?} waiting for {what}"))
            }
        }
    })
    .await
}

/// ZooKeeper's `zk_num_alive_connections` (`mntr`; its own connection included).
async fn zk_connections(zk_port: u16) -> Option<u64> {
    let mntr = tokio::task::spawn_blocking(move || zk_four_letter(zk_port, "mntr"))
        .await
        .ok()??;
    mntr.lines()
        .find_map(|l| l.strip_prefix("zk_num_alive_connections"))
        .and_then(|v| v.trim().parse().ok())
}

/// How long [`close_clients`] waits for the dropped clients' ZooKeeper sessions to close.
const TEARDOWN_WAIT: Duration = Duration::from_secs(5);

/// Drops `clients` and waits (at most [`TEARDOWN_WAIT`]) until ZooKeeper counts no more
/// connections than `before` (taken before they connected), i.e. their watcher tasks have
/// closed their sessions; prints a note when some did not.
async fn close_clients(clients: Vec<Client>, zk_port: u16, before: Option<u64>) {
    let n = clients.len();
    drop(clients);
    let Some(before) = before else {
        tokio::time::sleep(Duration::from_millis(500)).await;
        return;
    };
    let deadline = Instant::now() + TEARDOWN_WAIT;
    loop {
        let now = zk_connections(zk_port).await;
        if now.is_some_and(|c| c <= before) {
            return;
        }
        if Instant::now() >= deadline {
            println!(
                "  NOTE (teardown): {TEARDOWN_WAIT:?} after dropping {n} Client(s), ZooKeeper still \
                 counts {} connection(s) more than before they connected: their background \
                 tasks and sessions outlived them",
                now.map_or("?".to_string(), |c| c.saturating_sub(before).to_string())
            );
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn verdict(met: bool) -> &'static str {
    if met {
        "MET"
    } else {
        "NOT MET"
    }
}
