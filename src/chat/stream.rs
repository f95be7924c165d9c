//! A session's events as Mattermost posts: one task per session folds each turn into ONE bot
//! post in the session's thread (created at the first output, then updated while streaming at
//! most every PostUpdateIntervalSeconds at first, the gap doubling after each update up to
//! [`MAX_UPDATE_GAP`], and once more with the closing line), continues text past Mattermost's
//! limit in follow-up posts, and posts approval cards (at once: they are posts of their own).
//! Browsers see the text as it comes through the live events (`chat/live`); the post is for
//! mobile clients and history, so a turn costs the database a few writes, not one a second.
//!
//! Every post goes into the [`Outbox`], which owns delivery: this task only says what each post
//! should read now, and nothing it says is lost to a server that is down (the outbox retries
//! until the server answers, across restarts). The events come through an [`EventFeed`], which
//! reads from the store what a slow task missed. The coalescing is tested on tokio's paused
//! clock with a fake [`PostSink`].

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use super::card::{self, ActionSigner, ApprovalRequest};
use super::outbox::{card_key, owed, root_key, Outbox, PostSink};
use super::post_props;
use super::question::{self, Interaction};
use super::render::{
    closing_line, inline_code, split_post, working_line, InlineLimits, TurnRenderer, POST_MAX_CHARS,
};
use crate::claude::messages::ResultMessage;
use crate::mattermost::api::ApiError;
use crate::mattermost::model::{Post, SlackAttachment};
use crate::sessions::{EventFeed, EventKind, SessionState, SharedSessionConfig};
use crate::store::{OwedKind, OwedPost, StoreError};

mod ping;
mod queue;
pub use ping::Approver;
pub(crate) use queue::{close_lost_lines as close_lost_queue_lines, excerpt, ordinal};

/// The longest gap between two streaming updates of a turn's post (unless the setting's first
/// gap is longer).
pub const MAX_UPDATE_GAP: Duration = Duration::from_secs(16);
/// Attempts of one file upload before its output is shown inline instead.
pub const UPLOAD_ATTEMPTS: u32 = 4;
/// The closing line of a turn cut by a stop, a crash of the CLI, or the plugin going away.
const STOPPED: &str = "✗ Stopped";
const CLI_CRASHED: &str = "✗ Claude Code stopped unexpectedly; the next prompt resumes";
const PLUGIN_STOPPED: &str = "✗ Cut short: the plugin stopped during this turn";

/// An approval card as posted, until it is decided.
#[derive(Debug, Clone)]
pub struct Card {
    /// The card's key in the outbox.
    pub key: String,
    pub session_id: String,
    pub channel_id: String,
    pub tool: String,
    pub input: Value,
    pub attachment: SlackAttachment,
    /// Claimed by a click (or expired): further clicks are refused.
    pub decided: bool,
    /// A question or a plan, rather than a request for permission.
    pub interaction: Option<Interaction>,
}

/// Cards by `(session_id, request_id)`; shared by the stream tasks and the action routes.
pub type Cards = Arc<Mutex<HashMap<(String, String), Card>>>;

/// What a stream task needs besides its events.
#[derive(Clone)]
pub struct StreamCtx {
    pub session_id: String,
    pub channel_id: String,
    pub bot_id: String,
    pub cwd: Option<String>,
    pub signer: Arc<ActionSigner>,
    pub cards: Cards,
    /// Who each card mentions and reminds: the session's owner (see [`ping`]).
    pub approver: Approver,
    /// The sessions' current timeouts: a card says when its request expires.
    pub session_config: SharedSessionConfig,
    /// Set at shutdown: the task handles the events already there and ends.
    pub stop: watch::Receiver<bool>,
}

impl StreamCtx {
    /// A post of the bot in the session's thread (the outbox fills in the root's id).
    fn post(&self) -> Post {
        Post {
            user_id: self.bot_id.clone(),
            channel_id: self.channel_id.clone(),
            ..Default::default()
        }
    }

    /// `post` owed as `kind` under `key`, in the session's thread.
    fn owed(&self, key: String, kind: OwedKind, post: &Post) -> OwedPost {
        OwedPost {
            root_key: Some(root_key(&self.session_id)),
            ..owed(key, kind, &self.session_id, post)
        }
    }
}

