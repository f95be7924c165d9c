//! [`SessionHandle`]: how everything else talks to a session's actor, one message per call.

use super::*;

/// The messages a handle sends; each carries where its answer goes.
pub(super) enum Command {
    Prompt {
        content: PromptContent,
        author: String,
        reply: oneshot::Sender<Result<String, SessionError>>,
    },
    Approve {
        request_id: String,
        decision: Decision,
        by: String,
        reply: oneshot::Sender<Result<(), SessionError>>,
    },
    Interrupt {
        by: String,
        reply: oneshot::Sender<Result<(), SessionError>>,
    },
    Stop {
        by: String,
        reply: oneshot::Sender<Result<(), SessionError>>,
    },
    Status {
        reply: oneshot::Sender<SessionStatus>,
    },
    Change {
        change: SettingChange,
        by: String,
        reply: oneshot::Sender<Result<(), SessionError>>,
    },
}

/// Cheap to clone; every method is one message to the actor.
#[derive(Clone)]
pub struct SessionHandle {
    pub(super) id: Arc<str>,
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) events: broadcast::Sender<SessionEvent>,
    /// Where a feed that lagged reads what it missed.
    pub(super) store: Store,
    /// The `seq` of the last stored event broadcast (see [`EventFeed`]).
    pub(super) published: Arc<AtomicI64>,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle")
            .field("id", &self.id)
            .finish()
    }
}

impl SessionHandle {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Events from now on. Missed or lagged events are in the store's transcript.
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.events.subscribe()
    }

    /// Events from now on, none skipped: after a lag the feed reads the store.
    pub fn feed(&self) -> EventFeed {
        // Read before subscribing: an event published in between comes live or, after a lag,
        // from the store; never neither.
        let last = self.published.load(Ordering::SeqCst);
        EventFeed::new(
            self.id.to_string(),
            self.subscribe(),
            self.store.clone(),
            last,
        )
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, SessionError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| SessionError::ActorGone)?;
        rx.await.map_err(|_| SessionError::ActorGone)
    }

    /// Queues a prompt; returns its id (the `uuid` of the CLI user line, echoed in the result).
    pub async fn prompt(
        &self,
        content: impl Into<PromptContent>,
        author: &str,
    ) -> Result<String, SessionError> {
        let (content, author) = (content.into(), author.to_owned());
        self.ask(|reply| Command::Prompt {
            content,
            author,
            reply,
        })
        .await?
    }

    pub async fn approve(
        &self,
        request_id: &str,
        decision: Decision,
        by: &str,
    ) -> Result<(), SessionError> {
        let (request_id, by) = (request_id.to_owned(), by.to_owned());
        self.ask(|reply| Command::Approve {
            request_id,
            decision,
            by,
            reply,
        })
        .await?
    }

    /// Stops the running turn; the session stays alive and takes the next prompt.
    pub async fn interrupt(&self, by: &str) -> Result<(), SessionError> {
        let by = by.to_owned();
        self.ask(|reply| Command::Interrupt { by, reply }).await?
    }

    /// Kills the CLI's whole process group; resolves once the process is gone.
    pub async fn stop(&self, by: &str) -> Result<(), SessionError> {
        let by = by.to_owned();
        self.ask(|reply| Command::Stop { by, reply }).await?
    }

    pub async fn status(&self) -> Result<SessionStatus, SessionError> {
        self.ask(|reply| Command::Status { reply }).await
    }

    /// Changes the permission mode: a running CLI is told (and must accept), and the new mode
    /// is stored for the next spawn.
    pub async fn set_permission_mode(
        &self,
        mode: PermissionMode,
        by: &str,
    ) -> Result<(), SessionError> {
        self.change(SettingChange::PermissionMode(mode), by).await
    }

    /// Changes the model, like `set_permission_mode`.
    pub async fn set_model(&self, model: &str, by: &str) -> Result<(), SessionError> {
        self.change(SettingChange::Model(model.to_owned()), by)
            .await
    }

    async fn change(&self, change: SettingChange, by: &str) -> Result<(), SessionError> {
        let by = by.to_owned();
        match tokio::time::timeout(
            CONTROL_TIMEOUT,
            self.ask(|reply| Command::Change { change, by, reply }),
        )
        .await
        {
            Ok(result) => result?,
            Err(_) => Err(SessionError::ControlTimeout),
        }
    }
}
