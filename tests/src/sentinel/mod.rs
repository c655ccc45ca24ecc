//! Redis Sentinel, side by side with our managers: real `redis-sentinel` processes and a
//! Sentinel-aware writer, for the partition suite ([`crate::partition`]) and the bench
//! programs.
//!
//! * [`procs`]: Sentinel processes on loopback or on hosts of a [`crate::netns::Net`],
//!   monitoring one master as [`MASTER_NAME`], and one-shot commands to them;
//! * [`writer`]: a Sentinel-aware redis-rs writer for [`crate::writer::Writer`].

pub mod procs;
pub mod writer;

pub use procs::{
    sentinel_cmd, sentinel_cmd_at, wait_sentinel_ping, SentinelProgram, SentinelSettings, Sentinels,
};
pub use writer::SentinelWriter;

/// The master's name in every sentinel's config (and our managers' default `--group-name`).
pub const MASTER_NAME: &str = "mymaster";
