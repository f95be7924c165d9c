//! Helpers of the REST API tests: calls as a user, error answers, a session started through
//! the API, its approvals, and the snapshot of everything a refused or bad call must leave as
//! it was.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use serde_json::{json, Value};

use super::chat::*;
use super::roles::OWNER;

pub const SESSIONS: &str = "/api/v1/sessions";
/// What REST tells someone outside the channel instead of the table's refusal.
pub const NOT_VISIBLE: &str = "No Claude Code session that you can see there";

pub fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

pub fn assert_keys(v: &Value, expected: &[&str]) {
    let want: BTreeSet<String> = expected.iter().map(|k| k.to_string()).collect();
    assert_eq!(keys(v), want, "{v}");
}

/// `method url` as `user`: the status and the JSON answer.
pub async fn call(h: &Harness, method: &str, url: &str, user: &str, body: Value) -> (i64, Value) {
    let (status, v) = h.http_method(method, url, user, body).await;
    (status.expect("a status"), v)
}

/// `method url` as the owner, which must answer `want`: the JSON answer.
pub async fn owner_ok(h: &Harness, method: &str, url: &str, body: Value, want: i64) -> Value {
    let (status, v) = call(h, method, url, OWNER, body).await;
    assert_eq!(status, want, "{method} {url}: {v}");
    v
}

/// Asserts an error answer: the status, and the body `{"error", "status"}`.
pub fn assert_error(got: &(i64, Value), status: i64, what: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    assert_eq!(got.1["status"], json!(status), "{what}: {}", got.1);
    assert!(got.1["error"].is_string(), "{what}: {}", got.1);
}

/// Polls `f` until it holds (90 s at most).
pub async fn eventually<F: Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Everything a refused or bad call must leave as it was.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub session: Value,
    pub approvals: Value,
    pub sessions_listed: usize,
    pub cli_lines: Vec<String>,
    pub creates: usize,
    pub updates: usize,
    pub launched: usize,
}

pub async fn snapshot(h: &Harness, standin: &StandIn, sid: &str) -> Snapshot {
    let (_, mut session) = call(h, "GET", &format!("{SESSIONS}/{sid}"), OWNER, Value::Null).await;
    // The live events of what happened before are numbered a moment later (they are stored
    // in batches every 100 ms): their count is no sign of a change.
    if let Some(s) = session.as_object_mut() {
        s.remove("last_seq");
    }
    let approvals = approvals(h, sid).await;
    let (_, list) = call(h, "GET", SESSIONS, OWNER, Value::Null).await;
    let log = h.log();
    let count = |kind: &str| log.iter().filter(|(k, _)| k == kind).count();
    Snapshot {
        session,
        approvals,
        sessions_listed: list["sessions"].as_array().map_or(0, Vec::len),
        cli_lines: standin.stdin(),
        creates: count("create"),
        // Cards only: a turn post may still get its tick's update.
        updates: h.card().map_or(0, |(card, _)| h.card_updates(&card.id)),
        launched: standin.launched(),
    }
}

/// The owner starts a session in CHANNEL through the API; its id, once its CLI runs.
pub async fn start_session(h: &Harness, standin: &StandIn, extra: Value) -> (String, Value) {
    let mut body = json!({"channel_id": CHANNEL, "project_path": h.project.display().to_string()});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let v = owner_ok(h, "POST", SESSIONS, body, 201).await;
    assert_eq!(standin.wait_launched(1).await, 1, "one CLI");
    (v["id"].as_str().unwrap().to_owned(), v)
}

/// The owner prompts; the stand-in asks for a Write, whose card is waited for. The pending
/// approval's id.
pub async fn prompt_until_card(h: &Harness, sid: &str, text: &str) -> String {
    let before = h.card().map(|(c, _)| c.id);
    let url = format!("{SESSIONS}/{sid}/prompt");
    owner_ok(h, "POST", &url, json!({ "text": text }), 202).await;
    h.wait_for("a new card with buttons", |_| {
        h.card()
            .is_some_and(|(c, a)| !a.is_empty() && Some(&c.id) != before.as_ref())
    })
    .await;
    pending_approval(h, sid).await
}

/// The session's approval requests, as the owner lists them.
pub async fn approvals(h: &Harness, sid: &str) -> Value {
    let url = format!("{SESSIONS}/{sid}/approvals");
    owner_ok(h, "GET", &url, Value::Null, 200).await
}

pub async fn pending_approval(h: &Harness, sid: &str) -> String {
    let v = approvals(h, sid).await;
    let pending: Vec<&Value> = v["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "pending")
        .collect();
    assert_eq!(pending.len(), 1, "{v}");
    pending[0]["approval_id"].as_str().unwrap().to_owned()
}
