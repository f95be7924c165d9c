//! Who may act: the roles of an asker resolved from Mattermost's answers and the settings,
//! the table in [`authz`] asked once ([`ChatService::authorize_action`]), and the gate every
//! entry point but the card clicks passes ([`ChatService::gate`]).

use std::path::Path;

use super::error::ServiceError;
use super::{ChatService, SessionInfo, NO_SESSION};
use crate::chat::authz::{self, Action, Role};
use crate::config::{Config, WhoCanApprove, WhoCanStart};
use crate::mattermost::model::{Team, TeamMember};

/// Why [`ChatService::authorize_action`] says no; the text is what the asker sees.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// A channel member asked about the channel's session, and it has none.
    #[error("{NO_SESSION}")]
    NoSession,
    /// The table does not allow it; the text names who may. `member`: whether the asker is a
    /// member of the channel (someone outside it is not told more than that).
    #[error("{text}")]
    NotAllowed { text: String, member: bool },
}

/// Who asks, and where: what resolving their roles needs.
pub(crate) struct Asker<'a> {
    pub user_id: &'a str,
    pub channel_id: &'a str,
    /// The team a command was typed in (WhoCanStart's quick path); empty elsewhere.
    pub team_id: &'a str,
    /// The channel's session, if it has one.
    pub session: Option<&'a SessionInfo>,
}

/// Whether `user_id` counts as a member of `team`: the team the command was run in counts
/// (quick path, no lookup), otherwise an active (not deleted) membership record of that user
/// in that team.
pub(super) fn team_membership_counts(
    team: &Team,
    command_team_id: &str,
    user_id: &str,
    member: Option<&TeamMember>,
) -> bool {
    if team.id.is_empty() {
        return false;
    }
    if team.id == command_team_id {
        return true;
    }
    member.is_some_and(|m| {
        m.delete_at == 0
            && (m.team_id.is_empty() || m.team_id == team.id)
            && (m.user_id.is_empty() || m.user_id == user_id)
    })
}

/// Whether `path` (a session's project, canonical when it started) is under an allowed root,
/// as the root is written or after its symlinks.
pub(super) fn under_allowed_root(config: &Config, path: &Path) -> bool {
    config
        .allowed_project_roots
        .iter()
        .any(|r| path.starts_with(r) || std::fs::canonicalize(r).is_ok_and(|c| path.starts_with(c)))
}

pub(crate) fn outside_roots_text(project: &str) -> String {
    format!(
        "This session's project `{project}` is no longer under an allowed project root (an admin changed AllowedProjectRoots)."
    )
}

/// Why a session may not be used for `action` any more, whoever asks: its project left the
/// allowed roots, or `stop --clean` removed its worktree or is removing it. Its status, history and stop stay
/// available.
pub(super) fn session_refusal(
    config: &Config,
    action: Action,
    info: &SessionInfo,
) -> Option<ServiceError> {
    let uses_project = !matches!(
        action,
        Action::Help
            | Action::Start
            | Action::Status
            | Action::History
            | Action::Stop
            | Action::DiscardWorktree
            | Action::Health
    );
    if !uses_project {
        return None;
    }
    if !under_allowed_root(config, Path::new(info.rooted_path())) {
        return Some(ServiceError::ProjectLeftRoots(
            info.rooted_path().to_owned(),
        ));
    }
    worktree_refusal(info)
}

/// Why the session may not run in its worktree now: `stop --clean` is removing it, or did.
pub(super) fn worktree_refusal(info: &SessionInfo) -> Option<ServiceError> {
    let w = info.worktree.as_ref()?;
    if w.removed_at.is_some() {
        Some(ServiceError::WorktreeRemoved(w.path.clone()))
    } else if info.cleaning {
        Some(ServiceError::WorktreeCleaning(w.path.clone()))
    } else {
        None
    }
}

impl ChatService {
    /// THE gate of commands, thread replies and REST calls, in this order: the table (a
    /// refusal names who may), the session's project still under an allowed root, then the
    /// caller's rate limit (`counted` names what is counted; `None`: the call is free, as REST
    /// reads are). Help costs nothing; a member's question about a channel without a session
    /// costs a token like any other.
    pub(crate) async fn gate(
        &self,
        config: &Config,
        action: Action,
        asker: &Asker<'_>,
        counted: Option<&'static str>,
    ) -> Result<(), ServiceError> {
        let admit = || match counted {
            Some(what) => self
                .admit(asker.user_id)
                .map_err(|retry| ServiceError::RateLimited { what, retry }),
            None => Ok(()),
        };
        match self.authorize_action(config, action, asker).await {
            Ok(()) => {}
            Err(Refusal::NoSession) => {
                admit()?;
                return Err(ServiceError::NoSession);
            }
            Err(Refusal::NotAllowed { text, member }) => {
                return Err(ServiceError::NotAllowed { text, member })
            }
        }
        if let Some(refusal) = asker
            .session
            .and_then(|info| session_refusal(config, action, info))
        {
            return Err(refusal);
        }
        if action == Action::Help {
            return Ok(());
        }
        admit()
    }

