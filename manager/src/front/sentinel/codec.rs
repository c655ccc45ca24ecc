//! RESP2 framing for the Sentinel endpoint (through `redis-protocol`, plus Redis's inline
//! form) and the reply shapes Sentinel uses.

use redis_protocol::bytes::{Bytes, BytesMut};
use redis_protocol::codec::Resp2;
use redis_protocol::error::{RedisProtocolError, RedisProtocolErrorKind};
use redis_protocol::resp2::types::BytesFrame as Frame;
use tokio_util::codec::{Decoder, Encoder};

/// Sentinel commands are a few dozen bytes; anything this large is garbage or an attack.
const MAX_REQUEST_BYTES: usize = 1 << 20;
/// Redis's own bound on an inline command line.
const MAX_INLINE_BYTES: usize = 64 * 1024;

/// RESP2 through `redis-protocol`, plus Redis's inline form (`PING\r\n`, what `nc` and
/// telnet send; split on whitespace, without Redis's quoting), with a bound on how much one
/// request may buffer.
#[derive(Default)]
pub(super) struct Codec(Resp2);

fn protocol_error(msg: &'static str) -> RedisProtocolError {
    RedisProtocolError::new(RedisProtocolErrorKind::DecodeError, msg)
}

impl Decoder for Codec {
    type Item = Frame;
    type Error = RedisProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        loop {
            let Some(&first) = src.first() else {
                return Ok(None);
            };
            // As in Redis, only `*` starts a RESP request; anything else is an inline line.
            if first == b'*' {
                let frame = self.0.decode(src)?;
                if frame.is_none() && src.len() > MAX_REQUEST_BYTES {
                    return Err(protocol_error("request too large"));
                }
                return Ok(frame);
            }
            let Some(end) = src.iter().position(|&b| b == b'\n') else {
                if src.len() > MAX_INLINE_BYTES {
                    return Err(protocol_error("too big inline request"));
                }
                return Ok(None);
            };
            let line = src.split_to(end + 1);
            let args: Vec<Frame> = line[..]
                .split(|b: &u8| b.is_ascii_whitespace())
                .filter(|w| !w.is_empty())
                .map(|w| Frame::BulkString(Bytes::copy_from_slice(w)))
                .collect();
            // Redis ignores empty inline lines.
            if !args.is_empty() {
                return Ok(Some(Frame::Array(args)));
            }
        }
    }
}

/// A RESP3 reply (after `HELLO 3`).
impl Encoder<redis_protocol::resp3::types::BytesFrame> for Codec {
    type Error = RedisProtocolError;

    fn encode(
        &mut self,
        item: redis_protocol::resp3::types::BytesFrame,
        dst: &mut BytesMut,
    ) -> Result<(), Self::Error> {
        redis_protocol::resp3::encode::complete::extend_encode(dst, &item, false).map(|_| ())
    }
}

impl Encoder<Frame> for Codec {
    type Error = RedisProtocolError;

    fn encode(&mut self, item: Frame, dst: &mut BytesMut) -> Result<(), Self::Error> {
        self.0.encode(item, dst)
    }
}

pub(super) fn bulk(s: impl Into<String>) -> Frame {
    Frame::BulkString(Bytes::from(s.into()))
}

pub(super) fn simple(s: &'static str) -> Frame {
    Frame::SimpleString(Bytes::from_static(s.as_bytes()))
}

pub(super) fn ok() -> Frame {
    simple("OK")
}

/// An error reply; `msg` starts with its code (`ERR`, `NOAUTH`, ...). Line breaks, which
/// would end the reply early, become spaces.
pub(super) fn error(msg: impl Into<String>) -> Frame {
    let msg: String = msg
        .into()
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    Frame::Error(msg.into())
}

pub(super) fn int(i: i64) -> Frame {
    Frame::Integer(i)
}

/// A flat field/value array of bulk strings, as Sentinel's MASTER/REPLICAS replies.
pub(super) fn fields(pairs: Vec<(&'static str, String)>) -> Frame {
    Frame::Array(
        pairs
            .into_iter()
            .flat_map(|(k, v)| [bulk(k), bulk(v)])
            .collect(),
    )
}

pub(super) fn arity(command: &str) -> Frame {
    error(format!(
        "ERR wrong number of arguments for '{command}' command"
    ))
}

/// Redis's message: the name and the first arguments, each cut to 128 bytes in all.
pub(super) fn unknown_command(args: &[String]) -> Frame {
    let mut shown = String::new();
    for a in &args[1..] {
        if shown.len() >= 128 {
            break;
        }
        let room = 128 - shown.len();
        shown.push_str(&format!("'{}' ", truncate(a, room)));
    }
    error(format!(
        "ERR unknown command '{}', with args beginning with: {shown}",
        truncate(&args[0], 128)
    ))
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A request's words; Redis wants an array of bulk strings.
pub(super) fn request_args(frame: Frame) -> Result<Vec<String>, String> {
    let Frame::Array(items) = frame else {
        return Err("ERR Protocol error: expected an array of bulk strings".to_string());
    };
    items
        .into_iter()
        .map(|f| match f {
            Frame::BulkString(b) | Frame::SimpleString(b) => {
                Ok(String::from_utf8_lossy(&b).into_owned())
            }
            Frame::Integer(i) => Ok(i.to_string()),
            _ => Err("ERR Protocol error: expected bulk strings in the request".to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_resp_requests_decode() {
        let mut c = Codec::default();
        let mut buf = BytesMut::from(&b"\r\nPING  hello\r\n*1\r\n$4\r\nROLE\r\nSENT"[..]);
        let words = |f: Frame| request_args(f).expect("array of strings");
        assert_eq!(
            words(c.decode(&mut buf).expect("ok").expect("inline")),
            ["PING", "hello"]
        );
        assert_eq!(
            words(c.decode(&mut buf).expect("ok").expect("resp")),
            ["ROLE"]
        );
        assert!(c.decode(&mut buf).expect("ok").is_none(), "incomplete line");
        let mut huge = BytesMut::from(vec![b'x'; MAX_INLINE_BYTES + 1].as_slice());
        assert!(c.decode(&mut huge).is_err());
        let mut huge = BytesMut::from(&b"*1\r\n$99999999\r\n"[..]);
        huge.extend_from_slice(&vec![b'x'; MAX_REQUEST_BYTES + 1]);
        assert!(c.decode(&mut huge).is_err());
    }

    #[test]
    fn unknown_commands_are_reported_like_redis() {
        let args: Vec<String> = ["foo", "bar", "baz"].map(String::from).to_vec();
        assert_eq!(
            unknown_command(&args),
            error("ERR unknown command 'foo', with args beginning with: 'bar' 'baz' ")
        );
        let long = vec!["x".to_string(), "y".repeat(300), "z".into()];
        let Frame::Error(msg) = unknown_command(&long) else {
            panic!("an error")
        };
        assert!(msg.len() < 200, "{msg}");
        assert_eq!(error("a\r\nb"), error("a  b"));
    }
}
