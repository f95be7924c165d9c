use super::*;
use serde_json::json;

const SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const NOW: i64 = 1_790_000_000;

fn signer() -> ActionSigner {
    ActionSigner::new(SECRET).unwrap()
}

fn ctx(action: ApprovalAction) -> ActionContext {
    ActionContext {
        session_id: "s1".into(),
        request_id: "req-9".into(),
        action,
        expires_at: NOW + 600,
    }
}

fn signed(c: &ActionContext) -> Value {
    Value::Object(signer().signed_json(c))
}

#[test]
fn round_trip() {
    for action in ApprovalAction::ALL {
        let c = ctx(action);
        assert_eq!(signer().verify(&signed(&c), NOW), Ok(c.clone()));
        assert_eq!(
            signer().verify_state(&signer().dialog_state(&c), NOW),
            Ok(c)
        );
        assert_eq!(ApprovalAction::from_id(&action.id()), Some(action));
        assert!(action.id().chars().all(|ch| ch.is_ascii_alphanumeric()));
    }
    // Mattermost adds keys of its own; they are ignored.
    let mut v = signed(&ctx(ApprovalAction::Approve));
    v["selected_option"] = json!("x");
    assert!(signer().verify(&v, NOW).is_ok());
}

#[test]
fn forged_and_tampered_contexts_are_refused() {
    let c = ctx(ApprovalAction::Deny);
    // Signed with another secret.
    let other = ActionSigner::new(&"ab".repeat(32)).unwrap();
    let forged = Value::Object(other.signed_json(&c));
    assert_eq!(
        signer().verify(&forged, NOW),
        Err(VerifyError::BadSignature)
    );
    // Each signed field tampered with.
    for (field, value) in [
        ("session_id", "s2"),
        ("request_id", "req-10"),
        ("action", "approve"),
        ("expires_at", "9999999999"),
    ] {
        let mut v = signed(&c);
        v[field] = json!(value);
        assert_eq!(
            signer().verify(&v, NOW),
            Err(VerifyError::BadSignature),
            "{field}"
        );
    }
    // Replaying a signature on another request.
    let mut replay = signed(&ActionContext {
        request_id: "req-other".into(),
        ..c.clone()
    });
    replay["sig"] = signed(&c)["sig"].clone();
    assert_eq!(
        signer().verify(&replay, NOW),
        Err(VerifyError::BadSignature)
    );
    // A flipped bit of the signature.
    let mut v = signed(&c);
    let sig = v["sig"].as_str().unwrap().to_owned();
    let flipped = format!("{}{}", if &sig[..1] == "0" { "1" } else { "0" }, &sig[1..]);
    v["sig"] = json!(flipped);
    assert_eq!(signer().verify(&v, NOW), Err(VerifyError::BadSignature));
}

#[test]
fn expiry() {
    let c = ctx(ApprovalAction::Approve);
    assert!(signer().verify(&signed(&c), c.expires_at - 1).is_ok());
    assert_eq!(
        signer().verify(&signed(&c), c.expires_at),
        Err(VerifyError::Expired {
            expired_at: c.expires_at
        })
    );
}

#[test]
fn malformed_contexts() {
    let good = signed(&ctx(ApprovalAction::Approve));
    let cases: Vec<(Value, &str)> = vec![
        (json!("nope"), "context"),
        (json!({}), "action"),
        (
            {
                let mut v = good.clone();
                v["action"] = json!("launch");
                v
            },
            "action",
        ),
        (
            {
                let mut v = good.clone();
                v["expires_at"] = json!(1_790_000_600);
                v
            },
            "expires_at",
        ),
        (
            {
                let mut v = good.clone();
                v["expires_at"] = json!("+1790000600");
                v
            },
            "expires_at",
        ),
        (
            {
                let mut v = good.clone();
                v["sig"] = json!("zz");
                v
            },
            "sig",
        ),
        (
            {
                let mut v = good.clone();
                v.as_object_mut().unwrap().remove("session_id");
                v
            },
            "session_id",
        ),
    ];
    for (v, field) in cases {
        assert_eq!(
            signer().verify(&v, NOW),
            Err(VerifyError::Malformed(field)),
            "{v}"
        );
    }
    assert_eq!(
        signer().verify_state("{", NOW),
        Err(VerifyError::Malformed("state"))
    );
}

#[test]
fn secrets() {
    let s = ActionSigner::generate_secret().unwrap();
    assert_eq!(s.len(), 64);
    assert_ne!(s, ActionSigner::generate_secret().unwrap());
    assert!(ActionSigner::new(&s).is_ok());
    assert_eq!(ActionSigner::new("xyz").unwrap_err(), SecretError::NotHex);
    assert_eq!(
        ActionSigner::new("abcd").unwrap_err(),
        SecretError::TooShort { bytes: 2, min: 32 }
    );
    assert!(!format!("{:?}", signer()).contains("0011"));
}

