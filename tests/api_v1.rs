//! The REST API v1 through ServeHTTP, route by route: a success with the contract's JSON shape
//! (/work/notes/issue10-contract.md), every refusal of the authorization table walked by role
//! (what each user gets is derived from `authz::allowed`), bad input, and after each refused
//! or bad call: nothing changed (the session as GET shows it, its approvals, the lines its CLI
//! read, the posts, the CLIs launched). These run the stand-in CLI (tests/support/chat.rs),
//! except the tests marked REAL CLI, which run the real Claude Code CLI against the scripted
//! fake Messages API.

mod support;

use claude_code::chat::authz::Action;
use claude_code::chat::service::PANEL_ACTIONS;
use claude_code::config::WhoCanApprove;
use claude_code::mattermost::model::*;
use serde_json::{json, Value};
use support::api::*;
use support::chat::*;
use support::roles::*;

/// In a project file and a thread that only refused calls name: the CLI must never read it.
const REFUSED_MARK: &str = "REFUSED-CONTEXT";

/// The contract's Session JSON (`last_seq` comes with the live events).
const SESSION_KEYS: &[&str] = &[
    "id",
    "channel_id",
    "owner_id",
    "project_path",
    "model",
    "permission_mode",
    "state",
    "created_at",
    "updated_at",
    "root_post_id",
    "worktree",
    "queued_prompts",
    "pending_approvals",
    "last_seq",
];
/// The contract's approval JSON (`description` is not recorded; `decided_at` is extra).
const APPROVAL_KEYS: &[&str] = &[
    "approval_id",
    "tool",
    "description",
    "input",
    "requested_at",
    "state",
    "decision",
    "decided_by",
    "reason",
    "decided_at",
];
const HISTORY_KEYS: &[&str] = &["seq", "kind", "role", "text", "at"];

// --- success ---------------------------------------------------------------------------------

/// A channel without a session: the panel offers the start form with the allowed roots to a
/// member, and nothing that needs a session.
#[tokio::test]
async fn a_channel_without_a_session_offers_the_roots_to_start_under() {
    let standin = StandIn::new();
    let h = stand_in_harness("api-channel", &standin, json!({})).await;
    let v = owner_ok(
        &h,
        "GET",
        &format!("/api/v1/channels/{CHANNEL}"),
        Value::Null,
        200,
    )
    .await;
    assert_keys(
        &v,
        &[
            "channel_id",
            "bot_user_id",
            "session",
            "allowed_roots",
            "permissions",
        ],
    );
    assert_eq!(v["bot_user_id"], BOT);
    assert_eq!(v["session"], Value::Null);
    let roots = v["allowed_roots"].as_array().cloned().unwrap_or_default();
    assert_eq!(roots.len(), 1, "{v}");
    assert!(
        h.project.starts_with(roots[0].as_str().unwrap_or("?")),
        "{v}"
    );
    assert_eq!(
        v["permissions"]["start"],
        json!({"allowed": true, "reason": null})
    );
    assert_eq!(v["permissions"]["prompt"]["allowed"], false, "{v}");
    let outsider = call(
        &h,
        "GET",
        &format!("/api/v1/channels/{CHANNEL}"),
        OUTSIDER,
        Value::Null,
    )
    .await;
    assert_error(&outsider, 404, "someone outside the channel");
}

