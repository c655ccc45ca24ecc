//! One round of a chaos run: the fault, the wait for convergence, the observer's figures,
//! the loss check and the writer's view of the round.

use std::time::{Duration, Instant};

use super::engine::Engine;
use super::faults::{Fault, Injected};
use super::losses::{classify, LossCtx};
use super::report::{rel_ms, LostWrite, Published, RoundReport, RoundTimes};
use crate::util::lock;
use crate::writer::Ack;

impl Engine<'_> {
    pub(super) fn round(
        &mut self,
        round: u32,
        fault: Fault,
        rng: &mut fastrand::Rng,
    ) -> RoundReport {
        {
            let mut o = lock(&self.obs);
            o.round = round;
            o.round_split_brain = 0;
            o.round_stale_master = 0;
        }
        let before = self.latest_topology().unwrap_or_default();
        let round_start = Instant::now();
        let target_was_master = fault.node.is_some() && fault.node == self.published_master();
        let mut report = RoundReport {
            round,
            fault: fault.kind,
            target: String::new(),
            target_was_master,
            hold: None,
            at_s: (round_start - self.t0).as_secs_f64(),
            before: Published {
                master: before.master.as_ref().map(|m| m.port),
                epoch: before.epoch,
            },
            after: Published {
                master: None,
                epoch: before.epoch,
            },
            times: RoundTimes::default(),
            acked: 0,
            errors: 0,
            error_details: Vec::new(),
            max_write_gap: Duration::ZERO,
            max_write_gap_end_ms: 0.0,
            lost_async: Vec::new(),
            lost_unexpected: Vec::new(),
            split_brain: 0,
            stale_master: 0,
            failure: None,
            check_error: None,
        };

        // 1. The fault.
        let Injected {
            t_fault,
            t_gone,
            t_restored,
            killed_id,
        } = self.inject(&fault, target_was_master, &mut report, rng);

        // 2. Convergence.
        if let Some(id) = &killed_id {
            report.times.takeover_after = self.takeover_time(id, t_fault);
        }
        let converged = self.wait_converged(
            t_restored,
            killed_id.as_deref(),
            true,
            self.opts.converge_timeout,
        );
        match converged {
            Ok(at) => {
                let at = at.max(t_restored);
                report.times.converged_after = Some(at - t_restored);
                report.times.converged_from_fault = Some(at - t_fault);
            }
            Err(e) => {
                let prior = report
                    .failure
                    .take()
                    .map(|f| format!("{f}; "))
                    .unwrap_or_default();
                report.failure = Some(format!("{prior}{e}{}", self.managers.tails(20)));
            }
        }

        // 3. Figures from the observer.
        let failover_began: Option<Instant>;
        {
            let o = lock(&self.obs);
            report.split_brain = o.round_split_brain;
            report.stale_master = o.round_stale_master;
            let after = o.latest.as_ref().and_then(|s| s.topo.as_ref());
            report.after.master = after.and_then(|t| t.master.as_ref()).map(|m| m.port);
            report.after.epoch = after.map_or(before.epoch, |t| t.epoch);
            report.times.new_master_after = o
                .publications
                .iter()
                .filter(|(at, _)| *at >= t_fault)
                .find(|(_, t)| {
                    t.master.is_some() && t.master.as_ref().map(|m| m.port) != report.before.master
                })
                .map(|(at, _)| *at - t_fault);
            // The failover began when the observer first saw the old master replaced, or a
            // promotion recorded (`promoting`, published before `REPLICAOF NO ONE`).
            failover_began = o
                .publications
                .iter()
                .filter(|(at, _)| *at >= t_fault)
                .find(|(_, t)| {
                    t.promoting.is_some()
                        || t.master.as_ref().map(|m| m.port) != report.before.master
                })
                .map(|(at, _)| *at);
        }
        self.flush_observer_log();

        // 4. Lost writes: everything acknowledged so far must be on the published master.
        match report.after.master.filter(|_| report.converged()) {
            None => report.check_error = Some("no converged master to check".into()),
            Some(port) => match self.check(port) {
                Err(e) => report.check_error = Some(e),
                Ok(missing) => {
                    let ctx = LossCtx::new(&report, t_fault, t_gone, t_restored, failover_began);
                    let classified: Vec<(LostWrite, bool)> = self.with_log(|w| {
                        missing
                            .iter()
                            .map(|n| classify(&ctx, w.ack(*n), *n))
                            .collect()
                    });
                    for (lost, in_async_window) in classified {
                        if in_async_window {
                            report.lost_async.push(lost);
                        } else {
                            report.lost_unexpected.push(lost);
                        }
                    }
                    for l in report.lost_async.iter().chain(&report.lost_unexpected) {
                        self.lost.insert(l.seq);
                    }
                }
            },
        }

        // 5. The writer's view of the round.
        let round_end = Instant::now();
        self.with_log(|w| {
            let in_round: Vec<&Ack> = w
                .acks
                .iter()
                .filter(|a| a.at >= round_start && a.at < round_end)
                .collect();
            report.acked = in_round.len();
            // The longest wait for an acknowledgement from the fault on (the first one counts
            // from the fault): what the fault cost the writer.
            let mut prev = t_fault;
            for a in in_round.iter().filter(|a| a.at >= t_fault) {
                if a.at - prev > report.max_write_gap {
                    report.max_write_gap = a.at - prev;
                    report.max_write_gap_end_ms = rel_ms(a.at, t_fault);
                }
                prev = a.at;
            }
            let errs: Vec<_> = w
                .errors
                .iter()
                .filter(|e| e.at >= round_start && e.at < round_end)
                .collect();
            report.errors = errs.len();
            report.error_details = errs
                .iter()
                .take(5)
                .map(|e| {
                    format!(
                        "seq:{} sent {:+.1} ms, failed {:+.1} ms from the fault: {}",
                        e.seq,
                        rel_ms(e.sent, t_fault),
                        rel_ms(e.at, t_fault),
                        e.error
                    )
                })
                .collect();
        });
        report
    }
}
