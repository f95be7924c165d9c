//! Tool-use approvals: asked by the CLI, decided by a person (or expired, or withdrawn), and
//! whether their card still shows buttons.

use rusqlite::params;

use super::fence::Owner;
use super::{now_ms, Allowed, ApprovalRecord, Store, StoreError};

impl Store {
    pub async fn insert_approval(&self, record: ApprovalRecord) -> Result<(), StoreError> {
        self.call_for(&record.session_id.clone(), move |c| {
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
        let owner = Owner::Approval(request_id.to_owned());
        self.call_as(Some(owner), move |c| {
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
        let owner = Owner::Sessions(session_ids.to_vec());
        self.call_as(Some(owner), move |c| {
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
        let owner = Owner::Approval(request_id.clone());
        self.call_as(Some(owner), move |c| {
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
        let owner = Owner::Approval(request_id.clone());
        self.call_as(Some(owner), move |c| {
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
}

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
