//! Approval cards: a tool request as an interactive-message attachment with
//! buttons (which work on every client, mobile included), the dialogs two of
//! the buttons open, and the card's final form once decided or expired.
//!
//! Any channel reader can click a button, and the click reaches us with the
//! button's `context`. Mattermost strips `integration.context` before sending
//! posts to clients, but a signature makes the context trustworthy on its own
//! (also for dialog `state`, which *does* travel through the client): every
//! context carries `sig` = HMAC-SHA256 over a canonical encoding of
//! `session_id`, `request_id`, `action` and `expires_at`, keyed with a
//! per-installation secret. Signature checks do not replace the integrator's
//! own checks (may this user approve? is the request still pending?).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::render::{code_block, created_file_diff};
use crate::mattermost::attachments;
use crate::mattermost::model::{
    Any, Dialog, DialogElement, OpenDialogRequest, Post, PostAction, PostActionIntegration,
    SlackAttachment,
};

/// Where button clicks go, appended to the `site_url` the builders take.
///
/// Pass an empty `site_url` to get the relative `/plugins/…` URL: Mattermost
/// then calls ServeHTTP in-process with `Mattermost-User-Id` set
/// (DoActionRequest → DoLocalRequest). An absolute `<SiteURL>/plugins/…` URL
/// makes the server call itself over HTTP with the clicker's session token,
/// which fails where the server cannot reach its own public URL (TLS
/// offloading, split DNS), so the relative form is the safer default.
pub const APPROVAL_ACTION_PATH: &str =
    concat!("/plugins/", env!("PLUGIN_ID"), "/api/v1/actions/approval");
/// Where the deny-with-reason and edit-and-approve dialogs are submitted.
pub const APPROVAL_DIALOG_PATH: &str = concat!(
    "/plugins/",
    env!("PLUGIN_ID"),
    "/api/v1/actions/approval/dialog"
);
/// Mattermost's limit for a dialog textarea.
pub const DIALOG_TEXTAREA_MAX: usize = 3000;
/// Mattermost's limit for a dialog title.
pub const DIALOG_TITLE_MAX: usize = 24;
/// The card's preview of the tool input stops here (the rest is elided).
const PREVIEW_MAX_CHARS: usize = 3000;
const PREVIEW_MAX_LINES: usize = 40;
/// A deny reason shown on the card is cut here (the CLI gets it whole).
const REASON_SHOWN_MAX: usize = 300;

const COLOR_PENDING: &str = "#f2c744";
const COLOR_APPROVED: &str = "#3db887";
const COLOR_DENIED: &str = "#d24b4e";
const COLOR_EXPIRED: &str = "#8b8f97";

type HmacSha256 = Hmac<Sha256>;

/// A button of the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalAction {
    Approve,
    ApproveForSession,
    Deny,
    DenyWithReason,
    EditAndApprove,
    // The buttons of question and plan cards (`question.rs` draws those cards).
    /// One option of a single-choice question, by index: the answer is in the signed id.
    Answer {
        question: u8,
        option: u8,
    },
    /// Opens the answer dialog (multiple choice, several questions, or "Other…").
    AnswerInDialog,
    /// Leave plan mode and go on with approvals (the CLI's default mode).
    PlanStart,
    /// Leave plan mode in acceptEdits.
    PlanAcceptEdits,
    /// Opens the feedback dialog; the feedback is the denial message.
    PlanKeep,
}

impl ApprovalAction {
    pub const ALL: [ApprovalAction; 5] = [
        ApprovalAction::Approve,
        ApprovalAction::ApproveForSession,
        ApprovalAction::Deny,
        ApprovalAction::DenyWithReason,
        ApprovalAction::EditAndApprove,
    ];

