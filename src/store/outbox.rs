//! The `outbox` table: every post the bot owes Mattermost, as it should read now, until the
//! server confirmed that version (the chat layer's `chat/outbox.rs` delivers them). The store
//! knows posts only as JSON.

use rusqlite::{params, OptionalExtension};
use serde_json::Value;

use super::fence::Owner;
use super::{now_ms, Store, StoreError};

/// What an owed post is to the chat layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwedKind {
    /// A session's thread root.
    Root,
    /// One part of a turn's reply.
    Turn,
    /// An approval card.
    Card,
    /// A small reply (a tool output's file).
    Reply,
}

impl OwedKind {
    fn as_str(self) -> &'static str {
        match self {
            OwedKind::Root => "root",
            OwedKind::Turn => "turn",
            OwedKind::Card => "card",
            OwedKind::Reply => "reply",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "root" => OwedKind::Root,
            "turn" => OwedKind::Turn,
            "card" => OwedKind::Card,
            "reply" => OwedKind::Reply,
            other => {
                return Err(StoreError::BadValue {
                    what: "outbox kind",
                    value: other.to_owned(),
                })
            }
        })
    }
}

/// A post as the chat layer hands it to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OwedPost {
    /// Names the post for its whole life (the same key updates the same post).
    pub key: String,
    pub kind: OwedKind,
    pub session_id: String,
    /// The post this one replies to, itself owed: created first, its id filled in.
    pub root_key: Option<String>,
    /// Cards: the approval request.
    pub request_id: Option<String>,
    /// Turn posts: the `seq` of the turn's first event, and which part of the turn this is.
    pub turn_seq: Option<i64>,
    pub part: i64,
    pub post: Value,
    /// No later version will follow (a closed turn, a decided card).
    pub closed: bool,
}

/// An owed post whose current version the server has not confirmed.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingPost {
    pub key: String,
    /// The session the post belongs to: only the node running it delivers it.
    pub session_id: String,
    pub kind: OwedKind,
    pub root_key: Option<String>,
    /// The id of the post `root_key` names, once it was created.
    pub root_post_id: Option<String>,
    pub post: Value,
    pub version: i64,
    /// Set as soon as the server answered the create.
    pub post_id: Option<String>,
    /// When a create was first sent whose answer was never recorded (milliseconds since the
    /// epoch): look for the post before sending another.
    pub tried: Option<i64>,
}

/// A turn post not closed yet, as last put.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenTurnPost {
    pub key: String,
    pub session_id: String,
    pub turn_seq: i64,
    pub part: i64,
    pub post: Value,
}

/// Delivered closed posts are forgotten after this long (their ids are no longer asked for).
const KEEP_DELIVERED_MS: i64 = 30 * 24 * 3600 * 1000;

impl Store {
    /// Records `owed` as the post's current version (a newer version of a post not yet
    /// delivered replaces the older one). A closed post is only replaced by another closed one.
    pub async fn outbox_put(&self, owed: OwedPost) -> Result<(), StoreError> {
        self.call_for(&owed.session_id.clone(), move |c| {
            c.prepare_cached(
                "INSERT INTO outbox (key, kind, session_id, root_key, request_id, turn_seq, part,
                   post, final, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(key) DO UPDATE SET post = excluded.post, version = version + 1,
                   final = excluded.final, updated_at = excluded.updated_at
                 WHERE outbox.final = 0 OR excluded.final = 1",
            )?
            .execute(params![
                owed.key,
                owed.kind.as_str(),
                owed.session_id,
                owed.root_key,
                owed.request_id,
                owed.turn_seq,
                owed.part,
                owed.post.to_string(),
                owed.closed,
                now_ms()
            ])?;
            Ok(())
        })
        .await
    }

