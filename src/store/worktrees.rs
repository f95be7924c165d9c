//! The git worktree of each session started with `--worktree` (table `session_worktrees`), so
//! that after a restart the session resumes in it and `stop --clean` knows what to remove.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{now_ms, Store, StoreError};

/// A session's worktree as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorktreeRecord {
    pub session_id: String,
    /// The checkout the worktree was made from.
    pub repository: String,
    /// The worktree's directory (the session's project path).
    pub path: String,
    pub branch: String,
    pub created_at: i64,
    /// When `stop --clean` removed it; `None` while it exists.
    pub removed_at: Option<i64>,
}

fn worktree_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WorktreeRecord> {
    Ok(WorktreeRecord {
        session_id: r.get(0)?,
        repository: r.get(1)?,
        path: r.get(2)?,
        branch: r.get(3)?,
        created_at: r.get(4)?,
        removed_at: r.get(5)?,
    })
}

const COLUMNS: &str =
    "SELECT session_id, repository, path, branch, created_at, removed_at FROM session_worktrees";

impl Store {
    pub async fn insert_worktree(&self, record: WorktreeRecord) -> Result<(), StoreError> {
        self.call_for(&record.session_id.clone(), move |c| {
            c.execute(
                "INSERT INTO session_worktrees
                   (session_id, repository, path, branch, created_at, removed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    record.session_id,
                    record.repository,
                    record.path,
                    record.branch,
                    record.created_at,
                    record.removed_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Every session's worktree, removed ones included.
    pub async fn worktrees(&self) -> Result<Vec<WorktreeRecord>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare(COLUMNS)?;
            let rows = stmt.query_map([], worktree_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    pub async fn worktree(&self, session_id: &str) -> Result<Option<WorktreeRecord>, StoreError> {
        let id = session_id.to_owned();
        self.call(move |c| {
            Ok(c.query_row(
                &format!("{COLUMNS} WHERE session_id = ?1"),
                params![id],
                worktree_row,
            )
            .optional()?)
        })
        .await
    }

    /// The worktree of `session_id` was removed now; answers when.
    pub async fn worktree_removed(&self, session_id: &str) -> Result<i64, StoreError> {
        let id = session_id.to_owned();
        let at = now_ms();
        self.call_for(&id.clone(), move |c| {
            c.execute(
                "UPDATE session_worktrees SET removed_at = ?2 WHERE session_id = ?1",
                params![id, at],
            )?;
            Ok(at)
        })
        .await
    }
}
