//! One run of a partition [`Scenario`]: the hosts and processes (what watches the trio is
//! `ours` or `sentinel`), the writers on their hosts, the fault and the heal, convergence, and
//! the loss check.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_failover_client::NodeAddr;
use tokio::sync::oneshot;

use super::ours::Ours;
use super::report::{ClientReport, Report};
use super::sentinel::SentinelSide;
use super::{Fault, Options, Role, Scenario, System, Trigger};
use crate::netns::{available, HostTask, Net};
use crate::writer::{check_lost_acks_in, SeqWriter, WriteLog, Writer};
use crate::{free_port, wait_until_async, NodeRole, RedisNode};

/// The Redis hosts; the first one's node is the first master.
const REDIS_HOSTS: [&str; 3] = ["r0", "r1", "r2"];
const MANAGER_HOSTS: [&str; 3] = ["m0", "m1", "m2"];
/// The application clients: name, host.
const CLIENTS: [(&str, &str); 2] = [("near", "r0"), ("far", "app")];
/// Bound on the first publication and on a client's first acknowledgement.
pub(super) const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Writes after the group converged, before the writers stop.
const AFTER_CONVERGED: Duration = Duration::from_secs(1);
/// How often the published topology is read during the fault.
pub(super) const WATCH_EVERY: Duration = Duration::from_millis(20);

/// The host of manager (or sentinel) `i`.
pub(super) fn manager_host(o: &Options, i: usize) -> &'static str {
    if o.managers_on_own_hosts {
        MANAGER_HOSTS[i]
    } else {
        "zk"
    }
}

/// The hosts of `role`; `leader`: the leading manager's index, when known.
fn hosts_of(o: &Options, role: Role, leader: Option<usize>) -> Vec<&'static str> {
    match role {
        Role::Leader => leader
            .map(|i| vec![manager_host(o, i.min(2))])
            .unwrap_or_default(),
        Role::Master => vec![REDIS_HOSTS[0]],
        Role::Replica(i) => vec![REDIS_HOSTS[1 + i.min(1)]],
        Role::Replicas => REDIS_HOSTS[1..].to_vec(),
        Role::Zk => vec!["zk"],
        Role::Manager(i) => vec![manager_host(o, i.min(2))],
        Role::Managers => {
            let mut v: Vec<&str> = (0..3).map(|i| manager_host(o, i)).collect();
            v.dedup();
            v
        }
        Role::App => vec!["app"],
    }
}

/// Applies `sc`'s fault once.
fn apply(net: &Net, o: &Options, sc: &Scenario) -> Result<crate::netns::Cut, String> {
    apply_fault(net, o, &sc.fault, sc.mode, None)
}

/// Applies `fault` once, `leader` naming the leading manager for [`Role::Leader`].
fn apply_fault(
    net: &Net,
    o: &Options,
    fault: &Fault,
    mode: crate::netns::Mode,
    leader: Option<usize>,
) -> Result<crate::netns::Cut, String> {
    let hosts_of = |role| hosts_of(o, role, leader);
    match fault {
        Fault::Isolate(role) => {
            let hosts = hosts_of(*role);
            if hosts.is_empty() {
                return Err(format!("{fault:?}: no host for {role:?}"));
            }
            let names: Vec<&str> = net
                .hosts()
                .iter()
                .map(|h| h.name.as_str())
                .filter(|n| !hosts.contains(n))
                .collect();
            // Isolating one host cuts it from the test process too; several are cut from
            // the rest only (they still see each other).
            match hosts.as_slice() {
                [one] => net.isolate(one, mode),
                _ => net.cut_between(&hosts, &names, mode),
            }
        }
        Fault::Between(a, b) => {
            let side: Vec<&str> = a.iter().flat_map(|r| hosts_of(*r)).collect();
            let others: Vec<&str> = b.iter().flat_map(|r| hosts_of(*r)).collect();
            if side.is_empty() || others.is_empty() {
                return Err(format!("{fault:?}: a side has no host"));
            }
            net.cut_between(&side, &others, mode)
        }
    }
}

