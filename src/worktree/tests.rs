//! The git side of worktrees, against real git in temporary directories.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// A repository with one commit, at `<tmp>/repo` (canonical).
fn repo(tmp: &tempfile::TempDir) -> PathBuf {
    let dir = tmp.path().join("repo");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("README.md"), "hello\n").unwrap();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "."],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "-m",
            "one",
        ],
    ] {
        let ok = Command::new("git")
            .args(args)
            .current_dir(&dir)
            .env_remove("GIT_DIR")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }
    std::fs::write(dir.join("src/lib.rs"), "").unwrap();
    std::fs::canonicalize(dir).unwrap()
}

/// The worktree paths `git worktree list` names.
fn listed(repo: &Path) -> Vec<PathBuf> {
    let out = Command::new("git")
        .args(["worktree", "list", "--porcelain"])
        .current_dir(repo)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .map(PathBuf::from)
        .collect()
}

#[test]
fn default_branch_names_are_valid_refs_named_after_the_channel() {
    assert_eq!(
        default_branch("town-square", "1a2b"),
        "claude/town-square-1a2b"
    );
    assert_eq!(
        default_branch("Dev Ops!! (EU)", "1a2b"),
        "claude/dev-ops-eu-1a2b"
    );
    assert_eq!(default_branch("..", "1a2b"), "claude/session-1a2b");
    assert_eq!(
        default_branch("abc__def", "9"),
        "claude/abc-def-9",
        "a direct message's name"
    );
    let long = default_branch(&"x".repeat(100), "1a2b");
    assert_eq!(long.len(), "claude/".len() + MAX_NAME + "-1a2b".len());
}

#[test]
fn git_messages_are_its_fatal_lines() {
    assert_eq!(
        git_message("hint: x\nfatal: 'b' is already checked out at '/r'\n"),
        "'b' is already checked out at '/r'"
    );
    assert_eq!(git_message("something\nlast words\n"), "last words");
}

#[tokio::test]
async fn a_directory_that_is_not_a_repository_top_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = std::fs::canonicalize(tmp.path()).unwrap();
    let e = check_repository(&plain).await.unwrap_err();
    assert!(matches!(e, WorktreeError::NotARepository(_)), "{e:?}");
    assert!(e.to_string().contains("is not a git repository"), "{e}");
    let repo = repo(&tmp);
    check_repository(&repo).await.unwrap();
    let e = check_repository(&repo.join("src")).await.unwrap_err();
    assert!(matches!(e, WorktreeError::NotTopLevel { .. }), "{e:?}");
    assert_eq!(e.status(), 400);
}

#[tokio::test]
async fn git_missing_is_said() {
    let tmp = tempfile::tempdir().unwrap();
    let e = run(OsStr::new("/nonexistent/git"), tmp.path(), &[], "status")
        .await
        .err()
        .unwrap();
    assert!(matches!(e, WorktreeError::GitMissing), "{e:?}");
    assert!(e.to_string().contains("git is not installed"), "{e}");
}

/// A `.git` file or symlink naming another repository's git data is refused: the worktree
/// would check out that repository, wherever it is.
#[tokio::test]
async fn a_git_dir_elsewhere_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let private = repo(&tmp);
    let allowed = std::fs::canonicalize(tmp.path()).unwrap().join("allowed");
    let (file_form, link_form) = (allowed.join("by-file"), allowed.join("by-link"));
    for dir in [&file_form, &link_form] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let git_dir = private.join(".git");
    std::fs::write(
        file_form.join(".git"),
        format!("gitdir: {}\n", git_dir.display()),
    )
    .unwrap();
    std::os::unix::fs::symlink(&git_dir, link_form.join(".git")).unwrap();
    for dir in [&file_form, &link_form] {
        let e = check_repository(dir).await.unwrap_err();
        assert!(
            matches!(&e, WorktreeError::GitDirElsewhere { git_dir: g, .. } if *g == git_dir.display().to_string()),
            "{}: {e:?}",
            dir.display()
        );
        assert!(e.to_string().contains("not a `.git` file or link"), "{e}");
        assert_eq!(e.status(), 400);
    }
}

