//! The CLI's supervisor: no process outlives the plugin, however the plugin dies.
//!
//! Each CLI runs as the child of a small supervisor, which is this same executable re-executed
//! as `claude-code __supervise <plugin pid> -- <cli> <args…>` (src/main.rs checks for it before
//! anything else). The supervisor:
//! - is a child subreaper (`PR_SET_CHILD_SUBREAPER`): every descendant of the CLI whose parent
//!   dies, the Bash commands the CLI runs in sessions of their own included, is re-parented to
//!   it instead of to init, so the whole tree stays below it;
//! - gets a parent-death signal (`PR_SET_PDEATHSIG`). The kernel sends it whenever the THREAD
//!   that forked the supervisor goes, also when another thread of the plugin lives on (a tokio
//!   blocking thread ending after its idle timeout): so the signal only makes the supervisor
//!   look, and it stops only once its parent process is another one (`getppid`);
//! - on its parent's death, or on SIGTERM/SIGHUP (the stop path signals the process group,
//!   the CLI included), sends the CLI SIGTERM, gives it [`GRACE`] to end, then SIGKILLs every
//!   process below itself, reaps them and exits;
//! - when the CLI ends on its own, kills what the CLI left running the same way;
//! - passes stdin, stdout and stderr straight through (the CLI inherits them), keeps the CLI's
//!   environment and cwd (its own, set by the plugin), and ends as the CLI did: the same exit
//!   code, or killed by the same signal.
//!
//! The CLI gets SIGTERM if the supervisor goes first (its own parent-death signal, set from the
//! supervisor's only thread): SIGTERM, not SIGKILL, so that the CLI still ends the Bash commands
//! it runs, which would otherwise be orphaned out of anyone's reach.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::signal::{kill, raise, signal, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{getpid, getppid, Pid};

use crate::proctree;

/// The first argument that selects supervisor mode.
const ARG: &str = "__supervise";

/// The parent-death signal: distinct from SIGTERM, which means "stop" (see the module doc).
const PARENT_GONE: Signal = Signal::SIGUSR1;

/// How long the CLI has to end after SIGTERM before everything below the supervisor is killed.
const GRACE: Duration = Duration::from_secs(1);

/// How long the supervisor keeps killing and reaping before it exits anyway (a process stuck
/// in the kernel cannot be reaped until it leaves it).
const REAP_LIMIT: Duration = Duration::from_secs(2);

static EXECUTABLE: OnceLock<PathBuf> = OnceLock::new();

/// Every CLI started from now on runs under the supervisor, started from `exe`: an executable
/// whose `main` calls [`run_if_requested`] first (the plugin passes `/proc/self/exe`, which
/// stays valid when a new version replaces the file on disk). Without this call, CLIs are
/// started directly (unit tests, whose executable is a test harness).
pub fn supervise_with(exe: PathBuf) {
    let _ = EXECUTABLE.set(exe);
}

/// The program and the arguments before the CLI's own that start `program` under the
/// supervisor, if [`supervise_with`] was called.
pub(crate) fn wrap(program: &Path) -> Option<(&'static Path, Vec<OsString>)> {
    let exe = EXECUTABLE.get()?;
    Some((
        exe.as_path(),
        vec![
            ARG.into(),
            std::process::id().to_string().into(),
            "--".into(),
            program.into(),
        ],
    ))
}

