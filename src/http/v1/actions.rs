//! Mattermost's callbacks for the approval cards: `POST /api/v1/actions/approval` (a button)
//! and `/approval/dialog` (a dialog submission). The body is Mattermost's JSON; the answer is
//! what Mattermost expects (an update of the card, an ephemeral text, dialog errors), always
//! with status 200 (the server shows nothing of other statuses).

use serde_json::Value;

use super::{body, handler, route, Call};
use crate::app::App;
use crate::http::{BoxFuture, HttpResult, Request, Router};
use crate::mattermost::http::ResponseWriter;

pub(super) fn mount(router: Router<App>) -> Router<App> {
    let r = route(router, "POST", "/api/v1/actions/approval", click);
    route(r, "POST", "/api/v1/actions/approval/dialog", dialog)
}

handler!(click, |app, req| {
    let call = Call::new(app, &req)?;
    let body: Value = body(&mut req).await?;
    let answer = call
        .chat
        .approval_click(&call.config, &call.user, &body)
        .await;
    Ok((200, answer))
});

handler!(dialog, |app, req| {
    let call = Call::new(app, &req)?;
    let body: Value = body(&mut req).await?;
    let answer = call
        .chat
        .approval_dialog(&call.config, &call.user, &body)
        .await;
    Ok((200, answer))
});
