//! Fencing (fence.rs): two store handles on one database file stand for two nodes of a
//! cluster sharing the data directory (two connections, as two processes would have).

use super::*;
use crate::proctree::ProcessIdentity;

fn fenced(outcome: Result<impl std::fmt::Debug, StoreError>, what: &str) {
    match outcome {
        Err(StoreError::Fenced { session }) => assert_eq!(session, "s1", "{what}"),
        other => panic!("{what}: expected Fenced, got {other:?}"),
    }
}

async fn stored_fence(store: &Store, session: &str) -> Option<(String, i64)> {
    let session = session.to_owned();
    store
        .call(move |c| {
            Ok(c.query_row(
                "SELECT node, fence FROM session_fences WHERE session_id = ?1",
                [session],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })
        .await
        .expect("read")
}

fn approval(session_id: &str, request_id: &str) -> ApprovalRecord {
    ApprovalRecord {
        request_id: request_id.into(),
        session_id: session_id.into(),
        tool: "Bash".into(),
        input: json!({}),
        decided_by: None,
        decision: None,
        reason: None,
        requested_at: 1,
        decided_at: None,
        allowed: Allowed::default(),
    }
}

fn owed(session_id: &str, key: &str) -> OwedPost {
    OwedPost {
        key: key.into(),
        kind: OwedKind::Reply,
        session_id: session_id.into(),
        root_key: None,
        request_id: None,
        turn_seq: None,
        part: 0,
        post: json!({"message": key}),
        closed: false,
    }
}

fn process(pid: i32) -> ProcessIdentity {
    ProcessIdentity {
        pid,
        start: 7,
        boot_id: "boot".into(),
    }
}

#[tokio::test]
async fn a_claim_raises_the_fence_and_a_lower_or_a_rivals_equal_one_is_refused() {
    let db = TempDb::new("claim");
    let store = Store::open(&db.path()).await.expect("open");
    store.claim("s1", "a", 1).await.expect("first claim");
    store
        .claim("s1", "a", 1)
        .await
        .expect("the same claim again");
    assert_eq!(stored_fence(&store, "s1").await, Some(("a".into(), 1)));
    fenced(store.claim("s1", "b", 1).await, "another node, equal fence");
    store.claim("s1", "b", 3).await.expect("a greater fence");
    fenced(store.claim("s1", "a", 2).await, "a lower fence");
    assert_eq!(stored_fence(&store, "s1").await, Some(("b".into(), 3)));
    let refused = StoreError::Fenced {
        session: "s1".into(),
    }
    .to_string();
    assert!(refused.contains("another node of the cluster"), "{refused}");
}

/// Node A owned s1 (fence 1), was paused, B took it over (fence 2): whatever A writes of s1
/// after it woke up is refused and leaves no row; B's writes, A's reads and A's writes of a
/// session it never claimed go through.
#[tokio::test]
async fn a_node_whose_session_was_taken_over_writes_nothing_of_it() {
    let db = TempDb::new("takeover");
    let a = Store::open(&db.path()).await.expect("open a");
    let b = Store::open(&db.path()).await.expect("open b");
    a.insert_session(session("s1")).await.expect("s1");
    a.insert_session(session("s2")).await.expect("s2");
    a.claim("s1", "a", 1).await.expect("a claims");
    a.insert_approval(approval("s1", "r-a"))
        .await
        .expect("a's approval while it owns s1");
    a.outbox_put(owed("s1", "k-a")).await.expect("a's post");
    b.claim("s1", "b", 2).await.expect("b takes over");

    fenced(a.set_session_status("s1", "idle").await, "status");
    fenced(a.set_cli_session_id("s1", Some("c")).await, "cli id");
    fenced(
        a.set_session_settings("s1", Some("opus"), None).await,
        "settings",
    );
    fenced(a.set_root_post("s1", "p").await, "root post");
    fenced(
        a.append_message(message("s1", "m-a", "assistant_text"))
            .await,
        "message",
    );
    fenced(
        a.append_messages(vec![message("s1", "m-b", "assistant_text")])
            .await,
        "messages",
    );
    fenced(a.insert_approval(approval("s1", "r-a2")).await, "approval");
    fenced(
        a.decide_approval("r-a", Some("u"), "allow", None, Allowed::default())
            .await,
        "decision (found by request id)",
    );
    fenced(a.set_approval_card("r-a").await, "card open");
    fenced(
        a.cancel_undecided_approvals(&["s1".into()], "gone").await,
        "withdrawal",
    );
    fenced(a.outbox_put(owed("s1", "k-a2")).await, "post");
    fenced(a.outbox_tried("k-a").await, "post tried (found by key)");
    fenced(a.outbox_delivered("k-a", 1).await, "post delivered");
    fenced(
        a.outbox_created("k-a", "post-1", Some(1)).await,
        "post created",
    );
    fenced(
        a.append_session_events("s1", vec![live_event("x", 1)])
            .await,
        "live event",
    );
    fenced(a.set_session_process("s1", process(10)).await, "process");
    fenced(
        a.insert_worktree(WorktreeRecord {
            session_id: "s1".into(),
            repository: "/r".into(),
            path: "/w".into(),
            branch: "b".into(),
            created_at: 1,
            removed_at: None,
        })
        .await,
        "worktree",
    );
    fenced(a.audit(Some("s1"), "u", "stop", json!(null)).await, "audit");

    // Nothing of A's reached the database; its reads still work.
    let s1 = a.session("s1").await.expect("read").expect("s1");
    assert_eq!((s1.status.as_str(), s1.cli_session_id), ("starting", None));
    assert!(a.messages("s1").await.expect("read").is_empty());
    let approvals = a.approvals("s1").await.expect("read");
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].decision, None);
    assert!(a.root_posts().await.expect("read").is_empty());
    assert_eq!(a.last_session_event_seq("s1").await.expect("read"), 0);
    assert!(a.worktree("s1").await.expect("read").is_none());
    assert!(a.audit_entries().await.expect("read").is_empty());
    let pending = a.outbox_pending().await.expect("read");
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].version, pending[0].tried), (1, None));

    // B owns it now.
    b.set_session_status("s1", "idle").await.expect("b status");
    b.append_message(message("s1", "m-b", "assistant_text"))
        .await
        .expect("b message");
    b.decide_approval("r-a", Some("u"), "allow", None, Allowed::default())
        .await
        .expect("b decides");
    b.outbox_delivered("k-a", 1).await.expect("b delivered");
    assert_eq!(a.session("s1").await.unwrap().unwrap().status, "idle");
    // A never claimed s2, and an audit entry of no session belongs to no one.
    a.set_session_status("s2", "idle").await.expect("unclaimed");
    a.audit(None, "u", "config", json!(null))
        .await
        .expect("no session");
}

