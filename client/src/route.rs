//! Where a command goes (master or a replica) and which commands need special handling. Pure:
//! no I/O, decisions from the command's arguments and the generated command table
//! ([`crate::commands`]). How keys are put into a namespace is in [`crate::namespace`].
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

use std::time::Duration;

use redis::{Arg, Cmd, Pipeline};

use crate::commands::{self, CommandSpec, Flags};

/// Which server a command or pipeline must go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    /// The current master (writes, and everything not proven to be a plain read).
    Master,
    /// Any replica (or the master when there is none; that is the client's choice).
    Replica,
}

/// Commands the client gives a documented behaviour of their own (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Special {
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
pub(crate) enum BlockTimeout {
    /// Timeout 0: until data arrives (or the connection drops). Also used when the timeout
    /// argument is missing or unreadable (the server then fails the command at once).
    Forever,
    /// At most this long.
    After(Duration),
}

/// The arguments of a command, name included; `None` stands for a cursor argument.
pub(crate) type Argv<'a> = Vec<Option<&'a [u8]>>;

pub(crate) fn argv(cmd: &Cmd) -> Argv<'_> {
    cmd.args_iter()
        .map(|a| match a {
            Arg::Simple(bytes) => Some(bytes),
            _ => None,
        })
        .collect()
}

pub(crate) fn is(arg: Option<&Option<&[u8]>>, word: &str) -> bool {
    matches!(arg, Some(Some(a)) if a.eq_ignore_ascii_case(word.as_bytes()))
}

pub(crate) fn is_any(arg: Option<&Option<&[u8]>>, words: &[&str]) -> bool {
    words.iter().any(|w| is(arg, w))
}

pub(crate) fn spec_for(a: &[Option<&[u8]>]) -> Option<&'static CommandSpec> {
    let name = (*a.first()?)?;
    commands::lookup_with_sub(name, a.get(1).copied().flatten())
}

/// Positions of `XREAD`/`XREADGROUP` options: the `BLOCK` value and the `STREAMS` keyword.
#[derive(Default)]
pub(crate) struct XreadOptions {
    block_value: Option<usize>,
    pub(crate) streams: Option<usize>,
}

pub(crate) fn xread_options(a: &[Option<&[u8]>]) -> XreadOptions {
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
pub(crate) fn lower_name<'b>(a: &[Option<&[u8]>], buf: &'b mut [u8; 24]) -> Option<&'b str> {
    let name = (*a.first()?)?;
    let out = buf.get_mut(..name.len())?;
    out.copy_from_slice(name);
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

pub(crate) fn blocks(name: &str, a: &[Option<&[u8]>], spec: Option<&CommandSpec>) -> bool {
    match name {
        "wait" | "waitaof" => true,
        "xread" | "xreadgroup" => xread_options(a).block_value.is_some(),
        _ => spec.is_some_and(|s| s.has(Flags::BLOCKING)),
    }
}

pub(crate) fn classify_with(
    name: &str,
    a: &[Option<&[u8]>],
    spec: Option<&CommandSpec>,
) -> Special {
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

pub(crate) fn classify_argv(a: &[Option<&[u8]>]) -> Special {
    let mut buf = [0u8; 24];
    let name = lower_name(a, &mut buf).unwrap_or("");
    classify_with(name, a, spec_for(a))
}

/// Everything the client needs to know about one command, worked out once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Plan {
    pub(crate) target: Target,
    pub(crate) special: Special,
    /// For [`Special::Blocking`]: how long the command may wait.
    pub(crate) block: Option<BlockTimeout>,
}

/// The name and first argument of `cmd` (`None` for a missing or cursor argument).
fn head(cmd: &Cmd) -> [Option<&[u8]>; 2] {
    let mut args = cmd.args_iter().map(|a| match a {
        Arg::Simple(bytes) => Some(bytes),
        _ => None,
    });
    [args.next().flatten(), args.next().flatten()]
}

