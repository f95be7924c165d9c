//! Approval requests: who may answer (the table), the claim that makes every request decided
//! exactly once whether the answer comes from a card button, a dialog or the REST API, the
//! delivery to the session, and the card updated to show the outcome.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::error::ServiceError;
use super::{Asker, ChatService};
use crate::chat::authz::Action;
use crate::chat::card;
use crate::chat::question::{self, Interaction, PlanOutcome};
use crate::chat::stream::{self, card_post, Card};
use crate::claude::PermissionMode;
use crate::config::Config;
use crate::mattermost::model::SlackAttachment;
use crate::sessions::{Decision, SessionError, SessionHandle};
use crate::store::{now_ms, ApprovalRecord, OwedPost};

/// How long an answer that arrives before its card was posted (the REST API can be faster than
/// the post stream) waits for the card, so that the card is claimed and closed like any other.
const CARD_WAIT: Duration = Duration::from_secs(2);
const CARD_POLL: Duration = Duration::from_millis(20);

/// One approval request of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestKey {
    pub session_id: String,
    pub request_id: String,
}

impl RequestKey {
    fn cards_key(&self) -> (String, String) {
        (self.session_id.clone(), self.request_id.clone())
    }
}

impl From<&card::ActionContext> for RequestKey {
    fn from(ctx: &card::ActionContext) -> Self {
        RequestKey {
            session_id: ctx.session_id.clone(),
            request_id: ctx.request_id.clone(),
        }
    }
}

/// A REST caller's answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ApiDecision {
    Approve,
    /// Approve with the tool input replaced (a JSON object).
    ApproveWithInput(Value),
    ApproveForSession,
    Deny {
        reason: Option<String>,
    },
    /// The answers to a question card: `(question, answer)`.
    Answer(Vec<(String, String)>),
    /// The answer to a plan card.
    Plan(PlanOutcome),
}

impl ApiDecision {
    /// The row of the authorization table the answer needs.
    fn action(&self) -> Action {
        match self {
            ApiDecision::Answer(_) => Action::Approve,
            ApiDecision::Plan(PlanOutcome::KeepPlanning { .. }) => Action::SubmitDenyReason,
            ApiDecision::Plan(_) => Action::Approve,
            ApiDecision::Approve => Action::Approve,
            ApiDecision::ApproveWithInput(_) => Action::SubmitEdit,
            ApiDecision::ApproveForSession => Action::ApproveForSession,
            ApiDecision::Deny { reason: None } => Action::Deny,
            ApiDecision::Deny { reason: Some(_) } => Action::SubmitDenyReason,
        }
    }

    /// What the session is told, and what the card shows, for a decision by `name` on a
    /// request whose tool input is `input`.
    pub(super) fn outcome(&self, name: &str, at: i64, input: &Value) -> (Decision, card::Decision) {
        let approved = |for_session, edited| card::Decision::Approved {
            by: name.to_owned(),
            at,
            for_session,
            edited,
        };
        match self {
            ApiDecision::Approve => (Decision::Allow, approved(false, false)),
            ApiDecision::ApproveWithInput(v) => {
                (Decision::AllowWithInput(v.clone()), approved(false, true))
            }
            ApiDecision::ApproveForSession => (Decision::AllowForSession, approved(true, false)),
            ApiDecision::Deny { reason } => {
                let told = match reason {
                    Some(r) => format!("Denied by @{name}: {r}"),
                    None => format!("Denied from Mattermost by @{name}"),
                };
                let shown = card::Decision::Denied {
                    by: name.to_owned(),
                    at,
                    reason: reason.clone(),
                };
                (Decision::Deny(told), shown)
            }
            ApiDecision::Answer(answers) => (
                Decision::AllowWithInput(question::answered_input(input, answers)),
                card::Decision::Answered {
                    by: name.to_owned(),
                    at,
                    answers: answers.clone(),
                },
            ),
            ApiDecision::Plan(outcome) => {
                let told = match outcome {
                    PlanOutcome::Start => Decision::ExitPlan(PermissionMode::Default),
                    PlanOutcome::AcceptEdits => Decision::ExitPlan(PermissionMode::AcceptEdits),
                    // Verbatim: the model reads it as the person's words.
                    PlanOutcome::KeepPlanning { feedback } => Decision::Deny(feedback.clone()),
                };
                let shown = card::Decision::Plan {
                    by: name.to_owned(),
                    at,
                    outcome: outcome.clone(),
                };
                (told, shown)
            }
        }
    }
}

