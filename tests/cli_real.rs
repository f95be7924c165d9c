//! Drives the REAL Claude Code CLI (pinned 2.1.330) against the scripted fake Messages API.
//!
//! The CLI comes from `make -f Makefile.engine tools/claude/node_modules/.bin/claude` (or env
//! CLAUDE_CLI). A missing CLI fails these tests on purpose: a silently skipped protocol test
//! would let the engine drift away from the real CLI unnoticed.
//!
//! `record_golden_transcripts` (ignored by default) rewrites tests/fixtures/cli/*.jsonl; run it
//! through the Makefile.engine target `golden-cli`.

mod support;

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use claude_code::claude::control::KnownIncomingRequest;
use claude_code::claude::messages::{KnownDelta, KnownStreamEvent, ResultMessage, StreamEvent};
use claude_code::claude::{
    spawn, ApprovalAnswer, CliLine, CliMessage, CliReader, CliSpec, CliWriter, HostRequest,
    SessionStart, StdinMessage,
};
use fake_anthropic::FakeServer;
use serde_json::{json, Value};
use support::cli::{cli_env, cli_path, fake_server};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStdin, ChildStdout};
use uuid::Uuid;

const STEP_TIMEOUT: Duration = Duration::from_secs(90);
const DENY_MESSAGE: &str = "Rejected from Mattermost by @alice";

const GET_CLI: &str = "run `make -f Makefile.engine tools/claude/node_modules/.bin/claude` \
         (or set CLAUDE_CLI). CI installs it; these tests must not pass without it.";

/// A temp dir removed on drop (keeps failures' logs only via the printed paths).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        Self::at(std::env::temp_dir().join(format!("cc-engine-{name}-{}", Uuid::new_v4().simple())))
    }

    /// A fixed path, emptied first. Golden recording uses one so the fixtures hold stable paths
    /// without scrubbing (a path may be split across `input_json_delta` chunks, which a textual
    /// scrub would corrupt).
    fn at(dir: PathBuf) -> Self {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Clone)]
enum Policy {
    Allow,
    Deny(String),
}

struct Session {
    /// Kept for its Drop: removes the temp tree when the session ends.
    _dir: TempDir,
    project: PathBuf,
    server: FakeServer,
    child: Child,
    reader: CliReader<ChildStdout>,
    writer: Option<CliWriter<ChildStdin>>,
    stderr: tokio::task::JoinHandle<String>,
    /// Every stdout line in order, for golden recording.
    lines: Vec<CliLine>,
}

impl Session {
    /// `script` gets the project dir so tool inputs can use absolute paths inside it.
    async fn start(
        name: &str,
        script: impl FnOnce(&Path) -> Value,
        max_retries: Option<u32>,
    ) -> Self {
        Self::start_in(TempDir::new(name), script, max_retries).await
    }

