//! What a session publishes for the chat layer. Every event is stored before it is sent (see
//! `store`), so a subscriber that lagged can catch up from the transcript.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::state::SessionState;
use crate::claude::messages::{PatchHunk, Usage};

/// One published event. `seq` is the transcript row it was stored as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEvent {
    pub session_id: String,
    pub seq: i64,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    StatusChanged {
        from: SessionState,
        to: SessionState,
        /// The prompt whose turn starts, on the change to `Running`: a turn's posts and live
        /// events are named by it (events stored before it existed lack it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt_id: Option<String>,
    },
    /// A prompt was accepted (and queued if a turn is running).
    Prompt {
        prompt_id: String,
        author: String,
        text: String,
        /// Where the person's own words start in `text` (after the plugin's blocks).
        #[serde(default, skip_serializing_if = "is_zero")]
        words_at: usize,
    },
    /// Live preview of assistant text; the `AssistantText` that follows is authoritative.
    TextDelta {
        text: String,
    },
    AssistantText {
        message_id: Option<String>,
        text: String,
    },
    AssistantThinking {
        text: String,
    },
    /// The model called a tool (whether or not it needs approval).
    ToolUse {
        tool_use_id: String,
        tool: String,
        input: Value,
    },
    /// The CLI asks whether the tool may run; answer with `SessionHandle::approve`.
    ToolUseRequested {
        request_id: String,
        tool_use_id: Option<String>,
        tool: String,
        input: Value,
        description: Option<String>,
        reason: Option<String>,
        /// AskUserQuestion / ExitPlanMode: render the question or plan.
        requires_user_interaction: bool,
    },
    ToolApproved {
        request_id: String,
        by: String,
        /// `allow` | `allow_with_input` | `allow_for_session`.
        decision: String,
        input: Value,
    },
    ToolDenied {
        request_id: String,
        by: String,
        message: String,
        interrupt: bool,
    },
    /// Nobody answered in time; the CLI got a deny carrying `message`.
    ToolApprovalExpired {
        request_id: String,
        message: String,
    },
    /// The CLI withdrew the request (an interrupt), or the process went away.
    ToolApprovalCancelled {
        request_id: String,
    },
    ToolResult {
        tool_use_id: String,
        is_error: bool,
        /// The text the model saw.
        content: String,
        file_path: Option<String>,
        /// Write/Edit diff hunks (`structuredPatch`).
        patch: Option<Vec<PatchHunk>>,
        stdout: Option<String>,
        stderr: Option<String>,
    },
    ApiRetry {
        attempt: Option<u32>,
        max_retries: Option<u32>,
        error_status: Option<u16>,
        error: Option<String>,
    },
    /// The end of a turn; `is_error` covers API errors (which arrive as subtype `success`).
    TurnResult {
        prompt_id: Option<String>,
        is_error: bool,
        subtype: String,
        text: Option<String>,
        terminal_reason: Option<String>,
        /// Cumulative for the CLI process (the CLI's own accounting).
        total_cost_usd: Option<f64>,
        /// This turn only.
        usage: Option<Usage>,
        duration_ms: Option<u64>,
        num_turns: Option<u32>,
        api_error_status: Option<u16>,
        denied_tools: Vec<String>,
    },
    Error {
        error: SessionErrorKind,
        message: String,
    },
    /// The process exited without being asked to.
    Crashed {
        exit_code: Option<i32>,
        signal: Option<i32>,
        stderr_tail: Vec<String>,
        dropped_prompts: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionErrorKind {
    /// The turn ended with `is_error` (model API failure, max turns, interrupt…).
    Turn,
    /// A stdout line that is not a message; it was skipped.
    GarbageLine,
    /// Starting the CLI failed.
    Spawn,
    /// Writing to the CLI failed.
    Write,
    /// The CLI did not answer `initialize` in time.
    StartupTimeout,
    /// `--resume` found no conversation (its transcript under the CLI's HOME is gone).
    ResumeFailed,
    /// The transcript could not be written; the event was still delivered.
    Store,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl EventKind {
    /// `(messages.type, messages.kind, messages.content)` for the transcript row.
    pub fn transcript_columns(&self) -> (&'static str, &'static str, String) {
        match self {
            EventKind::StatusChanged { to, .. } => ("system", "status", to.as_str().to_owned()),
            EventKind::Prompt { text, .. } => ("user", "prompt", text.clone()),
            EventKind::TextDelta { text } => ("assistant", "text_delta", text.clone()),
            EventKind::AssistantText { text, .. } => ("assistant", "assistant_text", text.clone()),
            EventKind::AssistantThinking { text } => ("assistant", "thinking", text.clone()),
            EventKind::ToolUse { tool, input, .. } => {
                ("assistant", "tool_use", format!("{tool} {input}"))
            }
            EventKind::ToolUseRequested { tool, input, .. } => {
                ("system", "tool_use_requested", format!("{tool} {input}"))
            }
            EventKind::ToolApproved { decision, by, .. } => {
                ("system", "tool_approved", format!("{decision} by {by}"))
            }
            EventKind::ToolDenied { message, .. } => ("system", "tool_denied", message.clone()),
            EventKind::ToolApprovalExpired { message, .. } => {
                ("system", "tool_approval_expired", message.clone())
            }
            EventKind::ToolApprovalCancelled { request_id } => {
                ("system", "tool_approval_cancelled", request_id.clone())
            }
            EventKind::ToolResult { content, .. } => ("user", "tool_result", content.clone()),
            EventKind::ApiRetry { error, .. } => {
                ("system", "api_retry", error.clone().unwrap_or_default())
            }
            EventKind::TurnResult { text, .. } => {
                ("assistant", "result", text.clone().unwrap_or_default())
            }
            EventKind::Error { message, .. } => ("system", "error", message.clone()),
            EventKind::Crashed { stderr_tail, .. } => ("system", "crashed", stderr_tail.join("\n")),
        }
    }
}