fn bash_request(input: &Value) -> ApprovalRequest<'_> {
    ApprovalRequest {
        session_id: "s1",
        request_id: "req-9",
        tool_name: "Bash",
        input,
        description: None,
        cwd: Some("/srv/api"),
        expires_at: NOW + 600,
    }
}

#[test]
fn pending_card() {
    let input = json!({"command": "npm test", "description": "Run tests"});
    let card = approval_attachment(
        "https://chat.example.com/",
        &signer(),
        &bash_request(&input),
    );
    assert_eq!(
        card.text,
        "Claude wants to use **Bash**\n```bash\nnpm test\n```"
    );
    assert_eq!(card.fallback, "Claude wants to use Bash");
    assert!(card
        .footer
        .starts_with("Waiting for approval · expires at "));
    let ids: Vec<&str> = card.actions.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "approve",
            "approvesession",
            "deny",
            "denyreason",
            "editapprove"
        ]
    );
    for a in &card.actions {
        assert_eq!(a.r#type, "button");
        let integration = a.integration.as_ref().unwrap();
        assert_eq!(
            integration.url,
            "https://chat.example.com/plugins/claude-code/api/v1/actions/approval"
        );
        // The context verifies and names this button's action.
        let json: serde_json::Map<String, Value> = integration
            .context
            .as_ref()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), json!(v.as_str().unwrap())))
            .collect();
        let c = signer().verify(&Value::Object(json), NOW).unwrap();
        assert_eq!(c.action.id(), a.id);
    }
    // An empty site URL gives the in-process relative URL.
    let relative = approval_attachment("", &signer(), &bash_request(&input));
    assert_eq!(
        relative.actions[0].integration.as_ref().unwrap().url,
        "/plugins/claude-code/api/v1/actions/approval"
    );
}

#[test]
fn edit_button_only_when_the_input_fits_a_dialog() {
    // The server counts bytes: 1001 characters of three bytes each do not fit.
    let wide = json!({"command": "語".repeat(DIALOG_TEXTAREA_MAX / 3 + 1)});
    assert!(editable_input("Bash", &wide).is_none());
    let fits = json!({"command": "語".repeat(DIALOG_TEXTAREA_MAX / 3)});
    assert!(editable_input("Bash", &fits).is_some());
    let big = json!({"command": "x".repeat(DIALOG_TEXTAREA_MAX + 1)});
    let card = approval_attachment("https://c", &signer(), &bash_request(&big));
    assert!(card.actions.iter().all(|a| a.id != "editapprove"));
    assert_eq!(card.actions.len(), 4);
    // The preview of a long input is clipped.
    assert!(card.text.chars().count() < PREVIEW_MAX_CHARS + 200);
    let many = json!({"command": "echo\n".repeat(100)});
    let card = approval_attachment("https://c", &signer(), &bash_request(&many));
    assert!(card.text.contains("_… 60 more lines_"), "{}", card.text);
}

#[test]
fn previews_of_file_tools() {
    let input = json!({"file_path": "/srv/api/src/a.rs", "old_string": "a\nb", "new_string": "c"});
    let req = ApprovalRequest {
        tool_name: "Edit",
        ..bash_request(&input)
    };
    let card = approval_attachment("https://c", &signer(), &req);
    assert_eq!(
        card.text,
        "Claude wants to use **Edit** on `src/a.rs`\n```diff\n-a\n-b\n+c\n```"
    );
    let input = json!({"file_path": "/elsewhere/x.txt", "content": "hi\n"});
    let req = ApprovalRequest {
        tool_name: "Write",
        ..bash_request(&input)
    };
    let card = approval_attachment("https://c", &signer(), &req);
    assert_eq!(
        card.text,
        "Claude wants to use **Write** on `/elsewhere/x.txt`\n```diff\n@@ -0,0 +1,1 @@\n+hi\n```"
    );
    let input = json!({"url": "https://example.com"});
    let req = ApprovalRequest {
        tool_name: "WebFetch",
        description: Some("example.com"),
        ..bash_request(&input)
    };
    let card = approval_attachment("https://c", &signer(), &req);
    assert!(card
        .text
        .starts_with("Claude wants to use **WebFetch** on `example.com`\n```json\n{"));
}

