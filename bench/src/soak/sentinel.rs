//! `soak` phase 2: 3 Redis Sentinels on a fresh trio, the same light writer through a
//! Sentinel-aware redis-rs client; failovers, `+sdown` / `+odown`, writer pauses.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use redis_failover_tests::writer::Writer;
use redis_failover_tests::RedisGroup;

use super::load::Loaded;
use super::{Counts, Opts, PhaseOut};
use crate::load::load_average;
use crate::nodes::Trio;
use crate::sentinel::{
    ready_and_tapped, start_watched, SentinelProgram, SentinelWriter, Sentinels,
};

/// Runs the phase.
pub(super) async fn phase(
    o: &Opts,
    hogs: usize,
    interrupted: &AtomicBool,
) -> Result<PhaseOut, String> {
    let program = SentinelProgram::find()?;
    eprintln!("soak: sentinel: starting the trio and 3 sentinels ...");
    let trio = start_watched(program, o.sentinel_down_after_ms, 5000).await?;
    let out = trio
        .measure(15, |group, sentinels| {
            measure(o, hogs, interrupted, group, sentinels)
        })
        .await;
    trio.teardown().await;
    out
}

async fn measure(
    o: &Opts,
    hogs: usize,
    interrupted: &AtomicBool,
    group: &Arc<RedisGroup>,
    sentinels: &Arc<Sentinels>,
) -> Result<PhaseOut, String> {
    let tap = ready_and_tapped(sentinels, Duration::from_secs(o.timeout_secs)).await?;
    let writer = Writer::spawn(
        SentinelWriter::new(
            &sentinels.ports(),
            Duration::from_millis(o.command_timeout_ms),
            Duration::from_secs(1),
            Duration::from_millis(10),
        )?,
        Some(Duration::from_millis(o.write_every_ms)),
        Duration::from_secs(10),
    );
    let master = Trio::of(group).master;
    let mut load = Loaded::start(o, hogs)?;
    let t_start = load.t_start;
    println!(
        "sentinel: 3 sentinels, quorum 2, down-after-milliseconds {}, failover-timeout 5000; load started ({hogs} busy loops); master {master}",
        o.sentinel_down_after_ms
    );
    let mut seen = 0usize;
    let mut failed = None;
    while let Some(progress) = load.clock.tick(interrupted).await {
        let evs = tap.events();
        for e in evs.iter().skip(seen) {
            if e.at >= t_start
                && matches!(
                    e.channel.as_str(),
                    "+switch-master" | "+odown" | "+try-failover" | "+tilt"
                )
            {
                println!(
                    "sentinel: +{:.1} s: [sentinel {}] {} {}",
                    e.at.duration_since(t_start).as_secs_f64(),
                    e.sentinel,
                    e.channel,
                    e.payload
                );
            }
        }
        seen = evs.len();
        if progress {
            println!(
                "sentinel: {:.0} min: {} failover(s), {} writes acked, load {}",
                load.clock.minutes(),
                tap.failovers(t_start),
                writer.acked(),
                load_average()
            );
        }
        if let Some(e) = sentinels.exited() {
            failed = Some(e);
            break;
        }
    }
    let per = |ch: &str, master_only: bool| tap.counts(ch, t_start, master_only);
    let sum = |v: Vec<usize>| v.iter().sum::<usize>();
    let fmt = |v: Vec<usize>| {
        format!(
            "{} ({})",
            v.iter().sum::<usize>(),
            v.iter().map(usize::to_string).collect::<Vec<_>>().join("+")
        )
    };
    let settings = format!(
        "3 sentinels, quorum 2, `down-after-milliseconds {}`, `failover-timeout 5000`",
        o.sentinel_down_after_ms
    );
    let mut out = load.end(failed, writer, "Sentinel", settings).await?;
    out.counts = Counts {
        failovers: tap.failovers(t_start) as u64,
        changes: fmt(per("+switch-master", false)),
        sdown_master: sum(per("+sdown", true)),
        sdown_any: sum(per("+sdown", false)),
        odown: fmt(per("+odown", false)),
        other: format!(
            "+try-failover {}, +tilt {}",
            fmt(per("+try-failover", false)),
            fmt(per("+tilt", false))
        ),
    };
    Ok(out)
}
