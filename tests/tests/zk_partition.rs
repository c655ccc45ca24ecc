//! Issue 14: a manager whose only ZooKeeper server is cut off from the quorum stops acting;
//! the others carry on. A 3-server [`ZkEnsemble`] with each member on a network-namespace
//! host of its own; manager A (`-z` the lone member only) leads, manager B (`-z` the other
//! two) waits behind it; a Redis trio on three more hosts. The lone member is cut from the
//! other two (iptables DROP on the ZooKeeper hosts: a silent network, so the lone member
//! still answers A for a while, but A's writes hang, and its pings queue behind them), and
//! the Redis master is killed.
//! A cannot confirm its lock by a quorum write, so it changes no role; its session expires on
//! the quorum side, B takes the lock and fails over, once. After the heal nothing changes
//! again. Who sent which command is read at the end from the surviving nodes' SLOWLOG (every
//! command, with the client's address: each manager has its own host, so its own IP).
//!
//! Needs root and iptables: without them the test says `SKIPPED (needs root and iptables)` on
//! stderr (fails with `RF_REQUIRE_NETNS=1`, as CI sets).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use redis::Value;
use redis_failover_client::Topology;
use redis_failover_tests::manager::{
    lock_holders, manager_view, read_topology, wait_topology, zk_client, ManagerMode, ManagerSet,
};
use redis_failover_tests::netns::{skip_unless_available, Mode, Net};
use redis_failover_tests::partition::manager_bin_next_to_tests;
use redis_failover_tests::{
    for_a_while, free_port, init_tracing, unique_root, unix_ms, wait_until_async, NodeRole,
    RedisNode, ZkEnsemble,
};
use tempfile::TempDir;

/// Bound on starting things and on convergence after the heal.
const START: Duration = Duration::from_secs(60);
/// The managers' `--zk-session-timeout-ms`: the shortest the ensemble grants (2 × tickTime).
const SESSION_MS: u64 = 4000;
/// After the cut, B must have failed over (the new master published by B) within the session
/// timeout plus this: ZooKeeper expires sessions on tick boundaries (up to one 2 s tick
/// late), then B takes the lock, promotes, and publishes once the old master's fence bound
/// (min-replicas-max-lag 2 s + 2 s, counted from when it was last heard) has passed.
const FAILOVER_MARGIN: Duration = Duration::from_secs(12);
/// How long nothing may change after the heal.
const QUIET_AFTER_HEAL: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

/// The ZooKeeper hosts (member `i` on `ZK_HOSTS[i]`), the managers', the Redis nodes'.
const ZK_HOSTS: [&str; 3] = ["z1", "z2", "z3"];
const REDIS_HOSTS: [&str; 3] = ["r0", "r1", "r2"];

/// The run's log directory, removed when the test passes and kept (and named) when it fails
/// or `RF_KEEP_LOGS=1`.
struct Logs(Option<TempDir>);

impl Logs {
    fn path(&self) -> &std::path::Path {
        self.0.as_ref().expect("the log dir").path()
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        let keep =
            std::thread::panicking() || std::env::var("RF_KEEP_LOGS").is_ok_and(|v| v == "1");
        if let (true, Some(dir)) = (keep, self.0.take()) {
            eprintln!("zk_partition logs kept in {}", dir.keep().display());
        }
    }
}

/// One SLOWLOG entry (every command is one: `slowlog-log-slower-than 0`).
#[derive(Clone, Debug)]
struct Logged {
    id: i64,
    unix_s: i64,
    args: Vec<String>,
    client_ip: String,
}

impl Logged {
    fn name(&self) -> String {
        self.args
            .first()
            .map(|a| a.to_lowercase())
            .unwrap_or_default()
    }

    /// REPLICAOF / SLAVEOF / FAILOVER: a command that changes a node's role.
    fn changes_role(&self) -> bool {
        matches!(self.name().as_str(), "replicaof" | "slaveof" | "failover")
    }

    /// A command that changes the node (a role, its config, its users).
    fn changes_node(&self) -> bool {
        self.changes_role()
            || (matches!(self.name().as_str(), "config" | "acl")
                && self.args.get(1).is_some_and(|a| {
                    a.eq_ignore_ascii_case("set") || a.eq_ignore_ascii_case("setuser")
                }))
    }

