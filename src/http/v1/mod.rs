//! REST API v1: sessions as resources, for the webapp, scripts and other integrations. Every
//! route calls the same `ChatService` use cases as `/claude` and the card buttons (one gate:
//! the authorization table, the project roots, the rate limit); this layer only parses
//! requests, picks the table's row, and writes results as JSON. `openapi.json` next to this
//! file describes every route; a test holds the two equal.
//!
//! The caller is `Mattermost-User-Id` (set by the server for a valid session or token, after
//! its own CSRF check for cookie sessions); nothing in a body names a user.

mod actions;
mod approvals;
mod channels;
mod files;
mod sessions;

use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{write_json, Auth, HttpError, HttpResult, Request, Router};
use crate::app::App;
use crate::chat::authz::Action;
use crate::chat::service::{Asker, ChatService, ServiceError, SessionInfo};
use crate::config::Config;
use crate::mattermost::http::ResponseWriter;
use crate::sessions::SessionHandle;

/// Largest JSON body a route reads.
pub(crate) const MAX_BODY: usize = 1 << 20;

/// Mounts every route of the API (`openapi.json` describes each; a test holds them equal).
pub(crate) fn mount(router: Router<App>) -> Router<App> {
    let router = actions::mount(approvals::mount(files::mount(router)));
    let router = channels::mount(router);
    sessions::mount(router)
}

impl From<ServiceError> for HttpError {
    fn from(e: ServiceError) -> Self {
        let status = e.status();
        // Someone outside the channel learns no more than that there is nothing to see.
        let message = match &e {
            ServiceError::NotAllowed { member: false, .. } => {
                "No Claude Code session that you can see there".to_owned()
            }
            other => other.to_string(),
        };
        let mut err = HttpError::new(status, message);
        err.retry_after = e.retry_after();
        err
    }
}

/// What every route needs: the service (the plugin must be active), the settings and the
/// caller.
pub(crate) struct Call {
    pub chat: Arc<ChatService>,
    pub config: Arc<Config>,
    pub user: String,
    /// The route's `{id}` (empty on routes without one).
    pub id: String,
}

impl Call {
    pub(crate) fn new(app: &App, req: &Request) -> Result<Call, HttpError> {
        let chat = app
            .chat()
            .ok_or_else(|| HttpError::new(503, "the plugin is not activated yet"))?;
        Ok(Call {
            chat,
            config: app.config(),
            user: req.user()?.to_owned(),
            id: req.param("id").to_owned(),
        })
    }

    /// The route's session, once the caller passed the gate for `action` on it (`counted`:
    /// whether the call takes a token of the rate limit).
    pub(crate) async fn session(
        &self,
        action: Action,
        counted: bool,
    ) -> Result<(SessionHandle, SessionInfo), HttpError> {
        let id = self.id.as_str();
        let (handle, info) = self
            .chat
            .session_by_id(id)
            .ok_or_else(|| ServiceError::UnknownSession(id.to_owned()))?;
        let asker = Asker {
            user_id: &self.user,
            channel_id: &info.channel_id,
            team_id: "",
            session: Some(&info),
        };
        self.chat
            .gate(&self.config, action, &asker, counted.then_some("requests"))
            .await?;
        Ok((handle, info))
    }
}

/// The body as `T`: at most [`MAX_BODY`] bytes (413 above), JSON (400 otherwise), and only
/// the fields `T` knows (its `deny_unknown_fields` makes a typo a 400, not a silent default).
pub(crate) async fn body<T: DeserializeOwned>(req: &mut Request) -> Result<T, HttpError> {
    let bytes = req.body.read_to_end_limited(MAX_BODY).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidData {
            HttpError::new(413, format!("the body is larger than {MAX_BODY} bytes"))
        } else {
            HttpError::bad_request(format!("reading the body: {e}"))
        }
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| HttpError::bad_request(format!("the body is not valid: {e}")))
}

/// Runs a route's work and writes its `(status, JSON)`; errors go to the router's one writer.
pub(crate) async fn respond(
    w: &mut ResponseWriter,
    work: impl Future<Output = Result<(u16, Value), HttpError>>,
) -> HttpResult {
    let (status, value) = work.await?;
    write_json(w, status, &value).await
}

/// The JSON of a serializable result.
pub(crate) fn json_of<T: serde::Serialize>(value: &T) -> Result<Value, HttpError> {
    serde_json::to_value(value).map_err(|e| HttpError::internal(e.to_string()))
}

/// A route handler: `$body` (an async block over `$app: &App` and `$req: Request`, which it
/// may read its body from) answers `(status, JSON)`, or an error the router writes.
macro_rules! handler {
    ($name:ident, |$app:ident, $req:ident| $body:block) => {
        fn $name<'a>(
            $app: &'a App,
            #[allow(unused_mut)] mut $req: Request,
            w: &'a mut ResponseWriter,
        ) -> BoxFuture<'a, HttpResult> {
            Box::pin(super::respond(w, async move $body))
        }
    };
}
pub(crate) use handler;

/// Registers a route of this API (all of them need a user).
pub(crate) fn route(
    router: Router<App>,
    method: &str,
    pattern: &str,
    handler: super::Handler<App>,
) -> Router<App> {
    router.route(method, pattern, Auth::User, handler)
}

#[cfg(test)]
mod tests;
