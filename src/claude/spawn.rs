//! Starting and stopping one CLI process.
//!
//! The child gets: cwd = the project dir (the CLI has no --cwd flag), a dedicated HOME (its
//! sessions, config and plans live there, not in the server user's home), an environment built
//! from scratch (nothing inherited: a stray `CLAUDE_CODE_*` or API key from the server's own
//! environment must not leak in), and its own process group so that stopping a session also
//! kills the Bash commands it started.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use super::args::{build_args, CliSpec};

/// Process-level settings shared by every session (from the plugin configuration).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CliEnv {
    /// Path of the `claude` executable.
    pub cli_path: PathBuf,
    /// The plugin's own HOME for CLI state; created (0700) if missing.
    pub home_dir: PathBuf,
    /// `PATH` for the child (tools like git/python must be found by Bash).
    pub path: Option<OsString>,
    pub lang: Option<OsString>,
    /// `ANTHROPIC_*` variables (API key, base URL, model overrides). Others are ignored.
    pub anthropic: Vec<(String, String)>,
    /// `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY` (either case).
    pub proxy: Vec<(String, String)>,
    pub disable_telemetry: bool,
    pub disable_nonessential_traffic: bool,
    pub disable_autoupdater: bool,
    /// `CLAUDE_CODE_MAX_RETRIES`: the default (10) can take ~3 minutes against a dead API.
    pub max_retries: Option<u32>,
    /// `CLAUDE_CODE_EMIT_SESSION_STATE_EVENTS=1`: running/requires_action/idle lines.
    pub emit_session_state_events: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("project directory {0} does not exist or is not a directory")]
    ProjectDirMissing(PathBuf),
    #[error("Claude Code CLI not found or not executable at {0}")]
    CliMissing(PathBuf),
    #[error("cannot create the CLI home directory {path}: {source}")]
    Home {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("spawning the CLI failed: {0}")]
    Io(#[source] std::io::Error),
}

/// The environment variables the child gets, in order. Pure, so it can be tested.
pub fn build_env(env: &CliEnv) -> Vec<(OsString, OsString)> {
    let mut vars: Vec<(OsString, OsString)> = Vec::new();
    if let Some(path) = &env.path {
        vars.push(("PATH".into(), path.clone()));
    }
    vars.push(("HOME".into(), env.home_dir.clone().into_os_string()));
    if let Some(lang) = &env.lang {
        vars.push(("LANG".into(), lang.clone()));
    }
    for (k, v) in &env.anthropic {
        if k.starts_with("ANTHROPIC_") {
            vars.push((k.into(), v.into()));
        }
    }
    const PROXY_VARS: [&str; 3] = ["HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"];
    for (k, v) in &env.proxy {
        if PROXY_VARS.contains(&k.to_ascii_uppercase().as_str()) {
            vars.push((k.into(), v.into()));
        }
    }
    let flags = [
        (env.disable_telemetry, "DISABLE_TELEMETRY"),
        (
            env.disable_nonessential_traffic,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
        ),
        (env.disable_autoupdater, "DISABLE_AUTOUPDATER"),
        (
            env.emit_session_state_events,
            "CLAUDE_CODE_EMIT_SESSION_STATE_EVENTS",
        ),
    ];
    for (on, name) in flags {
        if on {
            vars.push((name.into(), "1".into()));
        }
    }
    if let Some(n) = env.max_retries {
        vars.push(("CLAUDE_CODE_MAX_RETRIES".into(), n.to_string().into()));
    }
    vars
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Checks the preconditions and builds the command (not yet spawned).
pub fn build_command(
    spec: &CliSpec,
    env: &CliEnv,
    project_dir: &Path,
) -> Result<Command, SpawnError> {
    // Checked here because the OS reports a missing cwd exactly like a missing program (ENOENT).
    if !project_dir.is_dir() {
        return Err(SpawnError::ProjectDirMissing(project_dir.to_path_buf()));
    }
    if !is_executable_file(&env.cli_path) {
        return Err(SpawnError::CliMissing(env.cli_path.clone()));
    }
    create_home(&env.home_dir)?;
    let mut cmd = Command::new(&env.cli_path);
    cmd.args(build_args(spec))
        .current_dir(project_dir)
        .env_clear()
        .envs(build_env(env))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A new group whose id is the child's pid: killpg reaches its whole tree.
        .process_group(0)
        // If the owner of the handle goes away without stopping it, don't leave it running.
        .kill_on_drop(true);
    Ok(cmd)
}

fn create_home(home: &Path) -> Result<(), SpawnError> {
    let err = |source| SpawnError::Home {
        path: home.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(home).map_err(err)?;
    // CLI transcripts hold the conversation; keep them private to the plugin's user.
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700)).map_err(err)
}

/// A running CLI process with its pipes taken out.
pub struct CliProcess {
    pub child: Child,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
    /// Process group id (equal to the child's pid).
    pub pgid: i32,
}

/// Spawns the CLI for `spec` in `project_dir`.
pub fn spawn(spec: &CliSpec, env: &CliEnv, project_dir: &Path) -> Result<CliProcess, SpawnError> {
    let mut cmd = build_command(spec, env, project_dir)?;
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => SpawnError::CliMissing(env.cli_path.clone()),
        _ => SpawnError::Io(e),
    })?;
    let missing = || SpawnError::Io(std::io::Error::other("child pipe missing"));
    let stdin = child.stdin.take().ok_or_else(missing)?;
    let stdout = child.stdout.take().ok_or_else(missing)?;
    let stderr = child.stderr.take().ok_or_else(missing)?;
    let pid = child.id().ok_or_else(missing)?;
    let pgid = i32::try_from(pid).map_err(|_| missing())?;
    Ok(CliProcess {
        child,
        stdin,
        stdout,
        stderr,
        pgid,
    })
}

impl CliProcess {
    /// SIGTERM to the whole group: the CLI exits (143) within ~50 ms, its Bash children die too.
    pub fn terminate(&self) -> nix::Result<()> {
        signal_group(self.pgid, Signal::SIGTERM)
    }

    /// SIGKILL to the whole group: the fallback after a timeout.
    pub fn kill(&self) -> nix::Result<()> {
        signal_group(self.pgid, Signal::SIGKILL)
    }
}

/// Signals a process group. `ESRCH` (already gone) counts as success: stopping is idempotent.
pub fn signal_group(pgid: i32, signal: Signal) -> nix::Result<()> {
    match killpg(Pid::from_raw(pgid), signal) {
        Err(nix::errno::Errno::ESRCH) => Ok(()),
        other => other,
    }
}