/// A repository moved or deleted is said as such (spawning git in a missing directory fails
/// as a missing git would), and its worktree's directory can be deleted, but only under the
/// plugin's worktrees.
#[tokio::test]
async fn a_repository_gone_is_said_and_its_worktree_deleted_only_under_the_worktrees() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp);
    let locks = RepoLocks::default();
    let base = tmp.path().join("data/worktrees");
    let wt = add(&locks, &repo, &base.join("a"), "claude/a")
        .await
        .unwrap();
    std::fs::rename(&repo, tmp.path().join("moved")).unwrap();
    assert!(!repository_exists(&repo).await);
    let e = remove(&locks, &repo, &wt.path, true, None)
        .await
        .unwrap_err();
    assert!(matches!(e, WorktreeError::RepositoryGone(_)), "{e:?}");
    assert!(e.to_string().contains("no longer exists"), "{e}");
    assert_eq!(e.status(), 409);

    let outside = tmp.path().join("moved");
    let e = delete_orphaned(&outside, &base).await.unwrap_err();
    assert!(matches!(e, WorktreeError::Directory { .. }), "{e:?}");
    assert!(
        outside.join("README.md").is_file(),
        "nothing outside is deleted"
    );
    let e = delete_orphaned(&base, &base).await.unwrap_err();
    assert!(matches!(e, WorktreeError::Directory { .. }), "{e:?}");
    delete_orphaned(&wt.path, &base).await.unwrap();
    assert!(!wt.path.exists());
    delete_orphaned(&wt.path, &base).await.unwrap();
}

/// At recovery, worktrees no record names are removed (through git, or deleted when their
/// repository is gone); recorded ones stay.
#[tokio::test]
async fn unrecorded_worktrees_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp);
    let locks = RepoLocks::default();
    let base = tmp.path().join("data/worktrees");
    let kept = add(&locks, &repo, &base.join("kept"), "claude/kept")
        .await
        .unwrap();
    let stray = add(&locks, &repo, &base.join("stray"), "claude/stray")
        .await
        .unwrap();
    std::fs::write(stray.path.join("x.txt"), "x").unwrap();
    let loose = base.join("loose");
    std::fs::create_dir_all(loose.join("sub")).unwrap();
    let recorded = [std::ffi::OsString::from("kept")].into_iter().collect();
    let failed = remove_unrecorded(&locks, &base, &recorded).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert!(kept.path.join("README.md").is_file());
    assert!(!stray.path.exists() && !loose.exists());
    assert_eq!(listed(&repo), vec![repo.clone(), kept.path.clone()]);
    // No worktrees directory: nothing to do.
    assert!(
        remove_unrecorded(&locks, &tmp.path().join("none"), &recorded)
            .await
            .is_empty()
    );
}

