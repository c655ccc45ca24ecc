//! Flags, file and defaults merged and validated; every bad input named in one line.

use super::*;
use clap::Parser;

fn cli(args: &[&str]) -> Cli {
    let mut v = vec!["redis_node_manager"];
    v.extend_from_slice(args);
    Cli::try_parse_from(v).expect("flags parse")
}

fn load(args: &[&str], toml_text: &str) -> Result<Config, String> {
    let file: FileConfig = toml::from_str(toml_text).map_err(|e| e.message().to_string())?;
    Config::merge(cli(args), file).map_err(|e| e.0)
}

#[test]
fn flags_alone() {
    let c = load(
        &[
            "-n",
            "127.0.0.1:7000,127.0.0.1:7001",
            "-z",
            "127.0.0.1:2181",
        ],
        "",
    )
    .expect("valid");
    assert_eq!(c.groups.len(), 1);
    assert_eq!(c.groups[0].name, "mymaster");
    assert_eq!(c.groups[0].paths.root(), "/redis_failover");
    assert_eq!(c.groups[0].nodes.len(), 2);
    assert_eq!(c.max_failures, 3);
    assert_eq!(c.down_after, Duration::from_millis(2000));
}

#[test]
fn flags_override_the_file() {
    let c = load(
        &["-z", "z:1", "--max-failures", "5", "-p", "s3cret"],
        "nodes = [\"h:1\", \"h:2\"]\nmax_failures = 2\ndown_after_ms = 700\npassword = \"file\"\n",
    )
    .expect("valid");
    assert_eq!(c.max_failures, 5);
    assert_eq!(c.down_after, Duration::from_millis(700));
    assert_eq!(c.auth.password.as_ref().map(Secret::expose), Some("s3cret"));
    assert!(
        !format!("{c:?}").contains("s3cret"),
        "password leaked in Debug"
    );
}

#[test]
fn several_groups_from_the_file() {
    let c = load(
        &[],
        r#"
zkservers = "z:1,z:2/chroot"
[[groups]]
name = "a"
nodes = "h:1,h:2"
znode_path = "/rf/a"
[[groups]]
name = "b"
nodes = ["h:3"]
znode_path = "/rf/b"
"#,
    )
    .expect("valid");
    let names: Vec<_> = c.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(c.groups[1].paths.nodes(), "/rf/b/nodes");
}

#[test]
fn bad_input_names_the_culprit() {
    // What is missing or malformed in the addresses: a whole command line (split on
    // spaces) and the error's words.
    let addresses = [
        ("-n h:1", "no ZooKeeper servers"),
        ("-z z:1", "no Redis nodes"),
        ("-z z:1 -n h", "-n/--nodes: bad address \"h\": no port"),
        (
            "-z z:1 -n h:1,h:99999",
            "-n/--nodes: bad address \"h:99999\"",
        ),
        ("-z z:1 -n h:1,h:1", "-n/--nodes: duplicate address h:1"),
        ("-z z:1 -n ,", "-n/--nodes: empty address list"),
        ("-z nope -n h:1", "-z/--zkservers: bad address \"nope\""),
    ];
    // One flag added to a valid command line.
    let flags = [
        (
            "--znode-path rf",
            "--znode-path: znode path \"rf\" must start with '/'",
        ),
        ("--znode-path /zookeeper", "is reserved"),
        ("--max-failures 0", "--max-failures must be at least 1"),
        ("--down-after-ms 5", "--down-after-ms 5 is out of range"),
        (
            "--zk-session-timeout-ms 10",
            "--zk-session-timeout-ms 10 is out of range",
        ),
        ("--username u", "--username needs -p/--password"),
        ("--threads 0", "--threads 0 is out of range (1 to 256)"),
    ];
    // A config file whose second group clashes with the one given by the flags, and a
    // setting checked as its flag is.
    let files = [
        ("threads = 0\n", "--threads 0 is out of range (1 to 256)"),
        (
            "[[groups]]\nname=\"b\"\nnodes=\"h:1\"\nznode_path=\"/b\"\n",
            "node h:1 is in both groups \"mymaster\" and \"b\"",
        ),
        (
            "[[groups]]\nname=\"b\"\nnodes=\"h:2\"\nznode_path=\"/redis_failover\"\n",
            "share znode path /redis_failover",
        ),
    ];
    let valid = "-z z:1 -n h:1";
    let cases = (addresses
        .iter()
        .map(|&(line, want)| (line.to_string(), "", want)))
    .chain(
        flags
            .iter()
            .map(|&(flag, want)| (format!("{valid} {flag}"), "", want)),
    )
    .chain(
        files
            .iter()
            .map(|&(file, want)| (valid.to_string(), file, want)),
    );
    for (line, file, want) in cases {
        let args: Vec<&str> = line.split(' ').collect();
        let got = load(&args, file).expect_err(want);
        assert!(got.contains(want), "{args:?}: got {got:?}, want {want:?}");
    }
}

#[test]
fn a_mistyped_password_is_not_echoed() {
    let e = toml::from_str::<FileConfig>("password = 9876543210\n").expect_err("not a string");
    let msg = e.message();
    assert!(msg.contains("password must be a string"), "{msg}");
    assert!(!e.to_string().contains("9876543210") || !msg.contains("9876543210"));
    assert!(!msg.contains("9876543210"), "{msg}");
}

