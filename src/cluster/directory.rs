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
}

/// The KV key of the token that tells nodes sharing a data directory from the others.
const TOKEN_KEY: &str = "data_directory_token";
/// The file holding the same token in the data directory of the node that wrote it.
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
        let value = serde_json::to_vec(entry).map_err(|source| DirectoryError::Entry {
            channel: channel.to_owned(),
            source,
        })?;
        Ok(self.api.kv_set(&key(channel), value).await?)
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

/// What the token says of this node's data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// The KV token and the file agree: the directory is the one the token's writer used.
    Shared,
    /// Another node wrote a token this directory does not hold: it is not theirs.
    NotShared,
    /// No token yet: this node writes one (the KV first, by compare-and-set, then the file).
    Write,
}

/// The table: `kv` is the token in the KV store, `file` the one in this data directory.
fn read_token(kv: Option<&str>, file: Option<&str>) -> Token {
    match (kv, file) {
        (None, _) => Token::Write,
        (Some(kv), Some(file)) if kv == file.trim() => Token::Shared,
        (Some(_), _) => Token::NotShared,
    }
}

/// Whether this node's data directory is the one the cluster's other nodes use. Wrong only
/// towards "not shared" (two nodes sharing a directory that open at the same moment, or a node
/// that died between writing the KV token and the file): that costs KV reads, never a call.
pub(crate) async fn shared_with_cluster(
    api: &Api,
    data_dir: &Path,
) -> Result<bool, DirectoryError> {
    let path = data_dir.join(TOKEN_FILE);
    let file = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(source) => return Err(DirectoryError::TokenFile { path, source }),
    };
    let kv = api.kv_get(TOKEN_KEY).await?;
    let kv = kv.as_deref().map(String::from_utf8_lossy);
    match read_token(kv.as_deref(), file.as_deref()) {
        Token::Shared => Ok(true),
        Token::NotShared => Ok(false),
        Token::Write => {
            let token = uuid::Uuid::new_v4().simple().to_string();
            if !api
                .kv_compare_and_set(TOKEN_KEY, None, Some(token.clone().into_bytes()))
                .await?
            {
                // Another node wrote its token first; its file may not be written yet.
                return Ok(false);
            }
            let written = std::fs::write(&path, &token);
            written.map_err(|source| DirectoryError::TokenFile { path, source })?;
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_table() {
        assert_eq!(read_token(None, None), Token::Write);
        assert_eq!(read_token(None, Some("old")), Token::Write);
        assert_eq!(read_token(Some("t1"), Some("t1\n")), Token::Shared);
        assert_eq!(read_token(Some("t1"), Some("t2")), Token::NotShared);
        assert_eq!(read_token(Some("t1"), None), Token::NotShared);
    }

    #[test]
    fn keys_name_their_channel() {
        assert_eq!(channel_of(&key("c1")), Some("c1"));
        assert_eq!(channel_of("lease_c1"), None);
        assert_eq!(channel_of(PREFIX), None);
    }

    #[test]
    fn an_entry_reads_back() {
        let entry = Entry {
            session: "s1".into(),
            root: "r1".into(),
        };
        let bytes = serde_json::to_vec(&entry).unwrap();
        assert_eq!(bytes, br#"{"session":"s1","root":"r1"}"#);
        assert_eq!(serde_json::from_slice::<Entry>(&bytes).unwrap(), entry);
    }
}
