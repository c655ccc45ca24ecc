//! `scale_bench footprint`'s Markdown: a table per N (ours, Sentinel, the baseline, the
//! ratios) with where each figure comes from, and the summary over every N.

use super::footprint::{Row, SizeResult};
use super::FootprintOpts;

const DASH: &str = "–";

/// The table of one N.
pub(super) fn print_size(o: &FootprintOpts, r: &SizeResult) {
    let n = r.n;
    println!();
    println!(
        "### {n} groups ({} redis-server), down-after {} ms, window {} s after {} s warm-up",
        3 * n,
        o.common.down_after_ms,
        o.seconds,
        o.warmup_secs
    );
    println!();
    println!("| watcher | CPU % of 1 core | RSS MB | ZK req/s | ZK req/group/s | ZK in B/s | ZK out B/s | Redis cmds/s per node |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    row("ours (1 redis_node_manager)", n, &r.ours);
    row("Redis Sentinel (1 process)", n, &r.sentinel);
    match &r.baseline {
        Some(Ok(b)) => println!(
            "| nothing (baseline, {} s) | {DASH} | {DASH} | {DASH} | {DASH} | {DASH} | {DASH} | {b:.2} |",
            o.baseline_secs
        ),
        Some(Err(e)) => println!("| nothing (baseline) | FAILED: {} |", one_line(e)),
        None => {}
    }
    if let (Ok(a), Ok(b)) = (&r.ours, &r.sentinel) {
        println!(
            "| ours / Sentinel | {} | {} | | | | | {} |",
            ratio(a.cpu_pct, b.cpu_pct),
            ratio(a.rss_mb, b.rss_mb),
            ratio(a.redis_per_node, b.redis_per_node)
        );
    }
    println!();
    if let Ok(Row { zk: Some(z), .. }) = &r.ours {
        println!(
            "ZK req/s: `srvr` Received delta over {:.1} s (every client of ZooKeeper; the bench \
             held no session then: {} socket(s) of the manager, {} of other processes connected \
             at the end); the manager's connection alone per `cons` recved: {:.1}/s. ZK in/out: \
             `ss -tin` bytes_sent / bytes_received of the manager's socket(s) to ZooKeeper \
             (in = manager -> ZooKeeper).",
            z.secs,
            z.sockets,
            z.other_sockets,
            z.per_sec(z.requests_of_pids)
        );
    }
    println!(
        "CPU: utime+stime of /proc/<pid>/stat (clock ticks of sysconf(_SC_CLK_TCK)) over the \
         window; RSS: VmRSS at its end; Redis: `INFO stats` total_commands_processed delta of \
         every node, the bench's one INFO per node and window taken off, averaged over the {} nodes.",
        3 * n
    );
    for (who, res) in [("ours", &r.ours), ("Sentinel", &r.sentinel)] {
        if let Err(e) = res {
            println!("{who} FAILED: {e}");
        }
    }
}

fn row(label: &str, n: usize, r: &Result<Row, String>) {
    match r {
        Ok(x) => {
            let zk = match &x.zk {
                Some(z) => {
                    let rps = z.per_sec(z.requests);
                    format!(
                        "{rps:.1} | {:.3} | {:.0} | {:.0}",
                        rps / n as f64,
                        z.per_sec(z.bytes_in),
                        z.per_sec(z.bytes_out)
                    )
                }
                None => format!("{DASH} | {DASH} | {DASH} | {DASH}"),
            };
            println!(
                "| {label} | {:.2} | {:.1} | {zk} | {:.2} |",
                x.cpu_pct, x.rss_mb, x.redis_per_node
            );
        }
        Err(e) => println!("| {label} | FAILED: {} |", one_line(e)),
    }
}

/// `a / b` as `1.23×`, or `n/a`.
fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() {
        format!("{:.2}×", a / b)
    } else {
        "n/a".into()
    }
}

fn one_line(e: &str) -> String {
    e.lines().next().unwrap_or("").replace('|', "/")
}

/// The summary over every N.
pub(super) fn print_summary(o: &FootprintOpts, results: &[SizeResult]) {
    println!();
    println!(
        "## Summary: one redis_node_manager vs one Redis Sentinel (down-after {} ms, {} s windows)",
        o.common.down_after_ms, o.seconds
    );
    println!();
    println!("| groups | CPU % ours | CPU % Sentinel | CPU ours/Sentinel | RSS MB ours | RSS MB Sentinel | ZK req/s | ZK req/group/s | ZK B/s in+out | Redis cmds/s/node ours | Sentinel | baseline |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        let f = |x: &Result<Row, String>, g: fn(&Row) -> f64, prec: usize| match x {
            Ok(row) => format!("{:.*}", prec, g(row)),
            Err(_) => "FAILED".into(),
        };
        let zk = match &r.ours {
            Ok(Row { zk: Some(z), .. }) => {
                let rps = z.per_sec(z.requests);
                format!(
                    "{rps:.1} | {:.3} | {:.0}",
                    rps / r.n as f64,
                    z.per_sec(z.bytes_in + z.bytes_out)
                )
            }
            _ => format!("{DASH} | {DASH} | {DASH}"),
        };
        let cpu_ratio = match (&r.ours, &r.sentinel) {
            (Ok(a), Ok(b)) => ratio(a.cpu_pct, b.cpu_pct),
            _ => "n/a".into(),
        };
        let baseline = match &r.baseline {
            Some(Ok(b)) => format!("{b:.2}"),
            Some(Err(_)) => "FAILED".into(),
            None => DASH.into(),
        };
        println!(
            "| {} | {} | {} | {cpu_ratio} | {} | {} | {zk} | {} | {} | {baseline} |",
            r.n,
            f(&r.ours, |x| x.cpu_pct, 2),
            f(&r.sentinel, |x| x.cpu_pct, 2),
            f(&r.ours, |x| x.rss_mb, 1),
            f(&r.sentinel, |x| x.rss_mb, 1),
            f(&r.ours, |x| x.redis_per_node, 2),
            f(&r.sentinel, |x| x.redis_per_node, 2),
        );
    }
}
