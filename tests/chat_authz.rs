//! Who may do what, through the hooks: the whole table of src/chat/authz.rs walked role by
//! role and action by action (ExecuteCommand, thread replies, the approval click and dialog
//! routes, the health route); starts admitted atomically (one session per channel, at most
//! MaxConcurrentSessions); sessions stopped when their root leaves AllowedProjectRoots. These
//! run the stand-in CLI (tests/support/chat.rs), except the tests marked REAL CLI, which run
//! the real Claude Code CLI against the scripted fake Messages API.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use claude_code::chat::authz::Action;
use claude_code::chat::service::NOT_A_MEMBER;
use claude_code::config::WhoCanApprove;
use claude_code::mattermost::model::*;
use serde_json::{json, Value};
use support::chat::*;
use support::roles::*;

fn is_refusal(text: &str) -> bool {
    text.starts_with("Only ") || text.starts_with(NOT_A_MEMBER)
}

/// Checks one cell: the answer the hook gave `user` for `action`.
fn check(cells: &mut Vec<String>, user: &str, action: Action, who: WhoCanApprove, got: &str) {
    match expected(user, action, who) {
        Some(refusal) => assert_eq!(got, refusal, "{user} {action:?} ({who:?}) must be refused"),
        None => assert!(
            !is_refusal(got),
            "{user} {action:?} ({who:?}) must be allowed, got {got:?}"
        ),
    }
    cells.push(format!("{user} {action:?} {who:?}"));
}

/// The newest card with buttons, waited for.
async fn open_card(h: &Harness) -> (Post, Vec<PostAction>) {
    h.wait_for("a card with buttons", |_| {
        h.card().is_some_and(|(_, a)| !a.is_empty())
    })
    .await;
    h.card().unwrap()
}

fn ephemerals_saying(h: &Harness, text: &str) -> usize {
    h.log()
        .iter()
        .filter(|(k, p)| k == "ephemeral" && p.message == text)
        .count()
}

