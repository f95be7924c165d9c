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
//! - given `--lease-fd N` (the read end of a pipe from the plugin), stops the CLI the same way
//!   when the session's lease runs out: the plugin writes each new deadline there (8 bytes,
//!   little-endian: CLOCK_MONOTONIC milliseconds, the clock a paused plugin cannot hold back),
//!   and the CLI is stopped when the latest one passes, or at EOF (the plugin closed the pipe
//!   or died). So a plugin paused past its lease cannot keep a CLI serving a session another
//!   node took over;
//! - passes stdin, stdout and stderr straight through (the CLI inherits them), keeps the CLI's
//!   environment and cwd (its own, set by the plugin), and ends as the CLI did: the same exit
//!   code, or killed by the same signal.
//!
//! The CLI gets SIGTERM if the supervisor goes first (its own parent-death signal, set from the
//! supervisor's only thread): SIGTERM, not SIGKILL, so that the CLI still ends the Bash commands
//! it runs, which would otherwise be orphaned out of anyone's reach.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
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
/// supervisor, if [`supervise_with`] was called; with `lease_fd` (which the supervisor must
/// inherit), the CLI is stopped when the lease deadlines read from it run out.
pub(crate) fn wrap(
    program: &Path,
    lease_fd: Option<RawFd>,
) -> Option<(&'static Path, Vec<OsString>)> {
    let exe = EXECUTABLE.get()?;
    let mut args = vec![ARG.into(), std::process::id().to_string().into()];
    if let Some(fd) = lease_fd {
        args.extend([LEASE_FD.into(), fd.to_string().into()]);
    }
    args.extend(["--".into(), program.into()]);
    Some((exe.as_path(), args))
}

/// The option naming the lease pipe's read end.
const LEASE_FD: &str = "--lease-fd";

/// CLOCK_MONOTONIC now, in milliseconds: the clock of the lease deadlines.
pub(crate) fn monotonic_ms() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    u64::try_from(now.tv_sec).unwrap_or(0) * 1000
        + u64::try_from(now.tv_nsec).unwrap_or(0) / 1_000_000
}

