//! `ha_bench`: how long does the group go without a working leader when the leading
//! `redis_node_manager` is killed, and how long do writers pause during a planned switchover?
//! Real processes: one throwaway ZooKeeper for the whole bench, a fresh redis trio (master +
//! 2 replicas) and a fresh znode root per run.
//!
//! 1. `takeover`: three `redis_node_manager` PROCESSES (the release binary next to this one)
//!    watch the trio with `--zk-session-timeout-ms <--session-ms>`. Once `<root>/nodes` names
//!    the trio and three children exist under `<root>/master_redis_node_manager_lock` (data:
//!    the manager id, `<hostname>-<name>`; the lowest sequence suffix leads), the leading
//!    manager's process is killed with SIGKILL, and the bench measures kill -> the lowest lock
//!    child belongs to another manager (a ZooKeeper child watch; timed when the read that shows
//!    it returns). A killed process cannot close its session, so its lock node lives until
//!    ZooKeeper expires the session: the figure is bounded below by about the session timeout
//!    (less the time since the session's last heartbeat), and ZooKeeper checks expiries on
//!    tick boundaries (tickTime 500 ms in the harness). Then, as a check that the new leader
//!    acts, the redis master is killed (`kill -9`) and the bench measures kill -> a new master
//!    published in `<root>/nodes` (data watch), and counts the failovers (the epoch delta a
//!    little later; it must be 1).
//! 2. `switchover`: a manager in this process, a `redis_failover_client::Client`, and one
//!    writer task sending `SET seq:N N` back to back through the client and recording the
//!    instant each one is acknowledged. After --write-ms of writing, `client.manual_failover`
//!    asks for a switchover to a replica; once the client's topology names that replica, the
//!    writer goes on for another --write-ms. Measured: the longest gap between two consecutive
//!    acknowledged writes (the write pause), the errors the writer saw, and the acknowledged
//!    writes missing on the new master afterwards (lost; must be 0).
//!
//! Every wait has a deadline; every process is killed by a Drop guard. Logging is quiet
//! (`warn`) unless `RUST_LOG` says otherwise; the manager processes get `RUST_LOG=warn` and
//! log to files in the run's temp dir (their tails are printed when a run fails).

use std::process::ExitCode;

use clap::Parser;
use redis_failover_bench::ha_bench::{bench, Opts, Settings};
use redis_failover_bench::scaffold::{fail, Scaffold};

fn main() -> ExitCode {
    let opts = Opts::parse();
    let scaffold = Scaffold::new("ha_bench");
    // The switchover runs its manager in this process; the takeover needs the binary.
    let manager_bin = match scaffold.manager_bin_if(opts.takeover(), opts.manager_bin.as_deref()) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    scaffold.zookeeper().manager_runtime().run(|env| {
        let settings = Settings::new(opts, env.zk(), manager_bin, env.manager_handle());
        env.block_on(bench(&settings))
    })
}
