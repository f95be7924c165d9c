//! The live events' replay (`GET /api/v1/sessions/{id}/events`) and the metrics route
//! (`GET /api/v1/metrics`) through ServeHTTP, after a whole turn of the stand-in CLI (a prompt,
//! its approval request answered through the API, the turn's end): events numbered 1..n with
//! no gap, flat, paged by `after` and `limit`; metrics that count what the test did, for
//! system admins only (/work/notes/issue10-contract.md).

mod support;

use claude_code::chat::authz::Action;
use claude_code::config::WhoCanApprove;
use serde_json::{json, Value};
use support::api::*;
use support::chat::*;
use support::roles::*;

/// The fields every event carries.
const EVENT_KEYS: &[&str] = &["session_id", "seq", "at", "event"];

/// The owner's session runs one whole turn: `text` prompted, the stand-in's Write request
/// approved through the API, the turn's `turn` event stored. The session id.
async fn one_turn(h: &Harness, standin: &StandIn, text: &str) -> String {
    let (sid, _) = start_session(h, standin, json!({})).await;
    let aid = prompt_until_card(h, &sid, text).await;
    let url = format!("{SESSIONS}/{sid}/approvals/{aid}");
    owner_ok(h, "POST", &url, json!({"decision": "approve"}), 200).await;
    eventually("the turn's end among the events", || async {
        events(h, &sid, "after=0").await["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "turn")
    })
    .await;
    sid
}

/// `GET …/events?query` as the owner.
async fn events(h: &Harness, sid: &str, query: &str) -> Value {
    let url = format!("{SESSIONS}/{sid}/events?{query}");
    owner_ok(h, "GET", &url, Value::Null, 200).await
}

fn seqs(page: &Value) -> Vec<i64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect()
}

/// The replay after a turn: every event from 1 with no gap, flat, with its common fields;
/// `after` and `limit` page it exactly; bad pages are 400, an outsider gets 404; once the
/// session settles its `last_seq` is the last event's.
#[tokio::test]
async fn events_replay_in_order_flat_and_paged() {
    let standin = StandIn::new();
    let h = stand_in_harness("events", &standin, json!({})).await;
    let sid = one_turn(&h, &standin, "replay me please").await;

    // Settled: the session names the last event, and no more come.
    let last_seq = || async {
        let (_, session) = call(&h, "GET", &format!("{SESSIONS}/{sid}"), OWNER, Value::Null).await;
        session["last_seq"].clone()
    };
    eventually("the session's last_seq to be the last event's", || async {
        let shown = last_seq().await;
        shown.as_i64() > Some(0) && events(&h, &sid, "after=0").await["last_seq"] == shown
    })
    .await;
    let all = events(&h, &sid, "after=0").await;
    assert_eq!(all["last_seq"], last_seq().await, "settled");
    assert_keys(&all, &["events", "last_seq"]);
    let list = all["events"].as_array().unwrap().clone();
    let n = list.len() as i64;
    assert_eq!(seqs(&all), (1..=n).collect::<Vec<_>>(), "{all}");
    assert_eq!(all["last_seq"], n);
    for e in &list {
        let fields = e.as_object().unwrap();
        for k in EVENT_KEYS {
            assert!(fields.contains_key(*k), "{k} missing in {e}");
        }
        assert_eq!(e["session_id"], sid, "{e}");
        assert!(e["at"].is_i64() && e["event"].is_string(), "{e}");
        assert!(
            fields.values().all(|v| !v.is_object() && !v.is_array()),
            "not flat: {e}"
        );
    }
    let names: Vec<&str> = list.iter().map(|e| e["event"].as_str().unwrap()).collect();
    for name in ["status", "prompt", "approval", "turn"] {
        assert!(names.contains(&name), "no {name} event in {names:?}");
    }
    let prompt = list.iter().find(|e| e["event"] == "prompt").unwrap();
    assert_eq!(
        (&prompt["text"], &prompt["author"]),
        (&json!("replay me please"), &json!(OWNER)),
        "{prompt}"
    );
    let decided = list
        .iter()
        .find(|e| e["event"] == "approval" && e["phase"] == "decided")
        .expect("the approval's decision");
    assert_eq!(decided["by"], OWNER, "{decided}");

    // Pages: after k is exactly what follows k; limit caps from the start.
    for k in [0, 1, n / 2, n - 1, n] {
        let page = events(&h, &sid, &format!("after={k}")).await;
        assert_eq!(page["events"], json!(list[k as usize..]), "after={k}");
        assert_eq!(page["last_seq"], n, "after={k}");
    }
    let page = events(&h, &sid, "limit=2").await;
    assert_eq!(page["events"], json!(list[..2]));
    assert_eq!(page["last_seq"], 2);
    let page = events(&h, &sid, "after=1&limit=2").await;
    assert_eq!(seqs(&page), [2, 3]);
    let page = events(&h, &sid, "after=999999").await;
    assert_eq!(page, json!({"events": [], "last_seq": 999999}));

    let url = format!("{SESSIONS}/{sid}/events");
    for query in [
        "after=-1",
        "after=x",
        "limit=0",
        "limit=1001",
        "limit=abc",
        "after=1.5",
    ] {
        let got = call(&h, "GET", &format!("{url}?{query}"), OWNER, Value::Null).await;
        assert_error(&got, 400, query);
    }
    // Members read them; someone outside the channel does not learn the session exists.
    assert!(expected(MEMBER, Action::Status, WhoCanApprove::Owner).is_none());
    let (status, page) = call(&h, "GET", &url, MEMBER, Value::Null).await;
    assert_eq!((status, &page["events"]), (200, &json!(list)));
    let got = call(&h, "GET", &url, OUTSIDER, Value::Null).await;
    assert_error(&got, 404, "an outsider");
    assert_eq!(got.1["error"], NOT_VISIBLE);
    h.deactivate().await;
}

