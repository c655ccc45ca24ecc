//! The writes of `scale_bench rack`: `SET rack:<group>:<n> <n>` back to back through a
//! `redis_failover_client::Client` (for the harness's `Writer`, which logs every
//! acknowledgement with its time), and the check that every acknowledged write reads back
//! with its value (`MGET`) from the group's new master.

use std::time::Duration;

use redis::AsyncCommands;
use redis_failover_client::{Client, NodeAddr};
use redis_failover_tests::connect_async;
use redis_failover_tests::writer::{SeqWriter, SetFuture, WriteLog};

use super::groups::Groups;

/// Keys per `MGET` of the loss check.
const CHECK_BATCH: usize = 1000;

/// `SET rack:<group>:<n> <n>` through a client.
pub(super) struct RackWriter {
    pub client: Client,
    pub prefix: String,
}

impl SeqWriter for RackWriter {
    fn set<'a>(&'a mut self, _key: &'a str, n: u64) -> SetFuture<'a> {
        Box::pin(async move {
            let key = format!("{}{n}", self.prefix);
            self.client
                .set::<_, _, ()>(&key, n)
                .await
                .map_err(|e| e.to_string())?;
            Ok(self.client.topology().topology.master)
        })
    }
}

/// `rack:g<i+1>:`: the prefix of group `i`'s keys.
pub(super) fn prefix(group: usize) -> String {
    format!("rack:{}:", Groups::name(group))
}

/// How many acknowledged writes of `log` `node` does not hold with their value
/// (`GET <prefix><n>` is not `n`).
pub(super) async fn lost_writes(
    node: &NodeAddr,
    prefix: &str,
    log: &WriteLog,
) -> Result<usize, String> {
    let mut conn = connect_async(node, Duration::from_secs(5)).await?;
    let seqs = log.acked_seqs();
    let mut lost = 0;
    for chunk in seqs.chunks(CHECK_BATCH) {
        let keys: Vec<String> = chunk.iter().map(|n| format!("{prefix}{n}")).collect();
        let values: Vec<Option<u64>> = tokio::time::timeout(
            Duration::from_secs(10),
            redis::cmd("MGET").arg(&keys).query_async(&mut conn),
        )
        .await
        .map_err(|_| format!("loss check: MGET on {node} timed out"))?
        .map_err(|e| format!("loss check: MGET on {node}: {e}"))?;
        lost += chunk
            .iter()
            .zip(&values)
            .filter(|(n, v)| **v != Some(**n))
            .count();
    }
    Ok(lost)
}