    /// The button id; Mattermost's action route accepts `[A-Za-z0-9]+` only.
    pub fn id(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            ApprovalAction::Approve => "approve",
            ApprovalAction::ApproveForSession => "approvesession",
            ApprovalAction::Deny => "deny",
            ApprovalAction::DenyWithReason => "denyreason",
            ApprovalAction::EditAndApprove => "editapprove",
            ApprovalAction::Answer { question, option } => {
                return Cow::Owned(format!("q{question}o{option}"))
            }
            ApprovalAction::AnswerInDialog => "answer",
            ApprovalAction::PlanStart => "planstart",
            ApprovalAction::PlanAcceptEdits => "planacceptedits",
            ApprovalAction::PlanKeep => "plankeep",
        })
    }

    pub fn from_id(id: &str) -> Option<ApprovalAction> {
        const FIXED: [ApprovalAction; 4] = [
            ApprovalAction::AnswerInDialog,
            ApprovalAction::PlanStart,
            ApprovalAction::PlanAcceptEdits,
            ApprovalAction::PlanKeep,
        ];
        if let Some(a) = Self::ALL.into_iter().chain(FIXED).find(|a| a.id() == id) {
            return Some(a);
        }
        // `q<question>o<option>` in canonical decimal only, so the signed text is unique.
        let (q, o) = id.strip_prefix('q')?.split_once('o')?;
        let index = |t: &str| t.parse::<u8>().ok().filter(|n| n.to_string() == t);
        Some(ApprovalAction::Answer {
            question: index(q)?,
            option: index(o)?,
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            ApprovalAction::Approve => "Approve",
            ApprovalAction::ApproveForSession => "Approve for this session",
            ApprovalAction::Deny => "Deny",
            ApprovalAction::DenyWithReason => "Deny with reason…",
            ApprovalAction::EditAndApprove => "Edit and approve…",
            // An option's label is the model's text, given by `question.rs`.
            ApprovalAction::Answer { .. } => "",
            ApprovalAction::AnswerInDialog => "Other…",
            ApprovalAction::PlanStart => "Start with approvals",
            ApprovalAction::PlanAcceptEdits => "Start and accept edits",
            ApprovalAction::PlanKeep => "Keep planning…",
        }
    }

    pub(crate) fn style(self) -> &'static str {
        match self {
            ApprovalAction::Approve | ApprovalAction::PlanStart => "primary",
            ApprovalAction::Deny => "danger",
            _ => "default",
        }
    }

    /// Whether the click should open a dialog instead of deciding at once.
    pub fn opens_dialog(self) -> bool {
        matches!(
            self,
            ApprovalAction::DenyWithReason
                | ApprovalAction::EditAndApprove
                | ApprovalAction::AnswerInDialog
                | ApprovalAction::PlanKeep
        )
    }
}

/// What a button (or dialog) stands for; signed as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionContext {
    pub session_id: String,
    /// The CLI's control request id of the `can_use_tool` prompt.
    pub request_id: String,
    pub action: ApprovalAction,
    /// Unix seconds after which the button is refused.
    pub expires_at: i64,
}

/// The secret given to [`ActionSigner::new`] is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the action signing secret is not hex")]
    NotHex,
    #[error("the action signing secret has {bytes} bytes; at least {min} are needed")]
    TooShort { bytes: usize, min: usize },
}

/// Why a button context or dialog state was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Forged, tampered with, or signed with another installation's secret.
    #[error("this button was not issued by this server")]
    BadSignature,
    #[error("this request expired; it was denied automatically")]
    Expired { expired_at: i64 },
    /// A field is missing or has the wrong form (names the field).
    #[error("the button's data is malformed ({0})")]
    Malformed(&'static str),
}

/// Signs and verifies action contexts with the installation's secret.
#[derive(Clone)]
pub struct ActionSigner {
    key: Vec<u8>,
}

impl fmt::Debug for ActionSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ActionSigner(<redacted>)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

impl ActionSigner {
    /// Bytes of a generated secret (and the minimum accepted).
    pub const SECRET_BYTES: usize = 32;

