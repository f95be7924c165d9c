//! The hooks in a cluster: a command, a post or an HTTP call about a session another node runs
//! is forwarded to that node (`crate::cluster::forward`), and calls other nodes forward here
//! are served as if they had reached this node. On a server that is not clustered every
//! session is this node's and nothing here is used.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::App;
use crate::chat::service::{AskedBy, ChatService, Elsewhere, Route, AWAY_REPLY, LOST_REPLY};
use crate::cluster::forward::{
    Call, ForwardError, Forwarder, HttpAnswer, HttpCall, HttpCallError, Incoming, Outcome,
};
use crate::http::{self, HttpError, Request};
use crate::mattermost::http::{Body, ResponseWriter, ServeHttpRequest};
use crate::mattermost::model::{CommandArgs, CommandResponse, PluginClusterEvent, Post};

/// What an HTTP call is about, which says where it is served in a cluster.
#[derive(Debug, PartialEq, Eq)]
enum Scope {
    /// `/api/v1/sessions/{id}…`.
    Session(String),
    /// `/api/v1/channels/{channel_id}`.
    Channel(String),
    /// A card click or dialog: the session its signed context names (the owner checks the
    /// signature), else the channel the server set in the body.
    SessionInBody,
    /// Starting a session: the channel is in the JSON body.
    ChannelInBody,
    /// Served by any node: the health check, the metrics, the list of one's sessions.
    Anywhere,
}

fn scope(method: &str, pattern: &str, params: &BTreeMap<String, String>) -> Scope {
    if pattern.starts_with("/api/v1/sessions/{id}") {
        if let Some(id) = params.get("id") {
            return Scope::Session(id.clone());
        }
    }
    if let Some(channel) = params.get("channel_id") {
        return Scope::Channel(channel.clone());
    }
    match (method, pattern) {
        ("POST", "/api/v1/actions/approval") | ("POST", "/api/v1/actions/approval/dialog") => {
            Scope::SessionInBody
        }
        ("POST", "/api/v1/sessions") => Scope::ChannelInBody,
        _ => Scope::Anywhere,
    }
}

/// Where a call was served.
enum Served {
    /// Here: this node runs the session (or took it over), or there is none.
    Here,
    /// By the node that runs the session, with its answer.
    There(Outcome),
    /// The node that runs the session could not be reached.
    Failed(ForwardError),
    /// Nobody runs the session and nobody can (`Route::Lost`): the caller decides.
    Lost { root: String },
    /// The node that alone has the session did not answer (`Route::Away`): the caller decides.
    Away {
        root: Option<String>,
        error: ForwardError,
    },
}

/// How a ServeHTTP request ends up on this node.
pub(super) enum HttpRoute {
    /// Served here.
    Local(ServeHttpRequest),
    /// Forwarded and answered: the route's name and the status sent.
    Forwarded(String, u16),
}

/// How often a call is sent again after the node it went to said it no longer runs the
/// session (its lease moved while the call travelled): once.
const RESOLVE_AGAIN: usize = 1;

/// How long the list of sessions waits for the nodes that run some of them.
const LIST_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

