//! A project root full of traps, shared by the tests of `files`.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

pub(super) const SECRET: &str = "TOP-SECRET-OUTSIDE-THE-ROOT";

/// A project root full of traps, next to an `outside` directory.
pub(super) struct Fixture {
    _tmp: tempfile::TempDir,
    pub(super) root: PathBuf,
    // Keeps the socket file bound for the test's duration.
    _sock: UnixListener,
}

pub(super) fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = tmp.path();
    let root = base.join("root");
    let outside = base.join("outside");
    for d in [
        &root,
        &outside,
        &root.join("src"),
        &root.join("dir with space"),
    ] {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(outside.join("secret.txt"), SECRET).unwrap();
    fs::write(root.join("README.md"), "# Project\n").unwrap();
    fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
    fs::write(root.join("src/lib.rs"), "pub fn f() {}\n").unwrap();
    fs::write(root.join("dir with space/file name.txt"), "spaces\n").unwrap();
    fs::write(root.join(".hidden"), "h").unwrap();
    fs::write(root.join("image.png"), [0x89, b'P', b'N', b'G', 0, 1, 2]).unwrap();
    fs::write(root.join("notes.txt"), "x".repeat(5000)).unwrap();
    let links: &[(&str, &str)] = &[
        ("link_inside", "src/main.rs"),
        ("link_inside_dir", "src"),
        ("link_etc", "/etc"),
        ("link_passwd", "/etc/passwd"),
        ("link_outside", "../outside/secret.txt"),
        ("link_outside_dir", "../outside"),
        ("chain1", "chain2"),
        ("chain2", "chain3"),
        ("chain3", "/etc"),
        ("chain_rel", "src/../../outside/secret.txt"),
        ("loop_a", "loop_b"),
        ("loop_b", "loop_a"),
        ("link_root", "/"),
        ("link_devnull", "/dev/null"),
        ("link_proc", "/proc/self/environ"),
        ("dangling", "does/not/exist"),
        ("src/up", ".."),
        ("src/upup", "../.."),
    ];
    for (name, target) in links {
        symlink(target, root.join(name)).unwrap();
    }
    let fifo = CString::new(root.join("fifo").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let sock = UnixListener::bind(root.join("sock")).unwrap();
    Fixture {
        _tmp: tmp,
        root,
        _sock: sock,
    }
}

pub(super) fn hostile_paths(root: &Path) -> Vec<String> {
    include_str!("../../tests/fixtures/hostile_paths.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.replace("<NUL>", "\0")
                .replace("<ROOT>", &root.to_string_lossy())
        })
        .collect()
}
