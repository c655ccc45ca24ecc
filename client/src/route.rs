//! Where a command goes (master or a replica), which commands need special handling, and how
//! keys are put into a namespace. Pure: no I/O, decisions from the command's arguments and the
//! generated command table ([`crate::commands`]).
//!
//! # Routing ([`route_cmd`], [`route_pipeline`])
//!
//! A command goes to a **replica** only when all of these hold; anything else goes to the
//! **master**:
//! - the command (or, for containers such as `OBJECT`/`XINFO`/`MEMORY`, its subcommand) is in
//!   the table: unknown commands and unknown subcommands go to the master;
//! - it is flagged `readonly` (so not `write`), and not `pubsub` or `admin`;
//! - it is not `noscript`, except the read-only script calls `EVAL_RO`, `EVALSHA_RO` and
//!   `FCALL_RO` (they are `noscript` only because a script cannot call a script). This keeps
//!   `SCRIPT ...`/`FUNCTION ...` on the master; they are not `readonly` anyway, and Redis 7
//!   hides `may_replicate` from `COMMAND`, so "readonly" is what excludes side effects;
//! - it does not block: `XREAD` is flagged `blocking` but only blocks with a `BLOCK` option, so
//!   `XREAD COUNT 10 STREAMS s 0` is a replica read while `XREAD BLOCK 0 STREAMS s $` goes to
//!   the master (`XREADGROUP` is a write and always goes to the master);
//! - it is not one of the [`Special`] commands (subscriptions, `SELECT`, transactions,
//!   connection state), which all go to the master;
//! - it is not `TOUCH`: flagged `readonly`, but its point is to update the access time (LRU/LFU)
//!   on the server that evicts, which is the master.
//!
//! - it is not a cursor iteration (`SCAN`, `SSCAN`, `HSCAN`, `ZSCAN`): a cursor belongs to the
//!   server that issued it, and the client picks a replica per command, so a whole iteration
//!   goes to the master.
//!
//! Replica reads see replication lag.
//!
//! A pipeline goes to a replica only if it is not atomic ([`redis::Pipeline::atomic`] sets a
//! flag, [`redis::Pipeline::is_transaction`]; the `MULTI`/`EXEC` are added when packing), holds
//! no `MULTI`/`EXEC`/`DISCARD`/`WATCH`/`UNWATCH`, has at least one command, and every command
//! goes to a replica on its own.
//!
//! # Special commands ([`classify`])
//!
//! - [`Special::PubSub`]: `SUBSCRIBE`, `PSUBSCRIBE`, `SSUBSCRIBE` and their `UNSUBSCRIBE`s turn
//!   a connection into a push stream. The client refuses them (use a dedicated pub/sub
//!   connection). `PUBLISH`/`SPUBLISH`/`PUBSUB ...` are ordinary commands (to the master).
//! - [`Special::Select`]: `SELECT`; the database is a client option, refused.
//! - [`Special::Transaction`]: `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`: state of one
//!   connection; use an atomic pipeline (`redis::pipe().atomic()`).
//! - [`Special::ConnectionState`]: `AUTH`, `HELLO`, `RESET`, `QUIT`, `MONITOR`, `READONLY`,
//!   `READWRITE`, `ASKING`, `CLIENT REPLY|TRACKING|CACHING|SETNAME|SETINFO|NO-EVICT`: they
//!   change the one connection they run on, which a client that reconnects after a failover
//!   cannot keep.
//! - [`Special::Blocking`]: commands that wait (`BLPOP`, `BLMOVE`, `BZMPOP`, ..., `XREAD`/
//!   `XREADGROUP` with `BLOCK`, `WAIT`, `WAITAOF`): go to the master, and the client should wait
//!   as long as the command's own timeout ([`blocking_timeout`]) rather than its usual response
//!   timeout.
//!
//! # Namespaces ([`namespaced`], [`namespaced_pipeline`])
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

