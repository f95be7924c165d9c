//! Sessions of a cluster whose nodes do not share the data directory (see
//! `crate::cluster::directory`): such a session stays on the node that started it, since no
//! other node has its store rows or the CLI's conversation files. The others find it through
//! the directory (calls are forwarded to its node as usual), and when its node dies they tell
//! its channel it is lost, rather than leave the channel silent.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::ownership::{AskedBy, Route};
use super::{ChatService, SessionInfo};
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
cluster, which stopped answering, and its files are on that server only: nobody can go on \
with it. Start a new session with `/claude start <project path>`.";

/// What a message to a session whose node let go of it cleanly, and does not answer now, is
/// answered.
pub(crate) const AWAY_REPLY: &str = "This session runs on another Mattermost server of the \
cluster, which is not running the plugin now, and its files are on that server only: it goes \
on when that server is back. To go on now, start a new session with `/claude start <project \
path>`.";

/// How a session stands in its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Standing {
    /// The channel's current session: the channel's commands and messages are for it.
    /// `told_lost` is its directory entry if the channel was told it was lost (its node, now
    /// running it again, tells the channel it is back); `unlisted`, where the data directory
    /// is not shared, that the directory has no entry for the channel (its recording failed,
    /// or it was started by a plugin before the directory).
    Current {
        told_lost: Option<Entry>,
        unlisted: bool,
    },
    /// A session the channel had before its current one: its thread stays its own, the
    /// channel does not.
    Older,
}

impl Standing {
    pub(super) fn is_current(&self) -> bool {
        matches!(self, Standing::Current { .. })
    }
}

/// How long apart, and how many times, the announcement of a lost session is tried while it
/// does not land (a channel deleted since refuses it for ever).
const ANNOUNCE_RETRY: std::time::Duration = std::time::Duration::from_secs(2);
const ANNOUNCE_TRIES: u32 = 10;

