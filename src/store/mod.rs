//! SQLite persistence for sessions, their transcripts and live events, approvals and the
//! audit log.
//!
//! One connection lives on a dedicated OS thread; async callers send it closures over a channel
//! and await the answer, so a slow disk never stalls a tokio worker. The thread drains whatever
//! is queued and runs it in ONE transaction, then answers every caller only after COMMIT: a reply
//! means the write is durable (WAL, `synchronous=NORMAL`: survives a process crash; an OS crash
//! may lose the last commits, which is acceptable for a chat transcript). Batching is what keeps
//! 50 busy sessions cheap: one commit per batch instead of one per event.

mod events;
mod history;
mod outbox;
mod processes;
mod schema;
mod worktrees;

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

pub use events::{NewSessionEvent, StoredSessionEvent, KEEP_EVENTS_PER_SESSION};
pub use history::HistoryQuery;
pub use outbox::{OpenTurnPost, OwedKind, OwedPost, PendingPost};
pub use schema::{MIGRATIONS, SCHEMA_VERSION};
pub use worktrees::WorktreeRecord;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("opening database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database {path} has schema version {found}, newer than this plugin's {supported}")]
    SchemaTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("migration to schema version {version} failed: {source}")]
    Migration {
        version: u32,
        #[source]
        source: rusqlite::Error,
    },
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// COMMIT of the batch that held this write failed; the write did not happen.
    #[error("committing a batch failed: {0}")]
    Commit(String),
    #[error("stored value {value:?} is not a valid {what}")]
    BadValue { what: &'static str, value: String },
    /// The database thread is gone (it panicked or the store was closed).
    #[error("the database thread has stopped")]
    Closed,
}

/// Milliseconds since the Unix epoch: what every `*_at`/`timestamp` column holds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A session as stored. `status` is the actor's state name (see `sessions::state`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: String,
    pub channel_id: String,
    pub owner_id: String,
    pub project_path: String,
    /// The CLI's conversation id, set once the CLI confirmed it (its first `system/init`), so
    /// that `--resume` is only ever tried for a conversation that exists on disk.
    pub cli_session_id: Option<String>,
    pub model: Option<String>,
    pub permission_mode: Option<String>,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The seed's `Message {id, session_id, type, content, timestamp}`, plus `kind` (which event it
/// records: prompt, text_delta, assistant_text, tool_use, tool_result, result, …) and the
/// whole event as JSON, so the transcript can be replayed to a client exactly as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Insertion order within the database; 0 before insertion.
    pub seq: i64,
    pub id: String,
    pub session_id: String,
    /// `user` | `assistant` | `system`.
    pub message_type: String,
    pub kind: String,
    pub content: String,
    pub event: serde_json::Value,
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub request_id: String,
    pub session_id: String,
    pub tool: String,
    pub input: serde_json::Value,
    pub decided_by: Option<String>,
    /// `allow` | `allow_with_input` | `allow_for_session` | `deny` | `deny_and_interrupt` |
    /// `expired` | `cancelled`; `None` while pending.
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub requested_at: i64,
    pub decided_at: Option<i64>,
    /// What an allow sent beside its decision.
    pub allowed: Allowed,
}

/// What an allow sent beside its decision: the input that replaced the model's
/// (`allow_with_input`: an edit, or a question's answers), the mode a plan started in
/// (`allow_exit_plan`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Allowed {
    pub updated_input: Option<serde_json::Value>,
    pub mode: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub session_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub detail: serde_json::Value,
    pub at: i64,
}

/// A `messages` row selected as `seq, id, session_id, type, kind, content, event, timestamp`.
fn message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageRecord> {
    Ok(MessageRecord {
        seq: r.get(0)?,
        id: r.get(1)?,
        session_id: r.get(2)?,
        message_type: r.get(3)?,
        kind: r.get(4)?,
        content: r.get(5)?,
        event: r.get(6)?,
        timestamp: r.get(7)?,
    })
}

type Reply = Box<dyn FnOnce(Option<&str>) + Send>;
/// A job runs on the connection (`None`: it may not run, its savepoint could not be opened) and
/// says whether it succeeded (a failed one is rolled back to its savepoint) and how to answer
/// its caller once the batch is committed.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Reply) + Send>;

/// Handle to the database thread; cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: Jobs,
    path: PathBuf,
}

