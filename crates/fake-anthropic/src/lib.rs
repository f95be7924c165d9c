//! A scripted fake of the Anthropic Messages API, for driving the real Claude Code CLI in tests.
//!
//! The script is a JSON list of turns; each `POST /v1/messages` consumes the next one (a turn
//! with `times: N` answers N calls, which is how retried errors are scripted). Responses follow
//! the Messages API's SSE framing exactly (see docs/claude-cli-protocol.md §8), because the CLI
//! parses them with the real SDK. Every request is logged (memory, and a JSONL file if given) so
//! tests can assert what the CLI sent to the model, e.g. a deny message in a tool_result; each
//! entry lists the request's image blocks by media type and sha256 of their bytes (`images`).
//!
//! It binds 127.0.0.1 only: it is a test fixture, never a network service.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    #[error("reading script {path}: {source}")]
    ReadScript {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("script is not a valid list of turns: {0}")]
    BadScript(#[from] serde_json::Error),
    #[error("opening request log {path}: {source}")]
    OpenLog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("binding 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
}

/// What one (or `times`) `/v1/messages` call(s) answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Turn {
    /// A normal model message, streamed as SSE (or as one JSON body for `stream:false`).
    Message {
        blocks: Vec<Block>,
        /// Defaults to `tool_use` when a block is a tool_use, else `end_turn`.
        #[serde(default)]
        stop_reason: Option<String>,
        /// Pause between SSE events, to make a stream slow enough to interrupt.
        #[serde(default)]
        delay_ms: u64,
        #[serde(default)]
        input_tokens: Option<u64>,
        #[serde(default)]
        output_tokens: Option<u64>,
    },
    /// An HTTP error status with the API's error JSON (500, 529, 401, 429…).
    HttpError {
        status: u16,
        #[serde(default)]
        error_type: Option<String>,
        #[serde(default)]
        message: Option<String>,
        #[serde(default = "one")]
        times: u32,
    },
    /// A 200 stream that emits `blocks`, then an `event: error` instead of finishing.
    StreamError {
        #[serde(default)]
        blocks: Vec<Block>,
        #[serde(default)]
        error_type: Option<String>,
        #[serde(default)]
        message: Option<String>,
        #[serde(default = "one")]
        times: u32,
    },
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Block {
    Text {
        text: String,
    },
    Thinking {
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    ToolUse {
        /// Must be unique across the conversation; generated from the request number if absent.
        #[serde(default)]
        id: Option<String>,
        name: String,
        input: Value,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Script {
    pub turns: Vec<Turn>,
}

impl Script {
    pub fn from_json(text: &str) -> Result<Self, FakeError> {
        Ok(serde_json::from_str(text)?)
    }

    pub fn from_file(path: &Path) -> Result<Self, FakeError> {
        let text = std::fs::read_to_string(path).map_err(|source| FakeError::ReadScript {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text)
    }
}

struct State {
    /// (script index, turn, calls left for it)
    pending: VecDeque<(usize, Turn, u32)>,
    seq: u64,
    log: Vec<Value>,
    log_file: Option<std::fs::File>,
}

impl State {
    fn next_turn(&mut self) -> Option<(usize, Turn)> {
        let (index, turn, left) = self.pending.front_mut()?;
        let out = (*index, turn.clone());
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.pending.pop_front();
        }
        Some(out)
    }

    fn record(&mut self, entry: Value) {
        if let Some(file) = &mut self.log_file {
            // A failed log write must not fail the response the CLI is waiting for.
            let _ = writeln!(file, "{entry}").and_then(|_| file.flush());
        }
        self.log.push(entry);
    }
}

/// A running fake server; stops when dropped.
pub struct FakeServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FakeServer {
    /// Binds 127.0.0.1 on an ephemeral port and serves `script` in a background task.
    pub async fn start(script: Script, log_path: Option<&Path>) -> Result<Self, FakeError> {
        Self::start_on(script, log_path, 0).await
    }

    pub async fn start_on(
        script: Script,
        log_path: Option<&Path>,
        port: u16,
    ) -> Result<Self, FakeError> {
        let log_file = match log_path {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| FakeError::OpenLog {
                        path: path.to_path_buf(),
                        source,
                    })?,
            ),
            None => None,
        };
        let pending = script
            .turns
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let times = match &t {
                    Turn::Message { .. } => 1,
                    Turn::HttpError { times, .. } | Turn::StreamError { times, .. } => {
                        (*times).max(1)
                    }
                };
                (i, t, times)
            })
            .collect();
        let state = Arc::new(Mutex::new(State {
            pending,
            seq: 0,
            log: Vec::new(),
            log_file,
        }));
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(FakeError::Bind)?;
        let addr = listener.local_addr().map_err(FakeError::Bind)?;
        let (tx, mut rx) = oneshot::channel();
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let st = st.clone();
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(move |req| handle(st.clone(), req));
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                }
            }
        });
        Ok(Self {
            addr,
            state,
            shutdown: Some(tx),
        })
    }

    /// `http://127.0.0.1:PORT`, the value for `ANTHROPIC_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request seen so far (same entries as the JSONL log).
    pub fn requests(&self) -> Vec<Value> {
        self.state.lock().map(|s| s.log.clone()).unwrap_or_default()
    }

    /// Scripted calls not yet consumed.
    pub fn remaining_calls(&self) -> u32 {
        self.state
            .lock()
            .map(|s| s.pending.iter().map(|(_, _, n)| *n).sum())
            .unwrap_or(0)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

type ResBody = BoxBody<Bytes, Infallible>;

/// Streams SSE chunks as a task produces them (so delays are real and a client disconnect is seen).
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

fn json_response(status: StatusCode, body: &Value, request_id: &str) -> Response<ResBody> {
    let mut res = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(request_id) {
        h.insert("request-id", v);
    }
    res
}

fn error_type_for(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

fn error_body(error_type: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type, "message": message}})
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<ResBody>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let headers = json!({
        "x-api-key": header("x-api-key"),
        "anthropic-version": header("anthropic-version"),
        "anthropic-beta": header("anthropic-beta"),
        "user-agent": header("user-agent"),
        "x-claude-code-session-id": header("x-claude-code-session-id"),
    });
    let bytes = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let body: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let max_tokens = body.get("max_tokens").and_then(Value::as_u64);
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("claude-fake")
        .to_owned();

    let (seq, kind, turn) = {
        let Ok(mut st) = state.lock() else {
            return Ok(json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &error_body("api_error", "fake state poisoned"),
                "req_fake_poisoned",
            ));
        };
        st.seq += 1;
        let seq = st.seq;
        let (kind, turn) = match (method.as_str(), path.as_str()) {
            ("POST", "/v1/messages") if !stream && max_tokens.is_some_and(|m| m <= 1) => {
                ("probe", None)
            }
            ("POST", "/v1/messages") => {
                let kind = if stream { "stream" } else { "non_stream" };
                (kind, st.next_turn())
            }
            ("POST", "/v1/messages/count_tokens") => ("count_tokens", None),
            _ => ("other", None),
        };
        st.record(json!({
            "seq": seq, "kind": kind, "method": method, "path": path, "query": query,
            "headers": headers, "turn": turn.as_ref().map(|(i, _)| *i),
            "images": images_of(&body), "body": body,
        }));
        (seq, kind, turn.map(|(_, t)| t))
    };
    let request_id = format!("req_fake_{seq}");
    let msg_id = format!("msg_fake_{seq}");

    let response = match kind {
        "probe" => json_response(
            StatusCode::OK,
            &message_json(
                &msg_id,
                &model,
                &[Block::Text { text: "Hi".into() }],
                "end_turn",
                10,
                1,
                seq,
            ),
            &request_id,
        ),
        "count_tokens" => json_response(
            StatusCode::OK,
            &json!({"input_tokens": (bytes.len() / 4).max(1)}),
            &request_id,
        ),
        "other" => json_response(
            StatusCode::NOT_FOUND,
            &error_body(
                "not_found_error",
                &format!("fake-anthropic does not serve {method} {path}"),
            ),
            &request_id,
        ),
        _ => {
            let turn = turn.unwrap_or_else(|| Turn::Message {
                blocks: vec![Block::Text {
                    text: "fake-anthropic: script exhausted".into(),
                }],
                stop_reason: None,
                delay_ms: 0,
                input_tokens: None,
                output_tokens: None,
            });
            answer(turn, stream, &msg_id, &model, &request_id, seq)
        }
    };
    Ok(response)
}

