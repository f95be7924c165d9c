//! A session's events as Mattermost posts: one task per session folds each turn into ONE bot
//! post in the session's thread (created at the first output, updated at most once per
//! [`UPDATE_EVERY`] while streaming, then once more with the closing line), continues text past
//! Mattermost's limit in follow-up posts, and posts approval cards.
//!
//! Posting goes through [`PostSink`] so that the coalescing can be tested on tokio's paused
//! clock with a fake. A failed create/update is retried with jittered backoff (a bounded number
//! of times); content is never lost because the next flush renders the whole turn again (and
//! the store has the transcript anyway).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::card::{self, ActionSigner, ApprovalRequest};
use super::render::{
    closing_line, inline_code, split_post, working_line, InlineLimits, TurnRenderer, POST_MAX_CHARS,
};
use crate::claude::messages::ResultMessage;
use crate::mattermost::model::{Post, SlackAttachment};
use crate::sessions::{EventKind, SessionEvent, SessionState, SharedSessionConfig};
use crate::store::Store;

/// Streaming updates of a turn's post are coalesced to at most one per this.
pub const UPDATE_EVERY: Duration = Duration::from_secs(1);
/// Attempts of one create/update before it is left to the next flush.
pub const POST_ATTEMPTS: u32 = 4;

/// Where posts go ([`super::poster::BotPoster`] in production).
pub trait PostSink: Send + Sync + 'static {
    fn create_post(&self, post: Post) -> impl Future<Output = Result<Post, String>> + Send;
    fn update_post(&self, post: Post) -> impl Future<Output = Result<Post, String>> + Send;
    /// Uploads a file to `channel_id`; returns its id (for `Post::file_ids`).
    fn upload_file(
        &self,
        data: Vec<u8>,
        channel_id: &str,
        filename: &str,
    ) -> impl Future<Output = Result<String, String>> + Send;
}

/// An approval card as posted, until it is decided.
#[derive(Debug, Clone)]
pub struct Card {
    pub post_id: String,
    pub session_id: String,
    pub channel_id: String,
    pub root_id: String,
    pub tool: String,
    pub input: Value,
    pub attachment: SlackAttachment,
    /// Claimed by a click (or expired): further clicks are refused.
    pub decided: bool,
}

/// Cards by `(session_id, request_id)`; shared by the stream tasks and the action routes.
pub type Cards = Arc<Mutex<HashMap<(String, String), Card>>>;

/// What a stream task needs besides its events.
#[derive(Clone)]
pub struct StreamCtx {
    pub session_id: String,
    pub channel_id: String,
    pub root_id: String,
    pub bot_id: String,
    pub cwd: Option<String>,
    pub signer: Arc<ActionSigner>,
    pub cards: Cards,
    /// The sessions' current timeouts: a card says when its request expires.
    pub session_config: SharedSessionConfig,
    /// Where each card's post id and open/closed state are kept, so a restart can close the
    /// cards left open. `None` in tests that have no store.
    pub store: Option<Store>,
}

/// Jitter in [0, max) from the clock's nanoseconds (no RNG needed for spreading retries).
fn jitter(max: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let max_ms = max.as_millis().max(1) as u32;
    Duration::from_millis(u64::from(nanos % max_ms))
}

/// Runs `f` up to [`POST_ATTEMPTS`] times with jittered exponential backoff.
pub async fn with_retry<T, F, Fut>(what: &str, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let mut delay = Duration::from_millis(200);
    let mut last = String::new();
    for attempt in 1..=POST_ATTEMPTS {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                tracing::warn!(attempt, "{what} failed: {e}");
                last = e;
            }
        }
        if attempt < POST_ATTEMPTS {
            tokio::time::sleep(delay + jitter(delay / 2)).await;
            delay *= 2;
        }
    }
    Err(last)
}

/// Creates `post`, or updates it when `update`; `retry` retries failures with backoff.
async fn send_post<S: PostSink>(
    sink: &S,
    post: Post,
    update: bool,
    retry: bool,
) -> Result<Post, String> {
    match (update, retry) {
        (true, true) => with_retry("UpdatePost", || sink.update_post(post.clone())).await,
        (true, false) => sink.update_post(post).await,
        (false, true) => with_retry("CreatePost", || sink.create_post(post.clone())).await,
        (false, false) => sink.create_post(post).await,
    }
}

