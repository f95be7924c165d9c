#[test]
fn events_render_text_tools_and_truncated_output() {
    use crate::sessions::EventKind;
    let mut r = TurnRenderer::new(Some("/p".into()), InlineLimits::default());
    assert!(r.apply_event(&EventKind::TextDelta { text: "Hel".into() }));
    assert!(r.apply_event(&EventKind::TextDelta { text: "lo".into() }));
    assert_eq!(r.body(), "Hello");
    assert!(!r.apply_event(&EventKind::AssistantText {
        message_id: None,
        text: "Hello".into()
    }));
    assert!(r.apply_event(&EventKind::ToolUse {
        tool_use_id: "t1".into(),
        tool: "Bash".into(),
        input: serde_json::json!({"command": "seq 100"}),
    }));
    let long: String = (1..=100).map(|i| format!("{i}\n")).collect();
    assert!(r.apply_event(&EventKind::ToolResult {
        tool_use_id: "t1".into(),
        is_error: false,
        content: long.clone(),
        file_path: None,
        patch: None,
        stdout: Some(long),
        stderr: None,
    }));
    let body = r.body();
    assert!(body.starts_with("Hello\n\n"), "{body}");
    assert!(
        body.contains("📎 `bash-output.txt` attached (100 lines, 291 B)"),
        "{body}"
    );
    let files: Vec<_> = r
        .attachments()
        .map(|(id, name, b)| (id, name, b.len()))
        .collect();
    assert_eq!(files, [("t1", "bash-output.txt", 291)]);
    // Not uploaded: shown cut instead.
    assert!(r.inline_attachment("t1"));
    assert!(!r.inline_attachment("t1"));
    assert_eq!(r.attachments().count(), 0);
    let body = r.body();
    assert!(body.contains("Bash"), "{body}");
    assert!(body.contains("\n40\n"), "{body}");
    assert!(!body.contains("\n41\n"), "{body}");
    assert!(body.contains("output truncated: 40 of 100 lines"), "{body}");
}

use super::*;
use proptest::prelude::*;

fn fixture(text: &str) -> Vec<CliMessage> {
    text.lines()
        .map(|l| CliMessage::parse(l).expect("fixture line parses"))
        .collect()
}

fn result_of(msgs: &[CliMessage]) -> &ResultMessage {
    msgs.iter()
        .find_map(|m| match m {
            CliMessage::Result(r) => Some(r),
            _ => None,
        })
        .expect("a result line")
}

#[test]
fn golden_write_allow() {
    let msgs = fixture(include_str!(
        "../../../tests/fixtures/cli/write_allow.jsonl"
    ));
    let mut turn = TurnRenderer::new(None, InlineLimits::default());
    let mut changes = 0;
    for m in &msgs {
        changes += usize::from(turn.apply(m));
    }
    assert!(changes > 5, "{changes}");
    let post = turn.render(&closing_line(result_of(&msgs), None));
    let want = "\
I will write the file.

✓ **Write** `hello.txt`
```diff
@@ -0,0 +1,1 @@
+hi there
```
✓ **Edit** `hello.txt`
```diff
@@ -1,1 +1,1 @@
-hi there
+hello world
```

Done: hello.txt says hello world.

✓ Done in 0.3 s · 3 turns · $0.0022";
    assert_eq!(post, want);
    assert_eq!(turn.attachments().count(), 0);
}

#[test]
fn streaming_text_shows_before_the_block_ends() {
    let msgs = fixture(include_str!(
        "../../../tests/fixtures/cli/write_allow.jsonl"
    ));
    let mut turn = TurnRenderer::new(None, InlineLimits::default());
    // Up to and including the third text delta of the first block.
    let mut deltas = 0;
    for m in &msgs {
        turn.apply(m);
        if let CliMessage::StreamEvent(e) = m {
            if matches!(
                e.event,
                StreamEvent::Known(KnownStreamEvent::ContentBlockDelta { .. })
            ) {
                deltas += 1;
                if deltas == 3 {
                    break;
                }
            }
        }
    }
    assert_eq!(turn.body(), "I will write");
    assert_eq!(
        turn.render(&working_line(Duration::from_secs(3))),
        "I will write\n\n⏳ Working… 3.0 s"
    );
}