/// Every route once as the owner, each answer in the contract's shape; what it did is seen
/// where it lands (the CLI's stdin, the card, the session).
#[tokio::test]
async fn every_route_succeeds_with_the_contract_shape() {
    let standin = StandIn::new();
    let h = stand_in_harness("api-ok", &standin, json!({})).await;
    let (sid, created) = start_session(
        &h,
        &standin,
        json!({"model": "sonnet", "mode": "acceptEdits"}),
    )
    .await;
    assert_keys(&created, SESSION_KEYS);
    assert_eq!(created["channel_id"], CHANNEL);
    assert_eq!(created["owner_id"], OWNER);
    assert_eq!(created["model"], "sonnet");
    assert_eq!(created["permission_mode"], "acceptEdits");
    assert_eq!(created["pending_approvals"], 0);
    let session = format!("{SESSIONS}/{sid}");

    let list = owner_ok(&h, "GET", SESSIONS, Value::Null, 200).await;
    let listed = list["sessions"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{list}");
    assert_keys(&listed[0], SESSION_KEYS);
    assert_eq!(listed[0]["id"], sid);

    let shown = owner_ok(&h, "GET", &session, Value::Null, 200).await;
    assert_keys(&shown, SESSION_KEYS);
    assert_eq!(shown["id"], sid);
    assert!(shown["root_post_id"].is_string(), "{shown}");

    let mode = json!({"mode": "plan"});
    let v = owner_ok(&h, "PUT", &format!("{session}/mode"), mode, 200).await;
    assert_eq!(v["permission_mode"], "plan", "{v}");
    assert_keys(&v, SESSION_KEYS);
    let model = json!({"model": "opus"});
    let v = owner_ok(&h, "PUT", &format!("{session}/model"), model, 200).await;
    assert_eq!(v["model"], "opus", "{v}");
    let (_, v) = call(&h, "GET", &session, OWNER, Value::Null).await;
    assert_eq!(
        (&v["permission_mode"], &v["model"]),
        (&json!("plan"), &json!("opus"))
    );
    let lines = standin.stdin().join("\n");
    assert!(
        lines.contains("set_permission_mode") && lines.contains("\"plan\""),
        "{lines}"
    );
    assert!(
        lines.contains("set_model") && lines.contains("\"opus\""),
        "{lines}"
    );

    // Context: a file and a thread, both in the next prompt.
    let root = h.root_post();
    let reply = Post {
        id: "ctx-reply".into(),
        user_id: MEMBER.into(),
        channel_id: CHANNEL.into(),
        root_id: root.id.clone(),
        message: "THREAD-MARK".into(),
        ..Default::default()
    };
    h.api.lock().unwrap().posts.insert(reply.id.clone(), reply);
    let context = format!("{session}/context");
    let v = owner_ok(&h, "POST", &context, json!({"file": "README.md"}), 200).await;
    assert_keys(&v, &["message"]);
    let link = format!("http://mm.example/team-1/pl/{}", root.id);
    let v = owner_ok(&h, "POST", &context, json!({"thread": link}), 200).await;
    assert!(
        v["message"].as_str().unwrap().contains("added as context"),
        "{v}"
    );

    let aid = prompt_until_card(&h, &sid, "write the greeting").await;
    let prompt_line = standin
        .stdin()
        .into_iter()
        .find(|l| l.contains("\"type\":\"user\""))
        .expect("the prompt reached the CLI");
    for part in ["write the greeting", "# Demo", "THREAD-MARK"] {
        assert!(prompt_line.contains(part), "{part} in {prompt_line}");
    }

    let v = approvals(&h, &sid).await;
    let approvals = v["approvals"].as_array().unwrap();
    assert_eq!(approvals.len(), 1, "{v}");
    assert_keys(&approvals[0], APPROVAL_KEYS);
    assert_eq!(
        (&approvals[0]["tool"], &approvals[0]["state"]),
        (&json!("Write"), &json!("pending"))
    );
    let (card, actions) = h.card().unwrap();
    let answer = format!("{session}/approvals/{aid}");
    let v = owner_ok(&h, "POST", &answer, json!({"decision": "approve"}), 200).await;
    assert_keys(&v, APPROVAL_KEYS);
    assert_eq!(
        (&v["state"], &v["decided_by"]),
        (&json!("approved"), &json!(OWNER)),
        "{v}"
    );
    card_decided_then_click_refused(&h, &card, &actions, "✅ Approved by @name-u1", "approve")
        .await;

    // History: pages by `before` and `limit`, and search.
    eventually("the turn in the history", || async {
        let (_, v) = call(&h, "GET", &format!("{session}/history"), OWNER, Value::Null).await;
        v["messages"].as_array().is_some_and(|m| m.len() >= 2)
    })
    .await;
    let all = owner_ok(&h, "GET", &format!("{session}/history"), Value::Null, 200).await;
    assert_keys(&all, &["messages", "has_more"]);
    assert_eq!(all["has_more"], false);
    let messages = all["messages"].as_array().unwrap().clone();
    for m in &messages {
        assert_keys(m, HISTORY_KEYS);
    }
    let seqs: Vec<i64> = messages
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {seqs:?}"
    );
    let (_, page) = call(
        &h,
        "GET",
        &format!("{session}/history?limit=1"),
        OWNER,
        Value::Null,
    )
    .await;
    assert_eq!(
        page["messages"],
        json!([messages.last().unwrap()]),
        "the newest"
    );
    assert_eq!(page["has_more"], true);
    let last = seqs[seqs.len() - 1];
    let (_, older) = call(
        &h,
        "GET",
        &format!("{session}/history?before={last}&limit=200"),
        OWNER,
        Value::Null,
    )
    .await;
    assert_eq!(older["messages"], json!(messages[..messages.len() - 1]));
    let (_, found) = call(
        &h,
        "GET",
        &format!("{session}/history?q=greeting"),
        OWNER,
        Value::Null,
    )
    .await;
    let found = found["messages"].as_array().unwrap();
    assert!(
        !found.is_empty()
            && found
                .iter()
                .all(|m| m["text"].as_str().unwrap().contains("greeting")),
        "{found:?}"
    );

    // Interrupt a turn waiting for its approval: its card is withdrawn.
    prompt_until_card(&h, &sid, "once more").await;
    let lines = standin.stdin().len();
    let v = owner_ok(
        &h,
        "POST",
        &format!("{session}/interrupt"),
        Value::Null,
        200,
    )
    .await;
    assert_eq!(v, json!({}));
    eventually("the interrupt to reach the CLI", || async {
        standin.stdin()[lines..]
            .iter()
            .any(|l| l.contains("\"subtype\":\"interrupt\""))
    })
    .await;

    let v = owner_ok(&h, "DELETE", &session, Value::Null, 200).await;
    assert_keys(&v, SESSION_KEYS);
    let (_, v) = call(&h, "GET", &session, OWNER, Value::Null).await;
    assert_eq!(v["state"], "stopped", "{v}");
    h.deactivate().await;
}

