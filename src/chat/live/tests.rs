use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::json;
use tokio::sync::broadcast;

use super::*;
use crate::chat::test_sink::{rig, Rig};
use crate::sessions::{EventKind, SessionEvent, SessionState};

/// Records what was published; fails the first `fail` publishes.
#[derive(Default)]
struct Recorder {
    published: Mutex<Vec<(String, String, Fields, Instant)>>,
    fail: AtomicU32,
}

impl EventSink for Recorder {
    async fn publish(&self, channel_id: &str, name: &str, payload: Fields) -> Result<(), ApiError> {
        if self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(ApiError::Error("websocket hub busy".into()));
        }
        self.published.lock().unwrap().push((
            channel_id.to_owned(),
            name.to_owned(),
            payload,
            Instant::now(),
        ));
        Ok(())
    }
}

impl Recorder {
    fn events(&self) -> Vec<Value> {
        self.published
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, p, _)| Value::Object(p.clone()))
            .collect()
    }

    fn names(&self) -> Vec<String> {
        self.published
            .lock()
            .unwrap()
            .iter()
            .map(|(_, n, ..)| n.clone())
            .collect()
    }
}

/// A live task of session `s1` (channel `c1`, project `/p`) and the means to feed it.
struct Live {
    tx: broadcast::Sender<SessionEvent>,
    sink: Arc<Recorder>,
    live: LiveEvents,
    task: JoinHandle<()>,
    stop: watch::Sender<bool>,
    next_seq: i64,
}

fn start(store: &Store) -> Live {
    let (tx, rx) = broadcast::channel(1024);
    let (stop, stop_rx) = watch::channel(false);
    let sink = Arc::new(Recorder::default());
    let live = LiveEvents::default();
    let ctx = LiveCtx {
        session_id: "s1".into(),
        channel_id: "c1".into(),
        project_path: Some("/p".into()),
        stop: stop_rx,
    };
    let feed = EventFeed::new("s1".into(), rx, store.clone(), 0);
    let task = live
        .start(sink.clone(), store.clone(), ctx, feed)
        .expect("no task runs yet");
    Live {
        tx,
        sink,
        live,
        task,
        stop,
        next_seq: 1,
    }
}

impl Live {
    /// Publishes `kind` as the session's actor does.
    fn send(&mut self, kind: EventKind) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.tx
            .send(SessionEvent {
                session_id: "s1".into(),
                seq,
                at: 1_000 + seq,
                kind,
            })
            .unwrap();
    }

    fn delta(&mut self, text: &str) {
        self.send(EventKind::TextDelta { text: text.into() });
    }

    /// Ends the session's events and waits for the task.
    async fn finish(self) -> Arc<Recorder> {
        drop(self.tx);
        self.task.await.unwrap();
        self.sink
    }
}

fn status(from: SessionState, to: SessionState) -> EventKind {
    EventKind::StatusChanged {
        from,
        to,
        prompt_id: None,
    }
}

fn bash(id: &str) -> EventKind {
    EventKind::ToolUse {
        tool_use_id: id.into(),
        tool: "Bash".into(),
        input: json!({"command": "ls"}),
    }
}

fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

