use std::collections::BTreeMap;
use std::sync::Weak;

use super::http::MAX_BODY;
use super::*;
use crate::mattermost::http::{Body, Headers, MemorySink, ResponseWriter, ServeHttpRequest};
use crate::mattermost::model::{
    Any, AppError, PostAction, PostActionIntegration, PostActionOptions, SlackAttachment,
    SlackAttachmentField, User,
};

// ---- values -------------------------------------------------------------------------------

fn attachment(n: i64) -> SlackAttachment {
    SlackAttachment {
        id: n,
        fallback: "fallback".into(),
        color: "#ff0000".into(),
        title: format!("attachment {n}"),
        text: "text with **markdown** and ünïcødé".into(),
        fields: vec![
            SlackAttachmentField {
                title: "string".into(),
                value: Any::String("v".into()),
                short: true,
            },
            SlackAttachmentField {
                title: "int".into(),
                value: Any::Int64(-42),
                short: false,
            },
        ],
        timestamp: Any::Int64(1_700_000_000),
        actions: vec![PostAction {
            id: "approve".into(),
            r#type: "button".into(),
            name: "Approve".into(),
            style: "good".into(),
            options: vec![PostActionOptions {
                text: "one".into(),
                value: "1".into(),
            }],
            integration: Some(PostActionIntegration {
                url: "/plugins/claude-code/api/v1/actions/approve".into(),
                context: Some(BTreeMap::from([
                    ("request".into(), Any::String("r1".into())),
                    ("sig".into(), Any::Bytes(vec![0, 1, 254, 255])),
                ])),
            }),
            ..PostAction::default()
        }],
        ..SlackAttachment::default()
    }
}

/// Props with every shape a post carries: nested maps and lists, the integer kinds gob tells
/// apart, floats, bytes, and attachments.
fn nested_props() -> BTreeMap<String, Any> {
    BTreeMap::from([
        ("from_bot".into(), Any::String("true".into())),
        ("disable_group_highlight".into(), Any::Bool(true)),
        ("int".into(), Any::Int(7)),
        ("int64".into(), Any::Int64(i64::MIN)),
        ("uint8".into(), Any::Uint8(200)),
        ("float".into(), Any::Float64(0.125)),
        ("strings".into(), Any::Strings(vec!["a".into(), "".into()])),
        (
            "nested".into(),
            Any::Map(BTreeMap::from([
                (
                    "list".into(),
                    Any::List(vec![
                        Any::Nil,
                        Any::Int64(1),
                        Any::Map(BTreeMap::from([("deep".into(), Any::Bool(false))])),
                    ]),
                ),
                ("empty".into(), Any::Map(BTreeMap::new())),
            ])),
        ),
        (
            "attachments".into(),
            Any::Attachments(vec![attachment(1), attachment(2)]),
        ),
        (
            "error".into(),
            Any::from(AppError {
                id: "app.err".into(),
                message: "boom".into(),
                status_code: 500,
                ..AppError::default()
            }),
        ),
    ])
}

fn command_args() -> CommandArgs {
    CommandArgs {
        user_id: "user1".into(),
        channel_id: "chan1".into(),
        team_id: "team1".into(),
        root_id: "root1".into(),
        trigger_id: "trigger".into(),
        command: "/claude prompt hello\nsecond line".into(),
        site_url: "https://mm.example.com".into(),
        user_mentions: Some(BTreeMap::from([("bob".into(), "user2".into())])),
        channel_mentions: Some(BTreeMap::new()),
        ..CommandArgs::default()
    }
}

fn post() -> Post {
    Post {
        id: "post1".into(),
        create_at: 1_700_000_000_123,
        user_id: "user1".into(),
        channel_id: "chan1".into(),
        root_id: "root1".into(),
        message: "please fix the bug 🐛".into(),
        props: Some(nested_props()),
        file_ids: vec!["file1".into(), "file2".into()],
        remote_id: Some("remote".into()),
        is_following: Some(true),
        participants: vec![User {
            id: "user1".into(),
            username: "alice".into(),
            ..User::default()
        }],
        ..Post::default()
    }
}

