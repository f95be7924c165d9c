//! Claude Code for Mattermost: one native executable that Mattermost launches
//! as a server plugin and that runs Claude Code sessions for channels.
//!
//! Layout, from the wire up:
//! - [`rpc`]: Mattermost's plugin transport. [`rpc::gob`] is Go's
//!   `encoding/gob`, byte-compatible in both directions.
//!
//! See ARCHITECTURE.md for the codemap and the invariants.

pub mod mattermost;
pub mod rpc;
