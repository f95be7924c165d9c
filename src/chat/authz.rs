//! Who may do what: the one table of the plugin's permissions, as a pure function, and the
//! words of a refusal. The chat service resolves a user's roles (Mattermost's answers about
//! them and the settings) and asks [`allowed`] once per request, before it acts; README.md
//! ("Who may do what") shows the same table.
//!
//! Roles are facts about one user for one channel and its session, and a user usually holds
//! several (an owner is also a channel member). Every role except [`Role::SystemAdmin`] and
//! [`Role::Anyone`] requires membership of the channel: someone who left it keeps no say in
//! its session, even as its owner.

use super::card::ApprovalAction;
use super::command::{ChatCommand, Cleanup};
use crate::config::WhoCanApprove;

/// One role a user holds for a channel and its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Started the channel's session (and is still a member of the channel).
    Owner,
    /// May answer the session's approval cards: the owner, or every channel member when
    /// WhoCanApprove is `members`.
    Approver,
    /// A channel member whom WhoCanStart allows to start sessions (everyone by default).
    Starter,
    /// A member of the channel.
    Member,
    /// A Mattermost system admin (`manage_system`), member of the channel or not.
    SystemAdmin,
    /// Anyone the server vouches for, such as a member of the team outside the channel.
    Anyone,
}

/// Everything a user can ask of the plugin: each `/claude` subcommand, each card button, each
/// dialog submission and each HTTP route (the approval routes carry the button or dialog).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Help,
    Start,
    Status,
    /// `/claude <prompt>`, `/claude ask` and a reply in the session's thread.
    Prompt,
    Interrupt,
    /// `/claude stop`, also with `--clean` (which refuses uncommitted work).
    Stop,
    /// `/claude stop --clean --force`: removes the session's worktree with the owner's
    /// uncommitted work in it, so it is for approvers, not for every stopper.
    DiscardWorktree,
    ContextThread,
    ContextFile,
    Files,
    File,
    History,
    Mode,
    Model,
    /// Card buttons.
    Approve,
    ApproveForSession,
    Deny,
    /// Opens the deny-with-reason dialog.
    DenyWithReason,
    /// Opens the edit-and-approve dialog.
    EditAndApprove,
    /// Dialog submissions.
    SubmitDenyReason,
    SubmitEdit,
    /// A person's own edit of a project file (REST: create, update, delete): it skips the
    /// approval a tool call would wait on, so it is for approvers.
    EditFile,
    /// `GET /api/v1/health`.
    Health,
    /// `GET /api/v1/metrics`: the plugin's numbers across every channel.
    Metrics,
}

impl Action {
    /// Every action, in the order README.md lists them.
    pub const ALL: [Action; 24] = [
        Action::Help,
        Action::Start,
        Action::Status,
        Action::Prompt,
        Action::ContextThread,
        Action::ContextFile,
        Action::Files,
        Action::File,
        Action::History,
        Action::Interrupt,
        Action::Stop,
        Action::DiscardWorktree,
        Action::Mode,
        Action::Model,
        Action::Approve,
        Action::ApproveForSession,
        Action::Deny,
        Action::DenyWithReason,
        Action::EditAndApprove,
        Action::SubmitDenyReason,
        Action::SubmitEdit,
        Action::EditFile,
        Action::Health,
        Action::Metrics,
    ];

    /// The action a `/claude` command asks for.
    pub fn of_command(cmd: &ChatCommand) -> Action {
        match cmd {
            ChatCommand::Help => Action::Help,
            ChatCommand::Start { .. } => Action::Start,
            ChatCommand::Status => Action::Status,
            ChatCommand::Ask { .. } => Action::Prompt,
            ChatCommand::Interrupt => Action::Interrupt,
            ChatCommand::Stop(cleanup) => Action::of_stop(*cleanup),
            ChatCommand::ContextThread { .. } => Action::ContextThread,
            ChatCommand::ContextFile { .. } => Action::ContextFile,
            ChatCommand::Files { .. } => Action::Files,
            ChatCommand::File { .. } => Action::File,
            ChatCommand::History => Action::History,
            ChatCommand::Mode(_) => Action::Mode,
            ChatCommand::Model(_) => Action::Model,
        }
    }

    /// The action of a stop (`/claude stop`, `DELETE /sessions/{id}`): discarding uncommitted
    /// work is one of its own. A plain `--clean` is a stop: git refuses uncommitted work, and
    /// the branch (with every commit) stays.
    pub fn of_stop(cleanup: Cleanup) -> Action {
        match cleanup {
            Cleanup::Discard => Action::DiscardWorktree,
            Cleanup::Keep | Cleanup::Remove => Action::Stop,
        }
    }

