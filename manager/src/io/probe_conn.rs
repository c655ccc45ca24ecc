//! The poller's connection to one node: a socket owned by the probing task, each request
//! written and its reply read in place (RESP2 through `redis-protocol`'s codec).
//!
//! Over TLS (`--tls`) the socket is wrapped by tokio-rustls with the same settings as the
//! redis crate's connections ([`redis_failover_client::Tls`]).
//!
//! Everything else talks to Redis through the redis crate's multiplexed connection, which
//! runs a background task and passes each request and reply through channels. Probes are
//! the manager's most frequent act (over a thousand a second for 100 groups) and, measured
//! with `perf`, that machinery was about a quarter of its CPU at rest: here a probe is one
//! write and one read by the task that asks.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use redis_failover_client::NodeAddr;
use redis_protocol::bytes::Bytes;
use redis_protocol::codec::Resp2;
use redis_protocol::error::RedisProtocolErrorKind;
pub use redis_protocol::resp2::types::BytesFrame as Frame;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_util::codec::Framed;

use crate::core::info::{parse_info_replication, parse_info_server, Identity, NodeInfo};
use crate::io::node::{AuthProblem, Connector, NodeError};

pub struct ProbeConn {
    io: Framed<Stream, Resp2>,
}

/// The socket, plain or under TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Wraps `tcp` in TLS as `tls` says, verifying the node's certificate.
async fn handshake(
    tls: &redis_failover_client::Tls,
    addr: &NodeAddr,
    tcp: TcpStream,
) -> Result<Stream, NodeError> {
    let config = tls
        .rustls_config()
        .map_err(|e| NodeError::Tls(e.to_string()))?;
    let name = rustls::pki_types::ServerName::try_from(tls.name_for(addr).to_string())
        .map_err(|e| NodeError::Tls(format!("server name {:?}: {e}", tls.name_for(addr))))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map(|s| Stream::Tls(Box::new(s)))
        .map_err(io_error)
}

impl ProbeConn {
    /// Connects, and logs in when credentials are configured, within `timeout`.
    pub async fn connect(
        connector: &Connector,
        addr: &NodeAddr,
        timeout: Duration,
    ) -> Result<ProbeConn, NodeError> {
        let setup = async {
            let stream = TcpStream::connect((addr.host.as_str(), addr.port))
                .await
                .map_err(io_error)?;
            stream.set_nodelay(true).map_err(io_error)?;
            let stream = match connector.tls() {
                Some(tls) => handshake(tls, addr, stream).await?,
                None => Stream::Plain(stream),
            };
            let mut conn = ProbeConn {
                io: Framed::new(stream, Resp2::default()),
            };
            if let Some(auth) = connector.auth_args() {
                let args: Vec<&str> = auth.iter().map(String::as_str).collect();
                conn.request(&args).await?;
            } else if connector.tls().is_some() {
                // A node refuses a missing client certificate after the handshake: seen
                // here, where it is explained, rather than on the first probe. Any reply
                // (even an error: PING may be denied by ACL) means it was accepted.
                if let Err(
                    e @ (NodeError::Connection(_) | NodeError::NotRedis(_) | NodeError::Tls(_)),
                ) = conn.request(&["PING"]).await
                {
                    return Err(e);
                }
            }
            Ok(conn)
        };
        match tokio::time::timeout(timeout, setup).await {
            Err(_) => Err(NodeError::Timeout(timeout)),
            Ok(Err(NodeError::Auth(_))) if connector.auth_args().is_some() => {
                Err(connector.why_auth_failed(addr, timeout).await)
            }
            Ok(Err(e)) => Err(connector.explain_tls(addr, e, timeout).await),
            Ok(r) => r,
        }
    }

    /// `INFO replication`, and `replica-priority` from `CONFIG GET` unless the caller knows
    /// it (`known`), as [`crate::io::node::read_info_with`] reads them.
    pub async fn info(&mut self, known: Option<u32>) -> Result<NodeInfo, NodeError> {
        let text: String = match self.request(&["INFO", "replication"]).await? {
            Frame::BulkString(b) | Frame::SimpleString(b) => String::from_utf8_lossy(&b).into(),
            other => return Err(NodeError::NotRedis(format!("INFO answered {other:?}"))),
        };
        let priority = match known {
            Some(p) => Some(p),
            // CONFIG may be renamed or forbidden by ACL; INFO's slave_priority then serves.
            None => match self.request(&["CONFIG", "GET", "replica-priority"]).await {
                Ok(Frame::Array(kv)) => kv.get(1).and_then(frame_text).and_then(|v| v.parse().ok()),
                Ok(_) | Err(NodeError::Reply(_) | NodeError::Auth(_)) => None,
                Err(e) => return Err(e),
            },
        };
        parse_info_replication(&text, priority).map_err(NodeError::NotRedis)
    }