/// An approval request as the REST API shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ApprovalView {
    pub approval_id: String,
    pub tool: String,
    pub input: Value,
    pub requested_at: i64,
    /// `pending` | `approved` | `denied` | `expired` | `withdrawn`.
    pub state: &'static str,
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
    pub decided_at: Option<i64>,
}

impl From<ApprovalRecord> for ApprovalView {
    fn from(a: ApprovalRecord) -> Self {
        let state = match a.decision.as_deref() {
            None => "pending",
            Some("allow" | "allow_with_input" | "allow_for_session" | "allow_exit_plan") => {
                "approved"
            }
            Some("deny" | "deny_and_interrupt") => "denied",
            Some("expired") => "expired",
            Some(_) => "withdrawn",
        };
        ApprovalView {
            approval_id: a.request_id,
            tool: a.tool,
            input: a.input,
            requested_at: a.requested_at,
            state,
            decision: a.decision,
            decided_by: a.decided_by,
            reason: a.reason,
            decided_at: a.decided_at,
        }
    }
}

impl ChatService {
    /// Checks an answer (`action`) of its user to a request and, with `claim`, claims the card
    /// so that no other answer is taken. The user's right comes first: a refused answer learns
    /// nothing about the request and leaves the card as it is.
    pub(super) async fn claim(
        &self,
        config: &Config,
        key: &RequestKey,
        action: Action,
        user_id: &str,
        claim: bool,
    ) -> Result<(SessionHandle, Card), ServiceError> {
        let info = self
            .state
            .lock()
            .map_err(|_| ServiceError::Internal)?
            .sessions
            .get(&key.session_id)
            .cloned()
            .ok_or(ServiceError::SessionGone)?;
        let asker = Asker {
            user_id,
            channel_id: &info.channel_id,
            team_id: "",
            session: Some(&info),
        };
        self.authorize_action(config, action, &asker)
            .await
            .map_err(ServiceError::from)?;
        let handle = self
            .engine
            .get(&key.session_id)
            .ok_or(ServiceError::SessionGone)?;
        let pending = handle.status().await.is_ok_and(|s| {
            s.pending_approvals
                .iter()
                .any(|p| p.request_id == key.request_id)
        });
        if !pending {
            let asked = self
                .engine
                .store()
                .approvals(&key.session_id)
                .await?
                .iter()
                .any(|a| a.request_id == key.request_id);
            return Err(if asked {
                ServiceError::NotPending
            } else {
                ServiceError::UnknownApproval(key.request_id.clone())
            });
        }
        let card = self.posted_card(key).await?;
        if card.decided {
            return Err(ServiceError::AlreadyAnswered);
        }
        if claim {
            let mut cards = self.cards.lock().map_err(|_| ServiceError::Internal)?;
            let c = cards
                .get_mut(&key.cards_key())
                .ok_or(ServiceError::NotPending)?;
            if c.decided {
                return Err(ServiceError::AlreadyAnswered);
            }
            c.decided = true;
        }
        Ok((handle, card))
    }

    /// The card of a pending request, waiting [`CARD_WAIT`] for the post stream to post it.
    async fn posted_card(&self, key: &RequestKey) -> Result<Card, ServiceError> {
        let deadline = tokio::time::Instant::now() + CARD_WAIT;
        loop {
            let card = self
                .cards
                .lock()
                .map_err(|_| ServiceError::Internal)?
                .get(&key.cards_key())
                .cloned();
            match card {
                Some(card) => return Ok(card),
                None if tokio::time::Instant::now() >= deadline => {
                    return Err(ServiceError::NotPending)
                }
                None => tokio::time::sleep(CARD_POLL).await,
            }
        }
    }

