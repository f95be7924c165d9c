//! The session engine against the REAL Claude Code CLI (pinned 2.1.330) and the scripted fake
//! Messages API. A missing CLI fails these tests on purpose (run `make claude-cli`, or set
//! CLAUDE_CLI): the engine must not drift from the real CLI unnoticed.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use claude_code::claude::spawn::SpawnError;
use claude_code::claude::CliEnv;
use claude_code::sessions::{
    Decision, Engine, EngineError, EventKind, ProcessLauncher, SessionConfig, SessionErrorKind,
    SessionEvent, SessionHandle, SessionSpec, SessionState,
};
use claude_code::store::Store;
use fake_anthropic::FakeServer;
use serde_json::{json, Value};
use support::cli::{cli_env, cli_path, fake_server, model_requests};
use tokio::sync::broadcast;
use uuid::Uuid;

const STEP_TIMEOUT: Duration = Duration::from_secs(90);
const DENY_MESSAGE: &str = "Rejected from Mattermost by @alice";

const GET_CLI: &str = "run `make claude-cli` (or set CLAUDE_CLI). \
         These tests must not pass without the real CLI.";

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("cc-e2e-engine-{name}-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Harness {
    dir: TempDir,
    project: PathBuf,
    server: FakeServer,
    env: CliEnv,
    engine: Engine,
}

impl Harness {
    async fn new(name: &str, script: impl FnOnce(&Path) -> Value) -> Self {
        Self::with(name, script, SessionConfig::default(), None).await
    }

    async fn with(
        name: &str,
        script: impl FnOnce(&Path) -> Value,
        config: SessionConfig,
        max_retries: Option<u32>,
    ) -> Self {
        let dir = TempDir::new(name);
        let project = dir.0.join("proj");
        std::fs::create_dir_all(&project).expect("project dir");
        let server = fake_server(&dir.0, &project, script).await;
        let env = cli_env(cli_path(GET_CLI), &dir.0, &server, max_retries);
        let engine = engine_for(&dir.0, &env, config).await;
        Self {
            dir,
            project,
            server,
            env,
            engine,
        }
    }

    /// Another engine, its store under dir/`sub`, whose sessions run `cli` instead.
    async fn engine_with_cli(&self, sub: &str, cli: PathBuf) -> Engine {
        let env = CliEnv {
            cli_path: cli,
            ..self.env.clone()
        };
        let dir = self.dir.0.join(sub);
        std::fs::create_dir_all(&dir).expect("dir");
        engine_for(&dir, &env, SessionConfig::default()).await
    }

    fn spec(&self) -> SessionSpec {
        SessionSpec {
            channel_id: "town-square".into(),
            owner_id: "alice".into(),
            project_path: self.project.clone(),
            model: None,
            permission_mode: None,
        }
    }

    async fn start(&self) -> (SessionHandle, broadcast::Receiver<SessionEvent>) {
        let session = self
            .engine
            .start(self.spec())
            .await
            .expect("session starts");
        let rx = session.subscribe();
        (session, rx)
    }

    /// Every `messages` array the CLI sent to the model, as text.
    fn model_requests(&self) -> Vec<String> {
        model_requests(&self.server)
    }
}

async fn engine_for(dir: &Path, env: &CliEnv, config: SessionConfig) -> Engine {
    let store = Store::open(&dir.join("engine.db")).await.expect("store");
    Engine::new(store, Arc::new(ProcessLauncher::new(env.clone())), config)
}

/// Events until one matches; panics with what was seen on timeout.
/// Where a test reads events: one session's broadcast, or the engine's observer queue.
trait Events {
    fn next(&mut self) -> impl std::future::Future<Output = Result<SessionEvent, String>>;
}

impl Events for broadcast::Receiver<SessionEvent> {
    async fn next(&mut self) -> Result<SessionEvent, String> {
        self.recv().await.map_err(|e| e.to_string())
    }
}

