//! Forwarding: what reaches a node that does not run the session (a `/claude` command, a post
//! in the session's thread, a REST call) goes to the node that does, as a plugin cluster event
//! addressed to it, and the answer comes back the same way.
//!
//! ```text
//!  origin node                                   owner node
//!  Forwarder::call(to, session, call)
//!    pending[id] = waiter
//!    publish "claude-code/fwd" (reliable, TargetId = to)
//!                        ───────────────────────▶ OnPluginClusterEvent
//!                                                 Forwarder::on_event → Some(Incoming)
//!                                                 the app SPAWNS the serving task (below)
//!                                                 Forwarder::reply(incoming, outcome)
//!    OnPluginClusterEvent ◀─────────────────────── publish "claude-code/fwd-reply" (TargetId = from)
//!    Forwarder::on_event → completes pending[id]
//!  call returns the Outcome, or Timeout after FORWARD_TIMEOUT
//! ```
//!
//! The owner re-checks its lease before serving and answers [`Outcome::NotOwner`] when it does
//! not hold it; the origin then resolves the owner again, once.
//!
//! The hook that receives cluster events must not wait on serving a forwarded call: the app
//! spawns a task per [`Incoming`] and returns from `OnPluginClusterEvent` at once. Serving can
//! take long (a command that starts a CLI) and can itself forward or wait on events that
//! arrive through the same hook; a hook call that waited would hold the host's delivery of
//! every later event, replies included.
//!
//! The envelopes are gob values (our own `rpc::gob`), one self-describing stream per event:
//! exact for every type the plugin already exchanges with the server (a post's props, command
//! responses with attachments), with no second serialization of those types to keep in step.

mod http;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::mattermost::api::{Api, ApiError};
use crate::mattermost::model::{
    CommandArgs, CommandResponse, PluginClusterEvent, PluginClusterEventSendOptions, Post,
};

pub(crate) use http::{HttpAnswer, HttpCall, HttpCallError, MAX_ANSWER};
pub(crate) use wire::CodecError;

/// The event id of a forwarded call.
pub(crate) const EVENT_CALL: &str = "claude-code/fwd";
/// The event id of its answer.
pub(crate) const EVENT_REPLY: &str = "claude-code/fwd-reply";
/// How long the origin waits for the owner's answer.
pub(crate) const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a node forwards to a session's owner.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Call {
    /// A `/claude` command; answered by [`Outcome::Command`].
    Command(CommandArgs),
    /// A post in the session's channel or thread; answered by [`Outcome::Ack`].
    Posted(Post),
    /// A request to the plugin's HTTP API; answered by [`Outcome::Http`].
    Http(HttpCall),
}

/// The owner's answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// Boxed: a command response is several times the size of the other outcomes.
    Command(Box<CommandResponse>),
    /// The post was handed to the session.
    Ack,
    Http(HttpAnswer),
    /// The receiving node does not hold the session's lease (it lost it, or the origin's view
    /// of the owner is stale): resolve the owner again.
    NotOwner,
}

/// A call addressed to this node, for the app to serve (in a task of its own) and answer
/// with [`Forwarder::reply`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Incoming {
    /// The origin node, where the answer goes.
    pub(crate) from: String,
    /// The request id the answer carries.
    pub(crate) id: String,
    pub(crate) session: String,
    pub(crate) call: Call,
}

/// Why a forwarded call has no answer. The Display text is for the user who made the call.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ForwardError {
    /// The owner did not answer within the forward timeout (it may be down, or busy).
    #[error("the server running this session did not answer in time; try again")]
    Timeout { node: String },
    /// Which node runs the session could not be read now (the KV store did not answer).
    #[error("the server running this session could not be found now; try again")]
    OwnerUnknown,
    /// The cluster event could not be published.
    #[error("the server running this session could not be reached ({0}); try again")]
    Send(#[source] ApiError),
    /// The call or its answer could not be put into (or read from) a cluster event.
    #[error("the call could not be passed to the server running this session: {0}")]
    Codec(#[from] CodecError),
}

/// Publishes a cluster event to one node. Implemented for [`Api`]; tests wire nodes together
/// in memory.
pub(crate) trait ClusterSend: Send + Sync {
    fn send(&self, event: PluginClusterEvent, target: &str) -> BoxFuture<'_, Result<(), ApiError>>;
}

impl ClusterSend for Api {
    fn send(&self, event: PluginClusterEvent, target: &str) -> BoxFuture<'_, Result<(), ApiError>> {
        // Reliable: the server queues and retries the send to the target node, so a call is
        // lost only with the node (which the timeout then reports).
        let options = PluginClusterEventSendOptions {
            send_type: "reliable".to_owned(),
            target_id: target.to_owned(),
        };
        Box::pin(self.publish_plugin_cluster_event(event, options))
    }
}

