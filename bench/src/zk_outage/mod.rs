//! `zk_outage`'s scenario (the program's documentation is in `src/bin/zk_outage.rs`): its
//! flags, the run from a healthy group through the outage to the checks after the failover,
//! with its `steps` report, the `traffic` and what the managers say (`logs`).

mod logs;
mod steps;
mod traffic;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use logs::{health, log_len, log_since};
use redis_failover_client::{Client, NodeAddr, Topology, ZnodePaths};
use redis_failover_tests::manager::{manager_process, read_topology, zk_client, ManagerSet};
use redis_failover_tests::stats::ms;
use redis_failover_tests::writer::{check_lost_acks, Ack};
use redis_failover_tests::{
    free_port, log_tail, unique_root, GuardedChild, NodeRole, RedisGroup, ZkServer,
};
use steps::Steps;
use tokio::runtime::Runtime;
use traffic::{window, Traffic};
use zookeeper_client as zk;

use crate::nodes::node_addr;
use crate::wait::poll_blocking;

/// The nodes that survive the master (node 0).
const SURVIVORS: [usize; 2] = [1, 2];
/// Poll interval of the ROLE checks during the outage.
const ROLE_POLL: Duration = Duration::from_millis(50);

/// Stops ZooKeeper under a healthy group, kills the master during the outage, and checks that
/// nobody is promoted until ZooKeeper is back and that the group then fails over.
#[derive(Parser, Debug)]
#[command(name = "zk_outage", version, long_about = None)]
pub struct Opts {
    /// How long ZooKeeper stays down, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(2..))]
    pub outage_secs: u64,

    /// When the master is killed, in seconds after ZooKeeper went down (must be less than
    /// --outage-secs).
    #[arg(long, default_value_t = 20)]
    pub kill_after_secs: u64,

    /// Traffic before ZooKeeper is stopped, in seconds.
    #[arg(long, default_value_t = 5)]
    baseline_secs: u64,

    /// The managers' --zk-session-timeout-ms [default: the manager's own default].
    #[arg(long)]
    session_ms: Option<u64>,

    /// The redis_node_manager binary [default: next to this executable].
    #[arg(long, value_name = "PATH")]
    pub manager_bin: Option<PathBuf>,

    /// Deadline of every wait, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,

    /// The writer and the reader each send one command per this many ms (at most).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    op_interval_ms: u64,

    /// Where the managers' logs go [default: a new directory under the temp dir, kept].
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
}

/// What the scenario runs with.
pub struct Setup<'a> {
    pub rt: &'a Runtime,
    pub opts: &'a Opts,
    pub zk: &'a ZkServer,
    /// The `redis_node_manager` binary.
    pub bin: &'a Path,
    /// Where the managers' logs go.
    pub dir: &'a Path,
}

/// One manager process of the scenario, with its `/health` address.
struct ManagerProc {
    name: String,
    child: GuardedChild,
    log: PathBuf,
    http: SocketAddr,
}

/// Starts the three managers (`m1`..`m3`), each with an `--http-addr` of its own, logging
/// into the log directory.
fn start_managers(s: &Setup, group: &RedisGroup, root: &str) -> Result<Vec<ManagerProc>, String> {
    let mut flags = ManagerSet::base_flags(&s.zk.connect_string(), &group.addrs(), root);
    if let Some(ms) = s.opts.session_ms {
        flags.extend(["--zk-session-timeout-ms".to_string(), ms.to_string()]);
    }
    (1..=3)
        .map(|i| {
            let name = format!("m{i}");
            let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let log = s.dir.join(format!("manager-{name}.log"));
            // A fresh log: the report reads it from its start.
            let _ = std::fs::remove_file(&log);
            let mut args = flags.clone();
            args.extend([
                "--manager-name".to_string(),
                name.clone(),
                "--http-addr".to_string(),
                http.to_string(),
            ]);
            let child = manager_process(s.bin, &args, "info", Some(&log))
                .map_err(|e| format!("manager {name}: {e}"))?;
            Ok(ManagerProc {
                name,
                child,
                log,
                http,
            })
        })
        .collect()
}

