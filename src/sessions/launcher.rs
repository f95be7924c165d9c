//! How a session gets a CLI: the real process, or (in unit tests) an in-process fake over
//! pipes. The actor only sees streams, an exit future and a way to signal the process group.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
#[cfg(test)]
use tokio::io::BufReader;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::claude::spawn::{signal_group, spawn_leased, CliEnv, SpawnError};
use crate::claude::CliSpec;
use crate::proctree::{descendant_groups, process_info, ProcessIdentity};

/// How a CLI process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitInfo {
    pub fn from_status(status: std::process::ExitStatus) -> Self {
        Self {
            code: status.code(),
            signal: status.signal(),
        }
    }
}

pub type BoxedWrite = Pin<Box<dyn AsyncWrite + Send>>;
pub type BoxedRead = Pin<Box<dyn AsyncRead + Send>>;
pub type ExitFuture = Pin<Box<dyn Future<Output = ExitInfo> + Send>>;

/// Signals for a launched CLI and everything it started.
pub trait ProcessSignals: Send + Sync {
    /// Polite: SIGTERM to the whole group (the CLI exits 143 within ~50 ms).
    fn terminate(&self);
    /// Final: SIGKILL to the whole group.
    fn kill(&self);
    fn pid(&self) -> Option<u32>;
    /// The process as a later run of the plugin can find it again (see
    /// [`crate::proctree::ProcessIdentity`]); None for an in-process fake.
    fn identity(&self) -> Option<ProcessIdentity>;
}

pub struct LaunchedCli {
    pub stdin: BoxedWrite,
    pub stdout: BoxedRead,
    pub stderr: BoxedRead,
    /// Resolves when the process has exited (and was reaped).
    pub exit: ExitFuture,
    pub signals: Box<dyn ProcessSignals>,
}

/// Until when a session's CLI may run: its lease's local validity, renewed with the lease
/// (None, or the sender gone: the lease is lost or released, the CLI must stop now).
pub type Deadline = watch::Receiver<Option<Instant>>;

/// Where the engine learns each session's [`Deadline`] (the cluster's leases); none for a
/// session means its CLI runs without one.
pub trait Deadlines: Send + Sync {
    fn deadline(&self, session: &str) -> Option<Deadline>;
}

pub trait CliLauncher: Send + Sync {
    fn launch(&self, spec: &CliSpec, project_dir: &Path) -> Result<LaunchedCli, SpawnError>;

    /// [`CliLauncher::launch`], the CLI stopped by its supervisor once `deadline` runs out, even
    /// while the plugin cannot act (paused, hung). A launcher without a supervisor (the
    /// in-process fake of the unit tests) has nothing to hand it to.
    fn launch_until(
        &self,
        spec: &CliSpec,
        project_dir: &Path,
        deadline: Option<Deadline>,
    ) -> Result<LaunchedCli, SpawnError> {
        let _ = deadline;
        self.launch(spec, project_dir)
    }
}

/// Spawns the real `claude` executable in its own process group, with the environment set
/// last: settings saved while the plugin runs reach the next CLI started (a new session or a
/// resume) without a restart.
pub struct ProcessLauncher {
    env: std::sync::RwLock<CliEnv>,
}

impl ProcessLauncher {
    pub fn new(env: CliEnv) -> Self {
        ProcessLauncher {
            env: std::sync::RwLock::new(env),
        }
    }

    /// The environment of every CLI started from now on; running ones keep theirs.
    pub(crate) fn set_env(&self, env: CliEnv) {
        *self.env.write().unwrap_or_else(|p| p.into_inner()) = env;
    }

