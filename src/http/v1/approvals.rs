//! `/api/v1/sessions/{id}/approvals…`: the session's approval requests, and answering one,
//! decided exactly once with the card buttons and dialogs.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{body, handler, json_of, route, Call};
use crate::app::App;
use crate::chat::authz::Action;
use crate::chat::service::{ApiDecision, RequestKey, ServiceError};
use crate::http::{BoxFuture, HttpError, HttpResult, Request, Router};
use crate::mattermost::http::ResponseWriter;

pub(super) fn mount(router: Router<App>) -> Router<App> {
    let r = route(router, "GET", "/api/v1/sessions/{id}/approvals", list);
    route(
        r,
        "POST",
        "/api/v1/sessions/{id}/approvals/{approval_id}",
        answer,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum DecisionName {
    Approve,
    ApproveSession,
    Deny,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    decision: DecisionName,
    reason: Option<String>,
    updated_input: Option<Value>,
    /// The answers to an AskUserQuestion request: question text → answer.
    answers: Option<std::collections::BTreeMap<String, String>>,
}

impl AnswerBody {
    /// The answer, or why the combination makes no sense.
    fn decision(self) -> Result<ApiDecision, ServiceError> {
        let bad = |why: &str| Err(ServiceError::BadDecision(why.to_owned()));
        let reason = self
            .reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if let Some(answers) = self.answers {
            return match (self.decision, reason, self.updated_input) {
                (DecisionName::Approve, None, None) => {
                    Ok(ApiDecision::Answer(answers.into_iter().collect()))
                }
                _ => bad("answers go with approve alone"),
            };
        }
        match (self.decision, reason, self.updated_input) {
            (DecisionName::Approve, None, None) => Ok(ApiDecision::Approve),
            (DecisionName::Approve, None, Some(v)) if v.is_object() => {
                Ok(ApiDecision::ApproveWithInput(v))
            }
            (DecisionName::Approve, None, Some(_)) => bad("updated_input must be a JSON object"),
            (DecisionName::ApproveSession, None, None) => Ok(ApiDecision::ApproveForSession),
            (DecisionName::Deny, reason, None) => Ok(ApiDecision::Deny { reason }),
            (_, Some(_), _) => bad("a reason goes with deny only"),
            (_, None, Some(_)) => bad("updated_input goes with approve only"),
        }
    }
}

handler!(list, |app, req| {
    let call = Call::new(app, &req)?;
    let (handle, _) = call.session(Action::Status, false).await?;
    let approvals = call.chat.approvals(handle.id()).await?;
    Ok((200, json!({ "approvals": json_of(&approvals)? })))
});

handler!(answer, |app, req| {
    let call = Call::new(app, &req)?;
    let b: AnswerBody = body(&mut req).await?;
    let answer = b.decision().map_err(HttpError::from)?;
    let key = RequestKey {
        session_id: req.param("id").to_owned(),
        request_id: req.param("approval_id").to_owned(),
    };
    if call.chat.session_by_id(&key.session_id).is_none() {
        return Err(ServiceError::UnknownSession(key.session_id).into());
    }
    let view = call
        .chat
        .answer_approval(&call.config, &call.user, &key, answer)
        .await?;
    Ok((200, json_of(&view)?))
});
