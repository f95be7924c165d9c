//! Requests that ask a person rather than for permission (`requires_user_interaction`):
//! `AskUserQuestion` becomes a card with the questions, a button per option of a lone
//! single-choice question and a dialog for the rest (multiple choice as checkboxes, "Other…" as
//! free text); `ExitPlanMode` becomes a card with the plan and three ways to go on. The answers
//! go back as the CLI expects them: `updatedInput` = input + `answers` (question text → label,
//! labels of a multiple choice comma-joined), or a denial whose message is the feedback.
//!
//! Buttons carry indexes, never labels: the signed id names the option, and the answer sent is
//! the model's own label, whatever the card had to show instead.

use serde_json::Value;

use super::card::{
    self, clock_utc, ActionContext, ActionSigner, ApprovalAction, APPROVAL_ACTION_PATH,
    DIALOG_TEXTAREA_MAX,
};
use super::neutralise;
use crate::mattermost::model::{
    DialogElement, OpenDialogRequest, PostAction, PostActionIntegration, PostActionOptions,
    SlackAttachment,
};

pub(crate) const ASK_TOOL: &str = "AskUserQuestion";
pub(crate) const PLAN_TOOL: &str = "ExitPlanMode";

/// Mattermost's limits for a dialog element's display name and help text (and a bool's
/// placeholder), in bytes.
const DISPLAY_NAME_MAX: usize = 24;
const HELP_TEXT_MAX: usize = 150;
/// How much of a question, and of an option's label or description, a card shows: the card
/// must keep room for the line that says who answered what.
const QUESTION_SHOWN_MAX: usize = 500;
const LABEL_SHOWN_MAX: usize = 200;
/// A button's label (an option's label from the model) is cut here.
const BUTTON_LABEL_MAX: usize = 60;
/// The plan shown on the card; a longer one is cut there and also posted whole as a file.
pub(crate) const PLAN_SHOWN_MAX: usize = 6000;
/// The dialog field of the "Keep planning" feedback.
pub(crate) const FIELD_FEEDBACK: &str = "feedback";

const COLOR_ASKING: &str = "#1c58d9";

/// One question of an `AskUserQuestion` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub text: String,
    pub header: String,
    /// `(label, description)`.
    pub options: Vec<(String, String)>,
    pub multi_select: bool,
}

/// What a `requires_user_interaction` request asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    Questions(Vec<Question>),
    /// The plan file's text (absent when the model wrote none).
    Plan(Option<String>),
}

impl Interaction {
    /// The interaction of a request, or `None` for an ordinary approval (or an input of a form
    /// we do not know, which then gets the ordinary card rather than a wrong one).
    pub(crate) fn of(tool: &str, input: &Value, requires_user_interaction: bool) -> Option<Self> {
        if !requires_user_interaction {
            return None;
        }
        match tool {
            ASK_TOOL => questions(input).map(Interaction::Questions),
            PLAN_TOOL => Some(Interaction::Plan(
                input
                    .get("plan")
                    .and_then(Value::as_str)
                    .filter(|p| !p.trim().is_empty())
                    .map(str::to_owned),
            )),
            _ => None,
        }
    }
}

