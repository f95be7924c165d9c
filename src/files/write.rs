//! A person's own edits of project files: create, update, delete.
//!
//! Every rule of the module doc applies to the path, and more:
//! - The last name must be an entry of an existing directory inside the root
//!   (no directory is created); the root itself is never the target.
//! - Nothing is written through a symlink: an update or delete of a link is
//!   refused (even one pointing inside the root), and a create never replaces
//!   anything that exists. A symlinked *directory* inside the root is fine.
//! - Nothing inside a `.git` directory (any case, by the user's spelling or
//!   the resolved path) and no entry named `.git` is written: a `.git` file
//!   could point git at another repository.
//! - Content is at most [`MAX_EDIT_BYTES`].
//!
//! The parent directory is opened one name at a time from the root with
//! `O_NOFOLLOW`, and everything after that happens relative to that open
//! directory (`openat`, `renameat`, `unlinkat`), so a directory swapped for a
//! symlink after the check is refused instead of followed.
//!
//! A write is atomic: a temporary file (random name, `O_EXCL`) in the same
//! directory receives all the content and is fsynced, then renamed over the
//! target, then the directory is fsynced. Readers see the old file or the new
//! one, never a part, and a crash leaves one of the two.
//!
//! Update and delete name the sha256 the editor read. Edits through this
//! module are serialized per target path (an async lock held for the whole
//! blocking operation), and the sha is compared again right before the
//! rename, so of two edits made from the same version exactly one wins.
//! Residual risk: a process outside this module (the CLI) that changes the
//! file between that last compare and the rename (or the unlink of a delete)
//! loses its change; no system call compares and renames in one step.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, LazyLock, PoisonError, Weak};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{unlinkat, UnlinkatFlags};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{
    canonical_root, hash_file, hex, resolve_under, segments, sha256_hex, special_kind, NodeKind,
    PathError, MAX_EDIT_BYTES,
};

/// `renameat2(dir, from, dir, to, RENAME_NOREPLACE)`: the rename fails with EEXIST instead of
/// replacing `to`. Hand-written as the raw system call: nix offers `renameat2` only with glibc,
/// and the static release executables link musl.
fn rename_noreplace(dir: &impl std::os::fd::AsRawFd, from: &str, to: &str) -> Result<(), Errno> {
    use std::ffi::CString;
    let (from, to) = (
        CString::new(from).map_err(|_| Errno::EINVAL)?,
        CString::new(to).map_err(|_| Errno::EINVAL)?,
    );
    let fd = dir.as_raw_fd();
    // SAFETY: both names are NUL-terminated strings that live across the call, and `fd` is an
    // open directory borrowed from `dir` for its duration.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            fd,
            from.as_ptr(),
            fd,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Why an edit was refused. Display is the text shown to the user;
/// [`WriteError::status`] the HTTP status the REST layer answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("`{path}` already exists; read it and update it instead.")]
    Exists { path: String },
    #[error(
        "`{path}` has changed since it was read (its sha256 is now {current}); \
         read it again and redo the edit."
    )]
    Stale { path: String, current: String },
    #[error(
        "`{path}` cannot be created: the directory `{parent}` does not exist in the project. \
         Files can only be created in existing directories."
    )]
    ParentMissing { path: String, parent: String },
    #[error("`{path}` would be {size} bytes; an edit may write at most {max} bytes.")]
    TooLarge {
        path: String,
        size: usize,
        max: usize,
    },
    #[error("`{path}` is a symbolic link; edit the file it points to by that file's own path.")]
    Symlink { path: String },
    #[error("The project directory itself cannot be written or deleted; name a file in it.")]
    Root,
    #[error("`{path}` cannot be written: {reason}")]
    Io { path: String, reason: String },
}

impl WriteError {
    /// The HTTP status this refusal answers with (the REST layer maps here, once).
    pub fn status(&self) -> u16 {
        match self {
            WriteError::Path(e) => e.status(),
            WriteError::Exists { .. } | WriteError::Stale { .. } => 409,
            WriteError::ParentMissing { .. } => 404,
            WriteError::TooLarge { .. } => 413,
            WriteError::Symlink { .. } | WriteError::Root => 400,
            WriteError::Io { .. } => 500,
        }
    }