fn command_response() -> CommandResponse {
    CommandResponse {
        response_type: "ephemeral".into(),
        text: "Session started.".into(),
        props: Some(nested_props()),
        attachments: vec![attachment(3)],
        extra_responses: vec![CommandResponse {
            text: "and one more".into(),
            attachments: vec![attachment(4)],
            ..CommandResponse::default()
        }],
        skip_slack_parsing: true,
        ..CommandResponse::default()
    }
}

fn binary() -> Vec<u8> {
    (0..3000u32).map(|i| (i * 7 % 256) as u8).collect()
}

fn many_headers() -> Headers {
    let mut headers: Headers = (0..150)
        .map(|i| (format!("X-Header-{i}"), vec![format!("value {i}")]))
        .collect();
    headers.insert(
        "Set-Cookie".into(),
        vec!["a=1; Path=/".into(), "b=2; HttpOnly".into()],
    );
    headers.insert(
        "Content-Type".into(),
        vec!["application/octet-stream".into()],
    );
    headers
}

fn http_call() -> HttpCall {
    HttpCall {
        method: "PUT".into(),
        url: "/api/v1/sessions/s1/files/a%2Fb.bin?force=1&x=%20".into(),
        headers: many_headers(),
        body: binary(),
        user_id: "user1".into(),
    }
}

fn http_answer() -> HttpAnswer {
    HttpAnswer {
        status: 201,
        headers: many_headers(),
        body: binary(),
    }
}

// ---- round trips --------------------------------------------------------------------------

#[test]
fn calls_round_trip_exactly() {
    for call in [
        Call::Command(command_args()),
        Call::Command(CommandArgs::default()),
        Call::Posted(post()),
        Call::Posted(Post::default()),
        Call::Http(http_call()),
        Call::Http(HttpCall::default()),
    ] {
        let data = wire::encode_call("node-a", "node-b", "id1", "sess1", call.clone()).unwrap();
        let (to, incoming) = wire::decode_call(&data).unwrap();
        assert_eq!(to, "node-b");
        assert_eq!(
            incoming,
            Incoming {
                from: "node-a".into(),
                id: "id1".into(),
                session: "sess1".into(),
                call,
            }
        );
    }
}

#[test]
fn answers_round_trip_exactly() {
    for outcome in [
        Outcome::Command(Box::new(command_response())),
        Outcome::Command(Box::default()),
        Outcome::Ack,
        Outcome::Http(http_answer()),
        Outcome::Http(HttpAnswer::default()),
        Outcome::NotOwner,
    ] {
        let data = wire::encode_reply("node-b", "id1", outcome.clone()).unwrap();
        let reply = wire::decode_reply(&data).unwrap();
        assert_eq!((reply.id.as_str(), reply.from.as_str()), ("id1", "node-b"));
        assert_eq!(reply.outcome, outcome);
    }
}

#[test]
fn a_body_at_the_limit_round_trips() {
    let answer = HttpAnswer {
        status: 200,
        headers: Headers::new(),
        body: vec![0xa5; MAX_ANSWER],
    };
    let data = wire::encode_reply("b", "id", Outcome::Http(answer.clone())).unwrap();
    assert_eq!(
        wire::decode_reply(&data).unwrap().outcome,
        Outcome::Http(answer)
    );
}

// ---- the forwarder, one node at a time ----------------------------------------------------

/// A ClusterSend that keeps what was published.
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<(PluginClusterEvent, String)>>,
    fail: bool,
}

impl Recorder {
    fn failing() -> Arc<Self> {
        Arc::new(Recorder {
            fail: true,
            ..Recorder::default()
        })
    }

    fn take(&self) -> Vec<(PluginClusterEvent, String)> {
        std::mem::take(&mut *self.sent.lock().unwrap())
    }
}

impl ClusterSend for Recorder {
    fn send(&self, event: PluginClusterEvent, target: &str) -> BoxFuture<'_, Result<(), ApiError>> {
        let result = if self.fail {
            Err(ApiError::Error("cluster send refused".into()))
        } else {
            self.sent.lock().unwrap().push((event, target.to_owned()));
            Ok(())
        };
        Box::pin(async move { result })
    }
}

fn node(name: &str) -> (Arc<Forwarder>, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let forwarder = Forwarder::new(recorder.clone(), name.to_owned(), FORWARD_TIMEOUT);
    (forwarder, recorder)
}