// --- the authorization table ------------------------------------------------------------------

/// One call of the API for an action of the table; `refused`: the call a refused user makes
/// (its context names what only refused calls name).
fn request_for(
    action: Action,
    sid: &str,
    aid: &str,
    refused: bool,
) -> Option<(&'static str, String, Value)> {
    let s = format!("{SESSIONS}/{sid}");
    let answer = format!("{s}/approvals/{aid}");
    let (file, thread) = if refused {
        ("refused.md", "refused-thread")
    } else {
        ("README.md", "allowed-thread")
    };
    Some(match action {
        Action::Status => ("GET", s, Value::Null),
        Action::History => ("GET", format!("{s}/history"), Value::Null),
        Action::Prompt => ("POST", format!("{s}/prompt"), json!({"text": "do it"})),
        Action::Interrupt => ("POST", format!("{s}/interrupt"), Value::Null),
        Action::Stop => ("DELETE", s, Value::Null),
        // The session has no worktree: an allowed call is told so (400) and stops nothing.
        Action::DiscardWorktree => ("DELETE", format!("{s}?clean=true&force=true"), Value::Null),
        Action::ContextThread => ("POST", format!("{s}/context"), json!({"thread": thread})),
        Action::ContextFile => ("POST", format!("{s}/context"), json!({"file": file})),
        Action::Mode => ("PUT", format!("{s}/mode"), json!({"mode": "acceptEdits"})),
        Action::Model => ("PUT", format!("{s}/model"), json!({"model": "opus"})),
        Action::Approve => ("POST", answer, json!({"decision": "approve"})),
        Action::ApproveForSession => ("POST", answer, json!({"decision": "approve_session"})),
        Action::Deny => ("POST", answer, json!({"decision": "deny"})),
        Action::SubmitDenyReason => ("POST", answer, json!({"decision": "deny", "reason": "no"})),
        Action::SubmitEdit => (
            "POST",
            answer,
            json!({"decision": "approve", "updated_input": {"content": "y"}}),
        ),
        Action::Files => ("GET", format!("{s}/files"), Value::Null),
        Action::File => ("GET", format!("{s}/files/{file}"), Value::Null),
        Action::EditFile => (
            "POST",
            format!("{s}/files/new-{file}"),
            json!({"content": "a person's own edit"}),
        ),
        Action::Start => (
            "POST",
            SESSIONS.to_owned(),
            json!({"channel_id": CHANNEL, "project_path": "/"}),
        ),
        // Not routes of their own: help is /claude only, the dialogs open from card buttons
        // (the API takes their submissions), health is public.
        Action::Help
        | Action::DenyWithReason
        | Action::EditAndApprove
        | Action::Health
        | Action::Metrics => return None,
    })
}

