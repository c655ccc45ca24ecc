//! When is a node down: consecutive probe failures against `--max-failures`. Pure; every
//! call takes `now`, so the rules are tested without servers or clocks.
//!
//! The probes (see `probe.rs`) make the timing: a crashed node fails every probe at once
//! (connection refused), a hung one fails one probe per deadline, so `max_failures`
//! consecutive failures take milliseconds for a crash and about `--down-after-ms` for a hang.

use std::time::{Duration, Instant};

use crate::core::info::NodeInfo;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not probed yet since the manager started.
    Unknown,
    Up,
    Down,
}

/// A change worth a log line and a new decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// `+sdown`: the node is now unavailable.
    Down { reason: String },
    /// `-sdown` (after being down) or `+monitor` (first answer): the node answers.
    Up { was_down: bool },
}

/// Probe history of one node.
#[derive(Clone, Debug)]
pub struct NodeHealth {
    status: Status,
    consecutive_failures: u32,
    last_ok: Option<Instant>,
    down_since: Option<Instant>,
    last_error: Option<String>,
    /// The latest replication state the node reported; kept while it is down, because the
    /// offset it had is still what ranks it if it comes back.
    info: Option<NodeInfo>,
    last_failure_at: Option<Instant>,
    /// When the question that `info` answers was asked.
    info_at: Option<Instant>,
    /// `info` was read after the node last went down.
    info_fresh: bool,
    latency: Option<Duration>,
    /// How many times the node was seen restarting (its `run_id` changed).
    restarts: u64,
    started_at: Option<Instant>,
    /// What its failures since its last success show about the process.
    evidence: Evidence,
}

/// What a node's failures show about its process, beyond "it does not answer".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Evidence {
    /// Nothing: it may be cut off by the network, and serving clients elsewhere.
    #[default]
    None,
    /// Every failure since its last success was a silence while its host accepted
    /// connections: a hung process (see `NodeError::Silent`). One failure of the streak
    /// whose handshake failed too (a link that flaps, a host that drops) spoils it until
    /// the next success: the network, not the process, may be what fails.
    Hung,
    /// It closed a connection, then refused new ones: the process is gone (see
    /// `ProbeResult::Gone`). Kept until the next success, whatever fails after it.
    Gone,
}

impl Default for NodeHealth {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeHealth {
    pub fn new() -> Self {
        Self {
            status: Status::Unknown,
            consecutive_failures: 0,
            last_ok: None,
            down_since: None,
            last_error: None,
            info: None,
            info_at: None,
            last_failure_at: None,
            info_fresh: false,
            latency: None,
            restarts: 0,
            started_at: None,
            evidence: Evidence::None,
        }
    }

    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// When the node's process started, as its `uptime_in_seconds` said (whole seconds:
    /// up to a second late); `None` until read.
    pub fn started_at(&self) -> Option<Instant> {
        self.started_at
    }

    /// The node's process was identified: it started at `started_at`.
    pub fn on_identified(&mut self, started_at: Option<Instant>) {
        self.started_at = started_at;
    }

    /// `+reboot`: the node answers with a new `run_id`. Whatever it held in memory is gone;
    /// what it has now is what it loaded from disk, if anything.
    pub fn on_restart(&mut self) {
        self.restarts += 1;
    }

    pub fn status(&self) -> Status {
        self.status
    }

    pub fn is_up(&self) -> bool {
        self.status == Status::Up
    }

    pub fn info(&self) -> Option<&NodeInfo> {
        self.info.as_ref()
    }

    pub fn latency(&self) -> Option<Duration> {
        self.latency
    }

    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Up, but its latest probe failed: it is down within `--down-after-ms` unless it
    /// answers again, and until then what it is doing is not known.
    pub fn failing(&self) -> bool {
        self.is_up() && self.consecutive_failures > 0
    }

    pub fn last_ok(&self) -> Option<Instant> {
        self.last_ok
    }

    /// When the `INFO` the node's state comes from was asked.
    pub fn info_at(&self) -> Option<Instant> {
        self.info_at
    }

    pub fn down_since(&self) -> Option<Instant> {
        self.down_since
    }