fn questions(input: &Value) -> Option<Vec<Question>> {
    let list = input.get("questions")?.as_array()?;
    let parsed: Option<Vec<Question>> = list
        .iter()
        .map(|q| {
            let text = q.get("question")?.as_str()?.to_owned();
            let options = q
                .get("options")?
                .as_array()?
                .iter()
                .map(|o| {
                    let label = o.get("label")?.as_str()?.to_owned();
                    let description = o
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    Some((label, description.to_owned()))
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Question {
                text,
                header: q
                    .get("header")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                options,
                multi_select: q.get("multiSelect").and_then(Value::as_bool) == Some(true),
            })
        })
        .collect();
    // Indexes travel as u8 in button ids.
    parsed.filter(|qs| {
        !qs.is_empty()
            && qs.len() <= usize::from(u8::MAX)
            && qs.iter().all(|q| q.options.len() <= 200)
    })
}

/// How a limit counts: what a card shows is cut at characters; a dialog's fields are cut at
/// bytes, since that is what the server counts (model/integration_action.go,
/// `checkMaxLength`: Go's `len`), and one field too long makes OpenInteractiveDialog fail.
#[derive(Clone, Copy)]
enum Count {
    Chars,
    Bytes,
}

impl Count {
    fn of(self, c: char) -> usize {
        match self {
            Count::Chars => 1,
            Count::Bytes => c.len_utf8(),
        }
    }

    fn len(self, s: &str) -> usize {
        s.chars().map(|c| self.of(c)).sum()
    }
}

const ELLIPSIS: char = '…';

/// What the model wrote, as a card or dialog may show it: neutralised, with every mention made
/// inert (the card notifies its approver and no one the model names; the server finds mentions
/// in attachments, and current servers render dialog help texts as markdown), and cut to `max`
/// as `count` counts, on a character boundary. Never what goes back to the CLI: that is the
/// model's own text.
fn cut(text: &str, max: usize, count: Count) -> String {
    let safe = neutralise::text(text);
    let safe = neutralise::no_mentions(&safe);
    if count.len(&safe) <= max {
        return safe.into_owned();
    }
    let room = max.saturating_sub(count.of(ELLIPSIS));
    let mut s = String::new();
    let mut used = 0;
    for c in safe.chars() {
        used += count.of(c);
        if used > room {
            break;
        }
        s.push(c);
    }
    s.push(ELLIPSIS);
    s
}

/// For a card: at most `max` characters.
fn shown(text: &str, max: usize) -> String {
    cut(text, max, Count::Chars)
}

/// For a dialog's field: at most `max` bytes.
fn field(text: &str, max: usize) -> String {
    cut(text, max, Count::Bytes)
}

fn button(url: &str, signer: &ActionSigner, ctx: ActionContext, name: String) -> PostAction {
    PostAction {
        id: ctx.action.id().into(),
        r#type: "button".into(),
        name,
        style: ctx.action.style().into(),
        integration: Some(PostActionIntegration {
            url: url.to_owned(),
            context: Some(signer.context_props(&ctx)),
        }),
        ..Default::default()
    }
}

/// Where a card's buttons point, and what they are about.
pub(crate) struct CardTarget<'a> {
    pub site_url: &'a str,
    pub session_id: &'a str,
    pub request_id: &'a str,
    /// Unix seconds.
    pub expires_at: i64,
}

impl CardTarget<'_> {
    fn ctx(&self, action: ApprovalAction) -> ActionContext {
        ActionContext {
            session_id: self.session_id.to_owned(),
            request_id: self.request_id.to_owned(),
            action,
            expires_at: self.expires_at,
        }
    }

    fn url(&self) -> String {
        format!(
            "{}{APPROVAL_ACTION_PATH}",
            self.site_url.trim_end_matches('/')
        )
    }
}

/// The pending card of a question or plan.
pub(crate) fn attachment(
    target: &CardTarget<'_>,
    signer: &ActionSigner,
    asked: &Interaction,
) -> SlackAttachment {
    match asked {
        Interaction::Questions(questions) => question_attachment(target, signer, questions),
        Interaction::Plan(plan) => plan_attachment(target, signer, plan.as_deref()),
    }
}

/// Whether a click can answer at once: one question, single choice.
fn buttons_answer(questions: &[Question]) -> bool {
    matches!(questions, [q] if !q.multi_select)
}