    /// A fresh secret, hex-encoded, for the integrator to store in the plugin
    /// KV store once per installation.
    pub fn generate_secret() -> Result<String, getrandom::Error> {
        let mut bytes = [0u8; Self::SECRET_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(hex(&bytes))
    }

    pub fn new(secret_hex: &str) -> Result<ActionSigner, SecretError> {
        let key = unhex(secret_hex.trim()).ok_or(SecretError::NotHex)?;
        if key.len() < Self::SECRET_BYTES {
            return Err(SecretError::TooShort {
                bytes: key.len(),
                min: Self::SECRET_BYTES,
            });
        }
        Ok(ActionSigner { key })
    }

    fn mac(&self, ctx: &ActionContext) -> HmacSha256 {
        // Length-prefixed fields in a fixed order: no two contexts share an
        // encoding, whatever their fields contain.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key length");
        mac.update(b"claude-code approval v1\n");
        let expires = ctx.expires_at.to_string();
        let action = ctx.action.id();
        for field in [
            ctx.session_id.as_str(),
            ctx.request_id.as_str(),
            action.as_ref(),
            expires.as_str(),
        ] {
            mac.update(format!("{}:", field.len()).as_bytes());
            mac.update(field.as_bytes());
            mac.update(b"\n");
        }
        mac
    }

    /// The hex signature of `ctx`.
    pub fn sign(&self, ctx: &ActionContext) -> String {
        hex(&self.mac(ctx).finalize().into_bytes())
    }

    /// `ctx` and its signature as a JSON object of strings (strings, because
    /// Go round-trips JSON numbers through float64).
    pub fn signed_json(&self, ctx: &ActionContext) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("session_id".into(), ctx.session_id.clone().into());
        m.insert("request_id".into(), ctx.request_id.clone().into());
        m.insert("action".into(), ctx.action.id().into_owned().into());
        m.insert("expires_at".into(), ctx.expires_at.to_string().into());
        m.insert("sig".into(), self.sign(ctx).into());
        m
    }

    /// The same, as a button's `integration.context`.
    pub fn context_props(&self, ctx: &ActionContext) -> BTreeMap<String, Any> {
        self.signed_json(ctx)
            .into_iter()
            .map(|(k, v)| (k, Any::String(v.as_str().unwrap_or_default().to_owned())))
            .collect()
    }

    /// Checks a click's `context` (from PostActionIntegrationRequest) at
    /// `now` (unix seconds). Extra keys (Mattermost adds `selected_option`
    /// for menus) are ignored.
    pub fn verify(&self, context: &Value, now: i64) -> Result<ActionContext, VerifyError> {
        let obj = context
            .as_object()
            .ok_or(VerifyError::Malformed("context"))?;
        let field = |name: &'static str| {
            obj.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or(VerifyError::Malformed(name))
        };
        let action =
            ApprovalAction::from_id(field("action")?).ok_or(VerifyError::Malformed("action"))?;
        let expires = field("expires_at")?;
        // Only the canonical decimal form, so the signed text is unique.
        let expires_at: i64 = expires
            .parse()
            .ok()
            .filter(|n: &i64| n.to_string() == expires)
            .ok_or(VerifyError::Malformed("expires_at"))?;
        let sig = unhex(field("sig")?)
            .filter(|s| s.len() == 32)
            .ok_or(VerifyError::Malformed("sig"))?;
        let ctx = ActionContext {
            session_id: field("session_id")?.to_owned(),
            request_id: field("request_id")?.to_owned(),
            action,
            expires_at,
        };
        // Constant-time comparison (hmac's verify_slice).
        self.mac(&ctx)
            .verify_slice(&sig)
            .map_err(|_| VerifyError::BadSignature)?;
        if now >= expires_at {
            return Err(VerifyError::Expired {
                expired_at: expires_at,
            });
        }
        Ok(ctx)
    }

    /// A dialog's `state`: the signed context as JSON text.
    pub fn dialog_state(&self, ctx: &ActionContext) -> String {
        Value::Object(self.signed_json(ctx)).to_string()
    }

    /// Checks a dialog submission's `state`.
    pub fn verify_state(&self, state: &str, now: i64) -> Result<ActionContext, VerifyError> {
        let value: Value =
            serde_json::from_str(state).map_err(|_| VerifyError::Malformed("state"))?;
        self.verify(&value, now)
    }
}

/// A pending `can_use_tool` request, as the card shows it.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalRequest<'a> {
    pub session_id: &'a str,
    pub request_id: &'a str,
    pub tool_name: &'a str,
    pub input: &'a Value,
    /// The CLI's short description (e.g. the file name), if any.
    pub description: Option<&'a str>,
    /// The project directory: file paths under it are shown relative.
    pub cwd: Option<&'a str>,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The part of a tool input the edit dialog edits: one string field of the
/// input (`field`), or the whole input as JSON (`field: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditableInput {
    pub field: Option<&'static str>,
    pub text: String,
}

