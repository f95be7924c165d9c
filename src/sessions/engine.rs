//! The engine: starts sessions, finds them, recovers them after a restart, and stops them all
//! at plugin shutdown. It owns the map of live handles; each session's state lives in its actor.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use uuid::Uuid;

use super::actor::{
    Actor, ActorParts, SessionConfig, SessionError, SessionHandle, SessionStatus,
    SharedSessionConfig,
};
use super::events::SessionEvent;
use super::feed::Observers;
use super::launcher::{CliLauncher, Deadlines};
use super::state::SessionState;
use crate::claude::spawn::SpawnError;
use crate::claude::PermissionMode;
use crate::store::{now_ms, ApprovalRecord, SessionRecord, Store, StoreError};

/// What a new session needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSpec {
    pub channel_id: String,
    pub owner_id: String,
    pub project_path: PathBuf,
    pub model: Option<String>,
    pub permission_mode: Option<PermissionMode>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("project path {0} is not valid UTF-8")]
    ProjectPathNotUtf8(PathBuf),
}

pub struct Engine {
    store: Store,
    launcher: Arc<dyn CliLauncher>,
    deadlines: Mutex<Option<Arc<dyn Deadlines>>>,
    config: SharedSessionConfig,
    sessions: Mutex<HashMap<String, SessionHandle>>,
    observers: Observers,
}

