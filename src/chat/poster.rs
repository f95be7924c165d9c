//! [`BotPoster`]: the one door through which the bot's posts reach the server. Every post
//! passes [`neutralise`] first, and the bot joins a channel before its first post there: a
//! bot posting in a channel it is not a member of makes the server log `Missing profile` for
//! the thread's notifications.

use std::collections::HashSet;
use std::sync::Mutex;

use super::neutralise;
use super::outbox::{PostSink, KEY_PROP};
use crate::mattermost::api::{Api, ApiError};
use crate::mattermost::model::{Any, Post};

/// Channel types the server cannot add members to (direct and group messages).
const DIRECT: &str = "D";
const GROUP: &str = "G";

pub(crate) struct BotPoster {
    api: Api,
    bot_id: String,
    /// Channels the bot is known to be in (or cannot join): asked about once per activation.
    settled: Mutex<HashSet<String>>,
}

impl BotPoster {
    pub(crate) fn new(api: Api, bot_id: String) -> Self {
        BotPoster {
            api,
            bot_id,
            settled: Mutex::new(HashSet::new()),
        }
    }

    fn is_settled(&self, channel_id: &str) -> bool {
        self.settled.lock().is_ok_and(|s| s.contains(channel_id))
    }

    fn settle(&self, channel_id: &str) {
        if let Ok(mut s) = self.settled.lock() {
            s.insert(channel_id.to_owned());
        }
    }

    /// Makes the bot a member of the channel if it is not one. A direct or group channel
    /// cannot be joined (the server refuses): the bot posts there as a plugin may. A bot
    /// outside the channel's team joins the team first. A failure is logged and asked about
    /// again at the next post; the post goes out anyway.
    pub(crate) async fn join(&self, channel_id: &str) {
        if channel_id.is_empty() || self.is_settled(channel_id) {
            return;
        }
        match self.try_join(channel_id).await {
            Ok(()) => self.settle(channel_id),
            Err(e) => {
                tracing::warn!(
                    channel = channel_id,
                    "the bot could not join the channel: {e}"
                )
            }
        }
    }

    async fn try_join(&self, channel_id: &str) -> Result<(), ApiError> {
        if self
            .api
            .get_channel_member(channel_id, &self.bot_id)
            .await
            .is_ok()
        {
            return Ok(());
        }
        let channel = self.api.get_channel(channel_id).await?;
        if channel.r#type == DIRECT || channel.r#type == GROUP {
            tracing::debug!(
                channel = channel_id,
                "a direct or group channel: not joined"
            );
            return Ok(());
        }
        match self.api.add_channel_member(channel_id, &self.bot_id).await {
            Ok(_) => Ok(()),
            // The server adds only members of the channel's team.
            Err(first) if !channel.team_id.is_empty() => {
                if self
                    .api
                    .create_team_member(&channel.team_id, &self.bot_id)
                    .await
                    .is_err()
                {
                    return Err(first);
                }
                self.api
                    .add_channel_member(channel_id, &self.bot_id)
                    .await
                    .map(|_| ())
            }
            Err(e) => Err(e),
        }
    }

    /// An ephemeral post for one user.
    pub(crate) async fn send_ephemeral(&self, user_id: &str, post: Post) -> Result<Post, ApiError> {
        self.api
            .send_ephemeral_post(user_id, neutralise::post(post))
            .await
    }
}

impl PostSink for BotPoster {
    async fn create_post(&self, post: Post) -> Result<Post, ApiError> {
        self.join(&post.channel_id).await;
        self.api.create_post(neutralise::post(post)).await
    }

    async fn update_post(&self, post: Post) -> Result<Post, ApiError> {
        self.api.update_post(neutralise::post(post)).await
    }

    async fn upload_file(
        &self,
        data: Vec<u8>,
        channel_id: &str,
        filename: &str,
    ) -> Result<String, ApiError> {
        self.api
            .upload_file(data, channel_id, filename)
            .await
            .map(|info| info.id)
    }

    async fn find_post(
        &self,
        channel_id: &str,
        root_id: &str,
        since_ms: i64,
        key: &str,
    ) -> Result<Option<String>, ApiError> {
        let list = if root_id.is_empty() {
            self.api.get_posts_since(channel_id, since_ms).await?
        } else {
            self.api.get_post_thread(root_id).await?
        };
        let has_key = |p: &Post| {
            p.props
                .as_ref()
                .and_then(|props| props.get(KEY_PROP))
                .and_then(Any::as_str)
                == Some(key)
        };
        Ok(list
            .posts
            .unwrap_or_default()
            .into_values()
            .find(|p| p.user_id == self.bot_id && p.delete_at == 0 && has_key(p))
            .map(|p| p.id))
    }

    async fn direct_channel(&self, user_id: &str) -> Result<String, ApiError> {
        self.api
            .get_direct_channel(&self.bot_id, user_id)
            .await
            .map(|c| c.id)
    }