fn pending(f: &Forwarder) -> usize {
    f.pending_map().len()
}

/// Starts a call from `a` to node "b" and returns it with the event it published.
async fn start_call(
    a: &Arc<Forwarder>,
    sent: &Recorder,
    call: Call,
) -> (
    tokio::task::JoinHandle<Result<Outcome, ForwardError>>,
    PluginClusterEvent,
) {
    let task = tokio::spawn({
        let a = a.clone();
        async move { a.call("b", "sess1", call).await }
    });
    for _ in 0..100 {
        if let Some((event, target)) = sent.take().pop() {
            assert_eq!(target, "b");
            assert_eq!(event.id, EVENT_CALL);
            return (task, event);
        }
        tokio::task::yield_now().await;
    }
    panic!("the call published nothing");
}

/// Has node "b" serve the call in `event` with `outcome`; returns b's answer event.
async fn answer_from_b(event: &PluginClusterEvent, outcome: Outcome) -> PluginClusterEvent {
    let (b, b_sent) = node("b");
    let incoming = b.on_event(event).expect("a call for b");
    b.reply(&incoming, outcome).await.unwrap();
    let (reply, target) = b_sent.take().pop().expect("an answer");
    assert_eq!(target, incoming.from);
    assert_eq!(reply.id, EVENT_REPLY);
    reply
}

#[tokio::test]
async fn an_answer_completes_its_call() {
    let (a, sent) = node("a");
    let (task, event) = start_call(&a, &sent, Call::Command(command_args())).await;
    let (b, _) = node("b");
    let incoming = b.on_event(&event).unwrap();
    assert_eq!(
        (incoming.from.as_str(), incoming.session.as_str()),
        ("a", "sess1")
    );
    assert_eq!(incoming.call, Call::Command(command_args()));
    assert_eq!(pending(&a), 1);

    let reply = answer_from_b(&event, Outcome::Command(Box::new(command_response()))).await;
    assert!(a.on_event(&reply).is_none());
    let outcome = task.await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Command(Box::new(command_response())));
    assert_eq!(pending(&a), 0);
}

