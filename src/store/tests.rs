use super::*;
use serde_json::json;

/// A database path in a fresh temp dir, removed when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("cc-store-{name}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
    fn path(&self) -> PathBuf {
        self.0.join("engine.db")
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn session(id: &str) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        channel_id: "chan-1".into(),
        owner_id: "user-1".into(),
        project_path: "/srv/proj".into(),
        cli_session_id: None,
        model: Some("sonnet".into()),
        permission_mode: Some("default".into()),
        status: "starting".into(),
        created_at: 1,
        updated_at: 1,
    }
}

fn message(session_id: &str, id: &str, kind: &str) -> MessageRecord {
    MessageRecord {
        seq: 0,
        id: id.into(),
        session_id: session_id.into(),
        message_type: "assistant".into(),
        kind: kind.into(),
        content: format!("content of {id}"),
        event: json!({"kind": kind, "id": id}),
        timestamp: 42,
    }
}

fn user_version(path: &Path) -> u32 {
    let conn = Connection::open(path).expect("open");
    schema::current_version(&conn).expect("version")
}

#[tokio::test]
async fn fresh_database_is_migrated_and_reopen_is_a_no_op() {
    let db = TempDb::new("migrate");
    let store = Store::open(&db.path()).await.expect("open fresh");
    store.insert_session(session("s1")).await.expect("insert");
    drop(store);
    assert_eq!(user_version(&db.path()), SCHEMA_VERSION);
    let store = Store::open(&db.path()).await.expect("re-open");
    assert_eq!(user_version(&db.path()), SCHEMA_VERSION);
    assert_eq!(store.sessions().await.expect("list").len(), 1);
    let conn = Connection::open(db.path()).expect("open");
    let rows: u32 = conn
        .query_row("SELECT count(*) FROM schema_version", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows, 1, "one version row, not one per open");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(mode, "wal");
}