/// Runs the scenario; `Err` lists the failed checks.
pub fn scenario(s: &Setup) -> Result<(), Vec<String>> {
    let deadline = Duration::from_secs(s.opts.timeout_secs);
    let group = RedisGroup::trio();
    let root = unique_root("zk_outage_bench");
    let paths = ZnodePaths::new(&root).map_err(|e| vec![format!("root {root}: {e}")])?;
    let managers = start_managers(s, &group, &root).map_err(|e| vec![e])?;
    let result = scenario_with(s, &group, &root, &paths, &managers, deadline);
    if result.is_err() {
        for m in &managers {
            println!("--- tail of {}:\n{}", m.log.display(), log_tail(&m.log, 25));
        }
    }
    // Managers first (they would otherwise react to the nodes dying), then the trio.
    for m in &managers {
        m.child.terminate(Duration::from_secs(10));
    }
    drop(managers);
    drop(group);
    result
}

/// What the phases of the scenario share.
struct Run<'a> {
    s: &'a Setup<'a>,
    group: &'a RedisGroup,
    root: &'a str,
    zk_connect: String,
    lock_dir: String,
    managers: &'a [ManagerProc],
    deadline: Duration,
    /// The initial master (node 0).
    master: NodeAddr,
    steps: Steps,
}

fn scenario_with(
    s: &Setup,
    group: &RedisGroup,
    root: &str,
    paths: &ZnodePaths,
    managers: &[ManagerProc],
    deadline: Duration,
) -> Result<(), Vec<String>> {
    let mut r = Run {
        s,
        group,
        root,
        zk_connect: s.zk.connect_string(),
        lock_dir: paths.lock(),
        managers,
        deadline,
        master: node_addr(group.node(0).port()),
        steps: Steps::new(),
    };
    println!(
        "zk_outage: ZooKeeper {}, trio {:?} (master {}), 3 redis_node_manager processes ({}), session timeout {}, outage {} s, master killed {} s into it",
        r.zk_connect,
        group.ports(),
        r.master,
        s.bin.display(),
        s.opts
            .session_ms
            .map_or("default".to_string(), |m| format!("{m} ms")),
        s.opts.outage_secs,
        s.opts.kill_after_secs
    );
    let (before, client, traffic) = healthy(&mut r)?;
    let t_kill = outage(&mut r, &client, &traffic);
    let (zkc, new_master, t_back) = zk_back(&mut r, &client, &traffic, &before)?;
    after_failover(&mut r, &zkc, &before, &new_master);
    loss_check(&mut r, traffic, &new_master, t_back, t_kill);
    drop(client);
    if r.steps.failures.is_empty() {
        Ok(())
    } else {
        Err(r.steps.failures)
    }
}

/// Phase 1: the group is healthy (published with both replicas, three lock children); the
/// client's writer and reader start.
fn healthy(r: &mut Run) -> Result<(Topology, Client, Traffic), Vec<String>> {
    // 1. Healthy: published with both replicas, three lock children.
    let (rt, deadline, master, root) = (r.s.rt, r.deadline, &r.master, r.root);
    let zkc = rt.block_on(zk_client(&r.zk_connect));
    let healthy = poll_blocking(deadline, || {
        let t = rt.block_on(read_topology(&zkc, root))?;
        let children = rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(3), zkc.list_children(&r.lock_dir)).await
            })
            .ok()?
            .ok()?;
        (t.master.as_ref() == Some(master) && t.slaves.len() == 2 && children.len() == 3)
            .then_some(t)
    });
    let Some(before) = healthy else {
        return Err(vec![format!(
            "the group was not published with its 2 replicas and 3 managers within {deadline:?}"
        )]);
    };
    let client = rt
        .block_on(async {
            tokio::time::timeout(
                deadline,
                Client::builder(&r.zk_connect).znode_path(root).connect(),
            )
            .await
        })
        .map_err(|_| vec!["Client::connect timed out".to_string()])?
        .map_err(|e| vec![format!("Client::connect: {e}")])?;
    let every = Duration::from_millis(r.s.opts.op_interval_ms);
    r.steps.restart_clock();
    let traffic = {
        let _on_rt = rt.enter();
        Traffic::start(&client, every)
    };
    r.steps.now(&format!(
        "healthy: master {master}, replicas {:?}, epoch {}; writer and reader started",
        before
            .slaves
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        before.epoch
    ));
    health(&r.steps, r.managers);
    std::thread::sleep(Duration::from_secs(r.s.opts.baseline_secs));
    Ok((before, client, traffic))
}

