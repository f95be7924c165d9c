//! One tokio task per session, owning its CLI process. Everything else talks to it through a
//! [`SessionHandle`] (an mpsc sender), so the process, the prompt queue and the pending approvals
//! have exactly one owner and need no locks.
//!
//! The loop waits on three sources: handle commands, the CLI's output (lines, then its exit),
//! and the nearest deadline (startup, idle reaping, approval expiry, SIGKILL escalation).
//! Deadlines are plain `tokio::time::Instant`s, which is what lets the tests run them on a
//! paused clock.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use super::events::{EventKind, SessionErrorKind, SessionEvent};
use super::feed::{EventFeed, Observers};
use super::launcher::{
    BoxedRead, BoxedWrite, CliLauncher, Deadlines, ExitInfo, LaunchedCli, ProcessSignals,
};
use super::prompt::PromptContent;
use super::state::{next_state, IllegalTransition, SessionInput, SessionState};
use crate::claude::control::{CanUseTool, IncomingRequest, KnownIncomingRequest};
use crate::claude::messages::{
    ContentBlock, Delta, KnownBlock, KnownDelta, KnownStreamEvent, KnownSystemEvent, StreamEvent,
    SystemEvent, ToolUseResult, UserContent,
};
use crate::claude::spawn::SpawnError;
use crate::claude::writer::new_request_id;
use crate::claude::{
    ApprovalAnswer, CliLine, CliMessage, CliReader, CliSpec, CliWriter, ControlResponseBody,
    HostRequest, PermissionMode, ReadError, SessionStart, StdinMessage, WriteError,
};
use crate::store::{
    now_ms, Allowed, ApprovalRecord, MessageRecord, SessionRecord, Store, StoreError,
};

mod approvals;
mod cli_output;
mod handle;
mod process;
mod settings;

pub use settings::SettingChange;

use handle::Command;
pub use handle::SessionHandle;

/// Timeouts and sizes of one session; shared by all sessions of an engine.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// An idle process is stopped after this long; the next prompt resumes it (~0.5 s).
    pub idle_timeout: Duration,
    /// An unanswered approval is denied (with a message) after this long.
    pub approval_timeout: Duration,
    /// SIGTERM → SIGKILL escalation when stopping.
    pub stop_grace: Duration,
    /// How long the CLI may take to answer `initialize` (0.38 s observed; cold disks are slower).
    pub startup_timeout: Duration,
    /// Last stderr lines kept for crash reports.
    pub stderr_tail_lines: usize,
    /// Broadcast buffer per session; a slower subscriber gets `Lagged` and reads the store.
    pub event_capacity: usize,
    /// Not the actor's: the chat layer's first gap between updates of a turn's post
    /// (PostUpdateIntervalSeconds), kept here so that it follows saved settings as the
    /// timeouts do (read where used).
    pub post_update_interval: Duration,
    /// Not the actor's either: how long a card waits before its approver gets a direct
    /// message (ApprovalReminderMinutes); `None` = never.
    pub approval_reminder: Option<Duration>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            approval_timeout: Duration::from_secs(10 * 60),
            stop_grace: Duration::from_secs(3),
            startup_timeout: Duration::from_secs(60),
            stderr_tail_lines: 20,
            event_capacity: 256,
            post_update_interval: Duration::from_secs(2),
            approval_reminder: None,
        }
    }
}

/// The engine's current [`SessionConfig`], shared with every actor and read where a value is
/// used, so a change (the admin saving settings) applies to what starts next: the next idle
/// period, approval request, stop or CLI start. What already started keeps its deadline.
#[derive(Debug, Clone)]
pub struct SharedSessionConfig(Arc<std::sync::RwLock<Arc<SessionConfig>>>);

impl SharedSessionConfig {
    pub fn new(config: SessionConfig) -> Self {
        SharedSessionConfig(Arc::new(std::sync::RwLock::new(Arc::new(config))))
    }

    /// The current values.
    pub fn get(&self) -> Arc<SessionConfig> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set(&self, config: SessionConfig) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }
}

