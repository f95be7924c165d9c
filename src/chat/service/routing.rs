//! Which post is a prompt for which session (MessageHasBeenPosted). Only a person's own post can
//! be one; then either it is a reply in the thread of its channel's current session, or it is
//! any message (root post or reply) in a direct channel between that person and the bot, once a
//! session is bound to that channel. A group channel is an ordinary channel: only thread
//! replies. What a prompt carries, and the gate it passes, are `on_post`'s business.

use std::collections::{HashMap, HashSet};

use super::{ChatService, SessionInfo};
use crate::mattermost::api::ApiError;
use crate::mattermost::model::{Any, Channel, Post};

/// A direct channel; the server names one `<user id>__<user id>`.
const DIRECT: &str = "D";
/// Channels whose kind is remembered, at most: the verdicts are cheap to ask for again, so a
/// full table is emptied rather than evicted by age.
const REMEMBERED_CHANNELS: usize = 10_000;
pub(crate) const CHANNEL_UNCHECKED: &str = "Your message was not sent to Claude: the server could not say what kind of channel this is. Send it again.";
pub(crate) const NO_SESSION_HERE: &str = "No Claude Code session here yet: start one with `/claude start <path>`, then every message you post here is a prompt for it.";

/// Where a post goes.
pub(super) enum Route {
    /// A prompt for this session (boxed: the session's info is large beside the other routes).
    Prompt(String, Box<SessionInfo>),
    /// A person's message in a direct channel with the bot that has no session: they are told
    /// how to start one (once per channel and plugin run).
    Hint,
    /// The server could not say whether the channel, which has a session, is a direct channel
    /// with the bot: the person is told to send it again rather than hear nothing.
    Unchecked,
    /// Not a prompt.
    Ignore,
}

/// What is known about channels for routing. A channel's type never changes (a direct channel
/// stays one, with the same two people), so a verdict holds for the plugin's run.
#[derive(Default)]
pub(super) struct DirectChannels {
    /// channel id -> whether it is a direct channel with the bot.
    with_bot: HashMap<String, bool>,
    /// Direct channels whose person was told that no session is bound there. Once per channel
    /// and run keeps it simple and quiet: a DM with the bot has one person, who learns the
    /// command from one hint; after a restart they may have forgotten, and get one more.
    hinted: HashSet<String>,
}

/// Whether a person wrote the post: not the bot, not another plugin, bot or webhook (their
/// posts are flagged), not a system post (join, leave, header change: a non-empty type).
pub(super) fn by_a_person(post: &Post, bot_id: &str) -> bool {
    let flagged = |key: &str| {
        post.props.as_ref().is_some_and(|p| {
            matches!(p.get(key), Some(Any::String(s)) if s == "true")
                || matches!(p.get(key), Some(Any::Bool(true)))
        })
    };
    !post.user_id.is_empty()
        && post.user_id != bot_id
        && post.r#type.is_empty()
        && !["from_bot", "from_plugin", "from_webhook"]
            .into_iter()
            .any(flagged)
}

/// Whether `channel` is a direct channel between someone and the bot (group channels are not:
/// there every member is talked to, not the bot).
fn is_direct_with(channel: &Channel, bot_id: &str) -> bool {
    channel.r#type == DIRECT && channel.name.split("__").any(|id| id == bot_id)
}

impl ChatService {
    /// Where `post` goes. A thread reply is routed without asking the server anything; any
    /// other post costs one GetChannel per channel and run.
    pub(super) async fn route(&self, post: &Post) -> Route {
        if !by_a_person(post, &self.bot_id) {
            return Route::Ignore;
        }
        if let Some(current) = self.current_thread_session(post) {
            return Route::Prompt(current.0, Box::new(current.1));
        }
        match self.direct_with_bot(&post.channel_id).await {
            Ok(true) => {}
            Ok(false) => return Route::Ignore,
            // Only where a session is bound can the post have been a prompt; elsewhere it is
            // at most a hint lost.
            Err(_) => {
                let bound = self
                    .state
                    .lock()
                    .is_ok_and(|st| st.by_channel.contains_key(&post.channel_id));
                return if bound {
                    Route::Unchecked
                } else {
                    Route::Ignore
                };
            }
        }
        let bound = self.state.lock().ok().and_then(|st| {
            let id = st.by_channel.get(&post.channel_id)?;
            Some((id.clone(), st.sessions.get(id)?.clone()))
        });
        match bound {
            Some((id, info)) => Route::Prompt(id, Box::new(info)),
            None if self.first_hint(&post.channel_id) => Route::Hint,
            None => Route::Ignore,
        }
    }

