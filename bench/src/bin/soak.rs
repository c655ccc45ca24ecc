//! `soak`: false failovers under CPU starvation, redis_node_manager vs Redis Sentinel.
//!
//! Two phases of --minutes each, one after the other, on the same machine:
//! 1. **ours**: a redis trio (master + 2 replicas), ZooKeeper, 3 `redis_node_manager`
//!    processes with the most aggressive settings we recommend (`--down-after-ms 500`
//!    `--max-failures 3` `--required-node-managers 2`, `majority`, session timeout 6 s), and a
//!    light writer (`SET seq:N N` every --write-every-ms through `redis_failover_client::Client`);
//! 2. **Sentinel**: a fresh trio, 3 Redis Sentinels at `down-after-milliseconds`
//!    --sentinel-down-after-ms (200 by default), quorum 2, `failover-timeout` 5000, and the same
//!    light writer through a Sentinel-aware redis-rs client.
//!
//! Once a phase's system is ready, --hogs busy-loop processes (`sh -c 'while :; do :; done'`,
//! one per core by default) keep every core busy until the phase ends. Nothing fails: every
//! failover is a false one. Counted per phase: failovers (ours: epoch delta of
//! `<root>/nodes`; Sentinel: the most `+switch-master` events one sentinel published),
//! false suspicions (ours: `+sdown` lines in the managers' logs; Sentinel: `+sdown` and `+odown`
//! events on a `PSUBSCRIBE *` to every sentinel), and the writer's errors and longest pause.
//! ctrl-c ends the running phase early (the summary still prints). Every process is killed by
//! a Drop guard.

use std::process::ExitCode;

use clap::Parser;
use redis_failover_bench::scaffold::{fail, Scaffold};
use redis_failover_bench::soak::{soak, Opts};

fn main() -> ExitCode {
    let opts = Opts::parse();
    let scaffold = Scaffold::new("soak").thread_name("soak");
    if !(opts.minutes > 0.0 && opts.minutes <= 24.0 * 60.0) {
        return fail("soak: --minutes must be in (0, 1440]");
    }
    scaffold.run(|env| env.block_on(soak(&opts)))
}
