//! Claude Code plugin for Mattermost.

pub mod claude;
