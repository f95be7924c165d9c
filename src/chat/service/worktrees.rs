//! `/claude start … --worktree [branch]` and `/claude stop --clean [--force]`: a session that
//! works in a git worktree of its own, made under the data directory (`worktrees/<channel
//! id>-<short id>`) when it starts, kept across stops and restarts (the next prompt resumes in
//! it), and removed only on request.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use super::error::ServiceError;
use super::{ChatService, State};
use crate::chat::command::WorktreeRequest;
use crate::sessions::SessionHandle;
use crate::store::{now_ms, WorktreeRecord};
use crate::worktree::{self, Created, WorktreeError};

/// The directory of the data directory that holds the worktrees.
pub(crate) const WORKTREES_DIR: &str = "worktrees";

/// A session's worktree as callers see it (`/claude status`, the REST API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct WorktreeView {
    pub path: String,
    pub branch: String,
    /// The repository it was made from.
    pub repository: String,
    /// `stop --clean` removed it.
    pub removed: bool,
}

impl From<&WorktreeRecord> for WorktreeView {
    fn from(r: &WorktreeRecord) -> Self {
        WorktreeView {
            path: r.path.clone(),
            branch: r.branch.clone(),
            repository: r.repository.clone(),
            removed: r.removed_at.is_some(),
        }
    }
}

/// A session marked as cleaning (`SessionInfo::cleaning`) while this lives: the mark goes
/// however `stop --clean` ends, a worktree removed being refused by its record then.
struct Cleaning<'a> {
    state: &'a Mutex<State>,
    session_id: String,
}

impl<'a> Cleaning<'a> {
    fn mark(state: &'a Mutex<State>, session_id: &str) -> Self {
        let cleaning = Cleaning {
            state,
            session_id: session_id.to_owned(),
        };
        cleaning.set(true);
        cleaning
    }

    fn set(&self, on: bool) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(info) = st.sessions.get_mut(&self.session_id) {
            info.cleaning = on;
        }
    }
}

impl Drop for Cleaning<'_> {
    fn drop(&mut self) {
        self.set(false);
    }
}

impl ChatService {
    /// Makes the worktree a start asked for. `repo` passed the start's path check (under an
    /// allowed root, canonical) and must be the top of a git working tree. The branch is the
    /// one named, else a new one named after the channel.
    pub(super) async fn make_worktree(
        &self,
        channel_id: &str,
        repo: &Path,
        request: &WorktreeRequest,
    ) -> Result<Created, ServiceError> {
        worktree::check_repository(repo).await?;
        let short: String = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let branch = match &request.branch {
            Some(branch) => branch.clone(),
            None => {
                // Without the name (the server does not answer now) the branch is still unique.
                let name = self.api.get_channel(channel_id).await.map(|c| c.name);
                worktree::default_branch(&name.unwrap_or_default(), &short)
            }
        };
        let dir = self
            .data_dir
            .join(WORKTREES_DIR)
            .join(format!("{channel_id}-{short}"));
        Ok(worktree::add(&self.repo_locks, repo, &dir, &branch).await?)
    }

    /// Records the worktree of a session that just started. If that fails the session is
    /// stopped and the worktree removed: a worktree nobody knows of would never be cleaned.
    pub(super) async fn record_worktree(
        &self,
        handle: &SessionHandle,
        user_id: &str,
        repo: &Path,
        made: &Created,
    ) -> Result<WorktreeRecord, ServiceError> {
        let record = WorktreeRecord {
            session_id: handle.id().to_owned(),
            repository: repo.display().to_string(),
            path: made.path.display().to_string(),
            branch: made.branch.clone(),
            created_at: now_ms(),
            removed_at: None,
        };
        if let Err(e) = self.engine.store().insert_worktree(record.clone()).await {
            let _ = handle.stop(user_id).await;
            self.discard_worktree(repo, made).await;
            return Err(e.into());
        }
        Ok(record)
    }

    /// The worktree of a start that failed: removed, with the branch made for it.
    pub(super) async fn discard_worktree(&self, repo: &Path, made: &Created) {
        let branch = made.new_branch.then_some(made.branch.as_str());
        if let Err(e) = worktree::remove(&self.repo_locks, repo, &made.path, true, branch).await {
            tracing::warn!(path = %made.path.display(), "removing the worktree of a failed start: {e}");
        }
    }

    /// `stop --clean`: stops the session, then removes its worktree (`git worktree remove`);
    /// its branch stays. Uncommitted changes refuse it before anything stops, unless `force`
    /// discards them. A repository moved or deleted refuses it too, unless `force`: then the
    /// worktree's directory is deleted. Answers the worktree as it was.
    pub(crate) async fn stop_and_clean(
        &self,
        h: &SessionHandle,
        user_id: &str,
        force: bool,
    ) -> Result<WorktreeRecord, ServiceError> {
        let store = self.engine.store();
        let record = store
            .worktree(h.id())
            .await?
            .ok_or(ServiceError::NoWorktree)?;
        if record.removed_at.is_some() {
            return Err(ServiceError::WorktreeRemoved(record.path));
        }
        let (repo, path) = (
            PathBuf::from(&record.repository),
            PathBuf::from(&record.path),
        );
        // From here until the worktree is gone (or this fails) no prompt resumes the session
        // in it: the gate refuses them, and a resume needs the channel's reservation.
        let _cleaning = Cleaning::mark(&self.state, h.id());
        let channel_id = self
            .session_by_id(h.id())
            .map(|(_, info)| info.channel_id)
            .ok_or(ServiceError::SessionGone)?;
        let _no_resume = self
            .reserve_channel(&channel_id)
            .ok_or(ServiceError::ResumeInProgress)?;
        if !worktree::repository_exists(&repo).await {
            // Nothing git can do without the repository: only the directory can go, whole.
            if !force {
                return Err(WorktreeError::RepositoryGone(record.repository).into());
            }
            h.stop(user_id).await.map_err(ServiceError::Stop)?;
            worktree::delete_orphaned(&path, &self.data_dir.join(WORKTREES_DIR)).await?;
        } else {
            if !force {
                worktree::check_clean(&path).await?;
            }
            h.stop(user_id).await.map_err(ServiceError::Stop)?;
            // git checks again: a change made between the check and the stop is not lost either.
            worktree::remove(&self.repo_locks, &repo, &path, force, None).await?;
        }
        let removed_at = store.worktree_removed(h.id()).await?;
        let detail =
            serde_json::json!({"path": record.path, "branch": record.branch, "force": force});
        if let Err(e) = store
            .audit(Some(h.id()), user_id, "worktree_remove", detail)
            .await
        {
            tracing::warn!(
                session = h.id(),
                "auditing a worktree's removal failed: {e}"
            );
        }
        let removed = WorktreeRecord {
            removed_at: Some(removed_at),
            ..record
        };
        if let Ok(mut st) = self.state.lock() {
            if let Some(tracked) = st.sessions.get_mut(h.id()) {
                tracked.worktree = Some(removed.clone());
            }
        }
        Ok(removed)
    }
}
