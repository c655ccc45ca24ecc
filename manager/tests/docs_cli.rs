//! The commands, flags and error lines README.md and docs/*.md show are the program's:
//! every `redis_node_manager [subcommand] --flag` is in its `--help`, the flags table is
//! `--help`'s (flags and env variables), the config keys are its flags; every error line
//! quoted under an `<!-- error: ... -->` marker is what the program prints when run with
//! those arguments; `$ redis_node_manager ...` lines in ```console blocks print what is shown
//! under them. (The Rust code of the guides is compiled as doc-tests of the client crate.)

mod common;

use common::{docs, none, repo, stdout_of, BIN};
use redis_failover_tests::free_port;

/// One `--help` page: its long and short flags with their env variables, and its subcommands.
struct Help {
    flags: Vec<(String, Option<String>)>,
    commands: Vec<String>,
}

fn parse_help(text: &str) -> Help {
    let mut flags = Vec::new();
    let mut commands = Vec::new();
    let mut in_commands = false;
    for line in text.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if !line.starts_with(' ') {
            in_commands = false;
        }
        let body = line.trim_start();
        if in_commands {
            if let Some(word) = body.split_whitespace().next() {
                commands.push(word.to_string());
            }
        } else if body.starts_with('-') {
            let env = line
                .split_once("[env: ")
                .map(|(_, e)| e.trim_end_matches(']').trim_end_matches('=').to_string());
            for word in body
                .split([' ', ','])
                .filter(|w| !w.is_empty())
                .take_while(|w| w.starts_with('-'))
            {
                flags.push((word.to_string(), env.clone()));
            }
        }
    }
    Help { flags, commands }
}

/// The help of the program and of each subcommand (name "" for the program).
fn helps() -> Vec<(String, Help)> {
    let main = parse_help(&stdout_of(&["--help"]));
    let mut all = Vec::new();
    for cmd in main.commands.iter().filter(|c| *c != "help") {
        let help = parse_help(&stdout_of(&[cmd, "--help"]));
        // A subcommand with its own subcommands (`group add`): each as "group add".
        for sub in help.commands.iter().filter(|c| *c != "help") {
            let text = stdout_of(&[cmd, sub, "--help"]);
            all.push((format!("{cmd} {sub}"), parse_help(&text)));
        }
        all.push((cmd.clone(), help));
    }
    all.insert(0, (String::new(), main));
    all
}

/// Every invocation of `redis_node_manager` the docs show (in a code block or a code span),
/// as its words after the program's name, up to a comment or a shell operator.
fn invocations(text: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for piece in text.split(['`', '\n']) {
        let Some(i) = piece.find("redis_node_manager ") else {
            continue;
        };
        // A command line starts with the program (`$ `, `./target/release/` allowed before it);
        // an error message quoted from it starts with `redis_node_manager: `,
        // `redis_node_manager status: ` or `redis_node_manager group add: `.
        let before = piece[..i].trim();
        let is_command = before.is_empty()
            || before == "$"
            || (before.ends_with('/') && !before.contains(char::is_whitespace));
        let words: Vec<String> = piece[i + "redis_node_manager ".len()..]
            .split_whitespace()
            .take_while(|w| !matches!(*w, "#" | "|" | "&" | "&&" | ";" | ">" | "2>&1"))
            .map(str::to_string)
            .collect();
        // (`redis_node_manager group add: ...` quotes a nested subcommand's error.)
        if is_command && !words.iter().take(2).any(|w| w.ends_with(':')) {
            found.push(words);
        }
    }
    found
}