/// Whether `pid` is gone (or a zombie nobody reaped yet).
fn dead(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

/// A git that never ends is killed at the deadline with what it started (paused clock: the
/// deadline comes as soon as nothing else can run).
#[tokio::test(start_paused = true)]
async fn a_hanging_git_is_killed_with_its_children_at_the_deadline() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let hang = dir.join("hang");
    std::fs::write(
        &hang,
        "#!/bin/sh\necho $$ > \"$0.pid\"\nsleep 600 &\necho $! > \"$0.child\"\nwait\n",
    )
    .unwrap();
    std::fs::set_permissions(&hang, std::fs::Permissions::from_mode(0o755)).unwrap();
    let program = hang.clone().into_os_string();
    let cwd = dir.to_path_buf();
    let task = tokio::spawn(async move { run(&program, &cwd, &[], "worktree add").await });
    // Let the task spawn the script, then wait (blocking the runtime's only thread, so the
    // paused clock cannot move) until the script started its child.
    tokio::task::yield_now().await;
    let child_file = dir.join("hang.child");
    for _ in 0..250 {
        if std::fs::read_to_string(&child_file).is_ok_and(|s| s.ends_with('\n')) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let e = task.await.unwrap().err().unwrap();
    assert!(matches!(e, WorktreeError::TimedOut { .. }), "{e:?}");
    assert!(e.to_string().contains("took longer than 120 s"), "{e}");
    let read = |ext: &str| {
        std::fs::read_to_string(dir.join(format!("hang.{ext}")))
            .unwrap()
            .trim()
            .to_owned()
    };
    let (pid, child) = (read("pid"), read("child"));
    for _ in 0..100 {
        if dead(&pid) && dead(&child) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("git ({pid}) or its child ({child}) outlived the deadline");
}

/// A fake git at `<dir>/<name>`: starts `sleep 600` in the background (its pid in
/// `<name>.child`), then runs `then`.
fn fake_git(dir: &Path, name: &str, then: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("#!/bin/sh\nsleep 600 &\necho $! > \"$0.child.tmp\"\nmv \"$0.child.tmp\" \"$0.child\"\n{then}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Waits up to `secs` for `<path>.child` (the fake git's child's pid).
async fn child_of(path: &Path, secs: u64) -> String {
    let file = PathBuf::from(format!("{}.child", path.display()));
    for _ in 0..secs * 50 {
        if let Ok(pid) = std::fs::read_to_string(&file) {
            return pid.trim().to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the fake git did not start its child");
}

async fn dies_within_a_second(pid: &str) -> bool {
    for _ in 0..50 {
        if dead(pid) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// A git command dropped unfinished (an aborted task, the plugin deactivated) takes what git
/// started with it, not only git.
#[tokio::test]
async fn a_dropped_git_command_kills_its_children() {
    let tmp = tempfile::tempdir().unwrap();
    let git = fake_git(tmp.path(), "git", "wait");
    let (program, cwd) = (git.clone().into_os_string(), tmp.path().to_path_buf());
    let task = tokio::spawn(async move { run(&program, &cwd, &[], "worktree add").await });
    let child = child_of(&git, 10).await;
    task.abort();
    assert!(task.await.err().is_some_and(|e| e.is_cancelled()));
    assert!(
        dies_within_a_second(&child).await,
        "git's child {child} outlived the dropped command"
    );
}

/// A child git left running when it ended is killed then, and does not hold the command
/// (which reads git's output to its end) until the deadline.
#[tokio::test]
async fn a_child_left_behind_by_git_is_killed_when_git_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let git = fake_git(tmp.path(), "git", "echo done; exit 0");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        run(git.as_os_str(), tmp.path(), &[], "status"),
    )
    .await
    .expect("the command waited for git's child")
    .unwrap();
    assert!(out.success);
    assert_eq!(out.stdout, "done\n");
    let child = child_of(&git, 1).await;
    assert!(dies_within_a_second(&child).await, "{child} outlived git");
}

/// The repository's configuration runs nothing: neither its file-system monitor (on `status`
/// and `worktree add`) nor its filters (smudge at checkout, clean at status), through a whole
/// add, check and forced removal.
#[tokio::test]
async fn the_repositorys_monitor_and_filters_do_not_run() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp);
    let locks = RepoLocks::default();
    let marks = tmp.path().join("marks");
    std::fs::create_dir(&marks).unwrap();
    let script = |name: &str| {
        let path = tmp.path().join(name);
        let body = format!("#!/bin/sh\ntouch {}/{name}\ncat\n", marks.display());
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    };
    let (monitor, smudge, clean) = (script("monitor"), script("smudge"), script("clean"));
    std::fs::write(repo.join(".gitattributes"), "*.txt filter=mark\n").unwrap();
    std::fs::write(repo.join("a.txt"), "text\n").unwrap();
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@e"])
            .args(args)
            .current_dir(&repo)
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "filtered"]);
    git(&["config", "core.fsmonitor", &monitor]);
    git(&["config", "filter.mark.smudge", &smudge]);
    git(&["config", "filter.mark.clean", &clean]);
    git(&["config", "filter.mark.required", "true"]);
    let before: Vec<_> = std::fs::read_dir(&marks).unwrap().collect();
    assert!(before.is_empty(), "the set-up ran nothing");

    let wt = add(
        &locks,
        &repo,
        &tmp.path().join("data/worktrees/a"),
        "claude/a",
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(wt.path.join("a.txt")).unwrap(),
        "text\n"
    );
    std::fs::write(wt.path.join("a.txt"), "changed\n").unwrap();
    let e = check_clean(&wt.path).await.unwrap_err();
    assert!(matches!(e, WorktreeError::Dirty { .. }), "{e:?}");
    remove(&locks, &repo, &wt.path, true, None).await.unwrap();
    let ran: Vec<_> = std::fs::read_dir(&marks)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(ran.is_empty(), "the repository's configuration ran {ran:?}");
}

/// Two starts at once on one branch: exactly one gets it, the other is told it is in use,
/// whether the branch exists (git's "already checked out" check takes no lock) or is new (the
/// second would find it made meanwhile). Several rounds, as the race does not always show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_adds_of_one_branch_give_it_to_one() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp);
    let locks = RepoLocks::default();
    let base = tmp.path().join("data/worktrees");
    for round in 0..6 {
        let branch = format!("feat-{round}");
        if round % 2 == 0 {
            let ok = Command::new("git")
                .args(["branch", &branch])
                .current_dir(&repo)
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }
        let (dir_a, dir_b) = (
            base.join(format!("{round}-a")),
            base.join(format!("{round}-b")),
        );
        let (a, b) = tokio::join!(
            add(&locks, &repo, &dir_a, &branch),
            add(&locks, &repo, &dir_b, &branch),
        );
        let (made, refused) = match (a, b) {
            (Ok(m), Err(e)) | (Err(e), Ok(m)) => (m, e),
            (a, b) => panic!("round {round}: {a:?} / {b:?}"),
        };
        assert_eq!(made.branch, branch);
        assert!(
            matches!(refused, WorktreeError::BranchInUse { .. }),
            "round {round}: {refused:?}"
        );
        assert_eq!(refused.status(), 409);
    }
}

#[tokio::test]
async fn worktrees_are_separate_checkouts_and_a_branch_in_use_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp);
    let locks = RepoLocks::default();
    let base = tmp.path().join("data/worktrees");
    let a = add(&locks, &repo, &base.join("a"), "claude/a")
        .await
        .unwrap();
    assert!(a.new_branch);
    assert!(a.path.join("README.md").is_file());
    std::fs::write(a.path.join("only-a.txt"), "a").unwrap();
    assert!(!repo.join("only-a.txt").exists());

    // The branch of `a` cannot be checked out twice; the main checkout's neither.
    for busy in ["claude/a", "main"] {
        let e = add(&locks, &repo, &base.join("b"), busy).await.unwrap_err();
        assert!(matches!(e, WorktreeError::BranchInUse { .. }), "{e:?}");
        assert!(e.to_string().contains(busy), "{e}");
        assert_eq!(e.status(), 409);
    }
    for bad in [
        "-f",
        "a..b",
        "has space",
        "",
        "@",
        "@{-1}",
        "x@{1}",
        "FETCH_HEAD",
        "ORIG_HEAD",
        "HEAD",
    ] {
        let e = add(&locks, &repo, &base.join("b"), bad).await.unwrap_err();
        assert!(matches!(e, WorktreeError::InvalidBranch(_)), "{bad}: {e:?}");
        assert_eq!(e.status(), 400);
    }
    assert!(!base.join("b").exists(), "no refusal leaves a directory");

    // An existing branch that is free is checked out, not made.
    Command::new("git")
        .args(["branch", "feature"])
        .current_dir(&repo)
        .status()
        .unwrap();
    let b = add(&locks, &repo, &base.join("b"), "feature")
        .await
        .unwrap();
    assert!(!b.new_branch);
    assert!(!b.path.join("only-a.txt").exists());
    assert_eq!(listed(&repo).len(), 3);
}

