//! `sentinel_bench`'s PNG timelines: acknowledged writes per 10 ms around the failure, the
//! run with the median write gap of each system.

use std::path::{Path, PathBuf};

use redis_failover_tests::stats::ms;

use super::{summary, Key, RunOk, Settings, System, BIN_MS};
use crate::failure::Scenario;
use crate::plot::{plot_timelines, Panel};

/// `path` with `suffix` added to its file stem.
pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let ext = path
        .extension()
        .map_or_else(String::new, |e| format!(".{}", e.to_string_lossy()));
    path.with_file_name(format!("{stem}{suffix}{ext}"))
}

/// The run with the median write gap of each system, at the first --down-after.
pub(super) fn plot(
    s: &Settings,
    sc: Scenario,
    results: &[(Key, Result<RunOk, String>)],
    path: &Path,
) -> Result<bool, String> {
    let Some(&da) = s.opts.down_after.first() else {
        return Ok(false);
    };
    let mut picked = Vec::new();
    for sys in [System::Ours, System::Sentinel] {
        let (mut ok, _) = summary::ok_runs(results, (sc, da, sys));
        if ok.is_empty() {
            continue;
        }
        ok.sort_by_key(|r| r.write_gap);
        picked.push((sys, ok[(ok.len() - 1) / 2]));
    }
    if picked.is_empty() {
        return Ok(false);
    }
    let longest = picked
        .iter()
        .map(|(_, r)| ms(r.write_gap))
        .fold(0.0, f64::max);
    let to_ms = ((longest + 300.0) / 100.0).ceil() * 100.0;
    let panels: Vec<Panel> = picked
        .iter()
        .map(|(sys, r)| {
            let (name, published) = match sys {
                System::Ours => (
                    format!(
                        "ours: 3 redis_node_manager + ZooKeeper, --down-after-ms {da}, redis_failover_client::Client"
                    ),
                    "new master in ZooKeeper",
                ),
                System::Sentinel => (
                    format!(
                        "Redis Sentinel: 3 sentinels, quorum 2, down-after-milliseconds {da}, redis-rs SentinelClient"
                    ),
                    "+switch-master",
                ),
            };
            let mut marks = vec![(0.0, sc.how().to_string())];
            if let Some(p) = r.promoted {
                marks.push((ms(p), format!("+promoted-slave {:.0} ms", ms(p))));
            }
            marks.push((
                ms(r.published),
                format!("{published} {:.0} ms", ms(r.published)),
            ));
            marks.push((
                ms(r.write_gap),
                format!("first acked write {:.0} ms", ms(r.write_gap)),
            ));
            Panel {
                title: format!(
                    "{name}: write gap {:.0} ms, {} lost",
                    ms(r.write_gap),
                    r.lost
                ),
                acks_ms: r.acks_ms.clone(),
                marks,
            }
        })
        .collect();
    plot_timelines(
        path,
        &format!(
            "{} of the Redis master at t = 0: acknowledged writes per {BIN_MS:.0} ms ({})",
            sc.how(),
            if s.opts.runs > 1 {
                format!(
                    "of each system, its run with the median write gap of {}",
                    s.opts.runs
                )
            } else {
                "one run of each system".to_string()
            }
        ),
        -200.0,
        to_ms,
        BIN_MS,
        &panels,
    )?;
    Ok(true)
}
