//! `partition`: runs a partition scenario of `redis_failover_tests::partition` — master + 2
//! replicas on three network-namespace hosts, ZooKeeper on a fourth, three
//! `redis_node_manager` processes, an application client on the master's host and one on
//! another, each writing back to back through `redis_failover_client::Client` — and prints per
//! client the acknowledged writes and those lost (read back from the final master), when the
//! new master was published and when the group converged. Needs root and iptables.
//!
//! Exits 1 when the scenario could not run or did not converge; lost writes are reported,
//! not (yet) a failure: the fencing that should make them 0 is issue 11's work.
//!
//! ```sh
//! cargo build --release -p redis-failover-manager -p redis-failover-bench
//! sudo ./target/release/partition --down-after-ms 1000     # --list shows the scenarios
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use redis_failover_bench::scaffold::{fail, warn_if_stale, Scaffold};
use redis_failover_tests::partition::{self, Options};

/// A network partition against a Redis trio, three node managers and two application
/// clients on network namespaces; counts acknowledged writes lost per client.
#[derive(Parser, Debug)]
#[command(name = "partition", version, long_about = None)]
struct Opts {
    /// The scenario (see --list).
    #[arg(long, default_value = "master-client-isolated-drop-12s")]
    scenario: String,

    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,

    /// The managers' --down-after-ms [default: the manager's own default].
    #[arg(long)]
    down_after_ms: Option<u64>,

    /// The managers' --zk-session-timeout-ms.
    #[arg(long, default_value_t = 4000)]
    session_ms: u64,

    /// Run the three managers on ZooKeeper's host instead of on hosts of their own.
    #[arg(long)]
    managers_on_zk_host: bool,

    /// One write per this many ms per client [default: back to back].
    #[arg(long)]
    write_interval_ms: Option<u64>,

    /// The redis_node_manager binary [default: next to this executable].
    #[arg(long, value_name = "PATH")]
    manager_bin: Option<PathBuf>,

    /// Where the logs go [default: a new directory under the temp dir, kept].
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,

    /// Synchronous mode: the clients acknowledge a write once N replicas have it (WAIT N,
    /// 1 s timeout) and the managers run with --synchronous-replicas N [default: off]
    #[arg(long, value_name = "N")]
    synchronous: Option<usize>,

    /// The managers' --fencing (min-replicas or none) [default: theirs]
    #[arg(long, value_name = "MODE")]
    fencing: Option<String>,

    /// Run every scenario of the table, one after the other
    #[arg(long)]
    all: bool,
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    if opts.list {
        for s in partition::scenarios() {
            println!(
                "{:<36} {:?} {:?} {:?} flap {:?}",
                s.name, s.fault, s.mode, s.duration, s.flap
            );
        }
        return ExitCode::SUCCESS;
    }
    let scenarios = if opts.all {
        partition::scenarios()
    } else {
        match partition::scenario(&opts.scenario) {
            Some(s) => vec![s],
            None => {
                return fail(format!(
                    "partition: no scenario {:?} (see --list)",
                    opts.scenario
                ))
            }
        }
    };
    let scaffold = Scaffold::new("partition");
    let bin = match scaffold.manager_bin(opts.manager_bin.as_deref()) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    warn_if_stale(&bin, "partition");
    let mut options = Options::new(bin);
    options.down_after_ms = opts.down_after_ms;
    options.session_ms = opts.session_ms;
    options.managers_on_own_hosts = !opts.managers_on_zk_host;
    options.write_interval = opts.write_interval_ms.map(std::time::Duration::from_millis);
    if let Some(dir) = opts.log_dir {
        options.log_dir = dir;
    }
    options.synchronous = opts
        .synchronous
        .map(|n| (n, std::time::Duration::from_secs(1)));
    if let Some(f) = &opts.fencing {
        options.manager_flags = vec!["--fencing".into(), f.clone()];
    }
    scaffold.run(|env| {
        for scenario in &scenarios {
            eprintln!("partition: running {} ...", scenario.name);
            let mut o = options.clone();
            o.log_dir = options.log_dir.join(scenario.name);
            match env.block_on(partition::run(&o, scenario)) {
                Ok(report) => print!("{report}"),
                Err(e) => return fail(format!("partition: {e}")),
            }
        }
        ExitCode::SUCCESS
    })
}
