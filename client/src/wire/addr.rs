//! [`NodeAddr`], a Redis node's address as operators write it and as every znode stores it
//! (`host:port`, `[v6]:port`), and comma-separated lists of them. Pure.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Redis node's address as operators write it: `host:port` (`[v6]:port` for IPv6).
/// Serialized as that string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeAddr {
    /// A host name or IP address (IPv6 without the brackets).
    pub host: String,
    /// The TCP port, 1 to 65535.
    pub port: u16,
}

impl NodeAddr {
    /// `host:port`, unchecked (parse a string to have it checked).
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for NodeAddr {
    /// A sentence for the operator that names the input and what is wrong with it.
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = |why: &str| format!("bad address {s:?}: {why} (expected host:port)");
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let host = match host.strip_prefix('[') {
            Some(inner) => inner.strip_suffix(']').ok_or_else(|| bad("unclosed '['"))?,
            None if host.contains(':') => return Err(bad("IPv6 hosts need brackets, [::1]:6379")),
            None => host,
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        if host
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == ',')
        {
            return Err(bad("host has a space, ',' or '/'"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad("port is not a number from 1 to 65535"))?;
        if port == 0 {
            return Err(bad("port 0"));
        }
        Ok(Self::new(host, port))
    }
}

impl Serialize for NodeAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodeAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses a comma-separated `host:port` list, refusing empty lists and duplicates.
pub fn parse_addr_list(list: &str) -> Result<Vec<NodeAddr>, String> {
    let mut out: Vec<NodeAddr> = Vec::new();
    for part in list.split(',') {
        if part.trim().is_empty() {
            continue;
        }
        let addr: NodeAddr = part.parse()?;
        if out.contains(&addr) {
            return Err(format!("duplicate address {addr}"));
        }
        out.push(addr);
    }
    if out.is_empty() {
        return Err("empty address list".to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_addr as a;

    #[test]
    fn addresses_parse_and_print() {
        let cases = [
            (
                "127.0.0.1:6379",
                Some(("127.0.0.1", 6379)),
                "127.0.0.1:6379",
            ),
            (" redis-1:7000 ", Some(("redis-1", 7000)), "redis-1:7000"),
            ("[::1]:6380", Some(("::1", 6380)), "[::1]:6380"),
        ];
        for (input, want, shown) in cases {
            let got: NodeAddr = input.parse().expect(input);
            let (h, p) = want.expect("case");
            assert_eq!((got.host.as_str(), got.port), (h, p));
            assert_eq!(got.to_string(), shown);
        }
        for bad in [
            "",
            "6379",
            "host",
            ":6379",
            "host:",
            "host:0",
            "host:70000",
            "host:abc",
            "::1:6379",
            "[::1:6379",
            "a b:1",
        ] {
            let err = bad.parse::<NodeAddr>().expect_err(bad);
            assert!(err.contains("bad address"), "{err}");
        }
    }

    #[test]
    fn address_lists() {
        let l = parse_addr_list("h:1, h:2").expect("list");
        assert_eq!(l, vec![a("h:1"), a("h:2")]);
        assert!(parse_addr_list("h:1,h:1")
            .expect_err("dup")
            .contains("duplicate address h:1"));
        assert!(parse_addr_list(" , ").expect_err("empty").contains("empty"));
        assert!(parse_addr_list("h:1,nope").is_err());
    }
}
