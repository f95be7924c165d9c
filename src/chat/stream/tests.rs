use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::broadcast;

use super::*;
use crate::chat::test_sink::{rig, FakeSink, Rig};
use crate::mattermost::model::Any;
use crate::sessions::SessionEvent;
use crate::store::MessageRecord;

/// A running stream task of session `s1` and the means to feed it.
struct Stream {
    rig: Rig,
    tx: broadcast::Sender<SessionEvent>,
    cards: Cards,
    task: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
    /// The settings the task reads (PostUpdateIntervalSeconds, ApprovalTimeoutMinutes).
    config: SharedSessionConfig,
}

static SEQ: AtomicI64 = AtomicI64::new(1);

fn ctx(cards: Cards, stop: watch::Receiver<bool>, config: SharedSessionConfig) -> StreamCtx {
    StreamCtx {
        session_id: "s1".into(),
        channel_id: "c1".into(),
        bot_id: "bot".into(),
        cwd: Some("/p".into()),
        signer: Arc::new(ActionSigner::new(&"ab".repeat(32)).unwrap()),
        cards,
        approver: Approver::new("owner".into(), Some("alice".into())),
        session_config: config,
        stop,
    }
}

/// A stream on a broadcast buffer of `capacity` events.
async fn stream(capacity: usize) -> Stream {
    let rig = rig().await;
    let (tx, rx) = broadcast::channel(capacity);
    let (stop_tx, stop) = watch::channel(false);
    let cards = Cards::default();
    let config = SharedSessionConfig::new(crate::sessions::SessionConfig {
        approval_timeout: Duration::from_secs(600),
        ..Default::default()
    });
    let feed = EventFeed::new("s1".into(), rx, rig.store.clone(), 0);
    let ctx = ctx(cards.clone(), stop, config.clone());
    let task = tokio::spawn(run(rig.outbox.clone(), ctx, feed));
    tokio::task::yield_now().await;
    Stream {
        rig,
        tx,
        cards,
        task,
        stop: stop_tx,
        config,
    }
}

impl Stream {
    /// Publishes `kind` as the actor does: stored first, then sent.
    async fn send(&self, kind: EventKind) {
        let seq = self.store(kind.clone()).await;
        let _ = self.tx.send(SessionEvent {
            session_id: "s1".into(),
            seq,
            at: 0,
            kind,
        });
    }

    async fn store(&self, kind: EventKind) -> i64 {
        let (message_type, kind_name, content) = kind.transcript_columns();
        self.rig
            .store
            .append_message(MessageRecord {
                seq: 0,
                id: format!("m{}", SEQ.fetch_add(1, Ordering::SeqCst)),
                session_id: "s1".into(),
                message_type: message_type.into(),
                kind: kind_name.into(),
                content,
                event: serde_json::to_value(&kind).unwrap(),
                timestamp: 0,
            })
            .await
            .unwrap()
    }

    /// Ends the events, waits for the task and for the outbox to deliver everything.
    async fn finish(self) -> (Arc<FakeSink>, Cards, Rig) {
        drop(self.tx);
        self.task.await.unwrap();
        settle(&self.rig.outbox).await;
        (self.rig.sink.clone(), self.cards, self.rig)
    }
}

/// Waits (at most two minutes) until the outbox delivered everything.
async fn settle<S: PostSink>(outbox: &Outbox<S>) {
    if tokio::time::timeout(Duration::from_secs(120), outbox.drained())
        .await
        .is_err()
    {
        panic!(
            "the outbox did not deliver everything in two minutes: {:?}",
            outbox.store().outbox_pending().await
        );
    }
}

fn result() -> EventKind {
    result_costing(0.01)
}

/// A turn's result whose CLI process has cost `total` so far.
fn result_costing(total: f64) -> EventKind {
    EventKind::TurnResult {
        prompt_id: None,
        is_error: false,
        subtype: "success".into(),
        text: Some("done".into()),
        terminal_reason: None,
        total_cost_usd: Some(total),
        usage: None,
        duration_ms: Some(3200),
        num_turns: Some(1),
        api_error_status: None,
        denied_tools: Vec::new(),
    }
}