/// Every route × every user, with WhoCanApprove = `who`: first every refusal (the status,
/// the text, nothing changed), then every allowed call (past the table: no 403 or 404), the
/// stops last.
async fn walk_the_table(name: &str, who: WhoCanApprove) {
    let standin = StandIn::new();
    let setting = match who {
        WhoCanApprove::Owner => "owner",
        WhoCanApprove::Members => "members",
    };
    let h = stand_in_harness(name, &standin, json!({"WhoCanApprove": setting})).await;
    std::fs::write(h.project.join("refused.md"), REFUSED_MARK).unwrap();
    for (id, text) in [
        ("refused-thread", REFUSED_MARK),
        ("allowed-thread", "ALLOWED-THREAD"),
    ] {
        let post = Post {
            id: id.into(),
            user_id: MEMBER.into(),
            channel_id: CHANNEL.into(),
            message: text.into(),
            ..Default::default()
        };
        h.api.lock().unwrap().posts.insert(id.into(), post);
    }
    let (sid, _) = start_session(&h, &standin, json!({})).await;
    let aid = prompt_until_card(&h, &sid, "first").await;
    let users = [OWNER, MEMBER, OUTSIDER, ADMIN];
    let mut refusals = 0;
    for action in Action::ALL {
        for user in users {
            let Some(refusal) = expected(user, action, who) else {
                continue;
            };
            let Some((method, url, body)) = request_for(action, &sid, &aid, true) else {
                continue;
            };
            let before = snapshot(&h, &standin, &sid).await;
            let got = call(&h, method, &url, user, body).await;
            let (status, text) = match (action, is_member(user)) {
                // Naming a channel is not asking about a session: the table's words.
                (Action::Start, _) => (403, refusal),
                (_, true) => (403, refusal),
                (_, false) => (404, NOT_VISIBLE.to_owned()),
            };
            let cell = format!("{user} {action:?} {who:?}");
            assert_error(&got, status, &cell);
            assert_eq!(got.1["error"], json!(text), "{cell}");
            assert_eq!(
                snapshot(&h, &standin, &sid).await,
                before,
                "{cell} changed something"
            );
            refusals += 1;
        }
    }
    // Someone outside the channel does not even see the session in the list.
    for user in users {
        let (status, v) = call(&h, "GET", SESSIONS, user, Value::Null).await;
        let listed = v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == sid);
        assert_eq!(
            (status, listed),
            (200, expected(user, Action::Status, who).is_none()),
            "{user} list"
        );
    }

    // The channel as the session panel draws it: each control's permission is the table's
    // answer, with the same sentence; someone outside the channel gets a 404.
    let channel = format!("/api/v1/channels/{CHANNEL}");
    for user in users {
        let (status, v) = call(&h, "GET", &channel, user, Value::Null).await;
        if !is_member(user) {
            assert_error(&(status, v), 404, &format!("{user} channel"));
            continue;
        }
        assert_eq!(status, 200, "{user} channel: {v}");
        assert_eq!(v["session"]["id"], json!(sid), "{user}");
        for (name, action) in PANEL_ACTIONS {
            let want = expected(user, action, who);
            let got = &v["permissions"][name];
            assert_eq!(
                (&got["allowed"], &got["reason"]),
                (&json!(want.is_none()), &json!(want)),
                "{user} {name} {who:?}"
            );
        }
        let may_start = expected(user, Action::Start, who).is_none();
        assert_eq!(
            v["allowed_roots"].as_array().map(Vec::len),
            Some(usize::from(may_start)),
            "{user}: the roots only for those who may start"
        );
    }

    // Allowed: past the table (an answer to a decided request is a 409, an interrupt with
    // nothing running too). The prompts come after the context, so that they carry it; the
    // stops last, so that the others find the session.
    let allowed_call = |action: Action| {
        let h = &h;
        let (sid, aid) = (&sid, &aid);
        async move {
            let mut n = 0;
            for user in users {
                if expected(user, action, who).is_some() {
                    continue;
                }
                let Some((method, url, body)) = request_for(action, sid, aid, false) else {
                    continue;
                };
                let got = call(h, method, &url, user, body).await;
                assert!(
                    ![401, 403, 404].contains(&got.0),
                    "{user} {action:?} {who:?} allowed: {got:?}"
                );
                n += 1;
            }
            n
        }
    };
    let last = [Action::Prompt, Action::Stop];
    let mut allowed = 0;
    for action in Action::ALL.into_iter().filter(|a| !last.contains(a)) {
        allowed += allowed_call(action).await;
    }
    allowed += allowed_call(Action::Prompt).await;
    // Allowed context reaches the CLI with a prompt once the turns before it end; refused
    // context never does.
    let v = approvals(&h, &sid).await;
    for a in v["approvals"].as_array().unwrap() {
        if a["state"] == "pending" {
            let url = format!(
                "{SESSIONS}/{sid}/approvals/{}",
                a["approval_id"].as_str().unwrap()
            );
            call(&h, "POST", &url, OWNER, json!({"decision": "deny"})).await;
        }
    }
    eventually("the allowed context in a prompt", || async {
        standin.stdin().iter().any(|l| l.contains("ALLOWED-THREAD"))
    })
    .await;
    assert!(
        !standin.stdin().iter().any(|l| l.contains(REFUSED_MARK)),
        "refused context reached the CLI"
    );
    allowed += allowed_call(Action::Stop).await;
    // Each user refused or allowed for every action that has a route.
    let routed = Action::ALL
        .iter()
        .filter(|a| request_for(**a, "", "", true).is_some())
        .count();
    assert_eq!(refusals + allowed, users.len() * routed);
    assert!(refusals >= 20, "{refusals} refusals");
    h.deactivate().await;
}

