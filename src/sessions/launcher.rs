//! How a session gets a CLI: the real process, or (in unit tests) an in-process fake over
//! pipes. The actor only sees streams, an exit future and a way to signal the process group.

use std::collections::HashSet;
use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::pin::Pin;
use std::sync::Mutex;

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

/// Signals the CLI's process group AND the groups of its descendants.
///
/// Observed with CLI 2.1.330: the Bash tool runs each command under `setsid` (`/bin/bash -c …`
/// is the leader of its own session and group), so `killpg` on the CLI's group alone does not
/// reach a running `sleep 1000`. SIGTERM lets the CLI kill it itself, SIGKILL does not. So every
/// signal first walks /proc for the CLI's descendants (while the CLI is alive, before they are
/// re-parented to init) and remembers their groups; `kill` then reaches those groups too.
struct GroupSignals {
    pgid: i32,
    descendant_groups: Mutex<HashSet<i32>>,
}

impl GroupSignals {
    fn remember_descendants(&self) {
        let groups = descendant_groups(self.pgid);
        if let Ok(mut known) = self.descendant_groups.lock() {
            known.extend(groups.into_iter().filter(|g| *g != self.pgid));
        }
    }

    fn signal_all(&self, signal: Signal) {
        self.remember_descendants();
        let groups: Vec<i32> = self
            .descendant_groups
            .lock()
            .map(|g| g.iter().copied().collect())
            .unwrap_or_default();
        for pgid in std::iter::once(self.pgid).chain(groups) {
            if let Err(e) = signal_group(pgid, signal) {
                tracing::warn!(pgid, "{signal:?} to a CLI process group failed: {e}");
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

/// `(ppid, pgrp)` of a process, from `/proc/<pid>/stat`.
fn parent_and_group(pid: i32) -> Option<(i32, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the LAST ')'.
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut fields = rest.split(' ');
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((ppid, pgrp))
}

/// Process groups of every live descendant of `root`.
pub fn descendant_groups(root: i32) -> HashSet<i32> {
    let mut table: Vec<(i32, i32, i32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if let Some((ppid, pgrp)) = parent_and_group(pid) {
                table.push((pid, ppid, pgrp));
            }
        }
    }
    let mut parents = vec![root];
    let mut groups = HashSet::new();
    while let Some(parent) = parents.pop() {
        for (pid, ppid, pgrp) in &table {
            if *ppid == parent {
                groups.insert(*pgrp);
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
        let exit: ExitFuture = Box::pin(async move {
            match child.wait().await {
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
            signals: Box::new(GroupSignals {
                pgid: process.pgid,
                descendant_groups: Mutex::new(HashSet::new()),
            }),
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

    /// Like the CLI's Bash tool: a child in its own session, out of reach of killpg on the
    /// CLI's group. SIGKILL (which the CLI cannot forward) must still reach it.
    #[tokio::test]
    async fn kill_reaches_children_that_left_the_group() {
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
        let cli = launcher
            .launch(&CliSpec::new(SessionStart::New(uuid::Uuid::nil())), &root)
            .expect("launch");
        let mut out = BufReader::new(cli.stdout);
        let mut line = String::new();
        tokio::io::AsyncBufReadExt::read_line(&mut out, &mut line)
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
            if parent_and_group(child).is_some_and(|(_, g)| g == child) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let own_group = parent_and_group(child).map(|(_, g)| g);
        let found = descendant_groups(cli_pid).contains(&child);
        // Kill before asserting, so a failure leaves no sleeper behind.
        cli.signals.kill();
        assert_eq!(own_group, Some(child), "setsid worked");
        assert!(found, "the child's group was found under the CLI");
        cli.exit.await;
        let mut gone = false;
        for _ in 0..100 {
            if !alive(child) {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let _ = std::fs::remove_dir_all(&root);
        assert!(gone, "the setsid'd child {child} survived");
    }
}
