//! What we write to the CLI's stdin: user messages, our control requests, and answers to its
//! `can_use_tool` prompts.
//!
//! A stdin line that is not one JSON object kills the CLI (exit 1), so every line is produced by
//! `serde_json` from a typed value (it escapes newlines inside strings) and checked once more
//! before it leaves: nothing else may write to the pipe.

use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use uuid::Uuid;

use super::args::PermissionMode;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("serializing a stdin line failed: {0}")]
    Serialize(#[from] serde_json::Error),
    /// A defensive check: serde_json never produces this, but the CLI would die if it did.
    #[error("refusing to write a stdin line that is not a single JSON object")]
    NotOneLine,
    /// Every deny must tell the model (and the transcript) why.
    #[error("a deny answer needs a non-empty message")]
    EmptyDenyMessage,
    #[error("writing to the CLI's stdin failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Fresh id for one of our control requests.
pub fn new_request_id() -> String {
    Uuid::new_v4().to_string()
}

/// One stdin line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StdinMessage {
    User(UserLine),
    ControlRequest {
        request_id: String,
        request: HostRequest,
    },
    ControlResponse {
        response: ResponseBody,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserLine {
    pub message: UserLinePayload,
    /// Always null for host-typed messages (non-null only inside subagents).
    pub parent_tool_use_id: Option<String>,
    /// The CLI fills in its own session id; an empty string is what the SDK sends.
    pub session_id: String,
    /// Echoed in `command_lifecycle` and `result.user_message_uuids`, which is how results are
    /// mapped back to the posts that caused them.
    pub uuid: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserLinePayload {
    /// The CLI rejects (fatally) any role but `user`, so it is not a parameter.
    pub role: &'static str,
    pub content: UserInput,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum UserInput {
    Text(String),
    /// Messages-API content blocks (text, image…), passed through.
    Blocks(Vec<Value>),
}

/// Requests we send to the CLI.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "subtype", rename_all = "snake_case")]
pub enum HostRequest {
    /// Readiness ping; the CLI prints nothing before it gets a line.
    Initialize {},
    Interrupt {},
    SetPermissionMode {
        mode: PermissionMode,
    },
    /// `None` serializes as `null`, which resets to the default model.
    SetModel {
        model: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "subtype", rename_all = "snake_case")]
pub enum ResponseBody {
    Success {
        request_id: String,
        response: PermissionResult,
    },
    Error {
        request_id: String,
        error: String,
    },
}

/// The body of a `can_use_tool` answer, in the CLI's wire shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "behavior", rename_all = "snake_case")]
pub enum PermissionResult {
    Allow {
        #[serde(rename = "updatedInput", skip_serializing_if = "Option::is_none")]
        updated_input: Option<Value>,
        #[serde(rename = "updatedPermissions", skip_serializing_if = "Option::is_none")]
        updated_permissions: Option<Vec<Value>>,
    },
    Deny {
        message: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        interrupt: bool,
    },
}

/// How a user answered a `can_use_tool` prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalAnswer {
    /// Run the tool with this input: the original one echoed, or an edited one.
    Allow { input: Value },
    /// Run it and stop asking for matching calls until the process ends. `suggestions` are the
    /// prompt's `permission_suggestions`; they are scoped to the session (see [`session_scoped`]).
    AllowForSession {
        input: Value,
        suggestions: Vec<Value>,
    },
    /// Refuse; the message becomes the tool result the model sees, and the turn goes on.
    Deny { message: String },
    /// Refuse and end the whole turn.
    DenyAndInterrupt { message: String },
}

/// Rewrites every suggestion's `destination` to `session`. The CLI suggests `localSettings`,
/// which writes `<cwd>/.claude/settings.local.json` into the user's repository; a chat click must
/// not leave files behind, and a session rule lives only in the process's memory.
pub fn session_scoped(suggestions: &[Value]) -> Vec<Value> {
    suggestions
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if let Value::Object(map) = &mut s {
                map.insert("destination".into(), Value::String("session".into()));
            }
            s
        })
        .collect()
}

impl StdinMessage {
    pub fn user_text(text: impl Into<String>, uuid: Uuid) -> Self {
        Self::user(UserInput::Text(text.into()), uuid)
    }

    pub fn user(content: UserInput, uuid: Uuid) -> Self {
        StdinMessage::User(UserLine {
            message: UserLinePayload {
                role: "user",
                content,
            },
            parent_tool_use_id: None,
            session_id: String::new(),
            uuid,
        })
    }

    pub fn request(request_id: impl Into<String>, request: HostRequest) -> Self {
        StdinMessage::ControlRequest {
            request_id: request_id.into(),
            request,
        }
    }

    /// The answer to the `can_use_tool` request `request_id`.
    pub fn approval(
        request_id: impl Into<String>,
        answer: ApprovalAnswer,
    ) -> Result<Self, WriteError> {
        let response = match answer {
            ApprovalAnswer::Allow { input } => PermissionResult::Allow {
                updated_input: Some(input),
                updated_permissions: None,
            },
            ApprovalAnswer::AllowForSession { input, suggestions } => PermissionResult::Allow {
                updated_input: Some(input),
                updated_permissions: Some(session_scoped(&suggestions)),
            },
            ApprovalAnswer::Deny { message } => PermissionResult::Deny {
                message: non_empty(message)?,
                interrupt: false,
            },
            ApprovalAnswer::DenyAndInterrupt { message } => PermissionResult::Deny {
                message: non_empty(message)?,
                interrupt: true,
            },
        };
        Ok(StdinMessage::ControlResponse {
            response: ResponseBody::Success {
                request_id: request_id.into(),
                response,
            },
        })
    }

    /// Refuses a control request we cannot serve, so the CLI does not wait forever.
    pub fn control_error(request_id: impl Into<String>, error: impl Into<String>) -> Self {
        StdinMessage::ControlResponse {
            response: ResponseBody::Error {
                request_id: request_id.into(),
                error: error.into(),
            },
        }
    }

    /// The exact bytes to write, newline included.
    pub fn to_line(&self) -> Result<String, WriteError> {
        let mut line = serde_json::to_string(self)?;
        if !line.starts_with('{') || !line.ends_with('}') || line.contains(['\n', '\r']) {
            return Err(WriteError::NotOneLine);
        }
        line.push('\n');
        Ok(line)
    }
}

fn non_empty(message: String) -> Result<String, WriteError> {
    if message.trim().is_empty() {
        Err(WriteError::EmptyDenyMessage)
    } else {
        Ok(message)
    }
}

/// Owns the CLI's stdin. Each `send` writes one whole line and flushes, so a line is never
/// interleaved or left half-written in a buffer.
pub struct CliWriter<W> {
    inner: W,
}

impl<W: AsyncWrite + Unpin> CliWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner }
    }

    pub async fn send(&mut self, message: &StdinMessage) -> Result<(), WriteError> {
        let line = message.to_line()?;
        self.inner.write_all(line.as_bytes()).await?;
        self.inner.flush().await?;
        Ok(())
    }

    /// Closing stdin is the clean way to end the CLI: it finishes the running turn, then exits.
    pub async fn close(mut self) -> Result<(), WriteError> {
        self.inner.shutdown().await?;
        Ok(())
    }
}
