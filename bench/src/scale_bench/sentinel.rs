//! One Redis Sentinel watching every group: `redis-sentinel <conf>` (or `redis-server <conf>
//! --sentinel` when only redis-server is installed, as the harness's `SentinelProgram::find`
//! picks), its config file written before the start with, per group, `sentinel monitor g<i>
//! 127.0.0.1 <master port> 1` and `sentinel down-after-milliseconds g<i> D`; on a free
//! loopback port; the wait until `SENTINEL MASTERS` shows 2 replicas for every group. The
//! process is killed by pid when dropped (the harness's guard).

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use redis_failover_tests::{
    connect_async, find_program, free_port, log_tail, spawn_guarded, GuardedChild,
};

use super::groups::Groups;
use crate::nodes::node_addr;
use crate::sentinel::SentinelProgram;
use redis_failover_tests::sentinel::wait_sentinel_ping;

/// How long the sentinel may take to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Poll interval of [`OneSentinel::wait_ready`].
const READY_POLL: Duration = Duration::from_millis(500);
/// Bound on one command of the bench to the sentinel.
const CMD_TIMEOUT: Duration = Duration::from_secs(5);

/// How to start a sentinel, and what it is.
#[derive(Clone, Debug)]
pub struct SentinelCmd {
    program: PathBuf,
    extra: Vec<&'static str>,
    /// `redis-sentinel 7.0.15`, as the harness describes it.
    pub describe: String,
}

impl SentinelCmd {
    /// `redis-sentinel` if it is on the PATH, else `redis-server --sentinel`.
    pub fn find() -> Result<SentinelCmd, String> {
        let path = std::env::var_os("PATH");
        let describe = SentinelProgram::find()?.describe();
        if let Some(p) = find_program("redis-sentinel", path.as_deref()) {
            return Ok(SentinelCmd {
                program: p,
                extra: Vec::new(),
                describe,
            });
        }
        find_program("redis-server", path.as_deref())
            .map(|p| SentinelCmd {
                program: p,
                extra: vec!["--sentinel"],
                describe,
            })
            .ok_or_else(|| "neither redis-sentinel nor redis-server is on the PATH".into())
    }
}

/// The sentinel of a run.
pub(crate) struct OneSentinel {
    child: GuardedChild,
    port: u16,
    log: PathBuf,
}

impl OneSentinel {
    /// Writes the config into `dir` (group `g<i+1>`'s master on port `masters[i]`,
    /// down-after `down_after_ms`) and starts the sentinel; waits until it answers PING.
    /// Blocking.
    pub(crate) fn start(
        cmd: &SentinelCmd,
        masters: &[u16],
        down_after_ms: u64,
        dir: &Path,
    ) -> Result<OneSentinel, String> {
        let port = free_port();
        let conf = dir.join("sentinel.conf");
        let log = dir.join("sentinel.log");
        let mut text = format!(
            "port {port}\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\ndir {}\nlogfile {}\n",
            dir.display(),
            log.display()
        );
        for (i, master) in masters.iter().enumerate() {
            let name = Groups::name(i);
            let _ = write!(
                text,
                "sentinel monitor {name} 127.0.0.1 {master} 1\n\
                 sentinel down-after-milliseconds {name} {down_after_ms}\n"
            );
        }
        std::fs::write(&conf, text).map_err(|e| format!("{}: {e}", conf.display()))?;
        let out_path = dir.join("sentinel.out");
        let out = File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
        let out2 = out
            .try_clone()
            .map_err(|e| format!("{}: {e}", out_path.display()))?;
        let (program, extra) = (cmd.program.clone(), cmd.extra.clone());
        let child = spawn_guarded(move || {
            let mut c = std::process::Command::new(program);
            c.arg(conf)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(out2);
            c
        })
        .map_err(|e| format!("cannot start the sentinel: {e}"))?;
        let at = ("127.0.0.1", port);
        wait_sentinel_ping(&child, at, READY_TIMEOUT, "the sentinel", (&log, &out_path))?;
        Ok(OneSentinel { child, port, log })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Waits until `SENTINEL MASTERS` lists `n` masters, each with `num-slaves` 2 (polling
    /// every 500 ms, at most `timeout`); fails at once when the sentinel exits.
    pub(crate) async fn wait_ready(&self, n: usize, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let addr = node_addr(self.port);
        let mut conn = connect_async(&addr, CMD_TIMEOUT).await?;
        loop {
            let masters: redis::Value = tokio::time::timeout(
                CMD_TIMEOUT,
                redis::cmd("SENTINEL").arg("MASTERS").query_async(&mut conn),
            )
            .await
            .map_err(|_| "SENTINEL MASTERS: no answer".to_string())?
            .map_err(|e| format!("SENTINEL MASTERS: {e}"))?;
            let ready = count_ready(&masters);
            if ready == n {
                return Ok(());
            }
            if let Some(st) = self.child.exit_status() {
                return Err(format!(
                    "the sentinel exited ({st}); tail of {}:\n{}",
                    self.log.display(),
                    log_tail(&self.log, 20)
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the sentinel knows 2 replicas of {ready} of {n} masters after {timeout:?}"
                ));
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// A message when the sentinel is gone.
    pub(crate) fn exited(&self) -> Option<String> {
        self.child
            .exit_status()
            .map(|st| format!("the sentinel exited ({st})"))
    }

    /// SIGTERM, 5 s, then SIGKILL, by pid; off the runtime's workers.
    pub(crate) async fn stop(self) {
        crate::tasks::teardown("the sentinel", move || {
            self.child.terminate(Duration::from_secs(5));
        })
        .await;
    }
}

/// The masters of a `SENTINEL MASTERS` answer whose `num-slaves` is 2.
fn count_ready(v: &redis::Value) -> usize {
    let redis::Value::Array(masters) = v else {
        return 0;
    };
    masters
        .iter()
        .filter(|m| {
            let redis::Value::Array(fields) = m else {
                return false;
            };
            fields.chunks(2).any(|kv| {
                matches!(kv, [redis::Value::BulkString(k), redis::Value::BulkString(v)]
                    if k.as_slice() == b"num-slaves" && v.as_slice() == b"2")
            })
        })
        .count()
}
