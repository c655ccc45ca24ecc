//! Starting managers: [`ManagerSet`] runs N managers on one group, as `redis_node_manager`
//! processes or in this process (each on a tokio runtime of its own), from the same
//! command-line flags, each process on loopback or at a [`Place`] (a network-namespace host);
//! [`manager_process`] starts one process.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use clap::Parser;
use redis_failover_manager::config::{Cli, FileConfig};
use redis_failover_manager::Config;
use tokio::runtime::Runtime;

use super::Manager;
use crate::process::{spawn_guarded, GuardedChild, Place};
use crate::util::log_tail;

/// How the managers of a [`ManagerSet`] run.
#[derive(Clone, Debug)]
pub enum ManagerMode {
    /// `redis_node_manager` processes (this binary); killing one is a real `kill -9`.
    Process(PathBuf),
    /// `redis_failover_manager::run` in this process, each manager on a tokio runtime of its
    /// own; killing one drops that runtime at once (`shutdown_background`): its tasks stop
    /// mid-flight, its sockets close, nothing is released, its session expires.
    InProcess,
}

/// Starts `bin` with `args` from the harness's spawner (killed when the guard drops), with
/// `RUST_LOG=rust_log` and `NO_COLOR=1`, its output appended to `log` (discarded when `None`).
pub fn manager_process(
    bin: &Path,
    args: &[String],
    rust_log: &str,
    log: Option<&Path>,
) -> Result<GuardedChild, String> {
    manager_process_at(&Place::loopback(), bin, args, rust_log, log)
}

/// [`manager_process`] run through `place`'s command prefix (e.g. `ip netns exec NS`).
pub fn manager_process_at(
    place: &Place,
    bin: &Path,
    args: &[String],
    rust_log: &str,
    log: Option<&Path>,
) -> Result<GuardedChild, String> {
    let (out, err) = match log {
        Some(path) => {
            let file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let file2 = file
                .try_clone()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            (Stdio::from(file), Stdio::from(file2))
        }
        None => (Stdio::null(), Stdio::null()),
    };
    let (bin, args, rust_log) = (bin.to_path_buf(), args.to_vec(), rust_log.to_string());
    let place = place.clone();
    spawn_guarded(move || {
        let mut cmd = place.command(bin);
        cmd.args(&args)
            .env("RUST_LOG", rust_log)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        cmd
    })
    .map_err(|e| format!("cannot start redis_node_manager: {e}"))
}

/// The config `redis_node_manager` builds from `args` (its flags, without the program name),
/// without a config file.
pub fn config_from_args(args: &[String]) -> Result<Config, String> {
    let cli = Cli::try_parse_from(
        std::iter::once("redis_node_manager".to_string()).chain(args.iter().cloned()),
    )
    .map_err(|e| e.to_string())?;
    Config::merge(cli, FileConfig::default()).map_err(|e| e.to_string())
}

enum Running {
    Process(GuardedChild),
    InProcess { rt: Runtime, manager: Manager },
}

struct Slot {
    name: Option<String>,
    place: Place,
    running: Option<Running>,
    log: Option<PathBuf>,
}

/// Managers on one group, started from the same flags (`-z`, `-n`, `--znode-path`, ...),
/// each with its own `--manager-name`. Dropping the set kills every manager.
pub struct ManagerSet {
    mode: ManagerMode,
    flags: Vec<String>,
    rust_log: String,
    log_dir: Option<PathBuf>,
    slots: Vec<Slot>,
}

impl ManagerSet {
    /// An empty set whose managers will run as `mode` with `flags`; processes log nothing
    /// (see [`ManagerSet::log_to`]) at `RUST_LOG=warn` (see [`ManagerSet::rust_log`]).
    pub fn new(mode: ManagerMode, flags: Vec<String>) -> ManagerSet {
        ManagerSet {
            mode,
            flags,
            rust_log: "warn".to_string(),
            log_dir: None,
            slots: Vec::new(),
        }
    }

    /// The flags of a manager on `nodes` under `root` of the ZooKeeper at `zk`:
    /// `-z zk -n nodes --znode-path root`.
    pub fn base_flags(zk: &str, nodes: &[String], root: &str) -> Vec<String> {
        vec![
            "-z".into(),
            zk.to_string(),
            "-n".into(),
            nodes.join(","),
            "--znode-path".into(),
            root.to_string(),
        ]
    }

