//! The project's files for REST callers: a directory listing, a file with its version (sha256),
//! and a person's own edits: written atomically by `files::write`, recorded in the audit log,
//! published as a `file_change` live event and announced in the session's thread.

use std::path::PathBuf;

use serde::Serialize;

use super::error::ServiceError;
use super::{ChatService, SessionInfo};
use crate::chat::live::FileAction;
use crate::files::{self, NodeKind, VersionedFile, Written};
use crate::sessions::SessionHandle;

/// Most entries one listing holds.
const MAX_LISTING: usize = 1000;

/// One level of a project directory.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DirView {
    pub dir: String,
    pub entries: Vec<DirEntry>,
    /// Entries were left out (more than [`MAX_LISTING`]).
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DirEntry {
    pub name: String,
    pub path: String,
    /// `file` | `directory`.
    pub kind: &'static str,
    pub size: Option<u64>,
}

/// A person's edit of one file. Updates and deletes name the version (sha256) they were made
/// from, so an edit over someone else's (or Claude's) newer change is refused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FileEdit {
    Create { content: Vec<u8> },
    Update { content: Vec<u8>, expected: String },
    Delete { expected: String },
}

impl FileEdit {
    fn action(&self) -> FileAction {
        match self {
            FileEdit::Create { .. } => FileAction::Created,
            FileEdit::Update { .. } => FileAction::Updated,
            FileEdit::Delete { .. } => FileAction::Deleted,
        }
    }
}

/// What an edit did.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum Edited {
    Written(Written),
    Deleted {},
}

impl ChatService {
    pub(crate) async fn list_dir(
        &self,
        info: &SessionInfo,
        dir: &str,
    ) -> Result<DirView, ServiceError> {
        let root = PathBuf::from(&info.project_path);
        let listing = files::list(root, dir.to_owned(), 1, MAX_LISTING).await?;
        let entries = listing
            .tree
            .children
            .into_iter()
            .map(|n| DirEntry {
                name: n.name,
                path: n.path,
                kind: match n.kind {
                    NodeKind::File => "file",
                    NodeKind::Directory => "directory",
                },
                size: n.size,
            })
            .collect();
        Ok(DirView {
            dir: listing.tree.path,
            entries,
            truncated: listing.count_capped,
        })
    }

    pub(crate) async fn read_file(
        &self,
        info: &SessionInfo,
        path: &str,
    ) -> Result<VersionedFile, ServiceError> {
        let root = PathBuf::from(&info.project_path);
        Ok(files::read_versioned(root, path.to_owned()).await?)
    }

    /// Writes a person's edit, then tells everyone: the audit log, the live `file_change`
    /// event, and a line in the session's thread.
    pub(crate) async fn edit_file(
        &self,
        (handle, info): (&SessionHandle, &SessionInfo),
        user_id: &str,
        path: &str,
        edit: FileEdit,
    ) -> Result<Edited, ServiceError> {
        let root = PathBuf::from(&info.project_path);
        let action = edit.action();
        let (real_path, edited) = match edit {
            FileEdit::Create { content } => {
                let w = files::create(root, path.to_owned(), content).await?;
                (w.path.clone(), Edited::Written(w))
            }
            FileEdit::Update { content, expected } => {
                let w = files::update(root, path.to_owned(), content, expected).await?;
                (w.path.clone(), Edited::Written(w))
            }
            FileEdit::Delete { expected } => {
                let gone = files::delete(root, path.to_owned(), expected).await?;
                (gone, Edited::Deleted {})
            }
        };
        let detail = match &edited {
            Edited::Written(w) => {
                serde_json::json!({"path": real_path, "size": w.size, "sha256": w.sha256})
            }
            Edited::Deleted {} => serde_json::json!({"path": real_path}),
        };
        let what = action.as_str();
        // The file is written: what follows tells about it, and a failure there is logged,
        // never reported as a failed edit.
        if let Err(e) = self
            .engine
            .store()
            .audit(Some(handle.id()), user_id, &format!("file_{what}"), detail)
            .await
        {
            tracing::warn!(
                session = handle.id(),
                "recording a file edit in the audit log failed: {e}"
            );
        }
        self.live
            .file_change(handle.id(), &real_path, action, user_id);
        let name = self.username(user_id).await;
        let line = format!("@{name} {what} `{real_path}` (an edit of their own, not Claude's).");
        if let Err(e) = self.reply_in_thread(handle.id(), info, line).await {
            tracing::warn!(session = handle.id(), "announcing a file edit failed: {e}");
        }
        Ok(edited)
    }
}
