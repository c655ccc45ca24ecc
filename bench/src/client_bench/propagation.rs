//! Part 2 of `client_bench`: how fast many `Client`s (one ZooKeeper session each) follow a
//! topology change written by hand: t0 -> their first `INCR` acknowledged by the new master,
//! t0 -> `subscribe()` names it, and a bare ZooKeeper data watch as the floor.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use redis_failover_client::{Client, NodeAddr, Topology, TopologyView};
use redis_failover_tests::manager as harness;
use redis_failover_tests::stats::ms;
use redis_failover_tests::{connect_async, parse_role, unique_root, NodeRole};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use zookeeper_client as zk;

use super::{close_clients, publish, verdict, wait_until, zk_connections, Env, Opts, POLL};
use crate::nodes::node_addr;
use crate::stats::{fmt_dist, pct_dur};

/// The value every client's counter key gets on the new master before a change: an `INCR`
/// answered with at least this much was executed by the new master.
const MARKER: i64 = 1_000_000_000;
/// Propagation target: p99 below this.
const TARGET_PROPAGATION_P99: Duration = Duration::from_millis(100);

/// What one client did during one change.
struct ClientOutcome {
    /// t0 -> the first INCR acknowledged by the new master.
    routed: Option<Duration>,
    /// t0 -> `subscribe()` showed the new master.
    notified: Option<Duration>,
    /// The new master acknowledged an INCR before t0 (would be a bug).
    early: bool,
    /// The last INCR acknowledged by the old master, relative to t0 (None: none after t0).
    last_old_after_t0: Option<Duration>,
    errors: u64,
    first_error: Option<String>,
}

/// What the changes of part 2 work with.
struct Prop<'a> {
    env: &'a Env<'a>,
    deadline: Duration,
    root: String,
    /// `<root>/nodes`.
    path: String,
    addrs: Vec<NodeAddr>,
    /// A connection to each node, for the bench's own commands.
    admin: Vec<MultiplexedConnection>,
    /// A bare data watch on a session of its own, as a reference for the clients' watchers.
    zk_watch: zk::Client,
    clients: Vec<Client>,
}

/// The figures of one change.
struct Change {
    routed: Vec<Duration>,
    notified: Vec<Duration>,
    zk_seen: Option<Duration>,
    problem: bool,
}

/// Part 2: many clients follow topology changes written by hand.
pub(super) async fn run(env: &Env<'_>) -> Result<(), String> {
    let o = env.o;
    let deadline = Duration::from_secs(o.timeout_secs);
    let root = unique_root("client_bench_prop");
    let addrs: Vec<NodeAddr> = env.ports.iter().map(|p| node_addr(*p)).collect();
    let mut admin = Vec::new();
    for a in &addrs {
        admin.push(connect_async(a, deadline).await?);
    }
    // The trio starts with node 0 as master; node 2 stays a replica throughout.
    let mut epoch = 1u64;
    let mut master = 0usize;
    let zk_watch = harness::zk_client(env.zk_connect).await;
    publish(&env.zk, &root, &settled(&addrs, master, epoch), deadline).await?;
    print_legend(o, &addrs);

    let zk_before = zk_connections(env.zk_port).await;
    let clients = connect_clients(env, &root, deadline).await?;
    let mut p = Prop {
        env,
        deadline,
        path: format!("{root}/nodes"),
        root,
        addrs,
        admin,
        zk_watch,
        clients,
    };
    let mut all_routed = Vec::new();
    let mut all_notified = Vec::new();
    let mut all_zk = Vec::new();
    let mut worst_p99 = Duration::ZERO;
    let mut problems = 0usize;
    for k in 1..=o.changes {
        let new = if master == 0 { 1 } else { 0 };
        let c = one_change(&p, k, master, new, &mut epoch).await?;
        problems += usize::from(c.problem);
        if let Some(p99) = pct_dur(&c.routed, 0.99) {
            worst_p99 = worst_p99.max(p99);
        }
        all_routed.extend(c.routed);
        all_notified.extend(c.notified);
        all_zk.extend(c.zk_seen);
        settle(&mut p, master, new, &mut epoch).await?;
        master = new;
    }

    println!();
    println!(
        "  All {} change(s) x {} clients ({} / {} samples):",
        o.changes,
        p.clients.len(),
        all_routed.len(),
        all_notified.len()
    );
    println!("    routed  : {}", fmt_dist(&all_routed));
    println!("    notified: {}", fmt_dist(&all_notified));
    println!("    zk watch: {}", fmt_dist(&all_zk));
    let pooled = pct_dur(&all_routed, 0.99);
    let met = problems == 0 && pooled.is_some_and(|p| p < TARGET_PROPAGATION_P99);
    println!(
        "    target routed p99 < {} ms: {} (pooled p99 {}, worst per-change p99 {:.2} ms{})",
        TARGET_PROPAGATION_P99.as_millis(),
        verdict(met),
        pooled.map_or("n/a".to_string(), |p| format!("{:.2} ms", ms(p))),
        ms(worst_p99),
        if problems > 0 {
            format!("; {problems} change(s) with a PROBLEM")
        } else {
            String::new()
        }
    );
    close_clients(p.clients, env.zk_port, zk_before).await;
    if problems > 0 {
        return Err(format!("{problems} change(s) did not complete cleanly"));
    }
    Ok(())
}

