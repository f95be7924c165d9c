//! The session state machine, written as a table so that every legal move is visible in one
//! place and everything else is a typed error.
//!
//! The table says only where a session may go; the actor decides what to do on the way (write
//! a line, start a timer). Prompts that arrive while a turn runs are queued by the actor and sent
//! one at a time after each `result`, so results map 1:1 onto prompts (the CLI would otherwise
//! fold or coalesce them, see docs/claude-cli-protocol.md §4).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// The CLI was spawned; waiting for its answer to `initialize`.
    Starting,
    /// Process alive, no turn running.
    Idle,
    /// A turn is running.
    Running,
    /// A turn is blocked on at least one `can_use_tool` answer.
    AwaitingApproval,
    /// The process was told to end; waiting for it to exit.
    Stopping,
    /// No process, on purpose (stop, idle timeout, plugin restart). The next prompt resumes.
    Stopped,
    /// No process: it exited unasked. The next prompt restarts it with `--resume`.
    Crashed,
}

impl SessionState {
    pub const ALL: [SessionState; 7] = [
        SessionState::Starting,
        SessionState::Idle,
        SessionState::Running,
        SessionState::AwaitingApproval,
        SessionState::Stopping,
        SessionState::Stopped,
        SessionState::Crashed,
    ];

    /// The name stored in `sessions.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Starting => "starting",
            SessionState::Idle => "idle",
            SessionState::Running => "running",
            SessionState::AwaitingApproval => "awaiting_approval",
            SessionState::Stopping => "stopping",
            SessionState::Stopped => "stopped",
            SessionState::Crashed => "crashed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Whether a CLI process belongs to this state.
    pub fn has_process(self) -> bool {
        !matches!(self, SessionState::Stopped | SessionState::Crashed)
    }
}

impl std::fmt::Display for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionInput {
    /// A user prompt arrived (queued; sent when the session is idle).
    Prompt,
    /// The CLI answered `initialize`.
    Ready,
    /// A queued prompt was written to the CLI.
    TurnStarted,
    /// A `can_use_tool` request arrived.
    ApprovalRequested,
    /// The last pending approval was answered, expired or withdrawn.
    ApprovalsSettled,
    /// The turn's `result` arrived.
    TurnFinished,
    /// A user asked to interrupt the running turn.
    Interrupt,
    /// A user (or plugin shutdown) asked to stop the session.
    Stop,
    /// Nothing happened for the idle timeout: reap the process.
    IdleTimeout,
    /// The process ended.
    ProcessExited,
}

/// A move the table does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not allowed while the session is {from}")]
pub struct IllegalTransition {
    pub from: SessionState,
    pub input: SessionInput,
}

use SessionInput as I;
use SessionState as S;

/// (from, input, to). Anything not listed is illegal.
pub const TRANSITIONS: &[(SessionState, SessionInput, SessionState)] = &[
    (S::Starting, I::Prompt, S::Starting),
    (S::Starting, I::Ready, S::Idle),
    (S::Starting, I::Stop, S::Stopping),
    (S::Starting, I::ProcessExited, S::Crashed),
    (S::Idle, I::Prompt, S::Idle),
    (S::Idle, I::TurnStarted, S::Running),
    (S::Idle, I::Stop, S::Stopping),
    (S::Idle, I::IdleTimeout, S::Stopping),
    (S::Idle, I::ProcessExited, S::Crashed),
    (S::Running, I::Prompt, S::Running),
    (S::Running, I::ApprovalRequested, S::AwaitingApproval),
    (S::Running, I::TurnFinished, S::Idle),
    (S::Running, I::Interrupt, S::Running),
    (S::Running, I::Stop, S::Stopping),
    (S::Running, I::ProcessExited, S::Crashed),
    // Several tool calls in one message each ask separately.
    (
        S::AwaitingApproval,
        I::ApprovalRequested,
        S::AwaitingApproval,
    ),
    (S::AwaitingApproval, I::ApprovalsSettled, S::Running),
    (S::AwaitingApproval, I::Prompt, S::AwaitingApproval),
    (S::AwaitingApproval, I::Interrupt, S::AwaitingApproval),
    // deny+interrupt, or an interrupt that withdrew the prompt, ends the turn directly.
    (S::AwaitingApproval, I::TurnFinished, S::Idle),
    (S::AwaitingApproval, I::Stop, S::Stopping),
    (S::AwaitingApproval, I::ProcessExited, S::Crashed),
    (S::Stopping, I::Stop, S::Stopping),
    (S::Stopping, I::ProcessExited, S::Stopped),
    // A prompt to a session without a process spawns one (with --resume when possible).
    (S::Stopped, I::Prompt, S::Starting),
    (S::Stopped, I::Stop, S::Stopped),
    (S::Crashed, I::Prompt, S::Starting),
    (S::Crashed, I::Stop, S::Stopped),
];