    /// `ROLE`, the light probe between two `INFO`s of a master: whether the node still
    /// answers `master` (a short fixed-shape reply, nothing parsed beyond its first word).
    pub async fn still_master(&mut self) -> Result<bool, NodeError> {
        match self.request(&["ROLE"]).await? {
            Frame::Array(parts) => Ok(matches!(
                parts.first(),
                Some(Frame::BulkString(b) | Frame::SimpleString(b)) if b == "master"
            )),
            other => Err(NodeError::NotRedis(format!("ROLE answered {other:?}"))),
        }
    }

    /// The plain socket, taken out of the runtime's hands (its readiness no longer watched)
    /// and left non-blocking. `None` over TLS, or with bytes buffered either way.
    pub fn into_std(self) -> Option<std::net::TcpStream> {
        if !self.io.read_buffer().is_empty() || !self.io.write_buffer().is_empty() {
            return None;
        }
        match self.io.into_inner() {
            Stream::Plain(tcp) => tcp.into_std().ok(),
            Stream::Tls(_) => None,
        }
    }

    /// Writes `cmd` `n` times in one write, without reading: the node runs them one after
    /// the other, a blocking one once the one before it has ended.
    pub async fn queue(&mut self, cmd: &Frame, n: usize) -> Result<(), NodeError> {
        for _ in 0..n {
            self.io.feed(cmd.clone()).await.map_err(protocol_error)?;
        }
        SinkExt::<Frame>::flush(&mut self.io)
            .await
            .map_err(protocol_error)
    }

    /// The next reply to what was queued; `None` once the node closed the connection
    /// cleanly (as the kernel does for a process that exits), as opposed to a reset, which
    /// is an `Err`.
    pub async fn reply(&mut self) -> Result<Option<Frame>, NodeError> {
        match self.io.next().await {
            None => Ok(None),
            Some(Err(e)) => Err(protocol_error(e)),
            Some(Ok(Frame::Error(e))) => Err(error_reply(&e)),
            Some(Ok(frame)) => Ok(Some(frame)),
        }
    }

    /// Sends one command and reads its reply, `None` as [`ProbeConn::reply`] says.
    pub async fn ask(&mut self, args: &[&str]) -> Result<Option<Frame>, NodeError> {
        self.queue(&command(args), 1).await?;
        self.reply().await
    }

    /// Sends one command and reads its reply; an error reply is an `Err` named as the
    /// redis crate names it (`NOAUTH`, `WRONGPASS`, `NOPERM` are [`NodeError::Auth`]).
    async fn request(&mut self, args: &[&str]) -> Result<Frame, NodeError> {
        self.ask(args)
            .await?
            .ok_or_else(|| NodeError::Connection("closed by the node".into()))
    }
}

/// Which process answered `INFO server` with `frame`; `None` if it is not such an answer.
pub fn identity(frame: &Frame) -> Option<Identity> {
    parse_info_server(&frame_text(frame)?).ok()
}

/// `args` as the command frame a client sends.
pub fn command(args: &[&str]) -> Frame {
    Frame::Array(
        args.iter()
            .map(|a| Frame::BulkString(Bytes::copy_from_slice(a.as_bytes())))
            .collect(),
    )
}

fn frame_text(f: &Frame) -> Option<String> {
    match f {
        Frame::BulkString(b) | Frame::SimpleString(b) => Some(String::from_utf8_lossy(b).into()),
        _ => None,
    }
}

fn io_error(e: std::io::Error) -> NodeError {
    let text = e.to_string().replace(['\r', '\n'], " ");
    if let Some(problem) = crate::io::node::tls_problem(&text) {
        return NodeError::Tls(problem);
    }
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => NodeError::Refused(text),
        std::io::ErrorKind::TimedOut => NodeError::Timeout(Duration::ZERO),
        _ => NodeError::Connection(text),
    }
}