use std::time::Duration;

use redis::{Arg, Cmd, Pipeline, RedisWrite};

use crate::commands::{self, CommandSpec, Flags};

/// Which server a command or pipeline must go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// The current master (writes, and everything not proven to be a plain read).
    Master,
    /// Any replica (or the master when there is none; that is the client's choice).
    Replica,
}

/// Commands the client gives a documented behaviour of their own (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Special {
    /// An ordinary command.
    None,
    /// `SUBSCRIBE` and friends: need a dedicated connection; refused.
    PubSub,
    /// Waits on the server: master, with the command's own timeout ([`blocking_timeout`]).
    Blocking,
    /// `MULTI`/`EXEC`/`DISCARD`/`WATCH`/`UNWATCH`: use an atomic pipeline instead.
    Transaction,
    /// `SELECT`: the database is a client option; refused.
    Select,
    /// Changes the state of the connection it runs on (`AUTH`, `HELLO`, `CLIENT SETNAME`, ...).
    ConnectionState,
}

/// How long a blocking command may wait on the server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BlockTimeout {
    /// Timeout 0: until data arrives (or the connection drops). Also used when the timeout
    /// argument is missing or unreadable (the server then fails the command at once).
    Forever,
    /// At most this long.
    After(Duration),
}

/// Why a command cannot be put into a namespace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NamespaceError {
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

/// The arguments of a command, name included; `None` stands for a cursor argument.
type Argv<'a> = Vec<Option<&'a [u8]>>;

fn argv(cmd: &Cmd) -> Argv<'_> {
    cmd.args_iter()
        .map(|a| match a {
            Arg::Simple(bytes) => Some(bytes),
            _ => None,
        })
        .collect()
}

fn is(arg: Option<&Option<&[u8]>>, word: &str) -> bool {
    matches!(arg, Some(Some(a)) if a.eq_ignore_ascii_case(word.as_bytes()))
}

fn is_any(arg: Option<&Option<&[u8]>>, words: &[&str]) -> bool {
    words.iter().any(|w| is(arg, w))
}

fn spec_for(a: &[Option<&[u8]>]) -> Option<&'static CommandSpec> {
    let name = (*a.first()?)?;
    commands::lookup_with_sub(name, a.get(1).copied().flatten())
}

/// The table entry that applies to `cmd`: its subcommand's for containers (`OBJECT ENCODING`).
/// `None` for unknown commands and subcommands.
pub fn spec_of(cmd: &Cmd) -> Option<&'static CommandSpec> {
    spec_for(&argv(cmd))
}

/// Positions of `XREAD`/`XREADGROUP` options: the `BLOCK` value and the `STREAMS` keyword.
#[derive(Default)]
struct XreadOptions {
    block_value: Option<usize>,
    streams: Option<usize>,
}

fn xread_options(a: &[Option<&[u8]>]) -> XreadOptions {
    let group = is(a.first(), "xreadgroup");
    let mut opts = XreadOptions::default();
    let mut i = 1;
    while i < a.len() {
        let arg = a.get(i);
        if is(arg, "count") {
            i += 2;
        } else if is(arg, "block") {
            opts.block_value = Some(i + 1);
            i += 2;
        } else if group && is(arg, "group") {
            i += 3;
        } else if group && is(arg, "noack") {
            i += 1;
        } else if is(arg, "streams") {
            opts.streams = Some(i);
            break;
        } else {
            break;
        }
    }
    opts
}

/// The command name in lower case, for matching by name (`None` if not a short ASCII name).
fn lower_name<'b>(a: &[Option<&[u8]>], buf: &'b mut [u8; 24]) -> Option<&'b str> {
    let name = (*a.first()?)?;
    let out = buf.get_mut(..name.len())?;
    out.copy_from_slice(name);
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