/// What "Edit and approve" would edit, when it fits a dialog textarea.
pub fn editable_input(tool_name: &str, input: &Value) -> Option<EditableInput> {
    let field = match tool_name {
        "Bash" => Some("command"),
        "Edit" => Some("new_string"),
        "Write" => Some("content"),
        _ => None,
    };
    let text = match field {
        Some(f) => input.get(f)?.as_str()?.to_owned(),
        None => serde_json::to_string_pretty(input).ok()?,
    };
    // The server counts the textarea's default in bytes (Go's `len`).
    (text.len() <= DIALOG_TEXTAREA_MAX).then_some(EditableInput { field, text })
}

/// Why an edited input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("the edited input is not valid JSON: {0}")]
    NotJson(String),
    #[error("the edited input must be a JSON object")]
    NotAnObject,
    #[error("the edited text is longer than {DIALOG_TEXTAREA_MAX} characters")]
    TooLong,
}

/// The tool input with the dialog's `submitted` text in place (the CLI's
/// `updatedInput`).
pub fn apply_edit(input: &Value, field: Option<&str>, submitted: &str) -> Result<Value, EditError> {
    if submitted.chars().count() > DIALOG_TEXTAREA_MAX {
        return Err(EditError::TooLong);
    }
    match field {
        Some(f) => {
            let mut updated = input.as_object().cloned().unwrap_or_default();
            updated.insert(f.to_owned(), Value::String(submitted.to_owned()));
            Ok(Value::Object(updated))
        }
        None => {
            let v: Value =
                serde_json::from_str(submitted).map_err(|e| EditError::NotJson(e.to_string()))?;
            if v.is_object() {
                Ok(v)
            } else {
                Err(EditError::NotAnObject)
            }
        }
    }
}

/// `HH:MM UTC` of unix seconds (the server does not know viewers' zones).
pub fn clock_utc(unix_seconds: i64) -> String {
    let day = unix_seconds.rem_euclid(86_400);
    format!("{:02}:{:02} UTC", day / 3600, day % 3600 / 60)
}

fn relative<'a>(path: &'a str, cwd: Option<&str>) -> &'a str {
    cwd.and_then(|c| path.strip_prefix(c))
        .and_then(|p| p.strip_prefix('/'))
        .unwrap_or(path)
}

/// Keeps at most [`PREVIEW_MAX_LINES`] lines and [`PREVIEW_MAX_CHARS`]
/// characters, saying what was left out.
fn clip(text: &str) -> (String, Option<String>) {
    let total_lines = text.lines().count();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i == PREVIEW_MAX_LINES || out.chars().count() + line.chars().count() > PREVIEW_MAX_CHARS
        {
            return (out, Some(format!("… {} more lines", total_lines - i)));
        }
        out.push_str(line);
        out.push('\n');
    }
    (out, None)
}

fn preview(req: &ApprovalRequest<'_>) -> String {
    let str_field = |k: &str| req.input.get(k).and_then(Value::as_str);
    let (info, body) = match req.tool_name {
        "Bash" => ("bash", str_field("command").unwrap_or("").to_owned()),
        "Edit" => {
            let old = str_field("old_string").unwrap_or("");
            let new = str_field("new_string").unwrap_or("");
            let mut d = String::new();
            old.lines().for_each(|l| d.push_str(&format!("-{l}\n")));
            new.lines().for_each(|l| d.push_str(&format!("+{l}\n")));
            ("diff", d)
        }
        "Write" => (
            "diff",
            created_file_diff(str_field("content").unwrap_or("")),
        ),
        _ => (
            "json",
            serde_json::to_string_pretty(req.input).unwrap_or_default(),
        ),
    };
    let (shown, elided) = clip(&body);
    let mut out = code_block(info, &shown);
    if let Some(e) = elided {
        out.push_str(&format!("\n_{e}_"));
    }
    out
}

/// What a request acts on: its file (relative to the project), else the CLI's description.
fn target(input: &Value, description: Option<&str>, cwd: Option<&str>) -> Option<String> {
    input
        .get("file_path")
        .and_then(Value::as_str)
        .map(|p| relative(p, cwd).to_owned())
        .or_else(|| description.map(str::to_owned))
}

/// A request in a few words, as the card's title says it ("Write src/main.rs", "Question: …",
/// "Plan"): the REST API's `description` of an approval. Not neutralised: it is JSON for the
/// webapp, which renders it as text.
pub(crate) fn describe(tool: &str, input: &Value, cwd: Option<&str>) -> String {
    match super::question::Interaction::of(tool, input, true) {
        Some(super::question::Interaction::Questions(qs)) => format!("Question: {}", qs[0].text),
        Some(super::question::Interaction::Plan(_)) => "Plan".to_owned(),
        None => {
            let description = input.get("description").and_then(Value::as_str);
            match target(input, description, cwd) {
                Some(t) => format!("{tool} {t}"),
                None => tool.to_owned(),
            }
        }
    }
}