#[test]
fn unknown_file_keys_are_refused() {
    let e = toml::from_str::<FileConfig>("max_failure = 3\n").expect_err("typo");
    let msg = e.message();
    assert!(msg.contains("unknown field `max_failure`"), "{msg}");
}

#[test]
fn config_file_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("rfcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join("bad.toml");
    std::fs::write(&path, "zkservers = \"z:1\"\nnodez = \"h:1\"\n").expect("write");
    let e = Config::load(cli(&["-C", path.to_str().expect("utf8")])).expect_err("bad key");
    assert!(e.0.contains("bad.toml") && e.0.contains("nodez"), "{}", e.0);
    let e = Config::load(cli(&["-C", "/nonexistent/x.toml"])).expect_err("missing");
    assert!(
        e.0.contains("cannot read config file /nonexistent/x.toml"),
        "{}",
        e.0
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn synchronous_replicas_default_to_one_and_a_given_number_must_fit() {
    let z = ["-z", "z:1"];
    let c = load(&[&z[..], &["-n", "h:1"]].concat(), "").expect("one node is fine");
    assert_eq!(
        c.synchronous_replicas, 1,
        "the default; run.rs caps it per group"
    );
    let c = load(
        &[&z[..], &["-n", "h:1,h:2", "--synchronous-replicas", "0"]].concat(),
        "",
    )
    .expect("0 turns it off");
    assert_eq!(c.synchronous_replicas, 0);
    let e = load(
        &[&z[..], &["-n", "h:1,h:2", "--synchronous-replicas", "2"]].concat(),
        "",
    )
    .expect_err("two of one replica");
    assert!(
        e.contains("--synchronous-replicas 2 is more than the 1 replicas of group"),
        "{e}"
    );
}

#[test]
fn zookeeper_tls_flags_name_their_mistakes() {
    let files = redis_failover_tests::tls::TlsFiles::generate();
    let (ca, cert, key) = (
        files.ca.display().to_string(),
        files.client_cert.display().to_string(),
        files.client_key.display().to_string(),
    );
    let base = ["-n", "127.0.0.1:7000", "-z", "127.0.0.1:2281"];
    let with = |more: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(more);
        load(&args, "")
    };
    let c = with(&["--zk-tls-ca-file", &ca]).expect("a CA alone");
    assert!(c.zk_access.tls.is_some() && c.auth.tls.is_none());
    assert!(with(&[]).expect("plain").zk_access.tls.is_none());
    let c = load(
        &base,
        &format!("zk_tls_ca_file = {ca:?}\nzk_tls_cert_file = {cert:?}\nzk_tls_key_file = {key:?}"),
    )
    .expect("from the file");
    assert!(c.zk_access.tls.is_some());
    let missing = files.dir().join("nope.crt").display().to_string();
    let table: &[(&[&str], &str)] = &[
        (&["--zk-tls-ca-file", &missing], "--zk-tls-ca-file"),
        (&["--zk-tls-ca-file", &key], "--zk-tls-ca-file"),
        (
            &["--zk-tls-cert-file", &cert, "--zk-tls-key-file", &key],
            "--zk-tls-cert-file and --zk-tls-key-file need --zk-tls-ca-file",
        ),
        (
            &["--zk-tls-ca-file", &ca, "--zk-tls-cert-file", &cert],
            "--zk-tls-cert-file and --zk-tls-key-file go together",
        ),
        (
            &[
                "--zk-tls-ca-file",
                &ca,
                "--zk-tls-cert-file",
                &cert,
                "--zk-tls-key-file",
                &ca,
            ],
            "--zk-tls-key-file",
        ),
    ];
    for (args, want) in table {
        let e = with(args).expect_err(want);
        assert!(e.starts_with(want) && !e.contains('\n'), "{args:?}: {e}");
    }
    let e = load(
        &["-n", "127.0.0.1:7000", "-z", "tcp+tls://127.0.0.1:2281"],
        "",
    )
    .expect_err("a scheme");
    assert!(e.contains("--zk-tls-ca-file turns TLS on"), "{e}");
}

#[test]
fn groups_from_zookeeper_need_no_nodes() {
    let c = load(&["-z", "z:1", "--groups-from-zookeeper"], "").expect("valid");
    assert!(c.groups.is_empty());
    assert_eq!(c.groups_registry.as_deref(), Some("/redis_failover_groups"));
    let c = load(
        &["-z", "z:1", "-n", "h:1"],
        "groups_from_zookeeper = true\ngroups_znode = \"/reg\"\n",
    )
    .expect("valid");
    assert_eq!(
        (c.groups.len(), c.groups_registry.as_deref()),
        (1, Some("/reg"))
    );
    // Off by default: a registry path alone changes nothing.
    let c = load(&["-z", "z:1", "-n", "h:1", "--groups-znode", "/reg"], "").expect("valid");
    assert_eq!(c.groups_registry, None);
    let e = load(
        &[
            "-z",
            "z:1",
            "--groups-from-zookeeper",
            "--groups-znode",
            "reg",
        ],
        "",
    )
    .expect_err("relative path");
    assert_eq!(e, "--groups-znode: znode path \"reg\" must start with '/'");
}
