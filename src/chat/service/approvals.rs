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
use crate::chat::command::parse_permission_mode;
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

    /// What a REST answer means for the request it answers (`asked`: a question or a plan, or
    /// `None` for an ordinary approval), so that it ends like the equivalent click: on a plan,
    /// approve is "Start with approvals", approve_session "Start and accept edits" and a deny
    /// with a reason "Keep planning" with that feedback; a question is answered (every
    /// question, by the dialog's rule), never approved; neither takes an edited input.
    pub(super) fn for_request(self, asked: Option<&Interaction>) -> Result<Self, ServiceError> {
        let bad = |why: &str| Err(ServiceError::BadDecision(why.to_owned()));
        match (self, asked) {
            (ApiDecision::ApproveWithInput(_), Some(_)) => {
                bad("updated_input does not go with a question or a plan")
            }
            (ApiDecision::Answer(given), Some(Interaction::Questions(qs))) => {
                question::given_answers(qs, &given)
                    .map(ApiDecision::Answer)
                    .map_err(|e| ServiceError::BadDecision(e.to_string()))
            }
            (ApiDecision::Answer(_), _) => bad("answers go with a question (AskUserQuestion) only"),
            (
                ApiDecision::Approve | ApiDecision::ApproveForSession,
                Some(Interaction::Questions(_)),
            ) => bad("a question is answered, not approved: approve with answers"),
            (ApiDecision::Approve, Some(Interaction::Plan(_))) => {
                Ok(ApiDecision::Plan(PlanOutcome::Start))
            }
            (ApiDecision::ApproveForSession, Some(Interaction::Plan(_))) => {
                Ok(ApiDecision::Plan(PlanOutcome::AcceptEdits))
            }
            (
                ApiDecision::Deny {
                    reason: Some(feedback),
                },
                Some(Interaction::Plan(_)),
            ) => Ok(ApiDecision::Plan(PlanOutcome::KeepPlanning { feedback })),
            (ApiDecision::Deny { reason: None }, Some(Interaction::Plan(_))) => {
                bad("keeping on planning needs feedback: deny with a reason")
            }
            (plan @ ApiDecision::Plan(_), Some(Interaction::Plan(_))) => Ok(plan),
            (ApiDecision::Plan(_), _) => bad("this request is not a plan"),
            (answer, _) => Ok(answer),
        }
    }

    /// The answer a stored decision by `name` was, so that a card closed after a restart
    /// shows what the card closed at once showed (`outcome`); `None` for a request nobody
    /// answered (expired, withdrawn).
    pub(super) fn stored(a: &ApprovalRecord, name: &str) -> Option<Self> {
        let asked = Interaction::of(&a.tool, &a.input, true);
        let reason = a.reason.clone().unwrap_or_default();
        Some(match (a.decision.as_deref()?, &asked) {
            ("allow", _) => ApiDecision::Approve,
            ("allow_for_session", _) => ApiDecision::ApproveForSession,
            // A row stored before the answers were kept (store version 6) says no more than
            // "approved with edited input".
            ("allow_with_input", Some(Interaction::Questions(_)))
                if a.allowed.updated_input.is_none() =>
            {
                ApiDecision::ApproveWithInput(Value::Null)
            }
            ("allow_with_input", Some(Interaction::Questions(qs))) => {
                let given = a.allowed.updated_input.as_ref()?.get("answers")?;
                ApiDecision::Answer(
                    qs.iter()
                        .filter_map(|q| {
                            let answer = given.get(&q.text)?.as_str()?;
                            Some((q.text.clone(), answer.to_owned()))
                        })
                        .collect(),
                )
            }
            ("allow_with_input", _) => {
                ApiDecision::ApproveWithInput(a.allowed.updated_input.clone().unwrap_or_default())
            }
            ("allow_exit_plan", _) => ApiDecision::Plan(
                match a.allowed.mode.as_deref().and_then(parse_permission_mode) {
                    Some(PermissionMode::AcceptEdits) => PlanOutcome::AcceptEdits,
                    _ => PlanOutcome::Start,
                },
            ),
            ("deny" | "deny_and_interrupt", Some(Interaction::Plan(_))) => {
                ApiDecision::Plan(PlanOutcome::KeepPlanning { feedback: reason })
            }
            // The message told is `outcome`'s: the reason is what follows its opening.
            ("deny" | "deny_and_interrupt", _) => ApiDecision::Deny {
                reason: match reason.strip_prefix(&format!("Denied by @{name}: ")) {
                    Some(r) => Some(r.to_owned()),
                    None if reason == format!("Denied from Mattermost by @{name}") => None,
                    None => Some(reason),
                },
            },
            _ => return None,
        })
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
    /// The request in a few words, as its card's title says it.
    pub description: String,
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
    pub decided_at: Option<i64>,
}