fn request(id: &str) -> EventKind {
    EventKind::ToolUseRequested {
        request_id: id.into(),
        tool_use_id: Some("t1".into()),
        tool: "Write".into(),
        input: serde_json::json!({"file_path": "/p/a.txt", "content": "x"}),
        description: None,
        reason: None,
        requires_user_interaction: false,
    }
}

/// The posts of the turn (not the root), as they last read.
fn turn_posts(sink: &FakeSink, root_id: &str) -> Vec<Post> {
    sink.posts()
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| {
            p.root_id == root_id && p.file_ids.is_empty() && p.props_attachments().is_none()
        })
        .collect()
}

trait CardProps {
    fn props_attachments(&self) -> Option<SlackAttachment>;
}

impl CardProps for Post {
    fn props_attachments(&self) -> Option<SlackAttachment> {
        match self.props.as_ref()?.get("attachments")? {
            crate::mattermost::model::Any::Attachments(atts) => atts.first().cloned(),
            _ => None,
        }
    }
}

impl Stream {
    /// Sets PostUpdateIntervalSeconds as a saved setting does.
    fn set_post_interval(&self, interval: Duration) {
        self.config.set(crate::sessions::SessionConfig {
            post_update_interval: interval,
            ..(*self.config.get()).clone()
        });
    }

    /// `seconds` of continuous text, a delta every 100 ms.
    async fn stream_text(&self, seconds: u64) {
        for i in 0..seconds * 10 {
            self.send(EventKind::TextDelta {
                text: format!("w{i} "),
            })
            .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// When the server applied each write (create or update) of the turn post, in order.
fn turn_writes(sink: &FakeSink, root_id: &str) -> Vec<(&'static str, Instant)> {
    sink.log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, p, _)| p.root_id == root_id)
        .map(|(kind, _, at)| (*kind, *at))
        .collect()
}

/// The post appears at the first text; streaming updates come at most every
/// PostUpdateIntervalSeconds at first, the gap doubling after each one (1, 2, 4, 8 s here), and
/// the closing line comes at once at the end.
#[tokio::test(start_paused = true)]
async fn streaming_updates_start_at_the_setting_and_back_off() {
    let s = stream(256).await;
    s.set_post_interval(Duration::from_secs(1));
    s.stream_text(20).await;
    s.send(result()).await;
    let ended = Instant::now();
    let root_id = s.rig.root_id.clone();
    let (sink, ..) = s.finish().await;
    let writes = turn_writes(&sink, &root_id);
    let kinds: Vec<&str> = writes.iter().map(|(k, _)| *k).collect();
    // Create, updates after 1, 3, 7 and 15 s, the closing one at 20 s.
    assert_eq!(
        kinds,
        ["create", "update", "update", "update", "update", "update"]
    );
    let gaps: Vec<Duration> = writes.windows(2).map(|w| w[1].1 - w[0].1).collect();
    for (gap, want) in gaps.iter().zip([1, 2, 4, 8]) {
        let want = Duration::from_secs(want);
        assert!(
            *gap >= want && *gap < want + Duration::from_millis(300),
            "{gaps:?}"
        );
    }
    assert!(writes.last().unwrap().1 - ended < Duration::from_millis(300));
    let (_, last, _) = sink.log.lock().unwrap().last().cloned().unwrap();
    assert!(last.message.starts_with("w0 w1"), "{}", last.message);
    assert!(last.message.contains("w199"));
    assert!(last.message.contains("✓ Done"), "{}", last.message);
}

/// A 30 s turn of continuous text with the default setting (2 s): the old cadence (an update
/// every second) wrote the post about 30 times; now it is at most 6 updates, the last with
/// the closing line.
#[tokio::test(start_paused = true)]
async fn a_30_second_turn_costs_at_most_6_updates() {
    let s = stream(256).await;
    s.stream_text(30).await;
    s.send(result()).await;
    let root_id = s.rig.root_id.clone();
    let (sink, ..) = s.finish().await;
    let writes = turn_writes(&sink, &root_id);
    let updates = writes.iter().filter(|(k, _)| *k == "update").count();
    assert_eq!(writes[0].0, "create");
    assert!((3..=6).contains(&updates), "{updates} updates: {writes:?}");
    let text = turn_text(&sink, &root_id);
    assert!(text.contains("w299") && text.contains("✓ Done"), "{text}");
}

/// A saved PostUpdateIntervalSeconds reaches a running stream: its next turn waits as long.
#[tokio::test(start_paused = true)]
async fn a_saved_interval_applies_from_the_next_turn() {
    let s = stream(256).await;
    s.stream_text(1).await;
    s.send(result()).await;
    s.set_post_interval(Duration::from_secs(10));
    s.stream_text(8).await;
    s.send(result()).await;
    let root_id = s.rig.root_id.clone();
    let (sink, ..) = s.finish().await;
    let posts = turn_posts(&sink, &root_id);
    assert_eq!(posts.len(), 2);
    let second: Vec<&str> = sink
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, p, _)| p.id == posts[1].id)
        .map(|(k, ..)| *k)
        .collect();
    // Created, then nothing for 8 s (the first gap is 10 s), then closed.
    assert_eq!(second, ["create", "update"]);
}

