//! Issue 11's partition suite (docs/safety.md): a Redis trio, three manager processes,
//! ZooKeeper and two application clients on network-namespace hosts; a partition (iptables
//! DROP or REJECT), the heal, convergence, and every acknowledged write of each client read
//! back from the final master. Needs root and iptables: without them each test says
//! `SKIPPED (needs root and iptables)` on stderr (fails with `RF_REQUIRE_NETNS=1`, as CI sets).
//!
//! - the defaults (the master's fence; clients acknowledge a write once a replica has it,
//!   managers `--synchronous-replicas 1`): no acknowledged write is lost in any scenario;
//! - asynchronous mode (clients `asynchronous()`, managers `--synchronous-replicas 0`): the
//!   far client loses nothing, and the near client (cut off with the master) loses only
//!   writes the old master acknowledged within its fence bound after the cut;
//! - a manager cut from the master alone causes no failover.
//!
//! The scenarios run one at a time (each starts ten processes on this machine).

use std::time::Duration;

use redis_failover_tests::init_tracing;
use redis_failover_tests::netns::skip_unless_available;
use redis_failover_tests::partition::{self, manager_bin_next_to_tests, Options, Report, Scenario};
use tempfile::TempDir;
use tokio::sync::{Mutex, MutexGuard};

/// One scenario at a time across this file's tests.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// The fence bound with the managers' defaults (min-replicas-max-lag 2 s + 2 s).
const FENCE_BOUND: Duration = Duration::from_secs(4);

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// `None` (the test is skipped, loudly) without root and iptables; otherwise this file's
/// turn to run scenarios.
async fn start(test: &str) -> Option<MutexGuard<'static, ()>> {
    if !skip_unless_available(test) {
        return None;
    }
    init_tracing();
    Some(ONE_AT_A_TIME.lock().await)
}

/// Row `table_name` of the scenario table (`partition --list`), renamed `name` and
/// shortened to `duration`.
fn row(table_name: &str, name: &'static str, duration: Duration) -> Scenario {
    let mut sc = partition::scenario(table_name)
        .unwrap_or_else(|| panic!("no scenario {table_name} in the table"));
    sc.name = name;
    sc.duration = duration;
    sc
}

