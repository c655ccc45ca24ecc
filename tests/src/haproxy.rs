//! HAProxy (the Debian package `haproxy`) run in the foreground (`-db`) on a config text,
//! killed by its Drop guard; the documented example config (`examples/haproxy/haproxy.cfg`)
//! with its example addresses replaced by a test's.
//!
//! A test without `haproxy` calls [`skip_unless_installed`], which says so loudly on stderr —
//! or fails the test when `RF_REQUIRE_HAPROXY=1` (as `.ci/run` sets).

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::netns::cmd::{run, tool, CMD_TIMEOUT};
use crate::process::{open_log, spawn_guarded, GuardedChild};
use crate::util::{log_tail, run_or_skip};

/// The environment variable that turns a skip into a failure.
pub const REQUIRE_ENV: &str = "RF_REQUIRE_HAPROXY";

/// The documented example config.
pub const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/haproxy/haproxy.cfg"
);

/// `true` when `haproxy` is installed; otherwise skips loudly (see the module doc).
pub fn skip_unless_installed(test: &str) -> bool {
    let found = tool("haproxy")
        .map(|_| ())
        .ok_or_else(|| "haproxy not found: apt-get install haproxy (or run .ci/run)".to_string());
    run_or_skip("haproxy", REQUIRE_ENV, test, found)
}

/// [`EXAMPLE`]'s text with every `(from, to)` replaced.
///
/// # Panics
/// When the file cannot be read or no longer holds a `from`: the test is out of date.
pub fn example(replace: &[(&str, String)]) -> String {
    let mut text =
        fs::read_to_string(EXAMPLE).unwrap_or_else(|e| panic!("cannot read {EXAMPLE}: {e}"));
    for (from, to) in replace {
        assert!(
            text.contains(from),
            "{EXAMPLE} no longer holds {from:?}: update the test that replaces it"
        );
        text = text.replace(from, to);
    }
    text
}

/// A running haproxy; dropping it kills the process, then removes its dir.
pub struct Haproxy {
    proc: GuardedChild,
    log: PathBuf,
    // last field: removed after the process is killed
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Writes `config` to a temp dir, validates it with `haproxy -c` and starts
    /// `haproxy -db -f` on it (stdout and stderr to a log, see [`Haproxy::log_tail`]).
    ///
    /// # Panics
    /// When haproxy is missing, refuses the config (with its message) or cannot start.
    pub fn start(config: &str) -> Haproxy {
        let dir = tempfile::Builder::new()
            .prefix("rf-haproxy-")
            .tempdir()
            .expect("Haproxy: cannot create a temp dir");
        let cfg = dir.path().join("haproxy.cfg");
        fs::write(&cfg, config).expect("Haproxy: cannot write the config");
        let cfg_arg = cfg.display().to_string();
        run("haproxy", &["-c", "-q", "-f", &cfg_arg], CMD_TIMEOUT)
            .unwrap_or_else(|e| panic!("haproxy refuses the config: {e}\n{config}"));
        let bin = tool("haproxy").expect("haproxy not found");
        let log = dir.path().join("haproxy.log");
        let out = open_log(&log).expect("Haproxy: cannot open its log");
        let err = out
            .try_clone()
            .expect("Haproxy: cannot clone a file handle");
        let proc = spawn_guarded(move || {
            let mut cmd = Command::new(bin);
            cmd.args(["-db", "-f", &cfg_arg])
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err);
            cmd
        })
        .expect("cannot spawn haproxy");
        Haproxy {
            proc,
            log,
            _dir: dir,
        }
    }

    /// Whether the process still runs.
    pub fn is_running(&self) -> bool {
        self.proc.is_running()
    }

    /// The last `n` lines haproxy printed (its server state changes among them).
    pub fn log_tail(&self, n: usize) -> String {
        log_tail(&self.log, n)
    }
}