fn prop(post: &Post, key: &str) -> Option<Any> {
    post.props.as_ref()?.get(key).cloned()
}

/// Which part of its turn a turn post is (the prop's number, however JSON typed it).
fn part_of(post: &Post) -> Option<i64> {
    match prop(post, post_props::PROP_PART)? {
        Any::Int64(n) | Any::Int(n) => Some(n),
        Any::Float64(f) => Some(f as i64),
        _ => None,
    }
}

/// As the engine publishes a turn: the prompt, then the change to Running naming it. Every
/// post of the turn names that prompt, for the webapp to match its live events.
#[tokio::test(start_paused = true)]
async fn a_turn_post_names_the_prompt_it_answers() {
    let s = stream(256).await;
    s.send(EventKind::Prompt {
        prompt_id: "p1".into(),
        author: "alice".into(),
        text: "hi".into(),
        words_at: 0,
    })
    .await;
    s.send(EventKind::StatusChanged {
        from: SessionState::Idle,
        to: SessionState::Running,
        prompt_id: Some("p1".into()),
    })
    .await;
    s.send(EventKind::TextDelta {
        text: "hello".into(),
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.send(result()).await;
    let root_id = s.rig.root_id.clone();
    let (sink, ..) = s.finish().await;
    let posts = turn_posts(&sink, &root_id);
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].r#type, post_props::POST_TYPE);
    assert_eq!(
        prop(&posts[0], post_props::PROP_TURN),
        Some(Any::String("p1".into()))
    );
    assert_eq!(part_of(&posts[0]), Some(0));
}

/// A resumed session runs a new CLI process, whose total cost starts from 0 again: the next
/// turn's closing line shows that process's total, not the difference with the old one.
#[tokio::test(start_paused = true)]
async fn a_turn_after_a_resume_costs_what_the_new_process_says() {
    let s = stream(256).await;
    for (from, to, total) in [
        (SessionState::Stopped, SessionState::Starting, 0.05),
        (SessionState::Stopped, SessionState::Starting, 0.08),
    ] {
        s.send(EventKind::StatusChanged {
            from,
            to,
            prompt_id: None,
        })
        .await;
        s.send(EventKind::TextDelta {
            text: "hello".into(),
        })
        .await;
        s.send(result_costing(total)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let root_id = s.rig.root_id.clone();
    let (sink, ..) = s.finish().await;
    let posts = turn_posts(&sink, &root_id);
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert!(posts[0].message.contains("$0.0500"), "{}", posts[0].message);
    assert!(posts[1].message.contains("$0.0800"), "{}", posts[1].message);
}

/// Posts a card for `r1`, sends `closing`, and returns the card as it last reads.
async fn card_closed_by(closing: EventKind) -> Post {
    let s = stream(256).await;
    s.send(request("r1")).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    s.send(closing).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let root_id = s.rig.root_id.clone();
    let (sink, cards, rig) = s.finish().await;
    let posts = sink.posts();
    let (_, card) = posts
        .iter()
        .find(|(_, p)| p.props_attachments().is_some())
        .expect("a card");
    assert_eq!(card.root_id, root_id);
    // The webapp draws it as the card of request r1 (the attachments stay for mobile).
    assert_eq!(card.r#type, post_props::POST_TYPE);
    assert_eq!(
        prop(card, post_props::PROP_REQUEST),
        Some(Any::String("r1".into()))
    );
    assert_eq!(
        prop(card, post_props::PROP_SESSION),
        Some(Any::String("s1".into()))
    );
    assert!(cards.lock().unwrap()[&("s1".to_owned(), "r1".to_owned())].decided);
    // Recorded closed: a restart leaves it alone.
    assert!(rig.store.outbox_open_card("r1").await.unwrap().is_none());
    card.clone()
}

#[tokio::test(start_paused = true)]
async fn cards_are_posted_in_the_thread_and_closed_when_expired_or_withdrawn() {
    let expired = card_closed_by(EventKind::ToolApprovalExpired {
        request_id: "r1".into(),
        message: "expired".into(),
    })
    .await
    .props_attachments()
    .unwrap();
    assert!(expired.text.contains("Expired"), "{}", expired.text);
    assert!(expired.actions.is_empty());
    // `/claude stop`, an interrupt or the CLI exiting withdraws the request.
    let withdrawn = card_closed_by(EventKind::ToolApprovalCancelled {
        request_id: "r1".into(),
    })
    .await
    .props_attachments()
    .unwrap();
    assert!(withdrawn.text.contains("Withdrawn"), "{}", withdrawn.text);
    assert!(withdrawn.actions.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_create_is_retried_without_losing_text_and_long_text_continues() {
    let s = stream(256).await;
    s.rig.sink.fail_creates.store(2, Ordering::SeqCst);
    s.send(EventKind::TextDelta {
        text: "first ".into(),
    })
    .await;
    let long = "word ".repeat(5000);
    s.send(EventKind::AssistantText {
        message_id: None,
        text: format!("first {long}"),
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    s.send(result()).await;
    let root_id = s.rig.root_id.clone();
    let (sink, ..) = s.finish().await;
    let posts = turn_posts(&sink, &root_id);
    assert_eq!(posts.len(), 2, "{posts:?}");
    let all: String = posts.iter().map(|p| p.message.clone()).collect();
    assert_eq!(all.matches("word").count(), 5000);
    assert!(posts[1].message.contains("✓ Done"));
    let parts: Vec<_> = posts.iter().map(part_of).collect();
    assert_eq!(parts, [Some(0), Some(1)]);
    assert!(posts
        .iter()
        .all(|p| p.message.chars().count() <= POST_MAX_CHARS));
}

/// The server fails every create and update for a minute in the middle of a streaming reply
/// with a card: after it recovers, the reply lands complete within seconds, the card is there
/// and closed, and nothing was posted twice.
#[tokio::test(start_paused = true)]
async fn a_minute_long_outage_loses_nothing_and_posts_nothing_twice() {
    let s = stream(256).await;
    s.send(EventKind::TextDelta {
        text: "before ".into(),
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.rig.sink.go_down(Duration::from_secs(60));
    let down_at = Instant::now();
    for i in 0..30 {
        s.send(EventKind::TextDelta {
            text: format!("w{i} "),
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    s.send(request("r1")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.send(EventKind::ToolApprovalExpired {
        request_id: "r1".into(),
        message: "expired".into(),
    })
    .await;
    s.send(result()).await;
    // The whole turn happened during the outage.
    assert!(Instant::now() < down_at + Duration::from_secs(60));
    let root_id = s.rig.root_id.clone();
    let (sink, ..) = s.finish().await;
    let recovered = down_at + Duration::from_secs(60);
    let log = sink.log.lock().unwrap().clone();
    let last_at = log.last().unwrap().2;
    assert!(
        last_at <= recovered + Duration::from_secs(10),
        "the last post landed {:?} after the recovery",
        last_at - recovered
    );
    // Root, turn post, card: each created once.
    assert_eq!(sink.creates(), 3, "{log:?}");
    let posts = turn_posts(&sink, &root_id);
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0].message.starts_with("before w0 w1"),
        "{}",
        posts[0].message
    );
    assert!(posts[0].message.contains("w29"));
    assert!(posts[0].message.contains("✓ Done"));
    let card = sink
        .posts()
        .into_iter()
        .find_map(|(_, p)| p.props_attachments())
        .expect("the card was posted");
    assert!(card.text.contains("Expired"), "{}", card.text);
    // During the outage the many versions of the turn post were folded into one update.
    let updates_after = log
        .iter()
        .filter(|(k, _, at)| *k == "update" && *at >= recovered)
        .count();
    assert!(
        updates_after <= 3,
        "{updates_after} updates after the recovery"
    );
}

/// A create the server applied but whose answer was lost is found by its key, not made again.
#[tokio::test(start_paused = true)]
async fn a_create_whose_answer_was_lost_is_not_made_twice() {
    let s = stream(256).await;
    s.rig.sink.lose_answers.store(1, Ordering::SeqCst);
    s.send(EventKind::TextDelta {
        text: "hello".into(),
    })
    .await;
    s.send(result()).await;
    let root_id = s.rig.root_id.clone();
    let (sink, ..) = s.finish().await;
    let posts = turn_posts(&sink, &root_id);
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(posts[0].message.contains("✓ Done"), "{}", posts[0].message);
}

/// The stream falls behind a broadcast buffer of one event while an approval request goes by:
/// the feed reads what it missed from the store, so the card is still posted.
#[tokio::test(start_paused = true)]
async fn a_stream_that_lags_still_posts_every_card() {
    let s = stream(1).await;
    // Stored first, then sent without letting the task run: the buffer keeps only the last.
    let kinds = [
        EventKind::TextDelta { text: "a ".into() },
        request("r1"),
        EventKind::TextDelta { text: "b ".into() },
        EventKind::TextDelta { text: "c".into() },
        result(),
    ];
    let mut events = Vec::new();
    for kind in kinds {
        events.push(SessionEvent {
            session_id: "s1".into(),
            seq: s.store(kind.clone()).await,
            at: 0,
            kind,
        });
    }
    for event in events {
        let _ = s.tx.send(event);
    }
    let root_id = s.rig.root_id.clone();
    let (sink, cards, _) = s.finish().await;
    assert!(cards
        .lock()
        .unwrap()
        .contains_key(&("s1".to_owned(), "r1".to_owned())));
    assert!(sink
        .posts()
        .iter()
        .any(|(_, p)| p.props_attachments().is_some()));
    let posts = turn_posts(&sink, &root_id);
    assert!(
        posts[0].message.starts_with("a b c"),
        "{}",
        posts[0].message
    );
}

/// After a crash of the plugin in the middle of a turn, the turn's post (still "Working…") is
/// closed at the next start with what the transcript holds.
#[tokio::test(start_paused = true)]
async fn a_turn_cut_by_the_plugin_stopping_is_closed_at_the_next_start() {
    let s = stream(256).await;
    // As the engine publishes: the prompt's event opens the turn, then Running names it.
    s.send(EventKind::Prompt {
        prompt_id: "p7".into(),
        author: "alice".into(),
        text: "go".into(),
        words_at: 0,
    })
    .await;
    s.send(EventKind::StatusChanged {
        from: SessionState::Idle,
        to: SessionState::Running,
        prompt_id: Some("p7".into()),
    })
    .await;
    s.send(EventKind::TextDelta {
        text: "partial ".into(),
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Stored but never streamed: the plugin died here, after an approval.
    s.store(EventKind::AssistantText {
        message_id: None,
        text: "partial answer".into(),
    })
    .await;
    for (from, to) in [
        (SessionState::Running, SessionState::AwaitingApproval),
        (SessionState::AwaitingApproval, SessionState::Running),
    ] {
        s.store(EventKind::StatusChanged {
            from,
            to,
            prompt_id: Some("p7".into()),
        })
        .await;
    }
    s.store(EventKind::AssistantText {
        message_id: None,
        text: "after the approval".into(),
    })
    .await;
    s.task.abort();
    s.rig.worker.abort();
    let sink = s.rig.sink.clone();
    let root_id = s.rig.root_id.clone();
    let before = turn_posts(&sink, &root_id);
    assert!(
        before[0].message.contains("Working"),
        "{}",
        before[0].message
    );
    let closed = close_cut_turns(&s.rig.outbox, "bot", |_| true)
        .await
        .unwrap();
    assert_eq!(closed, 1);
    let worker = tokio::spawn(s.rig.outbox.clone().run());
    settle(&s.rig.outbox).await;
    worker.abort();
    let after = turn_posts(&sink, &root_id);
    assert_eq!(after.len(), 1);
    assert!(
        after[0].message.starts_with("partial answer"),
        "{}",
        after[0].message
    );
    assert!(
        !after[0].message.contains("Working"),
        "{}",
        after[0].message
    );
    assert!(
        after[0].message.contains("after the approval"),
        "{}",
        after[0].message
    );
    assert!(
        after[0].message.contains(PLUGIN_STOPPED),
        "{}",
        after[0].message
    );
    // Both versions name the turn's prompt: the closing replaces the props whole.
    for post in [&before[0], &after[0]] {
        assert_eq!(post.r#type, post_props::POST_TYPE);
        assert_eq!(
            prop(post, post_props::PROP_TURN),
            Some(Any::String("p7".into()))
        );
        assert_eq!(
            prop(post, post_props::PROP_SESSION),
            Some(Any::String("s1".into()))
        );
    }
    // Closed for good: the next start has nothing to close.
    assert_eq!(
        close_cut_turns(&s.rig.outbox, "bot", |_| true)
            .await
            .unwrap(),
        0
    );
}

/// The actor's queue dies with the plugin: at the next start, the queue lines it left saying
/// "⏳ Queued" say the prompts were not run, quoting what they showed.
#[tokio::test(start_paused = true)]
async fn queue_lines_left_by_a_plugin_that_died_say_not_run_at_the_next_start() {
    let s = stream(256).await;
    s.send(EventKind::Prompt {
        prompt_id: "p1".into(),
        author: "alice".into(),
        text: "go".into(),
        words_at: 0,
    })
    .await;
    s.send(EventKind::StatusChanged {
        from: SessionState::Idle,
        to: SessionState::Running,
        prompt_id: Some("p1".into()),
    })
    .await;
    for (id, text) in [("p2", "second: ask (why)"), ("p3", "third")] {
        s.send(EventKind::Prompt {
            prompt_id: id.into(),
            author: "bob".into(),
            text: text.into(),
            words_at: 0,
        })
        .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle(&s.rig.outbox).await;
    // Killed here: no stop event ever closes the lines.
    s.task.abort();
    s.rig.worker.abort();
    let sink = s.rig.sink.clone();
    let lines = |sink: &FakeSink| -> Vec<String> {
        let mut lines: Vec<String> = sink
            .posts()
            .into_iter()
            .map(|(_, p)| p.message)
            .filter(|m| m.contains("Queued") || m.contains("Not run"))
            .collect();
        lines.sort();
        lines
    };
    assert_eq!(
        lines(&sink),
        [
            "⏳ Queued (1st): second: ask (why)",
            "⏳ Queued (2nd): third"
        ]
    );
    assert_eq!(
        close_lost_queue_lines(&s.rig.outbox, |_| true)
            .await
            .unwrap(),
        2
    );
    let worker = tokio::spawn(s.rig.outbox.clone().run());
    settle(&s.rig.outbox).await;
    worker.abort();
    assert_eq!(
        lines(&sink),
        [
            "✗ Not run (the plugin restarted; send it again): second: ask (why)",
            "✗ Not run (the plugin restarted; send it again): third"
        ]
    );
    // Closed for good: the next start has nothing to close.
    assert_eq!(
        close_lost_queue_lines(&s.rig.outbox, |_| true)
            .await
            .unwrap(),
        0
    );
}

/// A Bash call with `lines` lines of output, then the end of the turn.
async fn bash_turn(lines: usize, fail_uploads: u32) -> (Arc<FakeSink>, String) {
    let s = stream(256).await;
    s.rig
        .sink
        .fail_uploads
        .store(fail_uploads, Ordering::SeqCst);
    s.send(EventKind::ToolUse {
        tool_use_id: "t1".into(),
        tool: "Bash".into(),
        input: serde_json::json!({"command": "seq"}),
    })
    .await;
    let out: String = (1..=lines).map(|i| format!("{i}\n")).collect();
    s.send(EventKind::ToolResult {
        tool_use_id: "t1".into(),
        is_error: false,
        content: out.clone(),
        file_path: None,
        patch: None,
        stdout: Some(out),
        stderr: None,
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.send(result()).await;
    let root_id = s.rig.root_id.clone();
    let (sink, ..) = s.finish().await;
    (sink, root_id)
}

/// The last text of the turn post.
fn turn_text(sink: &FakeSink, root_id: &str) -> String {
    turn_posts(sink, root_id)[0].message.clone()
}

#[tokio::test(start_paused = true)]
async fn long_tool_output_is_uploaded_once_and_attached_in_a_reply() {
    let (sink, root_id) = bash_turn(100, 0).await;
    let uploads = sink.uploads.lock().unwrap().clone();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    let (channel, name, bytes, file_id) = &uploads[0];
    assert_eq!((channel.as_str(), name.as_str()), ("c1", "bash-output.txt"));
    assert_eq!(bytes.len(), 291);
    let posts = sink.posts();
    let with_file: Vec<&Post> = posts
        .iter()
        .map(|(_, p)| p)
        .filter(|p| !p.file_ids.is_empty())
        .collect();
    assert_eq!(with_file.len(), 1, "{posts:?}");
    let reply = with_file[0];
    assert_eq!(reply.file_ids, [file_id.as_str()]);
    assert_eq!(reply.root_id, root_id);
    assert_eq!(reply.message, "Output of `Bash` attached");
    // The reply comes after the turn post, which keeps a one-line summary.
    let turn_at = posts
        .iter()
        .position(|(_, p)| p.root_id == root_id)
        .unwrap();
    let reply_at = posts
        .iter()
        .position(|(_, p)| !p.file_ids.is_empty())
        .unwrap();
    assert!(turn_at < reply_at);
    let text = turn_text(&sink, &root_id);
    assert!(
        text.contains("📎 `bash-output.txt` attached (100 lines, 291 B)"),
        "{text}"
    );
    assert!(!text.contains("\n40\n"), "{text}");
    assert!(text.contains("✓ Done"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn short_tool_output_stays_inline_and_uploads_nothing() {
    let (sink, root_id) = bash_turn(3, 0).await;
    assert!(sink.uploads.lock().unwrap().is_empty());
    assert!(sink.posts().iter().all(|(_, p)| p.file_ids.is_empty()));
    let text = turn_text(&sink, &root_id);
    assert!(text.contains("```\n1\n2\n3\n```"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_upload_falls_back_to_truncated_inline_output() {
    let (sink, root_id) = bash_turn(100, UPLOAD_ATTEMPTS).await;
    assert!(sink.uploads.lock().unwrap().is_empty());
    assert!(sink.posts().iter().all(|(_, p)| p.file_ids.is_empty()));
    let text = turn_text(&sink, &root_id);
    assert!(!text.contains("📎"), "{text}");
    assert!(text.contains("\n40\n"), "{text}");
    assert!(text.contains("output truncated: 40 of 100 lines"), "{text}");
}

/// Shutdown: a stream told to stop posts the events already published (here the stop that
/// closes its turn) and ends; one that does not end by the deadline is cut there, not before.
#[tokio::test(start_paused = true)]
async fn shutdown_drains_the_streams_until_a_deadline() {
    let s = stream(256).await;
    s.send(EventKind::TextDelta {
        text: "half".into(),
    })
    .await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    s.send(EventKind::StatusChanged {
        from: SessionState::Running,
        to: SessionState::Stopping,
        prompt_id: None,
    })
    .await;
    s.stop.send_replace(true);
    let stuck = tokio::spawn(std::future::pending::<()>());
    let slow = tokio::spawn(tokio::time::sleep(Duration::from_millis(1500)));
    let start = Instant::now();
    let cut = drain(vec![s.task, slow, stuck], start + Duration::from_secs(2)).await;
    assert_eq!(cut, 1, "only the stuck task is cut");
    assert_eq!(Instant::now() - start, Duration::from_secs(2));
    settle(&s.rig.outbox).await;
    let text = turn_text(&s.rig.sink, &s.rig.root_id);
    assert!(text.contains(STOPPED), "{text}");
}

/// An ExitPlanMode request with a plan of `chars` characters: the card and what was uploaded.
async fn plan_card(chars: usize) -> (SlackAttachment, Vec<Post>, usize) {
    let s = stream(256).await;
    let plan = format!("# Plan\n{}", "x".repeat(chars));
    s.send(EventKind::ToolUseRequested {
        request_id: "r1".into(),
        tool_use_id: Some("t1".into()),
        tool: "ExitPlanMode".into(),
        input: serde_json::json!({"plan": plan, "planFilePath": "/h/.claude/plans/p.md"}),
        description: None,
        reason: None,
        requires_user_interaction: true,
    })
    .await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let (sink, cards, _rig) = s.finish().await;
    assert!(cards.lock().unwrap()[&("s1".to_owned(), "r1".to_owned())]
        .interaction
        .is_some());
    let posts: Vec<Post> = sink.posts().into_iter().map(|(_, p)| p).collect();
    let card = posts
        .iter()
        .find_map(|p| p.props_attachments())
        .expect("a card");
    let files = posts
        .iter()
        .filter(|p| !p.file_ids.is_empty())
        .cloned()
        .collect();
    let uploads = sink.uploads.lock().unwrap().len();
    (card, files, uploads)
}

#[tokio::test(start_paused = true)]
async fn a_plan_is_a_card_and_a_long_one_follows_whole_as_a_file() {
    let (card, files, uploads) = plan_card(100).await;
    assert!(card.text.starts_with("# Plan\nxxx"), "{}", card.text);
    let ids: Vec<&str> = card.actions.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["planstart", "planacceptedits", "plankeep"]);
    assert_eq!((files.len(), uploads), (0, 0));

    let (card, files, uploads) = plan_card(crate::chat::question::PLAN_SHOWN_MAX + 1).await;
    assert!(card.text.contains("plan.md"), "{}", card.text);
    assert_eq!((files.len(), uploads), (1, 1));
    assert_eq!(files[0].message, "The whole plan");
}

mod ping;
