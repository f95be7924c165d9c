use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::sessions::events::SessionErrorKind;
use SessionState::*;

fn ev(session: &str, at: i64, kind: EventKind) -> SessionEvent {
    SessionEvent {
        session_id: session.into(),
        seq: 0,
        at,
        kind,
    }
}

fn status(from: SessionState, to: SessionState) -> EventKind {
    EventKind::StatusChanged {
        from,
        to,
        prompt_id: None,
    }
}

fn prompt() -> EventKind {
    EventKind::Prompt {
        prompt_id: "p".into(),
        author: "u1".into(),
        text: "hello".into(),
        words_at: 0,
    }
}

fn delta() -> EventKind {
    EventKind::TextDelta { text: "he".into() }
}

fn text() -> EventKind {
    EventKind::AssistantText {
        message_id: None,
        text: "hello".into(),
    }
}

fn requested(id: &str) -> EventKind {
    EventKind::ToolUseRequested {
        request_id: id.into(),
        tool_use_id: None,
        tool: "Bash".into(),
        input: json!({"command": "ls"}),
        description: None,
        reason: None,
        requires_user_interaction: false,
    }
}

fn turn(is_error: bool) -> EventKind {
    EventKind::TurnResult {
        prompt_id: None,
        is_error,
        subtype: "success".into(),
        text: None,
        terminal_reason: None,
        total_cost_usd: None,
        usage: None,
        duration_ms: None,
        num_turns: None,
        api_error_status: None,
        denied_tools: vec![],
    }
}

/// The exposition's samples: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn value(m: &Metrics, series: &str) -> f64 {
    let all = samples(&m.encode());
    *all.get(series)
        .unwrap_or_else(|| panic!("no sample {series} in {all:#?}"))
}

/// Two turns of one session (the second prompt queued behind the first), three approval
/// outcomes, a stop and a resume, and a second session interleaved: every count and every
/// histogram sum is what the event stamps say.
#[test]
fn observe_folds_a_scripted_session() {
    let m = Metrics::new();
    m.session_started("s1", 1_000);
    let script = [
        ev("s1", 3_500, status(Starting, Idle)),
        ev("s1", 10_000, prompt()),
        ev("s1", 10_010, status(Idle, Running)),
        ev("s2", 20_000, prompt()),
        ev("s1", 10_750, delta()),
        ev("s1", 10_900, delta()),
        ev("s1", 11_000, text()),
        ev("s1", 11_500, prompt()),
        ev(
            "s1",
            12_000,
            EventKind::ToolUse {
                tool_use_id: "t1".into(),
                tool: "Bash".into(),
                input: json!({}),
            },
        ),
        ev("s2", 20_250, delta()),
        ev("s1", 12_000, requested("r1")),
        ev("s1", 12_001, status(Running, AwaitingApproval)),
        ev(
            "s1",
            42_000,
            EventKind::ToolApproved {
                request_id: "r1".into(),
                by: "u1".into(),
                decision: "allow".into(),
                input: json!({}),
            },
        ),
        ev(
            "s1",
            42_100,
            EventKind::ToolResult {
                tool_use_id: "t1".into(),
                is_error: false,
                content: "ok".into(),
                file_path: None,
                patch: None,
                stdout: None,
                stderr: None,
            },
        ),
        ev("s1", 43_000, turn(false)),
        ev("s1", 45_500, text()),
        ev("s1", 46_000, requested("r2")),
        ev(
            "s1",
            346_000,
            EventKind::ToolApprovalExpired {
                request_id: "r2".into(),
                message: "expired".into(),
            },
        ),
        ev("s1", 346_500, requested("r3")),
        ev(
            "s1",
            347_000,
            EventKind::ToolApprovalCancelled {
                request_id: "r3".into(),
            },
        ),
        ev("s1", 347_500, turn(true)),
        // Asked before anyone watched: an outcome, no wait.
        ev(
            "s1",
            347_600,
            EventKind::ToolDenied {
                request_id: "r0".into(),
                by: "u1".into(),
                message: "no".into(),
                interrupt: false,
            },
        ),
        ev(
            "s1",
            347_700,
            EventKind::Error {
                error: SessionErrorKind::GarbageLine,
                message: "not json".into(),
            },
        ),
        ev("s1", 348_000, status(Idle, Stopping)),
        ev("s1", 349_000, status(Stopping, Stopped)),
        // A prompt resumes it.
        ev("s1", 400_000, status(Stopped, Starting)),
        ev("s1", 401_000, status(Starting, Idle)),
        ev(
            "s1",
            402_000,
            EventKind::Crashed {
                exit_code: Some(1),
                signal: None,
                stderr_tail: vec![],
                dropped_prompts: 0,
            },
        ),
        ev("s1", 402_000, status(Idle, Crashed)),
    ];
    for e in &script {
        m.observe(e);
    }

    let expect = [
        ("claude_code_sessions_started_total", 2.0),
        ("claude_code_cli_spawn_seconds_count", 2.0),
        ("claude_code_cli_spawn_seconds_sum", 3.5),
        ("claude_code_first_text_seconds_count", 3.0),
        ("claude_code_first_text_seconds_sum", 0.75 + 34.0 + 0.25),
        ("claude_code_approval_wait_seconds_count", 3.0),
        ("claude_code_approval_wait_seconds_sum", 30.0 + 300.0 + 0.5),
        ("claude_code_approvals_total{outcome=\"approved\"}", 1.0),
        ("claude_code_approvals_total{outcome=\"denied\"}", 1.0),
        ("claude_code_approvals_total{outcome=\"expired\"}", 1.0),
        ("claude_code_approvals_total{outcome=\"withdrawn\"}", 1.0),
        ("claude_code_turns_total{outcome=\"ok\"}", 1.0),
        ("claude_code_turns_total{outcome=\"error\"}", 1.0),
        ("claude_code_messages_total{kind=\"prompt\"}", 3.0),
        ("claude_code_messages_total{kind=\"assistant\"}", 2.0),
        ("claude_code_messages_total{kind=\"tool_use\"}", 1.0),
        ("claude_code_messages_total{kind=\"tool_result\"}", 1.0),
        ("claude_code_errors_total{kind=\"garbage_line\"}", 1.0),
        ("claude_code_errors_total{kind=\"crashed\"}", 1.0),
        // 2.5 s falls in the 3.2 s bucket, not in the 1.6 s one.
        ("claude_code_cli_spawn_seconds_bucket{le=\"1.6\"}", 1.0),
        ("claude_code_cli_spawn_seconds_bucket{le=\"3.2\"}", 2.0),
    ];
    for (series, want) in expect {
        assert_eq!(value(&m, series), want, "{series}");
    }
    // Only s2, still waiting for its turn to end, is remembered.
    let tracks = m.tracks();
    assert_eq!(tracks.keys().collect::<Vec<_>>(), ["s2"]);
}

