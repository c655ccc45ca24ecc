//! A minimal HTTP/1.1 client for the manager's endpoint in tests: one request per
//! connection, bounded by a read timeout, run on a blocking thread.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One request with an optional JSON body; the status code and the body, or `None` when the
/// endpoint cannot be reached or answers garbage.
pub fn request(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    // Long enough for a POST /failover waiting on the leader.
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// [`request`] from async code.
pub async fn request_async(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
) -> Option<(u16, String)> {
    let (method, path, body) = (method.to_string(), path.to_string(), body.to_string());
    tokio::task::spawn_blocking(move || request(port, &method, &path, &body))
        .await
        .ok()
        .flatten()
}

/// `GET path` returning JSON, for polling.
pub async fn get_json(port: u16, path: &str) -> Option<serde_json::Value> {
    let (code, body) = request_async(port, "GET", path, "").await?;
    (code == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}
