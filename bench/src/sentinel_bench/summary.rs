//! `sentinel_bench`'s summary: min / median / max per scenario, down-after and system, the
//! ours / Sentinel ratios, the targets, and the Markdown tables.

use std::time::Duration;

use redis_failover_tests::stats::ms;
use redis_failover_tests::stats::Stats;

use super::{manager_args, Key, RunOk, Settings, System};
use crate::failure::Scenario;
use crate::stats::fmt_stats_or;

pub(super) fn ok_runs(results: &[(Key, Result<RunOk, String>)], key: Key) -> (Vec<&RunOk>, usize) {
    let all: Vec<&Result<RunOk, String>> = results
        .iter()
        .filter(|(k, _)| *k == key)
        .map(|(_, r)| r)
        .collect();
    let ok: Vec<&RunOk> = all.iter().filter_map(|r| r.as_ref().ok()).collect();
    (ok, all.len())
}

fn median(mut v: Vec<Duration>) -> Option<Duration> {
    v.sort();
    Stats::of(v.into_iter()).map(|s| s.median)
}

fn fmt3(s: Option<Stats>) -> String {
    match s {
        Some(s) => format!(
            "{:.0} / **{:.0}** / {:.0} ms",
            ms(s.min),
            ms(s.median),
            ms(s.max)
        ),
        None => "n/a".into(),
    }
}