    /// Whether the user is a member of a team WhoCanStart lists. Each name is resolved to its
    /// id; the command's own team is enough (the channel membership was checked), otherwise
    /// the user's team membership is asked for. A team that does not exist matches nobody.
    async fn in_listed_team(&self, who: &WhoCanStart, user_id: &str, team_id: &str) -> bool {
        for name in who.team_names() {
            let team = match self.api.get_team_by_name(name).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!("WhoCanStart: team {name:?} not resolved: {e}");
                    continue;
                }
            };
            if team_membership_counts(&team, team_id, user_id, None) {
                return true;
            }
            let member = self.api.get_team_member(&team.id, user_id).await.ok();
            if team_membership_counts(&team, team_id, user_id, member.as_ref()) {
                return true;
            }
        }
        false
    }

    /// Whether WhoCanStart allows the user (by name, or as a member of a listed team).
    async fn may_start(&self, config: &Config, user_id: &str, team_id: &str) -> bool {
        let who = &config.who_can_start;
        if *who == WhoCanStart::Everyone {
            return true;
        }
        let name = self.username(user_id).await;
        who.allows(&name, &[]) || self.in_listed_team(who, user_id, team_id).await
    }

    /// Whether Mattermost counts the user as a system admin. A failed call counts as no.
    pub(crate) async fn is_system_admin(&self, user_id: &str) -> bool {
        match self.api.has_permission_to(user_id, "manage_system").await {
            Ok(admin) => admin,
            Err(e) => {
                tracing::warn!("HasPermissionTo(manage_system) failed: {e}");
                false
            }
        }
    }

    /// THE authorization check of every entry point (commands, thread replies, card clicks,
    /// dialog submissions), before anything is done: the asker's roles are resolved, asking
    /// Mattermost only what can still change the answer, and the table in [`authz`] decides.
    pub(crate) async fn authorize_action(
        &self,
        config: &Config,
        action: Action,
        asker: &Asker<'_>,
    ) -> Result<(), Refusal> {
        self.authorize_known(config, action, asker, &mut Known::default())
            .await
    }

    /// What a member of the asker's channel may do of each of `actions`: `None` when allowed,
    /// else the sentence a refusal would give (a session's project out of the allowed roots
    /// included). `None` for someone outside the channel. Mattermost is asked each question
    /// once for all of them.
    pub(crate) async fn member_permissions(
        &self,
        config: &Config,
        asker: &Asker<'_>,
        actions: &[Action],
    ) -> Option<Vec<(Action, Option<String>)>> {
        let member = self.is_member(asker.channel_id, asker.user_id).await;
        if !member {
            return None;
        }
        let mut known = Known {
            member: Some(member),
            ..Known::default()
        };
        let mut out = Vec::with_capacity(actions.len());
        for &action in actions {
            let refusal = match self
                .authorize_known(config, action, asker, &mut known)
                .await
            {
                Err(refusal) => Some(refusal.to_string()),
                Ok(()) => asker
                    .session
                    .and_then(|info| session_refusal(config, action, info))
                    .map(|refusal| match refusal {
                        ServiceError::ProjectLeftRoots(project) => outside_roots_text(&project),
                        refusal => refusal.to_string(),
                    }),
            };
            out.push((action, refusal));
        }
        Some(out)
    }

    /// [`Self::authorize_action`] with the answers already had from Mattermost in `known`.
    async fn authorize_known(
        &self,
        config: &Config,
        action: Action,
        asker: &Asker<'_>,
        known: &mut Known,
    ) -> Result<(), Refusal> {
        let approve = config.who_can_approve;
        let mut roles = vec![Role::Anyone];
        if authz::allowed(&roles, action, approve) == authz::Decision::Allow {
            return Ok(());
        }
        let member = match known.member {
            Some(m) => m,
            None => *known
                .member
                .insert(self.is_member(asker.channel_id, asker.user_id).await),
        };
        if member {
            roles.push(Role::Member);
            if let Some(info) = asker.session {
                let owner = info.owner_id == asker.user_id;
                if owner {
                    roles.push(Role::Owner);
                }
                if owner || approve == WhoCanApprove::Members {
                    roles.push(Role::Approver);
                }
            }
            if action == Action::Start {
                let starter = match known.starter {
                    Some(s) => s,
                    None => *known
                        .starter
                        .insert(self.may_start(config, asker.user_id, asker.team_id).await),
                };
                if starter {
                    roles.push(Role::Starter);
                }
            }
            if action.needs_session() && asker.session.is_none() {
                return Err(Refusal::NoSession);
            }
        }
        let mut decision = authz::allowed(&roles, action, approve);
        if decision != authz::Decision::Allow && authz::permits(Role::SystemAdmin, action) {
            let admin = match known.admin {
                Some(a) => a,
                None => *known
                    .admin
                    .insert(self.is_system_admin(asker.user_id).await),
            };
            if !admin {
                return refused(decision, &roles);
            }
            roles.push(Role::SystemAdmin);
            decision = authz::allowed(&roles, action, approve);
        }
        refused(decision, &roles)
    }
}

/// The answers had from Mattermost about one asker, so that several actions ask once.
#[derive(Default)]
struct Known {
    member: Option<bool>,
    starter: Option<bool>,
    admin: Option<bool>,
}

fn refused(decision: authz::Decision, roles: &[Role]) -> Result<(), Refusal> {
    match decision {
        authz::Decision::Allow => Ok(()),
        authz::Decision::Refuse(text) => Err(Refusal::NotAllowed {
            text,
            member: roles.contains(&Role::Member),
        }),
    }
}
