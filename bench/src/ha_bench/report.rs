//! `ha_bench`'s summary: min / median / max per scenario, the checks, and the Markdown table.

use redis_failover_tests::stats::Stats;

use super::{Settings, SwitchoverOk, TakeoverOk};
use crate::stats::fmt_stats;

/// Prints the summary and the Markdown table of the runs.
pub(super) fn summary(
    s: &Settings,
    nproc: usize,
    takeovers: &[Result<TakeoverOk, String>],
    switchovers: &[Result<SwitchoverOk, String>],
) {
    let o = &s.opts;
    // Summary and Markdown.
    println!();
    println!(
        "Summary (min / median / max; runs {}, nproc {nproc}):",
        o.runs
    );
    let mut rows = Vec::new();
    if o.takeover() {
        let good: Vec<&TakeoverOk> = takeovers.iter().filter_map(|r| r.as_ref().ok()).collect();
        let take = Stats::of(good.iter().map(|t| t.takeover));
        let fail = Stats::of(good.iter().map(|t| t.master_failover));
        let one = good.iter().filter(|t| t.failovers() == 1).count();
        let passed = good.iter().filter(|t| t.check_failure().is_none()).count();
        println!(
            "  takeover   {}/{} ok ({} with every check passed), --session-ms {}",
            good.len(),
            takeovers.len(),
            passed,
            o.session_ms
        );
        println!(
            "    leader SIGKILL -> another manager holds the lock: {}  (bounded below by about the {} ms session timeout, counted from the leader's last heartbeat and rounded up to ZooKeeper's 500 ms expiry tick)",
            fmt_stats(&take),
            o.session_ms
        );
        println!(
            "    redis master kill -9 -> new master published:    {}  (exactly 1 failover in {}/{} runs)",
            fmt_stats(&fail),
            one,
            good.len()
        );
        rows.push(format!(
            "| leader takeover after `kill -9` of the leading manager (`--zk-session-timeout-ms {}`) | {}/{} | SIGKILL → lowest lock child owned by another manager | {} | bounded below by ≈ the session timeout (from the last heartbeat, + up to one 500 ms ZooKeeper tick) |",
            o.session_ms,
            good.len(),
            takeovers.len(),
            fmt_stats(&take)
        ));
        rows.push(format!(
            "| … then `kill -9` of the redis master, handled by the new leader | {}/{} | kill → new master in ZooKeeper | {} | exactly 1 failover (epoch +1) in {}/{} runs |",
            good.len(),
            takeovers.len(),
            fmt_stats(&fail),
            one,
            good.len()
        ));
    }
    if o.switchover() {
        let good: Vec<&SwitchoverOk> = switchovers.iter().filter_map(|r| r.as_ref().ok()).collect();
        let pause = Stats::of(good.iter().map(|w| w.pause));
        let seen = Stats::of(good.iter().map(|w| w.request_to_topology));
        let errors: usize = good.iter().map(|w| w.errors).sum();
        let lost: usize = good.iter().map(|w| w.lost).sum();
        let acked: usize = good.iter().map(|w| w.acked).sum();
        println!("  switchover {}/{} ok", good.len(), switchovers.len());
        println!(
            "    write pause (longest gap between acks):      {}",
            fmt_stats(&pause)
        );
        println!(
            "    request -> client's topology names replica:  {}",
            fmt_stats(&seen)
        );
        println!(
            "    errors surfaced to the writer: {errors} in total; acknowledged writes lost: {lost} of {acked}"
        );
        rows.push(format!(
            "| switchover (`client.manual_failover(Some(replica))`) under a back-to-back writer | {}/{} | write pause: longest gap between acknowledged writes | {} | errors {errors}, lost {lost} of {acked} acknowledged |",
            good.len(),
            switchovers.len(),
            fmt_stats(&pause)
        ));
    }
    println!();
    println!("Markdown:");
    println!();
    println!("| scenario | runs ok | measured | min / median / max | checks |");
    println!("|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    println!();
    println!(
        "Settings: {} runs per scenario, nproc {nproc}; ZooKeeper 3.8 standalone (tickTime 500 ms) and redis-server 7 on loopback; \
         takeover: 3 manager processes, `--zk-session-timeout-ms {}`, the lock handover seen through a child watch; \
         switchover: in-process manager, `redis_failover_client::Client` with default options, {} ms{} of writes before the request, {} ms after the switch.",
        o.runs,
        o.session_ms,
        o.write_ms,
        o.switch_jitter_note(),
        o.write_ms
    );
}
