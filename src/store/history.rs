//! Pages of a session's transcript for people: newest first from a point, filtered by kind and
//! by a search text.

use rusqlite::params;

use super::{message_row, MessageRecord, Store, StoreError};

/// Which page of the transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    /// Only rows before this sequence number (`None`: from the newest).
    pub before: Option<i64>,
    pub limit: usize,
    /// Only rows whose text contains this (ASCII letters compared without case).
    pub text: Option<String>,
    /// Only rows of these transcript kinds (`prompt`, `assistant_text`, …).
    pub kinds: &'static [&'static str],
}

impl Store {
    /// At most `limit + 1` matching rows before `before`, in transcript order (oldest first):
    /// the extra oldest row, when there is one, tells the caller that more pages exist.
    pub async fn history(
        &self,
        session_id: &str,
        query: HistoryQuery,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let session_id = session_id.to_owned();
        let kinds = serde_json::to_string(query.kinds).unwrap_or_else(|_| "[]".into());
        let before = query.before.unwrap_or(i64::MAX);
        let limit = i64::try_from(query.limit.saturating_add(1)).unwrap_or(i64::MAX);
        self.call(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, id, session_id, type, kind, content, event, timestamp
                 FROM messages
                 WHERE session_id = ?1 AND seq < ?2
                   AND kind IN (SELECT value FROM json_each(?3))
                   AND (?4 IS NULL OR instr(lower(content), lower(?4)) > 0)
                 ORDER BY seq DESC LIMIT ?5",
            )?;
            let rows = stmt.query_map(
                params![session_id, before, kinds, query.text, limit],
                message_row,
            )?;
            let mut rows: Vec<MessageRecord> = rows.collect::<rusqlite::Result<_>>()?;
            rows.reverse();
            Ok(rows)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SessionRecord;

    #[tokio::test]
    async fn pages_back_from_the_newest_with_kind_and_text_filters() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("history.db")).await.unwrap();
        store
            .insert_session(SessionRecord {
                id: "s1".into(),
                channel_id: "c1".into(),
                owner_id: "u1".into(),
                project_path: "/srv/p".into(),
                cli_session_id: None,
                model: None,
                permission_mode: None,
                status: "idle".into(),
                created_at: 1,
                updated_at: 1,
            })
            .await
            .unwrap();
        for (i, (kind, text)) in [
            ("prompt", "build the Parser"),
            ("text_delta", "par"),
            ("assistant_text", "the parser is built"),
            ("prompt", "now the lexer"),
            ("assistant_text", "lexer done"),
        ]
        .into_iter()
        .enumerate()
        {
            store
                .append_message(MessageRecord {
                    seq: 0,
                    id: format!("m{i}"),
                    session_id: "s1".into(),
                    message_type: if kind == "prompt" {
                        "user"
                    } else {
                        "assistant"
                    }
                    .into(),
                    kind: kind.into(),
                    content: text.into(),
                    event: serde_json::json!({}),
                    timestamp: i as i64,
                })
                .await
                .unwrap();
        }
        let kinds: &'static [&'static str] = &["prompt", "assistant_text"];
        let query = |before, limit, text: Option<&str>| HistoryQuery {
            before,
            limit,
            text: text.map(str::to_owned),
            kinds,
        };
        let texts = |rows: Vec<MessageRecord>| -> Vec<String> {
            rows.into_iter().map(|r| r.content).collect()
        };
        // Two asked, three answered: the oldest says there is more.
        let page = store.history("s1", query(None, 2, None)).await.unwrap();
        assert_eq!(
            texts(page.clone()),
            ["the parser is built", "now the lexer", "lexer done"]
        );
        let older = store
            .history("s1", query(Some(page[1].seq), 5, None))
            .await
            .unwrap();
        assert_eq!(texts(older), ["build the Parser", "the parser is built"]);
        // The delta is not a kind asked for; the search ignores ASCII case.
        let found = store
            .history("s1", query(None, 10, Some("PARSER")))
            .await
            .unwrap();
        assert_eq!(texts(found), ["build the Parser", "the parser is built"]);
        assert!(store
            .history("s2", query(None, 10, None))
            .await
            .unwrap()
            .is_empty());
    }
}
