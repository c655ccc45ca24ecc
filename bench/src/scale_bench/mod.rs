//! `scale_bench`'s measurements (the program's documentation is in `src/bin/scale_bench.rs`):
//! its flags; the Redis `groups` of a run; `ours` (the multi-group config file and the
//! `redis_node_manager` processes on it) and the one `sentinel` watching every group; the
//! counters read from `/proc` (`procstat`), ZooKeeper (`zkstats`) and Redis (`redis_stats`);
//! the `footprint` subcommand and its `footprint_report`; the `rack` subcommand, its
//! `crash` of a set of masters under the `writes` and its `rack_report`.

mod crash;
mod footprint;
mod footprint_report;
mod groups;
mod ours;
mod procstat;
mod rack;
mod rack_report;
mod redis_stats;
mod sentinel;
mod writes;
mod zkstats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use redis_failover_tests::ZkServer;

pub use procstat::raise_fd_limit;
pub use sentinel::SentinelCmd;

/// redis_node_manager with many groups: its footprint next to one Redis Sentinel, and many
/// masters killed at once.
#[derive(Parser, Debug)]
#[command(name = "scale_bench", version, long_about = None)]
pub struct Opts {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// One manager vs one Redis Sentinel watching N groups: CPU, RSS, ZooKeeper and Redis
    /// traffic, for each N in --groups.
    Footprint(FootprintOpts),
    /// K masters of N groups killed at once (after one single-group crash as the
    /// reference): time to publish a new master and to the first write on it, lost writes.
    Rack(RackOpts),
}

/// Flags of both subcommands.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The manager's --down-after-ms (and Sentinel's down-after-milliseconds).
    #[arg(long, default_value_t = 1000)]
    pub down_after_ms: u64,

    /// The manager's --probe-interval-ms [default: the manager's own].
    #[arg(long, value_name = "MS")]
    pub probe_interval_ms: Option<u64>,

    /// Deadline of every setup wait (Redis nodes, publication, Sentinel ready), in seconds.
    #[arg(long, default_value_t = 180, value_parser = clap::value_parser!(u64).range(1..))]
    pub setup_timeout_secs: u64,

    /// The redis_node_manager binary [default: next to this executable].
    #[arg(long, value_name = "PATH")]
    pub manager_bin: Option<PathBuf>,

    /// Keep the config files and the manager / Sentinel logs in DIR (default: a temp dir,
    /// removed at the end).
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct FootprintOpts {
    /// Numbers of groups (of 3 redis-server each), one measurement each, in this order.
    #[arg(long, value_delimiter = ',', default_values_t = [10usize, 100, 300])]
    pub groups: Vec<usize>,

    /// Length of each measurement window, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub seconds: u64,

    /// Warm-up between "ready" and the window, in seconds.
    #[arg(long, default_value_t = 5)]
    pub warmup_secs: u64,

    /// Window of the baseline (Redis commands/s with nothing watching the nodes), in
    /// seconds; 0: no baseline.
    #[arg(long, default_value_t = 10)]
    pub baseline_secs: u64,

    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug, Clone)]
pub struct RackOpts {
    /// Number of groups (of 3 redis-server each).
    #[arg(long, default_value_t = 100)]
    pub groups: usize,

    /// How many masters are killed at once (groups picked at random).
    #[arg(long, default_value_t = 30)]
    pub kill: usize,

    /// Manager processes (m1, m2, ...), each with every group.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub managers: u64,

    /// Runs, each on fresh Redis nodes and managers.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: u64,

    /// Seed of the choice of groups [default: random, printed].
    #[arg(long)]
    pub seed: Option<u64>,

    /// At most one write per this many ms per group (0: back to back). On a small machine,
    /// K writers back to back take the CPU the managers need: compare with, say, 10.
    #[arg(long, default_value_t = 0)]
    pub write_interval_ms: u64,

    /// How long the writers run before the kill, in seconds.
    #[arg(long, default_value_t = 3)]
    pub write_secs: u64,

    /// Deadline of a killed group's new master and first write, from the kill, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub deadline_secs: u64,

    /// ZooKeeper requests are counted over this long after the kill, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub zk_window_secs: u64,

    /// How long the writers go on after the last first write on a new master, in ms (the
    /// lost writes are checked after it).
    #[arg(long, default_value_t = 1000)]
    pub linger_ms: u64,

    #[command(flatten)]
    pub common: Common,
}

impl Opts {
    pub fn common(&self) -> &Common {
        match &self.cmd {
            Cmd::Footprint(o) => &o.common,
            Cmd::Rack(o) => &o.common,
        }
    }

    /// The values checked.
    pub fn check(&self) -> Result<(), String> {
        let da = self.common().down_after_ms;
        if !(100..=60_000).contains(&da) {
            return Err("scale_bench: --down-after-ms takes 100..=60000".into());
        }
        match &self.cmd {
            Cmd::Footprint(o) if o.groups.is_empty() || o.groups.contains(&0) => {
                Err("scale_bench footprint: --groups takes numbers > 0".into())
            }
            Cmd::Rack(o) if o.kill == 0 || o.kill >= o.groups => Err(
                "scale_bench rack: --kill must be > 0 and < --groups (one group is the single-crash reference)"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    /// Redis nodes of the largest set of groups.
    pub fn max_nodes(&self) -> usize {
        3 * match &self.cmd {
            Cmd::Footprint(o) => o.groups.iter().copied().max().unwrap_or(0),
            Cmd::Rack(o) => o.groups,
        }
    }

    /// File descriptors this program and its children (which inherit the limit) may need:
    /// a manager or Sentinel holds about 2 connections per node, the clients 3 per group.
    pub fn fds_wanted(&self) -> u64 {
        (self.max_nodes() as u64 * 8).max(4096)
    }
}

/// Runs the subcommand on the throwaway ZooKeeper `zk` (footprint needs `sentinel`); the
/// exit code.
pub async fn run(
    opts: &Opts,
    zk: &ZkServer,
    manager_bin: &Path,
    sentinel: Option<&SentinelCmd>,
) -> ExitCode {
    let ok = match (&opts.cmd, sentinel) {
        (Cmd::Footprint(o), Some(s)) => footprint::bench(o, zk, manager_bin, s).await,
        (Cmd::Footprint(_), None) => {
            eprintln!("scale_bench footprint: no sentinel program");
            false
        }
        (Cmd::Rack(o), _) => rack::bench(o, zk, manager_bin).await,
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Where a run's config file and logs go: under --log-dir (kept) or in a temp dir (removed
/// when dropped, after the processes writing into it are gone).
pub(crate) enum RunDir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl RunDir {
    /// `<log dir>/<label>` (created), or a fresh temp dir.
    pub(crate) fn new(log_dir: Option<&Path>, label: &str) -> Result<RunDir, String> {
        match log_dir {
            Some(d) => {
                let p = d.join(label);
                std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                Ok(RunDir::Kept(p))
            }
            None => tempfile::Builder::new()
                .prefix(&format!("rf-scale-{label}-"))
                .tempdir()
                .map(RunDir::Temp)
                .map_err(|e| format!("cannot create a temp dir: {e}")),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        match self {
            RunDir::Temp(t) => t.path(),
            RunDir::Kept(p) => p,
        }
    }
}

/// Seconds as a [`Duration`].
pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Runs blocking `f` off the runtime's workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(crate::tasks::join_error)?
}