/// What watches the trio.
enum Plane {
    Ours(Box<Ours>),
    Sentinel(SentinelSide),
}

/// How a client on a host builds its writer (sent to the host's thread).
#[derive(Clone)]
enum ClientSpec {
    Ours {
        connect: String,
        root: String,
        synchronous: Option<(usize, Duration)>,
    },
    Sentinel {
        sentinels: Vec<NodeAddr>,
    },
}

impl Plane {
    async fn start(
        net: &Net,
        o: &Options,
        sc: &Scenario,
        nodes: &[RedisNode],
    ) -> Result<Plane, String> {
        Ok(match o.system {
            System::Ours => Plane::Ours(Box::new(Ours::start(net, o, sc, nodes).await?)),
            System::Sentinel => Plane::Sentinel(SentinelSide::start(net, o, nodes).await?),
        })
    }

    fn client_spec(&self, o: &Options) -> ClientSpec {
        match self {
            Plane::Ours(ours) => {
                let (connect, root) = ours.connect_info();
                ClientSpec::Ours {
                    connect,
                    root,
                    synchronous: o.synchronous,
                }
            }
            Plane::Sentinel(s) => ClientSpec::Sentinel {
                sentinels: s.addrs(),
            },
        }
    }

    async fn converged(&self, nodes: &[RedisNode]) -> Option<usize> {
        match self {
            Plane::Ours(ours) => ours.converged(nodes).await,
            Plane::Sentinel(s) => s.converged(nodes).await,
        }
    }

    fn watch(&self, w: Watch) -> tokio::task::JoinHandle<Option<Instant>> {
        match self {
            Plane::Ours(ours) => ours.watch(w),
            Plane::Sentinel(s) => s.watch(w),
        }
    }

    fn exited(&self) -> Option<String> {
        match self {
            Plane::Ours(ours) => ours.exited(),
            Plane::Sentinel(s) => s.exited(),
        }
    }
}

/// A client writing on its host, with the signal to stop it.
struct RunningClient {
    name: &'static str,
    host: &'static str,
    namespace: String,
    task: HostTask<Result<WriteLog, String>>,
    stop: oneshot::Sender<()>,
}

/// Writes through `w` until `stop_rx` fires (or its sender is gone); says on `ready_tx` when
/// the first write was acknowledged.
async fn drive<W: SeqWriter>(
    w: W,
    o: (Option<Duration>, Duration),
    ready_tx: oneshot::Sender<()>,
    stop_rx: oneshot::Receiver<()>,
) -> WriteLog {
    let (interval, bound) = o;
    let writer = Writer::spawn(w, interval, bound);
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    if writer
        .wait_ack_after(Instant::now(), deadline)
        .await
        .is_some()
    {
        let _ = ready_tx.send(());
    }
    // Also ends when the runner is gone (the sender dropped).
    let _ = stop_rx.await;
    writer.stop(bound + Duration::from_secs(1)).await
}

/// Starts a writer (keys under `<name>:`) on `host` as `spec` says, writing back to back;
/// waits for its first acknowledgement.
async fn start_client(
    net: &Net,
    (name, host): (&'static str, &'static str),
    spec: ClientSpec,
    o: &Options,
) -> Result<RunningClient, String> {
    let namespace = format!("{name}:");
    let (ready_tx, ready_rx) = oneshot::channel::<()>();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let ns = namespace.clone();
    let bounds = (o.write_interval, o.write_bound);
    let task = net.host(host)?.spawn(name, move || async move {
        let err = |e: String| format!("client {name}: {e}");
        Ok(match spec {
            ClientSpec::Ours {
                connect,
                root,
                synchronous,
            } => {
                let w = Ours::writer(connect, root, ns, synchronous)
                    .await
                    .map_err(err)?;
                drive(w, bounds, ready_tx, stop_rx).await
            }
            ClientSpec::Sentinel { sentinels } => {
                let w = SentinelSide::writer(&sentinels, ns).map_err(err)?;
                drive(w, bounds, ready_tx, stop_rx).await
            }
        })
    })?;
    match tokio::time::timeout(START_TIMEOUT, ready_rx).await {
        Ok(Ok(())) => {}
        // The writer ended before its first acknowledgement: say why.
        Ok(Err(_)) => {
            let why = match task.join(Duration::from_secs(5)).await {
                Ok(Err(e)) | Err(e) => e,
                Ok(Ok(_)) => "it stopped".to_string(),
            };
            return Err(format!("client {name} on {host}: {why}"));
        }
        Err(_) => {
            return Err(format!(
                "client {name} on {host}: no acknowledged write within {START_TIMEOUT:?}"
            ))
        }
    }
    Ok(RunningClient {
        name,
        host,
        namespace,
        task,
        stop,
    })
}

