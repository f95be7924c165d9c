//! What the CLI prints: each stdout line folded into events and state, its `can_use_tool`
//! prompts recorded as pending approvals.

use super::*;

impl Actor {
    pub(super) async fn on_output(&mut self, output: FromCli) {
        match output {
            FromCli::Line(line) => self.on_line(*line).await,
            FromCli::Garbage(message) => {
                tracing::warn!(session = %self.record.id, "{message}");
                self.publish(EventKind::Error {
                    error: SessionErrorKind::GarbageLine,
                    message,
                })
                .await;
            }
            FromCli::ReadFailed(message) => {
                tracing::warn!(session = %self.record.id, "{message}");
            }
            FromCli::Exited(info) => self.on_exit(info).await,
        }
    }

    async fn on_line(&mut self, line: CliLine) {
        match line.message {
            CliMessage::System(system) => {
                if let SystemEvent::Known(event) = system.event {
                    match event {
                        KnownSystemEvent::Init(_) => {
                            if let Some(id) = system.session_id {
                                self.confirm_cli_session(id).await;
                            }
                        }
                        KnownSystemEvent::ApiRetry {
                            attempt,
                            max_retries,
                            error_status,
                            error,
                            ..
                        } => {
                            self.publish(EventKind::ApiRetry {
                                attempt,
                                max_retries,
                                error_status,
                                error,
                            })
                            .await
                        }
                        _ => {}
                    }
                }
            }
            CliMessage::StreamEvent(event) => {
                if let StreamEvent::Known(KnownStreamEvent::ContentBlockDelta {
                    delta: Delta::Known(KnownDelta::TextDelta { text }),
                    ..
                }) = event.event
                {
                    self.publish(EventKind::TextDelta { text }).await;
                }
            }
            CliMessage::Assistant(assistant) => {
                let message_id = assistant.message.id.clone();
                for block in assistant.message.content {
                    let kind = match block {
                        ContentBlock::Known(KnownBlock::Text { text }) => {
                            EventKind::AssistantText {
                                message_id: message_id.clone(),
                                text,
                            }
                        }
                        ContentBlock::Known(KnownBlock::Thinking { thinking, .. }) => {
                            EventKind::AssistantThinking { text: thinking }
                        }
                        ContentBlock::Known(KnownBlock::ToolUse { id, name, input }) => {
                            EventKind::ToolUse {
                                tool_use_id: id,
                                tool: name,
                                input,
                            }
                        }
                        _ => continue,
                    };
                    self.publish(kind).await;
                }
            }
            CliMessage::User(user) => {
                let UserContent::Blocks(blocks) = user.message.content else {
                    return;
                };
                let structured = match user.tool_use_result {
                    Some(ToolUseResult::Structured(s)) => Some(s),
                    _ => None,
                };
                for block in blocks {
                    if let ContentBlock::Known(KnownBlock::ToolResult {
                        tool_use_id,
                        content,
                        is_error,
                    }) = block
                    {
                        let s = structured.as_deref();
                        self.publish(EventKind::ToolResult {
                            tool_use_id,
                            is_error: is_error.unwrap_or(false),
                            content: tool_result_text(&content),
                            file_path: s.and_then(|s| s.file_path.clone()),
                            patch: s.and_then(|s| s.structured_patch.clone()),
                            stdout: s.and_then(|s| s.stdout.clone()),
                            stderr: s.and_then(|s| s.stderr.clone()),
                        })
                        .await;
                    }
                }
            }
            CliMessage::Result(result) => {
                if self.state == SessionState::Starting {
                    if let Some(p) = self.process.as_mut().filter(|p| p.resumed) {
                        p.resume_failed = true;
                    }
                } else if let Some(id) = result.session_id.clone() {
                    self.confirm_cli_session(id).await;
                }
                let error_message = result.is_error.then(|| {
                    result
                        .result
                        .clone()
                        .filter(|r| !r.is_empty())
                        .or_else(|| (!result.errors.is_empty()).then(|| result.errors.join("; ")))
                        .unwrap_or_else(|| {
                            format!(
                                "the turn ended with {} ({})",
                                result.subtype,
                                result.terminal_reason.as_deref().unwrap_or("no reason")
                            )
                        })
                });
                let prompt_id = self.current_prompt.take();
                self.publish(EventKind::TurnResult {
                    prompt_id,
                    is_error: result.is_error,
                    subtype: result.subtype,
                    text: result.result,
                    terminal_reason: result.terminal_reason,
                    total_cost_usd: result.total_cost_usd,
                    usage: result.usage,
                    duration_ms: result.duration_ms,
                    num_turns: result.num_turns,
                    api_error_status: result.api_error_status,
                    denied_tools: result
                        .permission_denials
                        .into_iter()
                        .map(|d| d.tool_name)
                        .collect(),
                })
                .await;
                if let Some(message) = error_message {
                    self.publish(EventKind::Error {
                        error: SessionErrorKind::Turn,
                        message,
                    })
                    .await;
                }
                self.cancel_pending().await;
                self.follow(SessionInput::TurnFinished).await;
                self.pump().await;
            }
            CliMessage::ControlRequest(request) => match request.request {
                IncomingRequest::Known(KnownIncomingRequest::CanUseTool(ask)) => {
                    self.on_can_use_tool(request.request_id, *ask).await
                }
                IncomingRequest::Unknown(body) => {
                    // Never leave the CLI waiting on a request we cannot serve.
                    let subtype = body.get("subtype").and_then(Value::as_str).unwrap_or("?");
                    tracing::warn!(session = %self.record.id, "unsupported control request {subtype}");
                    self.send_to_cli(StdinMessage::control_error(
                        request.request_id,
                        format!("the Mattermost host does not support {subtype}"),
                    ))
                    .await;
                }
            },
            CliMessage::ControlResponse(response) => {
                let ready = self
                    .process
                    .as_ref()
                    .is_some_and(|p| p.init_request_id == response.response.request_id());
                let refused = match &response.response {
                    ControlResponseBody::Error { error, .. } => {
                        tracing::warn!(session = %self.record.id, "CLI refused a control request: {error}");
                        Some(if error.is_empty() {
                            "unknown error".to_owned()
                        } else {
                            error.clone()
                        })
                    }
                    ControlResponseBody::Success { .. } => None,
                };
                if let Some(pending) = self.changes.remove(response.response.request_id()) {
                    self.finish_change(pending, refused).await;
                    return;
                }
                if ready && self.state == SessionState::Starting {
                    self.startup_deadline = None;
                    self.follow(SessionInput::Ready).await;
                    self.pump().await;
                }
            }
            CliMessage::ControlCancelRequest(cancel) => {
                if self.pending.remove(&cancel.request_id).is_some() {
                    if let Err(e) = self
                        .store
                        .decide_approval(
                            &cancel.request_id,
                            None,
                            "cancelled",
                            None,
                            Default::default(),
                        )
                        .await
                    {
                        tracing::error!(session = %self.record.id, "storing a cancel failed: {e}");
                    }
                    self.publish(EventKind::ToolApprovalCancelled {
                        request_id: cancel.request_id,
                    })
                    .await;
                    self.settle_if_done().await;
                }
            }
            CliMessage::CommandLifecycle(_)
            | CliMessage::ConversationReset(_)
            | CliMessage::Unknown(_) => {}
        }
    }

