//! The cluster's directory of sessions by channel, for nodes whose data directories are not
//! shared.
//!
//! The data directory holds the store and the CLI's own files. Where the cluster's nodes share
//! it (the default directory lies under the server's file storage), every node's store knows
//! every session, and a session whose node died is taken over from it. Where they do not (a
//! cluster that keeps its files in S3 keeps `FileSettings.Directory` on each host), a node
//! knows only the sessions it ran itself: the others learn from this directory which session a
//! channel has, so that calls reach the node that runs it, and they tell the channel when that
//! node died, since nobody else can go on with the session.
//!
//! An entry is the KV record [`key`]`(channel)` =
//! `{"session":"<id>","root":"<post id>","started":<ms>}`, written when a session starts (the
//! newest session of the channel, as the store's own lookup finds it) and never replaced by an
//! older one ([`Directory::record`]). Whether this node's data directory is shared is learnt once at opening
//! ([`shared_with_cluster`]).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::mattermost::api::{Api, ApiError};

/// How every directory key begins.
const PREFIX: &str = "chan_";

/// The KV key of a channel's entry.
pub(crate) fn key(channel: &str) -> String {
    format!("{PREFIX}{channel}")
}

/// The channel a KV key is the entry of, if it is one.
fn channel_of(key: &str) -> Option<&str> {
    key.strip_prefix(PREFIX).filter(|c| !c.is_empty())
}

/// The session a channel has, and its thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub session: String,
    /// The session's thread root post.
    pub root: String,
    /// When the session was made (ms since the epoch, as the store has it); 0 in entries of an
    /// earlier plugin, which are written back without it (so compare-and-set finds the bytes
    /// it read).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub started: i64,
    /// The channel was told the session is lost (its node died); its node, if it runs again,
    /// tells the channel it is back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lost: bool,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl Entry {
    /// Whether this entry's session came after `other`'s: by start, then (two starts in one
    /// millisecond, or hosts whose clocks disagree) by id, so that two nodes agree.
    fn later_than(&self, other: &Entry) -> bool {
        (self.started, &self.session) > (other.started, &other.session)
    }
}

/// An entry's bytes: always written by serde from the same struct, so that compare-and-set
/// finds the bytes it read.
fn encode(channel: &str, entry: &Entry) -> Result<Vec<u8>, DirectoryError> {
    serde_json::to_vec(entry).map_err(|source| DirectoryError::Entry {
        channel: channel.to_owned(),
        source,
    })
}

/// The KV key of the cluster's token: the token of the first data directory a node of the
/// cluster opened.
const TOKEN_KEY: &str = "data_directory_token";
/// The KV key set (for good) once a node found a data directory whose token is not the
/// cluster's: the nodes do not all share one directory.
const DIFFER_KEY: &str = "data_directories_differ";
/// The file holding a data directory's token, made by the first node that opens it.
const TOKEN_FILE: &str = "cluster-token";

/// How many times, and how far apart, the mark that directories differ is tried.
const MARK_TRIES: u32 = 5;
const MARK_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// How often, and how far apart, a token file found empty is read again before it is taken
/// for one a process left half made; and how long after renaming its token over the name a
/// node reads what the name holds.
const TOKEN_READS: u32 = 20;
const TOKEN_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// How many compare-and-sets a recording tries while other nodes write the same entry.
const RECORD_RACES: usize = 3;

