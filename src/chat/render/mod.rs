//! A turn as post text: streamed assistant text, one compact line per tool
//! call (with its diff or output), a "working" indicator while the turn runs,
//! a closing line with duration, turns and cost, and splitting of long text
//! into posts that fit Mattermost's limit without breaking code fences.
//!
//! [`TurnRenderer`] folds the CLI's messages into a turn; everything else is
//! a plain function of its arguments, so the integrator decides when to post
//! (coalescing) and what to upload (attachments).

use std::time::Duration;

use serde_json::Value;

use crate::claude::control::{IncomingRequest, KnownIncomingRequest};
use crate::claude::messages::{
    CliMessage, ContentBlock, Delta, KnownBlock, KnownDelta, KnownStreamEvent, KnownSystemEvent,
    PatchHunk, ResultMessage, StreamEvent, SystemEvent, ToolUseResult, UserContent,
};
use crate::sessions::EventKind;

mod split;
pub use split::split_post;
#[cfg(test)]
use split::{after_line, fence_opening, split_pieces, MIN_SPLIT_CHARS};

/// Mattermost's post message limit in runes (`PostMessageMaxRunesV2`).
pub const POST_MAX_CHARS: usize = 16383;

/// When tool output (or a diff) is too long to show inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InlineLimits {
    pub max_lines: usize,
    pub max_chars: usize,
}

impl Default for InlineLimits {
    /// About a screenful: longer output drowns the conversation.
    fn default() -> Self {
        InlineLimits {
            max_lines: 40,
            max_chars: 4000,
        }
    }
}

/// Tool output, sorted by where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolOutput {
    /// Short enough to show in the post.
    Inline(String),
    /// Upload as a file; the post shows `summary`.
    Attachment {
        name: String,
        bytes: Vec<u8>,
        summary: String,
    },
}

/// Inline when within `limits`, otherwise an attachment named `name`.
pub fn tool_output(name: &str, text: &str, limits: InlineLimits) -> ToolOutput {
    let lines = text.lines().count();
    let chars = text.chars().count();
    if lines <= limits.max_lines && chars <= limits.max_chars {
        return ToolOutput::Inline(text.to_owned());
    }
    ToolOutput::Attachment {
        name: name.to_owned(),
        bytes: text.as_bytes().to_vec(),
        summary: format!(
            "{lines} line{}, {}",
            if lines == 1 { "" } else { "s" },
            human_size(text.len())
        ),
    }
}

/// Inline output cut to `limits` (lines, then chars) with a note of what was
/// left out.
pub fn truncated_output(text: &str, limits: InlineLimits) -> ToolOutput {
    let lines = text.lines().count();
    let chars = text.chars().count();
    if lines <= limits.max_lines && chars <= limits.max_chars {
        return ToolOutput::Inline(text.to_owned());
    }
    let mut shown: String = text
        .lines()
        .take(limits.max_lines)
        .collect::<Vec<_>>()
        .join("\n");
    if shown.chars().count() > limits.max_chars {
        shown = shown.chars().take(limits.max_chars).collect();
    }
    let shown_lines = shown.lines().count();
    shown.push_str(&format!(
        "\n… output truncated: {} of {lines} lines shown ({} total)",
        shown_lines,
        human_size(text.len())
    ));
    ToolOutput::Inline(shown)
}

fn human_size(bytes: usize) -> String {
    // Display only: the precision loss of the float conversion is irrelevant.
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KB", b / 1024.0)
    } else {
        format!("{:.1} MB", b / (1024.0 * 1024.0))
    }
}

/// A backtick fence longer than any backtick run in `content`, so the content
/// cannot close it early (CommonMark allows fences of any length >= 3).
pub fn fence_for(content: &str) -> String {
    let longest = content.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat((longest + 1).max(3))
}

