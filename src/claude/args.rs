//! The CLI's command line, built by a pure function from a typed spec so that it can be tested
//! as a table (no process, no environment).

use std::ffi::OsString;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Permission modes we allow a session to use. `bypassPermissions` is deliberately absent: it
/// refuses to run as root and would run every tool unasked in a shared channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PermissionMode {
    Default,
    AcceptEdits,
    Plan,
    DontAsk,
    Auto,
}

impl PermissionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionMode::Default => "default",
            PermissionMode::AcceptEdits => "acceptEdits",
            PermissionMode::Plan => "plan",
            PermissionMode::DontAsk => "dontAsk",
            PermissionMode::Auto => "auto",
        }
    }
}

/// How the process relates to the stored conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStart {
    /// A new conversation with an id the host chose, so the thread→session mapping exists
    /// before the CLI prints anything.
    New(Uuid),
    /// Continue a stored conversation after a restart or idle reaping (history is replayed).
    Resume(Uuid),
}

/// Everything that shapes the CLI's argv.
#[derive(Debug, Clone, PartialEq)]
pub struct CliSpec {
    pub session: SessionStart,
    pub model: Option<String>,
    pub permission_mode: Option<PermissionMode>,
    /// Rules such as `Bash(python3:*)` that run without a prompt.
    pub allowed_tools: Vec<String>,
    /// Tools removed from the model's tool set.
    pub disallowed_tools: Vec<String>,
    /// Extra directories the file tools may use (a nonexistent one is silently dropped by the CLI).
    pub add_dirs: Vec<PathBuf>,
    pub append_system_prompt: Option<String>,
    /// Token deltas (`stream_event`), needed for live typing.
    pub include_partial_messages: bool,
}

impl CliSpec {
    pub fn new(session: SessionStart) -> Self {
        Self {
            session,
            model: None,
            permission_mode: None,
            allowed_tools: Vec::new(),
            disallowed_tools: Vec::new(),
            add_dirs: Vec::new(),
            append_system_prompt: None,
            include_partial_messages: true,
        }
    }
}

/// argv (without the program) for `spec`.
pub fn build_args(spec: &CliSpec) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |s: &str| args.push(OsString::from(s));
    // The four flags stream-json mode needs (without --verbose the CLI exits 1), plus the hidden
    // stdio prompt tool: without it every "ask" is silently denied.
    for flag in [
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-prompt-tool",
        "stdio",
    ] {
        push(flag);
    }
    if spec.include_partial_messages {
        push("--include-partial-messages");
    }
    // Project settings may carry hooks that run even in -p mode; only the plugin's own HOME
    // settings are trusted.
    push("--setting-sources");
    push("user");
    match spec.session {
        SessionStart::New(id) => {
            push("--session-id");
            push(&id.to_string());
        }
        SessionStart::Resume(id) => {
            push("--resume");
            push(&id.to_string());
        }
    }
    if let Some(model) = &spec.model {
        push("--model");
        push(model);
    }
    if let Some(mode) = spec.permission_mode {
        push("--permission-mode");
        push(mode.as_str());
    }
    // One flag per value: rules may contain commas and spaces, which a joined list would split.
    for tool in &spec.allowed_tools {
        push("--allowedTools");
        push(tool);
    }
    for tool in &spec.disallowed_tools {
        push("--disallowedTools");
        push(tool);
    }
    if let Some(prompt) = &spec.append_system_prompt {
        push("--append-system-prompt");
        push(prompt);
    }
    for dir in &spec.add_dirs {
        args.push(OsString::from("--add-dir"));
        args.push(dir.clone().into_os_string());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "293baa66-089c-4cd0-bedb-ddd021f1566f";

    fn id() -> Uuid {
        Uuid::parse_str(ID).expect("valid uuid")
    }

    const BASE: [&str; 8] = [
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-prompt-tool",
        "stdio",
    ];

    fn argv(spec: &CliSpec) -> Vec<String> {
        build_args(spec)
            .into_iter()
            .map(|a| a.into_string().expect("utf-8 arg"))
            .collect()
    }

    fn expect(tail: &[&str]) -> Vec<String> {
        BASE.iter().chain(tail).map(|s| s.to_string()).collect()
    }

    #[test]
    fn table_of_specs_to_argv() {
        let full = CliSpec {
            session: SessionStart::Resume(id()),
            model: Some("sonnet".into()),
            permission_mode: Some(PermissionMode::AcceptEdits),
            allowed_tools: vec!["Bash(python3:*)".into(), "Read".into()],
            disallowed_tools: vec!["WebFetch".into()],
            add_dirs: vec![
                PathBuf::from("/srv/shared"),
                PathBuf::from("/srv/other dir"),
            ],
            append_system_prompt: Some("You are in a channel.".into()),
            include_partial_messages: false,
        };
        let table: Vec<(CliSpec, Vec<String>)> = vec![
            (
                CliSpec::new(SessionStart::New(id())),
                expect(&[
                    "--include-partial-messages",
                    "--setting-sources",
                    "user",
                    "--session-id",
                    ID,
                ]),
            ),
            (
                CliSpec {
                    include_partial_messages: false,
                    ..CliSpec::new(SessionStart::Resume(id()))
                },
                expect(&["--setting-sources", "user", "--resume", ID]),
            ),
            (
                CliSpec {
                    permission_mode: Some(PermissionMode::Plan),
                    ..CliSpec::new(SessionStart::New(id()))
                },
                expect(&[
                    "--include-partial-messages",
                    "--setting-sources",
                    "user",
                    "--session-id",
                    ID,
                    "--permission-mode",
                    "plan",
                ]),
            ),
            (
                full,
                expect(&[
                    "--setting-sources",
                    "user",
                    "--resume",
                    ID,
                    "--model",
                    "sonnet",
                    "--permission-mode",
                    "acceptEdits",
                    "--allowedTools",
                    "Bash(python3:*)",
                    "--allowedTools",
                    "Read",
                    "--disallowedTools",
                    "WebFetch",
                    "--append-system-prompt",
                    "You are in a channel.",
                    "--add-dir",
                    "/srv/shared",
                    "--add-dir",
                    "/srv/other dir",
                ]),
            ),
        ];
        for (spec, want) in table {
            assert_eq!(argv(&spec), want, "{spec:?}");
        }
    }

    #[test]
    fn permission_modes_use_the_cli_spelling() {
        for (mode, s) in [
            (PermissionMode::Default, "default"),
            (PermissionMode::AcceptEdits, "acceptEdits"),
            (PermissionMode::Plan, "plan"),
            (PermissionMode::DontAsk, "dontAsk"),
            (PermissionMode::Auto, "auto"),
        ] {
            assert_eq!(mode.as_str(), s);
            assert_eq!(
                serde_json::to_value(mode).ok(),
                Some(serde_json::Value::String(s.into()))
            );
        }
    }
}