impl App {
    /// The forwarder of this activation, once the node knows its id.
    pub(super) fn forwarder(&self) -> Option<Arc<Forwarder>> {
        self.forwarder
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `/claude …` in a channel whose session another node runs is answered by that node.
    pub(super) async fn command_in_cluster(
        &self,
        chat: &Arc<ChatService>,
        args: &CommandArgs,
    ) -> CommandResponse {
        let call = Call::Command(args.clone());
        match self
            .to_owner(|| chat.route_channel(&args.channel_id, AskedBy::Call), call)
            .await
        {
            // A lost or away session's channel has none here: `start` makes a new one.
            Served::Here | Served::Lost { .. } | Served::Away { .. } => {
                chat.execute(&self.config(), args).await
            }
            Served::There(Outcome::Command(response)) => *response,
            Served::There(other) => ephemeral(unexpected(&other)),
            Served::Failed(e) => ephemeral(format!("Claude Code: {e}.")),
        }
    }

    /// A post in a channel whose session another node runs is handed to that node (which
    /// decides whether it is a prompt). Returns false when this node is to handle it.
    pub(super) async fn post_in_cluster(&self, chat: &Arc<ChatService>, post: &Post) -> bool {
        // Never prompts (see `chat/service/routing.rs`): no need to ask where their session is.
        if Some(post.user_id.as_str()) == self.bot_user_id() || !post.r#type.is_empty() {
            return false;
        }
        // A prompt is a thread reply or a message in a direct channel with the bot: a root post
        // elsewhere is chatter, and crosses no node.
        if post.root_id.is_empty() && !chat.direct_with_bot(&post.channel_id).await.unwrap_or(true)
        {
            return false;
        }
        let call = Call::Posted(post.clone());
        match self
            .to_owner(|| chat.route_channel(&post.channel_id, AskedBy::Post), call)
            .await
        {
            Served::Here => false,
            Served::There(_) => true,
            // A message to the lost session (in its thread, or to the bot directly) is told so;
            // the channel's other threads are chatter.
            Served::Lost { root } if post.root_id == root || post.root_id.is_empty() => {
                chat.answer_post(post, LOST_REPLY.to_owned()).await;
                true
            }
            Served::Lost { .. } => false,
            Served::Away {
                root: Some(root), ..
            } if post.root_id == root || post.root_id.is_empty() => {
                chat.answer_post(post, AWAY_REPLY.to_owned()).await;
                true
            }
            Served::Away { .. } => false,
            Served::Failed(e) => {
                tracing::warn!(channel = %post.channel_id, "a post could not be handed to the node running its session: {e}");
                chat.answer_post(post, format!("Claude did not get your message: {e}."))
                    .await;
                true
            }
        }
    }

    /// Sends `call` to the node `resolve` names, until one serves it. A node that no longer
    /// runs the session (its lease moved while the call travelled), or that did not answer in
    /// time (it may have died, and its lease run out since), sends the call back to `resolve`
    /// once more; a node that timed out and is named again is not asked twice.
    async fn to_owner<R, F>(&self, resolve: R, call: Call) -> Served
    where
        R: Fn() -> F,
        F: std::future::Future<Output = Route>,
    {
        let Some(forwarder) = self.forwarder() else {
            return Served::Here;
        };
        let mut timed_out: Option<(String, ForwardError)> = None;
        let mut moving = false;
        for _ in 0..=RESOLVE_AGAIN {
            let (node, session, away) = match resolve().await {
                Route::Local => return Served::Here,
                Route::Unknown => return Served::Failed(ForwardError::OwnerUnknown),
                Route::Lost { root } => return Served::Lost { root },
                Route::Node { node, session } => (node, session, None),
                Route::Away {
                    node,
                    session,
                    root,
                } => (node, session, Some(root)),
            };
            if let Some((silent, e)) = timed_out.take() {
                if silent == node {
                    return Served::Failed(e);
                }
            }
            match forwarder.call(&node, &session, call.clone()).await {
                Ok(Outcome::NotOwner) => moving = true,
                Ok(outcome) => return Served::There(outcome),
                // Nobody holds the session, and its only node is silent: asking again finds it
                // the same way.
                Err(error @ ForwardError::Timeout { .. }) if away.is_some() => {
                    return Served::Away {
                        root: away.flatten(),
                        error,
                    }
                }
                Err(e @ ForwardError::Timeout { .. }) => timed_out = Some((node, e)),
                Err(e) => return Served::Failed(e),
            }
        }
        match timed_out {
            Some((_, e)) => Served::Failed(e),
            // Still moving between nodes: "try again", not "no session" from here.
            None if moving => Served::Failed(ForwardError::OwnerUnknown),
            None => Served::Here,
        }
    }

