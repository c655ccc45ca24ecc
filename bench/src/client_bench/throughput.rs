//! Part 1 of `client_bench`: throughput and latency of the same GET/SET workload through a
//! plain redis-rs multiplexed connection and through our `Client`, alternating round by round,
//! with the CPU time of this process per operation.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::AsyncCommands;
use redis_failover_client::{Client, Topology};
use redis_failover_tests::unique_root;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::{close_clients, publish, ratio, verdict, zk_connections, Env, Side};
use crate::nodes::node_addr;
use crate::stats::{median_f64, percentile};
use crate::time::us;

/// Throughput targets: client/plain.
const TARGET_THROUGHPUT_RATIO: f64 = 0.95;
const TARGET_P50_RATIO: f64 = 1.05;

struct Workload {
    keys: Arc<Vec<String>>,
    value: Arc<Vec<u8>>,
    tasks: u64,
    get_percent: u64,
    deadline: Duration,
}

/// One measured round.
struct Round {
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    /// CPU time used by this whole process (all threads) during the round.
    cpu: Option<Duration>,
    /// Per-op latencies in ns, sorted.
    lat: Vec<u64>,
}

impl Round {
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn pct(&self, p: f64) -> Duration {
        Duration::from_nanos(percentile(&self.lat, p))
    }

    fn mean_us(&self) -> f64 {
        self.lat.iter().sum::<u64>() as f64 / self.lat.len().max(1) as f64 / 1000.0
    }

    /// CPU µs of this process per operation.
    fn cpu_per_op(&self) -> Option<f64> {
        self.cpu.map(|c| us(c) / self.ops as f64)
    }
}

