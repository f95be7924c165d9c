//! Worktrees (`/claude start <repo> --worktree`), end to end with the REAL Claude Code CLI
//! against the scripted fake model: two channels work on one repository, each in a git worktree
//! of its own, and neither sees the other's files nor touches the main checkout; a restart
//! resumes a session in its worktree; `stop --clean` removes a worktree (refusing uncommitted
//! work unless forced), by command and by the REST API.
//! A missing CLI fails these tests on purpose (run `make claude-cli`, or set CLAUDE_CLI).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fake_anthropic::{FakeServer, Script};
use serde_json::{json, Value};
use support::chat::*;

const OTHER: &str = "chan-2";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@e"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The worktrees `git worktree list` names.
fn listed(repo: &Path) -> Vec<PathBuf> {
    git(repo, &["worktree", "list", "--porcelain"])
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .map(PathBuf::from)
        .collect()
}

fn write(path: &Path, content: &str, id: &str) -> Value {
    json!({"kind": "message", "blocks": [{"type": "tool_use", "id": id, "name": "Write",
        "input": {"file_path": path.display().to_string(), "content": content}}]})
}

fn text(t: &str) -> Value {
    json!({"kind": "message", "blocks": [{"type": "text", "text": t}]})
}

/// The session of `channel` as the REST API shows it.
async fn session_of(h: &Harness, channel: &str) -> Value {
    let (status, v) = h
        .http_method("GET", "/api/v1/sessions", "u1", Value::Null)
        .await;
    assert_eq!(status, Some(200), "{v}");
    v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["channel_id"] == channel)
        .cloned()
        .unwrap_or_else(|| panic!("no session in {channel}: {v}"))
}