    /// Processes append their output to `dir/manager-<name>.log`.
    pub fn log_to(mut self, dir: &Path) -> ManagerSet {
        self.log_dir = Some(dir.to_path_buf());
        self
    }

    /// `RUST_LOG` of the processes.
    pub fn rust_log(mut self, filter: &str) -> ManagerSet {
        self.rust_log = filter.to_string();
        self
    }

    /// Starts the set's managers named `names` (in that order).
    pub fn start_named(mut self, names: &[&str]) -> Result<ManagerSet, String> {
        for n in names {
            self.add(Some(n))?;
        }
        Ok(self)
    }

    /// Starts one more manager (`--manager-name name` when given) and returns its index.
    pub fn add(&mut self, name: Option<&str>) -> Result<usize, String> {
        self.add_at(name, &Place::loopback())
    }

    /// [`ManagerSet::add`] at `place` (its prefix; process mode only: an in-process manager
    /// runs where this process does).
    pub fn add_at(&mut self, name: Option<&str>, place: &Place) -> Result<usize, String> {
        let log = match (&self.mode, &self.log_dir) {
            (ManagerMode::Process(_), Some(dir)) => {
                Some(dir.join(format!("manager-{}.log", name.unwrap_or("manager"))))
            }
            _ => None,
        };
        self.slots.push(Slot {
            name: name.map(str::to_string),
            place: place.clone(),
            running: None,
            log,
        });
        let i = self.slots.len() - 1;
        self.start(i)?;
        Ok(i)
    }

    /// Starts manager `i` again (it must not be running: see [`ManagerSet::kill`]).
    pub fn start(&mut self, i: usize) -> Result<(), String> {
        let slot = &self.slots[i];
        let mut args = self.flags.clone();
        if let Some(n) = &slot.name {
            args.extend(["--manager-name".to_string(), n.clone()]);
        }
        let label = slot.name.clone().unwrap_or_default();
        let running = match &self.mode {
            ManagerMode::Process(bin) => {
                let child = manager_process_at(
                    &slot.place,
                    bin,
                    &args,
                    &self.rust_log,
                    slot.log.as_deref(),
                )
                .map_err(|e| format!("manager {label}: {e}"))?;
                Running::Process(child)
            }
            ManagerMode::InProcess => {
                let config =
                    config_from_args(&args).map_err(|e| format!("manager {label}: {e}"))?;
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name(format!("manager-{label}"))
                    .enable_all()
                    .build()
                    .map_err(|e| format!("manager {label}: cannot build a runtime: {e}"))?;
                let manager = {
                    let _in = rt.enter();
                    Manager::start(config)
                };
                Running::InProcess { rt, manager }
            }
        };
        self.slots[i].running = Some(running);
        Ok(())
    }

    /// Kills manager `i` abruptly (see [`ManagerMode`]); returns whether it is gone (a
    /// process reaped within a bound).
    pub fn kill(&mut self, i: usize) -> bool {
        match self.slots[i].running.take() {
            Some(Running::Process(child)) => child.kill(),
            Some(Running::InProcess { rt, manager }) => {
                rt.shutdown_background();
                drop(manager);
                true
            }
            None => true,
        }
    }

    /// Stops manager `i` cleanly (SIGTERM, or a stop request; bounded) and returns whether
    /// it ended cleanly (exit code 0, or `run` returned `Ok`). Blocking: from async code, call
    /// it on a blocking thread.
    pub fn stop(&mut self, i: usize) -> bool {
        match self.slots[i].running.take() {
            Some(Running::Process(child)) => {
                child.terminate(Duration::from_secs(10))
                    && child.exit_status().is_some_and(|s| s.success())
            }
            Some(Running::InProcess { rt, manager }) => {
                let stopped = rt.block_on(async {
                    tokio::time::timeout(Duration::from_secs(15), tokio::spawn(manager.stop()))
                        .await
                });
                rt.shutdown_timeout(Duration::from_secs(5));
                matches!(stopped, Ok(Ok(Ok(()))))
            }
            None => true,
        }
    }

