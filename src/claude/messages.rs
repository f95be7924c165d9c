//! Typed view of the lines the CLI writes on stdout (`--output-format stream-json`).
//!
//! The CLI is a moving target (the SDK declares ~40 message types), so every enum here has an
//! `Unknown`/`Other` arm that keeps the raw JSON: an unexpected line must never end a session.
//! Fields that we do not interpret stay available in `extra` maps for storage and debugging.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::control::{ControlCancelRequest, ControlRequest, ControlResponse};

/// One stdout line of the CLI.
#[derive(Debug, Clone, PartialEq)]
pub enum CliMessage {
    System(SystemMessage),
    Assistant(AssistantMessage),
    User(UserMessage),
    StreamEvent(StreamEventMessage),
    Result(ResultMessage),
    ControlRequest(ControlRequest),
    ControlResponse(ControlResponse),
    ControlCancelRequest(ControlCancelRequest),
    CommandLifecycle(CommandLifecycle),
    ConversationReset(ConversationReset),
    /// A `type` we do not model (yet). Kept whole so it can be stored and inspected.
    Unknown(Value),
}

/// Why a line could not be turned into a [`CliMessage`].
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("line is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("line is JSON but not an object")]
    NotAnObject,
    #[error("line has no string \"type\" field")]
    MissingType,
    #[error("a {kind:?} line does not have the expected shape: {source}")]
    Shape {
        kind: String,
        #[source]
        source: serde_json::Error,
    },
}

impl CliMessage {
    /// Parses one stdout line (without its trailing newline).
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let value: Value = serde_json::from_str(line).map_err(ParseError::NotJson)?;
        Self::from_value(value)
    }

    /// Dispatches on `type`. Unknown types become [`CliMessage::Unknown`]; a known type whose
    /// body does not fit is an error, because silently dropping e.g. a `result` would hang a turn.
    pub fn from_value(value: Value) -> Result<Self, ParseError> {
        let kind = match &value {
            Value::Object(map) => match map.get("type") {
                Some(Value::String(kind)) => kind.clone(),
                _ => return Err(ParseError::MissingType),
            },
            _ => return Err(ParseError::NotAnObject),
        };
        fn typed<T: serde::de::DeserializeOwned>(
            kind: &str,
            value: Value,
        ) -> Result<T, ParseError> {
            serde_json::from_value(value).map_err(|source| ParseError::Shape {
                kind: kind.to_owned(),
                source,
            })
        }
        Ok(match kind.as_str() {
            "system" => CliMessage::System(typed(&kind, value)?),
            "assistant" => CliMessage::Assistant(typed(&kind, value)?),
            "user" => CliMessage::User(typed(&kind, value)?),
            "stream_event" => CliMessage::StreamEvent(typed(&kind, value)?),
            "result" => CliMessage::Result(typed(&kind, value)?),
            "control_request" => CliMessage::ControlRequest(typed(&kind, value)?),
            "control_response" => CliMessage::ControlResponse(typed(&kind, value)?),
            "control_cancel_request" => CliMessage::ControlCancelRequest(typed(&kind, value)?),
            "command_lifecycle" => CliMessage::CommandLifecycle(typed(&kind, value)?),
            "conversation_reset" => CliMessage::ConversationReset(typed(&kind, value)?),
            _ => CliMessage::Unknown(value),
        })
    }

    /// True when this line (or a nested part of it) is something the model does not know.
    /// Tests use it to prove the fixtures are fully understood.
    pub fn has_unknown_parts(&self) -> bool {
        match self {
            CliMessage::Unknown(_) => true,
            CliMessage::System(s) => matches!(s.event, SystemEvent::Other(_)),
            CliMessage::Assistant(a) => a.message.content.iter().any(ContentBlock::is_unknown),
            CliMessage::User(u) => match &u.message.content {
                UserContent::Blocks(blocks) => blocks.iter().any(ContentBlock::is_unknown),
                UserContent::Text(_) => false,
            },
            CliMessage::StreamEvent(e) => e.event.is_unknown(),
            CliMessage::ControlRequest(r) => r.request.is_unknown(),
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// system

/// `{"type":"system","subtype":…}`. The subtype-specific body is in `event`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SystemMessage {
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(flatten)]
    pub event: SystemEvent,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SystemEvent {
    Known(KnownSystemEvent),
    /// A subtype we do not model; kept whole (includes `type`, `subtype`).
    Other(Map<String, Value>),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "subtype", rename_all = "snake_case")]
