//! The card buttons and dialogs, as Mattermost calls them: `POST /api/v1/actions/approval` and
//! `/approval/dialog`. The context is verified (HMAC), then the decision goes through the same
//! claim and delivery as the REST API's (`approvals.rs`).

use serde_json::{json, Value};

use super::approvals::{ApiDecision, RequestKey};
use super::ChatService;
use crate::chat::authz::Action;
use crate::chat::card::{self, ApprovalAction};
use crate::chat::neutralise;
use crate::chat::post_props;
use crate::chat::question::{self, Interaction, PlanOutcome};
use crate::config::Config;
use crate::mattermost::model::SlackAttachment;
use crate::store::now_ms;

fn attachment_json(a: &SlackAttachment) -> Value {
    json!({
        "fallback": a.fallback,
        "color": a.color,
        "pretext": a.pretext,
        "title": a.title,
        "text": a.text,
        "footer": a.footer,
        "actions": [],
    })
}

/// Every answer to a click or dialog leaves through here: like a command's answer, it passes
/// the neutraliser.
pub(super) fn ephemeral_json(text: &str) -> Value {
    json!({ "ephemeral_text": neutralise::text(text) })
}

impl ChatService {
    /// POST /api/v1/actions/approval: the JSON answer for Mattermost.
    pub async fn approval_click(&self, config: &Config, user_id: &str, body: &Value) -> Value {
        let now = now_ms() / 1000;
        let ctx = match self
            .signer
            .verify(body.get("context").unwrap_or(&Value::Null), now)
        {
            Ok(c) => c,
            Err(card::VerifyError::Expired { .. }) => {
                return ephemeral_json("This request has expired.")
            }
            Err(_) => return ephemeral_json("This button is not valid."),
        };
        let opens_dialog = ctx.action.opens_dialog();
        let key = RequestKey::from(&ctx);
        let action = Action::of_click(ctx.action);
        let (handle, card) = match self
            .claim(config, &key, action, user_id, !opens_dialog)
            .await
        {
            Ok(x) => x,
            Err(e) => return ephemeral_json(&e.to_string()),
        };
        let trigger_id = body.get("trigger_id").and_then(Value::as_str).unwrap_or("");
        if opens_dialog {
            let request = match ctx.action {
                ApprovalAction::EditAndApprove => {
                    let Some(editable) = card::editable_input(&card.tool, &card.input) else {
                        return ephemeral_json("This input is too long to edit in a dialog.");
                    };
                    card::edit_dialog("", trigger_id, &self.signer, &ctx, &card.tool, &editable)
                }
                ApprovalAction::AnswerInDialog => match &card.interaction {
                    Some(Interaction::Questions(qs)) => {
                        question::answer_dialog(trigger_id, &self.signer, &ctx, qs)
                    }
                    _ => return ephemeral_json("This button is not valid."),
                },
                ApprovalAction::PlanKeep => {
                    question::feedback_dialog(trigger_id, &self.signer, &ctx)
                }
                _ => card::deny_reason_dialog("", trigger_id, &self.signer, &ctx, &card.tool),
            };
            return match self.api.open_interactive_dialog(request).await {
                Ok(()) => json!({}),
                Err(e) => ephemeral_json(&format!("The dialog could not be opened: {e}")),
            };
        }
        // The name Mattermost knows for the user it authenticated (never the body's
        // `user_name`, which the clicker writes): shown on the card and sent to the model.
        let name = self.username(user_id).await;
        let answer = match ctx.action {
            ApprovalAction::Approve => ApiDecision::Approve,
            ApprovalAction::ApproveForSession => ApiDecision::ApproveForSession,
            ApprovalAction::Answer { question, option } => {
                let chosen = match &card.interaction {
                    Some(Interaction::Questions(qs)) => {
                        question::option_answer(qs, question, option)
                    }
                    _ => None,
                };
                let Some(chosen) = chosen else {
                    self.unclaim(&key);
                    return ephemeral_json("This button is not valid.");
                };
                ApiDecision::Answer(chosen)
            }
            ApprovalAction::PlanStart => ApiDecision::Plan(PlanOutcome::Start),
            ApprovalAction::PlanAcceptEdits => ApiDecision::Plan(PlanOutcome::AcceptEdits),
            _ => ApiDecision::Deny { reason: None },
        };
        let outcome = answer.outcome(&name, now, &card.input);
        match self.decide(&key, &handle, &card, outcome, user_id).await {
            // The update replaces the post's props whole: the card keeps naming its request.
            Ok(att) => json!({
                "update": {
                    "message": "",
                    "props": {
                        post_props::PROP_SESSION: key.session_id,
                        post_props::PROP_REQUEST: key.request_id,
                        "attachments": [attachment_json(&neutralise::attachment(att))],
                    }
                }
            }),
            Err(e) => ephemeral_json(&e.to_string()),
        }
    }

