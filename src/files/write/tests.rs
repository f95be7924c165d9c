use std::os::unix::fs::symlink;

use super::*;
use crate::files::fixture::{fixture, hostile_paths, Fixture, SECRET};
use crate::files::read_versioned;

fn sha(bytes: &[u8]) -> String {
    sha256_hex(Sha256::new_with_prefix(bytes))
}

fn text(fx: &Fixture, path: &str) -> String {
    fs::read_to_string(fx.root.join(path)).unwrap()
}

fn mode(fx: &Fixture, path: &str) -> u32 {
    fs::metadata(fx.root.join(path))
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// Temporary files left in `dir` (there must never be any after an edit).
fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".claude-code-edit"))
        .collect()
}

async fn create_at(fx: &Fixture, path: &str, content: &str) -> Result<Written, WriteError> {
    create(fx.root.clone(), path.into(), content.into()).await
}

async fn update_at(
    fx: &Fixture,
    path: &str,
    content: &str,
    expected: &str,
) -> Result<Written, WriteError> {
    update(
        fx.root.clone(),
        path.into(),
        content.into(),
        expected.into(),
    )
    .await
}

async fn delete_at(fx: &Fixture, path: &str, expected: &str) -> Result<String, WriteError> {
    delete(fx.root.clone(), path.into(), expected.into()).await
}

