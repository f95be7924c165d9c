//! The outbox: every post the bot owes Mattermost (turn posts, approval cards and their
//! closings, thread roots, file replies) is recorded in the store (`outbox` table) as it should
//! read now, and one worker task delivers it through the [`PostSink`] (the bot's one door,
//! [`super::poster::BotPoster`]), retrying with capped, jittered backoff until the server
//! answers, across plugin restarts.
//!
//! - A post is named by a key for its whole life; a newer version replaces an older one not yet
//!   delivered, so a post that was updated ten times during an outage is sent once.
//! - Posts of one thread are created in the order they were first put: a create that fails
//!   holds back the later creates of its thread (updates of posts that exist go on). A reply to
//!   a post that is itself owed waits for it and gets its id.
//! - A create is made once. The post id is recorded as soon as the server answers; a create
//!   whose answer was lost (a broken connection, a crash between the answer and the record)
//!   carries its key in the post's props ([`KEY_PROP`]), and before any further try the worker
//!   looks for it (in the thread, or among the channel's posts since the first try for a root).
//!
//! Backoff lives in memory: after a restart every owed post is tried at once.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::mattermost::api::ApiError;
use crate::mattermost::attachments;
use crate::mattermost::model::{Any, Post};
use crate::store::{OwedKind, OwedPost, PendingPost, Store, StoreError};

/// The prop that carries an owed post's key, so that a create whose answer was lost is found
/// instead of made twice.
pub const KEY_PROP: &str = "claude_code_key";
/// The first retry of a post waits this long, doubling up to [`MAX_RETRY`], plus up to half
/// again of jitter (so a recovered server gets everything within about 6 s).
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(4);
/// How far before a lost create's first try the channel's posts are looked through (the
/// plugin's clock and the database's may differ a little).
const LOOKUP_SLACK_MS: i64 = 60_000;

