//! `scripts/demo.sh` as a user runs it: `scripts/demo.sh 2>&1 | tee demo.log`, then ctrl-c
//! (SIGINT to the whole foreground process group, `tee` included, so the demo's output goes
//! to a closed pipe from then on). Nothing it started may survive that, not even a master
//! restarted by hand with the printed command, and its temp dir must be gone. The commands it
//! prints (status, curl, SENTINEL, zkCli, the examples, kill -9) work as printed, and
//! `DEMO_UNTIL=ready` comes up and stops everything by itself.
//!
//! Each demo runs in a session of its own (`setsid`), under a TMPDIR of its own, so that its
//! processes are known without asking it: the members of that session, plus anything whose
//! working directory or command line is under that TMPDIR (the restarted master daemonizes
//! into a session of its own, in the demo's temp dir). A guard kills all of them when a test
//! fails. The demo builds the manager with `DEMO_PROFILE=debug` (the build `cargo test`
//! already did) and never installs packages (`DEMO_INSTALL=no`).

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis_failover_tests::wait_until;

/// Until the demo is ready: it may have to build the manager first.
const READY: Duration = Duration::from_secs(300);
/// For everything else: a printed command, a failover, the whole cleanup.
const DEADLINE: Duration = Duration::from_secs(30);

/// One demo at a time: each picks the first free ports from the same ranges.
static ONE_DEMO: Mutex<()> = Mutex::new(());

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A process as /proc shows it; `start` (clock ticks after boot) tells a reused pid apart.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Proc {
    pid: i32,
    start: u64,
    session: i32,
    what: String,
}

impl Proc {
    /// The process `pid`, unless it is gone (or a zombie: exited, only not reaped yet).
    fn read(pid: i32) -> Option<Proc> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let close = stat.rfind(')')?;
        let comm = stat.get(stat.find('(')? + 1..close)?.to_string();
        // after "pid (comm)": state ppid pgrp session ... with starttime the 20th of them
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if matches!(fields.first(), None | Some(&"Z") | Some(&"X") | Some(&"x")) {
            return None;
        }
        let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        Some(Proc {
            pid,
            start: fields.get(19)?.parse().ok()?,
            session: fields.get(3)?.parse().ok()?,
            what: format!("{comm}: {}", cmdline.trim_end()),
        })
    }

    /// Still the same process, and running.
    fn alive(&self) -> bool {
        Proc::read(self.pid).is_some_and(|p| p.start == self.start)
    }

    fn all() -> Vec<Proc> {
        let Ok(dir) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(Proc::read)
            .collect()
    }
}

/// Processes of session `sid`, or working in / naming `dir` (never this test process).
fn processes_of(sid: i32, dir: &Path) -> Vec<Proc> {
    let me = std::process::id() as i32;
    let dir_str = dir.to_string_lossy().to_string();
    Proc::all()
        .into_iter()
        .filter(|p| p.pid != me)
        .filter(|p| {
            p.session == sid
                || fs::read_link(format!("/proc/{}/cwd", p.pid)).is_ok_and(|c| c.starts_with(dir))
                || p.what.contains(&dir_str)
        })
        .collect()
}

/// `scripts/demo.sh 2>&1 | tee <tmp>/demo.log`, in a session of its own; its output (through
/// tee) comes to this test line by line.
struct Demo {
    child: Child,
    sid: i32,
    tmp: tempfile::TempDir,
    lines: Receiver<String>,
    output: Vec<String>,
    /// Every process seen belonging to it, by pid.
    seen: BTreeMap<i32, Proc>,
}

