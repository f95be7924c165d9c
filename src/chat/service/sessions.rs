//! The session use cases: start, status, prompt, interrupt, stop, mode, model, history. Each
//! returns a typed result; `commands.rs` words it for `/claude`, `http/v1` writes it as JSON.
//! The callers have passed the gate (`authorize.rs`) for the session they name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::error::{ProjectPathError, ServiceError};
use super::worktrees::WorktreeView;
use super::{Asker, ChatService, SessionInfo, ROOT_WAIT};
use crate::chat::authz::Action;
use crate::chat::command::WorktreeRequest;
use crate::chat::outbox;
use crate::claude::PermissionMode;
use crate::config::Config;
use crate::mattermost::model::Post;
use crate::sessions::{PromptContent, SessionHandle, SessionSpec, SessionState};
use crate::store::{HistoryQuery, MessageRecord, OwedKind, OwedPost};

/// Lexical normalization of an absolute path (`.` dropped, `..` pops).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// What a start needs besides the settings. `user_id` comes from Mattermost.
pub(crate) struct StartRequest<'a> {
    pub channel_id: &'a str,
    pub user_id: &'a str,
    pub path: &'a str,
    pub model: Option<String>,
    pub mode: Option<PermissionMode>,
    /// `--worktree [branch]`: the session works in a git worktree of `path` of its own.
    pub worktree: Option<WorktreeRequest>,
}

/// A started session.
pub(crate) struct Started {
    pub handle: SessionHandle,
    /// The project as typed, and the real path when a symlink or `..` made them differ.
    pub shown_path: String,
    /// The session's thread; `None` when the server did not take its root post in time (the
    /// thread follows when it does).
    pub root_id: Option<String>,
}

/// A session as callers see it: its record in the store and its actor's state now.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SessionView {
    pub id: String,
    pub channel_id: String,
    pub owner_id: String,
    pub project_path: String,
    pub model: Option<String>,
    pub permission_mode: Option<String>,
    pub state: SessionState,
    pub created_at: i64,
    pub updated_at: i64,
    pub root_post_id: Option<String>,
    /// The git worktree the session works in (`project_path` is the worktree then).
    pub worktree: Option<WorktreeView>,
    pub queued_prompts: usize,
    /// Their texts in order, for `/claude status` (the API gives the count).
    #[serde(skip)]
    pub queued: Vec<String>,
    pub pending_approvals: usize,
    /// The last live event's sequence number (replay with `events?after=`).
    pub last_seq: i64,
}

/// One page of a session's transcript, newest last.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HistoryPage {
    pub messages: Vec<HistoryEntry>,
    /// Whether older entries exist before the first one (ask with `before` = its seq).
    pub has_more: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct HistoryEntry {
    pub seq: i64,
    pub kind: String,
    /// `user` | `assistant` | `system`.
    pub role: String,
    pub text: String,
    pub at: i64,
}

impl From<MessageRecord> for HistoryEntry {
    fn from(m: MessageRecord) -> Self {
        HistoryEntry {
            seq: m.seq,
            kind: m.kind,
            role: m.message_type,
            text: m.content,
            at: m.timestamp,
        }
    }
}

/// The transcript kinds a person reads as the conversation.
pub(crate) const CONVERSATION_KINDS: &[&str] = &["prompt", "assistant_text"];
/// What the history route pages through: the conversation, tool calls and errors.
pub(crate) const HISTORY_KINDS: &[&str] = &[
    "prompt",
    "assistant_text",
    "tool_use",
    "tool_result",
    "result",
    "error",
];

/// Whether `dir` is a git directory under another name (a bare repository, `x.git`): git's own
/// `HEAD`, `objects/` and `refs/`.
fn is_git_dir(dir: &Path) -> bool {
    dir.join("HEAD").is_file() && dir.join("objects").is_dir() && dir.join("refs").is_dir()
}