/// Jitter in [0, max) from the clock's nanoseconds (no RNG needed for spreading retries).
pub(crate) fn jitter(max: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let max_ms = max.as_millis().max(1) as u32;
    Duration::from_millis(u64::from(nanos % max_ms))
}

/// Runs `f` up to [`UPLOAD_ATTEMPTS`] times with jittered exponential backoff.
async fn with_retry<T, F, Fut>(what: &str, mut f: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt == UPLOAD_ATTEMPTS => return Err(e),
            Err(e) => tracing::warn!(attempt, "{what} failed: {e}"),
        }
        tokio::time::sleep(delay + jitter(delay / 2)).await;
        delay *= 2;
        attempt += 1;
    }
}

/// One turn's post(s).
struct TurnPost {
    /// Names the turn's posts in the outbox: `turn:<session>:<id>:<part>`.
    id: String,
    /// The `seq` of the turn's first event, where a restart replays it from.
    start_seq: i64,
    /// The prompt the turn answers, when the engine said (the webapp matches live events by it).
    prompt_id: Option<String>,
    renderer: TurnRenderer,
    started: Instant,
    /// The text last put, per part; the first is the turn's post.
    sent: Vec<String>,
    dirty: bool,
    /// When the post was last written while streaming, and how long a change waits after that.
    written: Instant,
    gap: Duration,
    /// Tool calls whose output attachment was uploaded (or shown inline instead).
    attached: HashSet<String>,
}

impl TurnPost {
    /// `first_gap`: PostUpdateIntervalSeconds as the turn starts.
    fn new(
        cwd: Option<String>,
        session_id: &str,
        start: (i64, Option<String>),
        first_gap: Duration,
    ) -> Self {
        let (start_seq, prompt_id) = start;
        TurnPost {
            id: format!("turn:{session_id}:{}", uuid::Uuid::new_v4().simple()),
            start_seq,
            prompt_id,
            renderer: TurnRenderer::new(cwd, InlineLimits::default()),
            started: Instant::now(),
            sent: Vec::new(),
            dirty: false,
            written: Instant::now(),
            gap: first_gap,
            attached: HashSet::new(),
        }
    }

    /// When the post is next written while streaming: a change waits for the gap.
    fn due(&self) -> Option<Instant> {
        self.dirty.then_some(self.written + self.gap)
    }

    /// Writes the post as it reads now with the working line; after an update (not the
    /// create) the next one waits twice as long, up to [`MAX_UPDATE_GAP`].
    async fn write_streaming<S: PostSink>(&mut self, outbox: &Outbox<S>, ctx: &StreamCtx) {
        let update = !self.sent.is_empty();
        let footer = working_line(self.started.elapsed());
        self.flush(outbox, ctx, &footer, false).await;
        self.written = Instant::now();
        if update {
            self.gap = (self.gap * 2).min(MAX_UPDATE_GAP.max(self.gap));
        }
    }

    /// Uploads the tool outputs that became attachments since the last call; returns
    /// `(tool, file id)` of each uploaded one, for [`Self::post_attachments`]. An output that
    /// cannot be uploaded is shown inline, cut, instead.
    async fn upload_attachments<S: PostSink>(
        &mut self,
        sink: &S,
        ctx: &StreamCtx,
    ) -> Vec<(String, String)> {
        let pending: Vec<(String, String, String, Vec<u8>)> = self
            .renderer
            .attachments()
            .filter(|(id, ..)| !self.attached.contains(*id))
            .map(|(id, name, bytes)| {
                let tool = self
                    .renderer
                    .tools()
                    .find(|t| t.tool_use_id == id)
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                (id.to_owned(), tool, name.to_owned(), bytes.to_vec())
            })
            .collect();
        let mut uploaded = Vec::new();
        for (id, tool, name, bytes) in pending {
            self.attached.insert(id.clone());
            match with_retry("UploadFile", || {
                sink.upload_file(bytes.clone(), &ctx.channel_id, &name)
            })
            .await
            {
                Ok(file_id) => uploaded.push((tool, file_id)),
                Err(e) => {
                    tracing::warn!(
                        session = %ctx.session_id,
                        "uploading the output of {tool} failed, showing it inline: {e}"
                    );
                    self.dirty |= self.renderer.inline_attachment(&id);
                }
            }
        }
        uploaded
    }

