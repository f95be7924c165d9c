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
use crate::sessions::SessionState;
use crate::store::SessionRecord;

/// What a channel is told when the node running its session died and no other node has the
/// session's files.
pub(crate) const LOST_TEXT: &str = "⚠️ This session is lost: the Mattermost server of the \
cluster that ran it stopped answering, and its files are on that server only (the plugin's \
data directory is not shared between the servers). Start a new session with `/claude start \
<project path>`.";

/// What the channel of a session told it was lost is told when the session's node runs again.
pub(super) const BACK_TEXT: &str = "↩ This session is back: the Mattermost server that runs it \
is running again. The conversation goes on from where it was.";

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
            lost: false,
        };
        if let Err(e) = self.ownership.directory.record(channel_id, &entry).await {
            tracing::warn!(channel = %channel_id, session = %session_id, "recording the channel's session for the cluster failed: {e}");
        }
    }

    /// Where a call about a channel whose session this node does not run is served, where the
    /// data directory is not shared: at the node running the session the directory names;
    /// nowhere if nobody runs it ([`Route::Lost`]); by this node's store if the directory has
    /// no entry for the channel.
    pub(super) async fn route_by_directory(self: &Arc<Self>, channel_id: &str) -> Route {
        let entry = match self.ownership.directory.lookup(channel_id).await {
            Ok(Some(entry)) => entry,
            // No session was started in the channel since the directory exists (one of an older
            // plugin, if any, is in this node's store or nowhere).
            Ok(None) => {
                return match self.newest_stored_session(channel_id).await {
                    Some(id) => self.route_session(&id).await,
                    None => Route::Local,
                }
            }
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

    /// At opening, of the stored sessions this node claimed, where the data directory is not
    /// shared: those whose channel has a newer session (started on another node while this one
    /// was away) are not run again (stored stopped, their lease released); those whose channel
    /// was told they were lost are to be announced back. Returns the sessions to run, and those
    /// to announce.
    pub(super) async fn settle_unshared(
        &self,
        claimed: Vec<String>,
        records: &[SessionRecord],
    ) -> (Vec<String>, Vec<String>) {
        if self.ownership.shared_data() {
            return (claimed, Vec::new());
        }
        let directory = &self.ownership.directory;
        let (mut run, mut back) = (Vec::new(), Vec::new());
        for id in claimed {
            let Some(channel) = records.iter().find(|r| r.id == id).map(|r| &r.channel_id) else {
                continue;
            };
            match directory.lookup(channel).await {
                Ok(Some(entry)) if entry.session != id => {
                    tracing::info!(session = %id, newer = %entry.session, "the channel has a newer session, started on another node while this one was away; this one is not run again");
                    let stopped = SessionState::Stopped.as_str();
                    if let Err(e) = self.engine.store().set_session_status(&id, stopped).await {
                        tracing::warn!(session = %id, "storing a superseded session stopped: {e}");
                    }
                    self.ownership.leases.release(&id).await;
                    continue;
                }
                Ok(Some(entry)) if entry.lost => {
                    let now = Entry {
                        lost: false,
                        ..entry.clone()
                    };
                    match directory.replace(channel, &entry, &now).await {
                        Ok(true) => back.push(id.clone()),
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(session = %id, "recording a session back in the cluster's directory: {e}")
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(session = %id, "reading the channel's session in the cluster's directory: {e}")
                }
            }
            run.push(id);
        }
        (run, back)
    }

    /// Where the data directory is not shared (or no longer taken for shared): looks through
    /// the directory for sessions this node does not have whose node stopped renewing their
    /// lease, and tells each one's channel it is lost.
    pub(super) async fn look_for_lost_sessions(&self) {
        if self.ownership.shared_data() {
            match directory::directories_differ(&self.api).await {
                Ok(true) => self.ownership.data_not_shared(),
                Ok(false) => return,
                Err(e) => {
                    tracing::debug!("reading whether the data directories differ: {e}");
                    return;
                }
            }
        }
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
            // Told already; or ours: taken over, not lost, if its lease runs out
            // (`take_over_orphans`).
            if entry.lost
                || self.engine.get(&entry.session).is_some()
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
    /// compare-and-set takes the expired lease does, holds it until the post landed, marks the
    /// entry told (the session's node tells the channel it is back if it runs again), then
    /// releases the lease (a released lease is not lost: nobody tells it again). A node that dies
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
            let told = Entry {
                lost: true,
                ..entry.clone()
            };
            if let Err(e) = self
                .ownership
                .directory
                .replace(channel_id, entry, &told)
                .await
            {
                tracing::warn!(session = %entry.session, "recording a lost session in the cluster's directory: {e}");
            }
        }
        leases.release(&entry.session).await;
    }
}
