//! An in-process fake of the CLI for unit tests: the same stream-json lines over in-memory
//! pipes, so the actor's timers can run on tokio's paused clock (a real child process would let
//! the paused clock jump while we wait on its pipes). The real CLI is covered by
//! tests/e2e_engine.rs; this fake only mimics the shapes that CLI 2.1.330 was seen to produce.
//!
//! Behaviour by prompt text:
//! - `ask <tool>`: a `can_use_tool` for that tool; allow → success result "allowed <input>",
//!   deny → result "denied: <message>".
//! - `hang`: starts a turn and waits; an interrupt ends it with an aborted error result (and a
//!   `control_cancel_request` first if an approval is pending).
//! - `crash`: writes to stderr and exits with code 3.
//! - `garbage`: a non-JSON stdout line, then a normal answer.
//! - control requests: success; `set_model` to `bogus` fails like an unknown model.
//! - anything else: a text delta, an assistant block and a success result echoing the text.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::{oneshot, watch};

use super::launcher::{CliLauncher, ExitInfo, LaunchedCli, ProcessSignals};
use crate::claude::spawn::SpawnError;
use crate::claude::CliSpec;

/// Records every spec it was launched with, so tests can check `--resume`.
#[derive(Default, Clone)]
pub struct FakeLauncher {
    pub specs: Arc<Mutex<Vec<CliSpec>>>,
    /// When set, every launch fails like a missing binary.
    pub fail: Arc<Mutex<bool>>,
}

struct FakeSignals {
    kill: watch::Sender<Option<i32>>,
}

impl ProcessSignals for FakeSignals {
    fn terminate(&self) {
        let _ = self.kill.send(Some(15));
    }
    fn kill(&self) {
        let _ = self.kill.send(Some(9));
    }
    fn pid(&self) -> Option<u32> {
        None
    }
    fn identity(&self) -> Option<crate::proctree::ProcessIdentity> {
        None
    }
}

impl CliLauncher for FakeLauncher {
    fn launch(&self, spec: &CliSpec, _project_dir: &Path) -> Result<LaunchedCli, SpawnError> {
        if self.fail.lock().map(|f| *f).unwrap_or(false) {
            return Err(SpawnError::CliMissing("/nonexistent/claude".into()));
        }
        if let Ok(mut specs) = self.specs.lock() {
            specs.push(spec.clone());
        }
        let (stdin_host, stdin_cli) = tokio::io::duplex(64 * 1024);
        let (stdout_cli, stdout_host) = tokio::io::duplex(64 * 1024);
        let (stderr_cli, stderr_host) = tokio::io::duplex(4096);
        let (kill_tx, kill_rx) = watch::channel(None);
        let (exit_tx, exit_rx) = oneshot::channel();
        let session_id = match spec.session {
            crate::claude::SessionStart::New(id) | crate::claude::SessionStart::Resume(id) => {
                id.to_string()
            }
        };
        tokio::spawn(async move {
            let info = tokio::select! {
                code = run_fake(stdin_cli, stdout_cli, stderr_cli, session_id) => ExitInfo { code: Some(code), signal: None },
                signal = wait_killed(kill_rx) => ExitInfo { code: None, signal: Some(signal) },
            };
            let _ = exit_tx.send(info);
        });
        Ok(LaunchedCli {
            stdin: Box::pin(stdin_host),
            stdout: Box::pin(stdout_host),
            stderr: Box::pin(stderr_host),
            exit: Box::pin(async move {
                exit_rx.await.unwrap_or(ExitInfo {
                    code: None,
                    signal: None,
                })
            }),
            signals: Box::new(FakeSignals { kill: kill_tx }),
        })
    }
}

