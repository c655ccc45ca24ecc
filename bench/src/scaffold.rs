//! The start and the end of every bench program, written once: logging, the tokio runtime(s),
//! a throwaway ZooKeeper (one standalone server, or a production-shaped 3-server ensemble),
//! the `redis_node_manager` binary, and the exit code.
//!
//! ```ignore
//! fn main() -> ExitCode {
//!     let opts = Opts::parse();
//!     Scaffold::new("failover_bench")
//!         .zookeeper()
//!         .manager_runtime()
//!         .zookeeper_ensemble(opts.zk_ensemble)
//!         .run(|env| env.block_on(bench(&opts, env.zk_connect(), env.zk_shape())))
//! }
//! ```
//!
//! [`Scaffold::run`] builds the runtime(s), starts ZooKeeper, runs the body, then ends the
//! runtimes before ZooKeeper (every client and manager of the body is gone by then) and turns
//! the body's [`Outcome`] into the exit code.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use redis_failover_tests::{ZkEnsemble, ZkServer};
use tokio::runtime::{Handle, Runtime};

/// Logs to stderr, `warn` unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// What a bench program's body ends with.
pub trait Outcome {
    fn exit_code(self) -> ExitCode;
}

/// `true`: every run passed.
impl Outcome for bool {
    fn exit_code(self) -> ExitCode {
        if self {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

impl Outcome for ExitCode {
    fn exit_code(self) -> ExitCode {
        self
    }
}

/// Prints `message` to stderr and fails the program.
pub fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("{message}");
    ExitCode::FAILURE
}

/// Servers of the ensemble that [`Scaffold::zookeeper_ensemble`] asks for.
const ENSEMBLE_SIZE: usize = 3;

/// The ZooKeeper a bench runs on.
enum Zk {
    /// One server tuned for tests (`tickTime=500`, `forceSync=no`).
    Standalone(ZkServer),
    /// [`ENSEMBLE_SIZE`] servers as production runs them (`tickTime=2000`, `forceSync=yes`).
    Ensemble(ZkEnsemble),
}

impl Zk {
    fn start(ensemble: bool) -> Zk {
        if ensemble {
            Zk::Ensemble(ZkEnsemble::start(ENSEMBLE_SIZE))
        } else {
            Zk::Standalone(ZkServer::start())
        }
    }

    fn connect_string(&self) -> String {
        match self {
            Zk::Standalone(z) => z.connect_string(),
            Zk::Ensemble(e) => e.connect_string(),
        }
    }

    fn shape(&self) -> &'static str {
        match self {
            Zk::Standalone(_) => "one standalone ZooKeeper (tickTime=500, forceSync=no)",
            Zk::Ensemble(_) => {
                "a 3-server ZooKeeper ensemble on loopback (tickTime=2000, forceSync=yes)"
            }
        }
    }
}

/// How a bench program is set up: see the module documentation.
pub struct Scaffold {
    me: &'static str,
    runtime: bool,
    thread_name: &'static str,
    worker_threads: Option<usize>,
    manager_runtime: bool,
    zookeeper: Option<&'static str>,
    zk_ensemble: bool,
    shutdown_timeout: Option<Duration>,
}

/// What the body of [`Scaffold::run`] works with.
pub struct Env<'a> {
    rt: Option<&'a Runtime>,
    manager_rt: Option<&'a Runtime>,
    zk: Option<&'a Zk>,
}

impl Env<'_> {
    /// Runs `f` to completion on the bench's runtime.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime().block_on(f)
    }

    /// The bench's runtime.
    pub fn runtime(&self) -> &Runtime {
        self.rt.expect("Scaffold::without_runtime() was called")
    }

    /// The runtime of the in-process managers (asked for with [`Scaffold::manager_runtime`]),
    /// sized like the daemon's own, so that the bench's probes do not share its worker threads.
    pub fn manager_handle(&self) -> Handle {
        self.manager_rt
            .expect("Scaffold::manager_runtime() was not called")
            .handle()
            .clone()
    }

    /// The throwaway standalone ZooKeeper (started with [`Scaffold::zookeeper`]).
    ///
    /// # Panics
    /// If none was started, or an ensemble was ([`Env::zk_connect`] serves both).
    pub fn zk(&self) -> &ZkServer {
        match self.zk {
            Some(Zk::Standalone(z)) => z,
            Some(Zk::Ensemble(_)) => {
                panic!("Scaffold::zookeeper_ensemble(true) was called: use Env::zk_connect()")
            }
            None => panic!("Scaffold::zookeeper() was not called"),
        }
    }

    /// The throwaway ZooKeeper's connect string (`IP:PORT`, or `IP:P1,IP:P2,IP:P3` for an
    /// ensemble).
    ///
    /// # Panics
    /// If no ZooKeeper was started.
    pub fn zk_connect(&self) -> String {
        self.zk
            .expect("Scaffold::zookeeper() was not called")
            .connect_string()
    }

    /// One line saying which ZooKeeper the bench runs on (`no ZooKeeper` without one).
    pub fn zk_shape(&self) -> &'static str {
        self.zk.map_or("no ZooKeeper", Zk::shape)
    }
}

impl Scaffold {
    /// Sets up logging (`warn` unless `RUST_LOG` says otherwise); `me` names the program in
    /// messages.
    pub fn new(me: &'static str) -> Scaffold {
        init_logging();
        Scaffold {
            me,
            runtime: true,
            thread_name: "bench",
            worker_threads: None,
            manager_runtime: false,
            zookeeper: None,
            zk_ensemble: false,
            shutdown_timeout: None,
        }
    }