/// Checks each shown invocation against the help: the subcommand exists, and each flag is
/// one of that subcommand's (or the program's) flags.
fn check_invocations(doc: &str, text: &str, helps: &[(String, Help)]) -> Vec<String> {
    let mut bad = Vec::new();
    for words in invocations(text) {
        let word = |i: usize| {
            words.get(i).filter(|w| {
                !w.starts_with('-')
                    && !w.starts_with('[')
                    && w.chars().all(|c| c.is_ascii_lowercase())
            })
        };
        let (cmd, rest) = match (word(0), word(1)) {
            (Some(w), Some(sub)) if helps.iter().any(|(n, _)| *n == format!("{w} {sub}")) => {
                (format!("{w} {sub}"), &words[2..])
            }
            (Some(w), _) => (w.clone(), &words[1..]),
            _ => (String::new(), &words[..]),
        };
        let Some((_, help)) = helps.iter().find(|(name, _)| *name == cmd) else {
            bad.push(format!(
                "{doc}: `redis_node_manager {}`: no subcommand {cmd}",
                words.join(" ")
            ));
            continue;
        };
        for w in rest {
            let flag = w
                .trim_start_matches('[')
                .split(['=', ']'])
                .next()
                .unwrap_or("");
            if flag.len() > 1 && flag.starts_with('-') && !help.flags.iter().any(|(f, _)| f == flag)
            {
                bad.push(format!(
                    "{doc}: `redis_node_manager {}`: no flag {flag} in `redis_node_manager {cmd} --help`",
                    words.join(" ")
                ));
            }
        }
    }
    bad
}

/// The flags table of docs/operations.md (`| -n, --nodes | REDIS_FAILOVER_NODES | ...`):
/// every flag and its env variable as `--help` gives them, and every flag of `--help` listed.
fn check_flags_table(text: &str, main: &Help) -> Vec<String> {
    let mut bad = Vec::new();
    let mut listed = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("| `-")) {
        let cells: Vec<&str> = line
            .split('|')
            .map(|c| c.trim().trim_matches('`'))
            .collect();
        let (flags, env) = (cells[1], cells[2]);
        if !env.starts_with("REDIS_FAILOVER_") {
            continue; // another table (events, Sentinel's channels)
        }
        for flag in flags.split(", ") {
            listed.push(flag.to_string());
            match main.flags.iter().find(|(f, _)| f == flag) {
                None => bad.push(format!("flags table: {flag} is not in --help")),
                Some((_, e)) if e.as_deref() != Some(env) => bad.push(format!(
                    "flags table: {flag} has env {env}, --help says {e:?}"
                )),
                Some(_) => {}
            }
        }
    }
    for (flag, _) in &main.flags {
        if !["-h", "--help", "-V", "--version"].contains(&flag.as_str()) && !listed.contains(flag) {
            bad.push(format!("flags table: {flag} from --help is missing"));
        }
    }
    bad
}

/// Every `redis_node_manager [subcommand] --flag` README.md and docs/*.md show exists in the
/// program's `--help`, every `--flag` docs/operations.md mentions is one of the program's,
/// and its flags table is `--help`'s (flags and env variables).
#[test]
fn docs_show_only_commands_and_flags_the_program_has() {
    let helps = helps();
    assert!(helps.len() >= 5, "parsed the subcommands from --help");
    assert!(helps[0].1.flags.len() > 20, "parsed the flags from --help");
    let mut bad = Vec::new();
    for (doc, text) in docs() {
        bad.extend(check_invocations(&doc, &text, &helps));
    }
    let ops = std::fs::read_to_string(repo().join("docs/operations.md")).expect("operations.md");
    bad.extend(check_flags_table(&ops, &helps[0].1));
    let known: Vec<&String> = helps
        .iter()
        .flat_map(|(_, h)| h.flags.iter().map(|(f, _)| f))
        .collect();
    // Not counted: the markers' set-up (`<!-- error: redis P: --requirepass x ... -->`) and the
    // quoted refusal of an unknown flag.
    let prose: String = ops
        .lines()
        .filter(|l| !l.starts_with("<!-- error:") && !l.contains("unexpected argument"))
        .collect::<Vec<_>>()
        .join("\n");
    for word in prose.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        if word.starts_with("--")
            && word[2..].starts_with(|c: char| c.is_ascii_lowercase())
            && !known.iter().any(|f| *f == word)
        {
            bad.push(format!(
                "docs/operations.md: {word} is not a flag of redis_node_manager"
            ));
        }
    }
    none(&bad, "the docs show flags or commands the program lacks");
}