/// `content` in a fenced code block with `info` (language) on the opening line.
pub fn code_block(info: &str, content: &str) -> String {
    let fence = fence_for(content);
    let newline = if content.ends_with('\n') { "" } else { "\n" };
    format!("{fence}{info}\n{content}{newline}{fence}")
}

/// `text` as inline code, even when it contains backticks.
pub(crate) fn inline_code(text: &str) -> String {
    if !text.contains('`') {
        return format!("`{text}`");
    }
    let fence = "`".repeat(text.split(|c| c != '`').map(str::len).max().unwrap_or(0) + 1);
    format!("{fence} {text} {fence}")
}

/// The body of a unified diff (no file headers) from the CLI's
/// `structuredPatch`: one `@@ -a,b +c,d @@` line per hunk, then its lines,
/// which already carry their `+`/`-`/` ` prefix.
pub fn patch_diff(hunks: &[PatchHunk]) -> String {
    let mut out = String::new();
    for h in hunks {
        out.push_str(&format!(
            "@@ -{},{} +{},{} @@\n",
            h.old_start, h.old_lines, h.new_start, h.new_lines
        ));
        for line in &h.lines {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A new file's content as a diff: one hunk adding every line. The CLI sends
/// an empty `structuredPatch` for created files.
pub fn created_file_diff(content: &str) -> String {
    let lines: Vec<&str> = content.lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    let mut out = format!("@@ -0,0 +1,{} @@\n", lines.len());
    for line in lines {
        out.push('+');
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Where a tool call is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolState {
    Running,
    AwaitingApproval,
    Succeeded,
    /// With the first line of the error (denials land here too).
    Failed(Option<String>),
}

/// What kind of text a tool's output is (its code-fence language).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    Diff,
    Text,
}

/// One tool call as shown in the turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolActivity {
    pub tool_use_id: String,
    pub name: String,
    /// File path (relative to the project when inside it), command, pattern, URL…
    pub target: Option<String>,
    pub state: ToolState,
    pub output: Option<(OutputKind, ToolOutput)>,
}

/// The most telling input of a tool call, shortened for one line.
pub fn tool_target(name: &str, input: &Value, cwd: Option<&str>) -> Option<String> {
    let field = |k: &str| input.get(k).and_then(Value::as_str);
    let text = match name {
        "Bash" => field("command"),
        "Grep" | "Glob" => field("pattern"),
        "WebFetch" => field("url"),
        "WebSearch" => field("query"),
        "Task" | "Agent" => field("description"),
        _ => field("file_path")
            .or_else(|| field("notebook_path"))
            .or_else(|| field("path")),
    }?;
    let text = match cwd {
        Some(cwd) if !cwd.is_empty() => text
            .strip_prefix(cwd)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(text),
        _ => text,
    };
    let first_line = text.lines().next().unwrap_or("");
    const MAX: usize = 80;
    let mut short: String = first_line.chars().take(MAX).collect();
    if first_line.chars().count() > MAX || text.lines().nth(1).is_some() {
        short.push('…');
    }
    Some(short)
}

/// The compact line for a tool call: `✓ **Edit** `src/main.rs``.
pub fn tool_line(tool: &ToolActivity) -> String {
    let icon = match tool.state {
        ToolState::Running => "⏳",
        ToolState::AwaitingApproval => "✋",
        ToolState::Succeeded => "✓",
        ToolState::Failed(_) => "✗",
    };
    let mut line = format!("{icon} **{}**", tool.name);
    if let Some(target) = &tool.target {
        line.push(' ');
        line.push_str(&inline_code(target));
    }
    match &tool.state {
        ToolState::AwaitingApproval => line.push_str(" — waiting for approval"),
        ToolState::Failed(Some(why)) => {
            line.push_str(" — ");
            line.push_str(why);
        }
        _ => {}
    }
    line
}

/// The "working" indicator shown while a turn runs.
pub fn working_line(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    if secs == 0 {
        "⏳ Working…".to_owned()
    } else {
        format!("⏳ Working… {}", format_duration(elapsed))
    }
}

fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let whole = d.as_secs();
        format!("{} min {} s", whole / 60, whole % 60)
    }
}

fn format_cost(usd: f64) -> String {
    if usd >= 1.0 {
        format!("${usd:.2}")
    } else {
        format!("${usd:.4}")
    }
}

/// The line that ends a turn: `✓ Done in 12.3 s · 3 turns · $0.0123`.
///
/// `total_cost_usd` in a result is cumulative for the CLI process, so the
/// turn's cost is the difference from `cost_before_turn` (the previous
/// result's total; `None` for the first turn of a process).
pub fn closing_line(result: &ResultMessage, cost_before_turn: Option<f64>) -> String {
    let head = if result.is_error {
        "✗ Failed"
    } else if result.subtype == "success" {
        "✓ Done"
    } else {
        "✗ Stopped"
    };
    let mut parts = vec![match result.duration_ms {
        Some(ms) => format!("{head} in {}", format_duration(Duration::from_millis(ms))),
        None => head.to_owned(),
    }];
    if let Some(n) = result.num_turns {
        parts.push(format!("{n} turn{}", if n == 1 { "" } else { "s" }));
    }
    if let Some(total) = result.total_cost_usd {
        parts.push(format_cost(
            (total - cost_before_turn.unwrap_or(0.0)).max(0.0),
        ));
    }
    let mut line = parts.join(" · ");
    let why = if let Some(status) = result.api_error_status {
        Some(format!("API error {status}"))
    } else if result.subtype == "error_max_turns" {
        Some("the turn limit was reached".to_owned())
    } else if result.is_error || result.subtype != "success" {
        result
            .errors
            .first()
            .cloned()
            .or_else(|| result.result.clone())
            .map(|e| e.lines().next().unwrap_or("").to_owned())
    } else {
        None
    };
    if let Some(why) = why.filter(|w| !w.is_empty()) {
        line.push_str(" — ");
        line.push_str(&why);
    }
    line
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Tool(ToolActivity),
}

/// Folds one turn's CLI messages into what the turn's post shows.
#[derive(Debug, Clone, Default)]
pub struct TurnRenderer {
    cwd: Option<String>,
    limits: InlineLimits,
    parts: Vec<Part>,
    /// The text part that stream deltas append to, if one is open.
    streaming_text: Option<usize>,
}

impl TurnRenderer {
    /// `cwd` makes file targets relative; `system/init` sets it when `None`.
    pub fn new(cwd: Option<String>, limits: InlineLimits) -> TurnRenderer {
        TurnRenderer {
            cwd,
            limits,
            ..Default::default()
        }
    }

    fn tool_mut(&mut self, id: &str) -> Option<&mut ToolActivity> {
        self.parts.iter_mut().find_map(|p| match p {
            Part::Tool(t) if t.tool_use_id == id => Some(t),
            _ => None,
        })
    }

    fn start_tool(&mut self, id: &str, name: &str, input: &Value) {
        let target = tool_target(name, input, self.cwd.as_deref());
        if let Some(t) = self.tool_mut(id) {
            // The streamed start had no input yet; the full message has it.
            if target.is_some() {
                t.target = target;
            }
            return;
        }
        self.streaming_text = None;
        self.parts.push(Part::Tool(ToolActivity {
            tool_use_id: id.to_owned(),
            name: name.to_owned(),
            target,
            state: ToolState::Running,
            output: None,
        }));
    }

    /// Applies one CLI message; returns whether the rendering changed (a
    /// hint for coalescing post updates). Messages of subagents
    /// (`parent_tool_use_id` set) are left out: they are the Task tool's
    /// internals.
    pub fn apply(&mut self, msg: &CliMessage) -> bool {
        match msg {
            CliMessage::System(s) => {
                if let SystemEvent::Known(KnownSystemEvent::Init(init)) = &s.event {
                    if self.cwd.is_none() {
                        self.cwd = init.cwd.clone();
                    }
                }
                false
            }
            CliMessage::StreamEvent(e) if e.parent_tool_use_id.is_none() => {
                let StreamEvent::Known(event) = &e.event else {
                    return false;
                };
                match event {
                    KnownStreamEvent::ContentBlockStart { content_block, .. } => {
                        match content_block {
                            ContentBlock::Known(KnownBlock::Text { text }) => {
                                self.parts.push(Part::Text(text.clone()));
                                self.streaming_text = Some(self.parts.len() - 1);
                                !text.is_empty()
                            }
                            ContentBlock::Known(KnownBlock::ToolUse { id, name, input }) => {
                                self.start_tool(id, name, input);
                                true
                            }
                            _ => false,
                        }
                    }
                    KnownStreamEvent::ContentBlockDelta {
                        delta: Delta::Known(KnownDelta::TextDelta { text }),
                        ..
                    } => {
                        match self.streaming_text {
                            Some(i) => {
                                if let Some(Part::Text(t)) = self.parts.get_mut(i) {
                                    t.push_str(text);
                                }
                            }
                            None => {
                                self.parts.push(Part::Text(text.clone()));
                                self.streaming_text = Some(self.parts.len() - 1);
                            }
                        }
                        true
                    }
                    KnownStreamEvent::ContentBlockStop { .. } => {
                        self.streaming_text = None;
                        false
                    }
                    _ => false,
                }
            }
            CliMessage::Assistant(a) if a.parent_tool_use_id.is_none() => {
                let mut changed = false;
                for block in &a.message.content {
                    match block {
                        ContentBlock::Known(KnownBlock::Text { text }) => {
                            // The finished block replaces what was streamed of it.
                            match self.streaming_text.take() {
                                Some(i) => {
                                    if let Some(Part::Text(t)) = self.parts.get_mut(i) {
                                        changed |= t != text;
                                        t.clone_from(text);
                                    }
                                }
                                None => {
                                    self.parts.push(Part::Text(text.clone()));
                                    changed = true;
                                }
                            }
                        }
                        ContentBlock::Known(KnownBlock::ToolUse { id, name, input }) => {
                            self.start_tool(id, name, input);
                            changed = true;
                        }
                        _ => {}
                    }
                }
                changed
            }
            CliMessage::ControlRequest(r) => {
                let IncomingRequest::Known(KnownIncomingRequest::CanUseTool(req)) = &r.request
                else {
                    return false;
                };
                let Some(id) = &req.tool_use_id else {
                    return false;
                };
                match self.tool_mut(id) {
                    Some(t) => {
                        t.state = ToolState::AwaitingApproval;
                        true
                    }
                    None => false,
                }
            }
            CliMessage::User(u) if u.parent_tool_use_id.is_none() => {
                let UserContent::Blocks(blocks) = &u.message.content else {
                    return false;
                };
                let results: Vec<(&String, &Value, bool)> = blocks
                    .iter()
                    .filter_map(|b| match b {
                        ContentBlock::Known(KnownBlock::ToolResult {
                            tool_use_id,
                            content,
                            is_error,
                        }) => Some((tool_use_id, content, is_error.unwrap_or(false))),
                        _ => None,
                    })
                    .collect();
                // `tool_use_result` describes the message's tool result when it has one.
                let structured = if results.len() == 1 {
                    u.tool_use_result.as_ref()
                } else {
                    None
                };
                let limits = self.limits;
                let mut changed = false;
                for (id, content, is_error) in results {
                    let Some(tool) = self.tool_mut(id) else {
                        continue;
                    };
                    changed = true;
                    if is_error {
                        tool.state = ToolState::Failed(first_line(content));
                        continue;
                    }
                    tool.state = ToolState::Succeeded;
                    tool.output = structured.and_then(|r| tool_result_output(tool, r, limits));
                }
                changed
            }
            _ => false,
        }
    }

    /// Applies one session event (the engine's typed view of the CLI's
    /// output); returns whether the rendering changed. Tool output longer
    /// than `limits` becomes an attachment ([`Self::attachments`]); when it
    /// cannot be uploaded, [`Self::inline_attachment`] shows it cut instead.
    pub fn apply_event(&mut self, event: &EventKind) -> bool {
        match event {
            EventKind::TextDelta { text } => {
                match self.streaming_text {
                    Some(i) => {
                        if let Some(Part::Text(t)) = self.parts.get_mut(i) {
                            t.push_str(text);
                        }
                    }
                    None => {
                        self.parts.push(Part::Text(text.clone()));
                        self.streaming_text = Some(self.parts.len() - 1);
                    }
                }
                !text.is_empty()
            }
            EventKind::AssistantText { text, .. } => match self.streaming_text.take() {
                Some(i) => match self.parts.get_mut(i) {
                    Some(Part::Text(t)) => {
                        let changed = t != text;
                        t.clone_from(text);
                        changed
                    }
                    _ => false,
                },
                None => {
                    self.parts.push(Part::Text(text.clone()));
                    true
                }
            },
            EventKind::ToolUse {
                tool_use_id,
                tool,
                input,
            } => {
                self.start_tool(tool_use_id, tool, input);
                true
            }
            EventKind::ToolUseRequested {
                tool_use_id: Some(id),
                ..
            } => match self.tool_mut(id) {
                Some(t) => {
                    t.state = ToolState::AwaitingApproval;
                    true
                }
                None => false,
            },
            EventKind::ToolResult {
                tool_use_id,
                is_error,
                content,
                file_path,
                patch,
                stdout,
                stderr,
            } => {
                let limits = self.limits;
                let Some(tool) = self.tool_mut(tool_use_id) else {
                    return false;
                };
                if *is_error {
                    tool.state = ToolState::Failed(first_line(&Value::String(content.clone())));
                    return true;
                }
                tool.state = ToolState::Succeeded;
                let diff = patch.as_deref().map(patch_diff).unwrap_or_default();
                tool.output = if !diff.is_empty() {
                    let base = file_path
                        .as_deref()
                        .and_then(|p| p.rsplit('/').next())
                        .filter(|b| !b.is_empty())
                        .unwrap_or("changes");
                    let name = format!("{base}.diff");
                    Some((OutputKind::Diff, tool_output(&name, &diff, limits)))
                } else {
                    let out = stdout.as_deref().unwrap_or("").trim_end();
                    let err = stderr.as_deref().unwrap_or("").trim_end();
                    let text = match (out, err) {
                        ("", "") => None,
                        (o, "") => Some(o.to_owned()),
                        ("", e) => Some(e.to_owned()),
                        (o, e) => Some(format!("{o}\n{e}")),
                    };
                    let name = format!("{}-output.txt", tool.name.to_ascii_lowercase());
                    text.map(|t| (OutputKind::Text, tool_output(&name, &t, limits)))
                };
                true
            }
            _ => false,
        }
    }

    /// The tool calls so far, in order.
    pub fn tools(&self) -> impl Iterator<Item = &ToolActivity> {
        self.parts.iter().filter_map(|p| match p {
            Part::Tool(t) => Some(t),
            Part::Text(_) => None,
        })
    }

    /// Outputs to upload as files (the post names them).
    pub fn attachments(&self) -> impl Iterator<Item = (&str, &str, &[u8])> {
        self.tools().filter_map(|t| match &t.output {
            Some((_, ToolOutput::Attachment { name, bytes, .. })) => {
                Some((t.tool_use_id.as_str(), name.as_str(), bytes.as_slice()))
            }
            _ => None,
        })
    }

    /// Shows the attachment of tool call `tool_use_id` inline instead, cut to
    /// the limits with a note (when it could not be uploaded). Returns
    /// whether there was one.
    pub fn inline_attachment(&mut self, tool_use_id: &str) -> bool {
        let limits = self.limits;
        let Some(tool) = self.tool_mut(tool_use_id) else {
            return false;
        };
        let Some((kind, ToolOutput::Attachment { bytes, .. })) = &tool.output else {
            return false;
        };
        let text = String::from_utf8_lossy(bytes).into_owned();
        tool.output = Some((*kind, truncated_output(&text, limits)));
        true
    }

    /// The turn so far as Markdown: text paragraphs, tool lines (consecutive
    /// tools on consecutive lines) with their diffs or outputs.
    pub fn body(&self) -> String {
        let mut out = String::new();
        let mut previous_was_tool = false;
        for part in &self.parts {
            let (chunk, is_tool) = match part {
                Part::Text(t) if t.trim().is_empty() => continue,
                Part::Text(t) => (t.trim_end().to_owned(), false),
                Part::Tool(tool) => (render_tool(tool), true),
            };
            if !out.is_empty() {
                out.push_str(if is_tool && previous_was_tool {
                    "\n"
                } else {
                    "\n\n"
                });
            }
            out.push_str(&chunk);
            previous_was_tool = is_tool;
        }
        out
    }

    /// The whole post: [`Self::body`] then `footer` (a [`working_line`] or a
    /// [`closing_line`]).
    pub fn render(&self, footer: &str) -> String {
        let body = self.body();
        match (body.is_empty(), footer.is_empty()) {
            (true, _) => footer.to_owned(),
            (false, true) => body,
            (false, false) => format!("{body}\n\n{footer}"),
        }
    }
}

fn first_line(content: &Value) -> Option<String> {
    let text = match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => return None,
    };
    let line = text.lines().find(|l| !l.trim().is_empty())?.trim();
    const MAX: usize = 200;
    let mut short: String = line.chars().take(MAX).collect();
    if line.chars().count() > MAX {
        short.push('…');
    }
    Some(short)
}

