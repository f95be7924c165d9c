//! Fencing across the nodes of a cluster, which share this database (it lies in the shared
//! data directory). The node that owns a session (its lease, see src/cluster) claims it here
//! with the lease's fence, a number that grows with every new owner. A node whose lease was
//! taken while it was paused may wake up and write before it notices: every write of one
//! session's rows is checked, inside the batch's transaction (after `BEGIN IMMEDIATE`, so under
//! SQLite's write lock: no other node can raise a fence meanwhile), against the stored fence,
//! and refused, writing nothing, when another node claimed the session with a greater one.
//! Sessions this process never claimed are not checked (unit tests, a single server before
//! its first lease).

use std::collections::HashMap;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use super::{Store, StoreError};

/// What the store handles of one process share with its database thread.
#[derive(Debug, Default)]
pub(super) struct Fencing {
    /// Session -> the fence this process claimed it with; 0 when a claim was refused before
    /// any succeeded (from then on every write of the session is refused).
    claimed: Mutex<HashMap<String, i64>>,
    /// The node recorded with the processes this process starts (see processes.rs).
    node: Mutex<Option<String>>,
}

impl Fencing {
    fn claimed(&self, session_id: &str) -> Option<i64> {
        self.claimed
            .lock()
            .ok()
            .and_then(|c| c.get(session_id).copied())
    }

    fn any_claimed(&self) -> bool {
        self.claimed.lock().is_ok_and(|c| !c.is_empty())
    }

    pub(super) fn node(&self) -> Option<String> {
        self.node.lock().ok().and_then(|n| n.clone())
    }
}

/// Whose rows a job writes: a session, or what names one (its session is looked up, and only
/// when this process claimed any session at all).
#[derive(Debug)]
pub(super) enum Owner {
    Session(String),
    Sessions(Vec<String>),
    /// The session of this approval request.
    Approval(String),
    /// The session of this outbox post.
    OutboxKey(String),
}

/// The fence checks of one batch: each session's stored fence is read once.
pub(super) struct FenceCheck<'a> {
    fencing: &'a Fencing,
    stored: HashMap<String, Option<i64>>,
}

impl<'a> FenceCheck<'a> {
    pub(super) fn new(fencing: &'a Fencing) -> Self {
        Self {
            fencing,
            stored: HashMap::new(),
        }
    }

    /// Err([`StoreError::Fenced`]) when a session of `owner` was claimed by another node with
    /// a greater fence than this process's.
    pub(super) fn admits(&mut self, conn: &Connection, owner: &Owner) -> Result<(), StoreError> {
        if !self.fencing.any_claimed() {
            return Ok(());
        }
        let looked_up;
        let sessions: &[String] = match owner {
            Owner::Session(id) => std::slice::from_ref(id),
            Owner::Sessions(ids) => ids,
            Owner::Approval(request_id) => {
                looked_up = session_of(
                    conn,
                    "SELECT session_id FROM approvals WHERE request_id = ?1",
                    request_id,
                )?;
                &looked_up
            }
            Owner::OutboxKey(key) => {
                looked_up = session_of(conn, "SELECT session_id FROM outbox WHERE key = ?1", key)?;
                &looked_up
            }
        };
        for session in sessions {
            let Some(claimed) = self.fencing.claimed(session) else {
                continue;
            };
            let stored = match self.stored.get(session) {
                Some(stored) => *stored,
                None => {
                    let stored = stored_fence(conn, session)?.map(|(_, fence)| fence);
                    self.stored.insert(session.clone(), stored);
                    stored
                }
            };
            if stored.is_some_and(|stored| stored > claimed) {
                return Err(StoreError::Fenced {
                    session: session.clone(),
                });
            }
        }
        Ok(())
    }
}

/// The session a row names (none when the row does not exist).
fn session_of(conn: &Connection, sql: &str, key: &str) -> Result<Vec<String>, StoreError> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row([key], |r| r.get(0))
        .optional()?
        .into_iter()
        .collect())
}

/// `(node, fence)` of the session's last claim.
fn stored_fence(conn: &Connection, session_id: &str) -> rusqlite::Result<Option<(String, i64)>> {
    conn.prepare_cached("SELECT node, fence FROM session_fences WHERE session_id = ?1")?
        .query_row([session_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

impl Store {
    /// The fence `session_id` was last claimed with, if ever: a lease taken for it must have a
    /// greater one (the KV record may have been lost or reset since).
    pub async fn fence(&self, session_id: &str) -> Result<Option<u64>, StoreError> {
        let session_id = session_id.to_owned();
        self.call(move |c| {
            Ok(stored_fence(c, &session_id)?.map(|(_, f)| u64::try_from(f).unwrap_or(0)))
        })
        .await
    }

    /// `node` owns `session_id` under `fence` (its lease's) from now on: the stored fence is
    /// raised to it, and this process's later writes of the session are refused once another
    /// node claims it with a greater one. Refused with [`StoreError::Fenced`] when the stored
    /// fence is greater, or equal and another node's; the session's writes by this process are
    /// then refused too.
    pub async fn claim(&self, session_id: &str, node: &str, fence: u64) -> Result<(), StoreError> {
        let fence = i64::try_from(fence).unwrap_or(i64::MAX);
        let args = (session_id.to_owned(), node.to_owned());
        let claimed = self
            .call(move |c| {
                let (session_id, node) = args;
                if let Some((stored_node, stored)) = stored_fence(c, &session_id)? {
                    if stored > fence || (stored == fence && stored_node != node) {
                        return Err(StoreError::Fenced {
                            session: session_id,
                        });
                    }
                }
                c.execute(
                    "INSERT INTO session_fences (session_id, node, fence) VALUES (?1, ?2, ?3)
                     ON CONFLICT(session_id) DO UPDATE SET node = ?2, fence = ?3",
                    params![session_id, node, fence],
                )?;
                Ok(())
            })
            .await;
        // Remembered once committed, before this returns: a write sent after is checked.
        if let Ok(mut remembered) = self.fencing.claimed.lock() {
            match &claimed {
                Ok(()) => {
                    remembered.insert(session_id.to_owned(), fence);
                }
                Err(StoreError::Fenced { .. }) => {
                    remembered.entry(session_id.to_owned()).or_insert(0);
                }
                Err(_) => {}
            }
        }
        claimed
    }

    /// The node recorded with every process this process records from now on; only processes
    /// recorded by this node (or before nodes were recorded) are returned for killing. Set it
    /// only in a cluster, with an id that names this node: a single server's per-process id
    /// would hide from the next run what this one left running.
    pub fn set_node(&self, node: &str) {
        if let Ok(mut mine) = self.fencing.node.lock() {
            *mine = Some(node.to_owned());
        }
    }
}