#[tokio::test]
async fn the_table_by_role_owner_approves() {
    walk_the_table("api-table-owner", WhoCanApprove::Owner).await;
}

#[tokio::test]
async fn the_table_by_role_members_approve() {
    walk_the_table("api-table-members", WhoCanApprove::Members).await;
}

// --- bad input -------------------------------------------------------------------------------

/// Malformed JSON, unknown fields, bodies over 1 MiB, bad modes and models, traversal paths,
/// bad history pages, unknown sessions and callers without a user: each with its status and
/// nothing changed. Last, a deactivated plugin answers 503.
#[tokio::test]
async fn bad_input_gets_its_status_and_changes_nothing() {
    let standin = StandIn::new();
    let h = stand_in_harness("api-bad", &standin, json!({})).await;
    let (sid, _) = start_session(&h, &standin, json!({})).await;
    let aid = prompt_until_card(&h, &sid, "first").await;
    let s = format!("{SESSIONS}/{sid}");
    let answer = format!("{s}/approvals/{aid}");
    let project = h.project.display().to_string();
    let big = format!("{{\"text\": \"{}\"}}", "a".repeat(1 << 20));
    let mut cases: Vec<(&str, String, String, i64)> = Vec::new();
    let mut case = |method: &'static str, url: &str, body: &str, status: i64| {
        cases.push((method, url.to_owned(), body.to_owned(), status))
    };
    for (method, url) in [
        ("POST", SESSIONS.to_owned()),
        ("POST", format!("{s}/prompt")),
        ("PUT", format!("{s}/mode")),
        ("PUT", format!("{s}/model")),
        ("POST", format!("{s}/context")),
        ("POST", answer.clone()),
    ] {
        case(method, &url, "{\"text\": ", 400);
        case(method, &url, "not json", 400);
        case(method, &url, "", 400);
        case(method, &url, "{\"text\": \"x\", \"mode\": \"plan\", \"model\": \"opus\", \"decision\": \"deny\", \"unknown\": 1}", 400);
        case(method, &url, &big, 413);
    }
    let start = |extra: &str| format!("{{\"channel_id\": \"chan-2\", \"project_path\": {extra}}}");
    case(
        "POST",
        SESSIONS,
        &start(&json!(format!("{project}/../../..")).to_string()),
        400,
    );
    case("POST", SESSIONS, &start("\"relative/path\""), 400);
    case(
        "POST",
        SESSIONS,
        &start(&json!(format!("{project}/missing")).to_string()),
        400,
    );
    case(
        "POST",
        SESSIONS,
        &format!(
            "{{\"channel_id\": \"chan-2\", \"project_path\": {}, \"mode\": \"yolo\"}}",
            json!(project)
        ),
        400,
    );
    case(
        "POST",
        SESSIONS,
        &format!(
            "{{\"channel_id\": \"chan-2\", \"project_path\": {}, \"model\": \"no such model!\"}}",
            json!(project)
        ),
        400,
    );
    case("POST", &format!("{s}/prompt"), "{\"text\": \"  \"}", 400);
    case("PUT", &format!("{s}/mode"), "{\"mode\": \"yolo\"}", 400);
    case("PUT", &format!("{s}/mode"), "{}", 400);
    case(
        "PUT",
        &format!("{s}/model"),
        "{\"model\": \"$(rm -rf /)\"}",
        400,
    );
    case("PUT", &format!("{s}/model"), "{\"model\": \"\"}", 400);
    for body in [
        "{\"thread\": \"x\", \"file\": \"README.md\"}",
        "{}",
        "{\"file\": \"../file.txt\"}",
        "{\"file\": \"../../etc/passwd\"}",
        "{\"file\": \"/etc/passwd\"}",
    ] {
        case("POST", &format!("{s}/context"), body, 400);
    }
    for query in ["limit=0", "limit=201", "limit=abc", "before=x"] {
        case("GET", &format!("{s}/history?{query}"), "", 400);
    }
    case("POST", &answer, "{\"decision\": \"maybe\"}", 400);
    case(
        "POST",
        &answer,
        "{\"decision\": \"approve\", \"reason\": \"r\"}",
        400,
    );
    case(
        "POST",
        &answer,
        "{\"decision\": \"deny\", \"updated_input\": {}}",
        400,
    );
    case(
        "POST",
        &answer,
        "{\"decision\": \"approve\", \"updated_input\": \"x\"}",
        400,
    );
    // Unknown sessions and requests.
    let other = format!("{SESSIONS}/no-such-session");
    for (method, tail, body) in routes_of_a_session() {
        case(method, &format!("{other}{tail}"), &body.to_string(), 404);
    }
    case(
        "POST",
        &format!("{s}/approvals/no-such-request"),
        "{\"decision\": \"approve\"}",
        404,
    );

    for (method, url, body, status) in &cases {
        let before = snapshot(&h, &standin, &sid).await;
        let owner = [("Mattermost-User-Id", OWNER)];
        let (got, v) = h
            .http_raw(method, url, &owner, body.clone().into_bytes())
            .await;
        let what = format!("{method} {url} {}", &body[..body.len().min(100)]);
        assert_error(&(got.unwrap(), v), *status, &what);
        assert_eq!(
            snapshot(&h, &standin, &sid).await,
            before,
            "{what} changed something"
        );
    }

    // No Mattermost-User-Id: 401 on every route.
    for (method, tail, body) in routes_of_a_session() {
        let before = snapshot(&h, &standin, &sid).await;
        let (got, v) = h
            .http_raw(
                method,
                &format!("{s}{tail}"),
                &[],
                body.to_string().into_bytes(),
            )
            .await;
        assert_error(
            &(got.unwrap(), v),
            401,
            &format!("{method} {tail} without a user"),
        );
        assert_eq!(snapshot(&h, &standin, &sid).await, before);
    }
    let (got, v) = h.http_raw("GET", SESSIONS, &[], Vec::new()).await;
    assert_error(&(got.unwrap(), v), 401, "the list without a user");

    h.deactivate().await;
    let got = call(&h, "GET", SESSIONS, OWNER, Value::Null).await;
    assert_error(&got, 503, "the list while deactivated");
}

