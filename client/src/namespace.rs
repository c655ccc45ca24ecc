//! Namespaces ([`namespaced`], [`namespaced_pipeline`]): putting every key of a command into
//! a namespace. Pure: decisions from the command's arguments and the generated command table
//! ([`crate::commands`]).
//!
//! With a namespace `ns`, every key argument `k` is sent as `ns ++ k` (plain byte prefix; a
//! separator such as `:` is part of `ns`). An empty namespace changes nothing and refuses
//! nothing. Keys are found with the legacy key range of the table (first key, last key, step;
//! a negative last key counts from the end), on the subcommand for containers
//! (`OBJECT ENCODING key`). Commands without keys are sent unchanged. Then:
//! - Movable keys, handled explicitly: `EVAL`, `EVALSHA`, `EVAL_RO`, `EVALSHA_RO`, `FCALL`,
//!   `FCALL_RO` (numkeys at argument 2); `ZUNIONSTORE`, `ZINTERSTORE`, `ZDIFFSTORE`
//!   (destination, then numkeys at 2); `ZUNION`, `ZINTER`, `ZDIFF`, `ZINTERCARD`, `SINTERCARD`,
//!   `LMPOP`, `ZMPOP` (numkeys at 1); `BLMPOP`, `BZMPOP` (numkeys at 2); `XREAD`, `XREADGROUP`
//!   (after `STREAMS`, the first half of the remaining arguments); `GEORADIUS`,
//!   `GEORADIUSBYMEMBER` (the key and the `STORE`/`STOREDIST` destinations); `SORT`, `SORT_RO`
//!   (the key, the `STORE` destination, and the `BY`/`GET` patterns that contain `*`, since the
//!   key Redis reads is the pattern with `*` replaced; `BY nosort`, `GET #` and other patterns
//!   without `*` read no key and are left alone; refused when the namespace itself contains
//!   `*`). A numkeys larger than the arguments, or an `XREAD` without `STREAMS` or with an odd
//!   number of streams and IDs, is refused as malformed.
//! - Any other movable-keys command (`MIGRATE` in Redis 7.0) is refused:
//!   [`NamespaceError::MovableKeys`].
//! - Refused because they reach outside the namespace and replies are not un-prefixed:
//!   `KEYS`, `SCAN` and `RANDOMKEY` (they return key names of the whole database, prefixed),
//!   `FLUSHDB`, `FLUSHALL` and `SWAPDB` (they act on the whole database). `DBSIZE` is allowed
//!   and counts the whole database.
//! - Channels are not keys: `PUBLISH`, `SPUBLISH` (whose shard channel Redis lists as a
//!   `not_key` key) and the subscribe family are sent unchanged.
//! - Unknown commands are refused ([`NamespaceError::UnknownCommand`]): their keys are unknown.
//! - Scripts and functions get prefixed `KEYS[]`; key names they build themselves are theirs.
//! - Replies are never rewritten: key names in replies (`XREAD` stream names, `BLPOP`'s
//!   popped key, `LMPOP`/`ZMPOP` key, ...) come back with the prefix.

use redis::{Cmd, Pipeline, RedisWrite};

use crate::commands::{self, CommandSpec, Flags};
use crate::route::{argv, is, is_any, spec_for, xread_options};

/// Why a command cannot be put into a namespace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum NamespaceError {
    /// The command has no arguments at all.
    #[error("namespace: empty command")]
    Empty,
    /// Not in the command table, so its keys are unknown.
    #[error(
        "namespace: unknown command {0}; its keys cannot be found, \
         so it is refused on a client with a namespace"
    )]
    UnknownCommand(String),
    /// Movable keys that this module does not parse (`MIGRATE`).
    #[error(
        "namespace: cannot find the keys of {0}; its keys are not at fixed positions, \
         so it is refused on a client with a namespace (use a client without one and \
         prefix the keys yourself)"
    )]
    MovableKeys(String),
    /// The command reaches outside the namespace (`KEYS`, `SCAN`, `FLUSHDB`, ...).
    #[error("namespace: {command} is refused on a client with a namespace: {reason}")]
    Refused {
        /// The command, as typed (`SCAN`).
        command: String,
        /// Why.
        reason: &'static str,
    },
    /// The arguments do not say where the keys are (bad numkeys, no `STREAMS`, ...).
    #[error("namespace: malformed {command}: {reason}")]
    Malformed {
        /// The command, as typed (`EVAL`).
        command: String,
        /// What is wrong.
        reason: String,
    },
}

