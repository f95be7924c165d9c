//! Project files as users may see them: every user-supplied path is resolved
//! under the session's project root, and only regular files and directories
//! inside that root are listed or read (`read.rs`), or edited by a
//! person (`write.rs`, which adds rules of its own).
//!
//! The rules, in the order they are applied by [`resolve`]:
//! 1. A NUL byte anywhere is refused (the OS would cut the path there).
//! 2. Absolute paths are refused, even ones that point inside the root: users
//!    name files relative to the project, and accepting `/…` would invite
//!    "which root?" confusion.
//! 3. Any `..` segment is refused outright, even one that would stay inside
//!    the root; `.` and empty segments are dropped.
//! 4. The joined path is canonicalized (every symlink followed) and must still
//!    lie under the canonicalized root. A symlink that leaves the root is
//!    reported as "outside the project" without saying where it points.
//! 5. The target must be a regular file or a directory: FIFOs (which would
//!    block a read forever), sockets and device files are refused.
//! 6. Nothing inside a `.git` directory is shown, and listings leave `.git`
//!    out: git's own data is not project source, and `.git/config` can hold
//!    credentials (a token in a remote's URL) that channel members must not
//!    read. Any case counts, by the user's spelling or the resolved path.
//!
//! Paths are taken literally. Nothing is percent-decoded: `%2e%2e` is a file
//! named `%2e%2e`, which then simply does not exist. (The HTTP router decodes
//! a URL once, as HTTP requires; decoding again here would turn `%252e` into a
//! traversal.) A backslash is an ordinary filename character on Unix, and
//! Unicode lookalikes of `.` and `/` are ordinary characters too.
//!
//! Residual risk: between the check and the read, a process that can write in
//! the project (the CLI itself can) could swap a directory for a symlink.
//! [`read`] narrows this by opening the final component with `O_NOFOLLOW` and
//! re-checking the opened file's type; full protection would need
//! `openat2(RESOLVE_BENEATH)`.

#[cfg(test)]
mod fixture;
mod read;
mod write;

use std::fmt::{self, Write as _};
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

pub use read::{
    list, read, read_versioned, AttachmentReason, FileContent, FileNode, Listing, VersionedFile,
    MAX_ATTACHMENT_BYTES,
};
pub use write::{create, delete, update, WriteError, Written};

/// The most text the API shows inline, and the largest content a person's
/// edit may write.
pub const MAX_EDIT_BYTES: usize = 1024 * 1024;

/// Why a user path was refused. Display is the message shown to the user, in
/// the user's own spelling of the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    NulByte,
    Absolute {
        path: String,
    },
    ParentSegment {
        path: String,
    },
    NotFound {
        path: String,
    },
    OutsideRoot {
        path: String,
    },
    SymlinkLoop {
        path: String,
    },
    SpecialFile {
        path: String,
        kind: &'static str,
    },
    NotADirectory {
        path: String,
    },
    NotAFile {
        path: String,
    },
    GitData {
        path: String,
    },
    /// The project root itself is missing or unreadable (a server problem).
    RootUnavailable {
        root: PathBuf,
        reason: String,
    },
    Io {
        path: String,
        reason: String,
    },
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::NulByte => f.write_str("The path contains a NUL byte; remove it."),
            PathError::Absolute { path } => write!(
                f,
                "`{path}` is an absolute path. Name files relative to the project root, e.g. `src/main.rs`."
            ),
            PathError::ParentSegment { path } => write!(
                f,
                "`{path}` contains `..`. Paths must stay inside the project; name them from the project root."
            ),
            PathError::NotFound { path } => write!(f, "`{path}` does not exist in the project."),
            PathError::OutsideRoot { path } => write!(
                f,
                "`{path}` leads outside the project (through a symbolic link) and cannot be shown."
            ),
            PathError::SymlinkLoop { path } => {
                write!(f, "`{path}` is a loop of symbolic links.")
            }
            PathError::SpecialFile { path, kind } => write!(
                f,
                "`{path}` is a {kind}, not a regular file; only files and directories can be shown."
            ),
            PathError::NotADirectory { path } => write!(
                f,
                "`{path}` is a file, not a directory. Show it with `/claude file {path}`."
            ),
            PathError::NotAFile { path } => write!(
                f,
                "`{path}` is a directory. List it with `/claude files {path}`."
            ),
            PathError::GitData { path } => write!(
                f,
                "`{path}` is inside `.git` (or named so): git's own data, which can hold credentials, is neither shown nor changed here."
            ),
            PathError::RootUnavailable { root, reason } => write!(
                f,
                "The project directory {} is not available: {reason}",
                root.display()
            ),
            PathError::Io { path, reason } => write!(f, "`{path}` cannot be read: {reason}"),
        }
    }
}

impl std::error::Error for PathError {}

