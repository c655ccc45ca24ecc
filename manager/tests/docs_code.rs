//! The docs and the code agree on the code's own structure:
//! - docs/operations.md's events table is the code's list of event names, and no log line
//!   names an event that is not in that list;
//! - docs/architecture.md names only files that exist, and the layering it states holds.
//!
//! After changing `manager/src/core/event_names.rs`, print the table again with
//! `UPDATE_DOCS=1 cargo test -p redis-failover-manager --test docs_code`.

mod common;

use common::{none, repo, repo_files, sources};
use redis_failover_manager::event_names;

const BEGIN: &str = "<!-- event-names:begin -->\n";
const END: &str = "<!-- event-names:end -->";

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
         with: UPDATE_DOCS=1 cargo test -p redis-failover-manager --test docs_code"
    );
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
    none(
        &bad,
        "log lines must start with a constant from core/event_names.rs (add new names there)",
    );
}

#[test]
fn the_scan_sees_a_literal_event_name() {
    let src = "warn!(group = %g, \"+sdown {}: {reason}\", n); info!(\"{SDOWN} ok\");";
    assert_eq!(literal_event_names(src), vec!["+sdown".to_string()]);
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
    none(&bad, "imports against the layering");
}
