//! The CLI's supervisor (src/supervisor.rs) with the real plugin executable: nothing a CLI
//! starts outlives the plugin process, however it dies, and the stop path still works.
//!
//! A "plugin" here is this test binary re-run as a stand-in (the ignored test
//! `stand_in_plugin`, selected by an environment variable): it launches a fake CLI through
//! the session launcher, from a tokio blocking thread that then exits (the thread the
//! parent-death signal is tied to), and waits to be killed.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use claude_code::claude::{CliEnv, CliSpec, SessionStart};
use claude_code::proctree::{descendants, ProcessIdentity};
use claude_code::sessions::launcher::Deadline;
use claude_code::sessions::{CliLauncher, LaunchedCli, ProcessLauncher};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncBufReadExt;
use tokio::sync::watch;

const STAND_IN_DIR: &str = "CC_SUPERVISOR_STAND_IN_DIR";

/// The fake CLI: like the CLI's Bash tool, runs a command chain (`timeout` → `sleep`) in a
/// session of its own, writes the pids, says ready, then echoes stdin and exits with code 7
/// at EOF.
const FAKE_CLI: &str = "#!/bin/sh\n\
    setsid timeout 300 sleep 300 &\n\
    echo $! > \"$HOME/command\"\n\
    echo $$ > \"$HOME/cli\"\n\
    echo ready\n\
    while IFS= read -r line; do echo \"echo: $line\"; done\n\
    exit 7\n";