#[test]
fn denied_and_pending_tools() {
    let msgs = fixture(include_str!("../../../tests/fixtures/cli/write_deny.jsonl"));
    let mut turn = TurnRenderer::new(None, InlineLimits::default());
    let mut saw_waiting = false;
    for m in &msgs {
        turn.apply(m);
        if turn.tools().any(|t| t.state == ToolState::AwaitingApproval) {
            saw_waiting = true;
            assert!(turn.body().contains("✋ **Write**"), "{}", turn.body());
            assert!(turn.body().contains("waiting for approval"));
        }
    }
    assert!(saw_waiting);
    let denied = turn.tools().next().unwrap();
    assert_eq!(
        denied.state,
        ToolState::Failed(Some("Rejected from Mattermost by @alice".into()))
    );
    assert!(turn
        .body()
        .contains("✗ **Write** `denied.txt` — Rejected from Mattermost by @alice"));
}

#[test]
fn bash_output_inline_and_as_attachment() {
    let msgs = fixture(include_str!("../../../tests/fixtures/cli/bash.jsonl"));
    let mut turn = TurnRenderer::new(None, InlineLimits::default());
    msgs.iter().for_each(|m| {
        turn.apply(m);
    });
    let body = turn.body();
    assert!(
        body.contains(
            "✓ **Bash** `mkdir -p out && echo bash-ran > out/marker.txt && cat out/marker.txt`\n```\nbash-ran\n```"
        ),
        "{body}"
    );
    // The same turn with tiny limits puts the output in a file.
    let mut small = TurnRenderer::new(
        None,
        InlineLimits {
            max_lines: 0,
            max_chars: 0,
        },
    );
    msgs.iter().for_each(|m| {
        small.apply(m);
    });
    assert!(
        small
            .body()
            .contains("📎 `bash-output.txt` attached (1 line, 8 B)"),
        "{}",
        small.body()
    );
    let files: Vec<_> = small.attachments().collect();
    assert_eq!(
        files,
        [("toolu_bash_1_0", "bash-output.txt", &b"bash-ran"[..])]
    );
}

#[test]
fn tool_output_limits() {
    let limits = InlineLimits {
        max_lines: 3,
        max_chars: 20,
    };
    assert_eq!(
        tool_output("o.txt", "a\nb\nc", limits),
        ToolOutput::Inline("a\nb\nc".into())
    );
    let four = tool_output("o.txt", "a\nb\nc\nd", limits);
    assert!(matches!(&four, ToolOutput::Attachment { summary, .. } if summary == "4 lines, 7 B"));
    let long = "é".repeat(21);
    assert!(matches!(
        tool_output("o.txt", &long, limits),
        ToolOutput::Attachment { .. }
    ));
    let big = "x".repeat(3000);
    let ToolOutput::Attachment { summary, bytes, .. } = tool_output("o.txt", &big, limits) else {
        panic!()
    };
    assert_eq!(summary, "1 line, 2.9 KB");
    assert_eq!(bytes.len(), 3000);
}

#[test]
fn targets_and_lines() {
    let input = serde_json::json!({"file_path": "/p/src/a.rs"});
    assert_eq!(
        tool_target("Edit", &input, Some("/p")).as_deref(),
        Some("src/a.rs")
    );
    assert_eq!(
        tool_target("Edit", &input, Some("/q")).as_deref(),
        Some("/p/src/a.rs")
    );
    let cmd = serde_json::json!({"command": "echo a\necho b"});
    assert_eq!(tool_target("Bash", &cmd, None).as_deref(), Some("echo a…"));
    let long = serde_json::json!({"command": "x".repeat(100)});
    assert_eq!(
        tool_target("Bash", &long, None).unwrap().chars().count(),
        81
    );
    assert_eq!(
        tool_target("Grep", &serde_json::json!({"pattern": "fn main"}), None).as_deref(),
        Some("fn main")
    );
    assert_eq!(tool_target("TodoWrite", &serde_json::json!({}), None), None);
    let t = ToolActivity {
        tool_use_id: "t".into(),
        name: "Bash".into(),
        target: Some("echo `date`".into()),
        state: ToolState::Running,
        output: None,
    };
    assert_eq!(tool_line(&t), "⏳ **Bash** `` echo `date` ``");
}

