//! Integration-test harness for redis_failover.
//!
//! Starts REAL throwaway processes on loopback — a standalone ZooKeeper 3.8 (the Debian
//! `zookeeper.jar`, run directly with `java ... ZooKeeperServerMain zoo.cfg`) and
//! `redis-server` 7.0 instances without persistence — and gives tests handles to stop, kill,
//! freeze (`SIGSTOP`) and restart them.
//!
//! Process hygiene, so that a panicking test never leaves strays behind:
//! * every handle is a Drop guard that kills its process by pid (after `SIGCONT`, in case it
//!   was stopped) and reaps it within a deadline;
//! * as a backstop every child gets `prctl(PR_SET_PDEATHSIG, SIGKILL)`. The kernel sends that
//!   signal when the *thread* that forked the child exits, so all children are forked by one
//!   long-lived spawner thread ([`spawn_guarded`]), which lives as long as the test binary.
//!
//! Every wait is a deadline-bounded poll ([`wait_until`], [`wait_until_async`]).
//!
//! The modules, one job each:
//! * `process`: the spawner thread, [`GuardedChild`], and where a process runs ([`Place`]);
//! * `zookeeper`: [`ZkServer`], [`shared_zk`], four-letter commands and the CLI;
//!   `zk_ensemble`: [`ZkEnsemble`], 3 servers as production runs them (fsync on);
//! * `redis_node`, `redis_group`, `redis_helpers`: [`RedisNode`], [`RedisGroup`], one-shot
//!   commands, roles and async connections;
//! * [`manager`]: the node manager in-process ([`manager::Manager`]) and N managers
//!   in-process or as processes ([`manager::ManagerSet`]), ZooKeeper reads of what they
//!   publish;
//! * `scene`: a test's fresh root and ZooKeeper session ([`Scene`]);
//! * [`writer`]: a writer with an acknowledgement log and the lost-write check;
//! * [`netns`]: hosts as network namespaces on a bridge, partitions with iptables, clients
//!   on a host's thread; [`partition`]: the partition scenarios run on it;
//! * [`sentinel`]: Redis Sentinel processes (loopback or on hosts) and a Sentinel writer;
//! * [`resp`]: a raw RESP connection, replies as text, the real `redis-cli`;
//! * [`chaos`]: the chaos engine; [`http`]: a tiny HTTP client; [`stats`]: min/median/max;
//! * [`haproxy`]: HAProxy on the documented example config;
//! * [`tls`]: certificates made at test time and a trio of nodes wired by their TLS ports;
//! * `wait`, `util`: polls, ports, roots, tracing, the clock in Unix ms.

pub use redis;

pub mod chaos;
pub mod haproxy;
pub mod http;
pub mod manager;
pub mod netns;
pub mod partition;
mod process;
mod redis_group;
mod redis_helpers;
mod redis_node;
pub mod resp;
mod scene;
pub mod sentinel;
pub mod stats;
pub mod tls;
mod util;
mod wait;
pub mod writer;
mod zk_ensemble;
mod zookeeper;

pub use process::{find_program, spawn_child, spawn_guarded, GuardedChild, Place};
pub use redis_group::RedisGroup;
pub use redis_helpers::{
    connect_async, incr_twice_in_multi, parse_role, redis_cmd_at, redis_cmd_timeout, NodeRole,
};
pub use redis_node::{check_redis, server_bin, RedisNode};
pub use scene::{group_topology, Scene};
pub use util::{
    comma_list, free_port, init_tracing, log_tail, panic_text, pid_alive, unique_root, unix_ms,
    unix_ms_at,
};
pub use wait::{for_a_while, wait_client_follows, wait_showing_log, wait_until, wait_until_async};
pub use zk_ensemble::ZkEnsemble;
pub use zookeeper::{
    check_zookeeper, shared_zk, zk_cli, zk_four_letter, zk_four_letter_at, ZkServer,
};