#[tokio::test]
async fn create_update_delete() {
    let fx = fixture();
    let made = create_at(&fx, "src/new.rs", "fn new() {}\n").await.unwrap();
    assert_eq!(
        made,
        Written {
            path: "src/new.rs".into(),
            size: 12,
            sha256: sha(b"fn new() {}\n"),
        }
    );
    assert_eq!(text(&fx, "src/new.rs"), "fn new() {}\n");
    assert_eq!(mode(&fx, "src/new.rs"), 0o644);
    // What a reader sees is the version an update names.
    let read = read_versioned(fx.root.clone(), "src/new.rs".into())
        .await
        .unwrap();
    assert_eq!(read.sha256, made.sha256);

    fs::set_permissions(
        fx.root.join("src/new.rs"),
        fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    // Hex in any case is the same version.
    let upper = made.sha256.to_ascii_uppercase();
    let updated = update_at(&fx, "./src//new.rs", "fn newer() {}\n", &upper)
        .await
        .unwrap();
    assert_eq!(updated.sha256, sha(b"fn newer() {}\n"));
    assert_eq!(text(&fx, "src/new.rs"), "fn newer() {}\n");
    assert_eq!(mode(&fx, "src/new.rs"), 0o750, "permissions are kept");

    // Through a symlinked directory inside the root, by its real path.
    let via_link = create_at(&fx, "link_inside_dir/other.rs", "")
        .await
        .unwrap();
    assert_eq!((via_link.path.as_str(), via_link.size), ("src/other.rs", 0));

    let gone = delete_at(&fx, "src/new.rs", &updated.sha256).await.unwrap();
    assert_eq!(gone, "src/new.rs");
    assert!(!fx.root.join("src/new.rs").exists());
    assert!(leftovers(&fx.root.join("src")).is_empty());

    // Exactly the limit is accepted.
    let max = "a".repeat(MAX_EDIT_BYTES);
    let big = create_at(&fx, "max.txt", &max).await.unwrap();
    assert_eq!(big.size, MAX_EDIT_BYTES as u64);
}

#[tokio::test]
async fn stale_versions_change_nothing() {
    let fx = fixture();
    let old = sha(b"# Project\n");
    let wrong = sha(b"something else");
    for expected in [wrong.as_str(), "", "not hex at all"] {
        let e = update_at(&fx, "README.md", "mine", expected)
            .await
            .unwrap_err();
        assert_eq!(
            e,
            WriteError::Stale {
                path: "README.md".into(),
                current: old.clone()
            }
        );
        assert_eq!(e.status(), 409);
        let e = delete_at(&fx, "README.md", expected).await.unwrap_err();
        assert!(matches!(e, WriteError::Stale { .. }), "{e:?}");
    }
    assert_eq!(text(&fx, "README.md"), "# Project\n");
    // An edit made from the version just replaced is stale too.
    let new = update_at(&fx, "README.md", "v2", &old).await.unwrap();
    let e = update_at(&fx, "README.md", "v3", &old).await.unwrap_err();
    assert_eq!(
        e,
        WriteError::Stale {
            path: "README.md".into(),
            current: new.sha256
        }
    );
    assert_eq!(text(&fx, "README.md"), "v2");
}

#[tokio::test]
async fn refusals_are_typed_and_change_nothing() {
    let fx = fixture();
    let main_sha = sha(b"fn main() {}\n");
    let secret_sha = sha(SECRET.as_bytes());
    fs::create_dir(fx.root.join(".git")).unwrap();
    fs::write(fx.root.join(".git/config"), "[core]\n").unwrap();
    symlink(".git", fx.root.join("gitlink")).unwrap();
    let git_sha = sha(b"[core]\n");

    let exists = |path: &str| WriteError::Exists { path: path.into() };
    let symlink_ = |path: &str| WriteError::Symlink { path: path.into() };
    let git = |path: &str| WriteError::Path(PathError::GitData { path: path.into() });
    let not_a_file = |path: &str| WriteError::Path(PathError::NotAFile { path: path.into() });
    let special = |path: &str, kind| {
        WriteError::Path(PathError::SpecialFile {
            path: path.into(),
            kind,
        })
    };
    let too_large = |path: &str| WriteError::TooLarge {
        path: path.into(),
        size: MAX_EDIT_BYTES + 1,
        max: MAX_EDIT_BYTES,
    };
    let fifo = "named pipe (FIFO)";
    let huge = "a".repeat(MAX_EDIT_BYTES + 1);
    let c = |path: &'static str| create_at(&fx, path, "x");
    let u = |path: &'static str, sha: &String| {
        let (fx, sha) = (&fx, sha.clone());
        async move { update_at(fx, path, "x", &sha).await }
    };
    let none = String::new();
    let cases: Vec<(Result<Written, WriteError>, WriteError, u16)> = vec![
        (c("README.md").await, exists("README.md"), 409),
        (
            c("nope/new.txt").await,
            WriteError::ParentMissing {
                path: "nope/new.txt".into(),
                parent: "nope".into(),
            },
            404,
        ),
        (
            c("README.md/x").await,
            WriteError::Path(PathError::NotADirectory {
                path: "README.md".into(),
            }),
            400,
        ),
        (c("./").await, WriteError::Root, 400),
        (
            u("link_inside", &main_sha).await,
            symlink_("link_inside"),
            400,
        ),
        (
            u("link_outside", &secret_sha).await,
            symlink_("link_outside"),
            400,
        ),
        (c("dangling").await, exists("dangling"), 409),
        (
            c("link_outside_dir/new.txt").await,
            WriteError::Path(PathError::OutsideRoot {
                path: "link_outside_dir".into(),
            }),
            400,
        ),
        (u(".git/config", &git_sha).await, git(".git/config"), 403),
        (c("gitlink/hook").await, git("gitlink/hook"), 403),
        (c("src/.Git").await, git("src/.Git"), 403),
        (u("fifo", &none).await, special("fifo", fifo), 400),
        (u("sock", &none).await, special("sock", "socket"), 400),
        (u("src", &none).await, not_a_file("src"), 400),
        (
            u("missing.txt", &none).await,
            WriteError::Path(PathError::NotFound {
                path: "missing.txt".into(),
            }),
            404,
        ),
        (
            create_at(&fx, "big.txt", &huge).await,
            too_large("big.txt"),
            413,
        ),
        (
            update_at(&fx, "README.md", &huge, "").await,
            too_large("README.md"),
            413,
        ),
    ];
    for (got, want, status) in cases {
        let e = got.unwrap_err();
        assert_eq!((&e, e.status()), (&want, status));
    }
    let deletes = [
        ("", WriteError::Root),
        ("link_inside", symlink_("link_inside")),
        ("fifo", special("fifo", fifo)),
        ("src", not_a_file("src")),
        (".git/config", git(".git/config")),
    ];
    for (path, want) in deletes {
        assert_eq!(delete_at(&fx, path, &git_sha).await, Err(want), "{path:?}");
    }
    // Nothing changed, nothing was left behind.
    assert_eq!(text(&fx, "README.md"), "# Project\n");
    assert_eq!(text(&fx, "src/main.rs"), "fn main() {}\n");
    assert_eq!(text(&fx, ".git/config"), "[core]\n");
    assert!(fx.root.join("link_inside").is_symlink());
    for absent in ["big.txt", "src/.Git", ".git/hook"] {
        assert!(!fx.root.join(absent).exists(), "{absent}");
    }
    let outside = fx.root.parent().unwrap().join("outside");
    assert_eq!(
        fs::read_to_string(outside.join("secret.txt")).unwrap(),
        SECRET
    );
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
    assert!(leftovers(&fx.root).is_empty());
}