fn supervised() {
    claude_code::supervisor::supervise_with(PathBuf::from(env!("CARGO_BIN_EXE_claude-code")));
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("supervisor-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

fn launcher(dir: &Path) -> ProcessLauncher {
    let cli = dir.join("fake-claude");
    std::fs::write(&cli, FAKE_CLI).expect("fake CLI");
    std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    ProcessLauncher::new(CliEnv {
        cli_path: cli,
        home_dir: dir.join("home"),
        path: std::env::var_os("PATH"),
        ..CliEnv::default()
    })
}

fn spec() -> CliSpec {
    CliSpec::new(SessionStart::New(uuid::Uuid::new_v4()))
}

fn pid_in(dir: &Path, name: &str) -> i32 {
    std::fs::read_to_string(dir.join("home").join(name))
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid")
}

async fn first_line(cli: &mut LaunchedCli) -> String {
    let mut line = String::new();
    tokio::io::BufReader::new(&mut cli.stdout)
        .read_line(&mut line)
        .await
        .expect("a line");
    line
}

/// The supervisor and every process below it, once the fake CLI's command chain has started
/// (supervisor, CLI, `timeout`, `sleep`), or after 3 s.
fn tree_of(supervisor: i32) -> Vec<ProcessIdentity> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let tree: Vec<ProcessIdentity> = std::iter::once(supervisor)
            .chain(descendants(supervisor).into_iter().map(|(pid, _)| pid))
            .filter_map(ProcessIdentity::of)
            .collect();
        if tree.len() >= 4 || Instant::now() >= deadline {
            return tree;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls until none of `processes` is alive; returns those still alive after `within`.
fn survivors(processes: &[ProcessIdentity], within: Duration) -> Vec<ProcessIdentity> {
    let deadline = Instant::now() + within;
    loop {
        let alive: Vec<ProcessIdentity> =
            processes.iter().filter(|p| p.is_alive()).cloned().collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sigkill_all(processes: &[ProcessIdentity]) {
    for p in processes.iter().filter(|p| p.is_alive()) {
        let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
    }
}

/// The stand-in plugin; does nothing unless run by `plugin_death_takes_every_process_with_it`.
#[test]
#[ignore = "run as a child process by plugin_death_takes_every_process_with_it"]
fn stand_in_plugin() {
    let Some(dir) = std::env::var_os(STAND_IN_DIR).map(PathBuf::from) else {
        return;
    };
    supervised();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        // The thread that forks the supervisor ends soon after.
        .thread_keep_alive(Duration::from_millis(50))
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let launcher = launcher(&dir);
        let mut cli = tokio::task::spawn_blocking(move || launcher.launch(&spec(), &dir))
            .await
            .expect("join")
            .expect("launch");
        assert_eq!(first_line(&mut cli).await, "ready\n");
        // Long past the forking thread's end: the supervisor must not have taken it for
        // the plugin's death.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let supervisor = cli.signals.pid().expect("pid");
        println!("SUPERVISOR {supervisor}");
        std::future::pending::<()>().await;
    });
}

/// Acceptance: SIGKILL of the plugin → within 5 s no process it started remains: not the
/// supervisor, not the CLI, not the command the CLI runs in a session of its own.
#[test]
fn plugin_death_takes_every_process_with_it() {
    let dir = fresh_dir("death");
    let mut plugin = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "stand_in_plugin", "--ignored", "--nocapture"])
        .env(STAND_IN_DIR, &dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("stand-in plugin");
    let mut supervisor = None;
    for line in BufReader::new(plugin.stdout.take().expect("stdout")).lines() {
        let line = line.expect("line");
        if let Some(pid) = line.strip_prefix("SUPERVISOR ") {
            supervisor = Some(pid.parse::<i32>().expect("pid"));
            break;
        }
    }
    let supervisor = supervisor.expect("the stand-in launched a CLI");
    let tree = tree_of(supervisor);
    let (cli, command) = (pid_in(&dir, "cli"), pid_in(&dir, "command"));
    let in_tree = |pid: i32| tree.iter().any(|p| p.pid == pid);
    let own_session =
        nix::unistd::getsid(Some(Pid::from_raw(command))).is_ok_and(|sid| sid.as_raw() == command);
    let all_alive = tree.iter().all(ProcessIdentity::is_alive);

    kill(
        Pid::from_raw(i32::try_from(plugin.id()).expect("pid")),
        Signal::SIGKILL,
    )
    .expect("kill the plugin");
    let _ = plugin.wait();
    let left = survivors(&tree, Duration::from_secs(5));
    sigkill_all(&tree);
    let _ = std::fs::remove_dir_all(&dir);

    assert!(left.is_empty(), "alive 5 s after the plugin died: {left:?}");
    assert!(
        in_tree(cli) && in_tree(command),
        "the CLI {cli} and its command {command} run under the supervisor: {tree:?}"
    );
    assert!(tree.len() >= 4, "supervisor, CLI, timeout, sleep: {tree:?}");
    assert!(own_session, "the command runs in a session of its own");
    assert!(
        all_alive,
        "the end of the forking thread killed nothing: {tree:?}"
    );
}

/// The stop path through the supervisor: SIGTERM to the group ends the CLI, and the command
/// it left in a session of its own goes too.
#[tokio::test]
async fn terminate_stops_the_whole_tree() {
    supervised();
    let dir = fresh_dir("stop");
    let mut cli = launcher(&dir).launch(&spec(), &dir).expect("launch");
    assert_eq!(first_line(&mut cli).await, "ready\n");
    let supervisor = i32::try_from(cli.signals.pid().expect("pid")).expect("pid");
    let tree = tree_of(supervisor);
    cli.signals.terminate();
    let exit = tokio::time::timeout(Duration::from_secs(5), cli.exit).await;
    let left = survivors(&tree, Duration::from_secs(3));
    sigkill_all(&tree);
    let _ = std::fs::remove_dir_all(&dir);
    let exit = exit.expect("exited");
    assert!(tree.len() >= 4, "{tree:?}");
    assert!(
        exit.signal == Some(15) || exit.code == Some(143),
        "ended as the CLI did on SIGTERM: {exit:?}"
    );
    assert!(left.is_empty(), "survived the stop: {left:?}");
}

/// stdin and stdout pass straight through, the exit code is the CLI's, and the command the
/// CLI left running when it ended on its own is killed.
#[tokio::test]
async fn streams_and_exit_code_pass_through() {
    supervised();
    let dir = fresh_dir("streams");
    let mut cli = launcher(&dir).launch(&spec(), &dir).expect("launch");
    assert_eq!(first_line(&mut cli).await, "ready\n");
    let command = ProcessIdentity::of(pid_in(&dir, "command")).expect("command");
    tokio::io::AsyncWriteExt::write_all(&mut cli.stdin, b"hello\n")
        .await
        .expect("write");
    let echoed = first_line(&mut cli).await;
    drop(cli.stdin);
    let exit = tokio::time::timeout(Duration::from_secs(5), cli.exit).await;
    let left = survivors(std::slice::from_ref(&command), Duration::from_secs(3));
    sigkill_all(&left);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(echoed, "echo: hello\n");
    assert_eq!(exit.expect("exited").code, Some(7));
    assert!(left.is_empty(), "the CLI's command outlived it");
}

/// The supervisor's grace between SIGTERM and SIGKILL (src/supervisor.rs).
const GRACE: Duration = Duration::from_secs(1);

/// A fake CLI launched under the supervisor with a lease `deadline`; its process tree.
async fn launch_leased(dir: &Path, deadline: Deadline) -> (LaunchedCli, Vec<ProcessIdentity>) {
    supervised();
    let mut cli = launcher(dir)
        .launch_until(&spec(), dir, Some(deadline))
        .expect("launch");
    assert_eq!(first_line(&mut cli).await, "ready\n");
    let supervisor = i32::try_from(cli.signals.pid().expect("pid")).expect("pid");
    let tree = tree_of(supervisor);
    assert!(tree.len() >= 4, "supervisor, CLI, timeout, sleep: {tree:?}");
    (cli, tree)
}

/// A lease that runs out without a renewal (the plugin paused or hung): the supervisor stops
/// the CLI by itself, after the deadline and within deadline + GRACE + 1 s.
#[tokio::test]
async fn a_lease_deadline_not_renewed_stops_the_cli() {
    let dir = fresh_dir("lease-expires");
    let set_at = Instant::now();
    let (_renewals, deadline) = watch::channel(Some(set_at + Duration::from_secs(1)));
    let (cli, tree) = launch_leased(&dir, deadline).await;
    let exit = tokio::time::timeout(Duration::from_secs(5), cli.exit).await;
    let ended_after = set_at.elapsed();
    let left = survivors(&tree, Duration::from_secs(1));
    sigkill_all(&tree);
    let _ = std::fs::remove_dir_all(&dir);
    let exit = exit.expect("the CLI was stopped");
    assert!(
        ended_after >= Duration::from_millis(950),
        "not before the deadline: {ended_after:?}"
    );
    assert!(
        ended_after <= Duration::from_secs(1) + GRACE + Duration::from_secs(1),
        "within deadline + GRACE + 1 s: {ended_after:?}"
    );
    assert!(
        exit.signal == Some(15) || exit.code == Some(143),
        "stopped by the stop path (SIGTERM): {exit:?}"
    );
    assert!(left.is_empty(), "survived the lease: {left:?}");
}

/// Renewed every 300 ms, a 1 s lease keeps the CLI for 3 s; once renewals stop, it ends.
#[tokio::test]
async fn a_renewed_lease_keeps_the_cli_until_renewals_stop() {
    let dir = fresh_dir("lease-renewed");
    let lease = Duration::from_secs(1);
    let (renewals, deadline) = watch::channel(Some(Instant::now() + lease));
    let (cli, tree) = launch_leased(&dir, deadline).await;
    let mut exit = tokio::spawn(cli.exit);
    let renewing_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < renewing_until {
        tokio::time::sleep(Duration::from_millis(300)).await;
        renewals.send_replace(Some(Instant::now() + lease));
    }
    let alive_after_renewals: Vec<ProcessIdentity> =
        tree.iter().filter(|p| p.is_alive()).cloned().collect();
    let ended_early = tokio::time::timeout(Duration::ZERO, &mut exit)
        .await
        .is_ok();
    let last_renewal = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(5), exit).await;
    let ended_after = last_renewal.elapsed();
    let left = survivors(&tree, Duration::from_secs(1));
    sigkill_all(&tree);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!ended_early, "the CLI ended while its lease was renewed");
    assert_eq!(
        alive_after_renewals, tree,
        "all alive after 3 s of renewals"
    );
    ended.expect("stopped once renewals stopped").expect("join");
    assert!(
        ended_after >= lease - Duration::from_millis(50)
            && ended_after <= lease + GRACE + Duration::from_secs(1),
        "stopped {ended_after:?} after the last renewal"
    );
    assert!(left.is_empty(), "survived the lease: {left:?}");
    drop(renewals);
}