/// The image blocks of a request's messages, in order, as tests check them: the media type,
/// the sha256 (hex) and length of the decoded bytes (`sha256` null when the data is not valid
/// base64), and the message's index.
fn images_of(body: &Value) -> Vec<Value> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let blocks = message.get("content").and_then(Value::as_array);
        for block in blocks.into_iter().flatten() {
            if block.get("type").and_then(Value::as_str) != Some("image") {
                continue;
            }
            let source = &block["source"];
            let data = source["data"].as_str().unwrap_or("");
            let bytes = base64::engine::general_purpose::STANDARD.decode(data).ok();
            out.push(json!({
                "message": index,
                "source_type": source["type"],
                "media_type": source["media_type"],
                "bytes": bytes.as_ref().map(Vec::len),
                "sha256": bytes.map(|b| {
                    sha2::Sha256::digest(&b).iter().map(|x| format!("{x:02x}")).collect::<String>()
                }),
            }));
        }
    }
    out
}

fn default_stop_reason(blocks: &[Block]) -> &'static str {
    if blocks.iter().any(|b| matches!(b, Block::ToolUse { .. })) {
        "tool_use"
    } else {
        "end_turn"
    }
}

fn estimate_output_tokens(blocks: &[Block]) -> u64 {
    let chars: usize = blocks
        .iter()
        .map(|b| match b {
            Block::Text { text } => text.len(),
            Block::Thinking { thinking, .. } => thinking.len(),
            Block::ToolUse { input, .. } => input.to_string().len(),
        })
        .sum();
    (chars as u64 / 4).max(1)
}

