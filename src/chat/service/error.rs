//! [`ServiceError`]: why a use case of the service did not happen, for every caller alike. Its
//! Display is the text a person reads (the `/claude` answer, the click's ephemeral message, the
//! REST error body); [`ServiceError::status`] is the one mapping to HTTP statuses.

use super::{at_the_limit, outside_roots_text, NO_SESSION};
use crate::files::{PathError, WriteError};
use crate::ratelimit::RetryAfter;
use crate::sessions::{EngineError, SessionError};
use crate::store::StoreError;
use crate::worktree::WorktreeError;

/// A byte count for people: `812 B`, `64 KB`, `9.0 MB`.
pub(crate) fn size(bytes: usize) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{} KB", b / 1024),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The channel has no session (commands, thread replies).
    #[error("{NO_SESSION}")]
    NoSession,
    /// No session by that id that the caller may see (REST): existence is not told.
    #[error("No Claude Code session {0} that you can see")]
    UnknownSession(String),
    /// The authorization table refuses; the text names who may. `member`: whether the caller
    /// is a member of the session's channel (REST tells others no more than "not found").
    #[error("{text}")]
    NotAllowed { text: String, member: bool },
    /// `what` names what was counted: commands, prompts, requests.
    #[error("Slow down: too many {what}. Try again in {} s.", .retry.seconds())]
    RateLimited {
        what: &'static str,
        retry: RetryAfter,
    },
    #[error("{}", at_the_limit(*.0))]
    AtTheLimit(usize),
    #[error("A session is already being started in this channel.")]
    StartInProgress,
    #[error("This channel's session is being started: try again in a moment.")]
    ResumeInProgress,
    #[error("This channel already has a session (in `{0}`). Stop it with `/claude stop` first.")]
    AlreadyRunning(String),
    #[error(transparent)]
    ProjectPath(#[from] ProjectPathError),
    /// The session's project left AllowedProjectRoots: only status, history and stop remain.
    #[error("{} Start a session in an allowed project.", outside_roots_text(.0))]
    ProjectLeftRoots(String),
    #[error("Claude Code could not start: {0}")]
    Start(#[source] EngineError),
    /// This node of the cluster could not take the session's lease.
    #[error("Claude Code could not start: {0}")]
    Claim(#[source] super::ClaimError),
    #[error("The session's thread could not be created: {0}")]
    Thread(#[source] StoreError),
    #[error("Claude could not take the prompt: {0}")]
    Prompt(#[source] SessionError),
    #[error("Nothing to interrupt: {0}")]
    Interrupt(#[source] SessionError),
    #[error("Could not stop the session: {0}")]
    Stop(#[source] SessionError),
    #[error("Could not change the permission mode: {0}")]
    Mode(#[source] SessionError),
    #[error("Could not change the model: {0}")]
    Model(#[source] SessionError),
    #[error("Claude Code session in `{0}`: {1}")]
    Status(String, #[source] SessionError),
    #[error("The session's records could not be read: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("This session no longer exists.")]
    SessionGone,
    #[error(transparent)]
    Worktree(#[from] WorktreeError),
    /// `stop --clean` of a session that works in the project itself.
    #[error("This session does not work in a git worktree; `/claude stop` stops it.")]
    NoWorktree,
    #[error(
        "This session's worktree `{0}` was removed (`/claude stop --clean`): start a new session."
    )]
    WorktreeRemoved(String),
    #[error("This session's worktree `{0}` is being removed (`/claude stop --clean`): wait for that to finish.")]
    WorktreeCleaning(String),
    /// The session never asked for this approval (REST: the id is not one of its requests).
    #[error("This session has no approval request {0}.")]
    UnknownApproval(String),
    #[error("This request is no longer pending.")]
    NotPending,
    #[error("This request was already answered.")]
    AlreadyAnswered,
    #[error("Claude Code is no longer waiting for this decision.")]
    Withdrawn,
    #[error("The decision could not be delivered: {0}")]
    Deliver(#[source] SessionError),
    #[error("{0}")]
    BadDecision(String),
    /// A lock was poisoned by a panic elsewhere: the request cannot be served safely.
    #[error("internal error")]
    Internal,
}

impl ServiceError {
    /// The HTTP status of the error, for REST callers.
    pub fn status(&self) -> u16 {
        use ServiceError::*;
        match self {
            NoSession | UnknownSession(_) | UnknownApproval(_) | SessionGone => 404,
            NotAllowed { member: false, .. } => 404,
            NotAllowed { .. } | ProjectLeftRoots(_) => 403,
            RateLimited { .. } => 429,
            AtTheLimit(_) => 503,
            StartInProgress | ResumeInProgress | AlreadyRunning(_) | NotPending
            | AlreadyAnswered | Withdrawn | WorktreeRemoved(_) | WorktreeCleaning(_) => 409,
            NoWorktree => 400,
            Worktree(e) => e.status(),
            Prompt(e) | Interrupt(e) | Stop(e) | Mode(e) | Model(e) => session_status(e),
            ProjectPath(_) | BadDecision(_) => 400,
            Context(e) => e.status(),
            Path(e) => e.status(),
            Write(e) => e.status(),
            // Another node holds the session (or is taking it): try again.
            Claim(_) => 503,
            Start(_) | Thread(_) | Status(..) | Store(_) | Deliver(_) | Internal => 500,
        }
    }

    /// Seconds a rate-limited caller should wait (the `Retry-After` header).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ServiceError::RateLimited { retry, .. } => Some(retry.seconds()),
            _ => None,
        }
    }
}

/// A refused session command is a conflict with the session's state; a broken session is ours.
fn session_status(e: &SessionError) -> u16 {
    match e {
        SessionError::Illegal(_)
        | SessionError::NoProcess
        | SessionError::UnknownApproval(_)
        | SessionError::Refused(_) => 409,
        SessionError::EmptyDenyMessage => 400,
        SessionError::QueueFull | SessionError::QueuedImagesFull(_) => 429,
        _ => 500,
    }
}

/// Why a start's project path was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProjectPathError {
    #[error("`{0}` is not under an allowed project root")]
    Outside(String),
    #[error("`{0}` does not exist")]
    Missing(String),
    #[error("`{0}` cannot be opened: {1}")]
    Unreadable(String, #[source] std::io::Error),
    #[error("`{0}` is not a directory")]
    NotADirectory(String),
    /// Inside `.git`, or a git directory itself: the files API would show its config, which can
    /// hold credentials (`files` keeps `.git` out of a project for the same reason).
    #[error("`{0}` is git's own data (inside `.git`, or a git directory): start in the project's working tree")]
    GitData(String),
}

/// Why a thread or a file could not be added as context.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("Name the thread: `/claude context thread <permalink or post id>`.")]
    ThreadNotNamed,
    #[error("The thread `{0}` cannot be found.")]
    ThreadNotFound(String),
    #[error("The thread `{0}` is empty.")]
    ThreadEmpty(String),
    #[error("You cannot read the channel of that thread.")]
    CannotReadThread,
    #[error("`{0}` is binary: it cannot be added as context.")]
    Binary(String),
    #[error("`{path}` is too large to add as context ({}).", size(*.bytes as usize))]
    TooLarge { path: String, bytes: u64 },
    #[error("Name a thread or a file, not both.")]
    ThreadOrFile,
}

impl ContextError {
    fn status(&self) -> u16 {
        match self {
            ContextError::ThreadNotFound(_) | ContextError::ThreadEmpty(_) => 404,
            ContextError::CannotReadThread => 403,
            ContextError::TooLarge { .. } => 413,
            ContextError::ThreadNotNamed | ContextError::Binary(_) | ContextError::ThreadOrFile => {
                400
            }
        }
    }
}

impl From<super::authorize::Refusal> for ServiceError {
    fn from(r: super::authorize::Refusal) -> Self {
        match r {
            super::authorize::Refusal::NoSession => ServiceError::NoSession,
            super::authorize::Refusal::NotAllowed { text, member } => {
                ServiceError::NotAllowed { text, member }
            }
        }
    }
}
