//! The hooks in a cluster: a command, a post or an HTTP call about a session another node runs
//! is forwarded to that node (`crate::cluster::forward`), and calls other nodes forward here
//! are served as if they had reached this node. On a server that is not clustered every
//! session is this node's and nothing here is used.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::App;
use crate::chat::service::{ChatService, Route};
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
    /// A card click or dialog, or starting a session: the channel is in the JSON body (set by
    /// the server for clicks and dialogs).
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
        ("POST", "/api/v1/actions/approval")
        | ("POST", "/api/v1/actions/approval/dialog")
        | ("POST", "/api/v1/sessions") => Scope::ChannelInBody,
        _ => Scope::Anywhere,
    }
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
        for _ in 0..=RESOLVE_AGAIN {
            let (node, session) = match chat.route_channel(&args.channel_id).await {
                Route::Local => break,
                Route::Node { node, session } => (node, session),
            };
            match self
                .forward(&node, &session, Call::Command(args.clone()))
                .await
            {
                Ok(Outcome::Command(response)) => return *response,
                Ok(Outcome::NotOwner) => continue,
                Ok(other) => return ephemeral(unexpected(&other)),
                Err(e) => return ephemeral(format!("Claude Code: {e}.")),
            }
        }
        chat.execute(&self.config(), args).await
    }

    /// A post in a channel whose session another node runs is handed to that node (which
    /// decides whether it is a prompt). Returns false when this node is to handle it.
    pub(super) async fn post_in_cluster(&self, chat: &Arc<ChatService>, post: &Post) -> bool {
        // Never prompts (see `chat/service/routing.rs`): no need to ask where their session is.
        if Some(post.user_id.as_str()) == self.bot_user_id() || !post.r#type.is_empty() {
            return false;
        }
        for _ in 0..=RESOLVE_AGAIN {
            let (node, session) = match chat.route_channel(&post.channel_id).await {
                Route::Local => return false,
                Route::Node { node, session } => (node, session),
            };
            match self
                .forward(&node, &session, Call::Posted(post.clone()))
                .await
            {
                Ok(Outcome::NotOwner) => continue,
                Ok(_) => return true,
                Err(e) => {
                    tracing::warn!(channel = %post.channel_id, %node, "a post could not be handed to the node running its session: {e}");
                    chat.answer_post(post, format!("Claude did not get your message: {e}."))
                        .await;
                    return true;
                }
            }
        }
        false
    }

    async fn forward(
        &self,
        node: &str,
        session: &str,
        call: Call,
    ) -> Result<Outcome, ForwardError> {
        match self.forwarder() {
            Some(forwarder) => forwarder.call(node, session, call).await,
            // Not activated yet: the node that runs the session is the one to ask, but this
            // one cannot reach it; its answer would be "try again" anyway.
            None => Ok(Outcome::NotOwner),
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
        if scope == Scope::Anywhere {
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
        for _ in 0..=RESOLVE_AGAIN {
            let route = match &scope {
                Scope::Session(id) => chat.route_session(id).await,
                Scope::Channel(channel) => chat.route_channel(channel).await,
                Scope::ChannelInBody => match channel_in_body(&call.body) {
                    Some(channel) => chat.route_channel(&channel).await,
                    None => Route::Local,
                },
                Scope::Anywhere => Route::Local,
            };
            let Route::Node { node, session } = route else {
                break;
            };
            let error = match self
                .forward(&node, &session, Call::Http(call.clone()))
                .await
            {
                Ok(Outcome::Http(answer)) => {
                    let status = answer.status;
                    if let Err(e) = answer.write_to(w).await {
                        tracing::debug!("writing a forwarded answer: {e}");
                    }
                    return HttpRoute::Forwarded(name, status);
                }
                Ok(Outcome::NotOwner) => continue,
                Ok(other) => HttpError::new(502, unexpected(&other)),
                Err(e) => HttpError::new(503, format!("Claude Code: {e}.")),
            };
            http::write_error(w, &error).await;
            return HttpRoute::Forwarded(name, error.status);
        }
        HttpRoute::Local(call.request())
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