impl Demo {
    fn start(extra_env: &[(&str, &str)]) -> Demo {
        let tmp = tempfile::Builder::new()
            .prefix("demo-test.")
            .tempdir()
            .expect("a temp dir");
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(r#""$0" 2>&1 | tee "$1""#)
            .arg(repo_root().join("scripts/demo.sh"))
            .arg(tmp.path().join("demo.log"))
            .current_dir(tmp.path())
            .env("TMPDIR", tmp.path())
            .env("DEMO_PROFILE", "debug")
            .env("DEMO_INSTALL", "no")
            .env("RUST_LOG", "info")
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // SAFETY: setsid is async-signal-safe; a new session (and process group) whose id is
        // the child's pid, without a controlling terminal, like a terminal's foreground job.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("cannot run bash");
        let sid = child.id() as i32;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Demo {
            child,
            sid,
            tmp,
            lines,
            output: Vec::new(),
            seen: BTreeMap::new(),
        }
    }

    /// Records the demo's processes as they are now.
    fn note_processes(&mut self) {
        for p in processes_of(self.sid, self.tmp.path()) {
            self.seen.entry(p.pid).or_insert(p);
        }
    }

    fn track(&mut self, pid: i32) {
        if let Some(p) = Proc::read(pid) {
            self.seen.insert(pid, p);
        }
    }

    /// Reads output until a line satisfies `pred`; panics with the output so far after
    /// `timeout` or when the output ends.
    fn wait_line(&mut self, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.output.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no {what} after {timeout:?}; output:\n{}",
                        self.output.join("\n")
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the demo's output ended before {what}:\n{}",
                        self.output.join("\n")
                    )
                }
            }
        }
    }

    /// Waits for the demo's "ctrl-c to stop" line (the manager is starting or started).
    fn wait_ready(&mut self) {
        self.wait_line(READY, "ready line", |l| {
            l.starts_with("demo: ") && l.contains("ctrl-c")
        });
        self.note_processes();
    }

    /// The first printed line containing `needle`, trimmed.
    fn printed(&self, needle: &str) -> String {
        self.output
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| {
                panic!(
                    "the demo printed no {needle:?}:\n{}",
                    self.output.join("\n")
                )
            })
            .trim()
            .to_string()
    }

    /// The pid in the printed `kill -9 <pid>` command (the master's).
    fn master_pid(&self) -> i32 {
        let line = self.printed("kill -9 ");
        line.trim_start_matches("kill -9 ")
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    /// ctrl-c: SIGINT to the session's process group (bash -c, the demo, tee, its children).
    fn interrupt(&self) {
        // SAFETY: kill(2) on our own child's process group.
        unsafe { libc::kill(-self.sid, libc::SIGINT) };
    }

    /// Processes of the demo that are still alive: those seen before, those in its session,
    /// and those using its TMPDIR.
    fn leftovers(&self) -> Vec<Proc> {
        let mut left: BTreeMap<i32, Proc> = self
            .seen
            .values()
            .filter(|p| p.alive())
            .map(|p| (p.pid, p.clone()))
            .collect();
        for p in processes_of(self.sid, self.tmp.path()) {
            left.entry(p.pid).or_insert(p);
        }
        left.into_values().collect()
    }

    /// The demo's `mktemp -d` dirs still there.
    fn demo_dirs(&self) -> Vec<PathBuf> {
        fs::read_dir(self.tmp.path())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name().is_some_and(|n| {
                            n.to_string_lossy().starts_with("redis-failover-demo.")
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts that within [`DEADLINE`] no process of the demo is left and its temp dir is
    /// gone.
    fn assert_all_gone(&mut self) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (left, dirs) = (self.leftovers(), self.demo_dirs());
            if left.is_empty() && dirs.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let mut log = fs::read_to_string(self.tmp.path().join("demo.log"))
                    .unwrap_or_else(|e| format!("<no demo.log: {e}>"));
                if log.len() > 6000 {
                    log = format!("...{}", &log[log.len() - 6000..]);
                }
                panic!(
                    "{DEADLINE:?} after ctrl-c, left behind:\n  processes: {left:#?}\n  dirs: \
                     {dirs:?}\ndemo.log:\n{log}"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.wait();
    }
}

impl Drop for Demo {
    /// Whatever happened: SIGKILL to everything of the demo, then the TempDir goes.
    fn drop(&mut self) {
        for _ in 0..3 {
            // SAFETY: kill(2) on our child's process group and on the demo's processes.
            unsafe { libc::kill(-self.sid, libc::SIGKILL) };
            let left = self.leftovers();
            if left.is_empty() {
                break;
            }
            for p in left {
                if p.alive() {
                    unsafe { libc::kill(p.pid, libc::SIGKILL) };
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a printed command line with bash, from the repo root; returns its stdout.
fn run_printed(cmd: &str) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(cmd)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{cmd}\nfailed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The argument after `flag` in a command line.
fn arg_after<'a>(cmd: &'a str, flag: &str) -> &'a str {
    let mut words = cmd.split_whitespace();
    words.by_ref().find(|w| *w == flag);
    words
        .next()
        .unwrap_or_else(|| panic!("no {flag} in {cmd:?}"))
}

#[test]
fn ctrl_c_through_tee_stops_everything_even_a_restarted_master() {
    let _one = ONE_DEMO.lock().unwrap_or_else(|e| e.into_inner());
    let mut demo = Demo::start(&[]);
    demo.wait_ready();
    wait_until(DEADLINE, "redis_node_manager running", || {
        demo.note_processes();
        demo.seen
            .values()
            .any(|p| p.alive() && p.what.starts_with("redis_node_mana"))
            .then_some(())
    });
    for name in ["java", "redis-server", "tee"] {
        assert!(
            demo.seen.values().any(|p| p.what.starts_with(name)),
            "no {name} among the demo's processes: {:#?}",
            demo.seen
        );
    }

    // The story: kill -9 the master, then restart it with the printed command (it daemonizes,
    // out of the demo's session and process group: only the demo's cleanup can stop it).
    let master = demo.master_pid();
    unsafe { libc::kill(master, libc::SIGKILL) };
    wait_until(DEADLINE, "the master gone", || {
        Proc::read(master).is_none().then_some(())
    });
    let restart = demo.printed("--daemonize yes");
    run_printed(&restart);
    let pidfile = arg_after(&restart, "--pidfile").to_string();
    let restarted: i32 = wait_until(DEADLINE, "the restarted master's pid file", || {
        fs::read_to_string(&pidfile).ok()?.trim().parse().ok()
    });
    demo.track(restarted);
    assert!(
        demo.seen.contains_key(&restarted),
        "restarted master {restarted} not running"
    );
    demo.note_processes();

    // ctrl-c: tee dies with everything else; the demo's cleanup writes into a closed pipe.
    demo.interrupt();
    demo.assert_all_gone();
}

#[test]
fn the_printed_commands_work_and_a_killed_master_is_replaced() {
    let _one = ONE_DEMO.lock().unwrap_or_else(|e| e.into_inner());
    let mut demo = Demo::start(&[]);
    demo.wait_ready();
    let banner = demo.printed(" Redis      master 127.0.0.1:");
    let master_port = arg_after(&banner, "master")
        .rsplit(':')
        .next()
        .expect("host:port")
        .to_string();
    let master_addr = format!("127.0.0.1:{master_port}");

    // What the manager publishes, four ways.
    let status = run_printed(&demo.printed(" status -z 127.0.0.1:"));
    assert!(status.contains(&master_addr), "status:\n{status}");
    let http = demo.printed("curl -s http://127.0.0.1:");
    assert!(http.ends_with("/status"), "{http}");
    let json: serde_json::Value = serde_json::from_str(&run_printed(&http))
        .unwrap_or_else(|e| panic!("{http}: not JSON: {e}"));
    assert!(json["groups"]["mymaster"].is_object(), "{http}: {json}");
    let metrics = run_printed(&demo.printed("/metrics"));
    assert!(metrics.contains("redis_failover_"), "metrics:\n{metrics}");
    let sentinel = demo.printed("SENTINEL get-master-addr-by-name mymaster");
    assert_eq!(
        run_printed(&sentinel),
        format!("127.0.0.1\n{master_port}\n"),
        "{sentinel}"
    );
    for zk_get in [
        demo.printed("zkCli.sh -server 127.0.0.1:"),
        demo.printed("org.apache.zookeeper.ZooKeeperMain -server"),
    ] {
        let out = run_printed(&zk_get);
        assert!(
            out.contains(&format!("\"master\":\"{master_addr}\"")),
            "{zk_get}:\n{out}"
        );
    }
    let roles = run_printed(&demo.printed(" role; redis-cli -p "));
    assert!(
        roles.contains("master") && roles.contains("slave"),
        "{roles}"
    );

    // The examples, with the printed ZooKeeper address.
    let basic = run_printed(&demo.printed("--bin basic -- --zk 127.0.0.1:"));
    assert!(basic.contains("visits="), "basic:\n{basic}");
    let survive = demo
        .printed("--bin survive_failover -- --zk 127.0.0.1:")
        .replace("--seconds 300", "--seconds 1");
    let out = run_printed(&survive);
    assert!(out.contains("done: "), "{survive}:\n{out}");
    let watch = demo.printed("--bin watch_topology -- --zk 127.0.0.1:");
    let mut watcher = Command::new("bash")
        .arg("-c")
        .arg(format!("exec {watch}"))
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot run watch_topology");
    let mut first = String::new();
    let read = BufReader::new(watcher.stdout.take().expect("piped")).read_line(&mut first);
    let _ = watcher.kill();
    let _ = watcher.wait();
    read.expect("watch_topology's output");
    assert!(
        first.contains(&format!("master={master_addr}")),
        "{watch}: {first:?}"
    );

    // kill -9 as printed: a replica is promoted and published (the Sentinel answer changes).
    let kill = demo.printed("kill -9 ");
    run_printed(&kill);
    let new_master = wait_until(DEADLINE, "a new master", || {
        let out = run_printed(&sentinel);
        (!out.is_empty() && !out.ends_with(&format!("\n{master_port}\n"))).then_some(out)
    });
    demo.wait_line(DEADLINE, "the +switch-master log line", |l| {
        l.contains("+switch-master mymaster")
    });
    assert!(new_master.starts_with("127.0.0.1\n"), "{new_master}");

    demo.note_processes();
    demo.interrupt();
    demo.assert_all_gone();
}

#[test]
fn until_ready_comes_up_then_stops_everything_by_itself() {
    let _one = ONE_DEMO.lock().unwrap_or_else(|e| e.into_inner());
    let mut demo = Demo::start(&[("DEMO_UNTIL", "ready")]);
    demo.wait_line(READY, "the ready line", |l| {
        l.starts_with("demo: ready (DEMO_UNTIL=ready)")
    });
    demo.note_processes();
    demo.wait_line(DEADLINE, "the last cleanup line", |l| {
        l == "demo: all stopped"
    });
    assert!(
        demo.output
            .iter()
            .any(|l| l.starts_with("demo: stopping zookeeper")),
        "{}",
        demo.output.join("\n")
    );
    demo.assert_all_gone();
}
