//! What `/proc` says about a process: its CPU time (`utime + stime` of `/proc/<pid>/stat`, in
//! clock ticks of `sysconf(_SC_CLK_TCK)`), its resident memory (`VmRSS` of
//! `/proc/<pid>/status`); and this program's file-descriptor limit, raised for the hundreds
//! of connections of a run (children inherit it).

use std::fs;
use std::time::Instant;

/// Clock ticks per second (`getconf CLK_TCK`), from `sysconf`.
pub(crate) fn clk_tck() -> Result<f64, String> {
    // SAFETY: sysconf only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        Ok(t as f64)
    } else {
        Err("sysconf(_SC_CLK_TCK) failed".into())
    }
}

/// `utime + stime` of `pid`, in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The fields after the parenthesised command name: state is the first, utime the 12th.
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| format!("{path}: no ')'"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64, String> {
        f.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{path}: field {} unreadable", i + 3))
    };
    Ok(field(11)? + field(12)?)
}

/// The whole machine's CPU ticks from `/proc/stat` (`cpu` line): idle (idle + iowait) and
/// total.
pub(crate) fn machine_ticks() -> Result<(u64, u64), String> {
    let stat = fs::read_to_string("/proc/stat").map_err(|e| format!("/proc/stat: {e}"))?;
    let ticks: Vec<u64> = stat
        .lines()
        .find_map(|l| l.strip_prefix("cpu "))
        .ok_or("/proc/stat: no cpu line")?
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    Ok((idle, ticks.iter().sum()))
}

/// The share of the machine's CPU time that was idle between two [`machine_ticks`], in %.
pub(crate) fn idle_pct(from: (u64, u64), to: (u64, u64)) -> f64 {
    let total = to.1.saturating_sub(from.1);
    if total == 0 {
        return 0.0;
    }
    100.0 * to.0.saturating_sub(from.0) as f64 / total as f64
}

/// `VmRSS` of `pid`, in MB (2^20 bytes).
pub(crate) fn rss_mb(pid: u32) -> Result<f64, String> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .ok_or_else(|| format!("{path}: no VmRSS"))
}

/// The CPU time of a set of processes from a starting point.
pub(crate) struct CpuMeter {
    pids: Vec<u32>,
    ticks: u64,
    at: Instant,
    tck: f64,
}

impl CpuMeter {
    /// Starts counting now.
    pub(crate) fn start(pids: &[u32]) -> Result<CpuMeter, String> {
        Ok(CpuMeter {
            pids: pids.to_vec(),
            ticks: sum_ticks(pids)?,
            at: Instant::now(),
            tck: clk_tck()?,
        })
    }

    /// CPU used since the start, as % of one core (all the processes together).
    pub(crate) fn percent(&self) -> Result<f64, String> {
        let ticks = sum_ticks(&self.pids)?;
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        Ok(ticks.saturating_sub(self.ticks) as f64 / self.tck / wall * 100.0)
    }
}

fn sum_ticks(pids: &[u32]) -> Result<u64, String> {
    pids.iter().map(|p| cpu_ticks(*p)).sum()
}

/// Raises this process's soft limit on open files to `want` (at most the hard limit); the
/// limit it has then. `Err` when the hard limit is below `want` and cannot be raised.
pub fn raise_fd_limit(want: u64) -> Result<u64, String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(format!(
            "getrlimit(RLIMIT_NOFILE): {}",
            std::io::Error::last_os_error()
        ));
    }
    if lim.rlim_cur >= want {
        return Ok(lim.rlim_cur);
    }
    let hard_ok = lim.rlim_max >= want;
    let target = libc::rlimit {
        rlim_cur: want,
        rlim_max: lim.rlim_max.max(want),
    };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &target) } == 0 {
        return Ok(want);
    }
    let e = std::io::Error::last_os_error();
    Err(format!(
        "this run needs about {want} open files; the limit is {} (hard {}){}: {e}; raise it \
         (ulimit -n {want}) and run again",
        lim.rlim_cur,
        lim.rlim_max,
        if hard_ok {
            ""
        } else {
            ", and raising the hard limit needs privileges"
        }
    ))
}