/// Looks `(from, input)` up in [`TRANSITIONS`].
pub fn next_state(
    from: SessionState,
    input: SessionInput,
) -> Result<SessionState, IllegalTransition> {
    TRANSITIONS
        .iter()
        .find(|(f, i, _)| *f == from && *i == input)
        .map(|(_, _, to)| *to)
        .ok_or(IllegalTransition { from, input })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_INPUTS: [SessionInput; 10] = [
        I::Prompt,
        I::Ready,
        I::TurnStarted,
        I::ApprovalRequested,
        I::ApprovalsSettled,
        I::TurnFinished,
        I::Interrupt,
        I::Stop,
        I::IdleTimeout,
        I::ProcessExited,
    ];

    #[test]
    fn table_has_no_duplicate_keys() {
        for (n, (f, i, _)) in TRANSITIONS.iter().enumerate() {
            assert!(
                !TRANSITIONS[..n]
                    .iter()
                    .any(|(f2, i2, _)| f2 == f && i2 == i),
                "({f:?}, {i:?}) listed twice"
            );
        }
    }

    /// The full 7x10 grid, written out: a change to the table must change this test too.
    #[test]
    fn every_state_and_input() {
        let legal: &[(SessionState, &[(SessionInput, SessionState)])] = &[
            (
                S::Starting,
                &[
                    (I::Prompt, S::Starting),
                    (I::Ready, S::Idle),
                    (I::Stop, S::Stopping),
                    (I::ProcessExited, S::Crashed),
                ],
            ),
            (
                S::Idle,
                &[
                    (I::Prompt, S::Idle),
                    (I::TurnStarted, S::Running),
                    (I::Stop, S::Stopping),
                    (I::IdleTimeout, S::Stopping),
                    (I::ProcessExited, S::Crashed),
                ],
            ),
            (
                S::Running,
                &[
                    (I::Prompt, S::Running),
                    (I::ApprovalRequested, S::AwaitingApproval),
                    (I::TurnFinished, S::Idle),
                    (I::Interrupt, S::Running),
                    (I::Stop, S::Stopping),
                    (I::ProcessExited, S::Crashed),
                ],
            ),
            (
                S::AwaitingApproval,
                &[
                    (I::Prompt, S::AwaitingApproval),
                    (I::ApprovalRequested, S::AwaitingApproval),
                    (I::ApprovalsSettled, S::Running),
                    (I::TurnFinished, S::Idle),
                    (I::Interrupt, S::AwaitingApproval),
                    (I::Stop, S::Stopping),
                    (I::ProcessExited, S::Crashed),
                ],
            ),
            (
                S::Stopping,
                &[(I::Stop, S::Stopping), (I::ProcessExited, S::Stopped)],
            ),
            (
                S::Stopped,
                &[(I::Prompt, S::Starting), (I::Stop, S::Stopped)],
            ),
            (
                S::Crashed,
                &[(I::Prompt, S::Starting), (I::Stop, S::Stopped)],
            ),
        ];
        let mut checked = 0;
        for (from, moves) in legal {
            for input in ALL_INPUTS {
                let want = moves
                    .iter()
                    .find(|(i, _)| *i == input)
                    .map(|(_, to)| *to)
                    .ok_or(IllegalTransition { from: *from, input });
                assert_eq!(next_state(*from, input), want, "{from:?} + {input:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, 70);
    }

    #[test]
    fn illegal_moves_are_typed_errors() {
        let err = next_state(S::Idle, I::Interrupt).expect_err("nothing to interrupt");
        assert_eq!(
            err,
            IllegalTransition {
                from: S::Idle,
                input: I::Interrupt
            }
        );
        assert_eq!(
            err.to_string(),
            "Interrupt is not allowed while the session is idle"
        );
        assert!(next_state(S::Stopping, I::Prompt).is_err());
    }

    #[test]
    fn names_round_trip() {
        for s in SessionState::ALL {
            assert_eq!(SessionState::parse(s.as_str()), Some(s));
        }
        assert_eq!(SessionState::parse("zombie"), None);
    }
}
