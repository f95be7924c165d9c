//! Which node of a Mattermost cluster runs each session (see `crate::cluster` and
//! ARCHITECTURE.md, "Ownership across a cluster"): the leases taken at opening, where a call for
//! a session is served, taking a session over from a node that stopped renewing its lease, and
//! letting go of a session whose lease was lost.
//!
//! On a server that is not clustered every session is this node's: nothing is routed, and a
//! lease left by an earlier run of the plugin (the only other holder there can be) is taken at
//! once (see `cluster::lease::decide`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::keyed::KeyedLocks;
use super::unshared::Standing;
use super::{ChatService, SessionInfo};
use crate::cluster::directory::Directory;
use crate::cluster::lease::Previous;
use crate::cluster::leases::{Acquired, LeaseError, Leases, Lost, Owner};
use crate::cluster::node::NodeId;
use crate::sessions::SessionState;
use crate::store::StoreError;

/// Where a call for a session is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// Here: this node runs the session, or there is no session to run.
    Local,
    /// Forwarded to the node that runs the session: `(node, session)`.
    Node { node: String, session: String },
    /// Nobody can tell now (the KV store did not answer): the caller is told to try again,
    /// rather than served here, where this node might run a second copy of the session.
    Unknown,
    /// The channel's session ran on a node that stopped answering, and its files are not
    /// shared with this node: nobody can go on with it (see `unshared.rs`). `root` is its
    /// thread.
    Lost { root: String },
    /// Forwarded to the node that let go of the session cleanly and alone has its files (the
    /// data directory is not shared): it takes the session back when the call reaches it. If
    /// it does not answer, it is away (stopped, maybe for good), which the caller decides
    /// about; `root` is the session's thread, when known.
    Away {
        node: String,
        session: String,
        root: Option<String>,
    },
}

/// What asks where a channel's session is served, which decides what happens when the cluster's
/// directory cannot be read (see [`ChatService::route_channel`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AskedBy {
    /// A post: served here, as this node knows the channel. Most thread replies are chatter,
    /// and "try again" for each of them while the KV store fails would be noise everywhere.
    Post,
    /// A command or an HTTP call: the caller is told to try again.
    Call,
}

/// Where a stored session this node does not run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Elsewhere {
    /// Run by that node.
    Node(String),
    /// Run by nobody now (released, or its lease ran out): the store says all there is.
    Resting,
}

/// The node's place in the cluster: who it is and the leases it holds.
pub(crate) struct Ownership {
    pub(crate) node: NodeId,
    pub(crate) leases: Arc<Leases>,
    /// Which session each channel has, for nodes that do not share a data directory.
    pub(super) directory: Directory,
    /// Whether the other nodes use this node's data directory (always on a single server):
    /// if not, a channel's session is looked up in `directory`. Goes from true to false (never
    /// back) when another node finds a directory of its own.
    shared_data: AtomicBool,
    /// One takeover (or letting go) of a session at a time; a call that finds one running
    /// waits for it.
    taking: KeyedLocks,
}

impl Ownership {
    /// See `shared_data`.
    pub(super) fn shared_data(&self) -> bool {
        self.shared_data.load(Ordering::Relaxed)
    }

    /// Another node of the cluster has a data directory of its own.
    pub(super) fn data_not_shared(&self) {
        if self.shared_data.swap(false, Ordering::Relaxed) {
            tracing::info!("another server of the cluster has a data directory of its own: sessions stay on the server that started them");
        }
    }

    pub(crate) fn new(
        node: NodeId,
        leases: Arc<Leases>,
        directory: Directory,
        shared_data: bool,
    ) -> Self {
        Ownership {
            node,
            leases,
            directory,
            shared_data: AtomicBool::new(shared_data),
            taking: KeyedLocks::default(),
        }
    }
}

/// Why a session could not be claimed by this node.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the session could not be rebuilt from the store: {0}")]
    Rebuild(#[source] crate::sessions::EngineError),
    #[error("this session is being taken over by another call, which takes long; try again")]
    Busy,
    /// No stored session (with a thread) has this id: nothing is taken.
    #[error("no such session")]
    UnknownSession,
}

