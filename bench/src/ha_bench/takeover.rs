//! `ha_bench` scenario 1, leader takeover: three manager processes, SIGKILL of the one holding
//! the lock, kill -> another manager holds it (a child watch on the lock directory); then the
//! new leader must handle a `kill -9` of the Redis master with exactly one failover.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_failover_client::ZnodePaths;
use redis_failover_tests::manager as harness;
use redis_failover_tests::manager::{lock_order, ManagerSet};
use redis_failover_tests::stats::ms;
use redis_failover_tests::{unique_root, zk_four_letter, RedisGroup};
use zookeeper_client as zk;

use super::{Settings, TakeoverOk, MANAGERS, SETUP_POLL};
use crate::managers::{start_managed, ManagerSpec};
use crate::nodes::Trio;
use crate::tasks::Killing;
use crate::time::jitter;
use crate::wait::{poll_until, Check};
use crate::znodes::{arm_topology_watch, watch_for_new_master, ZK_READ_TIMEOUT};

/// The sequence number at the end of a lock child's name.
fn seq_of(child: &str) -> Option<u64> {
    let digits = child.len() - child.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    child[child.len() - digits..].parse().ok()
}

/// The data (manager id) and owner session of one lock child; `None` when it is gone.
async fn holder_of(
    zk: &zk::Client,
    dir: &str,
    child: &str,
) -> Result<Option<(String, i64)>, String> {
    let path = format!("{dir}/{child}");
    match tokio::time::timeout(ZK_READ_TIMEOUT, zk.get_data(&path)).await {
        Err(_) => Err(format!("reading {path} timed out")),
        Ok(Err(zk::Error::NoNode)) => Ok(None),
        Ok(Err(e)) => Err(format!("reading {path}: {e}")),
        Ok(Ok((data, stat))) => Ok(Some((
            String::from_utf8_lossy(&data).into_owned(),
            stat.ephemeral_owner,
        ))),
    }
}

/// The session timeout ZooKeeper granted to session `sid` (`cons`: `sid=0x..,...,to=N`).
async fn negotiated_timeout(zk_port: u16, sid: i64) -> Option<u64> {
    let cons = tokio::task::spawn_blocking(move || zk_four_letter(zk_port, "cons"))
        .await
        .ok()??;
    let needle = format!("sid=0x{:x},", sid as u64);
    let line = cons.lines().find(|l| l.contains(&needle))?;
    let to = line
        .split(['(', ',', ')'])
        .find_map(|f| f.strip_prefix("to="))?;
    to.parse().ok()
}

/// One run: fresh trio, root and manager processes; kill the leader; measure; clean up.
pub(super) async fn run(s: &Settings, zk: &zk::Client, run: u32) -> Result<TakeoverOk, String> {
    let Some(bin) = s.manager_bin.as_deref() else {
        return Err("no redis_node_manager binary".to_string());
    };
    let root = unique_root(&format!("ha_takeover_{run}"));
    let spec = ManagerSpec {
        bin,
        count: MANAGERS,
        zk: &s.zk_connect,
        root: &root,
        extra: vec![
            "--zk-session-timeout-ms".into(),
            s.opts.session_ms.to_string(),
        ],
        rust_log: "warn",
    };
    let trio = start_managed(&spec).await?;
    let measured = trio
        .measure(15, |group, m| measure(s, zk, group, &root, m))
        .await;
    trio.teardown().await;
    measured
}