/// A cluster's store uses the rollback journal (no WAL shared memory, which does not cross
/// hosts); a single server's WAL database becomes one when its server joins a cluster, keeps
/// its rows, and two nodes write it side by side.
#[tokio::test]
async fn a_cluster_store_uses_the_rollback_journal() {
    let db = TempDb::new("hosts");
    let single = Store::open(&db.path()).await.expect("open as one host");
    single.insert_session(session("s1")).await.expect("insert");
    drop(single);
    let a = Store::open_shared(&db.path(), Sharing::Hosts)
        .await
        .expect("open as a node");
    let b = Store::open_shared(&db.path(), Sharing::Hosts)
        .await
        .expect("open as another node");
    let mode: String = Connection::open(db.path())
        .expect("open")
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(mode, "delete");
    let (x, y) = tokio::join!(
        a.insert_session(session("s2")),
        b.insert_session(session("s3"))
    );
    x.expect("node a writes");
    y.expect("node b writes");
    let ids: Vec<String> = a
        .sessions()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["s1", "s2", "s3"]);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let db = TempDb::new("newer");
    drop(Store::open(&db.path()).await.expect("open"));
    let conn = Connection::open(db.path()).expect("open");
    conn.execute("UPDATE schema_version SET version = 999", [])
        .expect("bump");
    drop(conn);
    match Store::open(&db.path()).await {
        Err(StoreError::SchemaTooNew { found: 999, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn round_trips_sessions_messages_approvals_audit() {
    let db = TempDb::new("roundtrip");
    let store = Store::open(&db.path()).await.expect("open");
    store.insert_session(session("s1")).await.expect("insert");
    store
        .set_session_status("s1", "idle")
        .await
        .expect("status");
    store
        .set_cli_session_id("s1", Some("cli-1"))
        .await
        .expect("cli id");
    let got = store.session("s1").await.expect("get").expect("exists");
    assert_eq!(got.status, "idle");
    assert_eq!(got.cli_session_id.as_deref(), Some("cli-1"));
    assert!(got.updated_at > 1);
    assert_eq!(store.session("nope").await.expect("get"), None);

    let a = store
        .append_message(message("s1", "m1", "assistant_text"))
        .await
        .expect("append");
    let b = store
        .append_message(message("s1", "m2", "tool_use"))
        .await
        .expect("append");
    assert!(b > a);
    let messages = store.messages("s1").await.expect("messages");
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].seq, a);
    assert_eq!(messages[1].event, json!({"kind": "tool_use", "id": "m2"}));
    assert_eq!(messages[1].content, "content of m2");

    store
        .insert_approval(ApprovalRecord {
            request_id: "r1".into(),
            session_id: "s1".into(),
            tool: "Write".into(),
            input: json!({"file_path": "/srv/proj/a", "content": "x"}),
            decided_by: None,
            decision: None,
            reason: None,
            requested_at: 5,
            decided_at: None,
            allowed: Default::default(),
        })
        .await
        .expect("approval");
    assert!(store
        .decide_approval(
            "r1",
            Some("alice"),
            "deny",
            Some("not now"),
            Default::default()
        )
        .await
        .expect("decide"));
    assert!(
        !store
            .decide_approval("r1", Some("bob"), "allow", None, Default::default())
            .await
            .expect("second decide"),
        "a decision is final"
    );
    let approvals = store.approvals("s1").await.expect("approvals");
    assert_eq!(approvals[0].decided_by.as_deref(), Some("alice"));
    assert_eq!(approvals[0].decision.as_deref(), Some("deny"));
    assert_eq!(approvals[0].input["content"], "x");

    // At startup, requests nobody decided before the plugin went away are cancelled; decided
    // ones keep their decision.
    store
        .insert_approval(ApprovalRecord {
            request_id: "r2".into(),
            requested_at: 6,
            ..approvals[0].clone()
        })
        .await
        .expect("approval");
    store
        .insert_approval(ApprovalRecord {
            request_id: "r3".into(),
            decided_by: None,
            decision: None,
            reason: None,
            decided_at: None,
            requested_at: 7,
            ..approvals[0].clone()
        })
        .await
        .expect("approval");
    assert!(store
        .cancel_undecided_approvals(&["s2".into()], "another session")
        .await
        .expect("cancel")
        .is_empty());
    let cancelled = store
        .cancel_undecided_approvals(&["s1".into()], "the plugin restarted")
        .await
        .expect("cancel");
    assert_eq!(cancelled.len(), 1, "{cancelled:?}");
    assert_eq!(cancelled[0].request_id, "r3");
    assert_eq!(cancelled[0].decision.as_deref(), Some("cancelled"));
    assert_eq!(cancelled[0].reason.as_deref(), Some("the plugin restarted"));
    assert_eq!(cancelled[0].input["content"], "x");
    assert!(store
        .cancel_undecided_approvals(&["s1".into()], "again")
        .await
        .expect("cancel")
        .is_empty());
    let approvals = store.approvals("s1").await.expect("approvals");
    assert_eq!(approvals[0].decision.as_deref(), Some("deny"));
    // What an allow sent is kept with it (a card closed after a restart shows it).
    let allowed = crate::store::Allowed {
        updated_input: Some(json!({"answers": {"Color?": "Red"}})),
        mode: Some("acceptEdits".into()),
    };
    store
        .insert_approval(ApprovalRecord {
            request_id: "r4".into(),
            decided_by: None,
            decision: None,
            reason: None,
            decided_at: None,
            requested_at: 8,
            ..approvals[0].clone()
        })
        .await
        .expect("approval");
    assert!(store
        .decide_approval("r4", Some("bob"), "allow_with_input", None, allowed.clone())
        .await
        .expect("decide"));
    let approvals = store.approvals("s1").await.expect("approvals");
    assert_eq!(approvals[3].request_id, "r4");
    assert_eq!(approvals[3].allowed, allowed);
    assert_eq!(approvals[0].allowed, Default::default());

    // Cards: open once owed, listed while their request is over but they show buttons.
    store.set_approval_card("r1").await.expect("card");
    store.set_approval_card("r3").await.expect("card");
    let open = store
        .open_cards_of_decided_approvals()
        .await
        .expect("open cards");
    let listed: Vec<&str> = open.iter().map(|(_, a)| a.request_id.as_str()).collect();
    assert_eq!(listed, vec!["r1", "r3"]);
    assert_eq!(open[1].1.decision.as_deref(), Some("cancelled"));
    store.close_approval_card("r1").await.expect("close");
    let open = store
        .open_cards_of_decided_approvals()
        .await
        .expect("open cards");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].1.request_id, "r3");

    store
        .audit(Some("s1"), "alice", "approve", json!({"request_id": "r1"}))
        .await
        .expect("audit");
    let audit = store.audit_entries().await.expect("audit list");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].detail["request_id"], "r1");
}