/// A call waiting for its answer.
struct Pending {
    /// The node asked: an answer from anyone else is not this call's.
    to: String,
    answer: oneshot::Sender<Outcome>,
}

/// Both ends of forwarding on one node: calls this node makes (waiting for their answers) and
/// calls other nodes make to it.
pub(crate) struct Forwarder {
    send: Arc<dyn ClusterSend>,
    node: String,
    timeout: Duration,
    pending: Mutex<HashMap<String, Pending>>,
}

impl Forwarder {
    /// `node` is this node's id (the `TargetId` other nodes address it by); `timeout` is
    /// [`FORWARD_TIMEOUT`] outside tests.
    pub(crate) fn new(send: Arc<dyn ClusterSend>, node: String, timeout: Duration) -> Arc<Self> {
        Arc::new(Forwarder {
            send,
            node,
            timeout,
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// Forwards `call` for `session` to node `to` and waits for its answer, at most the
    /// timeout (sending included: a publish that hangs is a node that does not answer).
    pub(crate) async fn call(
        &self,
        to: &str,
        session: &str,
        call: Call,
    ) -> Result<Outcome, ForwardError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let data = wire::encode_call(&self.node, to, &id, session, call)?;
        let (answer, waiter) = oneshot::channel();
        self.pending_map().insert(
            id.clone(),
            Pending {
                to: to.to_owned(),
                answer,
            },
        );
        // Removes the entry however this future ends: answered, timed out, failed or dropped.
        let _forget = Forget {
            forwarder: self,
            id: &id,
        };
        let event = PluginClusterEvent {
            id: EVENT_CALL.to_owned(),
            data,
        };
        let exchange = async {
            self.send
                .send(event, to)
                .await
                .map_err(ForwardError::Send)?;
            // The sender lives in `pending` until an answer takes it out and sends, so the
            // channel cannot close unanswered while we wait; if it ever did, no answer is
            // coming, which the user hears as a timeout.
            waiter.await.map_err(|_| ForwardError::Timeout {
                node: to.to_owned(),
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(node = to, session, id = %id, "forwarded call not answered in time");
                Err(ForwardError::Timeout {
                    node: to.to_owned(),
                })
            }
        }
    }

    /// Handles a cluster event: an answer completes its waiting call (a late or duplicate
    /// one is dropped), and a call addressed to this node is returned to be served. Anything
    /// else (another plugin event, a call for another node, bad data) gives `None`; bad data
    /// is logged here. Cheap and never waits, as the hook that calls it must not.
    pub(crate) fn on_event(&self, event: &PluginClusterEvent) -> Option<Incoming> {
        match event.id.as_str() {
            EVENT_CALL => match wire::decode_call(&event.data) {
                Ok((to, incoming)) if to == self.node => Some(incoming),
                Ok((to, incoming)) => {
                    tracing::debug!(
                        to,
                        from = incoming.from,
                        id = incoming.id,
                        "forwarded call for another node ignored"
                    );
                    None
                }
                Err(e) => {
                    tracing::warn!("forwarded call dropped: {e}");
                    None
                }
            },
            EVENT_REPLY => {
                match wire::decode_reply(&event.data) {
                    Ok(reply) => self.complete(reply),
                    Err(e) => tracing::warn!("answer to a forwarded call dropped: {e}"),
                }
                None
            }
            _ => None,
        }
    }

    /// Sends the answer to a call [`Forwarder::on_event`] returned.
    pub(crate) async fn reply(
        &self,
        incoming: &Incoming,
        outcome: Outcome,
    ) -> Result<(), ForwardError> {
        let data = wire::encode_reply(&self.node, &incoming.id, outcome)?;
        let event = PluginClusterEvent {
            id: EVENT_REPLY.to_owned(),
            data,
        };
        self.send
            .send(event, &incoming.from)
            .await
            .map_err(ForwardError::Send)
    }

    fn complete(&self, reply: wire::Reply) {
        let mut pending = self.pending_map();
        let ours = pending
            .get(&reply.id)
            .is_some_and(|waiting| waiting.to == reply.from);
        let Some(waiting) = ours.then(|| pending.remove(&reply.id)).flatten() else {
            tracing::debug!(
                from = reply.from,
                id = reply.id,
                "late, duplicate or stray answer to a forwarded call ignored"
            );
            return;
        };
        drop(pending);
        // The caller may have gone between the lookup and now (its future dropped): the
        // answer then has nowhere to go, as for a late one.
        let _ = waiting.answer.send(reply.outcome);
    }

    fn pending_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Forgets a pending call when its `call` future ends, however it ends.
struct Forget<'a> {
    forwarder: &'a Forwarder,
    id: &'a str,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.forwarder.pending_map().remove(self.id);
    }
}
