//! `scale_bench`: redis_node_manager with many groups, on one machine, in one program, with a
//! throwaway ZooKeeper and real `redis-server` processes (N groups of 3: master + 2 replicas,
//! loopback, `--save ''`, every replica linked before anything is measured).
//!
//! `scale_bench footprint --groups 10,100,300 --seconds 30 --down-after-ms 1000`: for each N,
//! on the same N groups:
//! * **baseline**: nothing watches the nodes for --baseline-secs (Redis commands/s only);
//! * **ours**: a TOML config with N `[[groups]]` (`g<i>`, its nodes, `znode_path
//!   <root>/g<i>`) and ONE `redis_node_manager` process (the release binary next to this one)
//!   with `-C <file> -z <zk> --down-after-ms D`; once every group's `<znode_path>/nodes` names
//!   its master and both replicas, the bench closes its ZooKeeper session, waits
//!   --warmup-secs, and measures over --seconds;
//! * **Sentinel**: ONE Redis Sentinel with `sentinel monitor g<i> 127.0.0.1 <master> 1` and
//!   `down-after-milliseconds g<i> D` for every group in its config file; once `SENTINEL
//!   MASTERS` shows 2 replicas for every group, --warmup-secs, then --seconds.
//!
//! Measured: CPU as % of one core (utime+stime of `/proc/<pid>/stat` in clock ticks of
//! `sysconf(_SC_CLK_TCK)`), RSS (`VmRSS`), for ours ZooKeeper requests/s (`srvr` Received
//! delta; the manager's connection alone per `cons`), per group, and the manager's ZooKeeper
//! bytes/s in and out (`ss -tin` of its socket(s)), and Redis commands/s per node (`INFO
//! stats` total_commands_processed delta, the bench's own read taken off, averaged over the
//! 3N nodes). A Markdown table per N, with ours / Sentinel, and a summary; the groups are
//! torn down before the next N.
//!
//! `scale_bench rack --groups 100 --kill 30 --managers 1 [--runs 1] [--seed S]`: N groups,
//! --managers managers with every group (`--required-node-managers` min(2, managers) when
//! more than one); a `redis_failover_client::Client` per chosen group writing `SET
//! rack:<group>:<n> <n>` back to back (or one per --write-interval-ms: on a small machine K
//! writers back to back take the CPU the managers need); after --write-secs the masters are
//! SIGKILLed in one tight loop: first one group's alone (the reference), then K other groups'
//! at once (picked with `fastrand` from --seed, printed). Per killed group: the new master published (a
//! ZooKeeper data watch on its `<znode_path>/nodes`) and the first write acknowledged > 5 ms
//! after the kill, within --deadline-secs; p50 / p90 / p99 / max of both, the ratio
//! p99(rack) / single, ZooKeeper requests over --zk-window-secs after the kill (total, the
//! managers' and the bench's, peak per 100 ms), and the acknowledged writes read back from
//! each new master (lost must be 0).
//!
//! Exit code 0 when every step worked (and, for rack, every group failed over without a lost
//! write). Every process (redis-server, manager, sentinel, ZooKeeper) is killed by pid by a
//! Drop guard, also when a step fails or panics, and every wait has a deadline. A bench
//! program, not a test: nothing of it runs in CI.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use redis_failover_bench::scaffold::{fail, warn_if_stale, Scaffold};
use redis_failover_bench::scale_bench::{raise_fd_limit, run, Cmd, Opts, SentinelCmd};

const ME: &str = "scale_bench";

fn main() -> ExitCode {
    let opts = Opts::parse();
    let scaffold = Scaffold::new(ME);
    if let Err(e) = opts.check() {
        return fail(e);
    }
    // Before any child is started: they inherit it.
    match raise_fd_limit(opts.fds_wanted()) {
        Ok(n) => eprintln!("{ME}: open files limit {n}"),
        Err(e) => return fail(format!("{ME}: {e}")),
    }
    let bin = match scaffold.manager_bin(opts.common().manager_bin.as_deref()) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    warn_if_stale(&bin, ME);
    let sentinel = match &opts.cmd {
        Cmd::Footprint(_) => match SentinelCmd::find() {
            Ok(s) => Some(s),
            Err(e) => return fail(format!("{ME}: {e}")),
        },
        Cmd::Rack(_) => None,
    };
    scaffold
        .zookeeper()
        .shutdown_timeout(Duration::from_secs(10))
        .run(|env| env.block_on(run(&opts, env.zk(), &bin, sentinel.as_ref())))
}