    /// Owes each uploaded output a small reply in the thread: Mattermost attaches files to a
    /// post only when it is created (UpdatePost keeps its FileIds), so the turn post keeps a
    /// one-line summary. Put after the turn post, the reply is created after it.
    async fn post_attachments<S: PostSink>(
        &mut self,
        outbox: &Outbox<S>,
        ctx: &StreamCtx,
        uploaded: Vec<(String, String)>,
    ) {
        for (tool, file_id) in uploaded {
            let message = format!("Output of {} attached", inline_code(&tool));
            owe_file_reply(outbox, ctx, message, file_id).await;
        }
    }

    /// Owes the outbox what changed (everything when `closed`: the turn's posts are final).
    async fn flush<S: PostSink>(
        &mut self,
        outbox: &Outbox<S>,
        ctx: &StreamCtx,
        footer: &str,
        closed: bool,
    ) {
        let text = self.renderer.render(footer);
        let parts = split_post(&text, POST_MAX_CHARS);
        match put_turn(outbox, ctx, self, &parts, closed).await {
            Ok(()) => {
                self.sent = parts;
                self.dirty = false;
            }
            Err(e) => {
                tracing::error!(session = %ctx.session_id, "owing a turn post failed: {e}");
                self.dirty = true;
            }
        }
    }
}

/// Owes the parts of `turn` that differ from what it sent (all of them when `closed`).
async fn put_turn<S: PostSink>(
    outbox: &Outbox<S>,
    ctx: &StreamCtx,
    turn: &TurnPost,
    parts: &[String],
    closed: bool,
) -> Result<(), StoreError> {
    for (i, part) in parts.iter().enumerate() {
        if !closed && turn.sent.get(i) == Some(part) {
            continue;
        }
        let post = post_props::typed(
            Post {
                message: part.clone(),
                ..ctx.post()
            },
            post_props::turn_props(&ctx.session_id, turn.prompt_id.as_deref(), i),
        );
        outbox
            .put(OwedPost {
                turn_seq: Some(turn.start_seq),
                part: i as i64,
                closed,
                ..ctx.owed(format!("{}:{i}", turn.id), OwedKind::Turn, &post)
            })
            .await?;
    }
    Ok(())
}

fn closing(event: &EventKind, cost_before: Option<f64>) -> (String, Option<f64>) {
    let EventKind::TurnResult {
        is_error,
        subtype,
        text,
        total_cost_usd,
        duration_ms,
        num_turns,
        api_error_status,
        ..
    } = event
    else {
        return (String::new(), cost_before);
    };
    let result: Option<ResultMessage> = serde_json::from_value(serde_json::json!({
        "type": "result",
        "subtype": subtype,
        "is_error": is_error,
        "result": text,
        "num_turns": num_turns,
        "duration_ms": duration_ms,
        "total_cost_usd": total_cost_usd,
        "api_error_status": api_error_status,
    }))
    .ok();
    // The CLI's cost is cumulative per process; a new process (resume) starts again at 0.
    let before = cost_before.filter(|b| total_cost_usd.is_some_and(|t| t >= *b));
    let line = match result {
        Some(r) => closing_line(&r, before),
        None if *is_error => "✗ Failed".to_owned(),
        None => "✓ Done".to_owned(),
    };
    (line, total_cost_usd.or(cost_before))
}