    pub(super) fn unclaim(&self, key: &RequestKey) {
        if let Ok(mut cards) = self.cards.lock() {
            if let Some(c) = cards.get_mut(&key.cards_key()) {
                c.decided = false;
            }
        }
    }

    /// Sends the claimed decision, then updates the card. Returns the updated attachment.
    pub(super) async fn decide(
        &self,
        key: &RequestKey,
        handle: &SessionHandle,
        card: &Card,
        (decision, shown): (Decision, card::Decision),
        user_id: &str,
    ) -> Result<SlackAttachment, ServiceError> {
        match handle.approve(&key.request_id, decision, user_id).await {
            Ok(()) => {}
            // Withdrawn while this answer was on its way (the withdrawal left the claimed card
            // to the answer): the card says so instead of offering buttons again.
            Err(SessionError::UnknownApproval(_)) => {
                let att = card::decided_attachment(&card.attachment, &card::Decision::Cancelled);
                self.put_closed_card(
                    &key.request_id,
                    card_post(card, &key.request_id, &self.bot_id, att),
                )
                .await;
                return Err(ServiceError::Withdrawn);
            }
            Err(e) => {
                self.unclaim(key);
                return Err(ServiceError::Deliver(e));
            }
        }
        let att = card::decided_attachment(&card.attachment, &shown);
        self.put_closed_card(
            &key.request_id,
            card_post(card, &key.request_id, &self.bot_id, att.clone()),
        )
        .await;
        Ok(att)
    }

    /// Owes a card's final form (the outbox delivers it) and records the card closed.
    pub(super) async fn put_closed_card(&self, request_id: &str, closed: OwedPost) {
        if let Err(e) = stream::close_card_post(&self.outbox, request_id, closed).await {
            tracing::warn!("owing a closed card failed: {e}");
        }
    }

    /// `POST /api/v1/sessions/{id}/approvals/{approval_id}`: the same claim and delivery as a
    /// card button, so the request is decided once whichever answer comes first.
    pub(crate) async fn answer_approval(
        &self,
        config: &Config,
        user_id: &str,
        key: &RequestKey,
        answer: ApiDecision,
    ) -> Result<ApprovalView, ServiceError> {
        let (handle, card) = self
            .claim(config, key, answer.action(), user_id, true)
            .await?;
        if let Err(e) = fits(&answer, &card) {
            self.unclaim(key);
            return Err(e);
        }
        let name = self.username(user_id).await;
        let outcome = answer.outcome(&name, now_ms() / 1000, &card.input);
        self.decide(key, &handle, &card, outcome, user_id).await?;
        self.approvals(&key.session_id)
            .await?
            .into_iter()
            .find(|a| a.approval_id == key.request_id)
            .ok_or(ServiceError::NotPending)
    }

    /// Every approval request of the session, oldest first.
    pub(crate) async fn approvals(
        &self,
        session_id: &str,
    ) -> Result<Vec<ApprovalView>, ServiceError> {
        let records = self.engine.store().approvals(session_id).await?;
        Ok(records.into_iter().map(ApprovalView::from).collect())
    }
}

/// Answers go to questions and plan outcomes to plans; an answer names only the request's own
/// questions (the CLI would pass any key on to the model).
fn fits(answer: &ApiDecision, card: &Card) -> Result<(), ServiceError> {
    let bad = |why: &str| Err(ServiceError::BadDecision(why.to_owned()));
    match (answer, &card.interaction) {
        (ApiDecision::Answer(answers), Some(Interaction::Questions(qs))) => {
            match answers
                .iter()
                .find(|(q, _)| !qs.iter().any(|x| &x.text == q))
            {
                Some((q, _)) => bad(&format!("the request asks no question {q:?}")),
                None if answers.is_empty() => bad("answers is empty"),
                None => Ok(()),
            }
        }
        (ApiDecision::Answer(_), _) => bad("answers go with a question (AskUserQuestion) only"),
        (ApiDecision::Plan(_), Some(Interaction::Plan(_))) => Ok(()),
        (ApiDecision::Plan(_), _) => bad("this request is not a plan"),
        _ => Ok(()),
    }
}