/// Phases 2 and 3: ZooKeeper stops; the roles are watched, the master is killed, the roles
/// are watched until ZooKeeper returns; what the managers logged meanwhile. Returns when the
/// master was killed.
fn outage(r: &mut Run, client: &Client, traffic: &Traffic) -> Instant {
    // 2. ZooKeeper down.
    let (s, group, master) = (r.s, r.group, r.master.clone());
    let log_marks: Vec<u64> = r.managers.iter().map(|m| log_len(&m.log)).collect();
    let (t_stop, t_down) = timed(|| s.zk.stop());
    r.steps.step(
        t_stop,
        &format!(
            "ZooKeeper stopped: SIGTERM (the process was gone {:.0} ms later)",
            ms(t_down - t_stop)
        ),
    );
    r.steps.detail(&format!(
        "before the outage: {}",
        traffic.windows(r.steps.t0, t_down)
    ));
    let mut sub = client.subscribe();
    let stale = poll_blocking(r.deadline, || sub.borrow_and_update().stale_since);
    match stale {
        Some(at) => r.steps.step(
            at,
            "the client notices: its topology is stale (kept, and served from)",
        ),
        None => r.steps.check(false, "the client notices ZooKeeper is gone"),
    }

    // 3. Watch the roles until the kill, kill the master, watch until ZooKeeper returns.
    let kill_at = t_down + Duration::from_secs(s.opts.kill_after_secs);
    let back_at = t_down + Duration::from_secs(s.opts.outage_secs);
    let mut promoted: Vec<String> = Vec::new();
    let mut role_checks = 0u64;
    watch_roles(
        &r.steps,
        group,
        kill_at,
        &[0, 1, 2],
        &mut promoted,
        &mut role_checks,
    );
    let t_kill = Instant::now();
    group.node(0).kill9();
    r.steps
        .step(t_kill, &format!("kill -9 of the master {master}"));
    let (w, rd) = traffic.ok_in(t_down, t_kill);
    r.steps.detail(&format!(
        "ZooKeeper down, master alive ({:.1} s): {}",
        (t_kill - t_down).as_secs_f64(),
        traffic.windows(t_down, t_kill)
    ));
    r.steps.check(
        w > 0 && rd > 0,
        "the client kept writing and reading on the live master while ZooKeeper was down",
    );
    let mid = t_kill + (back_at - t_kill) / 2;
    watch_roles(
        &r.steps,
        group,
        mid,
        &SURVIVORS,
        &mut promoted,
        &mut role_checks,
    );
    r.steps
        .now("half-way between the kill and ZooKeeper's return: the managers say");
    health(&r.steps, r.managers);
    watch_roles(
        &r.steps,
        group,
        back_at,
        &SURVIVORS,
        &mut promoted,
        &mut role_checks,
    );
    r.steps.now(&format!(
        "end of the outage: {role_checks} ROLE checks every {} ms since ZooKeeper went down",
        ROLE_POLL.as_millis()
    ));
    for p in &promoted {
        r.steps.detail(p);
    }
    r.steps.check(
        promoted.is_empty(),
        "no replica became master while ZooKeeper was down",
    );
    logs::report_outage(&mut r.steps, r.managers, &log_marks);
    r.steps.detail(&format!(
        "ZooKeeper down, master dead ({:.1} s): {}",
        (back_at - t_kill).as_secs_f64(),
        traffic.windows(t_kill, Instant::now())
    ));
    t_kill
}

