//! How jobs reach the connection: queued to the database thread, run in batches of one
//! transaction each, every job under its own savepoint, answered after COMMIT; a job that
//! writes one session's rows is first checked against that session's fence (see fence.rs).

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::fence::{FenceCheck, Fencing, Owner};
use super::{Jobs, Store, StoreError};

/// Answers a job's caller once its batch ended (with the COMMIT's error, if any).
type Reply = Box<dyn FnOnce(Option<&str>) + Send>;

/// A job runs on the connection (`Err`: it may not run, and answers that error) and says
/// whether it succeeded (a failed one is rolled back to its savepoint) and how to answer its
/// caller once the batch is committed.
type Run = Box<dyn FnOnce(Result<&Connection, StoreError>) -> (bool, Reply) + Send>;

pub(super) struct Job {
    /// The session whose rows it writes, when it writes one's: checked against its fence.
    owner: Option<Owner>,
    run: Run,
}

/// At most this many queued jobs share one transaction, so one caller's wait stays bounded.
const MAX_BATCH: usize = 256;

impl Store {
    /// Runs `f` on the database thread; resolves after the batch holding it committed. For
    /// reads and for writes that belong to no one session (use [`Store::call_for`] for those
    /// that do).
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.call_as(None, f).await
    }

    /// [`Store::call`] for a job that writes rows of `session_id`: refused with
    /// [`StoreError::Fenced`], having written nothing, once another node claimed the session
    /// with a greater fence than this process did.
    pub async fn call_for<T, F>(&self, session_id: &str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.call_as(Some(Owner::Session(session_id.to_owned())), f)
            .await
    }

    pub(super) async fn call_as<T, F>(&self, owner: Option<Owner>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let run: Run = Box::new(move |conn| {
            let outcome = conn.and_then(f);
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
        let job = Job { owner, run };
        match &self.jobs {
            Jobs::Thread(jobs) => jobs.send(job).map_err(|_| StoreError::Closed)?,
            #[cfg(test)]
            Jobs::Inline(conn) => {
                let conn = conn.lock().map_err(|_| StoreError::Closed)?;
                run_batch(&conn, &self.fencing, vec![job]);
            }
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

pub(super) fn run_jobs(conn: Connection, fencing: Arc<Fencing>, jobs: std_mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&conn, &fencing, batch);
    }
}

/// Runs `batch` in one transaction and answers each job after COMMIT.
fn run_batch(conn: &Connection, fencing: &Fencing, batch: Vec<Job>) {
    // Each job runs inside its own savepoint: a job that fails half-way is rolled back
    // whole, and one bad job does not cost the others in the batch their writes.
    // If BEGIN itself fails the jobs still run, each under its savepoint (which then acts
    // as a transaction of its own).
    let in_transaction = conn.execute_batch("BEGIN IMMEDIATE").is_ok();
    // Under BEGIN IMMEDIATE no other connection can change a fence until COMMIT, so a fence
    // read once holds for the whole batch; without it, each job reads afresh.
    let mut check = FenceCheck::new(fencing);
    let replies: Vec<Reply> = batch
        .into_iter()
        .map(|job| {
            if !in_transaction {
                check = FenceCheck::new(fencing);
            }
            run_whole(conn, &mut check, job)
        })
        .collect();
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
/// the job fails. A savepoint that cannot be opened leaves the job unrun and failed; so does a
/// fence another node raised (checked inside the savepoint: in the job's transaction even when
/// the batch has none).
fn run_whole(conn: &Connection, check: &mut FenceCheck<'_>, job: Job) -> Reply {
    if let Err(e) = conn.execute_batch("SAVEPOINT job") {
        let message = format!("opening a savepoint: {e}");
        let (_, reply) = (job.run)(Err(StoreError::Closed));
        return Box::new(move |_| reply(Some(&message)));
    }
    let admitted = match &job.owner {
        Some(owner) => check.admits(conn, owner),
        None => Ok(()),
    };
    let (ok, reply) = (job.run)(admitted.map(|()| conn));
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
