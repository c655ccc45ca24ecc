//! `scale_bench rack`'s Markdown: per run, the single crash and the rack crash side by side
//! (p50 / p90 / p99 / max of published and first write, successes, lost writes, ZooKeeper
//! requests after the kill), the ratio p99(rack) / single, the groups that failed; and the
//! samples of every run pooled.

use std::time::Duration;

use redis_failover_tests::stats::ms;

use super::crash::{CrashResult, GroupOutcome};
use super::rack::RunResult;
use super::RackOpts;
use crate::stats::pct_dur;

const DASH: &str = "–";

/// The table of one run; true when every group succeeded and nothing was lost.
pub(super) fn print_run(o: &RackOpts, run: u64, r: &RunResult) -> bool {
    println!();
    println!(
        "### run {run}: {} groups, {} manager(s), down-after {} ms, writes {}; reference {}",
        o.groups,
        o.managers,
        o.common.down_after_ms,
        if o.write_interval_ms == 0 {
            "back to back".to_string()
        } else {
            format!("one per {} ms per group", o.write_interval_ms)
        },
        r.single_group
    );
    println!();
    header(o);
    line(&format!("single ({})", r.single_group), &r.single);
    line(&format!("rack ({} at once)", r.rack.groups.len()), &r.rack);
    println!();
    print_ratio(&samples(&[&r.single]), &samples(&[&r.rack]));
    notes(o);
    let mut ok = true;
    for (what, c) in [("single", &r.single), ("rack", &r.rack)] {
        for g in &c.groups {
            if !g.succeeded() || g.lost != Some(0) || !g.problems.is_empty() {
                ok = false;
                println!(
                    "{what} {}: published {} first write {} new master {} lost {} acked {} errors {}: {}",
                    g.name,
                    opt_ms(g.published),
                    opt_ms(g.first_write),
                    g.new_master.as_ref().map_or("?".to_string(), |m| m.to_string()),
                    g.lost.map_or("?".to_string(), |n| n.to_string()),
                    g.acked,
                    g.errors,
                    g.problems.join("; ")
                );
            }
        }
    }
    ok
}

/// Every run's groups in one table.
pub(super) fn print_pooled(runs: &[RunResult]) {
    println!();
    println!("### {} runs pooled", runs.len());
    println!();
    let singles: Vec<&CrashResult> = runs.iter().map(|r| &r.single).collect();
    let racks: Vec<&CrashResult> = runs.iter().map(|r| &r.rack).collect();
    println!("| crash | groups | succeeded | published p50 / p90 / p99 / max ms | first write p50 / p90 / p99 / max ms | acked | lost |");
    println!("|---|---:|---:|---|---|---:|---:|");
    for (label, set) in [("single", &singles), ("rack", &racks)] {
        println!("| {label} | {} |", outcome_cells(&samples(set)));
    }
    println!();
    print_ratio(&samples(&singles), &samples(&racks));
}

/// groups | succeeded | published | first write | acked | lost, as table cells.
fn outcome_cells(s: &Samples) -> String {
    format!(
        "{} | {} | {} | {} | {} | {}",
        s.total,
        s.succeeded,
        dist(&s.published),
        dist(&s.first_write),
        s.acked,
        s.lost_text()
    )
}

fn header(o: &RackOpts) {
    println!(
        "| crash | groups | succeeded | published p50 / p90 / p99 / max ms | first write p50 / p90 / p99 / max ms | acked | lost | ZK req in {w} s after (all / managers / bench) | peak ZK req per 100 ms | managers' CPU % in {w} s after | kill(2) loop ms | machine idle before % |",
        w = o.zk_window_secs
    );
    println!("|---|---:|---:|---|---|---:|---:|---|---:|---:|---:|---:|");
}