    fn io(path: &str, e: impl std::fmt::Display) -> Self {
        WriteError::Io {
            path: path.to_owned(),
            reason: e.to_string(),
        }
    }
}

/// What an edit wrote: `path` relative to the root (symlinked directories
/// resolved), and the new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Written {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Creates `path` with `content`; refused when anything has that name.
pub async fn create(root: PathBuf, path: String, content: Vec<u8>) -> Result<Written, WriteError> {
    check_size(&path, &content)?;
    edit(root, path, move |t| {
        if entry_type(t)?.is_some() {
            return Err(t.exists());
        }
        replace(t, &content, NEW_FILE_MODE, Overwrite::No, || Ok(()))
    })
    .await
}

/// Replaces the content of the regular file `path`, if its sha256 is still
/// `expected_sha256` (hex, any case); its permissions are kept.
pub async fn update(
    root: PathBuf,
    path: String,
    content: Vec<u8>,
    expected_sha256: String,
) -> Result<Written, WriteError> {
    check_size(&path, &content)?;
    edit(root, path, move |t| {
        let mode = current_version(t, &expected_sha256)?;
        replace(t, &content, mode, Overwrite::Yes, || {
            current_version(t, &expected_sha256).map(drop)
        })
    })
    .await
}

/// Deletes the regular file `path`, if its sha256 is still
/// `expected_sha256`. Answers the deleted file's path relative to the root.
pub async fn delete(
    root: PathBuf,
    path: String,
    expected_sha256: String,
) -> Result<String, WriteError> {
    edit(root, path, move |t| {
        current_version(t, &expected_sha256)?;
        unlinkat(&t.dir, t.name.as_str(), UnlinkatFlags::NoRemoveDir).map_err(|e| t.io(e))?;
        t.dir.sync_all().map_err(|e| t.io(e))?;
        Ok(t.relative.clone())
    })
    .await
}

const NEW_FILE_MODE: u32 = 0o644;

fn check_size(path: &str, content: &[u8]) -> Result<(), WriteError> {
    if content.len() > MAX_EDIT_BYTES {
        return Err(WriteError::TooLarge {
            path: path.to_owned(),
            size: content.len(),
            max: MAX_EDIT_BYTES,
        });
    }
    Ok(())
}

/// Finds the target on the blocking pool, takes its lock, and runs `op`
/// there with the lock held. The guard moves into the blocking task, so a
/// caller that gives up (a client gone) cannot release the lock while the
/// operation still runs.
async fn edit<T: Send + 'static>(
    root: PathBuf,
    path: String,
    op: impl FnOnce(&Target) -> Result<T, WriteError> + Send + 'static,
) -> Result<T, WriteError> {
    let shown = path.clone();
    let target = blocking(&shown, move || Target::open(&root, &path)).await?;
    let guard = lock(target.key.clone()).await;
    blocking(&shown, move || {
        let _guard = guard;
        op(&target)
    })
    .await
}

async fn blocking<T: Send + 'static>(
    path: &str,
    f: impl FnOnce() -> Result<T, WriteError> + Send + 'static,
) -> Result<T, WriteError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(WriteError::io(path, e)))
}

type LockMap = HashMap<PathBuf, Weak<Mutex<()>>>;

/// One lock per canonical target path, alive while someone holds or awaits
/// it; the map forgets dead ones as it goes.
static LOCKS: LazyLock<std::sync::Mutex<LockMap>> = LazyLock::new(Default::default);

async fn lock(key: PathBuf) -> OwnedMutexGuard<()> {
    let lock = {
        let mut map = LOCKS.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, l| l.strong_count() > 0);
        match map.get(&key).and_then(Weak::upgrade) {
            Some(lock) => lock,
            None => {
                let lock = Arc::new(Mutex::new(()));
                map.insert(key, Arc::downgrade(&lock));
                lock
            }
        }
    };
    lock.lock_owned().await
}