#[tokio::test(start_paused = true)]
async fn timeout_fires_at_forward_timeout_and_not_before_then_the_late_answer_is_ignored() {
    let (a, sent) = node("a");
    let start = tokio::time::Instant::now();
    let (task, event) = start_call(&a, &sent, Call::Posted(post())).await;

    tokio::time::sleep(FORWARD_TIMEOUT - Duration::from_millis(1)).await;
    tokio::task::yield_now().await;
    assert!(!task.is_finished(), "gave up before FORWARD_TIMEOUT");

    let err = task.await.unwrap().unwrap_err();
    assert_eq!(start.elapsed(), FORWARD_TIMEOUT);
    assert!(
        matches!(&err, ForwardError::Timeout { node } if node == "b"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the server running this session did not answer in time; try again"
    );
    assert_eq!(pending(&a), 0);

    // The owner answers after all: nothing is waiting for it any more.
    let late = answer_from_b(&event, Outcome::Ack).await;
    assert!(a.on_event(&late).is_none());
    assert_eq!(pending(&a), 0);
}

#[tokio::test]
async fn a_duplicate_answer_or_one_from_another_node_is_ignored() {
    let (a, sent) = node("a");
    let (task, event) = start_call(&a, &sent, Call::Posted(post())).await;

    // Same id, but from node "c", which was not asked.
    let (c, c_sent) = node("c");
    let (_, incoming) = wire::decode_call(&event.data).unwrap();
    c.reply(&incoming, Outcome::NotOwner).await.unwrap();
    let (stray, _) = c_sent.take().pop().unwrap();
    assert!(a.on_event(&stray).is_none());
    assert_eq!(pending(&a), 1, "a stray answer completed the call");

    let reply = answer_from_b(&event, Outcome::Ack).await;
    assert!(a.on_event(&reply).is_none());
    assert_eq!(task.await.unwrap().unwrap(), Outcome::Ack);
    // The bus delivers it again.
    assert!(a.on_event(&reply).is_none());
    assert_eq!(pending(&a), 0);
}

#[tokio::test]
async fn events_for_another_node_or_another_purpose_are_ignored() {
    let (a, sent) = node("a");
    let (_task, event) = start_call(&a, &sent, Call::Command(command_args())).await;
    let (c, _) = node("c");
    assert!(c.on_event(&event).is_none(), "a call for b served by c");
    // The origin itself sees its own call (a broadcast-like delivery): not for it either.
    assert!(a.on_event(&event).is_none());

    let (b, _) = node("b");
    for id in ["claude-code/other", "", "fwd"] {
        let other = PluginClusterEvent {
            id: id.into(),
            data: event.data.clone(),
        };
        assert!(b.on_event(&other).is_none(), "{id}");
    }
    for id in [EVENT_CALL, EVENT_REPLY] {
        for data in [vec![], vec![0xff; 64], b"{\"json\":true}".to_vec()] {
            let bad = PluginClusterEvent {
                id: id.into(),
                data,
            };
            assert!(b.on_event(&bad).is_none());
        }
    }
    assert_eq!(pending(&a), 1);
}

#[tokio::test]
async fn a_failed_send_is_reported_and_forgotten() {
    let a = Forwarder::new(Recorder::failing(), "a".into(), FORWARD_TIMEOUT);
    let err = a
        .call("b", "sess1", Call::Posted(post()))
        .await
        .unwrap_err();
    assert!(matches!(err, ForwardError::Send(_)), "{err:?}");
    assert!(err
        .to_string()
        .starts_with("the server running this session could not be reached"));
    assert_eq!(pending(&a), 0);
}

#[tokio::test]
async fn a_call_too_big_for_an_event_is_a_codec_error() {
    let (a, sent) = node("a");
    let answer = Outcome::Http(HttpAnswer {
        status: 200,
        headers: Headers::new(),
        body: vec![0; wire::MAX_EVENT + 1],
    });
    let incoming = Incoming {
        from: "b".into(),
        id: "id".into(),
        session: "s".into(),
        call: Call::Posted(Post::default()),
    };
    let err = a.reply(&incoming, answer).await.unwrap_err();
    assert!(
        matches!(err, ForwardError::Codec(CodecError::TooBig { .. })),
        "{err:?}"
    );
    assert!(sent.take().is_empty());
}

#[tokio::test]
async fn a_dropped_call_forgets_its_pending_entry() {
    let (a, sent) = node("a");
    let (task, _event) = start_call(&a, &sent, Call::Posted(post())).await;
    assert_eq!(pending(&a), 1);
    task.abort();
    let _ = task.await;
    assert_eq!(pending(&a), 0);
}

// ---- HTTP on both sides -------------------------------------------------------------------

fn origin_request(body: Vec<u8>) -> ServeHttpRequest {
    let mut headers = many_headers();
    headers.insert("Mattermost-User-Id".into(), vec!["user1".into()]);
    headers.insert("Connection".into(), vec!["keep-alive, X-Hop".into()]);
    headers.insert("X-Hop".into(), vec!["per connection".into()]);
    headers.insert("Keep-Alive".into(), vec!["timeout=5".into()]);
    headers.insert("Transfer-Encoding".into(), vec!["chunked".into()]);
    headers.insert("Cookie".into(), vec!["MMAUTHTOKEN=secret".into()]);
    headers.insert("authorization".into(), vec!["Bearer secret".into()]);
    headers.insert("X-CSRF-Token".into(), vec!["csrf".into()]);
    ServeHttpRequest {
        method: "POST".into(),
        url: "/api/v1/sessions/s1/prompt?x=1".into(),
        headers,
        body: Body::from_bytes(body),
    }
}

#[tokio::test]
async fn an_http_call_keeps_end_to_end_headers_and_the_user_id() {
    let call = HttpCall::read(origin_request(binary())).await.unwrap();
    assert_eq!(call.user_id, "user1");
    assert_eq!(call.body, binary());
    for hop in ["Connection", "X-Hop", "Keep-Alive", "Transfer-Encoding"] {
        assert!(!call.headers.contains_key(hop), "{hop} forwarded");
    }
    // The caller's credentials do not cross to another node.
    for secret in ["Cookie", "authorization", "X-CSRF-Token"] {
        assert!(!call.headers.contains_key(secret), "{secret} forwarded");
    }
    assert_eq!(call.headers["Set-Cookie"].len(), 2);

    // A forged lower-case copy on the wire cannot replace the user the origin saw.
    let mut forged = call.clone();
    forged
        .headers
        .insert("mattermost-user-id".into(), vec!["mallory".into()]);
    let mut req = forged.request();
    assert_eq!(req.headers["Mattermost-User-Id"], vec!["user1".to_string()]);
    assert!(!req.headers.contains_key("mattermost-user-id"));
    assert_eq!(
        (req.method.as_str(), req.url.as_str()),
        ("POST", "/api/v1/sessions/s1/prompt?x=1")
    );
    assert_eq!(req.headers.len(), call.headers.len());
    assert_eq!(
        req.body.read_to_end_limited(usize::MAX).await.unwrap(),
        binary()
    );
}

#[tokio::test]
async fn a_request_body_over_one_mib_is_a_typed_error() {
    let err = HttpCall::read(origin_request(vec![1; MAX_BODY + 1]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, HttpCallError::TooLarge { limit } if limit == MAX_BODY),
        "{err:?}"
    );
    let call = HttpCall::read(origin_request(vec![1; MAX_BODY]))
        .await
        .unwrap();
    assert_eq!(call.body.len(), MAX_BODY);
}

#[tokio::test]
async fn a_buffered_answer_becomes_the_real_response() {
    let (mut w, buffer) = HttpAnswer::buffer();
    w.set_header("Content-Type", "application/octet-stream");
    w.set_header_values("Set-Cookie", vec!["a=1".into(), "b=2".into()]);
    w.write_header(202).await.unwrap();
    w.write(&binary()).await.unwrap();
    let answer = buffer.finish(w).await;
    assert_eq!(answer.status, 202);
    assert_eq!(answer.body, binary());

    let sink = MemorySink::default();
    let mut real = ResponseWriter::new(sink.clone());
    answer.write_to(&mut real).await.unwrap();
    real.finish().await.unwrap();
    let r = sink.recorded();
    assert_eq!(r.status, Some(202));
    assert_eq!(r.body, binary());
    assert_eq!(
        r.headers["Set-Cookie"],
        vec!["a=1".to_string(), "b=2".to_string()]
    );
    assert_eq!(
        r.headers["Content-Type"],
        vec!["application/octet-stream".to_string()]
    );
}

#[tokio::test]
async fn an_answer_over_8_mib_is_cut_to_a_502() {
    let (mut w, buffer) = HttpAnswer::buffer();
    w.set_header("Content-Type", "text/plain");
    w.write(&vec![b'x'; MAX_ANSWER]).await.unwrap();
    // The writer pushes full chunks as they fill; the sink refuses the one past the limit.
    let refused = w
        .write(&vec![b'y'; crate::mattermost::http::WRITE_CHUNK])
        .await;
    assert!(refused.is_err());
    let answer = buffer.finish(w).await;
    assert_eq!(answer.status, 502);
    assert_eq!(
        answer.headers["Content-Type"],
        vec!["application/json".to_string()]
    );
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["status"], 502);
    assert_eq!(
        body["error"],
        "the answer of the server running this session is larger than 8 MiB"
    );

    // Exactly at the limit, with no header bytes, it goes through whole.
    let (mut w, buffer) = HttpAnswer::buffer();
    w.write(&vec![b'x'; MAX_ANSWER]).await.unwrap();
    let answer = buffer.finish(w).await;
    assert_eq!((answer.status, answer.body.len()), (200, MAX_ANSWER));

    // Headers count too.
    let (mut w, buffer) = HttpAnswer::buffer();
    w.set_header("X-Big", "h");
    w.write(&vec![b'x'; MAX_ANSWER]).await.unwrap();
    assert_eq!(buffer.finish(w).await.status, 502);
}

