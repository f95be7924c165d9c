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

/// Mattermost's post message limit in runes (`PostMessageMaxRunesV2`).
pub const POST_MAX_CHARS: usize = 16383;

/// Below this, [`split_post`] uses this instead: a few fence lines must fit.
const MIN_SPLIT_CHARS: usize = 32;

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

/// A code fence that is open at some point of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fence {
    ch: char,
    len: usize,
    /// The opening line (without newline), repeated to reopen after a split.
    header: String,
}

/// The fence char and length when `line` opens a fence (CommonMark: up to 3
/// spaces of indent, then 3+ backticks or tildes; a backtick fence's info
/// string has no backticks).
fn fence_opening(line: &str) -> Option<(char, usize)> {
    let line = line.trim_end_matches(['\n', '\r']);
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let ch = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = rest.chars().take_while(|c| *c == ch).count();
    if len < 3 || (ch == '`' && rest[len..].contains('`')) {
        return None;
    }
    Some((ch, len))
}

fn fence_closes(line: &str, fence: &Fence) -> bool {
    let line = line.trim_end_matches(['\n', '\r']);
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return false;
    }
    let rest = &line[indent..];
    let len = rest.chars().take_while(|c| *c == fence.ch).count();
    len >= fence.len && rest[len..].trim().is_empty()
}

/// The fence state after `line`.
fn after_line(state: &Option<Fence>, line: &str) -> Option<Fence> {
    match state {
        Some(f) if fence_closes(line, f) => None,
        Some(f) => Some(f.clone()),
        None => fence_opening(line).map(|(ch, len)| Fence {
            ch,
            len,
            header: line.trim_end_matches(['\n', '\r']).to_owned(),
        }),
    }
}

/// One post of a split: `prefix` reopens a fence the previous post closed,
/// `suffix` closes a fence that continues in the next post. `body` is a slice
/// of the original, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    prefix: String,
    body: String,
    suffix: String,
}

/// How a fence is reopened and closed across a split, or `None` when even
/// that would not leave room for content (an absurdly long fence line).
fn fence_lines(fence: &Option<Fence>, max: usize) -> Option<(String, String)> {
    let f = fence.as_ref()?;
    let marker: String = std::iter::repeat_n(f.ch, f.len).collect();
    let header_chars = f.header.chars().count();
    if header_chars + f.len + 2 <= max / 2 {
        Some((format!("{}\n", f.header), marker))
    } else if 2 * f.len + 2 <= max / 2 {
        Some((format!("{marker}\n"), marker))
    } else {
        None
    }
}

fn suffix_for(fence: &Option<Fence>, body: &str, max: usize) -> String {
    match fence_lines(fence, max) {
        None => String::new(),
        Some((_, close)) if body.is_empty() || body.ends_with('\n') => close,
        Some((_, close)) => format!("\n{close}"),
    }
}

fn split_pieces(text: &str, max_chars: usize) -> Vec<Piece> {
    let max = max_chars.max(MIN_SPLIT_CHARS);
    let mut pieces = Vec::new();
    let mut fence: Option<Fence> = None;
    let mut prefix = String::new();
    let mut body = String::new();
    let mut used = 0usize; // chars of prefix + body
    let flush =
        |pieces: &mut Vec<Piece>, prefix: &mut String, body: &mut String, fence: &Option<Fence>| {
            let suffix = suffix_for(fence, body, max);
            pieces.push(Piece {
                prefix: std::mem::take(prefix),
                body: std::mem::take(body),
                suffix,
            });
            *prefix = fence_lines(fence, max)
                .map(|(open, _)| open)
                .unwrap_or_default();
        };
    for line in text.split_inclusive('\n') {
        let after = after_line(&fence, line);
        let mut rest = line;
        loop {
            let rest_chars = rest.chars().count();
            // Fits whole, with room for the suffix the state after this line
            // needs? One more char than the suffix is kept in a fence so that a
            // plain closing line (` ``` ` + newline) still fits: otherwise it
            // would start a post of its own, an empty reopened code block.
            let suffix_after = fence_lines(&after, max)
                .map(|(_, close)| close.chars().count() + 1)
                .unwrap_or(0);
            if used + rest_chars + suffix_after <= max {
                body.push_str(rest);
                used += rest_chars;
                break;
            }
            if !body.is_empty() {
                flush(&mut pieces, &mut prefix, &mut body, &fence);
                used = prefix.chars().count();
                continue;
            }
            // The line alone is too long: cut it, preferring a space in the
            // second half of what fits. Reserving the larger of the two
            // closing fences guarantees the cut leaves a non-empty rest, so
            // the line's last piece is the one that changes the fence state.
            let close_len = |state: &Option<Fence>| {
                fence_lines(state, max)
                    .map(|(_, close)| close.chars().count() + 1)
                    .unwrap_or(0)
            };
            let budget = max - used - close_len(&fence).max(close_len(&after));
            let cut = cut_point(rest, budget);
            body.push_str(&rest[..cut]);
            rest = &rest[cut..];
            flush(&mut pieces, &mut prefix, &mut body, &fence);
            used = prefix.chars().count();
        }
        fence = after;
    }
    if !body.is_empty() || pieces.is_empty() {
        pieces.push(Piece {
            prefix,
            body,
            suffix: String::new(),
        });
    }
    pieces
}

