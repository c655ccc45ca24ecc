//! The Redis command table: for every command and container subcommand, its flags and the
//! positions of its keys. Pure data plus lookups; [`crate::route`] builds its rules on it.
//!
//! The table ([`COMMANDS`], in `table.rs`) is generated, not written:
//! `client/tools/gen_commands.py` starts a throw-away `redis-server`, runs `COMMAND`, and
//! rewrites the part of `table.rs` between the `BEGIN GENERATED TABLE` / `END GENERATED
//! TABLE` markers. [`GENERATED_FROM`](table::GENERATED_FROM) names the server version it came from;
//! `gen_commands.py --check` tells whether the file is up to date.
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

mod table;

pub use table::COMMANDS;
#[cfg(test)]
use table::GENERATED_FROM;

#[cfg(test)]
mod tests {
    use super::*;
    use Flags as F;

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
