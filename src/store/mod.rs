//! SQLite persistence for sessions, their transcripts and live events, approvals and the
//! audit log.
//!
//! One connection lives on a dedicated OS thread; async callers send it closures over a channel
//! and await the answer, so a slow disk never stalls a tokio worker. The thread drains whatever
//! is queued and runs it in ONE transaction, then answers every caller only after COMMIT: a reply
//! means the write is durable (WAL, `synchronous=NORMAL`: survives a process crash; an OS crash
//! may lose the last commits, which is acceptable for a chat transcript). Batching is what keeps
//! 50 busy sessions cheap: one commit per batch instead of one per event.

mod approvals;
mod batch;
mod events;
mod fence;
mod history;
mod outbox;
mod processes;
mod schema;
mod worktrees;

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

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
    /// Another node took the session over (its lease, with a greater fence): this node no
    /// longer writes it.
    #[error(
        "session {session} was taken over by another node of the cluster; this node no longer \
         writes it"
    )]
    Fenced { session: String },
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

/// Handle to the database thread; cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: Jobs,
    path: PathBuf,
    fencing: Arc<fence::Fencing>,
}

/// Where jobs run.
#[derive(Clone)]
enum Jobs {
    /// On the database thread.
    Thread(std_mpsc::Sender<batch::Job>),
    /// On the caller's thread, at once (tests on tokio's paused clock: a wait on another
    /// thread would let the clock jump to the next timer meanwhile).
    #[cfg(test)]
    Inline(Arc<std::sync::Mutex<Connection>>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Who shares the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// The processes of one host (a single server): WAL, whose index is shared memory.
    OneHost,
    /// The nodes of a cluster, which may be several hosts on a network file system: WAL's
    /// shared memory does not cross hosts, so the rollback journal, which needs only the file
    /// system's locks (and `synchronous=FULL`, which that journal needs to survive a crash).
    Hosts,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it, on the store's own
    /// thread.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_shared(path, Sharing::OneHost).await
    }

    /// [`Self::open`] for a database shared as `sharing` says.
    pub async fn open_shared(path: &Path, sharing: Sharing) -> Result<Self, StoreError> {
        Self::open_waiting(path, sharing, WAL_RELEASE_WAIT).await
    }

    /// [`Self::open_shared`], waiting at most `wal_wait` for other processes to let go of a
    /// database they hold in WAL (see [`WAL_RELEASE_WAIT`]).
    pub(crate) async fn open_waiting(
        path: &Path,
        sharing: Sharing,
        wal_wait: std::time::Duration,
    ) -> Result<Self, StoreError> {
        let (jobs, job_rx) = std_mpsc::channel::<batch::Job>();
        let fencing = Arc::new(fence::Fencing::default());
        let thread_fencing = fencing.clone();
        let (opened_tx, opened_rx) = oneshot::channel();
        let db_path = path.to_path_buf();
        std::thread::Builder::new()
            .name("sqlite-store".into())
            .spawn(move || match open_connection(&db_path, sharing, wal_wait) {
                Ok(conn) => {
                    let alive = Arc::new(());
                    if sharing == Sharing::OneHost {
                        spawn_checkpointer(db_path.clone(), Arc::downgrade(&alive));
                    }
                    let _ = opened_tx.send(Ok(()));
                    batch::run_jobs(conn, thread_fencing, job_rx);
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
            fencing,
        })
    }

    /// The store at `path` with jobs run on the caller's thread, each its own batch.
    #[cfg(test)]
    pub(crate) fn open_inline(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            jobs: Jobs::Inline(Arc::new(std::sync::Mutex::new(open_connection(
                path,
                Sharing::OneHost,
                std::time::Duration::ZERO,
            )?))),
            path: path.to_path_buf(),
            fencing: Arc::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn insert_session(&self, record: SessionRecord) -> Result<(), StoreError> {
        self.call_for(&record.id.clone(), move |c| {
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
        self.call_for(&id.clone(), move |c| {
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
        self.call_for(&id.clone(), move |c| {
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
        self.call_for(&id.clone(), move |c| {
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

    /// The id of the newest session of `channel_id`: the one its commands address (in a
    /// cluster, a node that does not run it asks this to find where a command goes).
    pub async fn newest_session_of_channel(
        &self,
        channel_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let channel_id = channel_id.to_owned();
        self.call(move |c| {
            Ok(c.prepare_cached(
                "SELECT id FROM sessions WHERE channel_id = ?1
                 ORDER BY created_at DESC, id DESC LIMIT 1",
            )?
            .query_row([channel_id], |r| r.get(0))
            .optional()?)
        })
        .await
    }

    /// The chat thread root of a session (the post `/claude start` created).
    pub async fn set_root_post(&self, session_id: &str, post_id: &str) -> Result<(), StoreError> {
        let (session_id, post_id) = (session_id.to_owned(), post_id.to_owned());
        self.call_for(&session_id.clone(), move |c| {
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
        self.call_for(&record.session_id.clone(), move |c| {
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
        let mut sessions: Vec<String> = records.iter().map(|r| r.session_id.clone()).collect();
        sessions.dedup();
        self.call_as(Some(fence::Owner::Sessions(sessions)), move |c| {
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
        let owner = session_id.map(|id| fence::Owner::Session(id.to_owned()));
        self.call_as(owner, move |c| {
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

fn open_connection(
    path: &Path,
    sharing: Sharing,
    wal_wait: std::time::Duration,
) -> Result<Connection, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    // WAL: readers never block the writer, and a crash mid-write leaves the last commit intact.
    let (journal, synchronous) = match sharing {
        Sharing::OneHost => ("WAL", "NORMAL"),
        Sharing::Hosts => ("DELETE", "FULL"),
    };
    let waited_until = std::time::Instant::now() + wal_wait;
    let mut conn = loop {
        let conn = Connection::open(path).map_err(open_err)?;
        // Another process (an admin's sqlite3 shell) may hold a lock briefly.
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        match conn.pragma_update(None, "journal_mode", journal) {
            Ok(()) => break conn,
            // Leaving WAL needs the database to itself: another process still has it open in
            // WAL (a node on an older plugin, whose plugin the upload of this one is stopping
            // now, or another node opening it at the same moment). It is waited for, with this
            // connection closed (an open WAL connection alone keeps the others from switching)
            // and a random pause (so that nodes trying together do not keep meeting). Past the
            // wait, refusing would leave this node without the plugin: it goes on in WAL and
            // says so, since WAL does not work across hosts.
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                if std::time::Instant::now() >= waited_until {
                    tracing::error!(
                        path = %path.display(),
                        "the database is held open in WAL by another process (a node of the cluster on an older plugin?); it stays in WAL, which does not work across hosts, until it is opened again with every node upgraded"
                    );
                    break conn;
                }
                drop(conn);
                let jitter = (uuid::Uuid::new_v4().as_u128() % WAL_RETRY.as_millis()) as u64;
                std::thread::sleep(WAL_RETRY + std::time::Duration::from_millis(jitter));
            }
            Err(e) => return Err(open_err(e)),
        }
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
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

/// How long a cluster node opening the database waits for other processes to let go of it
/// in WAL: the nodes of a cluster restart their plugin within seconds of each other when a new
/// version is uploaded.
const WAL_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long apart, plus up to as much again at random, the switch out of WAL is tried again.
const WAL_RETRY: std::time::Duration = std::time::Duration::from_millis(250);

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

#[cfg(test)]
mod tests;
