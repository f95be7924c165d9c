//! Claude Code sessions: one actor per session owning its CLI process, an explicit state
//! machine, and the engine that starts, finds, recovers and stops them.
//!
//! Knows the CLI (through `claude`) and the store; knows nothing of Mattermost. The chat layer
//! talks to a session only through its [`SessionHandle`] and listens to its [`SessionEvent`]s.

pub mod actor;
pub mod engine;
pub mod events;
pub mod feed;
pub mod launcher;
pub mod prompt;
pub mod state;

#[cfg(test)]
mod fake_cli;
#[cfg(test)]
mod tests;

pub use actor::{
    Decision, PendingApprovalInfo, SessionConfig, SessionError, SessionHandle, SessionStatus,
    SettingChange, SharedSessionConfig,
};
pub use engine::{Engine, EngineError, SessionSpec};
pub use events::{EventKind, SessionErrorKind, SessionEvent};
pub use feed::EventFeed;
pub use launcher::{
    CliLauncher, Deadline, Deadlines, ExitInfo, LaunchedCli, ProcessLauncher, ProcessSignals,
};
pub(crate) use prompt::words_of;
pub use prompt::{PromptContent, PromptImage};
pub use state::{next_state, IllegalTransition, SessionInput, SessionState};
