//! A Sentinel-aware writer as a typical redis-rs application writes it.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{AsyncConnectionConfig, ConnectionAddr};
use redis_failover_client::NodeAddr;

use super::MASTER_NAME;
use crate::writer::{SeqWriter, SetFuture};

/// A Sentinel-aware writer as a typical redis-rs application writes it: it asks the
/// sentinels for the master (`redis::sentinel::SentinelClient`, which also checks that the
/// named node answers `ROLE` as a master), keeps one multiplexed connection to it, and after
/// any error drops that connection and asks the sentinels again on the next write (pausing
/// `retry_pause` when the sentinels could not name a reachable master). Its keys can have a
/// prefix ([`SentinelWriter::namespace`]), like our client's namespace.
pub struct SentinelWriter {
    sentinel: SentinelClient,
    namespace: String,
    conn: Option<(NodeAddr, MultiplexedConnection)>,
    config: AsyncConnectionConfig,
    connect_timeout: Duration,
    lookup_timeout: Duration,
    retry_pause: Duration,
}

impl SentinelWriter {
    /// Over the sentinels on 127.0.0.1:`ports`; each write waits at most `command_timeout`
    /// for its reply, a connection at most `connect_timeout`.
    pub fn new(
        ports: &[u16],
        command_timeout: Duration,
        connect_timeout: Duration,
        retry_pause: Duration,
    ) -> Result<SentinelWriter, String> {
        let addrs: Vec<NodeAddr> = ports
            .iter()
            .map(|p| NodeAddr::new("127.0.0.1", *p))
            .collect();
        SentinelWriter::over(&addrs, command_timeout, connect_timeout, retry_pause)
    }

    /// [`SentinelWriter::new`] over the sentinels at `sentinels`.
    pub fn over(
        sentinels: &[NodeAddr],
        command_timeout: Duration,
        connect_timeout: Duration,
        retry_pause: Duration,
    ) -> Result<SentinelWriter, String> {
        let urls: Vec<String> = sentinels.iter().map(|a| format!("redis://{a}/")).collect();
        let sentinel = SentinelClient::build(urls, MASTER_NAME, None, SentinelServerType::Master)
            .map_err(|e| format!("SentinelClient::build: {e}"))?;
        Ok(SentinelWriter {
            sentinel,
            namespace: String::new(),
            conn: None,
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(command_timeout)),
            connect_timeout,
            // Up to 3 sentinels are asked at once, each lookup then checks the named master
            // (redis-rs: 1 s connect, 500 ms reply bounds); a bound on the whole lookup.
            lookup_timeout: Duration::from_secs(3),
            retry_pause,
        })
    }

    /// Every key written gets this prefix (`near:` writes `near:seq:N`).
    pub fn namespace(mut self, prefix: impl Into<String>) -> SentinelWriter {
        self.namespace = prefix.into();
        self
    }

    async fn connect(&mut self) -> Result<(), String> {
        let client = tokio::time::timeout(self.lookup_timeout, self.sentinel.async_get_client())
            .await
            .map_err(|_| "asking the sentinels for the master timed out".to_string())?
            .map_err(|e| format!("asking the sentinels for the master: {e}"))?;
        let addr = match client.get_connection_info().addr() {
            ConnectionAddr::Tcp(host, port) => NodeAddr::new(host.clone(), *port),
            other => return Err(format!("unexpected master address {other:?}")),
        };
        let conn = tokio::time::timeout(
            self.connect_timeout + Duration::from_millis(50),
            client.get_multiplexed_async_connection_with_config(&self.config),
        )
        .await
        .map_err(|_| format!("connecting to {addr} timed out"))?
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
        self.conn = Some((addr, conn));
        Ok(())
    }
}

impl SeqWriter for SentinelWriter {
    fn set<'a>(&'a mut self, key: &'a str, n: u64) -> SetFuture<'a> {
        Box::pin(async move {
            if self.conn.is_none() {
                if let Err(e) = self.connect().await {
                    tokio::time::sleep(self.retry_pause).await;
                    return Err(e);
                }
            }
            let Some((addr, conn)) = self.conn.as_mut() else {
                return Err("no connection".into());
            };
            match redis::cmd("SET")
                .arg(format!("{}{key}", self.namespace))
                .arg(n)
                .query_async::<()>(conn)
                .await
            {
                Ok(()) => Ok(Some(addr.clone())),
                Err(e) => {
                    let msg = format!("{addr}: {e}");
                    self.conn = None;
                    Err(msg)
                }
            }
        })
    }
}