    /// No bench runtime (for a body that runs its own).
    pub fn without_runtime(mut self) -> Scaffold {
        self.runtime = false;
        self
    }

    /// The name of the bench runtime's threads (`bench` unless set).
    pub fn thread_name(mut self, name: &'static str) -> Scaffold {
        self.thread_name = name;
        self
    }

    /// A bench runtime with `n` worker threads (tokio's default: one per core).
    pub fn worker_threads(mut self, n: usize) -> Scaffold {
        self.worker_threads = Some(n);
        self
    }

    /// A second runtime for in-process managers ([`Env::manager_handle`]).
    pub fn manager_runtime(mut self) -> Scaffold {
        self.manager_runtime = true;
        self
    }

    /// Starts a throwaway ZooKeeper ([`Env::zk`]).
    pub fn zookeeper(self) -> Scaffold {
        self.zookeeper_saying("ZooKeeper")
    }

    /// Starts a throwaway ZooKeeper when `wanted`.
    pub fn zookeeper_if(self, wanted: bool) -> Scaffold {
        if wanted {
            self.zookeeper()
        } else {
            self
        }
    }

    /// Starts a throwaway ZooKeeper, saying `starting <what> ...` on stderr.
    pub fn zookeeper_saying(mut self, what: &'static str) -> Scaffold {
        self.zookeeper = Some(what);
        self
    }

    /// When `wanted`, the ZooKeeper asked for (by [`Scaffold::zookeeper`] and its variants)
    /// is a production-shaped ensemble of 3 servers on loopback (`forceSync=yes`,
    /// `tickTime=2000`) instead of one standalone server; reach it through
    /// [`Env::zk_connect`].
    pub fn zookeeper_ensemble(mut self, wanted: bool) -> Scaffold {
        self.zk_ensemble = wanted;
        self
    }

    /// Waits at most this long for the bench runtime's blocking tasks at the end (without it:
    /// until they are done).
    pub fn shutdown_timeout(mut self, t: Duration) -> Scaffold {
        self.shutdown_timeout = Some(t);
        self
    }

    /// The `redis_node_manager` binary: `given`, else the one next to this executable.
    pub fn manager_bin(&self, given: Option<&Path>) -> Result<PathBuf, String> {
        manager_bin(given, self.me)
    }

    /// [`Scaffold::manager_bin`] when `wanted`, else `None`.
    pub fn manager_bin_if(
        &self,
        wanted: bool,
        given: Option<&Path>,
    ) -> Result<Option<PathBuf>, String> {
        wanted.then(|| self.manager_bin(given)).transpose()
    }

    /// Builds the runtime(s), starts ZooKeeper, runs `body`, ends the runtimes, then
    /// ZooKeeper; the exit code is the body's outcome (a failure when a runtime cannot start).
    pub fn run<O: Outcome>(self, body: impl FnOnce(&Env) -> O) -> ExitCode {
        let me = self.me;
        let rt = if self.runtime {
            match runtime(self.thread_name, self.worker_threads) {
                Ok(rt) => Some(rt),
                Err(e) => {
                    return fail(format!("{me}: cannot start the bench's tokio runtime: {e}"))
                }
            }
        } else {
            None
        };
        let manager_rt = if self.manager_runtime {
            match runtime("manager", None) {
                Ok(rt) => Some(rt),
                Err(e) => {
                    return fail(format!(
                        "{me}: cannot start the manager's tokio runtime: {e}"
                    ))
                }
            }
        } else {
            None
        };
        let zk = self.zookeeper.map(|what| {
            let shape = if self.zk_ensemble {
                " (a 3-server ensemble)"
            } else {
                ""
            };
            eprintln!("{me}: starting {what}{shape} ...");
            Zk::start(self.zk_ensemble)
        });
        let outcome = body(&Env {
            rt: rt.as_ref(),
            manager_rt: manager_rt.as_ref(),
            zk: zk.as_ref(),
        });
        // Every client and manager of the body is stopped or aborted by now: end the runtimes,
        // then ZooKeeper.
        match (rt, self.shutdown_timeout) {
            (Some(rt), Some(t)) => rt.shutdown_timeout(t),
            (rt, _) => drop(rt),
        }
        drop(manager_rt);
        drop(zk);
        outcome.exit_code()
    }
}

/// A multi-threaded runtime with every driver, its threads named `name`.
fn runtime(name: &str, workers: Option<usize>) -> std::io::Result<Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.thread_name(name).enable_all();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    b.build()
}

/// The `redis_node_manager` binary: `given`, else the one next to this executable.
pub fn manager_bin(given: Option<&Path>, me: &str) -> Result<PathBuf, String> {
    let bin = match given {
        Some(b) => b.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|e| format!("{me}: cannot locate this executable ({e}); give --manager-bin"))?
            .with_file_name("redis_node_manager"),
    };
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{me}: {} not found; build it first: cargo build --release -p redis-failover-manager \
             (or give --manager-bin PATH)",
            bin.display()
        ))
    }
}

/// Warns when `bin` is older than the running program: a benchmark of a stale manager
/// measures yesterday's code.
pub fn warn_if_stale(bin: &Path, me: &str) {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let exe = std::env::current_exe().ok();
    if let (Some(b), Some(e)) = (modified(bin), exe.as_deref().and_then(modified)) {
        if b < e {
            eprintln!(
                "{me}: warning: {} is older than this program; rebuild it (cargo build --release \
                 -p redis-failover-manager) to test the current manager",
                bin.display()
            );
        }
    }
}