    async fn start_in(
        dir: TempDir,
        script: impl FnOnce(&Path) -> Value,
        max_retries: Option<u32>,
    ) -> Self {
        let cli = cli_path(GET_CLI);
        let project = dir.0.join("proj");
        std::fs::create_dir_all(&project).expect("create project dir");
        let server = fake_server(&dir.0, &project, script).await;
        let env = cli_env(cli, &dir.0, &server, max_retries);
        let spec = CliSpec::new(SessionStart::New(Uuid::new_v4()));
        let proc_ = spawn(&spec, &env, &project).expect("CLI spawns");
        let mut stderr_pipe = proc_.stderr;
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = stderr_pipe.read_to_string(&mut s).await;
            s
        });
        Self {
            _dir: dir,
            project,
            server,
            child: proc_.child,
            reader: CliReader::new(proc_.stdout),
            writer: Some(CliWriter::new(proc_.stdin)),
            stderr,
            lines: Vec::new(),
        }
    }

    async fn send(&mut self, msg: &StdinMessage) {
        let writer = self.writer.as_mut().expect("stdin still open");
        writer.send(msg).await.expect("write to CLI stdin");
    }

    /// Next stdout line; `None` at EOF. Garbage lines fail the test: the real CLI never prints any.
    async fn next_line(&mut self) -> Option<CliLine> {
        let item = tokio::time::timeout(STEP_TIMEOUT, self.reader.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no CLI output for {STEP_TIMEOUT:?}; lines so far: {}",
                    self.lines.len()
                )
            })?;
        let line = item.expect("CLI stdout line parses");
        self.lines.push(line.clone());
        Some(line)
    }

    async fn initialize(&mut self) {
        self.send(&StdinMessage::request("init-1", HostRequest::Initialize {}))
            .await;
        loop {
            let line = self
                .next_line()
                .await
                .expect("CLI exited before answering initialize");
            if let CliMessage::ControlResponse(r) = &line.message {
                if r.response.request_id() == "init-1" {
                    return;
                }
            }
        }
    }

    /// Sends one prompt and reads up to its `result`, answering prompts with `policy`.
    async fn turn(&mut self, prompt: &str, policy: Policy) -> (Vec<CliLine>, ResultMessage) {
        self.send(&StdinMessage::user_text(prompt, Uuid::new_v4()))
            .await;
        let mut lines = Vec::new();
        loop {
            let line = self
                .next_line()
                .await
                .expect("CLI exited before the turn's result");
            lines.push(line.clone());
            match line.message {
                CliMessage::ControlRequest(req) => {
                    let KnownIncomingRequest::CanUseTool(ask) = match req.request {
                        claude_code::claude::control::IncomingRequest::Known(k) => k,
                        other => panic!("unexpected control request {other:?}"),
                    };
                    let answer = match &policy {
                        Policy::Allow => ApprovalAnswer::Allow {
                            input: ask.input.clone(),
                        },
                        Policy::Deny(message) => ApprovalAnswer::Deny {
                            message: message.clone(),
                        },
                    };
                    let msg = StdinMessage::approval(req.request_id, answer).expect("valid answer");
                    self.send(&msg).await;
                }
                CliMessage::Result(result) => return (lines, result),
                _ => {}
            }
        }
    }

    /// Closes stdin (the clean way to stop), drains stdout, and waits for exit.
    async fn finish(&mut self) -> (ExitStatus, String) {
        if let Some(w) = self.writer.take() {
            w.close().await.expect("close stdin");
        }
        while self.next_line().await.is_some() {}
        let status = tokio::time::timeout(STEP_TIMEOUT, self.child.wait())
            .await
            .expect("CLI exits after stdin closes")
            .expect("wait for CLI");
        let stderr = (&mut self.stderr).await.unwrap_or_default();
        (status, stderr)
    }

    /// All raw stdout lines, exactly as the CLI printed them.
    fn transcript(&self) -> String {
        self.lines.iter().map(|l| format!("{}\n", l.raw)).collect()
    }
}

fn text_script(_: &Path) -> Value {
    json!([{"kind": "message", "blocks": [
        {"type": "thinking", "thinking": "The user wants a greeting."},
        {"type": "text", "text": "Hello from the fake model, streamed word by word."}]}])
}

fn write_script(project: &Path) -> Value {
    let file = project.join("hello.txt").display().to_string();
    json!([
        {"kind": "message", "blocks": [
            {"type": "text", "text": "I will write the file."},
            {"type": "tool_use", "name": "Write", "input": {"file_path": file, "content": "hi there\n"}}]},
        {"kind": "message", "blocks": [
            {"type": "tool_use", "name": "Edit",
             "input": {"file_path": file, "old_string": "hi there", "new_string": "hello world"}}]},
        {"kind": "message", "blocks": [{"type": "text", "text": "Done: hello.txt says hello world."}]}
    ])
}

fn deny_script(project: &Path) -> Value {
    let file = project.join("denied.txt").display().to_string();
    json!([
        {"kind": "message", "blocks": [
            {"type": "tool_use", "name": "Write", "input": {"file_path": file, "content": "should not exist\n"}}]},
        {"kind": "message", "blocks": [{"type": "text", "text": "Understood, I will not write it."}]}
    ])
}

fn bash_script(_: &Path) -> Value {
    json!([
        {"kind": "message", "blocks": [
            {"type": "tool_use", "name": "Bash",
             "input": {"command": "mkdir -p out && echo bash-ran > out/marker.txt && cat out/marker.txt",
                       "description": "Write and show a marker"}}]},
        {"kind": "message", "blocks": [{"type": "text", "text": "The command printed bash-ran."}]}
    ])
}

/// 3 calls = the first attempt plus CLAUDE_CODE_MAX_RETRIES=2 retries.
fn error_500_script(_: &Path) -> Value {
    json!([{"kind": "http_error", "status": 500, "message": "fake 500", "times": 3}])
}