/// Where an edit lands: its parent directory, open, and the name in it.
struct Target {
    dir: fs::File,
    name: String,
    /// The user's spelling, for messages.
    shown: String,
    /// Relative to the root, `/`-separated.
    relative: String,
    /// Canonical absolute path: the lock's key.
    key: PathBuf,
}

impl Target {
    fn open(root: &Path, user_path: &str) -> Result<Target, WriteError> {
        let root = canonical_root(root)?;
        let mut names = segments(user_path)?;
        let name = names.pop().ok_or(WriteError::Root)?;
        let parent_shown = names.join("/");
        let parent = resolve_under(&root, &parent_shown).map_err(|e| match e {
            PathError::NotFound { .. } => WriteError::ParentMissing {
                path: user_path.to_owned(),
                parent: parent_shown.clone(),
            },
            PathError::GitData { .. } => PathError::GitData {
                path: user_path.to_owned(),
            }
            .into(),
            e => e.into(),
        })?;
        if parent.kind != NodeKind::Directory {
            return Err(PathError::NotADirectory { path: parent_shown }.into());
        }
        let relative = if parent.relative.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", parent.relative)
        };
        let is_git = super::is_git;
        if names.iter().copied().chain([name]).any(is_git) || relative.split('/').any(is_git) {
            return Err(PathError::GitData {
                path: user_path.to_owned(),
            }
            .into());
        }
        let below = parent.absolute.strip_prefix(&root).unwrap_or(Path::new(""));
        let dir = open_beneath(&root, below).map_err(|e| match e {
            // A directory on the way became a symlink (or a file) since.
            Errno::ELOOP | Errno::ENOTDIR => PathError::OutsideRoot {
                path: user_path.to_owned(),
            }
            .into(),
            e => WriteError::io(user_path, e),
        })?;
        Ok(Target {
            dir: fs::File::from(dir),
            name: name.to_owned(),
            shown: user_path.to_owned(),
            relative,
            key: parent.absolute.join(name),
        })
    }

    fn io(&self, e: impl std::fmt::Display) -> WriteError {
        WriteError::io(&self.shown, e)
    }

    fn exists(&self) -> WriteError {
        WriteError::Exists {
            path: self.shown.clone(),
        }
    }

    fn not_found(&self) -> WriteError {
        PathError::NotFound {
            path: self.shown.clone(),
        }
        .into()
    }

    /// The refusal for an entry of type `ft` where a regular file must be.
    fn not_regular(&self, ft: &fs::FileType) -> WriteError {
        let path = self.shown.clone();
        if ft.is_symlink() {
            WriteError::Symlink { path }
        } else if ft.is_dir() {
            PathError::NotAFile { path }.into()
        } else {
            PathError::SpecialFile {
                path,
                kind: special_kind(ft),
            }
            .into()
        }
    }
}

/// Opens the directory `below` the root one name at a time, never following
/// a symlink. `below` is canonical (no symlinks, no `..`), so this refuses
/// exactly what was swapped in since it was resolved.
fn open_beneath(root: &Path, below: &Path) -> Result<OwnedFd, Errno> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut dir = nix::fcntl::open(root, flags, Mode::empty())?;
    for part in below.components() {
        let Component::Normal(name) = part else {
            return Err(Errno::ENOTDIR);
        };
        dir = openat(&dir, name, flags | OFlag::O_NOFOLLOW, Mode::empty())?;
    }
    Ok(dir)
}

/// The type of whatever has the target's name (a symlink's own type), or
/// None. `O_PATH` looks without opening: no device driver is touched.
fn entry_type(t: &Target) -> Result<Option<fs::FileType>, WriteError> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match openat(&t.dir, t.name.as_str(), flags, Mode::empty()) {
        Ok(fd) => {
            let meta = fs::File::from(fd).metadata().map_err(|e| t.io(e))?;
            Ok(Some(meta.file_type()))
        }
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(t.io(e)),
    }
}

