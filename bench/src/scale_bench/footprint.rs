//! `scale_bench footprint`: for each N of --groups, on the same N Redis groups, a baseline
//! (nothing watching), then one `redis_node_manager` with every group, then one Redis
//! Sentinel with every group; each measured over --seconds after a warm-up: CPU, RSS,
//! ZooKeeper requests and bytes (ours), Redis commands per node.

use std::path::Path;
use std::time::Duration;

use redis_failover_tests::{unique_root, ZkServer};

use super::footprint_report::{print_size, print_summary};
use super::groups::Groups;
use super::ours::{zk_session, Ours, OursSpec};
use super::procstat::{rss_mb, CpuMeter};
use super::redis_stats::RedisSnapshot;
use super::sentinel::{OneSentinel, SentinelCmd};
use super::zkstats::{Overhead, ZkSnapshot, ZkTraffic};
use super::{blocking, secs, FootprintOpts, RunDir};
use crate::load::load_average;

/// What one watcher cost over a window.
pub(super) struct Row {
    /// All its processes together, % of one core.
    pub cpu_pct: f64,
    pub rss_mb: f64,
    /// Commands per second and node, averaged over the nodes, the bench's reads taken off.
    pub redis_per_node: f64,
    /// Ours only.
    pub zk: Option<ZkTraffic>,
}

/// The measurements of one N.
pub(super) struct SizeResult {
    pub n: usize,
    pub baseline: Option<Result<f64, String>>,
    pub ours: Result<Row, String>,
    pub sentinel: Result<Row, String>,
}

impl SizeResult {
    fn ok(&self) -> bool {
        self.ours.is_ok()
            && self.sentinel.is_ok()
            && self.baseline.as_ref().is_none_or(|b| b.is_ok())
    }
}

/// Runs every N; prints a table per N and the summary. True when every step worked.
pub(super) async fn bench(
    o: &FootprintOpts,
    zk: &ZkServer,
    bin: &Path,
    sentinel: &SentinelCmd,
) -> bool {
    let port = zk.port();
    let Some(own) = Overhead::measured(port).await else {
        return false;
    };
    println!(
        "scale_bench footprint: groups {:?}, window {} s after {} s warm-up, down-after {} ms, \
         manager's probe interval {}; {}; {}",
        o.groups,
        o.seconds,
        o.warmup_secs,
        o.common.down_after_ms,
        o.common
            .probe_interval_ms
            .map_or("its default".to_string(), |ms| format!("{ms} ms")),
        sentinel.describe,
        own.with_machine("snapshot (srvr, cons)")
    );
    let mut results = Vec::new();
    for &n in &o.groups {
        let b = Bench {
            o,
            zk,
            bin,
            sentinel,
            own,
        };
        let r = size(b, n).await;
        print_size(o, &r);
        println!("load average after {n} groups: {}", load_average());
        results.push(r);
    }
    print_summary(o, &results);
    results.iter().all(SizeResult::ok)
}

/// What every size of the bench is measured with.
#[derive(Clone, Copy)]
struct Bench<'a> {
    o: &'a FootprintOpts,
    zk: &'a ZkServer,
    bin: &'a Path,
    sentinel: &'a SentinelCmd,
    own: Overhead,
}

/// One N: the groups, the baseline, ours, Sentinel; the groups torn down at the end.
async fn size(b: Bench<'_>, n: usize) -> SizeResult {
    let o = b.o;
    let setup = secs(o.common.setup_timeout_secs);
    let groups = match Groups::start(n, setup).await {
        Ok(g) => g,
        Err(e) => {
            return SizeResult {
                n,
                baseline: None,
                ours: Err(e.clone()),
                sentinel: Err(e),
            }
        }
    };
    let ports = groups.ports();
    let baseline = if o.baseline_secs > 0 {
        eprintln!("scale_bench: N={n}: baseline, {} s ...", o.baseline_secs);
        Some(redis_window(&ports, secs(o.baseline_secs)).await)
    } else {
        None
    };
    let ours = ours_row(b, &groups).await;
    if let Err(e) = &ours {
        eprintln!("scale_bench: N={n}: ours FAILED: {e}");
    }
    let sentinel = sentinel_row(o, b.sentinel, &groups).await;
    if let Err(e) = &sentinel {
        eprintln!("scale_bench: N={n}: Sentinel FAILED: {e}");
    }
    groups.teardown().await;
    SizeResult {
        n,
        baseline,
        ours,
        sentinel,
    }
}