impl ChatService {
    /// Checks the start path: under a root (lexically and after symlinks), existing, a dir, not
    /// git's own data.
    pub(super) fn check_project_path(
        config: &Config,
        path: &str,
    ) -> Result<PathBuf, ProjectPathError> {
        let raw = Path::new(path.trim());
        let outside = || ProjectPathError::Outside(path.to_owned());
        if !raw.is_absolute() {
            return Err(outside());
        }
        let roots: Vec<PathBuf> = config
            .allowed_project_roots
            .iter()
            .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.clone()))
            .collect();
        let lexical = normalize(raw);
        let under_any = |p: &Path| {
            roots.iter().any(|r| p.starts_with(r))
                || config
                    .allowed_project_roots
                    .iter()
                    .any(|r| p.starts_with(r))
        };
        if !under_any(&lexical) {
            return Err(outside());
        }
        let in_git = |p: &Path| {
            p.iter()
                .any(|c| c.to_str().is_some_and(crate::files::is_git))
        };
        if in_git(&lexical) {
            return Err(ProjectPathError::GitData(path.to_owned()));
        }
        let canonical = match std::fs::canonicalize(&lexical) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ProjectPathError::Missing(path.to_owned()))
            }
            Err(e) => return Err(ProjectPathError::Unreadable(path.to_owned(), e)),
        };
        if !roots.iter().any(|r| canonical.starts_with(r)) {
            return Err(outside());
        }
        if !canonical.is_dir() {
            return Err(ProjectPathError::NotADirectory(path.to_owned()));
        }
        if in_git(&canonical) || is_git_dir(&canonical) {
            return Err(ProjectPathError::GitData(path.to_owned()));
        }
        Ok(canonical)
    }

    /// Starts a session in the channel: one start per channel at a time, a slot of
    /// MaxConcurrentSessions, the project under an allowed root, then the CLI and the
    /// session's thread (waited for at most [`ROOT_WAIT`]).
    pub(crate) async fn start(
        self: &Arc<Self>,
        config: &Config,
        req: StartRequest<'_>,
    ) -> Result<Started, ServiceError> {
        // Before anything is awaited: one start per channel at a time.
        let reservation = self
            .reserve_channel(req.channel_id)
            .ok_or(ServiceError::StartInProgress)?;
        let project = Self::check_project_path(config, req.path)?;
        if let Some((h, info)) = self.session_of_channel(req.channel_id) {
            if h.status().await.is_ok_and(|s| s.state.has_process()) {
                return Err(ServiceError::AlreadyRunning(info.project_path));
            }
        }
        self.take_slot(&reservation, config.max_concurrent_sessions as usize)
            .await
            .map_err(ServiceError::AtTheLimit)?;
        let made = match &req.worktree {
            Some(request) => Some(
                self.make_worktree(req.channel_id, &project, request)
                    .await?,
            ),
            None => None,
        };
        let workdir = made.as_ref().map_or(&project, |m| &m.path);
        // The lease first: nothing is stored or spawned for a session this node does not hold.
        let id = uuid::Uuid::new_v4().to_string();
        if let Err(e) = self.claim_lease(&id).await {
            if let Some(made) = &made {
                self.discard_worktree(&project, made).await;
            }
            return Err(ServiceError::Claim(e));
        }
        let started = self
            .engine
            .start_as(
                id.clone(),
                SessionSpec {
                    channel_id: req.channel_id.to_owned(),
                    owner_id: req.user_id.to_owned(),
                    project_path: workdir.clone(),
                    model: req.model.or_else(|| config.default_model.clone()),
                    permission_mode: Some(req.mode.unwrap_or(config.default_permission_mode)),
                },
            )
            .await;
        let handle = match started {
            Ok(handle) => handle,
            Err(e) => {
                self.ownership.leases.release(&id).await;
                if let Some(made) = &made {
                    self.discard_worktree(&project, made).await;
                }
                return Err(ServiceError::Start(e));
            }
        };
        let worktree = match &made {
            Some(made) => match self
                .record_worktree(&handle, req.user_id, &project, made)
                .await
            {
                Ok(record) => Some(record),
                Err(e) => {
                    self.give_up(handle.id()).await;
                    return Err(e);
                }
            },
            None => None,
        };
        let real = project.display().to_string();
        let typed = req.path.trim();
        let mut shown_path = if typed == real {
            format!("`{real}`")
        } else {
            format!("`{typed}` (`{real}`)")
        };
        if let Some(w) = &worktree {
            shown_path = format!(
                "a git worktree of {shown_path}: `{}` on branch `{}`",
                w.path, w.branch
            );
        }
        let root = Post {
            user_id: self.bot_id.clone(),
            channel_id: req.channel_id.to_owned(),
            message: format!(
                "Claude Code session started in {shown_path}. Reply in this thread (or use `/claude <prompt>`) to talk to Claude."
            ),
            ..Default::default()
        };
        // Owed through the outbox, which records the thread when the server created it (the
        // bot joins the channel before its first post in it).
        let key = outbox::root_key(handle.id());
        let owed = OwedPost {
            closed: true,
            ..outbox::owed(key.clone(), OwedKind::Root, handle.id(), &root)
        };
        if let Err(e) = self.outbox.put(owed).await {
            let _ = handle.stop(req.user_id).await;
            self.give_up(handle.id()).await;
            return Err(ServiceError::Thread(e));
        }
        let info = SessionInfo {
            channel_id: req.channel_id.to_owned(),
            owner_id: req.user_id.to_owned(),
            project_path: workdir.display().to_string(),
            root_id: String::new(),
            worktree,
            cleaning: false,
        };
        let root_id = match tokio::time::timeout(ROOT_WAIT, self.outbox.created(&key)).await {
            Ok(root_id) => {
                self.list_in_directory(req.channel_id, handle.id(), &root_id)
                    .await;
                self.track(
                    &handle,
                    SessionInfo {
                        root_id: root_id.clone(),
                        ..info
                    },
                    true,
                );
                Some(root_id)
            }
            Err(_) => {
                // The session runs; its thread and every post in it follow when the server
                // takes posts again.
                self.track(&handle, info, true);
                let svc = Arc::clone(self);
                let session_id = handle.id().to_owned();
                let channel_id = req.channel_id.to_owned();
                let waiter = tokio::spawn(async move {
                    let root_id = svc.outbox.created(&key).await;
                    svc.list_in_directory(&channel_id, &session_id, &root_id)
                        .await;
                    svc.thread_created(&session_id, root_id);
                });
                if let Ok(mut tasks) = self.tasks.lock() {
                    tasks.push(waiter);
                }
                None
            }
        };
        Ok(Started {
            handle,
            shown_path,
            root_id,
        })
    }

    /// The session as it is now.
    pub(crate) async fn view(
        &self,
        handle: &SessionHandle,
        info: &SessionInfo,
    ) -> Result<SessionView, ServiceError> {
        let status = handle
            .status()
            .await
            .map_err(|e| ServiceError::Status(info.project_path.clone(), e))?;
        let record = self
            .engine
            .store()
            .session(handle.id())
            .await?
            .ok_or(ServiceError::SessionGone)?;
        let last_seq = self
            .engine
            .store()
            .last_session_event_seq(handle.id())
            .await?;
        Ok(SessionView {
            id: record.id,
            channel_id: record.channel_id,
            owner_id: record.owner_id,
            project_path: info.project_path.clone(),
            model: record.model,
            permission_mode: record.permission_mode,
            state: status.state,
            created_at: record.created_at,
            updated_at: record.updated_at,
            root_post_id: (!info.root_id.is_empty()).then(|| info.root_id.clone()),
            worktree: info.worktree.as_ref().map(WorktreeView::from),
            queued_prompts: status.queued_prompts.len(),
            queued: status.queued_prompts,
            pending_approvals: status.pending_approvals.len(),
            last_seq,
        })
    }

    /// Whether `user_id` may see the status of the session `info` describes (the table's row
    /// for `/claude status`).
    async fn may_see_status(&self, config: &Config, user_id: &str, info: &SessionInfo) -> bool {
        let asker = Asker {
            user_id,
            channel_id: &info.channel_id,
            team_id: "",
            session: Some(info),
        };
        self.authorize_action(config, Action::Status, &asker)
            .await
            .is_ok()
    }

    /// A session nobody runs now (in a cluster: released, or its node died), as the store has
    /// it, if `user_id` may see its status: no process, so nothing queued.
    pub(crate) async fn resting_view(
        &self,
        config: &Config,
        user_id: &str,
        session_id: &str,
    ) -> Result<Option<SessionView>, ServiceError> {
        let Some(info) = self.stored_info(session_id).await else {
            return Ok(None);
        };
        if !self.may_see_status(config, user_id, &info).await {
            return Ok(None);
        }
        let store = self.engine.store();
        let Some(record) = store.session(session_id).await? else {
            return Ok(None);
        };
        let pending = store
            .approvals(session_id)
            .await?
            .iter()
            .filter(|a| a.decision.is_none())
            .count();
        Ok(Some(SessionView {
            id: record.id,
            channel_id: record.channel_id,
            owner_id: record.owner_id,
            project_path: info.project_path.clone(),
            model: record.model,
            permission_mode: record.permission_mode,
            state: SessionState::parse(&record.status).unwrap_or(SessionState::Stopped),
            created_at: record.created_at,
            updated_at: record.updated_at,
            root_post_id: (!info.root_id.is_empty()).then(|| info.root_id.clone()),
            worktree: info.worktree.as_ref().map(WorktreeView::from),
            queued_prompts: 0,
            queued: Vec::new(),
            pending_approvals: pending,
            last_seq: store.last_session_event_seq(session_id).await?,
        }))
    }

    /// The sessions whose status the user may see (the table's row for `/claude status`), the
    /// newest first.
    pub(crate) async fn visible_sessions(
        &self,
        config: &Config,
        user_id: &str,
    ) -> Result<Vec<SessionView>, ServiceError> {
        let mut views = Vec::new();
        for (handle, info) in self.tracked_sessions() {
            if !self.may_see_status(config, user_id, &info).await {
                continue;
            }
            views.push(self.view(&handle, &info).await?);
        }
        views.sort_by_key(|v| std::cmp::Reverse(v.created_at));
        Ok(views)
    }

    /// Sends a prompt (with pending context blocks before its text); answers the prompt's id. A
    /// stopped session resumes on a prompt: that takes one of `max_sessions` slots as a start
    /// does, so stopping and resuming cannot run more sessions than MaxConcurrentSessions.
    pub(crate) async fn prompt(
        &self,
        (h, info): (&SessionHandle, &SessionInfo),
        user_id: &str,
        content: PromptContent,
        max_sessions: usize,
    ) -> Result<String, ServiceError> {
        // Held until the session took the prompt (and with it, its new process).
        let _resuming = if h.status().await.is_ok_and(|s| !s.state.has_process()) {
            let reservation = self
                .reserve_channel(&info.channel_id)
                .ok_or(ServiceError::ResumeInProgress)?;
            // Checked again under the reservation (`stop --clean` holds it while it works): the
            // gate saw the session before a clean began, or ended.
            if let Some(refusal) = self
                .session_by_id(h.id())
                .and_then(|(_, now)| super::authorize::worktree_refusal(&now))
            {
                return Err(refusal);
            }
            self.take_slot(&reservation, max_sessions)
                .await
                .map_err(ServiceError::AtTheLimit)?;
            Some(reservation)
        } else {
            None
        };
        let blocks = self
            .state
            .lock()
            .ok()
            .and_then(|mut st| st.context.remove(h.id()))
            .unwrap_or_default();
        let full = content.after_blocks(&blocks);
        h.prompt(full, user_id).await.map_err(|e| {
            // Give the context back for the next try.
            if !blocks.is_empty() {
                if let Ok(mut st) = self.state.lock() {
                    st.context.insert(h.id().to_owned(), blocks);
                }
            }
            ServiceError::Prompt(e)
        })
    }

    pub(crate) async fn interrupt(
        &self,
        h: &SessionHandle,
        user_id: &str,
    ) -> Result<(), ServiceError> {
        h.interrupt(user_id).await.map_err(ServiceError::Interrupt)
    }

    pub(crate) async fn stop(&self, h: &SessionHandle, user_id: &str) -> Result<(), ServiceError> {
        h.stop(user_id).await.map_err(ServiceError::Stop)
    }

    pub(crate) async fn set_mode(
        &self,
        h: &SessionHandle,
        mode: PermissionMode,
        user_id: &str,
    ) -> Result<(), ServiceError> {
        h.set_permission_mode(mode, user_id)
            .await
            .map_err(ServiceError::Mode)
    }

    pub(crate) async fn set_model(
        &self,
        h: &SessionHandle,
        model: &str,
        user_id: &str,
    ) -> Result<(), ServiceError> {
        h.set_model(model, user_id)
            .await
            .map_err(ServiceError::Model)
    }

    /// At most `limit` live events of the session after `after`, as they were published.
    pub(crate) async fn events_after(
        &self,
        session_id: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, ServiceError> {
        Ok(crate::chat::live::events_after(self.engine.store(), session_id, after, limit).await?)
    }

    /// A page of the session's transcript (see [`HistoryQuery`]).
    pub(crate) async fn history(
        &self,
        session_id: &str,
        query: HistoryQuery,
    ) -> Result<HistoryPage, ServiceError> {
        let limit = query.limit;
        let mut rows = self.engine.store().history(session_id, query).await?;
        let has_more = rows.len() > limit;
        if has_more {
            rows.remove(0);
        }
        Ok(HistoryPage {
            messages: rows.into_iter().map(HistoryEntry::from).collect(),
            has_more,
        })
    }
}