fn tool_result_output(
    tool: &ToolActivity,
    result: &ToolUseResult,
    limits: InlineLimits,
) -> Option<(OutputKind, ToolOutput)> {
    let ToolUseResult::Structured(r) = result else {
        return None;
    };
    let base = r
        .file_path
        .as_deref()
        .and_then(|p| p.rsplit('/').next())
        .unwrap_or("changes");
    let diff = match r.structured_patch.as_deref() {
        Some(hunks) if !hunks.is_empty() => patch_diff(hunks),
        _ if r.kind.as_deref() == Some("create") => r
            .extra
            .get("content")
            .and_then(Value::as_str)
            .map(created_file_diff)
            .unwrap_or_default(),
        _ => String::new(),
    };
    if !diff.is_empty() {
        let output = tool_output(&format!("{base}.diff"), &diff, limits);
        return Some((OutputKind::Diff, output));
    }
    let stdout = r.stdout.as_deref().unwrap_or("");
    let stderr = r.stderr.as_deref().unwrap_or("");
    let text = match (stdout.trim_end(), stderr.trim_end()) {
        ("", "") => return None,
        (out, "") => out.to_owned(),
        ("", err) => err.to_owned(),
        (out, err) => format!("{out}\n{err}"),
    };
    let name = format!("{}-output.txt", tool.name.to_ascii_lowercase());
    Some((OutputKind::Text, tool_output(&name, &text, limits)))
}

fn render_tool(tool: &ToolActivity) -> String {
    let mut out = tool_line(tool);
    match &tool.output {
        Some((kind, ToolOutput::Inline(text))) => {
            let info = match kind {
                OutputKind::Diff => "diff",
                OutputKind::Text => "",
            };
            out.push('\n');
            out.push_str(&code_block(info, text));
        }
        Some((_, ToolOutput::Attachment { name, summary, .. })) => {
            out.push_str(&format!("\n📎 {} attached ({summary})", inline_code(name)));
        }
        None => {}
    }
    out
}

#[cfg(test)]
mod tests;
