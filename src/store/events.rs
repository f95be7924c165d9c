//! The `session_events` table: every live event of a session as it was published (the chat
//! layer's `chat/live`), numbered per session 1, 2, 3, … with no gap, so a client that missed
//! some (a websocket reconnect) asks for those after the last number it saw. The store knows
//! an event only as a name, a time and a JSON object.

use rusqlite::{params, Connection};
use serde_json::Value;

use super::{Store, StoreError};

/// Events kept per session; older ones are dropped when the store opens (a client that is that
/// far behind reloads instead of replaying).
pub const KEEP_EVENTS_PER_SESSION: i64 = 20_000;

/// A live event before it is numbered.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSessionEvent {
    pub name: String,
    /// The event's own fields (a JSON object).
    pub payload: Value,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
}

/// A live event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSessionEvent {
    pub seq: i64,
    pub name: String,
    pub payload: Value,
    pub at: i64,
}

impl Store {
    /// Appends `events` to the session's events in one job, numbered after its last one;
    /// returns their numbers in order. Numbered inside the transaction, so two writers of one
    /// session cannot take the same number.
    pub async fn append_session_events(
        &self,
        session_id: &str,
        events: Vec<NewSessionEvent>,
    ) -> Result<Vec<i64>, StoreError> {
        let session_id = session_id.to_owned();
        self.call_for(&session_id.clone(), move |c| {
            let mut seq = last_seq(c, &session_id)?;
            let mut stmt = c.prepare_cached(
                "INSERT INTO session_events (session_id, seq, name, payload, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut seqs = Vec::with_capacity(events.len());
            for event in events {
                seq += 1;
                stmt.execute(params![
                    session_id,
                    seq,
                    event.name,
                    event.payload.to_string(),
                    event.at
                ])?;
                seqs.push(seq);
            }
            Ok(seqs)
        })
        .await
    }

    /// At most `limit` of the session's events after `after`, in order.
    pub async fn session_events_after(
        &self,
        session_id: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredSessionEvent>, StoreError> {
        let session_id = session_id.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, name, payload, at FROM session_events
                 WHERE session_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![session_id, after, limit], |r| {
                Ok(StoredSessionEvent {
                    seq: r.get(0)?,
                    name: r.get(1)?,
                    payload: r.get(2)?,
                    at: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// The number of the session's last event (0 when it has none).
    pub async fn last_session_event_seq(&self, session_id: &str) -> Result<i64, StoreError> {
        let session_id = session_id.to_owned();
        self.call(move |c| last_seq(c, &session_id)).await
    }

    /// Drops all but the newest `keep` events of every session; returns how many went.
    pub async fn prune_session_events(&self, keep: i64) -> Result<usize, StoreError> {
        self.call(move |c| Ok(prune(c, keep)?)).await
    }
}

fn last_seq(c: &Connection, session_id: &str) -> Result<i64, StoreError> {
    Ok(
        c.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM session_events WHERE session_id = ?1")?
            .query_row([session_id], |r| r.get(0))?,
    )
}

/// Numbers are consecutive, so the newest `keep` of a session are those above its last minus
/// `keep`: one range delete on the primary key per session that has more.
pub(super) fn prune(c: &Connection, keep: i64) -> rusqlite::Result<usize> {
    let over: Vec<(String, i64)> = c
        .prepare(
            "SELECT session_id, MAX(seq) FROM session_events GROUP BY session_id
             HAVING COUNT(*) > ?1",
        )?
        .query_map([keep], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut deleted = 0;
    for (session_id, last) in over {
        deleted += c.execute(
            "DELETE FROM session_events WHERE session_id = ?1 AND seq <= ?2",
            params![session_id, last - keep],
        )?;
    }
    Ok(deleted)
}
