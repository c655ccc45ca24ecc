//! Least-privilege Redis users (docs/production.md, "Redis users"): nodes whose manager and
//! client users have exactly the rules that page lists (read from it, so that the page and
//! this test cannot drift) carry a crash failover, the old master's return and a planned
//! switchover, with a client writing and reading through them, and no node logs a refused
//! command (`ACL LOG`). A user missing one rule gets one line naming the command and the rule
//! to add, as the page shows it; adding that rule is enough.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use redis::{AsyncCommands, FromRedisValue};
use redis_failover_client::{Client, FailoverError, NodeAddr};
use redis_failover_manager::config::Cli;
use redis_failover_tests::manager::Manager;
use redis_failover_tests::{for_a_while, wait_until, wait_until_async, RedisGroup, Scene};

const DEADLINE: Duration = Duration::from_secs(30);
const DOC: &str = include_str!("../../docs/production.md");
/// The users of the page.
const MANAGER: &str = "redis-failover";
const APP: &str = "app";
/// The addresses the page's example lines use for the old and the new master.
const DOC_FROM: &str = "10.0.0.1:6379";
const DOC_TO: &str = "10.0.0.2:6379";

/// The "Redis users" section of docs/production.md.
fn section() -> &'static str {
    let start = DOC
        .find("\n## Redis users\n")
        .expect("docs/production.md has a \"## Redis users\" section");
    let rest = &DOC[start + 1..];
    match rest[1..].find("\n## ") {
        Some(end) => &rest[..end + 1],
        None => rest,
    }
}

/// An ACL user of the page: `user <name> <rules...>`.
#[derive(Clone, Debug)]
struct User {
    name: String,
    rules: Vec<String>,
}

impl std::fmt::Display for User {
    /// As a line of an ACL file or of redis.conf.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "user {} {}", self.name, self.rules.join(" "))
    }
}

impl User {
    fn password(&self) -> String {
        self.rules
            .iter()
            .find_map(|r| r.strip_prefix('>'))
            .unwrap_or_else(|| panic!("user {} has no >password rule", self.name))
            .to_string()
    }

    /// The same user without `rule`.
    fn without(&self, rule: &str) -> User {
        assert!(
            self.rules.iter().any(|r| r == rule),
            "{} has no rule {rule}",
            self.name
        );
        User {
            name: self.name.clone(),
            rules: self.rules.iter().filter(|r| *r != rule).cloned().collect(),
        }
    }

    /// As redis-server's command line takes a `user` line of redis.conf.
    fn server_args(&self) -> Vec<String> {
        let mut args = vec!["--user".to_string(), self.name.clone()];
        args.extend(self.rules.iter().cloned());
        args
    }
}

/// The `user ...` lines of the page, by name.
fn documented_users() -> BTreeMap<String, User> {
    let users: BTreeMap<String, User> = section()
        .lines()
        .filter_map(|l| l.strip_prefix("user "))
        .map(|l| {
            let mut words = l.split_whitespace().map(str::to_string);
            let name = words.next().expect("a user name");
            let user = User {
                name: name.clone(),
                rules: words.collect(),
            };
            assert_eq!(
                format!("user {l}"),
                user.to_string(),
                "one space between rules"
            );
            (name, user)
        })
        .collect();
    assert_eq!(
        users.keys().map(String::as_str).collect::<Vec<_>>(),
        vec![APP, MANAGER],
        "the page's users"
    );
    users
}

/// The page's example line that starts with `prefix`, with its example addresses replaced.
fn doc_line(prefix: &str, from: &NodeAddr, to: &NodeAddr) -> String {
    let mut lines = section().lines().filter(|l| l.starts_with(prefix));
    let line = lines
        .next()
        .unwrap_or_else(|| panic!("the page shows no line starting with {prefix:?}"));
    assert!(lines.next().is_none(), "two lines start with {prefix:?}");
    line.replace(DOC_FROM, &from.to_string())
        .replace(DOC_TO, &to.to_string())
}

/// A trio whose every node has `users` as `user` lines of redis.conf (and the harness's
/// open default user).
fn trio_with(users: &[&User]) -> RedisGroup {
    let args: Vec<String> = users.iter().flat_map(|u| u.server_args()).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    RedisGroup::start(2, &args)
}