fn headline(req: &ApprovalRequest<'_>) -> String {
    match target(req.input, req.description, req.cwd) {
        Some(t) => format!("Claude wants to use **{}** on `{t}`", req.tool_name),
        None => format!("Claude wants to use **{}**", req.tool_name),
    }
}

/// The pending card: headline, a preview of the input, and the buttons
/// (Edit and approve only when the input fits a dialog).
pub fn approval_attachment(
    site_url: &str,
    signer: &ActionSigner,
    req: &ApprovalRequest<'_>,
) -> SlackAttachment {
    let url = format!("{}{APPROVAL_ACTION_PATH}", site_url.trim_end_matches('/'));
    let editable = editable_input(req.tool_name, req.input).is_some();
    let actions = ApprovalAction::ALL
        .into_iter()
        .filter(|a| *a != ApprovalAction::EditAndApprove || editable)
        .map(|action| {
            let ctx = ActionContext {
                session_id: req.session_id.to_owned(),
                request_id: req.request_id.to_owned(),
                action,
                expires_at: req.expires_at,
            };
            PostAction {
                id: action.id().into(),
                r#type: "button".into(),
                name: action.label().into(),
                style: action.style().into(),
                integration: Some(PostActionIntegration {
                    url: url.clone(),
                    context: Some(signer.context_props(&ctx)),
                }),
                ..Default::default()
            }
        })
        .collect();
    let headline = headline(req);
    SlackAttachment {
        fallback: headline.replace("**", ""),
        color: COLOR_PENDING.into(),
        text: format!("{headline}\n{}", preview(req)),
        footer: format!(
            "Waiting for approval · expires at {}",
            clock_utc(req.expires_at)
        ),
        actions,
        ..Default::default()
    }
}