    /// Every owed post not confirmed in its current version, in the order first put.
    pub async fn outbox_pending(&self) -> Result<Vec<PendingPost>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT o.key, o.kind, o.root_key, r.post_id, o.post, o.version, o.post_id, o.tried,
                   o.session_id
                 FROM outbox o LEFT JOIN outbox r ON r.key = o.root_key
                 WHERE o.delivered < o.version ORDER BY o.seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get::<_, Option<Value>>(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (key, kind, root_key, root_post_id, post, version, post_id, tried, session_id) =
                    row?;
                out.push(PendingPost {
                    kind: OwedKind::parse(&kind)?,
                    key,
                    session_id,
                    root_key,
                    root_post_id,
                    post: post.unwrap_or(Value::Null),
                    version,
                    post_id,
                    tried: Some(tried).filter(|t: &i64| *t > 0),
                });
            }
            Ok(out)
        })
        .await
    }

    /// A create of `key` is about to be sent (the first one's time is kept).
    pub async fn outbox_tried(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.call_as(Some(Owner::OutboxKey(key.clone())), move |c| {
            c.execute(
                "UPDATE outbox SET tried = ?2 WHERE key = ?1 AND tried = 0",
                params![key, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// The server holds `key` as `post_id` in `version` (`None`: a post found after a lost
    /// answer, in an unknown version). A thread root is recorded as its session's thread.
    pub async fn outbox_created(
        &self,
        key: &str,
        post_id: &str,
        version: Option<i64>,
    ) -> Result<(), StoreError> {
        let (key, post_id) = (key.to_owned(), post_id.to_owned());
        self.call_as(Some(Owner::OutboxKey(key.clone())), move |c| {
            c.execute(
                "UPDATE outbox SET post_id = ?2, tried = 0 WHERE key = ?1",
                params![key, post_id],
            )?;
            if let Some(version) = version {
                mark_delivered(c, &key, version)?;
            }
            c.execute(
                "INSERT INTO chat_threads (session_id, root_post_id)
                 SELECT session_id, post_id FROM outbox WHERE key = ?1 AND kind = 'root'
                 ON CONFLICT(session_id) DO UPDATE SET root_post_id = excluded.root_post_id",
                [&key],
            )?;
            Ok(())
        })
        .await
    }

    /// How many owed posts wait for the server in their current version (what
    /// [`Store::outbox_pending`] would return, counted on its partial index).
    pub async fn outbox_backlog(&self) -> Result<usize, StoreError> {
        self.call(|c| {
            let n: i64 = c.query_row(
                "SELECT count(*) FROM outbox WHERE delivered < version",
                [],
                |r| r.get(0),
            )?;
            Ok(usize::try_from(n).unwrap_or_default())
        })
        .await
    }

    /// The server confirmed `version` of `key`.
    pub async fn outbox_delivered(&self, key: &str, version: i64) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.call_as(Some(Owner::OutboxKey(key.clone())), move |c| {
            Ok(mark_delivered(c, &key, version)?)
        })
        .await
    }

    /// The post id of `key`, once created.
    pub async fn outbox_post_id(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.call(move |c| {
            Ok(
                c.query_row("SELECT post_id FROM outbox WHERE key = ?1", [key], |r| {
                    r.get::<_, Option<String>>(0)
                })
                .optional()?
                .flatten(),
            )
        })
        .await
    }

    /// Turn posts never closed (the plugin stopped in the middle of their turn).
    pub async fn outbox_open_turns(&self) -> Result<Vec<OpenTurnPost>, StoreError> {
        self.call(|c| {
            let mut stmt = c.prepare(
                "SELECT key, session_id, turn_seq, part, post FROM outbox
                 WHERE kind = 'turn' AND final = 0 AND post IS NOT NULL AND turn_seq IS NOT NULL
                 ORDER BY seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(OpenTurnPost {
                    key: r.get(0)?,
                    session_id: r.get(1)?,
                    turn_seq: r.get(2)?,
                    part: r.get(3)?,
                    post: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Posts not closed whose key starts with `prefix`, as last put (`closed` false).
    pub async fn outbox_open_with_prefix(&self, prefix: &str) -> Result<Vec<OwedPost>, StoreError> {
        // LIKE would take `_` and `%` in the prefix as patterns: compare the key's start.
        let prefix = prefix.to_owned();
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT key, kind, session_id, root_key, request_id, turn_seq, part, post
                 FROM outbox
                 WHERE substr(key, 1, length(?1)) = ?1 AND final = 0 AND post IS NOT NULL
                 ORDER BY seq",
            )?;
            let rows = stmt.query_map([prefix], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (key, kind, session_id, root_key, request_id, turn_seq, part, post) = row?;
                out.push(OwedPost {
                    key,
                    kind: OwedKind::parse(&kind)?,
                    session_id,
                    root_key,
                    request_id,
                    turn_seq,
                    part,
                    post,
                    closed: false,
                });
            }
            Ok(out)
        })
        .await
    }

    /// The card of approval `request_id` as last put, if it went through the outbox and is not
    /// closed: `(key, post)`.
    pub async fn outbox_open_card(
        &self,
        request_id: &str,
    ) -> Result<Option<(String, Value)>, StoreError> {
        let request_id = request_id.to_owned();
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT key, post FROM outbox
                 WHERE request_id = ?1 AND kind = 'card' AND final = 0 AND post IS NOT NULL",
                [request_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })
        .await
    }

    /// Makes a post the server already has (made before the outbox) known as `key`, delivered;
    /// a key already known is left as it is.
    pub async fn outbox_adopt(
        &self,
        key: &str,
        kind: OwedKind,
        session_id: &str,
        post_id: &str,
    ) -> Result<(), StoreError> {
        let args = (key.to_owned(), session_id.to_owned(), post_id.to_owned());
        self.call_for(session_id, move |c| {
            let (key, session_id, post_id) = args;
            c.execute(
                "INSERT INTO outbox (key, kind, session_id, version, delivered, post_id, updated_at)
                 VALUES (?1, ?2, ?3, 1, 1, ?4, ?5) ON CONFLICT(key) DO NOTHING",
                params![key, kind.as_str(), session_id, post_id, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// Forgets closed posts delivered long ago.
    pub async fn outbox_prune(&self) -> Result<usize, StoreError> {
        self.call(|c| {
            Ok(c.execute(
                "DELETE FROM outbox WHERE final = 1 AND delivered = version AND updated_at < ?1",
                [now_ms() - KEEP_DELIVERED_MS],
            )?)
        })
        .await
    }
}

/// Confirms `version` (never going back); a closed post's content is dropped once delivered,
/// only its id is kept.
fn mark_delivered(c: &rusqlite::Connection, key: &str, version: i64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE outbox SET delivered = MAX(delivered, ?2),
           post = CASE WHEN final = 1 AND MAX(delivered, ?2) = version THEN NULL ELSE post END
         WHERE key = ?1",
        params![key, version],
    )?;
    Ok(())
}