/// Where jobs run.
#[derive(Clone)]
enum Jobs {
    /// On the database thread.
    Thread(std_mpsc::Sender<Job>),
    /// On the caller's thread, at once (tests on tokio's paused clock: a wait on another
    /// thread would let the clock jump to the next timer meanwhile).
    #[cfg(test)]
    Inline(std::sync::Arc<std::sync::Mutex<Connection>>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// At most this many queued jobs share one transaction, so one caller's wait stays bounded.
const MAX_BATCH: usize = 256;

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it, on the store's own
    /// thread.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let (jobs, job_rx) = std_mpsc::channel::<Job>();
        let (opened_tx, opened_rx) = oneshot::channel();
        let db_path = path.to_path_buf();
        std::thread::Builder::new()
            .name("sqlite-store".into())
            .spawn(move || match open_connection(&db_path) {
                Ok(conn) => {
                    let alive = std::sync::Arc::new(());
                    spawn_checkpointer(db_path.clone(), std::sync::Arc::downgrade(&alive));
                    let _ = opened_tx.send(Ok(()));
                    run_jobs(conn, job_rx);
                    drop(alive);
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                }
            })
            .map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        opened_rx.await.map_err(|_| StoreError::Closed)??;
        Ok(Self {
            jobs: Jobs::Thread(jobs),
            path: path.to_path_buf(),
        })
    }