/// Phase 4: ZooKeeper returns; the new master is published, the client follows it, a write
/// is acknowledged. Returns a new ZooKeeper session, the new master and when ZooKeeper came
/// back.
fn zk_back(
    r: &mut Run,
    client: &Client,
    traffic: &Traffic,
    before: &Topology,
) -> Result<(zk::Client, NodeAddr, Instant), Vec<String>> {
    // 4. ZooKeeper back.
    let (rt, deadline, master, root) = (r.s.rt, r.deadline, r.master.clone(), r.root);
    let (t_restart, t_back) = timed(|| r.s.zk.restart());
    r.steps.step(
        t_back,
        &format!(
            "ZooKeeper answers again (same port and data dir; {:.0} ms to start)",
            ms(t_back - t_restart)
        ),
    );
    let zkc = rt.block_on(zk_client(&r.zk_connect));
    let children = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(3), zkc.list_children(&r.lock_dir)).await
    });
    if let Ok(Ok(children)) = children {
        r.steps.now(&format!(
            "lock children now: {} (the old sessions come back with ZooKeeper's data and keep \
             their lock children until they expire, one session timeout after the restart)",
            children.len()
        ));
    }
    let published = poll_blocking(deadline, || {
        let t = rt.block_on(read_topology(&zkc, root))?;
        t.master
            .as_ref()
            .filter(|m| **m != master)
            .map(|_| (Instant::now(), t.clone()))
    });
    let Some((t_published, after)) = published else {
        r.steps.check(
            false,
            &format!("a new master is published within {deadline:?} of ZooKeeper's return"),
        );
        return Err(std::mem::take(&mut r.steps.failures));
    };
    let new_master = after.master.clone().unwrap_or_else(|| master.clone());
    r.steps.step(
        t_published,
        &format!(
            "new master {new_master} published (epoch {} -> {}): {:.0} ms after ZooKeeper came back",
            before.epoch,
            after.epoch,
            ms(t_published - t_back)
        ),
    );
    let followed = poll_blocking(deadline, || {
        (client.topology().topology.master.as_ref() == Some(&new_master)).then(Instant::now)
    });
    match followed {
        Some(t) => r.steps.step(
            t,
            &format!(
                "the client's topology names {new_master}: {:.0} ms after ZooKeeper came back",
                ms(t - t_back)
            ),
        ),
        None => r.steps.check(false, "the client follows the new master"),
    }
    let first_write = poll_blocking(deadline, || traffic.first_write_from(t_back));
    match &first_write {
        Some(o) => r.steps.step(
            o.at,
            &format!(
                "first write acknowledged since ZooKeeper came back (seq:{}, client's master {}, sent {:.0} ms after): {:.0} ms after ZooKeeper came back",
                o.seq,
                o.node.as_ref().map_or("none".to_string(), ToString::to_string),
                ms(o.sent.saturating_duration_since(t_back)),
                ms(o.at - t_back)
            ),
        ),
        None => r.steps.check(false, "a write is acknowledged after ZooKeeper's return"),
    }
    logs::report_return(&r.steps, r.managers, t_back);
    Ok((zkc, new_master, t_back))
}