fn text_deltas(lines: &[CliLine]) -> String {
    lines
        .iter()
        .filter_map(|l| match &l.message {
            CliMessage::StreamEvent(e) => match &e.event {
                StreamEvent::Known(KnownStreamEvent::ContentBlockDelta {
                    delta:
                        claude_code::claude::messages::Delta::Known(KnownDelta::TextDelta { text }),
                    ..
                }) => Some(text.as_str()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn text_turn_streams_deltas_then_result_with_cost() {
    let mut s = Session::start("text", text_script, None).await;
    s.initialize().await;
    let (lines, result) = s.turn("say hello", Policy::Allow).await;
    let deltas = text_deltas(&lines);
    assert_eq!(deltas, "Hello from the fake model, streamed word by word.");
    let first_delta = lines
        .iter()
        .position(|l| matches!(l.message, CliMessage::StreamEvent(_)))
        .expect("stream events");
    assert!(
        first_delta < lines.len() - 1,
        "deltas come before the result"
    );
    assert!(!result.is_error, "{result:?}");
    assert_eq!(
        result.result.as_deref(),
        Some("Hello from the fake model, streamed word by word.")
    );
    assert!(
        result.total_cost_usd.is_some_and(|c| c > 0.0),
        "cost: {result:?}"
    );
    let usage = result.usage.expect("usage");
    assert!(
        usage.input_tokens > 0 && usage.output_tokens > 0,
        "{usage:?}"
    );
    let (status, stderr) = s.finish().await;
    assert!(status.success(), "exit {status:?}, stderr {stderr}");
}

#[tokio::test]
async fn write_allowed_creates_the_file() {
    let mut s = Session::start("write", write_script, None).await;
    let (_, result) = s.turn("write hello.txt", Policy::Allow).await;
    assert!(!result.is_error, "{result:?}");
    let text = std::fs::read_to_string(s.project.join("hello.txt")).expect("file written");
    assert_eq!(text, "hello world\n");
    s.finish().await;
}

#[tokio::test]
async fn deny_with_message_leaves_no_file_and_tells_the_model() {
    let mut s = Session::start("deny", deny_script, None).await;
    let (_, result) = s
        .turn("write denied.txt", Policy::Deny(DENY_MESSAGE.into()))
        .await;
    assert!(
        !s.project.join("denied.txt").exists(),
        "denied write must not happen"
    );
    assert_eq!(result.permission_denials.len(), 1, "{result:?}");
    assert_eq!(result.permission_denials[0].tool_name, "Write");
    let requests = s.server.requests();
    let followup = requests
        .iter()
        .filter(|r| r["kind"] == "stream")
        .nth(1)
        .expect("a follow-up model request after the deny");
    assert!(
        followup["body"]["messages"]
            .to_string()
            .contains(DENY_MESSAGE),
        "deny message not in the tool_result sent to the model"
    );
    s.finish().await;
}

/// Rewrites tests/fixtures/cli/*.jsonl from the real CLI. Run via `make -f Makefile.engine golden-cli`.
#[tokio::test]
#[ignore = "records golden fixtures; run explicitly"]
async fn record_golden_transcripts() {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cli");
    std::fs::create_dir_all(&out).expect("fixtures dir");
    type Scenario = (
        &'static str,
        fn(&Path) -> Value,
        &'static str,
        Policy,
        Option<u32>,
    );
    let scenarios: Vec<Scenario> = vec![
        (
            "text_partial",
            text_script,
            "say hello",
            Policy::Allow,
            None,
        ),
        (
            "write_allow",
            write_script,
            "write hello.txt then edit it",
            Policy::Allow,
            None,
        ),
        (
            "write_deny",
            deny_script,
            "write denied.txt",
            Policy::Deny(DENY_MESSAGE.into()),
            None,
        ),
        ("bash", bash_script, "run a command", Policy::Allow, None),
        (
            "api_error_500",
            error_500_script,
            "this will fail",
            Policy::Allow,
            Some(2),
        ),
    ];
    for (name, script, prompt, policy, retries) in scenarios {
        let dir = TempDir::at(std::env::temp_dir().join("golden"));
        let mut s = Session::start_in(dir, script, retries).await;
        s.initialize().await;
        s.turn(prompt, policy).await;
        let (status, stderr) = s.finish().await;
        std::fs::write(out.join(format!("{name}.jsonl")), s.transcript()).expect("write fixture");
        let requests: Vec<String> = s
            .server
            .requests()
            .iter()
            .map(|r| format!("{} {}", r["kind"], r["path"]))
            .collect();
        eprintln!(
            "{name}: {} lines, exit {status:?}, requests {requests:?}, stderr {stderr:?}",
            s.lines.len()
        );
    }
}