/// Approves the session's pending Write through the API, then waits for the turn to end.
async fn approve_and_finish(h: &Harness, session_id: &str, file: &Path) {
    let url = format!("/api/v1/sessions/{session_id}/approvals");
    let deadline = tokio::time::Instant::now() + WAIT;
    let approval = loop {
        let (_, v) = h.http_method("GET", &url, "u1", Value::Null).await;
        let pending = v["approvals"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["state"] == "pending").cloned());
        if let Some(a) = pending {
            break a;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no pending Write: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(approval["tool"], "Write", "{approval}");
    let answer = format!("{url}/{}", approval["approval_id"].as_str().unwrap());
    let (status, v) = h.http(&answer, "u1", json!({"decision": "approve"})).await;
    assert_eq!(status, Some(200), "{v}");
    loop {
        let (_, s) = h
            .http_method(
                "GET",
                &format!("/api/v1/sessions/{session_id}"),
                "u1",
                Value::Null,
            )
            .await;
        if file.is_file() && s["state"] == "idle" {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "turn did not end: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn two_channels_work_in_worktrees_of_one_repository_and_stop_clean_removes_them() {
    // The model is this test's own: its script names paths known only once the worktrees
    // exist, so it is started again with them on the same port (the CLIs ask it nothing
    // before their first prompt).
    let placeholder = FakeServer::start(Script::from_json("[]").unwrap(), None)
        .await
        .unwrap();
    let url = placeholder.base_url();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let h = Harness::new("worktree", |_| json!([]), json!({"AnthropicBaseUrl": url})).await;
    let repo = std::fs::canonicalize(&h.project).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "start"]);

    // Refusals first: not a repository's top, a branch the main checkout has.
    let t = h
        .command(&format!("/claude start {} --worktree", h.root.display()))
        .await;
    assert!(t.contains("is not a git repository"), "{t}");
    let t = h
        .command(&format!("/claude start {} --worktree main", repo.display()))
        .await;
    assert!(
        t.contains("The branch `main` cannot be checked out here"),
        "{t}"
    );
    assert_eq!(listed(&repo), vec![repo.clone()], "no refusal leaves one");

    // Two channels, one repository: a new branch each (named after the channel), and one
    // named by the person.
    let t = h
        .command(&format!("/claude start {} --worktree", repo.display()))
        .await;
    assert!(t.contains("a git worktree of"), "{t}");
    let r = h
        .command_in(
            OTHER,
            "u1",
            &format!("/claude start {} --worktree feature/b", repo.display()),
        )
        .await;
    assert!(r.text.contains("on branch `feature/b`"), "{}", r.text);
    let (a, b) = (session_of(&h, CHANNEL).await, session_of(&h, OTHER).await);
    let wt_a = PathBuf::from(a["worktree"]["path"].as_str().unwrap());
    let wt_b = PathBuf::from(b["worktree"]["path"].as_str().unwrap());
    assert_eq!(a["project_path"], a["worktree"]["path"], "{a}");
    assert_eq!(b["worktree"]["branch"], "feature/b");
    assert_eq!(a["worktree"]["repository"], repo.display().to_string());
    assert!(
        a["worktree"]["branch"]
            .as_str()
            .unwrap()
            .starts_with("claude/"),
        "{a}"
    );
    let data = std::fs::canonicalize(h.dir.join("data/worktrees")).unwrap();
    assert!(
        wt_a.starts_with(&data) && wt_b.starts_with(&data),
        "{wt_a:?}"
    );
    assert_eq!(listed(&repo).len(), 3);

    let (file_a, file_b, file_b2) = (
        wt_a.join("from-a.txt"),
        wt_b.join("from-b.txt"),
        wt_b.join("after-restart.txt"),
    );
    drop(placeholder);
    let script = json!([
        write(&file_a, "a\n", "toolu_wt_a"),
        text("A wrote."),
        write(&file_b, "b\n", "toolu_wt_b"),
        text("B wrote."),
        write(&file_b2, "b2\n", "toolu_wt_b2"),
        text("B wrote again."),
    ]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let model = loop {
        let script = Script::from_json(&script.to_string()).unwrap();
        match FakeServer::start_on(script, None, port).await {
            Ok(m) => break m,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("the port is not free yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };

    h.command("/claude write a file").await;
    approve_and_finish(&h, a["id"].as_str().unwrap(), &file_a).await;
    h.command_in(OTHER, "u1", "/claude write a file").await;
    approve_and_finish(&h, b["id"].as_str().unwrap(), &file_b).await;
    for (file, other) in [(&file_a, &wt_b), (&file_b, &wt_a)] {
        let name = file.file_name().unwrap();
        assert!(file.is_file());
        assert!(
            !other.join(name).exists(),
            "{name:?} is in the other worktree"
        );
        assert!(
            !repo.join(name).exists(),
            "{name:?} is in the main checkout"
        );
    }
    let t = h.command("/claude status").await;
    assert!(
        t.contains(&format!(
            "Git worktree of `{}` on branch `claude/",
            repo.display()
        )),
        "{t}"
    );

    // stop --clean refuses uncommitted work, and stops nothing.
    let t = h.command("/claude stop --clean").await;
    assert!(t.contains("has uncommitted changes (`from-a.txt`)"), "{t}");
    assert!(t.contains("/claude stop --clean --force"), "{t}");
    assert_eq!(session_of(&h, CHANNEL).await["state"], "idle");
    assert!(file_a.is_file());

    // A restart: the session resumes in its worktree.
    h.deactivate().await;
    h.activate().await;
    let b_again = session_of(&h, OTHER).await;
    assert_eq!(b_again["worktree"], b["worktree"]);
    assert_eq!(b_again["state"], "stopped");
    h.command_in(OTHER, "u1", "/claude write again").await;
    approve_and_finish(&h, b["id"].as_str().unwrap(), &file_b2).await;
    assert!(!repo.join("after-restart.txt").exists());
    assert_eq!(model.remaining_calls(), 0);

    // --force discards uncommitted work.
    let t = h.command("/claude stop --clean --force").await;
    assert!(t.contains("stopped and its worktree"), "{t}");
    assert!(!wt_a.exists());
    assert!(!listed(&repo).contains(&wt_a));
    let t = h.command("/claude write more").await;
    assert!(t.contains("was removed"), "{t}");
    let a_after = session_of(&h, CHANNEL).await;
    assert_eq!(a_after["worktree"]["removed"], true, "{a_after}");

    // The REST API: work committed on the branch is kept; a clean worktree goes unforced.
    git(&wt_b, &["add", "."]);
    git(&wt_b, &["commit", "-q", "-m", "b's work"]);
    let url = format!("/api/v1/sessions/{}", b["id"].as_str().unwrap());
    let (status, v) = h
        .http_method("DELETE", &format!("{url}?force=true"), "u1", Value::Null)
        .await;
    assert_eq!(status, Some(400), "{v}");
    let (status, v) = h
        .http_method("DELETE", &format!("{url}?clean=true"), "u1", Value::Null)
        .await;
    assert_eq!(status, Some(200), "{v}");
    assert_eq!(v["worktree"]["removed"], true, "{v}");
    assert_eq!(v["state"], "stopped", "{v}");
    assert!(!wt_b.exists());
    assert_eq!(listed(&repo), vec![repo.clone()]);
    let files = git(&repo, &["ls-tree", "--name-only", "feature/b"]);
    assert!(files.contains("from-b.txt"), "{files}");
    h.deactivate().await;
}

/// A repository moved away under a session's worktree: `stop --clean` says so (not "git is not
/// installed") and removes nothing; `--force` deletes the worktree's directory and marks it
/// removed.
#[tokio::test]
async fn a_worktree_of_a_repository_gone_is_deleted_only_with_force() {
    let h = Harness::new("worktree-gone", |_| json!([]), json!({})).await;
    let repo = std::fs::canonicalize(&h.project).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "start"]);
    let t = h
        .command(&format!("/claude start {} --worktree", repo.display()))
        .await;
    assert!(t.contains("a git worktree of"), "{t}");
    let wt = PathBuf::from(
        session_of(&h, CHANNEL).await["worktree"]["path"]
            .as_str()
            .unwrap(),
    );
    assert!(wt.is_dir());
    let moved = repo.with_file_name("moved-away");
    std::fs::rename(&repo, &moved).unwrap();

    let t = h.command("/claude stop --clean").await;
    assert!(
        t.contains(&format!("`{}` no longer exists", repo.display())),
        "{t}"
    );
    assert!(wt.is_dir(), "nothing removed unforced");
    // The refused clean left no mark: the session may be changed (and prompted) again.
    let t = h.command("/claude mode plan").await;
    assert!(!t.contains("being removed"), "{t}");
    let t = h.command("/claude stop --clean --force").await;
    assert!(t.contains("stopped and its worktree"), "{t}");
    assert!(!wt.exists());
    let s = session_of(&h, CHANNEL).await;
    assert_eq!(s["worktree"]["removed"], true, "{s}");
    assert_eq!(s["state"], "stopped", "{s}");
    assert!(moved.join(".git").is_dir(), "the repository is left alone");
    h.deactivate().await;
}
