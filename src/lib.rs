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
//! - [`sessions`]: one actor per Claude Code session owning its CLI process: the state
//!   machine (a table), the prompt queue, pending approvals with expiry, interrupt, stop,
//!   idle reaping, crash detection and `--resume`; the [`sessions::Engine`] facade that
//!   starts, finds, recovers and stops them. Publishes typed events for the chat layer.
//! - [`store`]: SQLite (WAL, foreign keys, versioned migrations) on its own thread: sessions,
//!   the transcript, approvals and the audit log. Events are stored before they are published.
//!
//! See ARCHITECTURE.md for the codemap and the invariants.

pub mod claude;
pub mod mattermost;
pub mod rpc;
pub mod sessions;
pub mod store;