/// A user's answer to a `can_use_tool` request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Allow,
    /// Run the tool with this input instead of the model's (e.g. edited file content).
    AllowWithInput(Value),
    /// Allow, and stop asking for matching calls while this process lives.
    AllowForSession,
    Deny(String),
    /// Deny and end the whole turn.
    DenyAndInterrupt(String),
    /// Approve an `ExitPlanMode` plan: the CLI leaves plan mode for this mode (`Default`, which
    /// it picks itself, or `AcceptEdits`, asked for with a `setMode` for the session).
    ExitPlan(PermissionMode),
}

impl Decision {
    fn name(&self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::AllowWithInput(_) => "allow_with_input",
            Decision::AllowForSession => "allow_for_session",
            Decision::Deny(_) => "deny",
            Decision::DenyAndInterrupt(_) => "deny_and_interrupt",
            Decision::ExitPlan(_) => "allow_exit_plan",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error("no pending approval with request id {0}")]
    UnknownApproval(String),
    #[error("a deny needs a non-empty message (the model and the transcript are told why)")]
    EmptyDenyMessage,
    #[error("the session has no running CLI process")]
    NoProcess,
    #[error("the session actor has stopped")]
    ActorGone,
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the CLI refused the change: {0}")]
    Refused(String),
    #[error("the CLI did not answer the change in time")]
    ControlTimeout,
    #[error("{MAX_QUEUED_PROMPTS} prompts are already waiting in this session; send it again when they have run")]
    QueueFull,
    #[error("the prompts waiting in this session already carry {} MB of images (at most {} MB); send it again when they have run", .0 >> 20, MAX_QUEUED_IMAGE_BYTES >> 20)]
    QueuedImagesFull(usize),
}

/// Prompts that may wait behind the running turn: the queue lives in memory, and a member
/// replying fast while a card waits would otherwise grow it without end.
pub(crate) const MAX_QUEUED_PROMPTS: usize = 10;
/// Base64 image bytes the waiting prompts may hold together (a prompt's images are up to
/// MaxPromptFiles × 5 MB).
pub(crate) const MAX_QUEUED_IMAGE_BYTES: usize = 64 << 20;

/// How long a set_* control request may take (set_model probes the model API first).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq)]
pub struct PendingApprovalInfo {
    pub request_id: String,
    pub tool: String,
    pub input: Value,
}

/// A snapshot answered by the actor.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionStatus {
    pub session_id: String,
    pub state: SessionState,
    pub cli_session_id: Option<String>,
    pub pid: Option<u32>,
    pub current_prompt: Option<String>,
    /// The prompts waiting for their turn, in order: each person's own words (and image lines),
    /// without the plugin's blocks before them.
    pub queued_prompts: Vec<String>,
    pub pending_approvals: Vec<PendingApprovalInfo>,
    pub last_exit: Option<ExitInfo>,
    pub stderr_tail: Vec<String>,
}

/// What the CLI's output tasks tell the actor. `Exited` is always last.
enum FromCli {
    /// Boxed: the channel's slots stay small (memory per session matters at 50 sessions).
    Line(Box<CliLine>),
    Garbage(String),
    ReadFailed(String),
    Exited(ExitInfo),
}

/// A live CLI process as the actor holds it.
struct Process {
    writer: CliWriter<BoxedWrite>,
    output: mpsc::Receiver<FromCli>,
    signals: Box<dyn ProcessSignals>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// Ends at stderr EOF; awaited (briefly) on exit so the crash report has the last lines.
    stderr_done: Option<tokio::task::JoinHandle<()>>,
    /// Our `initialize` request; its answer means the CLI is ready.
    init_request_id: String,
    /// Started with `--resume`.
    resumed: bool,
    /// A resumed process answered with a result before it was ready: the CLI could not find the
    /// conversation (observed: a zero-turn `error_during_execution` result, then exit 1).
    resume_failed: bool,
    exited: bool,
}

impl Drop for Process {
    /// If the actor goes away without a clean stop (runtime shutdown, panic), the CLI and its
    /// Bash children must not outlive it.
    fn drop(&mut self) {
        if !self.exited {
            self.signals.kill();
        }
    }
}

struct PendingApproval {
    tool: String,
    input: Value,
    suggestions: Vec<Value>,
    deadline: Instant,
    /// The approval timeout when it was asked (the setting may change meanwhile).
    timeout: Duration,
}

/// A set_* control request waiting for the CLI's answer.
struct PendingChange {
    change: SettingChange,
    by: String,
    reply: oneshot::Sender<Result<(), SessionError>>,
}

struct QueuedPrompt {
    id: String,
    content: PromptContent,
}