    /// The session whose thread `post` replies in, if it is its channel's current one (a reply
    /// in the thread of an older session of the channel is not a prompt).
    fn current_thread_session(&self, post: &Post) -> Option<(String, SessionInfo)> {
        if post.root_id.is_empty() {
            return None;
        }
        let st = self.state.lock().ok()?;
        let session_id = st.by_root.get(&post.root_id)?;
        if st.by_channel.get(&post.channel_id) != Some(session_id) {
            return None;
        }
        Some((session_id.clone(), st.sessions.get(session_id)?.clone()))
    }

    /// Whether the channel is a direct channel with the bot, asked of the server once per
    /// channel (a failed call is not remembered: the next post asks again).
    pub(crate) async fn direct_with_bot(&self, channel_id: &str) -> Result<bool, ApiError> {
        let known = self
            .channels
            .lock()
            .ok()
            .and_then(|c| c.with_bot.get(channel_id).copied());
        if let Some(known) = known {
            return Ok(known);
        }
        let direct = match self.api.get_channel(channel_id).await {
            Ok(channel) => is_direct_with(&channel, &self.bot_id),
            Err(e) => {
                tracing::warn!(channel = channel_id, "GetChannel failed: whether this is a direct channel with the bot is unknown: {e}");
                return Err(e);
            }
        };
        if let Ok(mut c) = self.channels.lock() {
            if c.with_bot.len() >= REMEMBERED_CHANNELS {
                c.with_bot.clear();
            }
            c.with_bot.insert(channel_id.to_owned(), direct);
        }
        Ok(direct)
    }

    /// Whether the hint is still owed in this direct channel (and marks it given).
    fn first_hint(&self, channel_id: &str) -> bool {
        self.channels
            .lock()
            .is_ok_and(|mut c| c.hinted.insert(channel_id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn post(user: &str, r#type: &str, flag: Option<(&str, Any)>) -> Post {
        Post {
            user_id: user.into(),
            channel_id: "dm".into(),
            message: "hello".into(),
            r#type: r#type.into(),
            props: flag.map(|(k, v)| BTreeMap::from([(k.to_owned(), v)])),
            ..Default::default()
        }
    }

    #[test]
    fn only_a_persons_own_posts_can_be_prompts() {
        assert!(by_a_person(&post("u1", "", None), "bot"));
        assert!(!by_a_person(&post("bot", "", None), "bot"));
        assert!(!by_a_person(&post("", "", None), "bot"));
        for system in ["system_join_channel", "system_header_change", "custom_x"] {
            assert!(!by_a_person(&post("u1", system, None), "bot"), "{system}");
        }
        for key in ["from_bot", "from_plugin", "from_webhook"] {
            assert!(
                !by_a_person(
                    &post("u1", "", Some((key, Any::String("true".into())))),
                    "bot"
                ),
                "{key}"
            );
            assert!(
                !by_a_person(&post("u1", "", Some((key, Any::Bool(true)))), "bot"),
                "{key}"
            );
        }
        assert!(by_a_person(
            &post("u1", "", Some(("from_bot", Any::String("false".into())))),
            "bot"
        ));
    }

    #[test]
    fn a_direct_channel_with_the_bot_is_told_by_type_and_name() {
        let channel = |t: &str, name: &str| Channel {
            r#type: t.into(),
            name: name.into(),
            ..Default::default()
        };
        assert!(is_direct_with(&channel("D", "bot__u1"), "bot"));
        assert!(is_direct_with(&channel("D", "abc__bot"), "bot"));
        // Between two people, or a person with themselves.
        assert!(!is_direct_with(&channel("D", "u1__u2"), "bot"));
        assert!(!is_direct_with(&channel("D", "u1__u1"), "bot"));
        // A group channel with the bot in it, and open or private channels named like a DM.
        assert!(!is_direct_with(&channel("G", "bot__u1"), "bot"));
        assert!(!is_direct_with(&channel("O", "bot__u1"), "bot"));
        assert!(!is_direct_with(&channel("P", "bot"), "bot"));
        // An id that only contains the bot's.
        assert!(!is_direct_with(&channel("D", "xbot__u1"), "bot"));
    }
}