impl ApprovalView {
    /// `cwd`: the session's project, under which file paths are shown relative.
    fn of(a: ApprovalRecord, cwd: Option<&str>) -> Self {
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
            description: card::describe(&a.tool, &a.input, cwd),
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
        // What the answer means depends on what the request asks, which only the card tells
        // once the caller's right is checked.
        let (_, card) = self
            .claim(config, key, answer.action(), user_id, false)
            .await?;
        let answer = answer.for_request(card.interaction.as_ref())?;
        let (handle, card) = self
            .claim(config, key, answer.action(), user_id, true)
            .await?;
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
        let cwd = self.session_by_id(session_id).map(|(_, s)| s.project_path);
        Ok(records
            .into_iter()
            .map(|a| ApprovalView::of(a, cwd.as_deref()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::question::Question;

    fn question(text: &str) -> Question {
        Question {
            text: text.into(),
            header: String::new(),
            options: vec![("A".into(), String::new())],
            multi_select: false,
        }
    }

    #[test]
    fn a_rest_answer_means_what_the_request_asks() {
        let plan = Interaction::Plan(None);
        let asks = Interaction::Questions(vec![question("One?"), question("Two?")]);
        let deny = |r: Option<&str>| ApiDecision::Deny {
            reason: r.map(str::to_owned),
        };
        let ok = |d: ApiDecision, asked: Option<&Interaction>| d.for_request(asked).unwrap();
        assert_eq!(
            ok(ApiDecision::Approve, Some(&plan)),
            ApiDecision::Plan(PlanOutcome::Start)
        );
        assert_eq!(
            ok(ApiDecision::ApproveForSession, Some(&plan)),
            ApiDecision::Plan(PlanOutcome::AcceptEdits)
        );
        assert_eq!(
            ok(deny(Some("smaller steps")), Some(&plan)),
            ApiDecision::Plan(PlanOutcome::KeepPlanning {
                feedback: "smaller steps".into()
            })
        );
        // The same words on an ordinary approval stay what they are.
        assert_eq!(ok(ApiDecision::Approve, None), ApiDecision::Approve);
        assert_eq!(ok(deny(None), None), deny(None));
        assert_eq!(ok(deny(Some("no")), Some(&asks)), deny(Some("no")));
        let both = vec![("Two?".into(), "b".into()), ("One?".into(), "a".into())];
        assert_eq!(
            ok(ApiDecision::Answer(both), Some(&asks)),
            ApiDecision::Answer(vec![
                ("One?".into(), "a".into()),
                ("Two?".into(), "b".into())
            ]),
            "in the questions' order"
        );
        let edited = || ApiDecision::ApproveWithInput(serde_json::json!({}));
        for (refused, asked) in [
            (deny(None), &plan),
            (edited(), &plan),
            (edited(), &asks),
            (ApiDecision::Approve, &asks),
            (ApiDecision::ApproveForSession, &asks),
            (
                ApiDecision::Answer(vec![("One?".into(), "a".into())]),
                &asks,
            ),
            (ApiDecision::Answer(vec![]), &asks),
            (
                ApiDecision::Answer(vec![
                    ("One?".into(), "a".into()),
                    ("Two?".into(), " ".into()),
                ]),
                &asks,
            ),
            (
                ApiDecision::Answer(vec![("One?".into(), "a".into())]),
                &plan,
            ),
        ] {
            let d = format!("{refused:?}");
            assert!(
                matches!(
                    refused.for_request(Some(asked)),
                    Err(ServiceError::BadDecision(_))
                ),
                "{d}"
            );
        }
    }
}
