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

/// The image formats the Messages API takes in an image block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageMediaType {
    Png,
    Jpeg,
    Gif,
    Webp,
}

impl ImageMediaType {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageMediaType::Png => "image/png",
            ImageMediaType::Jpeg => "image/jpeg",
            ImageMediaType::Gif => "image/gif",
            ImageMediaType::Webp => "image/webp",
        }
    }
}

/// A Messages-API image content block with its bytes inline, already base64 (standard alphabet,
/// padded): the CLI passes it to the model unchanged.
pub fn image_block(media_type: ImageMediaType, base64: &str) -> Value {
    serde_json::json!({
        "type": "image",
        "source": {"type": "base64", "media_type": media_type.as_str(), "data": base64},
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn line(msg: &StdinMessage) -> Value {
        let text = msg.to_line().expect("serializes");
        assert!(
            text.ends_with('\n') && text.matches('\n').count() == 1,
            "{text:?}"
        );
        serde_json::from_str(&text).expect("one JSON object")
    }

    fn approval(answer: ApprovalAnswer) -> Value {
        line(&StdinMessage::approval("req-1", answer).expect("valid answer"))
    }

    #[test]
    fn allow_echoes_the_input() {
        let input = json!({"file_path": "/srv/proj/hello.txt", "content": "hi\n"});
        assert_eq!(
            approval(ApprovalAnswer::Allow {
                input: input.clone()
            }),
            json!({"type": "control_response", "response": {"subtype": "success", "request_id": "req-1",
                   "response": {"behavior": "allow", "updatedInput": input}}})
        );
    }

    #[test]
    fn allow_with_edited_input() {
        let edited = json!({"file_path": "/srv/proj/hello.txt", "content": "modified by host\n"});
        assert_eq!(
            approval(ApprovalAnswer::Allow {
                input: edited.clone()
            })["response"]["response"]["updatedInput"],
            edited
        );
    }

    #[test]
    fn allow_for_session_rewrites_destinations_to_session() {
        let input = json!({"command": "python3 -c \"print('bash-ran')\""});
        let suggestion = json!({"type": "addRules",
            "rules": [{"toolName": "Bash", "ruleContent": "python3 -c \"print('bash-ran')\""}],
            "behavior": "allow", "destination": "localSettings"});
        let got = approval(ApprovalAnswer::AllowForSession {
            input: input.clone(),
            suggestions: vec![suggestion],
        });
        assert_eq!(
            got,
            json!({"type": "control_response", "response": {"subtype": "success", "request_id": "req-1",
                "response": {"behavior": "allow", "updatedInput": input,
                    "updatedPermissions": [{"type": "addRules",
                        "rules": [{"toolName": "Bash", "ruleContent": "python3 -c \"print('bash-ran')\""}],
                        "behavior": "allow", "destination": "session"}]}}})
        );
    }

    #[test]
    fn deny_with_message() {
        assert_eq!(
            approval(ApprovalAnswer::Deny {
                message: "Rejected from Mattermost by @alice".into()
            }),
            json!({"type": "control_response", "response": {"subtype": "success", "request_id": "req-1",
                   "response": {"behavior": "deny", "message": "Rejected from Mattermost by @alice"}}})
        );
    }

    #[test]
    fn deny_and_interrupt() {
        assert_eq!(
            approval(ApprovalAnswer::DenyAndInterrupt {
                message: "Stopped by @alice".into()
            })["response"]["response"],
            json!({"behavior": "deny", "message": "Stopped by @alice", "interrupt": true})
        );
    }

    #[test]
    fn deny_without_message_is_refused() {
        for answer in [
            ApprovalAnswer::Deny {
                message: " ".into(),
            },
            ApprovalAnswer::DenyAndInterrupt {
                message: String::new(),
            },
        ] {
            assert!(matches!(
                StdinMessage::approval("r", answer),
                Err(WriteError::EmptyDenyMessage)
            ));
        }
    }

    #[test]
    fn user_message_shape() {
        let uuid = Uuid::parse_str("11111111-1111-4111-8111-111111111111").expect("uuid");
        assert_eq!(
            line(&StdinMessage::user_text("hello", uuid)),
            json!({"type": "user", "message": {"role": "user", "content": "hello"},
                   "parent_tool_use_id": null, "session_id": "", "uuid": "11111111-1111-4111-8111-111111111111"})
        );
        let blocks = StdinMessage::user(
            UserInput::Blocks(vec![json!({"type": "text", "text": "hi"})]),
            uuid,
        );
        assert_eq!(
            line(&blocks)["message"]["content"],
            json!([{"type": "text", "text": "hi"}])
        );
    }

    #[test]
    fn image_block_shape() {
        assert_eq!(
            image_block(ImageMediaType::Webp, "UklGRg=="),
            json!({"type": "image",
                   "source": {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="}})
        );
    }

    #[test]
    fn control_requests_shape() {
        let cases = [
            (HostRequest::Initialize {}, json!({"subtype": "initialize"})),
            (HostRequest::Interrupt {}, json!({"subtype": "interrupt"})),
            (
                HostRequest::SetPermissionMode {
                    mode: PermissionMode::AcceptEdits,
                },
                json!({"subtype": "set_permission_mode", "mode": "acceptEdits"}),
            ),
            (
                HostRequest::SetModel {
                    model: Some("claude-sonnet-4-5".into()),
                },
                json!({"subtype": "set_model", "model": "claude-sonnet-4-5"}),
            ),
            (
                HostRequest::SetModel { model: None },
                json!({"subtype": "set_model", "model": null}),
            ),
        ];
        for (req, want) in cases {
            assert_eq!(
                line(&StdinMessage::request("c-1", req)),
                json!({"type": "control_request", "request_id": "c-1", "request": want})
            );
        }
    }

    #[test]
    fn control_error_shape() {
        assert_eq!(
            line(&StdinMessage::control_error("x", "unsupported")),
            json!({"type": "control_response",
                   "response": {"subtype": "error", "request_id": "x", "error": "unsupported"}})
        );
    }

    #[tokio::test]
    async fn writer_sends_whole_lines() {
        let mut out = Vec::new();
        let mut w = CliWriter::new(&mut out);
        w.send(&StdinMessage::request("a", HostRequest::Interrupt {}))
            .await
            .expect("send");
        w.send(&StdinMessage::user_text("two\nlines", Uuid::nil()))
            .await
            .expect("send");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(text.lines().count(), 2);
        assert!(text
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()));
    }

    proptest! {
        /// Whatever text or tool input a user supplies, the writer emits exactly one line that
        /// is one JSON object and round-trips the text: a raw newline would kill the CLI.
        #[test]
        fn no_raw_newline_can_appear(text in any::<String>(), key in "\\PC*", msg in any::<String>()) {
            for m in [
                StdinMessage::user_text(text.clone(), Uuid::nil()),
                StdinMessage::approval("r\n1", ApprovalAnswer::Allow { input: json!({ key.clone(): text.clone() }) })
                    .expect("allow"),
                StdinMessage::approval("r", ApprovalAnswer::Deny { message: format!("x{msg}") }).expect("deny"),
                StdinMessage::request(text.clone(), HostRequest::SetModel { model: Some(text.clone()) }),
            ] {
                let out = m.to_line().expect("serializes");
                prop_assert!(out.ends_with('\n'));
                prop_assert!(!out[..out.len() - 1].contains(['\n', '\r']));
                let v: Value = serde_json::from_str(&out).expect("valid JSON");
                prop_assert!(v.is_object());
            }
            let v: Value = serde_json::from_str(
                &StdinMessage::user_text(text.clone(), Uuid::nil()).to_line().expect("line")).expect("json");
            prop_assert_eq!(v["message"]["content"].as_str(), Some(text.as_str()));
        }
    }
}
