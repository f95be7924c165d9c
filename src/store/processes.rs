//! The process serving each session (table `session_processes`): recorded when a CLI starts,
//! read at recovery to kill what a previous run of the plugin left running.

use rusqlite::params;

use super::{Store, StoreError};
use crate::proctree::ProcessIdentity;

impl Store {
    /// `process` serves `session_id` now (replacing the one recorded before).
    pub async fn set_session_process(
        &self,
        session_id: &str,
        process: ProcessIdentity,
    ) -> Result<(), StoreError> {
        let session_id = session_id.to_owned();
        let node = self.fencing.node();
        self.call_for(&session_id.clone(), move |c| {
            c.execute(
                "INSERT INTO session_processes (session_id, pid, start_ticks, boot_id, node)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (session_id) DO UPDATE
                   SET pid = ?2, start_ticks = ?3, boot_id = ?4, node = ?5",
                params![
                    session_id,
                    process.pid,
                    // Clock ticks since boot: far below i64::MAX.
                    i64::try_from(process.start).unwrap_or(i64::MAX),
                    process.boot_id,
                    node
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// The processes recorded for `session_ids` by this node (see [`Store::set_node`]) or
    /// before nodes were recorded, as `(session id, process)`: another node's CLIs are its own
    /// to stop, also when the nodes share a machine (and so the processes' boot id).
    pub async fn session_processes(
        &self,
        session_ids: &[String],
    ) -> Result<Vec<(String, ProcessIdentity)>, StoreError> {
        let session_ids = session_ids.to_vec();
        let node = self.fencing.node();
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT pid, start_ticks, boot_id FROM session_processes
                 WHERE session_id = ?1 AND (node IS ?2 OR node IS NULL)",
            )?;
            let mut out = Vec::new();
            for id in session_ids {
                let rows = stmt.query_map(params![id, node], |r| {
                    Ok(ProcessIdentity {
                        pid: r.get(0)?,
                        start: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                        boot_id: r.get(2)?,
                    })
                })?;
                for row in rows {
                    out.push((id.clone(), row?));
                }
            }
            Ok(out)
        })
        .await
    }
}