/// Everything needed to run one session.
pub struct ActorParts {
    pub record: SessionRecord,
    pub state: SessionState,
    pub store: Store,
    pub launcher: Arc<dyn CliLauncher>,
    /// Asked for the session's lease deadline at each launch of its CLI, if any.
    pub deadlines: Option<Arc<dyn Deadlines>>,
    pub config: SharedSessionConfig,
    /// The engine's observers (all sessions), if any.
    pub observers: Option<Observers>,
}

pub struct Actor {
    record: SessionRecord,
    state: SessionState,
    store: Store,
    launcher: Arc<dyn CliLauncher>,
    deadlines: Option<Arc<dyn Deadlines>>,
    config: SharedSessionConfig,
    events: broadcast::Sender<SessionEvent>,
    observers: Option<Observers>,
    process: Option<Process>,
    queue: VecDeque<QueuedPrompt>,
    pending: HashMap<String, PendingApproval>,
    changes: HashMap<String, PendingChange>,
    current_prompt: Option<String>,
    idle_deadline: Option<Instant>,
    startup_deadline: Option<Instant>,
    kill_deadline: Option<Instant>,
    stop_waiters: Vec<oneshot::Sender<Result<(), SessionError>>>,
    last_exit: Option<ExitInfo>,
    last_stderr: Vec<String>,
    /// Events of the current loop iteration, stored together by `flush` and only then sent.
    outbox: Vec<(MessageRecord, SessionEvent)>,
    /// The `seq` of the last stored event sent, shared with the handles.
    published: Arc<AtomicI64>,
}

/// Lines already waiting in the output channel are handled together (up to this many), so a
/// burst of token deltas costs one SQLite commit instead of one per line.
const MAX_LINES_PER_BATCH: usize = 64;

impl Actor {
    pub fn new(parts: ActorParts) -> Self {
        let (events, _) = broadcast::channel(parts.config.get().event_capacity.max(1));
        Self {
            record: parts.record,
            state: parts.state,
            store: parts.store,
            launcher: parts.launcher,
            deadlines: parts.deadlines,
            config: parts.config,
            events,
            observers: parts.observers,
            process: None,
            queue: VecDeque::new(),
            pending: HashMap::new(),
            changes: HashMap::new(),
            current_prompt: None,
            idle_deadline: None,
            startup_deadline: None,
            kill_deadline: None,
            stop_waiters: Vec::new(),
            last_exit: None,
            last_stderr: Vec::new(),
            outbox: Vec::new(),
            published: Arc::new(AtomicI64::new(0)),
        }
    }

    /// The session's transcript already holds events up to `seq` (a recovered session).
    pub(crate) fn published_up_to(&self, seq: i64) {
        self.published.store(seq, Ordering::SeqCst);
    }

    /// Runs the actor until every handle is gone; returns the handle first.
    pub fn spawn(mut self) -> SessionHandle {
        let (commands, rx) = mpsc::channel(64);
        let handle = SessionHandle {
            id: Arc::from(self.record.id.as_str()),
            commands,
            events: self.events.clone(),
            store: self.store.clone(),
            published: self.published.clone(),
        };
        tokio::spawn(async move {
            // Here, not in `launch`: a new session's row is stored between the two.
            self.record_process().await;
            // The CLI prints nothing before it reads a line: `initialize` is our readiness ping.
            self.send_initialize().await;
            self.run(rx).await;
        });
        handle
    }
}

fn parse_permission_mode(s: &str) -> Option<PermissionMode> {
    serde_json::from_value(Value::String(s.to_owned())).ok()
}