#[tokio::test]
async fn foreign_keys_are_enforced() {
    let db = TempDb::new("fk");
    let store = Store::open(&db.path()).await.expect("open");
    let err = store
        .append_message(message("no-such-session", "m1", "x"))
        .await
        .expect_err("orphan message refused");
    assert!(matches!(err, StoreError::Sqlite(_)), "{err:?}");
    // The failed job did not poison the batch machinery.
    store.insert_session(session("s1")).await.expect("insert");
}

#[tokio::test]
async fn acknowledged_writes_survive_dropping_the_store() {
    let db = TempDb::new("crash");
    let store = Store::open(&db.path()).await.expect("open");
    store.insert_session(session("s1")).await.expect("insert");
    // Many concurrent writers share batches; each acknowledged write must be on disk.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append_message(message("s1", &format!("m{i}"), "text_delta"))
                .await
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("append");
    }
    // No close, no checkpoint: the plugin may be killed at any time.
    drop(store);
    let conn = Connection::open(db.path()).expect("reopen raw");
    let n: u32 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 200);
    drop(conn);
    let store = Store::open(&db.path()).await.expect("reopen store");
    assert_eq!(store.messages("s1").await.expect("messages").len(), 200);
}

const CRASH_CHILD_DB: &str = "CC_STORE_CRASH_CHILD_DB";

/// Not a test on its own: the body of `a_killed_writer_loses_no_acknowledged_write`'s child
/// process (re-executed test binary). Without the env var it returns at once.
#[tokio::test]
async fn crash_writer_child() {
    let Some(path) = std::env::var_os(CRASH_CHILD_DB) else {
        return;
    };
    let store = Store::open(Path::new(&path)).await.expect("open");
    store.insert_session(session("s1")).await.expect("insert");
    for i in 0.. {
        store
            .append_message(message("s1", &format!("m{i}"), "text_delta"))
            .await
            .expect("append");
        // Printed only after the write was acknowledged (committed).
        println!("acked {i}");
    }
}

/// SIGKILL a process that is writing as fast as it can: every write it saw acknowledged is in
/// the database afterwards, and the database opens and migrates cleanly.
#[tokio::test]
async fn a_killed_writer_loses_no_acknowledged_write() {
    use std::io::BufRead;
    let db = TempDb::new("kill");
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "store::tests::crash_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD_DB, db.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn writer");
    let stdout = child.stdout.take().expect("stdout");
    let mut last_acked = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(n) = line.strip_prefix("acked ") {
            last_acked = n.trim().parse::<u64>().ok();
            if last_acked >= Some(300) {
                break;
            }
        }
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let acked = last_acked.expect("the child wrote");
    let store = Store::open(&db.path())
        .await
        .expect("reopen after the kill");
    let stored = store.messages("s1").await.expect("messages").len() as u64;
    assert!(stored > acked, "acked m0..=m{acked}, found {stored} rows");
}

#[tokio::test]
async fn root_posts_are_kept_per_session() {
    let db = TempDb::new("roots");
    let store = Store::open(&db.path()).await.expect("open");
    store.insert_session(session("s1")).await.expect("insert");
    store.set_root_post("s1", "p1").await.expect("set");
    store.set_root_post("s1", "p2").await.expect("replace");
    drop(store);
    let store = Store::open(&db.path()).await.expect("re-open");
    assert_eq!(
        store.root_posts().await.expect("list"),
        [("s1".to_owned(), "p2".to_owned())]
    );
}

/// A channel's commands address its newest session; another channel's do not count.
#[tokio::test]
async fn the_newest_session_of_a_channel_is_found() {
    let db = TempDb::new("newest");
    let store = Store::open(&db.path()).await.expect("open");
    assert_eq!(
        store.newest_session_of_channel("chan-1").await.unwrap(),
        None
    );
    for (id, channel, at) in [
        ("old", "chan-1", 1),
        ("new", "chan-1", 5),
        ("other", "chan-2", 9),
    ] {
        let record = SessionRecord {
            channel_id: channel.into(),
            created_at: at,
            ..session(id)
        };
        store.insert_session(record).await.expect("insert");
    }
    assert_eq!(
        store.newest_session_of_channel("chan-1").await.unwrap(),
        Some("new".into())
    );
    assert_eq!(
        store.newest_session_of_channel("chan-2").await.unwrap(),
        Some("other".into())
    );
}

