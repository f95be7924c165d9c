//! Mattermost server plugin, as one native executable speaking the plugin protocol itself.

pub mod rpc;