/// The plugin closes the pipe (its lease lost or released, or the plugin gone): the CLI is
/// stopped at once, deadline or not.
#[tokio::test]
async fn closing_the_lease_pipe_stops_the_cli() {
    let dir = fresh_dir("lease-closed");
    let (renewals, deadline) = watch::channel(Some(Instant::now() + Duration::from_secs(60)));
    let (cli, tree) = launch_leased(&dir, deadline).await;
    let closed_at = Instant::now();
    drop(renewals);
    let exit = tokio::time::timeout(Duration::from_secs(5), cli.exit).await;
    let ended_after = closed_at.elapsed();
    let left = survivors(&tree, Duration::from_secs(1));
    sigkill_all(&tree);
    let _ = std::fs::remove_dir_all(&dir);
    exit.expect("stopped when the pipe closed");
    assert!(
        ended_after <= GRACE + Duration::from_secs(1),
        "{ended_after:?}"
    );
    assert!(left.is_empty(), "survived the closed lease: {left:?}");
}

/// What each fd of `pid` is (`pipe:[inode]`, a path, …), by number.
fn fds_of(pid: i32) -> Vec<(i32, PathBuf)> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .filter_map(|e| {
            let e = e.ok()?;
            Some((
                e.file_name().to_str()?.parse().ok()?,
                std::fs::read_link(e.path()).ok()?,
            ))
        })
        .collect()
}

