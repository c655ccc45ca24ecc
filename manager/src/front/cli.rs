//! The operator subcommands that talk to ZooKeeper directly — `failover`, `pause`/`resume`,
//! `status` and `group` — as library calls, and [`subcommand`], which runs one to its exit code and
//! prints its result (`main.rs` only calls it).

use std::fmt::Display;
use std::time::Duration;

use redis_failover_client::wire::PauseInfo;
use redis_failover_client::NodeAddr;

use crate::config::{self, operator_access, zk_target, Cli, Command, GroupCommand, ZkAccess};
use crate::io::zk::registry::{
    add_group, entries_json, new_entry, read_registry, remove_group, Entries, RegistryError,
};
use crate::io::zk::{self, ZkError};
use redis_failover_client::wire::groups::check_group_name;

/// Runs a subcommand: prints its result on stdout, or one line naming what went wrong on
/// stderr. The exit code: 0 done, 1 when ZooKeeper or the leader did not do it, 2 on bad
/// input.
pub fn subcommand(cli: &Cli, command: &Command) -> i32 {
    let name = match command {
        Command::Failover { .. } => "failover",
        Command::Status { .. } => "status",
        Command::Pause { .. } => "pause",
        Command::Resume => "resume",
        Command::ZkDigest => "zk-digest",
        Command::Group { action } => match action {
            GroupCommand::Add { .. } => "group add",
            GroupCommand::Remove { .. } => "group remove",
            GroupCommand::List { .. } => "group list",
        },
    };
    let fail = |code: i32, e: &dyn Display| {
        eprintln!("redis_node_manager {name}: {e}");
        code
    };
    if let Command::ZkDigest = command {
        return match zk_digest(std::io::stdin().lock()) {
            Ok(id) => {
                println!("{id}");
                0
            }
            Err(e) => fail(2, &e),
        };
    }
    if let Command::Group { action } = command {
        return match group(cli, action) {
            Ok(out) => {
                print!("{out}");
                0
            }
            Err(e) => {
                let code = if matches!(e, RegistryError::Zk(_)) {
                    1
                } else {
                    2
                };
                fail(code, &e)
            }
        };
    }
    let (zk, paths) = match zk_target(cli) {
        Ok(t) => t,
        Err(e) => return fail(2, &e),
    };
    let access = match operator_access(cli) {
        Ok(a) => a,
        Err(e) => return fail(2, &e),
    };
    let to = match command {
        Command::Failover { to, .. } => match to.as_deref().map(str::parse::<NodeAddr>).transpose()
        {
            Ok(t) => t,
            Err(e) => return fail(2, &format!("--to: {e}")),
        },
        _ => None,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(1, &format!("cannot start the async runtime: {e}")),
    };
    match command {
        Command::Failover { wait_secs, .. } => {
            let wait = Duration::from_secs(*wait_secs);
            match runtime.block_on(request_failover(&zk, &access, &paths, to.as_ref(), wait)) {
                Ok(msg) => {
                    println!("{msg}");
                    0
                }
                Err(e) => fail(1, &e),
            }
        }
        Command::Status { json } => match runtime.block_on(status(&zk, &access, &paths)) {
            Ok(report) if report.is_no_group() => fail(
                1,
                &format!(
                    "no group at {}: nothing published there and no manager running; check \
                     --znode-path (and -z/--zkservers)",
                    paths.root()
                ),
            ),
            Ok(report) if *json => match serde_json::to_string_pretty(&report) {
                Ok(s) => {
                    println!("{s}");
                    0
                }
                Err(e) => fail(1, &e),
            },
            Ok(report) => {
                print!("{report}");
                0
            }
            Err(e) => fail(1, &e),
        },
        Command::Pause { reason } => {
            let by = format!(
                "{}@{}",
                who(|k| std::env::var(k).ok(), current_uid()),
                config::hostname()
            );
            let pause = PauseInfo::now(reason.clone().unwrap_or_default(), by);
            match runtime.block_on(set_pause(&zk, &access, &paths, Some(&pause))) {
                Ok(()) => {
                    println!(
                        "paused: no automatic failover for {} until `redis_node_manager resume`",
                        paths.root()
                    );
                    0
                }
                Err(e) => fail(1, &e),
            }
        }
        Command::Resume => match runtime.block_on(set_pause(&zk, &access, &paths, None)) {
            Ok(()) => {
                println!("resumed: automatic failover is on for {}", paths.root());
                0
            }
            Err(e) => fail(1, &e),
        },
        Command::ZkDigest | Command::Group { .. } => 0,
    }
}

