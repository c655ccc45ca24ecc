//! A throwaway ZooKeeper server ([`ZkServer`], one per test binary through [`shared_zk`];
//! on loopback, or at a [`Place`] such as a network-namespace host), its four-letter commands
//! and its CLI.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Seek, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::process::{find_program, open_log, spawn_guarded, GuardedChild, Place};
use crate::tls::TlsFiles;
use crate::util::{free_port, lock, log_tail};

/// How long a ZooKeeper server may take to answer `srvr` with `Mode:`.
const ZK_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Grace period between SIGTERM and SIGKILL in [`ZkServer::stop`].
const ZK_STOP_GRACE: Duration = Duration::from_secs(5);
/// `zk_cli` is killed after this long.
const ZK_CLI_TIMEOUT: Duration = Duration::from_secs(20);

/// Default ZooKeeper classpath: the jar's manifest pulls in its own dependencies (but not
/// all of Netty's, which the TLS port needs: codec and resolver, from the same Debian
/// package, libnetty-java); slf4j-simple is the logging binding. Overridable with `ZK_CP`.
const ZK_CP: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar:\
                     /usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar";
const ZK_JVM_OPTS: &[&str] = &[
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xss512k",
    "-Xms16m",
    "-Xmx256m",
    "-XX:-UsePerfData",
];

fn zk_java() -> String {
    std::env::var("ZK_JAVA").unwrap_or_else(|_| "java".to_string())
}

fn zk_classpath() -> String {
    std::env::var("ZK_CP").unwrap_or_else(|_| ZK_CP.to_string())
}

/// What to do when a piece of ZooKeeper is missing.
const INSTALL_ZOOKEEPER: &str =
    "install Debian's zookeeper package (apt-get install zookeeper) or run .ci/run";

/// Whether ZooKeeper can be started with `java` (a program name looked up in `path`, a `PATH`
/// value, or a path) and `classpath` (`:`-separated jars); `Err` is one line naming what is
/// missing and what to install.
pub fn check_zookeeper(path: Option<&OsStr>, java: &str, classpath: &str) -> Result<(), String> {
    if find_program(java, path).is_none() {
        let hint = if java.contains('/') {
            " (ZK_JAVA)"
        } else {
            " on PATH"
        };
        return Err(format!("{java} not found{hint}: {INSTALL_ZOOKEEPER}"));
    }
    for jar in classpath
        .split(':')
        .filter(|j| !j.is_empty() && !j.contains('*'))
    {
        if !Path::new(jar).is_file() {
            return Err(format!(
                "{jar} missing: {INSTALL_ZOOKEEPER} (or set ZK_CP to where its jars are)"
            ));
        }
    }
    Ok(())
}

/// [`check_zookeeper`] for this process: `PATH`, `ZK_JAVA` (default `java`), `ZK_CP`.
/// # Panics
/// With that one line, if something is missing.
fn require_zookeeper() {
    let path = std::env::var_os("PATH");
    if let Err(e) = check_zookeeper(path.as_deref(), &zk_java(), &zk_classpath()) {
        panic!("{e}");
    }
}

/// Sends a ZooKeeper four-letter command (`srvr`, `ruok`, `mntr`, ...) to 127.0.0.1:`port`
/// and returns the answer, or `None` if nothing could be read within ~1.5 s.
pub fn zk_four_letter(port: u16, cmd: &str) -> Option<String> {
    zk_four_letter_at(IpAddr::V4(Ipv4Addr::LOCALHOST), port, cmd)
}

/// [`zk_four_letter`] to `ip`:`port`.
pub fn zk_four_letter_at(ip: IpAddr, port: u16, cmd: &str) -> Option<String> {
    four_letter(ip, port, cmd, None)
}

