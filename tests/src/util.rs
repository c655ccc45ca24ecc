//! Small shared helpers: tracing set-up, free ports, unique znode roots, the wall clock in
//! Unix milliseconds, log tails and pid checks.

use std::collections::HashSet;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Installs a `tracing_subscriber` fmt subscriber writing through the test harness's capture
/// (`with_test_writer`), filtered by `RUST_LOG` (default `info`). Safe to call many times.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(filter)
        .try_init();
}

/// Returns a currently free TCP port on 127.0.0.1 (bind to port 0, read it, release it).
/// Never returns the same port twice within one process.
pub fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let handed_out = HANDED_OUT.get_or_init(|| Mutex::new(HashSet::new()));
    for _ in 0..1000 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("free_port: cannot bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("free_port: local_addr of a bound listener")
            .port();
        if lock(handed_out).insert(port) {
            return port;
        }
    }
    panic!("free_port: no fresh port after 1000 attempts");
}

/// A fresh znode root path like `/t_<name>_<pid>_<counter>`, unique within this test binary
/// (and across concurrently running binaries, through the pid). Characters of `name` other
/// than ASCII alphanumerics and `_` are replaced by `_`.
pub fn unique_root(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("/t_{clean}_{}_{n}", std::process::id())
}

/// Milliseconds since the Unix epoch: the wire schema's one clock.
pub use redis_failover_client::wire::{unix_ms, unix_ms_at};

/// `items` written one after the other, comma-separated (`a,b,c`), as server and node lists
/// are given.
pub fn comma_list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    items.join(",")
}

/// Locks a mutex, ignoring poisoning (a panicking test must not break the cleanup of others).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The last `n` lines of a (log) file, or a note that it could not be read.
pub fn log_tail(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// `true` when `/proc/<pid>` exists and the process is neither a zombie nor dead.
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // the state is the first field after the parenthesised command name
        Ok(stat) => match stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
        {
            Some(state) => state != "Z" && state != "X" && state != "x",
            None => false,
        },
        Err(_) => false,
    }
}

/// The message of a panic payload, when it is text.
pub fn panic_text(p: &(dyn std::any::Any + Send)) -> Option<String> {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
}

/// Whether a test that needs `needs` can run: `true` when `probe` is `Ok`. Otherwise prints
/// `SKIPPED (needs <needs>): <test>: <why>` to stderr and returns `false` (the caller returns)
/// — or panics with that line when the environment variable `require_env` is `1` (as `.ci/run`
/// sets), so that CI never passes by skipping.
pub fn run_or_skip(needs: &str, require_env: &str, test: &str, probe: Result<(), String>) -> bool {
    let Err(why) = probe else {
        return true;
    };
    let line = format!("SKIPPED (needs {needs}): {test}: {why}");
    if std::env::var(require_env).is_ok_and(|v| v == "1") {
        panic!("{line} ({require_env}=1 forbids skipping)");
    }
    // Straight to fd 2: libtest captures `eprintln!` of a passing test.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("\n!!!!!!!! {line}\n\n").as_bytes(),
    );
    false
}
