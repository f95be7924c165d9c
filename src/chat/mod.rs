//! How sessions appear in Mattermost: `/claude` commands, turn rendering
//! (streamed text, tool lines, diffs, long-post splitting) and approval cards.
//! Everything here is pure: no API calls, no session state; the integration
//! layer feeds it CLI messages and posts what it returns.

pub mod card;
pub mod command;
pub mod render;
