//! Settings changed on a live session (permission mode, model): sent to the CLI as a control
//! request, answered when the CLI confirms, and stored for the next spawn.

use super::*;

/// A setting changed on a live session (and stored for the next spawn).
#[derive(Debug, Clone, PartialEq)]
pub enum SettingChange {
    PermissionMode(PermissionMode),
    Model(String),
}

impl SettingChange {
    fn action(&self) -> &'static str {
        match self {
            SettingChange::PermissionMode(_) => "set_permission_mode",
            SettingChange::Model(_) => "set_model",
        }
    }

    fn value(&self) -> &str {
        match self {
            SettingChange::PermissionMode(m) => m.as_str(),
            SettingChange::Model(m) => m,
        }
    }

    fn request(&self) -> HostRequest {
        match self {
            SettingChange::PermissionMode(mode) => HostRequest::SetPermissionMode { mode: *mode },
            SettingChange::Model(m) => HostRequest::SetModel {
                model: Some(m.clone()),
            },
        }
    }
}

impl Actor {
    /// A live CLI gets the control request (the answer completes it, see `finish_change`);
    /// without one (stopped, crashed, stopping) the value is only stored for the next spawn.
    pub(super) async fn on_change(
        &mut self,
        change: SettingChange,
        by: String,
        reply: oneshot::Sender<Result<(), SessionError>>,
    ) {
        let live = self.process.is_some() && self.kill_deadline.is_none();
        if live {
            let id = new_request_id();
            if self
                .send_to_cli(StdinMessage::request(id.clone(), change.request()))
                .await
            {
                self.changes.insert(id, PendingChange { change, by, reply });
                return;
            }
        }
        let result = self.apply_change(&change, &by).await;
        self.flush().await;
        let _ = reply.send(result);
    }

    /// Stores and audits an accepted change.
    pub(super) async fn apply_change(
        &mut self,
        change: &SettingChange,
        by: &str,
    ) -> Result<(), SessionError> {
        let (model, mode) = match change {
            SettingChange::PermissionMode(m) => (None, Some(m.as_str())),
            SettingChange::Model(m) => (Some(m.as_str()), None),
        };
        self.store
            .set_session_settings(&self.record.id, model, mode)
            .await?;
        match change {
            SettingChange::PermissionMode(m) => {
                self.record.permission_mode = Some(m.as_str().to_owned())
            }
            SettingChange::Model(m) => self.record.model = Some(m.clone()),
        }
        self.audit(by, change.action(), json!({ "value": change.value() }))
            .await;
        Ok(())
    }

    /// The CLI answered a set_* request.
    pub(super) async fn finish_change(&mut self, pending: PendingChange, refused: Option<String>) {
        let result = match refused {
            Some(error) => Err(SessionError::Refused(error)),
            None => self.apply_change(&pending.change, &pending.by).await,
        };
        self.flush().await;
        let _ = pending.reply.send(result);
    }
}