    /// Remembers the CLI's conversation id once the CLI itself reported it: only then does a
    /// transcript exist that `--resume` can find. `/clear` changes it, so always follow it.
    async fn confirm_cli_session(&mut self, id: String) {
        if self.record.cli_session_id.as_deref() == Some(id.as_str()) {
            return;
        }
        if let Err(e) = self
            .store
            .set_cli_session_id(&self.record.id, Some(&id))
            .await
        {
            tracing::error!(session = %self.record.id, "storing the CLI session id failed: {e}");
        }
        self.record.cli_session_id = Some(id);
    }

    async fn on_can_use_tool(&mut self, request_id: String, ask: CanUseTool) {
        let record = ApprovalRecord {
            request_id: request_id.clone(),
            session_id: self.record.id.clone(),
            tool: ask.tool_name.clone(),
            input: ask.input.clone(),
            decided_by: None,
            decision: None,
            reason: None,
            requested_at: now_ms(),
            decided_at: None,
            allowed: Default::default(),
        };
        if let Err(e) = self.store.insert_approval(record).await {
            tracing::error!(session = %self.record.id, "storing an approval request failed: {e}");
        }
        let timeout = self.config.get().approval_timeout;
        self.pending.insert(
            request_id.clone(),
            PendingApproval {
                tool: ask.tool_name.clone(),
                input: ask.input.clone(),
                suggestions: ask.permission_suggestions.clone(),
                deadline: Instant::now() + timeout,
                timeout,
            },
        );
        self.follow(SessionInput::ApprovalRequested).await;
        self.publish(EventKind::ToolUseRequested {
            request_id,
            tool_use_id: ask.tool_use_id,
            tool: ask.tool_name,
            input: ask.input,
            description: ask.description,
            reason: ask.decision_reason,
            requires_user_interaction: ask.requires_user_interaction.unwrap_or(false),
        })
        .await;
    }
}
