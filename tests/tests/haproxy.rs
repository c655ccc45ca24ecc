//! HAProxy in front of a group, on THE documented config (`examples/haproxy/haproxy.cfg`,
//! its example addresses replaced by the test's): its checks ask a standby manager's HTTP
//! endpoint which node is the master (`/master/...`) and which replicas may serve reads
//! (`/replica/...`). Writes through its write port and reads through its read port go on
//! across a `kill -9` of the master; without the manager, HAProxy takes every server out.
//!
//! Needs `haproxy` (Debian package); without it the test says `SKIPPED (needs haproxy)` on
//! stderr (fails with `RF_REQUIRE_HAPROXY=1`, as CI sets).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis_failover_client::NodeAddr;
use redis_failover_tests::haproxy::{self, Haproxy};
use redis_failover_tests::http::get_json;
use redis_failover_tests::writer::{check_lost_acks, key, SeqWriter, SetFuture, Writer};
use redis_failover_tests::{
    connect_async, free_port, wait_until_async, NodeRole, RedisGroup, Scene,
};

const DEADLINE: Duration = Duration::from_secs(30);
/// Bound on one connection, write or read through HAProxy.
const CALL: Duration = Duration::from_secs(3);
/// How a read that got another value than written starts.
const WRONG: &str = "wrong value";
/// Successful reads in a row that show the read port works again after the failover.
const STREAK: usize = 50;

/// Writes through HAProxy as an application would, with the acknowledgement the managers
/// never lose: `SET`, then `WAIT 1 1000` (a replica has it), on one connection, reconnecting
/// after an error.
struct ProxyWriter {
    haproxy: NodeAddr,
    conn: Option<MultiplexedConnection>,
}

impl SeqWriter for ProxyWriter {
    fn set<'a>(&'a mut self, key: &'a str, n: u64) -> SetFuture<'a> {
        Box::pin(async move {
            let conn = match self.conn.as_mut() {
                Some(c) => c,
                None => self.conn.insert(connect_async(&self.haproxy, CALL).await?),
            };
            let replicas: Result<(i64,), _> = redis::pipe()
                .cmd("SET")
                .arg(key)
                .arg(n)
                .ignore()
                .cmd("WAIT")
                .arg(1)
                .arg(1000)
                .query_async(conn)
                .await;
            match replicas {
                Ok((r,)) if r >= 1 => Ok(None),
                Ok(_) => Err("no replica confirmed it within 1 s".to_string()),
                Err(e) => {
                    self.conn = None;
                    Err(e.to_string())
                }
            }
        })
    }
}

/// One read through HAProxy: when it ended and its error, if any.
type Read = (Instant, Option<String>);

/// Reads `key` (which must hold `want`) through HAProxy every 10 ms, each on a new
/// connection (so that each is balanced anew), until dropped.
struct Reader {
    reads: Arc<Mutex<Vec<Read>>>,
    stop: Arc<AtomicBool>,
}