#[derive(Debug, thiserror::Error)]
enum SuperviseError {
    #[error("usage: {ARG} <parent pid> [{LEASE_FD} <fd>] -- <program> [arguments]")]
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
        let mut next = args.next()?;
        let mut lease = None;
        if next == LEASE_FD {
            let fd: RawFd = args.next()?.to_str()?.parse().ok()?;
            lease = Some(fd);
            next = args.next()?;
        }
        if next != "--" {
            return None;
        }
        let program = PathBuf::from(args.next()?);
        Some((parent, lease, program, args.collect::<Vec<OsString>>()))
    })();
    let outcome = match parsed {
        Some((parent, lease, program, rest)) => {
            // SAFETY: the plugin passed this fd, open, for the supervisor alone to own.
            let lease = lease.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
            supervise(parent, lease, &program, &rest)
        }
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
    lease: Option<OwnedFd>,
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
    // Blocked and read from a signalfd: no handler code runs. The only thread, so this is the
    // process's mask; the CLI must not inherit it (see pre_exec below).
    watched.thread_block().map_err(SuperviseError::Setup)?;
    let mut events = Events::new(&watched, lease).map_err(SuperviseError::Setup)?;
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
        // Once stopping, only GRACE counts; the lease has done its part.
        let timeout = match stop_by {
            Some(d) => Some(d.saturating_duration_since(Instant::now())),
            None => events.lease_left(),
        };
        let asked = events.wait(timeout);
        let stop = asked || events.lease_over() || getppid().as_raw() != parent;
        if stop_by.is_none() && stop {
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

/// What the supervisor waits on, with one poll(2) and no other thread: its signals (blocked,
/// read from a signalfd) and the lease pipe.
struct Events {
    signals: OwnedFd,
    lease: Option<Lease>,
}

struct Lease {
    pipe: OwnedFd,
    /// Bytes of a deadline not yet whole (a pipe read may end mid-value).
    partial: Vec<u8>,
    /// The latest deadline (CLOCK_MONOTONIC ms); none before the first.
    deadline: Option<u64>,
    /// The plugin closed the pipe.
    closed: bool,
}

impl Events {
    fn new(watched: &SigSet, lease: Option<OwnedFd>) -> Result<Self, Errno> {
        // SAFETY: `watched` is a valid sigset; the flags are valid.
        let fd =
            unsafe { libc::signalfd(-1, watched.as_ref(), libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        // SAFETY: a new fd, owned here alone.
        let signals = unsafe { OwnedFd::from_raw_fd(Errno::result(fd)?) };
        let lease = match lease {
            Some(pipe) => {
                // Close-on-exec: the CLI must not hold the pipe (nor learn of it), and
                // non-blocking: it is only read when poll says so, until EAGAIN.
                let raw = pipe.as_raw_fd();
                // SAFETY: fcntl on an fd this process owns.
                Errno::result(unsafe { libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC) })?;
                // SAFETY: as above.
                let flags = Errno::result(unsafe { libc::fcntl(raw, libc::F_GETFL) })?;
                // SAFETY: as above.
                Errno::result(unsafe {
                    libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK)
                })?;
                Some(Lease {
                    pipe,
                    partial: Vec::with_capacity(8),
                    deadline: None,
                    closed: false,
                })
            }
            None => None,
        };
        Ok(Self { signals, lease })
    }

    /// How long until the lease's latest deadline (None: no deadline yet, or no lease).
    fn lease_left(&self) -> Option<Duration> {
        let deadline = self.lease.as_ref()?.deadline?;
        Some(Duration::from_millis(
            deadline.saturating_sub(monotonic_ms()),
        ))
    }

    /// The lease ran out: its latest deadline passed, or the plugin closed the pipe.
    fn lease_over(&self) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|l| l.closed || l.deadline.is_some_and(|d| d <= monotonic_ms()))
    }

    /// Waits up to `timeout` (None: for ever) for a signal or lease news, and takes them in;
    /// true when a signal asks to stop (SIGTERM, SIGHUP: the stop path).
    fn wait(&mut self, timeout: Option<Duration>) -> bool {
        let mut fds = vec![libc::pollfd {
            fd: self.signals.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(lease) = self.lease.as_ref().filter(|l| !l.closed) {
            fds.push(libc::pollfd {
                fd: lease.pipe.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // Rounded up: waking a little early would only loop back here.
        let ms = timeout.map_or(-1, |t| {
            i32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
        });
        // SAFETY: `fds` is a valid array of its length for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n <= 0 {
            return false;
        }
        let stop = fds[0].revents != 0 && self.take_signals();
        if fds.get(1).is_some_and(|f| f.revents != 0) {
            if let Some(lease) = self.lease.as_mut() {
                lease.take_news();
            }
        }
        stop
    }

    /// Drains the signalfd; true if one of the signals asks to stop.
    fn take_signals(&self) -> bool {
        let mut stop = false;
        loop {
            // SAFETY: an all-zero siginfo is valid plain data.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: reads at most `size` bytes into `info`.
            let n = unsafe {
                libc::read(
                    self.signals.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    size,
                )
            };
            if usize::try_from(n).ok() != Some(size) {
                return stop;
            }
            let signal = Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or(0));
            stop |= matches!(signal, Ok(Signal::SIGTERM | Signal::SIGHUP));
        }
    }
}

impl Lease {
    /// Reads what the plugin wrote: the latest whole deadline, or EOF.
    fn take_news(&mut self) {
        let mut buf = [0u8; 512];
        loop {
            // SAFETY: reads at most `buf.len()` bytes into `buf`.
            let n =
                unsafe { libc::read(self.pipe.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            match usize::try_from(n) {
                Ok(0) => {
                    self.closed = true;
                    return;
                }
                Ok(n) => {
                    self.partial.extend_from_slice(&buf[..n]);
                    let whole = self.partial.len() / 8 * 8;
                    if let Some(last) = self.partial[..whole].rchunks_exact(8).next() {
                        let mut value = [0u8; 8];
                        value.copy_from_slice(last);
                        self.deadline = Some(u64::from_le_bytes(value));
                    }
                    self.partial.drain(..whole);
                }
                // EAGAIN: all read; EINTR cannot happen with every signal blocked.
                Err(_) => return,
            }
        }
    }
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
