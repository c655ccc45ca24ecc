//! The docs say what the program does: docs/operations.md's events table is the code's own
//! list of event names, and no log line names an event that is not in that list.
//!
//! After changing `manager/src/core/event_names.rs`, print the table again with
//! `UPDATE_DOCS=1 cargo test -p redis-failover-manager --test docs`.

use std::path::{Path, PathBuf};

use redis_failover_manager::event_names;

const BEGIN: &str = "<!-- event-names:begin -->\n";
const END: &str = "<!-- event-names:end -->";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the manager crate lives in the workspace")
        .to_path_buf()
}

#[test]
fn operations_events_table_is_the_codes_list() {
    let path = repo().join("docs/operations.md");
    let text = std::fs::read_to_string(&path).expect("docs/operations.md is readable");
    let start = text
        .find(BEGIN)
        .expect("docs/operations.md has the event-names:begin marker")
        + BEGIN.len();
    let end = start
        + text[start..]
            .find(END)
            .expect("docs/operations.md has the event-names:end marker");
    let want = event_names::markdown_table();
    if text[start..end] == want {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}{want}{}", &text[..start], &text[end..]);
        std::fs::write(&path, updated).expect("docs/operations.md is writable");
        return;
    }
    panic!(
        "docs/operations.md's events table differs from manager/src/core/event_names.rs; print it again \
         with: UPDATE_DOCS=1 cargo test -p redis-failover-manager --test docs"
    );
}

/// Every Rust file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source folder is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The first string literal of every tracing macro call whose text starts with an event
/// name written out (`"+sdown ..."`) instead of one of the list's constants.
fn literal_event_names(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for mac in ["trace!(", "debug!(", "info!(", "warn!(", "error!("] {
        let mut rest = text;
        while let Some(i) = rest.find(mac) {
            rest = &rest[i + mac.len()..];
            let Some(q) = rest.find('"') else { break };
            let lit = &rest[q + 1..];
            let mut chars = lit.chars();
            if matches!(chars.next(), Some('+' | '-'))
                && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            {
                found.push(
                    lit.chars()
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect(),
                );
            }
        }
    }
    found
}

#[test]
fn log_lines_use_the_listed_event_names() {
    let mut files = Vec::new();
    sources(&repo().join("manager/src"), &mut files);
    assert!(files.len() > 10, "found the manager's sources");
    let mut bad = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("source is readable");
        for name in literal_event_names(&text) {
            bad.push(format!("{}: {name}", f.display()));
        }
    }
    assert!(
        bad.is_empty(),
        "log lines must start with a constant from core/event_names.rs (add new names there): {bad:#?}"
    );
}

#[test]
fn the_scan_sees_a_literal_event_name() {
    let src = "warn!(group = %g, \"+sdown {}: {reason}\", n); info!(\"{SDOWN} ok\");";
    assert_eq!(literal_event_names(src), vec!["+sdown".to_string()]);
}

/// Every Rust file under the repository, as paths relative to it.
fn repo_files() -> Vec<String> {
    let root = repo();
    let mut files = Vec::new();
    for dir in ["manager", "client", "tests", "bench", "examples"] {
        sources(&root.join(dir), &mut files);
    }
    files
        .iter()
        .filter_map(|f| f.strip_prefix(&root).ok())
        .map(|f| f.to_string_lossy().into_owned())
        .collect()
}

