//! `scale_bench rack`: per run, N fresh Redis groups and --managers `redis_node_manager`
//! processes with every group (`--required-node-managers` min(2, managers) when there are
//! several); once every group is published, one group's master is killed alone (the
//! reference, while K - 1 other groups get writers too, so that the machine carries the
//! rack's write load), then K other groups' masters at once (groups picked with `fastrand` from
//! --seed); each [`crash`] measured and reported.

use std::path::Path;

use redis_failover_tests::{unique_root, ZkServer};

use super::crash::{crash, CrashCtx, CrashResult};
use super::groups::Groups;
use super::ours::{zk_session, Ours, OursSpec};
use super::rack_report::{print_pooled, print_run};
use super::zkstats::Overhead;
use super::{secs, RackOpts, RunDir};
use crate::load::load_average;

/// What one run measured.
pub(super) struct RunResult {
    pub single_group: String,
    pub single: CrashResult,
    pub rack: CrashResult,
}

/// Every run; prints a table per run (and the pooled one for several). True when every run
/// worked, every killed group got a new master and a write on it, and no write was lost.
pub(super) async fn bench(o: &RackOpts, zk: &ZkServer, bin: &Path) -> bool {
    let seed = o.seed.unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    let port = zk.port();
    let Some(own) = Overhead::measured(port).await else {
        return false;
    };
    println!(
        "scale_bench rack: {} groups, {} killed at once, {} manager(s), down-after {} ms, \
         {} run(s), --seed {seed}; {}",
        o.groups,
        o.kill,
        o.managers,
        o.common.down_after_ms,
        o.runs,
        own.with_machine("snapshot")
    );
    let mut results = Vec::new();
    let mut ok = true;
    for run in 1..=o.runs {
        match one_run(o, zk, bin, run, &mut rng, own).await {
            Ok(r) => {
                ok &= print_run(o, run, &r);
                println!("load average after run {run}: {}", load_average());
                results.push(r);
            }
            Err(e) => {
                println!("\nrun {run}: FAILED: {e}");
                ok = false;
            }
        }
    }
    if results.len() > 1 {
        print_pooled(&results);
    }
    ok
}

/// One run on fresh groups and managers; everything torn down at the end.
async fn one_run(
    o: &RackOpts,
    zk: &ZkServer,
    bin: &Path,
    run: u64,
    rng: &mut fastrand::Rng,
    own: Overhead,
) -> Result<RunResult, String> {
    let setup = secs(o.common.setup_timeout_secs);
    let groups = Groups::start(o.groups, setup).await?;
    let r = with_groups(
        Run {
            o,
            zk,
            bin,
            run,
            own,
        },
        rng,
        &groups,
    )
    .await;
    groups.teardown().await;
    r
}

/// What one run is given besides its groups and random numbers.
struct Run<'a> {
    o: &'a RackOpts,
    zk: &'a ZkServer,
    bin: &'a Path,
    run: u64,
    own: Overhead,
}

async fn with_groups(
    r: Run<'_>,
    rng: &mut fastrand::Rng,
    groups: &Groups,
) -> Result<RunResult, String> {
    let Run {
        o,
        zk,
        bin,
        run,
        own,
    } = r;
    let setup = secs(o.common.setup_timeout_secs);
    let dir = RunDir::new(o.common.log_dir.as_deref(), &format!("rack-run{run}"))?;
    let root = unique_root(&format!("scale_rack_{run}"));
    let connect = zk.connect_string();
    let managers = o.managers as usize;
    let spec = OursSpec {
        bin,
        zk: &connect,
        root: &root,
        managers,
        down_after_ms: o.common.down_after_ms,
        probe_interval_ms: o.common.probe_interval_ms,
        required: (managers > 1).then(|| managers.min(2)),
    };
    let ours = Ours::start(&spec, groups, dir.path())?;
    let r = async {
        let t0 = std::time::Instant::now();
        let session = zk_session(&connect).await?;
        ours.wait_published(&session, groups, setup).await?;
        eprintln!(
            "scale_bench: run {run}: every group published {:.1} s after the managers' start",
            t0.elapsed().as_secs_f64()
        );
        let mut order: Vec<usize> = (0..groups.len()).collect();
        rng.shuffle(&mut order);
        let single = order[0];
        let mut rack = order[1..=o.kill].to_vec();
        rack.sort_unstable();
        // Under the rack's write load: K - 1 writers on groups that are not killed.
        let others = &order[o.kill + 1..];
        let background = &others[..others.len().min(o.kill - 1)];
        let ctx = CrashCtx {
            o,
            zk: &session,
            zk_port: zk.port(),
            connect: &connect,
            groups,
            roots: &ours.roots,
            managers: &ours.managers,
            own,
        };
        eprintln!(
            "scale_bench: run {run}: single crash of {} ...",
            Groups::name(single)
        );
        let single_result = crash(&ctx, &[single], background).await?;
        let names: Vec<String> = rack.iter().map(|&i| Groups::name(i)).collect();
        eprintln!(
            "scale_bench: run {run}: rack crash of {} masters: {} ...",
            rack.len(),
            names.join(",")
        );
        let rack_result = crash(&ctx, &rack, &[]).await?;
        if let Some(e) = ours.managers.exited() {
            return Err(format!("a manager is gone at the end of the run: {e}"));
        }
        Ok(RunResult {
            single_group: Groups::name(single),
            single: single_result,
            rack: rack_result,
        })
    }
    .await
    .map_err(|e| format!("{e}{}", ours.managers.tails(15)));
    ours.stop().await;
    drop(dir);
    r
}
