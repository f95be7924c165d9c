//! A card pings its approver: the mention on the card, the one reminder by direct message,
//! and the queue lines in the thread.

use super::*;

impl Stream {
    /// Sets ApprovalReminderMinutes as a saved setting does.
    fn set_reminder(&self, after: Option<Duration>) {
        self.config.set(crate::sessions::SessionConfig {
            approval_reminder: after,
            ..(*self.config.get()).clone()
        });
    }
}

/// The direct messages the bot sent the owner (the fake's direct channel is `dm:<user>`).
fn direct_messages(sink: &FakeSink) -> Vec<Post> {
    sink.log
        .lock()
        .unwrap()
        .iter()
        .filter(|(kind, p, _)| *kind == "create" && p.channel_id == "dm:owner")
        .map(|(_, p, _)| p.clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_card_mentions_its_approver_and_no_one_else() {
    let s = stream(256).await;
    s.send(request("r1")).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let (sink, ..) = s.finish().await;
    let posts = sink.posts();
    let (_, card) = posts
        .iter()
        .find(|(_, p)| p.props_attachments().is_some())
        .expect("a card");
    assert_eq!(
        card.message,
        "@alice Claude Code is waiting for your decision"
    );
    assert_eq!(card.message.matches('@').count(), 1, "{}", card.message);
}

/// A server that never answers the membership lookup delays the card by the lookup's bound,
/// not forever: the card is owed, mentioning the approver.
#[tokio::test(start_paused = true)]
async fn a_hanging_membership_lookup_does_not_hold_the_card() {
    let s = stream(256).await;
    s.rig
        .sink
        .hang_membership
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let t0 = Instant::now();
    s.send(request("r1")).await;
    let card = loop {
        let owed = s.rig.outbox.store().outbox_open_card("r1").await.unwrap();
        if let Some((_, post)) = owed {
            break post;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no card owed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(t0.elapsed() >= Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!(
        card["message"],
        "@alice Claude Code is waiting for your decision"
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiting_card_reminds_its_approver_once_after_the_set_time() {
    let s = stream(256).await;
    s.set_reminder(Some(Duration::from_secs(300)));
    s.send(request("r1")).await;
    tokio::time::sleep(Duration::from_secs(299)).await;
    assert!(direct_messages(&s.rig.sink).is_empty());
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle(&s.rig.outbox).await;
    // Long after: still the one.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let card_id = s
        .rig
        .store
        .outbox_post_id(&crate::chat::outbox::card_key("r1"))
        .await
        .unwrap()
        .expect("the card was created");
    let (sink, ..) = s.finish().await;
    let dms = direct_messages(&sink);
    assert_eq!(dms.len(), 1, "{dms:?}");
    assert_eq!(dms[0].root_id, "");
    assert_eq!(
        dms[0].message,
        format!(
            "⏳ Claude Code has waited 5 minutes for your decision on `Write`: https://mm.test/_redirect/pl/{card_id}"
        )
    );
}

#[tokio::test(start_paused = true)]
async fn a_card_decided_or_closed_in_time_sends_no_reminder() {
    // Decided by a click (the claim), closed by expiry, or the reminder turned off.
    for how in ["click", "expired", "off"] {
        let s = stream(256).await;
        s.set_reminder((how != "off").then_some(Duration::from_secs(60)));
        s.send(request("r1")).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        match how {
            "click" => {
                s.cards
                    .lock()
                    .unwrap()
                    .get_mut(&("s1".to_owned(), "r1".to_owned()))
                    .unwrap()
                    .decided = true;
            }
            "expired" => {
                s.send(EventKind::ToolApprovalExpired {
                    request_id: "r1".into(),
                    message: "expired".into(),
                })
                .await;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_secs(600)).await;
        let (sink, ..) = s.finish().await;
        assert!(direct_messages(&sink).is_empty(), "{how}");
    }
}

#[tokio::test(start_paused = true)]
async fn prompts_sent_during_a_turn_show_as_queued_then_started() {
    let s = stream(256).await;
    let prompt = |id: &str, text: &str| EventKind::Prompt {
        prompt_id: id.into(),
        author: "u1".into(),
        text: text.into(),
        words_at: 0,
    };
    let running = |id: &str| EventKind::StatusChanged {
        from: SessionState::Idle,
        to: SessionState::Running,
        prompt_id: Some(id.into()),
    };
    let idle = EventKind::StatusChanged {
        from: SessionState::Running,
        to: SessionState::Idle,
        prompt_id: None,
    };
    s.send(prompt("p1", "one")).await;
    s.send(running("p1")).await;
    s.send(prompt("p2", "two")).await;
    s.send(prompt("p3", "three")).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    settle(&s.rig.outbox).await;
    let root_id = s.rig.root_id.clone();
    let lines = |sink: &FakeSink| -> Vec<String> {
        sink.posts()
            .into_iter()
            .map(|(_, p)| p)
            .filter(|p| {
                p.root_id == root_id && p.message.contains(" (") && !p.message.contains("Done")
            })
            .map(|p| p.message)
            .collect()
    };
    assert_eq!(
        lines(&s.rig.sink),
        ["⏳ Queued (1st): two", "⏳ Queued (2nd): three"]
    );
    for next in ["p2", "p3"] {
        s.send(result()).await;
        s.send(idle.clone()).await;
        s.send(running(next)).await;
    }
    s.send(result()).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let (sink, ..) = s.finish().await;
    assert_eq!(
        lines(&sink),
        [
            "▶ Started (was queued 1st): two",
            "▶ Started (was queued 2nd): three"
        ]
    );
}

/// The reminder is owed like every post: an outage longer than any in-place retry when it
/// falls due delays it (the direct channel is looked up as part of the outbox's retried
/// job), never drops it.
#[tokio::test(start_paused = true)]
async fn a_reminder_due_during_an_outage_arrives_after_it() {
    let s = stream(256).await;
    s.set_reminder(Some(Duration::from_secs(60)));
    s.send(request("r1")).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    settle(&s.rig.outbox).await;
    s.rig.sink.go_down(Duration::from_secs(120));
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert!(direct_messages(&s.rig.sink).is_empty());
    tokio::time::sleep(Duration::from_secs(60)).await;
    settle(&s.rig.outbox).await;
    let (sink, ..) = s.finish().await;
    assert_eq!(direct_messages(&sink).len(), 1);
}

/// Nothing is sent for a card decided while its reminder waited on the server, nor to an owner
/// who has left the channel; and the card of an owner who has left names nobody.
#[tokio::test(start_paused = true)]
async fn no_reminder_once_decided_or_to_an_owner_who_left() {
    for how in ["decided", "left"] {
        let s = stream(256).await;
        s.set_reminder(Some(Duration::from_secs(60)));
        if how == "left" {
            s.rig.sink.left.lock().unwrap().push("owner".into());
        }
        s.send(request("r1")).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        settle(&s.rig.outbox).await;
        if how == "decided" {
            s.rig.sink.go_down(Duration::from_secs(60));
            tokio::time::sleep(Duration::from_secs(40)).await;
            // Closed while the reminder is owed and the server is away.
            s.send(EventKind::ToolApprovalExpired {
                request_id: "r1".into(),
                message: "expired".into(),
            })
            .await;
        }
        tokio::time::sleep(Duration::from_secs(600)).await;
        settle(&s.rig.outbox).await;
        let (sink, ..) = s.finish().await;
        assert!(direct_messages(&sink).is_empty(), "{how}");
        let posts = sink.posts();
        let (_, card) = posts
            .iter()
            .find(|(_, p)| p.props_attachments().is_some())
            .expect("a card");
        if how == "left" {
            assert_eq!(card.message, "", "the card names nobody");
        }
    }
}

/// A reminder whose request the store already holds as decided is not sent, though its card is
/// still open: at a restart, recovery cancels pending requests before it closes their cards.
#[tokio::test(start_paused = true)]
async fn no_reminder_for_a_request_stored_as_decided() {
    let s = stream(256).await;
    s.set_reminder(Some(Duration::from_secs(60)));
    s.rig
        .store
        .insert_approval(crate::store::ApprovalRecord {
            request_id: "r1".into(),
            session_id: "s1".into(),
            tool: "Write".into(),
            input: serde_json::json!({}),
            decided_by: None,
            decision: None,
            reason: None,
            requested_at: 0,
            decided_at: None,
            allowed: Default::default(),
        })
        .await
        .unwrap();
    s.send(request("r1")).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    settle(&s.rig.outbox).await;
    s.rig
        .store
        .decide_approval("r1", None, "cancelled", None, Default::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
    settle(&s.rig.outbox).await;
    let (sink, ..) = s.finish().await;
    assert!(direct_messages(&sink).is_empty());
}