fn tool_id(id: &Option<String>, name: &str, seq: u64, index: usize) -> String {
    id.clone()
        .unwrap_or_else(|| format!("toolu_{}_{seq}_{index}", name.to_ascii_lowercase()))
}

const SIGNATURE: &str = "ZmFrZXNpZw==";

fn message_json(
    msg_id: &str,
    model: &str,
    blocks: &[Block],
    stop_reason: &str,
    input_tokens: u64,
    output_tokens: u64,
    seq: u64,
) -> Value {
    let content: Vec<Value> = blocks
        .iter()
        .enumerate()
        .map(|(i, b)| match b {
            Block::Text { text } => json!({"type": "text", "text": text}),
            Block::Thinking {
                thinking,
                signature,
            } => json!({
                "type": "thinking", "thinking": thinking,
                "signature": signature.as_deref().unwrap_or(SIGNATURE)}),
            Block::ToolUse { id, name, input } => json!({
                "type": "tool_use", "id": tool_id(id, name, seq, i), "name": name, "input": input}),
        })
        .collect();
    json!({
        "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": stop_reason, "stop_sequence": null,
        "usage": usage(input_tokens, output_tokens),
    })
}

fn usage(input_tokens: u64, output_tokens: u64) -> Value {
    json!({"input_tokens": input_tokens, "output_tokens": output_tokens,
           "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
}

fn sse(event: &Value) -> Bytes {
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    Bytes::from(format!("event: {kind}\ndata: {event}\n\n"))
}

/// Splits text into word-sized deltas (each keeps its trailing whitespace), so a client sees
/// several `text_delta`s as with the real API.
fn word_chunks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        cur.push(c);
        if c.is_whitespace() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

/// Splits a JSON text at a char boundary near the middle: partial_json may be cut anywhere.
fn halves(text: &str) -> Vec<String> {
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    let (a, b) = text.split_at(mid);
    [a, b]
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn block_events(blocks: &[Block], seq: u64) -> Vec<Value> {
    let mut events = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        match block {
            Block::Text { text } => {
                events.push(json!({"type": "content_block_start", "index": index,
                                   "content_block": {"type": "text", "text": ""}}));
                for chunk in word_chunks(text) {
                    events.push(json!({"type": "content_block_delta", "index": index,
                                       "delta": {"type": "text_delta", "text": chunk}}));
                }
            }
            Block::Thinking {
                thinking,
                signature,
            } => {
                events.push(json!({"type": "content_block_start", "index": index,
                                   "content_block": {"type": "thinking", "thinking": "", "signature": ""}}));
                for chunk in word_chunks(thinking) {
                    events.push(json!({"type": "content_block_delta", "index": index,
                                       "delta": {"type": "thinking_delta", "thinking": chunk}}));
                }
                events.push(json!({"type": "content_block_delta", "index": index,
                                   "delta": {"type": "signature_delta",
                                             "signature": signature.as_deref().unwrap_or(SIGNATURE)}}));
            }
            Block::ToolUse { id, name, input } => {
                events.push(json!({"type": "content_block_start", "index": index,
                                   "content_block": {"type": "tool_use", "id": tool_id(id, name, seq, index),
                                                     "name": name, "input": {}}}));
                for part in halves(&input.to_string()) {
                    events.push(json!({"type": "content_block_delta", "index": index,
                                       "delta": {"type": "input_json_delta", "partial_json": part}}));
                }
            }
        }
        events.push(json!({"type": "content_block_stop", "index": index}));
    }
    events
}

fn sse_response(events: Vec<Bytes>, delay: Duration, request_id: &str) -> Response<ResBody> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        for (i, chunk) in events.into_iter().enumerate() {
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if tx.send(chunk).await.is_err() {
                break; // client went away (e.g. an interrupt)
            }
        }
    });
    let mut res = Response::new(BoxBody::new(ChannelBody(rx)));
    let h = res.headers_mut();
    h.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        "cache-control",
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(request_id) {
        h.insert("request-id", v);
    }
    res
}