/// Every route under `/sessions/{id}` (the tail after the id) with a valid body.
fn routes_of_a_session() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("GET", "", Value::Null),
        ("DELETE", "", Value::Null),
        ("POST", "/prompt", json!({"text": "hi"})),
        ("POST", "/interrupt", Value::Null),
        ("PUT", "/mode", json!({"mode": "plan"})),
        ("PUT", "/model", json!({"model": "opus"})),
        ("POST", "/context", json!({"file": "README.md"})),
        ("GET", "/history", Value::Null),
        ("GET", "/approvals", Value::Null),
        ("POST", "/approvals/x", json!({"decision": "approve"})),
    ]
}

// --- decided exactly once ------------------------------------------------------------------

/// A card click first, then the API: 409, and the click's decision stands.
#[tokio::test]
async fn a_card_click_then_the_api_is_a_conflict() {
    let standin = StandIn::new();
    let h = stand_in_harness("api-click-first", &standin, json!({})).await;
    let (sid, _) = start_session(&h, &standin, json!({})).await;
    let aid = prompt_until_card(&h, &sid, "first").await;
    let (card, actions) = h.card().unwrap();
    let (_, v) = h
        .click(OWNER, &card.id, context_json(action(&actions, "deny")))
        .await;
    assert!(v["update"].is_object(), "the click decided: {v}");
    eventually("the click's denial to reach the CLI", || async {
        standin
            .stdin()
            .iter()
            .any(|l| l.contains("\"behavior\":\"deny\""))
    })
    .await;
    let lines = standin.stdin();
    let got = call(
        &h,
        "POST",
        &format!("{SESSIONS}/{sid}/approvals/{aid}"),
        OWNER,
        json!({"decision": "approve"}),
    )
    .await;
    assert_error(&got, 409, "the API after the click");
    assert_eq!(standin.stdin(), lines, "nothing more reached the CLI");
    let v = approvals(&h, &sid).await;
    assert_eq!(v["approvals"][0]["state"], "denied", "{v}");
    h.deactivate().await;
}