#[tokio::test]
async fn a_sessions_worktree_is_kept_across_reopens_until_removed() {
    let db = TempDb::new("worktrees");
    let store = Store::open(&db.path()).await.expect("open");
    store.insert_session(session("s1")).await.expect("insert");
    store.insert_session(session("s2")).await.expect("insert");
    let record = WorktreeRecord {
        session_id: "s1".into(),
        repository: "/srv/repo".into(),
        path: "/data/worktrees/c-1".into(),
        branch: "claude/town-1".into(),
        created_at: 5,
        removed_at: None,
    };
    store.insert_worktree(record.clone()).await.expect("insert");
    drop(store);
    let store = Store::open(&db.path()).await.expect("re-open");
    assert_eq!(store.worktrees().await.unwrap(), [record]);
    assert_eq!(store.worktree("s2").await.unwrap(), None);
    let at = store.worktree_removed("s1").await.unwrap();
    assert_eq!(
        store.worktree("s1").await.unwrap().unwrap().removed_at,
        Some(at)
    );
}

/// A job of several statements that fails half-way leaves nothing behind, and the jobs batched
/// with it keep their writes.
#[tokio::test]
async fn a_job_that_fails_half_way_commits_nothing() {
    let db = TempDb::new("atomic");
    let store = Store::open(&db.path()).await.expect("open");
    let half = store.call(|c| {
        c.execute(
            "INSERT INTO audit_log (session_id, actor, action, detail, at)
             VALUES (NULL, 'a', 'first-half', '{}', 1)",
            [],
        )?;
        c.execute("INSERT INTO no_such_table VALUES (1)", [])?;
        Ok(())
    });
    let other = store.audit(None, "b", "whole", json!({}));
    let (half, other) = tokio::join!(half, other);
    assert!(half.is_err());
    other.expect("the other job");
    let actions: Vec<String> = store
        .audit_entries()
        .await
        .expect("entries")
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["whole"]);
}

fn live_event(name: &str, n: i64) -> NewSessionEvent {
    NewSessionEvent {
        name: name.into(),
        payload: json!({"n": n}),
        at: 1000 + n,
    }
}