#[test]
fn diffs() {
    let hunks = vec![
        PatchHunk {
            old_start: 1,
            old_lines: 2,
            new_start: 1,
            new_lines: 2,
            lines: vec![" keep".into(), "-old".into(), "+new".into()],
        },
        PatchHunk {
            old_start: 10,
            old_lines: 1,
            new_start: 10,
            new_lines: 0,
            lines: vec!["-gone".into()],
        },
    ];
    assert_eq!(
        patch_diff(&hunks),
        "@@ -1,2 +1,2 @@\n keep\n-old\n+new\n@@ -10,1 +10,0 @@\n-gone\n"
    );
    assert_eq!(created_file_diff("a\nb"), "@@ -0,0 +1,2 @@\n+a\n+b\n");
    assert_eq!(created_file_diff(""), "");
    assert_eq!(code_block("diff", "x"), "```diff\nx\n```");
    assert_eq!(code_block("", "a ``` b\n"), "````\na ``` b\n````");
}

#[test]
fn closing_lines() {
    let result =
        |json: serde_json::Value| -> ResultMessage { serde_json::from_value(json).unwrap() };
    let ok = result(
        serde_json::json!({"subtype": "success", "duration_ms": 12345,
        "num_turns": 3, "total_cost_usd": 0.0523}),
    );
    assert_eq!(
        closing_line(&ok, Some(0.04)),
        "✓ Done in 12.3 s · 3 turns · $0.0123"
    );
    assert_eq!(
        closing_line(&ok, None),
        "✓ Done in 12.3 s · 3 turns · $0.0523"
    );
    let long = result(
        serde_json::json!({"subtype": "success", "duration_ms": 125_000,
        "num_turns": 1, "total_cost_usd": 1.5}),
    );
    assert_eq!(
        closing_line(&long, None),
        "✓ Done in 2 min 5 s · 1 turn · $1.50"
    );
    let api = result(serde_json::json!({"subtype": "success", "is_error": true,
        "duration_ms": 800, "num_turns": 1, "api_error_status": 500,
        "result": "API Error: 500"}));
    assert_eq!(
        closing_line(&api, None),
        "✗ Failed in 0.8 s · 1 turn — API error 500"
    );
    let max = result(serde_json::json!({"subtype": "error_max_turns", "num_turns": 10}));
    assert_eq!(
        closing_line(&max, None),
        "✗ Stopped · 10 turns — the turn limit was reached"
    );
    let during = result(serde_json::json!({"subtype": "error_during_execution",
        "errors": ["boom\ntrace"]}));
    assert_eq!(closing_line(&during, None), "✗ Stopped — boom");
    assert_eq!(working_line(Duration::from_millis(300)), "⏳ Working…");
    assert_eq!(
        working_line(Duration::from_secs(75)),
        "⏳ Working… 1 min 15 s"
    );
}