/// `GET /api/v1/metrics` as `user`: the status and the text.
async fn metrics(h: &Harness, user: &str) -> (Option<i64>, String) {
    let headers = [("Mattermost-User-Id", user)];
    let (status, body) = h
        .http_bytes("GET", "/api/v1/metrics", &headers, Vec::new())
        .await;
    (status, String::from_utf8(body).unwrap())
}

/// After one session's whole turn, the admin's scrape counts it: one session started and
/// running, one turn ended well, one approval approved, the API calls made. A member is
/// refused with the table's words.
#[tokio::test]
async fn metrics_count_the_turn_for_admins_only() {
    let standin = StandIn::new();
    let h = stand_in_harness("metrics", &standin, json!({})).await;
    one_turn(&h, &standin, "count me").await;
    let (status, text) = metrics(&h, ADMIN).await;
    assert_eq!(status, Some(200), "{text}");
    for line in [
        "claude_code_sessions_started_total 1\n",
        "claude_code_sessions_active 1\n",
        "claude_code_turns_total{outcome=\"ok\"} 1\n",
        "claude_code_turns_total{outcome=\"error\"} 0\n",
        "claude_code_approvals_total{outcome=\"approved\"} 1\n",
        "claude_code_approvals_total{outcome=\"denied\"} 0\n",
        "claude_code_approval_wait_seconds_count 1\n",
        "claude_code_cli_spawn_seconds_count 1\n",
        "claude_code_http_requests_total{route=\"POST /api/v1/sessions\",status=\"201\"} 1\n",
        "claude_code_http_requests_total{route=\"POST /api/v1/sessions/{id}/prompt\",status=\"202\"} 1\n",
        "claude_code_outbox_backlog ",
        "# TYPE claude_code_first_text_seconds histogram\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }

    let refusal = expected(MEMBER, Action::Metrics, WhoCanApprove::Owner).expect("admins only");
    let (status, v) = h
        .http_method("GET", "/api/v1/metrics", MEMBER, Value::Null)
        .await;
    assert_error(&(status.unwrap(), v.clone()), 403, "a member");
    assert_eq!(v["error"], refusal);
    // The refusal is counted too, and the admin's own scrape.
    let (_, text) = metrics(&h, ADMIN).await;
    for line in [
        "claude_code_http_requests_total{route=\"GET /api/v1/metrics\",status=\"403\"} 1\n",
        "claude_code_http_requests_total{route=\"GET /api/v1/metrics\",status=\"200\"} 1\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
    h.deactivate().await;
}