impl Events for tokio::sync::mpsc::UnboundedReceiver<SessionEvent> {
    async fn next(&mut self) -> Result<SessionEvent, String> {
        self.recv()
            .await
            .ok_or_else(|| "the engine is gone".to_owned())
    }
}

async fn until(
    rx: &mut impl Events,
    want: impl Fn(&EventKind) -> bool,
) -> (Vec<EventKind>, EventKind) {
    let mut seen = Vec::new();
    loop {
        let event = match tokio::time::timeout(STEP_TIMEOUT, rx.next()).await {
            Ok(Ok(event)) => event,
            Ok(Err(e)) => panic!("event stream: {e}; seen {seen:#?}"),
            Err(_) => panic!("no matching event within {STEP_TIMEOUT:?}; seen {seen:#?}"),
        };
        if want(&event.kind) {
            return (seen, event.kind);
        }
        seen.push(event.kind);
    }
}

fn is_result(k: &EventKind) -> bool {
    matches!(k, EventKind::TurnResult { .. })
}

fn is_request(k: &EventKind) -> bool {
    matches!(k, EventKind::ToolUseRequested { .. })
}

fn request_id(k: &EventKind) -> String {
    match k {
        EventKind::ToolUseRequested { request_id, .. } => request_id.clone(),
        other => panic!("not an approval request: {other:?}"),
    }
}

fn write_then_text(file: &Path, content: &str, text: &str) -> Value {
    json!([
        {"kind": "message", "blocks": [
            {"type": "tool_use", "name": "Write",
             "input": {"file_path": file.display().to_string(), "content": content}}]},
        {"kind": "message", "blocks": [{"type": "text", "text": text}]}
    ])
}