#[tokio::test]
async fn removal_refuses_uncommitted_work_unless_forced_and_drops_only_its_own_record() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp);
    let locks = RepoLocks::default();
    let base = tmp.path().join("data/worktrees");
    let wt = add(&locks, &repo, &base.join("a"), "claude/a")
        .await
        .unwrap();
    std::fs::write(wt.path.join("new.txt"), "work").unwrap();
    let e = remove(&locks, &repo, &wt.path, false, None)
        .await
        .unwrap_err();
    match &e {
        WorktreeError::Dirty { changes, .. } => assert_eq!(changes, &["new.txt"]),
        e => panic!("{e:?}"),
    }
    assert!(e.to_string().contains("--clean --force"), "{e}");
    assert!(wt.path.join("new.txt").is_file(), "nothing was removed");

    remove(&locks, &repo, &wt.path, true, None).await.unwrap();
    assert!(!wt.path.exists());
    assert!(!listed(&repo).contains(&wt.path));
    // The branch (and its commits) stay.
    let kept = Command::new("git")
        .args(["rev-parse", "--verify", "--quiet", "refs/heads/claude/a"])
        .current_dir(&repo)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(kept.success());

    // A clean one goes without force; a directory already deleted is pruned from the list.
    let wt = add(&locks, &repo, &base.join("b"), "claude/b")
        .await
        .unwrap();
    remove(&locks, &repo, &wt.path, false, Some("claude/b"))
        .await
        .unwrap();
    assert!(!wt.path.exists());
    // The person's own worktree, its directory missing for a while, keeps its record.
    let own = tmp.path().join("own");
    let ok = Command::new("git")
        .args(["worktree", "add", "-q", "-b", "own"])
        .arg(&own)
        .current_dir(&repo)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let own = std::fs::canonicalize(own).unwrap();
    std::fs::rename(&own, tmp.path().join("unmounted")).unwrap();
    let wt = add(&locks, &repo, &base.join("c"), "claude/c")
        .await
        .unwrap();
    std::fs::remove_dir_all(&wt.path).unwrap();
    remove(&locks, &repo, &wt.path, false, None).await.unwrap();
    assert_eq!(listed(&repo), vec![repo.clone(), own.clone()]);
    // Removing it again finds nothing to do.
    remove(&locks, &repo, &wt.path, true, None).await.unwrap();
}
