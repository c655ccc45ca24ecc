//! `partition`: runs a partition scenario of `redis_failover_tests::partition` — master + 2
//! replicas on three network-namespace hosts, ZooKeeper on a fourth, three
//! `redis_node_manager` processes, an application client on the master's host and one on
//! another, each writing back to back through `redis_failover_client::Client` — and prints per
//! client the acknowledged writes and those lost (read back from the final master), when the
//! new master was published and when the group converged. Needs root and iptables.
//!
//! With `--system sentinel` (or `both`, the default: ours then Sentinel for each scenario) the
//! same run has 3 Redis Sentinels (quorum 2, the same down-after, failover-timeout 5 s,
//! parallel-syncs 1) on the managers' hosts in place of the managers, and the clients write
//! through redis-rs's Sentinel client; at the end a Markdown table puts the runs side by side.
//!
//! Exits 1 when a run could not run or did not converge (the others still run, the table says
//! which failed); lost writes are reported, not a failure.
//!
//! ```sh
//! cargo build --release -p redis-failover-manager -p redis-failover-bench
//! sudo ./target/release/partition --all     # --list shows the scenarios
//! ```

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use redis_failover_bench::scaffold::{fail, warn_if_stale, Scaffold};
use redis_failover_bench::tasks::panic_message;
use redis_failover_tests::partition::{self, summary_table, Options, Report, System};

/// Which systems run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Systems {
    Ours,
    Sentinel,
    Both,
}

impl Systems {
    fn list(self) -> Vec<System> {
        match self {
            Systems::Ours => vec![System::Ours],
            Systems::Sentinel => vec![System::Sentinel],
            Systems::Both => vec![System::Ours, System::Sentinel],
        }
    }
}

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

    /// What watches the trio: our managers, Redis Sentinels, or both (ours then Sentinel,
    /// for each scenario).
    #[arg(long, value_enum, default_value_t = Systems::Both)]
    system: Systems,

    /// The managers' --down-after-ms and the sentinels' down-after-milliseconds.
    #[arg(long, default_value_t = 1000)]
    down_after_ms: u64,

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

    /// Replication mode: N > 0, the clients acknowledge a write once N replicas have it
    /// (strict, WAIT N, 1 s timeout); 0, asynchronous(); the managers run with
    /// --synchronous-replicas N [default: both sides' defaults, one replica]. Ours only
    #[arg(long, value_name = "N")]
    synchronous: Option<usize>,

    /// The managers' --fencing (min-replicas or none) [default: theirs]. Ours only
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
    options.down_after_ms = Some(opts.down_after_ms);
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
        let mut runs: Vec<(&str, System, Result<Report, String>)> = Vec::new();
        for scenario in &scenarios {
            for system in opts.system.list() {
                // A second fault on our leader has no Sentinel equivalent: not run there.
                if system == System::Sentinel && scenario.then.is_some() {
                    eprintln!(
                        "partition: {} [sentinel]: not run (its second fault cuts our leader from ZooKeeper)",
                        scenario.name
                    );
                    continue;
                }
                eprintln!(
                    "partition: running {} [{}] ...",
                    scenario.name,
                    system.name()
                );
                let mut o = options.clone();
                o.system = system;
                o.log_dir = options.log_dir.join(scenario.name).join(system.name());
                let result = catch_unwind(AssertUnwindSafe(|| {
                    env.block_on(partition::run(&o, scenario))
                }))
                .unwrap_or_else(|p| Err(panic_message(p)));
                match &result {
                    Ok(report) => print!("{report}"),
                    Err(e) => eprintln!("partition: {} [{}]: {e}", scenario.name, system.name()),
                }
                runs.push((scenario.name, system, result));
            }
        }
        let rows: Vec<_> = runs
            .iter()
            .map(|(sc, sys, r)| (*sc, sys.name(), r.as_ref().map_err(String::as_str)))
            .collect();
        println!(
            "\n{} ms down-after for both; logs under {}\n",
            opts.down_after_ms,
            options.log_dir.display()
        );
        print!("{}", summary_table(&rows));
        if runs.iter().any(|(_, _, r)| r.is_err()) {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}