#[tokio::test]
async fn a_prompt_streams_text_deltas_and_ends_with_cost_and_usage() {
    const TEXT: &str = "Hello from the fake model, streamed word by word.";
    let h = Harness::new(
        "text",
        |_| json!([{"kind": "message", "blocks": [{"type": "text", "text": TEXT}]}]),
    )
    .await;
    let (session, mut rx) = h.start().await;
    let prompt_id = session.prompt("say hello", "alice").await.expect("prompt");
    let (seen, result) = until(&mut rx, is_result).await;
    let deltas: String = seen
        .iter()
        .filter_map(|k| match k {
            EventKind::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, TEXT);
    assert!(seen
        .iter()
        .any(|k| matches!(k, EventKind::AssistantText { text, .. } if text == TEXT)));
    match result {
        EventKind::TurnResult {
            prompt_id: Some(id),
            is_error: false,
            total_cost_usd: Some(cost),
            usage: Some(usage),
            ..
        } => {
            assert_eq!(id, prompt_id, "the result maps back to the prompt");
            assert!(cost > 0.0);
            assert!(
                usage.input_tokens > 0 && usage.output_tokens > 0,
                "{usage:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let status = session.status().await.expect("status");
    assert_eq!(status.state, SessionState::Idle);
    let stored = h
        .engine
        .store()
        .messages(session.id())
        .await
        .expect("transcript");
    assert!(stored.iter().any(|m| m.kind == "result"));
    h.engine.stop_all().await;
}

#[tokio::test]
async fn approving_a_write_and_an_edit_changes_the_file_and_reports_the_diff() {
    let h = Harness::new("allow", |p| {
        let file = p.join("hello.txt").display().to_string();
        json!([
            {"kind": "message", "blocks": [{"type": "tool_use", "name": "Write",
                "input": {"file_path": file, "content": "hi there\n"}}]},
            {"kind": "message", "blocks": [{"type": "tool_use", "name": "Edit",
                "input": {"file_path": file, "old_string": "hi there", "new_string": "hello world"}}]},
            {"kind": "message", "blocks": [{"type": "text", "text": "Done."}]}
        ])
    })
    .await;
    let (session, mut rx) = h.start().await;
    session
        .prompt("write hello.txt, then edit it", "alice")
        .await
        .expect("prompt");
    let mut seen = Vec::new();
    let mut asked_tools = Vec::new();
    let result = loop {
        let (before, event) = until(&mut rx, |k| is_request(k) || is_result(k)).await;
        seen.extend(before);
        if let EventKind::ToolUseRequested { tool, .. } = &event {
            asked_tools.push(tool.clone());
            session
                .approve(&request_id(&event), Decision::Allow, "bob")
                .await
                .expect("approve");
        } else {
            break event;
        }
    };
    assert_eq!(asked_tools, ["Write", "Edit"]);
    assert!(
        matches!(
            result,
            EventKind::TurnResult {
                is_error: false,
                ..
            }
        ),
        "{result:?}"
    );
    assert_eq!(
        std::fs::read_to_string(h.project.join("hello.txt")).expect("file written"),
        "hello world\n"
    );
    let patches: Vec<_> = seen
        .iter()
        .filter_map(|k| match k {
            EventKind::ToolResult {
                patch: Some(patch),
                file_path,
                ..
            } => Some((patch.clone(), file_path.clone())),
            _ => None,
        })
        .collect();
    let (edit_patch, file_path) = patches.last().expect("tool results with a structuredPatch");
    assert_eq!(
        file_path.as_deref(),
        Some(h.project.join("hello.txt").to_str().expect("utf-8"))
    );
    let lines: Vec<&str> = edit_patch
        .iter()
        .flat_map(|hunk| hunk.lines.iter().map(String::as_str))
        .collect();
    assert_eq!(lines, ["-hi there", "+hello world"]);
    let approvals = h
        .engine
        .store()
        .approvals(session.id())
        .await
        .expect("approvals");
    assert_eq!(approvals.len(), 2);
    assert!(approvals
        .iter()
        .all(|a| a.decided_by.as_deref() == Some("bob") && a.decision.as_deref() == Some("allow")));
    h.engine.stop_all().await;
}

#[tokio::test]
async fn denying_with_a_reason_leaves_no_file_and_the_model_sees_the_reason() {
    let h = Harness::new("deny", |p| {
        write_then_text(&p.join("denied.txt"), "no\n", "Understood.")
    })
    .await;
    let (session, mut rx) = h.start().await;
    session
        .prompt("write denied.txt", "alice")
        .await
        .expect("prompt");
    let (_, asked) = until(&mut rx, is_request).await;
    session
        .approve(
            &request_id(&asked),
            Decision::Deny(DENY_MESSAGE.into()),
            "alice",
        )
        .await
        .expect("deny");
    let (seen, result) = until(&mut rx, is_result).await;
    assert!(seen
        .iter()
        .any(|k| matches!(k, EventKind::ToolDenied { message, .. } if message == DENY_MESSAGE)));
    assert!(
        matches!(&result, EventKind::TurnResult { denied_tools, .. } if denied_tools == &["Write"])
    );
    assert!(
        !h.project.join("denied.txt").exists(),
        "denied write happened"
    );
    let requests = h.model_requests();
    assert!(
        requests.get(1).is_some_and(|r| r.contains(DENY_MESSAGE)),
        "the deny reason did not reach the model: {requests:?}"
    );
    h.engine.stop_all().await;
}

#[tokio::test]
async fn an_edited_input_is_what_gets_written() {
    let h = Harness::new("edited", |p| {
        write_then_text(&p.join("edited.txt"), "model text\n", "Done.")
    })
    .await;
    let (session, mut rx) = h.start().await;
    session
        .prompt("write edited.txt", "alice")
        .await
        .expect("prompt");
    let (_, asked) = until(&mut rx, is_request).await;
    let EventKind::ToolUseRequested { input, .. } = &asked else {
        unreachable!()
    };
    let mut edited = input.clone();
    edited["content"] = json!("edited by the host\n");
    session
        .approve(&request_id(&asked), Decision::AllowWithInput(edited), "bob")
        .await
        .expect("approve");
    until(&mut rx, is_result).await;
    assert_eq!(
        std::fs::read_to_string(h.project.join("edited.txt")).expect("file written"),
        "edited by the host\n"
    );
    h.engine.stop_all().await;
}

#[tokio::test]
async fn allow_for_session_means_the_second_write_does_not_ask() {
    let h = Harness::new("session-allow", |p| {
        json!([
            {"kind": "message", "blocks": [{"type": "tool_use", "name": "Write",
                "input": {"file_path": p.join("a.txt").display().to_string(), "content": "a\n"}}]},
            {"kind": "message", "blocks": [{"type": "text", "text": "Wrote a."}]},
            {"kind": "message", "blocks": [{"type": "tool_use", "name": "Write",
                "input": {"file_path": p.join("b.txt").display().to_string(), "content": "b\n"}}]},
            {"kind": "message", "blocks": [{"type": "text", "text": "Wrote b."}]}
        ])
    })
    .await;
    let (session, mut rx) = h.start().await;
    session
        .prompt("write a.txt", "alice")
        .await
        .expect("prompt");
    let (_, asked) = until(&mut rx, is_request).await;
    session
        .approve(&request_id(&asked), Decision::AllowForSession, "bob")
        .await
        .expect("approve");
    until(&mut rx, is_result).await;
    session
        .prompt("write b.txt", "alice")
        .await
        .expect("prompt");
    let (seen, result) = until(&mut rx, is_result).await;
    assert!(!seen.iter().any(is_request), "asked again: {seen:#?}");
    assert!(
        matches!(
            result,
            EventKind::TurnResult {
                is_error: false,
                ..
            }
        ),
        "{result:?}"
    );
    assert_eq!(
        std::fs::read_to_string(h.project.join("b.txt")).expect("b"),
        "b\n"
    );
    assert!(
        !h.project.join(".claude/settings.local.json").exists(),
        "the rule must stay in memory, not in the user's repository"
    );
    h.engine.stop_all().await;
}

#[tokio::test]
async fn an_unanswered_approval_expires_into_a_deny_the_model_sees() {
    let config = SessionConfig {
        approval_timeout: Duration::from_secs(2),
        ..SessionConfig::default()
    };
    let h = Harness::with(
        "expire",
        |p| write_then_text(&p.join("late.txt"), "late\n", "Nobody answered."),
        config,
        None,
    )
    .await;
    let (session, mut rx) = h.start().await;
    session
        .prompt("write late.txt", "alice")
        .await
        .expect("prompt");
    until(&mut rx, is_request).await;
    let (_, expired) = until(&mut rx, |k| {
        matches!(k, EventKind::ToolApprovalExpired { .. })
    })
    .await;
    let EventKind::ToolApprovalExpired { message, .. } = expired else {
        unreachable!()
    };
    until(&mut rx, is_result).await;
    assert!(!h.project.join("late.txt").exists());
    assert!(h
        .model_requests()
        .get(1)
        .is_some_and(|r| r.contains(&message)));
    h.engine.stop_all().await;
}

#[tokio::test]
async fn interrupt_stops_a_streaming_turn_and_the_next_prompt_runs() {
    let h = Harness::new("interrupt", |_| {
        json!([
            {"kind": "message", "delay_ms": 300, "blocks": [{"type": "text",
                "text": "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17 w18 w19"}]},
            {"kind": "message", "blocks": [{"type": "text", "text": "after the interrupt"}]}
        ])
    })
    .await;
    let (session, mut rx) = h.start().await;
    session
        .prompt("talk slowly", "alice")
        .await
        .expect("prompt");
    until(&mut rx, |k| matches!(k, EventKind::TextDelta { .. })).await;
    session.interrupt("alice").await.expect("interrupt");
    let (_, result) = until(&mut rx, is_result).await;
    assert!(
        matches!(&result, EventKind::TurnResult { is_error: true, terminal_reason: Some(r), .. }
            if r == "aborted_streaming"),
        "{result:?}"
    );
    session.prompt("go on", "alice").await.expect("prompt");
    let (_, result) = until(&mut rx, is_result).await;
    assert!(
        matches!(&result, EventKind::TurnResult { is_error: false, text: Some(t), .. }
            if t == "after the interrupt"),
        "{result:?}"
    );
    h.engine.stop_all().await;
}

#[tokio::test]
async fn an_api_500_ends_the_turn_with_an_error_and_the_session_stays_usable() {
    let h = Harness::with(
        "api500",
        |_| {
            json!([
                {"kind": "http_error", "status": 500, "message": "fake 500", "times": 3},
                {"kind": "message", "blocks": [{"type": "text", "text": "recovered"}]}
            ])
        },
        SessionConfig::default(),
        Some(2),
    )
    .await;
    let (session, mut rx) = h.start().await;
    session
        .prompt("this will fail", "alice")
        .await
        .expect("prompt");
    let (seen, result) = until(&mut rx, is_result).await;
    assert!(
        seen.iter().any(|k| matches!(k, EventKind::ApiRetry { .. })),
        "{seen:#?}"
    );
    assert!(
        matches!(
            &result,
            EventKind::TurnResult {
                is_error: true,
                api_error_status: Some(500),
                ..
            }
        ),
        "{result:?}"
    );
    let (_, error) = until(&mut rx, |k| matches!(k, EventKind::Error { .. })).await;
    assert!(
        matches!(&error, EventKind::Error { error: SessionErrorKind::Turn, message } if message.contains("500")),
        "{error:?}"
    );
    session.prompt("try again", "alice").await.expect("prompt");
    let (_, result) = until(&mut rx, is_result).await;
    assert!(
        matches!(&result, EventKind::TurnResult { is_error: false, text: Some(t), .. } if t == "recovered")
    );
    h.engine.stop_all().await;
}

#[tokio::test]
async fn a_new_engine_on_the_same_store_resumes_the_conversation() {
    let h = Harness::new("resume", |_| {
        json!([
            {"kind": "message", "blocks": [{"type": "text", "text": "I will remember PINEAPPLE."}]},
            {"kind": "message", "blocks": [{"type": "text", "text": "The word was PINEAPPLE."}]}
        ])
    })
    .await;
    let (session, mut rx) = h.start().await;
    session
        .prompt("remember PINEAPPLE", "alice")
        .await
        .expect("prompt");
    until(&mut rx, is_result).await;
    let id = session.id().to_owned();
    let pid = session.status().await.expect("status").pid.expect("pid");
    // A plugin restart: the engine and every handle go away without a clean stop.
    drop((session, rx));
    let Harness {
        dir,
        server,
        env,
        engine,
        ..
    } = h;
    drop(engine);
    wait_gone(pid).await;

    let engine = engine_for(&dir.0, &env, SessionConfig::default()).await;
    assert_eq!(
        engine.recover_from_store().await.expect("recover").sessions,
        vec![id.clone()]
    );
    let session = engine.get(&id).expect("recovered session");
    assert_eq!(
        session.status().await.expect("status").state,
        SessionState::Stopped
    );
    let mut rx = session.subscribe();
    session
        .prompt("what was the word?", "alice")
        .await
        .expect("prompt");
    let (_, result) = until(&mut rx, is_result).await;
    assert!(
        matches!(
            result,
            EventKind::TurnResult {
                is_error: false,
                ..
            }
        ),
        "{result:?}"
    );
    let requests: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r["kind"] == "stream")
        .map(|r| r["body"]["messages"].to_string())
        .collect();
    let last = requests.last().expect("a model request after resume");
    assert!(
        last.contains("remember PINEAPPLE") && last.contains("what was the word?"),
        "the resumed CLI did not replay the conversation: {last}"
    );
    engine.stop_all().await;
}

/// Every live descendant of `root` with its command line, from /proc.
fn descendants(root: u32) -> Vec<(u32, String)> {
    let mut table = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // After the command name's ")": state ppid pgrp …
            let fields: Vec<String> = stat
                .rsplit_once(") ")
                .map(|(_, rest)| rest.split(' ').map(str::to_owned).collect())
                .unwrap_or_default();
            let ppid = fields.get(1).and_then(|p| p.parse::<u32>().ok());
            if fields.first().map(String::as_str) == Some("Z") {
                continue;
            }
            if let Some(ppid) = ppid {
                table.push((pid, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut parents = vec![root];
    while let Some(parent) = parents.pop() {
        for (pid, ppid) in &table {
            if *ppid == parent {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                    .unwrap_or_default();
                out.push((*pid, cmdline));
                parents.push(*pid);
            }
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").and_then(|(_, r)| r.chars().next()))
        .is_some_and(|state| state != 'Z' && state != 'X')
}

async fn wait_gone(pid: u32) {
    for _ in 0..100 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("process {pid} is still alive");
}

#[tokio::test]
async fn stop_kills_the_whole_process_tree() {
    let h = Harness::new("stop", |_| {
        json!([
            {"kind": "message", "blocks": [{"type": "tool_use", "name": "Bash",
                "input": {"command": "echo started && sleep 1000", "description": "Sleep a long time"}}]},
            {"kind": "message", "blocks": [{"type": "text", "text": "slept"}]}
        ])
    })
    .await;
    let (session, mut rx) = h.start().await;
    session.prompt("sleep", "alice").await.expect("prompt");
    let pgid = session.status().await.expect("status").pid.expect("pid");
    // Approve the Bash call if this CLI asks (read-only commands usually run unasked).
    let mut sleeper = None;
    let mut seen = Vec::new();
    for _ in 0..600 {
        while let Ok(event) = rx.try_recv() {
            seen.push(event.kind.clone());
            if is_request(&event.kind) {
                session
                    .approve(&request_id(&event.kind), Decision::Allow, "alice")
                    .await
                    .expect("approve");
            }
        }
        sleeper = descendants(pgid)
            .into_iter()
            .find(|(_, cmd)| cmd.starts_with("sleep 1000"));
        if sleeper.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (sleep_pid, _) = sleeper.unwrap_or_else(|| {
        panic!(
            "no `sleep 1000` under the CLI {pgid}: {:?}; events {seen:#?}",
            descendants(pgid)
        )
    });
    session.stop("alice").await.expect("stop");
    assert_eq!(
        session.status().await.expect("status").state,
        SessionState::Stopped
    );
    wait_gone(sleep_pid).await;
    wait_gone(pgid).await;
}

#[tokio::test]
async fn a_missing_project_dir_or_cli_is_a_typed_error() {
    let h = Harness::new("bad-input", |_| json!([])).await;
    let mut spec = h.spec();
    spec.project_path = h.dir.0.join("no-such-project");
    match h.engine.start(spec).await {
        Err(EngineError::Spawn(SpawnError::ProjectDirMissing(p))) => {
            assert_eq!(p, h.dir.0.join("no-such-project"))
        }
        other => panic!("{other:?}"),
    }
    let engine = h
        .engine_with_cli("other", h.dir.0.join("no-such-claude"))
        .await;
    assert!(matches!(
        engine.start(h.spec()).await,
        Err(EngineError::Spawn(SpawnError::CliMissing(_)))
    ));
    assert!(h
        .engine
        .store()
        .sessions()
        .await
        .expect("sessions")
        .is_empty());
}

fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[tokio::test]
async fn a_cli_that_exits_at_once_is_crashed_with_its_stderr_tail() {
    let h = Harness::new("exits", |_| json!([])).await;
    let script = h.dir.0.join("broken-claude");
    write_script(
        &script,
        "echo 'warming up' >&2\necho 'Error: config is corrupt' >&2\nexit 7",
    );
    let engine = h.engine_with_cli("e", script).await;
    let mut all = engine.observe();
    let session = engine.start(h.spec()).await.expect("spawn itself works");
    let (_, crashed) = until(&mut all, |k| matches!(k, EventKind::Crashed { .. })).await;
    match crashed {
        EventKind::Crashed {
            exit_code,
            stderr_tail,
            ..
        } => {
            assert_eq!(exit_code, Some(7));
            assert_eq!(stderr_tail, vec!["warming up", "Error: config is corrupt"]);
        }
        _ => unreachable!(),
    }
    let status = session.status().await.expect("status");
    assert_eq!(status.state, SessionState::Crashed);
    assert_eq!(status.last_exit.and_then(|e| e.code), Some(7));
}

#[tokio::test]
async fn garbage_on_the_cli_stdout_is_skipped_and_the_session_survives() {
    let h = Harness::new(
        "garbage",
        |_| json!([{"kind": "message", "blocks": [{"type": "text", "text": "still here"}]}]),
    )
    .await;
    // The real CLI behind a wrapper that prints junk first (the env is cleared, so the real
    // path is baked into the script).
    let wrapper = h.dir.0.join("noisy-claude");
    write_script(
        &wrapper,
        &format!(
            "echo 'this is not json'\necho '[1,2,3]'\nexec '{}' \"$@\"",
            cli_path(GET_CLI).display()
        ),
    );
    let engine = h.engine_with_cli("g", wrapper).await;
    let mut all = engine.observe();
    let session = engine.start(h.spec()).await.expect("start");
    let (_, error) = until(&mut all, |k| matches!(k, EventKind::Error { .. })).await;
    assert!(
        matches!(&error, EventKind::Error { error: SessionErrorKind::GarbageLine, message } if message.contains("this is not json")),
        "{error:?}"
    );
    session
        .prompt("are you there?", "alice")
        .await
        .expect("prompt");
    let (_, result) = until(&mut all, is_result).await;
    assert!(
        matches!(&result, EventKind::TurnResult { is_error: false, text: Some(t), .. } if t == "still here")
    );
    engine.stop_all().await;
}

/// Finds `<cli session id>.jsonl` under the CLI's HOME (`.claude/projects/<cwd>/`).
fn cli_transcript(home: &Path, cli_session_id: &str) -> Option<PathBuf> {
    let projects = std::fs::read_dir(home.join(".claude/projects")).ok()?;
    projects
        .flatten()
        .map(|dir| dir.path().join(format!("{cli_session_id}.jsonl")))
        .find(|path| path.is_file())
}

#[tokio::test]
async fn a_conversation_that_cannot_be_resumed_is_reported_and_the_next_prompt_starts_fresh() {
    let h = Harness::new("lost-transcript", |_| {
        json!([
            {"kind": "message", "blocks": [{"type": "text", "text": "first answer"}]},
            {"kind": "message", "blocks": [{"type": "text", "text": "fresh answer"}]}
        ])
    })
    .await;
    let (session, mut rx) = h.start().await;
    session.prompt("hello", "alice").await.expect("prompt");
    until(&mut rx, is_result).await;
    session.stop("alice").await.expect("stop");
    let cli_id = session
        .status()
        .await
        .expect("status")
        .cli_session_id
        .expect("confirmed cli session id");
    let transcript = cli_transcript(&h.env.home_dir, &cli_id).expect("the CLI wrote a transcript");
    std::fs::remove_file(&transcript).expect("remove the CLI's transcript");

    session
        .prompt("are you there?", "alice")
        .await
        .expect("prompt");
    let (_, error) = until(&mut rx, |k| {
        matches!(
            k,
            EventKind::Error {
                error: SessionErrorKind::ResumeFailed,
                ..
            }
        )
    })
    .await;
    assert!(matches!(error, EventKind::Error { .. }));
    let (_, crashed) = until(&mut rx, |k| matches!(k, EventKind::Crashed { .. })).await;
    assert!(
        matches!(&crashed, EventKind::Crashed { stderr_tail, .. }
            if stderr_tail.iter().any(|l| l.contains("No conversation found"))),
        "{crashed:?}"
    );
    let status = session.status().await.expect("status");
    assert_eq!(
        (status.state, status.cli_session_id),
        (SessionState::Crashed, None)
    );

    session.prompt("once more", "alice").await.expect("prompt");
    let (_, result) = until(&mut rx, is_result).await;
    assert!(
        matches!(&result, EventKind::TurnResult { is_error: false, text: Some(t), .. } if t == "fresh answer"),
        "{result:?}"
    );
    h.engine.stop_all().await;
}