/// The corpus of hostile paths, written to: update and delete are always
/// refused; a create is refused or makes a file of that literal name directly
/// in the root (`..\x` is an ordinary name on Unix). Nothing outside changes.
#[tokio::test]
async fn hostile_paths_never_write_outside() {
    let fx = fixture();
    let outside = fx.root.parent().unwrap().join("outside");
    // The version of the file outside: were a path to reach it, the update
    // and delete would not even be stale.
    let secret_sha = sha(SECRET.as_bytes());
    let mut created = 0;
    for p in hostile_paths(&fx.root) {
        if let Ok(w) = update_at(&fx, &p, "pwned", &secret_sha).await {
            panic!("{p:?} was updated: {w:?}");
        }
        if let Ok(w) = delete_at(&fx, &p, &secret_sha).await {
            panic!("{p:?} was deleted: {w:?}");
        }
        match create_at(&fx, &p, "pwned").await {
            Err(e) => assert!(!e.to_string().contains(SECRET)),
            Ok(w) => {
                assert!(!p.contains('/'), "{p:?} created {w:?}");
                assert_eq!(w.path, p);
                let made = fx.root.join(&p);
                assert!(made.symlink_metadata().unwrap().is_file(), "{p:?}");
                assert_eq!(fs::read_to_string(made).unwrap(), "pwned");
                created += 1;
            }
        }
    }
    // Percent-encoded, backslash and lookalike-slash names: literal files.
    assert!(created > 0, "the literal-name case was not exercised");
    assert_eq!(
        fs::read_to_string(outside.join("secret.txt")).unwrap(),
        SECRET
    );
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
    assert!(leftovers(&fx.root).is_empty());
}

/// A failure between writing the temporary file and the rename leaves the
/// old content and no temporary file.
#[test]
fn a_failure_before_the_rename_changes_nothing() {
    let fx = fixture();
    let t = Target::open(&fx.root, "src/main.rs").unwrap();
    let e = replace(&t, b"half", 0o644, Overwrite::Yes, || {
        Err(t.io("simulated crash"))
    })
    .unwrap_err();
    assert!(e.to_string().contains("simulated crash"), "{e}");
    assert_eq!(text(&fx, "src/main.rs"), "fn main() {}\n");
    assert!(leftovers(&fx.root.join("src")).is_empty());

    // The real last check: the CLI wrote the file after the first compare.
    let old = sha(b"fn main() {}\n");
    let mode = current_version(&t, &old).unwrap();
    let e = replace(&t, b"mine", mode, Overwrite::Yes, || {
        fs::write(fx.root.join("src/main.rs"), "the CLI's\n").unwrap();
        current_version(&t, &old).map(drop)
    })
    .unwrap_err();
    assert_eq!(
        e,
        WriteError::Stale {
            path: "src/main.rs".into(),
            current: sha(b"the CLI's\n")
        }
    );
    assert_eq!(text(&fx, "src/main.rs"), "the CLI's\n");
    assert!(leftovers(&fx.root.join("src")).is_empty());

    // A create loses to a file that appeared meanwhile, atomically.
    let t = Target::open(&fx.root, "src/racy.rs").unwrap();
    let e = replace(&t, b"mine", 0o644, Overwrite::No, || {
        fs::write(fx.root.join("src/racy.rs"), "theirs").unwrap();
        Ok(())
    })
    .unwrap_err();
    assert_eq!(
        e,
        WriteError::Exists {
            path: "src/racy.rs".into()
        }
    );
    assert_eq!(text(&fx, "src/racy.rs"), "theirs");
    assert!(leftovers(&fx.root.join("src")).is_empty());
}

/// Twenty editors who all read the same version: exactly one edit lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_of_one_version_let_one_win() {
    let fx = fixture();
    let old = sha(b"# Project\n");
    let edits = (0..20).map(|i| {
        let (root, old) = (fx.root.clone(), old.clone());
        // Some by another spelling of the same file.
        let path = if i % 2 == 0 {
            "README.md"
        } else {
            "./README.md"
        };
        tokio::spawn(update(root, path.into(), format!("edit {i}\n").into(), old))
    });
    let results: Vec<_> = join_all(edits).await;
    let won: Vec<&Written> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    let stale = results
        .iter()
        .filter(
            |r| matches!(r, Err(WriteError::Stale { current, .. }) if *current == won[0].sha256),
        )
        .count();
    assert_eq!(stale, 19, "{results:?}");
    let content = text(&fx, "README.md");
    assert_eq!(sha(content.as_bytes()), won[0].sha256);
    assert!(leftovers(&fx.root).is_empty());
}

async fn join_all<T>(tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks.collect::<Vec<_>>() {
        out.push(t.await.unwrap());
    }
    out
}
