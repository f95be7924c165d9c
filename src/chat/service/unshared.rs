//! Sessions of a cluster whose nodes do not share the data directory (see
//! `crate::cluster::directory`): such a session stays on the node that started it, since no
//! other node has its store rows or the CLI's conversation files. The others find it through
//! the directory (calls are forwarded to its node as usual), and when its node dies they tell
//! its channel it is lost, rather than leave the channel silent.

use std::path::Path;
use std::sync::Arc;

use super::ownership::Route;
use super::ChatService;
use crate::chat::outbox::PostSink;
use crate::cluster::directory::{self, Entry};
use crate::cluster::lease::Previous;
use crate::cluster::leases::Owner;
use crate::mattermost::api::Api;
use crate::mattermost::model::Post;

/// What a channel is told when the node running its session died and no other node has the
/// session's files.
pub(crate) const LOST_TEXT: &str = "⚠️ This session is lost: the Mattermost server of the \
cluster that ran it stopped answering, and its files are on that server only (the plugin's \
data directory is not shared between the servers). Start a new session with `/claude start \
<project path>`.";

/// What a message to a session that is lost is answered.
pub(crate) const LOST_REPLY: &str = "This session ran on another Mattermost server of the \
cluster, which is not running it now, and its files are on that server only: nobody can go on \
with it. Start a new session with `/claude start <project path>`.";

/// How long apart, and how many times, the announcement of a lost session is tried while it
/// does not land (a channel deleted since refuses it for ever).
const ANNOUNCE_RETRY: std::time::Duration = std::time::Duration::from_secs(2);
const ANNOUNCE_TRIES: u32 = 10;

impl ChatService {
    /// Whether the cluster's other nodes use `data_dir` too (see
    /// [`directory::shared_with_cluster`]). Not known: taken as not shared, which costs KV
    /// reads but never a call.
    pub(super) async fn data_directory_shared(api: &Api, data_dir: &Path) -> bool {
        match directory::shared_with_cluster(api, data_dir).await {
            Ok(shared) => {
                if !shared {
                    tracing::info!(dir = %data_dir.display(), "the data directory is not shared with the other servers of the cluster: sessions stay on the server that started them");
                }
                shared
            }
            Err(e) => {
                tracing::warn!("could not tell whether the data directory is shared with the cluster; taken as not shared: {e}");
                false
            }
        }
    }

    /// Records, for every node of the cluster, that `channel_id`'s session is now `session_id`
    /// (a session just started here). A failure is logged: the nodes that share this node's
    /// data directory find the session in the store all the same.
    pub(super) async fn list_in_directory(&self, channel_id: &str, session_id: &str, root: &str) {
        if !self.clustered() {
            return;
        }
        let entry = Entry {
            session: session_id.to_owned(),
            root: root.to_owned(),
        };
        if let Err(e) = self.ownership.directory.record(channel_id, &entry).await {
            tracing::warn!(channel = %channel_id, session = %session_id, "recording the channel's session for the cluster failed: {e}");
        }
    }

    /// Where a call about a channel this node's store knows no session of is served: where
    /// the data directory is not shared, at the node running the session the directory names;
    /// nowhere if nobody runs it ([`Route::Lost`]); else here.
    pub(super) async fn route_by_directory(self: &Arc<Self>, channel_id: &str) -> Route {
        if self.ownership.shared_data {
            return Route::Local;
        }
        let entry = match self.ownership.directory.lookup(channel_id).await {
            Ok(Some(entry)) => entry,
            Ok(None) => return Route::Local,
            // Served here, where the channel has no session: "try again" for every reply in
            // every channel while the KV store fails would be worse.
            Err(e) => {
                tracing::warn!(channel = %channel_id, "reading the channel's session in the cluster's directory failed: {e}");
                return Route::Local;
            }
        };
        match self.route_session(&entry.session).await {
            // Nobody runs it, and this node could not take it over: it has none of its files.
            Route::Local if self.engine.get(&entry.session).is_none() => {
                Route::Lost { root: entry.root }
            }
            route => route,
        }
    }

    /// Looks through the directory for sessions this node does not have whose node stopped
    /// renewing their lease, and tells each one's channel it is lost.
    pub(super) async fn tell_lost_sessions(&self) {
        let channels = match self.ownership.directory.channels().await {
            Ok(channels) => channels,
            Err(e) => {
                tracing::warn!("listing the cluster's directory failed: {e}");
                return;
            }
        };
        for channel in channels {
            let entry = match self.ownership.directory.lookup(&channel).await {
                Ok(Some(entry)) => entry,
                Ok(None) => continue,
                Err(e) => {
                    tracing::debug!(%channel, "reading a directory entry: {e}");
                    continue;
                }
            };
            // Ours: taken over, not lost, if its lease runs out (`take_over_orphans`).
            if self.engine.get(&entry.session).is_some()
                || matches!(
                    self.engine.store().session(&entry.session).await,
                    Ok(Some(_))
                )
            {
                continue;
            }
            match self.ownership.leases.owner(&entry.session).await {
                Ok(Owner::Free {
                    previous: Previous::Expired { node },
                }) if node != self.ownership.node.id => {
                    self.tell_lost(&channel, &entry, &node).await;
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(session = %entry.session, "reading a lease: {e}"),
            }
        }
    }

    /// Tells `entry`'s thread its session is lost, once in the cluster: the node whose
    /// compare-and-set takes the expired lease does, holds it until the post landed, then
    /// releases it (a released lease is not lost: nobody tells it again). A node that dies
    /// before it released leaves the lease to expire, and another one tells the thread. A post
    /// the server keeps refusing is given up after [`ANNOUNCE_TRIES`] (logged).
    async fn tell_lost(&self, channel_id: &str, entry: &Entry, node: &str) {
        let leases = &self.ownership.leases;
        let acquired = match leases.acquire_above(&entry.session, 0).await {
            Ok(acquired) => acquired,
            // Another node is telling it, or the KV store failed: the next search looks again.
            Err(e) => {
                tracing::debug!(session = %entry.session, "taking a lost session's lease: {e}");
                return;
            }
        };
        if matches!(acquired.previous, Previous::Expired { .. }) {
            tracing::warn!(session = %entry.session, %node, "the node running the session stopped answering and its files are not shared: the session is lost");
            let post = Post {
                user_id: self.bot_id.clone(),
                channel_id: channel_id.to_owned(),
                root_id: entry.root.clone(),
                message: LOST_TEXT.to_owned(),
                ..Default::default()
            };
            for _ in 0..ANNOUNCE_TRIES {
                if leases.holds(&entry.session).is_none() {
                    break;
                }
                match self.poster.create_post(post.clone()).await {
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(session = %entry.session, "telling a channel its session is lost: {e}");
                        tokio::time::sleep(ANNOUNCE_RETRY).await;
                    }
                }
            }
        }
        leases.release(&entry.session).await;
    }
}