#[test]
fn decided_cards() {
    let input = json!({"command": "npm test"});
    let pending = approval_attachment("https://c", &signer(), &bash_request(&input));
    let at = 1_789_992_180; // 12:03 UTC
    let approved = decided_attachment(
        &pending,
        &Decision::Approved {
            by: "alice".into(),
            at,
            for_session: false,
            edited: false,
        },
    );
    assert!(approved.actions.is_empty());
    assert!(approved
        .text
        .ends_with("\n\n✅ Approved by @alice at 12:03 UTC"));
    assert!(approved.text.starts_with(&pending.text));
    assert_eq!(approved.color, COLOR_APPROVED);
    assert_eq!(
        decision_line(&Decision::Approved {
            by: "alice".into(),
            at,
            for_session: true,
            edited: true
        }),
        "✅ Approved by @alice at 12:03 UTC with edited input (and for the rest of this session)"
    );
    let denied = decided_attachment(
        &pending,
        &Decision::Denied {
            by: "bob".into(),
            at,
            reason: Some("  use the\nstaging db ".into()),
        },
    );
    assert!(denied
        .text
        .ends_with("⛔ Denied by @bob at 12:03 UTC: use the staging db"));
    assert_eq!(
        decision_line(&Decision::Denied {
            by: "bob".into(),
            at,
            reason: Some("x".repeat(400))
        })
        .chars()
        .count(),
        "⛔ Denied by @bob at 12:03 UTC: ".chars().count() + REASON_SHOWN_MAX + 1
    );
    let expired = decided_attachment(&pending, &Decision::Expired);
    assert!(expired.text.ends_with("⌛ Expired — denied automatically"));
    assert!(expired.actions.is_empty());

    // A card found again in its thread (after a restart) tells its request; decided cards
    // and other posts do not.
    let post = |att: SlackAttachment| Post {
        props: crate::chat::post_props::card_props("s1", "req-9", att),
        ..Default::default()
    };
    let (session, request, att) = super::pending_card(&post(pending.clone())).expect("a card");
    assert_eq!((session.as_str(), request.as_str()), ("s1", "req-9"));
    assert_eq!(att, pending);
    assert_eq!(super::pending_card(&post(expired)), None);
    assert_eq!(super::pending_card(&Post::default()), None);
    let withdrawn = decided_attachment(&pending, &Decision::Cancelled);
    assert!(withdrawn
        .text
        .ends_with("⏹ Withdrawn — Claude Code stopped waiting for this decision"));
    assert_eq!(withdrawn.color, COLOR_EXPIRED);
    assert_eq!(clock_utc(0), "00:00 UTC");
    assert_eq!(clock_utc(-60), "23:59 UTC");
}

#[test]
fn dialogs() {
    let c = ctx(ApprovalAction::DenyWithReason);
    let d = deny_reason_dialog("https://c/", "trig", &signer(), &c, "Bash");
    assert_eq!(d.trigger_id, "trig");
    assert_eq!(
        d.url,
        "https://c/plugins/claude-code/api/v1/actions/approval/dialog"
    );
    assert_eq!(d.dialog.callback_id, "req-9");
    assert!(d.dialog.title.chars().count() <= DIALOG_TITLE_MAX);
    assert_eq!(d.dialog.elements[0].name, DIALOG_FIELD_REASON);
    assert!(!d.dialog.elements[0].optional);
    assert_eq!(signer().verify_state(&d.dialog.state, NOW), Ok(c));

    let input = json!({"command": "rm -rf build", "description": "clean"});
    let editable = editable_input("Bash", &input).unwrap();
    assert_eq!(
        editable,
        EditableInput {
            field: Some("command"),
            text: "rm -rf build".into()
        }
    );
    let c = ctx(ApprovalAction::EditAndApprove);
    let d = edit_dialog("https://c", "trig", &signer(), &c, "Bash", &editable);
    assert!(d.dialog.title.chars().count() <= DIALOG_TITLE_MAX);
    assert_eq!(d.dialog.elements[0].default, "rm -rf build");
    assert_eq!(d.dialog.elements[0].max_length, 3000);
    assert_eq!(signer().verify_state(&d.dialog.state, NOW), Ok(c));
    // A tampered state is refused.
    let tampered = d.dialog.state.replace("editapprove", "approve");
    assert_eq!(
        signer().verify_state(&tampered, NOW),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn edits() {
    let input = json!({"command": "rm -rf build", "description": "clean"});
    assert_eq!(
        apply_edit(&input, Some("command"), "rm -rf build/tmp"),
        Ok(json!({"command": "rm -rf build/tmp", "description": "clean"}))
    );
    let other = json!({"url": "https://a"});
    let e = editable_input("WebFetch", &other).unwrap();
    assert_eq!(e.field, None);
    assert_eq!(
        apply_edit(&other, None, r#"{"url": "https://b"}"#),
        Ok(json!({"url": "https://b"}))
    );
    assert_eq!(apply_edit(&other, None, "[1]"), Err(EditError::NotAnObject));
    assert!(matches!(
        apply_edit(&other, None, "{"),
        Err(EditError::NotJson(_))
    ));
    assert_eq!(
        apply_edit(&input, Some("command"), &"x".repeat(3001)),
        Err(EditError::TooLong)
    );
    assert_eq!(editable_input("Edit", &json!({"file_path": "a"})), None);
}