    /// The action of a card button (a dialog's button only opens the dialog).
    pub fn of_click(button: ApprovalAction) -> Action {
        match button {
            ApprovalAction::Approve => Action::Approve,
            ApprovalAction::ApproveForSession => Action::ApproveForSession,
            ApprovalAction::Deny => Action::Deny,
            ApprovalAction::DenyWithReason => Action::DenyWithReason,
            ApprovalAction::EditAndApprove => Action::EditAndApprove,
            // Answering a question or starting from a plan is approving the request.
            ApprovalAction::Answer { .. }
            | ApprovalAction::AnswerInDialog
            | ApprovalAction::PlanStart
            | ApprovalAction::PlanAcceptEdits => Action::Approve,
            ApprovalAction::PlanKeep => Action::DenyWithReason,
        }
    }

    /// The action of a dialog's submission, by the button that opened it.
    pub fn of_dialog(button: ApprovalAction) -> Action {
        match button {
            ApprovalAction::EditAndApprove => Action::SubmitEdit,
            ApprovalAction::AnswerInDialog => Action::Approve,
            _ => Action::SubmitDenyReason,
        }
    }

    /// Whether the action is about the channel's session (without one there is nothing to do).
    pub fn needs_session(self) -> bool {
        !matches!(
            self,
            Action::Help | Action::Start | Action::Health | Action::Metrics
        )
    }

    /// Whether the action is about one channel (a refusal then says when the user is not a
    /// member of it).
    fn in_a_channel(self) -> bool {
        !matches!(self, Action::Help | Action::Health | Action::Metrics)
    }

    /// What the action does, to finish "Only … may …".
    fn what(self) -> &'static str {
        match self {
            Action::Help => "read the help",
            Action::Start => "start a Claude Code session here",
            Action::Status => "see this session's status",
            Action::Prompt => "prompt this session",
            Action::Interrupt => "interrupt this session",
            Action::Stop => "stop this session",
            Action::DiscardWorktree => {
                "remove this session's worktree with its uncommitted changes"
            }
            Action::ContextThread | Action::ContextFile => "add context to this session",
            Action::Files | Action::File => "read this session's project files",
            Action::History => "read this session's history",
            Action::Mode => "change this session's permission mode",
            Action::Model => "change this session's model",
            Action::Approve
            | Action::ApproveForSession
            | Action::Deny
            | Action::DenyWithReason
            | Action::EditAndApprove
            | Action::SubmitDenyReason
            | Action::SubmitEdit => "answer this session's approval requests",
            Action::EditFile => "edit this session's project files",
            Action::Health => "ask for the plugin's health",
            Action::Metrics => "read the plugin's metrics",
        }
    }
}

impl Role {
    /// Every role, in the order README.md lists them.
    pub const ALL: [Role; 6] = [
        Role::Owner,
        Role::Approver,
        Role::Starter,
        Role::Member,
        Role::SystemAdmin,
        Role::Anyone,
    ];

    /// The roles every holder of this one also holds.
    fn implies(self) -> &'static [Role] {
        match self {
            Role::Owner => &[Role::Approver, Role::Member],
            Role::Approver | Role::Starter => &[Role::Member],
            Role::Member | Role::SystemAdmin | Role::Anyone => &[],
        }
    }

    fn words(self, who_can_approve: WhoCanApprove) -> &'static str {
        match self {
            Role::Owner => "the session's owner",
            Role::Approver => match who_can_approve {
                WhoCanApprove::Owner => "the session's owner (its approver, per WhoCanApprove)",
                WhoCanApprove::Members => {
                    "the session's approvers (this channel's members, per WhoCanApprove)"
                }
            },
            Role::Starter => "channel members WhoCanStart allows",
            Role::Member => "members of this channel",
            Role::SystemAdmin => "system admins",
            Role::Anyone => "anyone",
        }
    }
}

/// THE table: whether holding `role` is enough for `action`.
///
/// Anything that weakens or skips approval (a permission mode, an allow-for-session answer)
/// and every approval answer is for approvers only, and so are model changes (cost and
/// behaviour of the owner's session). Interrupt and stop end work: the owner and the
/// approvers may, and system admins may always, as the server's emergency brake; discarding
/// uncommitted work in a worktree destroys it, so no brake needs it: approvers only. Reading and
/// prompting is for the channel's members (approval still guards every tool call).
pub fn permits(role: Role, action: Action) -> bool {
    use Action::*;
    match action {
        Help | Health => true,
        Metrics => role == Role::SystemAdmin,
        Start => role == Role::Starter,
        Status | Prompt | ContextThread | ContextFile | Files | File | History => matches!(
            role,
            Role::Owner | Role::Approver | Role::Starter | Role::Member
        ),
        Interrupt | Stop => matches!(role, Role::Owner | Role::Approver | Role::SystemAdmin),
        Mode | Model | Approve | ApproveForSession | Deny | DenyWithReason | EditAndApprove
        | SubmitDenyReason | SubmitEdit | EditFile | DiscardWorktree => role == Role::Approver,
    }
}

