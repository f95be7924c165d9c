use serde_json::json;

use super::*;
use crate::claude::messages::PatchHunk;
use crate::sessions::{SessionErrorKind, SessionState};

fn event(kind: EventKind) -> SessionEvent {
    SessionEvent {
        session_id: "s1".into(),
        seq: 1,
        at: 77,
        kind,
    }
}

fn mapper() -> Mapper {
    Mapper::new(Some(PathBuf::from("/p")))
}

/// The events `kinds` become, in order (text pieces as `("text", {"text": …})`).
fn map_all(m: &mut Mapper, kinds: Vec<EventKind>) -> Vec<(&'static str, Value)> {
    kinds
        .into_iter()
        .flat_map(|k| m.map(&event(k)))
        .map(|piece| match piece {
            Piece::Text(t) => ("text", json!({ "text": t })),
            Piece::Event(d) => {
                assert_eq!(d.at, 77);
                (d.name, Value::Object(d.fields))
            }
        })
        .collect()
}

fn tool_use(id: &str, tool: &str, input: Value) -> EventKind {
    EventKind::ToolUse {
        tool_use_id: id.into(),
        tool: tool.into(),
        input,
    }
}

fn tool_result(id: &str, is_error: bool, patch: Option<Vec<PatchHunk>>) -> EventKind {
    EventKind::ToolResult {
        tool_use_id: id.into(),
        is_error,
        content: "ok".into(),
        file_path: None,
        patch,
        stdout: None,
        stderr: None,
    }
}

fn hunk() -> PatchHunk {
    PatchHunk {
        old_start: 1,
        old_lines: 1,
        new_start: 1,
        new_lines: 1,
        lines: vec!["-a".into(), "+b".into()],
    }
}

/// Every value of every event is a string, an integer or a bool.
fn assert_flat(events: &[(&str, Value)]) {
    for (name, fields) in events {
        for (key, value) in fields.as_object().unwrap() {
            assert!(
                value.is_string() || value.is_i64() || value.is_boolean(),
                "{name}.{key} = {value}"
            );
        }
    }
}