/// How a recording in the directory that failed is tried again: first after
/// [`RECORD_RETRY`], doubling to [`RECORD_RETRY_MAX`], [`RECORD_TRIES`] times (about 5 minutes).
const RECORD_RETRY: std::time::Duration = std::time::Duration::from_secs(2);
const RECORD_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(60);
const RECORD_TRIES: u32 = 8;

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
    /// (a session just started here). A failed recording is tried again in the background for
    /// a few minutes (the nodes that share this node's data directory find the session in the
    /// store all the same; the others find it once it lands).
    pub(super) async fn list_in_directory(
        self: &Arc<Self>,
        channel_id: &str,
        session_id: &str,
        root: &str,
    ) {
        if !self.clustered() {
            return;
        }
        let started = match self.engine.store().session(session_id).await {
            Ok(Some(record)) => record.created_at,
            _ => crate::store::now_ms(),
        };
        let entry = Entry {
            session: session_id.to_owned(),
            root: root.to_owned(),
            started,
            lost: false,
        };
        if self.record_in_directory(channel_id, &entry).await {
            return;
        }
        // Until it lands or the service shuts down (not in `tasks`: shutdown does not wait on it).
        let svc = Arc::clone(self);
        let channel_id = channel_id.to_owned();
        let mut stop = self.stop_streams.subscribe();
        tokio::spawn(async move {
            let mut wait = RECORD_RETRY;
            for _ in 0..RECORD_TRIES {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return,
                }
                if svc.record_in_directory(&channel_id, &entry).await {
                    return;
                }
                wait = (wait * 2).min(RECORD_RETRY_MAX);
            }
            tracing::error!(channel = %channel_id, session = %entry.session, "the channel's session could not be recorded for the cluster: the other servers of the cluster do not find it");
        });
    }

    /// One try at recording `entry`: whether it is done (or a newer session has the channel).
    async fn record_in_directory(&self, channel_id: &str, entry: &Entry) -> bool {
        match self.ownership.directory.record(channel_id, entry).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::info!(channel = %channel_id, session = %entry.session, "a newer session of the channel is in the cluster's directory");
                true
            }
            Err(e) => {
                tracing::warn!(channel = %channel_id, session = %entry.session, "recording the channel's session for the cluster failed: {e}");
                false
            }
        }
    }

    /// Where a call about a channel whose session this node does not run is served, where the
    /// data directory is not shared: at the node running the session the directory names (or
    /// that let go of it cleanly, see `not_stored_here`); nowhere if its node stopped answering
    /// ([`Route::Lost`]); by this node's store if the directory has no entry for the channel. A
    /// directory that cannot be read is up to `asker`.
    pub(super) async fn route_by_directory(
        self: &Arc<Self>,
        channel_id: &str,
        asker: AskedBy,
    ) -> Route {
        let unreadable = || match asker {
            AskedBy::Post => Route::Local,
            AskedBy::Call => Route::Unknown,
        };
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
            Err(e) => {
                tracing::warn!(channel = %channel_id, "reading the channel's session in the cluster's directory failed: {e}");
                return unreadable();
            }
        };
        // Told lost, and not this node's: lost until its node runs it again. (Its lease, taken
        // by the node that told it, says nothing of where the session is.)
        if entry.lost && !self.is_stored_here(&entry.session).await {
            return match self.ownership.leases.owner(&entry.session).await {
                Ok(Owner::Node { node, .. }) => Route::Node {
                    node,
                    session: entry.session,
                },
                Ok(_) => Route::Lost { root: entry.root },
                Err(e) => {
                    tracing::warn!(session = %entry.session, "reading the session's lease failed: {e}");
                    unreadable()
                }
            };
        }
        match self.route_session(&entry.session).await {
            // Nobody runs it, its node stopped answering, and this node has none of its files.
            Route::Local if self.engine.get(&entry.session).is_none() => {
                Route::Lost { root: entry.root }
            }
            Route::Away { node, session, .. } => Route::Away {
                node,
                session,
                root: Some(entry.root),
            },
            route => route,
        }
    }

    /// Whether this node's store has `session_id`.
    async fn is_stored_here(&self, session_id: &str) -> bool {
        self.engine.get(session_id).is_some()
            || matches!(self.engine.store().session(session_id).await, Ok(Some(_)))
    }

    /// How `session_id` stands in `channel_id`, whose newest session in this node's store is
    /// `newest_here`: where the data directory is not shared, the cluster's directory says which
    /// session the channel has (a node that was away may have missed a newer one); else, and if
    /// the directory has no entry, the store's newest session of the channel is its current
    /// one. Not known (a read failed): current.
    pub(super) async fn standing(
        &self,
        session_id: &str,
        channel_id: &str,
        newest_here: Option<&str>,
    ) -> Standing {
        let mut unlisted = false;
        if !self.ownership.shared_data() {
            match self.ownership.directory.lookup(channel_id).await {
                Ok(Some(entry)) if entry.session == session_id => {
                    return Standing::Current {
                        told_lost: entry.lost.then_some(entry),
                        unlisted: false,
                    }
                }
                Ok(Some(_)) => return Standing::Older,
                Ok(None) => unlisted = true,
                Err(e) => {
                    tracing::warn!(session = %session_id, "reading the channel's session in the cluster's directory: {e}")
                }
            }
        }
        match newest_here {
            Some(newest) if newest != session_id => Standing::Older,
            _ => Standing::Current {
                told_lost: None,
                unlisted,
            },
        }
    }

    /// The channel of `session_id`, told it was lost, is told it is back (once in the cluster:
    /// the node that turns the directory entry from lost does).
    pub(super) async fn announce_back(&self, session_id: &str, info: &SessionInfo, entry: &Entry) {
        let now = Entry {
            lost: false,
            ..entry.clone()
        };
        match self
            .ownership
            .directory
            .replace(&info.channel_id, entry, &now)
            .await
        {
            Ok(true) => {
                if let Err(e) = self
                    .reply_in_thread(session_id, info, BACK_TEXT.to_owned())
                    .await
                {
                    tracing::warn!(session = %session_id, "telling a channel its session is back failed: {e}");
                }
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(session = %session_id, "recording a session back in the cluster's directory: {e}")
            }
        }
    }

    /// At opening, how each session this node claimed stands in its channel (see
    /// [`Self::standing`]). An older one (where the data directory is not shared, a newer one
    /// may have started on another node while this one was away) is run for its thread, its
    /// posts and its cards, stored stopped: nobody can prompt it. A current one the directory
    /// has no entry for is listed there. Returns the sessions to run, the older ones among
    /// them, and the current ones whose channel was told they were lost.
    pub(super) async fn settle(
        self: &Arc<Self>,
        claimed: Vec<String>,
        records: &[SessionRecord],
        roots: &HashMap<String, String>,
    ) -> Settled {
        let by_id: HashMap<&str, &SessionRecord> =
            records.iter().map(|r| (r.id.as_str(), r)).collect();
        // The store lists them oldest first (as its own lookup orders them): the last one of
        // each channel is its newest.
        let newest: HashMap<&str, &str> = records
            .iter()
            .map(|r| (r.channel_id.as_str(), r.id.as_str()))
            .collect();
        let mut settled = Settled::default();
        for id in claimed {
            let Some(record) = by_id.get(id.as_str()) else {
                continue;
            };
            let newest_here = newest.get(record.channel_id.as_str()).copied();
            match self.standing(&id, &record.channel_id, newest_here).await {
                Standing::Current {
                    told_lost,
                    unlisted,
                } => {
                    if let Some(entry) = told_lost {
                        settled.back.push((id.clone(), entry));
                    }
                    // No thread: nothing for another node to route to.
                    if let Some(root) = roots.get(&id).filter(|_| unlisted) {
                        self.list_in_directory(&record.channel_id, &id, root).await;
                    }
                }
                Standing::Older => {
                    if SessionState::parse(&record.status).is_some_and(SessionState::has_process) {
                        tracing::info!(session = %id, "the channel has a newer session, started on another node while this one was away; this one is not run again");
                        let stopped = SessionState::Stopped.as_str();
                        if let Err(e) = self.engine.store().set_session_status(&id, stopped).await {
                            tracing::warn!(session = %id, "storing a superseded session stopped: {e}");
                        }
                    }
                    settled.older.insert(id.clone());
                }
            }
            settled.run.push(id);
        }
        settled
    }

    /// At opening, where the data directory is not shared: the leases an earlier run of this
    /// node left behind (it was killed) on sessions not taken now are released, so that the
    /// other nodes send calls for them here rather than tell their channels they are lost.
    /// One KV read per stored session.
    pub(super) async fn release_own_leftovers(
        &self,
        records: &[SessionRecord],
        claimed: &HashSet<String>,
    ) {
        if !self.clustered() || self.ownership.shared_data() {
            return;
        }
        let me = &self.ownership.node.id;
        for record in records.iter().filter(|r| !claimed.contains(&r.id)) {
            let left_here = match self.ownership.leases.owner(&record.id).await {
                Ok(Owner::Free { previous }) => match previous {
                    Previous::Mine => true,
                    Previous::Expired { node } => node == *me,
                    _ => false,
                },
                Ok(_) => false,
                Err(e) => {
                    tracing::debug!(session = %record.id, "reading a lease: {e}");
                    false
                }
            };
            if !left_here {
                continue;
            }
            match self.claim_lease(&record.id).await {
                Ok(_) => self.ownership.leases.release(&record.id).await,
                Err(e) => {
                    tracing::debug!(session = %record.id, "releasing a lease an earlier run left: {e}")
                }
            }
        }
    }

    /// Where the data directory is not shared (or no longer taken for shared): looks through
    /// the directory for sessions this node does not have whose node stopped renewing their
    /// lease, and tells each one's channel it is lost.
    pub(super) async fn look_for_lost_sessions(self: &Arc<Self>) {
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
            // Ours: taken over, not lost, if its lease runs out (`take_over_orphans`). One its
            // channel was told is lost while this node was away, and that nobody called for
            // since, is taken back now (its thread is told it is back).
            if self.is_stored_here(&entry.session).await {
                if entry.lost && self.ownership.leases.holds(&entry.session).is_none() {
                    if let Err(e) = self.take_over(&entry.session).await {
                        tracing::debug!(session = %entry.session, "taking back a session told lost: {e}");
                    }
                }
                continue;
            }
            if entry.lost {
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
            // Marked even if the post never landed (a channel deleted refuses it for ever): the
            // session is lost all the same, and replies to it are answered so. Only while the
            // lease is still this node's: its node may have come back and taken it meanwhile.
            let marked = Entry {
                lost: true,
                ..entry.clone()
            };
            let mut recorded = false;
            for _ in 0..ANNOUNCE_TRIES {
                if leases.holds(&entry.session).is_none() {
                    return;
                }
                match self
                    .ownership
                    .directory
                    .replace(channel_id, entry, &marked)
                    .await
                {
                    // Or the entry changed meanwhile (a new session in the channel).
                    Ok(_) => {
                        recorded = true;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(session = %entry.session, "recording a lost session in the cluster's directory: {e}");
                        tokio::time::sleep(ANNOUNCE_RETRY).await;
                    }
                }
            }
            // Released, nobody would tell the channel again, and the other nodes would send its
            // messages here: the lease runs out instead, and another node tells it again.
            if !recorded {
                leases.abandon(&entry.session);
                return;
            }
        }
        leases.release(&entry.session).await;
    }
}

/// What [`ChatService::settle`] decided at opening.
#[derive(Default)]
pub(super) struct Settled {
    /// The claimed sessions this node runs.
    pub(super) run: Vec<String>,
    /// Those of `run` that are not their channel's current session.
    pub(super) older: HashSet<String>,
    /// Current sessions whose channel was told they were lost, with their directory entry.
    pub(super) back: Vec<(String, Entry)>,
}
