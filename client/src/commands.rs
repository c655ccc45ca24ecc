//! The Redis command table: for every command and container subcommand, its flags and the
//! positions of its keys. Pure data plus lookups; [`crate::route`] builds its rules on it.
//!
//! The table ([`COMMANDS`]) is generated, not written: `client/tools/gen_commands.py` starts a
//! throw-away `redis-server`, runs `COMMAND`, and rewrites the part of this file between the
//! `BEGIN GENERATED TABLE` / `END GENERATED TABLE` markers. [`GENERATED_FROM`] names the server
//! version it came from; `gen_commands.py --check` tells whether the file is up to date.
//!
//! Names follow Redis 7: lowercase, with container subcommands as `container|sub` (for example
//! `object|encoding`, `config|get`, `xinfo|stream`). Key positions are the legacy key range of
//! `COMMAND` (first key, last key, step, counted in the full argv where the command name is 0);
//! commands whose keys cannot be expressed that way carry [`Flags::MOVABLEKEYS`].
//!
//! `may_replicate` and the other flags that `COMMAND` hides on purpose are not in the table.

use std::cmp::Ordering;
use std::fmt;

/// A set of command flags, as reported by `COMMAND` (see the associated constants).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u32);

impl Flags {
    /// No flag.
    pub const NONE: Flags = Flags(0);

    /// The raw bits (the bit order is that of the generated constants; not stable across
    /// regenerations).
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set in `self`.
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    /// The union of both sets.
    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// The names of the flags set, as `COMMAND` spells them, in bit order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::ALL
            .iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, name)| *name)
    }

    /// The flag `COMMAND` calls `name` (exact, lowercase), if the table knows it.
    pub fn from_name(name: &str) -> Option<Flags> {
        Flags::ALL.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        self.union(rhs)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Flags(")?;
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            f.write_str(name)?;
        }
        f.write_str(")")
    }
}

/// What the table knows about one command or container subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// Lowercase name; subcommands are `container|sub`.
    pub name: &'static str,
    /// Redis arity: `n` means exactly `n` arguments (name included), `-n` means at least `n`.
    pub arity: i32,
    /// The flags `COMMAND` reports.
    pub flags: Flags,
    /// Argv index of the first key; 0 when the legacy range has no key.
    pub first_key: i32,
    /// Argv index of the last key; negative counts from the end (`-1` is the last argument,
    /// `-2` all but the last one, ...).
    pub last_key: i32,
    /// Distance between keys (2 for `MSET key value key value`).
    pub step: i32,
    /// A container (`CONFIG`, `OBJECT`, ...): the real spec is that of `name|sub`.
    pub has_subcommands: bool,
    /// The legacy key range holds shard channels (`SPUBLISH`, `SSUBSCRIBE`, ...), not keys:
    /// every key spec of the command is flagged `not_key`.
    pub not_key: bool,
}

impl CommandSpec {
    /// Whether every flag of `flags` is set.
    pub const fn has(&self, flags: Flags) -> bool {
        self.flags.contains(flags)
    }

    /// The command as a user types it: uppercase, subcommand separated by a space
    /// (`OBJECT ENCODING`).
    pub fn display_name(&self) -> String {
        self.name.replace('|', " ").to_ascii_uppercase()
    }

    /// Argv indices of the keys of a call with `argc` arguments (name included), from the legacy
    /// key range. Empty for keyless commands. Commands with [`Flags::MOVABLEKEYS`] may have keys
    /// this does not yield.
    pub fn key_indices(&self, argc: usize) -> impl Iterator<Item = usize> {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        let first = i64::from(self.first_key);
        let last = if self.last_key < 0 {
            argc + i64::from(self.last_key)
        } else {
            i64::from(self.last_key)
        };
        let last = last.min(argc - 1);
        let step = i64::from(self.step.max(1));
        let (start, end) = if first > 0 && last >= first {
            (first, last)
        } else {
            (1, 0)
        };
        (start..=end)
            .step_by(usize::try_from(step).unwrap_or(1))
            .filter_map(|i| usize::try_from(i).ok())
    }
}

/// Compares a table name (lowercase) with a name in any case.
fn cmp_name(table: &str, name: impl Iterator<Item = u8>) -> Ordering {
    table.bytes().cmp(name.map(|b| b.to_ascii_lowercase()))
}

/// The spec of a command or subcommand by its full name (`get`, `CONFIG|GET`), case-insensitive.
/// A container's own entry (`config`) is returned as is; see [`lookup_with_sub`].
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    COMMANDS
        .binary_search_by(|spec| cmp_name(spec.name, name.iter().copied()))
        .ok()
        .map(|i| &COMMANDS[i])
}

/// The spec that applies to a call whose first two arguments are `name` and `sub`: for a
/// container (`OBJECT`, `CONFIG`, `XINFO`, ...) the spec of `name|sub`, `None` when `sub` is
/// missing or unknown; for any other command its own spec (`sub` is then just its first
/// argument and is ignored). Case-insensitive, no allocation.
pub fn lookup_with_sub(name: &[u8], sub: Option<&[u8]>) -> Option<&'static CommandSpec> {
    let spec = lookup(name)?;
    if !spec.has_subcommands {
        return Some(spec);
    }
    let sub = sub?;
    let full = || name.iter().chain(b"|").chain(sub).copied();
    COMMANDS
        .binary_search_by(|spec| cmp_name(spec.name, full()))
        .ok()
        .map(|i| &COMMANDS[i])
}

