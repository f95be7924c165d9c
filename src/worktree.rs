//! Git worktrees for sessions: a session started with `--worktree` works in a checkout of its
//! own (`git worktree add`), so several channels can work on one repository without touching
//! each other's files. Knows git, nothing of Mattermost or Claude.
//!
//! git runs as a child process of the plugin, never through a shell, with:
//! - an environment built from scratch (PATH, HOME, `LC_ALL=C` so its messages can be read,
//!   no prompt for credentials): a `GIT_DIR`, `GIT_WORK_TREE` or `GIT_INDEX_FILE` in the
//!   server's environment would otherwise point every command at another repository;
//! - nothing the repository's configuration names as a program: hooks off
//!   (`core.hooksPath=/dev/null`: `worktree add` would run `post-checkout` inside the plugin's
//!   process tree, outside any session), no file-system monitor (`core.fsmonitor=false`: its
//!   daemon outlives the command), every filter driver emptied ([`filters_off`]: a checkout
//!   runs smudge filters), and no system-wide configuration (`GIT_CONFIG_NOSYSTEM`);
//! - a process group of its own, killed whole when git ends, at the deadline ([`GIT_TIMEOUT`])
//!   and when the command is dropped unfinished ([`Group`]), and a parent-death signal, so
//!   nothing git started outlives the command, nor git the plugin.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;

/// The longest a git command may run (a large checkout is the slow case).
pub(crate) const GIT_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest branch name [`default_branch`] makes from a channel name.
const MAX_NAME: usize = 40;