/// How many keys one KVList call asks for.
const LIST_PAGE: i64 = 500;
#[derive(Debug, thiserror::Error)]
pub(crate) enum DirectoryError {
    #[error("the plugin KV store failed: {0}")]
    Kv(#[from] ApiError),
    #[error("the directory entry of channel {channel} is not an entry: {source}")]
    Entry {
        channel: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the directory entry of channel {channel} kept changing while it was written")]
    Contended { channel: String },
    #[error("{}: {source}", path.display())]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The directory in the plugin KV store.
pub(crate) struct Directory {
    api: Api,
}

impl Directory {
    pub(crate) fn new(api: Api) -> Self {
        Directory { api }
    }

    /// `channel`'s session from now on, unless the entry names a session started later (a
    /// recording tried again late, after another node started one): whether it is.
    pub(crate) async fn record(
        &self,
        channel: &str,
        entry: &Entry,
    ) -> Result<bool, DirectoryError> {
        let bytes = encode(channel, entry)?;
        for _ in 0..RECORD_RACES {
            let now = self.api.kv_get(&key(channel)).await?;
            if let Some(now) = &now {
                match serde_json::from_slice::<Entry>(now) {
                    Ok(now) if now.session == entry.session => return Ok(true),
                    Ok(now) if now.later_than(entry) => return Ok(false),
                    // Older, or not an entry (written over).
                    _ => {}
                }
            }
            let key = key(channel);
            if self
                .api
                .kv_compare_and_set(&key, now, Some(bytes.clone()))
                .await?
            {
                return Ok(true);
            }
        }
        Err(DirectoryError::Contended {
            channel: channel.to_owned(),
        })
    }

    /// Rewrites `channel`'s entry from `was` to `now`, unless it changed meanwhile (a session
    /// started since): whether it did.
    pub(crate) async fn replace(
        &self,
        channel: &str,
        was: &Entry,
        now: &Entry,
    ) -> Result<bool, DirectoryError> {
        let (was, now) = (encode(channel, was)?, encode(channel, now)?);
        Ok(self
            .api
            .kv_compare_and_set(&key(channel), Some(was), Some(now))
            .await?)
    }

    /// `channel`'s session, if one was ever recorded.
    pub(crate) async fn lookup(&self, channel: &str) -> Result<Option<Entry>, DirectoryError> {
        let Some(bytes) = self.api.kv_get(&key(channel)).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| DirectoryError::Entry {
                channel: channel.to_owned(),
                source,
            })
    }

    /// Every channel with an entry.
    pub(crate) async fn channels(&self) -> Result<Vec<String>, DirectoryError> {
        let mut channels = Vec::new();
        for page in 0.. {
            let keys = self.api.kv_list(page, LIST_PAGE).await?;
            channels.extend(keys.iter().filter_map(|k| channel_of(k)).map(str::to_owned));
            if (keys.len() as i64) < LIST_PAGE {
                break;
            }
        }
        Ok(channels)
    }
}

/// The token of `data_dir`: read from its token file, or made and put there. Nodes that share
/// the directory may open it at the same moment: the token is written whole under a name of its
/// own, then linked to the token file's name, which fails if another node's token is there
/// first (a link is atomic, also on NFS); that one is read back.
fn directory_token(data_dir: &Path) -> Result<String, DirectoryError> {
    let path = data_dir.join(TOKEN_FILE);
    let failed = |source| DirectoryError::TokenFile {
        path: path.clone(),
        source,
    };
    if let Some(token) = read_token(&path).map_err(failed)? {
        return Ok(token);
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    let draft = data_dir.join(format!("{TOKEN_FILE}.{token}"));
    std::fs::write(&draft, &token).map_err(failed)?;
    match std::fs::hard_link(&draft, &path) {
        Ok(()) => {
            let _ = std::fs::remove_file(&draft);
            return Ok(token);
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            for _ in 0..TOKEN_READS {
                if let Some(first) = read_token(&path).map_err(failed)? {
                    let _ = std::fs::remove_file(&draft);
                    return Ok(first);
                }
                std::thread::sleep(TOKEN_PAUSE);
            }
        }
        // A file system without links (some network and object-store mounts).
        Err(_) => {}
    }
    // No links, or a token file left empty by a process that died making it: the draft is
    // renamed over the name (atomic: a reader sees a whole token or none; of nodes doing this
    // at once, the last wins), and the token is what the file holds once they are done.
    std::fs::rename(&draft, &path).map_err(failed)?;
    std::thread::sleep(TOKEN_PAUSE);
    read_token(&path).map_err(failed)?.ok_or_else(|| {
        failed(std::io::Error::new(
            ErrorKind::InvalidData,
            "the token file is empty",
        ))
    })
}

/// The token in the file at `path`, if there is one.
fn read_token(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => Ok(Some(text.trim().to_owned())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether every node of the cluster uses this node's data directory, as far as is known now.
/// The first directory's token becomes the cluster's; a node whose directory holds another
/// token says so in the KV store for good ([`directories_differ`]), which the nodes that took
/// their directory for shared read again from time to time. Wrong only towards "not shared"
/// (a mix of shared and own directories, or a KV store reset), which costs KV reads, never a
/// call.
pub(crate) async fn shared_with_cluster(
    api: &Api,
    data_dir: &Path,
) -> Result<bool, DirectoryError> {
    // File I/O, and maybe a wait for another node's token: off the runtime's threads.
    let dir = data_dir.to_path_buf();
    let mine = tokio::task::spawn_blocking(move || directory_token(&dir))
        .await
        .map_err(|e| DirectoryError::TokenFile {
            path: data_dir.join(TOKEN_FILE),
            source: std::io::Error::other(e),
        })??;
    let cluster = match api.kv_get(TOKEN_KEY).await? {
        Some(token) => token,
        None => {
            let set = api
                .kv_compare_and_set(TOKEN_KEY, None, Some(mine.clone().into_bytes()))
                .await?;
            match set {
                true => mine.clone().into_bytes(),
                // Another node's directory was first.
                false => api.kv_get(TOKEN_KEY).await?.unwrap_or_default(),
            }
        }
    };
    if cluster != mine.as_bytes() {
        // The nodes that took their directory for shared learn otherwise only from this mark:
        // a KV store failing for a moment does not keep it from them.
        let mut marked = api.kv_set(DIFFER_KEY, b"1".to_vec()).await;
        for _ in 1..MARK_TRIES {
            if marked.is_ok() {
                break;
            }
            tokio::time::sleep(MARK_RETRY).await;
            marked = api.kv_set(DIFFER_KEY, b"1".to_vec()).await;
        }
        marked?;
        return Ok(false);
    }
    Ok(!directories_differ(api).await?)
}

/// Whether a node of the cluster found a data directory that is not the first one's.
pub(crate) async fn directories_differ(api: &Api) -> Result<bool, ApiError> {
    Ok(api.kv_get(DIFFER_KEY).await?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_keeps_the_token_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let first = directory_token(dir.path()).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(directory_token(dir.path()).unwrap(), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(directory_token(other.path()).unwrap(), first);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [TOKEN_FILE], "no draft is left behind");
        // A token file left empty by a process that died writing it is made again.
        let emptied = tempfile::tempdir().unwrap();
        std::fs::write(emptied.path().join(TOKEN_FILE), "").unwrap();
        let remade = directory_token(emptied.path()).unwrap();
        assert_eq!(remade.len(), 32);
        assert_eq!(directory_token(emptied.path()).unwrap(), remade);
    }

    /// Nodes opening one directory at the same moment all get the one token that landed.
    #[test]
    fn nodes_opening_a_directory_at_once_agree_on_its_token() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().to_path_buf();
            let tokens: Vec<String> = (0..8)
                .map(|_| {
                    let path = path.clone();
                    std::thread::spawn(move || directory_token(&path).unwrap())
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
            let file = std::fs::read_to_string(path.join(TOKEN_FILE)).unwrap();
            assert_eq!(file, tokens[0]);
        }
    }

    /// A KV store in memory behind the plugin API.
    fn kv() -> Api {
        use crate::mattermost::rpc_types::*;
        use std::collections::HashMap;
        use std::sync::{Arc, Mutex};
        let values: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let read = values.clone();
        let server = crate::rpc::netrpc::Server::new()
            .method("Plugin.KVGet", move |a: StringArgs| {
                let value = read.lock().unwrap().get(&a.a).cloned();
                async move {
                    Ok::<_, String>(KvGetReturns {
                        a: value.unwrap_or_default(),
                        b: None,
                    })
                }
            })
            .method("Plugin.KVCompareAndSet", move |a: KvCompareAndSetArgs| {
                let mut values = values.lock().unwrap();
                // The server's nil old value: set only if absent.
                let now = values.get(&a.a).cloned().unwrap_or_default();
                let set = now == a.b;
                if set {
                    values.insert(a.a, a.c);
                }
                async move { Ok::<_, String>(BoolAppErrorReturns { a: set, b: None }) }
            });
        crate::mattermost::api::in_process(server)
    }

    /// A recording replaces an older session's entry and is kept from replacing a newer one's
    /// (a recording tried again late); recording what is there already changes nothing.
    #[tokio::test]
    async fn an_entry_is_never_replaced_by_an_older_session() {
        let directory = Directory::new(kv());
        let entry = |session: &str, started| Entry {
            session: session.into(),
            root: format!("root-{session}"),
            started,
            lost: false,
        };
        assert!(directory.record("c1", &entry("s1", 10)).await.unwrap());
        assert!(directory.record("c1", &entry("s2", 20)).await.unwrap());
        assert_eq!(directory.lookup("c1").await.unwrap(), Some(entry("s2", 20)));
        assert!(!directory.record("c1", &entry("s1", 10)).await.unwrap());
        assert_eq!(directory.lookup("c1").await.unwrap(), Some(entry("s2", 20)));
        let told = Entry {
            lost: true,
            ..entry("s2", 20)
        };
        assert!(directory
            .replace("c1", &entry("s2", 20), &told)
            .await
            .unwrap());
        assert!(directory.record("c1", &entry("s2", 20)).await.unwrap());
        assert_eq!(directory.lookup("c1").await.unwrap(), Some(told));
        assert_eq!(directory.lookup("c2").await.unwrap(), None);
        // Two starts in one millisecond: the greater id wins, whichever is recorded first.
        assert!(directory.record("c3", &entry("s4", 30)).await.unwrap());
        assert!(!directory.record("c3", &entry("s3", 30)).await.unwrap());
        assert!(directory.record("c4", &entry("s3", 30)).await.unwrap());
        assert!(directory.record("c4", &entry("s4", 30)).await.unwrap());
        assert_eq!(
            directory.lookup("c3").await.unwrap(),
            directory.lookup("c4").await.unwrap()
        );
    }

    #[test]
    fn keys_name_their_channel() {
        assert_eq!(channel_of(&key("c1")), Some("c1"));
        assert_eq!(channel_of("lease_c1"), None);
        assert_eq!(channel_of(PREFIX), None);
    }

    #[test]
    fn an_entry_reads_back() {
        let mut entry = Entry {
            session: "s1".into(),
            root: "r1".into(),
            started: 7,
            lost: false,
        };
        let bytes = encode("c1", &entry).unwrap();
        assert_eq!(bytes, br#"{"session":"s1","root":"r1","started":7}"#);
        assert_eq!(serde_json::from_slice::<Entry>(&bytes).unwrap(), entry);
        entry.lost = true;
        let bytes = encode("c1", &entry).unwrap();
        assert_eq!(
            bytes,
            br#"{"session":"s1","root":"r1","started":7,"lost":true}"#
        );
        assert_eq!(serde_json::from_slice::<Entry>(&bytes).unwrap(), entry);
        // An entry of the plugin before `started` is written back as it was read.
        let earlier_bytes = br#"{"session":"s0","root":"r0"}"#;
        let earlier: Entry = serde_json::from_slice(earlier_bytes).unwrap();
        assert_eq!(earlier.started, 0);
        assert_eq!(encode("c1", &earlier).unwrap(), earlier_bytes);
    }
}
