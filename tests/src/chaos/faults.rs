//! The faults of a chaos run: the schedule ([`schedule`]), the pick of a target
//! ([`Engine::pick`]) and the injection ([`Engine::inject`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::config::{FaultKind, Options};
use super::engine::Engine;
use super::report::RoundReport;
use crate::manager::lock_order;
use crate::NodeRole;

pub(super) struct Fault {
    pub(super) kind: FaultKind,
    /// Node index, for node faults.
    pub(super) node: Option<usize>,
}

/// The fault schedule: shuffled blocks of every kind; node faults alternate master/replica
/// per kind (the first pick random), the replica random.
pub(super) fn schedule(opts: &Options, rng: &mut fastrand::Rng) -> Vec<(FaultKind, bool)> {
    let kinds = if opts.faults.is_empty() {
        FaultKind::ALL.to_vec()
    } else {
        opts.faults.clone()
    };
    let mut on_master: BTreeMap<FaultKind, bool> = kinds.iter().map(|k| (*k, rng.bool())).collect();
    let mut out = Vec::new();
    while out.len() < opts.rounds as usize {
        let mut block = kinds.clone();
        rng.shuffle(&mut block);
        for k in block {
            let m = on_master.entry(k).or_insert(false);
            out.push((k, *m));
            *m = !*m;
        }
    }
    out.truncate(opts.rounds as usize);
    out
}

/// Uniform in `[lo, hi]` at millisecond resolution.
fn duration_in(rng: &mut fastrand::Rng, (lo, hi): (Duration, Duration)) -> Duration {
    let (lo_ms, hi_ms) = (lo.as_millis() as u64, hi.as_millis() as u64);
    Duration::from_millis(rng.u64(lo_ms..=hi_ms.max(lo_ms)))
}

/// When a fault began and ended, and the id of a killed leader.
pub(super) struct Injected {
    pub(super) t_fault: Instant,
    /// When the target's old process was gone for sure (a restart: its SIGTERM returned):
    /// whatever its address acknowledges after this, a new process did.
    pub(super) t_gone: Instant,
    pub(super) t_restored: Instant,
    pub(super) killed_id: Option<String>,
}

impl Engine<'_> {
    pub(super) fn pick(&self, kind: FaultKind, on_master: bool, rng: &mut fastrand::Rng) -> Fault {
        if !kind.hits_a_node() {
            return Fault { kind, node: None };
        }
        let master = self.published_master().unwrap_or(0);
        let node = if on_master {
            master
        } else {
            let replicas: Vec<usize> = (0..self.ports.len()).filter(|i| *i != master).collect();
            replicas[rng.usize(..replicas.len())]
        };
        Fault {
            kind,
            node: Some(node),
        }
    }

    /// The role a node would come back with: what it is now.
    pub(super) fn role_to_restore(&self, i: usize) -> Option<u16> {
        match self.node(i).role() {
            Some(NodeRole::Master) => None,
            Some(NodeRole::Replica { master_port, .. }) => Some(master_port),
            None => {
                let m = self.published_master();
                (m != Some(i)).then(|| m.map(|m| self.ports[m])).flatten()
            }
        }
    }

    /// Injects `fault` (and ends it: the node restarted or resumed, a new manager started),
    /// noting the target, the hold and any failure in `report`.
    pub(super) fn inject(
        &mut self,
        fault: &Fault,
        target_was_master: bool,
        report: &mut RoundReport,
        rng: &mut fastrand::Rng,
    ) -> Injected {
        let mut killed_id = None;
        let mut t_gone = None;
        let (t_fault, t_restored) = match (fault.kind, fault.node) {
            (FaultKind::KillLeader, _) => {
                let order = self.rt.block_on(lock_order(&self.zk, &self.root));
                let holder = order
                    .ok()
                    .and_then(|o| o.first().map(|(_, _, id)| id.clone()));
                let slot = holder.as_deref().and_then(|id| self.managers.by_id(id));
                match (holder, slot) {
                    (Some(id), Some(i)) => {
                        report.target = format!("leader {}", self.managers.name(i));
                        let t = Instant::now();
                        self.managers.kill(i);
                        let started = self.managers.start(i);
                        if let Err(e) = started {
                            report.failure = Some(format!("could not start a new manager: {e}"));
                        }
                        killed_id = Some(id);
                        (t, Instant::now())
                    }
                    _ => {
                        report.target = "leader ?".into();
                        report.failure = Some("no leader found to kill".into());
                        let t = Instant::now();
                        (t, t)
                    }
                }
            }
            (kind, Some(i)) => {
                let addr = self.node(i).addr();
                report.target = format!(
                    "{} {addr}",
                    if target_was_master {
                        "master"
                    } else {
                        "replica"
                    }
                );
                match kind {
                    FaultKind::Kill => {
                        let role = self.role_to_restore(i);
                        let hold = duration_in(rng, self.opts.kill_down);
                        report.hold = Some(hold);
                        let t = Instant::now();
                        self.node(i).kill9();
                        std::thread::sleep(hold);
                        self.node(i).restart(role);
                        (t, Instant::now())
                    }
                    FaultKind::Freeze => {
                        let hold = duration_in(rng, self.opts.freeze);
                        report.hold = Some(hold);
                        let t = Instant::now();
                        self.node(i).sigstop();
                        std::thread::sleep(hold);
                        self.node(i).sigcont();
                        (t, Instant::now())
                    }
                    _ => {
                        let role = self.role_to_restore(i);
                        let t = Instant::now();
                        let gone = self.node(i).terminate(Duration::from_secs(20));
                        if !gone {
                            report.failure = Some(format!("{addr} survived SIGTERM + SIGKILL"));
                        }
                        t_gone = Some(Instant::now());
                        self.node(i).restart(role);
                        (t, Instant::now())
                    }
                }
            }
            (_, None) => {
                let t = Instant::now();
                (t, t)
            }
        };
        Injected {
            t_fault,
            t_gone: t_gone.unwrap_or(t_fault),
            t_restored,
            killed_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(seed: u64, rounds: u32) -> Options {
        Options {
            seed,
            rounds,
            ..Options::default()
        }
    }

    #[test]
    fn a_seed_gives_the_same_schedule_and_every_block_has_every_kind() {
        let plan = |seed| schedule(&opts(seed, 12), &mut fastrand::Rng::with_seed(seed));
        assert_eq!(plan(7), plan(7));
        for block in plan(7).chunks(FaultKind::ALL.len()) {
            let mut kinds: Vec<FaultKind> = block.iter().map(|(k, _)| *k).collect();
            kinds.sort();
            assert_eq!(kinds, FaultKind::ALL.to_vec());
        }
        let mut rng = fastrand::Rng::with_seed(7);
        let range = (Duration::from_millis(200), Duration::from_millis(300));
        for _ in 0..100 {
            let d = duration_in(&mut rng, range);
            assert!(d >= range.0 && d <= range.1, "{d:?}");
        }
    }
}
