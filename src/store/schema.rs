//! Versioned migrations, in code. `schema_version` holds one row: the version applied last.
//! Each migration runs in its own transaction together with the version bump, so a crash
//! between migrations leaves a consistent, resumable database.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::StoreError;

/// (version, SQL). Append only: a released migration is never edited.
pub const MIGRATIONS: &[(u32, &str)] = &[
    (
        1,
        "CREATE TABLE sessions (
        id              TEXT PRIMARY KEY,
        channel_id      TEXT NOT NULL,
        owner_id        TEXT NOT NULL,
        project_path    TEXT NOT NULL,
        cli_session_id  TEXT,
        model           TEXT,
        permission_mode TEXT,
        status          TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    );
    CREATE INDEX sessions_channel ON sessions(channel_id);
    CREATE TABLE messages (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        id         TEXT NOT NULL UNIQUE,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        type       TEXT NOT NULL CHECK (type IN ('user', 'assistant', 'system')),
        kind       TEXT NOT NULL,
        content    TEXT NOT NULL,
        event      TEXT NOT NULL,
        timestamp  INTEGER NOT NULL
    );
    CREATE INDEX messages_session ON messages(session_id, seq);
    CREATE TABLE approvals (
        request_id   TEXT PRIMARY KEY,
        session_id   TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        tool         TEXT NOT NULL,
        input        TEXT NOT NULL,
        decided_by   TEXT,
        decision     TEXT,
        reason       TEXT,
        requested_at INTEGER NOT NULL,
        decided_at   INTEGER
    );
    CREATE INDEX approvals_session ON approvals(session_id);
    CREATE TABLE audit_log (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT REFERENCES sessions(id) ON DELETE SET NULL,
        actor      TEXT NOT NULL,
        action     TEXT NOT NULL,
        detail     TEXT NOT NULL,
        at         INTEGER NOT NULL
    );",
    ),
    (
        2,
        // The chat layer: the Mattermost post each session's thread hangs under.
        "CREATE TABLE chat_threads (
            session_id   TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
            root_post_id TEXT NOT NULL
        );",
    ),
    (
        3,
        // The chat layer: the card post of each approval, and whether it still shows buttons,
        // so a restart can close the cards nobody can answer any more.
        "ALTER TABLE approvals ADD COLUMN card_post_id TEXT;
         ALTER TABLE approvals ADD COLUMN card_open INTEGER NOT NULL DEFAULT 0;",
    ),
    (
        4,
        // The process serving each session (the CLI's supervisor, or the CLI), so that the
        // next run of the plugin can kill what a crashed one left running. pid + start time +
        // boot name one process: a pid reused since is left alone.
        "CREATE TABLE session_processes (
            session_id  TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
            pid         INTEGER NOT NULL,
            start_ticks INTEGER NOT NULL,
            boot_id     TEXT NOT NULL
        );",
    ),
    (
        5,
        // The chat layer's outbox: every post the bot owes Mattermost, as it should read now,
        // until the server confirmed it (see chat/outbox.rs). One row per post: a newer
        // content replaces an older one not yet delivered.
        "CREATE TABLE outbox (
            seq        INTEGER PRIMARY KEY AUTOINCREMENT,
            key        TEXT NOT NULL UNIQUE,
            kind       TEXT NOT NULL CHECK (kind IN ('root', 'turn', 'card', 'reply')),
            session_id TEXT NOT NULL,
            root_key   TEXT,
            request_id TEXT,
            turn_seq   INTEGER,
            part       INTEGER NOT NULL DEFAULT 0,
            post       TEXT,
            version    INTEGER NOT NULL DEFAULT 1,
            delivered  INTEGER NOT NULL DEFAULT 0,
            final      INTEGER NOT NULL DEFAULT 0,
            post_id    TEXT,
            tried      INTEGER NOT NULL DEFAULT 0,
            updated_at INTEGER NOT NULL
        );
        CREATE INDEX outbox_pending ON outbox(seq) WHERE delivered < version;
        CREATE INDEX outbox_open ON outbox(kind) WHERE final = 0;
        CREATE INDEX outbox_request ON outbox(request_id) WHERE request_id IS NOT NULL;",
    ),
    (
        6,
        // The chat layer's live events (see chat/live): each session's events as published to
        // browsers, numbered 1, 2, 3, … per session, so a client that missed some replays
        // them by number. `payload` is the event's own fields as a JSON object.
        "CREATE TABLE session_events (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            seq        INTEGER NOT NULL,
            name       TEXT NOT NULL,
            payload    TEXT NOT NULL,
            at         INTEGER NOT NULL,
            PRIMARY KEY (session_id, seq)
        ) WITHOUT ROWID;",
    ),
    (
        7,
        // What an allow sent beside its decision (the answers of a question as the updated
        // input, the mode a plan started in), so a card closed after a restart says what the
        // card closed at once would have said.
        "ALTER TABLE approvals ADD COLUMN updated_input TEXT;
         ALTER TABLE approvals ADD COLUMN mode TEXT;",
    ),
    (
        8,
        // The git worktree a session works in (`/claude start … --worktree`): the session's
        // `project_path` is the worktree; `repository` is the checkout it was made from, the
        // path AllowedProjectRoots must keep allowing. `removed_at` is set by `stop --clean`.
        "CREATE TABLE session_worktrees (
            session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
            repository TEXT NOT NULL,
            path       TEXT NOT NULL,
            branch     TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            removed_at INTEGER
        );",
    ),
    (
        9,
        // High availability (see src/cluster): the fence each session was last claimed with by
        // the node owning it, so a node whose lease was taken writes nothing more; and the node
        // that recorded each process, so a node kills only what it started itself.
        "CREATE TABLE session_fences (
            session_id TEXT PRIMARY KEY,
            node       TEXT NOT NULL,
            fence      INTEGER NOT NULL
        );
        ALTER TABLE session_processes ADD COLUMN node TEXT;",
    ),
];

/// The version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

pub(super) fn current_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    Ok(conn
        .query_row("SELECT max(version) FROM schema_version", [], |r| {
            r.get::<_, Option<u32>>(0)
        })
        .optional()?
        .flatten()
        .unwrap_or(0))
}

pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found = current_version(conn).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    // An older plugin must not write into a schema it does not understand.
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        let apply = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.execute("DELETE FROM schema_version", [])?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [version],
            )?;
            tx.commit()
        };
        apply(conn).map_err(|source| StoreError::Migration {
            version: *version,
            source,
        })?;
    }
    Ok(())
}
