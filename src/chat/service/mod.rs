//! The chat integration: the engine, one session per channel, the `/claude` commands, thread
//! replies, approval clicks and dialogs. Opened on activation, shut down on deactivation.
//!
//! State kept here (all of it rebuilt from the store and KV on activation): channel -> session
//! (the store's `sessions.channel_id`; the newest session of a channel wins), session -> thread
//! root post (`chat_threads`), pending context blocks (memory only), posted approval cards
//! (memory only: after a restart the engine has no pending requests either).

mod admission;
mod approvals;
mod authorize;
mod channel;
mod clicks;
mod commands;
mod context;
mod error;
mod files;
mod keyed;
mod ownership;
mod recover;
mod routing;
mod sessions;
#[cfg(test)]
mod tests;
mod unshared;
mod worktrees;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::card::{self, ActionSigner};
use super::outbox::{self, Outbox};
use super::poster::BotPoster;
use super::stream::{self, Cards, StreamCtx};
use crate::claude::CliEnv;
use crate::cluster::directory::Directory;
use crate::cluster::lease::LeaseTiming;
use crate::cluster::leases::Leases;
use crate::cluster::node::NodeId;
use crate::config::Config;
use crate::mattermost::api::{Api, ApiError};
use crate::mattermost::model::Post;
use crate::sessions::{
    Engine, EngineError, ProcessLauncher, SessionConfig, SessionHandle, SessionState,
};
use crate::store::{OwedKind, OwedPost, Sharing, Store, StoreError, WorktreeRecord};

pub(crate) use admission::at_the_limit;
use admission::{Admission, Limit};
pub(crate) use approvals::{ApiDecision, RequestKey};
pub(crate) use authorize::{outside_roots_text, Asker};
pub use channel::PANEL_ACTIONS;
pub(crate) use error::size;
pub use error::{ContextError, ProjectPathError, ServiceError};
pub(crate) use files::FileEdit;
pub use ownership::ClaimError;
pub(crate) use ownership::{AskedBy, Elsewhere, Route};
pub(crate) use sessions::{StartRequest, HISTORY_KINDS};
pub(crate) use unshared::{AWAY_REPLY, LOST_REPLY};

/// KV key of the approval signing secret (hex), shared by every node of a cluster.
pub const SIGNING_SECRET_KEY: &str = "approval_signing_secret";
pub const NO_SESSION: &str = "No Claude Code session in this channel";
pub const NOT_A_MEMBER: &str = "You are not a member of this channel";
/// Where DataDirectory points when it is empty and the server's file store directory is unknown
/// (relative to the server's working directory, where Mattermost's default `./data/` lives).
pub const DEFAULT_DATA_DIRECTORY: &str = "./data/claude-code";
/// The subdirectory of the server's `FileSettings.Directory` used when DataDirectory is empty.
pub const DATA_SUBDIRECTORY: &str = "claude-code";
/// How long `/claude start` waits for the server to create the session's thread before it
/// answers without it (the thread follows when the server takes posts again).
const ROOT_WAIT: Duration = Duration::from_secs(5);
/// How long deactivation waits for the post streams and then the outbox before it leaves the
/// rest owed in the store for the next start.
const DRAIN_STREAMS: Duration = Duration::from_secs(2);
const DRAIN_OUTBOX: Duration = Duration::from_secs(3);

/// A tracked session: where it lives in Mattermost.
#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    pub channel_id: String,
    pub owner_id: String,
    pub project_path: String,
    /// The thread's root post; empty until the server created it.
    pub root_id: String,
    /// The git worktree the session works in (`project_path` is then the worktree).
    pub worktree: Option<WorktreeRecord>,
    /// `stop --clean` is removing the worktree: nothing may resume the session in it meanwhile.
    pub cleaning: bool,
}

impl SessionInfo {
    /// The path AllowedProjectRoots must keep allowing: the repository a worktree was made
    /// from (the worktree itself lives in the plugin's data directory), else the project.
    pub(crate) fn rooted_path(&self) -> &str {
        match &self.worktree {
            Some(w) => &w.repository,
            None => &self.project_path,
        }
    }
}