fn blocks(name: &str, a: &[Option<&[u8]>], spec: Option<&CommandSpec>) -> bool {
    match name {
        "wait" | "waitaof" => true,
        "xread" | "xreadgroup" => xread_options(a).block_value.is_some(),
        _ => spec.is_some_and(|s| s.has(Flags::BLOCKING)),
    }
}

fn classify_with(name: &str, a: &[Option<&[u8]>], spec: Option<&CommandSpec>) -> Special {
    match name {
        "subscribe" | "psubscribe" | "ssubscribe" | "unsubscribe" | "punsubscribe"
        | "sunsubscribe" => Special::PubSub,
        "select" => Special::Select,
        "multi" | "exec" | "discard" | "watch" | "unwatch" => Special::Transaction,
        "auth" | "hello" | "reset" | "quit" | "monitor" | "readonly" | "readwrite" | "asking" => {
            Special::ConnectionState
        }
        "client"
            if is_any(
                a.get(1),
                &[
                    "reply", "tracking", "caching", "setname", "setinfo", "no-evict",
                ],
            ) =>
        {
            Special::ConnectionState
        }
        _ if blocks(name, a, spec) => Special::Blocking,
        _ => Special::None,
    }
}

fn classify_argv(a: &[Option<&[u8]>]) -> Special {
    let mut buf = [0u8; 24];
    let name = lower_name(a, &mut buf).unwrap_or("");
    classify_with(name, a, spec_for(a))
}

/// Everything the client needs to know about one command, worked out once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub target: Target,
    pub special: Special,
    /// For [`Special::Blocking`]: how long the command may wait.
    pub block: Option<BlockTimeout>,
}

/// Routes and classifies `cmd` (the client's hot path): only the name and the first
/// argument are looked at, unless the command's options matter (`XREAD`, blocking commands).
pub fn plan(cmd: &Cmd) -> Plan {
    let mut args = cmd.args_iter().map(|a| match a {
        Arg::Simple(bytes) => Some(bytes),
        _ => None,
    });
    let head = [args.next().flatten(), args.next().flatten()];
    let mut buf = [0u8; 24];
    let name = lower_name(&head, &mut buf).unwrap_or("");
    let spec = match name {
        "" => spec_for(&head),
        _ => commands::lookup_lowercase(name, head[1]),
    };
    let full;
    let a: &[Option<&[u8]>] = if matches!(name, "xread" | "xreadgroup")
        || spec.is_some_and(|s| s.has(Flags::BLOCKING))
        || matches!(name, "wait" | "waitaof")
    {
        full = argv(cmd);
        &full
    } else {
        &head
    };
    let special = classify_with(name, a, spec);
    let block = (special == Special::Blocking).then(|| block_timeout_of(name, a));
    Plan {
        target: route_with(name, spec, special),
        special,
        block,
    }
}

/// Whether `cmd` needs one of the documented special behaviours (see the module doc).
pub fn classify(cmd: &Cmd) -> Special {
    classify_argv(&argv(cmd))
}

fn parse_seconds(arg: Option<&Option<&[u8]>>) -> BlockTimeout {
    let secs = arg
        .copied()
        .flatten()
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0);
    match secs.and_then(|s| Duration::try_from_secs_f64(s).ok()) {
        Some(d) => BlockTimeout::After(d),
        None => BlockTimeout::Forever,
    }
}

fn parse_millis(arg: Option<&Option<&[u8]>>) -> BlockTimeout {
    let ms = arg
        .copied()
        .flatten()
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0);
    match ms {
        Some(ms) => BlockTimeout::After(Duration::from_millis(ms)),
        None => BlockTimeout::Forever,
    }
}

/// For a [`Special::Blocking`] command, how long the server may hold it (its timeout argument:
/// seconds for `BLPOP` & co, milliseconds for `XREAD BLOCK`, `WAIT`, `WAITAOF`; 0 is forever).
/// `None` for commands that do not block.
pub fn blocking_timeout(cmd: &Cmd) -> Option<BlockTimeout> {
    let a = argv(cmd);
    if classify_argv(&a) != Special::Blocking {
        return None;
    }
    let mut buf = [0u8; 24];
    let name = lower_name(&a, &mut buf).unwrap_or("");
    Some(block_timeout_of(name, &a))
}