/// A turn with no text times nothing, and the next prompt's text is timed from that prompt.
#[test]
fn first_text_belongs_to_its_own_prompt() {
    let m = Metrics::new();
    for e in [
        ev("s", 0, prompt()),
        ev("s", 5_000, turn(true)),
        ev("s", 6_000, prompt()),
        ev("s", 6_500, text()),
    ] {
        m.observe(&e);
    }
    assert_eq!(value(&m, "claude_code_first_text_seconds_count"), 1.0);
    assert_eq!(value(&m, "claude_code_first_text_seconds_sum"), 0.5);
}

/// Every series of the contract is in the text from the start, with its type (the labelled
/// ones once they have a value: hooks and routes are only known when called).
#[test]
fn the_exposition_names_every_series() {
    let m = Metrics::new();
    let fresh = samples(&m.encode());
    assert_eq!(fresh["claude_code_turns_total{outcome=\"error\"}"], 0.0);
    assert_eq!(
        fresh["claude_code_approvals_total{outcome=\"withdrawn\"}"],
        0.0
    );
    m.hook_duration("ServeHTTP", Duration::from_millis(3));
    m.http_request("GET /api/v1/metrics", 403);
    m.http_request("GET /api/v1/metrics", 403);
    m.set_gauges(4, Some(7));
    let text = m.encode();
    for (name, kind) in [
        ("sessions_active", "gauge"),
        ("sessions_started_total", "counter"),
        ("turns_total", "counter"),
        ("messages_total", "counter"),
        ("cli_spawn_seconds", "histogram"),
        ("first_text_seconds", "histogram"),
        ("approval_wait_seconds", "histogram"),
        ("approvals_total", "counter"),
        ("errors_total", "counter"),
        ("hook_duration_seconds", "histogram"),
        ("outbox_backlog", "gauge"),
        ("http_requests_total", "counter"),
    ] {
        let line = format!("# TYPE claude_code_{name} {kind}\n");
        assert!(text.contains(&line), "{line:?} missing from\n{text}");
    }
    let s = samples(&text);
    assert_eq!(s["claude_code_sessions_active"], 4.0);
    assert_eq!(s["claude_code_outbox_backlog"], 7.0);
    assert_eq!(
        s["claude_code_http_requests_total{route=\"GET /api/v1/metrics\",status=\"403\"}"],
        2.0
    );
    assert_eq!(
        s["claude_code_hook_duration_seconds_sum{hook=\"ServeHTTP\"}"],
        0.003
    );
    // An unknown backlog keeps the last known one.
    m.set_gauges(0, None);
    assert_eq!(value(&m, "claude_code_outbox_backlog"), 7.0);
    assert_eq!(value(&m, "claude_code_sessions_active"), 0.0);
}