impl PathError {
    /// The HTTP status this refusal answers with (the REST layer maps here, once).
    pub fn status(&self) -> u16 {
        match self {
            PathError::NotFound { .. } => 404,
            PathError::GitData { .. } => 403,
            PathError::RootUnavailable { .. } | PathError::Io { .. } => 500,
            PathError::NulByte
            | PathError::Absolute { .. }
            | PathError::ParentSegment { .. }
            | PathError::OutsideRoot { .. }
            | PathError::SymlinkLoop { .. }
            | PathError::SpecialFile { .. }
            | PathError::NotADirectory { .. }
            | PathError::NotAFile { .. } => 400,
        }
    }
}

/// Regular file or directory: the only kinds resolved paths can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    File,
    Directory,
}

/// A user path after every check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Canonical, absolute, under the canonical root.
    pub absolute: PathBuf,
    /// Relative to the root, `/`-separated; empty for the root itself.
    pub relative: String,
    pub kind: NodeKind,
}

fn special_kind(ft: &fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "named pipe (FIFO)"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

fn canonical_root(root: &Path) -> Result<PathBuf, PathError> {
    fs::canonicalize(root).map_err(|e| PathError::RootUnavailable {
        root: root.to_owned(),
        reason: e.to_string(),
    })
}

/// Resolves `user_path` under `root` (see the module doc). `""` and `"."`
/// name the root itself.
pub fn resolve(root: &Path, user_path: &str) -> Result<Resolved, PathError> {
    let root = canonical_root(root)?;
    resolve_under(&root, user_path)
}

/// The names in a user path after rules 1-3 (see the module doc): `.` and
/// empty segments dropped; none is `..`.
fn segments(user_path: &str) -> Result<Vec<&str>, PathError> {
    let shown = || user_path.to_owned();
    if user_path.contains('\0') {
        return Err(PathError::NulByte);
    }
    if user_path.starts_with('/') {
        return Err(PathError::Absolute { path: shown() });
    }
    let mut out = Vec::new();
    for segment in user_path.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(PathError::ParentSegment { path: shown() }),
            s => out.push(s),
        }
    }
    Ok(out)
}

fn resolve_under(root: &Path, user_path: &str) -> Result<Resolved, PathError> {
    let shown = || user_path.to_owned();
    let names = segments(user_path)?;
    if names.iter().copied().any(is_git) {
        return Err(PathError::GitData { path: shown() });
    }
    let mut joined = root.to_path_buf();
    joined.extend(names);
    let absolute = fs::canonicalize(&joined).map_err(|e| io_to_path_error(&e, user_path))?;
    let Ok(rest) = absolute.strip_prefix(root) else {
        return Err(PathError::OutsideRoot { path: shown() });
    };
    let relative = rest.to_string_lossy().into_owned();
    if relative.split('/').any(is_git) {
        return Err(PathError::GitData { path: shown() });
    }
    // `absolute` has no symlinks left, so this is the target's own type.
    let meta = fs::metadata(&absolute).map_err(|e| io_to_path_error(&e, user_path))?;
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        NodeKind::Directory
    } else if ft.is_file() {
        NodeKind::File
    } else {
        return Err(PathError::SpecialFile {
            path: shown(),
            kind: special_kind(&ft),
        });
    };
    Ok(Resolved {
        absolute,
        relative,
        kind,
    })
}

/// Whether a path segment names git's directory (rule 6).
pub(crate) fn is_git(segment: &str) -> bool {
    segment.eq_ignore_ascii_case(".git")
}

fn io_to_path_error(e: &io::Error, user_path: &str) -> PathError {
    let path = user_path.to_owned();
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => PathError::NotFound { path },
        Some(libc::ELOOP) => PathError::SymlinkLoop { path },
        _ => PathError::Io {
            path,
            reason: e.to_string(),
        },
    }
}

/// Opens the regular file `path` names for reading, after every rule of
/// [`resolve`]. The check and the open are two steps, so the open itself
/// re-checks: `O_NOFOLLOW` refuses a final component that has become a
/// symlink since, `O_NONBLOCK` keeps a FIFO swapped in meanwhile from
/// hanging the open, and the opened file's own type must still be regular.
fn open_file(root: &Path, path: &str) -> Result<(Resolved, fs::File, fs::Metadata), PathError> {
    let resolved = resolve(root, path)?;
    if resolved.kind != NodeKind::File {
        return Err(PathError::NotAFile {
            path: path.to_owned(),
        });
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&resolved.absolute)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => PathError::OutsideRoot {
                path: path.to_owned(),
            },
            _ => io_to_path_error(&e, path),
        })?;
    let meta = file.metadata().map_err(|e| io_to_path_error(&e, path))?;
    if !meta.file_type().is_file() {
        return Err(PathError::SpecialFile {
            path: path.to_owned(),
            kind: special_kind(&meta.file_type()),
        });
    }
    Ok((resolved, file, meta))
}