fn block_timeout_of(name: &str, a: &[Option<&[u8]>]) -> BlockTimeout {
    match name {
        "xread" | "xreadgroup" => parse_millis(xread_options(a).block_value.and_then(|i| a.get(i))),
        "wait" => parse_millis(a.get(2)),
        "waitaof" => parse_millis(a.get(3)),
        "blmpop" | "bzmpop" => parse_seconds(a.get(1)),
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" | "blmove" | "brpoplpush" => {
            parse_seconds(a.last())
        }
        _ => BlockTimeout::Forever,
    }
}

fn route_with(name: &str, spec: Option<&CommandSpec>, special: Special) -> Target {
    let Some(spec) = spec else {
        return Target::Master;
    };
    let ro_script = matches!(name, "eval_ro" | "evalsha_ro" | "fcall_ro");
    let replica = spec.has(Flags::READONLY)
        && !spec
            .flags
            .intersects(Flags::WRITE | Flags::PUBSUB | Flags::ADMIN)
        && (!spec.has(Flags::NOSCRIPT) || ro_script)
        && name != "touch"
        // A cursor belongs to the server that issued it; replicas are picked per command.
        && !matches!(name, "scan" | "sscan" | "hscan" | "zscan")
        && special == Special::None;
    if replica {
        Target::Replica
    } else {
        Target::Master
    }
}

fn route_argv(a: &[Option<&[u8]>]) -> Target {
    let mut buf = [0u8; 24];
    let name = lower_name(a, &mut buf).unwrap_or("");
    let spec = spec_for(a);
    route_with(name, spec, classify_with(name, a, spec))
}

/// Where `cmd` must go (see the module doc for the rule).
pub fn route_cmd(cmd: &Cmd) -> Target {
    route_argv(&argv(cmd))
}

/// Where a pipeline must go: the master if it is atomic, holds a transaction command, is empty,
/// or has any command that must go to the master; otherwise a replica.
pub fn route_pipeline(p: &Pipeline) -> Target {
    if p.is_transaction() {
        return Target::Master;
    }
    let mut any = false;
    for cmd in p.cmd_iter() {
        any = true;
        let a = argv(cmd);
        if classify_argv(&a) == Special::Transaction || route_argv(&a) == Target::Master {
            return Target::Master;
        }
    }
    if any {
        Target::Replica
    } else {
        Target::Master
    }
}

