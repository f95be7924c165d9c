//! A direct message with the bot carries a whole session, in process with the REAL Claude Code
//! CLI against the scripted fake Messages API (as chat_inprocess.rs): started with `/claude
//! start` in the DM, every message the person posts there is a prompt (root posts and replies
//! alike), answered in the session's thread; cards and stop work as in a channel. Posts that a
//! person did not write are not prompts, and a DM without a session gets one hint.
//! A missing CLI fails these tests on purpose (run `make claude-cli`, or set CLAUDE_CLI).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use claude_code::mattermost::model::*;
use serde_json::json;
use support::chat::*;

/// The direct channel between u1 and the bot.
const DM: &str = "dm-u1-bot";
/// A group channel with u1, u2 and the bot.
const GROUP: &str = "gm-u1-u2-bot";
const HINT: &str = "No Claude Code session here yet";

/// A message `user` posts in `channel` (a root post unless `root` names one).
fn message(id: &str, user: &str, channel: &str, root: &str, text: &str) -> Post {
    Post {
        id: id.into(),
        user_id: user.into(),
        channel_id: channel.into(),
        root_id: root.into(),
        message: text.into(),
        ..Default::default()
    }
}

fn ephemerals(h: &Harness, text: &str) -> Vec<Post> {
    h.log()
        .into_iter()
        .filter(|(k, p)| k == "ephemeral" && p.message.contains(text))
        .map(|(_, p)| p)
        .collect()
}

/// A harness whose fake server knows the DM with the bot and a group channel.
async fn dm_harness(name: &str) -> Harness {
    let h = Harness::new(
        name,
        |p| {
            let mut script = write_script(&p.join("hello.txt"), "Wrote it.");
            script.as_array_mut().unwrap().push(
                json!({"kind": "message", "blocks": [{"type": "text", "text": "Second answer."}]}),
            );
            script
        },
        json!({}),
    )
    .await;
    {
        let mut st = h.api.lock().unwrap();
        for (id, kind, name) in [
            (DM, "D", format!("{BOT}__u1")),
            (GROUP, "G", "a1b2c3".to_owned()),
        ] {
            let channel = Channel {
                id: id.into(),
                r#type: kind.into(),
                name,
                ..Default::default()
            };
            st.channels.insert(id.into(), channel);
        }
    }
    h
}

#[tokio::test]
async fn a_direct_message_without_a_session_is_answered_with_one_hint() {
    let h = dm_harness("dm-hint").await;
    // However many messages; none in an ordinary or a group channel.
    for (i, channel) in [DM, DM, CHANNEL, GROUP, DM].into_iter().enumerate() {
        h.post(message(
            &format!("early-{i}"),
            "u1",
            channel,
            "",
            "EARLY HELLO",
        ))
        .await;
    }
    let hints = ephemerals(&h, HINT);
    assert_eq!(hints.len(), 1, "{hints:#?}");
    assert_eq!(
        (hints[0].channel_id.as_str(), hints[0].user_id.as_str()),
        (DM, BOT)
    );
    assert!(hints[0].message.contains("`/claude start <path>`"));
    assert_eq!(h.log().len(), 1, "nothing else was posted");
    // A new run of the plugin gives one more.
    h.deactivate().await;
    h.activate().await;
    h.post(message("early-9", "u1", DM, "", "EARLY HELLO"))
        .await;
    assert_eq!(ephemerals(&h, HINT).len(), 2);
    h.deactivate().await;
}

