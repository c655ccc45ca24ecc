//! The observer: a *sweep* every few ms sends `ROLE` to every node on its own connections
//! and reads `<root>/nodes`, all at once; [`ObsState::absorb`] judges each sweep (split-brain
//! and stale-master instants, convergence, publications).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis_failover_client::{NodeAddr, Topology};
use zookeeper_client as zk;

use super::report::{ms, Anomaly, MAX_DETAILS};
use crate::redis_helpers::connect_async;
use crate::util::lock;

/// Sweeps allowed in flight at once (a frozen node makes each one last a probe deadline).
const MAX_SWEEPS_IN_FLIGHT: usize = 32;

/// A node's answer to `ROLE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Master,
    /// `ROLE` of a replica: its master's port and the link state (`connected` when up).
    Replica {
        master_port: u16,
        state: String,
    },
    Other(String),
    NoAnswer(String),
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Master => f.write_str("master"),
            Role::Replica { master_port, state } => {
                write!(f, "replica of :{master_port} ({state})")
            }
            Role::Other(s) => write!(f, "? {s}"),
            Role::NoAnswer(e) => write!(f, "no answer ({e})"),
        }
    }
}

fn value_text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Parses a `ROLE` reply.
pub fn parse_role_reply(v: &redis::Value) -> Role {
    let redis::Value::Array(items) = v else {
        return Role::Other(format!("{v:?}"));
    };
    match items.first().and_then(value_text).as_deref() {
        Some("master") => Role::Master,
        Some("slave") | Some("replica") => {
            let port = items
                .get(2)
                .and_then(value_text)
                .and_then(|p| p.parse().ok());
            let state = items.get(3).and_then(value_text).unwrap_or_default();
            match port {
                Some(master_port) => Role::Replica { master_port, state },
                None => Role::Other(format!("{v:?}")),
            }
        }
        _ => Role::Other(format!("{v:?}")),
    }
}

pub(super) type Slot = Arc<tokio::sync::Mutex<Option<MultiplexedConnection>>>;

/// `ROLE` on the node's shared connection (opened if needed), within `timeout` in all.
async fn probe_role(port: u16, slot: Slot, timeout: Duration) -> (Role, Duration) {
    let start = Instant::now();
    let result = tokio::time::timeout(timeout, async {
        let mut conn = {
            let mut guard = slot.lock().await;
            match guard.as_ref() {
                Some(c) => c.clone(),
                None => {
                    let c = connect_async(&NodeAddr::new("127.0.0.1", port), timeout).await?;
                    *guard = Some(c.clone());
                    c
                }
            }
        };
        redis::cmd("ROLE")
            .query_async::<redis::Value>(&mut conn)
            .await
            .map_err(|e| {
                if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
                    format!("connection: {e}")
                } else {
                    e.to_string()
                }
            })
    })
    .await;
    let rtt = start.elapsed();
    let role = match result {
        Ok(Ok(v)) => parse_role_reply(&v),
        Ok(Err(e)) => {
            // A broken or refused connection is opened afresh next time.
            if let Ok(mut g) = slot.try_lock() {
                *g = None;
            }
            Role::NoAnswer(e)
        }
        Err(_) => Role::NoAnswer(format!("no reply within {} ms", timeout.as_millis())),
    };
    (role, rtt)
}

/// One sweep: `ROLE` of every node and `<root>/nodes`, all at once.
#[derive(Clone, Debug)]
pub(super) struct Sweep {
    pub(super) start: Instant,
    pub(super) roles: Vec<(Role, Duration)>,
    pub(super) topo: Option<Topology>,
    pub(super) topo_rtt: Duration,
}

pub(super) struct SweepCtx {
    pub(super) ports: Vec<u16>,
    pub(super) slots: Vec<Slot>,
    pub(super) zk: zk::Client,
    pub(super) path: String,
    pub(super) timeout: Duration,
}