#[derive(Default)]
struct State {
    /// channel -> session id.
    by_channel: HashMap<String, String>,
    sessions: HashMap<String, SessionInfo>,
    /// root post id -> session id.
    by_root: HashMap<String, String>,
    /// Blocks sent before the next prompt.
    context: HashMap<String, Vec<String>>,
}

/// Why the chat service could not open (activation fails with this text).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("data directory {}: {source}", path.display())]
    DataDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the plugin KV store: {0}")]
    Kv(#[from] ApiError),
    #[error("no random bytes for the approval signing secret: {0}")]
    Random(#[from] getrandom::Error),
    #[error("the approval signing secret in the KV store is not text")]
    SecretNotText,
    #[error("the approval signing secret in the KV store is not usable: {0}")]
    Secret(#[from] card::SecretError),
    #[error("could not agree on an approval signing secret in the KV store")]
    SecretRace,
    #[error("taking the sessions' leases: {0}")]
    Claim(#[from] ClaimError),
}

pub struct ChatService {
    api: Api,
    /// Every post of the bot goes through it.
    poster: Arc<BotPoster>,
    /// Every post the bot owes (all but ephemeral ones) is delivered by it, through `poster`.
    outbox: Arc<Outbox<BotPoster>>,
    bot_id: String,
    engine: Engine,
    /// Shared with the engine; its environment follows the settings.
    launcher: Arc<ProcessLauncher>,
    /// DataDirectory as set when the service opened (`None`: the server's default place).
    data_directory_setting: Option<PathBuf>,
    /// The directory in use: the store and the CLI's HOME.
    data_dir: PathBuf,
    signer: Arc<ActionSigner>,
    limiter: RwLock<Limit>,
    cards: Cards,
    state: Mutex<State>,
    /// Which channels are direct channels with the bot, and where the no-session hint was given.
    channels: Mutex<routing::DirectChannels>,
    /// Each channel's posts become prompts in the order they reached the plugin. Mattermost
    /// runs MessageHasBeenPosted in a goroutine per post, and the work before a prompt is queued
    /// (the gate's questions to the server, downloading its files) takes varying time, so
    /// without this a reply posted a moment after another (a screenshot, then "and also…")
    /// could be queued first. A channel's lock is taken before the first await and held until
    /// the prompt is queued.
    post_order: keyed::KeyedLocks,
    admission: Mutex<Admission>,
    /// The post streams, and the outbox's worker.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    outbox_worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Set at shutdown: the post streams end.
    stop_streams: tokio::sync::watch::Sender<bool>,
    /// The sessions' live event tasks (started next to their post streams, in `tasks`).
    live: super::live::LiveEvents,
    /// Worktrees of one repository are made and removed one at a time.
    repo_locks: crate::worktree::RepoLocks,
    /// This node and the leases of the sessions it runs.
    ownership: ownership::Ownership,
    /// The leases' renewals and the follower of lost leases: they end at shutdown, after the
    /// leases were released.
    lease_tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// The status word of a state, as `/claude status` shows it.
pub fn state_word(state: SessionState) -> &'static str {
    match state {
        SessionState::AwaitingApproval => "awaiting approval",
        s => s.as_str(),
    }
}

/// The CLI's environment from the settings.
pub fn cli_env(config: &Config, data_dir: &Path) -> CliEnv {
    let mut anthropic = Vec::new();
    if let Some(key) = &config.anthropic_api_key {
        anthropic.push(("ANTHROPIC_API_KEY".to_owned(), key.expose().to_owned()));
    }
    if let Some(url) = &config.anthropic_base_url {
        anthropic.push(("ANTHROPIC_BASE_URL".to_owned(), url.clone()));
    }
    let proxy = [
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "NO_PROXY",
        "https_proxy",
        "http_proxy",
        "no_proxy",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
    .collect();
    CliEnv {
        cli_path: PathBuf::from(&config.claude_cli_path),
        home_dir: data_dir.join("home"),
        path: std::env::var_os("PATH"),
        lang: Some("C.UTF-8".into()),
        anthropic,
        proxy,
        disable_telemetry: true,
        disable_nonessential_traffic: true,
        disable_autoupdater: true,
        max_retries: Some(3),
        emit_session_state_events: false,
    }
}
/// The sessions' timeouts from the settings.
pub(crate) fn session_config(config: &Config) -> SessionConfig {
    SessionConfig {
        // "Never" is a year: an Instant must not overflow.
        idle_timeout: config
            .idle_timeout
            .unwrap_or(Duration::from_secs(365 * 24 * 3600)),
        approval_timeout: config.approval_timeout,
        post_update_interval: config.post_update_interval,
        approval_reminder: config.approval_reminder,
        ..SessionConfig::default()
    }
}

impl ChatService {
    /// Opens the store and the engine in the data directory, recovers stored sessions and
    /// their threads, and loads (or creates) the signing secret.
    pub(crate) async fn open(
        api: Api,
        bot_id: String,
        config: &Config,
        node: NodeId,
    ) -> Result<Arc<Self>, OpenError> {
        Self::open_timed(api, bot_id, config, node, LeaseTiming::from_env()).await
    }

    /// [`Self::open`] with the leases' timing given (tests: seconds, not half a minute).
    pub(crate) async fn open_timed(
        api: Api,
        bot_id: String,
        config: &Config,
        node: NodeId,
        timing: LeaseTiming,
    ) -> Result<Arc<Self>, OpenError> {
        let data_dir = match config.data_directory.clone() {
            Some(dir) => dir,
            None => recover::default_data_directory(&api).await,
        };
        std::fs::create_dir_all(&data_dir).map_err(|source| OpenError::DataDirectory {
            path: data_dir.clone(),
            source,
        })?;
        // A cluster's nodes share the data directory, maybe over a network file system.
        let sharing = match node.clustered {
            true => Sharing::Hosts,
            false => Sharing::OneHost,
        };
        let store = Store::open_shared(&data_dir.join("claude-code.db"), sharing).await?;
        // A single server's id changes at every start: its processes are recorded without one,
        // so that the next run finds what this one left running (see `Store::set_node`).
        if node.clustered {
            store.set_node(&node.id);
        }
        let launcher = Arc::new(ProcessLauncher::new(cli_env(config, &data_dir)));
        let engine = Engine::new(store.clone(), launcher.clone(), session_config(config));
        let leases = Leases::new(Arc::new(api.clone()), node.clone(), timing);
        let shared_data = !node.clustered || Self::data_directory_shared(&api, &data_dir).await;
        let directory_api = api.clone();
        // Only a cluster can have another node take a session over: a single server's CLIs and
        // posts do not wait on KV (an outage there must not stop them).
        if node.clustered {
            engine.set_deadlines(leases.clone());
        }
        let secret = Self::signing_secret(&api).await?;
        let signer = ActionSigner::new(&secret)?;
        let poster = Arc::new(BotPoster::new(api.clone(), bot_id.clone()));
        let svc = Arc::new(ChatService {
            outbox: Outbox::new(store, poster.clone()),
            poster,
            api,
            bot_id,
            engine,
            launcher,
            data_directory_setting: config.data_directory.clone(),
            data_dir,
            signer: Arc::new(signer),
            limiter: RwLock::new(Limit::new(config.commands_per_minute)),
            cards: Cards::default(),
            state: Mutex::new(State::default()),
            channels: Mutex::default(),
            post_order: keyed::KeyedLocks::default(),
            admission: Mutex::new(Admission::default()),
            tasks: Mutex::new(Vec::new()),
            outbox_worker: Mutex::new(None),
            stop_streams: tokio::sync::watch::Sender::new(false),
            live: super::live::LiveEvents::default(),
            repo_locks: crate::worktree::RepoLocks::default(),
            ownership: ownership::Ownership::new(
                node,
                leases.clone(),
                Directory::new(directory_api),
                shared_data,
            ),
            lease_tasks: Mutex::default(),
        });
        if svc.ownership.node.clustered {
            let gate = leases.clone();
            svc.outbox
                .set_gate(Arc::new(move |session: &str| gate.holds(session).is_some()));
        }
        let renewals = leases.spawn_renewals();
        let follower = svc.follow_lost_leases();
        let orphans = svc.look_for_orphans();
        if let Ok(mut tasks) = svc.lease_tasks.lock() {
            tasks.extend(renewals);
            tasks.extend(follower);
            tasks.extend(orphans);
        }
        svc.recover().await?;
        Ok(svc)
    }

    /// Settings saved while the plugin runs: they apply to what starts next (a session, a CLI
    /// process, an idle period, an approval request, a command), without a restart. Running
    /// CLI processes keep the environment they started with. The data directory holds the open
    /// store, so a new one applies only at the next enable (said in its help text, and logged).
    /// Sessions whose project is no longer under an allowed root stop (see
    /// [`Self::stop_outside_roots`]): that setting is a safety boundary, not a default.
    pub fn apply_config(self: &Arc<Self>, config: &Config) {
        self.engine.set_config(session_config(config));
        self.launcher.set_env(cli_env(config, &self.data_dir));
        {
            let mut limiter = self.limiter.write().unwrap_or_else(|p| p.into_inner());
            // An unchanged limit keeps its buckets: saving other settings resets nobody.
            if limiter.per_minute != config.commands_per_minute {
                *limiter = Limit::new(config.commands_per_minute);
            }
        }
        let svc = Arc::clone(self);
        let roots = config.clone();
        tokio::spawn(async move { svc.stop_outside_roots(&roots).await });
        if config.data_directory != self.data_directory_setting {
            tracing::warn!(
                in_use = %self.data_dir.display(),
                "DataDirectory was changed; it applies when the plugin is next enabled (disable and enable it in System Console)"
            );
        }
    }

    /// Maps a session (its thread, and its channel if it is the channel's current session) and
    /// starts its post stream (once the owner's username is known: every card mentions it).
    fn track(self: &Arc<Self>, handle: &SessionHandle, info: SessionInfo, current: bool) {
        let ctx = StreamCtx {
            session_id: handle.id().to_owned(),
            channel_id: info.channel_id.clone(),
            bot_id: self.bot_id.clone(),
            cwd: Some(info.project_path.clone()),
            signer: self.signer.clone(),
            cards: self.cards.clone(),
            approver: stream::Approver::new(info.owner_id.clone(), None),
            session_config: self.engine.shared_config(),
            stop: self.stop_streams.subscribe(),
        };
        let api = self.api.clone();
        let (outbox, feed) = (self.outbox.clone(), handle.feed());
        let task = tokio::spawn(async move {
            let mut ctx = ctx;
            // Without the name (the server does not answer now) cards mention nobody; the
            // reminder still goes by id.
            let username = api
                .get_user(&ctx.approver.user_id)
                .await
                .ok()
                .map(|u| u.username);
            ctx.approver = stream::Approver::new(ctx.approver.user_id.clone(), username);
            stream::run(outbox, ctx, feed).await
        });
        let live = super::live::LiveCtx {
            session_id: handle.id().to_owned(),
            channel_id: info.channel_id.clone(),
            project_path: Some(PathBuf::from(&info.project_path)),
            stop: self.stop_streams.subscribe(),
        };
        let api = Arc::new(self.api.clone());
        let live = self
            .live
            .start(api, self.outbox.store().clone(), live, handle.feed());
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(task);
            tasks.extend(live);
        }
        if let Ok(mut st) = self.state.lock() {
            if current {
                st.by_channel
                    .insert(info.channel_id.clone(), handle.id().to_owned());
            }
            // A thread the server has not created yet is mapped when it is.
            if !info.root_id.is_empty() {
                st.by_root
                    .insert(info.root_id.clone(), handle.id().to_owned());
            }
            st.sessions.insert(handle.id().to_owned(), info);
        }
    }

    /// Owes a reply from the bot in the session's thread (through the outbox: delivered however
    /// long the server takes, after the thread's root).
    async fn reply_in_thread(
        &self,
        session_id: &str,
        info: &SessionInfo,
        message: String,
    ) -> Result<(), StoreError> {
        let post = Post {
            user_id: self.bot_id.clone(),
            channel_id: info.channel_id.clone(),
            root_id: info.root_id.clone(),
            message,
            ..Default::default()
        };
        let key = format!("reply:{}", uuid::Uuid::new_v4().simple());
        let owed = OwedPost {
            root_key: Some(outbox::root_key(session_id)),
            closed: true,
            ..outbox::owed(key, OwedKind::Reply, session_id, &post)
        };
        self.outbox.put(owed).await
    }

    /// The server created the thread of `session_id` late (it did not take posts when the
    /// session started): replies in it are prompts from now on.
    fn thread_created(&self, session_id: &str, root_id: String) {
        if let Ok(mut st) = self.state.lock() {
            st.by_root.insert(root_id.clone(), session_id.to_owned());
            if let Some(info) = st.sessions.get_mut(session_id) {
                info.root_id = root_id;
            }
        }
    }

    /// Deactivation: every CLI process tree is stopped; the post streams post what the stops
    /// published and end, then the outbox delivers what it can, each within a deadline. What
    /// is still owed then stays in the store for the next start.
    pub async fn shutdown(&self) {
        self.engine.stop_all().await;
        self.stop_streams.send_replace(true);
        let streams: Vec<_> = self
            .tasks
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        let cut = stream::drain(streams, tokio::time::Instant::now() + DRAIN_STREAMS).await;
        if cut > 0 {
            tracing::warn!("{cut} post stream(s) did not end in time at shutdown");
        }
        if tokio::time::timeout(DRAIN_OUTBOX, self.outbox.drained())
            .await
            .is_err()
        {
            tracing::warn!(
                "posts are still owed to the server at shutdown; they are sent at the next start"
            );
        }
        if let Some(worker) = self.outbox_worker.lock().ok().and_then(|mut w| w.take()) {
            worker.abort();
        }
        self.release_leases().await;
        for task in self
            .lease_tasks
            .lock()
            .map(|mut t| t.drain(..).collect::<Vec<_>>())
            .unwrap_or_default()
        {
            task.abort();
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A tracked session by id.
    pub(crate) fn session_by_id(&self, id: &str) -> Option<(SessionHandle, SessionInfo)> {
        let info = self.state.lock().ok()?.sessions.get(id)?.clone();
        Some((self.engine.get(id)?, info))
    }

    /// Every tracked session.
    pub(crate) fn tracked_sessions(&self) -> Vec<(SessionHandle, SessionInfo)> {
        let infos: Vec<(String, SessionInfo)> = self
            .state
            .lock()
            .map(|st| {
                st.sessions
                    .iter()
                    .map(|(id, i)| (id.clone(), i.clone()))
                    .collect()
            })
            .unwrap_or_default();
        infos
            .into_iter()
            .filter_map(|(id, info)| Some((self.engine.get(&id)?, info)))
            .collect()
    }

    pub(crate) fn session_of_channel(
        &self,
        channel_id: &str,
    ) -> Option<(SessionHandle, SessionInfo)> {
        let st = self.state.lock().ok()?;
        let id = st.by_channel.get(channel_id)?;
        let info = st.sessions.get(id)?.clone();
        Some((self.engine.get(id)?, info))
    }

    async fn is_member(&self, channel_id: &str, user_id: &str) -> bool {
        self.api
            .get_channel_member(channel_id, user_id)
            .await
            .is_ok_and(|m| m.user_id.is_empty() || m.user_id == user_id)
    }

    pub(crate) async fn username(&self, user_id: &str) -> String {
        match self.api.get_user(user_id).await {
            Ok(u) if !u.username.is_empty() => u.username,
            _ => user_id.to_owned(),
        }
    }
}