#[test]
fn split_keeps_fences_and_lines() {
    assert_eq!(split_post("", 100), [""]);
    assert_eq!(split_post("short", 100), ["short"]);
    let text = format!("intro\n```rust\n{}```\nafter\n", "let x = 1;\n".repeat(10));
    let posts = split_post(&text, 60);
    assert!(posts.len() > 2, "{posts:#?}");
    for p in &posts {
        assert!(p.chars().count() <= 60, "{p:?}");
    }
    assert!(posts[0].starts_with("intro\n```rust\n"));
    assert!(posts[0].ends_with("```"), "{:?}", posts[0]);
    assert!(
        posts[1].starts_with("```rust\nlet x = 1;\n"),
        "{:?}",
        posts[1]
    );
    // Splits fall on line boundaries: every body line is whole.
    for p in &posts {
        for line in p.lines() {
            assert!(
                line == "intro"
                    || line == "after"
                    || line.starts_with("```")
                    || line == "let x = 1;",
                "{line:?}"
            );
        }
    }
    // A line longer than a post is cut at a space.
    let words = "word ".repeat(30);
    let posts = split_post(&words, 40);
    assert!(posts.iter().all(|p| p.chars().count() <= 40));
    assert!(posts[..posts.len() - 1].iter().all(|p| p.ends_with(' ')));
    assert_eq!(posts.concat(), words);
    // The real limit.
    let big = format!("```diff\n{}```\n", "+added line\n".repeat(3000));
    let posts = split_post(&big, POST_MAX_CHARS);
    assert_eq!(posts.len(), 3);
    assert!(posts.iter().all(|p| p.chars().count() <= POST_MAX_CHARS));
    assert!(posts[1].starts_with("```diff\n") && posts[1].ends_with("```"));
    // A fence that closes right at the limit is not pushed into a post of its own.
    let tight = format!("```\n{}```\n", "abcdefghi\n".repeat(5));
    let exact = tight.chars().count() - 1; // everything but the final newline
    let posts = split_post(&tight, exact);
    assert_eq!(posts.len(), 2, "{posts:#?}");
    assert!(!posts[1].starts_with("```\n```"), "{posts:#?}");
}

/// Runs the fence state machine over a whole post.
fn ends_in_fence(post: &str) -> bool {
    let mut state = None;
    for line in post.split_inclusive('\n') {
        state = after_line(&state, line);
    }
    state.is_some()
}

fn fragments() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "```",
            "```rust",
            "~~~",
            "````",
            "\n",
            "\n",
            "\n",
            "a",
            "é",
            "🦀",
            " ",
            "word ",
            "`",
            "line of text",
            "   ```",
            "\r\n",
        ]),
        0..200,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn split_never_loses_or_reorders(text in fragments(), max in 32usize..300) {
        let pieces = split_pieces(&text, max);
        let bodies: String = pieces.iter().map(|p| p.body.as_str()).collect();
        prop_assert_eq!(&bodies, &text);
        for p in &pieces {
            let post = format!("{}{}{}", p.prefix, p.body, p.suffix);
            prop_assert!(post.chars().count() <= max, "{:?}", post);
            // What was added is fence lines only.
            if !p.prefix.is_empty() {
                prop_assert!(fence_opening(&p.prefix).is_some(), "{:?}", p.prefix);
                prop_assert!(p.prefix.ends_with('\n'));
            }
            let close = p.suffix.trim_start_matches('\n');
            prop_assert!(close.chars().all(|c| c == '`' || c == '~'), "{:?}", p.suffix);
        }
        prop_assert_eq!(split_post(&text, max).len(), pieces.len());
    }

    #[test]
    fn split_closes_every_fence_it_opens(
        lines in prop::collection::vec(
            prop::sample::select(vec![
                "```", "```rust", "~~~~", "text", "more text here", "", "`inline`",
            ]),
            0..120,
        ),
        max in 40usize..200,
    ) {
        let text = lines.join("\n");
        let posts = split_post(&text, max);
        for post in &posts[..posts.len() - 1] {
            prop_assert!(!ends_in_fence(post), "{:?}", post);
        }
    }

    #[test]
    fn split_any_text(text in ".{0,2000}", max in 0usize..500) {
        let pieces = split_pieces(&text, max);
        let bodies: String = pieces.iter().map(|p| p.body.as_str()).collect();
        prop_assert_eq!(&bodies, &text);
        for p in &pieces {
            let n = p.prefix.chars().count() + p.body.chars().count() + p.suffix.chars().count();
            prop_assert!(n <= max.max(MIN_SPLIT_CHARS));
        }
    }
}