/// What the channel is told when its session moved here because its node stopped answering.
pub(crate) const MOVED_TEXT: &str = "↪ This session moved to another Mattermost server of the \
cluster: the one running it stopped answering. The conversation goes on from where it was; \
requests that were waiting for approval were withdrawn.";

/// How long a takeover waits for one of the same session already running here: well within
/// the forwarding timeout, so that a forwarded call is never served after its caller gave up.
const TAKEOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How many times a call reads a session's lease again when another node took the session in
/// the moment between reading the lease and taking it.
const ROUTE_AGAIN: usize = 2;

/// How many renewal periods apart a node looks whether another has a data directory of its
/// own and, if one has, for lost sessions (that search reads every channel's directory entry).
const LOST_SCAN_EVERY: u64 = 3;

impl ChatService {
    /// Takes the lease of `session_id` and raises its fence in the store, so that whatever the
    /// previous holder still tries to write for it is refused.
    pub(super) async fn claim_lease(&self, session_id: &str) -> Result<Acquired, ClaimError> {
        let own = &self.ownership;
        let floor = self.engine.store().fence(session_id).await?.unwrap_or(0);
        let acquired = own.leases.acquire_above(session_id, floor).await?;
        let claimed = self
            .engine
            .store()
            .claim(session_id, &own.node.id, acquired.fence)
            .await;
        if let Err(e) = claimed {
            // Not ours after all: a lease kept would be renewed for ever for nobody.
            if acquired.previous != Previous::Held {
                own.leases.release(session_id).await;
            }
            return Err(e.into());
        }
        Ok(acquired)
    }

