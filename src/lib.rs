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
//! - [`mattermost`]: the plugin SDK layer: the model types as gob sends them,
//!   the argument shapes of hooks and API calls, the typed API client
//!   ([`mattermost::api`]), the [`mattermost::hooks::Hooks`] trait with the
//!   `Plugin` service the host calls, and the ServeHTTP plumbing
//!   ([`mattermost::http`]: body stream, response writer). Knows Mattermost,
//!   knows nothing of Claude.
//! - [`plugin`]: the process runtime: handshake line, the host connection,
//!   control stream (Ping, Quit, Dispense), hclog logging ([`plugin::log`]),
//!   exit when the host goes away.
//! - [`app`]: the product's Hooks implementation (bot, `/claude`, config,
//!   HTTP routes).
//! - [`chat`]: how sessions appear in Mattermost. Pure parts:
//!   [`chat::command`] parses `/claude …` and owns the subcommand table that
//!   help and autocomplete are built from; [`chat::render`] turns a turn's
//!   CLI messages (or session events) into post text (tool lines, diffs, cost
//!   line) and splits long posts without breaking code fences; [`chat::card`]
//!   builds approval cards (signed buttons, dialogs, decided/expired forms).
//!   Integration: [`chat::stream`] turns a session's events into one coalesced
//!   post per turn plus approval cards; [`chat::service`] owns the engine, the
//!   channel → session map, the commands, thread replies and approval clicks.
//! - [`http`]: the ServeHTTP router, auth rule and JSON errors; diagnostics
//!   routes for the Go harness ([`http::diag`]).
//! - [`config`]: System Console settings (projects, CLI, defaults, who may
//!   start and approve, limits, timeouts), parsed then validated.
//! - [`files`]: user paths resolved under a session's project root (no
//!   traversal, no escaping symlinks, no special files); listing and reading.
//! - [`ratelimit`]: per-user token buckets for commands.
//! - `metrics`: the Prometheus series (session events folded into counts and timings, hook
//!   latency, HTTP statuses), served by ServeMetrics and `GET /api/v1/metrics`.
//! - [`claude`]: the Claude Code CLI: stream-json messages, the control
//!   protocol, argument building and spawning. Knows Claude Code, knows
//!   nothing of Mattermost.
//! - [`sessions`]: one actor per Claude Code session owning its CLI process: the state
//!   machine (a table), the prompt queue, pending approvals with expiry, interrupt, stop,
//!   idle reaping, crash detection and `--resume`; the [`sessions::Engine`] facade that
//!   starts, finds, recovers and stops them. Publishes typed events for the chat layer.
//! - [`supervisor`]: this executable re-run as each CLI's parent, so that no process the
//!   CLI starts outlives the plugin; [`proctree`] reads the process tree from `/proc`.
//! - [`store`]: SQLite (WAL, foreign keys, versioned migrations) on its own thread: sessions,
//!   the transcript, approvals and the audit log. Events are stored before they are published.
//!
//! See ARCHITECTURE.md for the codemap and the invariants.

pub mod app;
pub mod chat;
pub mod claude;
pub mod cluster;
pub mod config;
pub mod files;
pub mod http;
pub mod mattermost;
pub(crate) mod metrics;
pub mod plugin;
pub mod proctree;
pub mod ratelimit;
pub mod rpc;
pub mod sessions;
pub mod store;
pub mod supervisor;
pub(crate) mod worktree;
