//! The operator subcommands that talk to ZooKeeper directly — `failover`, `pause`/`resume`
//! and `status` — as library calls, and [`subcommand`], which runs one to its exit code and
//! prints its result (`main.rs` only calls it).

use std::fmt::Display;
use std::time::Duration;

use redis_failover_client::wire::PauseInfo;
use redis_failover_client::NodeAddr;

use crate::config::{self, zk_target, Cli, Command};
use crate::io::zk::{self, ZkError};

/// Runs a subcommand: prints its result on stdout, or one line naming what went wrong on
/// stderr. The exit code: 0 done, 1 when ZooKeeper or the leader did not do it, 2 on bad
/// input.
pub fn subcommand(cli: &Cli, command: &Command) -> i32 {
    let name = match command {
        Command::Failover { .. } => "failover",
        Command::Status { .. } => "status",
        Command::Pause { .. } => "pause",
        Command::Resume => "resume",
    };
    let fail = |code: i32, e: &dyn Display| {
        eprintln!("redis_node_manager {name}: {e}");
        code
    };
    let (zk, paths) = match zk_target(cli) {
        Ok(t) => t,
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
            match runtime.block_on(request_failover(&zk, &paths, to.as_ref(), wait)) {
                Ok(msg) => {
                    println!("{msg}");
                    0
                }
                Err(e) => fail(1, &e),
            }
        }
        Command::Status { json } => match runtime.block_on(status(&zk, &paths)) {
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
                std::env::var("USER").unwrap_or_else(|_| "?".into()),
                config::hostname()
            );
            let pause = PauseInfo::now(reason.clone().unwrap_or_default(), by);
            match runtime.block_on(set_pause(&zk, &paths, Some(&pause))) {
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
        Command::Resume => match runtime.block_on(set_pause(&zk, &paths, None)) {
            Ok(()) => {
                println!("resumed: automatic failover is on for {}", paths.root());
                0
            }
            Err(e) => fail(1, &e),
        },
    }
}

/// How long a subcommand waits for its ZooKeeper session.
const CLI_ZK_WAIT: Duration = Duration::from_secs(10);

/// `redis_node_manager failover`: writes the request and waits (bounded) for the leader's
/// verdict. `Ok` names the new master; `Err` says why not.
pub async fn request_failover(
    zkservers: &str,
    paths: &redis_failover_client::ZnodePaths,
    to: Option<&redis_failover_client::NodeAddr>,
    wait: Duration,
) -> Result<String, FailoverRequestError> {
    let client = zk::connect(zkservers, CLI_ZK_WAIT, CLI_ZK_WAIT).await?;
    zk::request_manual(&client, paths, to).await?;
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
    paths: &redis_failover_client::ZnodePaths,
    pause: Option<&redis_failover_client::wire::PauseInfo>,
) -> Result<(), ZkError> {
    let client = zk::connect(zkservers, CLI_ZK_WAIT, CLI_ZK_WAIT).await?;
    zk::set_pause(&client, paths, pause).await
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
}

/// Reads everything `status` shows, with bounded waits.
pub async fn status(
    zkservers: &str,
    paths: &redis_failover_client::ZnodePaths,
) -> Result<StatusReport, ZkError> {
    let client = zk::connect(zkservers, CLI_ZK_WAIT, CLI_ZK_WAIT).await?;
    let (topology, topology_error) = match zk::read_published(&client, &paths.nodes()).await? {
        zk::Published::Valid { topology, .. } => (Some(topology), None),
        zk::Published::Missing => (None, Some(format!("{} does not exist", paths.nodes()))),
        zk::Published::Corrupt { error, .. } => {
            (None, Some(format!("{} is corrupt: {error}", paths.nodes())))
        }
    };
    let managers_in_line = zk::read_lock_order(&client, paths).await?;
    let views = zk::read_views(&client, paths).await?.into_iter().collect();
    let paused = zk::read_pause(&client, paths).await?;
    let history = zk::read_history(&client, paths).await?;
    Ok(StatusReport {
        znode_path: paths.root().to_string(),
        topology,
        topology_error,
        managers_in_line,
        views,
        paused,
        history,
    })
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