    /// The store at `path` with jobs run on the caller's thread, each its own batch.
    #[cfg(test)]
    pub(crate) fn open_inline(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            jobs: Jobs::Inline(std::sync::Arc::new(std::sync::Mutex::new(open_connection(
                path,
            )?))),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the database thread; resolves after the batch holding it committed.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let outcome = match conn {
                Some(conn) => f(conn),
                None => Err(StoreError::Closed),
            };
            let ok = outcome.is_ok();
            let reply: Reply = Box::new(move |commit_error: Option<&str>| {
                let outcome = match commit_error {
                    Some(e) => Err(StoreError::Commit(e.to_owned())),
                    None => outcome,
                };
                let _ = tx.send(outcome);
            });
            (ok, reply)
        });
        match &self.jobs {
            Jobs::Thread(jobs) => jobs.send(job).map_err(|_| StoreError::Closed)?,
            #[cfg(test)]
            Jobs::Inline(conn) => {
                let conn = conn.lock().map_err(|_| StoreError::Closed)?;
                run_batch(&conn, vec![job]);
            }
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    pub async fn insert_session(&self, record: SessionRecord) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO sessions (id, channel_id, owner_id, project_path, cli_session_id, model,
                   permission_mode, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    record.id,
                    record.channel_id,
                    record.owner_id,
                    record.project_path,
                    record.cli_session_id,
                    record.model,
                    record.permission_mode,
                    record.status,
                    record.created_at,
                    record.updated_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn set_session_status(&self, id: &str, status: &str) -> Result<(), StoreError> {
        let (id, status) = (id.to_owned(), status.to_owned());
        self.call(move |c| {
            c.execute(
                "UPDATE sessions SET status = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, status, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// `None` forgets the conversation (it could not be resumed): the next start is a new one.
    pub async fn set_cli_session_id(
        &self,
        id: &str,
        cli_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let (id, cli_id) = (id.to_owned(), cli_id.map(str::to_owned));
        self.call(move |c| {
            c.execute(
                "UPDATE sessions SET cli_session_id = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, cli_id, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// The model and permission mode the next spawn uses (`None` leaves a column unchanged).
    pub async fn set_session_settings(
        &self,
        id: &str,
        model: Option<&str>,
        permission_mode: Option<&str>,
    ) -> Result<(), StoreError> {
        let (id, model, mode) = (
            id.to_owned(),
            model.map(str::to_owned),
            permission_mode.map(str::to_owned),
        );
        self.call(move |c| {
            c.execute(
                "UPDATE sessions SET model = COALESCE(?2, model),
                   permission_mode = COALESCE(?3, permission_mode), updated_at = ?4 WHERE id = ?1",
                params![id, model, mode, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let id = id.to_owned();
        self.call(move |c| {
            Ok(c.query_row(
                &format!("{SESSION_COLUMNS} WHERE id = ?1"),
                [id],
                session_row,
            )
            .optional()?)
        })
        .await
    }

    pub async fn sessions(&self) -> Result<Vec<SessionRecord>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare(&format!("{SESSION_COLUMNS} ORDER BY created_at, id"))?;
            let rows = stmt.query_map([], session_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// The chat thread root of a session (the post `/claude start` created).
    pub async fn set_root_post(&self, session_id: &str, post_id: &str) -> Result<(), StoreError> {
        let (session_id, post_id) = (session_id.to_owned(), post_id.to_owned());
        self.call(move |c| {
            c.execute(
                "INSERT INTO chat_threads (session_id, root_post_id) VALUES (?1, ?2)
                 ON CONFLICT(session_id) DO UPDATE SET root_post_id = excluded.root_post_id",
                params![session_id, post_id],
            )?;
            Ok(())
        })
        .await
    }

    /// `(session_id, root_post_id)` of every session that has a thread.
    pub async fn root_posts(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare("SELECT session_id, root_post_id FROM chat_threads")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Appends one transcript row; returns its `seq`.
    pub async fn append_message(&self, record: MessageRecord) -> Result<i64, StoreError> {
        self.call(move |c| {
            c.prepare_cached(
                "INSERT INTO messages (id, session_id, type, kind, content, event, timestamp)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                record.id,
                record.session_id,
                record.message_type,
                record.kind,
                record.content,
                record.event.to_string(),
                record.timestamp
            ])?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    /// Appends several rows in one job (so in one transaction); returns their `seq`s in order.
    pub async fn append_messages(
        &self,
        records: Vec<MessageRecord>,
    ) -> Result<Vec<i64>, StoreError> {
        self.call(move |c| {
            let mut stmt = c.prepare_cached(
                "INSERT INTO messages (id, session_id, type, kind, content, event, timestamp)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut seqs = Vec::with_capacity(records.len());
            for record in records {
                stmt.execute(params![
                    record.id,
                    record.session_id,
                    record.message_type,
                    record.kind,
                    record.content,
                    record.event.to_string(),
                    record.timestamp
                ])?;
                seqs.push(c.last_insert_rowid());
            }
            Ok(seqs)
        })
        .await
    }

    pub async fn messages(&self, session_id: &str) -> Result<Vec<MessageRecord>, StoreError> {
        self.messages_after(session_id, i64::MIN, usize::MAX).await
    }

    /// The `seq` of the session's last transcript row (0 when it has none).
    pub async fn last_message_seq(&self, session_id: &str) -> Result<i64, StoreError> {
        let session_id = session_id.to_owned();
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id = ?1",
                [session_id],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// At most `limit` rows of the session's transcript after `seq`, in order.
    pub async fn messages_after(
        &self,
        session_id: &str,
        seq: i64,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let session_id = session_id.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, id, session_id, type, kind, content, event, timestamp
                 FROM messages WHERE session_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![session_id, seq, limit], message_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    pub async fn insert_approval(&self, record: ApprovalRecord) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO approvals (request_id, session_id, tool, input, decided_by, decision,
                   reason, requested_at, decided_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    record.request_id,
                    record.session_id,
                    record.tool,
                    record.input.to_string(),
                    record.decided_by,
                    record.decision,
                    record.reason,
                    record.requested_at,
                    record.decided_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Records the outcome of a pending approval. Only a pending row changes: a decision is
    /// final, and a second click must not overwrite who decided.
    pub async fn decide_approval(
        &self,
        request_id: &str,
        decided_by: Option<&str>,
        decision: &str,
        reason: Option<&str>,
        allowed: Allowed,
    ) -> Result<bool, StoreError> {
        let args = (
            request_id.to_owned(),
            decided_by.map(str::to_owned),
            decision.to_owned(),
            reason.map(str::to_owned),
        );
        self.call(move |c| {
            let (request_id, decided_by, decision, reason) = args;
            let n = c.execute(
                "UPDATE approvals SET decided_by = ?2, decision = ?3, reason = ?4, decided_at = ?5,
                   updated_input = ?6, mode = ?7
                 WHERE request_id = ?1 AND decision IS NULL",
                params![
                    request_id,
                    decided_by,
                    decision,
                    reason,
                    now_ms(),
                    allowed.updated_input,
                    allowed.mode
                ],
            )?;
            Ok(n == 1)
        })
        .await
    }

    /// Marks the still-pending approvals of `session_ids` `cancelled` with `reason` and returns
    /// them (as they now are). For sessions without a CLI: nobody can answer their requests.
    pub async fn cancel_undecided_approvals(
        &self,
        session_ids: &[String],
        reason: &str,
    ) -> Result<Vec<ApprovalRecord>, StoreError> {
        let args = (session_ids.to_vec(), reason.to_owned());
        self.call(move |c| {
            let (session_ids, reason) = args;
            let mut stmt = c.prepare(
                "UPDATE approvals SET decision = 'cancelled', reason = ?2, decided_at = ?3
                 WHERE decision IS NULL AND session_id = ?1
                 RETURNING request_id, session_id, tool, input, decided_by, decision, reason,
                   requested_at, decided_at, updated_input, mode",
            )?;
            let mut out = Vec::new();
            for id in session_ids {
                let rows = stmt.query_map(params![id, reason, now_ms()], approval_row)?;
                for row in rows {
                    out.push(row?);
                }
            }
            Ok(out)
        })
        .await
    }

    /// The approval's card is owed (through the outbox, which knows its post) with buttons.
    pub async fn set_approval_card(&self, request_id: &str) -> Result<(), StoreError> {
        let request_id = request_id.to_owned();
        self.call(move |c| {
            c.execute(
                "UPDATE approvals SET card_open = 1 WHERE request_id = ?1",
                [request_id],
            )?;
            Ok(())
        })
        .await
    }

    /// The approval's card no longer shows buttons.
    pub async fn close_approval_card(&self, request_id: &str) -> Result<(), StoreError> {
        let request_id = request_id.to_owned();
        self.call(move |c| {
            c.execute(
                "UPDATE approvals SET card_open = 0 WHERE request_id = ?1",
                [request_id],
            )?;
            Ok(())
        })
        .await
    }

    /// Cards still showing buttons although their request is over (the plugin stopped before
    /// it could close them), with the request as stored, and the card's post id when it was
    /// posted before the outbox (which knows the others).
    pub async fn open_cards_of_decided_approvals(
        &self,
    ) -> Result<Vec<(Option<String>, ApprovalRecord)>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare(
                "SELECT request_id, session_id, tool, input, decided_by, decision, reason,
                   requested_at, decided_at, updated_input, mode, card_post_id
                 FROM approvals
                 WHERE card_open = 1 AND decision IS NOT NULL
                 ORDER BY requested_at, request_id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(11)?, approval_row(r)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Whether approval `request_id` is stored as decided (a request the store does not know
    /// is not).
    pub async fn approval_decided(&self, request_id: &str) -> Result<bool, StoreError> {
        let request_id = request_id.to_owned();
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT EXISTS (SELECT 1 FROM approvals
                   WHERE request_id = ?1 AND decision IS NOT NULL)",
                [request_id],
                |r| r.get(0),
            )?)
        })
        .await
    }

    pub async fn approvals(&self, session_id: &str) -> Result<Vec<ApprovalRecord>, StoreError> {
        let session_id = session_id.to_owned();
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT request_id, session_id, tool, input, decided_by, decision, reason,
                   requested_at, decided_at, updated_input, mode
                 FROM approvals WHERE session_id = ?1 ORDER BY requested_at, request_id",
            )?;
            let rows = stmt.query_map([session_id], approval_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    pub async fn audit(
        &self,
        session_id: Option<&str>,
        actor: &str,
        action: &str,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        let args = (
            session_id.map(str::to_owned),
            actor.to_owned(),
            action.to_owned(),
            detail.to_string(),
        );
        self.call(move |c| {
            let (session_id, actor, action, detail) = args;
            c.execute(
                "INSERT INTO audit_log (session_id, actor, action, detail, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![session_id, actor, action, detail, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn audit_entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare(
                "SELECT id, session_id, actor, action, detail, at FROM audit_log ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    session_id: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    detail: r.get(4)?,
                    at: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
}

const SESSION_COLUMNS: &str =
    "SELECT id, channel_id, owner_id, project_path, cli_session_id, model,
  permission_mode, status, created_at, updated_at FROM sessions";

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: r.get(0)?,
        channel_id: r.get(1)?,
        owner_id: r.get(2)?,
        project_path: r.get(3)?,
        cli_session_id: r.get(4)?,
        model: r.get(5)?,
        permission_mode: r.get(6)?,
        status: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut conn = Connection::open(path).map_err(open_err)?;
    // WAL: readers never block the writer, and a crash mid-write leaves the last commit intact.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(open_err)?;
    // Another process (an admin's sqlite3 shell) may hold a lock briefly.
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(open_err)?;
    schema::migrate(&mut conn, path)?;
    // Live events are only for replay to clients that were briefly away: a long session's
    // oldest ones go at each start, so the table does not grow without bound.
    match events::prune(&conn, KEEP_EVENTS_PER_SESSION) {
        Ok(0) => {}
        Ok(n) => tracing::info!("dropped {n} old live events"),
        Err(e) => tracing::warn!("dropping old live events failed: {e}"),
    }
    // Checkpoints (copying the WAL into the database, with an fsync) would otherwise run inside
    // whichever commit crosses the threshold, stalling every session's events for milliseconds.
    // They run on their own thread instead (see `spawn_checkpointer`).
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(open_err)?;
    Ok(conn)
}

/// How often the background thread moves the WAL into the main database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs PASSIVE checkpoints (they never block the writer) on a second connection until the
/// store is gone (`alive` is dropped with the last job sender's thread).
fn spawn_checkpointer(path: PathBuf, alive: std::sync::Weak<()>) {
    let spawned = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            let Ok(conn) = Connection::open(&path) else {
                return;
            };
            while alive.upgrade().is_some() {
                std::thread::sleep(CHECKPOINT_EVERY);
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!("WAL checkpoint failed: {e}");
                }
            }
            // A last full checkpoint keeps the WAL from outliving the plugin by much.
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        });
    if let Err(e) = spawned {
        tracing::warn!("no checkpoint thread ({e}); the WAL grows until the next open");
    }
}

fn run_jobs(conn: Connection, jobs: std_mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&conn, batch);
    }
}

/// Runs `batch` in one transaction and answers each job after COMMIT.
fn run_batch(conn: &Connection, batch: Vec<Job>) {
    // Each job runs inside its own savepoint: a job that fails half-way is rolled back
    // whole, and one bad job does not cost the others in the batch their writes.
    // If BEGIN itself fails the jobs still run, each under its savepoint (which then acts
    // as a transaction of its own).
    let in_transaction = conn.execute_batch("BEGIN IMMEDIATE").is_ok();
    let replies: Vec<Reply> = batch.into_iter().map(|job| run_whole(conn, job)).collect();
    let error = if in_transaction {
        conn.execute_batch("COMMIT").err().map(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            e.to_string()
        })
    } else {
        None
    };
    for reply in replies {
        reply(error.as_deref());
    }
}

/// Runs `job` so that it commits whole or not at all: a savepoint around it, rolled back when
/// the job fails. A savepoint that cannot be opened leaves the job unrun and failed.
fn run_whole(conn: &Connection, job: Job) -> Reply {
    if let Err(e) = conn.execute_batch("SAVEPOINT job") {
        let message = format!("opening a savepoint: {e}");
        let (_, reply) = job(None);
        return Box::new(move |_| reply(Some(&message)));
    }
    let (ok, reply) = job(Some(conn));
    let end = if ok {
        conn.execute_batch("RELEASE job")
    } else {
        conn.execute_batch("ROLLBACK TO job; RELEASE job")
    };
    match end {
        Ok(()) => reply,
        Err(e) => {
            let message = format!("closing a savepoint: {e}");
            Box::new(move |_| reply(Some(&message)))
        }
    }
}

#[cfg(test)]
mod tests;

/// An `approvals` row selected as `request_id, session_id, tool, input, decided_by, decision,
/// reason, requested_at, decided_at, updated_input, mode`.
fn approval_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRecord> {
    Ok(ApprovalRecord {
        request_id: r.get(0)?,
        session_id: r.get(1)?,
        tool: r.get(2)?,
        input: r.get(3)?,
        decided_by: r.get(4)?,
        decision: r.get(5)?,
        reason: r.get(6)?,
        requested_at: r.get(7)?,
        decided_at: r.get(8)?,
        allowed: Allowed {
            updated_input: r.get(9)?,
            mode: r.get(10)?,
        },
    })
}
