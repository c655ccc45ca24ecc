//! `ha_bench` scenario 2, switchover: a manager in this process, a back-to-back writer through
//! our `Client`, and `client.manual_failover(Some(replica))`; the longest gap between two
//! acknowledged writes is the write pause, and no acknowledged write may be lost.

use std::time::{Duration, Instant};

use redis_failover_client::Client;
use redis_failover_manager::Cli;
use redis_failover_tests::manager::{self as harness, Manager};
use redis_failover_tests::stats::rel_ms;
use redis_failover_tests::writer::{check_lost, ClientWriter, Writer};
use redis_failover_tests::{unique_root, RedisGroup};
use zookeeper_client as zk;

use super::{Settings, SwitchoverOk};
use crate::inprocess::{self, finish_run};
use crate::nodes::Trio;
use crate::tasks::start_trio;
use crate::time::jitter;

/// One run: fresh trio, root and in-process manager; switch over under the writer; measure;
/// clean up.
pub(super) async fn run(s: &Settings, zk: &zk::Client, run: u32) -> Result<SwitchoverOk, String> {
    let group = start_trio().await?;
    let root = unique_root(&format!("ha_switchover_{run}"));
    let config = harness::config(&s.zk_connect, &group.addrs(), &root, |c: &mut Cli| {
        c.manager_name = Some(format!("ha-switchover-{run}"));
    });
    let manager = inprocess::start(&s.manager_rt, config);

    let measured = measure(s, zk, &group, &root, &manager).await;

    finish_run(manager, group, measured, &format!("switchover run {run}")).await
}

async fn measure(
    s: &Settings,
    zk: &zk::Client,
    group: &RedisGroup,
    root: &str,
    manager: &Manager,
) -> Result<SwitchoverOk, String> {
    let trio = Trio::of(group);
    let master = &trio.master;
    let target = trio.replicas[0].clone();

    // 1. The manager publishes the trio; a client follows it.
    inprocess::wait_published(zk, root, &trio, manager, s.deadline).await?;
    let client = tokio::time::timeout(
        s.deadline,
        Client::builder(&s.zk_connect).znode_path(root).connect(),
    )
    .await
    .map_err(|_| "Client::connect timed out".to_string())?
    .map_err(|e| format!("Client::connect: {e}"))?;
    let mut topo_rx = client.subscribe();
    if !trio.published_in(&topo_rx.borrow_and_update().topology) {
        return Err(format!(
            "the client reads {:?}, expected master {master} with its replicas",
            client.topology().topology
        ));
    }

    // 2. Write, request the switchover, wait for it, write on.
    let jitter = jitter(s.opts.switch_jitter_ms);
    let bound = s.deadline + Duration::from_millis(2 * s.opts.write_ms) + jitter;
    let hard_deadline = Instant::now() + bound;
    let t_start = Instant::now();
    // A write still unanswered at the run's deadline is abandoned (and counted as an error).
    let writer = Writer::spawn(ClientWriter(client.clone()), None, bound);
    tokio::time::sleep(Duration::from_millis(s.opts.write_ms) + jitter).await;
    let t_req = Instant::now();
    let requested = client.manual_failover(Some(&target)).await;
    let switched = match requested {
        Err(e) => Err(format!("client.manual_failover: {e}")),
        Ok(()) => {
            let deadline = tokio::time::Instant::from_std(t_req + s.deadline);
            loop {
                if topo_rx.borrow_and_update().topology.master.as_ref() == Some(&target) {
                    break Ok(Instant::now());
                }
                match tokio::time::timeout_at(deadline, topo_rx.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break Err("the client's topology channel closed".to_string()),
                    Err(_) => {
                        break Err(format!(
                            "the client's topology did not name {target} as master within {:?} of the request; it holds {:?}; <root>/nodes holds {:?}",
                            s.deadline,
                            client.topology().topology,
                            harness::read_topology(zk, root).await
                        ))
                    }
                }
            }
        }
    };
    if switched.is_ok() {
        tokio::time::sleep(Duration::from_millis(s.opts.write_ms)).await;
    }
    let log = writer
        .stop(hard_deadline.saturating_duration_since(Instant::now()))
        .await;
    let t_topo = switched?;
    if log
        .errors
        .iter()
        .any(|e| e.error.starts_with("no answer within"))
    {
        return Err("a write was still unanswered at the run's deadline".to_string());
    }
    let topo = client.topology().topology;
    drop(topo_rx);
    drop(client);

    // 3. The figures.
    let acks = &log.acks;
    if acks.len() < 2 {
        return Err(format!("only {} write(s) acknowledged", acks.len()));
    }
    let mut gaps: Vec<(Duration, Instant, Instant)> = acks
        .windows(2)
        .map(|w| (w[1].at.duration_since(w[0].at), w[0].at, w[1].at))
        .collect();
    let (pause, from, to) = gaps
        .iter()
        .copied()
        .max_by_key(|g| g.0)
        .ok_or_else(|| "no gap".to_string())?;
    gaps.sort_by_key(|g| g.0);
    let median_gap = gaps[gaps.len() / 2].0;
    let before = acks.iter().filter(|a| a.at < t_req).count();

    // 4. Every acknowledged write is on the new master.
    let lost = check_lost(&target, &log.acked_seqs()).await?.len();

    Ok(SwitchoverOk {
        pause,
        pause_from_ms: rel_ms(from, t_req),
        pause_to_ms: rel_ms(to, t_req),
        request_to_topology: t_topo.duration_since(t_req),
        new_master: target,
        epoch: topo.epoch,
        acked: acks.len(),
        rate_before: before as f64 / t_req.duration_since(t_start).as_secs_f64(),
        median_gap,
        errors: log.errors.len(),
        first_error: log.errors.first().map(|e| e.error.clone()),
        lost,
    })
}
