//! `failover_bench`: how fast does `redis_node_manager` fail over, on this machine, with real
//! processes?
//!
//! One throwaway ZooKeeper for the whole bench: a standalone server (`forceSync=no`), or with
//! `--zk-ensemble` a production-shaped 3-server ensemble (`forceSync=yes`, `tickTime=2000`).
//! Per run: a fresh redis trio (master + 2 replicas), a fresh znode root, and a manager running
//! in this process (on its own tokio runtime, as if it were its own process). Once the manager
//! publishes the trio's master with both replicas, the master is killed (`kill -9`, scenario
//! `crash`) or frozen (`SIGSTOP`, scenario `hang`), and two times are measured from the signal:
//!
//! * (a) until `<root>/nodes` names a different master, seen through a ZooKeeper data watch
//!   (`get_and_watch_data` loop; the time is taken when the read that shows the new master
//!   returns, so it includes the watch notification and one read round trip);
//! * (b) until `SET bench:key <n>` succeeds on a surviving node: one task per survivor, started
//!   right after the signal, sends `SET` every 1 ms on a pre-opened connection (50 ms reply
//!   timeout; a fresh connection after any error). Replicas answer `READONLY`; the first `OK`
//!   ends it.
//!
//! Every wait has a deadline; a run that misses one is reported as failed and counted.

use std::process::ExitCode;

use clap::Parser;
use redis_failover_bench::failover_bench::{bench, Opts, Settings};
use redis_failover_bench::scaffold::Scaffold;

fn main() -> ExitCode {
    let opts = Opts::parse();
    Scaffold::new("failover_bench")
        .zookeeper()
        .zookeeper_ensemble(opts.zk_ensemble)
        .manager_runtime()
        .run(|env| {
            let settings =
                Settings::new(opts, env.zk_connect(), env.zk_shape(), env.manager_handle());
            env.block_on(bench(&settings))
        })
}