/// A byte index into `text` after at most `budget` chars (at least one char),
/// at a space in the second half of the window when there is one.
fn cut_point(text: &str, budget: usize) -> usize {
    let budget = budget.max(1);
    let end = text
        .char_indices()
        .nth(budget)
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    let window = &text[..end];
    let half = window
        .char_indices()
        .nth(budget / 2)
        .map(|(i, _)| i)
        .unwrap_or(0);
    match window.rfind(char::is_whitespace) {
        Some(i) if i >= half => i + window[i..].chars().next().map_or(1, char::len_utf8),
        _ => end,
    }
}

/// Splits `text` into posts of at most `max_chars` characters (runes, as
/// Mattermost counts them), at line boundaries when possible. A code fence
/// open at a split is closed at the end of one post and reopened (with its
/// language) at the start of the next, so every post renders on its own.
/// Apart from those added fence lines, the posts concatenate to `text`.
pub fn split_post(text: &str, max_chars: usize) -> Vec<String> {
    split_pieces(text, max_chars)
        .into_iter()
        .map(|p| format!("{}{}{}", p.prefix, p.body, p.suffix))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn events_render_text_tools_and_truncated_output() {
        use crate::sessions::EventKind;
        let mut r = TurnRenderer::new(Some("/p".into()), InlineLimits::default());
        assert!(r.apply_event(&EventKind::TextDelta { text: "Hel".into() }));
        assert!(r.apply_event(&EventKind::TextDelta { text: "lo".into() }));
        assert_eq!(r.body(), "Hello");
        assert!(!r.apply_event(&EventKind::AssistantText {
            message_id: None,
            text: "Hello".into()
        }));
        assert!(r.apply_event(&EventKind::ToolUse {
            tool_use_id: "t1".into(),
            tool: "Bash".into(),
            input: serde_json::json!({"command": "seq 100"}),
        }));
        let long: String = (1..=100).map(|i| format!("{i}\n")).collect();
        assert!(r.apply_event(&EventKind::ToolResult {
            tool_use_id: "t1".into(),
            is_error: false,
            content: long.clone(),
            file_path: None,
            patch: None,
            stdout: Some(long),
            stderr: None,
        }));
        let body = r.body();
        assert!(body.starts_with("Hello\n\n"), "{body}");
        assert!(
            body.contains("📎 `bash-output.txt` attached (100 lines, 291 B)"),
            "{body}"
        );
        let files: Vec<_> = r
            .attachments()
            .map(|(id, name, b)| (id, name, b.len()))
            .collect();
        assert_eq!(files, [("t1", "bash-output.txt", 291)]);
        // Not uploaded: shown cut instead.
        assert!(r.inline_attachment("t1"));
        assert!(!r.inline_attachment("t1"));
        assert_eq!(r.attachments().count(), 0);
        let body = r.body();
        assert!(body.contains("Bash"), "{body}");
        assert!(body.contains("\n40\n"), "{body}");
        assert!(!body.contains("\n41\n"), "{body}");
        assert!(body.contains("output truncated: 40 of 100 lines"), "{body}");
    }

    use super::*;
    use proptest::prelude::*;

    fn fixture(text: &str) -> Vec<CliMessage> {
        text.lines()
            .map(|l| CliMessage::parse(l).expect("fixture line parses"))
            .collect()
    }

    fn result_of(msgs: &[CliMessage]) -> &ResultMessage {
        msgs.iter()
            .find_map(|m| match m {
                CliMessage::Result(r) => Some(r),
                _ => None,
            })
            .expect("a result line")
    }

    #[test]
    fn golden_write_allow() {
        let msgs = fixture(include_str!("../../tests/fixtures/cli/write_allow.jsonl"));
        let mut turn = TurnRenderer::new(None, InlineLimits::default());
        let mut changes = 0;
        for m in &msgs {
            changes += usize::from(turn.apply(m));
        }
        assert!(changes > 5, "{changes}");
        let post = turn.render(&closing_line(result_of(&msgs), None));
        let want = "\
I will write the file.

✓ **Write** `hello.txt`
```diff
@@ -0,0 +1,1 @@
+hi there
```
✓ **Edit** `hello.txt`
```diff
@@ -1,1 +1,1 @@
-hi there
+hello world
```

Done: hello.txt says hello world.

✓ Done in 0.3 s · 3 turns · $0.0022";
        assert_eq!(post, want);
        assert_eq!(turn.attachments().count(), 0);
    }

    #[test]
    fn streaming_text_shows_before_the_block_ends() {
        let msgs = fixture(include_str!("../../tests/fixtures/cli/write_allow.jsonl"));
        let mut turn = TurnRenderer::new(None, InlineLimits::default());
        // Up to and including the third text delta of the first block.
        let mut deltas = 0;
        for m in &msgs {
            turn.apply(m);
            if let CliMessage::StreamEvent(e) = m {
                if matches!(
                    e.event,
                    StreamEvent::Known(KnownStreamEvent::ContentBlockDelta { .. })
                ) {
                    deltas += 1;
                    if deltas == 3 {
                        break;
                    }
                }
            }
        }
        assert_eq!(turn.body(), "I will write");
        assert_eq!(
            turn.render(&working_line(Duration::from_secs(3))),
            "I will write\n\n⏳ Working… 3.0 s"
        );
    }

    #[test]
    fn denied_and_pending_tools() {
        let msgs = fixture(include_str!("../../tests/fixtures/cli/write_deny.jsonl"));
        let mut turn = TurnRenderer::new(None, InlineLimits::default());
        let mut saw_waiting = false;
        for m in &msgs {
            turn.apply(m);
            if turn.tools().any(|t| t.state == ToolState::AwaitingApproval) {
                saw_waiting = true;
                assert!(turn.body().contains("✋ **Write**"), "{}", turn.body());
                assert!(turn.body().contains("waiting for approval"));
            }
        }
        assert!(saw_waiting);
        let denied = turn.tools().next().unwrap();
        assert_eq!(
            denied.state,
            ToolState::Failed(Some("Rejected from Mattermost by @alice".into()))
        );
        assert!(turn
            .body()
            .contains("✗ **Write** `denied.txt` — Rejected from Mattermost by @alice"));
    }

    #[test]
    fn bash_output_inline_and_as_attachment() {
        let msgs = fixture(include_str!("../../tests/fixtures/cli/bash.jsonl"));
        let mut turn = TurnRenderer::new(None, InlineLimits::default());
        msgs.iter().for_each(|m| {
            turn.apply(m);
        });
        let body = turn.body();
        assert!(
            body.contains(
                "✓ **Bash** `mkdir -p out && echo bash-ran > out/marker.txt && cat out/marker.txt`\n```\nbash-ran\n```"
            ),
            "{body}"
        );
        // The same turn with tiny limits puts the output in a file.
        let mut small = TurnRenderer::new(
            None,
            InlineLimits {
                max_lines: 0,
                max_chars: 0,
            },
        );
        msgs.iter().for_each(|m| {
            small.apply(m);
        });
        assert!(
            small
                .body()
                .contains("📎 `bash-output.txt` attached (1 line, 8 B)"),
            "{}",
            small.body()
        );
        let files: Vec<_> = small.attachments().collect();
        assert_eq!(
            files,
            [("toolu_bash_1_0", "bash-output.txt", &b"bash-ran"[..])]
        );
    }

    #[test]
    fn tool_output_limits() {
        let limits = InlineLimits {
            max_lines: 3,
            max_chars: 20,
        };
        assert_eq!(
            tool_output("o.txt", "a\nb\nc", limits),
            ToolOutput::Inline("a\nb\nc".into())
        );
        let four = tool_output("o.txt", "a\nb\nc\nd", limits);
        assert!(
            matches!(&four, ToolOutput::Attachment { summary, .. } if summary == "4 lines, 7 B")
        );
        let long = "é".repeat(21);
        assert!(matches!(
            tool_output("o.txt", &long, limits),
            ToolOutput::Attachment { .. }
        ));
        let big = "x".repeat(3000);
        let ToolOutput::Attachment { summary, bytes, .. } = tool_output("o.txt", &big, limits)
        else {
            panic!()
        };
        assert_eq!(summary, "1 line, 2.9 KB");
        assert_eq!(bytes.len(), 3000);
    }

    #[test]
    fn targets_and_lines() {
        let input = serde_json::json!({"file_path": "/p/src/a.rs"});
        assert_eq!(
            tool_target("Edit", &input, Some("/p")).as_deref(),
            Some("src/a.rs")
        );
        assert_eq!(
            tool_target("Edit", &input, Some("/q")).as_deref(),
            Some("/p/src/a.rs")
        );
        let cmd = serde_json::json!({"command": "echo a\necho b"});
        assert_eq!(tool_target("Bash", &cmd, None).as_deref(), Some("echo a…"));
        let long = serde_json::json!({"command": "x".repeat(100)});
        assert_eq!(
            tool_target("Bash", &long, None).unwrap().chars().count(),
            81
        );
        assert_eq!(
            tool_target("Grep", &serde_json::json!({"pattern": "fn main"}), None).as_deref(),
            Some("fn main")
        );
        assert_eq!(tool_target("TodoWrite", &serde_json::json!({}), None), None);
        let t = ToolActivity {
            tool_use_id: "t".into(),
            name: "Bash".into(),
            target: Some("echo `date`".into()),
            state: ToolState::Running,
            output: None,
        };
        assert_eq!(tool_line(&t), "⏳ **Bash** `` echo `date` ``");
    }

    #[test]
    fn diffs() {
        let hunks = vec![
            PatchHunk {
                old_start: 1,
                old_lines: 2,
                new_start: 1,
                new_lines: 2,
                lines: vec![" keep".into(), "-old".into(), "+new".into()],
            },
            PatchHunk {
                old_start: 10,
                old_lines: 1,
                new_start: 10,
                new_lines: 0,
                lines: vec!["-gone".into()],
            },
        ];
        assert_eq!(
            patch_diff(&hunks),
            "@@ -1,2 +1,2 @@\n keep\n-old\n+new\n@@ -10,1 +10,0 @@\n-gone\n"
        );
        assert_eq!(created_file_diff("a\nb"), "@@ -0,0 +1,2 @@\n+a\n+b\n");
        assert_eq!(created_file_diff(""), "");
        assert_eq!(code_block("diff", "x"), "```diff\nx\n```");
        assert_eq!(code_block("", "a ``` b\n"), "````\na ``` b\n````");
    }

    #[test]
    fn closing_lines() {
        let result =
            |json: serde_json::Value| -> ResultMessage { serde_json::from_value(json).unwrap() };
        let ok = result(
            serde_json::json!({"subtype": "success", "duration_ms": 12345,
            "num_turns": 3, "total_cost_usd": 0.0523}),
        );
        assert_eq!(
            closing_line(&ok, Some(0.04)),
            "✓ Done in 12.3 s · 3 turns · $0.0123"
        );
        assert_eq!(
            closing_line(&ok, None),
            "✓ Done in 12.3 s · 3 turns · $0.0523"
        );
        let long = result(
            serde_json::json!({"subtype": "success", "duration_ms": 125_000,
            "num_turns": 1, "total_cost_usd": 1.5}),
        );
        assert_eq!(
            closing_line(&long, None),
            "✓ Done in 2 min 5 s · 1 turn · $1.50"
        );
        let api = result(serde_json::json!({"subtype": "success", "is_error": true,
            "duration_ms": 800, "num_turns": 1, "api_error_status": 500,
            "result": "API Error: 500"}));
        assert_eq!(
            closing_line(&api, None),
            "✗ Failed in 0.8 s · 1 turn — API error 500"
        );
        let max = result(serde_json::json!({"subtype": "error_max_turns", "num_turns": 10}));
        assert_eq!(
            closing_line(&max, None),
            "✗ Stopped · 10 turns — the turn limit was reached"
        );
        let during = result(serde_json::json!({"subtype": "error_during_execution",
            "errors": ["boom\ntrace"]}));
        assert_eq!(closing_line(&during, None), "✗ Stopped — boom");
        assert_eq!(working_line(Duration::from_millis(300)), "⏳ Working…");
        assert_eq!(
            working_line(Duration::from_secs(75)),
            "⏳ Working… 1 min 15 s"
        );
    }

    #[test]
    fn split_keeps_fences_and_lines() {
        assert_eq!(split_post("", 100), [""]);
        assert_eq!(split_post("short", 100), ["short"]);
        let text = format!("intro\n```rust\n{}```\nafter\n", "let x = 1;\n".repeat(10));
        let posts = split_post(&text, 60);
        assert!(posts.len() > 2, "{posts:#?}");
        for p in &posts {
            assert!(p.chars().count() <= 60, "{p:?}");
        }
        assert!(posts[0].starts_with("intro\n```rust\n"));
        assert!(posts[0].ends_with("```"), "{:?}", posts[0]);
        assert!(
            posts[1].starts_with("```rust\nlet x = 1;\n"),
            "{:?}",
            posts[1]
        );
        // Splits fall on line boundaries: every body line is whole.
        for p in &posts {
            for line in p.lines() {
                assert!(
                    line == "intro"
                        || line == "after"
                        || line.starts_with("```")
                        || line == "let x = 1;",
                    "{line:?}"
                );
            }
        }
        // A line longer than a post is cut at a space.
        let words = "word ".repeat(30);
        let posts = split_post(&words, 40);
        assert!(posts.iter().all(|p| p.chars().count() <= 40));
        assert!(posts[..posts.len() - 1].iter().all(|p| p.ends_with(' ')));
        assert_eq!(posts.concat(), words);
        // The real limit.
        let big = format!("```diff\n{}```\n", "+added line\n".repeat(3000));
        let posts = split_post(&big, POST_MAX_CHARS);
        assert_eq!(posts.len(), 3);
        assert!(posts.iter().all(|p| p.chars().count() <= POST_MAX_CHARS));
        assert!(posts[1].starts_with("```diff\n") && posts[1].ends_with("```"));
        // A fence that closes right at the limit is not pushed into a post of its own.
        let tight = format!("```\n{}```\n", "abcdefghi\n".repeat(5));
        let exact = tight.chars().count() - 1; // everything but the final newline
        let posts = split_post(&tight, exact);
        assert_eq!(posts.len(), 2, "{posts:#?}");
        assert!(!posts[1].starts_with("```\n```"), "{posts:#?}");
    }

    /// Runs the fence state machine over a whole post.
    fn ends_in_fence(post: &str) -> bool {
        let mut state = None;
        for line in post.split_inclusive('\n') {
            state = after_line(&state, line);
        }
        state.is_some()
    }

    fn fragments() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec![
                "```",
                "```rust",
                "~~~",
                "````",
                "\n",
                "\n",
                "\n",
                "a",
                "é",
                "🦀",
                " ",
                "word ",
                "`",
                "line of text",
                "   ```",
                "\r\n",
            ]),
            0..200,
        )
        .prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn split_never_loses_or_reorders(text in fragments(), max in 32usize..300) {
            let pieces = split_pieces(&text, max);
            let bodies: String = pieces.iter().map(|p| p.body.as_str()).collect();
            prop_assert_eq!(&bodies, &text);
            for p in &pieces {
                let post = format!("{}{}{}", p.prefix, p.body, p.suffix);
                prop_assert!(post.chars().count() <= max, "{:?}", post);
                // What was added is fence lines only.
                if !p.prefix.is_empty() {
                    prop_assert!(fence_opening(&p.prefix).is_some(), "{:?}", p.prefix);
                    prop_assert!(p.prefix.ends_with('\n'));
                }
                let close = p.suffix.trim_start_matches('\n');
                prop_assert!(close.chars().all(|c| c == '`' || c == '~'), "{:?}", p.suffix);
            }
            prop_assert_eq!(split_post(&text, max).len(), pieces.len());
        }

        #[test]
        fn split_closes_every_fence_it_opens(
            lines in prop::collection::vec(
                prop::sample::select(vec![
                    "```", "```rust", "~~~~", "text", "more text here", "", "`inline`",
                ]),
                0..120,
            ),
            max in 40usize..200,
        ) {
            let text = lines.join("\n");
            let posts = split_post(&text, max);
            for post in &posts[..posts.len() - 1] {
                prop_assert!(!ends_in_fence(post), "{:?}", post);
            }
        }

        #[test]
        fn split_any_text(text in ".{0,2000}", max in 0usize..500) {
            let pieces = split_pieces(&text, max);
            let bodies: String = pieces.iter().map(|p| p.body.as_str()).collect();
            prop_assert_eq!(&bodies, &text);
            for p in &pieces {
                let n = p.prefix.chars().count() + p.body.chars().count() + p.suffix.chars().count();
                prop_assert!(n <= max.max(MIN_SPLIT_CHARS));
            }
        }
    }
}
