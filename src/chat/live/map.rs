//! Session events → live events, as a pure function of the events seen so far (no store, no
//! Mattermost). Each live event is a name and FLAT fields: every value a string, an integer or
//! a bool; a nested value (a tool's input) is one JSON-encoded string. The common fields
//! (`session_id`, `seq`, `at`, `event`) are added by [`payload`] once the event is numbered.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::sessions::{EventKind, SessionEvent};

/// A live event's fields.
pub(crate) type Fields = Map<String, Value>;

/// A tool's output is cut to this many bytes in its `tool` event (the transcript and the turn
/// post keep all of it).
pub(crate) const OUTPUT_MAX_BYTES: usize = 4 * 1024;
/// A string inside a tool's input is cut to this many bytes (a Write of a large file would
/// otherwise put the whole file into one event).
pub(crate) const INPUT_STRING_MAX_BYTES: usize = 4 * 1024;

/// A prompt's text is cut to this many bytes in its `prompt` event: with attached text files
/// and context it can hold many times MaxContextKB, on every channel member's websocket. The
/// event then tells the whole size (`text_bytes`); the transcript keeps all of it.
pub(crate) const PROMPT_TEXT_MAX_BYTES: usize = 16 * 1024;

/// The tools whose successful result changed a file, and the input field naming it.
const FILE_TOOLS: &[(&str, &str)] = &[
    ("Write", "file_path"),
    ("Edit", "file_path"),
    ("MultiEdit", "file_path"),
    ("NotebookEdit", "notebook_path"),
];

/// A live event not numbered yet.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Draft {
    pub name: &'static str,
    pub fields: Fields,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
}

/// What one session event becomes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    /// Assistant text to coalesce into the next `message` event.
    Text(String),
    Event(Draft),
}

/// Builds flat fields; `None` values are left out.
#[derive(Default)]
struct Flat(Fields);

impl Flat {
    fn str(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.insert(key.to_owned(), Value::String(value.into()));
        self
    }

    fn opt_str(self, key: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.str(key, v),
            None => self,
        }
    }

    fn int(mut self, key: &str, value: Option<impl Into<i64>>) -> Self {
        if let Some(v) = value {
            self.0.insert(key.to_owned(), Value::from(v.into()));
        }
        self
    }

    fn bool(mut self, key: &str, value: bool) -> Self {
        self.0.insert(key.to_owned(), Value::Bool(value));
        self
    }

    /// A nested value as one JSON string, its long strings cut.
    fn json(self, key: &str, value: &Value) -> Self {
        self.str(key, shorten_strings(value).to_string())
    }

    fn event(self, name: &'static str, at: i64) -> Draft {
        Draft {
            name,
            fields: self.0,
            at,
        }
    }

    fn draft(self, name: &'static str, at: i64) -> Piece {
        Piece::Event(self.event(name, at))
    }
}