#[derive(Debug, thiserror::Error)]
enum SuperviseError {
    #[error("usage: {ARG} <parent pid> -- <program> [arguments]")]
    Usage,
    #[error("the plugin process {0} is already gone")]
    ParentGone(i32),
    #[error("cannot set up the supervisor: {0}")]
    Setup(#[source] Errno),
    #[error("cannot start {program}: {source}", program = .program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Supervisor mode, when this process was started as one: runs it and returns the exit code
/// (or does not return, when the CLI was killed by a signal the supervisor then dies of too).
/// None when the arguments do not ask for it.
pub fn run_if_requested() -> Option<i32> {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(ARG.as_ref()) {
        return None;
    }
    let parsed = (|| {
        let parent: i32 = args.next()?.to_str()?.parse().ok()?;
        if args.next().as_deref() != Some("--".as_ref()) {
            return None;
        }
        let program = PathBuf::from(args.next()?);
        Some((parent, program, args.collect::<Vec<OsString>>()))
    })();
    let outcome = match parsed {
        Some((parent, program, rest)) => supervise(parent, &program, &rest),
        None => Err(SuperviseError::Usage),
    };
    Some(match outcome {
        Ok(status) => end_like(status),
        Err(e) => {
            // The CLI's stderr: the plugin logs it and shows it in a crash report.
            eprintln!("claude-code supervisor: {e}");
            1
        }
    })
}

fn supervise(
    parent: i32,
    program: &Path,
    args: &[OsString],
) -> Result<Option<WaitStatus>, SuperviseError> {
    let mut watched = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGCHLD,
        PARENT_GONE,
    ] {
        watched.add(s);
    }
    // Blocked and taken with sigtimedwait: no handler code runs. The only thread, so this is
    // the process's mask; the CLI must not inherit it (see pre_exec below).
    watched.thread_block().map_err(SuperviseError::Setup)?;
    // SAFETY: installs the default action, no handler code runs. An inherited SIG_IGN would
    // make the kernel reap children itself and hide the CLI's exit status.
    unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) }.map_err(SuperviseError::Setup)?;
    prctl::set_child_subreaper(true).map_err(SuperviseError::Setup)?;
    prctl::set_pdeathsig(PARENT_GONE).map_err(SuperviseError::Setup)?;
    // Set after the fork: the plugin may have died in between, and then no signal comes.
    if getppid().as_raw() != parent {
        return Err(SuperviseError::ParentGone(parent));
    }
    let me = getpid();
    let mut command = std::process::Command::new(program);
    command.args(args);
    // SAFETY: runs in the forked child before exec and only makes async-signal-safe calls
    // (pthread_sigmask, prctl, getppid).
    unsafe {
        command.pre_exec(move || {
            // std leaves the mask as it is: a CLI with SIGTERM blocked could not be stopped.
            SigSet::empty().thread_set_mask()?;
            prctl::set_pdeathsig(Signal::SIGTERM)?;
            if getppid() != me {
                return Err(io::Error::other("the supervisor is already gone"));
            }
            Ok(())
        });
    }
    let cli = command.spawn().map_err(|source| SuperviseError::Spawn {
        program: program.to_path_buf(),
        source,
    })?;
    let cli = Pid::from_raw(i32::try_from(cli.id()).unwrap_or(i32::MAX));
    // The std Child is not waited on: `reap` collects every child, the CLI and the orphans.
    let mut status = None;
    let mut stop_by: Option<Instant> = None;
    loop {
        let timeout = stop_by.map(|d| d.saturating_duration_since(Instant::now()));
        let got = wait_signal(&watched, timeout);
        let asked = matches!(got, Some(Signal::SIGTERM | Signal::SIGHUP));
        if stop_by.is_none() && (asked || getppid().as_raw() != parent) {
            let _ = kill(cli, Signal::SIGTERM);
            stop_by = Some(Instant::now() + GRACE);
        }
        reap(cli, &mut status);
        if status.is_some() || stop_by.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    kill_everything_below(me, cli, &mut status);
    Ok(status)
}

/// Waits for one of `set` (blocked) up to `timeout` (None: for ever); None on timeout.
fn wait_signal(set: &SigSet, timeout: Option<Duration>) -> Option<Signal> {
    let spec = timeout.map(|t| libc::timespec {
        // Capped at 68 years, which fits `time_t` whatever its width (libc deprecates naming
        // the type on musl, whose time_t became 64-bit).
        tv_sec: t.as_secs().min(i32::MAX as u64) as _,
        tv_nsec: libc::c_long::from(i32::try_from(t.subsec_nanos()).unwrap_or(0)),
    });
    let spec_ptr = spec
        .as_ref()
        .map_or(std::ptr::null(), |s| s as *const libc::timespec);
    // SAFETY: `set` and `spec` outlive the call; a null siginfo pointer is allowed.
    let n = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), spec_ptr) };
    Signal::try_from(n).ok()
}

/// Reaps every child that has ended (the CLI, and orphans re-parented here), keeping the CLI's
/// status. False once no child is left.
fn reap(cli: Pid, status: &mut Option<WaitStatus>) -> bool {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return true,
            Ok(s) => {
                if s.pid() == Some(cli) {
                    *status = Some(s);
                }
            }
            Err(Errno::EINTR) => {}
            // ECHILD: nobody is left.
            Err(_) => return false,
        }
    }
}

/// SIGKILLs every process below the supervisor until none is left to reap (a process forking
/// meanwhile is found on the next round), for at most [`REAP_LIMIT`].
fn kill_everything_below(me: Pid, cli: Pid, status: &mut Option<WaitStatus>) {
    let deadline = Instant::now() + REAP_LIMIT;
    loop {
        for (pid, _) in proctree::descendants(me.as_raw()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if !reap(cli, status) || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The exit code that mirrors the CLI's end; for a signal that ends a process without a core
/// dump, dies of it instead, so the plugin sees what the CLI got.
fn end_like(status: Option<WaitStatus>) -> i32 {
    match status {
        Some(WaitStatus::Exited(_, code)) => code,
        Some(WaitStatus::Signaled(_, sig, _)) => {
            use Signal::*;
            if matches!(
                sig,
                SIGKILL | SIGTERM | SIGHUP | SIGINT | SIGPIPE | SIGALRM | SIGUSR1 | SIGUSR2
            ) {
                // SAFETY: installs the default action, no handler code runs.
                let _ = unsafe { signal(sig, SigHandler::SigDfl) };
                let mut one = SigSet::empty();
                one.add(sig);
                let _ = one.thread_unblock();
                let _ = raise(sig);
            }
            128 + sig as i32
        }
        // Never reaped within REAP_LIMIT: the CLI's end is unknown.
        _ => 1,
    }
}