/// How the keys of a movable-keys command are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Movable {
    /// Numkeys at this index, keys right after it.
    NumKeys(usize),
    /// Destination key at 1, numkeys at 2, keys after it.
    DestNumKeys,
    /// After `STREAMS`, the first half of the remaining arguments.
    Streams,
    /// Key at 1, `STORE`/`STOREDIST` destinations from argument 5 on.
    GeoRadius,
    /// Key at 1, `STORE` destination, `BY`/`GET` patterns.
    Sort,
}

fn movable(name: &str) -> Option<Movable> {
    Some(match name {
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => Movable::NumKeys(2),
        "zunionstore" | "zinterstore" | "zdiffstore" => Movable::DestNumKeys,
        "zunion" | "zinter" | "zdiff" | "zintercard" | "sintercard" | "lmpop" | "zmpop" => {
            Movable::NumKeys(1)
        }
        "blmpop" | "bzmpop" => Movable::NumKeys(2),
        "xread" | "xreadgroup" => Movable::Streams,
        "georadius" | "georadiusbymember" => Movable::GeoRadius,
        "sort" | "sort_ro" => Movable::Sort,
        _ => return None,
    })
}

const OUTSIDE_READ: &str = "it returns key names from the whole database, and replies are not \
                            un-prefixed (iterate without a namespace, or keep an index of keys)";
const OUTSIDE_WRITE: &str = "it acts on the whole database, not only on the namespace";
const STAR_IN_NAMESPACE: &str = "the namespace contains '*', so BY/GET patterns cannot be \
                                 prefixed with it";

fn malformed(command: &str, reason: impl Into<String>) -> NamespaceError {
    NamespaceError::Malformed {
        command: command.to_owned(),
        reason: reason.into(),
    }
}

/// Indices `at+1 ..= at+numkeys`, numkeys read from argument `at`.
fn numkeys_range(
    a: &[Option<&[u8]>],
    at: usize,
    command: &str,
) -> Result<std::ops::Range<usize>, NamespaceError> {
    let n = a
        .get(at)
        .copied()
        .flatten()
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.parse::<usize>().ok())
        .ok_or_else(|| {
            malformed(
                command,
                format!("numkeys (argument {at}) is not a non-negative integer"),
            )
        })?;
    let after = a.len().saturating_sub(at + 1);
    if n > after {
        return Err(malformed(
            command,
            format!("numkeys is {n} but only {after} arguments follow it"),
        ));
    }
    Ok(at + 1..at + 1 + n)
}

/// Argument indices to prefix with the namespace.
fn key_positions(
    a: &[Option<&[u8]>],
    spec: &CommandSpec,
    ns: &[u8],
) -> Result<Vec<usize>, NamespaceError> {
    let command = spec.display_name();
    let refused = |reason| NamespaceError::Refused {
        command: command.clone(),
        reason,
    };
    match spec.name {
        "keys" | "scan" | "randomkey" => return Err(refused(OUTSIDE_READ)),
        "flushdb" | "flushall" | "swapdb" => return Err(refused(OUTSIDE_WRITE)),
        _ => {}
    }
    if spec.not_key {
        return Ok(Vec::new());
    }
    let Some(how) = movable(spec.name) else {
        if spec.has(Flags::MOVABLEKEYS) {
            return Err(NamespaceError::MovableKeys(command));
        }
        return Ok(spec.key_indices(a.len()).collect());
    };
    let mut keys = Vec::new();
    match how {
        Movable::NumKeys(at) => keys.extend(numkeys_range(a, at, &command)?),
        Movable::DestNumKeys => {
            keys.push(1);
            keys.extend(numkeys_range(a, 2, &command)?);
        }
        Movable::Streams => {
            let streams = xread_options(a)
                .streams
                .ok_or_else(|| malformed(&command, "no STREAMS argument"))?;
            let rest = a.len() - streams - 1;
            if rest == 0 || rest % 2 == 1 {
                return Err(malformed(
                    &command,
                    format!("STREAMS needs as many IDs as keys, got {rest} arguments"),
                ));
            }
            keys.extend(streams + 1..streams + 1 + rest / 2);
        }
        Movable::GeoRadius => {
            keys.push(1);
            // As Redis's own georadiusGetKeys: the argument after STORE/STOREDIST, from 5 on.
            let mut i = 5;
            while i + 1 < a.len() {
                if is_any(a.get(i), &["store", "storedist"]) {
                    keys.push(i + 1);
                    i += 2;
                } else {
                    i += 1;
                }
            }
        }
        Movable::Sort => {
            keys.push(1);
            let mut i = 2;
            while i < a.len() {
                let arg = a.get(i);
                if is_any(arg, &["by", "get"]) {
                    let pattern = a.get(i + 1).copied().flatten().unwrap_or_default();
                    if pattern.contains(&b'*') && pattern != b"#" {
                        if ns.contains(&b'*') {
                            return Err(refused(STAR_IN_NAMESPACE));
                        }
                        keys.push(i + 1);
                    }
                    i += 2;
                } else if is(arg, "limit") {
                    i += 3;
                } else if is(arg, "store") {
                    keys.push(i + 1);
                    i += 2;
                } else {
                    i += 1;
                }
            }
        }
    }
    keys.retain(|&i| i < a.len());
    Ok(keys)
}

