//! Live events: what a browser shows of a session while it happens. One task per session reads
//! the session's [`EventFeed`], maps each event ([`map`], pure) to flat live events, coalesces
//! text deltas into one `message` event per [`COALESCE`] (a batch after a quiet [`COALESCE`]
//! goes at once, so an approval or the first text is not held back), numbers and stores each batch
//! (`session_events`: per session 1, 2, 3, … with no gap), and only then publishes the events
//! to the session's channel through an [`EventSink`] (in production `PublishWebSocketEvent`,
//! which the server names `custom_claude-code_<name>`).
//!
//! A publish that fails is logged and the task goes on: a client that missed an event sees a
//! gap in `seq` and replays it with [`events_after`] (the REST route `events?after=`), which
//! returns the stored events exactly as they were published. Events that do not come from the
//! CLI (a person's file edit through the REST API) enter the same task through
//! [`LiveEvents::file_change`], so they are numbered in order with the session's own.

mod map;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::mattermost::api::{Api, ApiError};
use crate::mattermost::model::{Any, WebsocketBroadcast};
use crate::sessions::EventFeed;
use crate::store::{NewSessionEvent, Store, StoreError};
use map::{payload, Draft, Fields, Mapper, Piece};

/// Text deltas are gathered this long into one `message` event; any other event is held as
/// long, so one batch is one store transaction and order is kept.
pub const COALESCE: Duration = Duration::from_millis(100);

/// Where live events go.
pub trait EventSink: Send + Sync + 'static {
    /// Publishes one event to the members of `channel_id`.
    fn publish(
        &self,
        channel_id: &str,
        name: &str,
        payload: Fields,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

impl EventSink for Api {
    async fn publish(&self, channel_id: &str, name: &str, payload: Fields) -> Result<(), ApiError> {
        let payload = payload
            .iter()
            .map(|(k, v)| (k.clone(), Any::from_json(v)))
            .collect();
        let broadcast = WebsocketBroadcast {
            channel_id: channel_id.to_owned(),
            ..Default::default()
        };
        self.publish_websocket_event(name, payload, broadcast).await
    }
}

/// What changed a file, as a `file_change` event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAction {
    Created,
    Updated,
    Deleted,
}

impl FileAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FileAction::Created => "created",
            FileAction::Updated => "updated",
            FileAction::Deleted => "deleted",
        }
    }
}

/// The running live tasks, by session: how events from outside the CLI reach them. Cheap to
/// clone.
#[derive(Clone, Default)]
pub struct LiveEvents {
    tasks: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Draft>>>>,
}

/// What a live task needs besides its events.
pub struct LiveCtx {
    pub session_id: String,
    pub channel_id: String,
    /// Paths of files Claude changed are given relative to it (as the files API names them).
    pub project_path: Option<PathBuf>,
    /// Set at shutdown: the task publishes the events already there and ends.
    pub stop: watch::Receiver<bool>,
}

impl LiveEvents {
    /// Starts the live task of `ctx.session_id`; `None` when one already runs (its events
    /// would be numbered twice).
    pub fn start<S: EventSink>(
        &self,
        sink: Arc<S>,
        store: Store,
        ctx: LiveCtx,
        feed: EventFeed,
    ) -> Option<JoinHandle<()>> {
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
            if tasks.get(&ctx.session_id).is_some_and(|t| !t.is_closed()) {
                return None;
            }
            tasks.insert(ctx.session_id.clone(), tx.clone());
        }
        let registry = self.clone();
        Some(tokio::spawn(async move {
            let session_id = ctx.session_id.clone();
            Task::new(sink, store, ctx).run(feed, rx).await;
            let mut tasks = registry.tasks.lock().unwrap_or_else(|p| p.into_inner());
            if tasks.get(&session_id).is_some_and(|t| t.same_channel(&tx)) {
                tasks.remove(&session_id);
            }
        }))
    }

    /// A person changed a file of the session's project (`path` as the files API names it);
    /// published in order with the session's other events. False when the session has no live
    /// task (it is not running in this plugin).
    pub fn file_change(&self, session_id: &str, path: &str, action: FileAction, by: &str) -> bool {
        let draft = map::file_change(path, action.as_str(), by, crate::store::now_ms());
        let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.get(session_id).is_some_and(|t| t.send(draft).is_ok())
    }
}

