//! Guarded child processes: every child is forked by one long-lived spawner thread with
//! `PR_SET_PDEATHSIG = SIGKILL`, and held by a [`GuardedChild`] that kills and reaps it by pid
//! when dropped; a [`Place`] says where a process runs (loopback, or a network namespace).

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::util::lock;
use crate::wait::POLL;

/// How long a process may take to disappear after SIGKILL.
const REAP_TIMEOUT: Duration = Duration::from_secs(10);

type BuildCommand = Box<dyn FnOnce() -> Command + Send>;
type SpawnRequest = (BuildCommand, Sender<io::Result<Child>>);

fn spawner() -> &'static Sender<SpawnRequest> {
    static SPAWNER: OnceLock<Sender<SpawnRequest>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("test-harness-spawner".into())
            .spawn(move || {
                // The sender lives in a static, so this loop (and thread) lives until the
                // process exits: then PR_SET_PDEATHSIG kills every child forked here.
                for (build, reply) in rx {
                    let result = catch_unwind(AssertUnwindSafe(move || {
                        let mut cmd = build();
                        let parent = std::process::id();
                        // SAFETY: the closure only calls async-signal-safe functions
                        // (prctl, getppid) and allocates nothing on the success path.
                        unsafe {
                            cmd.pre_exec(move || {
                                if libc::prctl(
                                    libc::PR_SET_PDEATHSIG,
                                    libc::SIGKILL as libc::c_ulong,
                                    0,
                                    0,
                                    0,
                                ) != 0
                                {
                                    return Err(io::Error::last_os_error());
                                }
                                // The parent may have died between fork and prctl.
                                if libc::getppid() as u32 != parent {
                                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                                }
                                Ok(())
                            });
                        }
                        cmd.spawn()
                    }))
                    .unwrap_or_else(|_| Err(io::Error::other("building the Command panicked")));
                    // the requester may have given up; then dropping the Child is all we can do
                    let _ = reply.send(result);
                }
            })
            .expect("cannot start the test-harness spawner thread");
        tx
    })
}

/// Spawns a child process from the harness's single long-lived spawner thread, with
/// `PR_SET_PDEATHSIG = SIGKILL`, so it dies at the latest when the test binary exits.
/// `build` runs on the spawner thread and returns the fully configured [`Command`].
pub fn spawn_child(build: impl FnOnce() -> Command + Send + 'static) -> io::Result<Child> {
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner()
        .send((Box::new(build), reply_tx))
        .map_err(|_| io::Error::other("test-harness spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("test-harness spawner thread dropped the request"))?
}

/// Like [`spawn_child`], wrapped in a [`GuardedChild`] that kills the process on drop.
pub fn spawn_guarded(build: impl FnOnce() -> Command + Send + 'static) -> io::Result<GuardedChild> {
    let child = spawn_child(build)?;
    Ok(GuardedChild {
        pid: child.id(),
        child: Mutex::new(child),
    })
}

/// A child process that is killed (SIGCONT, SIGKILL) and reaped when dropped.
/// All methods take `&self`; signals are only sent while the child is not yet reaped, so a
/// recycled pid is never hit.
#[derive(Debug)]
pub struct GuardedChild {
    pid: u32,
    child: Mutex<Child>,
}

impl GuardedChild {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status, if the process has exited (reaps it).
    pub fn exit_status(&self) -> Option<ExitStatus> {
        lock(&self.child).try_wait().ok().flatten()
    }

    /// `true` until the process has exited (a SIGSTOPped process is still running).
    pub fn is_running(&self) -> bool {
        self.exit_status().is_none()
    }

    /// Sends `sig` if the process has not exited yet; returns whether it was sent.
    pub fn signal(&self, sig: libc::c_int) -> bool {
        let mut child = lock(&self.child);
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        // SAFETY: plain kill(2) on our own un-reaped child.
        unsafe { libc::kill(self.pid as libc::pid_t, sig) == 0 }
    }

    /// Waits up to `timeout` for the process to exit (and reaps it).
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGCONT + SIGKILL, then waits (bounded) until it is reaped. Returns whether it is gone.
    pub fn kill(&self) -> bool {
        self.signal(libc::SIGCONT);
        self.signal(libc::SIGKILL);
        self.wait_exit(REAP_TIMEOUT).is_some()
    }

    /// SIGCONT + SIGTERM, waits up to `grace`, then escalates to [`GuardedChild::kill`].
    pub fn terminate(&self, grace: Duration) -> bool {
        self.signal(libc::SIGCONT);
        self.signal(libc::SIGTERM);
        self.wait_exit(grace).is_some() || self.kill()
    }
}

impl Drop for GuardedChild {
    fn drop(&mut self) {
        if !self.kill() {
            eprintln!(
                "test harness: pid {} did not exit within {REAP_TIMEOUT:?} of SIGKILL",
                self.pid
            );
        }
    }
}

/// Where `program` would be found: itself if it names a path (has a `/`), else the first
/// executable file of that name in the directories of `path` (a `PATH` value).
pub fn find_program(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// Where a server process runs: the address it binds and is reached at, and the command
/// prefix that puts it there (`ip netns exec NS` for a host of [`crate::netns::Net`], which
/// execs the program, so the spawned pid is the program's). [`Place::loopback`] (the default)
/// is this machine's 127.0.0.1 without a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The IPv4 address to bind and to reach the process at.
    pub ip: String,
    /// Program and arguments run before the command (empty: none).
    pub prefix: Vec<String>,
}

impl Place {
    /// 127.0.0.1, no prefix.
    pub fn loopback() -> Place {
        Place {
            ip: "127.0.0.1".to_string(),
            prefix: Vec::new(),
        }
    }

    /// A [`Command`] running `program` here: `prefix... program`.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        match self.prefix.split_first() {
            None => Command::new(program),
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg(program);
                cmd
            }
        }
    }
}

impl Default for Place {
    fn default() -> Place {
        Place::loopback()
    }
}

pub(crate) fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}