    async fn is_channel_member(&self, channel_id: &str, user_id: &str) -> Result<bool, ApiError> {
        match self.api.get_channel_member(channel_id, user_id).await {
            Ok(m) => Ok(m.user_id.is_empty() || m.user_id == user_id),
            Err(ApiError::App(e)) if e.status_code == 404 => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn site_url(&self) -> Option<String> {
        let config = self.api.get_config_value().await.ok()?;
        crate::mattermost::server_config::site_url(&config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mattermost::api::in_process;
    use crate::mattermost::model::*;
    use crate::mattermost::rpc_types::*;
    use crate::rpc::netrpc::Server;
    use std::sync::Arc;

    #[derive(Default)]
    struct Host {
        /// `(method, first argument)` in call order.
        calls: Vec<(String, String)>,
        /// Channels the bot is in; teams it is in.
        member_of: HashSet<String>,
        teams: HashSet<String>,
        posts: Vec<Post>,
    }

    type Shared = Arc<Mutex<Host>>;

    fn not_found() -> Option<AppError> {
        Some(AppError {
            message: "not found".into(),
            status_code: 404,
            ..Default::default()
        })
    }

    /// Channels: `open` (team `t1`), `dm` (direct).
    fn host(st: Shared) -> Server {
        let log = |st: &Shared, m: &str, a: &str| {
            st.lock().unwrap().calls.push((m.to_owned(), a.to_owned()))
        };
        let (s1, s2, s3, s4, s5, s6) = (
            st.clone(),
            st.clone(),
            st.clone(),
            st.clone(),
            st.clone(),
            st,
        );
        Server::new()
            .method("Plugin.GetChannelMember", move |a: TwoStringArgs| {
                log(&s1, "GetChannelMember", &a.a);
                let member = s1.lock().unwrap().member_of.contains(&a.a);
                let r = GetChannelMemberReturns {
                    a: member.then(ChannelMember::default),
                    b: if member { None } else { not_found() },
                };
                async move { Ok::<_, String>(r) }
            })
            .method("Plugin.GetChannel", move |a: StringArgs| {
                log(&s2, "GetChannel", &a.a);
                let (team_id, kind) = if a.a == "dm" { ("", "D") } else { ("t1", "O") };
                let r = GetChannelReturns {
                    a: Some(Channel {
                        id: a.a,
                        team_id: team_id.into(),
                        r#type: kind.into(),
                        ..Default::default()
                    }),
                    b: None,
                };
                async move { Ok::<_, String>(r) }
            })
            .method("Plugin.AddChannelMember", move |a: TwoStringArgs| {
                log(&s3, "AddChannelMember", &a.a);
                let mut st = s3.lock().unwrap();
                // As the server: only a member of the channel's team.
                let ok = st.teams.contains("t1");
                if ok {
                    st.member_of.insert(a.a.clone());
                }
                let r = GetChannelMemberReturns {
                    a: ok.then(ChannelMember::default),
                    b: if ok { None } else { not_found() },
                };
                async move { Ok::<_, String>(r) }
            })
            .method("Plugin.CreateTeamMember", move |a: TwoStringArgs| {
                log(&s4, "CreateTeamMember", &a.a);
                s4.lock().unwrap().teams.insert(a.a.clone());
                async move {
                    Ok::<_, String>(GetTeamMemberReturns {
                        a: Some(TeamMember::default()),
                        b: None,
                    })
                }
            })
            .method("Plugin.CreatePost", move |a: PostArgs| {
                let post = a.a.unwrap_or_default();
                log(&s5, "CreatePost", &post.channel_id);
                s5.lock().unwrap().posts.push(post.clone());
                async move {
                    Ok::<_, String>(PostReturns {
                        a: Some(post),
                        b: None,
                    })
                }
            })
            .method("Plugin.UpdatePost", move |a: PostArgs| {
                let post = a.a.unwrap_or_default();
                log(&s6, "UpdatePost", &post.channel_id);
                s6.lock().unwrap().posts.push(post.clone());
                async move {
                    Ok::<_, String>(PostReturns {
                        a: Some(post),
                        b: None,
                    })
                }
            })
    }

    fn post(channel: &str, message: &str) -> Post {
        Post {
            channel_id: channel.into(),
            message: message.into(),
            ..Default::default()
        }
    }

    fn calls(st: &Shared) -> Vec<String> {
        st.lock()
            .unwrap()
            .calls
            .drain(..)
            .map(|(m, a)| format!("{m} {a}"))
            .collect()
    }

    #[tokio::test]
    async fn the_bot_joins_a_channel_before_its_first_post_there() {
        let st = Shared::default();
        let poster = BotPoster::new(in_process(host(st.clone())), "bot".into());
        poster
            .create_post(post("open", "hello @channel"))
            .await
            .unwrap();
        // Not in the team yet: the team first, then the channel, then the post.
        assert_eq!(
            calls(&st),
            [
                "GetChannelMember open",
                "GetChannel open",
                "AddChannelMember open",
                "CreateTeamMember t1",
                "AddChannelMember open",
                "CreatePost open"
            ]
        );
        // Known now: no more questions.
        poster.create_post(post("open", "again")).await.unwrap();
        assert_eq!(calls(&st), ["CreatePost open"]);
        // Every text passed the neutraliser.
        let sent = st.lock().unwrap().posts[0].clone();
        assert_eq!(sent.message, "hello @\u{200D}channel");
        poster
            .update_post(post("open", "@all: done"))
            .await
            .unwrap();
        assert_eq!(st.lock().unwrap().posts[2].message, "@\u{200D}all: done");
    }

    #[tokio::test]
    async fn a_direct_channel_is_not_joined_and_still_gets_the_post() {
        let st = Shared::default();
        let poster = BotPoster::new(in_process(host(st.clone())), "bot".into());
        poster.create_post(post("dm", "hi")).await.unwrap();
        assert_eq!(
            calls(&st),
            ["GetChannelMember dm", "GetChannel dm", "CreatePost dm"]
        );
        poster.create_post(post("dm", "hi")).await.unwrap();
        assert_eq!(calls(&st), ["CreatePost dm"]);
    }

    #[tokio::test]
    async fn a_member_already_is_only_asked_once() {
        let st = Shared::default();
        st.lock().unwrap().member_of.insert("open".into());
        let poster = BotPoster::new(in_process(host(st.clone())), "bot".into());
        poster.join("open").await;
        poster.join("open").await;
        assert_eq!(calls(&st), ["GetChannelMember open"]);
    }
}