async fn measure(
    s: &Settings,
    zk: &zk::Client,
    group: &Arc<RedisGroup>,
    root: &str,
    managers: &ManagerSet,
) -> Result<TakeoverOk, String> {
    let paths = ZnodePaths::new(root).map_err(|e| format!("root {root}: {e}"))?;
    let lock_dir = paths.lock();
    let trio = Trio::of(group);
    let master = trio.master.clone();

    // 1. The trio is published and every manager contends for the lock.
    poll_until(s.deadline, SETUP_POLL, || async {
        let topo = harness::read_topology(zk, root).await;
        let published = topo.as_ref().is_some_and(|t| trio.published_in(t));
        let holders = match lock_order(zk, root).await {
            Ok(h) => h,
            Err(e) => return Check::Failed(e),
        };
        if published && holders.len() == MANAGERS {
            return Check::Done(());
        }
        if let Some(e) = managers.exited() {
            return Check::Failed(e);
        }
        Check::Waiting(format!(
            "timed out after {:?} waiting for <root>/nodes to name master {master} with its replicas \
             (holds {topo:?}) and for {MANAGERS} lock children (found {})",
            s.deadline,
            holders.len()
        ))
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(s.opts.settle_ms) + jitter(s.opts.jitter_ms)).await;
    if let Some(e) = managers.exited() {
        return Err(e);
    }

    // 2. Who leads, and its process.
    let holders = lock_order(zk, root).await?;
    let (_, leader_child, leader_id) = holders
        .first()
        .cloned()
        .ok_or_else(|| format!("{lock_dir} has no children"))?;
    if holders.len() != MANAGERS {
        return Err(format!(
            "{lock_dir} has {} children after settling: {holders:?}",
            holders.len()
        ));
    }
    let leader = managers.by_id(&leader_id).ok_or_else(|| {
        format!("no manager process has the id {leader_id:?} of the lowest lock child")
    })?;
    let old_leader = managers.name(leader).to_string();
    let session = holder_of(zk, &lock_dir, &leader_child)
        .await?
        .map_or(0, |(_, session)| session);
    let negotiated = negotiated_timeout(s.zk_port, session).await;

    // 3. Arm the child watch, kill the leader, follow the lock.
    let (_, _, mut watcher) =
        tokio::time::timeout(ZK_READ_TIMEOUT, zk.get_and_watch_children(&lock_dir))
            .await
            .map_err(|_| format!("watching {lock_dir} timed out"))?
            .map_err(|e| format!("watching {lock_dir}: {e}"))?;
    let victim = managers
        .process(leader)
        .ok_or_else(|| format!("{old_leader} is not running"))?;
    let t0 = Instant::now();
    // The kill blocks until the process is reaped (a few ms): the lock changes seconds later.
    let reaped = tokio::task::block_in_place(|| victim.kill());
    let deadline = tokio::time::Instant::from_std(t0 + s.deadline);
    let (seen_at, new_holder) = loop {
        let changed = tokio::time::timeout_at(deadline, watcher.changed()).await;
        if changed.is_err() {
            let now = lock_order(zk, root).await;
            return Err(format!(
                "no other manager held the lock within {:?} of the SIGKILL of {old_leader} ({leader_id}); children now: {now:?}",
                s.deadline
            ));
        }
        let (children, _, next) =
            tokio::time::timeout(ZK_READ_TIMEOUT, zk.get_and_watch_children(&lock_dir))
                .await
                .map_err(|_| format!("watching {lock_dir} timed out"))?
                .map_err(|e| format!("watching {lock_dir}: {e}"))?;
        let at = Instant::now();
        watcher = next;
        let lowest = children
            .iter()
            .filter_map(|c| seq_of(c).map(|q| (q, c)))
            .min();
        if let Some((_, child)) = lowest {
            if *child != leader_child {
                if let Some((id, _)) = holder_of(zk, &lock_dir, child).await? {
                    if id != leader_id {
                        break (at, id);
                    }
                }
            }
        }
    };
    let takeover = seen_at.duration_since(t0);
    if !reaped {
        return Err(format!("{old_leader} survived SIGKILL"));
    }
    let new_leader = managers
        .by_id(&new_holder)
        .map_or_else(|| new_holder.clone(), |i| managers.name(i).to_string());

    // 4. The new leader acts: kill -9 the redis master, wait for a new master in ZooKeeper.
    let nodes_path = paths.nodes();
    let (before, watcher) = arm_topology_watch(zk, &nodes_path).await?;
    if before.master.as_ref() != Some(&master) {
        return Err(format!(
            "after the takeover {nodes_path} names master {:?}, expected {master}",
            before.master
        ));
    }
    let t1 = Instant::now();
    let redis_killer = Killing::start(group, 0);
    let deadline = tokio::time::Instant::from_std(t1 + s.deadline);
    let found = tokio::time::timeout_at(
        deadline,
        watch_for_new_master(zk, &nodes_path, &master, watcher),
    )
    .await;
    redis_killer.done().await?;
    let Ok(found) = found else {
        let now = harness::read_topology(zk, root).await;
        return Err(format!(
            "the new leader {new_leader} published no new master within {:?} of the `kill -9` of {master}; {nodes_path} holds {now:?}",
            s.deadline
        ));
    };
    let (published_at, topo, _watch) = found?;
    let new_master = topo
        .master
        .clone()
        .ok_or_else(|| "the new topology has no master".to_string())?;
    tokio::time::sleep(Duration::from_millis(s.opts.linger_ms)).await;
    let after = harness::read_topology(zk, root)
        .await
        .ok_or_else(|| format!("{nodes_path} unreadable after lingering"))?;
    if after.master.as_ref() != Some(&new_master) {
        return Err(format!(
            "{new_master} was published {:.1} ms after the kill, but {} ms later {nodes_path} holds {after:?}",
            ms(published_at.duration_since(t1)),
            s.opts.linger_ms
        ));
    }
    Ok(TakeoverOk {
        takeover,
        old_leader,
        new_leader,
        negotiated_timeout: negotiated,
        master_failover: published_at.duration_since(t1),
        new_master,
        published_by: topo.manager.clone(),
        new_leader_id: new_holder,
        epoch_before: before.epoch,
        epoch_after: after.epoch,
    })
}