/// The pending card of an `AskUserQuestion` request.
pub(crate) fn question_attachment(
    target: &CardTarget<'_>,
    signer: &ActionSigner,
    questions: &[Question],
) -> SlackAttachment {
    let mut text = String::from("Claude asks:");
    for q in questions {
        text.push_str("\n\n");
        if !q.header.is_empty() {
            text.push_str(&format!("**{}** · ", shown(&q.header, LABEL_SHOWN_MAX)));
        }
        text.push_str(&format!("**{}**", shown(&q.text, QUESTION_SHOWN_MAX)));
        if q.multi_select {
            text.push_str(" _(choose any)_");
        }
        for (label, description) in &q.options {
            text.push_str(&format!("\n- {}", shown(label, LABEL_SHOWN_MAX)));
            if !description.is_empty() {
                text.push_str(&format!(" — {}", shown(description, LABEL_SHOWN_MAX)));
            }
        }
    }
    let url = target.url();
    let mut actions = Vec::new();
    let dialog_label = if buttons_answer(questions) {
        for (i, (label, _)) in questions[0].options.iter().enumerate() {
            let action = ApprovalAction::Answer {
                question: 0,
                option: i as u8,
            };
            let name = shown(label, BUTTON_LABEL_MAX);
            actions.push(button(&url, signer, target.ctx(action), name));
        }
        ApprovalAction::AnswerInDialog.label()
    } else {
        "Answer…"
    };
    actions.push(button(
        &url,
        signer,
        target.ctx(ApprovalAction::AnswerInDialog),
        dialog_label.to_owned(),
    ));
    SlackAttachment {
        fallback: format!("Claude asks: {}", questions[0].text),
        color: COLOR_ASKING.into(),
        text,
        footer: format!(
            "Waiting for an answer · expires at {}",
            clock_utc(target.expires_at)
        ),
        actions,
        ..Default::default()
    }
}

/// The answer of a button: `(question, label)`, or `None` for an index the request lacks.
pub(crate) fn option_answer(
    questions: &[Question],
    question: u8,
    option: u8,
) -> Option<Vec<(String, String)>> {
    let q = questions.get(usize::from(question))?;
    let (label, _) = q.options.get(usize::from(option))?;
    Some(vec![(q.text.clone(), label.clone())])
}

fn single_field(i: usize) -> String {
    format!("q{i}")
}

fn option_field(i: usize, j: usize) -> String {
    format!("q{i}o{j}")
}

fn other_field(i: usize) -> String {
    format!("q{i}other")
}

/// The answer dialog: per question a select (single choice) or a checkbox per option (multiple
/// choice), and a free text that stands for "Other".
pub(crate) fn answer_dialog(
    trigger_id: &str,
    signer: &ActionSigner,
    ctx: &ActionContext,
    questions: &[Question],
) -> OpenDialogRequest {
    let mut intro = String::new();
    let mut elements = Vec::new();
    for (i, q) in questions.iter().enumerate() {
        let n = i + 1;
        intro.push_str(&format!("{n}. {}\n", q.text));
        let name_of = |header: &str| {
            let base = if header.is_empty() {
                format!("Question {n}")
            } else {
                format!("{n}. {header}")
            };
            field(&base, DISPLAY_NAME_MAX)
        };
        if q.multi_select {
            for (j, (label, description)) in q.options.iter().enumerate() {
                elements.push(DialogElement {
                    display_name: field(&format!("{n}. {label}"), DISPLAY_NAME_MAX),
                    name: option_field(i, j),
                    r#type: "bool".into(),
                    placeholder: field(label, HELP_TEXT_MAX),
                    help_text: field(description, HELP_TEXT_MAX),
                    optional: true,
                    ..Default::default()
                });
            }
        } else {
            elements.push(DialogElement {
                display_name: name_of(&q.header),
                name: single_field(i),
                r#type: "select".into(),
                help_text: field(&q.text, HELP_TEXT_MAX),
                optional: true,
                options: q
                    .options
                    .iter()
                    .enumerate()
                    .map(|(j, (label, _))| PostActionOptions {
                        text: field(label, HELP_TEXT_MAX),
                        value: format!("o{j}"),
                    })
                    .collect(),
                ..Default::default()
            });
        }
        elements.push(DialogElement {
            display_name: field(&format!("{n}. Other"), DISPLAY_NAME_MAX),
            name: other_field(i),
            r#type: "text".into(),
            help_text: "Your own answer, instead of (or besides) the options.".into(),
            optional: true,
            max_length: HELP_TEXT_MAX as i64 * 2,
            ..Default::default()
        });
    }
    card::dialog_request(
        "",
        trigger_id,
        &ctx.request_id,
        crate::mattermost::model::Dialog {
            title: "Answer Claude".into(),
            introduction_text: neutralise::text_within(&intro, DIALOG_TEXTAREA_MAX).into_owned(),
            elements,
            submit_label: "Answer".into(),
            state: signer.dialog_state(ctx),
            ..Default::default()
        },
    )
}