/// Every `*.rs` name in docs/architecture.md's tables and diagrams (`io/probe.rs`,
/// `act.rs`) is the end of a real file's path.
#[test]
fn architecture_names_only_files_that_exist() {
    let text = std::fs::read_to_string(repo().join("docs/architecture.md"))
        .expect("docs/architecture.md is readable");
    let files = repo_files();
    let names: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || "_/.-".contains(c)))
        .filter(|w| w.ends_with(".rs"))
        .collect();
    assert!(
        names.len() > 30,
        "the check saw the file names ({})",
        names.len()
    );
    let missing: Vec<&&str> = names
        .iter()
        .filter(|n| {
            !files
                .iter()
                .any(|f| f == *n || f.ends_with(&format!("/{n}")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/architecture.md names files that do not exist: {missing:?}"
    );
}

/// The layering docs/architecture.md states: the pure core imports no I/O, no loop, no
/// front; the I/O shells import neither the loop nor the fronts; the fronts never reach into
/// the loop.
#[test]
fn layers_import_only_downwards() {
    let rules: &[(&str, &[&str])] = &[
        (
            "core",
            &[
                "crate::io",
                "crate::daemon",
                "crate::front",
                "crate::run",
                "crate::config",
            ],
        ),
        ("io", &["crate::daemon", "crate::front", "crate::run"]),
        ("front", &["crate::daemon", "crate::run"]),
    ];
    let mut bad = Vec::new();
    for (folder, forbidden) in rules {
        let mut files = Vec::new();
        sources(&repo().join("manager/src").join(folder), &mut files);
        assert!(!files.is_empty(), "manager/src/{folder} has sources");
        for f in files {
            let text = std::fs::read_to_string(&f).expect("source is readable");
            for path in forbidden.iter().filter(|p| text.contains(*p)) {
                bad.push(format!("{} uses {path}", f.display()));
            }
        }
    }
    assert!(bad.is_empty(), "imports against the layering: {bad:#?}");
}

// ---------------------------------------------------------------------------------------------
// README.md and docs/*.md are true: the files they name exist, the commands and flags they show
// are the program's, the error lines they quote are the program's, the Rust version they state
// is the dependencies' minimum.
// ---------------------------------------------------------------------------------------------

/// README.md and every docs/*.md, as (path relative to the repository, text).
fn docs() -> Vec<(String, String)> {
    let root = repo();
    let mut names = vec!["README.md".to_string()];
    let mut more: Vec<String> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ is readable")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| format!("docs/{}", p.file_name().expect("a name").to_string_lossy()))
        .collect();
    more.sort();
    names.extend(more);
    names
        .into_iter()
        .map(|n| {
            let text = std::fs::read_to_string(root.join(&n)).expect("doc is readable");
            (n, text)
        })
        .collect()
}

/// Every file of the repository (not target/, not .git/), relative to it.
fn all_files() -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("folder is readable") {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().expect("a name").to_string_lossy();
            if path.is_dir() {
                if name != "target" && name != ".git" {
                    walk(&path, root, out);
                }
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let root = repo();
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out
}

/// The GitHub anchor of a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            out.push(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// `docs/../README.md` -> `README.md`.
fn normalize(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::CurDir => {}
            c => parts.push(c.as_os_str().to_string_lossy().into_owned()),
        }
    }
    parts.join("/")
}

/// Checks the paths in one doc; returns what is wrong.
fn check_paths(doc: &str, text: &str, files: &[String]) -> Vec<String> {
    const EXT: &[&str] = &[".rs", ".md", ".png", ".txt", ".sh", ".py"];
    let dir = Path::new(doc).parent().unwrap_or(Path::new(""));
    let exists = |p: &str| {
        let p = p.trim_start_matches("./");
        let in_dir = normalize(&dir.join(p));
        files
            .iter()
            .any(|f| f == p || *f == in_dir || f.ends_with(&format!("/{p}")))
    };
    let mut bad = Vec::new();
    // Words that look like file names: `io/probe.rs`, docs/chaos-results.txt, scripts/demo.sh.
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || "_/.-".contains(c))) {
        let word = word.trim_end_matches('.');
        // Absolute paths (/usr/share/...) and URLs name things outside the repository.
        let outside = word.starts_with('/') || word.contains("//");
        if EXT.iter().any(|e| word.ends_with(e)) && !outside && !exists(word) {
            bad.push(format!("{doc}: names {word}, which does not exist"));
        }
    }
    // Relative links and their anchors: [text](other.md#anchor), [text](#anchor).
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = &rest[..end];
        if target.contains("://") {
            continue;
        }
        let (file, frag) = target.split_once('#').unwrap_or((target, ""));
        let path = if file.is_empty() {
            doc.to_string()
        } else {
            normalize(&dir.join(file))
        };
        if !files.contains(&path) {
            bad.push(format!("{doc}: links to {target}: no file {path}"));
            continue;
        }
        if !frag.is_empty() {
            let linked = std::fs::read_to_string(repo().join(&path)).expect("linked doc");
            if !anchors(&linked).iter().any(|a| a == frag) {
                bad.push(format!(
                    "{doc}: links to {target}: no heading #{frag} in {path}"
                ));
            }
        }
    }
    bad
}

/// Every file name, path and relative link (with its #anchor) in README.md and docs/*.md
/// names something that exists.
#[test]
fn docs_name_only_files_and_headings_that_exist() {
    let files = all_files();
    let mut bad = Vec::new();
    for (doc, text) in docs() {
        bad.extend(check_paths(&doc, &text, &files));
    }
    assert!(
        bad.is_empty(),
        "the docs name what does not exist: {bad:#?}"
    );
}

#[test]
fn the_path_check_sees_a_missing_file_and_a_bad_anchor() {
    let files = all_files();
    let text = "see `manager/src/gone.rs`, [ops](operations.md#no-such-heading) and \
                [arch](architecture.md)";
    let bad = check_paths("docs/x.md", text, &files);
    assert_eq!(bad.len(), 2, "{bad:#?}");
}

const BIN: &str = env!("CARGO_BIN_EXE_redis_node_manager");

fn stdout_of(args: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .args(args)
        .output()
        .expect("redis_node_manager runs");
    assert!(out.status.success(), "redis_node_manager {args:?} failed");
    String::from_utf8(out.stdout).expect("utf-8 output")
}

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
        all.push((cmd.clone(), parse_help(&stdout_of(&[cmd, "--help"]))));
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
        // an error message quoted from it starts with `redis_node_manager: ` or
        // `redis_node_manager status: `.
        let before = piece[..i].trim();
        let is_command = before.is_empty()
            || before == "$"
            || (before.ends_with('/') && !before.contains(char::is_whitespace));
        let words: Vec<String> = piece[i + "redis_node_manager ".len()..]
            .split_whitespace()
            .take_while(|w| !matches!(*w, "#" | "|" | "&" | "&&" | ";" | ">" | "2>&1"))
            .map(str::to_string)
            .collect();
        if is_command && !words.first().is_some_and(|w| w.ends_with(':')) {
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
        let (cmd, rest) = match words.first() {
            Some(w)
                if !w.starts_with('-')
                    && !w.starts_with('[')
                    && w.chars().all(|c| c.is_ascii_lowercase()) =>
            {
                (w.clone(), &words[1..])
            }
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
    for word in ops.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        if word.starts_with("--")
            && word[2..].starts_with(|c: char| c.is_ascii_lowercase())
            && !known.iter().any(|f| *f == word)
        {
            bad.push(format!(
                "docs/operations.md: {word} is not a flag of redis_node_manager"
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "the docs show flags or commands the program lacks: {bad:#?}"
    );
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