/// Commands per second and node over `window`, nothing but the bench reading.
async fn redis_window(ports: &[u16], window: Duration) -> Result<f64, String> {
    let r0 = RedisSnapshot::take(ports).await?;
    tokio::time::sleep(window).await;
    let r1 = RedisSnapshot::take(ports).await?;
    Ok(r0.rate_to(&r1))
}

/// Our manager watching the `groups`, measured.
async fn ours_row(b: Bench<'_>, groups: &Groups) -> Result<Row, String> {
    let Bench {
        o, zk, bin, own, ..
    } = b;
    let n = groups.len();
    let dir = RunDir::new(o.common.log_dir.as_deref(), &format!("footprint-{n}-ours"))?;
    let root = unique_root(&format!("scale_fp_{n}"));
    let connect = zk.connect_string();
    let spec = OursSpec {
        bin,
        zk: &connect,
        root: &root,
        managers: 1,
        down_after_ms: o.common.down_after_ms,
        probe_interval_ms: o.common.probe_interval_ms,
        required: None,
    };
    let ours = Ours::start(&spec, groups, dir.path())?;
    let measured = async {
        let t0 = std::time::Instant::now();
        // The bench's session only waits for the groups; it is closed before the window.
        let session = zk_session(&connect).await?;
        let published = ours
            .wait_published(&session, groups, secs(o.common.setup_timeout_secs))
            .await;
        drop(session);
        published?;
        eprintln!(
            "scale_bench: N={n}: ours: every group published {:.1} s after the start; warm-up, then {} s ...",
            t0.elapsed().as_secs_f64(),
            o.seconds
        );
        tokio::time::sleep(secs(o.warmup_secs)).await;
        let pids = ours.pids();
        let zk_port = zk.port();
        let z0 = blocking(move || ZkSnapshot::take(zk_port)).await?;
        let row = measure(&pids, &groups.ports(), secs(o.seconds), || {
            ours.managers.exited()
        })
        .await;
        let z1 = blocking(move || ZkSnapshot::take(zk_port)).await?;
        let mut row = row?;
        row.zk = Some(ZkTraffic::between(&z0, &z1, &pids, own.snapshot));
        Ok(row)
    }
    .await;
    ours.stop().await;
    drop(dir);
    measured
}

async fn sentinel_row(
    o: &FootprintOpts,
    cmd: &SentinelCmd,
    groups: &Groups,
) -> Result<Row, String> {
    let n = groups.len();
    let dir = RunDir::new(
        o.common.log_dir.as_deref(),
        &format!("footprint-{n}-sentinel"),
    )?;
    let masters: Vec<u16> = groups.iter().map(|g| g.node(0).port()).collect();
    let (c, da, path) = (
        cmd.clone(),
        o.common.down_after_ms,
        dir.path().to_path_buf(),
    );
    let sentinel = blocking(move || OneSentinel::start(&c, &masters, da, &path)).await?;
    let measured = async {
        let t0 = std::time::Instant::now();
        sentinel
            .wait_ready(n, secs(o.common.setup_timeout_secs))
            .await?;
        eprintln!(
            "scale_bench: N={n}: Sentinel: 2 replicas known of every group {:.1} s after the start; warm-up, then {} s ...",
            t0.elapsed().as_secs_f64(),
            o.seconds
        );
        tokio::time::sleep(secs(o.warmup_secs)).await;
        measure(&[sentinel.pid()], &groups.ports(), secs(o.seconds), || {
            sentinel.exited()
        })
        .await
    }
    .await;
    sentinel.stop().await;
    drop(dir);
    measured
}

/// CPU of `pids` and commands per node of `ports` over `window`; RSS at its end. Fails when
/// `exited` says a process is gone.
async fn measure(
    pids: &[u32],
    ports: &[u16],
    window: Duration,
    exited: impl Fn() -> Option<String>,
) -> Result<Row, String> {
    let r0 = RedisSnapshot::take(ports).await?;
    let cpu = CpuMeter::start(pids)?;
    tokio::time::sleep(window).await;
    let cpu_pct = cpu.percent()?;
    let rss = pids
        .iter()
        .map(|p| rss_mb(*p))
        .sum::<Result<f64, String>>()?;
    let r1 = RedisSnapshot::take(ports).await?;
    if let Some(e) = exited() {
        return Err(format!("during the window: {e}"));
    }
    Ok(Row {
        cpu_pct,
        rss_mb: rss,
        redis_per_node: r0.rate_to(&r1),
        zk: None,
    })
}