/// The stored events of `session_id` after `after` (at most `limit`), each as the flat JSON
/// object that was published.
pub(crate) async fn events_after(
    store: &Store,
    session_id: &str,
    after: i64,
    limit: usize,
) -> Result<Vec<Value>, StoreError> {
    let rows = store.session_events_after(session_id, after, limit).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let fields = match row.payload {
                Value::Object(fields) => fields,
                _ => Fields::new(),
            };
            Value::Object(payload(session_id, row.seq, &row.name, row.at, &fields))
        })
        .collect())
}

/// Events waiting for the next write, in order; text deltas gather into one `message`.
#[derive(Default)]
struct Batch {
    drafts: Vec<Draft>,
    text: String,
    /// When the first delta of `text` happened.
    text_at: i64,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.drafts.is_empty() && self.text.is_empty()
    }

    fn push(&mut self, piece: Piece, at: i64) {
        match piece {
            Piece::Text(text) => {
                if self.text.is_empty() {
                    self.text_at = at;
                }
                self.text.push_str(&text);
            }
            Piece::Event(draft) => {
                // Text before the event is published before it.
                self.close_text();
                self.drafts.push(draft);
            }
        }
    }

    fn close_text(&mut self) {
        if !self.text.is_empty() {
            let mut fields = Fields::new();
            fields.insert("text".into(), Value::String(std::mem::take(&mut self.text)));
            self.drafts.push(Draft {
                name: "message",
                fields,
                at: self.text_at,
            });
        }
    }

    fn take(&mut self) -> Vec<Draft> {
        self.close_text();
        std::mem::take(&mut self.drafts)
    }
}

/// One session's live task.
struct Task<S> {
    sink: Arc<S>,
    store: Store,
    ctx: LiveCtx,
    batch: Batch,
}

impl<S: EventSink> Task<S> {
    fn new(sink: Arc<S>, store: Store, ctx: LiveCtx) -> Self {
        Task {
            sink,
            store,
            ctx,
            batch: Batch::default(),
        }
    }

    /// Runs until the session's events end, or until `stop` is set and no event is waiting;
    /// what is gathered then is still written and published.
    async fn run(mut self, mut feed: EventFeed, mut outside: mpsc::UnboundedReceiver<Draft>) {
        let mut mapper = Mapper::new(self.ctx.project_path.clone());
        let mut stop = self.ctx.stop.clone();
        // Armed by the first event of a batch, so an idle session costs no timer: at once when
        // nothing was published for COALESCE (an approval or the first text is not held back),
        // else COALESCE after the last publish (a stream of text goes out about every 100 ms).
        let mut due: Option<Instant> = None;
        let mut last_flush: Option<Instant> = None;
        loop {
            tokio::select! {
                // Events first: at shutdown, those already published are still sent.
                biased;
                event = feed.recv() => {
                    let Some(event) = event else { break };
                    for piece in mapper.map(&event) {
                        self.batch.push(piece, event.at);
                    }
                }
                Some(draft) = outside.recv() => {
                    let at = draft.at;
                    self.batch.push(Piece::Event(draft), at);
                }
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    due = None;
                    self.flush().await;
                    last_flush = Some(Instant::now());
                }
                _ = async { drop(stop.wait_for(|stop| *stop).await) } => break,
            }
            if due.is_none() && !self.batch.is_empty() {
                let now = Instant::now();
                due = Some(last_flush.map_or(now, |at| (at + COALESCE).max(now)));
            }
        }
        self.flush().await;
    }

    /// Stores the batch, then publishes it. Nothing is published that was not stored: a batch
    /// the store refused is lost to clients (the transcript still has the session's events).
    async fn flush(&mut self) {
        let drafts = self.batch.take();
        if drafts.is_empty() {
            return;
        }
        let rows = drafts
            .iter()
            .map(|d| NewSessionEvent {
                name: d.name.to_owned(),
                payload: Value::Object(d.fields.clone()),
                at: d.at,
            })
            .collect();
        let session_id = &self.ctx.session_id;
        let seqs = match self.store.append_session_events(session_id, rows).await {
            Ok(seqs) => seqs,
            Err(e) => {
                tracing::error!(session = %session_id, "storing {} live event(s) failed; they are not published: {e}", drafts.len());
                return;
            }
        };
        for (draft, seq) in drafts.into_iter().zip(seqs) {
            let event = payload(session_id, seq, draft.name, draft.at, &draft.fields);
            if let Err(e) = self
                .sink
                .publish(&self.ctx.channel_id, draft.name, event)
                .await
            {
                // The client replays what it missed.
                tracing::debug!(session = %session_id, seq, "publishing a live event failed: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests;