/// The longest prefix of `text` of at most `max` bytes that is whole characters.
fn prefix(text: &str, max: usize) -> &str {
    let end = (0..=max.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    &text[..end]
}

fn shorten_strings(value: &Value) -> Value {
    match value {
        Value::String(s) if s.len() > INPUT_STRING_MAX_BYTES => {
            Value::String(format!("{}…", prefix(s, INPUT_STRING_MAX_BYTES)))
        }
        Value::Array(items) => Value::Array(items.iter().map(shorten_strings).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), shorten_strings(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A `file_change` event: `path` (relative to the project when inside it), `action`
/// (`created` | `updated` | `deleted`), `by` (`claude` or a user id).
pub(crate) fn file_change(path: &str, action: &str, by: &str, at: i64) -> Draft {
    Flat::default()
        .str("path", path)
        .str("action", action)
        .str("by", by)
        .event("file_change", at)
}

/// The event as published and replayed: its fields and the common ones.
pub(crate) fn payload(session_id: &str, seq: i64, name: &str, at: i64, fields: &Fields) -> Fields {
    let mut out = fields.clone();
    out.insert("session_id".into(), Value::String(session_id.to_owned()));
    out.insert("seq".into(), Value::from(seq));
    out.insert("at".into(), Value::from(at));
    out.insert("event".into(), Value::String(name.to_owned()));
    out
}

/// A tool call seen in a `ToolUse`, until its result.
struct ToolCall {
    name: String,
    /// The file a file tool works on, from its input.
    path: Option<String>,
}

/// The mapping of one session's events; it remembers what later events need (tool names for
/// results, the text already streamed of the current assistant message).
pub(crate) struct Mapper {
    project_root: Option<PathBuf>,
    tools: HashMap<String, ToolCall>,
    /// Text deltas since the last complete assistant text.
    streamed: String,
}

impl Mapper {
    pub(crate) fn new(project_root: Option<PathBuf>) -> Self {
        Mapper {
            project_root,
            tools: HashMap::new(),
            streamed: String::new(),
        }
    }

    /// `path` relative to the project when it is inside it (as the files API names files).
    fn project_relative(&self, path: &str) -> String {
        self.project_root
            .as_deref()
            .and_then(|root| Path::new(path).strip_prefix(root).ok())
            .filter(|rel| !rel.as_os_str().is_empty())
            .map(|rel| rel.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.to_owned())
    }

    pub(crate) fn map(&mut self, event: &SessionEvent) -> Vec<Piece> {
        let at = event.at;
        match &event.kind {
            EventKind::StatusChanged {
                from,
                to,
                prompt_id,
            } => vec![Flat::default()
                .str("state", to.as_str())
                .str("previous", from.as_str())
                .opt_str("prompt_id", prompt_id.clone())
                .draft("status", at)],
            EventKind::Prompt {
                prompt_id,
                author,
                text,
                ..
            } => {
                let cut = text.len() > PROMPT_TEXT_MAX_BYTES;
                let shown = if cut {
                    format!("{}…", prefix(text, PROMPT_TEXT_MAX_BYTES))
                } else {
                    text.clone()
                };
                vec![Flat::default()
                    .str("prompt_id", prompt_id)
                    .str("author", author)
                    .str("text", shown)
                    .int("text_bytes", cut.then_some(text.len() as i64))
                    .draft("prompt", at)]
            }
            EventKind::TextDelta { text } => {
                self.streamed.push_str(text);
                vec![Piece::Text(text.clone())]
            }
            EventKind::AssistantText { text, .. } => {
                // The deltas were a preview of this text: only what they did not show is new
                // (all of it when the CLI streamed none).
                let streamed = std::mem::take(&mut self.streamed);
                match text.strip_prefix(streamed.as_str()) {
                    Some(rest) if !rest.is_empty() => vec![Piece::Text(rest.to_owned())],
                    _ => Vec::new(),
                }
            }
            EventKind::AssistantThinking { .. } | EventKind::ApiRetry { .. } => Vec::new(),
            EventKind::ToolUse {
                tool_use_id,
                tool,
                input,
            } => {
                let path = FILE_TOOLS
                    .iter()
                    .find(|(name, _)| name == tool)
                    .and_then(|(_, field)| input.get(field)?.as_str())
                    .map(str::to_owned);
                let piece = Flat::default()
                    .str("phase", "use")
                    .str("tool_use_id", tool_use_id)
                    .str("tool", tool)
                    .json("input", input)
                    .opt_str("file_path", path.clone())
                    .draft("tool", at);
                self.tools.insert(
                    tool_use_id.clone(),
                    ToolCall {
                        name: tool.clone(),
                        path,
                    },
                );
                vec![piece]
            }
            EventKind::ToolResult {
                tool_use_id,
                is_error,
                content,
                file_path,
                patch,
                ..
            } => {
                let call = self.tools.remove(tool_use_id);
                let path = file_path
                    .clone()
                    .or_else(|| call.as_ref().and_then(|c| c.path.clone()));
                let mut out = vec![Flat::default()
                    .str("phase", "result")
                    .str("tool_use_id", tool_use_id)
                    .opt_str("tool", call.as_ref().map(|c| c.name.clone()))
                    .bool("is_error", *is_error)
                    .str("output", prefix(content, OUTPUT_MAX_BYTES))
                    .opt_str("file_path", path.clone())
                    .draft("tool", at)];
                let changed_file = call
                    .as_ref()
                    .is_some_and(|c| FILE_TOOLS.iter().any(|(name, _)| *name == c.name));
                if let (true, false, Some(path)) = (changed_file, *is_error, path) {
                    // The CLI reports a new file with an empty patch (there was nothing to
                    // diff against); an edit of an existing one with its hunks.
                    let action = match patch {
                        Some(hunks) if hunks.is_empty() => "created",
                        _ => "updated",
                    };
                    let rel = self.project_relative(&path);
                    out.push(Piece::Event(file_change(&rel, action, "claude", at)));
                }
                out
            }
            EventKind::ToolUseRequested {
                request_id,
                tool_use_id,
                tool,
                input,
                description,
                ..
            } => vec![Flat::default()
                .str("phase", "requested")
                .str("approval_id", request_id)
                .opt_str("tool_use_id", tool_use_id.clone())
                .str("tool", tool)
                .json("input", input)
                .opt_str("description", description.clone())
                .draft("approval", at)],
            EventKind::ToolApproved {
                request_id,
                by,
                decision,
                ..
            } => vec![Flat::default()
                .str("phase", "decided")
                .str("approval_id", request_id)
                .str("decision", decision)
                .str("by", by)
                .draft("approval", at)],
            EventKind::ToolDenied {
                request_id,
                by,
                message,
                interrupt,
            } => vec![Flat::default()
                .str("phase", "decided")
                .str("approval_id", request_id)
                .str(
                    "decision",
                    if *interrupt {
                        "deny_and_interrupt"
                    } else {
                        "deny"
                    },
                )
                .str("by", by)
                .str("reason", message)
                .draft("approval", at)],
            EventKind::ToolApprovalExpired {
                request_id,
                message,
            } => vec![Flat::default()
                .str("phase", "expired")
                .str("approval_id", request_id)
                .str("reason", message)
                .draft("approval", at)],
            EventKind::ToolApprovalCancelled { request_id } => vec![Flat::default()
                .str("phase", "withdrawn")
                .str("approval_id", request_id)
                .draft("approval", at)],
            EventKind::TurnResult {
                prompt_id,
                is_error,
                subtype,
                total_cost_usd,
                usage,
                duration_ms,
                num_turns,
                ..
            } => {
                // A turn's unfinished preview is over with it.
                self.streamed.clear();
                let tokens = |f: fn(&crate::claude::messages::Usage) -> u64| {
                    usage
                        .as_ref()
                        .map(|u| i64::try_from(f(u)).unwrap_or(i64::MAX))
                };
                vec![Flat::default()
                    .opt_str("prompt_id", prompt_id.clone())
                    .bool("is_error", *is_error)
                    .str("subtype", subtype)
                    .int(
                        "duration_ms",
                        duration_ms.map(|d| i64::try_from(d).unwrap_or(i64::MAX)),
                    )
                    .int("num_turns", *num_turns)
                    // A string: a float in JSON would not be flat for every reader.
                    .opt_str("total_cost_usd", total_cost_usd.map(|c| format!("{c}")))
                    .int("input_tokens", tokens(|u| u.input_tokens))
                    .int("output_tokens", tokens(|u| u.output_tokens))
                    .draft("turn", at)]
            }
            EventKind::Error { error, message } => {
                let kind = serde_json::to_value(error)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                vec![Flat::default()
                    .str("kind", kind)
                    .str("message", message)
                    .draft("error", at)]
            }
            EventKind::Crashed {
                exit_code,
                signal,
                dropped_prompts,
                ..
            } => {
                self.streamed.clear();
                let how = match (exit_code, signal) {
                    (_, Some(sig)) => format!("was killed by signal {sig}"),
                    (Some(code), None) => format!("exited with code {code}"),
                    (None, None) => "exited".to_owned(),
                };
                vec![Flat::default()
                    .str("kind", "crashed")
                    .str(
                        "message",
                        format!("Claude Code {how} unexpectedly; the next prompt resumes"),
                    )
                    .int("exit_code", *exit_code)
                    .int("signal", *signal)
                    .int("dropped_prompts", i64::try_from(*dropped_prompts).ok())
                    .draft("error", at)]
            }
        }
    }
}

#[cfg(test)]
#[path = "map_tests.rs"]
mod tests;