/// Tells a watcher to look one last time and end: set by [`Stop::now`], or when dropped (a
/// run that ends early, or panics, leaves no watcher behind).
#[derive(Default)]
pub(super) struct Stop(Arc<AtomicBool>);

/// What a plane watches for from the fault on: the first master other than `first`, until
/// `end` or until `stop` is set (then after a last look).
pub(super) struct Watch {
    pub(super) first: NodeAddr,
    pub(super) end: Instant,
    pub(super) stop: Arc<AtomicBool>,
}

impl Watch {
    /// Whether to stop looking.
    pub(super) fn over(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || Instant::now() >= self.end
    }
}

impl Stop {
    pub(super) fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }

    fn now(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        self.now();
    }
}

/// The node every other node replicates from (link up), when exactly one answers master.
pub(super) fn one_master_followed(nodes: &[RedisNode]) -> Option<usize> {
    let roles: Vec<Option<NodeRole>> = nodes.iter().map(RedisNode::role).collect();
    let masters: Vec<usize> = (0..nodes.len())
        .filter(|i| roles[*i] == Some(NodeRole::Master))
        .collect();
    let [m] = masters.as_slice() else {
        return None;
    };
    let port = nodes[*m].port();
    let all_follow = roles.iter().enumerate().all(|(i, r)| {
        i == *m
            || *r
                == Some(NodeRole::Replica {
                    master_port: port,
                    link_up: true,
                })
    });
    all_follow.then_some(*m)
}

