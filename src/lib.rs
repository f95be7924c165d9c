//! Claude Code for Mattermost: one native executable that Mattermost launches
//! as a server plugin, and that runs Claude Code sessions for channels.
//!
//! # Layout
//!
//! The modules follow the data flow, from Mattermost's wire to the CLI:
//!
//! - [`rpc`]: the transport, knowing nothing of Mattermost's API.
//!   - [`rpc::handshake`]: the go-plugin start-up (magic cookie, socket,
//!     handshake line).
//!   - [`rpc::yamux`]: the yamux server session over the host's connection.
//!   - [`rpc::broker`]: go-plugin's MuxBroker (numbered sub-streams).
//!   - [`rpc::gob`]: Go's `encoding/gob`, byte-compatible in both directions.
//!   - [`rpc::netrpc`]: Go's net/rpc client and server over gob.
//! - [`mattermost`]: the plugin SDK layer: the model types as gob sends them
//!   and the argument shapes of hooks and API calls. Knows Mattermost,
//!   knows nothing of Claude.
//! - [`claude`]: the Claude Code CLI: stream-json messages, the control
//!   protocol, argument building and spawning. Knows Claude Code, knows
//!   nothing of Mattermost.
//!
//! See ARCHITECTURE.md for the codemap and the invariants.

pub mod claude;
pub mod mattermost;
pub mod rpc;
