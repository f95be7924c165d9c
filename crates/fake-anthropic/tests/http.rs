//! The fake over real HTTP (raw HTTP/1.1 so the test needs no client crate).

use fake_anthropic::{FakeServer, Script};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn post(base: &str, path: &str, body: &Value) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let body = body.to_string();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nx-api-key: sk-test\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let status = out[9..12].parse().expect("status code");
    (status, out)
}

/// SSE event names in order, from a raw (possibly chunked) HTTP response.
fn event_names(raw: &str) -> Vec<&str> {
    raw.lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect()
}

#[tokio::test]
async fn serves_the_script_in_order_and_logs_every_request() {
    let dir = std::env::temp_dir().join(format!("fake-anthropic-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("requests.jsonl");
    let _ = std::fs::remove_file(&log);
    let script = Script::from_json(
        &json!([
            {"kind": "message", "blocks": [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "hi there"}]},
            {"kind": "http_error", "status": 529, "times": 2},
            {"kind": "stream_error", "blocks": [{"type": "text", "text": "par"}], "message": "boom"},
            {"kind": "message", "blocks": [{"type": "tool_use", "name": "Write", "input": {"file_path": "/x", "content": "y"}},
                                           {"type": "tool_use", "name": "Bash", "input": {"command": "ls"}}]}
        ])
        .to_string(),
    )
    .expect("script");
    let server = FakeServer::start(script, Some(&log)).await.expect("start");
    let base = server.base_url();
    let streaming =
        json!({"model": "claude-opus-5-5", "stream": true, "max_tokens": 128000, "messages": []});

    let (status, raw) = post(&base, "/v1/messages?beta=true", &streaming).await;
    assert_eq!(status, 200);
    assert!(raw.contains("text/event-stream"));
    assert_eq!(
        event_names(&raw),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(
        raw.contains("\"thinking_delta\"")
            && raw.contains("\"signature_delta\"")
            && raw.contains("\"end_turn\"")
    );

    for _ in 0..2 {
        let (status, raw) = post(&base, "/v1/messages", &streaming).await;
        assert_eq!(status, 529);
        assert!(raw.contains("overloaded_error"));
    }

    let (status, raw) = post(&base, "/v1/messages", &streaming).await;
    assert_eq!(status, 200);
    assert_eq!(event_names(&raw).last(), Some(&"error"));

    // A set_model probe does not consume a turn.
    let probe =
        json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, raw) = post(&base, "/v1/messages", &probe).await;
    assert_eq!(status, 200);
    assert!(raw.contains("\"type\":\"message\""));

    // Non-streaming answer of the next turn: two tool_use blocks with full inputs and unique ids.
    let non_stream = json!({"model": "m", "stream": false, "max_tokens": 64000, "messages": []});
    let (status, raw) = post(&base, "/v1/messages", &non_stream).await;
    assert_eq!(status, 200);
    let body: Value =
        serde_json::from_str(raw.split("\r\n\r\n").nth(1).expect("body")).expect("json body");
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(body["content"][0]["name"], "Write");
    assert_eq!(body["content"][1]["input"], json!({"command": "ls"}));
    assert_ne!(body["content"][0]["id"], body["content"][1]["id"]);

    let (status, raw) = post(&base, "/v1/messages/count_tokens", &json!({"messages": []})).await;
    assert_eq!(status, 200);
    assert!(raw.contains("input_tokens"));
    let (status, _) = post(&base, "/v1/other", &json!({})).await;
    assert_eq!(status, 404);

    // Script exhausted: a harmless text answer rather than a hang or an error the CLI retries.
    let (_, raw) = post(&base, "/v1/messages", &streaming).await;
    assert!(raw.contains("exhausted"));

    assert_eq!(server.remaining_calls(), 0);
    let logged: Vec<Value> = std::fs::read_to_string(&log)
        .expect("log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("log line"))
        .collect();
    assert_eq!(logged.len(), 9);
    assert_eq!(logged, server.requests());
    let kinds: Vec<&str> = logged.iter().filter_map(|r| r["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "stream",
            "stream",
            "stream",
            "stream",
            "probe",
            "non_stream",
            "count_tokens",
            "other",
            "stream"
        ]
    );
    assert_eq!(logged[0]["headers"]["x-api-key"], "sk-test");
    assert_eq!(logged[0]["body"]["max_tokens"], 128000);
    let _ = std::fs::remove_dir_all(&dir);
}