/// Owes a pending approval card and records it.
async fn post_card<S: PostSink>(outbox: &Outbox<S>, ctx: &StreamCtx, event: &EventKind) {
    let EventKind::ToolUseRequested {
        request_id,
        tool,
        input,
        description,
        requires_user_interaction,
        ..
    } = event
    else {
        return;
    };
    let timeout = ctx.session_config.get().approval_timeout;
    let expires_at = crate::store::now_ms() / 1000 + timeout.as_secs() as i64;
    let interaction = Interaction::of(tool, input, *requires_user_interaction);
    let attachment = match &interaction {
        Some(asked) => question::attachment(
            &question::CardTarget {
                site_url: "",
                session_id: &ctx.session_id,
                request_id,
                expires_at,
            },
            &ctx.signer,
            asked,
        ),
        None => card::approval_attachment(
            "",
            &ctx.signer,
            &ApprovalRequest {
                session_id: &ctx.session_id,
                request_id,
                tool_name: tool,
                input,
                description: description.as_deref(),
                cwd: ctx.cwd.as_deref(),
                expires_at,
            },
        ),
    };
    let key = card_key(request_id);
    let post = post_props::typed(
        Post {
            message: ping::card_message(outbox.sink(), ctx).await,
            ..ctx.post()
        },
        post_props::card_props(&ctx.session_id, request_id, attachment.clone()),
    );
    let owed = OwedPost {
        request_id: Some(request_id.clone()),
        ..ctx.owed(key.clone(), OwedKind::Card, &post)
    };
    if let Err(e) = outbox.put(owed).await {
        tracing::error!(session = %ctx.session_id, "the approval card could not be owed: {e}");
        return;
    }
    if let Err(e) = outbox.store().set_approval_card(request_id).await {
        tracing::error!(session = %ctx.session_id, "recording the card failed: {e}");
    }
    // The card is answerable before the long plan's upload, which can take retries.
    let long_plan = match &interaction {
        Some(Interaction::Plan(Some(plan))) => Some(plan.clone()),
        _ => None,
    };
    if let Ok(mut cards) = ctx.cards.lock() {
        cards.insert(
            (ctx.session_id.clone(), request_id.clone()),
            Card {
                key,
                session_id: ctx.session_id.clone(),
                channel_id: ctx.channel_id.clone(),
                tool: tool.clone(),
                input: input.clone(),
                attachment,
                decided: false,
                interaction,
            },
        );
    }
    if let Some(plan) = long_plan {
        post_long_plan(outbox, ctx, &plan).await;
    }
}

/// A plan too long for its card follows it whole, as `plan.md` in a reply (Mattermost attaches
/// files to a post only when it is created).
async fn post_long_plan<S: PostSink>(outbox: &Outbox<S>, ctx: &StreamCtx, plan: &str) {
    if plan.chars().count() <= question::PLAN_SHOWN_MAX {
        return;
    }
    let bytes = plan.as_bytes().to_vec();
    let file_id = match with_retry("UploadFile", || {
        outbox
            .sink()
            .upload_file(bytes.clone(), &ctx.channel_id, "plan.md")
    })
    .await
    {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(session = %ctx.session_id, "uploading the plan failed: {e}");
            return;
        }
    };
    owe_file_reply(outbox, ctx, "The whole plan".to_owned(), file_id).await;
}

/// Owes a reply in the session's thread that carries an uploaded file.
async fn owe_file_reply<S: PostSink>(
    outbox: &Outbox<S>,
    ctx: &StreamCtx,
    message: String,
    file_id: String,
) {
    let post = Post {
        message,
        file_ids: vec![file_id],
        ..ctx.post()
    };
    let key = format!("reply:{}", uuid::Uuid::new_v4().simple());
    let reply = OwedPost {
        closed: true,
        ..ctx.owed(key, OwedKind::Reply, &post)
    };
    if let Err(e) = outbox.put(reply).await {
        tracing::error!(session = %ctx.session_id, "owing a reply with a file failed: {e}");
    }
}

/// The card with `attachment`, closed (no later version follows).
pub fn card_post(
    card: &Card,
    request_id: &str,
    bot_id: &str,
    attachment: SlackAttachment,
) -> OwedPost {
    let post = Post {
        user_id: bot_id.to_owned(),
        channel_id: card.channel_id.clone(),
        ..Default::default()
    };
    let post = post_props::typed(
        post,
        post_props::card_props(&card.session_id, request_id, attachment),
    );
    OwedPost {
        root_key: Some(root_key(&card.session_id)),
        closed: true,
        ..owed(card.key.clone(), OwedKind::Card, &card.session_id, &post)
    }
}

/// Owes a card's closing and records the card closed: the outbox delivers it.
pub async fn close_card_post<S: PostSink>(
    outbox: &Outbox<S>,
    request_id: &str,
    closed: OwedPost,
) -> Result<(), StoreError> {
    outbox.put(closed).await?;
    outbox.store().close_approval_card(request_id).await
}

/// A request that can no longer be answered (expired, or withdrawn by the engine): the card
/// loses its buttons and says why. A card already claimed by a click is left to that click.
async fn close_card<S: PostSink>(
    outbox: &Outbox<S>,
    ctx: &StreamCtx,
    request_id: &str,
    outcome: card::Decision,
) {
    let card = ctx.cards.lock().ok().and_then(|mut cards| {
        let c = cards.get_mut(&(ctx.session_id.clone(), request_id.to_owned()))?;
        if c.decided {
            return None;
        }
        c.decided = true;
        Some(c.clone())
    });
    if let Some(card) = card {
        let att = card::decided_attachment(&card.attachment, &outcome);
        let closed = card_post(&card, request_id, &ctx.bot_id, att);
        if let Err(e) = close_card_post(outbox, request_id, closed).await {
            tracing::error!(session = %ctx.session_id, "owing a closed card failed: {e}");
        }
    }
}