/// Why answers do not answer a question card.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum AnswerError {
    #[error("the request asks no question {0:?}")]
    UnknownQuestion(String),
    #[error("every question needs a non-empty answer; missing: {0:?}")]
    Missing(Vec<String>),
}

/// The one rule of answers, whether a dialog or the REST API gives them: every question gets
/// an answer that is not blank (`answer(i, question)`), in the questions' order. The error
/// lists the indexes of the questions left without one.
fn complete_answers(
    questions: &[Question],
    mut answer: impl FnMut(usize, &Question) -> Option<String>,
) -> Result<Vec<(String, String)>, Vec<usize>> {
    let mut answers = Vec::new();
    let mut missing = Vec::new();
    for (i, q) in questions.iter().enumerate() {
        match answer(i, q).filter(|a| !a.trim().is_empty()) {
            Some(a) => answers.push((q.text.clone(), a)),
            None => missing.push(i),
        }
    }
    if missing.is_empty() {
        Ok(answers)
    } else {
        Err(missing)
    }
}

/// Answers given as `(question text, answer)` (the REST API's `answers`), checked by the
/// dialog's rule: only the request's own questions (the CLI would pass any key on to the
/// model), each of them answered.
pub(crate) fn given_answers(
    questions: &[Question],
    given: &[(String, String)],
) -> Result<Vec<(String, String)>, AnswerError> {
    if let Some((q, _)) = given
        .iter()
        .find(|(q, _)| !questions.iter().any(|x| &x.text == q))
    {
        return Err(AnswerError::UnknownQuestion(q.clone()));
    }
    complete_answers(questions, |_, q| {
        given
            .iter()
            .find(|(text, _)| text == &q.text)
            .map(|(_, a)| a.clone())
    })
    .map_err(|missing| {
        AnswerError::Missing(
            missing
                .into_iter()
                .map(|i| questions[i].text.clone())
                .collect(),
        )
    })
}

/// The answers of a dialog submission, or the field errors to show in the dialog (every
/// question needs an answer).
pub(crate) fn dialog_answers(
    questions: &[Question],
    submission: &Value,
) -> Result<Vec<(String, String)>, serde_json::Map<String, Value>> {
    let text = |name: &str| {
        submission
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    complete_answers(questions, |i, q| {
        let mut chosen: Vec<String> = if q.multi_select {
            q.options
                .iter()
                .enumerate()
                .filter(|(j, _)| submission.get(option_field(i, *j)) == Some(&Value::Bool(true)))
                .map(|(_, (label, _))| label.clone())
                .collect()
        } else {
            text(&single_field(i))
                .and_then(|v| v.strip_prefix('o')?.parse::<usize>().ok())
                .and_then(|j| q.options.get(j))
                .map(|(label, _)| vec![label.clone()])
                .unwrap_or_default()
        };
        if let Some(other) = text(&other_field(i)) {
            // A free answer replaces a single choice and joins a multiple one.
            if !q.multi_select {
                chosen.clear();
            }
            chosen.push(other);
        }
        Some(chosen.join(", "))
    })
    .map_err(|missing| {
        missing
            .into_iter()
            .map(|i| {
                (
                    other_field(i),
                    "Choose an option or write an answer.".into(),
                )
            })
            .collect()
    })
}

/// The CLI's `updatedInput`: the model's input with the answers beside its questions.
pub(crate) fn answered_input(input: &Value, answers: &[(String, String)]) -> Value {
    let mut updated = input.as_object().cloned().unwrap_or_default();
    let map = answers
        .iter()
        .map(|(q, a)| (q.clone(), Value::String(a.clone())))
        .collect();
    updated.insert("answers".into(), Value::Object(map));
    Value::Object(updated)
}

/// The line of an answered question card.
pub(crate) fn answered_line(by: &str, at: &str, answers: &[(String, String)]) -> String {
    let mut s = format!("✅ Answered by @{by} at {at}");
    for (q, a) in answers {
        s.push_str(&format!("\n- {}: **{}**", shown(q, 200), shown(a, 300)));
    }
    s
}

/// How a plan card was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanOutcome {
    /// Leave plan mode; edits ask for approval again.
    Start,
    /// Leave plan mode in acceptEdits.
    AcceptEdits,
    /// Stay in plan mode; the feedback goes to Claude as the denial message.
    KeepPlanning { feedback: String },
}