#[test]
fn the_flag_check_sees_a_renamed_flag_and_subcommand() {
    let helps = helps();
    let doc = "```sh\nredis_node_manager -n h:1 --zk-servers z:1\n```\nand \
               `redis_node_manager stats -z z:1` and `redis_node_manager failover --to h:2`";
    let bad = check_invocations("x.md", doc, &helps);
    assert_eq!(bad.len(), 2, "{bad:#?}");
    let table = "| `--nodes` | `REDIS_FAILOVER_NODE` | – | x |\n| `-wait` | x | y | z |\n";
    assert!(check_flags_table(table, &helps[0].1).len() > 5);
}

/// One quoted error: `<!-- error: exit 2; closed 2181; args: -n ... -->` followed by a
/// ```text block with the line the program prints on stderr (`...` stands for any text).
/// Before `args:`, `;`-separated: `exit N`; `closed P Q` (free ports nothing listens on),
/// `not-redis P` (a port that answers with an SSH banner), `silent P` (accepts, never
/// answers), `redis P: ARGS` (a redis-server started with ARGS), `file NAME: CONTENT` (in the
/// working directory). Each P is replaced by a real port in the arguments and the line.
#[derive(Debug)]
struct QuotedError {
    exit: i32,
    /// Ports that must be closed: replaced by a free, closed port in the args and the line.
    closed: Vec<String>,
    /// Ports where something that is not Redis answers (it sends an SSH banner and closes).
    not_redis: Vec<String>,
    /// Ports that accept connections and never answer.
    silent: Vec<String>,
    /// Ports where a redis-server runs with these arguments: (port, args).
    redis: Vec<(String, Vec<String>)>,
    /// A file written into the working directory first: (name, content).
    file: Option<(String, String)>,
    args: Vec<String>,
    line: String,
}

fn quoted_errors(text: &str) -> Vec<QuotedError> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("<!-- error: ") {
        rest = &rest[i + "<!-- error: ".len()..];
        let end = rest.find(" -->").expect("an error marker ends with -->");
        let spec = &rest[..end];
        let block = rest[end..]
            .split_once("```text\n")
            .expect("an error marker is followed by a ```text block")
            .1;
        let line = block.lines().next().expect("the quoted line").to_string();
        let mut q = QuotedError {
            exit: 0,
            closed: Vec::new(),
            not_redis: Vec::new(),
            silent: Vec::new(),
            redis: Vec::new(),
            file: None,
            args: Vec::new(),
            line,
        };
        for part in spec.split("; ") {
            let (key, value) = part.split_once(' ').expect("key value");
            match key {
                "exit" => q.exit = value.parse().expect("exit code"),
                "closed" => q.closed = value.split(' ').map(str::to_string).collect(),
                "not-redis" => q.not_redis = value.split(' ').map(str::to_string).collect(),
                "silent" => q.silent = value.split(' ').map(str::to_string).collect(),
                "redis" => {
                    let (port, args) = value.split_once(": ").unwrap_or((value, ""));
                    let args = args.split_whitespace().map(str::to_string).collect();
                    q.redis.push((port.to_string(), args));
                }
                "file" => {
                    let (name, content) = value.split_once(": ").expect("file NAME: CONTENT");
                    q.file = Some((name.to_string(), content.to_string()));
                }
                "args:" => q.args = value.split(' ').map(str::to_string).collect(),
                other => panic!("unknown key {other:?} in error marker {spec:?}"),
            }
        }
        found.push(q);
    }
    found
}

/// Whether `actual` is `pattern`, where each `...` in the pattern stands for any text.
fn matches_pattern(pattern: &str, actual: &str) -> bool {
    let pieces: Vec<&str> = pattern.split("...").collect();
    let mut at = 0;
    for (k, piece) in pieces.iter().enumerate() {
        if k == 0 {
            if !actual.starts_with(piece) {
                return false;
            }
            at = piece.len();
        } else if k == pieces.len() - 1 {
            return actual.len() >= at + piece.len() && actual[at..].ends_with(piece);
        } else {
            match actual[at..].find(piece) {
                Some(j) => at += j + piece.len(),
                None => return false,
            }
        }
    }
    at == actual.len()
}