fn protocol_error(e: redis_protocol::error::RedisProtocolError) -> NodeError {
    match e.kind() {
        RedisProtocolErrorKind::IO(_) => {
            let text = e.details().replace(['\r', '\n'], " ");
            match crate::io::node::tls_problem(&text) {
                Some(problem) => NodeError::Tls(problem),
                None => NodeError::Connection(text),
            }
        }
        _ => NodeError::NotRedis(e.details().to_string()),
    }
}

/// An error reply, classified as `From<RedisError>` does for the other connections.
fn error_reply(e: &str) -> NodeError {
    let line = e.replace(['\r', '\n'], " ");
    match line.split_whitespace().next().unwrap_or("") {
        "NOAUTH" => NodeError::Auth(AuthProblem::Required),
        "WRONGPASS" => NodeError::Auth(AuthProblem::WrongPass),
        "NOPERM" => NodeError::Auth(AuthProblem::NoPerm(line)),
        _ => NodeError::Reply(line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_are_classified_as_for_the_other_connections() {
        assert!(matches!(
            error_reply("NOAUTH Authentication required."),
            NodeError::Auth(AuthProblem::Required)
        ));
        assert!(matches!(
            error_reply("WRONGPASS invalid username-password pair or user is disabled."),
            NodeError::Auth(AuthProblem::WrongPass)
        ));
        assert!(matches!(
            error_reply("NOPERM User probe has no permissions to run the 'info' command"),
            NodeError::Auth(AuthProblem::NoPerm(_))
        ));
        assert!(matches!(
            error_reply("LOADING Redis is loading the dataset in memory"),
            NodeError::Reply(_)
        ));
    }

    #[tokio::test]
    async fn a_refused_port_is_refused_and_a_closed_connection_is_a_connection_error() {
        // Bound and never listening: the port refuses connections and stays ours, so no
        // other process of a parallel test run can take it in between.
        let held = tokio::net::TcpSocket::new_v4().expect("socket");
        held.bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let port = held.local_addr().expect("addr").port();
        let addr = NodeAddr::new("127.0.0.1", port);
        let connector = Connector::new(Default::default());
        let refused = ProbeConn::connect(&connector, &addr, Duration::from_secs(2)).await;
        assert!(
            matches!(refused, Err(NodeError::Refused(_))),
            "{:?}",
            refused.err()
        );

        // A server that accepts, then closes without answering.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.expect("accept");
            drop(s);
        });
        let addr = NodeAddr::new("127.0.0.1", port);
        let mut conn = ProbeConn::connect(&connector, &addr, Duration::from_secs(2))
            .await
            .expect("connect");
        server.await.expect("server");
        let closed = tokio::time::timeout(Duration::from_secs(5), conn.info(Some(0)))
            .await
            .expect("bounded");
        assert!(
            matches!(closed, Err(NodeError::Connection(_))),
            "{:?}",
            closed.err()
        );
    }

    /// A server that reads until XREAD arrives, then closes the connection with a FIN, or
    /// with a RST (`SO_LINGER` 0) as a firewall's REJECT would.
    async fn parked_read_end(reset: bool) -> Result<Option<Frame>, NodeError> {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 4096];
            loop {
                let n = s.read(&mut buf).await.expect("read");
                if n == 0 || String::from_utf8_lossy(&buf[..n]).contains("XREAD") {
                    break;
                }
            }
            if reset {
                // Lingering 0 s turns the close into a RST, which is the point here.
                #[allow(deprecated)]
                s.set_linger(Some(Duration::ZERO)).expect("linger");
            }
        });
        let connector = Connector::new(Default::default());
        let addr = NodeAddr::new("127.0.0.1", port);
        let mut conn = ProbeConn::connect(&connector, &addr, Duration::from_secs(5))
            .await
            .expect("connect");
        conn.queue(&command(&["XREAD", "BLOCK", "100", "STREAMS", "k", "$"]), 2)
            .await
            .expect("queued");
        let end = tokio::time::timeout(Duration::from_secs(5), conn.reply())
            .await
            .expect("the server ends the read");
        server.await.expect("server task");
        end
    }

    #[tokio::test]
    async fn a_clean_close_is_told_apart_from_a_reset() {
        let fin = parked_read_end(false).await;
        assert!(matches!(fin, Ok(None)), "FIN: {fin:?}");
        let rst = parked_read_end(true).await;
        assert!(
            matches!(rst, Err(NodeError::Connection(_))),
            "a reset is not a clean close: {rst:?}"
        );
    }
}
