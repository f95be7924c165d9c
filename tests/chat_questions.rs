//! Questions (`AskUserQuestion`) and plans (`ExitPlanMode`) in chat, end to end with the REAL
//! Claude Code CLI against the scripted fake model: what a click or a dialog answers is what the
//! model reads in its next request, in the words the CLI uses to forward it.
//! A missing CLI fails these tests on purpose (run `make claude-cli`, or set CLAUDE_CLI).

mod support;

use claude_code::mattermost::model::*;
use serde_json::{json, Value};
use support::chat::*;

const COLOR: &str = "Which color should we use?";
const TOPPINGS: &str = "Which toppings do you want?";
const SIZE: &str = "Which size?";

fn ask(question: &str, multi: bool, labels: &[&str]) -> Value {
    let options: Vec<Value> = labels
        .iter()
        .map(|l| json!({"label": l, "description": format!("{l} it is")}))
        .collect();
    json!({"kind": "message", "blocks": [{"type": "tool_use", "name": "AskUserQuestion",
        "input": {"questions": [{"question": question, "header": "Pick", "options": options,
                                 "multiSelect": multi}]}}]})
}

fn text(t: &str) -> Value {
    json!({"kind": "message", "blocks": [{"type": "text", "text": t}]})
}

/// The pending card that is not `not`: its post and buttons.
async fn next_card(h: &Harness, not: Option<&str>) -> (Post, Vec<PostAction>) {
    h.wait_for("a pending card", |_| {
        h.card()
            .is_some_and(|(p, a)| !a.is_empty() && Some(p.id.as_str()) != not)
    })
    .await;
    h.card().unwrap()
}

fn card_text(h: &Harness, id: &str) -> String {
    let post = h.api.lock().unwrap().posts[id].clone();
    match post.props.as_ref().unwrap().get("attachments") {
        Some(Any::Attachments(a)) => a[0].text.clone(),
        _ => panic!("no attachment"),
    }
}

/// What the model read in its last request, as JSON text.
fn last_request(h: &Harness) -> String {
    h.model_requests().last().cloned().unwrap_or_default()
}