impl PlanOutcome {
    pub(crate) fn starts(&self) -> bool {
        !matches!(self, PlanOutcome::KeepPlanning { .. })
    }
}

/// The line of a decided plan card.
pub(crate) fn plan_line(by: &str, at: &str, outcome: &PlanOutcome) -> String {
    match outcome {
        PlanOutcome::Start => {
            format!("✅ Plan approved by @{by} at {at}: edits ask for approval")
        }
        PlanOutcome::AcceptEdits => {
            format!("✅ Plan approved by @{by} at {at}: edits are accepted")
        }
        PlanOutcome::KeepPlanning { feedback } => {
            let one_line = feedback.split_whitespace().collect::<Vec<_>>().join(" ");
            format!(
                "📝 @{by} asked at {at} to keep planning: {}",
                shown(&one_line, 300)
            )
        }
    }
}

/// The pending card of an `ExitPlanMode` request: the plan as markdown (cut at
/// [`PLAN_SHOWN_MAX`], the whole of it then follows as a file) and the three buttons.
pub(crate) fn plan_attachment(
    target: &CardTarget<'_>,
    signer: &ActionSigner,
    plan: Option<&str>,
) -> SlackAttachment {
    let body = match plan {
        Some(p) if p.chars().count() > PLAN_SHOWN_MAX => format!(
            "{}\n\n_The plan goes on in the file `plan.md` posted below._",
            shown(p, PLAN_SHOWN_MAX)
        ),
        Some(p) => shown(p, PLAN_SHOWN_MAX),
        None => "_Claude wrote no plan file._".to_owned(),
    };
    let url = target.url();
    let actions = [
        ApprovalAction::PlanStart,
        ApprovalAction::PlanAcceptEdits,
        ApprovalAction::PlanKeep,
    ]
    .into_iter()
    .map(|a| button(&url, signer, target.ctx(a), a.label().to_owned()))
    .collect();
    SlackAttachment {
        fallback: "Claude has a plan and asks to start".into(),
        color: COLOR_ASKING.into(),
        pretext: "**Claude's plan** — ready to start?".into(),
        text: body,
        footer: format!(
            "Waiting for a decision · expires at {}",
            clock_utc(target.expires_at)
        ),
        actions,
        ..Default::default()
    }
}

/// "Keep planning": what Claude should change, as the denial message.
pub(crate) fn feedback_dialog(
    trigger_id: &str,
    signer: &ActionSigner,
    ctx: &ActionContext,
) -> OpenDialogRequest {
    card::dialog_request(
        "",
        trigger_id,
        &ctx.request_id,
        crate::mattermost::model::Dialog {
            title: "Keep planning".into(),
            introduction_text: "Tell Claude what to change in the plan.".into(),
            elements: vec![DialogElement {
                display_name: "Feedback".into(),
                name: FIELD_FEEDBACK.into(),
                r#type: "textarea".into(),
                max_length: DIALOG_TEXTAREA_MAX as i64,
                ..Default::default()
            }],
            submit_label: "Send".into(),
            state: signer.dialog_state(ctx),
            ..Default::default()
        },
    )
}

#[cfg(test)]
#[path = "question_tests.rs"]
mod tests;
