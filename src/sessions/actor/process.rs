//! The CLI process of a session: starting (or resuming) it, the tasks that read its stdout
//! and stderr, and what its exit means for the session.

use super::*;

impl Actor {
    /// Starts the CLI (state must be `Starting`); errors are returned, not published, so that a
    /// session that never started leaves nothing behind.
    pub fn launch(&mut self) -> Result<(), SpawnError> {
        let start = match self
            .record
            .cli_session_id
            .as_deref()
            .and_then(|id| Uuid::parse_str(id).ok())
        {
            Some(id) => SessionStart::Resume(id),
            // Fresh id each time: an id the CLI never confirmed may be half-used on disk.
            None => SessionStart::New(Uuid::new_v4()),
        };
        let resumed = matches!(start, SessionStart::Resume(_));
        let mut spec = CliSpec::new(start);
        spec.model = self.record.model.clone();
        spec.permission_mode = self
            .record
            .permission_mode
            .as_deref()
            .and_then(parse_permission_mode);
        let project = PathBuf::from(&self.record.project_path);
        let deadline = self
            .deadlines
            .as_ref()
            .and_then(|d| d.deadline(&self.record.id));
        let cli = self.launcher.launch_until(&spec, &project, deadline)?;
        self.attach(cli, resumed);
        Ok(())
    }

    pub(super) fn attach(&mut self, cli: LaunchedCli, resumed: bool) {
        let LaunchedCli {
            stdin,
            stdout,
            stderr,
            exit,
            signals,
        } = cli;
        // Bounded: a CLI flooding stdout is slowed down instead of growing memory without limit.
        let (tx, output) = mpsc::channel(256);
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_done = spawn_stderr_collector(
            stderr,
            stderr_tail.clone(),
            self.config.get().stderr_tail_lines,
            self.record.id.clone(),
        );
        spawn_output_reader(stdout, exit, tx);
        let init_request_id = format!("init-{}", new_request_id());
        self.process = Some(Process {
            writer: CliWriter::new(stdin),
            output,
            signals,
            stderr_tail,
            stderr_done: Some(stderr_done),
            init_request_id,
            resumed,
            resume_failed: false,
            exited: false,
        });
        self.startup_deadline = Some(Instant::now() + self.config.get().startup_timeout);
    }

    pub(super) async fn on_exit(&mut self, info: ExitInfo) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        if process.resume_failed {
            // Retrying `--resume` would fail the same way forever. Our own transcript keeps the
            // history; the CLI starts a new conversation on the next prompt.
            self.record.cli_session_id = None;
            if let Err(e) = self.store.set_cli_session_id(&self.record.id, None).await {
                tracing::error!(session = %self.record.id, "forgetting the CLI session id failed: {e}");
            }
            self.publish(EventKind::Error {
                error: SessionErrorKind::ResumeFailed,
                message: "the CLI could not resume the earlier conversation; the next prompt starts a new one".into(),
            })
            .await;
        }
        process.exited = true;
        // Reap anything the CLI left in its group (a backgrounded Bash command).
        process.signals.kill();
        if let Some(stderr_done) = process.stderr_done.take() {
            let _ = tokio::time::timeout(Duration::from_millis(500), stderr_done).await;
        }
        self.last_stderr = process
            .stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        drop(process);
        self.last_exit = Some(info);
        self.startup_deadline = None;
        self.kill_deadline = None;
        self.idle_deadline = None;
        self.current_prompt = None;
        self.cancel_pending().await;
        if self.state == SessionState::Stopping {
            self.follow(SessionInput::ProcessExited).await;
        } else {
            let dropped_prompts = self.queue.len();
            self.queue.clear();
            tracing::warn!(session = %self.record.id, ?info, "the CLI exited unexpectedly");
            self.follow(SessionInput::ProcessExited).await;
            self.publish(EventKind::Crashed {
                exit_code: info.code,
                signal: info.signal,
                stderr_tail: self.last_stderr.clone(),
                dropped_prompts,
            })
            .await;
        }
        // Changes the CLI never answered still apply to the next spawn.
        let changes: Vec<PendingChange> = self.changes.drain().map(|(_, c)| c).collect();
        for pending in changes {
            self.finish_change(pending, None).await;
        }
        self.flush().await;
        for waiter in self.stop_waiters.drain(..) {
            let _ = waiter.send(Ok(()));
        }
    }
}

/// Keeps the last `keep` stderr lines and logs each one: stderr carries the CLI's fatal errors
/// and warnings, which a crash report must show.
pub(super) fn spawn_stderr_collector(
    stderr: BoxedRead,
    tail: Arc<Mutex<VecDeque<String>>>,
    keep: usize,
    session_id: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::warn!(session = %session_id, "CLI stderr: {line}");
            if let Ok(mut tail) = tail.lock() {
                if tail.len() == keep.max(1) {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
    })
}

/// Reads stdout in its own task (the reader is not cancel-safe, so it must not sit in the
/// actor's `select!`), then reports the exit once stdout is drained.
pub(super) fn spawn_output_reader(
    stdout: BoxedRead,
    exit: crate::sessions::launcher::ExitFuture,
    tx: mpsc::Sender<FromCli>,
) {
    let lines_tx = tx.clone();
    let reader = tokio::spawn(async move {
        let mut reader = CliReader::new(stdout);
        while let Some(item) = reader.next().await {
            let msg = match item {
                Ok(line) => FromCli::Line(Box::new(line)),
                Err(e @ ReadError::Garbage { .. }) => FromCli::Garbage(e.to_string()),
                Err(e) => FromCli::ReadFailed(e.to_string()),
            };
            if lines_tx.send(msg).await.is_err() {
                return;
            }
        }
    });
    tokio::spawn(async move {
        let info = exit.await;
        // A grandchild holding the pipe open must not delay the exit report forever.
        let mut reader = reader;
        if tokio::time::timeout(Duration::from_secs(2), &mut reader)
            .await
            .is_err()
        {
            reader.abort();
        }
        let _ = tx.send(FromCli::Exited(info)).await;
    });
}
