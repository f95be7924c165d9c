//! The real Claude Code CLI against the scripted fake Messages API (crates/fake-anthropic).

use std::path::{Path, PathBuf};

use claude_code::claude::CliEnv;
use fake_anthropic::{FakeServer, Script};
use serde_json::Value;

/// The CLI from env CLAUDE_CLI, else tools/claude/node_modules/.bin/claude. A missing CLI fails
/// the test on purpose; `how_to_get_it` says what to run. CLIs started from then on run under
/// the plugin executable's supervisor, as in the plugin process.
pub fn cli_path(how_to_get_it: &str) -> PathBuf {
    claude_code::supervisor::supervise_with(PathBuf::from(env!("CARGO_BIN_EXE_claude-code")));
    let path = std::env::var_os("CLAUDE_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/claude/node_modules/.bin/claude")
        });
    assert!(
        path.is_file(),
        "Claude Code CLI not found at {}: {how_to_get_it}",
        path.display()
    );
    path
}

/// The environment the CLI runs in: HOME under `dir`, the fake server as its Messages API.
pub fn cli_env(
    cli_path: PathBuf,
    dir: &Path,
    server: &FakeServer,
    max_retries: Option<u32>,
) -> CliEnv {
    CliEnv {
        cli_path,
        home_dir: dir.join("home"),
        path: std::env::var_os("PATH"),
        lang: Some("C.UTF-8".into()),
        anthropic: vec![
            ("ANTHROPIC_BASE_URL".into(), server.base_url()),
            ("ANTHROPIC_API_KEY".into(), "sk-test".into()),
        ],
        proxy: Vec::new(),
        disable_telemetry: true,
        disable_nonessential_traffic: true,
        disable_autoupdater: true,
        max_retries,
        emit_session_state_events: false,
    }
}

/// Starts the fake Messages API on `script(project)`, logging requests to dir/requests.jsonl.
pub async fn fake_server(
    dir: &Path,
    project: &Path,
    script: impl FnOnce(&Path) -> Value,
) -> FakeServer {
    let script = Script::from_json(&script(project).to_string()).expect("valid script");
    FakeServer::start(script, Some(&dir.join("requests.jsonl")))
        .await
        .expect("fake server starts")
}

/// Every `messages` array the CLI sent to the fake model, as text.
pub fn model_requests(server: &FakeServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter(|r| r["kind"] == "stream")
        .map(|r| r["body"]["messages"].to_string())
        .collect()
}
