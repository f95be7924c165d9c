//! What a channel member's browser needs to draw the session panel: the channel's session, the
//! roots a session may start under, and which actions the caller may take (a control they may
//! not use is shown disabled with the reason before any click).

use serde::Serialize;

use super::authorize::Asker;
use super::error::ServiceError;
use super::sessions::SessionView;
use super::ChatService;
use crate::chat::authz::Action;
use crate::config::Config;

/// The actions the webapp offers, by the names it knows them by (`Permissions` in
/// webapp/src/api_types.ts).
pub const PANEL_ACTIONS: [(&str, Action); 13] = [
    ("start", Action::Start),
    ("prompt", Action::Prompt),
    ("interrupt", Action::Interrupt),
    ("stop", Action::Stop),
    ("context", Action::ContextFile),
    ("files", Action::Files),
    ("history", Action::History),
    ("mode", Action::Mode),
    ("model", Action::Model),
    ("approve", Action::Approve),
    ("approve_for_session", Action::ApproveForSession),
    ("deny", Action::Deny),
    ("edit_file", Action::EditFile),
];

#[derive(Debug, Serialize)]
pub(crate) struct Permission {
    pub allowed: bool,
    /// The sentence a refusal gives; `None` when allowed.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ChannelView {
    pub channel_id: String,
    /// The plugin's bot: only its posts are the session's (anyone may post a custom type).
    pub bot_user_id: String,
    pub session: Option<SessionView>,
    /// Empty unless the caller may start a session.
    pub allowed_roots: Vec<String>,
    pub permissions: std::collections::BTreeMap<&'static str, Permission>,
}

impl ChatService {
    /// The channel as its member `user_id` sees it. Someone outside the channel learns nothing
    /// (the error maps to 404).
    pub(crate) async fn channel_view(
        &self,
        config: &Config,
        user_id: &str,
        channel_id: &str,
    ) -> Result<ChannelView, ServiceError> {
        let current = self.session_of_channel(channel_id);
        let asker = Asker {
            user_id,
            channel_id,
            team_id: "",
            session: current.as_ref().map(|(_, info)| info),
        };
        let actions: Vec<Action> = PANEL_ACTIONS.iter().map(|(_, a)| *a).collect();
        let answers = self
            .member_permissions(config, &asker, &actions)
            .await
            .ok_or_else(|| ServiceError::NotAllowed {
                text: "You are not a member of this channel.".into(),
                member: false,
            })?;
        let permissions: std::collections::BTreeMap<_, _> = PANEL_ACTIONS
            .iter()
            .zip(answers)
            .map(|((name, _), (_, reason))| {
                let allowed = reason.is_none();
                (*name, Permission { allowed, reason })
            })
            .collect();
        let may_start = permissions.get("start").is_some_and(|p| p.allowed);
        let session = match &current {
            Some((handle, info)) => Some(self.view(handle, info).await?),
            None => None,
        };
        Ok(ChannelView {
            channel_id: channel_id.to_owned(),
            bot_user_id: self.bot_id.clone(),
            session,
            allowed_roots: if may_start {
                config
                    .allowed_project_roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect()
            } else {
                Vec::new()
            },
            permissions,
        })
    }
}