/// An ACL file (`aclfile`) of `users`, one line each (Redis adds its open default user,
/// which the harness uses, when the file has none).
fn acl_file(users: &[&User]) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .prefix("rf-users-")
        .suffix(".acl")
        .tempfile()
        .expect("a temp file");
    for u in users {
        writeln!(file, "{u}").expect("write the ACL file");
    }
    file.flush().expect("flush the ACL file");
    file
}

/// The manager logs in as `user`: `--username` and `-p`.
fn log_in(c: &mut Cli, user: &User) {
    c.username = Some(user.name.clone());
    c.password = Some(user.password().parse().expect("secret"));
}

async fn app_client(scene: &Scene, user: &User) -> Client {
    scene
        .builder()
        .username(&user.name)
        .password(user.password())
        .connect()
        .await
        .expect("the client connects")
}

/// Writes `key` through the client and reads it back (from a replica, which may lag),
/// retrying while a failover settles.
async fn write_and_read(client: &Client, key: &str) {
    wait_until_async(DEADLINE, &format!("{key} written and read back"), || {
        let mut c = client.clone();
        async move {
            if let Err(e) = c.set::<_, _, ()>(key, key).await {
                eprintln!("SET {key}: {e}");
                return None;
            }
            let got: Option<String> = c.get(key).await.ok()?;
            (got.as_deref() == Some(key)).then_some(())
        }
    })
    .await;
}

/// Every node's `ACL LOG` is empty: nobody was refused a command or a key.
fn no_refusals(trio: &RedisGroup) {
    for node in trio.nodes() {
        let log = node.cmd(&["ACL", "LOG"]).expect("ACL LOG");
        assert_eq!(
            log,
            redis::Value::Array(vec![]),
            "{} refused commands",
            node.addr()
        );
    }
}

/// The manager's parked reads run under its user: `XREAD` on every node (`CLIENT LIST`'s
/// `cmd=` is the command a connection runs or ran last).
fn wait_parked_reads(trio: &RedisGroup) {
    for (i, cmd) in [(0, "xread"), (1, "xread"), (2, "xread")] {
        let node = trio.node(i);
        let want = format!("cmd={cmd} user={MANAGER} ");
        wait_until(DEADLINE, &format!("{want} on {}", node.addr()), || {
            let list = node.cmd(&["CLIENT", "LIST"]).ok()?;
            let list = String::from_redis_value(list).ok()?;
            list.contains(&want).then_some(())
        });
    }
}

/// Every command rule of `user` was used (`INFO commandstats` of the nodes still running
/// since the start; the blocking reads are [`wait_parked_reads`]'s): none is dead weight.
fn every_rule_used(trio: &RedisGroup, user: &User) {
    for rule in &user.rules {
        let Some(cmd) = rule.strip_prefix('+') else {
            continue;
        };
        if cmd.starts_with('@') || cmd == "xread" {
            continue;
        }
        let calls: u64 = trio
            .nodes()
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.calls(cmd))
            .sum();
        assert!(calls > 0, "{rule}: {cmd} was never called");
    }
}

/// `ACL SETUSER <name> <rule>` on every running node (as the harness's default user).
fn add_rule(trio: &RedisGroup, name: &str, rule: &str) {
    for node in trio.nodes().iter().filter(|n| n.is_running()) {
        node.cmd(&["ACL", "SETUSER", name, rule])
            .expect("ACL SETUSER");
    }
}

/// The rule a permission message asks to add: `...; add <rule> to its ACL (...`.
fn rule_asked(line: &str) -> String {
    line.split_once("; add ")
        .and_then(|(_, rest)| rest.split_once(" to its ACL"))
        .map(|(rule, _)| rule.to_string())
        .unwrap_or_else(|| panic!("no rule asked for in {line:?}"))
}

// ---- the manager's log, captured ----

static LOG: Mutex<String> = Mutex::new(String::new());

/// Writes each formatted event to the test's output and keeps it in [`LOG`].
struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        print!("{text}");
        LOG.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_str(&text);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber (before any `Scene`, whose own set-up then finds one).
fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .with_writer(|| Capture)
            .with_ansi(false)
            .with_env_filter(filter)
            .try_init();
    });
}