#[tokio::test]
async fn a_direct_message_with_the_bot_carries_a_whole_session() {
    let h = dm_harness("dm").await;
    h.post(message("early-1", "u1", DM, "", "EARLY HELLO"))
        .await;

    // Start in the DM; the bot is not added to it (the server cannot, and it is a member).
    let answer = h
        .command_in(DM, "u1", &format!("/claude start {}", h.project.display()))
        .await;
    assert!(
        answer
            .text
            .contains("every message you post here is a prompt")
            || answer
                .text
                .contains("Every message you post here is a prompt"),
        "{}",
        answer.text
    );
    h.wait_for("root post", |l| {
        l.iter()
            .any(|(k, p)| k == "create" && p.message.contains("Claude Code session started"))
    })
    .await;
    let root = h.root_post();
    assert_eq!((root.channel_id.as_str(), root.root_id.as_str()), (DM, ""));
    assert!(!h.api.lock().unwrap().members.iter().any(|m| m == BOT));

    // A root post in the DM is a prompt: its turn asks to write a file, and the card comes in
    // the session's thread, mentioning the DM's person.
    h.post(message("dm-1", "u1", DM, "", "please write hello.txt"))
        .await;
    h.wait_for("the card", |_| h.card().is_some_and(|(_, a)| !a.is_empty()))
        .await;
    let (card, actions) = h.card().unwrap();
    assert_eq!(
        (card.channel_id.as_str(), card.root_id.as_str()),
        (DM, root.id.as_str())
    );
    assert!(card.message.contains("@name-u1"), "{}", card.message);

    // Posts a person did not write are not prompts: the bot's own, another plugin's, a system
    // post (the DM's header changed).
    h.post(message("bot-1", BOT, DM, "", "BOT SAYS")).await;
    let mut plugin = message("plugin-1", "u1", DM, "", "PLUGIN SAYS");
    plugin.props = Some(BTreeMap::from([(
        "from_plugin".to_owned(),
        Any::String("true".into()),
    )]));
    h.post(plugin).await;
    let mut system = message("system-1", "u1", DM, "", "SYSTEM SAYS");
    system.r#type = "system_header_change".into();
    h.post(system).await;

    let mut click = click_body("u1", &card.id, context_json(action(&actions, "approve")));
    click["channel_id"] = json!(DM);
    let (status, v) = h.http(ACTION_URL, "u1", click).await;
    assert_eq!(status, Some(200));
    assert!(
        v["update"]["props"]["attachments"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("✅ Approved by @name-u1")),
        "{v}"
    );
    h.wait_for("the file", |_| h.project.join("hello.txt").exists())
        .await;
    h.wait_for("the first turn's post", |l| {
        l.iter().any(|(_, p)| {
            p.channel_id == DM
                && p.root_id == root.id
                && p.message.contains("Wrote it.")
                && p.message.contains("✓ Done")
        })
    })
    .await;

    // A reply to the person's own post (not in the session's thread) is a prompt too.
    h.post(message("dm-2", "u1", DM, "dm-1", "and now?")).await;
    h.wait_for("the second answer, in the session's thread", |l| {
        l.iter().any(|(_, p)| {
            p.root_id == root.id
                && p.message.contains("Second answer.")
                && p.message.contains("✓ Done")
        })
    })
    .await;
    let requests = h.model_requests();
    let last = requests.last().unwrap();
    assert!(last.contains("please write hello.txt") && last.contains("and now?"));
    for not_a_prompt in ["BOT SAYS", "PLUGIN SAYS", "SYSTEM SAYS", "EARLY HELLO"] {
        assert!(
            !requests.iter().any(|r| r.contains(not_a_prompt)),
            "{not_a_prompt} reached the model"
        );
    }
    // No refusal was answered to anyone, and only the early message had a hint.
    let log = h.log();
    let answers: Vec<_> = log.iter().filter(|(k, _)| k == "ephemeral").collect();
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert!(answers[0].1.message.contains(HINT));

    let stopped = h.command_in(DM, "u1", "/claude stop").await;
    assert!(stopped.text.contains("stopped"), "{}", stopped.text);
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.deactivate().await;
}

/// When the server cannot say what a channel is, a message in a DM that has a session is not
/// dropped silently: its poster is told to send it again. Elsewhere nothing is said (no session
/// there, nothing of theirs was lost).
#[tokio::test]
async fn a_dm_message_whose_channel_cannot_be_checked_is_answered_not_dropped() {
    let h = dm_harness("dm-unchecked").await;
    h.command_in(DM, "u1", &format!("/claude start {}", h.project.display()))
        .await;
    h.wait_for("root post", |l| {
        l.iter()
            .any(|(k, p)| k == "create" && p.message.contains("Claude Code session started"))
    })
    .await;
    // A new run knows no channel's kind yet, and the server's GetChannel now fails.
    h.deactivate().await;
    h.activate().await;
    h.api.lock().unwrap().fail_get_channel = true;
    let calls = h.model_requests().len();
    h.post(message("dm-1", "u1", DM, "", "LOST PROMPT")).await;
    h.post(message("gm-1", "u1", GROUP, "", "GROUP TALK")).await;
    let answers = ephemerals(&h, "could not say what kind of channel this is");
    assert_eq!(answers.len(), 1, "{:#?}", h.log());
    assert_eq!(
        (answers[0].channel_id.as_str(), answers[0].message.as_str()),
        (
            DM,
            "Your message was not sent to Claude: the server could not say what kind of channel this is. Send it again."
        )
    );
    assert!(ephemerals(&h, HINT).is_empty());
    assert_eq!(h.model_requests().len(), calls);
    // The server is back: the same message goes through.
    h.api.lock().unwrap().fail_get_channel = false;
    h.post(message("dm-2", "u1", DM, "", "please write hello.txt"))
        .await;
    h.wait_for("the card", |_| h.card().is_some_and(|(_, a)| !a.is_empty()))
        .await;
    h.command_in(DM, "u1", "/claude stop").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.deactivate().await;
}