// ---- two nodes, end to end ----------------------------------------------------------------

/// An in-memory cluster bus: a publish reaches the target node's `on_event` (as the host's
/// OnPluginClusterEvent would), and a call that comes out is served in a task of its own.
#[derive(Default)]
struct Bus {
    nodes: Mutex<HashMap<String, Weak<Forwarder>>>,
    /// The session each node holds the lease of.
    owns: Mutex<HashMap<String, String>>,
}

impl Bus {
    fn join(self: &Arc<Self>, name: &str, owns: &str) -> Arc<Forwarder> {
        let f = Forwarder::new(
            Arc::new(Link(self.clone())),
            name.to_owned(),
            FORWARD_TIMEOUT,
        );
        self.nodes
            .lock()
            .unwrap()
            .insert(name.to_owned(), Arc::downgrade(&f));
        self.owns
            .lock()
            .unwrap()
            .insert(name.to_owned(), owns.to_owned());
        f
    }
}

struct Link(Arc<Bus>);

impl ClusterSend for Link {
    fn send(&self, event: PluginClusterEvent, target: &str) -> BoxFuture<'_, Result<(), ApiError>> {
        let node = self
            .0
            .nodes
            .lock()
            .unwrap()
            .get(target)
            .and_then(Weak::upgrade);
        let owns = self.0.owns.lock().unwrap().get(target).cloned();
        Box::pin(async move {
            let (node, owns) = node
                .zip(owns)
                .ok_or(ApiError::Error("no such node".into()))?;
            if let Some(incoming) = node.on_event(&event) {
                // The hook returns at once; serving runs on.
                tokio::spawn(async move {
                    let outcome = serve(&owns, &incoming).await;
                    node.reply(&incoming, outcome).await.unwrap();
                });
            }
            Ok(())
        })
    }
}