impl Reader {
    fn spawn(haproxy: NodeAddr, key: String, want: String) -> Reader {
        let reads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, halt) = (Arc::clone(&reads), Arc::clone(&stop));
        tokio::spawn(async move {
            while !halt.load(Ordering::Relaxed) {
                let read = async {
                    let mut conn = connect_async(&haproxy, CALL).await?;
                    let got: Option<String> = redis::cmd("GET")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| e.to_string())?;
                    match got {
                        Some(v) if v == want => Ok(()),
                        other => Err(format!("{WRONG} {other:?}")),
                    }
                };
                let r = tokio::time::timeout(CALL, read).await;
                let error = match r {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(_) => Some(format!("no answer within {CALL:?}")),
                };
                log.lock().expect("reads").push((Instant::now(), error));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        Reader { reads, stop }
    }

    fn reads(&self) -> Vec<Read> {
        self.reads.lock().expect("reads").clone()
    }

    /// Whether the last `n` reads succeeded, all ended after `since`.
    fn last_ok(&self, n: usize, since: Instant) -> bool {
        let reads = self.reads.lock().expect("reads");
        reads.len() >= n
            && reads[reads.len() - n..]
                .iter()
                .all(|r| r.0 > since && r.1.is_none())
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_writes_through_haproxy_go_on_across_a_failover() {
    if !haproxy::skip_unless_installed("reads_and_writes_through_haproxy_go_on_across_a_failover") {
        return;
    }
    let trio = RedisGroup::trio();
    let s = Scene::new("haproxy").await;
    let _leader = s.named_manager(&trio, "leader", |_| {});
    let before = s.wait_published(DEADLINE, "the trio published", 2).await;
    let m0 = trio.node(0).addr();
    // HAProxy asks a standby: every manager answers the checks, from the published topology.
    let http = free_port();
    let standby = s.named_manager(&trio, "standby", |c| {
        c.http_addr = Some(format!("127.0.0.1:{http}").parse().expect("addr"));
    });
    wait_until_async(DEADLINE, "the standby's HTTP endpoint", || async {
        let g = get_json(http, "/status").await?["groups"]["mymaster"].clone();
        (g["leader"] == false && g["topology"]["master"] == m0.as_str()).then_some(())
    })
    .await;

    let (write_port, read_port) = (free_port(), free_port());
    let addrs = trio.addrs();
    let config = haproxy::example(&[
        ("10.0.0.1:6379", addrs[0].clone()),
        ("10.0.0.2:6379", addrs[1].clone()),
        ("10.0.0.3:6379", addrs[2].clone()),
        (
            "addr 10.0.0.10 port 8008",
            format!("addr 127.0.0.1 port {http}"),
        ),
        ("bind :6380", format!("bind 127.0.0.1:{write_port}")),
        ("bind :6381", format!("bind 127.0.0.1:{read_port}")),
    ]);
    let hap = Haproxy::start(&config);
    let through = |port| NodeAddr::new("127.0.0.1", port);

    let start = Instant::now();
    let writer = Writer::spawn(
        ProxyWriter {
            haproxy: through(write_port),
            conn: None,
        },
        Some(Duration::from_millis(20)),
        CALL,
    );
    let first = writer
        .wait_ack_after(start, tokio::time::Instant::now() + DEADLINE)
        .await
        .unwrap_or_else(|| panic!("no write through HAProxy\n{}", hap.log_tail(30)));
    let reader = Reader::spawn(through(read_port), key(first.seq), first.seq.to_string());
    let steady = |what: &'static str, since: Instant| {
        let (reader, hap) = (&reader, &hap);
        async move {
            wait_until_async(DEADLINE, what, || async {
                assert!(hap.is_running(), "haproxy exited:\n{}", hap.log_tail(30));
                reader.last_ok(STREAK, since).then_some(())
            })
            .await
        }
    };
    steady("reads through HAProxy", start).await;
    let calm_from = reader.reads().len() - STREAK;
    // Some more reads of the calm group, none failing (checked below).
    let so_far = reader.reads().len();
    wait_until_async(DEADLINE, "more reads", || async {
        (reader.reads().len() >= so_far + STREAK).then_some(())
    })
    .await;
    let before_kill = reader.reads().len();

    trio.node(0).kill9();
    let killed = Instant::now();
    let t = s.wait_new_master(DEADLINE, "a new master", &before).await;
    let published = Instant::now();
    let new = t.master.expect("master");
    let node = trio.node_at(&new);
    // Writes through HAProxy land on the new master.
    let ack = writer
        .wait_ack_after(published, tokio::time::Instant::now() + DEADLINE)
        .await
        .unwrap_or_else(|| {
            panic!(
                "no write through HAProxy after the failover\n{}",
                hap.log_tail(30)
            )
        });
    assert_eq!(node.role(), Some(NodeRole::Master));
    assert_eq!(node.get(&key(ack.seq)), Some(ack.seq.to_string()));
    let acked = writer.acked();
    wait_until_async(DEADLINE, "20 more writes through HAProxy", || async {
        (writer.acked() >= acked + 20).then_some(())
    })
    .await;
    steady("reads through HAProxy after the failover", published).await;
    let log = writer.stop(CALL).await;
    let reads = reader.reads();
    drop(reader);

    // Every acknowledged write is on the new master.
    let lost = check_lost_acks(&new, &log).await.expect("loss check");
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    // Fail closed: once the manager it asks is gone, HAProxy takes every server out.
    standby.stop().await.expect("stopping the standby");
    wait_until_async(DEADLINE, "HAProxy without servers", || async {
        let log = hap.log_tail(50);
        ["redis_write", "redis_read"]
            .iter()
            .all(|b| log.contains(&format!("backend '{b}' has no server available")))
            .then_some(())
    })
    .await;
    let write = ProxyWriter {
        haproxy: through(write_port),
        conn: None,
    }
    .set("after", 1)
    .await;
    assert!(
        write.is_err(),
        "a write through HAProxy without its manager"
    );
    // Reads: never a wrong value, no error before the kill, and STREAK successes in a row
    // after the publication within the deadline (waited above): errors only in the failover.
    let failed: Vec<&Read> = reads.iter().filter(|r| r.1.is_some()).collect();
    let wrong = |r: &&Read| r.1.as_deref().is_some_and(|e| e.starts_with(WRONG));
    assert!(!failed.iter().any(wrong), "{failed:?}");
    assert!(
        reads[calm_from..before_kill].iter().all(|r| r.1.is_none()),
        "a read failed before the kill: {failed:?}"
    );
    let ok: Vec<Instant> = reads[calm_from..]
        .iter()
        .filter(|r| r.1.is_none())
        .map(|r| r.0)
        .collect();
    let gap = ok.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
    // The failed reads: ms after the kill (negative: before), error.
    let after_kill: Vec<(i128, &str)> = failed
        .iter()
        .map(|r| {
            let ms = |d: Duration| d.as_millis() as i128;
            let at = ms(r.0.saturating_duration_since(killed))
                - ms(killed.saturating_duration_since(r.0));
            (at, r.1.as_deref().unwrap_or(""))
        })
        .collect();
    let write_errors = log.errors.iter().filter(|e| e.at >= killed).count();
    eprintln!(
        "haproxy: new master published {:?} after the kill; first write on it acknowledged {:?} \
         after the publication; writes: {} acknowledged, {} failed after the kill; reads: {}, {} \
         failed {after_kill:?}, longest time between two successful reads {gap:?}; haproxy's \
         log:\n{}",
        published - killed,
        ack.at - published,
        log.acks.len(),
        write_errors,
        reads.len(),
        failed.len(),
        hap.log_tail(20),
    );
}