async fn sweep(ctx: Arc<SweepCtx>) -> Sweep {
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (i, (&port, slot)) in ctx.ports.iter().zip(&ctx.slots).enumerate() {
        let (slot, timeout) = (Arc::clone(slot), ctx.timeout);
        set.spawn(async move { (i, probe_role(port, slot, timeout).await) });
    }
    let t0 = Instant::now();
    let topo = match tokio::time::timeout(ctx.timeout * 2, ctx.zk.get_data(&ctx.path)).await {
        Ok(Ok((data, _))) => Topology::from_json(&data).ok(),
        _ => None,
    };
    let topo_rtt = t0.elapsed();
    let mut roles = vec![(Role::NoAnswer("not probed".into()), Duration::ZERO); ctx.ports.len()];
    while let Some(r) = set.join_next().await {
        if let Ok((i, x)) = r {
            roles[i] = x;
        }
    }
    Sweep {
        start,
        roles,
        topo,
        topo_rtt,
    }
}

/// Bounds the observer judges by.
#[derive(Clone, Debug)]
pub(super) struct Judge {
    pub(super) ports: Vec<u16>,
    pub(super) tight_reply: Duration,
    pub(super) tight_zk: Duration,
    pub(super) stale_master_bound: Duration,
    pub(super) t0: Instant,
}

/// What the observer knows; shared with the driver.
#[derive(Default)]
pub(super) struct ObsState {
    pub(super) round: u32,
    pub(super) sweeps: u64,
    pub(super) skipped: u64,
    pub(super) split_brain: u64,
    pub(super) stale_master: u64,
    pub(super) two_masters_loose: u64,
    pub(super) round_split_brain: u64,
    pub(super) round_stale_master: u64,
    pub(super) anomalies: Vec<Anomaly>,
    /// The newest sweep absorbed in order (by start).
    pub(super) latest: Option<Sweep>,
    /// Start of the current run of converged sweeps.
    pub(super) converged_since: Option<Instant>,
    /// The published master answering as a replica since.
    pub(super) stale_since: Option<(u16, Instant)>,
    /// Every distinct published topology, when first seen.
    pub(super) publications: Vec<(Instant, Topology)>,
    /// Lines for observer.log, drained by the driver.
    pub(super) log: Vec<String>,
}

fn public_ports(t: &Topology) -> Vec<u16> {
    t.master.iter().chain(&t.slaves).map(|a| a.port).collect()
}

pub(super) fn describe(s: &Sweep, ports: &[u16]) -> String {
    let roles: Vec<String> = ports
        .iter()
        .zip(&s.roles)
        .map(|(p, (r, rtt))| format!(":{p} {r} [{:.1} ms]", ms(*rtt)))
        .collect();
    let topo = match &s.topo {
        Some(t) => format!(
            "master {} slaves [{}] unavailable [{}] epoch {}{} [{:.1} ms]",
            t.master
                .as_ref()
                .map_or("null".into(), |m| format!(":{}", m.port)),
            crate::comma_list(t.slaves.iter().map(|a| format!(":{}", a.port))),
            crate::comma_list(t.unavailable.iter().map(|a| format!(":{}", a.port))),
            t.epoch,
            t.promoting
                .as_ref()
                .map(|p| format!(" promoting :{}", p.port))
                .unwrap_or_default(),
            ms(s.topo_rtt)
        ),
        None => format!("znode unreadable [{:.1} ms]", ms(s.topo_rtt)),
    };
    format!("{}; published: {topo}", roles.join(", "))
}

/// The group is healthy in this sweep (see the module doc).
fn converged(s: &Sweep, ports: &[u16]) -> bool {
    let Some(t) = &s.topo else { return false };
    if t.promoting.is_some() || !t.unavailable.is_empty() {
        return false;
    }
    let Some(m) = &t.master else { return false };
    let Some(mi) = ports.iter().position(|p| *p == m.port) else {
        return false;
    };
    if s.roles[mi].0 != Role::Master {
        return false;
    }
    ports.iter().enumerate().all(|(i, p)| {
        i == mi
            || (matches!(&s.roles[i].0, Role::Replica { master_port, state }
                    if *master_port == m.port && state == "connected")
                && t.slaves.iter().any(|a| a.port == *p))
    })
}

impl ObsState {
    /// Logs an anomaly seen `at_s` into the run, and keeps its details (up to a bound).
    fn record(&mut self, at_s: f64, what: String) {
        self.log
            .push(format!("{at_s:9.3} round {} {what}", self.round));
        if self.anomalies.len() < MAX_DETAILS {
            self.anomalies.push(Anomaly {
                round: self.round,
                at_s,
                what,
            });
        }
    }