/// `redis_node_manager group add/remove/list`: what to print, or why not (`Zk`: exit 1,
/// the rest is bad input, exit 2).
fn group(cli: &Cli, action: &GroupCommand) -> Result<String, RegistryError> {
    let bad = |e: config::ConfigError| RegistryError::Invalid(e.to_string());
    let file = config::FileConfig::read(cli.config.as_deref()).map_err(bad)?;
    let root = config::groups_root(cli, &file).map_err(bad)?;
    let access = operator_access(cli).map_err(bad)?;
    let Some(zk) = cli.zkservers.clone().or(file.zkservers) else {
        return Err(RegistryError::Invalid(
            "no ZooKeeper servers: give -z/--zkservers host:port,...".into(),
        ));
    };
    // Checked before connecting: bad input is told at once.
    let entry = match action {
        GroupCommand::Add { name, nodes } => {
            let by = format!(
                "{}@{}",
                who(|k| std::env::var(k).ok(), current_uid()),
                config::hostname()
            );
            Some(new_entry(
                name,
                nodes,
                "--nodes",
                cli.znode_path.as_deref(),
                by,
            )?)
        }
        GroupCommand::Remove { name } => {
            check_group_name(name).map_err(RegistryError::Invalid)?;
            None
        }
        GroupCommand::List { .. } => None,
    };
    let runtime = tokio::runtime::Runtime::new().map_err(|e| {
        RegistryError::Zk(ZkError::Connect(format!(
            "cannot start the async runtime: {e}"
        )))
    })?;
    runtime.block_on(async {
        let client = zk::connect(&zk, &access, CLI_ZK_WAIT, CLI_ZK_WAIT).await?;
        match (action, entry) {
            (GroupCommand::Add { name, .. }, Some(entry)) => {
                add_group(&client, &root, name, &entry, access.identity.is_some(), &[]).await?;
                let nodes: Vec<String> = entry.nodes.iter().map(ToString::to_string).collect();
                Ok(format!(
                    "added group {name}: {} under {}; managers started with \
                     --groups-from-zookeeper watch it now\n",
                    nodes.join(","),
                    entry.znode_path
                ))
            }
            (GroupCommand::Remove { name }, _) => {
                remove_group(&client, &root, name).await?;
                Ok(format!(
                    "removed group {name}: managers stop watching it; its nodes keep their \
                     roles and its znodes stay\n"
                ))
            }
            (GroupCommand::List { json }, _) => {
                let entries = read_registry(&client, &root).await?.unwrap_or_default();
                Ok(if *json {
                    let text =
                        serde_json::to_string_pretty(&entries_json(entries)).unwrap_or_default();
                    format!("{text}\n")
                } else {
                    list_table(&root, &entries)
                })
            }
            (GroupCommand::Add { .. }, None) => Ok(String::new()),
        }
    })
}

/// `group list` as a table: one line per group.
fn list_table(root: &str, entries: &Entries) -> String {
    let mut out = format!("groups in {root}\n");
    if entries.is_empty() {
        out.push_str("  none\n");
    }
    for (name, e) in entries {
        match e {
            Ok(e) => {
                let nodes: Vec<String> = e.nodes.iter().map(ToString::to_string).collect();
                out.push_str(&format!(
                    "  {name:<16} {:<28} {}\n",
                    e.znode_path,
                    nodes.join(",")
                ));
            }
            Err(why) => out.push_str(&format!("  {name:<16} unreadable: {why}\n")),
        }
    }
    out
}

/// `redis_node_manager zk-digest`: the ACL id of the `user:password` on the first line of
/// `input` (standard input, so that the password shows in no process list).
pub fn zk_digest(input: impl std::io::BufRead) -> Result<String, String> {
    let line = input
        .lines()
        .next()
        .transpose()
        .map_err(|e| format!("cannot read standard input: {e}"))?
        .unwrap_or_default();
    let identity = line.trim_end_matches(['\r', '\n']);
    match identity.split_once(':') {
        Some((user, pass)) if !user.is_empty() && !pass.is_empty() => {}
        _ => return Err("give user:password on standard input (echo 'ops:secret' | redis_node_manager zk-digest)".into()),
    }
    config::digest_id(identity).ok_or_else(|| "give user:password on standard input".into())
}

