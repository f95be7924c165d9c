//! Starting and stopping one CLI process.
//!
//! The child gets: cwd = the project dir (the CLI has no --cwd flag), a dedicated HOME (its
//! sessions, config and plans live there, not in the server user's home), an environment built
//! from scratch (nothing inherited: a stray `CLAUDE_CODE_*` or API key from the server's own
//! environment must not leak in), and its own process group so that stopping a session also
//! kills the Bash commands it started.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, BorrowedFd};
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

/// Checks the preconditions and builds the command (not yet spawned). `lease` (the read end of
/// a pipe, close-on-exec) goes to the supervisor alone, which stops the CLI when the deadlines
/// read from it run out (see src/supervisor.rs); a CLI started without one ignores it.
pub fn build_command(
    spec: &CliSpec,
    env: &CliEnv,
    project_dir: &Path,
    lease: Option<BorrowedFd<'_>>,
) -> Result<Command, SpawnError> {
    // Checked here because the OS reports a missing cwd exactly like a missing program (ENOENT).
    if !project_dir.is_dir() {
        return Err(SpawnError::ProjectDirMissing(project_dir.to_path_buf()));
    }
    if !is_executable_file(&env.cli_path) {
        return Err(SpawnError::CliMissing(env.cli_path.clone()));
    }
    create_home(&env.home_dir)?;
    // Under the supervisor when the plugin runs (nothing it starts outlives the plugin).
    let lease = lease.map(|fd| fd.as_raw_fd());
    let mut cmd = match crate::supervisor::wrap(&env.cli_path, lease) {
        Some((supervisor, args)) => {
            let mut cmd = Command::new(supervisor);
            cmd.args(args);
            if let Some(fd) = lease {
                // SAFETY: runs in the forked child before exec and only calls fcntl, which is
                // async-signal-safe. The fd stays close-on-exec in the plugin, so no other
                // child started meanwhile holds the pipe open.
                unsafe {
                    cmd.pre_exec(move || {
                        if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
            cmd
        }
        None => Command::new(&env.cli_path),
    };
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
    /// Process group id (equal to the child's pid: the CLI's, or its supervisor's).
    pub pgid: i32,
}

/// Spawns the CLI for `spec` in `project_dir`.
pub fn spawn(spec: &CliSpec, env: &CliEnv, project_dir: &Path) -> Result<CliProcess, SpawnError> {
    spawn_leased(spec, env, project_dir, None)
}

/// [`spawn`] with a lease pipe for the supervisor (see [`build_command`]).
pub fn spawn_leased(
    spec: &CliSpec,
    env: &CliEnv,
    project_dir: &Path,
    lease: Option<BorrowedFd<'_>>,
) -> Result<CliProcess, SpawnError> {
    let mut cmd = build_command(spec, env, project_dir, lease)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claude::args::SessionStart;
    use uuid::Uuid;

    fn env_for(home: &Path) -> CliEnv {
        CliEnv {
            cli_path: PathBuf::from("/bin/sh"),
            home_dir: home.to_path_buf(),
            path: Some("/usr/bin:/bin".into()),
            lang: Some("C.UTF-8".into()),
            anthropic: vec![
                ("ANTHROPIC_API_KEY".into(), "sk-test".into()),
                ("OPENAI_API_KEY".into(), "leak".into()),
            ],
            proxy: vec![
                ("https_proxy".into(), "http://proxy:3128".into()),
                ("FOO".into(), "x".into()),
            ],
            disable_telemetry: true,
            disable_nonessential_traffic: true,
            disable_autoupdater: false,
            max_retries: Some(3),
            emit_session_state_events: false,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cc-spawn-{name}-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn env_is_explicit_and_filtered() {
        let vars: Vec<(String, String)> = build_env(&env_for(Path::new("/var/lib/cc-home")))
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("PATH", "/usr/bin:/bin"),
            ("HOME", "/var/lib/cc-home"),
            ("LANG", "C.UTF-8"),
            ("ANTHROPIC_API_KEY", "sk-test"),
            ("https_proxy", "http://proxy:3128"),
            ("DISABLE_TELEMETRY", "1"),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
            ("CLAUDE_CODE_MAX_RETRIES", "3"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(vars, want);
    }

    #[test]
    fn missing_project_dir_and_cli_are_typed_errors() {
        let root = temp("errs");
        let spec = CliSpec::new(SessionStart::New(Uuid::nil()));
        let env = env_for(&root.join("home"));
        match build_command(&spec, &env, &root.join("nope"), None) {
            Err(SpawnError::ProjectDirMissing(p)) => assert_eq!(p, root.join("nope")),
            other => panic!("{other:?}"),
        }
        let env = CliEnv {
            cli_path: root.join("no-claude"),
            ..env
        };
        assert!(matches!(
            build_command(&spec, &env, &root, None),
            Err(SpawnError::CliMissing(_))
        ));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[tokio::test]
    async fn child_runs_in_its_own_group_with_a_clean_env_and_dies_with_it() {
        let root = temp("group");
        let script = root.join("fake-claude");
        // Prints its env and process group, starts a grandchild, then waits on stdin.
        std::fs::write(
            &script,
            "#!/bin/sh\nenv | sort > \"$HOME/env.txt\"\npwd > \"$HOME/pwd.txt\"\nsleep 300 &\necho $! > \"$HOME/grandchild\"\n\
             ps -o pgid= -p $$ > \"$HOME/pgid\"\necho ready\ncat > /dev/null\n",
        )
        .expect("write script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let home = root.join("home");
        let env = CliEnv {
            cli_path: script,
            ..env_for(&home)
        };
        let spec = CliSpec::new(SessionStart::New(Uuid::nil()));
        let mut p = spawn(&spec, &env, &root).expect("spawn");
        let mut out = tokio::io::BufReader::new(&mut p.stdout);
        let mut line = String::new();
        tokio::io::AsyncBufReadExt::read_line(&mut out, &mut line)
            .await
            .expect("read");
        assert_eq!(line, "ready\n");
        let pgid: i32 = std::fs::read_to_string(home.join("pgid"))
            .expect("pgid")
            .trim()
            .parse()
            .expect("number");
        assert_eq!(pgid, p.pgid, "the child leads its own process group");
        let env_txt = std::fs::read_to_string(home.join("env.txt")).expect("env");
        assert!(env_txt.contains("ANTHROPIC_API_KEY=sk-test"));
        assert!(
            !env_txt.contains("OPENAI_API_KEY") && !env_txt.contains("CARGO"),
            "{env_txt}"
        );
        assert_eq!(
            std::fs::read_to_string(home.join("pwd.txt"))
                .expect("pwd")
                .trim(),
            root.display().to_string()
        );
        let mode = std::fs::metadata(&home).expect("home").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let grandchild: i32 = std::fs::read_to_string(home.join("grandchild"))
            .expect("grandchild pid")
            .trim()
            .parse()
            .expect("number");
        p.terminate().expect("killpg");
        let status = p.child.wait().await.expect("wait");
        assert!(!status.success());
        // The grandchild got the same SIGTERM; poll briefly for it to disappear.
        let mut gone = false;
        for _ in 0..50 {
            // A killed orphan may linger as a zombie until init reaps it: count that as dead.
            let stat =
                std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
            let state = stat.rsplit(") ").next().and_then(|r| r.chars().next());
            if matches!(state, None | Some('Z' | 'X')) {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(gone, "grandchild {grandchild} survived killpg");
        // Stopping twice is fine.
        p.kill().expect("idempotent");
        let _ = std::fs::remove_dir_all(&root);
    }
}