    /// The environment the next CLI gets.
    pub(crate) fn env(&self) -> CliEnv {
        self.env.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// How often the groups of a live CLI's descendants are recorded (see [`GroupSignals`]).
const TRACK_EVERY: Duration = Duration::from_secs(1);

/// Signals the CLI's process group AND the groups of its descendants.
///
/// Observed with CLI 2.1.330: the Bash tool runs each command under `setsid` (`/bin/bash -c …`
/// is the leader of its own session and group), so `killpg` on the CLI's group alone does not
/// reach a running `sleep 1000`. SIGTERM lets the CLI kill it itself, SIGKILL does not. And once
/// the CLI is gone its descendants are re-parented to init and can no longer be found from it.
/// So the groups of the CLI and its descendants are recorded while the CLI lives (every
/// [`TRACK_EVERY`], and at every signal), and a signal reaches the recorded groups too, also
/// after the CLI died.
struct GroupSignals {
    pgid: i32,
    /// Read right after the spawn, before anything could reap the child.
    identity: Option<ProcessIdentity>,
    /// Set once the CLI has been reaped: from then on its pid (= its group id) may belong to
    /// another process, so nothing is signalled without proof it is still ours.
    reaped: AtomicBool,
    /// Group id -> its members seen alive at the last look, as `(pid, start time)`.
    groups: Mutex<HashMap<i32, HashSet<(i32, u64)>>>,
}

impl GroupSignals {
    fn new(pgid: i32) -> Self {
        GroupSignals {
            pgid,
            identity: ProcessIdentity::of(pgid),
            reaped: AtomicBool::new(false),
            groups: Mutex::new(HashMap::new()),
        }
    }

    /// Re-checks the recorded members (dropping those gone or moved, and empty groups) and,
    /// while the CLI is not reaped, adds the groups of its live descendants.
    fn refresh(&self) {
        let fresh = if self.reaped.load(Ordering::Acquire) {
            HashMap::new()
        } else {
            descendant_groups(self.pgid)
        };
        let Ok(mut known) = self.groups.lock() else {
            return;
        };
        known.retain(|&group, members| {
            members.retain(|&(pid, start)| {
                process_info(pid).is_some_and(|p| p.start == start && p.pgrp == group)
            });
            !members.is_empty()
        });
        for (group, members) in fresh {
            known.entry(group).or_default().extend(members);
        }
    }

    fn signal_all(&self, signal: Signal) {
        self.refresh();
        // A recorded group still has a member seen in it (same pid and start time, same
        // group): its id cannot have been reused. The CLI's own group is signalled as such
        // while the CLI is unreaped (its pid cannot be reused before that).
        let mut groups: HashSet<i32> = self
            .groups
            .lock()
            .map(|g| g.keys().copied().collect())
            .unwrap_or_default();
        if !self.reaped.load(Ordering::Acquire) {
            groups.insert(self.pgid);
        }
        for pgid in groups {
            if let Err(e) = signal_group(pgid, signal) {
                tracing::debug!(pgid, "{signal:?} to a CLI process group: {e}");
            }
        }
    }
}

impl ProcessSignals for GroupSignals {
    fn terminate(&self) {
        self.signal_all(Signal::SIGTERM);
    }
    fn kill(&self) {
        self.signal_all(Signal::SIGKILL);
    }
    fn pid(&self) -> Option<u32> {
        u32::try_from(self.pgid).ok()
    }
    fn identity(&self) -> Option<ProcessIdentity> {
        self.identity.clone()
    }
}

impl<T: ProcessSignals> ProcessSignals for Arc<T> {
    fn terminate(&self) {
        (**self).terminate();
    }
    fn kill(&self) {
        (**self).kill();
    }
    fn pid(&self) -> Option<u32> {
        (**self).pid()
    }
    fn identity(&self) -> Option<ProcessIdentity> {
        (**self).identity()
    }
}

/// Writes each new value of `deadline` into the lease pipe, as the supervisor reads it (8
/// bytes, little-endian, CLOCK_MONOTONIC milliseconds); closes the pipe (EOF: the supervisor
/// stops the CLI) once the deadline is None or its sender is gone.
fn spawn_lease_writer(
    mut pipe: std::fs::File,
    mut deadline: Deadline,
) -> tokio::task::JoinHandle<()> {
    // Never waits: a pipe the supervisor stopped draining (8192 renewals later) is an error.
    let nonblocking = nix::fcntl::fcntl(
        &pipe,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    tokio::spawn(async move {
        if nonblocking.is_err() {
            return;
        }
        loop {
            let Some(until) = *deadline.borrow_and_update() else {
                return;
            };
            let left = until.saturating_duration_since(Instant::now());
            let at = crate::supervisor::monotonic_ms()
                .saturating_add(u64::try_from(left.as_millis()).unwrap_or(u64::MAX));
            // An error means the supervisor is gone (and with it the CLI) or hangs: closing the
            // pipe is all there is left to do.
            if pipe.write_all(&at.to_le_bytes()).is_err() || deadline.changed().await.is_err() {
                return;
            }
        }
    })
}

impl CliLauncher for ProcessLauncher {
    fn launch(&self, spec: &CliSpec, project_dir: &Path) -> Result<LaunchedCli, SpawnError> {
        self.launch_until(spec, project_dir, None)
    }

    fn launch_until(
        &self,
        spec: &CliSpec,
        project_dir: &Path,
        deadline: Option<Deadline>,
    ) -> Result<LaunchedCli, SpawnError> {
        // Both ends close-on-exec; the supervisor alone inherits the read end (see spawn).
        let lease = deadline
            .map(|d| {
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                    .map(|(read, write)| (read, std::fs::File::from(write), d))
            })
            .transpose()
            .map_err(|e| SpawnError::Io(e.into()))?;
        let process = spawn_leased(
            spec,
            &self.env(),
            project_dir,
            lease.as_ref().map(|(read, _, _)| read.as_fd()),
        )?;
        // The read end now lives in the supervisor only: its EOF is the plugin's end.
        let writer = lease.map(|(_, write, deadline)| spawn_lease_writer(write, deadline));
        let mut child = process.child;
        let signals = Arc::new(GroupSignals::new(process.pgid));
        let tracked = signals.clone();
        let exit: ExitFuture = Box::pin(async move {
            let mut track = tokio::time::interval(TRACK_EVERY);
            track.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let waited = loop {
                tokio::select! {
                    waited = child.wait() => break waited,
                    _ = track.tick() => {
                        let tracked = tracked.clone();
                        // /proc reads block: off the runtime's thread.
                        let _ = tokio::task::spawn_blocking(move || tracked.refresh()).await;
                    }
                }
            };
            tracked.reaped.store(true, Ordering::Release);
            if let Some(writer) = writer {
                writer.abort();
            }
            match waited {
                Ok(status) => ExitInfo::from_status(status),
                // Waiting only fails if the child was already reaped elsewhere; report unknown.
                Err(_) => ExitInfo {
                    code: None,
                    signal: None,
                },
            }
        });
        Ok(LaunchedCli {
            stdin: Box::pin(process.stdin),
            stdout: Box::pin(process.stdout),
            stderr: Box::pin(process.stderr),
            exit,
            signals: Box::new(signals),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claude::SessionStart;
    use std::os::unix::fs::PermissionsExt;

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").and_then(|(_, r)| r.chars().next()))
            .is_some_and(|state| state != 'Z' && state != 'X')
    }

    /// Settings saved in System Console while the plugin runs: the CLI started next is the one
    /// configured last.
    #[tokio::test]
    async fn the_next_launch_uses_the_environment_set_last() {
        let root =
            std::env::temp_dir().join(format!("cc-launcher-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&root).expect("temp dir");
        let launcher = ProcessLauncher::new(CliEnv {
            cli_path: root.join("old-claude-that-is-gone"),
            home_dir: root.join("home"),
            path: std::env::var_os("PATH"),
            ..CliEnv::default()
        });
        let spec = CliSpec::new(SessionStart::New(uuid::Uuid::nil()));
        assert!(launcher.launch(&spec, &root).is_err());
        let script = root.join("new-claude");
        std::fs::write(&script, "#!/bin/sh\necho new\nexec cat > /dev/null\n").expect("script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        launcher.set_env(CliEnv {
            cli_path: script.clone(),
            ..launcher.env()
        });
        let mut cli = launcher.launch(&spec, &root).expect("launch");
        let mut line = String::new();
        tokio::io::AsyncBufReadExt::read_line(&mut BufReader::new(&mut cli.stdout), &mut line)
            .await
            .expect("a line");
        assert_eq!(line, "new\n");
        cli.signals.kill();
        cli.exit.await;
        let _ = std::fs::remove_dir_all(&root);
    }

    /// A fake CLI that, like the CLI's Bash tool, starts a child in its own session (out of
    /// reach of killpg on the CLI's group), then waits on stdin. Returns the launched CLI, its
    /// pid, the child's pid (once it has left the group) and the temp dir to remove.
    async fn launch_with_setsid_child() -> (LaunchedCli, i32, i32, std::path::PathBuf) {
        let root =
            std::env::temp_dir().join(format!("cc-launcher-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&root).expect("temp dir");
        let script = root.join("fake-claude");
        std::fs::write(
            &script,
            "#!/bin/sh\nsetsid sleep 300 &\necho $! > \"$HOME/child\"\necho ready\nexec cat > /dev/null\n",
        )
        .expect("script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let launcher = ProcessLauncher::new(CliEnv {
            cli_path: script,
            home_dir: root.join("home"),
            path: std::env::var_os("PATH"),
            ..CliEnv::default()
        });
        let mut cli = launcher
            .launch(&CliSpec::new(SessionStart::New(uuid::Uuid::nil())), &root)
            .expect("launch");
        let mut line = String::new();
        tokio::io::AsyncBufReadExt::read_line(&mut BufReader::new(&mut cli.stdout), &mut line)
            .await
            .expect("ready");
        let child: i32 = std::fs::read_to_string(root.join("home/child"))
            .expect("child pid")
            .trim()
            .parse()
            .expect("number");
        let cli_pid = cli
            .signals
            .pid()
            .and_then(|p| i32::try_from(p).ok())
            .expect("pid");
        // `setsid` runs in the background child: wait until it has left the CLI's group.
        for _ in 0..100 {
            if process_info(child).is_some_and(|p| p.pgrp == child) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (cli, cli_pid, child, root)
    }

    async fn gone(pid: i32) -> bool {
        for _ in 0..100 {
            if !alive(pid) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Records the deadline each launch got (its value then), around the in-process fake.
    #[derive(Default)]
    struct Leased {
        fake: crate::sessions::fake_cli::FakeLauncher,
        got: Mutex<Vec<Option<Option<Instant>>>>,
    }

    impl CliLauncher for Leased {
        fn launch(&self, spec: &CliSpec, dir: &Path) -> Result<LaunchedCli, SpawnError> {
            self.launch_until(spec, dir, None)
        }
        fn launch_until(
            &self,
            spec: &CliSpec,
            dir: &Path,
            deadline: Option<Deadline>,
        ) -> Result<LaunchedCli, SpawnError> {
            if let Ok(mut got) = self.got.lock() {
                got.push(deadline.map(|d| *d.borrow()));
            }
            self.fake.launch(spec, dir)
        }
    }

    /// The sessions asked for, each answered with the same deadline.
    struct Table {
        until: Instant,
        asked: Mutex<Vec<String>>,
        senders: Mutex<Vec<watch::Sender<Option<Instant>>>>,
    }

    impl Deadlines for Table {
        fn deadline(&self, session: &str) -> Option<Deadline> {
            self.asked.lock().ok()?.push(session.to_owned());
            let (tx, rx) = watch::channel(Some(self.until));
            self.senders.lock().ok()?.push(tx);
            Some(rx)
        }
    }

    /// Each launch of a session's CLI, the first and a resume after a restart, gets the
    /// session's deadline once the engine has deadlines; none before.
    #[tokio::test]
    async fn every_launch_gets_its_sessions_deadline() {
        use crate::sessions::{Engine, SessionConfig, SessionSpec};
        let dir = std::env::temp_dir().join(format!("cc-leased-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store = crate::store::Store::open(&dir.join("db"))
            .await
            .expect("store");
        let launcher = Arc::new(Leased::default());
        let spec = || SessionSpec {
            channel_id: "chan".into(),
            owner_id: "alice".into(),
            project_path: dir.clone(),
            model: None,
            permission_mode: None,
        };
        let engine = Engine::new(store.clone(), launcher.clone(), SessionConfig::default());
        let before = engine.start(spec()).await.expect("start");
        let until = Instant::now() + Duration::from_secs(30);
        let table = Arc::new(Table {
            until,
            asked: Mutex::new(Vec::new()),
            senders: Mutex::new(Vec::new()),
        });
        engine.set_deadlines(table.clone());
        let leased = engine.start(spec()).await.expect("start");
        let id = leased.id().to_owned();
        drop((before, leased));
        drop(engine);
        // A restart: the session resumes at its next prompt.
        let engine = Engine::new(store, launcher.clone(), SessionConfig::default());
        engine.set_deadlines(table.clone());
        engine.recover_from_store().await.expect("recover");
        let session = engine.get(&id).expect("recovered");
        session.prompt("again", "alice").await.expect("prompt");
        for _ in 0..200 {
            if launcher.got.lock().unwrap().len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let got = launcher.got.lock().unwrap().clone();
        let asked = table.asked.lock().unwrap().clone();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got, [None, Some(Some(until)), Some(Some(until))]);
        assert_eq!(asked, [id.clone(), id]);
    }

    /// Members that are gone are forgotten, so the record does not grow over a long session,
    /// and a group id whose members all left is never signalled again.
    #[test]
    fn recorded_groups_forget_processes_that_are_gone() {
        let mut short = std::process::Command::new("sleep")
            .arg("0.05")
            .spawn()
            .expect("sleep");
        let pid = i32::try_from(short.id()).expect("pid");
        let info = process_info(pid).expect("alive");
        let signals = GroupSignals::new(i32::MAX);
        signals.reaped.store(true, Ordering::Release);
        signals
            .groups
            .lock()
            .unwrap()
            .insert(info.pgrp, HashSet::from([(pid, info.start)]));
        signals.refresh();
        assert_eq!(signals.groups.lock().unwrap().len(), 1, "still alive");
        short.wait().expect("reap");
        signals.refresh();
        assert!(signals.groups.lock().unwrap().is_empty());
    }

    /// Stopping a live CLI: SIGKILL (which the CLI cannot forward) must reach the child too.
    #[tokio::test]
    async fn kill_reaches_children_that_left_the_group() {
        let (cli, cli_pid, child, root) = launch_with_setsid_child().await;
        let own_group = process_info(child).map(|p| p.pgrp);
        let found = descendant_groups(cli_pid).contains_key(&child);
        // Kill before asserting, so a failure leaves no sleeper behind.
        cli.signals.kill();
        assert_eq!(own_group, Some(child), "setsid worked");
        assert!(found, "the child's group was found under the CLI");
        cli.exit.await;
        let _ = std::fs::remove_dir_all(&root);
        assert!(gone(child).await, "the setsid'd child {child} survived");
    }

    /// A CLI that dies on its own mid-command: its child is re-parented away and can no longer
    /// be found from it, but the group recorded while the CLI lived is still signalled.
    #[tokio::test]
    async fn a_cli_that_dies_does_not_leave_its_children_behind() {
        let (cli, cli_pid, child, root) = launch_with_setsid_child().await;
        let exit = tokio::spawn(cli.exit);
        // Let the tracking (driven by the exit future) record the child's group.
        tokio::time::sleep(TRACK_EVERY + Duration::from_millis(500)).await;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(cli_pid), Signal::SIGKILL)
            .expect("crash the CLI");
        let info = exit.await.expect("exit");
        let still_found = descendant_groups(cli_pid).contains_key(&child);
        let orphaned = alive(child);
        // What the actor does when the CLI has exited.
        cli.signals.kill();
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(info.signal, Some(9), "{info:?}");
        assert!(
            !still_found,
            "the child is no longer a descendant of the dead CLI"
        );
        assert!(
            orphaned,
            "the child outlived the CLI (else this test shows nothing)"
        );
        assert!(gone(child).await, "the orphaned child {child} survived");
    }
}