/// [`lookup_with_sub`] for a name already in lower case: a hash lookup instead of a binary
/// search, for the client's hot path.
pub fn lookup_lowercase(name: &str, sub: Option<&[u8]>) -> Option<&'static CommandSpec> {
    static BY_NAME: std::sync::OnceLock<std::collections::HashMap<&'static str, usize>> =
        std::sync::OnceLock::new();
    let map = BY_NAME.get_or_init(|| {
        COMMANDS
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.name.contains('|'))
            .map(|(i, c)| (c.name, i))
            .collect()
    });
    let spec = &COMMANDS[*map.get(name)?];
    if spec.has_subcommands {
        return lookup_with_sub(name.as_bytes(), sub);
    }
    Some(spec)
}

/// Builds one row of the table (used by the generated code; one positional argument per
/// column keeps the rows short).
#[allow(clippy::too_many_arguments)]
const fn c(
    name: &'static str,
    arity: i32,
    flags: &[Flags],
    first_key: i32,
    last_key: i32,
    step: i32,
    has_subcommands: bool,
    not_key: bool,
) -> CommandSpec {
    let mut bits = 0;
    let mut i = 0;
    while i < flags.len() {
        bits |= flags[i].0;
        i += 1;
    }
    CommandSpec {
        name,
        arity,
        flags: Flags(bits),
        first_key,
        last_key,
        step,
        has_subcommands,
        not_key,
    }
}

use Flags as F;

// BEGIN GENERATED TABLE
// Generated by client/tools/gen_commands.py from `COMMAND` of redis-server 7.0.15.
// Do not edit by hand: rerun the script (it starts its own throw-away redis-server).

/// The Redis server the table was generated from.
pub const GENERATED_FROM: &str = "redis-server 7.0.15";

impl Flags {
    /// `write`
    pub const WRITE: Flags = Flags(1 << 0);
    /// `readonly`
    pub const READONLY: Flags = Flags(1 << 1);
    /// `denyoom`
    pub const DENYOOM: Flags = Flags(1 << 2);
    /// `module`
    pub const MODULE: Flags = Flags(1 << 3);
    /// `admin`
    pub const ADMIN: Flags = Flags(1 << 4);
    /// `pubsub`
    pub const PUBSUB: Flags = Flags(1 << 5);
    /// `noscript`
    pub const NOSCRIPT: Flags = Flags(1 << 6);
    /// `blocking`
    pub const BLOCKING: Flags = Flags(1 << 7);
    /// `loading`
    pub const LOADING: Flags = Flags(1 << 8);
    /// `stale`
    pub const STALE: Flags = Flags(1 << 9);
    /// `skip_monitor`
    pub const SKIP_MONITOR: Flags = Flags(1 << 10);
    /// `skip_slowlog`
    pub const SKIP_SLOWLOG: Flags = Flags(1 << 11);
    /// `asking`
    pub const ASKING: Flags = Flags(1 << 12);
    /// `fast`
    pub const FAST: Flags = Flags(1 << 13);
    /// `no_auth`
    pub const NO_AUTH: Flags = Flags(1 << 14);
    /// `no_mandatory_keys`
    pub const NO_MANDATORY_KEYS: Flags = Flags(1 << 15);
    /// `no_async_loading`
    pub const NO_ASYNC_LOADING: Flags = Flags(1 << 16);
    /// `no_multi`
    pub const NO_MULTI: Flags = Flags(1 << 17);
    /// `movablekeys`
    pub const MOVABLEKEYS: Flags = Flags(1 << 18);
    /// `allow_busy`
    pub const ALLOW_BUSY: Flags = Flags(1 << 19);

    /// Every flag, with the name `COMMAND` gives it, in bit order.
    pub const ALL: &'static [(Flags, &'static str)] = &[
        (Flags::WRITE, "write"),
        (Flags::READONLY, "readonly"),
        (Flags::DENYOOM, "denyoom"),
        (Flags::MODULE, "module"),
        (Flags::ADMIN, "admin"),
        (Flags::PUBSUB, "pubsub"),
        (Flags::NOSCRIPT, "noscript"),
        (Flags::BLOCKING, "blocking"),
        (Flags::LOADING, "loading"),
        (Flags::STALE, "stale"),
        (Flags::SKIP_MONITOR, "skip_monitor"),
        (Flags::SKIP_SLOWLOG, "skip_slowlog"),
        (Flags::ASKING, "asking"),
        (Flags::FAST, "fast"),
        (Flags::NO_AUTH, "no_auth"),
        (Flags::NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (Flags::NO_ASYNC_LOADING, "no_async_loading"),
        (Flags::NO_MULTI, "no_multi"),
        (Flags::MOVABLEKEYS, "movablekeys"),
        (Flags::ALLOW_BUSY, "allow_busy"),
    ];
}