/// One walk over every action for `users`, with WhoCanApprove = `who`. The session (owner
/// u1) is live at the start and stopped at the end.
async fn walk(h: &Harness, users: &[&str], who: WhoCanApprove, cells: &mut Vec<String>) {
    let root = h.root_post();
    let project = h.project.display().to_string();
    // Help, the health and the metrics routes: no session involved.
    for &u in users {
        let r = h.command_as(u, "/claude help").await;
        check(cells, u, Action::Help, who, &r.text);
        let (status, v) = h.http_method("GET", "/api/v1/health", u, Value::Null).await;
        assert_eq!((status, &v["status"]), (Some(200), &json!("ok")));
        cells.push(format!("{u} {:?} {who:?}", Action::Health));
        let (status, v) = h
            .http_method("GET", "/api/v1/metrics", u, Value::Null)
            .await;
        match expected(u, Action::Metrics, who) {
            None => assert_eq!(status, Some(200), "{u} reads the metrics"),
            Some(refusal) => assert_eq!((status, &v["error"]), (Some(403), &json!(refusal))),
        }
        cells.push(format!("{u} {:?} {who:?}", Action::Metrics));
    }
    // A person's own file edit: a REST route of its own (approvers only).
    let (_, list) = h
        .http_method("GET", "/api/v1/sessions", OWNER, Value::Null)
        .await;
    let sid = list["sessions"][0]["id"].as_str().unwrap().to_owned();
    for &u in users {
        let url = format!("/api/v1/sessions/{sid}/files/by-{u}-{who:?}.txt");
        let (status, v) = h
            .http_method("POST", &url, u, json!({"content": "x"}))
            .await;
        let member = is_member(u);
        match expected(u, Action::EditFile, who) {
            None => assert_eq!(status, Some(201), "{u} edits a file: {v}"),
            Some(refusal) if member => {
                assert_eq!((status, &v["error"]), (Some(403), &json!(refusal)))
            }
            Some(_) => assert_eq!(status, Some(404), "{u} is told nothing: {v}"),
        }
        cells.push(format!("{u} {:?} {who:?}", Action::EditFile));
    }
    // Commands that leave the session as it is (the session is live: an allowed start is
    // told the channel has one).
    let commands: [(Action, String); 10] = [
        (Action::Start, format!("/claude start {project}")),
        (Action::Status, "/claude status".into()),
        (
            Action::ContextThread,
            format!("/claude context thread {}", root.id),
        ),
        (Action::ContextFile, "/claude context file README.md".into()),
        (Action::Files, "/claude files".into()),
        (Action::File, "/claude file README.md".into()),
        (Action::History, "/claude history".into()),
        (Action::Model, "/claude model claude-sonnet-4-5".into()),
        (Action::Mode, "/claude mode acceptEdits".into()),
        (Action::Prompt, "/claude please write the file".into()),
    ];
    for (action, line) in &commands {
        for &u in users {
            let r = h.command_as(u, line).await;
            check(cells, u, *action, who, &r.text);
        }
    }
    // A reply in the thread is a prompt too; a refusal comes back as an ephemeral post.
    for &u in users {
        let refusal = expected(u, Action::Prompt, who);
        let before = refusal.as_deref().map_or(0, |t| ephemerals_saying(h, t));
        let refusals_before = h
            .log()
            .iter()
            .filter(|(k, p)| k == "ephemeral" && is_refusal(&p.message))
            .count();
        h.post(Post {
            id: format!("reply-{u}-{who:?}"),
            user_id: u.into(),
            channel_id: CHANNEL.into(),
            root_id: root.id.clone(),
            message: "and this too".into(),
            ..Default::default()
        })
        .await;
        if let Some(text) = &refusal {
            assert_eq!(ephemerals_saying(h, text), before + 1, "{u} thread reply");
        } else {
            let refused: Vec<String> = h
                .log()
                .iter()
                .filter(|(k, p)| k == "ephemeral" && is_refusal(&p.message))
                .map(|(_, p)| p.message.clone())
                .collect();
            assert_eq!(
                refused.len(),
                refusals_before,
                "{u} thread reply refused: {refused:#?}"
            );
        }
        cells.push(format!("{u} {:?} {who:?} (thread reply)", Action::Prompt));
    }

    // The card of the first prompt: every button, refused users first (their clicks must
    // leave the card as it is), then the allowed ones.
    let (card, actions) = open_card(h).await;
    let buttons = [
        ("denyreason", Action::DenyWithReason),
        ("editapprove", Action::EditAndApprove),
        ("approvesession", Action::ApproveForSession),
        ("deny", Action::Deny),
        ("approve", Action::Approve),
    ];
    let updates = h.card_updates(&card.id);
    for &u in users {
        for (id, action) in buttons {
            if expected(u, action, who).is_some() {
                let (_, v) = h
                    .click(
                        u,
                        &card.id,
                        context_json(support::chat::action(&actions, id)),
                    )
                    .await;
                check(
                    cells,
                    u,
                    action,
                    who,
                    v["ephemeral_text"].as_str().unwrap_or(""),
                );
            }
        }
    }
    assert_eq!(
        h.card_updates(&card.id),
        updates,
        "a refused click changed the card"
    );
    // The dialogs, opened by the owner (always an approver); then submitted by everyone.
    let mut dialogs = Vec::new();
    for id in ["denyreason", "editapprove"] {
        let (_, v) = h
            .click(
                OWNER,
                &card.id,
                context_json(support::chat::action(&actions, id)),
            )
            .await;
        assert_eq!(v, json!({}), "{id} opens its dialog");
        dialogs.push(h.dialog());
    }
    let submissions = [
        (Action::SubmitDenyReason, json!({"reason": "not now"})),
        (Action::SubmitEdit, json!({"input": "edited\n"})),
    ];
    for &u in users {
        for ((action, submission), dialog) in submissions.iter().zip(&dialogs) {
            if expected(u, *action, who).is_some() {
                let body = dialog_submission(dialog, submission.clone());
                let (_, v) = h.http(DIALOG_URL, u, body).await;
                check(cells, u, *action, who, v["error"].as_str().unwrap_or(""));
            }
        }
    }
    assert_eq!(
        h.card_updates(&card.id),
        updates,
        "a refused submission changed the card"
    );
    // Allowed: the buttons that open dialogs open them; the first deciding click decides, the
    // later ones are told the card was answered (past the authorization, that is).
    for &u in users {
        for (id, action) in buttons {
            if expected(u, action, who).is_none() {
                let (_, v) = h
                    .click(
                        u,
                        &card.id,
                        context_json(support::chat::action(&actions, id)),
                    )
                    .await;
                let text = v["ephemeral_text"].as_str().unwrap_or("");
                check(cells, u, action, who, text);
                // Before the card is decided, these open their dialogs.
                if v == json!({}) {
                    h.dialog();
                }
            }
        }
        for ((action, submission), dialog) in submissions.iter().zip(&dialogs) {
            if expected(u, *action, who).is_none() {
                let body = dialog_submission(dialog, submission.clone());
                let (_, v) = h.http(DIALOG_URL, u, body).await;
                check(cells, u, *action, who, v["error"].as_str().unwrap_or(""));
            }
        }
    }
    // The decided card reaches the server through the outbox, a moment after the click.
    h.wait_for("an allowed click to decide the card", |_| {
        h.card_updates(&card.id) > updates
    })
    .await;

    // Discarding a worktree (the session has none: an allowed user is told so, and nothing
    // stops), interrupt, then stop: refused users first, so that the session is still there
    // for them.
    for (action, line) in [
        (Action::DiscardWorktree, "/claude stop --clean --force"),
        (Action::Interrupt, "/claude interrupt"),
        (Action::Stop, "/claude stop"),
    ] {
        let mut order: Vec<&str> = users.to_vec();
        order.sort_by_key(|u| expected(u, action, who).is_none());
        for u in order {
            let r = h.command_as(u, line).await;
            check(cells, u, action, who, &r.text);
        }
    }
}

