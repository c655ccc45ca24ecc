//! `--webhook-url`: after every published change of master the leader POSTs the failover's
//! history record (JSON, as in `<root>/failover_history`) to the operator's URL. Retried with
//! backoff until a 2xx answer, [`ATTEMPTS`] times at most, each bounded by [`ATTEMPT_TIMEOUT`];
//! in the background, so that it never delays a failover. Plain `http://` (a local relay can
//! forward to an HTTPS service).

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// How many times a notification is sent before giving up.
pub const ATTEMPTS: u32 = 5;
/// The bound of one attempt (connect, send, answer).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause before the second attempt; doubled after each failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Where notifications go: `http://host:port/path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    host: String,
    port: u16,
    path: String,
}

impl Webhook {
    /// Parses `http://host[:port][/path]`; the error names what is wrong.
    pub fn parse(url: &str) -> Result<Webhook, String> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| format!("--webhook-url {url:?}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "--webhook-url {url:?}: only http:// is supported (forward to HTTPS through a local relay)"
            ));
        }
        let host = uri
            .host()
            .ok_or_else(|| format!("--webhook-url {url:?}: no host"))?
            .to_string();
        Ok(Webhook {
            host,
            port: uri.port_u16().unwrap_or(80),
            path: uri
                .path_and_query()
                .map_or("/".to_string(), |p| p.as_str().to_string()),
        })
    }

    /// POSTs `body` until a 2xx answer or [`ATTEMPTS`] tries; says how it ended (the status,
    /// or each attempt's error) and whether it was delivered.
    pub async fn notify(&self, body: Vec<u8>) -> (bool, String) {
        let mut backoff = FIRST_BACKOFF;
        let mut errors = Vec::new();
        for attempt in 1..=ATTEMPTS {
            match tokio::time::timeout(ATTEMPT_TIMEOUT, self.post(body.clone())).await {
                Ok(Ok(status)) if status.is_success() => {
                    return (true, format!("{status} after {attempt} attempt(s)"));
                }
                Ok(Ok(status)) => errors.push(status.to_string()),
                Ok(Err(e)) => errors.push(e),
                Err(_) => errors.push(format!(
                    "no answer within {} ms",
                    ATTEMPT_TIMEOUT.as_millis()
                )),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        (
            false,
            format!("gave up after {ATTEMPTS} attempts: {}", errors.join("; ")),
        )
    }

    async fn post(&self, body: Vec<u8>) -> Result<hyper::StatusCode, String> {
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let driver = tokio::spawn(conn);
        let request = hyper::Request::post(self.path.as_str())
            .header(hyper::header::HOST, format!("{}:{}", self.host, self.port))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("request: {e}"))?;
        let answer = sender.send_request(request).await;
        let result = match answer {
            Ok(response) => {
                let status = response.status();
                // Read the answer to its end, so that the connection closes cleanly.
                let _ = response.into_body().collect().await;
                Ok(status)
            }
            Err(e) => Err(format!("send: {e}")),
        };
        driver.abort();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let w = Webhook::parse("http://127.0.0.1:9000/hooks/redis?x=1").expect("ok");
        assert_eq!(
            (w.host.as_str(), w.port, w.path.as_str()),
            ("127.0.0.1", 9000, "/hooks/redis?x=1")
        );
        assert_eq!(Webhook::parse("http://example.org").expect("ok").port, 80);
        let https = Webhook::parse("https://example.org/x").expect_err("https");
        assert!(https.contains("only http:// is supported"), "{https}");
        assert!(Webhook::parse("not a url at all").is_err());
    }
}