    /// POST /api/v1/actions/approval/dialog: `{}` or `{"errors": {...}}`.
    pub async fn approval_dialog(&self, config: &Config, user_id: &str, body: &Value) -> Value {
        if body.get("cancelled").and_then(Value::as_bool) == Some(true) {
            return json!({});
        }
        let now = now_ms() / 1000;
        let state = body.get("state").and_then(Value::as_str).unwrap_or("");
        let ctx = match self.signer.verify_state(state, now) {
            Ok(c) if c.action.opens_dialog() => c,
            Err(card::VerifyError::Expired { .. }) => {
                return json!({ "error": "This request has expired." })
            }
            Ok(_) | Err(_) => return json!({ "error": "This dialog is not valid." }),
        };
        let submission = body.get("submission").unwrap_or(&Value::Null);
        let submitted = |field: &str| {
            submission
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let action = Action::of_dialog(ctx.action);
        let key = RequestKey::from(&ctx);
        let (handle, card) = match self.claim(config, &key, action, user_id, false).await {
            Ok(x) => x,
            Err(e) => return json!({ "error": e.to_string() }),
        };
        let name = self.username(user_id).await;
        let answer = match ctx.action {
            ApprovalAction::EditAndApprove => {
                let field = card::editable_input(&card.tool, &card.input).and_then(|e| e.field);
                match card::apply_edit(&card.input, field, &submitted(card::DIALOG_FIELD_INPUT)) {
                    Ok(v) => ApiDecision::ApproveWithInput(v),
                    Err(e) => {
                        return json!({ "errors": { card::DIALOG_FIELD_INPUT: e.to_string() } })
                    }
                }
            }
            ApprovalAction::AnswerInDialog => {
                let Some(Interaction::Questions(qs)) = &card.interaction else {
                    return json!({ "error": "This dialog is not valid." });
                };
                match question::dialog_answers(qs, submission) {
                    Ok(answers) => ApiDecision::Answer(answers),
                    Err(errors) => return json!({ "errors": errors }),
                }
            }
            ApprovalAction::PlanKeep => {
                let feedback = submitted(question::FIELD_FEEDBACK).trim().to_owned();
                if feedback.is_empty() {
                    return json!({ "errors": {
                        question::FIELD_FEEDBACK: "Tell Claude what to change."
                    } });
                }
                ApiDecision::Plan(PlanOutcome::KeepPlanning { feedback })
            }
            _ => {
                let reason = submitted(card::DIALOG_FIELD_REASON).trim().to_owned();
                if reason.is_empty() {
                    return json!({ "errors": { card::DIALOG_FIELD_REASON: "Tell Claude why." } });
                }
                ApiDecision::Deny {
                    reason: Some(reason),
                }
            }
        };
        // Claim only now: a failed validation leaves the card answerable.
        if let Err(e) = self.claim(config, &key, action, user_id, true).await {
            return json!({ "error": e.to_string() });
        }
        let outcome = answer.outcome(&name, now, &card.input);
        match self.decide(&key, &handle, &card, outcome, user_id).await {
            Ok(_) => json!({}),
            Err(e) => json!({ "error": e.to_string() }),
        }
    }
}