/// Runs the program as the marker says; returns the line of stderr that matches, or what
/// was printed instead.
fn run_quoted(q: &QuotedError) -> Result<(), String> {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut subst: Vec<(String, String)> = Vec::new();
    for p in &q.closed {
        subst.push((p.clone(), free_port().to_string()));
    }
    let mut listeners = Vec::new();
    for p in &q.not_redis {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        subst.push((p.clone(), l.local_addr().expect("addr").port().to_string()));
        listeners.push(std::thread::spawn(move || {
            for mut conn in l.incoming().take(8).flatten() {
                let _ = conn.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
            }
        }));
    }
    // One pass, so that a port put in for one placeholder is never taken for another.
    let mut silent = Vec::new();
    for p in &q.silent {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        subst.push((p.clone(), l.local_addr().expect("addr").port().to_string()));
        silent.push(l);
    }
    let mut nodes = Vec::new();
    for (p, args) in &q.redis {
        let port = free_port();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        nodes.push(redis_failover_tests::RedisNode::start(
            dir.path(),
            port,
            None,
            &args,
        ));
        subst.push((p.clone(), port.to_string()));
    }
    let fill = |s: &str| {
        let mut out = String::new();
        let mut rest = s;
        'scan: while !rest.is_empty() {
            for (from, to) in &subst {
                if let Some(after) = rest.strip_prefix(from.as_str()) {
                    out.push_str(to);
                    rest = after;
                    continue 'scan;
                }
            }
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    };
    if let Some((name, content)) = &q.file {
        std::fs::write(dir.path().join(name), format!("{content}\n")).expect("write the file");
    }
    let args: Vec<String> = q.args.iter().map(|a| fill(a)).collect();
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(&args)
        .current_dir(dir.path())
        .env_remove("RUST_LOG");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("REDIS_FAILOVER_")) {
        cmd.env_remove(k);
    }
    let out = cmd.output().expect("redis_node_manager runs");
    drop((silent, nodes));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = fill(&q.line);
    let code = out.status.code().unwrap_or(-1);
    if code == q.exit && stderr.lines().any(|l| matches_pattern(&want, l)) {
        Ok(())
    } else {
        Err(format!(
            "redis_node_manager {}\n  expected exit {} and the line\n    {want}\n  got exit {code} and stderr\n    {}",
            args.join(" "),
            q.exit,
            stderr.trim_end().replace('\n', "\n    ")
        ))
    }
}

/// Every error line the docs quote in an `<!-- error: ... -->` block is what the program
/// prints (on stderr, with that exit code) when run with those arguments.
#[test]
fn quoted_error_lines_are_the_programs() {
    let mut quoted = Vec::new();
    for (doc, text) in docs() {
        quoted.extend(quoted_errors(&text).into_iter().map(|q| (doc.clone(), q)));
    }
    assert!(
        quoted.len() >= 6,
        "found the quoted errors ({})",
        quoted.len()
    );
    let failures: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = quoted
            .iter()
            .map(|(doc, q)| s.spawn(move || run_quoted(q).map_err(|e| format!("{doc}: {e}"))))
            .collect();
        runs.into_iter()
            .filter_map(|r| r.join().expect("a run").err())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "quoted errors differ from the program's:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_error_check_sees_a_changed_line() {
    assert!(matches_pattern("a ... b (...); c", "a xyz b (q); c"));
    assert!(!matches_pattern("a ... b", "a xyz b!"));
    let q = quoted_errors(
        "<!-- error: exit 2; args: -n 127.0.0.1 -z 127.0.0.1:2181 -->\n```text\n\
         redis_node_manager: -n/--nodes: bad address \"127.0.0.1\": no port at all\n```\n",
    );
    assert!(run_quoted(&q[0]).is_err());
}

