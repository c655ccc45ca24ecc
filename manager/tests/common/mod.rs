//! What the manager's tests share: the repository's files and docs, and the manager binary
//! (and running it, bounded).
#![allow(dead_code)] // each test file uses part of it

use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the manager crate lives in the workspace")
        .to_path_buf()
}

/// Every Rust file under `dir`.
pub fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source folder is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every Rust file under the repository, as paths relative to it.
pub fn repo_files() -> Vec<String> {
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

/// README.md and every docs/*.md, as (path relative to the repository, text).
pub fn docs() -> Vec<(String, String)> {
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
pub fn all_files() -> Vec<String> {
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

pub const BIN: &str = env!("CARGO_BIN_EXE_redis_node_manager");

pub fn stdout_of(args: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .args(args)
        .output()
        .expect("redis_node_manager runs");
    assert!(out.status.success(), "redis_node_manager {args:?} failed");
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Fails with `what` and the list when `bad` is not empty.
pub fn none(bad: &[String], what: &str) {
    assert!(bad.is_empty(), "{what}: {bad:#?}");
}

/// Runs `cmd` to completion with `stdin` written to it, killing it (and failing the test)
/// after 30 s; its stdout and stderr are captured.
pub fn output_within(mut cmd: std::process::Command, stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis_node_manager");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin);
    }
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            // SAFETY: killing our own child by pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("{cmd:?} did not exit within 30 s");
        }
    }
}