/// Checks that the target is a regular file whose sha256 is `expected` and
/// answers its permission bits.
fn current_version(t: &Target, expected: &str) -> Result<u32, WriteError> {
    let file = open_regular(t)?;
    let meta = file.metadata().map_err(|e| t.io(e))?;
    // Checked again on the open file: it may have been swapped meanwhile.
    if !meta.is_file() {
        return Err(t.not_regular(&meta.file_type()));
    }
    let current = hash_file(&file, 0).map_err(|e| t.io(e))?.sha256;
    if !expected.eq_ignore_ascii_case(&current) {
        return Err(WriteError::Stale {
            path: t.shown.clone(),
            current,
        });
    }
    Ok(meta.permissions().mode() & 0o777)
}

/// Opens the target for reading when it is a regular file. Its type is looked
/// at first, so a device is never opened; `O_NOFOLLOW` and `O_NONBLOCK` keep
/// a symlink or FIFO swapped in after that from being followed or hanging.
fn open_regular(t: &Target) -> Result<fs::File, WriteError> {
    match entry_type(t)? {
        None => return Err(t.not_found()),
        Some(ft) if !ft.is_file() => return Err(t.not_regular(&ft)),
        Some(_) => {}
    }
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    openat(&t.dir, t.name.as_str(), flags, Mode::empty())
        .map(fs::File::from)
        .map_err(|e| match e {
            Errno::ELOOP => WriteError::Symlink {
                path: t.shown.clone(),
            },
            Errno::ENOENT => t.not_found(),
            e => t.io(e),
        })
}

/// Whether a rename may replace an existing target.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Overwrite {
    Yes,
    No,
}

/// Writes `content` to a temporary file next to the target and makes it
/// durable, runs `verify` (the last check before the target changes),
/// renames the temporary file over the target and makes the rename durable.
/// On any failure before the rename, the temporary file is removed and the
/// target is as it was.
fn replace(
    t: &Target,
    content: &[u8],
    mode: u32,
    overwrite: Overwrite,
    verify: impl FnOnce() -> Result<(), WriteError>,
) -> Result<Written, WriteError> {
    let temp = TempFile::create(t)?;
    let mut file = &temp.file;
    file.write_all(content).map_err(|e| t.io(e))?;
    // Explicit, so that the umask does not decide.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| t.io(e))?;
    file.sync_all().map_err(|e| t.io(e))?;
    verify()?;
    let (from, to) = (temp.name.as_str(), t.name.as_str());
    let renamed = match overwrite {
        Overwrite::Yes => renameat(&t.dir, from, &t.dir, to),
        Overwrite::No => rename_noreplace(&t.dir, from, to),
    };
    match renamed {
        Ok(()) => temp.keep(),
        Err(Errno::EEXIST) => return Err(t.exists()),
        Err(e) => return Err(t.io(e)),
    }
    t.dir.sync_all().map_err(|e| t.io(e))?;
    Ok(Written {
        path: t.relative.clone(),
        size: content.len() as u64,
        sha256: sha256_hex(Sha256::new_with_prefix(content)),
    })
}

/// A temporary file in the target's directory, removed when dropped unless
/// it was renamed ([`TempFile::keep`]).
struct TempFile<'t> {
    dir: &'t fs::File,
    name: String,
    file: fs::File,
    kept: bool,
}

impl<'t> TempFile<'t> {
    fn create(t: &'t Target) -> Result<TempFile<'t>, WriteError> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        // 64 random bits: a clash (O_EXCL says so) means someone guesses names.
        for _ in 0..3 {
            let mut random = [0u8; 8];
            getrandom::fill(&mut random).map_err(|e| t.io(e))?;
            let name = format!(".{}.claude-code-edit", hex(&random));
            match openat(
                &t.dir,
                name.as_str(),
                flags,
                Mode::from_bits_truncate(0o600),
            ) {
                Ok(fd) => {
                    return Ok(TempFile {
                        dir: &t.dir,
                        name,
                        file: fs::File::from(fd),
                        kept: false,
                    })
                }
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(t.io(e)),
            }
        }
        Err(t.io("no free name for a temporary file"))
    }

    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if !self.kept {
            let _ = unlinkat(self.dir, self.name.as_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}

#[cfg(test)]
mod tests;
