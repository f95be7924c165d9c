use std::sync::atomic::Ordering;

use super::*;
use crate::chat::test_sink::{open_rig, rig, Rig};

fn reply(n: usize) -> OwedPost {
    let post = Post {
        user_id: "bot".into(),
        channel_id: "c1".into(),
        message: format!("reply {n}"),
        ..Default::default()
    };
    OwedPost {
        root_key: Some(root_key("s1")),
        ..owed(format!("reply:{n}"), OwedKind::Reply, "s1", &post)
    }
}

async fn settle<S: PostSink>(outbox: &Outbox<S>) {
    tokio::time::timeout(Duration::from_secs(120), outbox.drained())
        .await
        .expect("everything delivered");
}

/// Posts owed while the server is down survive a restart of the plugin: the next run delivers
/// them in order, the newest version of each, and a create the server applied just before the
/// crash (its answer lost) is found rather than made again.
#[tokio::test(start_paused = true)]
async fn owed_posts_survive_a_restart_and_are_made_once() {
    let first = rig().await;
    // The server applies the first create but its answer is lost; then it goes down.
    first.sink.lose_answers.store(1, Ordering::SeqCst);
    first.outbox.put(reply(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    first.sink.go_down(Duration::from_secs(3600));
    first.outbox.put(reply(2)).await.unwrap();
    first
        .outbox
        .put(OwedPost {
            post: post_json(&Post {
                user_id: "bot".into(),
                channel_id: "c1".into(),
                message: "reply 2, edited".into(),
                ..Default::default()
            }),
            ..reply(2)
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    // The metrics' backlog counts what the worker would send.
    let pending = first.store.outbox_pending().await.unwrap().len();
    assert!(pending >= 2, "{pending}");
    assert_eq!(first.store.outbox_backlog().await.unwrap(), pending);
    // The plugin dies; the server comes back.
    let Rig {
        store,
        sink,
        worker,
        dir,
        ..
    } = first;
    worker.abort();
    *sink.down_until.lock().unwrap() = None;
    let second = open_rig(store, sink.clone(), dir).await;
    settle(&second.outbox).await;
    assert_eq!(second.store.outbox_backlog().await.unwrap(), 0);
    let replies: Vec<String> = sink
        .posts()
        .into_iter()
        .map(|(_, p)| p.message)
        .filter(|m| m.starts_with("reply"))
        .collect();
    assert_eq!(replies, ["reply 1", "reply 2, edited"]);
    // Root, reply 1 (once, although its create was answered with an error), reply 2.
    assert_eq!(sink.creates(), 3);
}

/// A reply to a post that is itself owed waits for it, and gets its id.
#[tokio::test(start_paused = true)]
async fn a_reply_waits_for_its_root() {
    let r = rig().await;
    r.sink.fail_creates.store(3, Ordering::SeqCst);
    let root = Post {
        user_id: "bot".into(),
        channel_id: "c1".into(),
        message: "another root".into(),
        ..Default::default()
    };
    r.outbox
        .put(owed("root:other".into(), OwedKind::Root, "s1", &root))
        .await
        .unwrap();
    r.outbox
        .put(OwedPost {
            root_key: Some("root:other".into()),
            ..reply(1)
        })
        .await
        .unwrap();
    settle(&r.outbox).await;
    let posts = r.sink.posts();
    let other = posts
        .iter()
        .find(|(_, p)| p.message == "another root")
        .unwrap();
    let reply = posts.iter().find(|(_, p)| p.message == "reply 1").unwrap();
    assert_eq!(reply.1.root_id, other.0);
    let at = |id: &str| posts.iter().position(|(i, _)| i == id).unwrap();
    assert!(at(&other.0) < at(&reply.0));
}

/// Retries back off, capped: a server down for a minute sees a few dozen tries of a post, not
/// thousands, and gets the post within seconds of coming back.
#[tokio::test(start_paused = true)]
async fn retries_back_off_and_are_capped() {
    let r = rig().await;
    r.sink.go_down(Duration::from_secs(60));
    let down_at = Instant::now();
    r.outbox.put(reply(1)).await.unwrap();
    settle(&r.outbox).await;
    let tries = r.sink.calls.load(Ordering::SeqCst);
    assert!((8..=25).contains(&tries), "{tries} tries");
    let landed = r.sink.log.lock().unwrap().last().unwrap().2;
    let after = landed - (down_at + Duration::from_secs(60));
    assert!(after <= MAX_RETRY + MAX_RETRY / 2, "{after:?}");
}

/// In a cluster a node delivers only the posts of sessions it runs: a closed gate holds a
/// session's posts (and does not keep the outbox from being drained), and once the node runs the
/// session (a takeover opens the gate and wakes the worker) they go out in order.
#[tokio::test(start_paused = true)]
async fn only_posts_of_sessions_the_gate_allows_are_delivered() {
    let r = rig().await;
    let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gate = open.clone();
    r.outbox.set_gate(Arc::new(move |session: &str| {
        gate.load(Ordering::SeqCst) && session == "s1"
    }));
    r.outbox.put(reply(1)).await.unwrap();
    r.outbox.put(reply(2)).await.unwrap();
    settle(&r.outbox).await;
    let sent = |sink: &crate::chat::test_sink::FakeSink| {
        sink.posts()
            .into_iter()
            .map(|(_, p)| p.message)
            .filter(|m| m.starts_with("reply"))
            .collect::<Vec<_>>()
    };
    assert!(sent(&r.sink).is_empty(), "{:?}", sent(&r.sink));
    assert_eq!(r.store.outbox_pending().await.unwrap().len(), 2);
    open.store(true, Ordering::SeqCst);
    r.outbox.wake();
    tokio::time::sleep(Duration::from_millis(50)).await;
    settle(&r.outbox).await;
    assert_eq!(sent(&r.sink), ["reply 1", "reply 2"]);
    assert!(r.store.outbox_pending().await.unwrap().is_empty());
}

#[test]
fn a_post_survives_its_json_form() {
    let signer = crate::chat::card::ActionSigner::new(&"ab".repeat(32)).unwrap();
    let att = crate::chat::card::approval_attachment(
        "",
        &signer,
        &crate::chat::card::ApprovalRequest {
            session_id: "s1",
            request_id: "r1",
            tool_name: "Bash",
            input: &serde_json::json!({"command": "ls"}),
            description: None,
            cwd: None,
            expires_at: 1_700_000_000,
        },
    );
    let post = Post {
        user_id: "bot".into(),
        channel_id: "c1".into(),
        root_id: "root".into(),
        message: "hi".into(),
        file_ids: vec!["f1".into()],
        r#type: crate::chat::post_props::POST_TYPE.into(),
        props: crate::chat::post_props::card_props("s1", "r1", att),
        ..Default::default()
    };
    let json = post_json(&post);
    let back = post_of_json(&serde_json::from_str(&json.to_string()).unwrap());
    assert_eq!(back, post);
}