/// Why a worktree could not be created or removed. Display is what the person reads.
#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    #[error("git is not installed on the Mattermost server (or not on the plugin's PATH): `--worktree` needs it")]
    GitMissing,
    #[error(
        "`{0}` is not a git repository: `--worktree` needs the top directory of a git working tree"
    )]
    NotARepository(String),
    #[error("`{path}` is inside the git repository `{top}`: give the repository's top directory for a worktree")]
    NotTopLevel { path: String, top: String },
    #[error("The git data of `{path}` is not its own `.git` directory (`{git_dir}`): `--worktree` needs a repository whose `.git` is a directory inside it, not a `.git` file or link (a submodule, another worktree) pointing elsewhere")]
    GitDirElsewhere { path: String, git_dir: String },
    #[error("`{0}` is not a valid branch name")]
    InvalidBranch(String),
    #[error("The branch `{branch}` cannot be checked out here: {detail}. Name another branch, or leave the name out for a new one")]
    BranchInUse { branch: String, detail: String },
    #[error("The worktree `{path}` has uncommitted changes ({}); commit them there first, or force the removal (`/claude stop --clean --force`), which discards them", changes_text(.changes))]
    Dirty { path: String, changes: Vec<String> },
    #[error("The git repository `{0}` no longer exists (moved or deleted): its worktree can only be deleted whole, with `/claude stop --clean --force`, which discards any uncommitted work in it")]
    RepositoryGone(String),
    #[error("git {action} took longer than {} s and was stopped", GIT_TIMEOUT.as_secs())]
    TimedOut { action: &'static str },
    #[error("git {action} failed: {message}")]
    Git {
        action: &'static str,
        message: String,
    },
    #[error("running git failed: {0}")]
    Io(#[source] io::Error),
    #[error("the worktrees directory `{}`: {source}", path.display())]
    Directory {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl WorktreeError {
    /// The HTTP status of the refusal: the person's request or the repository's state is the
    /// cause (400, 409), or the server is (500).
    pub fn status(&self) -> u16 {
        match self {
            WorktreeError::NotARepository(_)
            | WorktreeError::NotTopLevel { .. }
            | WorktreeError::GitDirElsewhere { .. }
            | WorktreeError::InvalidBranch(_) => 400,
            WorktreeError::BranchInUse { .. }
            | WorktreeError::Dirty { .. }
            | WorktreeError::RepositoryGone(_) => 409,
            WorktreeError::GitMissing
            | WorktreeError::TimedOut { .. }
            | WorktreeError::Git { .. }
            | WorktreeError::Io(_)
            | WorktreeError::Directory { .. } => 500,
        }
    }
}

/// At most three changed paths, then how many more.
fn changes_text(changes: &[String]) -> String {
    let shown: Vec<String> = changes.iter().take(3).map(|c| format!("`{c}`")).collect();
    match changes.len() {
        n if n > 3 => format!("{} and {} more", shown.join(", "), n - 3),
        _ => shown.join(", "),
    }
}

/// The branch a session gets when none is named: `claude/<channel name>-<short id>`, the
/// channel name cut to lowercase letters, digits and dashes (a direct message's `id__id` name
/// included), so that it is a valid ref whatever the channel is called.
pub(crate) fn default_branch(channel_name: &str, short_id: &str) -> String {
    let mut name = String::new();
    for c in channel_name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            name.push(c);
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
        if name.len() >= MAX_NAME {
            break;
        }
    }
    let name = name.trim_end_matches('-');
    if name.is_empty() {
        format!("claude/session-{short_id}")
    } else {
        format!("claude/{name}-{short_id}")
    }
}

/// What a typed branch name must not be before git is asked: empty, an option, a name with
/// whitespace or control characters, or one git reads as another revision (`@` is HEAD,
/// `@{-1}` the branch checked out before, `FETCH_HEAD`, `ORIG_HEAD` and the like name no
/// branch). git's `check-ref-format` decides the rest.
fn plausible_branch(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name.len() <= 200
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
        && name != "@"
        && !name.contains("@{")
        && !name.ends_with("HEAD")
}

/// One git command's outcome: its exit status and its output as text.
struct Output {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Settings every git command runs with: nothing the repository's configuration names runs
/// in the plugin's process tree (hooks, the file-system monitor, whose daemon would outlive the
/// command), and no untracked cache is written into the user's repository.
const OVERRIDES: &[&str] = &[
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.untrackedCache=false",
];

/// Runs `git <args>` in `cwd` (see the module doc for how), with every filter driver the
/// repository configures switched off ([`filters_off`]).
async fn git(cwd: &Path, args: &[&OsStr], action: &'static str) -> Result<Output, WorktreeError> {
    let off = filters_off(cwd).await?;
    let mut all: Vec<&OsStr> = Vec::with_capacity(off.len() * 2 + args.len());
    for setting in &off {
        all.push(os("-c"));
        all.push(OsStr::new(setting));
    }
    all.extend_from_slice(args);
    run(OsStr::new("git"), cwd, &all, action).await
}

/// `-c` settings that empty the `smudge`, `clean` and `process` commands of every filter driver
/// configured for `cwd` and make none required: a checkout would run the smudge commands, a
/// status the clean ones, as processes of the plugin. Files needing a filter are checked out
/// as stored (a Git LFS pointer stays a pointer). git passes `-c` settings on to the git
/// commands it starts itself (`worktree add` runs a checkout).
async fn filters_off(cwd: &Path) -> Result<Vec<String>, WorktreeError> {
    let out = run(
        OsStr::new("git"),
        cwd,
        &[
            os("config"),
            os("-z"),
            os("--name-only"),
            os("--get-regexp"),
            os(r"^filter\."),
        ],
        "config",
    )
    .await?;
    // Nothing configured (or no repository here): git says so with status 1 and no output.
    let mut drivers: Vec<&str> = out
        .stdout
        .split('\0')
        .filter_map(|key| key.strip_prefix("filter.")?.rsplit_once('.'))
        .map(|(driver, _)| driver)
        .collect();
    drivers.sort_unstable();
    drivers.dedup();
    Ok(drivers
        .into_iter()
        .flat_map(|d| {
            ["smudge=", "clean=", "process=", "required=false"].map(|v| format!("filter.{d}.{v}"))
        })
        .collect())
}

/// [`git`] with the program named (a test names one that does not exist).
async fn run(
    program: &OsStr,
    cwd: &Path,
    args: &[&OsStr],
    action: &'static str,
) -> Result<Output, WorktreeError> {
    let mut cmd = tokio::process::Command::new(program);
    for setting in OVERRIDES {
        cmd.arg("-c").arg(setting);
    }
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        // The system-wide configuration may name programs too; a partial clone's missing
        // objects are not fetched (git 2.44 and later heed this).
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_NO_LAZY_FETCH", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own, killed whole (see `Group`).
        .process_group(0)
        .kill_on_drop(true);
    for var in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    // SAFETY: runs in the forked child before exec and only calls prctl, which is
    // async-signal-safe. The signal comes when the forking thread ends: a runtime worker
    // thread, which lives as long as the plugin's runtime.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            Ok(())
        });
    }
    let child = match cmd.spawn() {
        Ok(child) => child,
        // The same error when the directory to run in is missing.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(if exists(cwd).await {
                WorktreeError::GitMissing
            } else {
                WorktreeError::RepositoryGone(cwd.display().to_string())
            })
        }
        Err(e) => return Err(WorktreeError::Io(e)),
    };
    let mut git = Group::new(child);
    let (mut stdout, mut stderr) = (git.child.stdout.take(), git.child.stderr.take());
    let finished = tokio::time::timeout(GIT_TIMEOUT, async {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let read_out = async {
            match stdout.as_mut() {
                Some(s) => s.read_to_end(&mut out).await.map(drop),
                None => Ok(()),
            }
        };
        let read_err = async {
            match stderr.as_mut() {
                Some(s) => s.read_to_end(&mut err).await.map(drop),
                None => Ok(()),
            }
        };
        // The group dies as soon as git ends, so a child it left holding the pipes does not
        // keep the reads (and this command) waiting.
        let (status, read_out, read_err) = tokio::join!(git.wait(), read_out, read_err);
        read_out.and(read_err)?;
        Ok::<_, io::Error>((status?, out, err))
    })
    .await;
    // At the deadline `git` is dropped unreaped: its group goes with it.
    drop(git);
    let Ok(finished) = finished else {
        return Err(WorktreeError::TimedOut { action });
    };
    let (status, out, err) = finished.map_err(WorktreeError::Io)?;
    Ok(Output {
        success: status.success(),
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
}

/// A running git and its process group. The group is killed when git ends (a child it left
/// behind must not outlive the command) and when this is dropped before that: at the deadline,
/// and when the future running git is dropped (a task aborted, the plugin deactivated), which
/// `kill_on_drop` and the parent-death signal alone answer only for git itself, not for what
/// it started (`worktree add` runs `git reset --hard`, a checkout runs filters).
struct Group {
    child: tokio::process::Child,
    /// `None` once killed. git leads its group (`process_group(0)`), so the group's id is its
    /// pid, which stays reserved while any member lives.
    group: Option<Pid>,
}

impl Group {
    fn new(child: tokio::process::Child) -> Self {
        let group = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        Group { child, group }
    }

    /// Waits for git to end, then kills what is left of its group.
    async fn wait(&mut self) -> io::Result<std::process::ExitStatus> {
        let status = self.child.wait().await;
        self.kill();
        status
    }

    fn kill(&mut self) {
        if let Some(group) = self.group.take() {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// git's own words for a failure: its `fatal:`/`error:` lines, else its last line.
fn git_message(stderr: &str) -> String {
    let mut lines = stderr.lines().map(str::trim);
    let said: Vec<&str> = lines
        .clone()
        .filter_map(|l| {
            l.strip_prefix("fatal:")
                .or_else(|| l.strip_prefix("error:"))
        })
        .map(str::trim)
        .collect();
    if said.is_empty() {
        lines.rfind(|l| !l.is_empty()).unwrap_or("").to_owned()
    } else {
        said.join("; ")
    }
}

/// `git <args>` that must succeed; its stdout.
async fn git_ok(
    cwd: &Path,
    args: &[&OsStr],
    action: &'static str,
) -> Result<String, WorktreeError> {
    let out = git(cwd, args, action).await?;
    if out.success {
        Ok(out.stdout)
    } else {
        Err(WorktreeError::Git {
            action,
            message: git_message(&out.stderr),
        })
    }
}

/// File-system work on tokio's blocking pool, never on the thread that serves hooks.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

async fn exists(path: &Path) -> bool {
    let path = path.to_path_buf();
    blocking(move || std::fs::symlink_metadata(path))
        .await
        .is_ok()
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// Checks that `repo` (canonical) is the top directory of a git working tree.
pub(crate) async fn check_repository(repo: &Path) -> Result<(), WorktreeError> {
    let shown = || repo.display().to_string();
    let out = git(repo, &[os("rev-parse"), os("--show-toplevel")], "rev-parse").await?;
    if !out.success {
        return Err(if out.stderr.contains("not a git repository") {
            WorktreeError::NotARepository(shown())
        } else {
            WorktreeError::Git {
                action: "rev-parse",
                message: git_message(&out.stderr),
            }
        });
    }
    let top = out.stdout.trim();
    // Empty inside a git directory that has no working tree.
    if top.is_empty() {
        return Err(WorktreeError::NotARepository(shown()));
    }
    let top_path = Path::new(top);
    let top_owned = top_path.to_path_buf();
    let same = top_path == repo
        || blocking(move || std::fs::canonicalize(top_owned))
            .await
            .is_ok_and(|t| t == repo);
    if !same {
        return Err(WorktreeError::NotTopLevel {
            path: shown(),
            top: top.to_owned(),
        });
    }
    own_git_dir(repo).await
}

/// Checks that the git data of `repo` is `repo/.git`, a directory: a `.git` file
/// (`gitdir: …`) or symlink would let a path under the allowed roots check out a repository
/// outside them.
async fn own_git_dir(repo: &Path) -> Result<(), WorktreeError> {
    let common = git_ok(
        repo,
        &[
            os("rev-parse"),
            os("--path-format=absolute"),
            os("--git-common-dir"),
        ],
        "rev-parse",
    )
    .await?;
    let common = PathBuf::from(common.trim_end_matches('\n'));
    let own = repo.join(".git");
    let (common_c, own_c) = (common.clone(), own.clone());
    let is_own = blocking(move || {
        let real_dir = std::fs::symlink_metadata(&own_c)?.is_dir();
        Ok(real_dir && std::fs::canonicalize(&common_c)? == own_c)
    })
    .await
    .unwrap_or(false);
    if is_own {
        Ok(())
    } else {
        Err(WorktreeError::GitDirElsewhere {
            path: repo.display().to_string(),
            git_dir: common.display().to_string(),
        })
    }
}

/// Whether `branch` is a valid new or existing branch name for `repo`.
async fn check_branch(repo: &Path, branch: &str) -> Result<(), WorktreeError> {
    if !plausible_branch(branch) {
        return Err(WorktreeError::InvalidBranch(branch.to_owned()));
    }
    let out = git(
        repo,
        &[os("check-ref-format"), os("--branch"), os(branch)],
        "check-ref-format",
    )
    .await?;
    // git answers the name it would use, which differs when it expanded the typed one.
    if out.success && out.stdout.trim_end_matches('\n') == branch {
        Ok(())
    } else {
        Err(WorktreeError::InvalidBranch(branch.to_owned()))
    }
}

/// `dir` with its parent created and made absolute (git resolves a relative path against the
/// repository, and the data directory may be given relative to the server's directory).
async fn absolute_in_new_parent(dir: &Path) -> Result<PathBuf, WorktreeError> {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(WorktreeError::Directory {
            path: dir.to_path_buf(),
            source: io::Error::from(io::ErrorKind::InvalidInput),
        });
    };
    let failed = |source| WorktreeError::Directory {
        path: parent.to_path_buf(),
        source,
    };
    let owned = parent.to_path_buf();
    let parent_abs = blocking(move || {
        std::fs::create_dir_all(&owned)?;
        std::fs::canonicalize(&owned)
    })
    .await
    .map_err(failed)?;
    Ok(parent_abs.join(name))
}

/// A worktree that was made: where, on which branch, and whether the branch is new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Created {
    pub path: PathBuf,
    pub branch: String,
    pub new_branch: bool,
}

/// One lock per repository (its canonical path), held across a worktree's making (branch
/// check, `rev-parse`, `worktree add`) and removal: git's own "already checked out" check takes
/// no lock, so two starts at once could both check one branch out. A repository's lock stays
/// for the plugin's life (one per repository ever used, a few bytes each).
#[derive(Default)]
pub(crate) struct RepoLocks {
    locks: std::sync::Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
}

impl RepoLocks {
    async fn hold(&self, repo: &Path) -> tokio::sync::OwnedMutexGuard<()> {
        // The map is never held across a panic; a poisoned one is as good as any.
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(locks.entry(repo.to_path_buf()).or_default())
        };
        lock.lock_owned().await
    }
}

/// `git worktree add` of `branch` at `dir` (which must not exist; its parent is created): an
/// existing branch is checked out (git refuses one checked out in another worktree), another
/// name becomes a new branch at the repository's HEAD. Holds the repository's lock.
pub(crate) async fn add(
    locks: &RepoLocks,
    repo: &Path,
    dir: &Path,
    branch: &str,
) -> Result<Created, WorktreeError> {
    check_branch(repo, branch).await?;
    let _repo = locks.hold(repo).await;
    let dir = absolute_in_new_parent(dir).await?;
    let dir = dir.as_path();
    let full_ref = format!("refs/heads/{branch}");
    let exists = git(
        repo,
        &[
            os("rev-parse"),
            os("--verify"),
            os("--quiet"),
            os(&full_ref),
        ],
        "rev-parse",
    )
    .await?
    .success;
    let out = if exists {
        git(
            repo,
            &[os("worktree"), os("add"), dir.as_os_str(), os(branch)],
            "worktree add",
        )
        .await?
    } else {
        git(
            repo,
            &[
                os("worktree"),
                os("add"),
                os("-b"),
                os(branch),
                dir.as_os_str(),
            ],
            "worktree add",
        )
        .await?
    };
    if !out.success {
        let message = git_message(&out.stderr);
        return Err(
            if out.stderr.contains("already checked out")
                || out.stderr.contains("already used by worktree")
                // Made meanwhile by someone else than this plugin (its own starts are serialised).
                || out.stderr.contains("already exists") && out.stderr.contains("branch named")
            {
                WorktreeError::BranchInUse {
                    branch: branch.to_owned(),
                    detail: message,
                }
            } else {
                WorktreeError::Git {
                    action: "worktree add",
                    message,
                }
            },
        );
    }
    Ok(Created {
        path: dir.to_path_buf(),
        branch: branch.to_owned(),
        new_branch: !exists,
    })
}

/// The paths with uncommitted changes in the worktree at `dir`, untracked files included
/// (ignored ones are not: `git worktree remove` drops those too).
async fn changes(dir: &Path) -> Result<Vec<String>, WorktreeError> {
    let out = git_ok(
        dir,
        &[
            os("status"),
            os("--porcelain=v1"),
            os("--untracked-files=all"),
        ],
        "status",
    )
    .await?;
    Ok(out
        .lines()
        .filter_map(|l| l.get(3..))
        .map(str::to_owned)
        .collect())
}

/// [`WorktreeError::Dirty`] when the worktree at `dir` has uncommitted changes; a directory
/// that is gone has none.
pub(crate) async fn check_clean(dir: &Path) -> Result<(), WorktreeError> {
    if !exists(dir).await {
        return Ok(());
    }
    let changed = changes(dir).await?;
    if changed.is_empty() {
        Ok(())
    } else {
        Err(WorktreeError::Dirty {
            path: dir.display().to_string(),
            changes: changed,
        })
    }
}

/// Whether the repository at `repo` is still there (a worktree of one moved or deleted can
/// only be deleted whole: [`delete_orphaned`]).
pub(crate) async fn repository_exists(repo: &Path) -> bool {
    exists(repo).await
}

/// Deletes the worktree directory `dir` of a repository that is gone, if it lies under
/// `worktrees` (the data directory's worktrees: nothing else is ever deleted) and is still
/// there. On the blocking pool.
pub(crate) async fn delete_orphaned(dir: &Path, worktrees: &Path) -> Result<(), WorktreeError> {
    let (dir, worktrees) = (dir.to_path_buf(), worktrees.to_path_buf());
    let failed = dir.clone();
    blocking(move || {
        let dir = match std::fs::canonicalize(&dir) {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let worktrees = std::fs::canonicalize(worktrees)?;
        if dir == worktrees || !dir.starts_with(&worktrees) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "not a directory of the plugin's worktrees",
            ));
        }
        std::fs::remove_dir_all(dir)
    })
    .await
    .map_err(|source| WorktreeError::Directory {
        path: failed,
        source,
    })
}