    /// A probe succeeded; `info` is set when the probe read `INFO replication`.
    pub fn on_success(
        &mut self,
        now: Instant,
        info: Option<NodeInfo>,
        latency: Option<Duration>,
    ) -> Option<Transition> {
        // Asked before the latest failure was seen: says nothing about the node now.
        if self.last_failure_at.is_some_and(|f| now < f) {
            return None;
        }
        self.consecutive_failures = 0;
        self.evidence = Evidence::None;
        self.last_ok = Some(self.last_ok.map_or(now, |t| t.max(now)));
        // A reply to a question asked before the state we already hold is older than it
        // (a poll in flight while the leader promoted this node): keep the newer state.
        if let Some(info) = info.filter(|_| self.info_at.is_none_or(|t| now >= t)) {
            self.info = Some(info);
            self.info_at = Some(now);
            self.info_fresh = true;
        }
        if latency.is_some() {
            self.latency = latency;
        }
        // Up needs an INFO read since the node was last down: a returning node's role is
        // whatever it restarted with, not what it had before, and deciding on a role we have
        // not seen would be guessing.
        if self.status != Status::Up && self.info_fresh {
            let was_down = self.status == Status::Down;
            self.status = Status::Up;
            self.down_since = None;
            self.last_error = None;
            return Some(Transition::Up { was_down });
        }
        None
    }

    /// Down, and proven gone rather than merely unreachable: it closed a connection and
    /// then refused new ones, which a crashed or stopped process does and a firewall or a
    /// cut network cannot fake.
    pub fn proven_gone(&self) -> bool {
        self.status == Status::Down && self.evidence == Evidence::Gone
    }

    /// Down, and its latest failure shows a hung process rather than a cut network: its
    /// host completes TCP handshakes on its port, the process answers nobody.
    pub fn proven_hung(&self) -> bool {
        self.status == Status::Down && self.evidence == Evidence::Hung
    }

    /// A probe failed (connection refused or dropped, deadline passed, error reply), showing
    /// nothing more about the process.
    pub fn on_failure(
        &mut self,
        now: Instant,
        reason: &str,
        max_failures: u32,
    ) -> Option<Transition> {
        self.on_failure_showing(now, reason, max_failures, Evidence::None)
    }

