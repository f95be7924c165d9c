//! How a session gets a CLI: the real process, or (in unit tests) an in-process fake over
//! pipes. The actor only sees streams, an exit future and a way to signal the process group.

use std::collections::HashMap;
use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
#[cfg(test)]
use tokio::io::BufReader;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::claude::spawn::{signal_group, spawn, CliEnv, SpawnError};
use crate::claude::CliSpec;

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
}

pub struct LaunchedCli {
    pub stdin: BoxedWrite,
    pub stdout: BoxedRead,
    pub stderr: BoxedRead,
    /// Resolves when the process has exited (and was reaped).
    pub exit: ExitFuture,
    pub signals: Box<dyn ProcessSignals>,
}

pub trait CliLauncher: Send + Sync {
    fn launch(&self, spec: &CliSpec, project_dir: &Path) -> Result<LaunchedCli, SpawnError>;
}

/// Spawns the real `claude` executable in its own process group.
pub struct ProcessLauncher {
    pub env: CliEnv,
}

/// How often the groups of a live CLI's descendants are recorded (see [`GroupSignals`]).
const TRACK_EVERY: Duration = Duration::from_secs(1);

/// Signals the CLI's process group AND the groups of its descendants.
///
/// Observed with CLI 2.1.330: the Bash tool runs each command under `setsid` (`/bin/bash -c …`
/// is the leader of its own session and group), so `killpg` on the CLI's group alone does not
/// reach a running `sleep 1000`. SIGTERM lets the CLI kill it itself, SIGKILL does not. And once
/// the CLI is gone its descendants are re-parented to init and can no longer be found from it.
/// So the descendants' groups are recorded while the CLI lives (every [`TRACK_EVERY`], and at
/// every signal), and a signal reaches the recorded groups too, also after the CLI died.
struct GroupSignals {
    pgid: i32,
    /// Group id -> members seen in it, as `(pid, start time)`.
    descendant_groups: Mutex<HashMap<i32, Vec<(i32, u64)>>>,
}

impl GroupSignals {
    fn remember_descendants(&self) -> HashMap<i32, Vec<(i32, u64)>> {
        let mut fresh = descendant_groups(self.pgid);
        fresh.remove(&self.pgid);
        if let Ok(mut known) = self.descendant_groups.lock() {
            for (group, members) in &fresh {
                let seen = known.entry(*group).or_default();
                for member in members {
                    if !seen.contains(member) {
                        seen.push(*member);
                    }
                }
            }
        }
        fresh
    }

    fn signal_all(&self, signal: Signal) {
        let fresh = self.remember_descendants();
        let known: Vec<(i32, Vec<(i32, u64)>)> = self
            .descendant_groups
            .lock()
            .map(|g| g.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default();
        // A group recorded earlier is signalled only while one of the processes seen in it is
        // still there and still in it: its id cannot have been reused by another group.
        let still_ours = |group: i32, members: &[(i32, u64)]| {
            fresh.contains_key(&group)
                || members.iter().any(|&(pid, start)| {
                    process_info(pid).is_some_and(|p| p.start == start && p.pgrp == group)
                })
        };
        let groups = known
            .iter()
            .filter(|(group, members)| still_ours(*group, members))
            .map(|(group, _)| *group);
        for pgid in std::iter::once(self.pgid).chain(groups) {
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
}

/// What `/proc/<pid>/stat` says of a process that matters here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcInfo {
    ppid: i32,
    pgrp: i32,
    /// Start time in clock ticks after boot: with the pid, names one process for good.
    start: u64,
}

fn process_info(pid: i32) -> Option<ProcInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the LAST ')'.
    let (_, rest) = stat.rsplit_once(") ")?;
    // Fields from the third (state) on; ppid, pgrp and starttime are the 4th, 5th and 22nd.
    let fields: Vec<&str> = rest.split(' ').collect();
    Some(ProcInfo {
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// The process groups of every live descendant of `root`, with the members seen in each.
pub fn descendant_groups(root: i32) -> HashMap<i32, Vec<(i32, u64)>> {
    let mut table: Vec<(i32, ProcInfo)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if let Some(info) = process_info(pid) {
                table.push((pid, info));
            }
        }
    }
    let mut parents = vec![root];
    let mut groups: HashMap<i32, Vec<(i32, u64)>> = HashMap::new();
    while let Some(parent) = parents.pop() {
        for (pid, info) in &table {
            if info.ppid == parent {
                groups
                    .entry(info.pgrp)
                    .or_default()
                    .push((*pid, info.start));
                parents.push(*pid);
            }
        }
    }
    groups
}

impl CliLauncher for ProcessLauncher {
    fn launch(&self, spec: &CliSpec, project_dir: &Path) -> Result<LaunchedCli, SpawnError> {
        let process = spawn(spec, &self.env, project_dir)?;
        let mut child = process.child;
        let signals = Arc::new(GroupSignals {
            pgid: process.pgid,
            descendant_groups: Mutex::new(HashMap::new()),
        });
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
                        let _ = tokio::task::spawn_blocking(move || tracked.remember_descendants()).await;
                    }
                }
            };
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
        let launcher = ProcessLauncher {
            env: CliEnv {
                cli_path: script,
                home_dir: root.join("home"),
                path: std::env::var_os("PATH"),
                ..CliEnv::default()
            },
        };
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
