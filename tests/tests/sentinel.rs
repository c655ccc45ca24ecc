//! The Sentinel protocol endpoint (`--sentinel-addr`) with unmodified Sentinel clients: the
//! real `redis-cli`, the `redis` crate's Sentinel client and raw RESP subscribers, before and
//! after a kill -9 failover; replies and errors shaped like Sentinel's; AUTH; a standby
//! manager answers too.

use std::time::{Duration, Instant};

use redis::sentinel::{Sentinel, SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, Value};
use redis_failover_manager::config::Cli;
use redis_failover_tests::manager::managed;
use redis_failover_tests::resp::{entries, fields, redis_cli, show, Raw};
use redis_failover_tests::{free_port, wait_until_async, RedisGroup};

const DEADLINE: Duration = Duration::from_secs(30);
/// Bound on one client step (connect, lookup, command) against the endpoint or Redis.
const STEP: Duration = Duration::from_secs(5);

fn listen_on(c: &mut Cli, port: u16) {
    c.sentinel_addr = Some(format!("127.0.0.1:{port}").parse().expect("address"));
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking test step panicked")
}

/// Waits until `redis-cli SENTINEL get-master-addr-by-name mymaster` on `port` names
/// 127.0.0.1:`master` (the endpoint answers from the manager's snapshot, which follows
/// ZooKeeper by a moment). `auth` is redis-cli's `-a` password.
async fn wait_master(port: u16, auth: Option<&'static str>, master: u16) {
    wait_until_async(DEADLINE, "redis-cli gets the master", || async move {
        let out = blocking(move || {
            let mut args = Vec::new();
            if let Some(p) = auth {
                args.extend(["-a", p, "--no-auth-warning"]);
            }
            args.extend(["SENTINEL", "get-master-addr-by-name", "mymaster"]);
            redis_cli(port, &args)
        })
        .await;
        (out == format!("127.0.0.1\n{master}\n")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_and_subscribers_follow_a_kill9_failover() {
    let trio = RedisGroup::trio();
    let port = free_port();
    let (m, scene, _) = managed(&trio, "sentinel_events", |c| listen_on(c, port)).await;
    let old = trio.node(0).port();
    let addr_by_name = |group: &'static str| async move {
        blocking(move || redis_cli(port, &["SENTINEL", "get-master-addr-by-name", group])).await
    };
    wait_master(port, None, old).await;
    assert_eq!(
        addr_by_name("nope").await.trim(),
        "",
        "nil for an unknown group"
    );

    let (sub, psub) = blocking(move || {
        let mut sub = Raw::connect(port);
        assert_eq!(
            sub.text(&["SUBSCRIBE", "+switch-master"]),
            "[subscribe, +switch-master, 1]"
        );
        let mut psub = Raw::connect(port);
        assert_eq!(sub.text(&["PING"]), "[pong, ]", "PING while subscribed");
        assert!(
            sub.text(&["SENTINEL", "MASTERS"])
                .starts_with("ERR Can't execute 'sentinel'"),
            "only pub/sub commands while subscribed"
        );
        assert_eq!(psub.text(&["PSUBSCRIBE", "*"]), "[psubscribe, *, 1]");
        (sub, psub)
    })
    .await;

    trio.node(0).kill9();
    let t = scene
        .wait(DEADLINE, "a new master", |t| {
            t.master.as_ref().is_some_and(|m| m.port != old)
        })
        .await;
    let new = t.master.expect("master").port;
    let switch = format!("mymaster 127.0.0.1 {old} 127.0.0.1 {new}");
    let (sub, psub, psub_seen) = blocking({
        let switch = switch.clone();
        move || {
            let (mut sub, mut psub) = (sub, psub);
            let got = sub.read_until("+switch-master");
            assert_eq!(got, format!("[message, +switch-master, {switch}]"));
            let sdown = psub.read_until(&format!("+sdown, master mymaster 127.0.0.1 {old}"));
            let switched = psub.read_until(&switch);
            (sub, psub, vec![sdown, switched])
        }
    })
    .await;
    assert_eq!(
        psub_seen,
        [
            format!("[pmessage, *, +sdown, master mymaster 127.0.0.1 {old}]"),
            format!("[pmessage, *, +switch-master, {switch}]"),
        ]
    );
    drop((sub, psub));

    wait_master(port, None, new).await;
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_crate_sentinel_client_follows_a_failover() {
    let trio = RedisGroup::trio();
    let port = free_port();
    let (m, scene, _) = managed(&trio, "sentinel_crate", |c| listen_on(c, port)).await;
    wait_master(port, None, trio.node(0).port()).await;
    let url = format!("redis://127.0.0.1:{port}/");
    let mut master = SentinelClient::build(
        vec![url.clone()],
        "mymaster",
        None,
        SentinelServerType::Master,
    )
    .expect("sentinel client");
    let mut conn = tokio::time::timeout(STEP, master.get_async_connection())
        .await
        .expect("master lookup in time")
        .expect("the master through the endpoint");
    redis::cmd("SET")
        .arg("k")
        .arg("v1")
        .query_async::<()>(&mut conn)
        .await
        .expect("SET on the master");
    assert_eq!(
        trio.node(0).get("k").as_deref(),
        Some("v1"),
        "node 0 took it"
    );

    let mut sentinel = Sentinel::build(vec![url.clone()]).expect("sentinel");
    let replicas = tokio::time::timeout(STEP, sentinel.async_get_replica_clients("mymaster", None))
        .await
        .expect("replica lookup in time")
        .expect("replicas through the endpoint");
    assert_eq!(replicas.len(), 2);
    let replica = tokio::time::timeout(STEP, sentinel.async_replica_for("mymaster", None))
        .await
        .expect("in time")
        .expect("a replica");
    let mut rconn = tokio::time::timeout(STEP, replica.get_multiplexed_async_connection())
        .await
        .expect("in time")
        .expect("replica connection");
    let role: redis::Role = redis::cmd("ROLE")
        .query_async(&mut rconn)
        .await
        .expect("ROLE");
    assert!(matches!(role, redis::Role::Replica { .. }), "{role:?}");

    trio.node(0).kill9();
    let t = scene
        .wait(DEADLINE, "a new master", |t| {
            t.master
                .as_ref()
                .is_some_and(|m| m.port != trio.node(0).port())
        })
        .await;
    let new = t.master.expect("master");
    // A Sentinel client looks the master up again after an error; it must find the new one.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = async {
            let mut c = tokio::time::timeout(STEP, master.get_async_connection())
                .await
                .map_err(|_| "lookup timed out".to_string())?
                .map_err(|e| format!("lookup: {e}"))?;
            tokio::time::timeout(
                STEP,
                redis::cmd("SET")
                    .arg("k")
                    .arg("v2")
                    .query_async::<()>(&mut c),
            )
            .await
            .map_err(|_| "SET timed out".to_string())?
            .map_err(|e| format!("SET: {e}"))
        };
        let e = match attempt.await {
            Ok(()) => break,
            Err(e) => e,
        };
        assert!(
            Instant::now() < deadline,
            "no write through the Sentinel client after the failover: {e}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let new_node = trio
        .nodes()
        .iter()
        .find(|n| n.port() == new.port)
        .expect("new master is a trio node");
    assert_eq!(
        new_node.get("k").as_deref(),
        Some("v2"),
        "the write went to {new}"
    );

    // The dead master is not offered as a replica: one replica is left.
    wait_until_async(DEADLINE, "one replica after the failover", || async {
        let mut sentinel = Sentinel::build(vec![url.clone()]).ok()?;
        let r = tokio::time::timeout(STEP, sentinel.async_get_replica_clients("mymaster", None))
            .await
            .ok()?
            .ok()?;
        (r.len() == 1).then_some(())
    })
    .await;
    m.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_answer_like_sentinel_on_leader_and_standby() {
    let trio = RedisGroup::trio();
    let (pa, pb) = (free_port(), free_port());
    let (a, scene, _) = managed(&trio, "sentinel_cmds", |c| {
        listen_on(c, pa);
        c.manager_name = Some("a".into());
    })
    .await;
    let b = scene.named_manager(&trio, "b", |c| listen_on(c, pb));
    let ports = trio.ports();
    let (p0, p1, p2) = (ports[0], ports[1], ports[2]);

    // The standby answers too, from the same published topology.
    wait_master(pb, None, p0).await;
    wait_master(pa, None, p0).await;
    // Both managers' views are published: each lists the other, quorum can be reached.
    // Each lists the other at the Sentinel address it announces, so that clients that
    // discover sentinels through SENTINEL SENTINELS can reach it.
    for (port, other, other_port) in [(pa, "-b", pb), (pb, "-a", pa)] {
        wait_until_async(DEADLINE, "the other manager listed", || async move {
            blocking(move || {
                let mut r = Raw::connect(port);
                let others = entries(&r.cmd(&["SENTINEL", "SENTINELS", "mymaster"]));
                let listed = others.len() == 1
                    && others[0]["name"].ends_with(other)
                    && others[0]["flags"] == "sentinel"
                    && others[0]["ip"] == "127.0.0.1"
                    && others[0]["port"] == other_port.to_string();
                let quorum = r.text(&["SENTINEL", "CKQUORUM", "mymaster"]);
                (listed && quorum.starts_with("OK 2 usable Sentinels")).then_some(())
            })
            .await
        })
        .await;
    }

    blocking(move || {
        let mut r = Raw::connect(pa);
        assert_eq!(r.text(&["PING"]), "PONG");
        assert_eq!(r.text(&["ping", "hi"]), "hi");
        assert_eq!(r.text(&["ROLE"]), "[sentinel, [mymaster]]");
        assert!(r.text(&["SENTINEL", "MYID"]).ends_with("-a"));

        let masters = entries(&r.cmd(&["SENTINEL", "MASTERS"]));
        assert_eq!(masters.len(), 1);
        let m = &masters[0];
        for (k, v) in [
            ("name", "mymaster".to_string()),
            ("ip", "127.0.0.1".into()),
            ("port", p0.to_string()),
            ("flags", "master".into()),
            ("role-reported", "master".into()),
            ("num-slaves", "2".into()),
            ("num-other-sentinels", "1".into()),
            ("quorum", "1".into()),
            ("config-epoch", "0".into()),
            ("down-after-milliseconds", "2000".into()),
        ] {
            assert_eq!(m.get(k), Some(&v), "{k} in {m:?}");
        }
        for k in [
            "runid",
            "last-ok-ping-reply",
            "failover-timeout",
            "parallel-syncs",
        ] {
            assert!(m.contains_key(k), "{k} in {m:?}");
        }
        assert_eq!(
            &fields(&r.cmd(&["SENTINEL", "MASTER", "mymaster"]))["port"],
            &p0.to_string()
        );

        for sub in ["REPLICAS", "SLAVES"] {
            let replicas = entries(&r.cmd(&["SENTINEL", sub, "mymaster"]));
            let mut got: Vec<String> = replicas.iter().map(|x| x["port"].clone()).collect();
            got.sort();
            let mut want = vec![p1.to_string(), p2.to_string()];
            want.sort();
            assert_eq!(got, want, "{sub}");
            for x in &replicas {
                assert_eq!(x["flags"], "slave", "{x:?}");
                assert_eq!(x["name"], format!("127.0.0.1:{}", x["port"]));
                assert_eq!(x["master-link-status"], "ok");
                assert_eq!(
                    (x["master-host"].as_str(), x["master-port"].clone()),
                    ("127.0.0.1", p0.to_string())
                );
                assert!(x.contains_key("slave-repl-offset") && x.contains_key("slave-priority"));
            }
        }
        assert_eq!(
            r.text(&[
                "SENTINEL",
                "IS-MASTER-DOWN-BY-ADDR",
                "127.0.0.1",
                &p0.to_string(),
                "0",
                "*"
            ]),
            "[0, *, 0]"
        );
        let info = r.text(&["INFO"]);
        for line in [
            "redis_mode:sentinel",
            &format!("tcp_port:{pa}"),
            "sentinel_masters:1",
            "sentinel_tilt:0",
            &format!("master0:name=mymaster,status=ok,address=127.0.0.1:{p0},slaves=2,sentinels=2"),
        ] {
            assert!(info.contains(line), "{line} in {info}");
        }
        let section = r.text(&["INFO", "sentinel"]);
        assert!(
            section.starts_with("# Sentinel") && !section.contains("# Server"),
            "{section}"
        );
        assert_eq!(r.text(&["CLIENT", "SETNAME", "tester"]), "OK");
        assert_eq!(r.text(&["CLIENT", "GETNAME"]), "tester");
        assert!(matches!(r.cmd(&["CLIENT", "ID"]), Value::Int(_)));
        assert_eq!(r.text(&["CLIENT", "SETINFO", "LIB-NAME", "x"]), "OK");
        assert_eq!(
            r.text(&["HELLO", "2"]),
            format!(
                "[server, redis, version, 7.0.0, proto, 2, id, {}, mode, sentinel, modules, []]",
                show(&r.cmd(&["CLIENT", "ID"]))
            )
        );
        // RESP3 when asked (Lettuce and go-redis ask by default): HELLO and a master's fields
        // as maps, the masters as an array of maps, a subscription as a push.
        let mut r3 = Raw::connect(pa);
        let has = |v: &Value, key: &str, want: &str| {
            matches!(v, Value::Map(kv) if kv.iter().any(|(k, v)| show(k) == key && show(v) == want))
        };
        let hello = r3.cmd(&["HELLO", "3"]);
        assert!(has(&hello, "proto", "3"), "{hello:?}");
        let master = r3.cmd(&["SENTINEL", "MASTER", "mymaster"]);
        assert!(has(&master, "port", &p0.to_string()), "{master:?}");
        let masters = r3.cmd(&["SENTINEL", "MASTERS"]);
        assert!(
            matches!(&masters, Value::Array(a) if a.first().is_some_and(|m| has(m, "name", "mymaster"))),
            "{masters:?}"
        );
        assert_eq!(
            r3.text(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]),
            format!("[127.0.0.1, {p0}]")
        );
        let sub = r3.cmd(&["SUBSCRIBE", "+switch-master"]);
        assert!(matches!(sub, Value::Push { .. }), "{sub:?}");
        assert_eq!(r.text(&["HELLO", "4"]), "NOPROTO unsupported protocol version");

        // Errors, as Redis words them.
        assert_eq!(
            r.text(&["GET", "x"]).trim_end(),
            "ERR unknown command 'GET', with args beginning with: 'x'"
        );
        let no_such = "ERR No such master with that name";
        for (args, want) in [
            (&["SENTINEL", "MASTER", "nope"][..], no_such),
            (&["SENTINEL", "REPLICAS", "nope"], no_such),
            (&["SENTINEL", "FAILOVER", "nope"], no_such),
            (&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "nope"], "nil"),
            (
                &["SENTINEL", "MASTER"],
                "ERR wrong number of arguments for 'sentinel|master' command",
            ),
            (
                &["SENTINEL"],
                "ERR wrong number of arguments for 'sentinel' command",
            ),
            (
                &["SENTINEL", "FOO"],
                "ERR unknown subcommand 'FOO'. Try SENTINEL HELP.",
            ),
        ] {
            assert_eq!(r.text(args), want, "{args:?}");
        }
        assert!(r
            .text(&["SENTINEL", "MONITOR", "x", "h", "1", "1"])
            .contains("not supported"));
        assert_eq!(r.text(&["QUIT"]), "OK");
        assert!(
            r.try_read().is_err(),
            "the connection is closed after QUIT"
        );
    })
    .await;

    // SENTINEL FAILOVER, here through the standby: a switchover the leader carries out.
    let reply =
        blocking(move || Raw::connect(pb).text(&["SENTINEL", "FAILOVER", "mymaster"])).await;
    assert_eq!(reply, "OK");
    let t = scene
        .wait(DEADLINE, "the switchover", |t| {
            t.master.as_ref().is_some_and(|m| m.port != p0) && t.slaves.len() == 2
        })
        .await;
    let new = t.master.expect("master").port;
    wait_master(pa, None, new).await;
    wait_master(pb, None, new).await;
    b.stop().await.expect("stop b");
    a.stop().await.expect("stop a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_is_required_when_set() {
    let solo = RedisGroup::start(0, &[]);
    let port = free_port();
    let (m, _scene, _) = managed(&solo, "sentinel_auth", |c| {
        listen_on(c, port);
        c.sentinel_password = Some("s3cret".parse().expect("secret"));
    })
    .await;
    let p0 = solo.node(0).port();
    wait_master(port, Some("s3cret"), p0).await;

    blocking(move || {
        let mut r = Raw::connect(port);
        assert_eq!(r.text(&["PING"]), "NOAUTH Authentication required.");
        assert_eq!(
            r.text(&["SENTINEL", "MASTERS"]),
            "NOAUTH Authentication required."
        );
        assert!(r
            .text(&["HELLO", "2"])
            .starts_with("NOAUTH HELLO must be called"));
        let wrong = "WRONGPASS invalid username-password pair or user is disabled.";
        assert_eq!(r.text(&["AUTH", "nope"]), wrong);
        assert_eq!(r.text(&["AUTH", "default", "nope"]), wrong);
        assert_eq!(r.text(&["AUTH", "someone", "s3cret"]), wrong);
        assert_eq!(r.text(&["PING"]), "NOAUTH Authentication required.");
        assert_eq!(r.text(&["AUTH", "s3cret"]), "OK");
        assert_eq!(r.text(&["PING"]), "PONG");
        // No replica: nothing to fail over to.
        assert_eq!(
            r.text(&["SENTINEL", "FAILOVER", "mymaster"]),
            "NOGOODSLAVE No suitable replica to promote"
        );

        let mut h = Raw::connect(port);
        assert_eq!(h.text(&["HELLO", "2", "AUTH", "default", "nope"]), wrong);
        assert!(h
            .text(&["HELLO", "2", "AUTH", "default", "s3cret"])
            .contains("sentinel"));
        assert_eq!(h.text(&["ROLE"]), "[sentinel, [mymaster]]");
        // Valkey 8's names for the same commands.
        assert_eq!(
            h.text(&["SENTINEL", "GET-PRIMARY-ADDR-BY-NAME", "mymaster"]),
            h.text(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"])
        );
        // (The fields before the ages, which move between two calls.)
        let head = |t: String| t.split(", runid").next().unwrap_or_default().to_string();
        assert_eq!(
            head(h.text(&["SENTINEL", "PRIMARY", "mymaster"])),
            head(h.text(&["SENTINEL", "MASTER", "mymaster"]))
        );
        assert_eq!(
            head(h.text(&["SENTINEL", "PRIMARIES"])),
            head(h.text(&["SENTINEL", "MASTERS"]))
        );
        let down = ["127.0.0.1", "1", "0", "*"];
        assert_eq!(
            h.text(&[&["SENTINEL", "IS-PRIMARY-DOWN-BY-ADDR"][..], &down].concat()),
            h.text(&[&["SENTINEL", "IS-MASTER-DOWN-BY-ADDR"][..], &down].concat())
        );

        assert_eq!(
            redis_cli(port, &["SENTINEL", "get-master-addr-by-name", "mymaster"]).trim(),
            "NOAUTH Authentication required."
        );
        assert_eq!(
            redis_cli(
                port,
                &[
                    "-a",
                    "s3cret",
                    "--no-auth-warning",
                    "SENTINEL",
                    "get-master-addr-by-name",
                    "mymaster"
                ]
            ),
            format!("127.0.0.1\n{p0}\n")
        );
    })
    .await;

    // The redis crate's Sentinel client with and without the password.
    let builder = || {
        SentinelClientBuilder::new(
            [ConnectionAddr::Tcp("127.0.0.1".into(), port)],
            "mymaster",
            SentinelServerType::Master,
        )
        .expect("builder")
    };
    let mut with = builder()
        .set_client_to_sentinel_password("s3cret")
        .build()
        .expect("client");
    let mut conn = tokio::time::timeout(STEP, with.get_async_connection())
        .await
        .expect("in time")
        .expect("the master, with the password");
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .expect("PING the master");
    assert_eq!(pong, "PONG");
    let mut without = builder().build().expect("client");
    let refused = tokio::time::timeout(STEP, without.get_async_connection())
        .await
        .expect("in time");
    assert!(refused.is_err(), "no master without the password");
    m.stop().await.expect("clean stop");
}

/// Reads what a `PSUBSCRIBE *` connection receives until a message contains `needle`;
/// returns every message read, that one last. Panics (listing them) at the deadline.
fn read_events_until(psub: &mut Raw, needle: &str) -> Vec<String> {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let v = show(&psub.read());
        let found = v.contains(needle);
        seen.push(v);
        if found {
            return seen;
        }
    }
    panic!("no message with {needle:?}; got {seen:?}");
}

/// A replica re-pointed at a new master is not down: neither a planned switchover nor a
/// kill -9 failover reports `+sdown` for the healthy replica (or, in a switchover, for the
/// demoted master); only the killed master is reported down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_and_a_failover_report_only_the_killed_node_down() {
    let trio = RedisGroup::trio();
    let port = free_port();
    let (m, scene, _) = managed(&trio, "sentinel_no_sdown", |c| listen_on(c, port)).await;
    let ports = trio.ports();
    wait_master(port, None, ports[0]).await;
    let psub = blocking(move || {
        let mut psub = Raw::connect(port);
        assert_eq!(psub.text(&["PSUBSCRIBE", "*"]), "[psubscribe, *, 1]");
        psub
    })
    .await;

    // 1. A planned switchover to node 1, as `redis_node_manager failover --to` asks for it.
    let target = trio.node(1).node_addr();
    let paths = redis_failover_client::ZnodePaths::new(&scene.root).expect("root");
    let done = redis_failover_manager::request_failover(
        &scene.connect,
        &Default::default(),
        &paths,
        Some(&target),
        DEADLINE,
    )
    .await
    .expect("the switchover is carried out");
    assert_eq!(done, format!("done: the master is now {target}"));
    scene
        .wait(DEADLINE, "both replicas of node 1 listed", |t| {
            t.master.as_ref() == Some(&target) && t.slaves.len() == 2
        })
        .await;

    // 2. kill -9 of the new master; 3. it comes back, and rejoins as a replica: its
    // `-sdown` is the last event of the story.
    trio.node(1).kill9();
    let t = scene
        .wait(DEADLINE, "a new master after the kill", |t| {
            t.master.as_ref().is_some_and(|m| m.port != ports[1])
        })
        .await;
    let survivor = t.master.expect("master").port;
    trio.node(1).restart(None);
    scene
        .wait(DEADLINE, "the killed node back as a replica", |t| {
            t.slaves.len() == 2 && t.unavailable.is_empty()
        })
        .await;
    let killed = format!("slave 127.0.0.1:{} ", ports[1]);
    let seen = blocking(move || {
        let mut psub = psub;
        read_events_until(&mut psub, &format!("-sdown, {killed}"))
    })
    .await;
    eprintln!("events: {seen:#?}");

    let switch =
        |from: u16, to: u16| format!("+switch-master, mymaster 127.0.0.1 {from} 127.0.0.1 {to}");
    let at = |needle: &str| {
        seen.iter()
            .position(|e| e.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {seen:#?}"))
    };
    let switched = at(&switch(ports[0], ports[1]));
    let killed_down = at(&format!("+sdown, master mymaster 127.0.0.1 {}", ports[1]));
    at(&switch(ports[1], survivor));
    assert!(switched < killed_down, "{seen:#?}");
    // Every `+sdown` is about the killed node.
    let sdowns: Vec<&String> = seen.iter().filter(|e| e.contains("+sdown")).collect();
    // The instance is what comes before ` @ <master>`: `... 127.0.0.1 <port>`.
    let about_killed = |e: &str| {
        let instance = e.split(" @ ").next().unwrap_or(e).trim_end_matches(']');
        instance.ends_with(&format!("127.0.0.1 {}", ports[1]))
    };
    assert!(
        sdowns.iter().all(|e| about_killed(e)),
        "+sdown for a node that was never down: {seen:#?}"
    );
    m.stop().await.expect("clean stop");
}