/// A batch holding a refused job commits the others (each job has its own savepoint).
#[tokio::test(flavor = "current_thread")]
async fn a_refused_job_costs_the_others_in_its_batch_nothing() {
    let db = TempDb::new("batch");
    let a = Store::open(&db.path()).await.expect("open a");
    let b = Store::open(&db.path()).await.expect("open b");
    for id in ["s1", "s2"] {
        a.insert_session(session(id)).await.expect("insert");
    }
    a.claim("s1", "a", 1).await.expect("a claims s1");
    a.claim("s2", "a", 1).await.expect("a claims s2");
    b.claim("s1", "b", 2).await.expect("b takes s1");
    // The database thread is held by one job while the next three queue up behind it, so that
    // they run as one batch.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let blocker = tokio::spawn({
        let a = a.clone();
        async move { a.call(move |_| Ok(held.recv().ok())).await }
    });
    tokio::task::yield_now().await;
    let jobs = [
        tokio::spawn({
            let a = a.clone();
            async move { a.set_session_status("s2", "idle").await }
        }),
        tokio::spawn({
            let a = a.clone();
            async move { a.set_session_status("s1", "idle").await }
        }),
        tokio::spawn({
            let a = a.clone();
            async move { a.set_cli_session_id("s2", Some("c2")).await }
        }),
    ];
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    release.send(()).expect("release");
    blocker.await.expect("task").expect("blocker");
    let [first, refused, third] = jobs;
    first.await.expect("task").expect("s2 status");
    fenced(refused.await.expect("task"), "s1 status");
    third.await.expect("task").expect("s2 cli id");
    let s2 = a.session("s2").await.unwrap().unwrap();
    assert_eq!(
        (s2.status.as_str(), s2.cli_session_id.as_deref()),
        ("idle", Some("c2"))
    );
    assert_eq!(a.session("s1").await.unwrap().unwrap().status, "starting");
}

/// Nodes on one machine share its boot id: each kills only the processes it recorded (and
/// those recorded before nodes were).
#[tokio::test]
async fn a_node_finds_only_the_processes_it_recorded() {
    let db = TempDb::new("processes");
    let a = Store::open(&db.path()).await.expect("open a");
    let b = Store::open(&db.path()).await.expect("open b");
    for id in ["s1", "s2", "s3"] {
        a.insert_session(session(id)).await.expect("insert");
    }
    a.set_node("a");
    b.set_node("b");
    a.set_session_process("s1", process(1)).await.expect("a's");
    b.set_session_process("s2", process(2)).await.expect("b's");
    a.call(|c| {
        c.execute(
            "INSERT INTO session_processes (session_id, pid, start_ticks, boot_id)
             VALUES ('s3', 3, 7, 'boot')",
            [],
        )?;
        Ok(())
    })
    .await
    .expect("a row from before migration 9");
    let ids: Vec<String> = ["s1", "s2", "s3"].map(String::from).to_vec();
    let found = |rows: Vec<(String, ProcessIdentity)>| -> Vec<(String, i32)> {
        rows.into_iter().map(|(s, p)| (s, p.pid)).collect()
    };
    assert_eq!(
        found(a.session_processes(&ids).await.expect("a")),
        [("s1".into(), 1), ("s3".into(), 3)]
    );
    assert_eq!(
        found(b.session_processes(&ids).await.expect("b")),
        [("s2".into(), 2), ("s3".into(), 3)]
    );
}
