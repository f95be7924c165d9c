//! The control protocol envelope (both directions) and the requests the CLI sends us.
//!
//! `control_request` → `control_response`, correlated by a sender-chosen `request_id`.
//! The CLI sends `can_use_tool` and waits indefinitely for our answer; we send
//! `initialize`, `interrupt`, `set_permission_mode`, `set_model` (see `writer`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `{"type":"control_request","request_id":…,"request":{"subtype":…}}` received from the CLI.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ControlRequest {
    pub request_id: String,
    pub request: IncomingRequest,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum IncomingRequest {
    Known(KnownIncomingRequest),
    /// Hook callbacks, MCP messages and other subtypes we do not serve yet. The host should answer
    /// them with an error response rather than leave the CLI waiting.
    Unknown(Value),
}

impl IncomingRequest {
    pub fn is_unknown(&self) -> bool {
        matches!(self, IncomingRequest::Unknown(_))
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "subtype", rename_all = "snake_case")]
pub enum KnownIncomingRequest {
    CanUseTool(Box<CanUseTool>),
}

/// A permission prompt: the CLI blocks the tool call until we answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CanUseTool {
    pub tool_name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// The tool input as the model produced it; echo it back (possibly edited) on allow.
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub description: Option<String>,
    /// Ready-made `updatedPermissions` entries for an "always allow" answer.
    #[serde(default)]
    pub permission_suggestions: Vec<Value>,
    /// May contain ANSI escapes: strip before display.
    #[serde(default)]
    pub decision_reason: Option<String>,
    #[serde(default)]
    pub decision_reason_type: Option<String>,
    #[serde(default)]
    pub tool_use_id: Option<String>,
    /// AskUserQuestion / ExitPlanMode: render the question or plan, not Approve/Reject.
    #[serde(default)]
    pub requires_user_interaction: Option<bool>,
    #[serde(default)]
    pub blocked_path: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{"type":"control_response","response":{…}}`: the CLI's answer to one of our requests.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ControlResponse {
    pub response: ControlResponseBody,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "subtype", rename_all = "snake_case")]
pub enum ControlResponseBody {
    Success {
        request_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response: Option<Value>,
    },
    Error {
        request_id: String,
        #[serde(default)]
        error: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_code: Option<String>,
    },
}

impl ControlResponseBody {
    pub fn request_id(&self) -> &str {
        match self {
            ControlResponseBody::Success { request_id, .. }
            | ControlResponseBody::Error { request_id, .. } => request_id,
        }
    }
}

/// The CLI withdraws a pending `can_use_tool` (e.g. after an interrupt): drop its buttons.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ControlCancelRequest {
    pub request_id: String,
}