impl Engine {
    pub fn new(store: Store, launcher: Arc<dyn CliLauncher>, config: SessionConfig) -> Self {
        Self {
            store,
            launcher,
            deadlines: Mutex::new(None),
            config: SharedSessionConfig::new(config),
            sessions: Mutex::new(HashMap::new()),
            observers: Observers::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The timeouts and sizes sessions use now.
    pub fn config(&self) -> Arc<SessionConfig> {
        self.config.get()
    }

    /// The shared handle on the current config, for those who read it later (card expiry).
    pub fn shared_config(&self) -> SharedSessionConfig {
        self.config.clone()
    }

    /// New timeouts for every session, live ones included, from their next use on (see
    /// [`SharedSessionConfig`]).
    pub fn set_config(&self, config: SessionConfig) {
        self.config.set(config);
    }

    /// Every CLI launched from now on (new sessions, resumes) runs until its session's deadline
    /// from `deadlines` (its lease) runs out; without this call CLIs have none.
    pub fn set_deadlines(&self, deadlines: Arc<dyn Deadlines>) {
        if let Ok(mut mine) = self.deadlines.lock() {
            *mine = Some(deadlines);
        }
    }

    /// Every session's events on one queue (each carries its session id), none skipped however
    /// far the reader falls behind. Observe before `start` to see a session's very first events.
    pub fn observe(&self) -> mpsc::UnboundedReceiver<SessionEvent> {
        self.observers.observe()
    }

    fn parts(&self, record: SessionRecord, state: SessionState) -> ActorParts {
        ActorParts {
            record,
            state,
            store: self.store.clone(),
            launcher: self.launcher.clone(),
            deadlines: self.deadlines.lock().ok().and_then(|d| d.clone()),
            config: self.config.clone(),
            observers: Some(self.observers.clone()),
        }
    }

    fn insert(&self, handle: SessionHandle) {
        if let Ok(mut map) = self.sessions.lock() {
            map.insert(handle.id().to_owned(), handle);
        }
    }

    /// Spawns the CLI for a new session. A missing project dir or CLI binary is an error here,
    /// and then nothing is stored.
    pub async fn start(&self, spec: SessionSpec) -> Result<SessionHandle, EngineError> {
        self.start_as(Uuid::new_v4().to_string(), spec).await
    }

    /// [`Self::start`] under an id chosen by the caller (in a cluster, the session's lease is
    /// taken under its id before anything is stored or spawned).
    pub async fn start_as(
        &self,
        id: String,
        spec: SessionSpec,
    ) -> Result<SessionHandle, EngineError> {
        let project_path = spec
            .project_path
            .to_str()
            .ok_or_else(|| EngineError::ProjectPathNotUtf8(spec.project_path.clone()))?
            .to_owned();
        let now = now_ms();
        let record = SessionRecord {
            id,
            channel_id: spec.channel_id,
            owner_id: spec.owner_id,
            project_path,
            cli_session_id: None,
            model: spec.model,
            permission_mode: spec.permission_mode.map(|m| m.as_str().to_owned()),
            status: SessionState::Starting.as_str().to_owned(),
            created_at: now,
            updated_at: now,
        };
        let mut actor = Actor::new(self.parts(record.clone(), SessionState::Starting));
        actor.launch()?;
        // Stored before the actor runs, so its events have a session row to refer to. If this
        // fails, dropping the actor kills the just-spawned process.
        self.store.insert_session(record.clone()).await?;
        self.store
            .audit(
                Some(&record.id),
                &record.owner_id,
                "start",
                serde_json::json!({"channel_id": record.channel_id, "project_path": record.project_path}),
            )
            .await?;
        let handle = actor.spawn();
        self.insert(handle.clone());
        Ok(handle)
    }

    pub fn get(&self, session_id: &str) -> Option<SessionHandle> {
        self.sessions
            .lock()
            .ok()
            .and_then(|map| map.get(session_id).cloned())
    }

    /// Removes `session_id` from the live sessions and returns its handle (the caller stops it:
    /// in a cluster, another node runs it now).
    pub fn forget(&self, session_id: &str) -> Option<SessionHandle> {
        self.sessions.lock().ok()?.remove(session_id)
    }

    /// Every live session's status.
    pub async fn list(&self) -> Vec<SessionStatus> {
        let handles: Vec<SessionHandle> = self
            .sessions
            .lock()
            .map(|map| map.values().cloned().collect())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(handles.len());
        for handle in handles {
            if let Ok(status) = handle.status().await {
                out.push(status);
            }
        }
        out.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        out
    }

    /// Plugin shutdown: stops every session's process group, concurrently.
    pub async fn stop_all(&self) {
        let handles: Vec<SessionHandle> = self
            .sessions
            .lock()
            .map(|map| map.values().cloned().collect())
            .unwrap_or_default();
        let stops = handles.into_iter().map(|h| async move {
            if let Err(e) = h.stop("plugin-shutdown").await {
                tracing::warn!(session = h.id(), "stopping at shutdown failed: {e}");
            }
        });
        futures_join_all(stops).await;
    }

    /// Kills the processes a previous run started for `session_ids` and left running (it was
    /// SIGKILLed, or its supervisors could not finish): each recorded process that still is
    /// the same one (pid, start time, boot), with everything below it. Then the next prompt's
    /// `--resume` is the only CLI on its conversation.
    async fn kill_leftover_processes(&self, session_ids: &[String]) -> Result<(), EngineError> {
        let recorded = self.store.session_processes(session_ids).await?;
        if recorded.is_empty() {
            return Ok(());
        }
        // /proc walks and the wait for the kill: off the runtime's thread.
        let killed = tokio::task::spawn_blocking(move || {
            recorded
                .into_iter()
                .filter(|(_, process)| process.kill_tree(LEFTOVER_KILL_WAIT))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (session, process) in killed {
            tracing::warn!(
                session = %session,
                pid = process.pid,
                "killed the CLI a previous run of the plugin left running"
            );
        }
        Ok(())
    }

    /// After a restart: every stored session gets an actor without a process. Those that were
    /// live become `stopped` (resumable): their next prompt spawns `claude --resume`. Crashed
    /// ones stay crashed (their next prompt restarts them the same way). Approvals still pending
    /// (the plugin went away without stopping its sessions) can never be answered now: they are
    /// stored as cancelled and returned, so the chat layer can close their cards.
    pub async fn recover_from_store(&self) -> Result<Recovered, EngineError> {
        self.recover_where(|_| true).await
    }

    /// [`Self::recover_from_store`] for the sessions `ids` only (in a cluster: those whose lease
    /// this node just took). A session that still has an actor here is stopped first: another
    /// node ran it since, so the actor's view of it is stale.
    pub async fn recover_sessions(&self, ids: &[String]) -> Result<Recovered, EngineError> {
        let stale: Vec<SessionHandle> = ids.iter().filter_map(|id| self.forget(id)).collect();
        for handle in stale {
            if let Err(e) = handle.stop("taken-over").await {
                tracing::debug!(session = handle.id(), "stopping a stale actor: {e}");
            }
        }
        self.recover_where(|r| ids.contains(&r.id)).await
    }

    async fn recover_where(
        &self,
        wanted: impl Fn(&SessionRecord) -> bool,
    ) -> Result<Recovered, EngineError> {
        let records: Vec<SessionRecord> = self
            .store
            .sessions()
            .await?
            .into_iter()
            .filter(|r| wanted(r) && self.get(&r.id).is_none())
            .collect();
        // Before any actor exists: none of these sessions has a CLI that could answer.
        let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        self.kill_leftover_processes(&ids).await?;
        let withdrawn = match self
            .store
            .cancel_undecided_approvals(&ids, "the plugin restarted before a decision")
            .await
        {
            Ok(w) => w,
            Err(e) => {
                tracing::error!("withdrawing the approvals left pending failed: {e}");
                Vec::new()
            }
        };
        let mut recovered = Vec::new();
        for mut record in records {
            let state = match SessionState::parse(&record.status) {
                Some(SessionState::Crashed) => SessionState::Crashed,
                _ => SessionState::Stopped,
            };
            if record.status != state.as_str() {
                self.store
                    .set_session_status(&record.id, state.as_str())
                    .await?;
                record.status = state.as_str().to_owned();
            }
            // A feed of this session that lags reads from here on, not the whole history.
            let last_seq = self.store.last_message_seq(&record.id).await?;
            let actor = Actor::new(self.parts(record.clone(), state));
            actor.published_up_to(last_seq);
            let handle = actor.spawn();
            self.insert(handle);
            recovered.push(record.id);
        }
        Ok(Recovered {
            sessions: recovered,
            withdrawn,
        })
    }
}

/// How long recovery waits for a leftover process it SIGKILLed to be gone.
const LEFTOVER_KILL_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What [`Engine::recover_from_store`] found.
#[derive(Debug)]
pub struct Recovered {
    /// Ids of the sessions that got an actor.
    pub sessions: Vec<String>,
    /// Approvals that were pending when the plugin went away, now stored as cancelled.
    pub withdrawn: Vec<ApprovalRecord>,
}

/// Runs futures concurrently on the current task (no extra dependency for one join).
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    futures: impl IntoIterator<Item = F>,
) {
    let mut set = tokio::task::JoinSet::new();
    for f in futures {
        set.spawn(f);
    }
    while set.join_next().await.is_some() {}
}