/// What part 2 measures, and how.
fn print_legend(o: &Opts, addrs: &[NodeAddr]) {
    println!(
        "Part 2: topology change propagation: {} Client instances (one ZooKeeper session each), \
         {} change(s) alternating the master between {} and {}; topology rewritten with write_raw \
         at t0",
        o.clients, o.changes, addrs[0], addrs[1]
    );
    println!(
        "  routed   = t0 -> first `INCR <client key>` acknowledged by the new master (each client \
         sends INCR every {} ms, before and after t0; its key holds {MARKER} on the new master \
         only, so a reply >= {MARKER} proves the new master executed it; checked afterwards: \
         exactly {MARKER} + 1 on the new master for every client)",
        o.write_every_ms
    );
    println!("  notified = t0 -> client.subscribe() holds a topology naming the new master");
    println!(
        "  zk watch = t0 -> a bare zookeeper-client data watch in this process (own session) \
         reads the new master (the floor for `notified`: event + one read)"
    );
    println!(
        "  t0 = just before write_raw (which costs mkdir + create + set_data round trips to ZooKeeper)"
    );
}

/// `--clients` clients on `root`, connected at once (one ZooKeeper session each).
async fn connect_clients(
    env: &Env<'_>,
    root: &str,
    deadline: Duration,
) -> Result<Vec<Client>, String> {
    let n = env.o.clients;
    let started_at = Instant::now();
    let mut connecting = JoinSet::new();
    for i in 0..n {
        let builder = Client::builder(env.zk_connect).znode_path(root);
        connecting
            .spawn(async move { (i, tokio::time::timeout(deadline, builder.connect()).await) });
    }
    let mut slots: Vec<Option<Client>> = (0..n).map(|_| None).collect();
    while let Some(r) = connecting.join_next().await {
        let (i, c) = r.map_err(|e| format!("a connect task failed: {e}"))?;
        let c = c
            .map_err(|_| format!("Client::connect #{i} timed out"))?
            .map_err(|e| format!("Client::connect #{i}: {e}"))?;
        slots[i as usize] = Some(c);
    }
    let clients: Vec<Client> = slots.into_iter().flatten().collect();
    println!(
        "  {} clients connected in {:.0} ms",
        clients.len(),
        ms(started_at.elapsed())
    );
    println!();
    Ok(clients)
}

