//! `client_bench`: what does `redis_failover_client::Client` cost next to plain redis-rs, and
//! how fast do its instances follow a topology change? Real processes: one throwaway
//! ZooKeeper and one redis trio (master + 2 replicas) started by the test harness; the
//! topology is published by hand (`write_raw`), no node manager runs.
//!
//! 1. Throughput / latency. The same workload (GET/SET mix over a fixed keyspace, N tasks
//!    sharing one connection or one client, each task cloning it) is run through
//!    (a) a plain `redis` multiplexed connection to the master and (b) our `Client` with
//!    `master_only(true)`, alternating plain, client, plain, client, ... Each round of a pair
//!    uses the same random sequence. Per-op latency is taken around each awaited command; the
//!    CPU time of this process per op (all threads, from `/proc/self/task/*/schedstat`) shows
//!    what the client itself costs, since the bench shares the machine with redis and ZooKeeper.
//!    `--side plain|client` runs one side alone (for a profiler).
//!
//! 2. Topology change propagation. M `Client`s (each with its own ZooKeeper session, as M
//!    application processes would have) follow a topology whose master is node A. Node B is
//!    made a master for real (`REPLICAOF NO ONE`), each client's counter key is set on B only to
//!    a marker value, every client runs `INCR <its key>` in a loop (to A, which answers small
//!    numbers), and at t0 the znode is rewritten to name B. Per client: t0 -> the first `INCR`
//!    answered with a value >= marker, i.e. acknowledged by B (and afterwards B's counters are
//!    checked: exactly marker + 1 each); and, separately, t0 -> `subscribe()` shows B, and, as
//!    a floor, t0 -> a bare ZooKeeper data watch of the bench reads B. Then A and the third
//!    node are made replicas of B, the full topology is published, and the next change goes
//!    back to A.
//!
//! After each part the clients are dropped and the bench checks (bounded) that ZooKeeper no
//! longer counts their sessions, and says so when some outlive their `Client`.
//!
//! Every wait has a deadline; processes are stopped by the harness's Drop guards. Logging is
//! quiet (`warn`) unless `RUST_LOG` says otherwise.

use redis_failover_bench::{init_logging, ms, node_addr, open, us};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::AsyncCommands;
use redis_failover_client::{Client, NodeAddr, Topology, TopologyView};
use redis_failover_tests::manager as harness;
use redis_failover_tests::{
    parse_role, unique_root, zk_four_letter, NodeRole, RedisGroup, ZkServer,
};
use tokio::sync::{watch, Barrier};
use tokio::task::JoinSet;
use tokio::time::Instant;
use zookeeper_client as zk;

/// The value every client's counter key gets on the new master before a change: an `INCR`
/// answered with at least this much was executed by the new master.
const MARKER: i64 = 1_000_000_000;
/// Poll interval of the bench's own waits.
const POLL: Duration = Duration::from_millis(10);
/// Throughput targets: client/plain.
const TARGET_THROUGHPUT_RATIO: f64 = 0.95;
const TARGET_P50_RATIO: f64 = 1.05;
/// Propagation target: p99 below this.
const TARGET_PROPAGATION_P99: Duration = Duration::from_millis(100);