/// Part 1: the same workload through a plain connection and through our client.
pub(super) async fn run(env: &Env<'_>) -> Result<(), String> {
    let (o, zk_connect, zk_port, zk, ports) =
        (env.o, env.zk_connect, env.zk_port, &env.zk, env.ports);
    let deadline = Duration::from_secs(o.timeout_secs);
    let master = node_addr(ports[0]);
    let root = unique_root("client_bench_tp");
    let topology = Topology {
        master: Some(master.clone()),
        slaves: ports[1..].iter().map(|p| node_addr(*p)).collect(),
        epoch: 1,
        ..Topology::default()
    };
    publish(zk, &root, &topology, deadline).await?;

    let plain = {
        let c = redis::Client::open(format!("redis://{master}/")).map_err(|e| e.to_string())?;
        tokio::time::timeout(deadline, c.get_multiplexed_async_connection())
            .await
            .map_err(|_| format!("plain connection to {master}: timed out"))?
            .map_err(|e| format!("plain connection to {master}: {e}"))?
    };
    let zk_before = zk_connections(zk_port).await;
    let mut builder = Client::builder(zk_connect)
        .znode_path(&root)
        .master_only(true);
    builder = match o.synchronous {
        None => builder,
        Some(0) => builder.asynchronous(),
        Some(n) => builder.synchronous(n as usize, Duration::from_millis(o.synchronous_timeout_ms)),
    };
    let client = tokio::time::timeout(deadline, builder.connect())
        .await
        .map_err(|_| "Client::connect timed out".to_string())?
        .map_err(|e| format!("Client::connect: {e}"))?;
    if client.topology().topology.master.as_ref() != Some(&master) {
        return Err(format!(
            "the client reads master {:?}, expected {master}",
            client.topology().topology.master
        ));
    }

    let keys: Vec<String> = (0..o.keys).map(|i| format!("cb:key:{i:08}")).collect();
    let value: Vec<u8> = (0..o.value_size).map(|i| b'a' + (i % 26) as u8).collect();
    fill(&plain, &keys, &value, deadline).await?;
    let w = Workload {
        keys: Arc::new(keys),
        value: Arc::new(value),
        tasks: o.tasks,
        get_percent: o.get_percent,
        deadline: Duration::from_secs(o.round_timeout_secs),
    };

    println!(
        "Part 1: throughput / latency: {} ops per round, {} tasks sharing one connection / one client \
         (cloned per task), {}% GET / {}% SET over {} keys ({}-byte values, keyspace pre-filled), \
         {} round(s) per side alternating plain, client, ...; warm-up {} ops per side (not counted)",
        o.ops,
        o.tasks,
        o.get_percent,
        100 - o.get_percent,
        o.keys,
        o.value_size,
        o.rounds,
        o.warmup_ops
    );
    println!(
        "  plain  = redis::Client::open(\"redis://{master}/\").get_multiplexed_async_connection()"
    );
    let mode = match o.synchronous {
        None => ", default mode: SETs acknowledged by WAIT 1 (shared)".to_string(),
        Some(0) => ", asynchronous()".to_string(),
        Some(n) => format!(
            ", synchronous({n}, {} ms): SETs acknowledged by shared WAITs",
            o.synchronous_timeout_ms
        ),
    };
    println!(
        "  client = redis_failover_client::Client, master_only(true){mode}, topology from {root}/nodes"
    );
    println!("  latency = time around one awaited GET/SET in a task; ops/s = ops / (last task done - start); \
         CPU = CPU time of this process (all threads, /proc/self/task/*/schedstat) / ops");
    let (do_plain, do_client) = (o.side != Side::Client, o.side != Side::Plain);
    if o.warmup_ops > 0 {
        if do_plain {
            run_round(&plain, &w, o.warmup_ops, u64::MAX).await?;
        }
        if do_client {
            run_round(&client, &w, o.warmup_ops, u64::MAX).await?;
        }
    }

    println!();
    println!(
        "  {:<6} {:<6} {:>11} {:>9} {:>9} {:>9} {:>10} {:>9} {:>10} {:>7}",
        "round",
        "side",
        "ops/s",
        "mean µs",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "max µs",
        "CPU µs/op",
        "errors"
    );
    let mut plains = Vec::new();
    let mut clients = Vec::new();
    for r in 1..=o.rounds {
        let seed = u64::from(r);
        if do_plain {
            let p = run_round(&plain, &w, o.ops, seed).await?;
            print_round(r, "plain", &p);
            plains.push(p);
        }
        if do_client {
            let c = run_round(&client, &w, o.ops, seed).await?;
            print_round(r, "client", &c);
            clients.push(c);
        }
        if let (Some(p), Some(c)) = (plains.last(), clients.last()) {
            println!(
                "  {:<6} {:<6} {:>10.3}x {:>8.3}x {:>8.3}x {:>8.3}x {:>9.3}x {:>9} {:>9}",
                r,
                "c/p",
                c.ops_per_sec() / p.ops_per_sec(),
                c.mean_us() / p.mean_us(),
                ratio(c.pct(0.50), p.pct(0.50)),
                ratio(c.pct(0.99), p.pct(0.99)),
                ratio(c.pct(0.999), p.pct(0.999)),
                "",
                c.cpu_per_op()
                    .zip(p.cpu_per_op())
                    .map_or("n/a".to_string(), |(c, p)| format!("{:.3}x", c / p)),
            );
        }
    }
    let errors: u64 = plains.iter().chain(clients.iter()).map(|r| r.errors).sum();

    println!();
    println!("  Median of {} round(s) per side:", o.rounds);
    let summary = |side: &str, rounds: &[Round]| -> Option<Summary> {
        if rounds.is_empty() {
            return None;
        }
        let med = |f: &dyn Fn(&Round) -> f64| median_f64(rounds.iter().map(f).collect());
        let s = Summary {
            tput: med(&|r| r.ops_per_sec()),
            mean: med(&|r| r.mean_us()),
            p50: med(&|r| us(r.pct(0.50))),
            p99: med(&|r| us(r.pct(0.99))),
            p999: med(&|r| us(r.pct(0.999))),
            cpu: med(&|r| r.cpu_per_op().unwrap_or(f64::NAN)),
        };
        println!(
            "    {side:<6}: {:>10.0} ops/s  mean {:>6.1} µs  p50 {:>6.1} µs  p99 {:>6.1} µs  \
             p99.9 {:>7.1} µs  CPU {:.2} µs/op",
            s.tput, s.mean, s.p50, s.p99, s.p999, s.cpu
        );
        Some(s)
    };
    let (ps, cs) = (summary("plain", &plains), summary("client", &clients));
    if let (Some(p), Some(c)) = (ps, cs) {
        let (rt, r5) = (c.tput / p.tput, c.p50 / p.p50);
        println!(
            "    client/plain: throughput {rt:.3}x, mean {:.3}x, p50 {r5:.3}x, p99 {:.3}x, \
             p99.9 {:.3}x; CPU of this process per op {:.3}x ({:+.2} µs/op)",
            c.mean / p.mean,
            c.p99 / p.p99,
            c.p999 / p.p999,
            c.cpu / p.cpu,
            c.cpu - p.cpu
        );
        println!(
            "    target throughput >= {TARGET_THROUGHPUT_RATIO}x: {}; target p50 <= {TARGET_P50_RATIO}x: {}",
            verdict(rt >= TARGET_THROUGHPUT_RATIO),
            verdict(r5 <= TARGET_P50_RATIO)
        );
    }
    if errors > 0 {
        let first = plains
            .iter()
            .chain(clients.iter())
            .find_map(|r| r.first_error.clone())
            .unwrap_or_default();
        println!("    NOTE: {errors} command(s) failed over all rounds; first: {first}");
    }
    close_clients(vec![client], zk_port, zk_before).await;
    Ok(())
}

