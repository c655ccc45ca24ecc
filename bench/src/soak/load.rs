//! The load of a `soak` phase: the busy loops, the phase's clock, and the figures every phase
//! reports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis_failover_tests::writer::{WriteLog, Writer};

use super::{Counts, Opts, PhaseOut, POLL, PROGRESS_EVERY};
use crate::load::{load_average, CpuHogs};
use crate::tasks::join_error;

/// The ticks of a phase: every [`POLL`] until its end or ctrl-c.
pub(super) struct PhaseClock {
    start: Instant,
    end: Instant,
    next_progress: Instant,
    first: bool,
    interrupted: bool,
}

impl PhaseClock {
    fn new(start: Instant, minutes: f64) -> PhaseClock {
        PhaseClock {
            start,
            end: start + Duration::from_secs_f64(minutes * 60.0),
            next_progress: start + PROGRESS_EVERY,
            first: true,
            interrupted: false,
        }
    }

    /// Waits for the next tick: `None` once the phase is over (or ctrl-c ended it), else
    /// whether a progress line is due.
    pub(super) async fn tick(&mut self, interrupted: &AtomicBool) -> Option<bool> {
        if !self.first {
            tokio::time::sleep(POLL.min(self.end.saturating_duration_since(Instant::now()))).await;
        }
        self.first = false;
        if interrupted.load(Ordering::Relaxed) {
            self.interrupted = true;
            return None;
        }
        let now = Instant::now();
        if now >= self.end {
            return None;
        }
        if now >= self.next_progress {
            self.next_progress += PROGRESS_EVERY;
            return Some(true);
        }
        Some(false)
    }

    pub(super) fn minutes(&self) -> f64 {
        self.start.elapsed().as_secs_f64() / 60.0
    }
}

/// A phase under load: the busy loops and the clock.
pub(super) struct Loaded {
    cpu: CpuHogs,
    load_start: String,
    pub(super) t_start: Instant,
    pub(super) clock: PhaseClock,
}

impl Loaded {
    /// Starts the busy loops and the clock.
    pub(super) fn start(o: &Opts, hogs: usize) -> Result<Loaded, String> {
        let load_start = load_average();
        let cpu = CpuHogs::start(hogs)?;
        let t_start = Instant::now();
        Ok(Loaded {
            cpu,
            load_start,
            t_start,
            clock: PhaseClock::new(t_start, o.minutes),
        })
    }

    /// Stops the busy loops and the writer (unless the phase `failed`), and puts the phase's
    /// figures together (all but the [`Counts`]).
    pub(super) async fn end(
        self,
        failed: Option<String>,
        writer: Writer,
        system: &str,
        settings: String,
    ) -> Result<PhaseOut, String> {
        let hog_shares = self.cpu.core_shares();
        let load_end = load_average();
        let elapsed = self.t_start.elapsed();
        let cpu = self.cpu;
        tokio::task::spawn_blocking(move || cpu.stop())
            .await
            .map_err(|e| format!("stopping the busy loops: {}", join_error(e)))?;
        if let Some(e) = failed {
            return Err(e);
        }
        let log: WriteLog = writer.stop(Duration::from_secs(3)).await;
        Ok(PhaseOut {
            system: system.into(),
            settings,
            counts: Counts::default(),
            minutes: elapsed.as_secs_f64() / 60.0,
            interrupted: self.clock.interrupted,
            acked: log.acks.len(),
            errors: log.errors.len(),
            first_error: log.errors.first().map(|e| e.error.clone()),
            longest_gap: log.longest_gap(self.t_start, self.t_start + elapsed).0,
            hog_shares,
            load_start: self.load_start,
            load_end,
        })
    }
}
