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
//!    `--side plain|client` runs one side alone (for a profiler). `--synchronous N` puts the
//!    client in synchronous mode (`WAIT N` after every SET), to measure what it costs.
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

use std::process::ExitCode;

use clap::Parser;
use redis_failover_bench::client_bench::{bench, Opts};
use redis_failover_bench::scaffold::Scaffold;
use redis_failover_tests::RedisGroup;

fn main() -> ExitCode {
    let opts = Opts::parse();
    Scaffold::new("client_bench")
        .zookeeper_saying("ZooKeeper and a redis trio")
        .run(|env| {
            let group = RedisGroup::trio();
            let zk = env.zk();
            env.block_on(bench(
                &opts,
                &zk.connect_string(),
                zk.port(),
                &group.ports(),
            ))
        })
}
