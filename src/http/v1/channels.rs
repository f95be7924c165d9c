//! `/api/v1/channels/{channel_id}`: what the session panel draws for the channel the user has
//! open (its session, the roots to start under, what the caller may do).

use super::{handler, json_of, route, Call};
use crate::app::App;
use crate::http::{BoxFuture, HttpResult, Request, Router};
use crate::mattermost::http::ResponseWriter;

pub(super) fn mount(router: Router<App>) -> Router<App> {
    route(router, "GET", "/api/v1/channels/{channel_id}", show)
}

handler!(show, |app, req| {
    let call = Call::new(app, &req)?;
    let view = call
        .chat
        .channel_view(&call.config, &call.user, req.param("channel_id"))
        .await?;
    Ok((200, json_of(&view)?))
});