async fn recv_from_cli(process: &mut Option<Process>) -> FromCli {
    match process {
        Some(p) => match p.output.recv().await {
            Some(msg) => msg,
            // Both output tasks ended without an exit report (they were aborted).
            None => FromCli::Exited(ExitInfo {
                code: None,
                signal: None,
            }),
        },
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn tool_result_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Actor {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command).await,
                    None => break,
                },
                output = recv_from_cli(&mut self.process) => {
                    self.on_output(output).await;
                    for _ in 0..MAX_LINES_PER_BATCH {
                        let Some(next) = self.process.as_mut().and_then(|p| p.output.try_recv().ok()) else {
                            break;
                        };
                        self.on_output(next).await;
                    }
                }
                () = sleep_until_opt(deadline) => self.on_deadline().await,
            }
            self.flush().await;
        }
        self.flush().await;
        self.shutdown().await;
    }

    /// Every handle is gone (engine dropped): stop the process so nothing is orphaned. The
    /// stored status stays as it was, so `recover_from_store` knows the session was live.
    async fn shutdown(&mut self) {
        let Some(process) = self.process.as_mut() else {
            return;
        };
        process.signals.terminate();
        let grace = self.config.get().stop_grace;
        let exited = tokio::time::timeout(grace, async {
            loop {
                if let FromCli::Exited(_) = recv_from_cli(&mut self.process).await {
                    return;
                }
            }
        })
        .await;
        if let Some(mut process) = self.process.take() {
            // Also reaps Bash children left in the group; `exited` keeps Drop from repeating it.
            process.signals.kill();
            process.exited = exited.is_ok();
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let approvals = self.pending.values().map(|p| p.deadline).min();
        [
            self.idle_deadline,
            self.startup_deadline,
            self.kill_deadline,
            approvals,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Stores which process serves the session, so that the next run of the plugin can kill
    /// it should this one die without stopping it. Not fatal: the supervisor still ends the
    /// process with the plugin.
    async fn record_process(&mut self) {
        let Some(identity) = self.process.as_ref().and_then(|p| p.signals.identity()) else {
            return;
        };
        if let Err(e) = self
            .store
            .set_session_process(&self.record.id, identity)
            .await
        {
            tracing::warn!(session = %self.record.id, "recording the CLI's process failed: {e}");
        }
    }

    async fn send_initialize(&mut self) {
        let Some(id) = self.process.as_ref().map(|p| p.init_request_id.clone()) else {
            return;
        };
        self.send_to_cli(StdinMessage::request(id, HostRequest::Initialize {}))
            .await;
    }

    /// Writes one line; a failure is published (the process is probably dying, and its exit
    /// will follow through the output channel).
    async fn send_to_cli(&mut self, message: StdinMessage) -> bool {
        let Some(process) = self.process.as_mut() else {
            return false;
        };
        match process.writer.send(&message).await {
            Ok(()) => true,
            Err(e) => {
                self.publish(EventKind::Error {
                    error: SessionErrorKind::Write,
                    message: e.to_string(),
                })
                .await;
                false
            }
        }
    }

    /// Queues an event; `flush` stores it and then broadcasts it.
    async fn publish(&mut self, kind: EventKind) {
        let at = now_ms();
        let (message_type, kind_name, content) = kind.transcript_columns();
        let record = MessageRecord {
            seq: 0,
            id: Uuid::new_v4().to_string(),
            session_id: self.record.id.clone(),
            message_type: message_type.to_owned(),
            kind: kind_name.to_owned(),
            content,
            event: serde_json::to_value(&kind).unwrap_or(Value::Null),
            timestamp: at,
        };
        let event = SessionEvent {
            session_id: self.record.id.clone(),
            seq: -1,
            at,
            kind,
        };
        self.outbox.push((record, event));
    }

    /// Stores the queued events in one transaction, then broadcasts them in order: nothing is
    /// seen before it is durable. A failed write is logged and the events are still delivered
    /// (`seq` -1): hiding e.g. an approval request would hang the turn.
    async fn flush(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        let (records, mut events): (Vec<MessageRecord>, Vec<SessionEvent>) =
            std::mem::take(&mut self.outbox).into_iter().unzip();
        match self.store.append_messages(records).await {
            Ok(seqs) => {
                for (event, seq) in events.iter_mut().zip(seqs) {
                    event.seq = seq;
                }
            }
            Err(e) => {
                tracing::error!(session = %self.record.id, "storing {} events failed: {e}", events.len());
            }
        }
        for event in events {
            if let Some(observers) = &self.observers {
                observers.publish(&event);
            }
            let seq = event.seq;
            // No subscribers is fine: the transcript has it.
            let _ = self.events.send(event);
            if seq > 0 {
                self.published.store(seq, Ordering::SeqCst);
            }
        }
    }

    /// Applies `input` through the table; on a change, stores and publishes the new status.
    async fn transition(&mut self, input: SessionInput) -> Result<(), IllegalTransition> {
        let from = self.state;
        let to = next_state(from, input)?;
        if to != from {
            self.state = to;
            self.record.status = to.as_str().to_owned();
            if let Err(e) = self
                .store
                .set_session_status(&self.record.id, to.as_str())
                .await
            {
                tracing::error!(session = %self.record.id, "storing status {to} failed: {e}");
            }
            let prompt_id = (to == SessionState::Running)
                .then(|| self.current_prompt.clone())
                .flatten();
            self.publish(EventKind::StatusChanged {
                from,
                to,
                prompt_id,
            })
            .await;
        }
        Ok(())
    }

    /// Logs a transition the CLI forced on us in an unexpected state instead of failing: the
    /// CLI's view wins, we only keep our bookkeeping honest.
    async fn follow(&mut self, input: SessionInput) {
        if let Err(e) = self.transition(input).await {
            tracing::debug!(session = %self.record.id, "ignored: {e}");
        }
    }

    async fn audit(&mut self, actor: &str, action: &str, detail: Value) {
        if let Err(e) = self
            .store
            .audit(Some(&self.record.id), actor, action, detail)
            .await
        {
            tracing::error!(session = %self.record.id, "audit log write failed: {e}");
        }
    }

    // -----------------------------------------------------------------------------------------
    // commands

    async fn on_command(&mut self, command: Command) {
        match command {
            // Replies go out after `flush`, so a caller that got Ok finds its events stored.
            Command::Prompt {
                content,
                author,
                reply,
            } => {
                let result = self.on_prompt(content, author).await;
                self.flush().await;
                let _ = reply.send(result);
            }
            Command::Approve {
                request_id,
                decision,
                by,
                reply,
            } => {
                let result = self.on_approve(request_id, decision, by).await;
                self.flush().await;
                let _ = reply.send(result);
            }
            Command::Interrupt { by, reply } => {
                let result = self.on_interrupt(by).await;
                self.flush().await;
                let _ = reply.send(result);
            }
            Command::Stop { by, reply } => self.on_stop(by, reply).await,
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Change { change, by, reply } => self.on_change(change, by, reply).await,
        }
    }

    fn status(&self) -> SessionStatus {
        let mut pending: Vec<PendingApprovalInfo> = self
            .pending
            .iter()
            .map(|(id, p)| PendingApprovalInfo {
                request_id: id.clone(),
                tool: p.tool.clone(),
                input: p.input.clone(),
            })
            .collect();
        pending.sort_by(|a, b| a.request_id.cmp(&b.request_id));
        let stderr_tail = match &self.process {
            Some(p) => p
                .stderr_tail
                .lock()
                .map(|t| t.iter().cloned().collect())
                .unwrap_or_default(),
            None => self.last_stderr.clone(),
        };
        SessionStatus {
            session_id: self.record.id.clone(),
            state: self.state,
            cli_session_id: self.record.cli_session_id.clone(),
            pid: self.process.as_ref().and_then(|p| p.signals.pid()),
            current_prompt: self.current_prompt.clone(),
            queued_prompts: self
                .queue
                .iter()
                .map(|q| q.content.words().to_owned())
                .collect(),
            pending_approvals: pending,
            last_exit: self.last_exit,
            stderr_tail,
        }
    }

    async fn on_prompt(
        &mut self,
        content: PromptContent,
        author: String,
    ) -> Result<String, SessionError> {
        next_state(self.state, SessionInput::Prompt)?;
        if self.queue.len() >= MAX_QUEUED_PROMPTS {
            return Err(SessionError::QueueFull);
        }
        let queued_images: usize = self.queue.iter().map(|q| q.content.image_bytes()).sum();
        if content.image_bytes() > 0
            && queued_images + content.image_bytes() > MAX_QUEUED_IMAGE_BYTES
        {
            return Err(SessionError::QueuedImagesFull(queued_images));
        }
        let prompt_id = Uuid::new_v4().to_string();
        // The transcript keeps the text, which names the images; their bytes go to the CLI only.
        self.publish(EventKind::Prompt {
            prompt_id: prompt_id.clone(),
            author,
            text: content.text.clone(),
            words_at: content.words_at,
        })
        .await;
        self.queue.push_back(QueuedPrompt {
            id: prompt_id.clone(),
            content,
        });
        if !self.state.has_process() {
            // Stopped or crashed: a new process, resuming the stored conversation.
            if let Err(e) = self.launch() {
                self.queue.clear();
                self.publish(EventKind::Error {
                    error: SessionErrorKind::Spawn,
                    message: e.to_string(),
                })
                .await;
                return Err(e.into());
            }
            self.transition(SessionInput::Prompt).await?;
            self.record_process().await;
            self.send_initialize().await;
        }
        self.pump().await;
        Ok(prompt_id)
    }

    /// Sends the next queued prompt if the CLI is idle; otherwise (re)arms the idle timer.
    async fn pump(&mut self) {
        if self.state != SessionState::Idle {
            return;
        }
        let Some(next) = self.queue.pop_front() else {
            self.idle_deadline = Some(Instant::now() + self.config.get().idle_timeout);
            return;
        };
        self.idle_deadline = None;
        let uuid = Uuid::parse_str(&next.id).unwrap_or_else(|_| Uuid::new_v4());
        self.current_prompt = Some(next.id);
        if self
            .send_to_cli(StdinMessage::user(next.content.into_input(), uuid))
            .await
        {
            self.follow(SessionInput::TurnStarted).await;
        }
    }

    async fn on_interrupt(&mut self, by: String) -> Result<(), SessionError> {
        next_state(self.state, SessionInput::Interrupt)?;
        self.audit(&by, "interrupt", Value::Null).await;
        let id = new_request_id();
        if !self
            .send_to_cli(StdinMessage::request(id, HostRequest::Interrupt {}))
            .await
        {
            return Err(SessionError::NoProcess);
        }
        Ok(())
    }

    async fn on_stop(&mut self, by: String, reply: oneshot::Sender<Result<(), SessionError>>) {
        self.audit(&by, "stop", Value::Null).await;
        match self.state {
            SessionState::Stopped | SessionState::Crashed => {
                let result = self
                    .transition(SessionInput::Stop)
                    .await
                    .map_err(Into::into);
                self.flush().await;
                let _ = reply.send(result);
            }
            _ => {
                if let Err(e) = self.transition(SessionInput::Stop).await {
                    let _ = reply.send(Err(e.into()));
                    return;
                }
                self.stop_waiters.push(reply);
                self.begin_stop().await;
            }
        }
    }

    /// SIGTERM to the whole group now, SIGKILL after the grace period.
    async fn begin_stop(&mut self) {
        self.idle_deadline = None;
        self.startup_deadline = None;
        self.queue.clear();
        self.cancel_pending().await;
        if self.kill_deadline.is_none() {
            if let Some(p) = &self.process {
                p.signals.terminate();
            }
            self.kill_deadline = Some(Instant::now() + self.config.get().stop_grace);
        }
    }

    /// Withdraws every pending approval (the process is going away or the turn ended).
    async fn cancel_pending(&mut self) {
        let ids: Vec<String> = self.pending.drain().map(|(id, _)| id).collect();
        for request_id in ids {
            if let Err(e) = self
                .store
                .decide_approval(&request_id, None, "cancelled", None, Default::default())
                .await
            {
                tracing::error!(session = %self.record.id, "storing a cancelled approval failed: {e}");
            }
            self.publish(EventKind::ToolApprovalCancelled { request_id })
                .await;
        }
    }

    // -----------------------------------------------------------------------------------------
    // deadlines

    async fn on_deadline(&mut self) {
        let now = Instant::now();
        if self.startup_deadline.is_some_and(|d| d <= now) {
            self.startup_deadline = None;
            self.publish(EventKind::Error {
                error: SessionErrorKind::StartupTimeout,
                message: format!(
                    "the CLI did not answer initialize within {:?}; killing it",
                    self.config.get().startup_timeout
                ),
            })
            .await;
            // Its exit then arrives as a crash, with the stderr tail.
            if let Some(p) = &self.process {
                p.signals.kill();
            }
        }
        if self.kill_deadline.is_some_and(|d| d <= now) {
            self.kill_deadline = None;
            if let Some(p) = &self.process {
                p.signals.kill();
            }
        }
        if self.idle_deadline.is_some_and(|d| d <= now) {
            self.idle_deadline = None;
            if self.transition(SessionInput::IdleTimeout).await.is_ok() {
                self.audit("engine", "idle_timeout", Value::Null).await;
                self.begin_stop().await;
            }
        }
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for request_id in expired {
            self.expire(request_id).await;
        }
    }
}