/// A whole file read once: its size and sha256 (lowercase hex) and its first
/// `keep` bytes. Memory stays bounded by `keep` however large the file is.
struct Hashed {
    size: u64,
    sha256: String,
    head: Vec<u8>,
}

fn hash_file(mut file: impl io::Read, keep: usize) -> io::Result<Hashed> {
    let mut hasher = Sha256::new();
    let mut head = Vec::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        let room = keep.saturating_sub(head.len()).min(n);
        head.extend_from_slice(&buf[..room]);
        size += n as u64;
    }
    Ok(Hashed {
        size,
        sha256: sha256_hex(hasher),
        head,
    })
}

fn sha256_hex(hasher: Sha256) -> String {
    hex(&hasher.finalize())
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The blocking task panicked or was cancelled (runtime shutdown).
fn task_failed(path: String, e: &tokio::task::JoinError) -> PathError {
    PathError::Io {
        path,
        reason: e.to_string(),
    }
}

/// The Markdown code-fence language for a file name, by extension (or by
/// well-known name).
pub fn language_for(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "dockerfile" => return Some("dockerfile"),
        "makefile" | "gnumakefile" => return Some("makefile"),
        _ => {}
    }
    let ext = lower.rsplit_once('.')?.1;
    Some(match ext {
        "rs" => "rust",
        "go" => "go",
        "py" => "python",
        "js" | "mjs" | "cjs" => "javascript",
        "jsx" => "jsx",
        "ts" | "mts" | "cts" => "typescript",
        "tsx" => "tsx",
        "java" => "java",
        "kt" | "kts" => "kotlin",
        "c" | "h" => "c",
        "cc" | "cpp" | "cxx" | "hpp" | "hh" => "cpp",
        "cs" => "csharp",
        "rb" => "ruby",
        "php" => "php",
        "swift" => "swift",
        "sh" | "bash" | "zsh" => "bash",
        "sql" => "sql",
        "json" => "json",
        "yaml" | "yml" => "yaml",
        "toml" => "toml",
        "xml" => "xml",
        "html" | "htm" => "html",
        "css" => "css",
        "scss" => "scss",
        "md" | "markdown" => "markdown",
        "diff" | "patch" => "diff",
        "proto" => "protobuf",
        "tf" => "hcl",
        "lua" => "lua",
        "ini" | "cfg" => "ini",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::fixture::fixture;
    use super::*;

    #[test]
    fn refusals_are_typed() {
        let fx = fixture();
        let r = |p: &str| resolve(&fx.root, p).unwrap_err();
        assert_eq!(r("a\0b"), PathError::NulByte);
        assert!(matches!(r("/etc/passwd"), PathError::Absolute { .. }));
        assert!(matches!(
            r("src/../README.md"),
            PathError::ParentSegment { .. }
        ));
        assert!(matches!(r("%2e%2e/outside"), PathError::NotFound { .. }));
        assert!(matches!(r("..\\outside"), PathError::NotFound { .. }));
        assert!(matches!(
            r("link_etc/passwd"),
            PathError::OutsideRoot { .. }
        ));
        assert!(matches!(r("chain1"), PathError::OutsideRoot { .. }));
        assert!(matches!(r("src/upup"), PathError::OutsideRoot { .. }));
        assert!(matches!(r("loop_a"), PathError::SymlinkLoop { .. }));
        assert!(matches!(r("dangling"), PathError::NotFound { .. }));
        assert_eq!(
            r("fifo"),
            PathError::SpecialFile {
                path: "fifo".into(),
                kind: "named pipe (FIFO)"
            }
        );
        assert!(matches!(
            r("sock"),
            PathError::SpecialFile { kind: "socket", .. }
        ));
        assert_eq!(
            ["a\0b", "/etc", "src/..", "link_etc", "loop_a", "fifo", "dangling"]
                .map(|p| r(p).status()),
            [400, 400, 400, 400, 400, 400, 404]
        );
        // The message never says where an escaping link points.
        let msg = r("link_passwd").to_string();
        assert!(!msg.contains("/etc"), "{msg}");
        assert!(matches!(
            resolve(Path::new("/nonexistent/root"), "a"),
            Err(PathError::RootUnavailable { .. })
        ));
    }

    #[test]
    fn languages() {
        assert_eq!(language_for("main.rs"), Some("rust"));
        assert_eq!(language_for("App.TSX"), Some("tsx"));
        assert_eq!(language_for("Dockerfile"), Some("dockerfile"));
        assert_eq!(language_for("LICENSE"), None);
        assert_eq!(language_for("archive.tar.gz"), None);
    }
}
