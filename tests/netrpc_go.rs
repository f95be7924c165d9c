//! net/rpc against Go's own net/rpc: a Go client calling the Rust server, the
//! Rust client calling a Go server, and a recorded Go session read by Rust.

mod support;

use std::process::Stdio;
use std::time::Duration;

use claude_code::mattermost::model::{Any, AppError, Post};
use claude_code::mattermost::rpc_types::{Args2, ErrorReturn, ExecuteCommandArgs, OnActivateArgs};
use claude_code::rpc::gob::stream::StreamDecoder;
use claude_code::rpc::netrpc::{CallError, Client, Empty, RequestHeader, ResponseHeader, Server};
use support::json_equivalent;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::process::Command;

fn echo_server() -> Server {
    Server::new()
        .method("Echo.Echo", |s: String| async move { Ok::<_, String>(s) })
        .method("Echo.Add", |p: Args2<i64, i64>| async move {
            Ok::<_, String>(p.a + p.b)
        })
        .method("Echo.Fail", |s: String| async move { Err::<String, _>(s) })
        .method("Echo.Post", |p: Post| async move { Ok::<_, String>(p) })
}

#[tokio::test]
async fn go_client_calls_rust_server() {
    let dir = support::fresh_dir("netrpc-go-client");
    let socket = dir.join("echo.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let go = Command::new(support::gobcorpus())
        .args(["rpc-client", "-socket"])
        .arg(&socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (conn, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let served = tokio::spawn(async move { echo_server().serve(conn).await });
    let out = tokio::time::timeout(Duration::from_secs(60), go.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(
        out.status.success(),
        "Go's client saw failures:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains(" passed, 0 failed"), "{report}");
    // The Go client closed the connection: the server returns cleanly.
    served.await.unwrap().unwrap();
}

#[tokio::test]
async fn rust_client_calls_go_server() {
    let dir = support::fresh_dir("netrpc-go-server");
    let socket = dir.join("echo.sock");
    let mut go = Command::new(support::gobcorpus())
        .args(["rpc-server", "-socket"])
        .arg(&socket)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(go.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert!(ready.is_some_and(|l| l.starts_with("READY")));
    let client = Client::new(UnixStream::connect(&socket).await.unwrap());

    let echoed: String = client
        .call("Echo.Echo", &"héllo 👋".to_string())
        .await
        .unwrap();
    assert_eq!(echoed, "héllo 👋");
    let big = "x".repeat(1 << 20);
    let echoed: String = client.call("Echo.Echo", &big).await.unwrap();
    assert_eq!(echoed.len(), big.len());
    let failed = client
        .call::<_, String>("Echo.Fail", &"no luck".to_string())
        .await;
    assert_eq!(failed, Err(CallError::Server("no luck".into())));
    let nope = client.call::<_, Empty>("Echo.Nope", &Empty {}).await;
    assert_eq!(
        nope,
        Err(CallError::Server("rpc: can't find method Echo.Nope".into()))
    );
    let nope = client.call::<_, Empty>("Nope.X", &Empty {}).await;
    assert_eq!(
        nope,
        Err(CallError::Server("rpc: can't find service Nope.X".into()))
    );

    let calls: Vec<_> = (0..200i64)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .call::<_, i64>("Echo.Add", &Args2 { a: i, b: 1 })
                    .await
            })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap().unwrap(), i as i64 + 1);
    }

    let post = Post {
        id: "p1".into(),
        message: "hi".into(),
        props: Some(
            [
                ("n".to_string(), Any::Float64(2.5)),
                ("s".to_string(), Any::from("v")),
            ]
            .into(),
        ),
        ..Default::default()
    };
    let back: Post = client.call("Echo.Post", &post).await.unwrap();
    assert_eq!(back, post);
}

/// Decodes a recorded Go session and checks every header and body against
/// the call list Go wrote, then replays the requests into the Rust server and
/// checks its answers carry the same Seq and error texts as Go's server.
#[tokio::test]
async fn recorded_go_session_reads_and_replays() {
    let dir = support::fresh_dir("netrpc-recorded");
    let rec = std::process::Command::new(support::gobcorpus())
        .args(["rpc-record", "-out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(rec.status.success());
    let calls: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.join("rpc_calls.json")).unwrap()).unwrap();
    let requests = std::fs::read(dir.join("rpc_requests.gob")).unwrap();
    let responses = std::fs::read(dir.join("rpc_responses.gob")).unwrap();
    assert!(calls.len() >= 6);

    let mut req = StreamDecoder::new(&requests[..]);
    let mut resp = StreamDecoder::new(&responses[..]);
    for call in &calls {
        let header: RequestHeader = req.decode().await.unwrap().unwrap();
        assert_eq!(
            header.service_method,
            call["service_method"].as_str().unwrap()
        );
        assert_eq!(header.seq, call["seq"].as_u64().unwrap());
        let arg = req.decode_value().await.unwrap().unwrap().value.to_dump();
        assert!(
            json_equivalent(&arg, &call["arg"]),
            "{arg} vs {}",
            call["arg"]
        );
        let header: ResponseHeader = resp.decode().await.unwrap().unwrap();
        assert_eq!(header.seq, call["seq"].as_u64().unwrap());
        assert_eq!(header.error, call["error"].as_str().unwrap());
        let reply = resp.decode_value().await.unwrap().unwrap().value.to_dump();
        if !call["reply"].is_null() {
            assert!(
                json_equivalent(&reply, &call["reply"]),
                "{reply} vs {}",
                call["reply"]
            );
        }
    }
    assert!(req.decode_value().await.unwrap().is_none());

    // Replay: the same request bytes into the Rust server.
    let server = Server::new()
        .method("Plugin.Implemented", |_: Empty| async {
            Ok::<_, String>(vec!["OnActivate".to_string(), "ExecuteCommand".to_string()])
        })
        .method("Plugin.OnActivate", |_: OnActivateArgs| async {
            let err = AppError {
                id: "x".into(),
                status_code: 500,
                ..Default::default()
            };
            Ok::<_, String>(ErrorReturn { a: err.into() })
        })
        .method("Plugin.ExecuteCommand", |_: ExecuteCommandArgs| async {
            Ok::<_, String>(Empty {})
        })
        .method("Plugin.Fail", |_: String| async {
            Err::<Empty, _>("boom".to_string())
        });
    let (mut ours, theirs) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move { server.serve(theirs).await });
    tokio::io::AsyncWriteExt::write_all(&mut ours, &requests)
        .await
        .unwrap();
    let mut answers = StreamDecoder::new(ours);
    let mut seen = Vec::new();
    for _ in &calls {
        let header: ResponseHeader = answers.decode().await.unwrap().unwrap();
        answers.skip().await.unwrap().unwrap();
        seen.push((header.seq, header.error));
    }
    seen.sort();
    let expected: Vec<(u64, String)> = calls
        .iter()
        .map(|c| {
            (
                c["seq"].as_u64().unwrap(),
                c["error"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(seen, expected);
}
