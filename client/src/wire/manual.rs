//! `<root>/manual_failover`: an operator's request ([`ManualRequest`]) and the leader's
//! refusal left in its place ([`ManualRefusal`]). Pure.
//!
//! The request is plain text as the Ruby gem's client writes it: `h:p` (promote that
//! replica) or `ANY_SLAVE` (the best replica); a JSON string or `{"node":"h:p"}` is read too.
//! The leader deletes the znode once the request is carried out, or replaces it with
//! `{"at_ms":..,"refused":reason,"request":text}` so that operators see why not.

use serde_json::Value;

use super::NodeAddr;

/// The request for "the best replica", as the gem writes it.
pub const ANY_SLAVE: &str = "ANY_SLAVE";

/// What `<root>/manual_failover` holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManualRequest {
    /// `"h:p"`: promote this replica.
    To(NodeAddr),
    /// `"ANY_SLAVE"`: promote the best replica.
    AnySlave,
    /// A request the leader already refused (left visible for operators); not acted on.
    Refused,
    /// Not a request at all.
    Invalid(String),
}

impl ManualRequest {
    /// Reads a request as the Ruby gem's client writes it (`h:p` or `ANY_SLAVE`), also as a
    /// JSON string or `{"node":"h:p"}`; `{"refused":...}` is the leader's own verdict.
    pub fn parse(data: &[u8]) -> ManualRequest {
        let text = String::from_utf8_lossy(data);
        let text = text.trim();
        let value: Option<Value> = serde_json::from_str(text).ok();
        let raw = match &value {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(o)) if o.contains_key("refused") => return ManualRequest::Refused,
            Some(Value::Object(o)) => match o.get("node").and_then(|n| n.as_str()) {
                Some(n) => n.to_string(),
                None => return ManualRequest::Invalid(format!("no \"node\" in {text}")),
            },
            _ => text.to_string(),
        };
        if raw.eq_ignore_ascii_case(ANY_SLAVE) || raw.eq_ignore_ascii_case("ANY_REPLICA") {
            return ManualRequest::AnySlave;
        }
        match raw.parse() {
            Ok(addr) => ManualRequest::To(addr),
            Err(e) => ManualRequest::Invalid(e),
        }
    }

    /// What a client or tool writes to ask for a failover to `to`, or to the best replica
    /// when `None`: `h:p` or `ANY_SLAVE`, as the gem's client does.
    pub fn encode(to: Option<&NodeAddr>) -> Vec<u8> {
        to.map_or(ANY_SLAVE.to_string(), |a| a.to_string())
            .into_bytes()
    }
}

/// The leader's refusal, written over the request: `{"at_ms":..,"refused":..,"request":..}`
/// (keys in this order, as written since the first version).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManualRefusal {
    /// When it was refused, ms since the Unix epoch.
    pub at_ms: u64,
    /// Why, in the leader's words.
    pub refused: String,
    /// The request as it was written (trimmed).
    pub request: String,
}

impl ManualRefusal {
    /// A refusal of `request` made now.
    pub fn now(request: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            at_ms: super::unix_ms(),
            refused: reason.into(),
            request: request.into(),
        }
    }

    /// The refusal in `data`, if it is one: a JSON object whose `"refused"` is a string
    /// (`request` and `at_ms` read as empty and 0 when absent).
    pub fn from_json(data: &[u8]) -> Option<Self> {
        let v: Value = serde_json::from_slice(data).ok()?;
        Some(Self {
            refused: v.get("refused")?.as_str()?.to_string(),
            request: v
                .get("request")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            at_ms: v.get("at_ms").and_then(Value::as_u64).unwrap_or_default(),
        })
    }

    /// Encodes the refusal, keys in alphabetical order as always written.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::json!({
            "at_ms": self.at_ms,
            "refused": self.refused,
            "request": self.request,
        })
        .to_string()
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> NodeAddr {
        NodeAddr::new("h", port)
    }

    #[test]
    fn manual_requests_are_parsed_like_the_gem_writes_them() {
        let cases: Vec<(&[u8], ManualRequest)> = vec![
            (b"h:2", ManualRequest::To(a(2))),
            (b"\"h:2\"", ManualRequest::To(a(2))),
            (br#"{"node":"h:2"}"#, ManualRequest::To(a(2))),
            (b"ANY_SLAVE", ManualRequest::AnySlave),
            (b"\"ANY_SLAVE\"", ManualRequest::AnySlave),
            (
                br#"{"refused":"h:1 already is the master","request":"h:1"}"#,
                ManualRequest::Refused,
            ),
            (
                b"nonsense",
                ManualRequest::Invalid(
                    "bad address \"nonsense\": no port (expected host:port)".into(),
                ),
            ),
        ];
        for (data, want) in cases {
            assert_eq!(
                ManualRequest::parse(data),
                want,
                "{}",
                String::from_utf8_lossy(data)
            );
        }
    }

    /// Requests as the client, the CLI, the HTTP endpoint and the Sentinel front write them
    /// today, byte for byte, and how they read back.
    #[test]
    fn requests_are_written_as_today() {
        let cases: [(Option<NodeAddr>, &str, ManualRequest); 3] = [
            (None, "ANY_SLAVE", ManualRequest::AnySlave),
            (Some(a(6380)), "h:6380", ManualRequest::To(a(6380))),
            (
                Some(NodeAddr::new("::1", 7000)),
                "[::1]:7000",
                ManualRequest::To(NodeAddr::new("::1", 7000)),
            ),
        ];
        for (to, bytes, parsed) in cases {
            let written = ManualRequest::encode(to.as_ref());
            assert_eq!(String::from_utf8_lossy(&written), bytes);
            assert_eq!(ManualRequest::parse(&written), parsed);
        }
        assert_eq!(
            ManualRequest::parse(b" any_replica\n"),
            ManualRequest::AnySlave
        );
        assert_eq!(
            ManualRequest::parse(br#"{"to":"h:1"}"#),
            ManualRequest::Invalid(r#"no "node" in {"to":"h:1"}"#.into())
        );
    }

    /// A refusal as the leader writes it today, byte for byte.
    #[test]
    fn refusals_are_written_as_today() {
        let json =
            r#"{"at_ms":1767225600000,"refused":"h:1 already is the master","request":"h:1"}"#;
        let r = ManualRefusal::from_json(json.as_bytes()).expect("a refusal");
        assert_eq!(
            r,
            ManualRefusal {
                at_ms: 1_767_225_600_000,
                refused: "h:1 already is the master".into(),
                request: "h:1".into(),
            }
        );
        assert_eq!(String::from_utf8(r.to_json()).expect("utf8"), json);
        assert_eq!(ManualRequest::parse(&r.to_json()), ManualRequest::Refused);
        let quoted = ManualRefusal::now("say \"hi\"", "bad address").to_json();
        let back = ManualRefusal::from_json(&quoted).expect("round trip");
        assert_eq!(back.request, "say \"hi\"");
        for not_one in [&b"h:1"[..], b"ANY_SLAVE", br#"{"refused":5}"#, b"[1]"] {
            assert_eq!(ManualRefusal::from_json(not_one), None);
        }
        assert_eq!(
            ManualRefusal::from_json(br#"{"refused":"why"}"#).map(|r| r.request),
            Some(String::new())
        );
    }
}
