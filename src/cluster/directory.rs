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
//! An entry is the KV record [`key`]`(channel)` = `{"session":"<id>","root":"<post id>"}`,
//! written when a session starts (the newest session of the channel, as the store's own
//! lookup finds it). Whether this node's data directory is shared is learnt once at opening
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
    /// The channel was told the session is lost (its node died); its node, if it runs again,
    /// tells the channel it is back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lost: bool,
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

    /// `channel`'s session from now on.
    pub(crate) async fn record(&self, channel: &str, entry: &Entry) -> Result<(), DirectoryError> {
        Ok(self
            .api
            .kv_set(&key(channel), encode(channel, entry)?)
            .await?)
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

/// The token of `data_dir`: read from its token file, or made and written there.
fn directory_token(data_dir: &Path) -> Result<String, DirectoryError> {
    let path = data_dir.join(TOKEN_FILE);
    let failed = |source| DirectoryError::TokenFile {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(failed(e)),
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    std::fs::write(&path, &token).map_err(failed)?;
    Ok(token)
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
    let mine = directory_token(data_dir)?;
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
        api.kv_set(DIFFER_KEY, b"1".to_vec()).await?;
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
            lost: false,
        };
        let bytes = encode("c1", &entry).unwrap();
        assert_eq!(bytes, br#"{"session":"s1","root":"r1"}"#);
        assert_eq!(serde_json::from_slice::<Entry>(&bytes).unwrap(), entry);
        entry.lost = true;
        let bytes = encode("c1", &entry).unwrap();
        assert_eq!(bytes, br#"{"session":"s1","root":"r1","lost":true}"#);
        assert_eq!(serde_json::from_slice::<Entry>(&bytes).unwrap(), entry);
    }
}