async fn wait_killed(mut rx: watch::Receiver<Option<i32>>) -> i32 {
    loop {
        if let Some(signal) = *rx.borrow_and_update() {
            return signal;
        }
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

async fn emit(out: &mut DuplexStream, value: Value) {
    let _ = out.write_all(format!("{value}\n").as_bytes()).await;
}

fn result(session_id: &str, is_error: bool, subtype: &str, text: Option<&str>) -> Value {
    json!({"type": "result", "subtype": subtype, "is_error": is_error, "result": text,
           "num_turns": 1, "duration_ms": 5, "total_cost_usd": 0.001,
           "usage": {"input_tokens": 10, "output_tokens": 3},
           "terminal_reason": if is_error { "aborted_streaming" } else { "completed" },
           "permission_denials": [], "session_id": session_id})
}

/// Returns the exit code.
async fn run_fake(
    stdin: DuplexStream,
    mut out: DuplexStream,
    mut err: DuplexStream,
    session_id: String,
) -> i32 {
    let mut lines = BufReader::new(stdin).lines();
    // The request id of a can_use_tool we wait on, and the tool input.
    let mut waiting: Option<(String, Value)> = None;
    let mut hanging = false;
    let mut asks = 0;
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            // The real CLI dies on a non-JSON stdin line.
            let _ = err.write_all(b"Error parsing streaming input line\n").await;
            return 1;
        };
        match msg["type"].as_str() {
            Some("control_request") => {
                let id = msg["request_id"].as_str().unwrap_or_default().to_owned();
                let request = &msg["request"];
                let answer = match request["subtype"].as_str() {
                    // Like a 404 from the model probe.
                    Some("set_model") if request["model"] == "bogus" => json!({
                        "subtype": "error", "request_id": id,
                        "error": "Model 'bogus' not found", "error_code": "not_found"}),
                    Some("set_model") => json!({"subtype": "success", "request_id": id,
                        "response": {"model": request["model"]}}),
                    Some("set_permission_mode") => json!({"subtype": "success", "request_id": id,
                        "response": {"mode": request["mode"]}}),
                    _ => json!({"subtype": "success", "request_id": id, "response": {}}),
                };
                emit(
                    &mut out,
                    json!({"type": "control_response", "response": answer}),
                )
                .await;
                if msg["request"]["subtype"] == "interrupt" && (hanging || waiting.is_some()) {
                    if let Some((ask_id, _)) = waiting.take() {
                        emit(
                            &mut out,
                            json!({"type": "control_cancel_request", "request_id": ask_id}),
                        )
                        .await;
                    }
                    hanging = false;
                    emit(
                        &mut out,
                        result(&session_id, true, "error_during_execution", None),
                    )
                    .await;
                }
            }
            Some("control_response") => {
                let response = &msg["response"];
                let id = response["request_id"].as_str().unwrap_or_default();
                if let Some((ask_id, input)) = waiting.take() {
                    if ask_id != id {
                        waiting = Some((ask_id, input));
                        continue;
                    }
                    let answer = &response["response"];
                    let text = if answer["behavior"] == "allow" {
                        format!("allowed {}", answer.get("updatedInput").unwrap_or(&input))
                    } else {
                        format!("denied: {}", answer["message"].as_str().unwrap_or(""))
                    };
                    emit(
                        &mut out,
                        json!({"type": "user", "message": {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": text.clone(),
                         "is_error": answer["behavior"] != "allow"}]}}),
                    )
                    .await;
                    emit(&mut out, result(&session_id, false, "success", Some(&text))).await;
                }
            }
            Some("user") => {
                let text = msg["message"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                emit(
                    &mut out,
                    json!({"type": "system", "subtype": "init", "session_id": session_id}),
                )
                .await;
                if let Some(tool) = text.strip_prefix("ask ") {
                    asks += 1;
                    let id = format!("ask-{asks}");
                    let input = json!({"file_path": "/p/a.txt", "content": "x"});
                    emit(
                        &mut out,
                        json!({"type": "control_request", "request_id": id, "request": {
                        "subtype": "can_use_tool", "tool_name": tool, "input": input,
                        "permission_suggestions": [], "tool_use_id": "toolu_1"}}),
                    )
                    .await;
                    waiting = Some((id, input));
                } else if text == "hang" {
                    hanging = true;
                } else if text == "crash" {
                    let _ = err.write_all(b"fatal: something broke\nbye\n").await;
                    return 3;
                } else {
                    if text == "garbage" {
                        let _ = out.write_all(b"this is not json\n").await;
                    }
                    emit(
                        &mut out,
                        json!({"type": "stream_event", "event": {"type": "content_block_delta",
                        "index": 0, "delta": {"type": "text_delta", "text": text}}}),
                    )
                    .await;
                    emit(
                        &mut out,
                        json!({"type": "assistant", "message": {"id": "msg_1",
                        "content": [{"type": "text", "text": text}]}}),
                    )
                    .await;
                    emit(&mut out, result(&session_id, false, "success", Some(&text))).await;
                }
            }
            _ => {}
        }
    }
    0
}