pub enum KnownSystemEvent {
    Init(Box<SystemInit>),
    Status {
        #[serde(default)]
        status: Option<String>,
        #[serde(default, rename = "permissionMode")]
        permission_mode: Option<String>,
        #[serde(default)]
        compact_result: Option<String>,
    },
    ApiRetry {
        #[serde(default)]
        attempt: Option<u32>,
        #[serde(default)]
        max_retries: Option<u32>,
        #[serde(default)]
        retry_delay_ms: Option<f64>,
        #[serde(default)]
        error_status: Option<u16>,
        #[serde(default)]
        error: Option<String>,
    },
    PermissionDenied {
        #[serde(default)]
        tool_name: Option<String>,
        #[serde(default)]
        tool_use_id: Option<String>,
        #[serde(default)]
        decision_reason_type: Option<String>,
        #[serde(default)]
        decision_reason: Option<String>,
        #[serde(default)]
        message: Option<String>,
    },
    ThinkingTokens {
        #[serde(default)]
        estimated_tokens: Option<u64>,
        #[serde(default)]
        estimated_tokens_delta: Option<i64>,
    },
    TaskStarted(Map<String, Value>),
    TaskNotification(Map<String, Value>),
    HookStarted(Map<String, Value>),
    HookResponse(Map<String, Value>),
    CompactBoundary {
        #[serde(default)]
        compact_metadata: Option<Value>,
    },
    BackgroundTasksChanged {
        #[serde(default)]
        tasks: Vec<Value>,
    },
    Informational {
        #[serde(default)]
        content: Option<String>,
    },
    SessionStateChanged {
        /// `running` | `requires_action` | `idle`.
        state: String,
    },
}

/// `system/init`, emitted at the start of every turn (not at spawn).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SystemInit {
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default)]
    pub mcp_servers: Vec<Value>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default, rename = "permissionMode")]
    pub permission_mode: Option<String>,
    #[serde(default, rename = "apiKeySource")]
    pub api_key_source: Option<String>,
    #[serde(default)]
    pub claude_code_version: Option<String>,
    #[serde(default)]
    pub additional_directories: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

// ---------------------------------------------------------------------------------------------
// content blocks shared by assistant and user lines

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ContentBlock {
    Known(KnownBlock),
    Unknown(Value),
}