/// Benchmarks redis_failover_client::Client against plain redis-rs (throughput, latency) and
/// measures how fast many clients follow a topology change, with real ZooKeeper and
/// redis-server processes.
#[derive(Parser, Debug)]
#[command(name = "client_bench", version, about, long_about = None)]
struct Opts {
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

fn main() -> ExitCode {
    let opts = Opts::parse();
    init_logging();

    let rt = match tokio::runtime::Builder::new_multi_thread()
        .thread_name("bench")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("client_bench: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("client_bench: starting ZooKeeper and a redis trio ...");
    let zk_server = ZkServer::start();
    let group = RedisGroup::trio();
    let ok = rt.block_on(bench(
        &opts,
        &zk_server.connect_string(),
        zk_server.port(),
        &group.ports(),
    ));
    // Clients and connections die with the runtime; then the nodes, then ZooKeeper.
    drop(rt);
    drop(group);
    drop(zk_server);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn bench(o: &Opts, zk_connect: &str, zk_port: u16, ports: &[u16]) -> bool {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let zk = harness::zk_client(zk_connect).await;
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
        if let Err(e) = throughput(o, zk_connect, zk_port, &zk, ports).await {
            println!("throughput: FAILED: {e}");
            ok = false;
        }
    }
    if o.only != Part::Throughput {
        println!();
        if let Err(e) = propagation(o, zk_connect, zk_port, &zk, ports).await {
            println!("propagation: FAILED: {e}");
            ok = false;
        }
    }
    ok
}

// ---------------------------------------------------------------------------------------------
// Part 1: throughput and latency
// ---------------------------------------------------------------------------------------------

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

async fn throughput(
    o: &Opts,
    zk_connect: &str,
    zk_port: u16,
    zk: &zk::Client,
    ports: &[u16],
) -> Result<(), String> {
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
    let client = tokio::time::timeout(
        deadline,
        Client::builder(zk_connect)
            .znode_path(&root)
            .master_only(true)
            .connect(),
    )
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
    println!(
        "  client = redis_failover_client::Client, master_only(true), topology from {root}/nodes"
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
            let mut rng = Rng::new(seed, t);
            let mut lat = Vec::with_capacity(n as usize);
            let mut errors = 0u64;
            let mut first_error = None;
            barrier.wait().await;
            for _ in 0..n {
                let r = rng.next_u64();
                let key = &keys[(r % keys.len() as u64) as usize];
                let is_get = (r >> 40) % 100 < get_percent;
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

// ---------------------------------------------------------------------------------------------
// Part 2: topology change propagation
// ---------------------------------------------------------------------------------------------

/// What one client did during one change.
struct ClientOutcome {
    /// t0 -> the first INCR acknowledged by the new master.
    routed: Option<Duration>,
    /// t0 -> `subscribe()` showed the new master.
    notified: Option<Duration>,
    /// The new master acknowledged an INCR before t0 (would be a bug).
    early: bool,
    /// The last INCR acknowledged by the old master, relative to t0 (None: none after t0).
    last_old_after_t0: Option<Duration>,
    errors: u64,
    first_error: Option<String>,
}

async fn propagation(
    o: &Opts,
    zk_connect: &str,
    zk_port: u16,
    zk: &zk::Client,
    ports: &[u16],
) -> Result<(), String> {
    let deadline = Duration::from_secs(o.timeout_secs);
    let root = unique_root("client_bench_prop");
    let addrs: Vec<NodeAddr> = ports.iter().map(|p| node_addr(*p)).collect();
    let mut admin = Vec::new();
    for a in &addrs {
        admin.push(open(a, deadline, deadline).await?);
    }
    // The trio starts with node 0 as master; node 2 stays a replica throughout.
    let mut epoch = 1u64;
    let mut master = 0usize;
    let path = format!("{root}/nodes");
    // A bare data watch on a session of its own, as a reference for the clients' watchers.
    let zk_watch = harness::zk_client(zk_connect).await;
    publish(zk, &root, &settled(&addrs, master, epoch), deadline).await?;

    println!(
        "Part 2: topology change propagation: {} Client instances (one ZooKeeper session each), \
         {} change(s) alternating the master between {} and {}; topology rewritten with write_raw \
         at t0",
        o.clients, o.changes, addrs[0], addrs[1]
    );
    println!(
        "  routed   = t0 -> first `INCR <client key>` acknowledged by the new master (each client \
         sends INCR every {} ms, before and after t0; its key holds {MARKER} on the new master \
         only, so a reply >= {MARKER} proves the new master executed it; checked afterwards: \
         exactly {MARKER} + 1 on the new master for every client)",
        o.write_every_ms
    );
    println!("  notified = t0 -> client.subscribe() holds a topology naming the new master");
    println!(
        "  zk watch = t0 -> a bare zookeeper-client data watch in this process (own session) \
         reads the new master (the floor for `notified`: event + one read)"
    );
    println!(
        "  t0 = just before write_raw (which costs mkdir + create + set_data round trips to ZooKeeper)"
    );

    let zk_before = zk_connections(zk_port).await;
    let started_at = Instant::now();
    let mut connecting = JoinSet::new();
    for i in 0..o.clients {
        let builder = Client::builder(zk_connect).znode_path(&root);
        connecting
            .spawn(async move { (i, tokio::time::timeout(deadline, builder.connect()).await) });
    }
    let mut slots: Vec<Option<Client>> = (0..o.clients).map(|_| None).collect();
    while let Some(r) = connecting.join_next().await {
        let (i, c) = r.map_err(|e| format!("a connect task failed: {e}"))?;
        let c = c
            .map_err(|_| format!("Client::connect #{i} timed out"))?
            .map_err(|e| format!("Client::connect #{i}: {e}"))?;
        slots[i as usize] = Some(c);
    }
    let clients: Vec<Client> = slots.into_iter().flatten().collect();
    println!(
        "  {} clients connected in {:.0} ms",
        clients.len(),
        ms(started_at.elapsed())
    );
    println!();

    let every = Duration::from_millis(o.write_every_ms);
    let mut all_routed = Vec::new();
    let mut all_notified = Vec::new();
    let mut all_zk = Vec::new();
    let mut worst_p99 = Duration::ZERO;
    let mut problems = 0usize;
    for k in 1..=o.changes {
        let new = if master == 0 { 1 } else { 0 };
        let (old_addr, new_addr) = (addrs[master].clone(), addrs[new].clone());

        // Steady state: every client follows the settled topology.
        wait_until(
            deadline,
            "every client to read the settled topology",
            || clients.iter().all(|c| c.topology().topology.epoch == epoch),
        )
        .await?;

        // Make the new master a master for real, and give it the marker values.
        let mut new_admin = admin[new].clone();
        redis::cmd("REPLICAOF")
            .arg("NO")
            .arg("ONE")
            .query_async::<()>(&mut new_admin)
            .await
            .map_err(|e| format!("REPLICAOF NO ONE on {new_addr}: {e}"))?;
        wait_role(&admin[new], &new_addr, deadline, |r| r == NodeRole::Master).await?;
        let keys: Vec<String> = (0..o.clients).map(|i| format!("cb:prop:{k}:{i}")).collect();
        let pairs: Vec<(&str, i64)> = keys.iter().map(|k| (k.as_str(), MARKER)).collect();
        new_admin
            .mset::<_, _, ()>(&pairs)
            .await
            .map_err(|e| format!("MSET on {new_addr}: {e}"))?;
        admin[master]
            .clone()
            .del::<_, ()>(&keys)
            .await
            .map_err(|e| format!("DEL on {old_addr}: {e}"))?;

        // Start the write loops and the subscribers; wait until every loop got an answer
        // from the old master.
        let change_deadline = Instant::now() + deadline;
        let warmed = Arc::new(AtomicUsize::new(0));
        let mut writers = JoinSet::new();
        let mut notifiers = JoinSet::new();
        for (i, c) in clients.iter().enumerate() {
            let mut rx = c.subscribe();
            rx.borrow_and_update();
            let want = new_addr.clone();
            notifiers.spawn(async move { (i, wait_for_master(rx, &want, change_deadline).await) });
            writers.spawn(write_loop(
                i,
                c.clone(),
                keys[i].clone(),
                every,
                warmed.clone(),
                change_deadline,
            ));
        }
        wait_until(deadline, "every write loop to get a first answer", || {
            warmed.load(Ordering::Relaxed) == clients.len()
        })
        .await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, _, first) = tokio::time::timeout(deadline, zk_watch.get_and_watch_data(&path))
            .await
            .map_err(|_| format!("reading {path} to arm the reference watch timed out"))?
            .map_err(|e| format!("reading {path} to arm the reference watch: {e}"))?;
        let reference = tokio::spawn(watch_znode(
            zk_watch.clone(),
            path.clone(),
            first,
            new_addr.clone(),
            change_deadline,
        ));

        // t0: publish the new master.
        epoch += 1;
        let topo = Topology {
            master: Some(new_addr.clone()),
            slaves: vec![],
            unavailable: vec![old_addr.clone(), addrs[2].clone()],
            epoch,
            ..Topology::default()
        };
        let t0 = Instant::now();
        publish(zk, &root, &topo, deadline).await?;
        let write_took = t0.elapsed();

        let mut outcomes: Vec<ClientOutcome> = (0..clients.len())
            .map(|_| ClientOutcome {
                routed: None,
                notified: None,
                early: false,
                last_old_after_t0: None,
                errors: 0,
                first_error: None,
            })
            .collect();
        while let Some(r) = writers.join_next().await {
            let w = r.map_err(|e| format!("a write loop failed: {e}"))?;
            let out = &mut outcomes[w.index];
            out.routed = w.landed.map(|at| at.saturating_duration_since(t0));
            out.early = w.landed.is_some_and(|at| at < t0);
            out.last_old_after_t0 = w.last_old.filter(|at| *at > t0).map(|at| at - t0);
            out.errors = w.errors;
            out.first_error = w.first_error;
        }
        while let Some(r) = notifiers.join_next().await {
            let (i, at) = r.map_err(|e| format!("a subscriber failed: {e}"))?;
            outcomes[i].notified = at.map(|at| at.saturating_duration_since(t0));
        }
        let zk_seen = reference
            .await
            .map_err(|e| format!("the reference watch failed: {e}"))?
            .map(|at| at.saturating_duration_since(t0));

        // B's counters: exactly one INCR per client landed there.
        let counters: Vec<Option<i64>> = new_admin
            .mget(&keys)
            .await
            .map_err(|e| format!("MGET on {new_addr}: {e}"))?;
        let exact = counters.iter().filter(|v| **v == Some(MARKER + 1)).count();

        let routed: Vec<Duration> = outcomes.iter().filter_map(|o| o.routed).collect();
        let notified: Vec<Duration> = outcomes.iter().filter_map(|o| o.notified).collect();
        let early = outcomes.iter().filter(|o| o.early).count();
        let errors: u64 = outcomes.iter().map(|o| o.errors).sum();
        let stale = outcomes
            .iter()
            .filter(|o| o.last_old_after_t0.is_some())
            .count();
        let last_stale = outcomes.iter().filter_map(|o| o.last_old_after_t0).max();
        println!(
            "  change {k}/{}: master {old_addr} -> {new_addr} (epoch {epoch}); write_raw took {:.2} ms",
            o.changes,
            ms(write_took)
        );
        println!(
            "    routed  : {}  ({}/{} clients)",
            fmt_dist(&routed),
            routed.len(),
            clients.len()
        );
        println!(
            "    notified: {}  ({}/{} clients)",
            fmt_dist(&notified),
            notified.len(),
            clients.len()
        );
        println!(
            "    zk watch: {}",
            zk_seen.map_or("n/a (timed out)".to_string(), |d| format!(
                "{:.2} ms",
                ms(d)
            ))
        );
        all_zk.extend(zk_seen);
        println!(
            "    {} client(s) had an INCR acknowledged by the old master after t0{}; counters on {new_addr}: {exact}/{} == {MARKER} + 1; INCR errors: {errors}{}",
            stale,
            last_stale.map_or(String::new(), |d| format!(" (the last at t0 + {:.2} ms)", ms(d))),
            clients.len(),
            outcomes
                .iter()
                .find_map(|o| o.first_error.clone())
                .map_or(String::new(), |e| format!(" (first: {e})")),
        );
        if routed.len() != clients.len() || exact != clients.len() || early > 0 {
            problems += 1;
            println!(
                "    PROBLEM: {} client(s) never routed to {new_addr} within {:?}, {} counter(s) differ from marker + 1, {early} client(s) reached it before t0",
                clients.len() - routed.len(),
                deadline,
                clients.len() - exact
            );
        }
        if let Some(p) = pct_dur(&routed, 0.99) {
            worst_p99 = worst_p99.max(p);
        }
        all_routed.extend(routed);
        all_notified.extend(notified);

        // Settle: the old master and the third node follow the new master; publish that.
        for other in [master, 2] {
            redis::cmd("REPLICAOF")
                .arg(&new_addr.host)
                .arg(new_addr.port)
                .query_async::<()>(&mut admin[other].clone())
                .await
                .map_err(|e| format!("REPLICAOF {new_addr} on {}: {e}", addrs[other]))?;
        }
        for other in [master, 2] {
            wait_role(&admin[other], &addrs[other], deadline, |r| {
                r == NodeRole::Replica {
                    master_port: new_addr.port,
                    link_up: true,
                }
            })
            .await?;
        }
        epoch += 1;
        publish(zk, &root, &settled(&addrs, new, epoch), deadline).await?;
        master = new;
    }

    println!();
    println!(
        "  All {} change(s) x {} clients ({} / {} samples):",
        o.changes,
        clients.len(),
        all_routed.len(),
        all_notified.len()
    );
    println!("    routed  : {}", fmt_dist(&all_routed));
    println!("    notified: {}", fmt_dist(&all_notified));
    println!("    zk watch: {}", fmt_dist(&all_zk));
    let pooled = pct_dur(&all_routed, 0.99);
    let met = problems == 0 && pooled.is_some_and(|p| p < TARGET_PROPAGATION_P99);
    println!(
        "    target routed p99 < {} ms: {} (pooled p99 {}, worst per-change p99 {:.2} ms{})",
        TARGET_PROPAGATION_P99.as_millis(),
        verdict(met),
        pooled.map_or("n/a".to_string(), |p| format!("{:.2} ms", ms(p))),
        ms(worst_p99),
        if problems > 0 {
            format!("; {problems} change(s) with a PROBLEM")
        } else {
            String::new()
        }
    );
    close_clients(clients, zk_port, zk_before).await;
    if problems > 0 {
        return Err(format!("{problems} change(s) did not complete cleanly"));
    }
    Ok(())
}

/// The topology once the group is whole again: `master` and the other two as replicas.
fn settled(addrs: &[NodeAddr], master: usize, epoch: u64) -> Topology {
    Topology {
        master: Some(addrs[master].clone()),
        slaves: (0..addrs.len())
            .filter(|i| *i != master)
            .map(|i| addrs[i].clone())
            .collect(),
        epoch,
        ..Topology::default()
    }
}

/// What one client's write loop saw.
struct WriteLoop {
    index: usize,
    /// When the new master acknowledged an INCR (the loop stops there).
    landed: Option<Instant>,
    /// When the old master last acknowledged one.
    last_old: Option<Instant>,
    errors: u64,
    first_error: Option<String>,
}

/// `INCR key` every `every` (absolute ticks) until the reply is >= [`MARKER`] or `deadline`.
async fn write_loop(
    index: usize,
    mut client: Client,
    key: String,
    every: Duration,
    warmed: Arc<AtomicUsize>,
    deadline: Instant,
) -> WriteLoop {
    let mut out = WriteLoop {
        index,
        landed: None,
        last_old: None,
        errors: 0,
        first_error: None,
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut answered = false;
    loop {
        if tokio::time::timeout_at(deadline, tick.tick())
            .await
            .is_err()
        {
            return out;
        }
        let r = match tokio::time::timeout_at(deadline, client.incr::<_, _, i64>(&key, 1)).await {
            Err(_) => return out,
            Ok(r) => r,
        };
        let now = Instant::now();
        match r {
            Ok(v) if v >= MARKER => {
                out.landed = Some(now);
                return out;
            }
            Ok(_) => {
                out.last_old = Some(now);
                if !answered {
                    answered = true;
                    warmed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// When `rx` holds a topology whose master is `want` (None: not by `deadline`).
async fn wait_for_master(
    mut rx: watch::Receiver<TopologyView>,
    want: &NodeAddr,
    deadline: Instant,
) -> Option<Instant> {
    loop {
        if rx.borrow_and_update().topology.master.as_ref() == Some(want) {
            return Some(Instant::now());
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            _ => return None,
        }
    }
}

/// Follows `path` with one-shot data watches (event, then `get_and_watch_data`) until it names
/// `want` as master; returns when that read returned (None: not by `deadline`).
async fn watch_znode(
    zk: zk::Client,
    path: String,
    first: zk::OneshotWatcher,
    want: NodeAddr,
    deadline: Instant,
) -> Option<Instant> {
    let mut watcher = first;
    loop {
        tokio::time::timeout_at(deadline, watcher.changed())
            .await
            .ok()?;
        let (data, _, next) = tokio::time::timeout_at(deadline, zk.get_and_watch_data(&path))
            .await
            .ok()?
            .ok()?;
        let at = Instant::now();
        if Topology::from_json(&data).is_ok_and(|t| t.master.as_ref() == Some(&want)) {
            return Some(at);
        }
        watcher = next;
    }
}

/// Polls `INFO replication` of `addr` until its role satisfies `pred`.
async fn wait_role(
    conn: &MultiplexedConnection,
    addr: &NodeAddr,
    timeout: Duration,
    pred: impl Fn(NodeRole) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        let info: Result<String, _> = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut conn.clone())
            .await;
        last = info.ok().and_then(|i| parse_role(&i)).or(last);
        if last.is_some_and(&pred) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "timed out after {timeout:?} waiting for {addr} to change role; last seen {last:?}"
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

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
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        tokio::time::sleep(POLL).await;
    }
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

/// Nearest-rank percentile of a sorted sample (0 when empty).
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn pct_dur(sample: &[Duration], p: f64) -> Option<Duration> {
    let mut v: Vec<u64> = sample.iter().map(|d| d.as_nanos() as u64).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(Duration::from_nanos(percentile(&v, p)))
}

fn fmt_dist(sample: &[Duration]) -> String {
    match (
        pct_dur(sample, 0.0),
        pct_dur(sample, 0.5),
        pct_dur(sample, 0.99),
        pct_dur(sample, 1.0),
    ) {
        (Some(min), Some(p50), Some(p99), Some(max)) => format!(
            "min {:>7.2} / p50 {:>7.2} / p99 {:>7.2} / max {:>7.2} ms",
            ms(min),
            ms(p50),
            ms(p99),
            ms(max)
        ),
        _ => "n/a (no sample)".to_string(),
    }
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
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

/// xorshift64*, seeded from (round, task) through splitmix64.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, task: u64) -> Rng {
        let mut z = seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(task.wrapping_add(1).wrapping_mul(0xBF58_476D_1CE4_E5B9));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(z | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
