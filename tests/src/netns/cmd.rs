//! The external commands of the network harness (`ip`, `iptables`): found on `PATH` or in the
//! sbin directories, run with a bounded timeout, and failing with an error that names the
//! command and says what it printed.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::find_program;
use crate::wait::POLL;

/// How long one `ip` or `iptables` command may take (iptables waits up to 5 s for its lock).
pub(crate) const CMD_TIMEOUT: Duration = Duration::from_secs(10);

/// Where `program` is: on `PATH`, else in `/usr/sbin` or `/sbin` (a non-login root shell may
/// not have them on `PATH`).
pub(crate) fn tool(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH");
    find_program(program, path.as_deref()).or_else(|| {
        ["/usr/sbin", "/sbin"]
            .iter()
            .find_map(|dir| find_program(&format!("{dir}/{program}"), None))
    })
}

/// Runs `program args...` (the program found by [`tool`]), kills it after `timeout`, and
/// returns its stdout; `Err` names the command and carries its exit status and stderr.
pub(crate) fn run(program: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
    let line = format!("`{program} {}`", args.join(" "));
    let bin = tool(program).ok_or_else(|| format!("{line}: {program} not found"))?;
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{line}: cannot start: {e}"))?;
    // Read both pipes on threads so that a chatty command never blocks on a full pipe.
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("{line}: no answer within {timeout:?} (killed)"));
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => break Err(format!("{line}: cannot wait for it: {e}")),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let status = status?;
    if status.success() {
        Ok(stdout)
    } else {
        Err(format!("{line} failed ({status}): {}", stderr.trim()))
    }
}

/// [`run`] with [`CMD_TIMEOUT`].
pub fn ip(args: &[&str]) -> Result<String, String> {
    run("ip", args, CMD_TIMEOUT)
}

/// `iptables -w 5 args...` inside namespace `ns` (through `ip netns exec`), with
/// [`CMD_TIMEOUT`]. The `-w` waits for the xtables lock, which every namespace shares.
pub(crate) fn iptables(ns: &str, args: &[&str]) -> Result<String, String> {
    let iptables = tool("iptables").ok_or("iptables not found")?;
    let iptables = iptables.to_string_lossy().into_owned();
    let mut full = vec!["netns", "exec", ns, &iptables, "-w", "5"];
    full.extend_from_slice(args);
    ip(&full)
}
