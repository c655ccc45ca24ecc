//! `sentinel_bench`: redis_node_manager side by side with Redis Sentinel, on the same machine,
//! in one program, with identical scenarios alternating between the two systems.
//!
//! Per run, a fresh redis trio (master + 2 replicas, `redis-server` on loopback) watched by
//! * **Sentinel**: 3 real Redis Sentinels (`redis-sentinel`, or `redis-server --sentinel`),
//!   `sentinel monitor mymaster 127.0.0.1 <port> 2`, `down-after-milliseconds` D,
//!   `failover-timeout` 5000, `parallel-syncs` 1; the run starts once every sentinel knows
//!   both replicas and both other sentinels and `SENTINEL CKQUORUM` is OK;
//! * **ours**: 3 `redis_node_manager` processes (the release binary next to this one) on one
//!   standalone ZooKeeper (`forceSync=no`), or with `--zk-ensemble` on a production-shaped
//!   3-server ensemble (`forceSync=yes`, `tickTime=2000`), shared by all runs (fresh znode
//!   root per run), `--down-after-ms` D
//!   `--required-node-managers 2` (defaults otherwise: `--max-failures 3`, `majority`); the run
//!   starts once the trio is published, the lock has 3 children and the 3 managers' views
//!   are in ZooKeeper.
//!
//! A writer sends `SET seq:N N` (N = 1, 2, ...) back to back and logs each acknowledged write
//! with its time: for Sentinel through a Sentinel-aware redis-rs client
//! (`redis::sentinel::SentinelClient`: it asks the sentinels for the master, checks it with
//! `ROLE`, and after any error the writer drops its connection and asks again, pausing 10 ms
//! when no master could be reached), for ours through `redis_failover_client::Client`. Both
//! wait at most --command-timeout-ms for a reply and 1 s for a connection. After the writer
//! has run --settle-ms + random [0, --jitter-ms), the master is killed (`kill -9`, scenario
//! `crash`) or frozen (`SIGSTOP`, scenario `hang`; it gets SIGCONT + SIGKILL when the run is
//! torn down). Measured from the signal:
//! * **published**: Sentinel: the first `+switch-master` on a `PSUBSCRIBE *` to each of the 3
//!   sentinels (the earliest of the three); also shown: `+promoted-slave`, from when the
//!   leading sentinel's `SENTINEL get-master-addr-by-name` names the new master; ours: a
//!   ZooKeeper data watch on `<root>/nodes` (timed when the read showing the new master
//!   returns);
//! * **write gap**: the first write acknowledged more than 5 ms after the failure took effect
//!   (SIGKILL reaped / SIGSTOP sent), i.e. on the new master;
//! * **lost**: acknowledged writes whose key does not hold its value on the new master once the
//!   writer has run --linger-ms past the first new write;
//! * **failovers**: Sentinel: the most `+switch-master` events one sentinel published during the
//!   run; ours: the epoch delta of `<root>/nodes`. Must be 1.
//!
//! Then medians per scenario and system, the Sentinel / ours ratios, the targets, a Markdown
//! table, and PNG timelines of acknowledged writes per 10 ms around the failure (the run with
//! the median write gap of each system, at the first --down-after), `--plot` for the crash and
//! `<plot>_hang.png` for the hang. Every process (redis, sentinels, ZooKeeper, managers) is
//! killed by a Drop guard, also when a run fails or panics; every wait has a deadline and the
//! whole bench stops starting runs after --max-minutes.

use std::process::ExitCode;

use clap::Parser;
use redis_failover_bench::scaffold::{fail, Scaffold};
use redis_failover_bench::sentinel::SentinelProgram;
use redis_failover_bench::sentinel_bench::{bench, Opts, Settings};

fn main() -> ExitCode {
    let mut opts = Opts::parse();
    let scaffold = Scaffold::new("sentinel_bench");
    if let Err(e) = opts.check() {
        return fail(e);
    }
    let manager_bin = match scaffold.manager_bin_if(opts.with_ours(), opts.manager_bin.as_deref()) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let sentinel = match opts.with_sentinel().then(SentinelProgram::find).transpose() {
        Ok(p) => p,
        Err(e) => return fail(format!("sentinel_bench: {e}")),
    };
    let with_ours = opts.with_ours();
    let zk_ensemble = opts.zk_ensemble;
    scaffold
        .zookeeper_if(with_ours)
        .zookeeper_ensemble(zk_ensemble)
        .run(|env| {
            let zk_connect = if with_ours {
                env.zk_connect()
            } else {
                String::new()
            };
            let settings = Settings::new(opts, zk_connect, env.zk_shape(), manager_bin, sentinel);
            env.block_on(bench(&settings))
        })
}