#[test]
fn each_session_event_maps_to_the_contract_fields() {
    let mut m = mapper();
    let out = map_all(
        &mut m,
        vec![
            EventKind::StatusChanged {
                from: SessionState::Idle,
                to: SessionState::Running,
                prompt_id: Some("q1".into()),
            },
            EventKind::Prompt {
                prompt_id: "q1".into(),
                author: "alice".into(),
                text: "hi".into(),
                words_at: 0,
            },
            EventKind::ToolUseRequested {
                request_id: "r1".into(),
                tool_use_id: Some("t1".into()),
                tool: "Bash".into(),
                input: json!({"command": "ls", "nested": {"a": [1, 2]}}),
                description: Some("list".into()),
                reason: None,
                requires_user_interaction: false,
            },
            EventKind::ToolDenied {
                request_id: "r1".into(),
                by: "bob".into(),
                message: "no".into(),
                interrupt: true,
            },
            EventKind::ToolApprovalExpired {
                request_id: "r2".into(),
                message: "late".into(),
            },
            EventKind::ToolApprovalCancelled {
                request_id: "r3".into(),
            },
            EventKind::TurnResult {
                prompt_id: Some("q1".into()),
                is_error: false,
                subtype: "success".into(),
                text: Some("done".into()),
                terminal_reason: None,
                total_cost_usd: Some(0.0123),
                usage: serde_json::from_value(json!({"input_tokens": 10, "output_tokens": 5})).ok(),
                duration_ms: Some(3200),
                num_turns: Some(2),
                api_error_status: None,
                denied_tools: Vec::new(),
            },
            EventKind::Error {
                error: SessionErrorKind::StartupTimeout,
                message: "slow".into(),
            },
            EventKind::Crashed {
                exit_code: Some(1),
                signal: None,
                stderr_tail: vec!["boom".into()],
                dropped_prompts: 2,
            },
        ],
    );
    assert_flat(&out);
    let want = [
        (
            "status",
            json!({"state": "running", "previous": "idle", "prompt_id": "q1"}),
        ),
        (
            "prompt",
            json!({"prompt_id": "q1", "author": "alice", "text": "hi"}),
        ),
        (
            "approval",
            json!({"phase": "requested", "approval_id": "r1", "tool_use_id": "t1", "tool": "Bash",
                   "input": r#"{"command":"ls","nested":{"a":[1,2]}}"#, "description": "list"}),
        ),
        (
            "approval",
            json!({"phase": "decided", "approval_id": "r1", "decision": "deny_and_interrupt",
                   "by": "bob", "reason": "no"}),
        ),
        (
            "approval",
            json!({"phase": "expired", "approval_id": "r2", "reason": "late"}),
        ),
        (
            "approval",
            json!({"phase": "withdrawn", "approval_id": "r3"}),
        ),
        (
            "turn",
            json!({"prompt_id": "q1", "is_error": false, "subtype": "success", "duration_ms": 3200,
                   "num_turns": 2, "total_cost_usd": "0.0123", "input_tokens": 10,
                   "output_tokens": 5}),
        ),
        (
            "error",
            json!({"kind": "startup_timeout", "message": "slow"}),
        ),
        (
            "error",
            json!({"kind": "crashed",
                   "message": "Claude Code exited with code 1 unexpectedly; the next prompt resumes",
                   "exit_code": 1, "dropped_prompts": 2}),
        ),
    ];
    assert_eq!(out, want);
}

#[test]
fn tool_results_name_their_tool_and_file_tools_announce_a_file_change() {
    let mut m = mapper();
    let out = map_all(
        &mut m,
        vec![
            // What the CLI reports for a new file (tests/fixtures/cli/write_allow.jsonl):
            // `"type":"create"` with an empty structuredPatch.
            tool_use(
                "t1",
                "Write",
                json!({"file_path": "/p/src/new.rs", "content": "x"}),
            ),
            tool_result("t1", false, Some(Vec::new())),
            tool_use("t2", "Edit", json!({"file_path": "/p/src/old.rs"})),
            tool_result("t2", false, Some(vec![hunk()])),
            tool_use(
                "t3",
                "NotebookEdit",
                json!({"notebook_path": "/elsewhere/n.ipynb"}),
            ),
            tool_result("t3", false, None),
            // A failed edit changed nothing; a Bash call is no file change.
            tool_use("t4", "Edit", json!({"file_path": "/p/x"})),
            tool_result("t4", true, None),
            tool_use("t5", "Bash", json!({"command": "touch /p/y"})),
            tool_result("t5", false, None),
        ],
    );
    assert_flat(&out);
    let changes: Vec<&Value> = out
        .iter()
        .filter(|(name, _)| *name == "file_change")
        .map(|(_, f)| f)
        .collect();
    assert_eq!(
        changes,
        [
            &json!({"path": "src/new.rs", "action": "created", "by": "claude"}),
            &json!({"path": "src/old.rs", "action": "updated", "by": "claude"}),
            // Outside the project: the path as the CLI gave it.
            &json!({"path": "/elsewhere/n.ipynb", "action": "updated", "by": "claude"}),
        ]
    );
    // The file change follows its tool result.
    assert_eq!(out[1].1["phase"], "result");
    assert_eq!(out[2].0, "file_change");
    assert_eq!(
        out[0].1,
        json!({"phase": "use", "tool_use_id": "t1", "tool": "Write",
               "input": r#"{"content":"x","file_path":"/p/src/new.rs"}"#,
               "file_path": "/p/src/new.rs"})
    );
    assert_eq!(
        out[1].1,
        json!({"phase": "result", "tool_use_id": "t1", "tool": "Write", "is_error": false,
               "output": "ok", "file_path": "/p/src/new.rs"})
    );
    // A result whose call was never seen (a restart in between) still maps, without a tool.
    let orphan = map_all(&mut m, vec![tool_result("t9", false, None)]);
    assert_eq!(
        orphan,
        [(
            "tool",
            json!({"phase": "result", "tool_use_id": "t9", "is_error": false, "output": "ok"})
        )]
    );
}

#[test]
fn long_outputs_and_input_strings_are_cut_at_a_character_boundary() {
    let mut m = mapper();
    let big = "é".repeat(5000);
    let out = map_all(
        &mut m,
        vec![
            tool_use("t1", "Write", json!({"file_path": "/p/a", "content": big})),
            EventKind::ToolResult {
                tool_use_id: "t1".into(),
                is_error: false,
                content: big.clone(),
                file_path: None,
                patch: None,
                stdout: None,
                stderr: None,
            },
        ],
    );
    let output = out[1].1["output"].as_str().unwrap();
    assert!(output.len() <= OUTPUT_MAX_BYTES && output.len() > OUTPUT_MAX_BYTES - 2);
    assert!(big.starts_with(output));
    let input: Value = serde_json::from_str(out[0].1["input"].as_str().unwrap()).unwrap();
    let content = input["content"].as_str().unwrap();
    assert!(content.ends_with('…'));
    assert!(content.len() <= INPUT_STRING_MAX_BYTES + '…'.len_utf8());
}

#[test]
fn assistant_text_adds_only_what_the_deltas_did_not_show() {
    let mut m = mapper();
    let delta = |t: &str| EventKind::TextDelta { text: t.into() };
    let full = |t: &str| EventKind::AssistantText {
        message_id: None,
        text: t.into(),
    };
    let out = map_all(
        &mut m,
        vec![
            delta("Hel"),
            delta("lo"),
            full("Hello"),
            // No deltas streamed for this one: all of it is new.
            full("Second."),
            // The deltas stopped short of the end.
            delta("Thi"),
            full("Third"),
        ],
    );
    let texts: Vec<&str> = out
        .iter()
        .map(|(_, f)| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Hel", "lo", "Second.", "Thi", "rd"]);
    assert!(out.iter().all(|(name, _)| *name == "text"));
}

#[test]
fn payload_adds_the_common_fields() {
    let draft = file_change("a.txt", "deleted", "u1", 5);
    let p = payload("s1", 9, draft.name, draft.at, &draft.fields);
    assert_eq!(
        Value::Object(p),
        json!({"path": "a.txt", "action": "deleted", "by": "u1", "session_id": "s1", "seq": 9,
               "at": 5, "event": "file_change"})
    );
}

/// A prompt carrying large attached files is cut in its live event, which says how large the
/// whole text is; a small one is sent as it is.
#[test]
fn a_long_prompt_is_cut_in_its_live_event() {
    let mut m = mapper();
    let long = format!("{}é tail", "x".repeat(PROMPT_TEXT_MAX_BYTES - 1));
    let prompt = |text: &str| EventKind::Prompt {
        prompt_id: "q1".into(),
        author: "alice".into(),
        text: text.into(),
        words_at: 0,
    };
    let out = map_all(&mut m, vec![prompt(&long), prompt("short")]);
    let (name, cut) = &out[0];
    assert_eq!(*name, "prompt");
    let text = cut["text"].as_str().unwrap();
    assert_eq!(text, format!("{}…", "x".repeat(PROMPT_TEXT_MAX_BYTES - 1)));
    assert_eq!(cut["text_bytes"], json!(long.len()));
    assert_eq!(out[1].1["text"], "short");
    assert!(out[1].1.get("text_bytes").is_none());
}