/// The answer for a user holding `roles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The text the user sees: what the action needs.
    Refuse(String),
}

/// Whether any of `roles` permits `action`; a refusal names who may.
pub fn allowed(roles: &[Role], action: Action, who_can_approve: WhoCanApprove) -> Decision {
    if roles.iter().any(|&r| permits(r, action)) {
        return Decision::Allow;
    }
    let needed: Vec<&str> = Role::ALL
        .iter()
        .filter(|&&r| permits(r, action))
        // A role that implies another one named already says nothing more.
        .filter(|&&r| !r.implies().iter().any(|&i| permits(i, action)))
        .map(|r| r.words(who_can_approve))
        .collect();
    let who = match needed.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => "nobody".to_owned(),
    };
    let only = format!("Only {who} may {}.", action.what());
    Decision::Refuse(if action.in_a_channel() && !roles.contains(&Role::Member) {
        format!("{}: {}", super::service::NOT_A_MEMBER, lower_first(&only))
    } else {
        only
    })
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table as README.md shows it (columns: owner, approver, starter, member, system
    /// admin, anyone); a change to [`permits`] must change this and the README together.
    #[test]
    fn the_table() {
        use Action::*;
        let rows: [(Action, &str); 24] = [
            (Help, "xxxxxx"),
            (Start, "..x..."),
            (Status, "xxxx.."),
            (Prompt, "xxxx.."),
            (ContextThread, "xxxx.."),
            (ContextFile, "xxxx.."),
            (Files, "xxxx.."),
            (File, "xxxx.."),
            (History, "xxxx.."),
            (Interrupt, "xx..x."),
            (Stop, "xx..x."),
            (DiscardWorktree, ".x...."),
            (Mode, ".x...."),
            (Model, ".x...."),
            (Approve, ".x...."),
            (ApproveForSession, ".x...."),
            (Deny, ".x...."),
            (DenyWithReason, ".x...."),
            (EditAndApprove, ".x...."),
            (SubmitDenyReason, ".x...."),
            (SubmitEdit, ".x...."),
            (EditFile, ".x...."),
            (Health, "xxxxxx"),
            (Metrics, "....x."),
        ];
        assert_eq!(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            Action::ALL.to_vec()
        );
        for (action, marks) in rows {
            let got: String = Role::ALL
                .iter()
                .map(|&r| if permits(r, action) { 'x' } else { '.' })
                .collect();
            assert_eq!(got, marks, "{action:?}");
        }
    }

    #[test]
    fn refusals_name_what_is_needed() {
        let owner = WhoCanApprove::Owner;
        assert_eq!(
            allowed(&[Role::Member, Role::Starter], Action::Mode, owner),
            Decision::Refuse(
                "Only the session's owner (its approver, per WhoCanApprove) may change this session's permission mode."
                    .into()
            )
        );
        assert_eq!(
            allowed(&[Role::Member], Action::Stop, WhoCanApprove::Members),
            Decision::Refuse(
                "Only the session's approvers (this channel's members, per WhoCanApprove) or system admins may stop this session."
                    .into()
            )
        );
        assert_eq!(
            allowed(&[Role::Anyone], Action::Status, owner),
            Decision::Refuse(
                "You are not a member of this channel: only members of this channel may see this session's status."
                    .into()
            )
        );
        assert_eq!(
            allowed(&[Role::Anyone, Role::SystemAdmin], Action::Prompt, owner),
            Decision::Refuse(
                "You are not a member of this channel: only members of this channel may prompt this session."
                    .into()
            )
        );
        assert_eq!(
            allowed(&[Role::Anyone, Role::SystemAdmin], Action::Stop, owner),
            Decision::Allow
        );
        assert_eq!(
            allowed(&[Role::Anyone], Action::Help, owner),
            Decision::Allow
        );
        // Not about a channel: no word of membership.
        assert_eq!(
            allowed(&[Role::Anyone], Action::Metrics, owner),
            Decision::Refuse("Only system admins may read the plugin's metrics.".into())
        );
        assert_eq!(
            allowed(&[Role::Anyone, Role::SystemAdmin], Action::Metrics, owner),
            Decision::Allow
        );
    }
}