/// THE table, through the hooks: every role (owner, approver, member, team member outside
/// the channel, system admin) × every action (each subcommand, the thread reply, each
/// button, each dialog, the health route), under both WhoCanApprove settings.
#[tokio::test]
async fn the_whole_authorization_table_through_the_hooks() {
    let standin = StandIn::new();
    let h = stand_in_harness("table", &standin, json!({"WhoCanApprove": "owner"})).await;
    h.start().await;
    let mut cells = Vec::new();
    walk(
        &h,
        &[OWNER, MEMBER, OUTSIDER, ADMIN],
        WhoCanApprove::Owner,
        &mut cells,
    )
    .await;
    // Every channel member an approver: the member is now one. The owner's prompt brings the
    // stopped session back (the walk needs it live).
    h.reconfigure(json!({"WhoCanApprove": "members"})).await;
    let r = h.command_as(OWNER, "/claude once more").await;
    assert!(!is_refusal(&r.text), "{}", r.text);
    walk(
        &h,
        &[MEMBER, OWNER, OUTSIDER, ADMIN],
        WhoCanApprove::Members,
        &mut cells,
    )
    .await;

    // Every role × action was walked: 4 users, 22 actions (Prompt twice: command and reply).
    let per_walk = 4 * (Action::ALL.len() + 1);
    assert_eq!(cells.len(), 2 * per_walk, "{cells:#?}");
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for c in &cells {
        *seen.entry(c.clone()).or_default() += 1;
    }
    assert!(
        seen.values().all(|&n| n == 1),
        "a cell walked twice: {seen:?}"
    );
    h.deactivate().await;
}

/// Starts through the hooks, concurrently: `n` ExecuteCommand calls at once.
async fn start_all(h: &Arc<Harness>, channels: &[String]) -> Vec<String> {
    let mut set = tokio::task::JoinSet::new();
    for (i, channel) in channels.iter().enumerate() {
        let (h, channel) = (h.clone(), channel.clone());
        let line = format!("/claude start {}", h.project.display());
        set.spawn(async move { (i, h.command_in(&channel, OWNER, &line).await.text) });
    }
    let mut answers = vec![String::new(); channels.len()];
    while let Some(r) = set.join_next().await {
        let (i, text) = r.unwrap();
        answers[i] = text;
    }
    answers
}

fn root_posts(h: &Harness) -> Vec<Post> {
    h.log()
        .into_iter()
        .filter(|(k, p)| k == "create" && p.message.contains("Claude Code session started"))
        .map(|(_, p)| p)
        .collect()
}

#[tokio::test]
async fn concurrent_starts_in_one_channel_make_one_session() {
    let standin = StandIn::new();
    let h = Arc::new(stand_in_harness("race1", &standin, json!({})).await);
    let answers = start_all(&h, &vec![CHANNEL.to_owned(); 3]).await;
    let started = answers
        .iter()
        .filter(|a| a.starts_with("Session started"))
        .count();
    assert_eq!(started, 1, "{answers:#?}");
    assert!(
        answers.iter().all(|a| a.starts_with("Session started")
            || a.contains("already being started")
            || a.contains("already has a session")),
        "{answers:#?}"
    );
    assert_eq!(root_posts(&h).len(), 1);
    assert_eq!(standin.wait_launched(1).await, 1, "one CLI");
    h.deactivate().await;
}

