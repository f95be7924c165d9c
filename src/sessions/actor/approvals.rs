//! Answers to the CLI's `can_use_tool` prompts: a person's decision, and the deny sent when
//! nobody decided in time.

use super::*;

impl Actor {
    pub(super) async fn on_approve(
        &mut self,
        request_id: String,
        decision: Decision,
        by: String,
    ) -> Result<(), SessionError> {
        if let Decision::Deny(m) | Decision::DenyAndInterrupt(m) = &decision {
            if m.trim().is_empty() {
                return Err(SessionError::EmptyDenyMessage);
            }
        }
        let pending = self
            .pending
            .remove(&request_id)
            .ok_or_else(|| SessionError::UnknownApproval(request_id.clone()))?;
        let name = decision.name();
        let mut exit_plan = None;
        let (answer, event) = match decision {
            Decision::Allow => (
                ApprovalAnswer::Allow {
                    input: pending.input.clone(),
                },
                EventKind::ToolApproved {
                    request_id: request_id.clone(),
                    by: by.clone(),
                    decision: name.into(),
                    input: pending.input.clone(),
                },
            ),
            Decision::AllowWithInput(input) => (
                ApprovalAnswer::Allow {
                    input: input.clone(),
                },
                EventKind::ToolApproved {
                    request_id: request_id.clone(),
                    by: by.clone(),
                    decision: name.into(),
                    input,
                },
            ),
            Decision::AllowForSession => {
                // The CLI's own suggestion when it has one (for Write: acceptEdits for the
                // session); otherwise a rule for the tool. `session_scoped` keeps it in memory.
                let suggestions = if pending.suggestions.is_empty() {
                    vec![
                        json!({"type": "addRules", "rules": [{"toolName": pending.tool}],
                                "behavior": "allow", "destination": "session"}),
                    ]
                } else {
                    pending.suggestions.clone()
                };
                (
                    ApprovalAnswer::AllowForSession {
                        input: pending.input.clone(),
                        suggestions,
                    },
                    EventKind::ToolApproved {
                        request_id: request_id.clone(),
                        by: by.clone(),
                        decision: name.into(),
                        input: pending.input.clone(),
                    },
                )
            }
            Decision::ExitPlan(mode) => {
                // `Default` is where the CLI goes by itself; any other mode is asked for.
                let answer = match mode {
                    PermissionMode::Default => ApprovalAnswer::Allow {
                        input: pending.input.clone(),
                    },
                    other => ApprovalAnswer::AllowForSession {
                        input: pending.input.clone(),
                        suggestions: vec![json!({"type": "setMode", "mode": other.as_str(),
                                                 "destination": "session"})],
                    },
                };
                exit_plan = Some(mode);
                (
                    answer,
                    EventKind::ToolApproved {
                        request_id: request_id.clone(),
                        by: by.clone(),
                        decision: name.into(),
                        input: pending.input.clone(),
                    },
                )
            }
            Decision::Deny(message) => (
                ApprovalAnswer::Deny {
                    message: message.clone(),
                },
                EventKind::ToolDenied {
                    request_id: request_id.clone(),
                    by: by.clone(),
                    message,
                    interrupt: false,
                },
            ),
            Decision::DenyAndInterrupt(message) => (
                ApprovalAnswer::DenyAndInterrupt {
                    message: message.clone(),
                },
                EventKind::ToolDenied {
                    request_id: request_id.clone(),
                    by: by.clone(),
                    message,
                    interrupt: true,
                },
            ),
        };
        let line = match StdinMessage::approval(request_id.clone(), answer) {
            Ok(line) => line,
            Err(e) => {
                self.pending.insert(request_id, pending);
                return Err(e.into());
            }
        };
        let reason = match &event {
            EventKind::ToolDenied { message, .. } => Some(message.clone()),
            _ => None,
        };
        let allowed = Allowed {
            updated_input: match (name, &event) {
                ("allow_with_input", EventKind::ToolApproved { input, .. }) => Some(input.clone()),
                _ => None,
            },
            mode: exit_plan.map(|m| m.as_str().to_owned()),
        };
        // Not stored, not answered: the request stays pending (and expires as usual), so the
        // next click can still answer it.
        if let Err(e) = self
            .store
            .decide_approval(&request_id, Some(&by), name, reason.as_deref(), allowed)
            .await
        {
            self.pending.insert(request_id, pending);
            return Err(e.into());
        }
        self.audit(
            &by,
            name,
            json!({"request_id": request_id, "tool": pending.tool}),
        )
        .await;
        self.send_to_cli(line).await;
        if let Some(mode) = exit_plan {
            // The session left plan mode: a resume must not start in it again.
            if let Err(e) = self
                .apply_change(&SettingChange::PermissionMode(mode), &by)
                .await
            {
                tracing::warn!(session = %self.record.id, "recording the mode after a plan failed: {e}");
            }
        }
        self.publish(event).await;
        self.settle_if_done().await;
        Ok(())
    }

    pub(super) async fn settle_if_done(&mut self) {
        if self.pending.is_empty() && self.state == SessionState::AwaitingApproval {
            self.follow(SessionInput::ApprovalsSettled).await;
        }
    }

    /// An unanswered approval: deny it (with a message, like every deny) so the CLI moves on.
    pub(super) async fn expire(&mut self, request_id: String) {
        let Some(pending) = self.pending.remove(&request_id) else {
            return;
        };
        let message = format!(
            "Nobody approved this {} call within {} seconds, so it was denied. Ask again if it is still needed.",
            pending.tool,
            pending.timeout.as_secs()
        );
        if let Err(e) = self
            .store
            .decide_approval(
                &request_id,
                None,
                "expired",
                Some(&message),
                Default::default(),
            )
            .await
        {
            tracing::error!(session = %self.record.id, "storing an expired approval failed: {e}");
        }
        if let Ok(line) = StdinMessage::approval(
            request_id.clone(),
            ApprovalAnswer::Deny {
                message: message.clone(),
            },
        ) {
            self.send_to_cli(line).await;
        }
        self.publish(EventKind::ToolApprovalExpired {
            request_id,
            message,
        })
        .await;
        self.settle_if_done().await;
    }
}