#[tokio::test]
async fn session_events_are_numbered_per_session_from_one_across_reopens() {
    let db = TempDb::new("events");
    let store = Store::open(&db.path()).await.expect("open");
    store.insert_session(session("s1")).await.expect("insert");
    store.insert_session(session("s2")).await.expect("insert");
    assert_eq!(store.last_session_event_seq("s1").await.unwrap(), 0);
    let first = store
        .append_session_events("s1", vec![live_event("status", 1), live_event("prompt", 2)])
        .await
        .unwrap();
    assert_eq!(first, [1, 2]);
    // Another session counts on its own.
    let other = store
        .append_session_events("s2", vec![live_event("status", 1)])
        .await
        .unwrap();
    assert_eq!(other, [1]);
    drop(store);
    let store = Store::open(&db.path()).await.expect("reopen");
    let next = store
        .append_session_events("s1", vec![live_event("message", 3)])
        .await
        .unwrap();
    assert_eq!(next, [3]);
    assert_eq!(store.last_session_event_seq("s1").await.unwrap(), 3);
    let after_one = store.session_events_after("s1", 1, 10).await.unwrap();
    assert_eq!(
        after_one,
        [
            StoredSessionEvent {
                seq: 2,
                name: "prompt".into(),
                payload: json!({"n": 2}),
                at: 1002
            },
            StoredSessionEvent {
                seq: 3,
                name: "message".into(),
                payload: json!({"n": 3}),
                at: 1003
            },
        ]
    );
    let limited = store.session_events_after("s1", 0, 2).await.unwrap();
    assert_eq!(limited.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    assert!(store
        .session_events_after("s1", 3, 10)
        .await
        .unwrap()
        .is_empty());
    // An event of a session that does not exist is refused whole.
    assert!(store
        .append_session_events("nope", vec![live_event("status", 1)])
        .await
        .is_err());
}

#[tokio::test]
async fn pruning_keeps_the_newest_events_and_their_numbers() {
    let db = TempDb::new("events-prune");
    let store = Store::open(&db.path()).await.expect("open");
    store.insert_session(session("s1")).await.expect("insert");
    store.insert_session(session("s2")).await.expect("insert");
    let ten = (1..=10).map(|n| live_event("message", n)).collect();
    store.append_session_events("s1", ten).await.unwrap();
    store
        .append_session_events("s2", vec![live_event("status", 1)])
        .await
        .unwrap();
    assert_eq!(store.prune_session_events(4).await.unwrap(), 6);
    let left = store.session_events_after("s1", 0, 100).await.unwrap();
    assert_eq!(
        left.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [7, 8, 9, 10]
    );
    assert_eq!(
        store
            .session_events_after("s2", 0, 100)
            .await
            .unwrap()
            .len(),
        1
    );
    // Numbering goes on after the last, not after what is left.
    let next = store
        .append_session_events("s1", vec![live_event("turn", 11)])
        .await
        .unwrap();
    assert_eq!(next, [11]);
    assert_eq!(store.prune_session_events(4).await.unwrap(), 1);
    // Opening the store prunes to KEEP_EVENTS_PER_SESSION.
    let many = (0..KEEP_EVENTS_PER_SESSION + 2)
        .map(|n| live_event("message", n))
        .collect();
    store.append_session_events("s2", many).await.unwrap();
    drop(store);
    let store = Store::open(&db.path()).await.expect("reopen");
    let oldest = store.session_events_after("s2", 0, 1).await.unwrap();
    assert_eq!(oldest[0].seq, 4);
    assert_eq!(
        store.last_session_event_seq("s2").await.unwrap(),
        KEEP_EVENTS_PER_SESSION + 3
    );
}

mod fencing;

/// A cluster node that finds the database still open in WAL by another process (a node on an
/// older plugin, during a rolling upgrade) waits for it to let go and then switches to the
/// rollback journal; if it does not let go in time, the node opens it all the same, in WAL.
#[tokio::test]
async fn a_database_held_in_wal_elsewhere_is_waited_for_then_switched() {
    let db = TempDb::new("wal-held");
    let journal = |path: &std::path::Path| -> String {
        Connection::open(path)
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap()
    };
    let older = Store::open_inline(&db.path()).expect("open as an older node");
    older.insert_session(session("s1")).await.expect("insert");
    let impatient = Store::open_waiting(&db.path(), Sharing::Hosts, std::time::Duration::ZERO)
        .await
        .expect("a node opens a database another process holds in WAL");
    assert_eq!(journal(&db.path()), "wal");
    assert_eq!(impatient.sessions().await.unwrap().len(), 1);
    drop(impatient);
    let letting_go = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(older);
    });
    let patient = Store::open_waiting(
        &db.path(),
        Sharing::Hosts,
        std::time::Duration::from_secs(60),
    )
    .await
    .expect("open once the older node let go");
    letting_go.join().unwrap();
    assert_eq!(journal(&db.path()), "delete");
    assert_eq!(patient.sessions().await.unwrap().len(), 1);
}

/// Nodes upgraded together open the database held in WAL at the same moment: each waits with
/// its connection closed, so one of them switches it and the others find it switched.
#[tokio::test]
async fn nodes_opening_a_wal_database_together_switch_it() {
    let db = TempDb::new("wal-together");
    let older = Store::open_inline(&db.path()).expect("open as an older node");
    older.insert_session(session("s1")).await.expect("insert");
    drop(older);
    let opening: Vec<_> = (0..3)
        .map(|_| {
            let path = db.path();
            tokio::spawn(async move {
                Store::open_waiting(&path, Sharing::Hosts, std::time::Duration::from_secs(20))
                    .await
                    .expect("opens")
            })
        })
        .collect();
    let mut nodes = Vec::new();
    for node in opening {
        nodes.push(node.await.unwrap());
    }
    let journal: String = Connection::open(db.path())
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "delete");
    for node in &nodes {
        assert_eq!(node.sessions().await.unwrap().len(), 1);
    }
}