/// Medians of one side's rounds.
struct Summary {
    tput: f64,
    mean: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    cpu: f64,
}

fn print_round(r: u32, side: &str, x: &Round) {
    println!(
        "  {:<6} {:<6} {:>11.0} {:>9.1} {:>9.1} {:>9.1} {:>10.1} {:>9.1} {:>10} {:>7}",
        r,
        side,
        x.ops_per_sec(),
        x.mean_us(),
        us(x.pct(0.50)),
        us(x.pct(0.99)),
        us(x.pct(0.999)),
        us(x.pct(1.0)),
        x.cpu_per_op()
            .map_or("n/a".to_string(), |c| format!("{c:.2}")),
        x.errors
    );
}

/// Fills the keyspace through `conn` (pipelined `MSET`s).
async fn fill(
    conn: &MultiplexedConnection,
    keys: &[String],
    value: &[u8],
    deadline: Duration,
) -> Result<(), String> {
    let mut conn = conn.clone();
    let work = async {
        for chunk in keys.chunks(1000) {
            let pairs: Vec<(&str, &[u8])> = chunk.iter().map(|k| (k.as_str(), value)).collect();
            conn.mset::<_, _, ()>(&pairs).await?;
        }
        Ok::<(), redis::RedisError>(())
    };
    tokio::time::timeout(deadline, work)
        .await
        .map_err(|_| "filling the keyspace timed out".to_string())?
        .map_err(|e| format!("filling the keyspace: {e}"))
}

/// Runs `ops` operations on `w.tasks` tasks, each with its own clone of `conn`; the random
/// sequence of task `t` depends only on (`seed`, `t`), so both sides of a round do the same.
async fn run_round<C>(conn: &C, w: &Workload, ops: u64, seed: u64) -> Result<Round, String>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let barrier = Arc::new(Barrier::new(w.tasks as usize + 1));
    let mut set = JoinSet::new();
    for t in 0..w.tasks {
        let n = ops / w.tasks + u64::from(t < ops % w.tasks);
        let mut c = conn.clone();
        let keys = w.keys.clone();
        let value = w.value.clone();
        let barrier = barrier.clone();
        let get_percent = w.get_percent;
        set.spawn(async move {
            // The sequence of task `t` depends only on (`seed`, `t`).
            let mut rng = fastrand::Rng::with_seed(seed << 32 | t);
            let mut lat = Vec::with_capacity(n as usize);
            let mut errors = 0u64;
            let mut first_error = None;
            barrier.wait().await;
            for _ in 0..n {
                let key = &keys[rng.usize(..keys.len())];
                let is_get = rng.u64(..100) < get_percent;
                let start = std::time::Instant::now();
                let res = if is_get {
                    c.get::<_, Option<Vec<u8>>>(key).await.map(drop)
                } else {
                    c.set::<_, _, ()>(key, value.as_slice()).await
                };
                lat.push(start.elapsed().as_nanos() as u64);
                if let Err(e) = res {
                    errors += 1;
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
            (lat, errors, first_error, std::time::Instant::now())
        });
    }
    barrier.wait().await;
    let start = std::time::Instant::now();
    let cpu_start = process_cpu();
    let collect = async {
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            out.push(r.map_err(|e| format!("a workload task failed: {e}"))?);
        }
        Ok::<_, String>(out)
    };
    let results = tokio::time::timeout(w.deadline, collect)
        .await
        .map_err(|_| format!("a round did not finish within {:?}", w.deadline))??;
    let cpu = process_cpu()
        .zip(cpu_start)
        .map(|(end, start)| end.saturating_sub(start));
    let mut lat = Vec::with_capacity(ops as usize);
    let mut errors = 0;
    let mut first_error = None;
    let mut end = start;
    for (l, e, f, done) in results {
        lat.extend(l);
        errors += e;
        first_error = first_error.or(f);
        end = end.max(done);
    }
    lat.sort_unstable();
    Ok(Round {
        ops,
        errors,
        first_error,
        elapsed: end.duration_since(start),
        cpu,
        lat,
    })
}

/// CPU time used so far by the live threads of this process (Linux: the first field of
/// `/proc/self/task/*/schedstat`, in ns); `None` where unavailable.
fn process_cpu() -> Option<Duration> {
    let mut total: u64 = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(task) = task else { continue };
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}
