//! What the managers say during `zk_outage`: their `GET /health`, and their logs (the text
//! appended since a mark, the event of a line, the failover steps logged while ZooKeeper was
//! down, and the timeline after its return).

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use super::steps::Steps;
use super::ManagerProc;

/// Failover actions a manager must not log while ZooKeeper is down (`+selected-replica` is
/// a decision: it is reported, and must be followed by an abort).
const ACTION_EVENTS: [&str; 5] = [
    "+promoted",
    "+switch-master",
    "+reconf-replica",
    "+publish",
    "+failover-roll-forward",
];

/// The body of `GET path` on `addr` (HTTP/1.1, `Connection: close`), within ~1 s.
fn http_get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    match text.split_once("\r\n\r\n") {
        Some((_, body)) => Ok(body.trim().to_string()),
        None => Err(format!("no HTTP answer from {addr}")),
    }
}

/// Every manager's `GET /health`, one line each.
pub(super) fn health(steps: &Steps, managers: &[ManagerProc]) {
    for m in managers {
        let alive = if m.child.is_running() {
            "running"
        } else {
            "EXITED"
        };
        match http_get(m.http, "/health") {
            Ok(body) => steps.detail(&format!("{} ({alive}) /health: {body}", m.name)),
            Err(e) => steps.detail(&format!("{} ({alive}) /health: no answer ({e})", m.name)),
        }
    }
}

pub(super) fn log_len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

/// The text appended to `path` after byte `from`.
pub(super) fn log_since(path: &Path, from: u64) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b[(from as usize).min(b.len())..]).into_owned())
        .unwrap_or_default()
}

/// The event of a manager log line (`+sdown`, `-leader`, ...), if any.
pub(super) fn event_of(line: &str) -> Option<&str> {
    line.split_whitespace()
        .find(|w| (w.starts_with('+') || w.starts_with('-')) && w.len() > 2)
        .map(|w| w.trim_end_matches(':'))
}

/// Reports what each manager logged since `log_marks` (the outage), the failover actions
/// among it (a failed check) and the decisions that were not carried out.
pub(super) fn report_outage(steps: &mut Steps, managers: &[ManagerProc], log_marks: &[u64]) {
    let mut actions = Vec::new();
    for (m, mark) in managers.iter().zip(log_marks) {
        let text = log_since(&m.log, *mark);
        let mut seen: Vec<(String, usize, String)> = Vec::new();
        for line in text.lines() {
            let Some(ev) = event_of(line) else { continue };
            if ACTION_EVENTS.contains(&ev) {
                actions.push(format!("{}: {line}", m.name));
            }
            match seen.iter_mut().find(|(e, _, _)| e == ev) {
                Some(entry) => entry.1 += 1,
                None => seen.push((ev.to_string(), 1, line.to_string())),
            }
        }
        let summary: Vec<String> = seen.iter().map(|(e, n, _)| format!("{e} x{n}")).collect();
        steps.detail(&format!(
            "{} logged during the outage: {}",
            m.name,
            if summary.is_empty() {
                "nothing".to_string()
            } else {
                summary.join(", ")
            }
        ));
        for (_, _, first) in seen.iter().take(6) {
            steps.detail(&format!(
                "  {}",
                first.chars().take(220).collect::<String>()
            ));
        }
    }
    for a in actions.iter().take(5) {
        steps.detail(&format!("action while ZooKeeper was down: {a}"));
    }
    let decisions: Vec<String> = managers
        .iter()
        .zip(log_marks)
        .flat_map(|(m, mark)| {
            log_since(&m.log, *mark)
                .lines()
                .filter(|l| {
                    matches!(
                        event_of(l),
                        Some("+selected-replica") | Some("-failover-abort-not-leader")
                    )
                })
                .map(|l| format!("{}: {}", m.name, l.chars().take(200).collect::<String>()))
                .collect::<Vec<_>>()
        })
        .collect();
    if !decisions.is_empty() {
        steps.detail(
            "a failover was decided but not carried out (the promotion is recorded in ZooKeeper first, which failed):",
        );
        for d in decisions.iter().take(6) {
            steps.detail(&format!("  {d}"));
        }
    }
    steps.check(
        actions.is_empty(),
        "no manager logged a failover step or a publication while ZooKeeper was down",
    );
}

/// Prints the managers' log lines of note since ZooKeeper came back at `t_back` (up to the
/// first publication), and who logged `+switch-master`.
pub(super) fn report_return(steps: &Steps, managers: &[ManagerProc], t_back: Instant) {
    let mut timeline: Vec<(f64, String)> = managers
        .iter()
        .flat_map(|m| {
            log_since(&m.log, 0)
                .lines()
                .filter(|l| {
                    matches!(
                        event_of(l),
                        Some(
                            "+zk-session"
                                | "+zk-reconnected"
                                | "+leader"
                                | "+discovered"
                                | "+selected-replica"
                                | "+promoted"
                                | "+switch-master"
                                | "+publish"
                        )
                    )
                })
                .filter_map(|l| {
                    let at = steps.line_at(l)?;
                    (at >= (t_back - steps.t0).as_secs_f64() - 0.5).then(|| {
                        let text = l.split_once("  ").map_or(l, |(_, rest)| rest.trim());
                        (
                            at,
                            format!("{}: {}", m.name, text.chars().take(170).collect::<String>()),
                        )
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect();
    timeline.sort_by(|a, b| a.0.total_cmp(&b.0));
    steps.detail("the managers' log since ZooKeeper came back (up to the first publication):");
    for (at, line) in &timeline {
        println!("[{at:8.3} s]   {line}");
        if line.contains("+publish") {
            break;
        }
    }
    let switched_by: Vec<&str> = managers
        .iter()
        .filter(|m| log_since(&m.log, 0).contains("+switch-master"))
        .map(|m| m.name.as_str())
        .collect();
    steps.detail(&format!("+switch-master logged by {switched_by:?}"));
}
