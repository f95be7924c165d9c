//! Actor and engine tests on the in-process fake CLI. Timers run on tokio's paused clock: the
//! clock only moves when every task waits, so "elapsed ≥ timeout" proves the timer, not luck.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::fake_cli::FakeLauncher;
use super::*;
use crate::claude::SessionStart;
use crate::store::Store;

struct Fixture {
    _dir: TempDir,
    engine: Engine,
    launcher: FakeLauncher,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The idle timeout is a day so that a paused clock, which jumps whenever the test waits on the
/// store's OS thread, cannot reap a session mid-test; the idle test sets its own.
fn config() -> SessionConfig {
    SessionConfig {
        idle_timeout: Duration::from_secs(86_400),
        approval_timeout: Duration::from_secs(60),
        ..SessionConfig::default()
    }
}

/// A fixture with one session started and subscribed to.
async fn started() -> (Fixture, SessionHandle, broadcast::Receiver<SessionEvent>) {
    let f = fixture(config()).await;
    let session = f.engine.start(spec()).await.expect("start");
    let rx = session.subscribe();
    (f, session, rx)
}

async fn fixture(config: SessionConfig) -> Fixture {
    let dir = std::env::temp_dir().join(format!("cc-sessions-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let store = Store::open(&dir.join("engine.db")).await.expect("store");
    let launcher = FakeLauncher::default();
    let engine = Engine::new(store, Arc::new(launcher.clone()), config);
    Fixture {
        _dir: TempDir(dir),
        engine,
        launcher,
    }
}

fn spec() -> SessionSpec {
    SessionSpec {
        channel_id: "chan".into(),
        owner_id: "alice".into(),
        project_path: PathBuf::from("/srv/proj"),
        model: None,
        permission_mode: None,
    }
}

async fn next_event(
    rx: &mut broadcast::Receiver<SessionEvent>,
    want: impl Fn(&EventKind) -> bool,
) -> SessionEvent {
    loop {
        let event = rx.recv().await.expect("event stream open");
        if want(&event.kind) {
            return event;
        }
    }
}

fn is_result(k: &EventKind) -> bool {
    matches!(k, EventKind::TurnResult { .. })
}

fn result_text(e: &SessionEvent) -> String {
    match &e.kind {
        EventKind::TurnResult { text, .. } => text.clone().unwrap_or_default(),
        other => panic!("not a result: {other:?}"),
    }
}

/// Real clock: the test waits on the store's thread, and a paused clock would jump to the idle
/// timeout meanwhile.
#[tokio::test]
async fn prompt_streams_then_results_and_every_event_is_stored_first() {
    let (f, session, mut rx) = started().await;
    session.prompt("hello", "alice").await.expect("prompt");
    let mut seen = Vec::new();
    loop {
        let event = rx.recv().await.expect("event");
        // Durable before published: the row exists by the time we see the event.
        let stored = f
            .engine
            .store()
            .messages(session.id())
            .await
            .expect("messages");
        assert!(
            stored.iter().any(|m| m.seq == event.seq),
            "{event:?} not stored"
        );
        let done = is_result(&event.kind);
        seen.push(event.kind);
        if done {
            break;
        }
    }
    assert!(
        seen.contains(&EventKind::TextDelta {
            text: "hello".into()
        }),
        "{seen:?}"
    );
    assert!(seen
        .iter()
        .any(|k| matches!(k, EventKind::AssistantText { text, .. } if text == "hello")));
    match seen.last() {
        Some(EventKind::TurnResult {
            is_error: false,
            total_cost_usd: Some(c),
            usage: Some(u),
            ..
        }) => {
            assert!(*c > 0.0 && u.output_tokens > 0);
        }
        other => panic!("{other:?}"),
    }
    let status = session.status().await.expect("status");
    assert_eq!(status.state, SessionState::Idle);
    assert!(status.cli_session_id.is_some(), "confirmed by system/init");
}

#[tokio::test(start_paused = true)]
async fn unanswered_approval_expires_into_a_deny_with_a_message() {
    let (f, session, mut rx) = started().await;
    session.prompt("ask Write", "alice").await.expect("prompt");
    let asked = next_event(&mut rx, |k| matches!(k, EventKind::ToolUseRequested { .. })).await;
    let t0 = Instant::now();
    assert_eq!(
        session.status().await.expect("status").state,
        SessionState::AwaitingApproval
    );
    let expired = next_event(&mut rx, |k| {
        matches!(k, EventKind::ToolApprovalExpired { .. })
    })
    .await;
    assert!(
        t0.elapsed() >= Duration::from_secs(60),
        "expired after {:?}",
        t0.elapsed()
    );
    let EventKind::ToolApprovalExpired {
        request_id,
        message,
    } = expired.kind
    else {
        unreachable!()
    };
    assert!(
        matches!(asked.kind, EventKind::ToolUseRequested { request_id: ref r, .. } if *r == request_id)
    );
    let result = next_event(&mut rx, is_result).await;
    assert_eq!(
        result_text(&result),
        format!("denied: {message}"),
        "the CLI got the message"
    );
    // Status first: waiting on the store's thread lets the paused clock jump ahead.
    assert_eq!(
        session.status().await.expect("status").state,
        SessionState::Idle
    );
    let approvals = f
        .engine
        .store()
        .approvals(session.id())
        .await
        .expect("approvals");
    assert_eq!(approvals[0].decision.as_deref(), Some("expired"));
    assert_eq!(approvals[0].reason.as_deref(), Some(message.as_str()));
}

#[tokio::test(start_paused = true)]
async fn approval_answers_reach_the_cli_and_are_recorded() {
    let (f, session, mut rx) = started().await;

    session.prompt("ask Write", "alice").await.expect("prompt");
    let asked = next_event(&mut rx, |k| matches!(k, EventKind::ToolUseRequested { .. })).await;
    let EventKind::ToolUseRequested { request_id, .. } = asked.kind else {
        unreachable!()
    };
    let edited = json!({"file_path": "/p/a.txt", "content": "edited"});
    session
        .approve(&request_id, Decision::AllowWithInput(edited.clone()), "bob")
        .await
        .expect("approve");
    let result = next_event(&mut rx, is_result).await;
    assert_eq!(result_text(&result), format!("allowed {edited}"));

    session.prompt("ask Write", "alice").await.expect("prompt");
    let asked = next_event(&mut rx, |k| matches!(k, EventKind::ToolUseRequested { .. })).await;
    let EventKind::ToolUseRequested {
        request_id: second, ..
    } = asked.kind
    else {
        unreachable!()
    };
    assert!(matches!(
        session
            .approve(&second, Decision::Deny("  ".into()), "bob")
            .await,
        Err(SessionError::EmptyDenyMessage)
    ));
    assert!(matches!(
        session.approve("no-such-id", Decision::Allow, "bob").await,
        Err(SessionError::UnknownApproval(_))
    ));
    session
        .approve(&second, Decision::Deny("not in prod".into()), "bob")
        .await
        .expect("deny");
    let result = next_event(&mut rx, is_result).await;
    assert_eq!(result_text(&result), "denied: not in prod");
    // A second click on an answered request is a typed error, not a second answer.
    assert!(matches!(
        session.approve(&second, Decision::Allow, "carol").await,
        Err(SessionError::UnknownApproval(_))
    ));

    let approvals = f
        .engine
        .store()
        .approvals(session.id())
        .await
        .expect("approvals");
    let decisions: Vec<_> = approvals
        .iter()
        .map(|a| (a.decision.as_deref(), a.decided_by.as_deref()))
        .collect();
    assert!(decisions.contains(&(Some("allow_with_input"), Some("bob"))));
    assert!(decisions.contains(&(Some("deny"), Some("bob"))));
    let audit = f.engine.store().audit_entries().await.expect("audit");
    assert!(audit.iter().any(|a| a.action == "deny" && a.actor == "bob"));
}

/// An answer the store could not keep leaves its request pending: a later answer still reaches
/// the CLI, instead of the CLI waiting on a request nobody can answer until it expires. Real
/// clock: the test waits on the store's thread, and a paused clock would expire the request.
#[tokio::test]
async fn an_answer_the_store_refused_leaves_the_request_pending() {
    let (f, session, mut rx) = started().await;
    session.prompt("ask Write", "alice").await.expect("prompt");
    let asked = next_event(&mut rx, |k| matches!(k, EventKind::ToolUseRequested { .. })).await;
    let EventKind::ToolUseRequested { request_id, .. } = asked.kind else {
        unreachable!()
    };
    let read_only = |on: bool| {
        f.engine.store().call(move |c| {
            c.execute_batch(&format!("PRAGMA query_only = {on}"))?;
            Ok(())
        })
    };
    read_only(true).await.expect("read-only");
    let refused = session.approve(&request_id, Decision::Allow, "bob").await;
    assert!(
        matches!(refused, Err(SessionError::Store(_))),
        "{refused:?}"
    );
    read_only(false).await.expect("writable");
    session
        .approve(&request_id, Decision::Allow, "bob")
        .await
        .expect("still pending");
    let result = next_event(&mut rx, is_result).await;
    assert!(result_text(&result).starts_with("allowed"), "{result:?}");
}

#[tokio::test(start_paused = true)]
async fn interrupt_withdraws_a_pending_approval_and_the_next_prompt_runs() {
    let (_f, session, mut rx) = started().await;
    assert!(matches!(
        session.interrupt("alice").await,
        Err(SessionError::Illegal(IllegalTransition {
            input: SessionInput::Interrupt,
            ..
        }))
    ));
    session.prompt("ask Bash", "alice").await.expect("prompt");
    next_event(&mut rx, |k| matches!(k, EventKind::ToolUseRequested { .. })).await;
    session.interrupt("alice").await.expect("interrupt");
    next_event(&mut rx, |k| {
        matches!(k, EventKind::ToolApprovalCancelled { .. })
    })
    .await;
    let result = next_event(&mut rx, is_result).await;
    assert!(matches!(
        result.kind,
        EventKind::TurnResult { is_error: true, .. }
    ));
    let status = session.status().await.expect("status");
    assert_eq!(
        (status.state, status.pending_approvals.len()),
        (SessionState::Idle, 0)
    );
    session.prompt("after", "alice").await.expect("prompt");
    assert_eq!(result_text(&next_event(&mut rx, is_result).await), "after");
}

#[tokio::test(start_paused = true)]
async fn prompts_sent_during_a_turn_are_queued_and_answered_in_order() {
    let (_f, session, mut rx) = started().await;
    let ids = [
        session.prompt("one", "a").await.expect("prompt"),
        session.prompt("two", "b").await.expect("prompt"),
        session.prompt("three", "c").await.expect("prompt"),
    ];
    for (id, text) in ids.iter().zip(["one", "two", "three"]) {
        // Each turn starts named by its prompt, in the order they were sent.
        let running = next_event(&mut rx, |k| {
            matches!(
                k,
                EventKind::StatusChanged {
                    to: SessionState::Running,
                    ..
                }
            )
        })
        .await;
        let EventKind::StatusChanged { prompt_id, .. } = running.kind else {
            unreachable!()
        };
        assert_eq!(prompt_id.as_deref(), Some(id.as_str()));
        let result = next_event(&mut rx, is_result).await;
        let EventKind::TurnResult {
            prompt_id,
            text: got,
            ..
        } = result.kind
        else {
            unreachable!()
        };
        assert_eq!(
            (prompt_id.as_deref(), got.as_deref()),
            (Some(id.as_str()), Some(text))
        );
    }
}

/// A prompt of `mb` MB of base64 image data.
fn with_image(text: &str, mb: usize) -> PromptContent {
    PromptContent {
        text: text.into(),
        images: vec![PromptImage {
            media_type: crate::claude::ImageMediaType::Png,
            base64: "A".repeat(mb << 20),
        }],
        words_at: 0,
    }
}

#[tokio::test(start_paused = true)]
async fn the_queue_behind_a_waiting_turn_is_bounded_in_prompts_and_image_bytes() {
    let (_f, session, mut rx) = started().await;
    // The turn waits on a card: everything sent meanwhile queues.
    session.prompt("ask Write", "alice").await.expect("prompt");
    next_event(&mut rx, |k| matches!(k, EventKind::ToolUseRequested { .. })).await;
    for i in 0..6 {
        session
            .prompt(with_image(&format!("img {i}"), 10), "bob")
            .await
            .expect("queued");
    }
    // 60 MB of images wait: 10 MB more would pass 64 MB, text alone still queues.
    let refused = session.prompt(with_image("one more", 10), "bob").await;
    assert!(
        matches!(refused, Err(SessionError::QueuedImagesFull(b)) if b == 60 << 20),
        "{refused:?}"
    );
    for i in 6..actor::MAX_QUEUED_PROMPTS {
        session
            .prompt(format!("text {i}"), "bob")
            .await
            .expect("queued");
    }
    let refused = session.prompt("eleventh", "bob").await.unwrap_err();
    assert!(matches!(refused, SessionError::QueueFull));
    assert_eq!(
        refused.to_string(),
        "10 prompts are already waiting in this session; send it again when they have run"
    );
    let status = session.status().await.expect("status");
    assert_eq!(status.queued_prompts.len(), actor::MAX_QUEUED_PROMPTS);
    assert!(!status
        .queued_prompts
        .iter()
        .any(|p| p == "eleventh" || p == "one more"));
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_stops_the_process_and_the_next_prompt_resumes() {
    let f = fixture(SessionConfig {
        idle_timeout: Duration::from_secs(300),
        ..config()
    })
    .await;
    let session = f.engine.start(spec()).await.expect("start");
    let mut rx = session.subscribe();
    session.prompt("first", "alice").await.expect("prompt");
    next_event(&mut rx, is_result).await;
    let t0 = Instant::now();
    next_event(&mut rx, |k| {
        matches!(
            k,
            EventKind::StatusChanged {
                to: SessionState::Stopped,
                ..
            }
        )
    })
    .await;
    assert!(
        t0.elapsed() >= Duration::from_secs(300),
        "reaped after {:?}",
        t0.elapsed()
    );
    let cli_id = session
        .status()
        .await
        .expect("status")
        .cli_session_id
        .expect("cli id");
    session.prompt("second", "alice").await.expect("prompt");
    assert_eq!(result_text(&next_event(&mut rx, is_result).await), "second");
    let specs = f.launcher.specs.lock().expect("specs").clone();
    assert_eq!(specs.len(), 2);
    assert_eq!(
        specs[1].session,
        SessionStart::Resume(cli_id.parse().expect("uuid"))
    );
}

/// Settings saved while a session lives apply to what starts next: here its next idle period.
#[tokio::test(start_paused = true)]
async fn a_new_idle_timeout_applies_to_a_live_session() {
    let (f, session, mut rx) = started().await;
    f.engine.set_config(SessionConfig {
        idle_timeout: Duration::from_secs(120),
        ..config()
    });
    assert_eq!(f.engine.config().idle_timeout, Duration::from_secs(120));
    session.prompt("first", "alice").await.expect("prompt");
    next_event(&mut rx, is_result).await;
    let t0 = Instant::now();
    next_event(&mut rx, |k| {
        matches!(
            k,
            EventKind::StatusChanged {
                to: SessionState::Stopped,
                ..
            }
        )
    })
    .await;
    let waited = t0.elapsed();
    // Not the day the session started with.
    assert!(
        waited >= Duration::from_secs(120) && waited < Duration::from_secs(600),
        "reaped after {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_reports_exit_and_stderr_then_restarts_with_resume() {
    let (f, session, mut rx) = started().await;
    session.prompt("hi", "alice").await.expect("prompt");
    next_event(&mut rx, is_result).await;
    session.prompt("crash", "alice").await.expect("prompt");
    let crashed = next_event(&mut rx, |k| matches!(k, EventKind::Crashed { .. })).await;
    match crashed.kind {
        EventKind::Crashed {
            exit_code,
            stderr_tail,
            dropped_prompts,
            ..
        } => {
            assert_eq!(exit_code, Some(3));
            assert_eq!(stderr_tail, vec!["fatal: something broke", "bye"]);
            assert_eq!(dropped_prompts, 0);
        }
        _ => unreachable!(),
    }
    assert_eq!(
        session.status().await.expect("status").state,
        SessionState::Crashed
    );
    session.prompt("again", "alice").await.expect("restart");
    assert_eq!(result_text(&next_event(&mut rx, is_result).await), "again");
    let specs = f.launcher.specs.lock().expect("specs").clone();
    assert!(matches!(
        specs.last().map(|s| s.session),
        Some(SessionStart::Resume(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn garbage_on_stdout_is_reported_and_skipped() {
    let (_f, session, mut rx) = started().await;
    session.prompt("garbage", "alice").await.expect("prompt");
    let error = next_event(&mut rx, |k| matches!(k, EventKind::Error { .. })).await;
    assert!(matches!(
        error.kind,
        EventKind::Error {
            error: SessionErrorKind::GarbageLine,
            ..
        }
    ));
    assert_eq!(
        result_text(&next_event(&mut rx, is_result).await),
        "garbage"
    );
}

#[tokio::test(start_paused = true)]
async fn stop_then_prompt_resumes_and_a_failed_respawn_is_a_typed_error() {
    let (f, session, mut rx) = started().await;
    session.prompt("hi", "alice").await.expect("prompt");
    next_event(&mut rx, is_result).await;
    session.stop("alice").await.expect("stop");
    assert_eq!(
        session.status().await.expect("status").state,
        SessionState::Stopped
    );
    *f.launcher.fail.lock().expect("lock") = true;
    assert!(matches!(
        session.prompt("x", "alice").await,
        Err(SessionError::Spawn(_))
    ));
    assert_eq!(
        session.status().await.expect("status").state,
        SessionState::Stopped
    );
    *f.launcher.fail.lock().expect("lock") = false;
    session.prompt("back", "alice").await.expect("prompt");
    assert_eq!(result_text(&next_event(&mut rx, is_result).await), "back");
}

#[tokio::test(start_paused = true)]
async fn recovery_withdraws_approvals_left_pending_by_a_crash() {
    let (f, session, mut rx) = started().await;
    session.prompt("ask Write", "alice").await.expect("prompt");
    let asked = next_event(&mut rx, |k| matches!(k, EventKind::ToolUseRequested { .. })).await;
    let EventKind::ToolUseRequested { request_id, .. } = asked.kind else {
        unreachable!()
    };
    let id = session.id().to_owned();
    let store = f.engine.store().clone();
    // No stop: the engine just goes away, as when the plugin process is killed.
    drop((session, rx));
    drop(f.engine);
    let engine = Engine::new(store.clone(), Arc::new(f.launcher.clone()), config());
    let recovered = engine.recover_from_store().await.expect("recover");
    assert_eq!(recovered.sessions, vec![id.clone()]);
    assert_eq!(recovered.withdrawn.len(), 1, "{:?}", recovered.withdrawn);
    assert_eq!(recovered.withdrawn[0].request_id, request_id);
    assert_eq!(recovered.withdrawn[0].session_id, id);
    let approvals = store.approvals(&id).await.expect("approvals");
    assert_eq!(approvals[0].decision.as_deref(), Some("cancelled"));
    // A second recovery (another restart) has nothing left to withdraw.
    let again = Engine::new(store, Arc::new(f.launcher.clone()), config());
    assert!(again
        .recover_from_store()
        .await
        .expect("recover")
        .withdrawn
        .is_empty());
}

#[tokio::test(start_paused = true)]
async fn recover_from_store_makes_live_sessions_resumable() {
    let (f, session, mut rx) = started().await;
    session.prompt("hi", "alice").await.expect("prompt");
    next_event(&mut rx, is_result).await;
    let id = session.id().to_owned();
    let store = f.engine.store().clone();
    drop((session, rx));
    drop(f.engine);
    let engine = Engine::new(store, Arc::new(f.launcher.clone()), config());
    assert_eq!(
        engine.recover_from_store().await.expect("recover").sessions,
        vec![id.clone()]
    );
    let session = engine.get(&id).expect("recovered");
    assert_eq!(
        session.status().await.expect("status").state,
        SessionState::Stopped
    );
    let mut rx = session.subscribe();
    session.prompt("remember?", "alice").await.expect("prompt");
    assert_eq!(
        result_text(&next_event(&mut rx, is_result).await),
        "remember?"
    );
    let specs = f.launcher.specs.lock().expect("specs").clone();
    assert!(matches!(
        specs.last().map(|s| s.session),
        Some(SessionStart::Resume(_))
    ));
    engine.stop_all().await;
    assert_eq!(engine.list().await[0].state, SessionState::Stopped);
}

/// Real clock: the change waits on the store's thread.
#[tokio::test]
async fn live_mode_and_model_changes_reach_the_cli_and_are_stored_and_audited() {
    let (f, session, mut rx) = started().await;
    session.prompt("hi", "alice").await.expect("prompt");
    next_event(&mut rx, is_result).await;
    session
        .set_permission_mode(crate::claude::PermissionMode::AcceptEdits, "bob")
        .await
        .expect("mode");
    session.set_model("sonnet", "bob").await.expect("model");
    let refused = session.set_model("bogus", "bob").await;
    assert!(
        matches!(&refused, Err(SessionError::Refused(e)) if e.contains("bogus")),
        "{refused:?}"
    );
    let row = f
        .engine
        .store()
        .session(session.id())
        .await
        .expect("row")
        .expect("exists");
    assert_eq!(row.model.as_deref(), Some("sonnet"));
    assert_eq!(row.permission_mode.as_deref(), Some("acceptEdits"));
    let audit = f.engine.store().audit_entries().await.expect("audit");
    let changes: Vec<(&str, &str, String)> = audit
        .iter()
        .filter(|a| a.action.starts_with("set_"))
        .map(|a| {
            (
                a.actor.as_str(),
                a.action.as_str(),
                a.detail["value"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            ("bob", "set_permission_mode", "\"acceptEdits\"".to_owned()),
            ("bob", "set_model", "\"sonnet\"".to_owned()),
        ]
    );
    // The session still works, and a restart (resume) uses the stored values.
    session.prompt("after", "alice").await.expect("prompt");
    assert_eq!(result_text(&next_event(&mut rx, is_result).await), "after");
    session.stop("alice").await.expect("stop");
    session.prompt("resumed", "alice").await.expect("prompt");
    next_event(&mut rx, is_result).await;
    let last = f
        .launcher
        .specs
        .lock()
        .expect("specs")
        .last()
        .cloned()
        .expect("spec");
    assert_eq!(last.model.as_deref(), Some("sonnet"));
    assert_eq!(
        last.permission_mode,
        Some(crate::claude::PermissionMode::AcceptEdits)
    );
}

#[tokio::test]
async fn changes_on_a_stopped_session_are_stored_for_the_next_spawn() {
    let f = fixture(config()).await;
    let session = f.engine.start(spec()).await.expect("start");
    session.stop("alice").await.expect("stop");
    session
        .set_permission_mode(crate::claude::PermissionMode::Plan, "alice")
        .await
        .expect("mode");
    // Not checked by anyone while stopped: the next spawn's CLI decides.
    session.set_model("bogus", "alice").await.expect("model");
    assert_eq!(
        session.status().await.expect("status").state,
        SessionState::Stopped
    );
    let row = f
        .engine
        .store()
        .session(session.id())
        .await
        .expect("row")
        .expect("exists");
    assert_eq!(row.model.as_deref(), Some("bogus"));
    assert_eq!(row.permission_mode.as_deref(), Some("plan"));
    let mut rx = session.subscribe();
    session.prompt("again", "alice").await.expect("prompt");
    next_event(&mut rx, is_result).await;
    let last = f
        .launcher
        .specs
        .lock()
        .expect("specs")
        .last()
        .cloned()
        .expect("spec");
    assert_eq!(last.model.as_deref(), Some("bogus"));
    assert_eq!(
        last.permission_mode,
        Some(crate::claude::PermissionMode::Plan)
    );
}

/// A crash of the plugin left a session's CLI running, with a command in a session of its own:
/// recovery kills that tree, found by the pid and start time stored for the session. A stored
/// pid that now names a process started at another time (the pid was reused) is left alone.
/// Real clock: real processes.
#[tokio::test]
async fn recovery_kills_what_a_crashed_run_left_running() {
    use crate::proctree::ProcessIdentity;
    use std::io::BufRead;
    let f = fixture(config()).await;
    let crashed = f.engine.start(spec()).await.expect("start").id().to_owned();
    let other = f
        .engine
        .start(SessionSpec {
            channel_id: "chan-2".into(),
            ..spec()
        })
        .await
        .expect("start")
        .id()
        .to_owned();
    let store = f.engine.store().clone();
    drop(f.engine);
    // The CLI left behind: its command runs in a session of its own, out of its group's reach.
    let mut left = std::process::Command::new("sh")
        .args(["-c", "setsid sleep 300 & echo $!; exec sleep 300"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sh");
    let mut line = String::new();
    std::io::BufReader::new(left.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("pid line");
    let command_pid: i32 = line.trim().parse().expect("pid");
    let cli = ProcessIdentity::of(i32::try_from(left.id()).expect("pid")).expect("alive");
    let command = ProcessIdentity::of(command_pid).expect("alive");
    store
        .set_session_process(&crashed, cli.clone())
        .await
        .expect("record");
    let mut bystander = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .expect("sleep");
    let live = ProcessIdentity::of(i32::try_from(bystander.id()).expect("pid")).expect("alive");
    let reused = ProcessIdentity {
        start: live.start.saturating_sub(1),
        ..live.clone()
    };
    store
        .set_session_process(&other, reused)
        .await
        .expect("record");

    let engine = Engine::new(store, Arc::new(f.launcher.clone()), config());
    let recovered = engine.recover_from_store().await.expect("recover");
    let cli_alive = cli.is_alive();
    // SIGKILL is delivered asynchronously: give the command a moment to be gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while command.is_alive() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (command_alive, bystander_alive) = (command.is_alive(), live.is_alive());
    let _ = bystander.kill();
    let _ = bystander.wait();
    let _ = left.kill();
    let _ = left.wait();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(command.pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert_eq!(recovered.sessions.len(), 2);
    assert!(!cli_alive, "the CLI left running was killed");
    assert!(!command_alive, "its command in its own session was killed");
    assert!(
        bystander_alive,
        "a process with a reused pid was left alone"
    );
}

/// The engine's observers (the metrics) miss nothing, however far behind they fall: with a
/// buffer of one event and nobody reading through five turns, the observer still gets every
/// stored event of the session, in order.
#[tokio::test]
async fn an_engine_observer_that_reads_late_misses_no_event() {
    let f = fixture(SessionConfig {
        event_capacity: 1,
        ..config()
    })
    .await;
    let mut observer = f.engine.observe();
    let session = f.engine.start(spec()).await.expect("start");
    for i in 0..5 {
        session
            .prompt(&format!("p{i}"), "alice")
            .await
            .expect("prompt");
    }
    let stored = loop {
        let rows = f.engine.store().messages(session.id()).await.expect("rows");
        if rows.iter().filter(|r| r.kind == "result").count() == 5 {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let last = stored.last().map(|r| r.seq).expect("stored events");
    let mut got = Vec::new();
    while got.last().copied() != Some(last) {
        let event = tokio::time::timeout(Duration::from_secs(5), observer.recv())
            .await
            .expect("no event missing")
            .expect("engine alive");
        if event.seq >= 0 {
            got.push(event.seq);
        }
    }
    let every: Vec<i64> = stored.iter().map(|r| r.seq).collect();
    assert_eq!(got, every, "every stored event, in order, none twice");
}

/// A feed that falls far behind a broadcast buffer of one event still delivers every stored
/// event, in order: what the buffer dropped is read from the store. Real clock: the test waits
/// on the store's thread.
#[tokio::test]
async fn a_lagging_feed_reads_what_it_missed_from_the_store() {
    let f = fixture(SessionConfig {
        event_capacity: 1,
        ..config()
    })
    .await;
    let session = f.engine.start(spec()).await.expect("start");
    let mut feed = session.feed();
    let mut lagging = session.subscribe();
    for i in 0..5 {
        session
            .prompt(&format!("p{i}"), "alice")
            .await
            .expect("prompt");
    }
    // Nobody reads while the five turns run.
    let stored = loop {
        let rows = f.engine.store().messages(session.id()).await.expect("rows");
        if rows.iter().filter(|r| r.kind == "result").count() == 5 {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The plain receiver lost events.
    assert!(matches!(
        lagging.recv().await,
        Err(broadcast::error::RecvError::Lagged(_))
    ));
    let mut got = Vec::new();
    while got.last().copied() != stored.last().map(|r| r.seq) {
        let event = tokio::time::timeout(Duration::from_secs(5), feed.recv())
            .await
            .expect("no event missing")
            .expect("feed open");
        got.push(event.seq);
    }
    let expected: Vec<i64> = stored
        .iter()
        .map(|r| r.seq)
        .filter(|s| *s >= got[0])
        .collect();
    assert_eq!(got, expected);
    let results = stored
        .iter()
        .filter(|r| r.kind == "result" && r.seq >= got[0])
        .count();
    assert_eq!(results, 5);
}