/// A whole turn: events are published in the order they happened, numbered 1, 2, 3, … in
/// the session, to the session's channel, each with the common fields and nothing nested.
#[tokio::test(start_paused = true)]
async fn a_turn_is_published_in_order_numbered_from_one_and_flat() {
    let rig = rig().await;
    let mut l = start(&rig.store);
    l.send(EventKind::Prompt {
        prompt_id: "q1".into(),
        author: "alice".into(),
        text: "list files".into(),
        words_at: 0,
    });
    l.send(status(SessionState::Idle, SessionState::Running));
    l.delta("Let me ");
    l.delta("look.");
    l.send(bash("t1"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    l.delta("Done.");
    tokio::time::sleep(Duration::from_millis(300)).await;
    l.send(status(SessionState::Running, SessionState::Idle));
    let sink = l.finish().await;
    assert_eq!(
        sink.names(),
        ["prompt", "status", "message", "tool", "message", "status"]
    );
    let events = sink.events();
    assert_eq!(seqs(&events), [1, 2, 3, 4, 5, 6]);
    assert_eq!(events[2]["text"], "Let me look.");
    assert_eq!(events[4]["text"], "Done.");
    for (channel, name, payload, _) in sink.published.lock().unwrap().iter() {
        assert_eq!(channel, "c1");
        assert_eq!(payload["event"], name.as_str());
        assert_eq!(payload["session_id"], "s1");
        assert!(payload["at"].is_i64());
        for (key, value) in payload {
            assert!(
                value.is_string() || value.is_i64() || value.is_boolean(),
                "{name}.{key} = {value}"
            );
        }
    }
}

/// Many deltas within one 100 ms window become ONE message event holding all their text, and a
/// tool call right after them comes after that message.
#[tokio::test(start_paused = true)]
async fn deltas_are_coalesced_every_100_ms_without_losing_text() {
    let rig = rig().await;
    let mut l = start(&rig.store);
    let t0 = Instant::now();
    let mut want = String::new();
    for i in 0..40 {
        let piece = format!("w{i} ");
        want.push_str(&piece);
        l.delta(&piece);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    l.send(bash("t1"));
    // Two seconds of steady deltas, one every 10 ms: about one message per 100 ms.
    let mut later = String::new();
    for i in 0..200 {
        let piece = format!("x{i} ");
        later.push_str(&piece);
        l.delta(&piece);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sink = l.finish().await;
    let published = sink.published.lock().unwrap().clone();
    type Published = (String, String, Fields, Instant);
    let tool = published
        .iter()
        .position(|p| p.1 == "tool")
        .expect("the tool event");
    let (first, rest) = (&published[..tool], &published[tool + 1..]);
    // The first text is not held back: nothing was published before it.
    assert!(
        first[0].3 - t0 < Duration::from_millis(5),
        "{:?}",
        first[0].3 - t0
    );
    let text = |group: &[Published]| -> String {
        assert!(group.iter().all(|(_, n, ..)| n == "message"));
        group
            .iter()
            .map(|(_, _, p, _)| p["text"].as_str().unwrap())
            .collect()
    };
    assert_eq!(text(first), want);
    assert_eq!(text(rest), later);
    assert!(
        (18..=22).contains(&rest.len()),
        "{} messages in 2 s",
        rest.len()
    );
    // After that, at most one publish per 100 ms (the last one is the stop's: what is there).
    let last = published.len() - 1;
    for w in published[..last].windows(2).filter(|w| w[0].3 != w[1].3) {
        assert!(
            w[1].3 - w[0].3 >= Duration::from_millis(90),
            "{:?}",
            w[1].3 - w[0].3
        );
    }
}

/// The numbers go on where they stopped after a restart (the store reopened, a new task).
#[tokio::test(start_paused = true)]
async fn numbering_goes_on_across_a_restart() {
    let rig = rig().await;
    let mut l = start(&rig.store);
    l.send(status(SessionState::Starting, SessionState::Idle));
    l.delta("a");
    let first = l.finish().await;
    assert_eq!(seqs(&first.events()), [1, 2]);
    let reopened = Store::open_inline(&rig.dir.0.join("db")).unwrap();
    let mut l = start(&reopened);
    l.send(status(SessionState::Stopped, SessionState::Starting));
    l.send(status(SessionState::Starting, SessionState::Idle));
    let second = l.finish().await;
    assert_eq!(seqs(&second.events()), [3, 4]);
    assert_eq!(reopened.last_session_event_seq("s1").await.unwrap(), 4);
}

/// A publish that fails does not stop the task, and the replay returns exactly what was
/// published (the missed event included) after any number.
#[tokio::test(start_paused = true)]
async fn a_failed_publish_is_skipped_and_the_replay_holds_every_event_as_published() {
    let rig = rig().await;
    let mut l = start(&rig.store);
    l.sink.fail.store(1, Ordering::SeqCst);
    l.send(status(SessionState::Idle, SessionState::Running));
    tokio::time::sleep(Duration::from_millis(200)).await;
    l.delta("hello");
    l.send(bash("t1"));
    l.send(EventKind::ToolResult {
        tool_use_id: "t1".into(),
        is_error: false,
        content: "a\nb".into(),
        file_path: None,
        patch: None,
        stdout: None,
        stderr: None,
    });
    let sink = l.finish().await;
    let published = sink.events();
    // The first (the status) was lost on the way; the others went out.
    assert_eq!(seqs(&published), [2, 3, 4]);
    let all = events_after(&rig.store, "s1", 0, 100).await.unwrap();
    assert_eq!(seqs(&all), [1, 2, 3, 4]);
    assert_eq!(all[0]["event"], "status");
    assert_eq!(all[1..], published[..]);
    let after_two = events_after(&rig.store, "s1", 2, 100).await.unwrap();
    assert_eq!(after_two, published[1..]);
    let limited = events_after(&rig.store, "s1", 0, 2).await.unwrap();
    assert_eq!(seqs(&limited), [1, 2]);
    assert!(events_after(&rig.store, "s1", 4, 100)
        .await
        .unwrap()
        .is_empty());
}

/// A person's file edit is numbered and published in order with the session's own events,
/// after the text that came before it; a session without a live task says so.
#[tokio::test(start_paused = true)]
async fn a_file_change_from_outside_takes_its_place_in_the_order() {
    let rig = rig().await;
    let mut l = start(&rig.store);
    l.delta("writing");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(l
        .live
        .file_change("s1", "src/a.rs", FileAction::Updated, "u1"));
    assert!(!l
        .live
        .file_change("other", "src/a.rs", FileAction::Deleted, "u1"));
    tokio::time::sleep(Duration::from_millis(10)).await;
    l.send(bash("t1"));
    let live = l.live.clone();
    let sink = l.finish().await;
    assert_eq!(sink.names(), ["message", "file_change", "tool"]);
    let change = &sink.events()[1];
    assert_eq!(change["path"], "src/a.rs");
    assert_eq!(change["action"], "updated");
    assert_eq!(change["by"], "u1");
    assert_eq!(change["seq"], 2);
    // The task ended: nothing takes file changes for the session any more.
    assert!(!live.file_change("s1", "src/a.rs", FileAction::Created, "u1"));
}

/// One session has one live task: a second start would number its events twice.
#[tokio::test(start_paused = true)]
async fn a_second_task_for_a_session_is_not_started() {
    let rig: Rig = rig().await;
    let l = start(&rig.store);
    let (_tx, rx) = broadcast::channel(4);
    let (_stop, stop_rx) = watch::channel(false);
    let again = l.live.start(
        l.sink.clone(),
        rig.store.clone(),
        LiveCtx {
            session_id: "s1".into(),
            channel_id: "c1".into(),
            project_path: None,
            stop: stop_rx,
        },
        EventFeed::new("s1".into(), rx, rig.store.clone(), 0),
    );
    assert!(again.is_none());
    l.finish().await;
}

/// Shutdown: the task publishes the events already there (gathered text included) and ends at
/// once, without waiting for the session's events to end.
#[tokio::test(start_paused = true)]
async fn stop_publishes_what_is_there_and_ends() {
    let rig = rig().await;
    let mut l = start(&rig.store);
    l.delta("last words");
    l.send(status(SessionState::Running, SessionState::Stopping));
    l.stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(1), &mut l.task)
        .await
        .expect("the task ends at the stop")
        .unwrap();
    assert_eq!(l.sink.names(), ["message", "status"]);
}