    pub(super) fn absorb(&mut self, s: Sweep, j: &Judge) {
        self.sweeps += 1;
        let at_s = (s.start - j.t0).as_secs_f64();
        let masters: Vec<u16> = j
            .ports
            .iter()
            .zip(&s.roles)
            .filter(|(_, (r, _))| *r == Role::Master)
            .map(|(p, _)| *p)
            .collect();
        if masters.len() >= 2 {
            self.two_masters_loose += 1;
        }
        // (a) split brain: two tight master answers, both listed publicly by a tight read.
        if let Some(t) = &s.topo {
            if s.topo_rtt <= j.tight_zk {
                let public = public_ports(t);
                let tight_public_masters: Vec<u16> = j
                    .ports
                    .iter()
                    .zip(&s.roles)
                    .filter(|(p, (r, rtt))| {
                        *r == Role::Master && *rtt <= j.tight_reply && public.contains(p)
                    })
                    .map(|(p, _)| *p)
                    .collect();
                if tight_public_masters.len() >= 2 {
                    self.split_brain += 1;
                    self.round_split_brain += 1;
                    self.record(at_s, format!("SPLIT-BRAIN: {}", describe(&s, &j.ports)));
                }
            }
        }
        if masters.len() >= 2 {
            self.log.push(format!(
                "{at_s:9.3} round {} two nodes answer master: {}",
                self.round,
                describe(&s, &j.ports)
            ));
        }
        // The rest follows the sweeps in the order they started.
        if self.latest.as_ref().is_some_and(|l| s.start <= l.start) {
            return;
        }
        // (a') the published master answering as a replica for too long.
        match s.topo.as_ref().and_then(|t| t.master.as_ref()) {
            Some(m) => {
                let role = j
                    .ports
                    .iter()
                    .position(|p| *p == m.port)
                    .map(|i| &s.roles[i].0);
                match role {
                    Some(Role::Replica { .. }) => match self.stale_since {
                        Some((p, since)) if p == m.port => {
                            if s.start - since > j.stale_master_bound {
                                self.stale_master += 1;
                                self.round_stale_master += 1;
                                let what = format!(
                                    "STALE MASTER for {:.0} ms: {}",
                                    ms(s.start - since),
                                    describe(&s, &j.ports)
                                );
                                self.record(at_s, what);
                            }
                        }
                        _ => self.stale_since = Some((m.port, s.start)),
                    },
                    Some(Role::Master) => self.stale_since = None,
                    _ => {}
                }
            }
            None => self.stale_since = None,
        }
        if let Some(t) = &s.topo {
            let changed = self.publications.last().is_none_or(|(_, last)| {
                let mut a = last.clone();
                a.updated_at_ms = t.updated_at_ms;
                a != *t
            });
            if changed {
                self.log.push(format!(
                    "{at_s:9.3} round {} published: {}",
                    self.round,
                    describe(&s, &j.ports)
                ));
                self.publications.push((s.start, t.clone()));
            }
        }
        if converged(&s, &j.ports) {
            self.converged_since.get_or_insert(s.start);
        } else {
            self.converged_since = None;
        }
        self.latest = Some(s);
    }
}

/// Runs sweeps until `stop`, feeding `state`.
pub(super) async fn observe(
    ctx: Arc<SweepCtx>,
    judge: Judge,
    state: Arc<Mutex<ObsState>>,
    stop: Arc<AtomicBool>,
    every: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Sweep>();
    let sem = Arc::new(tokio::sync::Semaphore::new(MAX_SWEEPS_IN_FLIGHT));
    let launcher_state = Arc::clone(&state);
    let launcher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            match Arc::clone(&sem).try_acquire_owned() {
                Ok(permit) => {
                    let (ctx, tx) = (Arc::clone(&ctx), tx.clone());
                    tokio::spawn(async move {
                        let s = sweep(ctx).await;
                        let _ = tx.send(s);
                        drop(permit);
                    });
                }
                Err(_) => lock(&launcher_state).skipped += 1,
            }
        }
    });
    while let Some(s) = rx.recv().await {
        lock(&state).absorb(s, &judge);
    }
    let _ = launcher.await;
}