/// Routes and classifies `cmd` (the client's hot path): only the name and the first
/// argument are looked at, unless the command's options matter (`XREAD`, blocking commands).
pub(crate) fn plan(cmd: &Cmd) -> Plan {
    let head = head(cmd);
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

/// Whether `cmd`, sent to the master, may change what replicas receive, so that synchronous
/// mode must wait for them: anything but a command the table flags `readonly` (and not
/// `write`) and a few server queries (`PING`, `ECHO`, `TIME`, `INFO`, `DBSIZE`, `LASTSAVE`,
/// `ROLE`). Unknown commands, scripts (`EVAL`, `FCALL`: not flagged `write`, yet they may
/// write) and `PUBLISH` (replicated) wait.
pub(crate) fn may_replicate(cmd: &Cmd) -> bool {
    let head = head(cmd);
    let mut buf = [0u8; 24];
    let Some(name) = lower_name(&head, &mut buf) else {
        return true;
    };
    if matches!(
        name,
        "ping" | "echo" | "time" | "info" | "dbsize" | "lastsave" | "role"
    ) {
        return false;
    }
    let spec = commands::lookup_lowercase(name, head[1]);
    !spec.is_some_and(|s| s.has(Flags::READONLY) && !s.has(Flags::WRITE))
}

/// Whether `cmd` needs one of the documented special behaviours (see the module doc).
pub(crate) fn classify(cmd: &Cmd) -> Special {
    classify_argv(&argv(cmd))
}

/// A timeout argument as text, trimmed (`None` when absent or not UTF-8).
fn arg_text<'a>(arg: Option<&Option<&'a [u8]>>) -> Option<&'a str> {
    let bytes = arg.copied().flatten()?;
    std::str::from_utf8(bytes).ok().map(str::trim)
}

pub(crate) fn parse_seconds(arg: Option<&Option<&[u8]>>) -> BlockTimeout {
    let secs = arg_text(arg)
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0);
    match secs.and_then(|s| Duration::try_from_secs_f64(s).ok()) {
        Some(d) => BlockTimeout::After(d),
        None => BlockTimeout::Forever,
    }
}

pub(crate) fn parse_millis(arg: Option<&Option<&[u8]>>) -> BlockTimeout {
    let ms = arg_text(arg)
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|ms| *ms > 0);
    match ms {
        Some(ms) => BlockTimeout::After(Duration::from_millis(ms)),
        None => BlockTimeout::Forever,
    }
}

/// For a [`Special::Blocking`] command, how long the server may hold it (its timeout argument:
/// seconds for `BLPOP` & co, milliseconds for `XREAD BLOCK`, `WAIT`, `WAITAOF`; 0 is forever).
/// `None` for commands that do not block.
#[cfg(test)]
pub(crate) fn blocking_timeout(cmd: &Cmd) -> Option<BlockTimeout> {
    let a = argv(cmd);
    if classify_argv(&a) != Special::Blocking {
        return None;
    }
    let mut buf = [0u8; 24];
    let name = lower_name(&a, &mut buf).unwrap_or("");
    Some(block_timeout_of(name, &a))
}

pub(crate) fn block_timeout_of(name: &str, a: &[Option<&[u8]>]) -> BlockTimeout {
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

pub(crate) fn route_with(name: &str, spec: Option<&CommandSpec>, special: Special) -> Target {
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

pub(crate) fn route_argv(a: &[Option<&[u8]>]) -> Target {
    let mut buf = [0u8; 24];
    let name = lower_name(a, &mut buf).unwrap_or("");
    let spec = spec_for(a);
    route_with(name, spec, classify_with(name, a, spec))
}

/// Where `cmd` must go (see the module doc for the rule).
#[cfg(test)]
pub(crate) fn route_cmd(cmd: &Cmd) -> Target {
    route_argv(&argv(cmd))
}

/// Where a pipeline must go: the master if it is atomic, holds a transaction command, is empty,
/// or has any command that must go to the master; otherwise a replica.
pub(crate) fn route_pipeline(p: &Pipeline) -> Target {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn cmd(args: &[&str]) -> Cmd {
        let mut c = Cmd::new();
        for a in args {
            c.arg(*a);
        }
        c
    }

    pub(crate) fn words(line: &str) -> Vec<&str> {
        line.split_whitespace().collect()
    }

    /// Each command line of `cases` (words split on spaces) gives its answer by `f`.
    fn check_lines<T: PartialEq + std::fmt::Debug>(cases: &[(&str, T)], f: impl Fn(&Cmd) -> T) {
        for (line, want) in cases {
            assert_eq!(f(&cmd(&words(line))), *want, "{line}");
        }
    }

    pub(crate) fn strings(c: &Cmd) -> Vec<String> {
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
        check_lines(cases, route_cmd);
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
        check_lines(cases, classify);
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
        check_lines(cases, blocking_timeout);
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