/// Phase 5: checks after the failover; the old master restarts and must rejoin as a replica.
fn after_failover(r: &mut Run, zkc: &zk::Client, before: &Topology, new_master: &NodeAddr) {
    // 5. Checks after the failover.
    let (rt, deadline, master, root, group) =
        (r.s.rt, r.deadline, r.master.clone(), r.root, r.group);
    std::thread::sleep(Duration::from_secs(1));
    health(&r.steps, r.managers);
    let roles: Vec<Option<NodeRole>> = SURVIVORS.iter().map(|i| group.node(*i).role()).collect();
    let masters = roles
        .iter()
        .filter(|r| **r == Some(NodeRole::Master))
        .count();
    r.steps.detail(&format!(
        "survivors: {}",
        SURVIVORS
            .iter()
            .zip(&roles)
            .map(|(i, r)| format!("{} {r:?}", group.node(*i).addr()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    r.steps
        .check(masters == 1, "exactly one master among the survivors");
    let final_topo = rt.block_on(read_topology(zkc, root));
    let epoch_now = final_topo.as_ref().map_or(0, |t| t.epoch);
    r.steps.check(
        epoch_now == before.epoch + 1,
        &format!(
            "one failover in all (epoch {} -> {epoch_now})",
            before.epoch
        ),
    );
    let switches: usize = r
        .managers
        .iter()
        .map(|m| log_since(&m.log, 0).matches("+switch-master").count())
        .sum();
    r.steps.check(
        switches == 1,
        &format!("one +switch-master in the managers' logs ({switches})"),
    );

    // The old master comes back (as a master, with whatever it had) and must be demoted.
    let t_old = Instant::now();
    group.node(0).restart(None);
    r.steps.step(
        t_old,
        &format!("old master {master} restarted (as a master)"),
    );
    let rejoined = poll_blocking(deadline, || {
        let t = rt.block_on(read_topology(zkc, root))?;
        (t.master.as_ref() == Some(new_master) && t.slaves.contains(&master)).then(Instant::now)
    });
    match rejoined {
        Some(t) => r.steps.step(
            t,
            &format!(
                "{master} listed as a replica of {new_master}: {:.0} ms after its restart",
                ms(t - t_old)
            ),
        ),
        None => r.steps.check(false, "the old master rejoins as a replica"),
    }
}

/// Phase 6: the traffic stops; every acknowledged write must be on the new master, but for
/// those acknowledged just before the master's `kill -9`.
fn loss_check(
    r: &mut Run,
    traffic: Traffic,
    new_master: &NodeAddr,
    t_back: Instant,
    t_kill: Instant,
) {
    // 6. Traffic stops; every acknowledged write must be on the new master.
    let rt = r.s.rt;
    let (writes, reads) = rt.block_on(traffic.stop());
    let t_end = Instant::now();
    r.steps.detail(&format!(
        "after ZooKeeper came back: writes {}; reads {}",
        window(&writes, t_back, t_end),
        window(&reads, t_back, t_end)
    ));
    let acked = writes.acks.len();
    let (lost_async, lost_other): (Vec<Ack>, Vec<Ack>) =
        match rt.block_on(check_lost_acks(new_master, &writes)) {
            Err(e) => {
                r.steps.check(false, &e);
                (Vec::new(), Vec::new())
            }
            Ok(missing) => missing.into_iter().partition(|a| a.at <= t_kill),
        };
    r.steps.detail(&format!(
        "{acked} writes acknowledged in all; missing on {new_master}: {} acknowledged before the kill -9 (async replication window{}), {} others",
        lost_async.len(),
        lost_async
            .iter()
            .map(|a| ms(t_kill - a.at))
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
            .map(|x| format!(", up to {x:.1} ms before it"))
            .unwrap_or_default(),
        lost_other.len()
    ));
    r.steps.check(
        lost_other.is_empty(),
        "no acknowledged write lost outside the async-replication window of the master's crash",
    );
}

/// Polls `ROLE` (`INFO replication`) of `nodes` every [`ROLE_POLL`] until `until`; a node
/// other than the initial master (node 0) answering master is recorded in `promoted`.
fn watch_roles(
    steps: &Steps,
    group: &RedisGroup,
    until: Instant,
    nodes: &[usize],
    promoted: &mut Vec<String>,
    checks: &mut u64,
) {
    while Instant::now() < until {
        for &i in nodes {
            let role = group.node(i).role();
            *checks += 1;
            if i != 0 && role == Some(NodeRole::Master) && promoted.len() < 10 {
                promoted.push(format!(
                    "{} answered master at {}",
                    group.node(i).addr(),
                    steps.at(Instant::now())
                ));
            }
        }
        std::thread::sleep(ROLE_POLL.min(until.saturating_duration_since(Instant::now())));
    }
}

/// Runs `f`; when it started and when it returned.
fn timed(f: impl FnOnce()) -> (Instant, Instant) {
    let start = Instant::now();
    f();
    (start, Instant::now())
}