/// Where posts go ([`super::poster::BotPoster`] in production).
pub trait PostSink: Send + Sync + 'static {
    fn create_post(&self, post: Post) -> impl Future<Output = Result<Post, ApiError>> + Send;
    fn update_post(&self, post: Post) -> impl Future<Output = Result<Post, ApiError>> + Send;
    /// Uploads a file to `channel_id`; returns its id (for `Post::file_ids`).
    fn upload_file(
        &self,
        data: Vec<u8>,
        channel_id: &str,
        filename: &str,
    ) -> impl Future<Output = Result<String, ApiError>> + Send;
    /// The id of the bot's post whose [`KEY_PROP`] is `key`, if the server has it: in the
    /// thread of `root_id`, or, for a post without a root, among the channel's posts since
    /// `since_ms`.
    fn find_post(
        &self,
        channel_id: &str,
        root_id: &str,
        since_ms: i64,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, ApiError>> + Send;
    /// The direct channel between the bot and `user_id` (created if needed): where an approval
    /// reminder goes.
    fn direct_channel(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<String, ApiError>> + Send;
    /// Whether `user_id` is a member of `channel_id` now (`false` when the server has no such
    /// membership).
    fn is_channel_member(
        &self,
        channel_id: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<bool, ApiError>> + Send;
    /// The server's SiteURL without its trailing slash, if it has one: a link in a direct
    /// message must be absolute.
    fn site_url(&self) -> impl Future<Output = Option<String>> + Send;
}

/// Why one delivery failed (it is retried).
#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    #[error("the server: {0}")]
    Api(#[from] ApiError),
    #[error("the store: {0}")]
    Store(#[from] StoreError),
    /// The gate closed while the post was prepared: this node no longer runs its session.
    #[error("this node no longer runs the session")]
    Withheld,
}

/// A direct message owed on conditions (an approval reminder): kept in the owed post's JSON,
/// read at each try. The direct channel is looked up as part of the delivery, so it is retried
/// with the post; and the message is dropped, not sent, once the card it is about is closed or
/// its addressee has left the channel it is about.
const DIRECT_TO: &str = "direct_to";
const WHILE_MEMBER_OF: &str = "while_member_of";
const WHILE_CARD_OPEN: &str = "while_card_open";

/// `post` (without a channel) owed as a direct message from the bot to `user_id`, sent only
/// while the card of `request_id` is open and `user_id` is a member of `channel_id`.
pub fn owed_direct(
    key: String,
    session_id: &str,
    post: &Post,
    user_id: &str,
    channel_id: &str,
    request_id: &str,
) -> OwedPost {
    let mut owed = OwedPost {
        closed: true,
        ..owed(key, OwedKind::Reply, session_id, post)
    };
    if let Some(o) = owed.post.as_object_mut() {
        o.insert(DIRECT_TO.into(), user_id.into());
        o.insert(WHILE_MEMBER_OF.into(), channel_id.into());
        o.insert(WHILE_CARD_OPEN.into(), request_id.into());
    }
    owed
}

/// Keys of owed posts.
pub fn root_key(session_id: &str) -> String {
    format!("root:{session_id}")
}

pub fn card_key(request_id: &str) -> String {
    format!("card:{request_id}")
}

/// An owed post of `kind` in `session_id`, not closed, with no root, request or turn.
pub fn owed(key: String, kind: OwedKind, session_id: &str, post: &Post) -> OwedPost {
    OwedPost {
        key,
        kind,
        session_id: session_id.to_owned(),
        root_key: None,
        request_id: None,
        turn_seq: None,
        part: 0,
        post: post_json(post),
        closed: false,
    }
}

/// What the outbox keeps of a post: what the bot sets, as JSON, props in the shape the server
/// stores them.
pub fn post_json(post: &Post) -> Value {
    serde_json::json!({
        "user_id": post.user_id,
        "channel_id": post.channel_id,
        "root_id": post.root_id,
        "message": post.message,
        "type": post.r#type,
        "file_ids": post.file_ids,
        "props": post.props.as_ref().map(|p| Any::Map(p.clone()).to_json()),
    })
}

/// The post [`post_json`] kept, attachments typed again.
pub fn post_of_json(v: &Value) -> Post {
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let mut props = match v.get("props").map(Any::from_json) {
        Some(Any::Map(m)) => Some(m),
        _ => None,
    };
    if let Some(atts) = attachments::of_props(&props) {
        if let Some(p) = props.as_mut() {
            p.insert("attachments".to_owned(), Any::Attachments(atts));
        }
    }
    Post {
        user_id: text("user_id"),
        channel_id: text("channel_id"),
        root_id: text("root_id"),
        message: text("message"),
        r#type: text("type"),
        file_ids: v
            .get("file_ids")
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        props,
        ..Default::default()
    }
}

/// One post's retries.
struct Retry {
    failures: u32,
    due: Instant,
}

impl Retry {
    fn delay(failures: u32) -> Duration {
        let base = FIRST_RETRY
            .saturating_mul(1 << failures.saturating_sub(1).min(16))
            .min(MAX_RETRY);
        base + super::stream::jitter(base / 2)
    }
}

/// Which sessions' posts this process may deliver now: in a cluster, only those of the sessions
/// whose lease it holds (another node delivers the rest, and a node that lost a lease must not
/// write for it). Asked for each row just before its delivery.
pub type DeliveryGate = Arc<dyn Fn(&str) -> bool + Send + Sync>;

pub struct Outbox<S> {
    store: Store,
    sink: Arc<S>,
    gate: std::sync::RwLock<DeliveryGate>,
    wake: Notify,
    /// Bumped at every create, for [`Outbox::wait_created`].
    created: watch::Sender<u64>,
    /// Whether the last pass found nothing owed.
    idle: watch::Sender<bool>,
}

impl<S: PostSink> Outbox<S> {
    pub fn new(store: Store, sink: Arc<S>) -> Arc<Self> {
        Arc::new(Outbox {
            store,
            sink,
            gate: std::sync::RwLock::new(Arc::new(|_: &str| true)),
            wake: Notify::new(),
            created: watch::Sender::new(0),
            idle: watch::Sender::new(false),
        })
    }

    /// From now on only posts of sessions `gate` allows are delivered.
    pub fn set_gate(&self, gate: DeliveryGate) {
        *self.gate.write().unwrap_or_else(|p| p.into_inner()) = gate;
    }

    fn may_deliver(&self, session_id: &str) -> bool {
        (self.gate.read().unwrap_or_else(|p| p.into_inner()))(session_id)
    }

    /// Looks at the owed posts again (a session this node just took over has some).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Records `owed` as its post's current version and wakes the worker. Once this returns
    /// the post is owed durably.
    pub async fn put(&self, owed: OwedPost) -> Result<(), StoreError> {
        self.idle.send_replace(false);
        self.store.outbox_put(owed).await?;
        self.wake.notify_one();
        Ok(())
    }

    /// The id of `key`'s post, once the server created it.
    pub async fn created(&self, key: &str) -> String {
        let mut created = self.created.subscribe();
        loop {
            created.borrow_and_update();
            match self.store.outbox_post_id(key).await {
                Ok(Some(id)) => return id,
                Ok(None) => {}
                Err(e) => tracing::warn!(post = key, "reading an owed post failed: {e}"),
            }
            // The sender lives in `self`: this only ends with a change.
            let _ = created.changed().await;
        }
    }

    /// Resolves when a pass of the worker found nothing owed.
    pub async fn drained(&self) {
        let mut idle = self.idle.subscribe();
        let _ = idle.wait_for(|idle| *idle).await;
    }

    /// The worker: delivers until the task is aborted. What it could not deliver stays owed
    /// in the store for the next start.
    pub async fn run(self: Arc<Self>) {
        let mut retries = HashMap::new();
        loop {
            let wake = self.wake.notified();
            let (next, delivered) = self.pass(&mut retries).await;
            // What was delivered may have freed later posts of its thread.
            if delivered {
                continue;
            }
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = wake => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => wake.await,
            }
        }
    }

    /// Tries every owed post that is due; returns when the next retry is due (`None`: nothing
    /// waits on a timer) and whether anything was delivered.
    async fn pass(&self, retries: &mut HashMap<String, Retry>) -> (Option<Instant>, bool) {
        let rows = match self.store.outbox_pending().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!("reading the outbox failed: {e}");
                return (Some(Instant::now() + MAX_RETRY), false);
            }
        };
        let mut delivered = false;
        let rows: Vec<PendingPost> = rows
            .into_iter()
            .filter(|r| self.may_deliver(&r.session_id))
            .collect();
        self.idle.send_replace(rows.is_empty());
        retries.retain(|key, _| rows.iter().any(|r| &r.key == key));
        let mut held: HashSet<String> = HashSet::new();
        let mut next: Option<Instant> = None;
        for row in rows {
            let thread = row.root_key.clone().unwrap_or_else(|| row.key.clone());
            let creating = row.post_id.is_none();
            let waits_for_root = row.root_key.is_some() && row.root_post_id.is_none();
            let due = retries.get(&row.key).map(|r| r.due);
            let held_back = creating && held.contains(&thread);
            let later = due.is_some_and(|d| d > Instant::now());
            if waits_for_root || held_back || later {
                if let Some(d) = due {
                    next = Some(next.map_or(d, |n| n.min(d)));
                }
                if creating {
                    held.insert(thread);
                }
                continue;
            }
            // The lease may have been lost while earlier rows were delivered.
            if !self.may_deliver(&row.session_id) {
                continue;
            }
            match self.deliver(&row).await {
                Ok(()) => {
                    retries.remove(&row.key);
                    delivered = true;
                }
                Err(DeliveryError::Withheld) => {}
                Err(e) => {
                    let retry = retries.entry(row.key.clone()).or_insert(Retry {
                        failures: 0,
                        due: Instant::now(),
                    });
                    retry.failures += 1;
                    retry.due = Instant::now() + Retry::delay(retry.failures);
                    // The first failure of a post is worth a warning; the rest of an outage
                    // is not.
                    if retry.failures == 1 {
                        tracing::warn!(post = %row.key, "a post is owed to the server and will be retried: {e}");
                    } else {
                        tracing::debug!(post = %row.key, failures = retry.failures, "retrying a post failed: {e}");
                    }
                    next = Some(next.map_or(retry.due, |n| n.min(retry.due)));
                    if creating {
                        held.insert(thread);
                    }
                }
            }
        }
        (next, delivered)
    }

    /// A direct message's channel, looked up now; `None` when its conditions no longer hold
    /// (it is then not sent). Conditions are checked only before a create: a message the
    /// server has is kept.
    async fn direct(&self, row: &PendingPost, post: &mut Post) -> Result<bool, DeliveryError> {
        let field = |k: &str| row.post.get(k).and_then(Value::as_str);
        let Some(user_id) = field(DIRECT_TO) else {
            return Ok(true);
        };
        if row.post_id.is_none() {
            if let Some(request_id) = field(WHILE_CARD_OPEN) {
                // The decision is stored before the card is closed (at a restart, recovery
                // cancels a request some time before it closes its card).
                if self.store.outbox_open_card(request_id).await?.is_none()
                    || self.store.approval_decided(request_id).await?
                {
                    return Ok(false);
                }
            }
            if let Some(channel_id) = field(WHILE_MEMBER_OF) {
                if !self.sink.is_channel_member(channel_id, user_id).await? {
                    return Ok(false);
                }
            }
        }
        post.channel_id = self.sink.direct_channel(user_id).await?;
        Ok(true)
    }

    /// Sends the current version of one owed post.
    async fn deliver(&self, row: &PendingPost) -> Result<(), DeliveryError> {
        let mut post = post_of_json(&row.post);
        if !self.direct(row, &mut post).await? {
            tracing::debug!(post = %row.key, "a direct message is no longer owed");
            self.store.outbox_delivered(&row.key, row.version).await?;
            return Ok(());
        }
        if let Some(root) = &row.root_post_id {
            post.root_id = root.clone();
        }
        post.props
            .get_or_insert_with(Default::default)
            .insert(KEY_PROP.to_owned(), Any::String(row.key.clone()));
        let id = match (&row.post_id, row.tried) {
            (Some(id), _) => Some(id.clone()),
            // A try whose answer was lost may have made the post.
            (None, Some(tried)) => {
                let found = self
                    .sink
                    .find_post(
                        &post.channel_id,
                        &post.root_id,
                        tried - LOOKUP_SLACK_MS,
                        &row.key,
                    )
                    .await?;
                if let Some(id) = &found {
                    self.store.outbox_created(&row.key, id, None).await?;
                    self.created.send_modify(|n| *n += 1);
                }
                found
            }
            (None, None) => None,
        };
        if !self.may_deliver(&row.session_id) {
            return Err(DeliveryError::Withheld);
        }
        match id {
            Some(id) => {
                post.id = id;
                self.sink.update_post(post).await?;
                self.store.outbox_delivered(&row.key, row.version).await?;
            }
            None => {
                self.store.outbox_tried(&row.key).await?;
                let made = self.sink.create_post(post).await?;
                self.store
                    .outbox_created(&row.key, &made.id, Some(row.version))
                    .await?;
                self.created.send_modify(|n| *n += 1);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