/// Change `k`: node `new` becomes master for real, every client's write loop runs, the
/// topology naming it is written at t0 (epoch + 1); measures and prints the change.
async fn one_change(
    p: &Prop<'_>,
    k: u32,
    master: usize,
    new: usize,
    epoch: &mut u64,
) -> Result<Change, String> {
    let (o, deadline, clients) = (p.env.o, p.deadline, &p.clients);
    let (old_addr, new_addr) = (p.addrs[master].clone(), p.addrs[new].clone());

    // Steady state: every client follows the settled topology.
    let settled_epoch = *epoch;
    wait_until(
        deadline,
        "every client to read the settled topology",
        || {
            clients
                .iter()
                .all(|c| c.topology().topology.epoch == settled_epoch)
        },
    )
    .await?;
    // Make the new master a master for real, and give it the marker values.
    let mut new_admin = p.admin[new].clone();
    redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query_async::<()>(&mut new_admin)
        .await
        .map_err(|e| format!("REPLICAOF NO ONE on {new_addr}: {e}"))?;
    wait_role(&p.admin[new], &new_addr, deadline, |r| {
        r == NodeRole::Master
    })
    .await?;
    let keys: Vec<String> = (0..o.clients).map(|i| format!("cb:prop:{k}:{i}")).collect();
    let pairs: Vec<(&str, i64)> = keys.iter().map(|k| (k.as_str(), MARKER)).collect();
    new_admin
        .mset::<_, _, ()>(&pairs)
        .await
        .map_err(|e| format!("MSET on {new_addr}: {e}"))?;
    p.admin[master]
        .clone()
        .del::<_, ()>(&keys)
        .await
        .map_err(|e| format!("DEL on {old_addr}: {e}"))?;

    // Start the write loops and the subscribers; wait until every loop got an answer
    // from the old master.
    let change_deadline = Instant::now() + deadline;
    let warmed = Arc::new(AtomicUsize::new(0));
    let mut writers = JoinSet::new();
    let mut notifiers = JoinSet::new();
    for (i, c) in clients.iter().enumerate() {
        let mut rx = c.subscribe();
        rx.borrow_and_update();
        let want = new_addr.clone();
        notifiers.spawn(async move { (i, wait_for_master(rx, &want, change_deadline).await) });
        writers.spawn(write_loop(
            i,
            c.clone(),
            keys[i].clone(),
            Duration::from_millis(o.write_every_ms),
            warmed.clone(),
            change_deadline,
        ));
    }
    wait_until(deadline, "every write loop to get a first answer", || {
        warmed.load(Ordering::Relaxed) == clients.len()
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, _, first) = tokio::time::timeout(deadline, p.zk_watch.get_and_watch_data(&p.path))
        .await
        .map_err(|_| format!("reading {} to arm the reference watch timed out", p.path))?
        .map_err(|e| format!("reading {} to arm the reference watch: {e}", p.path))?;
    let reference = tokio::spawn(watch_znode(
        p.zk_watch.clone(),
        p.path.clone(),
        first,
        new_addr.clone(),
        change_deadline,
    ));

    // t0: publish the new master.
    *epoch += 1;
    let topo = Topology {
        master: Some(new_addr.clone()),
        slaves: vec![],
        unavailable: vec![old_addr.clone(), p.addrs[2].clone()],
        epoch: *epoch,
        ..Topology::default()
    };
    let t0 = Instant::now();
    publish(&p.env.zk, &p.root, &topo, deadline).await?;
    let write_took = t0.elapsed();

    let mut outcomes: Vec<ClientOutcome> = (0..clients.len())
        .map(|_| ClientOutcome {
            routed: None,
            notified: None,
            early: false,
            last_old_after_t0: None,
            errors: 0,
            first_error: None,
        })
        .collect();
    while let Some(r) = writers.join_next().await {
        let w = r.map_err(|e| format!("a write loop failed: {e}"))?;
        let out = &mut outcomes[w.index];
        out.routed = w.landed.map(|at| at.saturating_duration_since(t0));
        out.early = w.landed.is_some_and(|at| at < t0);
        out.last_old_after_t0 = w.last_old.filter(|at| *at > t0).map(|at| at - t0);
        out.errors = w.errors;
        out.first_error = w.first_error;
    }
    while let Some(r) = notifiers.join_next().await {
        let (i, at) = r.map_err(|e| format!("a subscriber failed: {e}"))?;
        outcomes[i].notified = at.map(|at| at.saturating_duration_since(t0));
    }
    let zk_seen = reference
        .await
        .map_err(|e| format!("the reference watch failed: {e}"))?
        .map(|at| at.saturating_duration_since(t0));

    // B's counters: exactly one INCR per client landed there.
    let counters: Vec<Option<i64>> = new_admin
        .mget(&keys)
        .await
        .map_err(|e| format!("MGET on {new_addr}: {e}"))?;
    let exact = counters.iter().filter(|v| **v == Some(MARKER + 1)).count();

    let routed: Vec<Duration> = outcomes.iter().filter_map(|o| o.routed).collect();
    let notified: Vec<Duration> = outcomes.iter().filter_map(|o| o.notified).collect();
    let early = outcomes.iter().filter(|o| o.early).count();
    let errors: u64 = outcomes.iter().map(|o| o.errors).sum();
    let stale = outcomes
        .iter()
        .filter(|o| o.last_old_after_t0.is_some())
        .count();
    let last_stale = outcomes.iter().filter_map(|o| o.last_old_after_t0).max();
    println!(
        "  change {k}/{}: master {old_addr} -> {new_addr} (epoch {epoch}); write_raw took {:.2} ms",
        o.changes,
        ms(write_took)
    );
    println!(
        "    routed  : {}  ({}/{} clients)",
        fmt_dist(&routed),
        routed.len(),
        clients.len()
    );
    println!(
        "    notified: {}  ({}/{} clients)",
        fmt_dist(&notified),
        notified.len(),
        clients.len()
    );
    println!(
        "    zk watch: {}",
        zk_seen.map_or("n/a (timed out)".to_string(), |d| format!(
            "{:.2} ms",
            ms(d)
        ))
    );
    println!(
            "    {} client(s) had an INCR acknowledged by the old master after t0{}; counters on {new_addr}: {exact}/{} == {MARKER} + 1; INCR errors: {errors}{}",
            stale,
            last_stale.map_or(String::new(), |d| format!(" (the last at t0 + {:.2} ms)", ms(d))),
            clients.len(),
            outcomes
                .iter()
                .find_map(|o| o.first_error.clone())
                .map_or(String::new(), |e| format!(" (first: {e})")),
        );
    let problem = routed.len() != clients.len() || exact != clients.len() || early > 0;
    if problem {
        println!(
                "    PROBLEM: {} client(s) never routed to {new_addr} within {:?}, {} counter(s) differ from marker + 1, {early} client(s) reached it before t0",
                clients.len() - routed.len(),
                deadline,
                clients.len() - exact
            );
    }
    Ok(Change {
        routed,
        notified,
        zk_seen,
        problem,
    })
}

/// Settles after a change: the old master and the third node follow the new master, and the
/// whole group is published (epoch + 1).
async fn settle(
    p: &mut Prop<'_>,
    master: usize,
    new: usize,
    epoch: &mut u64,
) -> Result<(), String> {
    let new_addr = p.addrs[new].clone();
    for other in [master, 2] {
        redis::cmd("REPLICAOF")
            .arg(&new_addr.host)
            .arg(new_addr.port)
            .query_async::<()>(&mut p.admin[other].clone())
            .await
            .map_err(|e| format!("REPLICAOF {new_addr} on {}: {e}", p.addrs[other]))?;
    }
    for other in [master, 2] {
        wait_role(&p.admin[other], &p.addrs[other], p.deadline, |r| {
            r == NodeRole::Replica {
                master_port: new_addr.port,
                link_up: true,
            }
        })
        .await?;
    }
    *epoch += 1;
    publish(
        &p.env.zk,
        &p.root,
        &settled(&p.addrs, new, *epoch),
        p.deadline,
    )
    .await
}

/// The topology once the group is whole again: `master` and the other two as replicas.
fn settled(addrs: &[NodeAddr], master: usize, epoch: u64) -> Topology {
    Topology {
        master: Some(addrs[master].clone()),
        slaves: (0..addrs.len())
            .filter(|i| *i != master)
            .map(|i| addrs[i].clone())
            .collect(),
        epoch,
        ..Topology::default()
    }
}

/// What one client's write loop saw.
struct WriteLoop {
    index: usize,
    /// When the new master acknowledged an INCR (the loop stops there).
    landed: Option<Instant>,
    /// When the old master last acknowledged one.
    last_old: Option<Instant>,
    errors: u64,
    first_error: Option<String>,
}

/// `INCR key` every `every` (absolute ticks) until the reply is >= [`MARKER`] or `deadline`.
async fn write_loop(
    index: usize,
    mut client: Client,
    key: String,
    every: Duration,
    warmed: Arc<AtomicUsize>,
    deadline: Instant,
) -> WriteLoop {
    let mut out = WriteLoop {
        index,
        landed: None,
        last_old: None,
        errors: 0,
        first_error: None,
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut answered = false;
    loop {
        if tokio::time::timeout_at(deadline, tick.tick())
            .await
            .is_err()
        {
            return out;
        }
        let r = match tokio::time::timeout_at(deadline, client.incr::<_, _, i64>(&key, 1)).await {
            Err(_) => return out,
            Ok(r) => r,
        };
        let now = Instant::now();
        match r {
            Ok(v) if v >= MARKER => {
                out.landed = Some(now);
                return out;
            }
            Ok(_) => {
                out.last_old = Some(now);
                if !answered {
                    answered = true;
                    warmed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// When `rx` holds a topology whose master is `want` (None: not by `deadline`).
async fn wait_for_master(
    mut rx: watch::Receiver<TopologyView>,
    want: &NodeAddr,
    deadline: Instant,
) -> Option<Instant> {
    loop {
        if rx.borrow_and_update().topology.master.as_ref() == Some(want) {
            return Some(Instant::now());
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            _ => return None,
        }
    }
}

/// Follows `path` with one-shot data watches (event, then `get_and_watch_data`) until it names
/// `want` as master; returns when that read returned (None: not by `deadline`).
async fn watch_znode(
    zk: zk::Client,
    path: String,
    first: zk::OneshotWatcher,
    want: NodeAddr,
    deadline: Instant,
) -> Option<Instant> {
    let mut watcher = first;
    loop {
        tokio::time::timeout_at(deadline, watcher.changed())
            .await
            .ok()?;
        let (data, _, next) = tokio::time::timeout_at(deadline, zk.get_and_watch_data(&path))
            .await
            .ok()?
            .ok()?;
        let at = Instant::now();
        if Topology::from_json(&data).is_ok_and(|t| t.master.as_ref() == Some(&want)) {
            return Some(at);
        }
        watcher = next;
    }
}

/// Polls `INFO replication` of `addr` until its role satisfies `pred`.
async fn wait_role(
    conn: &MultiplexedConnection,
    addr: &NodeAddr,
    timeout: Duration,
    pred: impl Fn(NodeRole) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        let info: Result<String, _> = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut conn.clone())
            .await;
        last = info.ok().and_then(|i| parse_role(&i)).or(last);
        if last.is_some_and(&pred) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "timed out after {timeout:?} waiting for {addr} to change role; last seen {last:?}"
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}