    /// A ServeHTTP request about a session another node runs is answered by that node.
    pub(super) async fn http_in_cluster(
        &self,
        chat: &Arc<ChatService>,
        req: ServeHttpRequest,
        w: &mut ResponseWriter,
    ) -> HttpRoute {
        // The route is found on a copy without the body, which only some scopes need.
        let head = Request::from_serve_http(ServeHttpRequest {
            method: req.method.clone(),
            url: req.url.clone(),
            headers: req.headers.clone(),
            body: Body::empty(),
        });
        let Some((pattern, params)) = self.router.resolve(&head) else {
            return HttpRoute::Local(req);
        };
        let name = format!("{} {pattern}", head.method);
        let scope = scope(&head.method, &pattern, &params);
        // Without a caller the router answers 401 here: nothing is read, taken or forwarded.
        if scope == Scope::Anywhere || head.user_id.is_none() {
            return HttpRoute::Local(req);
        }
        let call = match HttpCall::read(req).await {
            Ok(call) => call,
            Err(e) => {
                let status = match e {
                    HttpCallError::TooLarge { .. } => 413,
                    HttpCallError::Read(_) => 400,
                };
                let error = HttpError::new(status, e.to_string());
                http::write_error(w, &error).await;
                return HttpRoute::Forwarded(name, status);
            }
        };
        let resolve = || async {
            match &scope {
                Scope::Session(id) => chat.route_session(id).await,
                Scope::Channel(channel) => chat.route_channel(channel, AskedBy::Call).await,
                Scope::SessionInBody => match session_in_body(&call.body) {
                    Some(id) => chat.route_session(&id).await,
                    None => match channel_in_body(&call.body) {
                        Some(channel) => chat.route_channel(&channel, AskedBy::Call).await,
                        None => Route::Local,
                    },
                },
                Scope::ChannelInBody => match channel_in_body(&call.body) {
                    Some(channel) => chat.route_channel(&channel, AskedBy::Call).await,
                    None => Route::Local,
                },
                Scope::Anywhere => Route::Local,
            }
        };
        let error = match self.to_owner(resolve, Call::Http(call.clone())).await {
            // Here, where the session is not found.
            Served::Here | Served::Lost { .. } => return HttpRoute::Local(call.request()),
            Served::There(Outcome::Http(answer)) => {
                let status = answer.status;
                if let Err(e) = answer.write_to(w).await {
                    tracing::debug!("writing a forwarded answer: {e}");
                }
                return HttpRoute::Forwarded(name, status);
            }
            Served::There(other) => HttpError::new(502, unexpected(&other)),
            Served::Failed(e) | Served::Away { error: e, .. } => {
                HttpError::new(503, format!("Claude Code: {e}."))
            }
        };
        http::write_error(w, &error).await;
        HttpRoute::Forwarded(name, error.status)
    }

