//! Listing and reading project files, on tokio's blocking pool.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{
    canonical_root, hash_file, io_to_path_error, language_for, open_file, resolve_under,
    task_failed, NodeKind, PathError, MAX_EDIT_BYTES,
};

/// Files above this size are not read at all (not even as an attachment).
pub const MAX_ATTACHMENT_BYTES: u64 = 20 * 1024 * 1024;

/// One entry of a listing; the JSON shape of the design's FileNode
/// (`type` is `"file"` or `"directory"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileNode {
    pub name: String,
    /// Relative to the project root, `/`-separated.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: NodeKind,
    /// Files only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Directories only, when they were expanded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<FileNode>,
}

/// A listing and whether a cap cut it short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listing {
    pub tree: FileNode,
    /// Entries in the tree, not counting its root.
    pub entries: usize,
    /// Some directory at the depth cap was not expanded.
    pub depth_capped: bool,
    /// Entries were left out because of the count cap.
    pub count_capped: bool,
}

/// [`list_blocking`] on tokio's blocking pool: the caller may be the thread
/// that serves hooks, which a walk of a large directory must not hold.
pub async fn list(
    root: PathBuf,
    dir: String,
    depth_cap: usize,
    count_cap: usize,
) -> Result<Listing, PathError> {
    let shown = dir.clone();
    tokio::task::spawn_blocking(move || list_blocking(&root, &dir, depth_cap, count_cap))
        .await
        .unwrap_or_else(|e| Err(task_failed(shown, &e)))
}

/// [`read_blocking`] on tokio's blocking pool (see [`list`]).
pub async fn read(
    root: PathBuf,
    path: String,
    max_inline: usize,
) -> Result<FileContent, PathError> {
    let shown = path.clone();
    tokio::task::spawn_blocking(move || read_blocking(&root, &path, max_inline))
        .await
        .unwrap_or_else(|e| Err(task_failed(shown, &e)))
}