/// The stream task of one session: runs until the session's events end, or until
/// [`StreamCtx::stop`] is set and no event is waiting.
pub async fn run<S: PostSink>(outbox: Arc<Outbox<S>>, ctx: StreamCtx, mut events: EventFeed) {
    let mut turn: Option<TurnPost> = None;
    let mut cost_before: Option<f64> = None;
    let mut stop = ctx.stop.clone();
    let mut reminders = ping::Reminders::default();
    let mut queue = queue::Queue::default();
    // The setting is read as each turn starts, so a saved change applies from the next turn.
    let new_turn = |seq, prompt_id: Option<&String>| {
        let first_gap = ctx.session_config.get().post_update_interval;
        TurnPost::new(
            ctx.cwd.clone(),
            &ctx.session_id,
            (seq, prompt_id.cloned()),
            first_gap,
        )
    };
    loop {
        let due = turn.as_ref().and_then(TurnPost::due);
        let remind_at = reminders.next_due();
        tokio::select! {
            // Events first: at shutdown, those already published are still posted.
            biased;
            event = events.recv() => {
                let Some(event) = event else { break };
                queue::post(&outbox, &ctx, queue.apply(&event.kind)).await;
                match &event.kind {
                    EventKind::TurnResult { .. } => {
                        let (line, cost) = closing(&event.kind, cost_before);
                        cost_before = cost;
                        let mut t = turn.take().unwrap_or_else(|| new_turn(event.seq, None));
                        t.flush(&outbox, &ctx, &line, true).await;
                    }
                    EventKind::ToolUseRequested { .. } => {
                        if let Some(t) = turn.as_mut() {
                            t.dirty |= t.renderer.apply_event(&event.kind);
                        }
                        post_card(&outbox, &ctx, &event.kind).await;
                        if let EventKind::ToolUseRequested { request_id, .. } = &event.kind {
                            reminders.schedule(request_id, ctx.session_config.get().approval_reminder);
                        }
                    }
                    EventKind::ToolApprovalExpired { request_id, .. } => {
                        reminders.cancel(request_id);
                        close_card(&outbox, &ctx, request_id, card::Decision::Expired).await;
                    }
                    EventKind::ToolApprovalCancelled { request_id } => {
                        if let Some(t) = turn.as_mut() {
                            t.dirty |= t.renderer.apply_event(&event.kind);
                        }
                        reminders.cancel(request_id);
                        close_card(&outbox, &ctx, request_id, card::Decision::Cancelled).await;
                    }
                    EventKind::Crashed { .. } => {
                        if let Some(mut t) = turn.take().filter(|t| !t.sent.is_empty()) {
                            t.flush(&outbox, &ctx, CLI_CRASHED, true).await;
                        }
                    }
                    EventKind::StatusChanged { to, prompt_id, .. } => match to {
                        SessionState::Running => match turn.as_mut() {
                            None => turn = Some(new_turn(event.seq, prompt_id.as_ref())),
                            // The prompt's own event opened the turn before the engine said
                            // which prompt runs.
                            Some(t) if t.prompt_id.is_none() => t.prompt_id.clone_from(prompt_id),
                            Some(_) => {}
                        },
                        // A new CLI process counts its cost from 0 again.
                        SessionState::Starting => cost_before = None,
                        SessionState::Stopping | SessionState::Stopped => {
                            // A stop in the middle of a turn: close its post.
                            if let Some(mut t) = turn.take().filter(|t| !t.sent.is_empty()) {
                                t.flush(&outbox, &ctx, STOPPED, true).await;
                            }
                        }
                        _ => {}
                    },
                    kind => {
                        let t = turn.get_or_insert_with(|| new_turn(event.seq, None));
                        let changed = t.renderer.apply_event(kind);
                        t.dirty |= changed;
                        let uploaded = t.upload_attachments(outbox.sink(), &ctx).await;
                        // The post appears at the first output; later changes wait for their turn.
                        if changed && t.sent.is_empty() {
                            t.write_streaming(&outbox, &ctx).await;
                        }
                        // Replies with files go below the turn post.
                        t.post_attachments(&outbox, &ctx, uploaded).await;
                    }
                }
            }
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                if let Some(t) = turn.as_mut() {
                    t.write_streaming(&outbox, &ctx).await;
                }
            }
            _ = tokio::time::sleep_until(remind_at.unwrap_or_else(Instant::now)), if remind_at.is_some() => {
                let waited = ctx.session_config.get().approval_reminder.unwrap_or_default();
                for request_id in reminders.take_due() {
                    ping::remind(&outbox, &ctx, &request_id, waited).await;
                }
            }
            _ = async { drop(stop.wait_for(|stop| *stop).await) } => break,
        }
    }
}