/// Runs row `table_name` of the scenario table, renamed `name` and shortened to `duration`,
/// with the options adjusted by `tweak`, one run at a time; `None` when `test` cannot run
/// on this machine (said on stderr).
async fn run_row(
    test: &str,
    (table_name, name, duration): (&str, &'static str, Duration),
    tweak: impl FnOnce(&mut Options),
) -> Option<(Report, Logs)> {
    let _turn = start(test).await?;
    Some(run(&row(table_name, name, duration), tweak).await)
}

/// A run's log directory, removed when the test passes and kept (and named) when it fails.
struct Logs(Option<TempDir>);

impl Drop for Logs {
    fn drop(&mut self) {
        if let (true, Some(dir)) = (std::thread::panicking(), self.0.take()) {
            eprintln!("partition logs kept in {}", dir.keep().display());
        }
    }
}

/// Runs `sc` with the managers' `--down-after-ms 1000` and writers pacing one write per
/// 2 ms; `tweak` adjusts the options. Panics with the report's figures on a failed run.
async fn run(sc: &Scenario, tweak: impl FnOnce(&mut Options)) -> (Report, Logs) {
    let dir = tempfile::Builder::new()
        .prefix("rf-partition-test-")
        .tempdir()
        .expect("tmp");
    let bin = manager_bin_next_to_tests().expect("the manager binary");
    let mut o = Options::new(bin);
    o.down_after_ms = Some(1000);
    o.write_interval = Some(Duration::from_millis(2));
    o.log_dir = dir.path().to_path_buf();
    let logs = Logs(Some(dir));
    tweak(&mut o);
    let report = partition::run(&o, sc)
        .await
        .unwrap_or_else(|e| panic!("scenario {}: {e}", sc.name));
    eprintln!("{report}");
    assert!(
        report.clients.iter().all(|c| c.acked > 0),
        "every client wrote: {report}"
    );
    (report, logs)
}

fn client<'a>(r: &'a Report, name: &str) -> &'a partition::ClientReport {
    r.clients
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no client {name}: {r}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_defaults_lose_no_acknowledged_write_in_any_partition() {
    let Some(_turn) = start("the_defaults_lose_no_acknowledged_write_in_any_partition").await
    else {
        return;
    };
    let matrix = [
        row(
            "master-client-isolated-drop-12s",
            "default-master-client-isolated-drop-6s",
            s(6),
        ),
        row(
            "master-client-isolated-reject-5s",
            "default-master-client-isolated-reject-5s",
            s(5),
        ),
        row(
            "master-alone-isolated-drop-5s",
            "default-master-alone-drop-5s",
            s(5),
        ),
        row(
            "master-link-flapping-20s",
            "default-master-link-flapping-10s",
            s(10),
        ),
    ];
    for sc in &matrix {
        let (report, _logs) = run(sc, |_| {}).await;
        for c in &report.clients {
            assert!(
                c.acked > 0,
                "client {} had no write acknowledged: {report}",
                c.name
            );
        }
        assert_eq!(
            report.lost(),
            0,
            "acknowledged writes lost with the defaults: {report}"
        );
        // No partition is a proven crash (a REJECT neither): a new master only after the
        // old one's fence bound, unless the leader still reached the old master and it
        // handed over itself (`FAILOVER TO`: it stops taking writes until the target has
        // them all), as a flapping link allows.
        if let Some(published) = report.published_after_cut {
            let switchovers = count_lines(&report, "(switchover)");
            let handed_over =
                switchovers == 1 && count_lines(&report, "+switch-master") == switchovers;
            assert!(
                published >= FENCE_BOUND || handed_over,
                "published {published:?} after the cut, before the fence bound, and not by a \
                 switchover: {report}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asynchronous_mode_loses_only_the_fence_window_of_the_cut_off_side() {
    let Some((report, _logs)) = run_row(
        "asynchronous_mode_loses_only_the_fence_window_of_the_cut_off_side",
        (
            "master-client-isolated-drop-12s",
            "async-master-client-isolated-drop-6s",
            s(6),
        ),
        |o| o.synchronous = Some((0, s(1))),
    )
    .await
    else {
        return;
    };
    assert_ne!(report.final_master, report.first_master, "{report}");
    // Unreachable, not proven gone: published no earlier than the fence bound.
    let published = report.published_after_cut.expect("a new master published");
    assert!(
        published >= FENCE_BOUND,
        "published {published:?} after the cut, before the old master's fence bound: {report}"
    );
    assert_eq!(client(&report, "far").lost, 0, "{report}");
    // What the near client lost, the old master acknowledged before its fence closed.
    if let Some(window) = client(&report, "near").last_lost_after_cut {
        assert!(
            window <= FENCE_BOUND + s(1),
            "a write acknowledged {window:?} after the cut was lost, past the fence bound: {report}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_cut_from_the_master_alone_causes_no_failover() {
    let Some((report, _logs)) = run_row(
        "a_manager_cut_from_the_master_alone_causes_no_failover",
        (
            "manager0-cut-from-master-drop-10s",
            "manager0-cut-from-master-drop-5s",
            s(5),
        ),
        |_| {},
    )
    .await
    else {
        return;
    };
    assert_eq!(
        report.published_after_cut, None,
        "a false failover: {report}"
    );
    assert_eq!(report.final_master, report.first_master, "{report}");
    assert_eq!(report.lost(), 0, "{report}");
}

/// How many lines of the managers' logs (`manager-*.log` in the run's log directory)
/// contain `text`.
fn count_lines(report: &Report, text: &str) -> usize {
    let dir = std::fs::read_dir(&report.log_dir).expect("the run's log directory");
    dir.filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("manager-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .map(|log| log.lines().filter(|l| l.contains(text)).count())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_from_zookeeper_mid_failover_is_replaced_and_nothing_is_lost() {
    // The master's host cut off; once the leader has recorded the promotion (it then holds
    // the new master's publication for the fence bound), the leader is cut from ZooKeeper,
    // not from Redis.
    let Some((report, _logs)) = run_row(
        "a_leader_cut_from_zookeeper_mid_failover_is_replaced_and_nothing_is_lost",
        (
            "leader-cut-from-zk-mid-failover-20s",
            "leader-cut-from-zk-mid-failover-20s",
            s(20),
        ),
        |_| {},
    )
    .await
    else {
        return;
    };
    assert_eq!(
        report.cuts, 2,
        "the leader was cut from ZooKeeper: {report}"
    );
    assert_ne!(report.final_master, report.first_master, "{report}");
    for c in &report.clients {
        assert!(
            c.acked > 0,
            "client {} had no write acknowledged: {report}",
            c.name
        );
    }
    assert_eq!(report.lost(), 0, "{report}");
    // One promotion, chosen once: the next leader finished it instead of choosing again
    // (holding its publication for the fence bound), and the cut-off leader, unable to
    // publish, did not act on its own.
    assert_eq!(count_lines(&report, "+selected-replica "), 1, "{report}");
    assert_eq!(
        count_lines(
            &report,
            "finishing the promotion recorded in the znode; publishing it in"
        ),
        1,
        "{report}"
    );
}