/// Who runs the command, for `pause`'s `by`: `$USER`, else `$LOGNAME`, else the user name of
/// `uid` in the password database, else `uid N`.
pub fn who(env: impl Fn(&str) -> Option<String>, uid: u32) -> String {
    ["USER", "LOGNAME"]
        .into_iter()
        .find_map(|k| env(k).filter(|v| !v.is_empty()))
        .or_else(|| user_name(uid))
        .unwrap_or_else(|| format!("uid {uid}"))
}

fn current_uid() -> u32 {
    // SAFETY: getuid(2) cannot fail and has no preconditions.
    unsafe { libc::getuid() }
}

/// The password database's name for `uid` (`getpwuid_r`), if it has one.
fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: a zeroed passwd is a valid out-parameter (plain pointers and integers).
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; buf's length is passed with it.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points to a NUL-terminated string inside buf.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned()).filter(|n| !n.is_empty())
}

/// How long a subcommand waits for its ZooKeeper session.
const CLI_ZK_WAIT: Duration = Duration::from_secs(10);

/// `redis_node_manager failover`: writes the request and waits (bounded) for the leader's
/// verdict. `Ok` names the new master; `Err` says why not.
pub async fn request_failover(
    zkservers: &str,
    access: &ZkAccess,
    paths: &redis_failover_client::ZnodePaths,
    to: Option<&redis_failover_client::NodeAddr>,
    wait: Duration,
) -> Result<String, FailoverRequestError> {
    let client = zk::connect(zkservers, access, CLI_ZK_WAIT, CLI_ZK_WAIT).await?;
    zk::request_manual(&client, paths, to, access.identity.is_some()).await?;
    match zk::await_manual(&client, paths, wait).await? {
        zk::ManualOutcome::Done(m) => Ok(m),
        other => Err(FailoverRequestError::NotDone(other)),
    }
}

