//! `--on-switch-master`: the program an operator gives, run by the leader after every
//! published change of master (failover, switchover, manual), with Sentinel's
//! `client-reconfig-script` arguments `<master-name> <role> <state> <from-ip> <from-port>
//! <to-ip> <to-port>` (`role` is `leader`, `state` is `start`, as Sentinel passes them).
//! It runs in the background, never delaying a failover, bounded by its timeout (killed
//! after it); its exit and the start of its output are returned for the log and the
//! failover history.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use redis_failover_client::NodeAddr;
use tokio::io::AsyncReadExt;

/// How much of the program's output is kept.
const OUTPUT_KEPT: usize = 400;

/// The program and its bound.
#[derive(Clone, Debug)]
pub struct Hook {
    pub program: PathBuf,
    pub timeout: Duration,
}

impl Hook {
    /// Runs the program for `group`'s change from `from` to `to`; the text says how it
    /// ended (`exit 0 in 12 ms: <output>`, `killed after 60000 ms`, `cannot start: ...`)
    /// and whether it succeeded.
    pub async fn run(&self, group: &str, from: &NodeAddr, to: &NodeAddr) -> (bool, String) {
        let started = Instant::now();
        let child = tokio::process::Command::new(&self.program)
            .args([
                group,
                "leader",
                "start",
                &from.host,
                &from.port.to_string(),
                &to.host,
                &to.port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so that a timeout kills what it started too.
            .process_group(0)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                return (
                    false,
                    format!("cannot start {}: {e}", self.program.display()),
                )
            }
        };
        let pid = child.id();
        let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
        let run = async {
            let mut text = Vec::new();
            if let Some(o) = out.as_mut() {
                let _ = o.read_to_end(&mut text).await;
            }
            if let Some(e) = err.as_mut() {
                let _ = e.read_to_end(&mut text).await;
            }
            (child.wait().await, text)
        };
        match tokio::time::timeout(self.timeout, run).await {
            Err(_) => {
                if let Some(pid) = pid {
                    // SAFETY: signals the process group this program leads (see above).
                    unsafe { libc::killpg(pid as i32, libc::SIGKILL) };
                }
                (
                    false,
                    format!("killed after {} ms", self.timeout.as_millis()),
                )
            }
            Ok((Err(e), _)) => (false, format!("cannot wait for it: {e}")),
            Ok((Ok(status), text)) => {
                let output = String::from_utf8_lossy(&text);
                let mut output = output.trim().replace(['\r', '\n'], " | ");
                if output.len() > OUTPUT_KEPT {
                    let cut = (0..=OUTPUT_KEPT)
                        .rev()
                        .find(|i| output.is_char_boundary(*i))
                        .unwrap_or(0);
                    output.truncate(cut);
                    output.push_str(" ...");
                }
                let how = match status.code() {
                    Some(c) => format!("exit {c}"),
                    None => "killed by a signal".to_string(),
                };
                let took = started.elapsed().as_millis();
                let text = if output.is_empty() {
                    format!("{how} in {took} ms")
                } else {
                    format!("{how} in {took} ms: {output}")
                };
                (status.success(), text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, dir: &std::path::Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("hook.sh");
        std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        p
    }

    #[tokio::test]
    async fn the_program_gets_sentinels_arguments_and_is_bounded() {
        let dir = tempfile::tempdir().expect("tmp");
        let (from, to) = (
            NodeAddr::new("10.0.0.1", 6379),
            NodeAddr::new("10.0.0.2", 6380),
        );
        let hook = Hook {
            program: sh("echo \"$@\"; exit 3", dir.path()),
            timeout: Duration::from_secs(5),
        };
        let (ok, text) = hook.run("cache", &from, &to).await;
        assert!(!ok);
        assert!(text.starts_with("exit 3 in "), "{text}");
        assert!(
            text.ends_with(": cache leader start 10.0.0.1 6379 10.0.0.2 6380"),
            "{text}"
        );

        let slow = Hook {
            program: sh("sleep 30", dir.path()),
            timeout: Duration::from_millis(200),
        };
        let t = Instant::now();
        let (ok, text) = slow.run("cache", &from, &to).await;
        assert!(!ok && text == "killed after 200 ms", "{text}");
        assert!(t.elapsed() < Duration::from_secs(5));

        let missing = Hook {
            program: dir.path().join("nope"),
            timeout: Duration::from_secs(1),
        };
        let (ok, text) = missing.run("cache", &from, &to).await;
        assert!(!ok && text.starts_with("cannot start "), "{text}");
    }
}