    /// The sessions `user_id` may see that other nodes run, as those nodes show them, and
    /// those nobody runs, as the store has them: with this node's own, the list of sessions is
    /// the same whichever node it is asked of. A node that does not answer leaves its sessions
    /// out (logged).
    pub(crate) async fn views_elsewhere(
        &self,
        chat: &ChatService,
        config: &crate::config::Config,
        user_id: &str,
    ) -> Result<Vec<serde_json::Value>, crate::chat::service::ServiceError> {
        let mut views = Vec::new();
        let mut asked = tokio::task::JoinSet::new();
        for (id, place) in chat.sessions_elsewhere().await {
            match place {
                Elsewhere::Resting => {
                    if let Some(view) = chat.resting_view(config, user_id, &id).await? {
                        views.push(serde_json::to_value(view).unwrap_or_default());
                    }
                }
                Elsewhere::Node(node) => {
                    let Some(forwarder) = self.forwarder() else {
                        continue;
                    };
                    let call = HttpCall {
                        method: "GET".into(),
                        url: format!("/api/v1/sessions/{id}"),
                        headers: Default::default(),
                        body: Vec::new(),
                        user_id: user_id.to_owned(),
                    };
                    // All nodes at once, each within LIST_WAIT: a dead node costs the list
                    // seconds, not ten per session.
                    asked.spawn(async move {
                        let answer = tokio::time::timeout(
                            LIST_WAIT,
                            forwarder.call(&node, &id, Call::Http(call)),
                        )
                        .await;
                        (id, node, answer)
                    });
                }
            }
        }
        while let Some(done) = asked.join_next().await {
            let Ok((id, node, answer)) = done else {
                continue;
            };
            match answer {
                Ok(Ok(Outcome::Http(answer))) if answer.status == 200 => {
                    match serde_json::from_slice(&answer.body) {
                        Ok(view) => views.push(view),
                        Err(e) => {
                            tracing::warn!(session = %id, %node, "a session's view from its node is not JSON: {e}")
                        }
                    }
                }
                // Not visible to this user (404), or moved meanwhile.
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(session = %id, %node, "listing a session of another node: {e}")
                }
                Err(_) => {
                    tracing::warn!(session = %id, %node, "listing a session of another node: no answer in time")
                }
            }
        }
        Ok(views)
    }

    /// Serves a forwarded HTTP call as this node's router would, keeping the answer.
    async fn serve_http_locally(&self, call: HttpCall) -> HttpAnswer {
        let (mut w, buffer) = HttpAnswer::buffer();
        let req = Request::from_serve_http(call.request());
        let route = self.router.dispatch(self, req, &mut w).await;
        self.metrics.http_request(route, w.status().unwrap_or(200));
        buffer.finish(w).await
    }

    /// OnPluginClusterEvent: answers complete the calls waiting for them; a call forwarded
    /// here is served in a task of its own (the hook returns at once: the server delivers
    /// cluster events one after another).
    pub(super) fn cluster_event(&self, event: &PluginClusterEvent) {
        let (Some(forwarder), Some(app)) = (self.forwarder(), self.me.upgrade()) else {
            return;
        };
        let Some(incoming) = forwarder.on_event(event) else {
            return;
        };
        tokio::spawn(async move {
            let outcome = app.serve_forwarded(&incoming).await;
            if let Err(e) = forwarder.reply(&incoming, outcome).await {
                tracing::warn!(node = %incoming.from, "answering a forwarded call failed: {e}");
            }
        });
    }

    /// Serves a call another node forwarded, if this node still runs its session.
    async fn serve_forwarded(&self, incoming: &Incoming) -> Outcome {
        let Some(chat) = self.chat() else {
            return Outcome::NotOwner;
        };
        if chat.route_session(&incoming.session).await != Route::Local {
            return Outcome::NotOwner;
        }
        match &incoming.call {
            Call::Command(args) => {
                Outcome::Command(Box::new(chat.execute(&self.config(), args).await))
            }
            Call::Posted(post) => {
                chat.on_post(post, &self.config()).await;
                Outcome::Ack
            }
            Call::Http(call) => Outcome::Http(self.serve_http_locally(call.clone()).await),
        }
    }
}

/// The session a click's signed context (`context`) or a dialog's signed `state` names.
fn session_in_body(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let signed = match v.get("state").and_then(serde_json::Value::as_str) {
        Some(state) => serde_json::from_str(state).ok()?,
        None => v.get("context")?.clone(),
    };
    Some(signed.get("session_id")?.as_str()?.to_owned()).filter(|s| !s.is_empty())
}

/// The `channel_id` of a JSON body (a click, a dialog submission, a start).
fn channel_in_body(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(v.get("channel_id")?.as_str()?.to_owned()).filter(|c| !c.is_empty())
}

fn ephemeral(text: String) -> CommandResponse {
    CommandResponse {
        response_type: "ephemeral".into(),
        text,
        ..Default::default()
    }
}