    /// The stored sessions this node runs from now on (at opening): those whose lease it could
    /// take. In a cluster the others are run by the nodes that hold them. A KV store or a
    /// database that fails fails the opening (as the signing secret does): a session must not
    /// be left without anyone running it for the whole run.
    pub(super) async fn claim_stored(&self, ids: Vec<String>) -> Result<Vec<String>, ClaimError> {
        let mut mine = Vec::with_capacity(ids.len());
        for id in ids {
            let mut claimed = self.claim_lease(&id).await;
            // Two nodes opening at once: one compare-and-set lost, read again.
            if let Err(ClaimError::Lease(LeaseError::Race)) = claimed {
                claimed = self.claim_lease(&id).await;
            }
            match claimed {
                Ok(_) => mine.push(id),
                Err(ClaimError::Lease(LeaseError::Held { node, .. })) => {
                    tracing::debug!(session = %id, %node, "run by another node of the cluster");
                }
                Err(ClaimError::Lease(LeaseError::Unreadable(e))) => {
                    tracing::warn!(session = %id, "the session's lease is unreadable; it is left alone: {e}");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(mine)
    }

    /// Whether this node is one of a cluster's (else nothing is ever routed elsewhere).
    pub(crate) fn clustered(&self) -> bool {
        self.ownership.node.clustered
    }

    /// Where a call about the session of `channel_id`, from `asker`, is served.
    pub(crate) async fn route_channel(self: &Arc<Self>, channel_id: &str, asker: AskedBy) -> Route {
        if !self.ownership.node.clustered {
            return Route::Local;
        }
        let local = self
            .state
            .lock()
            .ok()
            .and_then(|st| st.by_channel.get(channel_id).cloned());
        if let Some(id) = local {
            return self.route_session(&id).await;
        }
        // A data directory of this node's own: its store knows only the sessions it ran, and
        // the cluster's directory says which session the channel has now.
        if !self.ownership.shared_data() {
            return self.route_by_directory(channel_id, asker).await;
        }
        match self.newest_stored_session(channel_id).await {
            Some(id) => self.route_session(&id).await,
            None => Route::Local,
        }
    }

    /// The stored sessions (with a thread) this node does not run, and where each is: the list
    /// of sessions shows them all, whichever node it is asked of. Empty on a single server.
    pub(crate) async fn sessions_elsewhere(&self) -> Vec<(String, Elsewhere)> {
        if !self.ownership.node.clustered {
            return Vec::new();
        }
        let tracked: HashSet<String> = self
            .state
            .lock()
            .map(|st| st.sessions.keys().cloned().collect())
            .unwrap_or_default();
        let store = self.engine.store();
        let (Ok(stored), Ok(roots)) = (store.sessions().await, store.root_posts().await) else {
            return Vec::new();
        };
        let threads: HashSet<String> = roots.into_iter().map(|(s, _)| s).collect();
        let mut out = Vec::new();
        for record in stored {
            if tracked.contains(&record.id) || !threads.contains(&record.id) {
                continue;
            }
            match self.ownership.leases.owner(&record.id).await {
                Ok(Owner::Node { node, .. }) => out.push((record.id, Elsewhere::Node(node))),
                Ok(Owner::Free { .. } | Owner::Me { .. }) => {
                    out.push((record.id, Elsewhere::Resting))
                }
                Err(e) => tracing::debug!(session = %record.id, "reading a lease failed: {e}"),
            }
        }
        out
    }

    /// The newest stored session of `channel_id` (the store is shared by the cluster's nodes).
    pub(super) async fn newest_stored_session(&self, channel_id: &str) -> Option<String> {
        self.engine
            .store()
            .newest_session_of_channel(channel_id)
            .await
            .inspect_err(|e| tracing::warn!("reading the sessions failed: {e}"))
            .ok()?
    }

    /// Where a call about `session_id` is served: here if this node holds its lease; at the
    /// holder if another node holds it; here after taking it over if nobody holds it (its node
    /// released it or stopped renewing it); nowhere now if its lease cannot be read. A call
    /// that finds a takeover of the session running here waits for it (the webapp asks several
    /// things of a session at once).
    pub(crate) async fn route_session(self: &Arc<Self>, session_id: &str) -> Route {
        let own = &self.ownership;
        if !own.node.clustered {
            return Route::Local;
        }
        for _ in 0..=ROUTE_AGAIN {
            if own.leases.holds(session_id).is_some() {
                return Route::Local;
            }
            match own.leases.owner(session_id).await {
                Ok(Owner::Node { node, .. }) => {
                    return Route::Node {
                        node,
                        session: session_id.to_owned(),
                    }
                }
                Ok(Owner::Me { .. }) => return Route::Local,
                Ok(Owner::Free { previous }) => match self.take_over(session_id).await {
                    Ok(()) => return Route::Local,
                    Err(ClaimError::UnknownSession) => {
                        return self.not_stored_here(session_id, previous)
                    }
                    // Another node took it between the reading and the taking: read again.
                    Err(ClaimError::Lease(LeaseError::Race | LeaseError::Held { .. })) => {}
                    Err(e) => {
                        tracing::warn!(session = %session_id, "taking the session over failed: {e}");
                        return Route::Unknown;
                    }
                },
                Err(e) => {
                    tracing::warn!(session = %session_id, "reading the session's lease failed: {e}");
                    return Route::Unknown;
                }
            }
        }
        Route::Unknown
    }

    /// Where a call about a session this node's store does not have is served: where the
    /// data directory is not shared, at the node that let go of it cleanly (it has the session,
    /// and takes it back when the call reaches it); else here, where it is not found (an id no
    /// session has, or a lost session, answered as such by its channel's route).
    fn not_stored_here(&self, session_id: &str, previous: Previous) -> Route {
        match previous {
            Previous::Released { node }
                if !self.ownership.shared_data() && node != self.ownership.node.id =>
            {
                Route::Away {
                    node,
                    session: session_id.to_owned(),
                    root: None,
                }
            }
            _ => Route::Local,
        }
    }

    /// Runs `session_id` here from now on: its lease and fence are taken, its actor is rebuilt
    /// from the shared store (approvals left pending are withdrawn, their cards closed), its
    /// cut turn and lost queue lines are closed, and, when its node had stopped answering, the
    /// channel is told the session moved (or, where the data directory is not shared and the
    /// channel was told it was lost, that it is back). A session that is not its channel's
    /// current one keeps its thread but not the channel. One takeover of a session at a time:
    /// a second one waits, and finds the session taken.
    pub(crate) async fn take_over(self: &Arc<Self>, session_id: &str) -> Result<(), ClaimError> {
        let waiting = self.ownership.taking.enter(session_id);
        let Ok(_turn) = tokio::time::timeout(TAKEOVER_WAIT, waiting).await else {
            return Err(ClaimError::Busy);
        };
        if self.ownership.leases.holds(session_id).is_some() {
            return Ok(());
        }
        self.take_over_now(session_id).await
    }

    async fn take_over_now(self: &Arc<Self>, session_id: &str) -> Result<(), ClaimError> {
        // Only a session the store has is taken: an id from a request is anyone's to make up.
        let info = self
            .stored_info(session_id)
            .await
            .ok_or(ClaimError::UnknownSession)?;
        // An actor this node still has for it (it lost the lease, and it is taken back) stops
        // before the new claim: what it writes while stopping is under the old fence.
        if let Some(stale) = self.engine.forget(session_id) {
            if let Err(e) = stale.stop("taken-over").await {
                tracing::debug!(session = %session_id, "stopping a stale actor: {e}");
            }
        }
        let acquired = self.claim_lease(session_id).await?;
        let ids = [session_id.to_owned()];
        let recovered = match self.engine.recover_sessions(&ids).await {
            Ok(r) => r,
            Err(e) => {
                // Not run here after all: another node (or a later call) may take it.
                self.ownership.leases.release(session_id).await;
                tracing::warn!(session = %session_id, "rebuilding a session taken over failed: {e}");
                return Err(ClaimError::Rebuild(e));
            }
        };
        let of_session = |s: &str| s == session_id;
        self.close_left_over(&of_session).await;
        let newest_here = self.newest_stored_session(&info.channel_id).await;
        let standing = self
            .standing(session_id, &info.channel_id, newest_here.as_deref())
            .await;
        if let Some(handle) = self.engine.get(session_id) {
            self.track(&handle, info.clone(), standing.is_current());
        }
        let moved = match &acquired.previous {
            Previous::Expired { node } if *node != self.ownership.node.id => Some(node),
            _ => None,
        };
        if let Some(node) = moved {
            tracing::info!(session = %session_id, from = %node, "took the session over");
            if let Err(e) = self
                .reply_in_thread(session_id, &info, MOVED_TEXT.to_owned())
                .await
            {
                tracing::warn!("telling a channel its session moved failed: {e}");
            }
        }
        if let Standing::Current {
            told_lost: Some(entry),
            ..
        } = standing
        {
            self.announce_back(session_id, &info, &entry).await;
        }
        if !recovered.withdrawn.is_empty() {
            tracing::info!(
                session = %session_id,
                "{} approval request(s) of the previous node were withdrawn",
                recovered.withdrawn.len()
            );
        }
        self.outbox.wake();
        let svc = Arc::clone(self);
        let id = session_id.to_owned();
        tokio::spawn(async move { svc.close_open_cards(&|s: &str| s == id).await });
        Ok(())
    }

    /// How a stored session appears in Mattermost (its thread root and worktree), or `None`
    /// if it has no thread.
    pub(super) async fn stored_info(&self, session_id: &str) -> Option<SessionInfo> {
        let store = self.engine.store();
        let record = store.session(session_id).await.ok()??;
        let root_id = store
            .root_posts()
            .await
            .ok()?
            .into_iter()
            .find(|(s, _)| s == session_id)?
            .1;
        let worktree = store
            .worktrees()
            .await
            .ok()?
            .into_iter()
            .find(|w| w.session_id == session_id);
        Some(SessionInfo {
            channel_id: record.channel_id,
            owner_id: record.owner_id,
            project_path: record.project_path,
            root_id,
            worktree,
            cleaning: false,
        })
    }

    /// Follows the leases this node loses (another node took one over after a pause, or KV
    /// did not answer before one ran out): the session's CLI is stopped (its supervisor
    /// stops it by itself at the same deadline) and the session is no longer served here. A
    /// single server's leases are never lost (`cluster::leases`).
    pub(super) fn follow_lost_leases(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let mut lost = self.ownership.leases.take_lost()?;
        let svc = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            while let Some(Lost {
                session,
                fence,
                why,
            }) = lost.recv().await
            {
                let Some(svc) = svc.upgrade() else {
                    return;
                };
                // Taken back since (a call found the lease free and took it again): the new
                // hold is not this loss's.
                if svc
                    .ownership
                    .leases
                    .holds(&session)
                    .is_some_and(|now| now > fence)
                {
                    continue;
                }
                tracing::warn!(session = %session, fence, "this node no longer runs the session: {why}");
                svc.let_go(&session).await;
            }
        }))
    }