/// Runs `sc` with `o` (see the module documentation of [`super`]). `Err` when the harness
/// cannot run (no root, no iptables) or something could not start; panics when a bounded
/// wait (publication, convergence) runs out.
pub async fn run(o: &Options, sc: &Scenario) -> Result<Report, String> {
    available().map_err(|e| format!("the partition harness cannot run here: {e}"))?;
    std::fs::create_dir_all(&o.log_dir).map_err(|e| format!("{}: {e}", o.log_dir.display()))?;
    let mut names: Vec<&str> = REDIS_HOSTS.to_vec();
    names.extend(["zk", "app"]);
    if o.managers_on_own_hosts {
        names.extend(MANAGER_HOSTS);
    }
    // Declared first: dropped last, after every process on it.
    let net = Arc::new(Net::new(&names)?);
    let redis_dir = o.log_dir.join("redis");
    let mut nodes: Vec<RedisNode> = Vec::new();
    for (i, h) in REDIS_HOSTS.iter().enumerate() {
        let master = nodes.first().map(RedisNode::node_addr);
        let master = if i == 0 { None } else { master.as_ref() };
        let place = net.host(h)?.place();
        nodes.push(RedisNode::start_at(
            &place,
            &redis_dir,
            free_port(),
            master,
            &[],
        )?);
    }
    let plane = Plane::start(&net, o, sc, &nodes).await?;
    let first_master = nodes[0].node_addr();
    let spec = plane.client_spec(o);
    let mut clients = Vec::new();
    for c in CLIENTS {
        clients.push(start_client(&net, c, spec.clone(), o).await?);
    }
    tokio::time::sleep(o.warm_up).await;

    // The fault, watched from here: the first topology with another master.
    let cut_at = Instant::now();
    // Stopped once the group has converged, or when this run ends early.
    let stop_watch = Stop::default();
    let watch = plane.watch(Watch {
        first: first_master.clone(),
        end: Instant::now() + sc.duration + o.converge_timeout,
        stop: stop_watch.flag(),
    });
    let cuts = {
        let (net, o2, sc2) = (Arc::clone(&net), o.clone(), sc.clone());
        tokio::task::spawn_blocking(move || match sc2.flap {
            Some((on, off)) => net.flap(|n| apply(n, &o2, &sc2), on, off, sc2.duration),
            None => {
                apply(&net, &o2, &sc2)?;
                std::thread::sleep(sc2.duration);
                Ok(1)
            }
        })
    };
    // The second fault, once its trigger is seen (while the first lasts).
    let second = match (&sc.then, &plane) {
        (None, _) => Ok(None),
        (Some(then), Plane::Ours(ours)) => {
            let Trigger::PromotionRecorded = then.when;
            let leader = wait_until_async(sc.duration, "a promotion recorded", || {
                ours.promotion_recorded()
            })
            .await;
            let (net, o2, fault, mode) = (Arc::clone(&net), o.clone(), then.fault.clone(), sc.mode);
            tokio::task::spawn_blocking(move || {
                apply_fault(&net, &o2, &fault, mode, Some(leader)).map(|_| Some(leader))
            })
            .await
            .map_err(|e| format!("the second fault's thread: {e}"))?
        }
        (Some(_), Plane::Sentinel(_)) => Err(format!(
            "{}: its second fault needs our managers (no Sentinel equivalent)",
            sc.name
        )),
    };
    // The fault's thread ends after the fault's duration: then the heal.
    let cuts = cuts.await.map_err(|e| format!("the fault's thread: {e}"));
    let healed = {
        let net = Arc::clone(&net);
        tokio::task::spawn_blocking(move || net.heal_all()).await
    };
    let heal_at = Instant::now();
    let cuts = cuts?? + u32::from(second?.is_some());
    healed.map_err(|e| format!("the heal's thread: {e}"))??;

    let m = wait_until_async(
        o.converge_timeout,
        "the group to converge after the heal",
        || plane.converged(&nodes),
    )
    .await;
    let converged_after_heal = heal_at.elapsed();
    stop_watch.now();
    let published_at = watch.await.map_err(|e| format!("the watcher: {e}"))?;
    tokio::time::sleep(AFTER_CONVERGED).await;

    let final_master = nodes[m].node_addr();
    let mut reports = Vec::new();
    for c in clients {
        let _ = c.stop.send(());
        let log = c.task.join(o.write_bound * 2 + START_TIMEOUT).await??;
        let lost = check_lost_acks_in(&final_master, &c.namespace, &log).await?;
        reports.push(ClientReport {
            name: c.name.to_string(),
            host: c.host.to_string(),
            acked: log.acks.len(),
            errors: log.errors.len(),
            lost: lost.len(),
            last_lost_after_cut: lost
                .iter()
                .map(|a| a.at.saturating_duration_since(cut_at))
                .max(),
        });
    }
    if let Some(e) = plane.exited() {
        return Err(e);
    }
    Ok(Report {
        scenario: sc.name.to_string(),
        system: o.system.name().to_string(),
        fault: format!(
            "{:?} {:?} for {:?}, flap {:?}{}",
            sc.fault,
            sc.mode,
            sc.duration,
            sc.flap,
            sc.then.as_ref().map_or(String::new(), |t| format!(
                ", then on {:?}: {:?}",
                t.when, t.fault
            ))
        ),
        first_master: first_master.to_string(),
        final_master: final_master.to_string(),
        published_after_cut: published_at.map(|t| t.saturating_duration_since(cut_at)),
        converged_after_heal,
        cuts,
        clients: reports,
        log_dir: o.log_dir.clone(),
    })
}
