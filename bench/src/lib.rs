//! The benchmark programs' library (`src/bin/*` are thin programs over it).
//!
//! Shared by every program:
//! * [`scaffold`]: logging, runtimes, a throwaway ZooKeeper, the manager binary, exit codes;
//! * [`time`] and [`stats`]: what the reports need beyond `redis_failover_tests::stats`
//!   (microseconds, the time of day, random delays, percentiles);
//! * [`tasks`] and [`wait`]: task failures, blocking work off the runtime, bounded waits;
//! * [`nodes`] and [`znodes`]: the Redis nodes and the managers' znodes as the bench reads
//!   them;
//! * [`inprocess`] and [`managers`]: a manager in this process, or manager processes;
//! * [`watched`]: a trio with its watchers (managers or sentinels) for one run;
//! * [`failure`]: the crash and hang of the master;
//! * [`sentinel`], [`load`], [`plot`]: Redis Sentinel, CPU hogs and logs, PNG timelines.
//!
//! The writer with its acknowledgement log and the lost-write check are
//! `redis_failover_tests::writer`'s, shared with the tests.
//!
//! Each program keeps its measurements in a module of its own ([`client_bench`],
//! [`failover_bench`], [`ha_bench`], [`scale_bench`], [`sentinel_bench`], [`soak`], [`zk_outage`]; `chaos`'s
//! engine is `redis_failover_tests::chaos`, `partition`'s is `redis_failover_tests::partition`),
//! behind a thin `src/bin/<name>.rs`.

pub mod failure;
pub mod inprocess;
pub mod load;
pub mod managers;
pub mod nodes;
pub mod plot;
pub mod scaffold;
pub mod sentinel;
pub mod stats;
pub mod tasks;
pub mod time;
pub mod wait;
pub mod watched;
pub mod znodes;

pub mod client_bench;
pub mod failover_bench;
pub mod ha_bench;
pub mod scale_bench;
pub mod sentinel_bench;
pub mod soak;
pub mod zk_outage;