/// The messages of the log lines that contain every one of `words`, from the first of them
/// to the event's fields (` group=...`).
fn logged(words: &[&str]) -> Vec<String> {
    let first = words[0];
    LOG.lock()
        .unwrap_or_else(|e| e.into_inner())
        .lines()
        .filter(|l| words.iter().all(|w| l.contains(w)))
        .filter_map(|l| l.find(first).map(|i| &l[i..]))
        .map(|m| m.rsplit_once(" group=").map_or(m, |(m, _)| m).to_string())
        .collect()
}

/// Waits until a log line contains every one of `words`; returns the messages of all such.
fn wait_logged(words: &[&str], what: &str) -> Vec<String> {
    wait_until(DEADLINE, what, || {
        let lines = logged(words);
        (!lines.is_empty()).then_some(lines)
    })
}

// ---- the tests ----

/// A trio whose nodes know the manager's documented user without `rule`, and a manager
/// logged in as it in a fresh scene named `name` (its log lines captured).
async fn manager_without(rule: &str, name: &str) -> (RedisGroup, Scene, Manager) {
    capture_logs();
    let manager = documented_users()[MANAGER].without(rule);
    let trio = trio_with(&[&manager]);
    let scene = Scene::new(name).await;
    let m = scene.manager(&trio.addrs(), |c| log_in(c, &manager));
    (trio, scene, m)
}