impl ContentBlock {
    pub fn is_unknown(&self) -> bool {
        matches!(self, ContentBlock::Unknown(_))
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum KnownBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    Thinking {
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    ToolResult {
        tool_use_id: String,
        /// A string or a list of blocks, depending on the tool.
        #[serde(default)]
        content: Value,
        #[serde(default)]
        is_error: Option<bool>,
    },
    Image {
        source: Value,
    },
}

// ---------------------------------------------------------------------------------------------
// assistant

/// One finished content block of a model message (the CLI sends one line per block).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AssistantMessage {
    pub message: ApiMessage,
    #[serde(default)]
    pub parent_tool_use_id: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    /// Set when the block was cut off by an interrupt.
    #[serde(default)]
    pub aborted: Option<bool>,
    /// Set on the synthetic message the CLI makes from an API error.
    #[serde(default)]
    pub is_api_error_message: Option<bool>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ApiMessage {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub content: Vec<ContentBlock>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

// ---------------------------------------------------------------------------------------------
// user

/// Tool results (and replays / interrupt markers) the CLI feeds back to the model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UserMessage {
    pub message: UserPayload,
    #[serde(default)]
    pub parent_tool_use_id: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    /// The tool's structured output: an object for success, often a plain string on error.
    #[serde(default)]
    pub tool_use_result: Option<ToolUseResult>,
    #[serde(default)]
    pub tool_result_meta: Vec<Value>,
    #[serde(default, rename = "isReplay")]
    pub is_replay: Option<bool>,
    #[serde(default, rename = "isSynthetic")]
    pub is_synthetic: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UserPayload {
    #[serde(default)]
    pub role: Option<String>,
    pub content: UserContent,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum UserContent {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ToolUseResult {
    /// Write/Edit/Bash/Read… outputs. Only the fields the UI needs are typed.
    Structured(Box<StructuredToolResult>),
    /// Errors and denials come as text ("Error: …").
    Text(String),
    Other(Value),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StructuredToolResult {
    #[serde(default, rename = "filePath")]
    pub file_path: Option<String>,
    /// Write: `create` | `update`; Read: `text` | …
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default, rename = "structuredPatch")]
    pub structured_patch: Option<Vec<PatchHunk>>,
    #[serde(default)]
    pub stdout: Option<String>,
    #[serde(default)]
    pub stderr: Option<String>,
    #[serde(default)]
    pub interrupted: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One hunk of a unified diff as the CLI reports it (lines keep their `+`/`-`/` ` prefix).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct PatchHunk {
    #[serde(rename = "oldStart")]
    pub old_start: u64,
    #[serde(rename = "oldLines")]
    pub old_lines: u64,
    #[serde(rename = "newStart")]
    pub new_start: u64,
    #[serde(rename = "newLines")]
    pub new_lines: u64,
    pub lines: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// stream_event (with --include-partial-messages)

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StreamEventMessage {
    pub event: StreamEvent,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub parent_tool_use_id: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum StreamEvent {
    Known(KnownStreamEvent),
    Unknown(Value),
}

impl StreamEvent {
    pub fn is_unknown(&self) -> bool {
        match self {
            StreamEvent::Unknown(_) => true,
            StreamEvent::Known(KnownStreamEvent::ContentBlockStart { content_block, .. }) => {
                content_block.is_unknown()
            }
            StreamEvent::Known(KnownStreamEvent::ContentBlockDelta { delta, .. }) => {
                matches!(delta, Delta::Unknown(_))
            }
            StreamEvent::Known(_) => false,
        }
    }
}

/// Raw Messages-API stream events, as forwarded by the CLI.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum KnownStreamEvent {
    MessageStart {
        message: Value,
    },
    ContentBlockStart {
        index: u64,
        content_block: ContentBlock,
    },
    ContentBlockDelta {
        index: u64,
        delta: Delta,
    },
    ContentBlockStop {
        index: u64,
    },
    MessageDelta {
        delta: Value,
        #[serde(default)]
        usage: Option<Value>,
    },
    MessageStop,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Delta {
    Known(KnownDelta),
    Unknown(Value),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum KnownDelta {
    TextDelta { text: String },
    InputJsonDelta { partial_json: String },
    ThinkingDelta { thinking: String },
    SignatureDelta { signature: String },
}

// ---------------------------------------------------------------------------------------------
// result

/// Exactly one per turn. API errors arrive as `subtype:"success"` with `is_error:true`, so callers
/// must look at `is_error`, never at `subtype` alone.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ResultMessage {
    pub subtype: String,
    #[serde(default)]
    pub is_error: bool,
    /// Final assistant text; `null` on error_* subtypes.
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub num_turns: Option<u32>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub duration_api_ms: Option<u64>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub terminal_reason: Option<String>,
    /// Cumulative for the process, not per turn: use the latest, never sum.
    #[serde(default)]
    pub total_cost_usd: Option<f64>,
    /// This turn only.
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(default, rename = "modelUsage")]
    pub model_usage: Option<Map<String, Value>>,
    #[serde(default)]
    pub permission_denials: Vec<PermissionDenial>,
    #[serde(default)]
    pub api_error_status: Option<u16>,
    #[serde(default)]
    pub errors: Vec<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub user_message_uuid: Option<String>,
    #[serde(default)]
    pub user_message_uuids: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PermissionDenial {
    pub tool_name: String,
    #[serde(default)]
    pub tool_use_id: Option<String>,
    #[serde(default)]
    pub tool_input: Value,
}

// ---------------------------------------------------------------------------------------------
// other non-system lines

/// Emitted when the user line carried a `uuid`: lets a host map turns back to its own messages.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CommandLifecycle {
    pub command_uuid: String,
    /// `queued` | `started` | `completed` (others kept as is).
    pub state: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// After `/clear`: the next `system/init` carries a new session id.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ConversationReset {
    pub new_conversation_id: String,
    #[serde(default)]
    pub trigger: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