/// The pending request a card post stands for, with its attachment: `(session_id, request_id,
/// attachment)` read from the buttons' context. `None` for any other post, or a decided card
/// (no buttons left).
pub fn pending_card(post: &Post) -> Option<(String, String, SlackAttachment)> {
    let atts = attachments::of_props(&post.props)?;
    atts.into_iter().find_map(|att| {
        let context = att.actions.iter().find_map(|a| {
            a.integration
                .as_ref()
                .and_then(|i| i.context.as_ref())
                .filter(|c| c.contains_key("request_id"))
        })?;
        let text = |key: &str| match context.get(key) {
            Some(Any::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        Some((text("session_id")?, text("request_id")?, att))
    })
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approved {
        by: String,
        at: i64,
        for_session: bool,
        edited: bool,
    },
    Denied {
        by: String,
        at: i64,
        reason: Option<String>,
    },
    Expired,
    /// Claude stopped waiting (interrupt, `/claude stop`, the CLI exiting, a plugin restart).
    Cancelled,
    /// A question card answered: `(question, answer)` pairs.
    Answered {
        by: String,
        at: i64,
        answers: Vec<(String, String)>,
    },
    /// A plan card: leave plan mode (`accept_edits`: in acceptEdits), or keep planning with
    /// `feedback` (a denial).
    Plan {
        by: String,
        at: i64,
        outcome: super::question::PlanOutcome,
    },
}

/// The one-line outcome shown where the buttons were.
pub fn decision_line(decision: &Decision) -> String {
    match decision {
        Decision::Approved {
            by,
            at,
            for_session,
            edited,
        } => {
            let mut s = format!("✅ Approved by @{by} at {}", clock_utc(*at));
            if *edited {
                s.push_str(" with edited input");
            }
            if *for_session {
                s.push_str(" (and for the rest of this session)");
            }
            s
        }
        Decision::Denied { by, at, reason } => {
            let mut s = format!("⛔ Denied by @{by} at {}", clock_utc(*at));
            if let Some(r) = reason.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
                // One line, bounded: the reason is user text on a shared card.
                let one_line = r.split_whitespace().collect::<Vec<_>>().join(" ");
                let mut shown: String = one_line.chars().take(REASON_SHOWN_MAX).collect();
                if one_line.chars().count() > REASON_SHOWN_MAX {
                    shown.push('…');
                }
                s.push_str(": ");
                s.push_str(&shown);
            }
            s
        }
        Decision::Expired => "⌛ Expired — denied automatically".to_owned(),
        Decision::Cancelled => {
            "⏹ Withdrawn — Claude Code stopped waiting for this decision".to_owned()
        }
        Decision::Answered { by, at, answers } => {
            super::question::answered_line(by, &clock_utc(*at), answers)
        }
        Decision::Plan { by, at, outcome } => {
            super::question::plan_line(by, &clock_utc(*at), outcome)
        }
    }
}

/// The card after the decision: same text, no buttons, the outcome in their
/// place and a colour for it.
pub fn decided_attachment(pending: &SlackAttachment, decision: &Decision) -> SlackAttachment {
    let color = match decision {
        Decision::Approved { .. } | Decision::Answered { .. } => COLOR_APPROVED,
        Decision::Plan { outcome, .. } if outcome.starts() => COLOR_APPROVED,
        Decision::Denied { .. } | Decision::Plan { .. } => COLOR_DENIED,
        Decision::Expired | Decision::Cancelled => COLOR_EXPIRED,
    };
    let line = decision_line(decision);
    SlackAttachment {
        color: color.into(),
        fallback: format!("{} — {line}", pending.fallback),
        text: format!("{}\n\n{line}", pending.text),
        footer: String::new(),
        actions: Vec::new(),
        ..pending.clone()
    }
}

pub(crate) fn dialog_request(
    site_url: &str,
    trigger_id: &str,
    callback_id: &str,
    dialog: Dialog,
) -> OpenDialogRequest {
    OpenDialogRequest {
        trigger_id: trigger_id.to_owned(),
        url: format!("{}{APPROVAL_DIALOG_PATH}", site_url.trim_end_matches('/')),
        dialog: Dialog {
            callback_id: callback_id.to_owned(),
            ..dialog
        },
    }
}

/// The submission field names of the dialogs.
pub const DIALOG_FIELD_REASON: &str = "reason";
pub const DIALOG_FIELD_INPUT: &str = "input";

/// "Deny with reason": one required textarea; the reason goes to Claude.
/// `ctx.action` should be [`ApprovalAction::DenyWithReason`].
pub fn deny_reason_dialog(
    site_url: &str,
    trigger_id: &str,
    signer: &ActionSigner,
    ctx: &ActionContext,
    tool_name: &str,
) -> OpenDialogRequest {
    dialog_request(
        site_url,
        trigger_id,
        &ctx.request_id,
        Dialog {
            title: "Deny with a reason".into(),
            introduction_text: format!(
                "Tell Claude why the **{tool_name}** request is denied and what to do instead."
            ),
            elements: vec![DialogElement {
                display_name: "Reason".into(),
                name: DIALOG_FIELD_REASON.into(),
                r#type: "textarea".into(),
                placeholder: "Run the unit tests only, not the whole suite.".into(),
                max_length: DIALOG_TEXTAREA_MAX as i64,
                ..Default::default()
            }],
            submit_label: "Deny".into(),
            state: signer.dialog_state(ctx),
            ..Default::default()
        },
    )
}

/// "Edit and approve": the editable part of the input in a textarea.
/// `ctx.action` should be [`ApprovalAction::EditAndApprove`].
pub fn edit_dialog(
    site_url: &str,
    trigger_id: &str,
    signer: &ActionSigner,
    ctx: &ActionContext,
    tool_name: &str,
    editable: &EditableInput,
) -> OpenDialogRequest {
    let what = match editable.field {
        Some("command") => "the command",
        Some("new_string") => "the replacement text",
        Some("content") => "the file content",
        _ => "the tool input (JSON)",
    };
    dialog_request(
        site_url,
        trigger_id,
        &ctx.request_id,
        Dialog {
            title: "Edit and approve".into(),
            introduction_text: format!(
                "Edit {what} of the **{tool_name}** request; it runs as submitted."
            ),
            elements: vec![DialogElement {
                display_name: "Input".into(),
                name: DIALOG_FIELD_INPUT.into(),
                r#type: "textarea".into(),
                default: editable.text.clone(),
                max_length: DIALOG_TEXTAREA_MAX as i64,
                ..Default::default()
            }],
            submit_label: "Approve".into(),
            state: signer.dialog_state(ctx),
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests;
