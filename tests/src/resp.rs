//! Talking RESP as a client sees it: a raw connection whose replies are read exactly as sent
//! (errors included), replies shown as text, and the real `redis-cli`. For the endpoints that
//! speak Redis's protocol (the Sentinel endpoint) and checks on plain nodes.

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis::Value;

use crate::spawn_guarded;

/// Bound on one step (connect, write) of a [`Raw`] connection.
const STEP: Duration = Duration::from_secs(5);
/// Bound on waiting for a reply on a [`Raw`] connection.
const READ_DEADLINE: Duration = Duration::from_secs(30);

/// One RESP connection, written to by hand and read with the `redis` crate's parser, so
/// that replies are seen exactly as sent (errors included).
pub struct Raw {
    stream: TcpStream,
    parser: redis::Parser,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), STEP)
            .expect("connect to the Sentinel endpoint");
        stream
            .set_read_timeout(Some(READ_DEADLINE))
            .expect("timeout");
        stream.set_write_timeout(Some(STEP)).expect("timeout");
        Raw {
            stream,
            parser: redis::Parser::new(),
        }
    }

    pub fn send(&mut self, args: &[&str]) {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.stream.write_all(out.as_bytes()).expect("write");
    }

    pub fn read(&mut self) -> Value {
        self.try_read().expect("a reply within the deadline")
    }

    /// The next reply, or why none came (the connection closed, or the deadline passed).
    pub fn try_read(&mut self) -> redis::RedisResult<Value> {
        self.parser.parse_value(&mut self.stream)
    }

    pub fn cmd(&mut self, args: &[&str]) -> Value {
        self.send(args);
        self.read()
    }

    /// `cmd`, shown as text.
    pub fn text(&mut self, args: &[&str]) -> String {
        show(&self.cmd(args))
    }

    /// Reads until a reply shown as text contains `needle`; panics (listing what came) at
    /// the deadline.
    pub fn read_until(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + READ_DEADLINE;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            let v = show(&self.read());
            if v.contains(needle) {
                return v;
            }
            seen.push(v);
        }
        panic!("no message with {needle:?}; got {seen:?}");
    }
}

/// A reply as text: arrays as `[a, b]`, errors as `CODE detail`, nil as `nil`.
pub fn show(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::Int(i) => i.to_string(),
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Okay => "OK".into(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        Value::ServerError(e) => format!("{} {}", e.code(), e.details().unwrap_or_default()),
        other => format!("{other:?}"),
    }
}

/// A flat field/value array (`SENTINEL MASTER`) as a map.
pub fn fields(v: &Value) -> HashMap<String, String> {
    let Value::Array(items) = v else {
        panic!("not an array: {v:?}")
    };
    items
        .chunks(2)
        .map(|kv| (show(&kv[0]), show(&kv[1])))
        .collect()
}

/// An array of flat field/value arrays (`SENTINEL REPLICAS`) as maps.
pub fn entries(v: &Value) -> Vec<HashMap<String, String>> {
    let Value::Array(items) = v else {
        panic!("not an array: {v:?}")
    };
    items.iter().map(fields).collect()
}

/// The real `redis-cli` (raw output, one reply element a line), killed after 10 s.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let stdout = out.reopen().expect("reopen");
    let stderr = stdout.try_clone().expect("clone");
    let mut argv = vec!["-p".to_string(), port.to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let child = spawn_guarded(move || {
        let mut c = Command::new("redis-cli");
        c.args(argv)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        c
    })
    .expect("redis-cli runs");
    assert!(
        child.wait_exit(Duration::from_secs(10)).is_some(),
        "redis-cli {args:?} did not finish within 10 s"
    );
    std::fs::read_to_string(out.path()).expect("redis-cli output")
}