/// The lease pipe is the supervisor's alone: the CLI (and so whatever it starts) does not hold
/// it, or the pipe's EOF would wait for the CLI's commands too.
#[tokio::test]
async fn the_cli_does_not_inherit_the_lease_pipe() {
    let dir = fresh_dir("lease-fd");
    let (renewals, deadline) = watch::channel(Some(Instant::now() + Duration::from_secs(60)));
    let (cli, tree) = launch_leased(&dir, deadline).await;
    let supervisor = tree[0].pid;
    let args = std::fs::read(format!("/proc/{supervisor}/cmdline")).expect("cmdline");
    let args: Vec<&[u8]> = args.split(|b| *b == 0).collect();
    let lease_fd: Option<i32> = args
        .iter()
        .position(|a| *a == b"--lease-fd")
        .and_then(|i| std::str::from_utf8(args.get(i + 1)?).ok()?.parse().ok());
    let pipe = lease_fd.and_then(|fd| {
        fds_of(supervisor)
            .into_iter()
            .find(|(n, _)| *n == fd)
            .map(|(_, what)| what)
    });
    let cli_fds = fds_of(pid_in(&dir, "cli"));
    drop(renewals);
    let _ = tokio::time::timeout(Duration::from_secs(5), cli.exit).await;
    sigkill_all(&tree);
    let _ = std::fs::remove_dir_all(&dir);
    let pipe = pipe.expect("the supervisor holds the lease pipe");
    assert!(pipe.to_string_lossy().starts_with("pipe:"), "{pipe:?}");
    assert!(
        cli_fds.iter().all(|(_, what)| *what != pipe),
        "the CLI holds the lease pipe {pipe:?}: {cli_fds:?}"
    );
}