/// (REAL CLI) A session whose CLI asks to write `file` (then says `reply`), and the owner's
/// `answer` to that request through the API, which must be taken: the harness, the card (as
/// posted, with its buttons) and the answered approval.
async fn real_cli_answered(
    name: &str,
    file: &str,
    reply: &str,
    answer: Value,
) -> (Harness, Post, Vec<PostAction>, Value) {
    let h = Harness::new(name, |p| write_script(&p.join(file), reply), json!({})).await;
    let (card, actions) = h.start_and_wait_for_card(file).await;
    let (_, list) = call(&h, "GET", SESSIONS, OWNER, Value::Null).await;
    let sid = list["sessions"][0]["id"].as_str().unwrap().to_owned();
    let aid = pending_approval(&h, &sid).await;
    let url = format!("{SESSIONS}/{sid}/approvals/{aid}");
    let v = owner_ok(&h, "POST", &url, answer, 200).await;
    (h, card, actions, v)
}

/// The card post `id` as the server holds it now: its attachment.
fn card_now(h: &Harness, id: &str) -> SlackAttachment {
    let post = h.api.lock().unwrap().posts[id].clone();
    match post.props.as_ref().and_then(|p| p.get("attachments")) {
        Some(Any::Attachments(a)) => a[0].clone(),
        other => panic!("no attachment: {other:?}"),
    }
}

