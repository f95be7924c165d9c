//! A card that waits on people says so to the one who decides: every card's post mentions the
//! session's owner by username (Mattermost notifies them on desktop and by push on mobile),
//! and a card still undecided after ApprovalReminderMinutes sends the owner one direct message
//! from the bot with a link to it.
//!
//! Only the owner is mentioned, whatever WhoCanApprove says: with `members` every member of
//! the channel may decide, and mentioning them all would be the channel-wide ping the bot must
//! never send. The name comes from Mattermost (GetUser of the owner's id), never from text
//! from outside, so it is the one `@` the neutraliser leaves alive on purpose.

use std::time::Duration;

use tokio::time::Instant;

use super::StreamCtx;
use crate::chat::outbox::{card_key, owed_direct, Outbox, PostSink};
use crate::chat::render::inline_code;
use crate::mattermost::model::Post;

/// The person a card waits on.
#[derive(Debug, Clone)]
pub struct Approver {
    pub user_id: String,
    /// From Mattermost (GetUser); `None` when it could not be read, or is not a name the
    /// server would parse as one mention: the card then mentions nobody.
    pub username: Option<String>,
}

impl Approver {
    pub fn new(user_id: String, username: Option<String>) -> Self {
        // Mattermost's username rules (a-z, 0-9, `.`, `-`, `_`); anything else could make the
        // mention something else. A name the neutraliser would make inert (`all_www.x.co`,
        // which the server reads as `@all`) is not mentioned either.
        let username = username.filter(|u| {
            let mention = format!("@{u}");
            !u.is_empty()
                && u.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_')
                })
                && crate::chat::neutralise::text(&mention) == mention
        });
        Approver { user_id, username }
    }

    /// The mention that notifies this approver.
    fn mention(&self) -> String {
        match &self.username {
            Some(name) => format!("@{name} Claude Code is waiting for your decision"),
            None => String::new(),
        }
    }
}

/// The message of a pending card's post: the mention that notifies its approver, unless they
/// have left the channel. Then nobody is named: with WhoCanApprove=owner nobody else may
/// decide, and with `members` everyone may, and naming them all would be the channel-wide ping
/// the bot never sends. When the server does not say, the owner is still named (most likely
/// still there; a mention of someone who left notifies nobody). A decided card's post no
/// longer carries it.
/// How long a card waits to learn whether its approver is a channel member.
const MEMBERSHIP_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) async fn card_message<S: PostSink>(sink: &S, ctx: &StreamCtx) -> String {
    if ctx.approver.username.is_none() {
        return String::new();
    }
    // Bounded: the card is owed only after this answer, and a server that never answers would
    // hold the turn's stream and leave the card unrecorded.
    let lookup = sink.is_channel_member(&ctx.channel_id, &ctx.approver.user_id);
    match tokio::time::timeout(MEMBERSHIP_LOOKUP_TIMEOUT, lookup).await {
        Ok(Ok(false)) => String::new(),
        Ok(Ok(true)) => ctx.approver.mention(),
        Ok(Err(e)) => {
            tracing::debug!(session = %ctx.session_id, "membership of the card's approver unknown: {e}");
            ctx.approver.mention()
        }
        Err(_) => {
            tracing::warn!(session = %ctx.session_id, "the server did not say in {MEMBERSHIP_LOOKUP_TIMEOUT:?} whether the card's approver is a member; mentioning them");
            ctx.approver.mention()
        }
    }
}

/// The cards whose reminder is still to come, by when.
#[derive(Default)]
pub(super) struct Reminders {
    due: Vec<(Instant, String)>,
}

impl Reminders {
    /// The card of `request_id` reminds after `after` (`None`: never).
    pub(super) fn schedule(&mut self, request_id: &str, after: Option<Duration>) {
        if let Some(after) = after {
            self.due
                .push((Instant::now() + after, request_id.to_owned()));
        }
    }

    /// The card was closed: no reminder.
    pub(super) fn cancel(&mut self, request_id: &str) {
        self.due.retain(|(_, id)| id != request_id);
    }

    pub(super) fn next_due(&self) -> Option<Instant> {
        self.due.iter().map(|(at, _)| *at).min()
    }

    /// The requests due by now, each handed out once.
    pub(super) fn take_due(&mut self) -> Vec<String> {
        let now = Instant::now();
        let (due, later) = self.due.drain(..).partition(|(at, _)| *at <= now);
        self.due = later;
        due.into_iter().map(|(_, id)| id).collect()
    }
}

/// Owes the owner one direct message about the card of `request_id` if it still waits. Owed
/// under one key per request, so it is delivered once however often the server fails; the
/// outbox looks up the direct channel as part of each try (so an outage delays it, never drops
/// it), and drops it instead if the card was closed or the owner left the session's channel
/// in the meantime.
pub(super) async fn remind<S: PostSink>(
    outbox: &Outbox<S>,
    ctx: &StreamCtx,
    request_id: &str,
    waited: Duration,
) {
    let tool = ctx.cards.lock().ok().and_then(|cards| {
        let card = cards.get(&(ctx.session_id.clone(), request_id.to_owned()))?;
        (!card.decided).then(|| card.tool.clone())
    });
    let Some(tool) = tool else { return };
    let post_id = outbox
        .store()
        .outbox_post_id(&card_key(request_id))
        .await
        .ok()
        .flatten();
    let link = match (outbox.sink().site_url().await, post_id) {
        (Some(site), Some(id)) => format!(": {site}/_redirect/pl/{id}"),
        _ => " in its session's thread".to_owned(),
    };
    let post = Post {
        user_id: ctx.bot_id.clone(),
        message: reminder_text(&tool, waited, &link),
        ..Default::default()
    };
    let reminder = owed_direct(
        format!("reminder:{request_id}"),
        &ctx.session_id,
        &post,
        &ctx.approver.user_id,
        &ctx.channel_id,
        request_id,
    );
    if let Err(e) = outbox.put(reminder).await {
        tracing::error!(session = %ctx.session_id, "owing the approval reminder failed: {e}");
    }
}

fn reminder_text(tool: &str, waited: Duration, link: &str) -> String {
    let minutes = waited.as_secs() / 60;
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!(
        "⏳ Claude Code has waited {minutes} {unit} for your decision on {}{link}",
        inline_code(tool)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_real_username_is_mentioned() {
        let a = Approver::new("u1".into(), Some("alice.b-c_1".into()));
        for name in ["channel_ops", "all-hands", "here.now"] {
            let a = Approver::new("u1".into(), Some(name.into()));
            assert_eq!(
                crate::chat::neutralise::text(&a.mention()),
                format!("@{name} Claude Code is waiting for your decision"),
                "the neutraliser keeps the owner's mention"
            );
        }
        assert_eq!(
            a.mention(),
            "@alice.b-c_1 Claude Code is waiting for your decision"
        );
        for bad in [
            "",
            "Alice",
            "al ice",
            "a@all",
            "a\u{202e}b",
            "all_www.x.co",
            "channel.",
        ] {
            let a = Approver::new("u1".into(), Some(bad.into()));
            assert_eq!(a.mention(), "", "{bad:?}");
        }
        assert_eq!(Approver::new("u1".into(), None).mention(), "");
    }

    #[test]
    fn the_reminder_says_how_long_and_where() {
        assert_eq!(
            reminder_text("Bash", Duration::from_secs(300), ": https://mm/_redirect/pl/p1"),
            "⏳ Claude Code has waited 5 minutes for your decision on `Bash`: https://mm/_redirect/pl/p1"
        );
    }
}
