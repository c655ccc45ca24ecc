//! `soak`'s phases (the program's documentation is in `src/bin/soak.rs`): its flags, the
//! two phases (`ours`, `sentinel`) under the `load` of busy loops, and the summary.

mod load;
mod ours;
mod sentinel;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use redis_failover_tests::stats::ms;

use crate::load::load_average;

/// How often the bench reads `<root>/nodes` (ours) during a phase.
const POLL: Duration = Duration::from_millis(250);
/// Progress line every ...
const PROGRESS_EVERY: Duration = Duration::from_secs(60);

/// False failovers under CPU starvation: 3 redis_node_manager processes vs 3 Redis Sentinels.
#[derive(Parser, Debug)]
#[command(name = "soak", version, long_about = None)]
pub struct Opts {
    /// Length of each phase, in minutes (fractions allowed).
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,

    /// Which system(s).
    #[arg(long, value_enum, default_value_t = SystemArg::Both)]
    system: SystemArg,

    /// Our managers' --down-after-ms.
    #[arg(long, default_value_t = 500)]
    down_after_ms: u64,

    /// Our managers' --max-failures.
    #[arg(long, default_value_t = 3)]
    max_failures: u32,

    /// Sentinel's down-after-milliseconds.
    #[arg(long, default_value_t = 200)]
    sentinel_down_after_ms: u64,

    /// Busy-loop processes [default: one per core].
    #[arg(long)]
    hogs: Option<usize>,

    /// The writer sends one SET every this many ms.
    #[arg(long, default_value_t = 10)]
    write_every_ms: u64,

    /// Reply timeout of both writers.
    #[arg(long, default_value_t = 500)]
    command_timeout_ms: u64,

    /// Deadline of the set-up waits, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,

    /// The redis_node_manager binary [default: next to this executable].
    #[arg(long, value_name = "PATH")]
    manager_bin: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SystemArg {
    Sentinel,
    Ours,
    Both,
}

/// What one phase counted.
struct PhaseOut {
    system: String,
    settings: String,
    counts: Counts,
    minutes: f64,
    interrupted: bool,
    acked: usize,
    errors: usize,
    first_error: Option<String>,
    longest_gap: Duration,
    hog_shares: Vec<f64>,
    load_start: String,
    load_end: String,
}

/// What each system counts in its own way.
#[derive(Default)]
struct Counts {
    failovers: u64,
    /// Ours: master changes seen by polling; Sentinel: `+switch-master` per sentinel.
    changes: String,
    /// False suspicions of the master, and of any node.
    sdown_master: usize,
    sdown_any: usize,
    /// Sentinel: `+odown` events (per sentinel); ours: "-" .
    odown: String,
    other: String,
}

/// Runs the phases `--system` asks for and prints the summary; true when every phase ran to
/// its end.
pub async fn soak(o: &Opts) -> bool {
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hogs = o.hogs.unwrap_or(nproc);
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let interrupted = Arc::clone(&interrupted);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("soak: ctrl-c: ending the phase");
                interrupted.store(true, Ordering::Relaxed);
            }
        });
    }
    println!(
        "soak: {} min per phase, {hogs} busy loop(s) on {nproc} core(s), writer: one SET every {} ms; load average {}",
        o.minutes,
        o.write_every_ms,
        load_average()
    );
    let mut outs = Vec::new();
    let mut ok = true;
    if o.system != SystemArg::Sentinel {
        match ours::phase(o, hogs, &interrupted).await {
            Ok(p) => outs.push(p),
            Err(e) => {
                ok = false;
                println!("ours: FAILED: {e}");
            }
        }
    }
    if o.system != SystemArg::Ours && !interrupted.load(Ordering::Relaxed) {
        match sentinel::phase(o, hogs, &interrupted).await {
            Ok(p) => outs.push(p),
            Err(e) => {
                ok = false;
                println!("sentinel: FAILED: {e}");
            }
        }
    }

    println!();
    println!("Summary:");
    for p in &outs {
        println!(
            "  {:<9} {:.1} min{}  failovers {}  master changes {}  +sdown of the master {}, of any node {}  +odown {}  {}  writer: {} acked, {} errors{}, longest pause {:.1} ms  busy loops got {} of a core  load {} -> {}",
            p.system,
            p.minutes,
            if p.interrupted { " (interrupted)" } else { "" },
            p.counts.failovers,
            p.counts.changes,
            p.counts.sdown_master,
            p.counts.sdown_any,
            p.counts.odown,
            p.counts.other,
            p.acked,
            p.errors,
            p.first_error
                .as_ref()
                .map_or(String::new(), |e| format!(" (first: {e})")),
            ms(p.longest_gap),
            shares(&p.hog_shares),
            p.load_start,
            p.load_end
        );
    }
    println!();
    println!("Markdown:");
    println!();
    println!("| system | settings | minutes under load | failovers (target 0) | false `+sdown` of the master / any node | `+odown` | writer: acked, errors, longest pause | load average start → end |");
    println!("|---|---|---|---|---|---|---|---|");
    for p in &outs {
        println!(
            "| {} | {} | {:.1}{} | **{}** | {} / {} | {} | {}, {}, {:.0} ms | {} → {} |",
            p.system,
            p.settings,
            p.minutes,
            if p.interrupted { " (interrupted)" } else { "" },
            p.counts.failovers,
            p.counts.sdown_master,
            p.counts.sdown_any,
            p.counts.odown,
            p.acked,
            p.errors,
            ms(p.longest_gap),
            p.load_start,
            p.load_end
        );
    }
    println!();
    println!(
        "Load: {hogs} busy-loop processes on {nproc} cores for the whole of each phase (each got {} of a core); writer: `SET seq:N N` every {} ms.",
        outs.iter()
            .map(|p| format!("{}: {}", p.system, shares(&p.hog_shares)))
            .collect::<Vec<_>>()
            .join("; "),
        o.write_every_ms
    );
    ok && outs.iter().all(|p| !p.interrupted)
}

fn shares(v: &[f64]) -> String {
    v.iter()
        .map(|s| format!("{:.0}%", s * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}