/// Removes the worktrees under `worktrees` whose directory name no record has (`recorded`): made
/// for a start the plugin did not live to record, so nobody worked in them and nobody would
/// ever remove them. Each goes through git from its repository (named by its `.git` file), or,
/// the repository gone, is deleted. Names, not paths, are compared: a data directory moved
/// whole keeps its worktrees. Answers what could not be removed.
pub(crate) async fn remove_unrecorded(
    locks: &RepoLocks,
    worktrees: &Path,
    recorded: &std::collections::HashSet<std::ffi::OsString>,
) -> Vec<(PathBuf, WorktreeError)> {
    let base = worktrees.to_path_buf();
    let listed = blocking(move || {
        let base = std::fs::canonicalize(base)?;
        std::fs::read_dir(&base)?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<Vec<PathBuf>>>()
    })
    .await;
    let Ok(dirs) = listed else {
        return Vec::new();
    };
    let mut failed = Vec::new();
    for dir in dirs {
        if dir.file_name().is_some_and(|n| recorded.contains(n)) {
            continue;
        }
        let common = git_ok(
            &dir,
            &[
                os("rev-parse"),
                os("--path-format=absolute"),
                os("--git-common-dir"),
            ],
            "rev-parse",
        )
        .await;
        let repo = common.ok().and_then(|c| {
            Path::new(c.trim_end_matches('\n'))
                .parent()
                .map(Path::to_path_buf)
        });
        let removed = match repo {
            Some(repo) => remove(locks, &repo, &dir, true, None).await,
            None => delete_orphaned(&dir, worktrees).await,
        };
        if let Err(e) = removed {
            failed.push((dir, e));
        }
    }
    failed
}