/// The value of `cmd`'s cursor argument (redis-rs keeps it private; it is in the packed form).
fn cursor_value(cmd: &Cmd, index: usize) -> Option<u64> {
    let packed = cmd.get_packed_command();
    let mut rest = packed.strip_prefix(b"*")?;
    let line_end = |r: &[u8]| r.windows(2).position(|w| w == b"\r\n");
    rest = &rest[line_end(rest)? + 2..];
    for i in 0..=index {
        rest = rest.strip_prefix(b"$")?;
        let end = line_end(rest)?;
        let len: usize = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
        rest = rest.get(end + 2..)?;
        let value = rest.get(..len)?;
        if i == index {
            return std::str::from_utf8(value).ok()?.parse().ok();
        }
        rest = rest.get(len + 2..)?;
    }
    None
}

/// A copy of `cmd` with every key argument prefixed by `ns` (rules and refusals in the module
/// doc). Cursor arguments and the no-response flag are kept. An empty `ns` returns an
/// unchanged copy.
pub(crate) fn namespaced(cmd: &Cmd, ns: &[u8]) -> Result<Cmd, NamespaceError> {
    if ns.is_empty() {
        return Ok(cmd.clone());
    }
    let a = argv(cmd);
    let name = match a.first() {
        None => return Err(NamespaceError::Empty),
        Some(None) => return Err(NamespaceError::UnknownCommand("<cursor>".into())),
        Some(Some(name)) => *name,
    };
    let Some(spec) = spec_for(&a) else {
        let mut shown = String::from_utf8_lossy(name).to_ascii_uppercase();
        if commands::lookup(name).is_some_and(|s| s.has_subcommands) {
            if let Some(Some(sub)) = a.get(1) {
                shown.push(' ');
                shown.push_str(&String::from_utf8_lossy(sub).to_ascii_uppercase());
            }
        }
        return Err(NamespaceError::UnknownCommand(shown));
    };
    let mut prefix = vec![false; a.len()];
    for i in key_positions(&a, spec, ns)? {
        prefix[i] = true;
    }

    let keys = prefix.iter().filter(|p| **p).count();
    let data: usize = a.iter().map(|arg| arg.map_or(0, <[u8]>::len)).sum();
    let mut out = Cmd::with_capacity(a.len(), data + keys * ns.len());
    let mut key = Vec::new();
    let mut cursor = None;
    for (i, arg) in a.iter().enumerate() {
        match (arg, prefix[i]) {
            (Some(bytes), true) => {
                key.clear();
                key.extend_from_slice(ns);
                key.extend_from_slice(bytes);
                out.write_arg(&key);
            }
            (Some(bytes), false) => out.write_arg(bytes),
            (None, true) => {
                return Err(malformed(
                    &spec.display_name(),
                    format!("argument {i} is a cursor, not a key"),
                ))
            }
            (None, false) => {
                if cursor.is_none() {
                    cursor = cursor_value(cmd, i);
                }
                let value = cursor
                    .ok_or_else(|| malformed(&spec.display_name(), "unreadable cursor argument"))?;
                out.cursor_arg(value);
            }
        }
    }
    out.set_no_response(cmd.is_no_response());
    Ok(out)
}