    fn is_promotion(&self) -> bool {
        self.changes_role()
            && self.args.len() == 3
            && self.args[1].eq_ignore_ascii_case("no")
            && self.args[2].eq_ignore_ascii_case("one")
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Every SLOWLOG entry of `node` with an id above `after`, oldest first.
fn slowlog(node: &RedisNode, after: i64) -> Vec<Logged> {
    let v = node
        .cmd(&["SLOWLOG", "GET", "-1"])
        .unwrap_or_else(|e| panic!("{}: SLOWLOG GET: {e}", node.addr()));
    let Value::Array(entries) = v else {
        panic!("{}: SLOWLOG GET answered {v:?}", node.addr());
    };
    let mut out: Vec<Logged> = entries
        .iter()
        .filter_map(|e| {
            let Value::Array(f) = e else { return None };
            let int = |i: usize| match f.get(i) {
                Some(Value::Int(n)) => Some(*n),
                _ => None,
            };
            let args = match f.get(3) {
                Some(Value::Array(a)) => a.iter().filter_map(text).collect(),
                _ => Vec::new(),
            };
            let addr = f.get(4).and_then(text).unwrap_or_default();
            let client_ip = addr
                .rsplit_once(':')
                .map_or(addr.clone(), |(ip, _)| ip.to_string());
            Some(Logged {
                id: int(0)?,
                unix_s: int(1)?,
                args,
                client_ip,
            })
        })
        .filter(|l| l.id > after)
        .collect();
    out.sort_by_key(|l| l.id);
    out
}

/// The id of `node`'s newest SLOWLOG entry: what comes later has a larger one.
fn slowlog_mark(node: &RedisNode) -> i64 {
    let v = node
        .cmd(&["SLOWLOG", "GET", "1"])
        .unwrap_or_else(|e| panic!("{}: SLOWLOG GET 1: {e}", node.addr()));
    match v {
        Value::Array(e) => match e.first() {
            Some(Value::Array(f)) => match f.first() {
                Some(Value::Int(id)) => *id,
                other => panic!("{}: SLOWLOG entry id {other:?}", node.addr()),
            },
            _ => -1,
        },
        other => panic!("{}: SLOWLOG GET 1 answered {other:?}", node.addr()),
    }
}

/// The survivors (`nodes[1..]`) that answer master.
fn masters(survivors: &[&RedisNode]) -> Vec<String> {
    survivors
        .iter()
        .filter(|n| n.role() == Some(NodeRole::Master))
        .map(|n| n.addr())
        .collect()
}

/// What the test saw after the cut, each time relative to the cut.
#[derive(Debug, Default)]
struct Seen {
    /// A's lock child gone on the quorum side (its session expired there).
    a_gone: Option<Duration>,
    /// B first in the lock's queue.
    b_leads: Option<Duration>,
    /// A survivor answering master.
    promoted: Option<(Duration, String)>,
    /// The topology with a new master.
    published: Option<(Duration, Topology)>,
    /// Every (epoch, master) published.
    epochs: BTreeSet<(u64, String)>,
}

/// One run at a time across this file's tests (each starts 3 JVMs and 5 other processes,
/// and its deadlines are measured).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Which ZooKeeper member is cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lone {
    /// A follower: the quorum's leader stays, so A's session expires one session timeout
    /// after the cut.
    Follower,
    /// The leader: the other two first notice it is gone (syncLimit × tickTime = 10 s) and
    /// elect a new one, which gives every session a fresh timeout.
    Leader,
}

impl Lone {
    /// How much later than a session timeout after the cut A's session can expire.
    fn detection(self) -> Duration {
        match self {
            Lone::Follower => Duration::ZERO,
            Lone::Leader => Duration::from_secs(10),
        }
    }
}

/// The managers' defaults (`--node-strategy majority`): with two managers, A alone cannot
/// call the master down, and B's view that would agree reaches A only through the quorum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_on_a_zookeeper_server_cut_from_the_quorum_stops_acting_and_the_other_carries_on()
{
    cut_off_manager_stops_acting(
        "a_manager_on_a_zookeeper_server_cut_from_the_quorum_stops_acting",
        Lone::Follower,
        &[],
    )
    .await;
}

/// `--node-strategy single`: A calls the master down by itself and tries to fail over
/// alone, so only its lock (a write that a quorum must accept) stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_that_may_decide_alone_is_stopped_by_its_unconfirmed_lock() {
    cut_off_manager_stops_acting(
        "a_manager_that_may_decide_alone_is_stopped_by_its_unconfirmed_lock",
        Lone::Follower,
        &["--node-strategy", "single"],
    )
    .await;
}

