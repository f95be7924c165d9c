//! The Claude Code CLI protocol: stream-json message types, the control protocol, argument
//! building and spawning. Knows Claude Code, knows nothing of Mattermost.
//!
//! Types in `messages`, `control`, `args` do no I/O; `reader`/`writer` work over any tokio
//! `AsyncRead`/`AsyncWrite`; `spawn` is the only part that touches processes.

pub mod args;
pub mod control;
pub mod messages;
pub mod reader;
pub mod spawn;
pub mod writer;

pub use args::{build_args, CliSpec, PermissionMode, SessionStart};
pub use control::{
    CanUseTool, ControlCancelRequest, ControlRequest, ControlResponse, ControlResponseBody,
};
pub use messages::{CliMessage, ParseError};
pub use reader::{CliLine, CliReader, ReadError};
pub use spawn::{build_command, build_env, spawn, CliEnv, CliProcess, SpawnError};
pub use writer::{
    image_block, ApprovalAnswer, CliWriter, HostRequest, ImageMediaType, StdinMessage, UserInput,
    WriteError,
};

#[cfg(test)]
mod fixture_tests;