fn unexpected(outcome: &Outcome) -> String {
    tracing::warn!("a forwarded command was answered with {outcome:?}");
    "Claude Code: the server running this session gave an answer this one cannot read; try again."
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route is classified: a new route must say how its session is found, or a
    /// cluster would serve it on whichever node it reached.
    #[test]
    fn every_route_says_how_its_session_is_found() {
        use Scope::*;
        let session = || Session("v".into());
        let table = [
            ("GET", "/api/v1/health", Anywhere),
            ("GET", "/api/v1/metrics", Anywhere),
            ("GET", "/api/v1/sessions", Anywhere),
            ("POST", "/api/v1/sessions", ChannelInBody),
            ("GET", "/api/v1/sessions/{id}", session()),
            ("DELETE", "/api/v1/sessions/{id}", session()),
            ("POST", "/api/v1/sessions/{id}/prompt", session()),
            ("POST", "/api/v1/sessions/{id}/interrupt", session()),
            ("PUT", "/api/v1/sessions/{id}/mode", session()),
            ("PUT", "/api/v1/sessions/{id}/model", session()),
            ("POST", "/api/v1/sessions/{id}/context", session()),
            ("GET", "/api/v1/sessions/{id}/history", session()),
            ("GET", "/api/v1/sessions/{id}/events", session()),
            ("GET", "/api/v1/sessions/{id}/approvals", session()),
            (
                "POST",
                "/api/v1/sessions/{id}/approvals/{approval_id}",
                session(),
            ),
            ("POST", "/api/v1/actions/approval", SessionInBody),
            ("POST", "/api/v1/actions/approval/dialog", SessionInBody),
            ("GET", "/api/v1/channels/{channel_id}", Channel("v".into())),
            ("GET", "/api/v1/sessions/{id}/files", session()),
            ("GET", "/api/v1/sessions/{id}/files/{path...}", session()),
            ("POST", "/api/v1/sessions/{id}/files/{path...}", session()),
            ("PUT", "/api/v1/sessions/{id}/files/{path...}", session()),
            ("DELETE", "/api/v1/sessions/{id}/files/{path...}", session()),
        ];
        let app = App::new(false);
        let routes: Vec<(String, String)> = app
            .router()
            .routes()
            .map(|(m, p)| (m.to_owned(), p))
            .collect();
        let mut listed: Vec<(String, String)> = table
            .iter()
            .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        let mut served = routes.clone();
        listed.sort();
        served.sort();
        assert_eq!(listed, served, "the table lists exactly the routes served");
        for (method, pattern, want) in table {
            let params = pattern
                .split('/')
                .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
                .map(|name| (name.trim_end_matches("...").to_owned(), "v".to_owned()))
                .collect();
            assert_eq!(scope(method, pattern, &params), want, "{method} {pattern}");
        }
    }

    #[test]
    fn the_session_of_a_click_or_a_dialog_is_read_from_its_signed_context() {
        let click = br#"{"channel_id":"c1","context":{"session_id":"s1","request_id":"r"}}"#;
        assert_eq!(session_in_body(click), Some("s1".into()));
        let dialog = br#"{"channel_id":"c1","state":"{\"session_id\":\"s2\"}"}"#;
        assert_eq!(session_in_body(dialog), Some("s2".into()));
        for body in [&b"{}"[..], br#"{"context":{}}"#, br#"{"state":"not json"}"#] {
            assert_eq!(session_in_body(body), None, "{body:?}");
        }
    }

    #[test]
    fn the_channel_of_a_click_or_a_start_is_read_from_its_body() {
        assert_eq!(
            channel_in_body(br#"{"user_id":"u","channel_id":"c1","context":{}}"#),
            Some("c1".into())
        );
        for body in [
            &b""[..],
            b"not json",
            br#"{"channel_id":""}"#,
            br#"{"channel_id":7}"#,
        ] {
            assert_eq!(channel_in_body(body), None, "{body:?}");
        }
    }
}
