//! `zk_outage`'s report: timestamped steps (seconds since the traffic started), details, and
//! checks whose failures are collected.

use std::time::Instant;

use crate::time::wall_secs_of_day;

/// Prints timestamped steps and collects failed checks.
pub(super) struct Steps {
    pub(super) t0: Instant,
    /// Seconds since midnight UTC at `t0` (to place the managers' log lines).
    t0_wall: f64,
    pub(super) failures: Vec<String>,
}

/// Seconds since midnight of a log line's `YYYY-MM-DDTHH:MM:SS.ffffffZ` timestamp.
fn line_secs_of_day(line: &str) -> Option<f64> {
    let ts = line.split_whitespace().next()?;
    let time = ts.split_once('T')?.1.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

impl Steps {
    /// A report whose clock starts now.
    pub(super) fn new() -> Steps {
        Steps {
            t0: Instant::now(),
            t0_wall: wall_secs_of_day(),
            failures: Vec::new(),
        }
    }

    /// Starts the clock again, now.
    pub(super) fn restart_clock(&mut self) {
        self.t0 = Instant::now();
        self.t0_wall = wall_secs_of_day();
    }

    /// A log line's time on this report's clock (seconds since `t0`).
    pub(super) fn line_at(&self, line: &str) -> Option<f64> {
        let mut d = line_secs_of_day(line)? - self.t0_wall;
        if d < -43_200.0 {
            d += 86_400.0;
        }
        Some(d)
    }

    pub(super) fn at(&self, t: Instant) -> String {
        if t >= self.t0 {
            format!("[{:8.3} s]", (t - self.t0).as_secs_f64())
        } else {
            format!("[{:8.3} s]", -(self.t0 - t).as_secs_f64())
        }
    }

    pub(super) fn step(&self, t: Instant, what: &str) {
        println!("{} {what}", self.at(t));
    }

    pub(super) fn now(&self, what: &str) {
        self.step(Instant::now(), what);
    }

    pub(super) fn detail(&self, what: &str) {
        println!("             {what}");
    }

    pub(super) fn check(&mut self, ok: bool, what: &str) {
        println!(
            "             check: {what}: {}",
            if ok { "ok" } else { "FAILED" }
        );
        if !ok {
            self.failures.push(what.to_string());
        }
    }
}