// ---------------------------------------------------------------------------------------------
// Namespaces

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
pub fn namespaced(cmd: &Cmd, ns: &[u8]) -> Result<Cmd, NamespaceError> {
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
pub fn namespaced_pipeline(p: &Pipeline, ns: &[u8]) -> Result<Pipeline, NamespaceError> {
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

    fn cmd(args: &[&str]) -> Cmd {
        let mut c = Cmd::new();
        for a in args {
            c.arg(*a);
        }
        c
    }

    fn words(line: &str) -> Vec<&str> {
        line.split_whitespace().collect()
    }

    fn strings(c: &Cmd) -> Vec<String> {
        c.args_iter()
            .map(|a| match a {
                Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                _ => "<cursor>".into(),
            })
            .collect()
    }

    #[test]
    fn routes_single_commands() {
        use Target::*;
        let cases: &[(&str, Target)] = &[
            // Reads.
            ("GET k", Replica),
            ("get k", Replica),
            ("MGET a b c", Replica),
            ("HGETALL h", Replica),
            ("ZRANGE z 0 -1 WITHSCORES", Replica),
            ("XRANGE s - +", Replica),
            ("EXISTS a b", Replica),
            ("TTL k", Replica),
            ("SCAN 0 MATCH x* COUNT 10", Master),
            ("HSCAN h 0", Master),
            ("KEYS *", Replica),
            ("OBJECT ENCODING k", Replica),
            ("object encoding k", Replica),
            ("XINFO STREAM s", Replica),
            ("MEMORY USAGE k", Replica),
            ("EVAL_RO return 1 0", Replica),
            ("EVALSHA_RO abc 1 k", Replica),
            ("FCALL_RO f 1 k", Replica),
            ("SORT_RO k", Replica),
            ("GEORADIUS_RO g 0 0 1 km", Replica),
            ("XREAD COUNT 10 STREAMS s 0", Replica),
            // Writes and side effects.
            ("SET k v", Master),
            ("INCR k", Master),
            ("DEL a b", Master),
            ("EXPIRE k 10", Master),
            ("XADD s * f v", Master),
            ("EVAL return 1 0", Master),
            ("EVALSHA abc 0", Master),
            ("FCALL f 0", Master),
            ("PUBLISH ch msg", Master),
            ("SPUBLISH ch msg", Master),
            ("PUBSUB CHANNELS", Master),
            ("SORT k", Master),
            ("GEORADIUS g 0 0 1 km", Master),
            ("TOUCH k", Master),
            ("SCRIPT EXISTS abc", Master),
            ("SCRIPT LOAD return", Master),
            ("FUNCTION LIST", Master),
            ("CONFIG GET maxmemory", Master),
            ("CLIENT LIST", Master),
            ("PING", Master),
            ("INFO replication", Master),
            // Blocking.
            ("BLPOP a 0", Master),
            ("BZMPOP 1 1 z MIN", Master),
            ("XREAD BLOCK 0 STREAMS s $", Master),
            ("XREAD COUNT 1 BLOCK 10 STREAMS s $", Master),
            ("XREADGROUP GROUP g c STREAMS s >", Master),
            ("WAIT 1 0", Master),
            // Special and unknown.
            ("SUBSCRIBE ch", Master),
            ("SELECT 1", Master),
            ("MULTI", Master),
            ("WATCH k", Master),
            ("NOSUCHCOMMAND k", Master),
            ("OBJECT NOSUCHSUB k", Master),
            ("OBJECT", Master),
        ];
        for (line, want) in cases {
            assert_eq!(route_cmd(&cmd(&words(line))), *want, "{line}");
        }
        assert_eq!(route_cmd(&Cmd::new()), Target::Master, "empty command");
    }

    #[test]
    fn routes_pipelines() {
        let mut reads = redis::pipe();
        reads
            .cmd("GET")
            .arg("a")
            .cmd("MGET")
            .arg("b")
            .arg("c")
            .ignore();
        reads.cmd("OBJECT").arg("ENCODING").arg("a");
        assert_eq!(route_pipeline(&reads), Target::Replica);

        let mut mixed = reads.clone();
        mixed.cmd("SET").arg("a").arg("1");
        assert_eq!(route_pipeline(&mixed), Target::Master);

        let mut atomic = reads.clone();
        atomic.atomic();
        assert_eq!(route_pipeline(&atomic), Target::Master);

        let mut manual_tx = redis::pipe();
        manual_tx.cmd("MULTI").cmd("GET").arg("a").cmd("EXEC");
        assert_eq!(route_pipeline(&manual_tx), Target::Master);

        let mut watch = redis::pipe();
        watch.cmd("WATCH").arg("a").cmd("GET").arg("a");
        assert_eq!(route_pipeline(&watch), Target::Master);

        let mut blocking = redis::pipe();
        blocking.cmd("GET").arg("a").cmd("BLPOP").arg("q").arg(0);
        assert_eq!(route_pipeline(&blocking), Target::Master);

        assert_eq!(route_pipeline(&redis::pipe()), Target::Master, "empty");
    }

    #[test]
    fn classifies_special_commands() {
        use Special::*;
        let cases: &[(&str, Special)] = &[
            ("SUBSCRIBE a b", PubSub),
            ("psubscribe a*", PubSub),
            ("SSUBSCRIBE a", PubSub),
            ("UNSUBSCRIBE", PubSub),
            ("PUNSUBSCRIBE", PubSub),
            ("SUNSUBSCRIBE", PubSub),
            ("PUBLISH ch m", None),
            ("SPUBLISH ch m", None),
            ("PUBSUB NUMSUB ch", None),
            ("SELECT 2", Select),
            ("MULTI", Transaction),
            ("EXEC", Transaction),
            ("DISCARD", Transaction),
            ("WATCH a", Transaction),
            ("UNWATCH", Transaction),
            ("AUTH pw", ConnectionState),
            ("HELLO 3", ConnectionState),
            ("MONITOR", ConnectionState),
            ("CLIENT SETNAME x", ConnectionState),
            ("CLIENT TRACKING ON", ConnectionState),
            ("CLIENT LIST", None),
            ("BLPOP a 0", Blocking),
            ("BRPOPLPUSH a b 0", Blocking),
            ("BLMPOP 0 1 a LEFT", Blocking),
            ("XREAD BLOCK 100 STREAMS s $", Blocking),
            ("XREADGROUP GROUP g c BLOCK 0 STREAMS s >", Blocking),
            ("XREAD STREAMS s 0", None),
            ("XREADGROUP GROUP block c STREAMS s >", None),
            ("WAIT 1 100", Blocking),
            ("GET k", None),
            ("NOSUCHCOMMAND", None),
        ];
        for (line, want) in cases {
            assert_eq!(classify(&cmd(&words(line))), *want, "{line}");
        }
    }

    #[test]
    fn blocking_timeouts() {
        use BlockTimeout::*;
        let ms = Duration::from_millis;
        let cases: &[(&str, Option<BlockTimeout>)] = &[
            ("BLPOP a b 1.5", Some(After(ms(1500)))),
            ("BLPOP a 0", Some(Forever)),
            ("BZPOPMIN z 2", Some(After(ms(2000)))),
            ("BLMOVE a b LEFT RIGHT 0.25", Some(After(ms(250)))),
            ("BZMPOP 3 1 z MIN", Some(After(ms(3000)))),
            ("XREAD COUNT 5 BLOCK 100 STREAMS s $", Some(After(ms(100)))),
            ("XREAD BLOCK 0 STREAMS s $", Some(Forever)),
            ("WAIT 1 500", Some(After(ms(500)))),
            ("WAIT 1 0", Some(Forever)),
            ("BLPOP a notanumber", Some(Forever)),
            ("XREAD STREAMS s 0", None),
            ("GET k", None),
        ];
        for (line, want) in cases {
            assert_eq!(blocking_timeout(&cmd(&words(line))), *want, "{line}");
        }
    }

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

    #[test]
    fn plan_agrees_with_the_separate_functions() {
        for line in [
            "GET k",
            "SET k v",
            "BLPOP a b 1.5",
            "XREAD BLOCK 100 STREAMS s $",
            "XREAD STREAMS s 0",
            "SUBSCRIBE c",
            "SELECT 1",
            "MULTI",
            "CLIENT SETNAME x",
            "CLIENT LIST",
            "WAIT 1 100",
            "OBJECT ENCODING k",
            "SCAN 0",
            "EVAL_RO s 0",
            "TOUCH k",
            "NOSUCH x",
            "averyveryverylongcommandname x",
        ] {
            let mut c = redis::Cmd::new();
            for w in line.split(' ') {
                c.arg(w);
            }
            let p = plan(&c);
            assert_eq!(p.target, route_cmd(&c), "{line}");
            assert_eq!(p.special, classify(&c), "{line}");
            assert_eq!(p.block, blocking_timeout(&c), "{line}");
        }
    }
}