/// As above with the ZooKeeper leader cut off: the other two elect a new leader first, and
/// A (still on the old leader, whose writes no longer commit) changes nothing meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_on_the_zookeeper_leader_cut_from_the_others_stops_acting() {
    cut_off_manager_stops_acting(
        "a_manager_on_the_zookeeper_leader_cut_from_the_others_stops_acting",
        Lone::Leader,
        &["--node-strategy", "single"],
    )
    .await;
}

/// The scenario of the module documentation: the `which` member cut off, the managers started
/// with `extra_flags` (with `--node-strategy single`, A must also be seen trying and being
/// refused).
async fn cut_off_manager_stops_acting(test: &str, which: Lone, extra_flags: &[&str]) {
    if !skip_unless_available(test) {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let bin = manager_bin_next_to_tests().expect("the manager binary");
    let logs = Logs(Some(
        tempfile::Builder::new()
            .prefix("rf-zk-partition-")
            .tempdir()
            .expect("tmp"),
    ));
    // Declared first: dropped last, after every process on it.
    let net = Net::new(&["z1", "z2", "z3", "ma", "mb", "r0", "r1", "r2"]).expect("the net");
    let host = |n: &str| net.host(n).unwrap_or_else(|e| panic!("{e}")).clone();
    let ens = ZkEnsemble::start_at(&ZK_HOSTS.map(|h| host(h).place()));
    let zk_leader = ens.wait_leader();
    let lone = match which {
        Lone::Leader => zk_leader,
        Lone::Follower => *ens
            .followers()
            .first()
            .unwrap_or_else(|| panic!("no follower: {:?}", ens.modes())),
    };
    let quorum: Vec<usize> = (0..3).filter(|i| *i != lone).collect();
    let quorum_connect = quorum
        .iter()
        .map(|i| ens.member(*i).connect_string())
        .collect::<Vec<_>>()
        .join(",");
    eprintln!(
        "ZooKeeper: leader {}, lone member {} (A's only server), B on {quorum_connect}",
        ZK_HOSTS[zk_leader], ZK_HOSTS[lone]
    );

    // Every command is logged with its client's address.
    let redis_args = [
        "--slowlog-log-slower-than",
        "0",
        "--slowlog-max-len",
        "1000000",
    ];
    let redis_dir = logs.path().join("redis");
    let mut nodes: Vec<RedisNode> = Vec::new();
    for h in REDIS_HOSTS {
        let master = nodes.first().map(RedisNode::node_addr);
        nodes.push(
            RedisNode::start_at(
                &host(h).place(),
                &redis_dir,
                free_port(),
                master.as_ref(),
                &redis_args,
            )
            .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    for n in &nodes[1..] {
        n.wait_follows(nodes[0].port(), true, START, "the trio's replication up");
    }
    let addrs: Vec<String> = nodes.iter().map(RedisNode::addr).collect();
    let root = unique_root("zk_partition");
    let flags = |zk: &str| {
        let mut f = ManagerSet::base_flags(zk, &addrs, &root);
        f.extend(
            ["--zk-session-timeout-ms", &SESSION_MS.to_string()]
                .into_iter()
                .chain(["--down-after-ms", "1000"])
                .chain(extra_flags.iter().copied())
                .map(String::from),
        );
        f
    };
    let session = zk_client(&quorum_connect).await;
    let holders = || lock_holders(&session, &root);

    // A leads first.
    let mut set_a = ManagerSet::new(
        ManagerMode::Process(bin.clone()),
        flags(&ens.member(lone).connect_string()),
    )
    .log_to(logs.path())
    .rust_log("info");
    set_a
        .add_at(Some("a"), &host("ma").place())
        .expect("start manager a");
    let first = Some(nodes[0].node_addr());
    wait_topology(&session, &root, START, "A published the trio", |t| {
        t.master == first && t.slaves.len() == 2
    })
    .await;
    wait_until_async(START, "A holding the lock", || async {
        let h = holders().await;
        (h.len() == 1 && h[0].ends_with("-a")).then_some(())
    })
    .await;

    // B queues behind A and sees the trio.
    let mut set_b = ManagerSet::new(ManagerMode::Process(bin.clone()), flags(&quorum_connect))
        .log_to(logs.path())
        .rust_log("info");
    set_b
        .add_at(Some("b"), &host("mb").place())
        .expect("start manager b");
    wait_until_async(START, "A then B in the lock's queue", || async {
        let h = holders().await;
        (h.len() == 2 && h[0].ends_with("-a") && h[1].ends_with("-b")).then_some(())
    })
    .await;
    wait_until_async(START, "B sees the whole trio", || async {
        manager_view(&session, &root, "-b")
            .await
            .filter(|v| v.available.len() == 3)
    })
    .await;
    let before = read_topology(&session, &root).await.expect("the topology");
    assert!(
        before.manager.as_deref().is_some_and(|m| m.ends_with("-a")),
        "A published first: {before:?}"
    );

    let survivors: Vec<&RedisNode> = nodes[1..].iter().collect();
    let marks: Vec<i64> = survivors.iter().map(|n| slowlog_mark(n)).collect();
    let (ip_a, ip_b) = (host("ma").ip, host("mb").ip);
    let tails = |what: &str| {
        format!(
            "{what}\nZooKeeper modes {:?}{}{}",
            ens.modes(),
            set_a.tails(30),
            set_b.tails(30)
        )
    };

    // The cut: the lone member from the other two, on the ZooKeeper hosts only (A still
    // reaches its server, and everybody reaches Redis). Then the master dies.
    let quorum_hosts: Vec<&str> = quorum.iter().map(|i| ZK_HOSTS[*i]).collect();
    let cut_ms = unix_ms();
    let cut_at = Instant::now();
    net.cut_between(&[ZK_HOSTS[lone]], &quorum_hosts, Mode::Drop)
        .expect("cut the lone member off");
    nodes[0].kill9();

    // B carries on: A's lock goes with its session on the quorum side, B leads, promotes
    // and publishes, within the session timeout and a margin.
    let bound = which.detection() + Duration::from_millis(SESSION_MS) + FAILOVER_MARGIN;
    let deadline = cut_at + bound;
    let mut seen = Seen::default();
    loop {
        let since = cut_at.elapsed();
        let h = holders().await;
        if seen.a_gone.is_none() && !h.is_empty() && !h.iter().any(|id| id.ends_with("-a")) {
            seen.a_gone = Some(since);
        }
        if seen.b_leads.is_none() && h.first().is_some_and(|id| id.ends_with("-b")) {
            seen.b_leads = Some(since);
        }
        if seen.promoted.is_none() {
            if let Some(m) = masters(&survivors).first() {
                seen.promoted = Some((since, m.clone()));
            }
        }
        if let Some(t) = read_topology(&session, &root).await {
            let master = t
                .master
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            seen.epochs.insert((t.epoch, master));
            if seen.published.is_none() && t.master.is_some() && t.master != first {
                seen.published = Some((since, t));
            }
        }
        if seen.published.is_some() && seen.promoted.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            tails(&format!(
                "no failover by B within {bound:?} of the cut ({which:?} cut off, session \
                 {SESSION_MS} ms): {seen:?}"
            ))
        );
        tokio::time::sleep(POLL).await;
    }
    eprintln!("after the cut: {seen:?}");
    let (_, published) = seen.published.clone().expect("published");
    let (_, promoted) = seen.promoted.clone().expect("promoted");
    assert!(
        published
            .manager
            .as_deref()
            .is_some_and(|m| m.ends_with("-b")),
        "B published the failover: {published:?}"
    );
    assert_eq!(
        published.epoch,
        before.epoch + 1,
        "one promotion: {published:?}"
    );
    assert_eq!(
        published.master.as_ref().map(ToString::to_string),
        Some(promoted.clone()),
        "the published master is the one Redis shows"
    );
    let a_gone = seen.a_gone.expect("A's lock gone before B could promote");
    assert!(
        a_gone >= Duration::from_millis(SESSION_MS / 2),
        "A's lock went {a_gone:?} after the cut: it should live about a session timeout"
    );
    assert!(seen.b_leads.is_some(), "B leads: {seen:?}");
    let new_master = survivors
        .iter()
        .find(|n| n.addr() == promoted)
        .expect("the promoted survivor");
    let other = survivors
        .iter()
        .find(|n| n.addr() != promoted)
        .expect("the other survivor");
    other.wait_follows(new_master.port(), true, START, "the other survivor follows");
    assert_eq!(
        masters(&survivors),
        vec![promoted.clone()],
        "one master in Redis"
    );

    // The heal: the lone member rejoins, A comes back (a new session) behind B, and nothing
    // changes again.
    net.heal_all().expect("heal");
    let heal_marks: Vec<i64> = survivors.iter().map(|n| slowlog_mark(n)).collect();
    wait_until_async(START, "the lone member serving again", || async {
        ens.member(lone).mode()
    })
    .await;
    wait_until_async(START, "A back in the lock's queue, behind B", || async {
        let h = holders().await;
        (h.len() == 2 && h[0].ends_with("-b") && h[1].ends_with("-a")).then_some(())
    })
    .await;
    for_a_while(QUIET_AFTER_HEAL, Duration::from_millis(100), || async {
        let t = read_topology(&session, &root).await.expect("the topology");
        assert_eq!(
            (t.epoch, t.master.as_ref().map(ToString::to_string)),
            (before.epoch + 1, Some(promoted.clone())),
            "no second promotion after the heal: {t:?}"
        );
        assert_eq!(
            masters(&survivors),
            vec![promoted.clone()],
            "one master in Redis"
        );
    })
    .await;
    assert_eq!(set_a.exited(), None, "manager a still runs");
    assert_eq!(set_b.exited(), None, "manager b still runs");

    // The independent check: what the surviving nodes were told, and by whom.
    let window_ms = SESSION_MS / 2;
    let mut promotions = Vec::new();
    for (i, n) in survivors.iter().enumerate() {
        let log = slowlog(n, marks[i]);
        for l in &log {
            if l.client_ip == ip_a {
                assert!(
                    !l.changes_role(),
                    "{}: A changed a role after the cut: {l:?}",
                    n.addr()
                );
                // A lock confirmed right before the cut may be acted on for half the
                // session timeout from when it was asked; nothing later.
                assert!(
                    !l.changes_node() || (l.unix_s as u64) * 1000 <= cut_ms + window_ms,
                    "{}: A changed the node {} ms after the cut: {l:?}",
                    n.addr(),
                    (l.unix_s as u64 * 1000).saturating_sub(cut_ms)
                );
            } else if l.changes_role() {
                assert_eq!(
                    l.client_ip,
                    ip_b,
                    "{}: only B changes roles: {l:?}",
                    n.addr()
                );
                if l.is_promotion() {
                    promotions.push((n.addr(), l.clone()));
                } else {
                    assert_eq!(
                        l.args.get(1..).map(|a| a.join(":")),
                        Some(promoted.clone()),
                        "{}: B pointed a node at another master: {l:?}",
                        n.addr()
                    );
                }
            }
            if l.id > heal_marks[i] {
                assert!(
                    !l.changes_role(),
                    "{}: a role changed after the heal: {l:?}",
                    n.addr()
                );
            }
        }
    }
    assert_eq!(
        promotions
            .iter()
            .map(|(a, _)| a.clone())
            .collect::<Vec<_>>(),
        vec![promoted.clone()],
        "exactly one REPLICAOF NO ONE, by B, on the new master: {promotions:?}"
    );
    // The managers' own word agrees.
    assert_eq!(
        set_a.count_in_logs("+promoted"),
        Some(0),
        "{}",
        tails("A promoted")
    );
    assert_eq!(
        set_b.count_in_logs("+promoted"),
        Some(1),
        "{}",
        tails("B promoted")
    );
    let epochs: BTreeSet<u64> = seen.epochs.iter().map(|(e, _)| *e).collect();
    assert!(
        epochs.is_subset(&BTreeSet::from([before.epoch, before.epoch + 1])),
        "epochs published: {:?}",
        seen.epochs
    );
    // ... and A says it stopped leading once its server lost the quorum.
    assert!(
        set_a.count_in_logs("-leader:").is_some_and(|n| n > 0),
        "{}",
        tails("A never said -leader")
    );
    if extra_flags.contains(&"single") {
        let tried = set_a.count_in_logs("+selected-replica").unwrap_or(0);
        let refused = set_a
            .count_in_logs("-failover-abort-not-leader")
            .unwrap_or(0)
            + set_a.count_in_logs("-leader-unconfirmed").unwrap_or(0);
        assert!(
            tried > 0 && refused > 0,
            "{}",
            tails(&format!(
                "A deciding alone should try to fail over and be refused by ZooKeeper: \
                 {tried} tries, {refused} refusals"
            ))
        );
    }
    eprintln!(
        "{test}: A's lock gone {:?}, B leads {:?}, promoted {:?}, published {:?} after the \
         cut (session {SESSION_MS} ms); A logged {:?} -leader, {:?} -leader-unconfirmed, \
         {:?} -failover-abort-not-leader",
        seen.a_gone,
        seen.b_leads,
        seen.promoted.as_ref().map(|p| p.0),
        seen.published.as_ref().map(|p| p.0),
        set_a.count_in_logs("-leader:"),
        set_a.count_in_logs("-leader-unconfirmed"),
        set_a.count_in_logs("-failover-abort-not-leader"),
    );
}
