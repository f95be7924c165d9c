//! Every line of the golden transcripts recorded from the real CLI (tests/fixtures/cli, see
//! Makefile.engine `golden-cli`) must parse into typed messages with nothing left unknown.

use serde_json::json;

use super::control::{IncomingRequest, KnownIncomingRequest};
use super::messages::*;
use super::{CliMessage, ControlResponseBody};

const FIXTURES: [(&str, &str); 5] = [
    (
        "text_partial",
        include_str!("../../tests/fixtures/cli/text_partial.jsonl"),
    ),
    (
        "write_allow",
        include_str!("../../tests/fixtures/cli/write_allow.jsonl"),
    ),
    (
        "write_deny",
        include_str!("../../tests/fixtures/cli/write_deny.jsonl"),
    ),
    ("bash", include_str!("../../tests/fixtures/cli/bash.jsonl")),
    (
        "api_error_500",
        include_str!("../../tests/fixtures/cli/api_error_500.jsonl"),
    ),
];

fn parse(name: &str) -> Vec<CliMessage> {
    let (_, text) = FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .expect("fixture exists");
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            CliMessage::parse(line).unwrap_or_else(|e| panic!("{name}:{}: {e}", i + 1))
        })
        .collect()
}

fn result_of(msgs: &[CliMessage]) -> &ResultMessage {
    let results: Vec<&ResultMessage> = msgs
        .iter()
        .filter_map(|m| match m {
            CliMessage::Result(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(results.len(), 1, "exactly one result per turn");
    results[0]
}

fn tool_uses(msgs: &[CliMessage]) -> Vec<String> {
    msgs.iter()
        .filter_map(|m| match m {
            CliMessage::Assistant(a) => Some(a.message.content.iter()),
            _ => None,
        })
        .flatten()
        .filter_map(|b| match b {
            ContentBlock::Known(KnownBlock::ToolUse { name, .. }) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn tool_results(msgs: &[CliMessage]) -> Vec<&UserMessage> {
    msgs.iter()
        .filter_map(|m| match m {
            CliMessage::User(u) => Some(u),
            _ => None,
        })
        .collect()
}

fn can_use_tools(msgs: &[CliMessage]) -> Vec<&super::CanUseTool> {
    msgs.iter()
        .filter_map(|m| match m {
            CliMessage::ControlRequest(r) => match &r.request {
                IncomingRequest::Known(KnownIncomingRequest::CanUseTool(c)) => Some(&**c),
                IncomingRequest::Unknown(_) => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn every_fixture_line_is_fully_typed() {
    for (name, text) in FIXTURES {
        assert!(
            text.lines().count() > 5,
            "{name} is too short to be a transcript"
        );
        for (i, line) in text.lines().enumerate() {
            let msg = CliMessage::parse(line).unwrap_or_else(|e| panic!("{name}:{}: {e}", i + 1));
            assert!(
                !msg.has_unknown_parts(),
                "{name}:{}: unknown part in {line}",
                i + 1
            );
        }
    }
}

#[test]
fn every_fixture_starts_with_initialize_answer_and_tracks_the_command() {
    for (name, _) in FIXTURES {
        let msgs = parse(name);
        match &msgs[0] {
            CliMessage::ControlResponse(r) => match &r.response {
                ControlResponseBody::Success {
                    request_id,
                    response,
                } => {
                    assert_eq!(request_id, "init-1");
                    let resp = response.as_ref().expect("initialize payload");
                    assert!(resp.get("commands").is_some(), "{name}: {resp}");
                }
                other => panic!("{name}: initialize failed: {other:?}"),
            },
            other => panic!("{name}: first line is {other:?}"),
        }
        let states: Vec<&str> = msgs
            .iter()
            .filter_map(|m| match m {
                CliMessage::CommandLifecycle(c) => Some(c.state.as_str()),
                _ => None,
            })
            .collect();
        // Observed: a turn that ends in an API error closes its command as "cancelled".
        let last = if name == "api_error_500" {
            "cancelled"
        } else {
            "completed"
        };
        assert_eq!(states, ["queued", "started", last], "{name}");
        let init = msgs.iter().find_map(|m| match m {
            CliMessage::System(SystemMessage {
                event: SystemEvent::Known(KnownSystemEvent::Init(init)),
                session_id,
                ..
            }) => Some((init, session_id)),
            _ => None,
        });
        let (init, session_id) = init.expect("system/init");
        assert_eq!(init.claude_code_version.as_deref(), Some("2.1.330"));
        assert_eq!(init.cwd.as_deref(), Some("/tmp/golden/proj"));
        assert!(init.tools.iter().any(|t| t == "Write"));
        assert_eq!(session_id, &result_of(&msgs).session_id, "{name}");
    }
}

#[test]
fn text_turn_deltas_match_the_final_text_and_result_has_cost() {
    let msgs = parse("text_partial");
    let mut deltas = String::new();
    let mut thinking = String::new();
    for m in &msgs {
        if let CliMessage::StreamEvent(e) = m {
            if let StreamEvent::Known(KnownStreamEvent::ContentBlockDelta { delta, .. }) = &e.event
            {
                match delta {
                    Delta::Known(KnownDelta::TextDelta { text }) => deltas.push_str(text),
                    Delta::Known(KnownDelta::ThinkingDelta { thinking: t }) => thinking.push_str(t),
                    _ => {}
                }
            }
        }
    }
    let result = result_of(&msgs);
    assert_eq!(Some(deltas.as_str()), result.result.as_deref());
    assert_eq!(thinking, "The user wants a greeting.");
    assert!(msgs.iter().any(|m| matches!(m, CliMessage::Assistant(a)
        if matches!(a.message.content.first(), Some(ContentBlock::Known(KnownBlock::Thinking { .. }))))));
    assert!(!result.is_error);
    assert_eq!(result.subtype, "success");
    assert_eq!(result.num_turns, Some(1));
    assert!(result.total_cost_usd.is_some_and(|c| c > 0.0));
    let usage = result.usage.as_ref().expect("usage");
    assert_eq!(usage.input_tokens, 100);
    assert!(usage.output_tokens > 0);
    assert!(result.model_usage.is_some());
}

#[test]
fn write_allow_has_prompts_and_structured_patch() {
    let msgs = parse("write_allow");
    assert_eq!(tool_uses(&msgs), ["Write", "Edit"]);
    let asks = can_use_tools(&msgs);
    assert_eq!(asks.len(), 2);
    assert_eq!(asks[0].tool_name, "Write");
    assert_eq!(
        asks[0].input["file_path"],
        json!("/tmp/golden/proj/hello.txt")
    );
    assert_eq!(
        asks[0].permission_suggestions,
        [json!({"type": "setMode", "mode": "acceptEdits", "destination": "session"})]
    );
    assert!(asks[0]
        .tool_use_id
        .as_deref()
        .is_some_and(|id| id.starts_with("toolu_write")));
    let results = tool_results(&msgs);
    let structured: Vec<&StructuredToolResult> = results
        .iter()
        .filter_map(|u| match &u.tool_use_result {
            Some(ToolUseResult::Structured(s)) => Some(&**s),
            _ => None,
        })
        .collect();
    assert_eq!(structured.len(), 2);
    assert_eq!(structured[0].kind.as_deref(), Some("create"));
    assert_eq!(structured[0].structured_patch.as_deref(), Some(&[][..]));
    let patch = structured[1]
        .structured_patch
        .as_ref()
        .expect("Edit has a structuredPatch");
    assert_eq!(patch[0].lines, ["-hi there", "+hello world"]);
    assert_eq!((patch[0].old_start, patch[0].new_lines), (1, 1));
    let result = result_of(&msgs);
    assert!(!result.is_error);
    assert_eq!(result.num_turns, Some(3));
    assert!(result.permission_denials.is_empty());
}

#[test]
fn write_deny_reports_the_message_and_the_denial() {
    let msgs = parse("write_deny");
    let results = tool_results(&msgs);
    assert_eq!(results.len(), 1);
    assert_eq!(
        results[0].tool_use_result,
        Some(ToolUseResult::Text(
            "Error: Rejected from Mattermost by @alice".into()
        ))
    );
    match &results[0].message.content {
        UserContent::Blocks(blocks) => assert!(matches!(&blocks[0],
            ContentBlock::Known(KnownBlock::ToolResult { is_error: Some(true), content, .. })
                if content == "Rejected from Mattermost by @alice")),
        UserContent::Text(t) => panic!("expected blocks, got {t}"),
    }
    let result = result_of(&msgs);
    assert!(!result.is_error);
    assert_eq!(result.permission_denials.len(), 1);
    assert_eq!(result.permission_denials[0].tool_name, "Write");
}

#[test]
fn bash_tool_output_is_structured() {
    let msgs = parse("bash");
    assert_eq!(tool_uses(&msgs), ["Bash"]);
    assert_eq!(can_use_tools(&msgs)[0].tool_name, "Bash");
    let results = tool_results(&msgs);
    match &results[0].tool_use_result {
        Some(ToolUseResult::Structured(s)) => {
            assert_eq!(s.stdout.as_deref(), Some("bash-ran"));
            assert_eq!(s.interrupted, Some(false));
        }
        other => panic!("Bash result: {other:?}"),
    }
}

#[test]
fn api_500_is_an_error_result_with_subtype_success() {
    let msgs = parse("api_error_500");
    let retries: Vec<(Option<u32>, Option<u16>)> = msgs
        .iter()
        .filter_map(|m| match m {
            CliMessage::System(SystemMessage {
                event:
                    SystemEvent::Known(KnownSystemEvent::ApiRetry {
                        attempt,
                        error_status,
                        ..
                    }),
                ..
            }) => Some((*attempt, *error_status)),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [(Some(1), Some(500)), (Some(2), Some(500))]);
    assert!(msgs
        .iter()
        .any(|m| matches!(m, CliMessage::Assistant(a) if a.is_api_error_message == Some(true))));
    let result = result_of(&msgs);
    assert!(result.is_error);
    assert_eq!(result.subtype, "success");
    assert_eq!(result.api_error_status, Some(500));
    assert_eq!(result.terminal_reason.as_deref(), Some("api_error"));
    assert!(result
        .result
        .as_deref()
        .is_some_and(|r| r.starts_with("API Error: 500 fake 500")));
}