/// Waits for `tasks` until `deadline`, then aborts those still running; returns how many were.
pub(crate) async fn drain(tasks: Vec<tokio::task::JoinHandle<()>>, deadline: Instant) -> usize {
    let mut cut = 0;
    for mut task in tasks {
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            task.abort();
            cut += 1;
        }
    }
    cut
}

/// After a restart: every turn post left open by the previous run (the plugin went away in
/// the middle of its turn, or before its closing was owed) is closed with what the transcript
/// holds of the turn, and the turn's own closing line when it got that far.
pub async fn close_cut_turns<S: PostSink>(
    outbox: &Outbox<S>,
    bot_id: &str,
    of_session: impl Fn(&str) -> bool,
) -> Result<usize, StoreError> {
    let store = outbox.store();
    let mut turns: Vec<(String, String, i64)> = Vec::new();
    for row in store.outbox_open_turns().await? {
        if !of_session(&row.session_id) {
            continue;
        }
        let Some(prefix) = row.key.rsplit_once(':').map(|(p, _)| p.to_owned()) else {
            continue;
        };
        if !turns.iter().any(|(p, ..)| *p == prefix) {
            turns.push((prefix, row.session_id, row.turn_seq));
        }
    }
    for (turn_id, session_id, start_seq) in &turns {
        let Some(session) = store.session(session_id).await? else {
            continue;
        };
        let rows = store
            .messages_after(session_id, start_seq - 1, usize::MAX)
            .await?;
        let events = rows
            .into_iter()
            .filter_map(|r| serde_json::from_value::<EventKind>(r.event).ok());
        let (text, prompt_id) = replay_turn(Some(session.project_path.clone()), events);
        let parts = split_post(&text, POST_MAX_CHARS);
        let ctx_post = Post {
            user_id: bot_id.to_owned(),
            channel_id: session.channel_id.clone(),
            ..Default::default()
        };
        for (i, part) in parts.iter().enumerate() {
            let post = post_props::typed(
                Post {
                    message: part.clone(),
                    ..ctx_post.clone()
                },
                post_props::turn_props(session_id, prompt_id.as_deref(), i),
            );
            outbox
                .put(OwedPost {
                    root_key: Some(root_key(session_id)),
                    turn_seq: Some(*start_seq),
                    part: i as i64,
                    closed: true,
                    ..owed(format!("{turn_id}:{i}"), OwedKind::Turn, session_id, &post)
                })
                .await?;
        }
    }
    Ok(turns.len())
}

/// The text of a turn from its events as stored (everything up to its result, with the
/// closing line, or up to where it was cut), and the prompt its change to Running named.
fn replay_turn(
    cwd: Option<String>,
    events: impl Iterator<Item = EventKind>,
) -> (String, Option<String>) {
    let mut renderer = TurnRenderer::new(cwd, InlineLimits::default());
    let mut prompt = None;
    for kind in events {
        let end = match &kind {
            EventKind::TurnResult { .. } => closing(&kind, None).0,
            EventKind::Crashed { .. } => CLI_CRASHED.to_owned(),
            EventKind::StatusChanged { to, prompt_id, .. } => match to {
                SessionState::Stopping | SessionState::Stopped => STOPPED.to_owned(),
                // A new CLI process: the turn was cut before its result (the plugin went
                // away, and the session started again since).
                SessionState::Starting => break,
                // The turn's start names its prompt; it runs again after each approval.
                SessionState::Running => {
                    prompt = prompt.or_else(|| prompt_id.clone());
                    continue;
                }
                _ => continue,
            },
            _ => {
                renderer.apply_event(&kind);
                continue;
            }
        };
        return (renderer.render(&end), prompt);
    }
    (renderer.render(PLUGIN_STOPPED), prompt)
}

#[cfg(test)]
mod tests;