/// A four-letter command, over TLS with `tls` (a server's `secureClientPort`).
fn four_letter(
    ip: IpAddr,
    port: u16,
    cmd: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Option<String> {
    let addr = SocketAddr::from((ip, port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(1)))
        .ok()?;
    match tls {
        None => talk(stream, cmd),
        Some(config) => {
            let name = rustls::pki_types::ServerName::IpAddress(ip.into());
            let conn = rustls::ClientConnection::new(config.clone(), name).ok()?;
            talk(rustls::StreamOwned::new(conn, stream), cmd)
        }
    }
}

/// Sends `cmd` on `stream` and reads the answer until the server closes it.
fn talk(mut stream: impl Read + Write, cmd: &str) -> Option<String> {
    stream.write_all(cmd.as_bytes()).ok()?;
    let mut out = Vec::new();
    // ZooKeeper closes the connection after answering; a timeout keeps what was read.
    let _ = stream.read_to_end(&mut out);
    if out.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Runs ZooKeeper's CLI non-interactively against 127.0.0.1:`port`
/// (`java ... org.apache.zookeeper.ZooKeeperMain -server 127.0.0.1:PORT <args>`), kills it
/// after 20 s, and returns its stdout (stderr is discarded). E.g. `zk_cli(port, &["get", "/x"])`.
pub fn zk_cli(port: u16, args: &[&str]) -> String {
    require_zookeeper();
    let out = tempfile::tempfile().expect("zk_cli: cannot create a temp file for stdout");
    let out_for_child = out
        .try_clone()
        .expect("zk_cli: cannot clone the stdout temp file handle");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let child = spawn_guarded(move || {
        let mut cmd = Command::new(zk_java());
        cmd.args([
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-XX:-UsePerfData",
            "-cp",
            &zk_classpath(),
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=error",
            "org.apache.zookeeper.ZooKeeperMain",
            "-server",
            &format!("127.0.0.1:{port}"),
        ])
        .args(&args)
        .stdin(Stdio::null())
        .stdout(out_for_child)
        .stderr(Stdio::null());
        cmd
    })
    .expect("zk_cli: cannot spawn java");
    if child.wait_exit(ZK_CLI_TIMEOUT).is_none() {
        eprintln!("zk_cli: still running after {ZK_CLI_TIMEOUT:?}, killing it");
        child.kill();
    }
    drop(child);
    let mut out = out;
    let mut text = Vec::new();
    out.rewind()
        .expect("zk_cli: cannot rewind the stdout temp file");
    out.read_to_end(&mut text)
        .expect("zk_cli: cannot read the stdout temp file");
    String::from_utf8_lossy(&text).into_owned()
}

/// The `zoo.cfg` lines of a TLS-only port (`port` on `ip`) with `files`' certificates, the
/// key store (key and certificate in one PEM file) and trust store written into `dir`.
fn tls_ports(dir: &Path, files: &TlsFiles, port: u16, ip: &str) -> String {
    let read = |p: &Path| fs::read_to_string(p).expect("ZkServer: read a test certificate");
    let key_store = dir.join("server.pem");
    let trust_store = dir.join("ca.pem");
    fs::write(
        &key_store,
        read(&files.server_key) + &read(&files.server_cert),
    )
    .expect("ZkServer: write the key store");
    fs::write(&trust_store, read(&files.ca)).expect("ZkServer: write the trust store");
    format!(
        "secureClientPort={port}\n\
         secureClientPortAddress={ip}\n\
         serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
         ssl.keyStore.location={}\n\
         ssl.keyStore.type=PEM\n\
         ssl.trustStore.location={}\n\
         ssl.trustStore.type=PEM\n\
         ssl.clientAuth=need\n",
        key_store.display(),
        trust_store.display()
    )
}

/// Settings every server of the tests has.
const COMMON_CONFIG: &str = "maxClientCnxns=0\n\
     admin.enableServer=false\n\
     4lw.commands.whitelist=ruok,srvr,stat,mntr,cons,dump,wchs,wchc,conf,envi,crst,srst\n";

/// A throwaway ZooKeeper server (standalone, or a member of a [`crate::ZkEnsemble`]) on
/// 127.0.0.1 or at a [`Place`], with its config, data and log in a temp dir. Dropping it
/// stops the server and removes the dir.
#[derive(Debug)]
pub struct ZkServer {
    place: Place,
    port: u16,
    /// `ZooKeeperServerMain` (standalone) or `QuorumPeerMain` (an ensemble's member).
    main_class: &'static str,
    /// The whole `zoo.cfg`.
    config: String,
    /// For a server serving TLS only: how the harness talks to it (four-letter commands).
    tls: Option<Arc<rustls::ClientConfig>>,
    proc: Mutex<Option<GuardedChild>>,
    // last field: dropped after the process is gone
    dir: tempfile::TempDir,
}

impl ZkServer {
    /// Starts a ZooKeeper on a free port and waits (up to 30 s) until `srvr` answers `Mode:`.
    ///
    /// # Panics
    /// If java or ZooKeeper's jars are missing (one line saying what to install), or if it is
    /// not ready in time (the message includes the tail of its log).
    pub fn start() -> ZkServer {
        ZkServer::start_at(&Place::loopback())
    }

    /// [`ZkServer::start`] at `place` (listening on its address only).
    ///
    /// # Panics
    /// As [`ZkServer::start`].
    pub fn start_at(place: &Place) -> ZkServer {
        ZkServer::start_with(place, None)
    }

    /// A standalone server on 127.0.0.1 that serves TLS only, as production does
    /// (`secureClientPort`, no `clientPort`; Netty), with `files`' server certificate,
    /// trusting their CA, and requiring a client certificate (`ssl.clientAuth=need`):
    /// [`ZkServer::port`] is its TLS port.
    ///
    /// # Panics
    /// As [`ZkServer::start`].
    pub fn start_tls(files: &TlsFiles) -> ZkServer {
        ZkServer::start_with(&Place::loopback(), Some(files))
    }

    fn start_with(place: &Place, tls: Option<&TlsFiles>) -> ZkServer {
        require_zookeeper();
        let mut last_err = String::new();
        // A port picked by free_port() can be grabbed by someone else before ZooKeeper binds
        // it; the server then exits at once, and we try again on another port.
        for _ in 0..3 {
            let port = free_port();
            let main_class = "org.apache.zookeeper.server.ZooKeeperServerMain";
            let mut zk = ZkServer::unstarted(place, port, main_class, |dir| {
                let ports = match tls {
                    None => format!("clientPort={port}\nclientPortAddress={}\n", place.ip),
                    Some(files) => tls_ports(dir, files, port, &place.ip),
                };
                format!(
                    "tickTime=500\n\
                     dataDir={}\n\
                     {ports}\
                     minSessionTimeout=1000\n\
                     maxSessionTimeout=60000\n\
                     forceSync=no\n\
                     {COMMON_CONFIG}",
                    dir.join("data").display(),
                )
            });
            zk.tls = tls.map(|f| {
                f.client_tls(true)
                    .rustls_config()
                    .expect("the test certificates")
            });
            match zk.spawn_and_wait() {
                Ok(()) => return zk,
                Err(e) => {
                    let exited = lock(&zk.proc).as_ref().is_some_and(|p| !p.is_running());
                    if !exited {
                        panic!("{e}");
                    }
                    last_err = e;
                }
            }
        }
        panic!("{last_err}");
    }

    /// Member `id` of an ensemble whose `server.N=` lines are `servers`, serving clients
    /// at `place` (its address, on `port`), configured as production runs ZooKeeper (fsync
    /// on, `tickTime=2000`); not started yet ([`ZkServer::spawn`]).
    ///
    /// # Panics
    /// If its temp dir cannot be made.
    pub(crate) fn member(id: u32, place: &Place, port: u16, servers: &str) -> ZkServer {
        require_zookeeper();
        let main_class = "org.apache.zookeeper.server.quorum.QuorumPeerMain";
        let zk = ZkServer::unstarted(place, port, main_class, |dir| {
            format!(
                "tickTime=2000\n\
                 initLimit=10\n\
                 syncLimit=5\n\
                 dataDir={}\n\
                 clientPort={port}\n\
                 clientPortAddress={}\n\
                 forceSync=yes\n\
                 reconfigEnabled=false\n\
                 {COMMON_CONFIG}{servers}",
                dir.join("data").display(),
                place.ip
            )
        });
        let data = zk.dir.path().join("data");
        fs::create_dir_all(&data).expect("ZkServer: cannot create data/");
        fs::write(data.join("myid"), format!("{id}\n")).expect("ZkServer: cannot write myid");
        zk
    }

    /// A server not started yet: `main_class` with the zoo.cfg `config` makes from its new
    /// temp dir (data in its `data/`), written into that dir; plain text (no `tls`).
    ///
    /// # Panics
    /// If the temp dir or zoo.cfg cannot be written.
    fn unstarted(
        place: &Place,
        port: u16,
        main_class: &'static str,
        config: impl FnOnce(&Path) -> String,
    ) -> ZkServer {
        let dir = tempfile::Builder::new()
            .prefix("rf-zk-")
            .tempdir()
            .expect("ZkServer: cannot create a temp dir");
        let config = config(dir.path());
        let zk = ZkServer {
            place: place.clone(),
            port,
            main_class,
            config,
            tls: None,
            proc: Mutex::new(None),
            dir,
        };
        zk.write_config().expect("ZkServer: cannot write zoo.cfg");
        zk
    }

    /// What `srvr` says the server is (`leader`, `follower`, `standalone`); `None` while it
    /// does not serve (down, or a member without a quorum).
    pub fn mode(&self) -> Option<String> {
        let out = self.srvr()?;
        out.lines()
            .find_map(|l| l.strip_prefix("Mode:"))
            .map(|m| m.trim().to_string())
    }

    /// The ids of the sessions connected to this server now (`sid=0x...` in `cons`).
    pub fn session_ids(&self) -> Vec<String> {
        let Ok(ip) = self.place.ip.parse() else {
            return Vec::new();
        };
        let Some(out) = four_letter(ip, self.port, "cons", self.tls.as_ref()) else {
            return Vec::new();
        };
        out.split([',', '(', ')'])
            .filter_map(|part| part.trim().strip_prefix("sid="))
            .map(str::to_string)
            .collect()
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `"IP:PORT"` (`127.0.0.1:PORT` unless started at another [`Place`]).
    pub fn connect_string(&self) -> String {
        format!("{}:{}", self.place.ip, self.port)
    }

    /// The temp dir holding `zoo.cfg`, `data/` and `zk.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of the server's log (stdout + stderr of the JVM).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("zk.log")
    }

    /// Pid of the current server process, if one was started and not stopped.
    pub fn pid(&self) -> Option<u32> {
        lock(&self.proc).as_ref().map(GuardedChild::pid)
    }

    /// `true` while the server process exists (even if it is not serving yet).
    pub fn is_running(&self) -> bool {
        lock(&self.proc)
            .as_ref()
            .is_some_and(GuardedChild::is_running)
    }

    /// The answer to the `srvr` four-letter command, if the server answers.
    pub fn srvr(&self) -> Option<String> {
        let ip = self.place.ip.parse().ok()?;
        four_letter(ip, self.port, "srvr", self.tls.as_ref())
    }

    /// SIGTERM, then SIGKILL after 5 s; waits until the process is reaped.
    pub fn stop(&self) {
        if let Some(p) = lock(&self.proc).take() {
            p.terminate(ZK_STOP_GRACE);
        }
    }

    /// SIGKILL; waits until the process is reaped. The data dir survives.
    pub fn kill(&self) {
        if let Some(p) = lock(&self.proc).take() {
            p.kill();
        }
    }

    /// Freezes the server (SIGSTOP): it keeps its port but answers nothing, so sessions expire.
    pub fn sigstop(&self) {
        if let Some(p) = lock(&self.proc).as_ref() {
            p.signal(libc::SIGSTOP);
        }
    }

    /// Resumes a SIGSTOPped server.
    pub fn sigcont(&self) {
        if let Some(p) = lock(&self.proc).as_ref() {
            p.signal(libc::SIGCONT);
        }
    }

    /// Starts the server again on the same port with the same data dir (stopping it first if
    /// it is still running) and waits until it is ready.
    ///
    /// # Panics
    /// If it is not ready within 30 s.
    pub fn restart(&self) {
        self.stop();
        if let Err(e) = self.spawn_and_wait() {
            panic!("{e}");
        }
    }

    fn write_config(&self) -> io::Result<()> {
        fs::create_dir_all(self.dir.path().join("data"))?;
        fs::write(self.dir.path().join("zoo.cfg"), &self.config)
    }

    fn spawn_and_wait(&self) -> Result<(), String> {
        self.spawn()?;
        self.wait_serving(Instant::now() + ZK_READY_TIMEOUT)
    }

    /// Starts the process (the config is written); [`ZkServer::wait_serving`] waits for it.
    pub(crate) fn spawn(&self) -> Result<(), String> {
        let cfg = self.dir.path().join("zoo.cfg");
        let log_path = self.log_path();
        let log = open_log(&log_path)
            .map_err(|e| format!("ZkServer: cannot open {}: {e}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("ZkServer: cannot clone log handle: {e}"))?;
        let level = std::env::var("ZK_LOG_LEVEL").unwrap_or_else(|_| "warn".to_string());
        let place = self.place.clone();
        let main_class = self.main_class;
        let child = spawn_guarded(move || {
            let mut cmd = place.command(zk_java());
            cmd.args(ZK_JVM_OPTS)
                .arg("-cp")
                .arg(zk_classpath())
                .arg(format!("-Dorg.slf4j.simpleLogger.defaultLogLevel={level}"))
                .arg("-Dzookeeper.jmx.log4j.disable=true")
                .arg(main_class)
                .arg(cfg)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err);
            cmd
        })
        .map_err(|e| format!("ZkServer: cannot spawn {}: {e}", zk_java()))?;
        *lock(&self.proc) = Some(child);
        Ok(())
    }

    /// Waits until `srvr` answers with a `Mode:` (for a member: until it is part of a
    /// quorum), or the process exits, or `deadline`.
    pub(crate) fn wait_serving(&self, deadline: Instant) -> Result<(), String> {
        let log_path = self.log_path();
        loop {
            if self.srvr().is_some_and(|out| out.contains("Mode:")) {
                return Ok(());
            }
            let exited = lock(&self.proc).as_ref().map(GuardedChild::exit_status);
            if let Some(Some(status)) = exited {
                return Err(format!(
                    "ZooKeeper on port {} exited ({status}) before it was ready; tail of {}:\n{}",
                    self.port,
                    log_path.display(),
                    log_tail(&log_path, 40)
                ));
            }
            if exited.is_none() {
                return Err(format!("ZooKeeper on port {} is not running", self.port));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "ZooKeeper on port {} not ready (srvr without `Mode:`) in time; tail of {}:\n{}",
                    self.port,
                    log_path.display(),
                    log_tail(&log_path, 40)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.stop();
    }
}

static SHARED_ZK: OnceLock<ZkServer> = OnceLock::new();

extern "C" fn cleanup_shared_zk() {
    if let Some(zk) = SHARED_ZK.get() {
        // try_lock: never block process exit on a lock some stuck thread may hold
        if let Ok(mut slot) = zk.proc.try_lock() {
            if let Some(p) = slot.take() {
                p.kill();
            }
        }
        let _ = fs::remove_dir_all(zk.dir.path());
    }
}

/// One ZooKeeper per test binary, started lazily on first use. Give each test its own
/// [`crate::unique_root`]. It is killed when the binary exits (an `atexit` hook that also removes
/// its temp dir, with `PR_SET_PDEATHSIG` of the spawner thread as a backstop).
pub fn shared_zk() -> &'static ZkServer {
    SHARED_ZK.get_or_init(|| {
        let zk = ZkServer::start();
        // SAFETY: registering a plain extern "C" fn with no captured state.
        unsafe {
            libc::atexit(cleanup_shared_zk);
        }
        zk
    })
}
