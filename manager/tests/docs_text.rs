//! README.md and docs/*.md are true: every file, link and #anchor they name exists; the
//! workspace's `rust-version` is the locked dependencies' minimum and README says it; CI runs
//! the test command README gives.

mod common;

use std::path::Path;

use common::{all_files, docs, none, repo};

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
    none(&bad, "the docs name what does not exist");
}

#[test]
fn the_path_check_sees_a_missing_file_and_a_bad_anchor() {
    let files = all_files();
    let text = "see `manager/src/gone.rs`, [ops](operations.md#no-such-heading) and \
                [arch](architecture.md)";
    let bad = check_paths("docs/x.md", text, &files);
    assert_eq!(bad.len(), 2, "{bad:#?}");
}

/// `1.89.0` -> (1, 89, 0).
fn version(v: &str) -> (u32, u32, u32) {
    let mut n = v
        .split('.')
        .map(|x| x.parse::<u32>().expect("a version number"));
    (
        n.next().unwrap_or(0),
        n.next().unwrap_or(0),
        n.next().unwrap_or(0),
    )
}

/// The workspace's `rust-version` is the highest `rust-version` (and edition 2024's 1.85)
/// among the packages Cargo.lock pins for this platform, and README.md states it.
///
/// It reads `cargo metadata --offline --locked` (the crates' manifests are in the local
/// registry once the workspace has been built, which `cargo test` just did), so it runs
/// without a network. It checks what the dependencies declare; it cannot check that this
/// code builds with that compiler (only one toolchain is installed where it was written),
/// and a dependency without a declared `rust-version` (a quarter of them) is not counted.
/// Clippy's `incompatible_msrv` lint covers this workspace's own use of newer std APIs.
#[test]
fn rust_version_is_the_dependencies_minimum() {
    let host = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        })
        .expect("rustc -vV names the host");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--locked",
            "--filter-platform",
            &host,
        ])
        .current_dir(repo())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    let resolved: Vec<&str> = meta["resolve"]["nodes"]
        .as_array()
        .expect("resolve.nodes")
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    let mut needed = ((0, 0, 0), String::new());
    let mut ours = Vec::new();
    for p in meta["packages"].as_array().expect("packages") {
        let id = p["id"].as_str().unwrap_or("");
        let name = p["name"].as_str().unwrap_or("?");
        let rv = p["rust_version"].as_str().map(version);
        if members.contains(&id) {
            ours.push((name.to_string(), rv));
            continue;
        }
        if !resolved.contains(&id) {
            continue;
        }
        let edition_min = (p["edition"].as_str() == Some("2024")).then_some((1, 85, 0));
        for v in [rv, edition_min].into_iter().flatten() {
            if v > needed.0 {
                needed = (
                    v,
                    format!("{name} {}", p["version"].as_str().unwrap_or("?")),
                );
            }
        }
    }
    assert!(
        needed.0 >= (1, 80, 0),
        "found the dependencies' rust-versions"
    );
    let stated = format!("{}.{}", needed.0 .0, needed.0 .1);
    for (name, rv) in &ours {
        assert_eq!(
            *rv,
            Some((needed.0 .0, needed.0 .1, 0)),
            "{name}: rust-version should be {stated} (needed by {}); set [workspace.package] \
             rust-version in Cargo.toml (and `rust-version.workspace = true` in the crate)",
            needed.1
        );
    }
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    assert!(
        readme.contains(&format!("Rust {stated} or newer")),
        "README.md's Install should say \"Rust {stated} or newer\""
    );
}

/// `.ci/run` runs "the test command README.md gives": that command is in README.md.
#[test]
fn ci_runs_the_test_command_readme_gives() {
    let ci = std::fs::read_to_string(repo().join(".ci/run")).expect(".ci/run");
    let command = ci
        .lines()
        .skip_while(|l| !l.contains("test command from README.md"))
        .nth(1)
        .expect("the line after the comment is the command");
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    assert!(
        readme.lines().any(|l| l.trim_start().starts_with(command)),
        "README.md does not give .ci/run's test command {command:?}"
    );
}