#[tokio::test]
async fn questions_answered_by_a_button_a_dialog_and_the_api_reach_the_model() {
    let h = Harness::new(
        "questions",
        |_| {
            json!([
                ask(COLOR, false, &["Blue", "Red"]),
                ask(TOPPINGS, true, &["Cheese", "Olives", "Ham"]),
                ask(SIZE, false, &["Small", "Large"]),
                text("All set."),
            ])
        },
        json!({}),
    )
    .await;
    h.start().await;
    h.command("/claude ask me some questions").await;

    // 1. A single choice: a button per option.
    let (card, actions) = next_card(&h, None).await;
    let ids: Vec<&str> = actions.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["q0o0", "q0o1", "answer"]);
    assert!(card_text(&h, &card.id).contains(COLOR));
    // u2 is a member, not an approver (WhoCanApprove = owner): refused, the card unchanged.
    let (_, v) = h
        .click("u2", &card.id, context_json(action(&actions, "q0o0")))
        .await;
    assert!(v["ephemeral_text"].is_string(), "{v}");
    assert_eq!(h.card_updates(&card.id), 0);
    let (_, v) = h
        .click("u1", &card.id, context_json(action(&actions, "q0o0")))
        .await;
    let shown = v["update"]["props"]["attachments"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        shown.contains("Answered by @name-u1") && shown.contains(&format!("{COLOR}: **Blue**")),
        "{v}"
    );

    // 2. A multiple choice: checkboxes in a dialog.
    let (card2, actions2) = next_card(&h, Some(&card.id)).await;
    assert!(
        last_request(&h).contains(&format!(r#"\"{COLOR}\"=\"Blue\""#)),
        "the button's answer reached the model: {}",
        last_request(&h)
    );
    let ids: Vec<&str> = actions2.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["answer"]);
    let (_, v) = h
        .click("u2", &card2.id, context_json(action(&actions2, "answer")))
        .await;
    assert!(v["ephemeral_text"].is_string(), "{v}");
    let (_, v) = h
        .click("u1", &card2.id, context_json(action(&actions2, "answer")))
        .await;
    assert_eq!(v, json!({}));
    let dialog = h.dialog();
    let names: Vec<&str> = dialog
        .dialog
        .elements
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, ["q0o0", "q0o1", "q0o2", "q0other"]);
    // Nothing chosen: a field error, and the card still waits.
    let (_, v) = h
        .http(DIALOG_URL, "u1", dialog_submission(&dialog, json!({})))
        .await;
    assert!(v["errors"]["q0other"].is_string(), "{v}");
    let submit = dialog_submission(&dialog, json!({"q0o0": true, "q0o1": false, "q0o2": true}));
    let (_, v) = h.http(DIALOG_URL, "u1", submit).await;
    assert_eq!(v, json!({}));

    // 3. The REST API answers with free text.
    let (card3, actions3) = next_card(&h, Some(&card2.id)).await;
    assert!(
        last_request(&h).contains(&format!(r#"\"{TOPPINGS}\"=\"Cheese, Ham\""#)),
        "the dialog's answer reached the model: {}",
        last_request(&h)
    );
    assert!(card_text(&h, &card2.id).contains(&format!("{TOPPINGS}: **Cheese, Ham**")));
    let ctx = context_json(&actions3[0]);
    let url = format!(
        "/api/v1/sessions/{}/approvals/{}",
        ctx["session_id"].as_str().unwrap(),
        ctx["request_id"].as_str().unwrap()
    );
    // A question is answered, whole, by the dialog's rule: anything else is refused and
    // leaves the card answerable.
    for refused in [
        json!({"decision": "approve", "answers": {"Another question?": "x"}}),
        json!({"decision": "approve"}),
        json!({"decision": "approve_session"}),
        json!({"decision": "approve", "answers": {}}),
        json!({"decision": "approve", "answers": {SIZE: "  "}}),
        json!({"decision": "approve", "updated_input": {"answers": {SIZE: "Medium"}}}),
    ] {
        let (status, v) = h.http(&url, "u1", refused.clone()).await;
        assert_eq!(status, Some(400), "{refused} → {v}");
    }
    let (status, v) = h
        .http(
            &url,
            "u2",
            json!({"decision": "approve", "answers": {SIZE: "Medium"}}),
        )
        .await;
    assert_eq!(status, Some(403), "{v}");
    let (status, v) = h
        .http(
            &url,
            "u1",
            json!({"decision": "approve", "answers": {SIZE: "Medium"}}),
        )
        .await;
    assert_eq!(
        (status, v["state"].as_str()),
        (Some(200), Some("approved")),
        "{v}"
    );
    h.wait_for_done().await;
    assert!(
        h.model_requests()
            .iter()
            .any(|r| r.contains(&format!(r#"\"{SIZE}\"=\"Medium\""#))),
        "the API's answer reached the model"
    );
    h.wait_for("the third card closed", |_| {
        card_text(&h, &card3.id).contains("Answered by @name-u1")
    })
    .await;
    h.deactivate().await;
}

#[tokio::test]
async fn a_plan_is_kept_with_feedback_then_started_accepting_edits() {
    const FEEDBACK: &str = "Also add a test for the greeting";
    let h = Harness::new(
        "plan",
        |p| {
            let exit = json!({"kind": "message", "blocks": [{"type": "tool_use",
                "name": "ExitPlanMode", "input": {}}]});
            json!([
                exit,
                exit,
                {"kind": "message", "blocks": [{"type": "tool_use", "name": "Write",
                    "input": {"file_path": p.join("hello.txt").display().to_string(),
                              "content": "hi\n"}}]},
                text("Planned and done."),
            ])
        },
        json!({}),
    )
    .await;
    let t = h
        .command(&format!(
            "/claude start {} --mode plan",
            h.project.display()
        ))
        .await;
    assert!(!t.contains("not"), "{t}");
    h.command("/claude plan the greeting").await;

    let (card, actions) = next_card(&h, None).await;
    let ids: Vec<&str> = actions.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["planstart", "planacceptedits", "plankeep"]);
    let (_, v) = h
        .click(
            "u2",
            &card.id,
            context_json(action(&actions, "planacceptedits")),
        )
        .await;
    assert!(v["ephemeral_text"].is_string(), "{v}");
    let (_, v) = h
        .click("u1", &card.id, context_json(action(&actions, "plankeep")))
        .await;
    assert_eq!(v, json!({}));
    let dialog = h.dialog();
    let (_, v) = h
        .http(
            DIALOG_URL,
            "u1",
            dialog_submission(&dialog, json!({"feedback": " "})),
        )
        .await;
    assert!(v["errors"]["feedback"].is_string(), "{v}");
    let (_, v) = h
        .http(
            DIALOG_URL,
            "u1",
            dialog_submission(&dialog, json!({"feedback": FEEDBACK})),
        )
        .await;
    assert_eq!(v, json!({}));

    let (card2, actions2) = next_card(&h, Some(&card.id)).await;
    assert!(
        last_request(&h).contains(FEEDBACK),
        "the feedback reached the model: {}",
        last_request(&h)
    );
    assert!(card_text(&h, &card.id).contains("keep planning"));
    let (_, v) = h
        .click(
            "u1",
            &card2.id,
            context_json(action(&actions2, "planacceptedits")),
        )
        .await;
    assert!(v["update"].is_object(), "{v}");
    h.wait_for_done().await;
    // The Write ran without a card of its own.
    assert_eq!(
        std::fs::read_to_string(h.project.join("hello.txt")).unwrap(),
        "hi\n"
    );
    let cards = h
        .thread()
        .into_iter()
        .filter(|p| {
            p.props
                .as_ref()
                .is_some_and(|p| p.contains_key("attachments"))
        })
        .count();
    assert_eq!(cards, 2, "no card for the Write");
    assert!(card_text(&h, &card2.id).contains("edits are accepted"));
    h.deactivate().await;
}

#[tokio::test]
async fn a_plan_started_with_approvals_still_asks_before_the_write() {
    let h = Harness::new(
        "planstart",
        |p| {
            json!([
                {"kind": "message", "blocks": [{"type": "tool_use", "name": "ExitPlanMode",
                    "input": {}}]},
                {"kind": "message", "blocks": [{"type": "tool_use", "name": "Write",
                    "input": {"file_path": p.join("asked.txt").display().to_string(),
                              "content": "hi\n"}}]},
                text("Done after asking."),
            ])
        },
        json!({}),
    )
    .await;
    h.command(&format!(
        "/claude start {} --mode plan",
        h.project.display()
    ))
    .await;
    h.command("/claude plan the greeting").await;
    let (card, actions) = next_card(&h, None).await;
    let (_, v) = h
        .click("u1", &card.id, context_json(action(&actions, "planstart")))
        .await;
    assert!(v["update"].is_object(), "{v}");
    // The Write waits on an ordinary card: the session left plan mode for the default one.
    let (write, write_actions) = next_card(&h, Some(&card.id)).await;
    assert!(card_text(&h, &write.id).contains("asked.txt"));
    assert!(!h.project.join("asked.txt").exists());
    let (_, v) = h
        .click(
            "u1",
            &write.id,
            context_json(action(&write_actions, "approve")),
        )
        .await;
    assert!(v["update"].is_object(), "{v}");
    h.wait_for_done().await;
    assert!(h.project.join("asked.txt").exists());
    assert!(card_text(&h, &card.id).contains("edits ask for approval"));
    // Recorded too: a resume does not start in plan mode again.
    let session = context_json(&actions[0])["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, v) = h
        .http_method(
            "GET",
            &format!("/api/v1/sessions/{session}"),
            "u1",
            json!({}),
        )
        .await;
    assert_eq!(v["permission_mode"], "default", "{v}");
    h.deactivate().await;
}

/// The REST API answers a plan as the card's buttons do: deny with a reason keeps planning with
/// that feedback, approve_session starts accepting edits (recorded), and the cards end with the
/// same lines as after a click.
#[tokio::test]
async fn a_plan_answered_through_the_api_ends_like_a_click() {
    const FEEDBACK: &str = "Name the file greeting.txt";
    let h = Harness::new(
        "planapi",
        |p| {
            let exit = json!({"kind": "message", "blocks": [{"type": "tool_use",
                "name": "ExitPlanMode", "input": {"plan": "1. Write the greeting"}}]});
            json!([
                exit,
                exit,
                {"kind": "message", "blocks": [{"type": "tool_use", "name": "Write",
                    "input": {"file_path": p.join("greeting.txt").display().to_string(),
                              "content": "hi\n"}}]},
                text("Planned and done."),
            ])
        },
        json!({}),
    )
    .await;
    h.command(&format!(
        "/claude start {} --mode plan",
        h.project.display()
    ))
    .await;
    h.command("/claude plan the greeting").await;
    let (card, actions) = next_card(&h, None).await;
    let ctx = context_json(&actions[0]);
    let session = ctx["session_id"].as_str().unwrap().to_owned();
    let url = |ctx: &Value| {
        format!(
            "/api/v1/sessions/{session}/approvals/{}",
            ctx["request_id"].as_str().unwrap()
        )
    };
    let (_, v) = h
        .http_method(
            "GET",
            &format!("/api/v1/sessions/{session}/approvals"),
            "u1",
            json!({}),
        )
        .await;
    assert_eq!(v["approvals"][0]["description"], "Plan", "{v}");
    for refused in [
        json!({"decision": "deny"}),
        json!({"decision": "deny", "reason": "  "}),
        json!({"decision": "approve", "updated_input": {"plan": "another"}}),
        json!({"decision": "approve", "answers": {"q": "a"}}),
    ] {
        let (status, v) = h.http(&url(&ctx), "u1", refused.clone()).await;
        assert_eq!(status, Some(400), "{refused} → {v}");
    }
    let (status, v) = h
        .http(
            &url(&ctx),
            "u1",
            json!({"decision": "deny", "reason": FEEDBACK}),
        )
        .await;
    assert_eq!(
        (status, v["state"].as_str()),
        (Some(200), Some("denied")),
        "{v}"
    );

    let (card2, actions2) = next_card(&h, Some(&card.id)).await;
    assert!(
        last_request(&h).contains(FEEDBACK),
        "the feedback reached the model: {}",
        last_request(&h)
    );
    assert!(card_text(&h, &card.id).contains(&format!("to keep planning: {FEEDBACK}")));
    let (status, v) = h
        .http(
            &url(&context_json(&actions2[0])),
            "u1",
            json!({"decision": "approve_session"}),
        )
        .await;
    assert_eq!(
        (status, v["state"].as_str()),
        (Some(200), Some("approved")),
        "{v}"
    );
    h.wait_for_done().await;
    assert_eq!(
        std::fs::read_to_string(h.project.join("greeting.txt")).unwrap(),
        "hi\n",
        "the Write ran without a card: edits are accepted"
    );
    assert!(
        card_text(&h, &card2.id).contains("edits are accepted"),
        "{}",
        card_text(&h, &card2.id)
    );
    let (_, v) = h
        .http_method(
            "GET",
            &format!("/api/v1/sessions/{session}"),
            "u1",
            json!({}),
        )
        .await;
    assert_eq!(v["permission_mode"], "acceptEdits", "{v}");
    h.deactivate().await;
}