/// The ```console blocks of README.md and docs/*.md whose commands run `redis_node_manager`
/// offline (`--version`, `--help`): each `$ redis_node_manager ...` line is run and its output
/// must be the lines shown under it (`...` stands for any text; a last line `...` for the
/// rest of the output).
#[test]
fn console_blocks_print_what_they_show() {
    let mut checked = 0;
    let mut bad = Vec::new();
    for (doc, text) in docs() {
        for block in text.split("```console\n").skip(1) {
            let block = block.split("\n```").next().unwrap_or("");
            let mut lines = block.lines().peekable();
            while let Some(line) = lines.next() {
                let Some(cmd) = line.strip_prefix("$ redis_node_manager ") else {
                    continue;
                };
                let mut want = Vec::new();
                while let Some(l) = lines.next_if(|l| !l.starts_with("$ ")) {
                    want.push(l);
                }
                let args: Vec<&str> = cmd.split_whitespace().collect();
                let got = stdout_of(&args);
                let got: Vec<&str> = got.lines().collect();
                let open_end = want.last() == Some(&"...");
                let want = if open_end {
                    &want[..want.len() - 1]
                } else {
                    &want[..]
                };
                let ok = (got.len() == want.len() || (open_end && got.len() >= want.len()))
                    && want.iter().zip(&got).all(|(w, g)| matches_pattern(w, g));
                if !ok {
                    bad.push(format!("{doc}: `{line}` shows {want:?}, prints {got:?}"));
                }
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 1,
        "found README.md's `redis_node_manager --version`"
    );
    assert!(bad.is_empty(), "{bad:#?}");
}

/// The config file's keys (as the program lists them for an unknown key) are the daemon's
/// long flags in snake_case, as docs/operations.md says, plus `groups`.
#[test]
fn config_keys_are_the_flags_in_snake_case() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("m.toml");
    std::fs::write(&file, "no_such_key = 1\n").expect("write the file");
    let out = std::process::Command::new(BIN)
        .args(["-C", &file.to_string_lossy(), "-n", "h:1", "-z", "h:2"])
        .output()
        .expect("redis_node_manager runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let listed = stderr
        .split_once("expected one of ")
        .expect("the error lists the keys")
        .1;
    let mut keys: Vec<String> = listed
        .split(", ")
        .map(|k| k.trim().trim_matches('`').to_string())
        .collect();
    keys.sort();
    let main = parse_help(&stdout_of(&["--help"]));
    let mut want: Vec<String> = main
        .flags
        .iter()
        .filter_map(|(f, _)| f.strip_prefix("--"))
        .filter(|f| !["help", "version", "config"].contains(f))
        .map(|f| f.replace('-', "_"))
        .chain(["groups".to_string()])
        .collect();
    want.sort();
    assert_eq!(
        keys, want,
        "config keys vs. --help's long flags in snake_case"
    );
}

/// examples/deploy/redis-node-manager.service starts the program with flags it has.
#[test]
fn the_systemd_unit_starts_the_program_with_flags_it_has() {
    use clap::Parser;
    let unit =
        std::fs::read_to_string(common::repo().join("examples/deploy/redis-node-manager.service"))
            .expect("the unit");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    // %H is systemd's host name.
    let words: Vec<String> = exec
        .split_whitespace()
        .map(|w| w.replace("%H", "host"))
        .collect();
    assert!(words[0].ends_with("/redis_node_manager"), "{exec}");
    let cli = redis_failover_manager::Cli::try_parse_from(&words)
        .unwrap_or_else(|e| panic!("{exec}: {e}"));
    assert!(cli.zk_auth_file.is_some() && cli.password_file.is_some() && cli.config.is_some());
}

/// examples/deploy/manager.toml is a valid config: every key known, every group sound.
#[test]
fn the_example_config_file_is_valid() {
    let dir = tempfile::tempdir().expect("tmp");
    // Its files, so that loading it reads real ones.
    let text = std::fs::read_to_string(common::repo().join("examples/deploy/manager.toml"))
        .expect("the example config");
    let text = text
        .replace(
            "/etc/redis-failover/zk-auth",
            &dir.path().join("zk").display().to_string(),
        )
        .replace(
            "/etc/redis-failover/redis-password",
            &dir.path().join("pw").display().to_string(),
        );
    std::fs::write(dir.path().join("zk"), "managers:secret\n").expect("zk");
    std::fs::write(dir.path().join("pw"), "secret\n").expect("pw");
    let path = dir.path().join("manager.toml");
    std::fs::write(&path, text).expect("write");
    let cli = redis_failover_manager::Cli {
        config: Some(path),
        ..Default::default()
    };
    let config = redis_failover_manager::Config::load(cli).expect("the example loads");
    assert_eq!(config.groups.len(), 2);
    assert!(config.zk_access.identity.is_some() && config.auth.password.is_some());
    assert!(config.on_switch_master.is_some());
}