/// Waits for the card to show `decided` (by the API) without buttons; then a click of
/// `button` on it is refused and leaves it as it is.
async fn card_decided_then_click_refused(
    h: &Harness,
    card: &Post,
    actions: &[PostAction],
    decided: &str,
    button: &str,
) {
    h.wait_for("the card to show the API's decision", |_| {
        let att = card_now(h, &card.id);
        att.actions.is_empty() && att.text.contains(decided)
    })
    .await;
    let updates = h.card_updates(&card.id);
    let (_, v) = h
        .click(OWNER, &card.id, context_json(action(actions, button)))
        .await;
    assert!(
        v["ephemeral_text"]
            .as_str()
            .is_some_and(|t| t.contains("no longer pending") || t.contains("already answered")),
        "{v}"
    );
    assert_eq!(
        h.card_updates(&card.id),
        updates,
        "the refused click left the card"
    );
}

/// (REAL CLI) The API approves: the card shows who decided and loses its buttons, the file is
/// written, and a later click is refused.
#[tokio::test]
async fn real_cli_api_approval_closes_the_card_and_a_click_after_it_is_refused() {
    let approve = json!({"decision": "approve"});
    let (h, card, actions, v) =
        real_cli_answered("api-approve", "hello.txt", "Wrote it.", approve).await;
    assert_eq!(
        (&v["state"], &v["decided_by"]),
        (&json!("approved"), &json!(OWNER))
    );
    h.wait_for("the file", |_| h.project.join("hello.txt").exists())
        .await;
    card_decided_then_click_refused(&h, &card, &actions, "✅ Approved by @name-u1", "deny").await;
    h.wait_for_done().await;
    assert_eq!(
        std::fs::read_to_string(h.project.join("hello.txt")).unwrap(),
        "hi there\n"
    );
    h.deactivate().await;
}

/// (REAL CLI) A denial with a reason through the API reaches the model as the deny message.
#[tokio::test]
async fn real_cli_api_deny_with_reason_reaches_the_model() {
    const REASON: &str = "Keep the greeting where it is";
    let deny = json!({"decision": "deny", "reason": REASON});
    let (h, card, _, v) = real_cli_answered("api-deny", "denied.txt", "Understood.", deny).await;
    let told = format!("Denied by @name-u1: {REASON}");
    assert_eq!(
        (&v["state"], &v["reason"]),
        (&json!("denied"), &json!(told)),
        "{v}"
    );
    h.wait_for_done().await;
    assert!(!h.project.join("denied.txt").exists());
    assert!(
        h.model_requests().iter().any(|r| r.contains(&told)),
        "the deny message reached the model"
    );
    h.wait_for("the card to show the denial", |_| {
        let att = card_now(&h, &card.id);
        att.actions.is_empty() && att.text.contains("⛔ Denied by @name-u1")
    })
    .await;
    h.deactivate().await;
}