    /// In a cluster, looks every renewal period for sessions whose node died: stored as live
    /// (a node that stops or deactivates stores them stopped first) and with a lease that ran
    /// out. One of the nodes that look takes each over (the lease's compare-and-set picks it),
    /// so a dead node's cards are closed and its channels told at once, not at the next call.
    /// Every [`LOST_SCAN_EVERY`] periods it also looks whether the data directory is still
    /// taken for shared, and if not, for the sessions other nodes ran that nobody can take
    /// over (see `unshared.rs`).
    /// A server that is not clustered has nobody to look for.
    pub(super) fn look_for_orphans(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if !self.ownership.node.clustered {
            return None;
        }
        let every = self.ownership.leases.timing().renew;
        let svc = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            for period in 1u64.. {
                tokio::time::sleep(every).await;
                let Some(svc) = svc.upgrade() else {
                    return;
                };
                svc.take_over_orphans().await;
                if period % LOST_SCAN_EVERY == 0 {
                    svc.look_for_lost_sessions().await;
                }
            }
        }))
    }

    async fn take_over_orphans(self: &Arc<Self>) {
        let stored = match self.engine.store().sessions().await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!("reading the sessions failed: {e}");
                return;
            }
        };
        let live = stored.into_iter().filter(|r| {
            SessionState::parse(&r.status).is_some_and(SessionState::has_process)
                && self.ownership.leases.holds(&r.id).is_none()
        });
        for record in live {
            match self.ownership.leases.owner(&record.id).await {
                Ok(Owner::Free { .. }) => match self.take_over(&record.id).await {
                    Ok(()) => {}
                    // Another node looked at the same moment and won.
                    Err(ClaimError::Lease(LeaseError::Held { .. } | LeaseError::Race))
                    // Never got a thread: nothing to take over, nobody to tell.
                    | Err(ClaimError::UnknownSession) => {}
                    Err(e) => {
                        tracing::warn!(session = %record.id, "taking an orphaned session over failed: {e}")
                    }
                },
                Ok(_) => {}
                Err(e) => tracing::debug!(session = %record.id, "reading a lease failed: {e}"),
            }
        }
    }

    /// Deactivation: the leases of the sessions this node ran are released (their CLIs are
    /// stopped by then), so that the next node (or the next run here) takes them at once.
    pub(super) async fn release_leases(&self) {
        let ids: Vec<String> = self
            .state
            .lock()
            .map(|st| st.sessions.keys().cloned().collect())
            .unwrap_or_default();
        for id in ids {
            self.ownership.leases.release(&id).await;
        }
    }

    /// A start that failed after its session began (its CLI is stopped by then): the session is
    /// no longer served here, and its lease is released rather than renewed for ever.
    pub(super) async fn give_up(&self, session_id: &str) {
        self.engine.forget(session_id);
        self.ownership.leases.release(session_id).await;
    }

    /// Stops serving `session_id` here: its CLI is stopped and it is no longer tracked. Not
    /// while a takeover of it runs here (that one decides what this node does with it).
    async fn let_go(&self, session_id: &str) {
        let Some(_turn) = self.ownership.taking.try_enter(session_id) else {
            return;
        };
        self.let_go_now(session_id).await;
    }

    async fn let_go_now(&self, session_id: &str) {
        if let Some(handle) = self.engine.forget(session_id) {
            if let Err(e) = handle.stop("lease-lost").await {
                tracing::debug!(session = %session_id, "stopping a session whose lease was lost: {e}");
            }
        }
        if let Ok(mut st) = self.state.lock() {
            if let Some(info) = st.sessions.remove(session_id) {
                if st.by_channel.get(&info.channel_id).map(String::as_str) == Some(session_id) {
                    st.by_channel.remove(&info.channel_id);
                }
                st.by_root.remove(&info.root_id);
            }
            st.context.remove(session_id);
        }
    }
}