/// Prints the summary, the targets and the Markdown tables; true when every run passed and
/// made exactly one failover.
pub(super) fn summarize(
    s: &Settings,
    scenarios: &[Scenario],
    systems: &[System],
    results: &[(Key, Result<RunOk, String>)],
    nproc: usize,
    load_before: &str,
) -> bool {
    let o = &s.opts;
    let mut all_ok = results.iter().all(|(_, r)| r.is_ok());
    println!();
    println!("Summary (min / median / max; medians are what the targets use):");
    let mut table = Vec::new();
    let mut ratios = Vec::new();
    let mut targets = Vec::new();
    for &sc in scenarios {
        for &da in &o.down_after {
            let mut gap_median: Vec<(System, Option<Duration>)> = Vec::new();
            let mut pub_median: Vec<(System, Option<Duration>)> = Vec::new();
            for &sys in systems {
                let (ok, total) = ok_runs(results, (sc, da, sys));
                let published = Stats::of(ok.iter().map(|r| r.published));
                let gap = Stats::of(ok.iter().map(|r| r.write_gap));
                let promoted = Stats::of(ok.iter().filter_map(|r| r.promoted));
                let lost: usize = ok.iter().map(|r| r.lost).sum();
                let max_lost = ok.iter().map(|r| r.lost).max().unwrap_or(0);
                let acked: usize = ok.iter().map(|r| r.acked).sum();
                let failovers: Vec<u64> = ok.iter().map(|r| r.failovers).collect();
                let bad_failovers = failovers.iter().filter(|f| **f != 1).count();
                all_ok &= bad_failovers == 0;
                let mut errors: Vec<usize> = ok.iter().map(|r| r.errors).collect();
                errors.sort_unstable();
                let errors_median = errors.get(errors.len() / 2).copied().unwrap_or(0);
                println!(
                    "  {sc:<5} D={da:<5} {sys:<8} {}/{total} ok  published {}{}  write gap {}  lost {lost} of {acked} (max {max_lost} in a run)  failovers {failovers:?}  writer errors (median per run) {errors_median}",
                    ok.len(),
                    fmt_stats_or(&published, "n/a"),
                    if sys == System::Sentinel {
                        format!(" (+promoted-slave {})", fmt_stats_or(&promoted, "n/a"))
                    } else {
                        String::new()
                    },
                    fmt_stats_or(&gap, "n/a"),
                );
                table.push(format!(
                    "| {sc} (`{}`) | {da} | {} | {}/{total} | {}{} | {} | {lost} of {acked} (max {max_lost}) | {} | {errors_median} |",
                    sc.how(),
                    match sys {
                        System::Sentinel => "Sentinel ×3",
                        System::Ours if o.zk_ensemble => "ours ×3 + ZooKeeper ×3 (fsync)",
                        System::Ours => "ours ×3 + ZooKeeper",
                    },
                    ok.len(),
                    fmt3(published),
                    if sys == System::Sentinel && promoted.is_some() {
                        format!(" (`+promoted-slave`: {})", fmt3(promoted).replace("**", ""))
                    } else {
                        String::new()
                    },
                    fmt3(gap),
                    if bad_failovers == 0 {
                        format!("1 in {}/{} runs", ok.len(), ok.len())
                    } else {
                        format!("{failovers:?}")
                    },
                ));
                gap_median.push((sys, median(ok.iter().map(|r| r.write_gap).collect())));
                pub_median.push((sys, median(ok.iter().map(|r| r.published).collect())));
            }
            let get = |v: &[(System, Option<Duration>)], sys| {
                v.iter().find(|(s, _)| *s == sys).and_then(|(_, d)| *d)
            };
            if let (Some(sg), Some(og), Some(sp), Some(op)) = (
                get(&gap_median, System::Sentinel),
                get(&gap_median, System::Ours),
                get(&pub_median, System::Sentinel),
                get(&pub_median, System::Ours),
            ) {
                let line = format!(
                    "{sc} D={da}: median write gap ours/Sentinel = {:.3} (Sentinel {:.1}x longer); median time to publish ours/Sentinel = {:.3} (Sentinel {:.1}x longer)",
                    ms(og) / ms(sg),
                    ms(sg) / ms(og),
                    ms(op) / ms(sp),
                    ms(sp) / ms(op)
                );
                println!("  ratio: {line}");
                ratios.push(format!(
                    "| {sc} | {da} | {:.3} ({:.1}x shorter) | {:.3} ({:.1}x shorter) |",
                    ms(og) / ms(sg),
                    ms(sg) / ms(og),
                    ms(op) / ms(sp),
                    ms(sp) / ms(op)
                ));
                if sc == Scenario::Crash && da == 500 {
                    targets.push(target(
                        "crash, D=500: our median write gap <= 200 ms",
                        ms(og) <= 200.0,
                        format!("{:.1} ms", ms(og)),
                    ));
                    targets.push(target(
                        "crash, D=500: our median write gap >= 8x shorter than Sentinel's",
                        ms(sg) >= 8.0 * ms(og),
                        format!("{:.1}x", ms(sg) / ms(og)),
                    ));
                }
            }
            if let (Scenario::Crash, true, Some(og)) =
                (sc, o.zk_ensemble, get(&gap_median, System::Ours))
            {
                targets.push(target(
                    &format!("crash, D={da}, 3-server ZooKeeper with fsync: our median write gap <= 100 ms"),
                    ms(og) <= 100.0,
                    format!("{:.1} ms", ms(og)),
                ));
            }
            if sc == Scenario::Hang {
                let bound = da as f64 + 300.0;
                if let Some(op) = get(&pub_median, System::Ours) {
                    targets.push(target(
                        &format!("hang, D={da}: our median failure -> new master published <= D + 300 = {bound:.0} ms"),
                        ms(op) <= bound,
                        format!("{:.1} ms", ms(op)),
                    ));
                }
                if let Some(og) = get(&gap_median, System::Ours) {
                    targets.push(target(
                        &format!("hang, D={da}: our median write gap <= D + 300 = {bound:.0} ms"),
                        ms(og) <= bound,
                        format!("{:.1} ms", ms(og)),
                    ));
                }
            }
        }
    }
    if !targets.is_empty() {
        println!();
        println!("Targets:");
        for t in &targets {
            println!("  {t}");
        }
    }
    println!();
    println!("Markdown:");
    println!();
    println!("| scenario | down-after (ms) | system | runs ok | failure → new master published (min / median / max) | failure → first acknowledged write on the new master | acknowledged writes lost (total, max per run) | failovers | writer errors per run (median) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for row in &table {
        println!("{row}");
    }
    if !ratios.is_empty() {
        println!();
        println!("| scenario | down-after (ms) | median write gap, ours / Sentinel | median time to publish, ours / Sentinel |");
        println!("|---|---|---|---|");
        for row in &ratios {
            println!("{row}");
        }
    }
    println!();
    println!(
        "Settings: {} runs per row, alternating Sentinel / ours; nproc {nproc}, load average {load_before} at the start; \
         Sentinel: 3 sentinels, quorum 2, failover-timeout {}; ours: 3 `redis_node_manager` processes `{}` on {}; \
         writers: `SET seq:N N` back to back, reply timeout {} ms; the failure hits {} ms + random [0, {}) ms after the writer starts.",
        o.runs,
        o.failover_timeout_ms,
        manager_args(0).join(" ").replace("--down-after-ms 0", "--down-after-ms D"),
        s.zk_shape,
        o.command_timeout_ms,
        o.settle_ms,
        o.jitter_ms
    );
    all_ok
}

fn target(what: &str, met: bool, got: String) -> String {
    format!("{} {what}: {got}", if met { "MET    " } else { "NOT MET" })
}