/// One turn's post(s).
struct TurnPost {
    renderer: TurnRenderer,
    started: Instant,
    /// `(post id, text last sent)` per part; the first is the turn's post.
    sent: Vec<(String, String)>,
    dirty: bool,
    /// Tool calls whose output attachment was uploaded (or shown inline instead).
    attached: HashSet<String>,
}

impl TurnPost {
    fn new(cwd: Option<String>) -> Self {
        TurnPost {
            renderer: TurnRenderer::new(cwd, InlineLimits::default()),
            started: Instant::now(),
            sent: Vec::new(),
            dirty: false,
            attached: HashSet::new(),
        }
    }

    /// Uploads the tool outputs that became attachments since the last call; returns
    /// `(tool, file id)` of each uploaded one, for [`Self::post_attachments`] (after the turn
    /// post exists). An output that cannot be uploaded is shown inline, cut, instead.
    async fn upload_attachments<S: PostSink>(
        &mut self,
        sink: &S,
        ctx: &StreamCtx,
    ) -> Vec<(String, String, String)> {
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
                Ok(file_id) => uploaded.push((id, tool, file_id)),
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

    /// Posts each uploaded output in a small reply in the thread: Mattermost attaches files
    /// to a post only when it is created (UpdatePost keeps its FileIds), so the turn post
    /// keeps a one-line summary. An output whose reply fails is shown inline, cut, instead.
    async fn post_attachments<S: PostSink>(
        &mut self,
        sink: &S,
        ctx: &StreamCtx,
        uploaded: Vec<(String, String, String)>,
    ) {
        for (id, tool, file_id) in uploaded {
            let post = Post {
                user_id: ctx.bot_id.clone(),
                channel_id: ctx.channel_id.clone(),
                root_id: ctx.root_id.clone(),
                message: format!("Output of {} attached", inline_code(&tool)),
                file_ids: vec![file_id],
                ..Default::default()
            };
            if let Err(e) =
                with_retry("CreatePost (attachment)", || sink.create_post(post.clone())).await
            {
                tracing::warn!(
                    session = %ctx.session_id,
                    "posting the output of {tool} failed, showing it inline: {e}"
                );
                self.dirty |= self.renderer.inline_attachment(&id);
            }
        }
    }

    /// Sends what changed. `retry`: retry failures now (the final flush) instead of leaving
    /// them to the next tick. Returns whether everything was sent.
    async fn flush<S: PostSink>(
        &mut self,
        sink: &S,
        ctx: &StreamCtx,
        footer: &str,
        retry: bool,
    ) -> bool {
        let text = self.renderer.render(footer);
        let parts = split_post(&text, POST_MAX_CHARS);
        let mut ok = true;
        for (i, part) in parts.into_iter().enumerate() {
            // Parts already posted are updated in place; new ones are created.
            let existing = self
                .sent
                .get(i)
                .map(|(id, last)| (id.clone(), *last == part));
            if matches!(existing, Some((_, true))) {
                continue;
            }
            let post = Post {
                id: existing
                    .as_ref()
                    .map(|(id, _)| id.clone())
                    .unwrap_or_default(),
                user_id: ctx.bot_id.clone(),
                channel_id: ctx.channel_id.clone(),
                root_id: ctx.root_id.clone(),
                message: part.clone(),
                ..Default::default()
            };
            let update = existing.is_some();
            match send_post(sink, post, update, retry).await {
                Ok(_) if update => self.sent[i].1 = part,
                Ok(created) => self.sent.push((created.id, part)),
                Err(e) => {
                    let what = if update { "updating" } else { "creating" };
                    tracing::warn!(session = %ctx.session_id, "{what} a turn post failed: {e}");
                    ok = false;
                    if !update {
                        // Later parts must not take this part's place.
                        break;
                    }
                }
            }
        }
        self.dirty = !ok;
        ok
    }
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

/// Posts a pending approval card and records it.
async fn post_card<S: PostSink>(sink: &S, ctx: &StreamCtx, event: &EventKind) {
    let EventKind::ToolUseRequested {
        request_id,
        tool,
        input,
        description,
        ..
    } = event
    else {
        return;
    };
    let timeout = ctx.session_config.get().approval_timeout;
    let expires_at = crate::store::now_ms() / 1000 + timeout.as_secs() as i64;
    let attachment = card::approval_attachment(
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
    );
    let post = Post {
        user_id: ctx.bot_id.clone(),
        channel_id: ctx.channel_id.clone(),
        root_id: ctx.root_id.clone(),
        props: card::card_props(attachment.clone()),
        ..Default::default()
    };
    match with_retry("CreatePost (approval card)", || {
        sink.create_post(post.clone())
    })
    .await
    {
        Ok(p) => {
            if let Some(store) = &ctx.store {
                if let Err(e) = store.set_approval_card(request_id, &p.id).await {
                    tracing::error!(session = %ctx.session_id, "recording the card's post failed: {e}");
                }
            }
            if let Ok(mut cards) = ctx.cards.lock() {
                cards.insert(
                    (ctx.session_id.clone(), request_id.clone()),
                    Card {
                        post_id: p.id,
                        session_id: ctx.session_id.clone(),
                        channel_id: ctx.channel_id.clone(),
                        root_id: ctx.root_id.clone(),
                        tool: tool.clone(),
                        input: input.clone(),
                        attachment,
                        decided: false,
                    },
                );
            }
        }
        Err(e) => {
            tracing::error!(session = %ctx.session_id, "the approval card could not be posted: {e}")
        }
    }
}

/// The card post with `attachment` (for UpdatePost).
pub fn card_post(card: &Card, bot_id: &str, attachment: SlackAttachment) -> Post {
    Post {
        id: card.post_id.clone(),
        user_id: bot_id.to_owned(),
        channel_id: card.channel_id.clone(),
        root_id: card.root_id.clone(),
        props: card::card_props(attachment),
        ..Default::default()
    }
}

/// A request that can no longer be answered (expired, or withdrawn by the engine): the card
/// loses its buttons and says why. A card already claimed by a click is left to that click.
async fn close_card<S: PostSink>(
    sink: &S,
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
        let post = card_post(&card, &ctx.bot_id, att);
        match with_retry("UpdatePost (closed card)", || {
            sink.update_post(post.clone())
        })
        .await
        {
            Ok(_) => {
                if let Some(store) = &ctx.store {
                    if let Err(e) = store.close_approval_card(request_id).await {
                        tracing::warn!(session = %ctx.session_id, "recording a closed card failed: {e}");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(session = %ctx.session_id, "updating a closed card failed: {e}")
            }
        }
    }
}

/// The stream task of one session: runs until the event channel closes.
pub async fn run<S: PostSink>(
    sink: Arc<S>,
    ctx: StreamCtx,
    mut events: broadcast::Receiver<SessionEvent>,
) {
    let mut turn: Option<TurnPost> = None;
    let mut cost_before: Option<f64> = None;
    let mut tick = tokio::time::interval(UPDATE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.recv() => {
                let event = match event {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(session = %ctx.session_id, "the post stream lagged by {n} events");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                match &event.kind {
                    EventKind::TurnResult { .. } => {
                        let (line, cost) = closing(&event.kind, cost_before);
                        cost_before = cost;
                        let mut t = turn.take().unwrap_or_else(|| TurnPost::new(ctx.cwd.clone()));
                        t.flush(sink.as_ref(), &ctx, &line, true).await;
                    }
                    EventKind::ToolUseRequested { .. } => {
                        if let Some(t) = turn.as_mut() {
                            t.dirty |= t.renderer.apply_event(&event.kind);
                        }
                        post_card(sink.as_ref(), &ctx, &event.kind).await;
                    }
                    EventKind::ToolApprovalExpired { request_id, .. } => {
                        close_card(sink.as_ref(), &ctx, request_id, card::Decision::Expired).await;
                    }
                    EventKind::ToolApprovalCancelled { request_id } => {
                        if let Some(t) = turn.as_mut() {
                            t.dirty |= t.renderer.apply_event(&event.kind);
                        }
                        close_card(sink.as_ref(), &ctx, request_id, card::Decision::Cancelled).await;
                    }
                    EventKind::Crashed { .. } => {
                        if let Some(mut t) = turn.take().filter(|t| !t.sent.is_empty()) {
                            t.flush(sink.as_ref(), &ctx, "✗ Claude Code stopped unexpectedly; the next prompt resumes", true).await;
                        }
                    }
                    EventKind::StatusChanged { to, .. } => match to {
                        SessionState::Running if turn.is_none() => {
                            turn = Some(TurnPost::new(ctx.cwd.clone()));
                        }
                        SessionState::Stopping | SessionState::Stopped => {
                            // A stop in the middle of a turn: close its post.
                            if let Some(mut t) = turn.take().filter(|t| !t.sent.is_empty()) {
                                t.flush(sink.as_ref(), &ctx, "✗ Stopped", true).await;
                            }
                        }
                        _ => {}
                    },
                    kind => {
                        let t = turn.get_or_insert_with(|| TurnPost::new(ctx.cwd.clone()));
                        let changed = t.renderer.apply_event(kind);
                        t.dirty |= changed;
                        let uploaded = t.upload_attachments(sink.as_ref(), &ctx).await;
                        // The post appears at the first output; later changes wait for the tick.
                        if changed && t.sent.is_empty() {
                            let footer = working_line(t.started.elapsed());
                            t.flush(sink.as_ref(), &ctx, &footer, false).await;
                        }
                        // Replies with files go below the turn post (unless it failed).
                        t.post_attachments(sink.as_ref(), &ctx, uploaded).await;
                    }
                }
            }
            _ = tick.tick() => {
                if let Some(t) = turn.as_mut().filter(|t| t.dirty) {
                    let footer = working_line(t.started.elapsed());
                    t.flush(sink.as_ref(), &ctx, &footer, false).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// `(channel, filename, bytes, file id)`.
    type Upload = (String, String, Vec<u8>, String);

    #[derive(Default)]
    struct FakeSink {
        log: Mutex<Vec<(&'static str, Post, Instant)>>,
        next: AtomicU32,
        fail_creates: AtomicU32,
        uploads: Mutex<Vec<Upload>>,
        fail_uploads: AtomicU32,
    }

    impl PostSink for FakeSink {
        async fn create_post(&self, mut post: Post) -> Result<Post, String> {
            if self.fail_creates.load(Ordering::SeqCst) > 0 {
                self.fail_creates.fetch_sub(1, Ordering::SeqCst);
                return Err("server busy".into());
            }
            post.id = format!("p{}", self.next.fetch_add(1, Ordering::SeqCst));
            self.log
                .lock()
                .unwrap()
                .push(("create", post.clone(), Instant::now()));
            Ok(post)
        }
        async fn update_post(&self, post: Post) -> Result<Post, String> {
            self.log
                .lock()
                .unwrap()
                .push(("update", post.clone(), Instant::now()));
            Ok(post)
        }
        async fn upload_file(
            &self,
            data: Vec<u8>,
            channel_id: &str,
            filename: &str,
        ) -> Result<String, String> {
            if self.fail_uploads.load(Ordering::SeqCst) > 0 {
                self.fail_uploads.fetch_sub(1, Ordering::SeqCst);
                return Err("storage full".into());
            }
            let mut uploads = self.uploads.lock().unwrap();
            let id = format!("f{}", uploads.len());
            uploads.push((channel_id.into(), filename.into(), data, id.clone()));
            Ok(id)
        }
    }

    fn ctx() -> StreamCtx {
        StreamCtx {
            session_id: "s1".into(),
            channel_id: "c1".into(),
            root_id: "root".into(),
            bot_id: "bot".into(),
            cwd: Some("/p".into()),
            signer: Arc::new(ActionSigner::new(&"ab".repeat(32)).unwrap()),
            cards: Cards::default(),
            session_config: SharedSessionConfig::new(crate::sessions::SessionConfig {
                approval_timeout: Duration::from_secs(600),
                ..Default::default()
            }),
            store: None,
        }
    }

    fn ev(kind: EventKind) -> SessionEvent {
        SessionEvent {
            session_id: "s1".into(),
            seq: 0,
            at: 0,
            kind,
        }
    }

    fn result() -> EventKind {
        EventKind::TurnResult {
            prompt_id: None,
            is_error: false,
            subtype: "success".into(),
            text: Some("done".into()),
            terminal_reason: None,
            total_cost_usd: Some(0.01),
            usage: None,
            duration_ms: Some(3200),
            num_turns: Some(1),
            api_error_status: None,
            denied_tools: Vec::new(),
        }
    }

    /// 50 deltas over 5 s of paused time: one create, about one update a second, a final one.
    #[tokio::test(start_paused = true)]
    async fn updates_are_coalesced_to_one_a_second() {
        let sink = Arc::new(FakeSink::default());
        let (tx, rx) = broadcast::channel(256);
        let task = tokio::spawn(run(sink.clone(), ctx(), rx));
        tokio::task::yield_now().await;
        for i in 0..50 {
            tx.send(ev(EventKind::TextDelta {
                text: format!("w{i} "),
            }))
            .unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tx.send(ev(result())).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(tx);
        task.await.unwrap();
        let log = sink.log.lock().unwrap();
        let creates = log.iter().filter(|(k, ..)| *k == "create").count();
        let updates: Vec<Instant> = log
            .iter()
            .filter(|(k, ..)| *k == "update")
            .map(|(_, _, at)| *at)
            .collect();
        assert_eq!(creates, 1, "{log:?}");
        assert!(
            (4..=7).contains(&updates.len()),
            "{} updates",
            updates.len()
        );
        // Streaming updates (all but the final one) are >= ~1 s apart.
        for w in updates[..updates.len() - 1].windows(2) {
            assert!(
                w[1] - w[0] >= Duration::from_millis(900),
                "{:?}",
                w[1] - w[0]
            );
        }
        let (_, last, _) = log.last().unwrap();
        assert_eq!(last.root_id, "root");
        assert!(last.message.starts_with("w0 w1"), "{}", last.message);
        assert!(last.message.contains("w49"));
        assert!(last.message.contains("✓ Done"), "{}", last.message);
    }

    /// Posts a card for `r1`, sends `closing`, and returns the card as last updated.
    async fn card_closed_by(closing: EventKind) -> Post {
        let sink = Arc::new(FakeSink::default());
        let (tx, rx) = broadcast::channel(256);
        let ctx = ctx();
        let cards = ctx.cards.clone();
        let task = tokio::spawn(run(sink.clone(), ctx, rx));
        tokio::task::yield_now().await;
        tx.send(ev(EventKind::ToolUseRequested {
            request_id: "r1".into(),
            tool_use_id: Some("t1".into()),
            tool: "Write".into(),
            input: serde_json::json!({"file_path": "/p/a.txt", "content": "x"}),
            description: None,
            reason: None,
            requires_user_interaction: false,
        }))
        .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.send(ev(closing)).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(tx);
        task.await.unwrap();
        let log = sink.log.lock().unwrap();
        let (kind, card, _) = &log[0];
        assert_eq!((*kind, card.root_id.as_str()), ("create", "root"));
        let (kind, closed, _) = log.last().unwrap();
        assert_eq!((*kind, closed.id.as_str()), ("update", card.id.as_str()));
        assert!(cards.lock().unwrap()[&("s1".to_owned(), "r1".to_owned())].decided);
        closed.clone()
    }

    fn card_attachment(post: &Post) -> SlackAttachment {
        let Some(crate::mattermost::model::Any::Attachments(atts)) =
            post.props.as_ref().unwrap().get("attachments")
        else {
            panic!("no attachments")
        };
        atts[0].clone()
    }

    #[tokio::test(start_paused = true)]
    async fn cards_are_posted_in_the_thread_and_closed_when_expired_or_withdrawn() {
        let expired = card_attachment(
            &card_closed_by(EventKind::ToolApprovalExpired {
                request_id: "r1".into(),
                message: "expired".into(),
            })
            .await,
        );
        assert!(expired.text.contains("Expired"), "{}", expired.text);
        assert!(expired.actions.is_empty());
        // `/claude stop`, an interrupt or the CLI exiting withdraws the request.
        let withdrawn = card_attachment(
            &card_closed_by(EventKind::ToolApprovalCancelled {
                request_id: "r1".into(),
            })
            .await,
        );
        assert!(withdrawn.text.contains("Withdrawn"), "{}", withdrawn.text);
        assert!(withdrawn.actions.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_create_is_retried_without_losing_text_and_long_text_continues() {
        let sink = Arc::new(FakeSink::default());
        sink.fail_creates.store(2, Ordering::SeqCst);
        let (tx, rx) = broadcast::channel(256);
        let task = tokio::spawn(run(sink.clone(), ctx(), rx));
        tokio::task::yield_now().await;
        tx.send(ev(EventKind::TextDelta {
            text: "first ".into(),
        }))
        .unwrap();
        let long = "word ".repeat(5000);
        tx.send(ev(EventKind::AssistantText {
            message_id: None,
            text: format!("first {long}"),
        }))
        .unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        tx.send(ev(result())).unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(tx);
        task.await.unwrap();
        let log = sink.log.lock().unwrap();
        let mut last_by_id: HashMap<String, String> = HashMap::new();
        let mut order = Vec::new();
        for (_, p, _) in log.iter() {
            if !last_by_id.contains_key(&p.id) {
                order.push(p.id.clone());
            }
            last_by_id.insert(p.id.clone(), p.message.clone());
        }
        assert_eq!(order.len(), 2, "{order:?}");
        let all: String = order.iter().map(|id| last_by_id[id].clone()).collect();
        assert_eq!(all.matches("word").count(), 5000);
        assert!(last_by_id[&order[1]].contains("✓ Done"));
        assert!(last_by_id
            .values()
            .all(|m| m.chars().count() <= POST_MAX_CHARS));
    }

    /// A Bash call with `lines` lines of output, then the end of the turn; returns the sink.
    async fn bash_turn(lines: usize, fail_uploads: u32) -> Arc<FakeSink> {
        let sink = Arc::new(FakeSink::default());
        sink.fail_uploads.store(fail_uploads, Ordering::SeqCst);
        let (tx, rx) = broadcast::channel(256);
        let task = tokio::spawn(run(sink.clone(), ctx(), rx));
        tokio::task::yield_now().await;
        tx.send(ev(EventKind::ToolUse {
            tool_use_id: "t1".into(),
            tool: "Bash".into(),
            input: serde_json::json!({"command": "seq"}),
        }))
        .unwrap();
        let out: String = (1..=lines).map(|i| format!("{i}\n")).collect();
        tx.send(ev(EventKind::ToolResult {
            tool_use_id: "t1".into(),
            is_error: false,
            content: out.clone(),
            file_path: None,
            patch: None,
            stdout: Some(out),
            stderr: None,
        }))
        .unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        tx.send(ev(result())).unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(tx);
        task.await.unwrap();
        sink
    }

    /// The last text of the turn post (the first post created).
    fn turn_text(sink: &FakeSink) -> String {
        let log = sink.log.lock().unwrap();
        let id = &log.iter().find(|(k, ..)| *k == "create").unwrap().1.id;
        log.iter()
            .rev()
            .find(|(_, p, _)| &p.id == id)
            .unwrap()
            .1
            .message
            .clone()
    }

    #[tokio::test(start_paused = true)]
    async fn long_tool_output_is_uploaded_once_and_attached_in_a_reply() {
        let sink = bash_turn(100, 0).await;
        let uploads = sink.uploads.lock().unwrap().clone();
        assert_eq!(uploads.len(), 1, "{uploads:?}");
        let (channel, name, bytes, file_id) = &uploads[0];
        assert_eq!((channel.as_str(), name.as_str()), ("c1", "bash-output.txt"));
        assert_eq!(bytes.len(), 291);
        let log = sink.log.lock().unwrap().clone();
        let with_file: Vec<&Post> = log
            .iter()
            .map(|(_, p, _)| p)
            .filter(|p| !p.file_ids.is_empty())
            .collect();
        assert_eq!(with_file.len(), 1, "{log:?}");
        let reply = with_file[0];
        assert_eq!(reply.file_ids, [file_id.as_str()]);
        assert_eq!(reply.root_id, "root");
        assert_eq!(reply.message, "Output of `Bash` attached");
        // The reply comes after the turn post, which keeps a one-line summary.
        let first_create = log.iter().position(|(k, ..)| *k == "create").unwrap();
        assert!(log[first_create].1.file_ids.is_empty());
        let text = turn_text(&sink);
        assert!(
            text.contains("📎 `bash-output.txt` attached (100 lines, 291 B)"),
            "{text}"
        );
        assert!(!text.contains("\n40\n"), "{text}");
        assert!(text.contains("✓ Done"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn short_tool_output_stays_inline_and_uploads_nothing() {
        let sink = bash_turn(3, 0).await;
        assert!(sink.uploads.lock().unwrap().is_empty());
        let log = sink.log.lock().unwrap().clone();
        assert!(log.iter().all(|(_, p, _)| p.file_ids.is_empty()), "{log:?}");
        let text = turn_text(&sink);
        assert!(text.contains("```\n1\n2\n3\n```"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_upload_falls_back_to_truncated_inline_output() {
        let sink = bash_turn(100, POST_ATTEMPTS).await;
        assert!(sink.uploads.lock().unwrap().is_empty());
        let log = sink.log.lock().unwrap().clone();
        assert!(log.iter().all(|(_, p, _)| p.file_ids.is_empty()), "{log:?}");
        let text = turn_text(&sink);
        assert!(!text.contains("📎"), "{text}");
        assert!(text.contains("\n40\n"), "{text}");
        assert!(text.contains("output truncated: 40 of 100 lines"), "{text}");
    }
}