/// Removes the worktree at `dir` from `repo`, holding the repository's lock. Without `force`, one with uncommitted changes is
/// refused ([`WorktreeError::Dirty`]), and git itself refuses if changes appear meanwhile. A
/// directory already gone is only dropped from git's list (its record alone). The branch stays: its commits are
/// kept. `delete_branch` names a branch to delete as well (one made for a start that failed).
pub(crate) async fn remove(
    locks: &RepoLocks,
    repo: &Path,
    dir: &Path,
    force: bool,
    delete_branch: Option<&str>,
) -> Result<(), WorktreeError> {
    let _repo = locks.hold(repo).await;
    let present = exists(dir).await;
    if present && !force {
        check_clean(dir).await?;
    }
    // Of this worktree only: a `git worktree prune` would also drop git's records of the
    // person's own worktrees whose directories are missing for a while (an unmounted disk).
    // For a directory already gone, git 2.39 drops the record unforced.
    let mut args = vec![os("worktree"), os("remove")];
    if force && present {
        args.push(os("--force"));
    }
    args.push(dir.as_os_str());
    let out = git(repo, &args, "worktree remove").await?;
    // Gone from git's list already (an earlier removal that failed after git's part).
    let unlisted = !present && out.stderr.contains("is not a working tree");
    if !out.success && !unlisted {
        return Err(WorktreeError::Git {
            action: "worktree remove",
            message: git_message(&out.stderr),
        });
    }
    if let Some(branch) = delete_branch {
        git_ok(repo, &[os("branch"), os("-D"), os(branch)], "branch -D").await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
