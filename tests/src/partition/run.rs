//! One run of a partition [`Scenario`]: the hosts and processes, the writers on their hosts,
//! the fault and the heal, convergence, and the loss check.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_failover_client::{Client, NodeAddr, Topology};
use tokio::sync::oneshot;
use zookeeper_client as zk;

use super::report::{ClientReport, Report};
use super::{Fault, Options, Role, Scenario};
use crate::manager::{read_topology, wait_topology, zk_client, ManagerMode, ManagerSet};
use crate::netns::{available, HostTask, Net};
use crate::writer::{check_lost_acks_in, ClientWriter, WriteLog, Writer};
use crate::{free_port, unique_root, wait_until_async, NodeRole, RedisNode, ZkServer};

/// The Redis hosts; the first one's node is the first master.
const REDIS_HOSTS: [&str; 3] = ["r0", "r1", "r2"];
const MANAGER_HOSTS: [&str; 3] = ["m0", "m1", "m2"];
/// The application clients: name, host.
const CLIENTS: [(&str, &str); 2] = [("near", "r0"), ("far", "app")];
/// Bound on the first publication and on a client's first acknowledgement.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Writes after the group converged, before the writers stop.
const AFTER_CONVERGED: Duration = Duration::from_secs(1);
/// How often the published topology is read during the fault.
const WATCH_EVERY: Duration = Duration::from_millis(20);

fn manager_host(o: &Options, i: usize) -> &'static str {
    if o.managers_on_own_hosts {
        MANAGER_HOSTS[i]
    } else {
        "zk"
    }
}

/// The hosts of `role`.
fn hosts_of(o: &Options, role: Role) -> Vec<&'static str> {
    match role {
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

/// Applies `fault` once.
fn apply(net: &Net, o: &Options, sc: &Scenario) -> Result<crate::netns::Cut, String> {
    match &sc.fault {
        Fault::Isolate(role) => {
            let hosts = hosts_of(o, *role);
            let names: Vec<&str> = net
                .hosts()
                .iter()
                .map(|h| h.name.as_str())
                .filter(|n| !hosts.contains(n))
                .collect();
            // Isolating one host cuts it from the test process too; several are cut from
            // the rest only (they still see each other).
            match hosts.as_slice() {
                [one] => net.isolate(one, sc.mode),
                _ => net.cut_between(&hosts, &names, sc.mode),
            }
        }
        Fault::Between(a, b) => {
            let side: Vec<&str> = a.iter().flat_map(|r| hosts_of(o, *r)).collect();
            let others: Vec<&str> = b.iter().flat_map(|r| hosts_of(o, *r)).collect();
            net.cut_between(&side, &others, sc.mode)
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

/// Starts a [`Client`] (keys under `<name>:`) and a back-to-back [`Writer`] on `host`; waits
/// for its first acknowledgement.
fn start_client(
    net: &Net,
    (name, host): (&'static str, &'static str),
    connect: &str,
    root: &str,
    o: &Options,
) -> Result<RunningClient, String> {
    let namespace = format!("{name}:");
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let (connect, root, ns) = (connect.to_string(), root.to_string(), namespace.clone());
    let (interval, bound, synchronous) = (o.write_interval, o.write_bound, o.synchronous);
    let task = net.host(host)?.spawn(name, move || async move {
        let mut builder = Client::builder(connect).znode_path(&root).namespace(ns);
        if let Some((n, timeout)) = synchronous {
            builder = builder.synchronous(n, timeout);
        }
        let client = builder
            .connect()
            .await
            .map_err(|e| format!("client {name}: {e}"))?;
        let writer = Writer::spawn(ClientWriter(client), interval, bound);
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
        Ok(writer.stop(bound + Duration::from_secs(1)).await)
    })?;
    ready_rx.recv_timeout(START_TIMEOUT).map_err(|_| {
        format!("client {name} on {host}: no acknowledged write within {START_TIMEOUT:?}")
    })?;
    Ok(RunningClient {
        name,
        host,
        namespace,
        task,
        stop,
    })
}

/// The node every other node replicates from (link up), when exactly one answers master
/// and ZooKeeper publishes it with the others as replicas.
async fn converged(nodes: &[RedisNode], session: &zk::Client, root: &str) -> Option<usize> {
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
    let t = read_topology(session, root).await?;
    (all_follow && t.master == Some(nodes[*m].node_addr()) && t.slaves.len() == nodes.len() - 1)
        .then_some(*m)
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
    let zk = ZkServer::start_at(&net.host("zk")?.place());
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
    let root = unique_root(sc.name);
    let addrs: Vec<String> = nodes.iter().map(RedisNode::addr).collect();
    let mut flags = ManagerSet::base_flags(&zk.connect_string(), &addrs, &root);
    flags.extend(["--zk-session-timeout-ms".into(), o.session_ms.to_string()]);
    if let Some(d) = o.down_after_ms {
        flags.extend(["--down-after-ms".into(), d.to_string()]);
    }
    if let Some((n, _)) = o.synchronous {
        flags.extend(["--synchronous-replicas".into(), n.to_string()]);
    }
    flags.extend(o.manager_flags.iter().cloned());
    let mut managers = ManagerSet::new(ManagerMode::Process(o.manager_bin.clone()), flags)
        .log_to(&o.log_dir)
        .rust_log(&o.manager_log);
    for i in 0..3 {
        let place = net.host(manager_host(o, i))?.place();
        managers.add_at(Some(&format!("m{i}")), &place)?;
    }
    let session = zk_client(&zk.connect_string()).await;
    let first_master = nodes[0].node_addr();
    let first = Some(first_master.clone());
    wait_topology(&session, &root, START_TIMEOUT, "the group published", |t| {
        t.master == first && t.slaves.len() == 2
    })
    .await;

    let mut clients = Vec::new();
    for c in CLIENTS {
        clients.push(start_client(&net, c, &zk.connect_string(), &root, o)?);
    }
    tokio::time::sleep(o.warm_up).await;

    // The fault, watched from here: the first topology with another master.
    let cut_at = Instant::now();
    let watch = {
        let (session, root, first) = (session.clone(), root.clone(), first.clone());
        let until = sc.duration + o.converge_timeout;
        tokio::spawn(async move { first_new_master(&session, &root, &first, until).await })
    };
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
        .await
        .map_err(|e| format!("the fault's thread: {e}"))
    };
    let healed = {
        let net = Arc::clone(&net);
        tokio::task::spawn_blocking(move || net.heal_all()).await
    };
    let heal_at = Instant::now();
    let cuts = cuts??;
    healed.map_err(|e| format!("the heal's thread: {e}"))??;

    let m = wait_until_async(
        o.converge_timeout,
        "the group to converge after the heal",
        || converged(&nodes, &session, &root),
    )
    .await;
    let converged_after_heal = heal_at.elapsed();
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
    if let Some(e) = managers.exited() {
        return Err(e);
    }
    Ok(Report {
        scenario: sc.name.to_string(),
        fault: format!(
            "{:?} {:?} for {:?}, flap {:?}",
            sc.fault, sc.mode, sc.duration, sc.flap
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

/// When `<root>/nodes` first names a master other than `first` (polled for up to `until`).
async fn first_new_master(
    session: &zk::Client,
    root: &str,
    first: &Option<NodeAddr>,
    until: Duration,
) -> Option<Instant> {
    let end = Instant::now() + until;
    while Instant::now() < end {
        let t: Option<Topology> = read_topology(session, root).await;
        if t.is_some_and(|t| t.master.is_some() && t.master != *first) {
            return Some(Instant::now());
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
    None
}