/// Every command and container subcommand of that server, sorted by name (bytewise).
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    // name, arity, flags, first key, last key, step, has subcommands, not_key
    c("acl", -2, &[], 0, 0, 0, true, false),
    c("acl|cat", -2, &[F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("acl|deluser", -3, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("acl|dryrun", -4, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("acl|genpass", -2, &[F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("acl|getuser", 3, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("acl|help", 2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("acl|list", 2, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("acl|load", 2, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("acl|log", -2, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("acl|save", 2, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("acl|setuser", -3, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("acl|users", 2, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("acl|whoami", 2, &[F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("append", 3, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("asking", 1, &[F::FAST], 0, 0, 0, false, false),
    c("auth", -2, &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST, F::NO_AUTH, F::ALLOW_BUSY], 0, 0, 0, false, false),
    c("bgrewriteaof", 1, &[F::ADMIN, F::NOSCRIPT, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("bgsave", -1, &[F::ADMIN, F::NOSCRIPT, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("bitcount", -2, &[F::READONLY], 1, 1, 1, false, false),
    c("bitfield", -2, &[F::WRITE, F::DENYOOM], 1, 1, 1, false, false),
    c("bitfield_ro", -2, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("bitop", -4, &[F::WRITE, F::DENYOOM], 2, -1, 1, false, false),
    c("bitpos", -3, &[F::READONLY], 1, 1, 1, false, false),
    c("blmove", 6, &[F::WRITE, F::DENYOOM, F::NOSCRIPT, F::BLOCKING], 1, 2, 1, false, false),
    c("blmpop", -5, &[F::WRITE, F::BLOCKING, F::MOVABLEKEYS], 0, 0, 0, false, false),
    c("blpop", -3, &[F::WRITE, F::NOSCRIPT, F::BLOCKING], 1, -2, 1, false, false),
    c("brpop", -3, &[F::WRITE, F::NOSCRIPT, F::BLOCKING], 1, -2, 1, false, false),
    c("brpoplpush", 4, &[F::WRITE, F::DENYOOM, F::NOSCRIPT, F::BLOCKING], 1, 2, 1, false, false),
    c("bzmpop", -5, &[F::WRITE, F::BLOCKING, F::MOVABLEKEYS], 0, 0, 0, false, false),
    c("bzpopmax", -3, &[F::WRITE, F::NOSCRIPT, F::BLOCKING, F::FAST], 1, -2, 1, false, false),
    c("bzpopmin", -3, &[F::WRITE, F::NOSCRIPT, F::BLOCKING, F::FAST], 1, -2, 1, false, false),
    c("client", -2, &[], 0, 0, 0, true, false),
    c("client|caching", 3, &[F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("client|getname", 2, &[F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("client|getredir", 2, &[F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("client|help", 2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("client|id", 2, &[F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("client|info", 2, &[F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("client|kill", -3, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("client|list", -2, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("client|no-evict", 3, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("client|pause", -3, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("client|reply", 3, &[F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("client|setname", 3, &[F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("client|tracking", -3, &[F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("client|trackinginfo", 2, &[F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("client|unblock", -3, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("client|unpause", 2, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("cluster", -2, &[], 0, 0, 0, true, false),
    c("cluster|addslots", -3, &[F::ADMIN, F::STALE, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("cluster|addslotsrange", -4, &[F::ADMIN, F::STALE, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("cluster|bumpepoch", 2, &[F::ADMIN, F::STALE, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("cluster|count-failure-reports", 3, &[F::ADMIN, F::STALE], 0, 0, 0, false, false),
    c("cluster|countkeysinslot", 3, &[F::STALE], 0, 0, 0, false, false),
    c("cluster|delslots", -3, &[F::ADMIN, F::STALE, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("cluster|delslotsrange", -4, &[F::ADMIN, F::STALE, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("cluster|failover", -2, &[F::ADMIN, F::STALE, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("cluster|flushslots", 2, &[F::ADMIN, F::STALE, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("cluster|forget", 3, &[F::ADMIN, F::STALE, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("cluster|getkeysinslot", 4, &[F::STALE], 0, 0, 0, false, false),
    c("cluster|help", 2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("cluster|info", 2, &[F::STALE], 0, 0, 0, false, false),
    c("cluster|keyslot", 3, &[F::STALE], 0, 0, 0, false, false),
    c("cluster|links", 2, &[F::STALE], 0, 0, 0, false, false),
    c("cluster|meet", -4, &[F::ADMIN, F::STALE, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("cluster|myid", 2, &[F::STALE], 0, 0, 0, false, false),
    c("cluster|nodes", 2, &[F::STALE], 0, 0, 0, false, false),
    c("cluster|replicas", 3, &[F::ADMIN, F::STALE], 0, 0, 0, false, false),
    c("cluster|replicate", 3, &[F::ADMIN, F::STALE, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("cluster|reset", -2, &[F::ADMIN, F::NOSCRIPT, F::STALE], 0, 0, 0, false, false),
    c("cluster|saveconfig", 2, &[F::ADMIN, F::STALE, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("cluster|set-config-epoch", 3, &[F::ADMIN, F::STALE, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("cluster|setslot", -4, &[F::ADMIN, F::STALE, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("cluster|shards", 2, &[F::STALE], 0, 0, 0, false, false),
    c("cluster|slaves", 3, &[F::ADMIN, F::STALE], 0, 0, 0, false, false),
    c("cluster|slots", 2, &[F::STALE], 0, 0, 0, false, false),
    c("command", -1, &[F::LOADING, F::STALE], 0, 0, 0, true, false),
    c("command|count", 2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("command|docs", -2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("command|getkeys", -4, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("command|getkeysandflags", -4, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("command|help", 2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("command|info", -2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("command|list", -2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("config", -2, &[], 0, 0, 0, true, false),
    c("config|get", -3, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("config|help", 2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("config|resetstat", 2, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("config|rewrite", 2, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("config|set", -4, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("copy", -3, &[F::WRITE, F::DENYOOM], 1, 2, 1, false, false),
    c("dbsize", 1, &[F::READONLY, F::FAST], 0, 0, 0, false, false),
    c("debug", -2, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("decr", 2, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("decrby", 3, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("del", -2, &[F::WRITE], 1, -1, 1, false, false),
    c("discard", 1, &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST, F::ALLOW_BUSY], 0, 0, 0, false, false),
    c("dump", 2, &[F::READONLY], 1, 1, 1, false, false),
    c("echo", 2, &[F::LOADING, F::STALE, F::FAST], 0, 0, 0, false, false),
    c("eval", -3, &[F::NOSCRIPT, F::STALE, F::SKIP_MONITOR, F::NO_MANDATORY_KEYS, F::MOVABLEKEYS], 0, 0, 0, false, false),
    c("eval_ro", -3, &[F::READONLY, F::NOSCRIPT, F::STALE, F::SKIP_MONITOR, F::NO_MANDATORY_KEYS, F::MOVABLEKEYS], 0, 0, 0, false, false),
    c("evalsha", -3, &[F::NOSCRIPT, F::STALE, F::SKIP_MONITOR, F::NO_MANDATORY_KEYS, F::MOVABLEKEYS], 0, 0, 0, false, false),
    c("evalsha_ro", -3, &[F::READONLY, F::NOSCRIPT, F::STALE, F::SKIP_MONITOR, F::NO_MANDATORY_KEYS, F::MOVABLEKEYS], 0, 0, 0, false, false),
    c("exec", 1, &[F::NOSCRIPT, F::LOADING, F::STALE, F::SKIP_SLOWLOG], 0, 0, 0, false, false),
    c("exists", -2, &[F::READONLY, F::FAST], 1, -1, 1, false, false),
    c("expire", -3, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("expireat", -3, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("expiretime", 2, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("failover", -1, &[F::ADMIN, F::NOSCRIPT, F::STALE], 0, 0, 0, false, false),
    c("fcall", -3, &[F::NOSCRIPT, F::STALE, F::SKIP_MONITOR, F::NO_MANDATORY_KEYS, F::MOVABLEKEYS], 0, 0, 0, false, false),
    c("fcall_ro", -3, &[F::READONLY, F::NOSCRIPT, F::STALE, F::SKIP_MONITOR, F::NO_MANDATORY_KEYS, F::MOVABLEKEYS], 0, 0, 0, false, false),
    c("flushall", -1, &[F::WRITE], 0, 0, 0, false, false),
    c("flushdb", -1, &[F::WRITE], 0, 0, 0, false, false),
    c("function", -2, &[], 0, 0, 0, true, false),
    c("function|delete", 3, &[F::WRITE, F::NOSCRIPT], 0, 0, 0, false, false),
    c("function|dump", 2, &[F::NOSCRIPT], 0, 0, 0, false, false),
    c("function|flush", -2, &[F::WRITE, F::NOSCRIPT], 0, 0, 0, false, false),
    c("function|help", 2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("function|kill", 2, &[F::NOSCRIPT, F::ALLOW_BUSY], 0, 0, 0, false, false),
    c("function|list", -2, &[F::NOSCRIPT], 0, 0, 0, false, false),
    c("function|load", -3, &[F::WRITE, F::DENYOOM, F::NOSCRIPT], 0, 0, 0, false, false),
    c("function|restore", -3, &[F::WRITE, F::DENYOOM, F::NOSCRIPT], 0, 0, 0, false, false),
    c("function|stats", 2, &[F::NOSCRIPT, F::ALLOW_BUSY], 0, 0, 0, false, false),
    c("geoadd", -5, &[F::WRITE, F::DENYOOM], 1, 1, 1, false, false),
    c("geodist", -4, &[F::READONLY], 1, 1, 1, false, false),
    c("geohash", -2, &[F::READONLY], 1, 1, 1, false, false),
    c("geopos", -2, &[F::READONLY], 1, 1, 1, false, false),
    c("georadius", -6, &[F::WRITE, F::DENYOOM, F::MOVABLEKEYS], 1, 1, 1, false, false),
    c("georadius_ro", -6, &[F::READONLY], 1, 1, 1, false, false),
    c("georadiusbymember", -5, &[F::WRITE, F::DENYOOM, F::MOVABLEKEYS], 1, 1, 1, false, false),
    c("georadiusbymember_ro", -5, &[F::READONLY], 1, 1, 1, false, false),
    c("geosearch", -7, &[F::READONLY], 1, 1, 1, false, false),
    c("geosearchstore", -8, &[F::WRITE, F::DENYOOM], 1, 2, 1, false, false),
    c("get", 2, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("getbit", 3, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("getdel", 2, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("getex", -2, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("getrange", 4, &[F::READONLY], 1, 1, 1, false, false),
    c("getset", 3, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("hdel", -3, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("hello", -1, &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST, F::NO_AUTH, F::ALLOW_BUSY], 0, 0, 0, false, false),
    c("hexists", 3, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("hget", 3, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("hgetall", 2, &[F::READONLY], 1, 1, 1, false, false),
    c("hincrby", 4, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("hincrbyfloat", 4, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("hkeys", 2, &[F::READONLY], 1, 1, 1, false, false),
    c("hlen", 2, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("hmget", -3, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("hmset", -4, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("hrandfield", -2, &[F::READONLY], 1, 1, 1, false, false),
    c("hscan", -3, &[F::READONLY], 1, 1, 1, false, false),
    c("hset", -4, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("hsetnx", 4, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("hstrlen", 3, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("hvals", 2, &[F::READONLY], 1, 1, 1, false, false),
    c("incr", 2, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("incrby", 3, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("incrbyfloat", 3, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("info", -1, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("keys", 2, &[F::READONLY], 0, 0, 0, false, false),
    c("lastsave", 1, &[F::LOADING, F::STALE, F::FAST], 0, 0, 0, false, false),
    c("latency", -2, &[], 0, 0, 0, true, false),
    c("latency|doctor", 2, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("latency|graph", 3, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("latency|help", 2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("latency|histogram", -2, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("latency|history", 3, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("latency|latest", 2, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("latency|reset", -2, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("lcs", -3, &[F::READONLY], 1, 2, 1, false, false),
    c("lindex", 3, &[F::READONLY], 1, 1, 1, false, false),
    c("linsert", 5, &[F::WRITE, F::DENYOOM], 1, 1, 1, false, false),
    c("llen", 2, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("lmove", 5, &[F::WRITE, F::DENYOOM], 1, 2, 1, false, false),
    c("lmpop", -4, &[F::WRITE, F::MOVABLEKEYS], 0, 0, 0, false, false),
    c("lolwut", -1, &[F::READONLY, F::FAST], 0, 0, 0, false, false),
    c("lpop", -2, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("lpos", -3, &[F::READONLY], 1, 1, 1, false, false),
    c("lpush", -3, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("lpushx", -3, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("lrange", 4, &[F::READONLY], 1, 1, 1, false, false),
    c("lrem", 4, &[F::WRITE], 1, 1, 1, false, false),
    c("lset", 4, &[F::WRITE, F::DENYOOM], 1, 1, 1, false, false),
    c("ltrim", 4, &[F::WRITE], 1, 1, 1, false, false),
    c("memory", -2, &[], 0, 0, 0, true, false),
    c("memory|doctor", 2, &[], 0, 0, 0, false, false),
    c("memory|help", 2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("memory|malloc-stats", 2, &[], 0, 0, 0, false, false),
    c("memory|purge", 2, &[], 0, 0, 0, false, false),
    c("memory|stats", 2, &[], 0, 0, 0, false, false),
    c("memory|usage", -3, &[F::READONLY], 2, 2, 1, false, false),
    c("mget", -2, &[F::READONLY, F::FAST], 1, -1, 1, false, false),
    c("migrate", -6, &[F::WRITE, F::MOVABLEKEYS], 3, 3, 1, false, false),
    c("module", -2, &[], 0, 0, 0, true, false),
    c("module|help", 2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("module|list", 2, &[F::ADMIN, F::NOSCRIPT], 0, 0, 0, false, false),
    c("module|load", -3, &[F::ADMIN, F::NOSCRIPT, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("module|loadex", -3, &[F::ADMIN, F::NOSCRIPT, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("module|unload", 3, &[F::ADMIN, F::NOSCRIPT, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("monitor", 1, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("move", 3, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("mset", -3, &[F::WRITE, F::DENYOOM], 1, -1, 2, false, false),
    c("msetnx", -3, &[F::WRITE, F::DENYOOM], 1, -1, 2, false, false),
    c("multi", 1, &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST, F::ALLOW_BUSY], 0, 0, 0, false, false),
    c("object", -2, &[], 0, 0, 0, true, false),
    c("object|encoding", 3, &[F::READONLY], 2, 2, 1, false, false),
    c("object|freq", 3, &[F::READONLY], 2, 2, 1, false, false),
    c("object|help", 2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("object|idletime", 3, &[F::READONLY], 2, 2, 1, false, false),
    c("object|refcount", 3, &[F::READONLY], 2, 2, 1, false, false),
    c("persist", 2, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("pexpire", -3, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("pexpireat", -3, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("pexpiretime", 2, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("pfadd", -2, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("pfcount", -2, &[F::READONLY], 1, -1, 1, false, false),
    c("pfdebug", 3, &[F::WRITE, F::DENYOOM, F::ADMIN], 2, 2, 1, false, false),
    c("pfmerge", -2, &[F::WRITE, F::DENYOOM], 1, -1, 1, false, false),
    c("pfselftest", 1, &[F::ADMIN], 0, 0, 0, false, false),
    c("ping", -1, &[F::FAST], 0, 0, 0, false, false),
    c("psetex", 4, &[F::WRITE, F::DENYOOM], 1, 1, 1, false, false),
    c("psubscribe", -2, &[F::PUBSUB, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("psync", -3, &[F::ADMIN, F::NOSCRIPT, F::NO_ASYNC_LOADING, F::NO_MULTI], 0, 0, 0, false, false),
    c("pttl", 2, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("publish", 3, &[F::PUBSUB, F::LOADING, F::STALE, F::FAST], 0, 0, 0, false, false),
    c("pubsub", -2, &[], 0, 0, 0, true, false),
    c("pubsub|channels", -2, &[F::PUBSUB, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("pubsub|help", 2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("pubsub|numpat", 2, &[F::PUBSUB, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("pubsub|numsub", -2, &[F::PUBSUB, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("pubsub|shardchannels", -2, &[F::PUBSUB, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("pubsub|shardnumsub", -2, &[F::PUBSUB, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("punsubscribe", -1, &[F::PUBSUB, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("quit", -1, &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST, F::NO_AUTH, F::ALLOW_BUSY], 0, 0, 0, false, false),
    c("randomkey", 1, &[F::READONLY], 0, 0, 0, false, false),
    c("readonly", 1, &[F::LOADING, F::STALE, F::FAST], 0, 0, 0, false, false),
    c("readwrite", 1, &[F::LOADING, F::STALE, F::FAST], 0, 0, 0, false, false),
    c("rename", 3, &[F::WRITE], 1, 2, 1, false, false),
    c("renamenx", 3, &[F::WRITE, F::FAST], 1, 2, 1, false, false),
    c("replconf", -1, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE, F::ALLOW_BUSY], 0, 0, 0, false, false),
    c("replicaof", 3, &[F::ADMIN, F::NOSCRIPT, F::STALE, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("reset", 1, &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST, F::NO_AUTH, F::ALLOW_BUSY], 0, 0, 0, false, false),
    c("restore", -4, &[F::WRITE, F::DENYOOM], 1, 1, 1, false, false),
    c("restore-asking", -4, &[F::WRITE, F::DENYOOM, F::ASKING], 1, 1, 1, false, false),
    c("role", 1, &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST], 0, 0, 0, false, false),
    c("rpop", -2, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("rpoplpush", 3, &[F::WRITE, F::DENYOOM], 1, 2, 1, false, false),
    c("rpush", -3, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("rpushx", -3, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("sadd", -3, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("save", 1, &[F::ADMIN, F::NOSCRIPT, F::NO_ASYNC_LOADING, F::NO_MULTI], 0, 0, 0, false, false),
    c("scan", -2, &[F::READONLY], 0, 0, 0, false, false),
    c("scard", 2, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("script", -2, &[], 0, 0, 0, true, false),
    c("script|debug", 3, &[F::NOSCRIPT], 0, 0, 0, false, false),
    c("script|exists", -3, &[F::NOSCRIPT], 0, 0, 0, false, false),
    c("script|flush", -2, &[F::NOSCRIPT], 0, 0, 0, false, false),
    c("script|help", 2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("script|kill", 2, &[F::NOSCRIPT, F::ALLOW_BUSY], 0, 0, 0, false, false),
    c("script|load", 3, &[F::NOSCRIPT, F::STALE], 0, 0, 0, false, false),
    c("sdiff", -2, &[F::READONLY], 1, -1, 1, false, false),
    c("sdiffstore", -3, &[F::WRITE, F::DENYOOM], 1, -1, 1, false, false),
    c("select", 2, &[F::LOADING, F::STALE, F::FAST], 0, 0, 0, false, false),
    c("set", -3, &[F::WRITE, F::DENYOOM], 1, 1, 1, false, false),
    c("setbit", 4, &[F::WRITE, F::DENYOOM], 1, 1, 1, false, false),
    c("setex", 4, &[F::WRITE, F::DENYOOM], 1, 1, 1, false, false),
    c("setnx", 3, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("setrange", 4, &[F::WRITE, F::DENYOOM], 1, 1, 1, false, false),
    c("shutdown", -1, &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE, F::NO_MULTI, F::ALLOW_BUSY], 0, 0, 0, false, false),
    c("sinter", -2, &[F::READONLY], 1, -1, 1, false, false),
    c("sintercard", -3, &[F::READONLY, F::MOVABLEKEYS], 0, 0, 0, false, false),
    c("sinterstore", -3, &[F::WRITE, F::DENYOOM], 1, -1, 1, false, false),
    c("sismember", 3, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("slaveof", 3, &[F::ADMIN, F::NOSCRIPT, F::STALE, F::NO_ASYNC_LOADING], 0, 0, 0, false, false),
    c("slowlog", -2, &[], 0, 0, 0, true, false),
    c("slowlog|get", -2, &[F::ADMIN, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("slowlog|help", 2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("slowlog|len", 2, &[F::ADMIN, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("slowlog|reset", 2, &[F::ADMIN, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("smembers", 2, &[F::READONLY], 1, 1, 1, false, false),
    c("smismember", -3, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("smove", 4, &[F::WRITE, F::FAST], 1, 2, 1, false, false),
    c("sort", -2, &[F::WRITE, F::DENYOOM, F::MOVABLEKEYS], 1, 1, 1, false, false),
    c("sort_ro", -2, &[F::READONLY, F::MOVABLEKEYS], 1, 1, 1, false, false),
    c("spop", -2, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("spublish", 3, &[F::PUBSUB, F::LOADING, F::STALE, F::FAST], 1, 1, 1, false, true),
    c("srandmember", -2, &[F::READONLY], 1, 1, 1, false, false),
    c("srem", -3, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("sscan", -3, &[F::READONLY], 1, 1, 1, false, false),
    c("ssubscribe", -2, &[F::PUBSUB, F::NOSCRIPT, F::LOADING, F::STALE], 1, -1, 1, false, true),
    c("strlen", 2, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("subscribe", -2, &[F::PUBSUB, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("substr", 4, &[F::READONLY], 1, 1, 1, false, false),
    c("sunion", -2, &[F::READONLY], 1, -1, 1, false, false),
    c("sunionstore", -3, &[F::WRITE, F::DENYOOM], 1, -1, 1, false, false),
    c("sunsubscribe", -1, &[F::PUBSUB, F::NOSCRIPT, F::LOADING, F::STALE], 1, -1, 1, false, true),
    c("swapdb", 3, &[F::WRITE, F::FAST], 0, 0, 0, false, false),
    c("sync", 1, &[F::ADMIN, F::NOSCRIPT, F::NO_ASYNC_LOADING, F::NO_MULTI], 0, 0, 0, false, false),
    c("time", 1, &[F::LOADING, F::STALE, F::FAST], 0, 0, 0, false, false),
    c("touch", -2, &[F::READONLY, F::FAST], 1, -1, 1, false, false),
    c("ttl", 2, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("type", 2, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("unlink", -2, &[F::WRITE, F::FAST], 1, -1, 1, false, false),
    c("unsubscribe", -1, &[F::PUBSUB, F::NOSCRIPT, F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("unwatch", 1, &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST, F::ALLOW_BUSY], 0, 0, 0, false, false),
    c("wait", 3, &[F::NOSCRIPT], 0, 0, 0, false, false),
    c("watch", -2, &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST, F::ALLOW_BUSY], 1, -1, 1, false, false),
    c("xack", -4, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("xadd", -5, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("xautoclaim", -6, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("xclaim", -6, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("xdel", -3, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("xgroup", -2, &[], 0, 0, 0, true, false),
    c("xgroup|create", -5, &[F::WRITE, F::DENYOOM], 2, 2, 1, false, false),
    c("xgroup|createconsumer", 5, &[F::WRITE, F::DENYOOM], 2, 2, 1, false, false),
    c("xgroup|delconsumer", 5, &[F::WRITE], 2, 2, 1, false, false),
    c("xgroup|destroy", 4, &[F::WRITE], 2, 2, 1, false, false),
    c("xgroup|help", 2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("xgroup|setid", -5, &[F::WRITE], 2, 2, 1, false, false),
    c("xinfo", -2, &[], 0, 0, 0, true, false),
    c("xinfo|consumers", 4, &[F::READONLY], 2, 2, 1, false, false),
    c("xinfo|groups", 3, &[F::READONLY], 2, 2, 1, false, false),
    c("xinfo|help", 2, &[F::LOADING, F::STALE], 0, 0, 0, false, false),
    c("xinfo|stream", -3, &[F::READONLY], 2, 2, 1, false, false),
    c("xlen", 2, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("xpending", -3, &[F::READONLY], 1, 1, 1, false, false),
    c("xrange", -4, &[F::READONLY], 1, 1, 1, false, false),
    c("xread", -4, &[F::READONLY, F::BLOCKING, F::MOVABLEKEYS], 0, 0, 0, false, false),
    c("xreadgroup", -7, &[F::WRITE, F::BLOCKING, F::MOVABLEKEYS], 0, 0, 0, false, false),
    c("xrevrange", -4, &[F::READONLY], 1, 1, 1, false, false),
    c("xsetid", -3, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("xtrim", -4, &[F::WRITE], 1, 1, 1, false, false),
    c("zadd", -4, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("zcard", 2, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("zcount", 4, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("zdiff", -3, &[F::READONLY, F::MOVABLEKEYS], 0, 0, 0, false, false),
    c("zdiffstore", -4, &[F::WRITE, F::DENYOOM, F::MOVABLEKEYS], 1, 1, 1, false, false),
    c("zincrby", 4, &[F::WRITE, F::DENYOOM, F::FAST], 1, 1, 1, false, false),
    c("zinter", -3, &[F::READONLY, F::MOVABLEKEYS], 0, 0, 0, false, false),
    c("zintercard", -3, &[F::READONLY, F::MOVABLEKEYS], 0, 0, 0, false, false),
    c("zinterstore", -4, &[F::WRITE, F::DENYOOM, F::MOVABLEKEYS], 1, 1, 1, false, false),
    c("zlexcount", 4, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("zmpop", -4, &[F::WRITE, F::MOVABLEKEYS], 0, 0, 0, false, false),
    c("zmscore", -3, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("zpopmax", -2, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("zpopmin", -2, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("zrandmember", -2, &[F::READONLY], 1, 1, 1, false, false),
    c("zrange", -4, &[F::READONLY], 1, 1, 1, false, false),
    c("zrangebylex", -4, &[F::READONLY], 1, 1, 1, false, false),
    c("zrangebyscore", -4, &[F::READONLY], 1, 1, 1, false, false),
    c("zrangestore", -5, &[F::WRITE, F::DENYOOM], 1, 2, 1, false, false),
    c("zrank", 3, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("zrem", -3, &[F::WRITE, F::FAST], 1, 1, 1, false, false),
    c("zremrangebylex", 4, &[F::WRITE], 1, 1, 1, false, false),
    c("zremrangebyrank", 4, &[F::WRITE], 1, 1, 1, false, false),
    c("zremrangebyscore", 4, &[F::WRITE], 1, 1, 1, false, false),
    c("zrevrange", -4, &[F::READONLY], 1, 1, 1, false, false),
    c("zrevrangebylex", -4, &[F::READONLY], 1, 1, 1, false, false),
    c("zrevrangebyscore", -4, &[F::READONLY], 1, 1, 1, false, false),
    c("zrevrank", 3, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("zscan", -3, &[F::READONLY], 1, 1, 1, false, false),
    c("zscore", 3, &[F::READONLY, F::FAST], 1, 1, 1, false, false),
    c("zunion", -3, &[F::READONLY, F::MOVABLEKEYS], 0, 0, 0, false, false),
    c("zunionstore", -4, &[F::WRITE, F::DENYOOM, F::MOVABLEKEYS], 1, 1, 1, false, false),
];
// END GENERATED TABLE

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_lowercase() {
        for pair in COMMANDS.windows(2) {
            assert!(
                pair[0].name.as_bytes() < pair[1].name.as_bytes(),
                "{} !< {}",
                pair[0].name,
                pair[1].name
            );
        }
        for spec in COMMANDS {
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
            assert_ne!(spec.arity, 0, "{}", spec.name);
            if spec.first_key > 0 {
                assert!(spec.step >= 1, "{}", spec.name);
            }
        }
    }

    /// A broken regeneration (empty output, flags shifted, subcommands lost) must fail here.
    #[test]
    fn table_looks_like_redis_7() {
        assert!(
            GENERATED_FROM.starts_with("redis-server 7."),
            "{GENERATED_FROM}"
        );
        assert!(COMMANDS.len() > 200, "only {} commands", COMMANDS.len());
        let subs = COMMANDS.iter().filter(|s| s.name.contains('|')).count();
        assert!(subs > 50, "only {subs} subcommands");
        let readonly = COMMANDS.iter().filter(|s| s.has(F::READONLY)).count();
        let write = COMMANDS.iter().filter(|s| s.has(F::WRITE)).count();
        assert!(
            readonly > 50 && write > 50,
            "readonly {readonly}, write {write}"
        );
        assert!(!COMMANDS
            .iter()
            .any(|s| s.has(F::READONLY) && s.has(F::WRITE)));

        let spec = |n: &str| lookup(n.as_bytes()).unwrap_or_else(|| panic!("no {n}"));
        assert!(spec("get").has(F::READONLY | F::FAST));
        assert!(!spec("get").has(F::WRITE));
        assert!(spec("set").has(F::WRITE | F::DENYOOM));
        assert!(spec("blpop").has(F::BLOCKING | F::WRITE));
        assert!(spec("xread").has(F::READONLY | F::BLOCKING | F::MOVABLEKEYS));
        assert!(spec("subscribe").has(F::PUBSUB));
        assert!(spec("config|set").has(F::ADMIN));
        assert!(spec("eval_ro").has(F::READONLY | F::NOSCRIPT | F::MOVABLEKEYS));
        assert!(spec("config").has_subcommands);
        assert!(spec("spublish").not_key);
        assert!(!spec("get").not_key);
    }

    #[test]
    fn key_ranges() {
        // (command, first, last, step)
        let cases: &[(&str, i32, i32, i32)] = &[
            ("get", 1, 1, 1),
            ("mget", 1, -1, 1),
            ("mset", 1, -1, 2),
            ("blpop", 1, -2, 1),
            ("rename", 1, 2, 1),
            ("object|encoding", 2, 2, 1),
            ("xinfo|stream", 2, 2, 1),
            ("ping", 0, 0, 0),
        ];
        for &(name, first, last, step) in cases {
            let s = lookup(name.as_bytes()).unwrap_or_else(|| panic!("no {name}"));
            assert_eq!(
                (s.first_key, s.last_key, s.step),
                (first, last, step),
                "{name}"
            );
        }
    }

    #[test]
    fn key_indices_resolve_negative_ends() {
        let idx = |name: &str, argc| -> Vec<usize> {
            lookup(name.as_bytes())
                .map(|s| s.key_indices(argc).collect())
                .unwrap_or_default()
        };
        assert_eq!(idx("get", 2), [1]);
        assert_eq!(idx("mget", 4), [1, 2, 3]);
        assert_eq!(idx("mset", 5), [1, 3]);
        assert_eq!(idx("blpop", 4), [1, 2]);
        assert_eq!(idx("object|encoding", 3), [2]);
        assert_eq!(idx("ping", 2), Vec::<usize>::new());
        // Too few arguments: no index past the end.
        assert_eq!(idx("rename", 2), [1]);
        assert_eq!(idx("get", 1), Vec::<usize>::new());
    }

    #[test]
    fn lookups() {
        let name = |s: Option<&CommandSpec>| s.map(|s| s.name);
        assert_eq!(name(lookup(b"GeT")), Some("get"));
        assert_eq!(name(lookup(b"OBJECT|Encoding")), Some("object|encoding"));
        assert_eq!(name(lookup(b"nosuchcommand")), None);
        assert_eq!(name(lookup(b"")), None);
        assert_eq!(
            name(lookup_with_sub(b"object", Some(b"ENCODING"))),
            Some("object|encoding")
        );
        assert_eq!(
            name(lookup_with_sub(b"Config", Some(b"get"))),
            Some("config|get")
        );
        assert_eq!(
            name(lookup_with_sub(b"client", Some(b"list"))),
            Some("client|list")
        );
        assert_eq!(name(lookup_with_sub(b"object", Some(b"nope"))), None);
        assert_eq!(name(lookup_with_sub(b"object", None)), None);
        // Not a container: the second argument is a key, not a subcommand.
        assert_eq!(
            name(lookup_with_sub(b"get", Some(b"encoding"))),
            Some("get")
        );
        assert_eq!(name(lookup_with_sub(b"get", None)), Some("get"));
    }

    #[test]
    fn flags_names_round_trip() {
        for &(flag, name) in Flags::ALL {
            assert_eq!(Flags::from_name(name), Some(flag));
            assert_eq!(flag.names().collect::<Vec<_>>(), [name]);
        }
        assert_eq!(
            format!("{:?}", F::READONLY | F::FAST),
            "Flags(readonly|fast)"
        );
        assert_eq!(
            lookup(b"object").map(|s| s.display_name()),
            Some("OBJECT".into())
        );
        assert_eq!(
            lookup(b"object|encoding").map(|s| s.display_name()),
            Some("OBJECT ENCODING".into())
        );
    }
}