fn line(label: &str, c: &CrashResult) {
    let z = &c.after.zk;
    println!(
        "| {label} | {} | {} / {} / {} | {} | {:.1} | {:.2}{} | {:.0} |",
        outcome_cells(&samples(&[c])),
        z.requests,
        z.requests_of_pids,
        z.requests.saturating_sub(z.requests_of_pids),
        c.after.peak_100ms,
        c.after.manager_cpu_pct,
        c.after.kill_spread.as_secs_f64() * 1000.0,
        if c.after.realtime {
            ""
        } else {
            " (not SCHED_FIFO: not root?)"
        },
        c.after.idle_before_pct
    );
}

fn notes(o: &RackOpts) {
    println!(
        "published: a ZooKeeper data watch per group on <znode_path>/nodes (the bench's session), \
         timed when the read naming another master returns; first write: the first write \
         acknowledged > 5 ms after the kill by another master than the killed one \
         (redis_failover_client, synchronous default); both \
         from the instant after the last kill(2), deadline {} s. lost: acknowledged writes not \
         read back with their value from the new master. ZK req: `srvr` Received delta; \
         managers = `cons` recved of the managers' connections, bench = the rest (its watch \
         session and one session per client); peak: `srvr` sampled every 100 ms; kill(2) loop: \
         the SIGKILLs, sent under SCHED_FIFO so that no killed process preempts the loop; machine \
         idle: /proc/stat over the --write-secs the writers ran before the kill.",
        o.deadline_secs
    );
}

/// `p99(rack) / single` of both figures.
fn print_ratio(single: &Samples, rack: &Samples) {
    let r = |a: &[Duration], b: &[Duration]| match (pct_dur(b, 0.99), pct_dur(a, 0.5)) {
        (Some(p99), Some(one)) if !one.is_zero() => {
            format!("{:.2}×", p99.as_secs_f64() / one.as_secs_f64())
        }
        _ => "n/a".into(),
    };
    println!(
        "p99(rack) / single{}: published {}, first write {}",
        if single.published.len() > 1 {
            " (median of the singles)"
        } else {
            ""
        },
        r(&single.published, &rack.published),
        r(&single.first_write, &rack.first_write)
    );
    println!();
}

/// The groups of some crashes together.
struct Samples {
    total: usize,
    succeeded: usize,
    published: Vec<Duration>,
    first_write: Vec<Duration>,
    acked: usize,
    lost: usize,
    unchecked: usize,
}

impl Samples {
    fn lost_text(&self) -> String {
        if self.unchecked > 0 {
            format!("{} ({} unchecked)", self.lost, self.unchecked)
        } else {
            self.lost.to_string()
        }
    }
}

fn samples(crashes: &[&CrashResult]) -> Samples {
    let groups: Vec<&GroupOutcome> = crashes.iter().flat_map(|c| &c.groups).collect();
    Samples {
        total: groups.len(),
        succeeded: groups.iter().filter(|g| g.succeeded()).count(),
        published: groups.iter().filter_map(|g| g.published).collect(),
        first_write: groups.iter().filter_map(|g| g.first_write).collect(),
        acked: groups.iter().map(|g| g.acked).sum(),
        lost: groups.iter().filter_map(|g| g.lost).sum(),
        unchecked: groups.iter().filter(|g| g.lost.is_none()).count(),
    }
}

/// `p50 / p90 / p99 / max` in ms, or a dash.
fn dist(v: &[Duration]) -> String {
    match (
        pct_dur(v, 0.5),
        pct_dur(v, 0.9),
        pct_dur(v, 0.99),
        pct_dur(v, 1.0),
    ) {
        (Some(a), Some(b), Some(c), Some(d)) => {
            format!("{:.0} / {:.0} / {:.0} / {:.0}", ms(a), ms(b), ms(c), ms(d))
        }
        _ => DASH.into(),
    }
}

fn opt_ms(d: Option<Duration>) -> String {
    d.map_or("none".into(), |d| format!("{:.0} ms", ms(d)))
}