    /// Stops every manager cleanly (bounded); names those that did not stop cleanly on
    /// stderr.
    pub fn stop_all(&mut self) {
        for i in 0..self.slots.len() {
            if !self.stop(i) {
                eprintln!("manager {} did not stop cleanly", self.name(i));
            }
        }
    }

    /// Number of managers (running or not).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no manager was added.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The `--manager-name` of manager `i` (empty when none was given).
    pub fn name(&self, i: usize) -> &str {
        self.slots[i].name.as_deref().unwrap_or("")
    }

    /// The process of manager `i`, in process mode while it runs.
    pub fn process(&self, i: usize) -> Option<&GuardedChild> {
        match &self.slots[i].running {
            Some(Running::Process(c)) => Some(c),
            _ => None,
        }
    }

    /// True while manager `i` runs (started, not killed or stopped, not ended by itself).
    pub fn is_running(&self, i: usize) -> bool {
        match &self.slots[i].running {
            Some(Running::Process(c)) => c.is_running(),
            Some(Running::InProcess { manager, .. }) => !manager.is_finished(),
            None => false,
        }
    }

    /// A message naming a manager that ended by itself, if any (with its log's tail).
    pub fn exited(&self) -> Option<String> {
        self.slots.iter().find_map(|s| {
            let name = s.name.as_deref().unwrap_or("");
            match &s.running {
                Some(Running::Process(c)) => c.exit_status().map(|st| {
                    format!(
                        "redis_node_manager {name} exited ({st}){}",
                        s.log.as_deref().map_or(String::new(), |log| format!(
                            "; tail of its log:\n{}",
                            log_tail(log, 15)
                        ))
                    )
                }),
                Some(Running::InProcess { manager, .. }) if manager.is_finished() => {
                    Some(format!("manager {name} ended"))
                }
                _ => None,
            }
        })
    }

    /// The index of the manager whose id is `id` (`<hostname>-<name>`).
    pub fn by_id(&self, id: &str) -> Option<usize> {
        self.slots.iter().position(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| id.ends_with(&format!("-{n}")))
        })
    }

    /// The log files of the processes.
    pub fn log_paths(&self) -> Vec<PathBuf> {
        self.slots.iter().filter_map(|s| s.log.clone()).collect()
    }

    /// The last `n` lines of every process's log, each under a header.
    pub fn tails(&self, n: usize) -> String {
        self.slots
            .iter()
            .filter_map(|s| s.log.as_deref())
            .map(|log| format!("\n--- tail of {}:\n{}", log.display(), log_tail(log, n)))
            .collect()
    }

    /// How often `needle` occurs in the processes' logs (`None` without logs).
    pub fn count_in_logs(&self, needle: &str) -> Option<usize> {
        let logs = self.log_paths();
        if logs.is_empty() {
            return None;
        }
        Some(
            logs.iter()
                .map(|p| {
                    fs::read_to_string(p)
                        .map(|t| t.matches(needle).count())
                        .unwrap_or(0)
                })
                .sum(),
        )
    }
}

impl Drop for ManagerSet {
    fn drop(&mut self) {
        for slot in &mut self.slots {
            if let Some(Running::InProcess { rt, manager }) = slot.running.take() {
                // Dropping a runtime blocks, which is not allowed inside another runtime.
                rt.shutdown_background();
                drop(manager);
            }
            // A process's guard kills it when dropped.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags of a set give the config the command line would (as the struct-built
    /// [`super::super::config`] does for the same settings).
    #[test]
    fn flags_give_the_same_config_as_the_struct() {
        let nodes = vec!["127.0.0.1:7000".to_string(), "127.0.0.1:7001".to_string()];
        let mut flags = ManagerSet::base_flags("127.0.0.1:2181", &nodes, "/t_root");
        flags.extend(["--manager-name", "m1", "--zk-session-timeout-ms", "4000"].map(String::from));
        flags.extend(["--down-after-ms", "900"].map(String::from));
        let from_flags = config_from_args(&flags).expect("valid flags");
        let from_struct = super::super::config("127.0.0.1:2181", &nodes, "/t_root", |c| {
            c.manager_name = Some("m1".into());
            c.down_after_ms = Some(900);
        });
        assert_eq!(format!("{from_flags:?}"), format!("{from_struct:?}"));
        assert!(config_from_args(&["--no-such-flag".to_string()]).is_err());
    }
}
