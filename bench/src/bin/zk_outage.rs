//! `zk_outage`: what a ZooKeeper outage does to a healthy group.
//!
//! A throwaway ZooKeeper, a Redis trio (master + 2 replicas), three `redis_node_manager`
//! processes (the release binary next to this one, each with `--http-addr`) and a
//! `redis_failover_client::Client` with a writer (`SET seq:N N`) and a reader (`GET` of the
//! last acknowledged key, routed to a replica) running all the time. Then:
//!
//! 1. ZooKeeper is stopped (SIGTERM) for --outage-secs (60);
//! 2. --kill-after-secs (20) into the outage the Redis master is killed (`kill -9`);
//! 3. until ZooKeeper returns, every node's `ROLE` is polled every 50 ms: no replica may
//!    become master (nobody may be promoted without ZooKeeper); the managers' logs and
//!    `GET /health` show what they did;
//! 4. ZooKeeper is started again (same data dir and port); measured: ZooKeeper back -> new
//!    master published in `<root>/nodes` -> the client's topology names it -> the first write
//!    acknowledged after ZooKeeper came back;
//! 5. checks: one failover in all, the survivors agree, the old master (restarted) rejoins as
//!    a replica, and every acknowledged write is on the new master except those acknowledged
//!    just before the `kill -9` (asynchronous replication).
//!
//! Prints a step-by-step report with timestamps (seconds since the traffic started). Exit 0
//! when every check passed. Every process is killed by pid on the way out (the harness's
//! guards), also when a step fails or panics. `tests/tests/zk_outage.rs` holds the short
//! in-process versions of the first checks.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use redis_failover_bench::scaffold::{fail, warn_if_stale, Scaffold};
use redis_failover_bench::tasks::panic_message;
use redis_failover_bench::zk_outage::{scenario, Opts, Setup};

const ME: &str = "zk_outage";

fn main() -> ExitCode {
    let opts = Opts::parse();
    let scaffold = Scaffold::new(ME);
    if opts.kill_after_secs >= opts.outage_secs {
        return fail("zk_outage: --kill-after-secs must be less than --outage-secs");
    }
    let bin = match scaffold.manager_bin(opts.manager_bin.as_deref()) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    warn_if_stale(&bin, ME);
    let dir = opts.log_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("rf-zk-outage-{}", std::process::id()))
    });
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return fail(format!("zk_outage: cannot create {}: {e}", dir.display()));
    }
    scaffold
        .worker_threads(2)
        .zookeeper()
        .shutdown_timeout(Duration::from_secs(10))
        .run(|env| {
            let setup = Setup {
                rt: env.runtime(),
                opts: &opts,
                zk: env.zk(),
                bin: &bin,
                dir: &dir,
            };
            // Everything the scenario starts is dropped (killed) before it returns, also on
            // panic.
            let result = catch_unwind(AssertUnwindSafe(|| scenario(&setup)));
            println!("logs: {}", dir.display());
            match result {
                Ok(Ok(())) => {
                    println!("result: PASS");
                    ExitCode::SUCCESS
                }
                Ok(Err(failures)) => {
                    println!("result: FAIL");
                    for f in failures {
                        println!("  - {f}");
                    }
                    ExitCode::FAILURE
                }
                Err(p) => {
                    println!("result: FAIL ({})", panic_message(p));
                    ExitCode::FAILURE
                }
            }
        })
}
