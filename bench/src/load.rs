//! Load on the machine and what it leaves behind: busy-loop processes that keep the cores
//! busy, the load average, and copies of a run's logs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use redis_failover_tests::{spawn_guarded, GuardedChild};

/// Busy-loop processes (`sh -c 'while :; do :; done'`), killed on drop.
pub struct CpuHogs {
    procs: Vec<GuardedChild>,
    started: Instant,
}

impl CpuHogs {
    pub fn start(n: usize) -> Result<CpuHogs, String> {
        let mut procs = Vec::new();
        for _ in 0..n {
            procs.push(
                spawn_guarded(|| {
                    let mut cmd = Command::new("sh");
                    cmd.args(["-c", "while :; do :; done"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null());
                    cmd
                })
                .map_err(|e| format!("cannot start a busy loop: {e}"))?,
            );
        }
        Ok(CpuHogs {
            procs,
            started: Instant::now(),
        })
    }

    /// Per hog, the share of one core it got since it started (from `/proc/PID/schedstat`).
    pub fn core_shares(&self) -> Vec<f64> {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        self.procs
            .iter()
            .map(|p| {
                fs::read_to_string(format!("/proc/{}/schedstat", p.pid()))
                    .ok()
                    .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
                    .map_or(0.0, |ns| ns / 1e9 / wall)
            })
            .collect()
    }

    /// Kills them (blocking).
    pub fn stop(self) {
        for p in &self.procs {
            p.kill();
        }
    }
}

/// Copies `files` into `dir` (created), keeping their names; errors are printed, not fatal.
pub fn keep_logs(dir: &Path, files: &[PathBuf]) {
    if let Err(e) = fs::create_dir_all(dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return;
    }
    for f in files {
        if let Some(name) = f.file_name() {
            if let Err(e) = fs::copy(f, dir.join(name)) {
                eprintln!("cannot copy {} to {}: {e}", f.display(), dir.display());
            }
        }
    }
}

/// `/proc/loadavg`'s three load averages, as `uptime` prints them.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| "?".into())
}
