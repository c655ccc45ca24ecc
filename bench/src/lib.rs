//! Helpers shared by the benchmark programs (`src/bin/*`): logging, addresses, connections
//! with deadlines, unit conversions.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use redis_failover_client::NodeAddr;

/// Logs to stderr, `warn` unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// `127.0.0.1:port`.
pub fn node_addr(port: u16) -> NodeAddr {
    NodeAddr::new("127.0.0.1", port)
}

/// A plain redis-rs connection to `addr`, set up within `connect`, each reply within
/// `response`.
pub async fn open(
    addr: &NodeAddr,
    connect: Duration,
    response: Duration,
) -> Result<MultiplexedConnection, String> {
    let client =
        redis::Client::open(format!("redis://{addr}/")).map_err(|e| format!("{addr}: {e}"))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect))
        .set_response_timeout(Some(response));
    match tokio::time::timeout(
        connect + Duration::from_millis(10),
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("connecting to {addr}: {e}")),
        Err(_) => Err(format!(
            "connecting to {addr}: no connection within {} ms",
            connect.as_millis()
        )),
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