fn answer(
    turn: Turn,
    stream: bool,
    msg_id: &str,
    model: &str,
    request_id: &str,
    seq: u64,
) -> Response<ResBody> {
    let start = |input_tokens: u64| {
        json!({"type": "message_start", "message": {
            "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": usage(input_tokens, 1)}})
    };
    match turn {
        Turn::Message {
            blocks,
            stop_reason,
            delay_ms,
            input_tokens,
            output_tokens,
        } => {
            let stop = stop_reason.unwrap_or_else(|| default_stop_reason(&blocks).to_owned());
            let input_tokens = input_tokens.unwrap_or(100);
            let output_tokens = output_tokens.unwrap_or_else(|| estimate_output_tokens(&blocks));
            if !stream {
                let body = message_json(
                    msg_id,
                    model,
                    &blocks,
                    &stop,
                    input_tokens,
                    output_tokens,
                    seq,
                );
                return json_response(StatusCode::OK, &body, request_id);
            }
            let mut events = vec![start(input_tokens), json!({"type": "ping"})];
            events.extend(block_events(&blocks, seq));
            events.push(json!({"type": "message_delta",
                               "delta": {"stop_reason": stop, "stop_sequence": null},
                               "usage": {"output_tokens": output_tokens}}));
            events.push(json!({"type": "message_stop"}));
            sse_response(
                events.iter().map(sse).collect(),
                Duration::from_millis(delay_ms),
                request_id,
            )
        }
        Turn::HttpError {
            status,
            error_type,
            message,
            ..
        } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let error_type = error_type.unwrap_or_else(|| error_type_for(status).to_owned());
            let message = message.unwrap_or_else(|| format!("fake {status}"));
            json_response(code, &error_body(&error_type, &message), request_id)
        }
        Turn::StreamError {
            blocks,
            error_type,
            message,
            ..
        } => {
            let error_type = error_type.unwrap_or_else(|| "overloaded_error".to_owned());
            let message = message.unwrap_or_else(|| "fake mid-stream error".to_owned());
            if !stream {
                return json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &error_body(&error_type, &message),
                    request_id,
                );
            }
            let mut events = vec![start(100)];
            events.extend(block_events(&blocks, seq));
            events.push(error_body(&error_type, &message));
            sse_response(events.iter().map(sse).collect(), Duration::ZERO, request_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_blocks_are_logged_by_media_type_and_digest() {
        let body = json!({"messages": [
            {"role": "user", "content": "no blocks"},
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "aGVsbG8="}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "%%"}},
            ]},
        ]});
        assert_eq!(
            images_of(&body),
            vec![
                json!({"message": 1, "source_type": "base64", "media_type": "image/png", "bytes": 5,
                       "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}),
                json!({"message": 1, "source_type": "base64", "media_type": "image/gif",
                       "bytes": null, "sha256": null}),
            ]
        );
        assert_eq!(images_of(&json!("not json")), Vec::<Value>::new());
    }

    #[test]
    fn parses_every_turn_kind() {
        let script = Script::from_json(
            r#"[
              {"kind":"message","blocks":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"hi"}]},
              {"kind":"message","blocks":[{"type":"tool_use","name":"Write","input":{"file_path":"a","content":"b"}},
                                          {"type":"tool_use","name":"Bash","input":{"command":"ls"}}]},
              {"kind":"http_error","status":529,"times":3},
              {"kind":"stream_error","message":"boom"}
            ]"#,
        )
        .expect("script parses");
        assert_eq!(script.turns.len(), 4);
        assert!(Script::from_json(r#"[{"kind":"message","blocks":[],"typo":1}]"#).is_err());
    }

    #[test]
    fn sse_framing_matches_the_api() {
        let events = block_events(
            &[Block::ToolUse {
                id: None,
                name: "Write".into(),
                input: json!({"file_path": "/x", "content": "hi"}),
            }],
            7,
        );
        let joined: String = events
            .iter()
            .filter_map(|e| e["delta"]["partial_json"].as_str())
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&joined).ok(),
            Some(json!({"file_path": "/x", "content": "hi"}))
        );
        assert_eq!(events[0]["content_block"]["id"], "toolu_write_7_0");
        let frame = sse(&json!({"type": "message_stop"}));
        assert_eq!(
            &frame[..],
            b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
        assert_eq!(word_chunks("a b c"), vec!["a ", "b ", "c"]);
    }
}