    /// A probe failed in a way that shows `evidence` (proof that the process is gone stays
    /// until the next success).
    pub fn on_failure_showing(
        &mut self,
        now: Instant,
        reason: &str,
        max_failures: u32,
        evidence: Evidence,
    ) -> Option<Transition> {
        let first = self.consecutive_failures == 0;
        self.evidence = match (self.evidence, evidence) {
            (Evidence::Gone, _) | (_, Evidence::Gone) => Evidence::Gone,
            (_, Evidence::Hung) if first => Evidence::Hung,
            (Evidence::Hung, Evidence::Hung) => Evidence::Hung,
            _ => Evidence::None,
        };
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.last_error = Some(reason.to_string());
        self.last_failure_at = Some(self.last_failure_at.map_or(now, |t| t.max(now)));
        if self.status != Status::Down && self.consecutive_failures >= max_failures.max(1) {
            self.status = Status::Down;
            self.down_since = Some(now);
            self.info_fresh = false;
            return Some(Transition::Down {
                reason: format!(
                    "{} consecutive failed probes, last: {reason}",
                    self.consecutive_failures
                ),
            });
        }
        None
    }
}

/// Whether `view`'s group is calm: every node is up and answered its latest probe, and
/// one master lists every other node as an online replica heard from within the last second
/// (not in [`NodeInfo::lagging`]). The probes of a calm group ask less (see `probe.rs`): its
/// replicas' own answers add nothing the master's `INFO` does not show every second, and the
/// moment this turns false every node is asked at every probe.
pub fn calm(view: &crate::core::View) -> bool {
    if view.values().any(|h| !h.is_up() || h.failing()) {
        return false;
    }
    let mut masters = view
        .values()
        .filter_map(|h| h.info().filter(|i| i.is_master()));
    let (Some(master), None) = (masters.next(), masters.next()) else {
        return false;
    };
    view.iter()
        .filter(|(_, h)| h.info().is_some_and(|i| !i.is_master()))
        .all(|(a, _)| master.followers.iter().any(|(f, _)| f == a) && !master.lagging.contains(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::info::Role;
    use crate::core::test_support::{self as ts, linked_to};

    #[derive(Clone, Copy, Debug)]
    enum Ev {
        Ok,
        OkInfo,
        Fail,
    }

    fn info() -> NodeInfo {
        ts::info(Role::Master, 1)
    }

    fn run(events: &[Ev], max_failures: u32) -> (Status, Vec<&'static str>, u32) {
        let t0 = Instant::now();
        let mut h = NodeHealth::new();
        let mut transitions = vec![];
        for (i, ev) in events.iter().enumerate() {
            let now = t0 + Duration::from_millis(10 * i as u64);
            let t = match ev {
                Ev::Ok => h.on_success(now, None, None),
                Ev::OkInfo => h.on_success(now, Some(info()), Some(Duration::from_millis(1))),
                Ev::Fail => h.on_failure(now, "refused", max_failures),
            };
            match t {
                Some(Transition::Down { .. }) => transitions.push("+sdown"),
                Some(Transition::Up { was_down: true }) => transitions.push("-sdown"),
                Some(Transition::Up { was_down: false }) => transitions.push("+monitor"),
                None => {}
            }
        }
        (h.status(), transitions, h.consecutive_failures())
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn table() {
        use Ev::*;
        let cases: Vec<(&str, Vec<Ev>, u32, Status, Vec<&str>)> = vec![
            ("nothing yet", vec![], 3, Status::Unknown, vec![]),
            (
                "ping alone does not make a node up",
                vec![Ok],
                3,
                Status::Unknown,
                vec![],
            ),
            (
                "first INFO makes it up",
                vec![OkInfo],
                3,
                Status::Up,
                vec!["+monitor"],
            ),
            (
                "two failures are not enough",
                vec![OkInfo, Fail, Fail],
                3,
                Status::Up,
                vec!["+monitor"],
            ),
            (
                "three consecutive failures",
                vec![OkInfo, Fail, Fail, Fail],
                3,
                Status::Down,
                vec!["+monitor", "+sdown"],
            ),
            (
                "a success resets the count",
                vec![OkInfo, Fail, Fail, Ok, Fail, Fail],
                3,
                Status::Up,
                vec!["+monitor"],
            ),
            (
                "max-failures 1",
                vec![OkInfo, Fail],
                1,
                Status::Down,
                vec!["+monitor", "+sdown"],
            ),
            (
                "max-failures 0 acts as 1",
                vec![OkInfo, Fail],
                0,
                Status::Down,
                vec!["+monitor", "+sdown"],
            ),
            (
                "down is reported once",
                vec![OkInfo, Fail, Fail, Fail, Fail, Fail],
                3,
                Status::Down,
                vec!["+monitor", "+sdown"],
            ),
            (
                "never seen, then down",
                vec![Fail, Fail, Fail],
                3,
                Status::Down,
                vec!["+sdown"],
            ),
            (
                "back needs a fresh INFO",
                vec![OkInfo, Fail, Fail, Fail, Ok, Ok],
                3,
                Status::Down,
                vec!["+monitor", "+sdown"],
            ),
            (
                "back with INFO",
                vec![OkInfo, Fail, Fail, Fail, Ok, OkInfo],
                3,
                Status::Up,
                vec!["+monitor", "+sdown", "-sdown"],
            ),
        ];
        for (name, events, max, want_status, want_transitions) in cases {
            let (status, transitions, _) = run(&events, max);
            assert_eq!(status, want_status, "{name}");
            assert_eq!(transitions, want_transitions, "{name}");
        }
    }

    #[test]
    fn an_older_reply_does_not_replace_newer_state() {
        let t0 = Instant::now();
        let mut h = NodeHealth::new();
        let replica = ts::info(linked_to(1), 5);
        h.on_success(t0, Some(replica.clone()), None);
        // The leader promoted the node and recorded what it saw at t0 + 10 ms...
        h.on_success(t0 + Duration::from_millis(10), Some(info()), None);
        // ...then a poll asked at t0 + 5 ms is processed: it must not win.
        h.on_success(t0 + Duration::from_millis(5), Some(replica.clone()), None);
        assert_eq!(h.info(), Some(&info()));
        h.on_success(t0 + Duration::from_millis(20), Some(replica.clone()), None);
        assert_eq!(h.info(), Some(&replica));
    }

    #[test]
    fn a_reply_asked_before_a_failure_is_ignored() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut h = NodeHealth::new();
        h.on_success(ms(0), Some(info()), None);
        for n in [10, 11, 12] {
            h.on_failure(ms(n), "refused", 3);
        }
        assert_eq!(h.status(), Status::Down);
        // A poll asked at 5 ms, answered just before the crash, processed late.
        assert_eq!(h.on_success(ms(5), Some(info()), None), None);
        assert_eq!(h.status(), Status::Down);
        assert!(h.on_success(ms(20), Some(info()), None).is_some());
        assert_eq!(h.status(), Status::Up);
    }

    #[test]
    fn down_reason_names_the_count_and_the_error() {
        let mut h = NodeHealth::new();
        let now = Instant::now();
        h.on_failure(now, "x", 2);
        let Some(Transition::Down { reason }) = h.on_failure(now, "connection refused", 2) else {
            panic!("expected down");
        };
        assert_eq!(
            reason,
            "2 consecutive failed probes, last: connection refused"
        );
        assert_eq!(h.down_since(), Some(now));
    }

    #[test]
    fn a_hang_needs_every_failure_of_the_streak_silent() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        use Evidence::{Hung, None as Plain};
        let table: &[(&str, &[Evidence], bool)] = &[
            ("all silent", &[Hung, Hung, Hung], true),
            (
                "a flapping link: the handshake failed once",
                &[Plain, Hung, Hung],
                false,
            ),
            ("spoiled in the middle", &[Hung, Plain, Hung], false),
            ("spoiled at the end", &[Hung, Hung, Plain], false),
        ];
        for (what, streak, hung) in table {
            let mut h = NodeHealth::new();
            h.on_success(t0, Some(info()), None);
            for (i, e) in streak.iter().enumerate() {
                h.on_failure_showing(at(i as u64 + 1), "failed", 3, *e);
            }
            assert_eq!(h.proven_hung(), *hung, "{what}");
            // A success starts a new streak.
            h.on_success(at(10), Some(info()), None);
            for i in 0..3 {
                h.on_failure_showing(at(11 + i), "silent", 3, Hung);
            }
            assert!(h.proven_hung(), "{what}: a new all-silent streak");
        }
    }

    #[test]
    fn proof_of_a_gone_process_stays_and_a_hang_ends_at_any_other_failure() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut h = NodeHealth::new();
        h.on_success(t0, Some(info()), None);
        h.on_failure_showing(at(1), "silent", 2, Evidence::Hung);
        h.on_failure_showing(at(2), "silent", 2, Evidence::Hung);
        assert!(h.proven_hung() && !h.proven_gone());
        h.on_failure(at(3), "connect timeout", 2);
        assert!(
            !h.proven_hung(),
            "a later failure without a handshake: not hung"
        );
        h.on_failure_showing(at(4), "refused after a close", 2, Evidence::Gone);
        h.on_failure(at(5), "refused", 2);
        h.on_failure_showing(at(6), "silent", 2, Evidence::Hung);
        assert!(h.proven_gone(), "proof of a gone process stays");
        h.on_success(at(7), Some(info()), None);
        h.on_failure_showing(at(8), "silent", 2, Evidence::Hung);
        h.on_failure(at(9), "connect timeout", 2);
        h.on_failure_showing(at(10), "silent", 2, Evidence::Hung);
        assert!(
            !h.proven_hung(),
            "silent again after a failed handshake: still not a hang"
        );
        h.on_failure_showing(at(11), "refused after a close", 2, Evidence::Gone);
        h.on_success(at(12), Some(info()), None);
        assert!(!h.proven_gone() && !h.proven_hung(), "a success ends both");
    }

    #[test]
    fn a_group_is_calm_while_its_master_hears_every_replica() {
        let now = Instant::now();
        let master = |listed: &[u16], lagging: &[u16]| NodeInfo {
            followers: listed.iter().map(|p| (ts::a(*p), 10)).collect(),
            lagging: lagging.iter().map(|p| ts::a(*p)).collect(),
            ..ts::info(Role::Master, 10)
        };
        let replica = || ts::answered(now, ts::info(linked_to(1), 10));
        let group = |m: NodeInfo| {
            crate::core::View::from([
                (ts::a(1), ts::answered(now, m)),
                (ts::a(2), replica()),
                (ts::a(3), replica()),
            ])
        };
        let failed = |mut v: crate::core::View, port: u16| {
            if let Some(h) = v.get_mut(&ts::a(port)) {
                h.on_failure(now, "no reply", 3);
            }
            v
        };
        let two_masters = {
            let mut v = group(master(&[2, 3], &[]));
            v.insert(ts::a(3), ts::answered(now, ts::info(Role::Master, 10)));
            v
        };
        let cases: Vec<(&str, crate::core::View, bool)> = vec![
            (
                "every replica listed and heard",
                group(master(&[2, 3], &[])),
                true,
            ),
            ("a replica not listed", group(master(&[2], &[])), false),
            (
                "a replica silent for 2 s",
                group(master(&[2, 3], &[3])),
                false,
            ),
            (
                "a replica failed a probe",
                failed(group(master(&[2, 3], &[])), 2),
                false,
            ),
            (
                "the master failed a probe",
                failed(group(master(&[2, 3], &[])), 1),
                false,
            ),
            (
                "a node never answered",
                {
                    let mut v = group(master(&[2, 3], &[]));
                    v.insert(ts::a(4), NodeHealth::new());
                    v
                },
                false,
            ),
            ("two masters", two_masters, false),
            (
                "no master",
                {
                    let mut v = group(master(&[2, 3], &[]));
                    v.remove(&ts::a(1));
                    v
                },
                false,
            ),
        ];
        for (name, view, want) in cases {
            assert_eq!(calm(&view), want, "{name}");
        }
    }
}