/// Why `redis_node_manager failover` did not end with a new master.
#[derive(Debug, thiserror::Error)]
pub enum FailoverRequestError {
    #[error(transparent)]
    Zk(#[from] ZkError),
    /// Refused by the leader, or nobody acted in time.
    #[error("{0}")]
    NotDone(zk::ManualOutcome),
}

/// `redis_node_manager pause` / `resume`: sets or clears `<root>/paused`.
pub async fn set_pause(
    zkservers: &str,
    access: &ZkAccess,
    paths: &redis_failover_client::ZnodePaths,
    pause: Option<&redis_failover_client::wire::PauseInfo>,
) -> Result<(), ZkError> {
    let client = zk::connect(zkservers, access, CLI_ZK_WAIT, CLI_ZK_WAIT).await?;
    zk::set_pause(&client, paths, pause, access.identity.is_some()).await
}

/// What `redis_node_manager status` shows.
#[derive(Debug, serde::Serialize)]
pub struct StatusReport {
    pub znode_path: String,
    pub topology: Option<redis_failover_client::Topology>,
    /// Why `topology` is missing, if it is.
    pub topology_error: Option<String>,
    /// The manager holding the lock, then the standbys in the order they would take over.
    pub managers_in_line: Vec<String>,
    pub views: std::collections::BTreeMap<String, redis_failover_client::wire::ManagerView>,
    /// `<root>/paused`, when automatic failover is paused.
    pub paused: Option<redis_failover_client::wire::PauseInfo>,
    /// The recorded failovers, oldest first.
    pub history: Vec<redis_failover_client::wire::FailoverRecord>,
    /// `<root>/nodes` does not exist (as opposed to corrupt).
    #[serde(skip)]
    pub topology_missing: bool,
}

/// Reads everything `status` shows, with bounded waits.
pub async fn status(
    zkservers: &str,
    access: &ZkAccess,
    paths: &redis_failover_client::ZnodePaths,
) -> Result<StatusReport, ZkError> {
    let client = zk::connect(zkservers, access, CLI_ZK_WAIT, CLI_ZK_WAIT).await?;
    let published = zk::read_published(&client, &paths.nodes()).await?;
    let topology_missing = matches!(published, zk::Published::Missing);
    let (topology, topology_error) = match published {
        zk::Published::Valid { topology, .. } => (Some(topology), None),
        zk::Published::Missing => (None, Some(format!("{} does not exist", paths.nodes()))),
        zk::Published::Corrupt { error, .. } => {
            (None, Some(format!("{} is corrupt: {error}", paths.nodes())))
        }
    };
    let managers_in_line = zk::read_lock_order(&client, paths).await?;
    let views = zk::read_views(&client, paths).await?.into_iter().collect();
    let paused = zk::read_pause(&client, paths).await?;
    let history = zk::read_history(&client, paths).await?.records;
    Ok(StatusReport {
        znode_path: paths.root().to_string(),
        topology,
        topology_error,
        managers_in_line,
        views,
        paused,
        history,
        topology_missing,
    })
}

impl StatusReport {
    /// Nothing under the root: no topology published and no manager, so most likely a wrong
    /// `--znode-path`.
    pub fn is_no_group(&self) -> bool {
        self.topology_missing
            && self.managers_in_line.is_empty()
            && self.views.is_empty()
            && self.paused.is_none()
            && self.history.is_empty()
    }
}

impl std::fmt::Display for StatusReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[NodeAddr]| joined(v.iter().map(|a| a.to_string()).collect());
        writeln!(f, "group at {}", self.znode_path)?;
        match (&self.topology, &self.topology_error) {
            (Some(t), _) => {
                let master = t
                    .master
                    .as_ref()
                    .map_or("none".to_string(), |m| m.to_string());
                writeln!(f, "  master       {master}")?;
                writeln!(f, "  replicas     {}", list(&t.slaves))?;
                writeln!(f, "  unavailable  {}", list(&t.unavailable))?;
                writeln!(f, "  epoch        {}", t.epoch)?;
                if let Some(p) = &t.promoting {
                    writeln!(f, "  promoting    {p}")?;
                }
            }
            (None, e) => writeln!(f, "  topology     {}", e.as_deref().unwrap_or("unknown"))?,
        }
        if let Some(p) = &self.paused {
            writeln!(
                f,
                "  paused       yes: no automatic failover (by {}, {}{})",
                p.by,
                ago(p.since_ms),
                if p.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", p.reason)
                }
            )?;
        }
        match self.managers_in_line.split_first() {
            Some((leader, standbys)) => {
                writeln!(f, "  leader       {leader}")?;
                writeln!(f, "  standbys     {}", joined(standbys.to_vec()))?;
            }
            None => writeln!(f, "  leader       none (no manager running)")?,
        }
        if !self.history.is_empty() {
            writeln!(
                f,
                "  failovers (last {}, newest first)",
                self.history.len().min(5)
            )?;
            for r in self.history.iter().rev().take(5) {
                writeln!(
                    f,
                    "    {:<10} {} -> {}  epoch {}  {} ms  {}  by {}",
                    r.kind,
                    r.from,
                    r.to,
                    r.epoch,
                    r.duration_ms,
                    ago(r.at_ms),
                    r.manager
                )?;
            }
        }
        if !self.views.is_empty() {
            writeln!(f, "  views")?;
            for (id, v) in &self.views {
                let up: Vec<String> = v
                    .available
                    .iter()
                    .map(|(a, ms)| format!("{a} ({ms:.1} ms)"))
                    .collect();
                writeln!(
                    f,
                    "    {id:<24} up: {}  down: {}",
                    joined(up),
                    list(&v.unavailable)
                )?;
            }
        }
        Ok(())
    }
}

/// `a, b, c`, or `-` for none.
fn joined(items: Vec<String>) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(", ")
    }
}

/// `12 s ago` for a Unix time in ms.
fn ago(at_ms: u64) -> String {
    let now = redis_failover_client::wire::unix_ms();
    let secs = now.saturating_sub(at_ms) / 1000;
    match secs {
        0..=119 => format!("{secs} s ago"),
        120..=7199 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_falls_back_from_user_to_logname_to_the_uid() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(who(env(&[("USER", "ann"), ("LOGNAME", "bob")]), 0), "ann");
        assert_eq!(who(env(&[("USER", ""), ("LOGNAME", "bob")]), 0), "bob");
        // uid 0 is root in every password database.
        assert_eq!(who(env(&[]), 0), "root");
        assert_eq!(who(env(&[]), 3_999_999_999), "uid 3999999999");
    }

    #[test]
    fn an_empty_root_is_no_group() {
        let mut r = StatusReport {
            znode_path: "/nope".into(),
            topology: None,
            topology_error: Some("/nope/nodes does not exist".into()),
            managers_in_line: vec![],
            views: Default::default(),
            paused: None,
            history: vec![],
            topology_missing: true,
        };
        assert!(r.is_no_group());
        // A manager that has not published yet: a group all the same.
        r.managers_in_line.push("host-1".into());
        assert!(!r.is_no_group());
    }
}