/// Every one of the logged `lines` is `want`.
fn every_line_is(lines: &[String], want: &str) {
    for line in lines {
        assert_eq!(line, want, "the logged line");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_users_carry_a_crash_failover_a_return_and_a_switchover() {
    capture_logs();
    let users = documented_users();
    let (manager, app) = (&users[MANAGER], &users[APP]);
    let file = acl_file(&[manager, app]);
    let path = file.path().display().to_string();
    let trio = RedisGroup::start(2, &["--aclfile", &path]);
    let scene = Scene::new("redis_acl").await;
    let m = scene.manager(&trio.addrs(), |c| log_in(c, manager));
    let before = scene.wait_published(DEADLINE, "published", 2).await;
    wait_parked_reads(&trio);
    let client = app_client(&scene, app).await;
    write_and_read(&client, "app:before").await;

    // A crash: the master is killed, a replica promoted, the other re-pointed.
    let old = trio.node(0);
    old.kill9();
    let t = scene
        .wait_new_master(DEADLINE, "a new master", &before)
        .await;
    let new_master = t.master.clone().expect("master");
    write_and_read(&client, "app:after-crash").await;

    // The old master comes back (as a master, empty) and rejoins as a replica.
    old.restart(None);
    scene
        .wait(DEADLINE, "the old master listed as a replica", |t| {
            t.slaves.contains(&old.node_addr()) && t.slaves.len() == 2
        })
        .await;
    old.wait_follows(
        new_master.port,
        true,
        DEADLINE,
        "the old master replicates from the new one",
    );

    // A planned switchover back to it. In a switchover the new master's replicas log in
    // to it as the replication user, which a restart loses: it is gone here, as if the
    // request came before the manager set it again (a race CI once lost).
    old.cmd(&["ACL", "DELUSER", "redis-failover-replication"])
        .expect("ACL DELUSER");
    let to = old.node_addr();
    let got = client
        .failover(Some(&to), DEADLINE)
        .await
        .expect("the switchover is carried out");
    assert_eq!(got, to);
    write_and_read(&client, "app:after-switchover").await;
    for key in ["app:before", "app:after-crash", "app:after-switchover"] {
        assert_eq!(old.get(key).as_deref(), Some(key), "{key} on the master");
    }
    no_refusals(&trio);
    every_rule_used(&trio, manager);

    // The client's own command: without +wait, writes fail, naming WAIT (while replicas
    // are listed: a write waits for one).
    scene
        .wait(DEADLINE, "both replicas listed", |t| t.slaves.len() == 2)
        .await;
    let no_wait = app.without("+wait");
    let no_wait = User {
        name: "app-no-wait".into(),
        ..no_wait
    };
    for node in trio.nodes() {
        let mut args = vec!["ACL", "SETUSER", no_wait.name.as_str()];
        args.extend(no_wait.rules.iter().map(String::as_str));
        node.cmd(&args).expect("ACL SETUSER");
    }
    let mut c = app_client(&scene, &no_wait).await;
    let err = c
        .set::<_, _, ()>("app:unreplicated", "x")
        .await
        .expect_err("a write without +wait fails");
    assert_eq!(
        err.to_string(),
        doc_line("\"NOT_REPLICATED\"", &to, &new_master),
        "the client's error"
    );
    m.stop().await.expect("clean stop");
}

/// Valkey 9's `+failover` trap: a user without it fails every switchover, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_failover_a_switchover_is_refused_with_the_rule_to_add() {
    let (trio, scene, m) = manager_without("+failover", "redis_acl_no_failover").await;
    scene.wait_published(DEADLINE, "published", 2).await;
    let client = scene.client().await;
    let (from, to) = (trio.node(0).node_addr(), trio.node(1).node_addr());

    match client.failover(Some(&to), DEADLINE).await {
        Err(FailoverError::Refused(reason)) => assert_eq!(
            reason,
            format!("the promotion of {to} failed; see the manager's log")
        ),
        other => panic!("not refused: {other:?}"),
    }
    let lines = wait_logged(
        &["-switchover-failed", &from.to_string()],
        "the switchover's failure logged",
    );
    let want = doc_line("-switchover-failed", &from, &to);
    every_line_is(&lines, &want);
    assert_eq!(
        scene.topology().await.and_then(|t| t.master),
        Some(from.clone()),
        "the master stays"
    );
    assert_eq!(rule_asked(&want), "+failover");

    // The rule it asks for is enough.
    add_rule(&trio, MANAGER, &rule_asked(&want));
    let got = client
        .failover(Some(&to), DEADLINE)
        .await
        .expect("the switchover is carried out once the rule is added");
    assert_eq!(got, to);
    m.stop().await.expect("clean stop");
}

/// Without `+replicaof` a crash failover cannot promote; the line says what to add, and
/// adding it lets the failover complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_replicaof_a_crash_failover_waits_for_the_rule_it_names() {
    let (trio, scene, m) = manager_without("+replicaof", "redis_acl_no_replicaof").await;
    let before = scene.wait_published(DEADLINE, "published", 2).await;
    let from = trio.node(0).node_addr();
    trio.node(0).kill9();

    let lines = wait_logged(
        &["-failover-abort-promote-failed", &from.to_string()],
        "the failed promotion logged",
    );
    let to: NodeAddr = lines[0]
        .split_whitespace()
        .nth(1)
        .and_then(|a| a.strip_suffix(':'))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {:?}", lines[0]));
    assert!(to == trio.node(1).node_addr() || to == trio.node(2).node_addr());
    let want = doc_line("-failover-abort-promote-failed", &from, &to);
    every_line_is(&lines, &want);
    assert_eq!(rule_asked(&want), "+replicaof");
    // Retried once a second, not as fast as ZooKeeper answers (each attempt writes its
    // intent there and logs this line).
    let first = logged(&["-failover-abort-promote-failed", &from.to_string()]).len();
    for_a_while(Duration::from_secs(3), Duration::from_millis(50), || {
        let retries = logged(&["-failover-abort-promote-failed", &from.to_string()]).len() - first;
        async move { assert!(retries <= 5, "{retries} failed attempts within 3 s") }
    })
    .await;

    add_rule(&trio, MANAGER, &rule_asked(&want));
    let t = scene
        .wait_new_master(DEADLINE, "the failover once the rule is added", &before)
        .await;
    assert_eq!(t.master, Some(to));
    m.stop().await.expect("clean stop");
}

/// Without `+info` the manager refuses to start, with the line the page shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_info_the_manager_does_not_start_and_says_what_to_add() {
    capture_logs();
    let users = documented_users();
    let manager = users[MANAGER].without("+info");
    let args = manager.server_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let node = RedisGroup::start(0, &args);
    let scene = Scene::new("redis_acl_no_info").await;
    let m = scene.manager(&node.addrs(), |c| log_in(c, &manager));
    let error = format!("redis_node_manager: {}", m.stop_after_start_error().await);
    let addr = node.node(0).node_addr();
    assert_eq!(
        error,
        doc_line("redis_node_manager: Redis node", &addr, &addr)
    );
}