/// The owner's side of the app, in miniature.
async fn serve(owns: &str, incoming: &Incoming) -> Outcome {
    if incoming.session != owns {
        return Outcome::NotOwner;
    }
    match &incoming.call {
        Call::Command(args) => Outcome::Command(Box::new(CommandResponse {
            text: format!("ran {:?} for {}", args.command, args.user_id),
            attachments: vec![attachment(9)],
            ..CommandResponse::default()
        })),
        Call::Posted(_) => Outcome::Ack,
        Call::Http(call) => {
            let mut req = call.request();
            let (mut w, buffer) = HttpAnswer::buffer();
            let body = req.body.read_to_end_limited(MAX_BODY).await.unwrap();
            let user = req.headers["Mattermost-User-Id"][0].clone();
            w.set_header("Content-Type", "application/octet-stream");
            w.set_header("X-Served-For", user);
            w.set_header("X-Url", req.url.clone());
            w.write_header(200).await.unwrap();
            w.write(&body.iter().rev().copied().collect::<Vec<u8>>())
                .await
                .unwrap();
            Outcome::Http(buffer.finish(w).await)
        }
    }
}

#[tokio::test]
async fn two_nodes_serve_a_command_a_post_and_an_http_call_end_to_end() {
    let bus = Arc::new(Bus::default());
    let a = bus.join("a", "other-session");
    let b = bus.join("b", "sess1");

    let outcome = a
        .call("b", "sess1", Call::Command(command_args()))
        .await
        .unwrap();
    let Outcome::Command(response) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        response.text,
        "ran \"/claude prompt hello\\nsecond line\" for user1"
    );
    assert_eq!(response.attachments, vec![attachment(9)]);

    assert_eq!(
        a.call("b", "sess1", Call::Posted(post())).await.unwrap(),
        Outcome::Ack
    );

    // HTTP: the origin reads the host's request, the owner serves it into a buffer, the
    // origin writes the answer into its own response writer.
    let call = HttpCall::read(origin_request(binary())).await.unwrap();
    let Outcome::Http(answer) = a.call("b", "sess1", Call::Http(call)).await.unwrap() else {
        panic!("not an HTTP answer")
    };
    let sink = MemorySink::default();
    let mut w = ResponseWriter::new(sink.clone());
    answer.write_to(&mut w).await.unwrap();
    w.finish().await.unwrap();
    let r = sink.recorded();
    assert_eq!(r.status, Some(200));
    assert_eq!(r.body, binary().into_iter().rev().collect::<Vec<u8>>());
    assert_eq!(r.headers["X-Served-For"], vec!["user1".to_string()]);
    assert_eq!(
        r.headers["X-Url"],
        vec!["/api/v1/sessions/s1/prompt?x=1".to_string()]
    );

    // Node a does not hold sess1: asked for it, it says so.
    assert_eq!(
        b.call("a", "sess1", Call::Posted(post())).await.unwrap(),
        Outcome::NotOwner
    );
    assert_eq!(pending(&a), 0);
}
