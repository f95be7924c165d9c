//! How a session gets a CLI: the real process, or (in unit tests) an in-process fake over
//! pipes. The actor only sees streams, an exit future and a way to signal the process group.

use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::pin::Pin;

use nix::sys::signal::Signal;
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

struct GroupSignals {
    pgid: i32,
}

impl ProcessSignals for GroupSignals {
    fn terminate(&self) {
        if let Err(e) = signal_group(self.pgid, Signal::SIGTERM) {
            tracing::warn!(pgid = self.pgid, "SIGTERM to the CLI's group failed: {e}");
        }
    }
    fn kill(&self) {
        if let Err(e) = signal_group(self.pgid, Signal::SIGKILL) {
            tracing::warn!(pgid = self.pgid, "SIGKILL to the CLI's group failed: {e}");
        }
    }
    fn pid(&self) -> Option<u32> {
        u32::try_from(self.pgid).ok()
    }
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
            signals: Box::new(GroupSignals { pgid: process.pgid }),
        })
    }
}