#[tokio::test]
async fn concurrent_starts_respect_max_concurrent_sessions() {
    let standin = StandIn::new();
    let h =
        Arc::new(stand_in_harness("race6", &standin, json!({"MaxConcurrentSessions": 2})).await);
    let channels: Vec<String> = (0..6).map(|i| format!("chan-race-{i}")).collect();
    let answers = start_all(&h, &channels).await;
    let started = answers
        .iter()
        .filter(|a| a.starts_with("Session started"))
        .count();
    assert_eq!(started, 2, "{answers:#?}");
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.contains("the maximum (MaxConcurrentSessions)"))
            .count(),
        4,
        "{answers:#?}"
    );
    assert_eq!(root_posts(&h).len(), 2);
    assert_eq!(standin.wait_launched(2).await, 2, "two CLIs");
    h.deactivate().await;
}

/// A start that fails lets go of its channel and its slot: the next start in the same channel,
/// and one in another channel at the limit, go through.
#[tokio::test]
async fn a_failed_start_releases_its_channel_and_slot() {
    let standin = StandIn::new();
    let h = stand_in_harness("release", &standin, json!({"MaxConcurrentSessions": 1})).await;
    let line = format!("/claude start {}", h.project.display());
    standin.set_executable(false);
    let r = h.command_in("chan-a", OWNER, &line).await;
    assert!(
        r.text.starts_with("Claude Code could not start"),
        "{}",
        r.text
    );
    standin.set_executable(true);
    let r = h.command_in("chan-a", OWNER, &line).await;
    assert!(r.text.starts_with("Session started"), "{}", r.text);
    let r = h.command_in("chan-b", OWNER, &line).await;
    assert!(r.text.contains("the maximum"), "{}", r.text);
    let r = h.command_in("chan-a", OWNER, "/claude stop").await;
    assert!(r.text.contains("stopped"), "{}", r.text);
    let r = h.command_in("chan-b", OWNER, &line).await;
    assert!(r.text.starts_with("Session started"), "{}", r.text);
    h.deactivate().await;
}

/// A stopped session that a prompt resumes takes a slot as a start does: stopping one session
/// and starting another cannot make MaxConcurrentSessions + 1 run.
#[tokio::test]
async fn a_resumed_session_takes_a_slot() {
    let standin = StandIn::new();
    let h = stand_in_harness("resume", &standin, json!({"MaxConcurrentSessions": 1})).await;
    let line = format!("/claude start {}", h.project.display());
    let r = h.command_in("chan-a", OWNER, &line).await;
    assert!(r.text.starts_with("Session started"), "{}", r.text);
    // Stopped only once its stand-in runs (a stop before that leaves no trace to count).
    assert_eq!(standin.wait_launched(1).await, 1);
    let r = h.command_in("chan-a", OWNER, "/claude stop").await;
    assert!(r.text.contains("stopped"), "{}", r.text);
    let r = h.command_in("chan-b", OWNER, &line).await;
    assert!(r.text.starts_with("Session started"), "{}", r.text);
    assert_eq!(standin.wait_launched(2).await, 2);
    let r = h.command_in("chan-a", OWNER, "/claude come back").await;
    assert!(
        r.text.contains("the maximum (MaxConcurrentSessions)"),
        "{}",
        r.text
    );
    assert_eq!(standin.wait_launched(3).await, 2, "no third CLI");
    let r = h.command_in("chan-b", OWNER, "/claude stop").await;
    assert!(r.text.contains("stopped"), "{}", r.text);
    let r = h.command_in("chan-a", OWNER, "/claude come back").await;
    assert!(!r.text.contains("the maximum"), "{}", r.text);
    assert_eq!(standin.wait_launched(3).await, 3, "chan-a resumed");
    h.deactivate().await;
}

/// An admin removes the session's root from AllowedProjectRoots: the session stops, its
/// thread says why, and it answers no prompt and serves no file any more.
#[tokio::test]
async fn a_removed_root_stops_its_sessions() {
    let standin = StandIn::new();
    let h = stand_in_harness("roots", &standin, json!({})).await;
    let root = h.start().await;
    let elsewhere = h.dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    h.reconfigure(json!({"AllowedProjectRoots": elsewhere.display().to_string()}))
        .await;
    h.wait_for("the stop message", |l| {
        l.iter().any(|(k, p)| {
            k == "create"
                && p.root_id == root.id
                && p.message
                    .contains("no longer under an allowed project root")
        })
    })
    .await;
    let t = h.command("/claude status").await;
    assert!(t.contains("stopped"), "{t}");
    let launched = standin.launched();
    for line in [
        "/claude write it",
        "/claude files",
        "/claude file README.md",
    ] {
        let t = h.command(line).await;
        assert!(
            t.contains("no longer under an allowed project root"),
            "{line}: {t}"
        );
    }
    assert_eq!(standin.launched(), launched, "no CLI resumed");
    h.deactivate().await;
}
