//! How sessions appear in Mattermost: `/claude` commands, turn rendering
//! (streamed text, tool lines, diffs, long-post splitting) and approval cards.
//! `command`, `render` and `card` are pure: no API calls, no session state.
//! [`stream`] turns a session's events into posts, owed to the server through the durable
//! [`outbox`] (which delivers them through a [`outbox::PostSink`], in production
//! [`poster::BotPoster`], the one door of the bot's posts: [`neutralise`]d texts, the bot a
//! member of the channel);
//! [`live`] turns the same events into live websocket events, stored first for replay;
//! [`service`] owns the engine and wires commands, thread replies and approval
//! clicks to sessions.

pub(crate) mod attachments;
pub mod authz;
pub mod card;
pub mod command;
pub mod live;
pub(crate) mod neutralise;
pub mod outbox;
pub(crate) mod post_props;
pub(crate) mod poster;
pub mod question;
pub mod render;
pub mod service;
pub mod stream;
#[cfg(test)]
pub(crate) mod test_sink;