/// Lists `dir` (a user path) breadth-first, so that a count cap keeps the top
/// levels: at most `depth_cap` levels below `dir` (1 = its entries only) and
/// at most `count_cap` entries. In each directory, directories come first,
/// then files, each by name.
///
/// The cap bounds the work, not only the answer: a directory is read only
/// until the entries still allowed are found, plus one to know that more
/// exist; only those are sorted. So a capped listing shows the entries the
/// file system returned first, in order, not the first ones by name.
///
/// Entries are listed as they are, without following symlinks into
/// directories (no cycles); a symlink is shown only when its target is a file
/// or directory inside the root, with the target's kind. Other symlinks,
/// special files and names that are not UTF-8 are left out.
fn list_blocking(
    root: &Path,
    dir: &str,
    depth_cap: usize,
    count_cap: usize,
) -> Result<Listing, PathError> {
    let root = canonical_root(root)?;
    let start = resolve_under(&root, dir)?;
    if start.kind != NodeKind::Directory {
        return Err(PathError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    // Arena of nodes with children indices; assembled into a tree at the end.
    struct Slot {
        node: FileNode,
        children: Vec<usize>,
    }
    let name = start
        .absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut slots = vec![Slot {
        node: FileNode {
            name,
            path: start.relative.clone(),
            kind: NodeKind::Directory,
            size: None,
            children: Vec::new(),
        },
        children: Vec::new(),
    }];
    let mut queue = VecDeque::from([(0usize, start.absolute.clone(), 0usize)]);
    let (mut depth_capped, mut count_capped) = (false, false);
    while let Some((slot, abs, depth)) = queue.pop_front() {
        if depth >= depth_cap {
            depth_capped = true;
            continue;
        }
        // Slot 0 is the listed directory itself, not an entry.
        let allowed = count_cap.saturating_sub(slots.len() - 1);
        let (entries, more) = match read_dir_capped(&root, &abs, &slots[slot].node.path, allowed) {
            Ok(e) => e,
            // An unreadable subdirectory is shown empty, not a failed listing.
            Err(_) if slot != 0 => continue,
            Err(e) => {
                return Err(PathError::Io {
                    path: dir.to_owned(),
                    reason: e.to_string(),
                })
            }
        };
        for (node, real_dir) in entries {
            let index = slots.len();
            slots[slot].children.push(index);
            if let Some(real) = real_dir {
                queue.push_back((index, real, depth + 1));
            }
            slots.push(Slot {
                node,
                children: Vec::new(),
            });
        }
        if more {
            count_capped = true;
            break;
        }
    }
    fn assemble(slots: &mut [Option<Slot>], i: usize) -> FileNode {
        let Slot { mut node, children } = slots[i]
            .take()
            .expect("the arena is a tree: every slot has one parent");
        node.children = children.into_iter().map(|c| assemble(slots, c)).collect();
        node
    }
    let entries = slots.len() - 1;
    let mut slots: Vec<Option<Slot>> = slots.into_iter().map(Some).collect();
    Ok(Listing {
        tree: assemble(&mut slots, 0),
        entries,
        depth_capped,
        count_capped,
    })
}

/// Names left out of a listing (not UTF-8, special files, symlinks leaving
/// the root) that one directory may make [`read_dir_capped`] read past: a
/// directory full of them still costs bounded work.
const MAX_SKIPPED: usize = 1000;

/// At most `max` entries of one directory, sorted, each with the real
/// directory to descend into (None for files and for symlinked directories),
/// and whether the directory holds more (an entry past `max`, or more than
/// [`MAX_SKIPPED`] names left out). Reading stops there.
fn read_dir_capped(
    root: &Path,
    abs: &Path,
    rel: &str,
    max: usize,
) -> io::Result<(Vec<ListedEntry>, bool)> {
    let (mut out, more) = first_entries(fs::read_dir(abs)?, max, |entry| {
        listed_entry(root, rel, &entry)
    })?;
    out.sort_by(|(a, _), (b, _)| {
        (a.kind != NodeKind::Directory)
            .cmp(&(b.kind != NodeKind::Directory))
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok((out, more))
}

/// The first `max` entries `keep` turns into something, and whether there
/// are more; reads no further than it must to know (see [`read_dir_capped`]).
fn first_entries<E, T>(
    entries: impl Iterator<Item = io::Result<E>>,
    max: usize,
    mut keep: impl FnMut(E) -> Option<T>,
) -> io::Result<(Vec<T>, bool)> {
    let mut out = Vec::new();
    let mut skipped = 0usize;
    for entry in entries {
        if out.len() == max || skipped > MAX_SKIPPED {
            return Ok((out, true));
        }
        match keep(entry?) {
            Some(kept) => out.push(kept),
            None => skipped += 1,
        }
    }
    Ok((out, false))
}

/// A listed entry and the real directory to descend into (None for files and
/// for symlinked directories).
type ListedEntry = (FileNode, Option<PathBuf>);

/// One directory entry as a listing shows it; None for what listings leave
/// out (see [`list_blocking`]).
fn listed_entry(root: &Path, rel: &str, entry: &fs::DirEntry) -> Option<ListedEntry> {
    let name = entry.file_name().into_string().ok()?;
    if super::is_git(&name) {
        return None;
    }
    let path = if rel.is_empty() {
        name.clone()
    } else {
        format!("{rel}/{name}")
    };
    let ft = entry.file_type().ok()?;
    let (kind, size, descend) = if ft.is_dir() {
        (NodeKind::Directory, None, Some(entry.path()))
    } else if ft.is_file() {
        (NodeKind::File, entry.metadata().ok().map(|m| m.len()), None)
    } else if ft.is_symlink() {
        match resolve_under(root, &path).ok()? {
            r if r.kind == NodeKind::File => (
                NodeKind::File,
                fs::metadata(&r.absolute).ok().map(|m| m.len()),
                None,
            ),
            _ => (NodeKind::Directory, None, None),
        }
    } else {
        return None;
    };
    Some((
        FileNode {
            name,
            path,
            kind,
            size,
            children: Vec::new(),
        },
        descend,
    ))
}

/// A file with the version a later update or delete must name: what
/// `GET /api/v1/sessions/{id}/files/{path...}` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionedFile {
    /// Relative to the project root, `/`-separated, symlinks resolved.
    pub path: String,
    /// Bytes read, which is what `sha256` covers.
    pub size: u64,
    /// Of the bytes on disk, lowercase hex: the `If-Match` of an edit.
    pub sha256: String,
    pub binary: bool,
    /// The text, when it is not binary and at most [`MAX_EDIT_BYTES`].
    pub content: Option<String>,
    pub language: Option<&'static str>,
}

/// How much of a large file decides whether it is binary (as git does).
const SNIFF_BYTES: usize = 8 * 1024;

/// [`read_versioned_blocking`] on tokio's blocking pool (see [`list`]).
pub async fn read_versioned(root: PathBuf, path: String) -> Result<VersionedFile, PathError> {
    let shown = path.clone();
    tokio::task::spawn_blocking(move || read_versioned_blocking(&root, &path))
        .await
        .unwrap_or_else(|e| Err(task_failed(shown, &e)))
}

/// Reads a project file whole, once: the hash covers every byte, while
/// memory holds at most [`MAX_EDIT_BYTES`] + 1 of them. A file up to that
/// size is text when all of it is UTF-8 without NUL bytes (the rule of
/// [`read`]); a larger one is judged by its first [`SNIFF_BYTES`].
fn read_versioned_blocking(root: &Path, path: &str) -> Result<VersionedFile, PathError> {
    let (resolved, file, _) = open_file(root, path)?;
    let hashed = hash_file(file, MAX_EDIT_BYTES + 1).map_err(|e| io_to_path_error(&e, path))?;
    let (binary, content) = if hashed.head.len() <= MAX_EDIT_BYTES {
        match String::from_utf8(hashed.head) {
            Ok(text) if !text.contains('\0') => (false, Some(text)),
            _ => (true, None),
        }
    } else {
        (!prefix_is_text(&hashed.head[..SNIFF_BYTES]), None)
    };
    let name = resolved
        .absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(VersionedFile {
        path: resolved.relative,
        size: hashed.size,
        sha256: hashed.sha256,
        binary,
        content,
        language: language_for(&name),
    })
}

/// No NUL byte and valid UTF-8, except that the prefix of a longer file may
/// end inside a character.
fn prefix_is_text(prefix: &[u8]) -> bool {
    !prefix.contains(&0)
        && match std::str::from_utf8(prefix) {
            Ok(_) => true,
            // `error_len` None: the prefix ends in the middle of a character.
            Err(e) => e.error_len().is_none(),
        }
}

/// Why a file is offered as an attachment rather than shown inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentReason {
    /// Not UTF-8 text (or contains NUL bytes).
    Binary,
    /// Text, but longer than the inline limit.
    TooLongToShow,
}

/// A file's content, sorted by how it can be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// Small UTF-8 text: show in a code block with `language` as the fence info.
    Text {
        path: String,
        content: String,
        language: Option<&'static str>,
    },
    /// Upload as a file attachment.
    Attachment {
        path: String,
        name: String,
        bytes: Vec<u8>,
        reason: AttachmentReason,
    },
    /// Larger than [`MAX_ATTACHMENT_BYTES`]; not read.
    TooLarge { path: String, size: u64 },
}

/// Reads a project file: inline text when it is UTF-8 and at most
/// `max_inline` bytes, otherwise an attachment (up to
/// [`MAX_ATTACHMENT_BYTES`]).
fn read_blocking(root: &Path, path: &str, max_inline: usize) -> Result<FileContent, PathError> {
    let (resolved, file, meta) = open_file(root, path)?;
    let io_err = |e: io::Error| io_to_path_error(&e, path);
    let size = meta.len();
    if size > MAX_ATTACHMENT_BYTES {
        return Ok(FileContent::TooLarge {
            path: resolved.relative,
            size,
        });
    }
    let mut bytes = Vec::new();
    // The file may grow after fstat: never read past the cap.
    file.take(MAX_ATTACHMENT_BYTES)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    let name = resolved
        .absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let language = language_for(&name);
    let is_text = !bytes.contains(&0);
    Ok(match String::from_utf8(bytes) {
        Ok(content) if is_text && content.len() <= max_inline => FileContent::Text {
            path: resolved.relative,
            content,
            language,
        },
        Ok(content) => FileContent::Attachment {
            path: resolved.relative,
            name,
            bytes: content.into_bytes(),
            reason: if is_text {
                AttachmentReason::TooLongToShow
            } else {
                AttachmentReason::Binary
            },
        },
        Err(e) => FileContent::Attachment {
            path: resolved.relative,
            name,
            bytes: e.into_bytes(),
            reason: AttachmentReason::Binary,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::fixture::{fixture, hostile_paths, SECRET};
    use crate::files::{resolve, sha256_hex};
    use sha2::{Digest, Sha256};

    #[test]
    fn hostile_paths_are_refused() {
        let fx = fixture();
        let paths = hostile_paths(&fx.root);
        assert!(paths.len() >= 50, "only {} hostile paths", paths.len());
        for p in &paths {
            match resolve(&fx.root, p) {
                Err(_) => {}
                Ok(r) => panic!("{p:?} resolved to {r:?}"),
            }
            match read_blocking(&fx.root, p, 1 << 20) {
                Err(e) => assert!(!e.to_string().contains(SECRET)),
                Ok(c) => panic!("{p:?} was read: {c:?}"),
            }
            if let Ok(v) = read_versioned_blocking(&fx.root, p) {
                panic!("{p:?} was read: {v:?}");
            }
            if let Ok(l) = list_blocking(&fx.root, p, 3, 1000) {
                panic!("{p:?} was listed: {l:?}");
            }
        }
    }

    /// Rule 6: git's data is neither read nor listed, by any spelling or link.
    #[test]
    fn git_data_is_not_shown() {
        let fx = fixture();
        std::fs::create_dir(fx.root.join(".git")).unwrap();
        std::fs::write(fx.root.join(".git/config"), "url = https://TOKEN@x\n").unwrap();
        std::os::unix::fs::symlink(".git", fx.root.join("gitlink")).unwrap();
        for p in [
            ".git/config",
            ".GIT/config",
            "gitlink/config",
            "./.git/config",
        ] {
            let refused = |r: Result<(), PathError>| {
                assert!(matches!(r, Err(PathError::GitData { .. })), "{p}: {r:?}");
            };
            refused(read_blocking(&fx.root, p, 100).map(drop));
            refused(read_versioned_blocking(&fx.root, p).map(drop));
        }
        let e = list_blocking(&fx.root, ".git", 1, 10).unwrap_err();
        assert_eq!((e.status(), e.to_string().contains("TOKEN")), (403, false));
        let root = list_blocking(&fx.root, "", 1, 100).unwrap();
        assert!(
            root.tree
                .children
                .iter()
                .all(|n| n.name != ".git" && n.name != "gitlink"),
            "{:?}",
            root.tree.children
        );
    }

    #[test]
    fn reads_and_lists_only_their_kind() {
        let fx = fixture();
        assert!(matches!(
            read_blocking(&fx.root, "src", 100),
            Err(PathError::NotAFile { .. })
        ));
        assert!(matches!(
            list_blocking(&fx.root, "README.md", 1, 10),
            Err(PathError::NotADirectory { .. })
        ));
    }

    #[test]
    fn legitimate_paths_work() {
        let fx = fixture();
        for (p, rel, kind) in [
            ("", "", NodeKind::Directory),
            (".", "", NodeKind::Directory),
            ("src/", "src", NodeKind::Directory),
            ("./src//main.rs", "src/main.rs", NodeKind::File),
            ("README.md", "README.md", NodeKind::File),
            (
                "dir with space/file name.txt",
                "dir with space/file name.txt",
                NodeKind::File,
            ),
            ("link_inside", "src/main.rs", NodeKind::File),
            ("link_inside_dir/lib.rs", "src/lib.rs", NodeKind::File),
            ("src/up/README.md", "README.md", NodeKind::File),
            (".hidden", ".hidden", NodeKind::File),
        ] {
            let r = resolve(&fx.root, p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            assert_eq!((r.relative.as_str(), r.kind), (rel, kind), "{p:?}");
        }
        assert_eq!(
            read_blocking(&fx.root, "src/main.rs", 1000).unwrap(),
            FileContent::Text {
                path: "src/main.rs".into(),
                content: "fn main() {}\n".into(),
                language: Some("rust"),
            }
        );
        match read_blocking(&fx.root, "image.png", 1000).unwrap() {
            FileContent::Attachment {
                name,
                bytes,
                reason,
                ..
            } => {
                assert_eq!(name, "image.png");
                assert_eq!(bytes.len(), 7);
                assert_eq!(reason, AttachmentReason::Binary);
            }
            other => panic!("{other:?}"),
        }
        // A sparse file past the attachment cap is reported, not read.
        let huge = fs::File::create(fx.root.join("huge.bin")).unwrap();
        huge.set_len(MAX_ATTACHMENT_BYTES + 1).unwrap();
        assert_eq!(
            read_blocking(&fx.root, "huge.bin", 1000).unwrap(),
            FileContent::TooLarge {
                path: "huge.bin".into(),
                size: MAX_ATTACHMENT_BYTES + 1
            }
        );
        match read_blocking(&fx.root, "notes.txt", 1000).unwrap() {
            FileContent::Attachment { reason, bytes, .. } => {
                assert_eq!(reason, AttachmentReason::TooLongToShow);
                assert_eq!(bytes.len(), 5000);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn listing_sorts_caps_and_hides_escapes() {
        let fx = fixture();
        let l = list_blocking(&fx.root, "", 1, 1000).unwrap();
        let names: Vec<&str> = l.tree.children.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "dir with space",
                "link_inside_dir",
                "src",
                ".hidden",
                "image.png",
                "link_inside",
                "notes.txt",
                "README.md",
            ]
        );
        assert!(l.depth_capped);
        assert!(!l.count_capped);
        assert_eq!(l.entries, 8);
        let readme = &l.tree.children[7];
        assert_eq!((readme.size, readme.path.as_str()), (Some(10), "README.md"));
        // Symlinked directories are not descended (no cycles via src/up).
        let deep = list_blocking(&fx.root, "", 10, 1000).unwrap();
        assert!(!deep.depth_capped);
        let src = deep.tree.children.iter().find(|n| n.name == "src").unwrap();
        let src_names: Vec<&str> = src.children.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(src_names, ["up", "lib.rs", "main.rs"]);
        assert!(src.children[0].children.is_empty());
        assert_eq!(src.children[1].path, "src/lib.rs");
        // Count cap keeps the top level first (breadth-first).
        let capped = list_blocking(&fx.root, "", 10, 3).unwrap();
        assert!(capped.count_capped);
        assert_eq!(capped.entries, 3);
        assert_eq!(capped.tree.children.len(), 3);
        assert!(capped.tree.children.iter().all(|c| c.children.is_empty()));
        // A subdirectory by its user path.
        let sub = list_blocking(&fx.root, "dir with space", 1, 10).unwrap();
        assert_eq!(sub.tree.path, "dir with space");
        assert_eq!(sub.tree.children[0].path, "dir with space/file name.txt");
        // JSON shape of the design's FileNode.
        let json = serde_json::to_value(&sub.tree).unwrap();
        assert_eq!(json["type"], "directory");
        assert_eq!(json["children"][0]["type"], "file");
        assert_eq!(json["children"][0]["size"], 7);
    }

    /// The cap bounds the reading: one entry past it says that more exist, and
    /// nothing after that is read; entries left out are read past only up to
    /// MAX_SKIPPED.
    #[test]
    fn listings_read_no_further_than_their_cap() {
        let read = std::cell::Cell::new(0usize);
        let entries = (0..100_000).map(|i| {
            read.set(read.get() + 1);
            Ok::<_, io::Error>(i)
        });
        let (kept, more) = first_entries(entries, 300, Some).unwrap();
        assert_eq!((kept.len(), more, read.get()), (300, true, 301));

        read.set(0);
        let entries = (0..100_000).map(|i| {
            read.set(read.get() + 1);
            Ok::<_, io::Error>(i)
        });
        let (kept, more) = first_entries(entries, 300, |_| None::<i32>).unwrap();
        assert_eq!((kept.len(), more), (0, true));
        assert_eq!(read.get(), MAX_SKIPPED + 2);

        let (kept, more) = first_entries((0..5).map(Ok::<_, io::Error>), 5, Some).unwrap();
        assert_eq!(
            (kept, more),
            (vec![0, 1, 2, 3, 4], false),
            "exactly the cap"
        );

        // Through the file system: a capped listing of a large directory.
        let dir = tempfile::tempdir().unwrap();
        for i in 0..2000 {
            fs::write(dir.path().join(format!("f{i:04}")), "").unwrap();
        }
        let l = list_blocking(dir.path(), "", 3, 300).unwrap();
        assert_eq!((l.entries, l.count_capped), (300, true));
        let names: Vec<&str> = l.tree.children.iter().map(|n| n.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "what is shown is sorted");
    }

    /// The listing runs off the caller's thread: on a one-thread runtime (the
    /// plugin's), other tasks keep running while a large directory is walked.
    #[tokio::test(flavor = "current_thread")]
    async fn listing_does_not_hold_the_runtime_thread() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..30_000 {
            fs::File::create(dir.path().join(format!("f{i:05}"))).unwrap();
        }
        let root = dir.path().to_path_buf();
        let listing = tokio::spawn(list(root, String::new(), 1, usize::MAX));
        let began = std::time::Instant::now();
        let mut ticks = 0u32;
        while !listing.is_finished() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            ticks += 1;
        }
        let took = began.elapsed();
        let l = listing.await.unwrap().unwrap();
        assert_eq!(l.entries, 30_000);
        assert!(
            ticks >= 3,
            "only {ticks} ticks of another task during a {took:?} listing"
        );
    }

    #[test]
    fn versioned_reads_hash_every_byte_and_show_only_small_text() {
        let fx = fixture();
        let v = read_versioned_blocking(&fx.root, "link_inside").unwrap();
        assert_eq!(
            v,
            VersionedFile {
                path: "src/main.rs".into(),
                size: 13,
                sha256: "536e506bb90914c243a12b397b9a998f85ae2cbd9ba02dfd03a9e155ca5ca0f4".into(),
                binary: false,
                content: Some("fn main() {}\n".into()),
                language: Some("rust"),
            }
        );
        let png = read_versioned_blocking(&fx.root, "image.png").unwrap();
        assert_eq!((png.binary, png.content, png.size), (true, None, 7));
        fs::write(fx.root.join("latin1.txt"), b"caf\xe9").unwrap();
        let latin1 = read_versioned_blocking(&fx.root, "latin1.txt").unwrap();
        assert_eq!((latin1.binary, latin1.content), (true, None));
        let sha = |bytes: &[u8]| sha256_hex(Sha256::new_with_prefix(bytes));
        // Exactly the inline limit is still shown.
        let at_limit = "a".repeat(MAX_EDIT_BYTES);
        fs::write(fx.root.join("at_limit.txt"), &at_limit).unwrap();
        let v = read_versioned_blocking(&fx.root, "at_limit.txt").unwrap();
        assert_eq!(v.content.as_deref(), Some(at_limit.as_str()));
        // Past it: no content, but the hash and size cover the whole file and
        // the first 8 KiB decide "binary", even when they end mid-character.
        let mut big = "é".repeat(SNIFF_BYTES / 2 - 1).into_bytes();
        big.push(b'x');
        big.extend_from_slice("é".repeat(MAX_EDIT_BYTES).as_bytes());
        let cut = std::str::from_utf8(&big[..SNIFF_BYTES]).unwrap_err();
        assert_eq!(cut.error_len(), None, "the sample ends mid-character");
        fs::write(fx.root.join("big.txt"), &big).unwrap();
        let v = read_versioned_blocking(&fx.root, "big.txt").unwrap();
        assert_eq!(
            (v.size, v.sha256.as_str(), v.binary, v.content),
            (big.len() as u64, sha(&big).as_str(), false, None)
        );
        big[SNIFF_BYTES - 1] = 0;
        fs::write(fx.root.join("big.txt"), &big).unwrap();
        let v = read_versioned_blocking(&fx.root, "big.txt").unwrap();
        assert_eq!((v.binary, v.sha256), (true, sha(&big)));
        assert!(matches!(
            read_versioned_blocking(&fx.root, "src"),
            Err(PathError::NotAFile { .. })
        ));
    }
}