/// [`namespaced`] applied to every command of `p`, keeping atomic mode. The copy is for sending
/// (`req_packed_commands`): `ignore()` marks are private to redis-rs and not copied, so parse
/// the replies with the original pipeline (as `Pipeline::query_async` does). An empty `ns`
/// returns an unchanged copy.
pub(crate) fn namespaced_pipeline(p: &Pipeline, ns: &[u8]) -> Result<Pipeline, NamespaceError> {
    if ns.is_empty() {
        return Ok(p.clone());
    }
    let mut out = Pipeline::with_capacity(p.len());
    if p.is_transaction() {
        out.atomic();
    }
    for cmd in p.cmd_iter() {
        out.add_command(namespaced(cmd, ns)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::tests::{cmd, strings, words};

    #[test]
    fn namespaces_keys() {
        let cases: &[(&str, &str)] = &[
            ("SET k v", "SET n:k v"),
            ("set k v EX 10", "set n:k v EX 10"),
            ("GET k", "GET n:k"),
            ("MGET a b c", "MGET n:a n:b n:c"),
            ("MSET a 1 b 2", "MSET n:a 1 n:b 2"),
            ("DEL a b c", "DEL n:a n:b n:c"),
            ("RENAME a b", "RENAME n:a n:b"),
            ("BLPOP a b 0", "BLPOP n:a n:b 0"),
            ("WATCH a b", "WATCH n:a n:b"),
            ("OBJECT ENCODING k", "OBJECT ENCODING n:k"),
            ("XINFO STREAM s FULL", "XINFO STREAM n:s FULL"),
            ("EVAL s 2 k1 k2 a1", "EVAL s 2 n:k1 n:k2 a1"),
            ("EVAL s 0 a1", "EVAL s 0 a1"),
            ("FCALL_RO f 1 k a", "FCALL_RO f 1 n:k a"),
            (
                "ZUNIONSTORE d 2 a b WEIGHTS 1 2",
                "ZUNIONSTORE n:d 2 n:a n:b WEIGHTS 1 2",
            ),
            ("ZUNION 2 a b WITHSCORES", "ZUNION 2 n:a n:b WITHSCORES"),
            ("ZINTERCARD 2 a b LIMIT 1", "ZINTERCARD 2 n:a n:b LIMIT 1"),
            ("LMPOP 2 a b LEFT", "LMPOP 2 n:a n:b LEFT"),
            ("BLMPOP 0 2 a b LEFT", "BLMPOP 0 2 n:a n:b LEFT"),
            (
                "XREAD COUNT 2 STREAMS s1 s2 0 0",
                "XREAD COUNT 2 STREAMS n:s1 n:s2 0 0",
            ),
            ("XREAD BLOCK 0 STREAMS s $", "XREAD BLOCK 0 STREAMS n:s $"),
            (
                "XREADGROUP GROUP streams c NOACK STREAMS s >",
                "XREADGROUP GROUP streams c NOACK STREAMS n:s >",
            ),
            (
                "SORT k BY w_* GET # GET o_*->f LIMIT 0 10 STORE d",
                "SORT n:k BY n:w_* GET # GET n:o_*->f LIMIT 0 10 STORE n:d",
            ),
            ("SORT k BY nosort ALPHA", "SORT n:k BY nosort ALPHA"),
            (
                "GEORADIUS g 0 0 1 km STORE d",
                "GEORADIUS n:g 0 0 1 km STORE n:d",
            ),
            (
                "GEORADIUSBYMEMBER g m 1 km STOREDIST d",
                "GEORADIUSBYMEMBER n:g m 1 km STOREDIST n:d",
            ),
            ("PING", "PING"),
            ("DBSIZE", "DBSIZE"),
            ("PUBLISH ch m", "PUBLISH ch m"),
            ("SPUBLISH ch m", "SPUBLISH ch m"),
            ("SCRIPT LOAD s", "SCRIPT LOAD s"),
        ];
        for (line, want) in cases {
            let got =
                namespaced(&cmd(&words(line)), b"n:").unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(strings(&got), words(want), "{line}");
        }
    }

    #[test]
    fn namespace_refusals() {
        let cases: &[(&str, &str)] = &[
            (
                "MIGRATE h 6379 \"\" 0 5000 KEYS a b",
                "namespace: cannot find the keys of MIGRATE; its keys are not at fixed \
                 positions, so it is refused on a client with a namespace (use a client \
                 without one and prefix the keys yourself)",
            ),
            (
                "KEYS *",
                "namespace: KEYS is refused on a client with a namespace: it returns key \
                 names from the whole database, and replies are not un-prefixed (iterate \
                 without a namespace, or keep an index of keys)",
            ),
            (
                "SCAN 0 MATCH *",
                "namespace: SCAN is refused on a client with a namespace: it returns key \
                 names from the whole database, and replies are not un-prefixed (iterate \
                 without a namespace, or keep an index of keys)",
            ),
            (
                "FLUSHDB",
                "namespace: FLUSHDB is refused on a client with a namespace: it acts on the \
                 whole database, not only on the namespace",
            ),
            (
                "NOSUCH k",
                "namespace: unknown command NOSUCH; its keys cannot be found, so it is \
                 refused on a client with a namespace",
            ),
            (
                "object nosuch k",
                "namespace: unknown command OBJECT NOSUCH; its keys cannot be found, so it \
                 is refused on a client with a namespace",
            ),
            (
                "EVAL s 3 k1 k2",
                "namespace: malformed EVAL: numkeys is 3 but only 2 arguments follow it",
            ),
            (
                "EVAL s x",
                "namespace: malformed EVAL: numkeys (argument 2) is not a non-negative integer",
            ),
            (
                "ZUNIONSTORE d -1 a",
                "namespace: malformed ZUNIONSTORE: numkeys (argument 2) is not a non-negative integer",
            ),
            (
                "XREAD COUNT 1",
                "namespace: malformed XREAD: no STREAMS argument",
            ),
            (
                "XREAD STREAMS a b c",
                "namespace: malformed XREAD: STREAMS needs as many IDs as keys, got 3 arguments",
            ),
        ];
        for (line, want) in cases {
            let err = namespaced(&cmd(&words(line)), b"n:").expect_err(line);
            assert_eq!(err.to_string(), *want, "{line}");
        }
        assert_eq!(
            namespaced(&Cmd::new(), b"n:").err(),
            Some(NamespaceError::Empty)
        );

        let star = namespaced(&cmd(&words("SORT k BY w_*")), b"a*:").expect_err("star");
        assert!(matches!(star, NamespaceError::Refused { .. }), "{star}");
        // Without patterns the '*' in the namespace is harmless.
        let ok = namespaced(&cmd(&words("SORT k")), b"a*:").map(|c| strings(&c));
        assert_eq!(ok, Ok(vec!["SORT".into(), "a*:k".into()]));
    }

    #[test]
    fn empty_namespace_changes_and_refuses_nothing() {
        for line in ["KEYS *", "MIGRATE h 1 k 0 10", "NOSUCH a", "SET k v"] {
            let c = cmd(&words(line));
            let got = namespaced(&c, b"").map(|c| c.get_packed_command());
            assert_eq!(got, Ok(c.get_packed_command()), "{line}");
        }
    }

    #[test]
    fn namespace_keeps_cursor_and_binary_keys() {
        let mut c = redis::cmd("SSCAN");
        c.arg(&b"s\x00\xff"[..]).cursor_arg(42).arg("COUNT").arg(10);
        let got = namespaced(&c, b"n:").expect("sscan");
        assert!(got.in_scan_mode());
        let mut want = redis::cmd("SSCAN");
        want.arg(&b"n:s\x00\xff"[..]).arg(42).arg("COUNT").arg(10);
        assert_eq!(got.get_packed_command(), want.get_packed_command());
    }

    #[test]
    fn namespaces_pipelines() {
        let mut p = redis::pipe();
        p.atomic()
            .cmd("SET")
            .arg("a")
            .arg(1)
            .ignore()
            .cmd("MGET")
            .arg("a")
            .arg("b");
        let got = namespaced_pipeline(&p, b"n:").expect("pipeline");
        assert!(got.is_transaction());
        let cmds: Vec<_> = got.cmd_iter().map(strings).collect();
        assert_eq!(cmds, [words("SET n:a 1"), words("MGET n:a n:b")]);

        p.cmd("KEYS").arg("*");
        let err = namespaced_pipeline(&p, b"n:").expect_err("keys");
        assert!(
            err.to_string().starts_with("namespace: KEYS is refused"),
            "{err}"
        );
    }

    /// A newer Redis with another movable-keys command must not silently pass it through: it
    /// is either parsed here or refused, and this lists which.

    #[test]
    fn every_movable_command_is_parsed_or_refused() {
        let mut refused = Vec::new();
        for spec in commands::COMMANDS
            .iter()
            .filter(|s| s.has(Flags::MOVABLEKEYS))
        {
            if movable(spec.name).is_none() {
                refused.push(spec.name);
            }
        }
        assert_eq!(refused, ["migrate"]);
        for name in [
            "eval",
            "xread",
            "sort",
            "zunionstore",
            "georadius",
            "bzmpop",
        ] {
            assert!(movable(name).is_some(), "{name}");
        }
    }
}
