//! The chat integration: the engine, one session per channel, the `/claude` commands, thread
//! replies, approval clicks and dialogs. Opened on activation, shut down on deactivation.
//!
//! State kept here (all of it rebuilt from the store and KV on activation): channel -> session
//! (the store's `sessions.channel_id`; the newest session of a channel wins), session -> thread
//! root post (`chat_threads`), pending context blocks (memory only), posted approval cards
//! (memory only: after a restart the engine has no pending requests either).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::authz::{self, Action, Role};
use super::card::{self, ActionContext, ActionSigner, ApprovalAction};
use super::command::{self, ChatCommand};
use super::neutralise;
use super::outbox::{self, Outbox};
use super::poster::BotPoster;
use super::render::code_block;
use super::stream::{self, card_post, Cards, StreamCtx};
use crate::claude::CliEnv;
use crate::config::{Config, WhoCanApprove, WhoCanStart};
use crate::files::{self, FileContent, FileNode, NodeKind};
use crate::mattermost::api::{Api, ApiError};
use crate::mattermost::model::{
    Any, CommandArgs, CommandResponse, Post, SlackAttachment, Team, TeamMember,
};
use crate::mattermost::server_config;
use crate::ratelimit::{RateLimiter, RetryAfter};
use crate::sessions::{
    Decision, Engine, EngineError, ProcessLauncher, SessionConfig, SessionError, SessionHandle,
    SessionSpec, SessionState,
};
use crate::store::{now_ms, ApprovalRecord, OwedKind, OwedPost, Store, StoreError};

/// The longest prefix of `text` of at most `max` bytes that ends at a character boundary.
fn cut_to(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A byte count for people: `812 B`, `64 KB`, `9.0 MB`.
fn size(bytes: usize) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{} KB", b / 1024),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// KV key of the approval signing secret (hex), shared by every node of a cluster.
pub const SIGNING_SECRET_KEY: &str = "approval_signing_secret";
pub const NO_SESSION: &str = "No Claude Code session in this channel";
pub const NOT_A_MEMBER: &str = "You are not a member of this channel";
/// Where DataDirectory points when it is empty and the server's file store directory is unknown
/// (relative to the server's working directory, where Mattermost's default `./data/` lives).
pub const DEFAULT_DATA_DIRECTORY: &str = "./data/claude-code";
/// The subdirectory of the server's `FileSettings.Directory` used when DataDirectory is empty.
pub const DATA_SUBDIRECTORY: &str = "claude-code";
/// Inline limit of `/claude file` and `/claude context file`.
const MAX_INLINE_FILE: usize = 12_000;
/// How long `/claude start` waits for the server to create the session's thread before it
/// answers without it (the thread follows when the server takes posts again).
const ROOT_WAIT: Duration = Duration::from_secs(5);
/// How long deactivation waits for the post streams and then the outbox before it leaves the
/// rest owed in the store for the next start.
const DRAIN_STREAMS: Duration = Duration::from_secs(2);
const DRAIN_OUTBOX: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
struct SessionInfo {
    channel_id: String,
    owner_id: String,
    project_path: String,
    root_id: String,
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

/// Starts in flight. A start reserves its channel before it awaits anything, and takes a slot
/// of MaxConcurrentSessions under the same lock, so concurrent starts cannot all pass their
/// checks and then all start: the second start in a channel is refused at once, and the slots
/// are counted with every admitted start included.
#[derive(Default)]
struct Admission {
    /// Reserved channel -> whether its start holds a slot.
    reserved: HashMap<String, bool>,
    /// Bumped whenever a reservation ends, so a slot count made from an older list of live
    /// sessions is made again (a start that just ended may have become a live session).
    ended: u64,
}

/// A start's hold on its channel (and its slot, once taken); dropping it lets go of both,
/// whether the start failed or its session is now tracked.
struct Reservation<'a> {
    admission: &'a Mutex<Admission>,
    channel_id: String,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut adm = self.admission.lock().unwrap_or_else(|p| p.into_inner());
        adm.reserved.remove(&self.channel_id);
        adm.ended += 1;
    }
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
}

/// The per-user command limit and the setting it was made from.
struct Limit {
    per_minute: u32,
    /// `None` when CommandsPerMinute is 0 (no limit).
    limiter: Option<RateLimiter>,
}

impl Limit {
    fn new(per_minute: u32) -> Self {
        Limit {
            per_minute,
            limiter: (per_minute > 0).then(|| RateLimiter::new(per_minute, per_minute)),
        }
    }
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
    admission: Mutex<Admission>,
    /// The post streams, and the outbox's worker.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    outbox_worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Set at shutdown: the post streams end.
    stop_streams: tokio::sync::watch::Sender<bool>,
    /// The sessions' live event tasks (started next to their post streams, in `tasks`).
    live: super::live::LiveEvents,
}

/// Why [`ChatService::authorize_action`] says no; the text is what the asker sees.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    /// A channel member asked about the channel's session, and it has none.
    #[error("{NO_SESSION}")]
    NoSession,
    /// The table does not allow it; the text names who may.
    #[error("{0}")]
    NotAllowed(String),
}

/// Who asks, and where: what resolving their roles needs.
struct Asker<'a> {
    user_id: &'a str,
    channel_id: &'a str,
    /// The team a command was typed in (WhoCanStart's quick path); empty elsewhere.
    team_id: &'a str,
    /// The channel's session, if it has one.
    session: Option<&'a SessionInfo>,
}

fn slow_down(retry: RetryAfter) -> String {
    format!(
        "Slow down: too many commands. Try again in {} s.",
        retry.seconds()
    )
}

/// Every answer to a command leaves through here: it echoes paths, arguments and errors, so it
/// passes the neutraliser like a post.
fn ephemeral(text: impl Into<String>) -> CommandResponse {
    CommandResponse {
        response_type: "ephemeral".into(),
        text: neutralise::text(&text.into()).into_owned(),
        ..Default::default()
    }
}

/// The answer to a start or a resume when MaxConcurrentSessions sessions run.
fn at_the_limit(live: usize) -> String {
    format!(
        "The server already runs {live} Claude Code sessions, the maximum (MaxConcurrentSessions). Try again when one stops."
    )
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

/// The answer to a successful `/claude start`, for the user who typed it (the channel sees the
/// thread's root post). The server turns it into one ephemeral post (and repeats it in the
/// HTTP answer of `commands/execute`, which the webapp does not show). The thread's link goes
/// through `/_redirect/pl/`, which finds the post's team.
fn started_answer(where_: &str, site_url: &str, root_id: &str) -> String {
    let site = site_url.trim_end_matches('/');
    if site.is_empty() {
        format!("Session started in {where_}. Reply in its thread to talk to Claude.")
    } else {
        format!(
            "Session started in {where_}. Its thread: {site}/_redirect/pl/{root_id} (reply there to talk to Claude)."
        )
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
        ..SessionConfig::default()
    }
}

/// Whether `user_id` counts as a member of `team`: the team the command was run in counts
/// (quick path, no lookup), otherwise an active (not deleted) membership record of that user
/// in that team.
fn team_membership_counts(
    team: &Team,
    command_team_id: &str,
    user_id: &str,
    member: Option<&TeamMember>,
) -> bool {
    if team.id.is_empty() {
        return false;
    }
    if team.id == command_team_id {
        return true;
    }
    member.is_some_and(|m| {
        m.delete_at == 0
            && (m.team_id.is_empty() || m.team_id == team.id)
            && (m.user_id.is_empty() || m.user_id == user_id)
    })
}

/// DataDirectory when the setting is empty: `<FileSettings.Directory>/claude-code` if the
/// server tells its file store directory, else [`DEFAULT_DATA_DIRECTORY`].
async fn default_data_directory(api: &Api) -> PathBuf {
    match api.get_config_value().await {
        Ok(config) => match server_config::file_settings_directory(&config) {
            Some(dir) => Path::new(&dir).join(DATA_SUBDIRECTORY),
            None => PathBuf::from(DEFAULT_DATA_DIRECTORY),
        },
        Err(e) => {
            tracing::warn!(
                "GetConfig failed, DataDirectory defaults to {DEFAULT_DATA_DIRECTORY}: {e}"
            );
            PathBuf::from(DEFAULT_DATA_DIRECTORY)
        }
    }
}

fn is_under(path: &Path, root: &Path) -> bool {
    path.starts_with(root)
}

/// Whether `path` (a session's project, canonical when it started) is under an allowed root,
/// as the root is written or after its symlinks.
fn under_allowed_root(config: &Config, path: &Path) -> bool {
    config
        .allowed_project_roots
        .iter()
        .any(|r| is_under(path, r) || std::fs::canonicalize(r).is_ok_and(|c| is_under(path, &c)))
}

fn outside_roots_text(project: &str) -> String {
    format!(
        "This session's project `{project}` is no longer under an allowed project root (an admin changed AllowedProjectRoots)."
    )
}

/// Why a session may not be used for `action` any more: its project left the allowed roots.
/// Its status, history and stop stay available.
fn project_refusal(config: &Config, action: Action, info: &SessionInfo) -> Option<String> {
    let uses_project = !matches!(
        action,
        Action::Help
            | Action::Start
            | Action::Status
            | Action::History
            | Action::Stop
            | Action::Health
    );
    (uses_project && !under_allowed_root(config, Path::new(&info.project_path))).then(|| {
        format!(
            "{} Start a session in an allowed project.",
            outside_roots_text(&info.project_path)
        )
    })
}

/// Lexical normalization of an absolute path (`.` dropped, `..` pops).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// The post id in a permalink (`…/pl/<id>`, `…/<team>/pl/<id>`) or a bare id.
fn post_id_of(link: &str) -> Option<String> {
    let last = link.trim().trim_end_matches('/').rsplit('/').next()?;
    let id = last.split(['?', '#']).next()?;
    (!id.is_empty()).then(|| id.to_owned())
}

fn tree_lines(node: &FileNode, depth: usize, out: &mut String) {
    for child in &node.children {
        out.push_str(&"  ".repeat(depth));
        out.push_str(&child.name);
        if child.kind == NodeKind::Directory {
            out.push('/');
        }
        out.push('\n');
        tree_lines(child, depth + 1, out);
    }
}

fn attachment_json(a: &SlackAttachment) -> Value {
    json!({
        "fallback": a.fallback,
        "color": a.color,
        "pretext": a.pretext,
        "title": a.title,
        "text": a.text,
        "footer": a.footer,
        "actions": [],
    })
}

/// Every answer to a click or dialog leaves through here (see [`ephemeral`]).
fn ephemeral_json(text: &str) -> Value {
    json!({ "ephemeral_text": neutralise::text(text) })
}

impl ChatService {
    /// Opens the store and the engine in the data directory, recovers stored sessions and
    /// their threads, and loads (or creates) the signing secret.
    pub async fn open(api: Api, bot_id: String, config: &Config) -> Result<Arc<Self>, OpenError> {
        let data_dir = match config.data_directory.clone() {
            Some(dir) => dir,
            None => default_data_directory(&api).await,
        };
        std::fs::create_dir_all(&data_dir).map_err(|source| OpenError::DataDirectory {
            path: data_dir.clone(),
            source,
        })?;
        let store = Store::open(&data_dir.join("claude-code.db")).await?;
        let launcher = Arc::new(ProcessLauncher::new(cli_env(config, &data_dir)));
        let engine = Engine::new(store.clone(), launcher.clone(), session_config(config));
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
            admission: Mutex::new(Admission::default()),
            tasks: Mutex::new(Vec::new()),
            outbox_worker: Mutex::new(None),
            stop_streams: tokio::sync::watch::Sender::new(false),
            live: super::live::LiveEvents::default(),
        });
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

    /// Stops every session whose project is not under an allowed root of `config`, and says
    /// why in its thread. Sessions that have no process are left as they are: commands refuse
    /// to use them (see [`project_refusal`]).
    async fn stop_outside_roots(&self, config: &Config) {
        let outside: Vec<(String, SessionInfo)> = self
            .state
            .lock()
            .map(|st| {
                st.sessions
                    .iter()
                    .filter(|(_, info)| !under_allowed_root(config, Path::new(&info.project_path)))
                    .map(|(id, info)| (id.clone(), info.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (id, info) in outside {
            let Some(handle) = self.engine.get(&id) else {
                continue;
            };
            if !handle.status().await.is_ok_and(|s| s.state.has_process()) {
                continue;
            }
            if let Err(e) = handle.stop("plugin-settings").await {
                tracing::warn!(
                    session = handle.id(),
                    "stopping a session outside the allowed roots failed: {e}"
                );
                continue;
            }
            tracing::info!(
                session = handle.id(),
                "stopped: its project is no longer under an allowed project root"
            );
            let post = Post {
                user_id: self.bot_id.clone(),
                channel_id: info.channel_id.clone(),
                root_id: info.root_id.clone(),
                message: format!("{} It was stopped.", outside_roots_text(&info.project_path)),
                ..Default::default()
            };
            // Owed through the outbox, in the session's thread: delivered however long the
            // server takes.
            let key = format!("reply:{}", uuid::Uuid::new_v4().simple());
            let owed = OwedPost {
                root_key: Some(outbox::root_key(handle.id())),
                closed: true,
                ..outbox::owed(key, OwedKind::Reply, handle.id(), &post)
            };
            if let Err(e) = self.outbox.put(owed).await {
                tracing::warn!("telling a channel its session stopped failed: {e}");
            }
        }
    }

    async fn signing_secret(api: &Api) -> Result<String, OpenError> {
        for _ in 0..3 {
            if let Some(v) = api
                .kv_get(SIGNING_SECRET_KEY)
                .await?
                .filter(|v| !v.is_empty())
            {
                return String::from_utf8(v).map_err(|_| OpenError::SecretNotText);
            }
            let fresh = ActionSigner::generate_secret()?;
            // Another node may win the race; then its secret is read back.
            if api
                .kv_compare_and_set(SIGNING_SECRET_KEY, None, Some(fresh.clone().into_bytes()))
                .await?
            {
                return Ok(fresh);
            }
        }
        Err(OpenError::SecretRace)
    }

    async fn recover(self: &Arc<Self>) -> Result<(), OpenError> {
        let recovered = self.engine.recover_from_store().await?;
        let store = self.engine.store();
        let roots: HashMap<String, String> = store.root_posts().await?.into_iter().collect();
        // Threads made before the outbox are known to it, so their posts can name their root.
        for (session_id, root_id) in &roots {
            store
                .outbox_adopt(
                    &outbox::root_key(session_id),
                    OwedKind::Root,
                    session_id,
                    root_id,
                )
                .await?;
        }
        let cut = stream::close_cut_turns(&self.outbox, &self.bot_id).await?;
        if cut > 0 {
            tracing::info!("{cut} turn(s) were cut by the end of the previous run; their posts are closed with what the transcript holds");
        }
        if let Err(e) = store.outbox_prune().await {
            tracing::warn!("forgetting old delivered posts failed: {e}");
        }
        let worker = tokio::spawn(self.outbox.clone().run());
        if let Ok(mut w) = self.outbox_worker.lock() {
            *w = Some(worker);
        }
        for record in store.sessions().await? {
            let Some(root_id) = roots.get(&record.id).cloned() else {
                continue;
            };
            let info = SessionInfo {
                channel_id: record.channel_id.clone(),
                owner_id: record.owner_id.clone(),
                project_path: record.project_path.clone(),
                root_id,
            };
            if let Some(handle) = self.engine.get(&record.id) {
                self.track(&handle, info);
            }
        }
        if !recovered.withdrawn.is_empty() {
            tracing::info!(
                "{} approval request(s) were left pending by the previous run; their cards are closed",
                recovered.withdrawn.len()
            );
        }
        // In the background: activation does not wait on posts the server may be slow to serve.
        let svc = Arc::clone(self);
        tokio::spawn(async move { svc.close_open_cards().await });
        Ok(())
    }

    /// Cards still showing buttons for requests that are over (the previous run ended before it
    /// closed them, or the requests were left pending and withdrawn at recovery) get their
    /// outcome in place of the buttons. A card that cannot be updated now stays recorded as
    /// open, so the next activation tries again.
    async fn close_open_cards(&self) {
        let open = match self.engine.store().open_cards_of_decided_approvals().await {
            Ok(open) => open,
            Err(e) => {
                tracing::warn!("listing the cards left open failed: {e}");
                return;
            }
        };
        for (post_id, approval) in open {
            // The card as last owed; one posted before the outbox is read from the server.
            let owed = match self
                .engine
                .store()
                .outbox_open_card(&approval.request_id)
                .await
            {
                Ok(owed) => owed,
                Err(e) => {
                    tracing::warn!(request = %approval.request_id, "reading a card left open failed: {e}");
                    continue;
                }
            };
            let post = match (owed, post_id) {
                (Some((_, json)), _) => outbox::post_of_json(&json),
                (None, Some(post_id)) => match self.adopt_card(&approval, &post_id).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(request = %approval.request_id, "reading a card left open failed: {e}");
                        continue;
                    }
                },
                (None, None) => continue,
            };
            let Some((_, _, att)) = card::pending_card(&post) else {
                // Already without buttons (the server applied a click's update).
                let _ = self
                    .engine
                    .store()
                    .close_approval_card(&approval.request_id)
                    .await;
                continue;
            };
            let outcome = self.stored_outcome(&approval).await;
            let closed = Post {
                props: card::card_props(card::decided_attachment(&att, &outcome)),
                ..post
            };
            let owed = OwedPost {
                root_key: (closed.id.is_empty()).then(|| outbox::root_key(&approval.session_id)),
                request_id: Some(approval.request_id.clone()),
                closed: true,
                ..outbox::owed(
                    outbox::card_key(&approval.request_id),
                    OwedKind::Card,
                    &approval.session_id,
                    &closed,
                )
            };
            self.put_closed_card(&approval.request_id, owed).await;
        }
    }

    /// A card posted before the outbox, read from the server and made known to the outbox.
    async fn adopt_card(
        &self,
        approval: &ApprovalRecord,
        post_id: &str,
    ) -> Result<Post, crate::mattermost::api::ApiError> {
        let post = self.api.get_post(post_id).await?;
        let key = outbox::card_key(&approval.request_id);
        if let Err(e) = self
            .engine
            .store()
            .outbox_adopt(&key, OwedKind::Card, &approval.session_id, post_id)
            .await
        {
            tracing::warn!(request = %approval.request_id, "recording a card in the outbox failed: {e}");
        }
        Ok(post)
    }

    /// How a card shows a stored decision.
    async fn stored_outcome(&self, approval: &ApprovalRecord) -> card::Decision {
        let decision = approval.decision.as_deref().unwrap_or_default();
        let by = match approval.decided_by.as_deref() {
            Some(id) => self
                .api
                .get_user(id)
                .await
                .map(|u| u.username)
                .unwrap_or_else(|_| id.to_owned()),
            None => String::new(),
        };
        let at = approval.decided_at.unwrap_or_default() / 1000;
        match decision {
            "expired" => card::Decision::Expired,
            "allow" | "allow_with_input" | "allow_for_session" if !by.is_empty() => {
                card::Decision::Approved {
                    by,
                    at,
                    for_session: decision == "allow_for_session",
                    edited: decision == "allow_with_input",
                }
            }
            "deny" | "deny_and_interrupt" if !by.is_empty() => card::Decision::Denied {
                by,
                at,
                reason: approval.reason.clone(),
            },
            _ => card::Decision::Cancelled,
        }
    }

    /// Maps a session and starts its post stream.
    fn track(self: &Arc<Self>, handle: &SessionHandle, info: SessionInfo) {
        let ctx = StreamCtx {
            session_id: handle.id().to_owned(),
            channel_id: info.channel_id.clone(),
            bot_id: self.bot_id.clone(),
            cwd: Some(info.project_path.clone()),
            signer: self.signer.clone(),
            cards: self.cards.clone(),
            session_config: self.engine.shared_config(),
            stop: self.stop_streams.subscribe(),
        };
        let task = tokio::spawn(stream::run(self.outbox.clone(), ctx, handle.feed()));
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
            st.by_channel
                .insert(info.channel_id.clone(), handle.id().to_owned());
            // A thread the server has not created yet is mapped when it is.
            if !info.root_id.is_empty() {
                st.by_root
                    .insert(info.root_id.clone(), handle.id().to_owned());
            }
            st.sessions.insert(handle.id().to_owned(), info);
        }
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
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn session_of_channel(&self, channel_id: &str) -> Option<(SessionHandle, SessionInfo)> {
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

    /// Whether the user is a member of a team WhoCanStart lists. Each name is resolved to its
    /// id; the command's own team is enough (the channel membership was checked), otherwise
    /// the user's team membership is asked for. A team that does not exist matches nobody.
    async fn in_listed_team(&self, who: &WhoCanStart, user_id: &str, team_id: &str) -> bool {
        for name in who.team_names() {
            let team = match self.api.get_team_by_name(name).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!("WhoCanStart: team {name:?} not resolved: {e}");
                    continue;
                }
            };
            if team_membership_counts(&team, team_id, user_id, None) {
                return true;
            }
            let member = self.api.get_team_member(&team.id, user_id).await.ok();
            if team_membership_counts(&team, team_id, user_id, member.as_ref()) {
                return true;
            }
        }
        false
    }

    /// Whether WhoCanStart allows the user (by name, or as a member of a listed team).
    async fn may_start(&self, config: &Config, user_id: &str, team_id: &str) -> bool {
        let who = &config.who_can_start;
        if *who == WhoCanStart::Everyone {
            return true;
        }
        let name = self.username(user_id).await;
        who.allows(&name, &[]) || self.in_listed_team(who, user_id, team_id).await
    }

    /// Whether Mattermost counts the user as a system admin. A failed call counts as no.
    async fn is_system_admin(&self, user_id: &str) -> bool {
        match self.api.has_permission_to(user_id, "manage_system").await {
            Ok(admin) => admin,
            Err(e) => {
                tracing::warn!("HasPermissionTo(manage_system) failed: {e}");
                false
            }
        }
    }

    /// THE authorization check of every entry point (commands, thread replies, card clicks,
    /// dialog submissions), before anything is done: the asker's roles are resolved, asking
    /// Mattermost only what can still change the answer, and the table in [`authz`] decides.
    async fn authorize_action(
        &self,
        config: &Config,
        action: Action,
        asker: &Asker<'_>,
    ) -> Result<(), Refusal> {
        let approve = config.who_can_approve;
        let mut roles = vec![Role::Anyone];
        if authz::allowed(&roles, action, approve) == authz::Decision::Allow {
            return Ok(());
        }
        if self.is_member(asker.channel_id, asker.user_id).await {
            roles.push(Role::Member);
            if let Some(info) = asker.session {
                let owner = info.owner_id == asker.user_id;
                if owner {
                    roles.push(Role::Owner);
                }
                if owner || approve == WhoCanApprove::Members {
                    roles.push(Role::Approver);
                }
            }
            if action == Action::Start && self.may_start(config, asker.user_id, asker.team_id).await
            {
                roles.push(Role::Starter);
            }
            if action.needs_session() && asker.session.is_none() {
                return Err(Refusal::NoSession);
            }
        }
        let mut decision = authz::allowed(&roles, action, approve);
        if decision != authz::Decision::Allow
            && authz::permits(Role::SystemAdmin, action)
            && self.is_system_admin(asker.user_id).await
        {
            roles.push(Role::SystemAdmin);
            decision = authz::allowed(&roles, action, approve);
        }
        match decision {
            authz::Decision::Allow => Ok(()),
            authz::Decision::Refuse(text) => Err(Refusal::NotAllowed(text)),
        }
    }

    async fn username(&self, user_id: &str) -> String {
        match self.api.get_user(user_id).await {
            Ok(u) if !u.username.is_empty() => u.username,
            _ => user_id.to_owned(),
        }
    }

    // --- commands ----------------------------------------------------------

    /// Takes one of `user_id`'s commands from the rate limit, if there is one.
    fn admit(&self, user_id: &str) -> Result<(), RetryAfter> {
        match &self
            .limiter
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .limiter
        {
            Some(limiter) => limiter.check(user_id, Instant::now()),
            None => Ok(()),
        }
    }

    /// `/claude …`: the authorization, the rate limit, then the command.
    pub async fn execute(self: &Arc<Self>, config: &Config, args: &CommandArgs) -> CommandResponse {
        // Usage errors are static text about the command itself: they touch no channel or
        // session, so they need neither a role nor a token.
        let cmd = match command::parse(&args.command) {
            Ok(c) => c,
            Err(e) => return ephemeral(e.to_string()),
        };
        let session = self.session_of_channel(&args.channel_id);
        let asker = Asker {
            user_id: &args.user_id,
            channel_id: &args.channel_id,
            team_id: &args.team_id,
            session: session.as_ref().map(|(_, info)| info),
        };
        let action = Action::of_command(&cmd);
        match self.authorize_action(config, action, &asker).await {
            Ok(()) => {}
            // A member's question like any other: it costs a command.
            Err(Refusal::NoSession) => {
                return ephemeral(match self.admit(&args.user_id) {
                    Ok(()) => NO_SESSION.to_owned(),
                    Err(retry) => slow_down(retry),
                })
            }
            Err(refusal) => return ephemeral(refusal.to_string()),
        }
        if let Some(refusal) = asker
            .session
            .and_then(|info| project_refusal(config, action, info))
        {
            return ephemeral(refusal);
        }
        if cmd == ChatCommand::Help {
            return ephemeral(command::help_text());
        }
        if let Err(retry) = self.admit(&args.user_id) {
            return ephemeral(slow_down(retry));
        }
        // What the owner or an approver may do acts on the session the check was made for
        // (never on one started in the channel since).
        let checked = session.map(|(handle, _)| handle);
        match cmd {
            ChatCommand::Help => ephemeral(command::help_text()),
            ChatCommand::Start { path, model, mode } => {
                self.start(config, args, &path, model, mode).await
            }
            ChatCommand::Status => self.status(&args.channel_id).await,
            ChatCommand::Ask { prompt } => ephemeral(
                self.prompt(
                    &args.channel_id,
                    &args.user_id,
                    &prompt,
                    config.max_concurrent_sessions as usize,
                )
                .await,
            ),
            ChatCommand::Interrupt => match &checked {
                None => ephemeral(NO_SESSION),
                Some(h) => match h.interrupt(&args.user_id).await {
                    Ok(()) => ephemeral("Interrupted: the current turn was stopped."),
                    Err(e) => ephemeral(format!("Nothing to interrupt: {e}")),
                },
            },
            ChatCommand::Stop => match &checked {
                None => ephemeral(NO_SESSION),
                Some(h) => match h.stop(&args.user_id).await {
                    Ok(()) => ephemeral(
                        "Claude Code session stopped. A new prompt resumes the conversation.",
                    ),
                    Err(e) => ephemeral(format!("Could not stop the session: {e}")),
                },
            },
            ChatCommand::Mode(m) => match &checked {
                None => ephemeral(NO_SESSION),
                Some(h) => match h.set_permission_mode(m, &args.user_id).await {
                    Ok(()) => ephemeral(format!("Permission mode set to `{}`", m.as_str())),
                    Err(e) => ephemeral(format!("Could not change the permission mode: {e}")),
                },
            },
            ChatCommand::Model(m) => match &checked {
                None => ephemeral(NO_SESSION),
                Some(h) => match h.set_model(&m, &args.user_id).await {
                    Ok(()) => ephemeral(format!("Model set to `{m}`")),
                    Err(e) => ephemeral(format!("Could not change the model: {e}")),
                },
            },
            ChatCommand::History => self.history(&args.channel_id).await,
            ChatCommand::ContextThread { permalink } => {
                let link = permalink.unwrap_or_else(|| args.root_id.clone());
                ephemeral(
                    self.context_thread(args, &link, config.max_context_bytes)
                        .await,
                )
            }
            ChatCommand::ContextFile { path } => ephemeral(
                self.context_file(&args.channel_id, &path, config.max_context_bytes)
                    .await,
            ),
            ChatCommand::Files { dir } => {
                ephemeral(self.files(&args.channel_id, dir.as_deref()).await)
            }
            ChatCommand::File { path } => ephemeral(self.file(&args.channel_id, &path).await),
        }
    }

    /// Checks the start path: under a root (lexically and after symlinks), existing, a dir.
    fn check_project_path(config: &Config, path: &str) -> Result<PathBuf, String> {
        let raw = Path::new(path.trim());
        let outside = || format!("`{path}` is not under an allowed project root");
        if !raw.is_absolute() {
            return Err(outside());
        }
        let roots: Vec<PathBuf> = config
            .allowed_project_roots
            .iter()
            .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.clone()))
            .collect();
        let lexical = normalize(raw);
        let under_any = |p: &Path| {
            roots.iter().any(|r| is_under(p, r))
                || config.allowed_project_roots.iter().any(|r| is_under(p, r))
        };
        if !under_any(&lexical) {
            return Err(outside());
        }
        let canonical = match std::fs::canonicalize(&lexical) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!("`{path}` does not exist"))
            }
            Err(e) => return Err(format!("`{path}` cannot be opened: {e}")),
        };
        if !roots.iter().any(|r| is_under(&canonical, r)) {
            return Err(outside());
        }
        if !canonical.is_dir() {
            return Err(format!("`{path}` is not a directory"));
        }
        Ok(canonical)
    }

    async fn start(
        self: &Arc<Self>,
        config: &Config,
        args: &CommandArgs,
        path: &str,
        model: Option<String>,
        mode: Option<crate::claude::PermissionMode>,
    ) -> CommandResponse {
        // Before anything is awaited: one start per channel at a time.
        let Some(reservation) = self.reserve_channel(&args.channel_id) else {
            return ephemeral("A session is already being started in this channel.");
        };
        let project = match Self::check_project_path(config, path) {
            Ok(p) => p,
            Err(e) => return ephemeral(e),
        };
        if let Some((h, info)) = self.session_of_channel(&args.channel_id) {
            if h.status().await.is_ok_and(|s| s.state.has_process()) {
                return ephemeral(format!(
                    "This channel already has a session (in `{}`). Stop it with `/claude stop` first.",
                    info.project_path
                ));
            }
        }
        if let Err(live) = self
            .take_slot(&reservation, config.max_concurrent_sessions as usize)
            .await
        {
            return ephemeral(at_the_limit(live));
        }
        let handle = match self
            .engine
            .start(SessionSpec {
                channel_id: args.channel_id.clone(),
                owner_id: args.user_id.clone(),
                project_path: project.clone(),
                model: model.or_else(|| config.default_model.clone()),
                permission_mode: Some(mode.unwrap_or(config.default_permission_mode)),
            })
            .await
        {
            Ok(h) => h,
            Err(e) => return ephemeral(format!("Claude Code could not start: {e}")),
        };
        let shown = project.display().to_string();
        let typed = path.trim();
        // The path as typed, and the real one when a symlink or `..` made them differ.
        let where_ = if typed == shown {
            format!("`{shown}`")
        } else {
            format!("`{typed}` (`{shown}`)")
        };
        let root = Post {
            user_id: self.bot_id.clone(),
            channel_id: args.channel_id.clone(),
            message: format!(
                "Claude Code session started in {where_}. Reply in this thread (or use `/claude <prompt>`) to talk to Claude."
            ),
            ..Default::default()
        };
        // Owed through the outbox, which records the thread when the server created it (the
        // bot joins the channel before its first post in it).
        let key = outbox::root_key(handle.id());
        let owed = OwedPost {
            closed: true,
            ..outbox::owed(key.clone(), OwedKind::Root, handle.id(), &root)
        };
        if let Err(e) = self.outbox.put(owed).await {
            let _ = handle.stop(&args.user_id).await;
            return ephemeral(format!("The session's thread could not be created: {e}"));
        }
        let info = SessionInfo {
            channel_id: args.channel_id.clone(),
            owner_id: args.user_id.clone(),
            project_path: shown,
            root_id: String::new(),
        };
        match tokio::time::timeout(ROOT_WAIT, self.outbox.created(&key)).await {
            Ok(root_id) => {
                let answer = started_answer(&where_, &args.site_url, &root_id);
                self.track(&handle, SessionInfo { root_id, ..info });
                ephemeral(answer)
            }
            Err(_) => {
                // The session runs; its thread and every post in it follow when the server
                // takes posts again.
                self.track(&handle, info);
                let svc = Arc::clone(self);
                let session_id = handle.id().to_owned();
                let waiter = tokio::spawn(async move {
                    let root_id = svc.outbox.created(&key).await;
                    svc.thread_created(&session_id, root_id);
                });
                if let Ok(mut tasks) = self.tasks.lock() {
                    tasks.push(waiter);
                }
                ephemeral(format!(
                    "Claude Code session started in {where_}. The server does not take posts right now: the session's thread appears as soon as it does."
                ))
            }
        }
    }

    /// Reserves the channel for one start, synchronously; `None` while another start holds it.
    fn reserve_channel(&self, channel_id: &str) -> Option<Reservation<'_>> {
        let mut adm = self.admission.lock().unwrap_or_else(|p| p.into_inner());
        if adm.reserved.contains_key(channel_id) {
            return None;
        }
        adm.reserved.insert(channel_id.to_owned(), false);
        Some(Reservation {
            admission: &self.admission,
            channel_id: channel_id.to_owned(),
        })
    }

    /// Channels of the tracked sessions that have a process now.
    async fn live_channels(&self) -> Vec<String> {
        let tracked: Vec<(String, String)> = self
            .state
            .lock()
            .map(|st| {
                st.sessions
                    .iter()
                    .map(|(id, info)| (id.clone(), info.channel_id.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut live = Vec::new();
        for (id, channel) in tracked {
            let Some(handle) = self.engine.get(&id) else {
                continue;
            };
            if handle.status().await.is_ok_and(|s| s.state.has_process()) {
                live.push(channel);
            }
        }
        live
    }

    /// Takes one of `max` slots for the reserved start, or says how many are taken. Taken are
    /// the admitted starts plus the live sessions outside their channels (an admitted start's
    /// own session is counted once). The decision is made under the admission lock, from a list
    /// of live sessions no reservation ended during.
    async fn take_slot(&self, reservation: &Reservation<'_>, max: usize) -> Result<(), usize> {
        loop {
            let seen = self
                .admission
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .ended;
            let live = self.live_channels().await;
            let mut adm = self.admission.lock().unwrap_or_else(|p| p.into_inner());
            if adm.ended != seen {
                continue;
            }
            let admitted = adm.reserved.values().filter(|&&slot| slot).count();
            let others = live
                .iter()
                .filter(|c| adm.reserved.get(*c) != Some(&true))
                .count();
            let taken = admitted + others;
            if taken >= max {
                return Err(taken);
            }
            adm.reserved.insert(reservation.channel_id.clone(), true);
            return Ok(());
        }
    }

    async fn status(&self, channel_id: &str) -> CommandResponse {
        let Some((h, info)) = self.session_of_channel(channel_id) else {
            return ephemeral(NO_SESSION);
        };
        match h.status().await {
            Ok(s) => {
                let mut text = format!(
                    "Claude Code session in `{}`: **{}**",
                    info.project_path,
                    state_word(s.state)
                );
                if s.queued_prompts > 0 {
                    text.push_str(&format!(" · {} queued prompt(s)", s.queued_prompts));
                }
                if !s.pending_approvals.is_empty() {
                    text.push_str(&format!(
                        " · {} approval(s) pending",
                        s.pending_approvals.len()
                    ));
                }
                ephemeral(text)
            }
            Err(e) => ephemeral(format!(
                "Claude Code session in `{}`: {e}",
                info.project_path
            )),
        }
    }

    /// Sends a prompt (with pending context blocks first); returns the reply text. A stopped
    /// session resumes on a prompt: that takes one of `max_sessions` slots as a start does, so
    /// stopping and resuming cannot run more sessions than MaxConcurrentSessions.
    pub async fn prompt(
        &self,
        channel_id: &str,
        user_id: &str,
        text: &str,
        max_sessions: usize,
    ) -> String {
        let Some((h, _)) = self.session_of_channel(channel_id) else {
            return NO_SESSION.to_owned();
        };
        // Held until the session took the prompt (and with it, its new process).
        let _resuming = if h.status().await.is_ok_and(|s| !s.state.has_process()) {
            let Some(reservation) = self.reserve_channel(channel_id) else {
                return "This channel's session is being started: try again in a moment."
                    .to_owned();
            };
            if let Err(live) = self.take_slot(&reservation, max_sessions).await {
                return at_the_limit(live);
            }
            Some(reservation)
        } else {
            None
        };
        let blocks = self
            .state
            .lock()
            .ok()
            .and_then(|mut st| st.context.remove(h.id()))
            .unwrap_or_default();
        let full = if blocks.is_empty() {
            text.to_owned()
        } else {
            format!("{}\n\n{text}", blocks.join("\n\n"))
        };
        match h.prompt(&full, user_id).await {
            Ok(_) => String::new(),
            Err(e) => {
                // Give the context back for the next try.
                if !blocks.is_empty() {
                    if let Ok(mut st) = self.state.lock() {
                        st.context.insert(h.id().to_owned(), blocks);
                    }
                }
                format!("Claude could not take the prompt: {e}")
            }
        }
    }

    async fn history(&self, channel_id: &str) -> CommandResponse {
        let Some((h, _)) = self.session_of_channel(channel_id) else {
            return ephemeral(NO_SESSION);
        };
        let rows = match self.engine.store().messages(h.id()).await {
            Ok(r) => r,
            Err(e) => return ephemeral(format!("The history could not be read: {e}")),
        };
        let lines: Vec<String> = rows
            .iter()
            .filter(|m| m.kind == "prompt" || m.kind == "assistant_text")
            .map(|m| {
                let who = if m.kind == "prompt" {
                    "**You**"
                } else {
                    "**Claude**"
                };
                let mut t: String = m.content.chars().take(300).collect();
                if m.content.chars().count() > 300 {
                    t.push('…');
                }
                format!("{who}: {}", t.replace('\n', " "))
            })
            .collect();
        if lines.is_empty() {
            return ephemeral("No prompts in this session yet.");
        }
        let start = lines.len().saturating_sub(20);
        ephemeral(lines[start..].join("\n"))
    }

    fn add_context(&self, session_id: &str, block: String) {
        if let Ok(mut st) = self.state.lock() {
            st.context
                .entry(session_id.to_owned())
                .or_default()
                .push(block);
        }
    }

    /// Adds a thread as context, its first posts up to `limit` bytes.
    async fn context_thread(&self, args: &CommandArgs, link: &str, limit: usize) -> String {
        let Some((h, _)) = self.session_of_channel(&args.channel_id) else {
            return NO_SESSION.to_owned();
        };
        let Some(post_id) = post_id_of(link) else {
            return "Name the thread: `/claude context thread <permalink or post id>`.".into();
        };
        let list = match self.api.get_post_thread(&post_id).await {
            Ok(l) => l,
            Err(_) => return format!("The thread `{post_id}` cannot be found."),
        };
        let posts = list.posts.unwrap_or_default();
        let Some(channel) = posts
            .get(&post_id)
            .or_else(|| posts.values().next())
            .map(|p| p.channel_id.clone())
        else {
            return format!("The thread `{post_id}` is empty.");
        };
        let can_read = self
            .api
            .has_permission_to_channel(&args.user_id, &channel, "read_channel")
            .await
            .unwrap_or(false);
        if !can_read {
            return "You cannot read the channel of that thread.".into();
        }
        let mut ordered: Vec<&Post> = posts.values().collect();
        ordered.sort_by_key(|p| (p.create_at, p.id.clone()));
        let mut names: HashMap<String, String> = HashMap::new();
        let mut body = String::new();
        let (mut added, mut last_cut) = (0, false);
        for p in &ordered {
            if body.len() >= limit {
                break;
            }
            if !names.contains_key(&p.user_id) {
                let n = self.username(&p.user_id).await;
                names.insert(p.user_id.clone(), n);
            }
            let line = format!("@{}: {}\n", names[&p.user_id], p.message);
            let kept = cut_to(&line, limit - body.len());
            last_cut = kept.len() < line.len();
            body.push_str(kept);
            added += 1;
        }
        let whole: usize = ordered.iter().map(|p| p.message.len()).sum();
        let block = format!(
            "<mattermost-thread root=\"{post_id}\" channel=\"{channel}\">\n{body}</mattermost-thread>"
        );
        self.add_context(h.id(), block);
        let mut answer = format!(
            "The thread ({} posts) was added as context for the next prompt.",
            ordered.len()
        );
        if added < ordered.len() || last_cut {
            let cut_post = if last_cut {
                " and the end of the last one added"
            } else {
                ""
            };
            answer = format!(
                "The thread ({} posts, {}) was added as context for the next prompt, cut at the context limit of {} (MaxContextKB): {} later post(s){cut_post} were left out.",
                ordered.len(),
                size(whole),
                size(limit),
                ordered.len() - added,
            );
        }
        answer
    }

    fn project_of(&self, channel_id: &str) -> Result<(SessionHandle, PathBuf), String> {
        self.session_of_channel(channel_id)
            .map(|(h, i)| (h, PathBuf::from(i.project_path)))
            .ok_or_else(|| NO_SESSION.to_owned())
    }

    /// Adds a text file as context, its first `limit` bytes.
    async fn context_file(&self, channel_id: &str, path: &str, limit: usize) -> String {
        let (h, root) = match self.project_of(channel_id) {
            Ok(x) => x,
            Err(e) => return e,
        };
        let (path, content, whole) = match files::read(root, path.to_owned(), limit).await {
            Ok(FileContent::Text { path, content, .. }) => (path, content, None),
            Ok(FileContent::Attachment {
                path,
                bytes,
                reason: files::AttachmentReason::TooLongToShow,
                ..
            }) => {
                let text = String::from_utf8_lossy(&bytes);
                let head = cut_to(&text, limit).to_owned();
                (path, head, Some(bytes.len()))
            }
            Ok(FileContent::Attachment { path, .. }) => {
                return format!("`{path}` is binary: it cannot be added as context.")
            }
            Ok(FileContent::TooLarge { path, size: bytes }) => {
                return format!(
                    "`{path}` is too large to add as context ({}).",
                    size(bytes as usize)
                )
            }
            Err(e) => return e.to_string(),
        };
        let block = format!("<project-file path=\"{path}\">\n{content}\n</project-file>");
        self.add_context(h.id(), block);
        match whole {
            None => format!("`{path}` was added as context for the next prompt."),
            Some(whole) => format!(
                "The first {} of `{path}` ({}) were added as context for the next prompt: the rest is beyond the context limit (MaxContextKB).",
                size(content.len()),
                size(whole)
            ),
        }
    }

    async fn files(&self, channel_id: &str, dir: Option<&str>) -> String {
        let root = match self.project_of(channel_id) {
            Ok((_, r)) => r,
            Err(e) => return e,
        };
        match files::list(root, dir.unwrap_or("").to_owned(), 3, 300).await {
            Ok(listing) => {
                let mut tree = format!("{}/\n", dir.unwrap_or("."));
                tree_lines(&listing.tree, 1, &mut tree);
                let mut text = code_block("", &tree);
                if listing.count_capped || listing.depth_capped {
                    text.push_str("\n(Shortened: name a subdirectory to see more.)");
                }
                text
            }
            Err(e) => e.to_string(),
        }
    }

    async fn file(&self, channel_id: &str, path: &str) -> String {
        let root = match self.project_of(channel_id) {
            Ok((_, r)) => r,
            Err(e) => return e,
        };
        match files::read(root, path.to_owned(), MAX_INLINE_FILE).await {
            Ok(FileContent::Text {
                path,
                content,
                language,
            }) => format!("`{path}`\n{}", code_block(language.unwrap_or(""), &content)),
            Ok(FileContent::Attachment { path, .. }) => {
                format!("`{path}` is binary or too long to show here.")
            }
            Ok(FileContent::TooLarge { path, size }) => {
                format!("`{path}` is too large to show ({size} bytes).")
            }
            Err(e) => e.to_string(),
        }
    }

    // --- thread replies ----------------------------------------------------

    /// MessageHasBeenPosted: a reply in a session's thread is a prompt.
    pub async fn on_post(&self, post: &Post, config: &Config) {
        if post.root_id.is_empty() || post.user_id.is_empty() || post.user_id == self.bot_id {
            return;
        }
        let flagged = |key: &str| {
            post.props.as_ref().is_some_and(|p| {
                matches!(p.get(key), Some(Any::String(s)) if s == "true")
                    || matches!(p.get(key), Some(Any::Bool(true)))
            })
        };
        if flagged("from_bot") || flagged("from_plugin") || flagged("from_webhook") {
            return;
        }
        let session = self
            .state
            .lock()
            .ok()
            .and_then(|st| st.by_root.get(&post.root_id).cloned());
        let Some(session_id) = session else {
            return;
        };
        let current = self.state.lock().ok().and_then(|st| {
            (st.by_channel.get(&post.channel_id) == Some(&session_id))
                .then(|| st.sessions.get(&session_id).cloned())
                .flatten()
        });
        let Some(info) = current else {
            return;
        };
        if post.message.trim().is_empty() {
            return;
        }
        let asker = Asker {
            user_id: &post.user_id,
            channel_id: &post.channel_id,
            team_id: "",
            session: Some(&info),
        };
        let allowed = match self.authorize_action(config, Action::Prompt, &asker).await {
            Ok(()) => project_refusal(config, Action::Prompt, &info).map_or(Ok(()), Err),
            Err(refusal) => Err(refusal.to_string()),
        };
        let reply = match allowed {
            Err(refusal) => refusal,
            Ok(()) => match self.admit(&post.user_id) {
                Err(retry) => format!(
                    "Slow down: too many prompts. Try again in {} s.",
                    retry.seconds()
                ),
                Ok(()) => {
                    self.prompt(
                        &post.channel_id,
                        &post.user_id,
                        &post.message,
                        config.max_concurrent_sessions as usize,
                    )
                    .await
                }
            },
        };
        if !reply.is_empty() {
            let _ = self
                .poster
                .send_ephemeral(
                    &post.user_id,
                    Post {
                        user_id: self.bot_id.clone(),
                        channel_id: post.channel_id.clone(),
                        root_id: post.root_id.clone(),
                        message: reply,
                        ..Default::default()
                    },
                )
                .await;
        }
    }

    // --- approval clicks and dialogs ---------------------------------------

    /// Checks a verified click or submission (`action`) of its user and claims the card.
    /// `Err` = ephemeral text. The user's right comes first: a refused click learns nothing
    /// about the request and leaves the card as it is.
    async fn authorize(
        &self,
        config: &Config,
        ctx: &ActionContext,
        action: Action,
        user_id: &str,
        claim: bool,
    ) -> Result<(SessionHandle, stream::Card), String> {
        let info = self
            .state
            .lock()
            .map_err(|_| "internal error".to_owned())?
            .sessions
            .get(&ctx.session_id)
            .cloned()
            .ok_or("This session no longer exists.")?;
        let asker = Asker {
            user_id,
            channel_id: &info.channel_id,
            team_id: "",
            session: Some(&info),
        };
        self.authorize_action(config, action, &asker)
            .await
            .map_err(|r| r.to_string())?;
        let card = self
            .cards
            .lock()
            .map_err(|_| "internal error".to_owned())?
            .get(&(ctx.session_id.clone(), ctx.request_id.clone()))
            .cloned()
            .ok_or("This request is no longer pending.")?;
        if card.decided {
            return Err("This request was already answered.".into());
        }
        let handle = self
            .engine
            .get(&ctx.session_id)
            .ok_or("This session no longer exists.")?;
        let pending = handle
            .status()
            .await
            .map(|s| {
                s.pending_approvals
                    .iter()
                    .any(|p| p.request_id == ctx.request_id)
            })
            .unwrap_or(false);
        if !pending {
            return Err("This request is no longer pending.".into());
        }
        if claim {
            let mut cards = self.cards.lock().map_err(|_| "internal error".to_owned())?;
            let c = cards
                .get_mut(&(ctx.session_id.clone(), ctx.request_id.clone()))
                .ok_or("This request is no longer pending.")?;
            if c.decided {
                return Err("This request was already answered.".into());
            }
            c.decided = true;
        }
        Ok((handle, card))
    }

    fn unclaim(&self, ctx: &ActionContext) {
        if let Ok(mut cards) = self.cards.lock() {
            if let Some(c) = cards.get_mut(&(ctx.session_id.clone(), ctx.request_id.clone())) {
                c.decided = false;
            }
        }
    }

    /// Sends the decision, then updates the card. Returns the updated attachment.
    async fn decide(
        &self,
        ctx: &ActionContext,
        handle: &SessionHandle,
        card: &stream::Card,
        decision: Decision,
        shown: card::Decision,
        user_id: &str,
    ) -> Result<SlackAttachment, String> {
        match handle.approve(&ctx.request_id, decision, user_id).await {
            Ok(()) => {}
            // Withdrawn while this click was on its way (the withdrawal left the claimed card
            // to the click): the card says so instead of offering buttons again.
            Err(SessionError::UnknownApproval(_)) => {
                let att = card::decided_attachment(&card.attachment, &card::Decision::Cancelled);
                self.put_closed_card(&ctx.request_id, card_post(card, &self.bot_id, att))
                    .await;
                return Err("Claude Code is no longer waiting for this decision.".into());
            }
            Err(e) => {
                self.unclaim(ctx);
                return Err(format!("The decision could not be delivered: {e}"));
            }
        }
        let att = card::decided_attachment(&card.attachment, &shown);
        self.put_closed_card(&ctx.request_id, card_post(card, &self.bot_id, att.clone()))
            .await;
        Ok(att)
    }

    /// Owes a card's final form (the outbox delivers it) and records the card closed.
    async fn put_closed_card(&self, request_id: &str, closed: OwedPost) {
        if let Err(e) = stream::close_card_post(&self.outbox, request_id, closed).await {
            tracing::warn!("owing a closed card failed: {e}");
        }
    }

    /// POST /api/v1/actions/approval: the JSON answer for Mattermost.
    pub async fn approval_click(&self, config: &Config, user_id: &str, body: &Value) -> Value {
        let now = now_ms() / 1000;
        let ctx = match self
            .signer
            .verify(body.get("context").unwrap_or(&Value::Null), now)
        {
            Ok(c) => c,
            Err(card::VerifyError::Expired { .. }) => {
                return ephemeral_json("This request has expired.")
            }
            Err(_) => return ephemeral_json("This button is not valid."),
        };
        let opens_dialog = ctx.action.opens_dialog();
        let (handle, card) = match self
            .authorize(
                config,
                &ctx,
                Action::of_click(ctx.action),
                user_id,
                !opens_dialog,
            )
            .await
        {
            Ok(x) => x,
            Err(e) => return ephemeral_json(&e),
        };
        let trigger_id = body.get("trigger_id").and_then(Value::as_str).unwrap_or("");
        if opens_dialog {
            let request = match ctx.action {
                ApprovalAction::EditAndApprove => {
                    let Some(editable) = card::editable_input(&card.tool, &card.input) else {
                        return ephemeral_json("This input is too long to edit in a dialog.");
                    };
                    card::edit_dialog("", trigger_id, &self.signer, &ctx, &card.tool, &editable)
                }
                _ => card::deny_reason_dialog("", trigger_id, &self.signer, &ctx, &card.tool),
            };
            return match self.api.open_interactive_dialog(request).await {
                Ok(()) => json!({}),
                Err(e) => ephemeral_json(&format!("The dialog could not be opened: {e}")),
            };
        }
        // The name Mattermost knows for the user it authenticated (never the body's
        // `user_name`, which the clicker writes): shown on the card and sent to the model.
        let name = self.username(user_id).await;
        let at = now;
        let (decision, shown) = match ctx.action {
            ApprovalAction::Approve => (
                Decision::Allow,
                card::Decision::Approved {
                    by: name.clone(),
                    at,
                    for_session: false,
                    edited: false,
                },
            ),
            ApprovalAction::ApproveForSession => (
                Decision::AllowForSession,
                card::Decision::Approved {
                    by: name.clone(),
                    at,
                    for_session: true,
                    edited: false,
                },
            ),
            _ => (
                Decision::Deny(format!("Denied from Mattermost by @{name}")),
                card::Decision::Denied {
                    by: name.clone(),
                    at,
                    reason: None,
                },
            ),
        };
        match self
            .decide(&ctx, &handle, &card, decision, shown, user_id)
            .await
        {
            Ok(att) => json!({
                "update": {
                    "message": "",
                    "props": { "attachments": [attachment_json(&neutralise::attachment(att))] }
                }
            }),
            Err(e) => ephemeral_json(&e),
        }
    }

    /// POST /api/v1/actions/approval/dialog: `{}` or `{"errors": {...}}`.
    pub async fn approval_dialog(&self, config: &Config, user_id: &str, body: &Value) -> Value {
        if body.get("cancelled").and_then(Value::as_bool) == Some(true) {
            return json!({});
        }
        let now = now_ms() / 1000;
        let state = body.get("state").and_then(Value::as_str).unwrap_or("");
        let field = match self.signer.verify_state(state, now) {
            Ok(c) if c.action.opens_dialog() => Ok(c),
            Ok(_) => Err("This dialog is not valid.".to_owned()),
            Err(card::VerifyError::Expired { .. }) => Err("This request has expired.".into()),
            Err(_) => Err("This dialog is not valid.".into()),
        };
        let key = |ctx: Option<&ActionContext>| match ctx.map(|c| c.action) {
            Some(ApprovalAction::EditAndApprove) => card::DIALOG_FIELD_INPUT,
            _ => card::DIALOG_FIELD_REASON,
        };
        let ctx = match field {
            Ok(c) => c,
            Err(e) => return json!({ "error": e }),
        };
        let submitted = body
            .get("submission")
            .and_then(|s| s.get(key(Some(&ctx))))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let action = Action::of_dialog(ctx.action);
        let (handle, card) = match self.authorize(config, &ctx, action, user_id, false).await {
            Ok(x) => x,
            Err(e) => return json!({ "error": e }),
        };
        let name = self.username(user_id).await;
        let (decision, shown) = if ctx.action == ApprovalAction::EditAndApprove {
            let field = card::editable_input(&card.tool, &card.input).and_then(|e| e.field);
            match card::apply_edit(&card.input, field, &submitted) {
                Ok(v) => (
                    Decision::AllowWithInput(v),
                    card::Decision::Approved {
                        by: name,
                        at: now,
                        for_session: false,
                        edited: true,
                    },
                ),
                Err(e) => return json!({ "errors": { card::DIALOG_FIELD_INPUT: e.to_string() } }),
            }
        } else {
            let reason = submitted.trim();
            if reason.is_empty() {
                return json!({ "errors": { card::DIALOG_FIELD_REASON: "Tell Claude why." } });
            }
            (
                Decision::Deny(format!("Denied by @{name}: {reason}")),
                card::Decision::Denied {
                    by: name,
                    at: now,
                    reason: Some(reason.to_owned()),
                },
            )
        };
        // Claim only now: a failed validation leaves the card answerable.
        if let Err(e) = self.authorize(config, &ctx, action, user_id, true).await {
            return json!({ "error": e });
        }
        match self
            .decide(&ctx, &handle, &card, decision, shown, user_id)
            .await
        {
            Ok(_) => json!({}),
            Err(e) => json!({ "error": e }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permalinks_and_ids() {
        assert_eq!(
            post_id_of("https://mm.example.com/team/pl/abcdefghijklmnopqrstuvwxyz").as_deref(),
            Some("abcdefghijklmnopqrstuvwxyz")
        );
        assert_eq!(post_id_of("p1").as_deref(), Some("p1"));
        assert_eq!(post_id_of("  "), None);
    }

    #[test]
    fn start_paths_are_checked_in_order() {
        let base = std::env::temp_dir().join(format!("cc-svc-{}", uuid::Uuid::new_v4().simple()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("proj")).unwrap();
        std::fs::write(root.join("file.txt"), "x").unwrap();
        std::fs::create_dir_all(base.join("other")).unwrap();
        std::os::unix::fs::symlink(base.join("other"), root.join("escape")).unwrap();
        let config = Config {
            allowed_project_roots: vec![root.clone()],
            ..Config::default()
        };
        let check = |p: &Path| ChatService::check_project_path(&config, p.to_str().unwrap());
        assert!(check(&root.join("proj")).is_ok());
        for (p, want) in [
            (base.join("other"), "is not under an allowed project root"),
            (
                root.join("proj/../../other"),
                "is not under an allowed project root",
            ),
            (root.join("escape"), "is not under an allowed project root"),
            (root.join("missing"), "does not exist"),
            (root.join("file.txt"), "is not a directory"),
        ] {
            let e = check(&p).unwrap_err();
            assert!(e.contains(want), "{p:?}: {e}");
        }
        assert!(ChatService::check_project_path(&config, "relative")
            .unwrap_err()
            .contains("is not under an allowed project root"));
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn team_membership_quick_path_and_member_records() {
        let team = Team {
            id: "t1".into(),
            name: "platform".into(),
            ..Default::default()
        };
        let member = |team_id: &str, user_id: &str, delete_at: i64| TeamMember {
            team_id: team_id.into(),
            user_id: user_id.into(),
            delete_at,
            scheme_user: true,
            ..Default::default()
        };
        // The command's own team: no lookup needed.
        assert!(team_membership_counts(&team, "t1", "u1", None));
        assert!(!team_membership_counts(&team, "t2", "u1", None));
        // A DM/GM has no team id: it is never the quick path.
        assert!(!team_membership_counts(&team, "", "u1", None));
        assert!(team_membership_counts(
            &team,
            "t2",
            "u1",
            Some(&member("t1", "u1", 0))
        ));
        // Left the team.
        assert!(!team_membership_counts(
            &team,
            "t2",
            "u1",
            Some(&member("t1", "u1", 1_700_000_000_000))
        ));
        // Somebody else's or another team's record.
        assert!(!team_membership_counts(
            &team,
            "t2",
            "u1",
            Some(&member("t1", "u2", 0))
        ));
        assert!(!team_membership_counts(
            &team,
            "t2",
            "u1",
            Some(&member("t9", "u1", 0))
        ));
        // An unresolved team (empty id) matches nobody, even in a teamless channel.
        assert!(!team_membership_counts(
            &Team::default(),
            "",
            "u1",
            Some(&member("", "u1", 0))
        ));
    }

    #[test]
    fn who_can_start_lists_team_names_and_matches_them() {
        let who = WhoCanStart::Only(vec![
            crate::config::Principal::User("alice".into()),
            crate::config::Principal::Team("platform".into()),
            crate::config::Principal::Team("ops".into()),
        ]);
        assert_eq!(who.team_names(), vec!["platform", "ops"]);
        assert!(WhoCanStart::Everyone.team_names().is_empty());
        assert!(who.allows("alice", &[]));
        assert!(!who.allows("bob", &[]));
        assert!(who.allows("bob", &["ops"]));
    }

    /// What opening the service needs from the server: the KV store of the signing secret.
    fn kv_api() -> crate::rpc::netrpc::Server {
        use crate::mattermost::rpc_types::*;
        crate::rpc::netrpc::Server::new()
            .method("Plugin.KVGet", |_: StringArgs| async {
                Ok::<_, String>(KvGetReturns::default())
            })
            .method("Plugin.KVCompareAndSet", |_: KvCompareAndSetArgs| async {
                Ok::<_, String>(BoolAppErrorReturns { a: true, b: None })
            })
    }

    fn temp_dir(what: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cc-{what}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Settings for a test under `dir`: projects under `dir/root`, data in `dir/data`, and a
    /// CLI that reads its input and says nothing; `extra` adds or replaces keys.
    fn quiet_cli_config(dir: &Path, extra: serde_json::Value) -> Config {
        use std::os::unix::fs::PermissionsExt;
        let cli = dir.join("claude");
        std::fs::write(&cli, "#!/bin/sh\nexec cat > /dev/null\n").unwrap();
        std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut settings = serde_json::json!({
            "AllowedProjectRoots": dir.join("root").display().to_string(),
            "ClaudeCliPath": cli.display().to_string(),
            "DataDirectory": dir.join("data").display().to_string(),
        });
        if let (Some(s), Some(e)) = (settings.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        crate::config::load(settings.to_string().as_bytes()).unwrap()
    }

    /// Settings saved while the plugin runs reach what starts next; the data directory, which
    /// holds the open store, stays until the next enable.
    #[tokio::test]
    async fn saved_settings_apply_to_what_starts_next() {
        let dir = temp_dir("apply");
        let load = |extra: &str| {
            crate::config::load(
                format!(
                    r#"{{"DataDirectory": "{}", {extra}}}"#,
                    dir.join("data").display()
                )
                .as_bytes(),
            )
            .unwrap()
        };
        let first = load(r#""ClaudeCliPath": "/opt/old/claude", "CommandsPerMinute": 30"#);
        let chat = ChatService::open(
            crate::mattermost::api::in_process(kv_api()),
            "bot".into(),
            &first,
        )
        .await
        .expect("opens");
        assert_eq!(chat.launcher.env().cli_path, Path::new("/opt/old/claude"));
        let saved = crate::config::load(
            format!(
                r#"{{"DataDirectory": "{}", "ClaudeCliPath": "/opt/new/claude",
                    "AnthropicApiKey": "sk-new", "IdleTimeoutMinutes": 5,
                    "ApprovalTimeoutMinutes": 2, "CommandsPerMinute": 1}}"#,
                dir.join("elsewhere").display()
            )
            .as_bytes(),
        )
        .unwrap();
        chat.apply_config(&saved);
        let env = chat.launcher.env();
        assert_eq!(env.cli_path, Path::new("/opt/new/claude"));
        assert!(env
            .anthropic
            .contains(&("ANTHROPIC_API_KEY".into(), "sk-new".into())));
        // The CLI's HOME stays in the directory in use.
        assert_eq!(env.home_dir, dir.join("data/home"));
        let sessions = chat.engine.config();
        assert_eq!(sessions.idle_timeout, Duration::from_secs(300));
        assert_eq!(sessions.approval_timeout, Duration::from_secs(120));
        assert!(chat.admit("u1").is_ok());
        assert!(chat.admit("u1").is_err(), "one command per minute now");
        // Saving again with the same limit keeps the buckets.
        chat.apply_config(&saved);
        assert!(chat.admit("u1").is_err());
        chat.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `/claude start` for real up to the CLI, which is a stand-in that only waits: the bot
    /// joins the channel, posts the thread's root (neutralised), and the user's answer is the
    /// command's response only, with a link to the thread; the plugin sends no ephemeral post
    /// of its own (the server makes one from the response).
    #[tokio::test]
    async fn start_answers_once_with_the_thread_and_the_bot_joins_first() {
        use crate::mattermost::model::{Channel, ChannelMember};
        use crate::mattermost::rpc_types::*;

        let dir = temp_dir("start");
        let project = dir.join("root/proj @channel");
        std::fs::create_dir_all(&project).unwrap();
        let config = quiet_cli_config(&dir, serde_json::json!({}));
        let calls = Arc::new(Mutex::new(Vec::<String>::new()));
        let posts = Arc::new(Mutex::new(Vec::<Post>::new()));
        let (c1, c2, c3, c4, c5) = (
            calls.clone(),
            calls.clone(),
            calls.clone(),
            calls.clone(),
            calls.clone(),
        );
        let p1 = posts.clone();
        let server = kv_api()
            .method("Plugin.GetChannelMember", move |a: TwoStringArgs| {
                c1.lock().unwrap().push(format!("GetChannelMember {}", a.b));
                // The user is a member, the bot is not yet.
                let member = a.b == "u1";
                async move {
                    Ok::<_, String>(GetChannelMemberReturns {
                        a: member.then(ChannelMember::default),
                        b: (!member).then(|| crate::mattermost::model::AppError {
                            status_code: 404,
                            ..Default::default()
                        }),
                    })
                }
            })
            .method("Plugin.GetChannel", move |a: StringArgs| {
                c2.lock().unwrap().push("GetChannel".into());
                async move {
                    Ok::<_, String>(GetChannelReturns {
                        a: Some(Channel {
                            id: a.a,
                            team_id: "t1".into(),
                            r#type: "O".into(),
                            ..Default::default()
                        }),
                        b: None,
                    })
                }
            })
            .method("Plugin.AddChannelMember", move |a: TwoStringArgs| {
                c3.lock().unwrap().push(format!("AddChannelMember {}", a.b));
                async {
                    Ok::<_, String>(GetChannelMemberReturns {
                        a: Some(ChannelMember::default()),
                        b: None,
                    })
                }
            })
            .method("Plugin.CreatePost", move |a: PostArgs| {
                c4.lock().unwrap().push("CreatePost".into());
                let mut post = a.a.unwrap_or_default();
                post.id = "root1".into();
                p1.lock().unwrap().push(post.clone());
                async move {
                    Ok::<_, String>(PostReturns {
                        a: Some(post),
                        b: None,
                    })
                }
            })
            .method("Plugin.SendEphemeralPost", move |a: EphemeralPostArgs| {
                c5.lock().unwrap().push("SendEphemeralPost".into());
                async move { Ok::<_, String>(EphemeralPostReturns { a: a.b }) }
            });
        let chat = ChatService::open(
            crate::mattermost::api::in_process(server),
            "bot".into(),
            &config,
        )
        .await
        .expect("opens");
        let answer = chat
            .execute(
                &config,
                &CommandArgs {
                    command: format!("/claude start \"{}\"", project.display()),
                    channel_id: "c1".into(),
                    user_id: "u1".into(),
                    team_id: "t1".into(),
                    site_url: "https://chat.example.com/".into(),
                    ..Default::default()
                },
            )
            .await;
        chat.shutdown().await;
        assert_eq!(answer.response_type, "ephemeral");
        let canonical = std::fs::canonicalize(&project).unwrap();
        // The answer passed the neutraliser: the directory's `@channel` is inert.
        assert_eq!(
            answer.text,
            format!(
                "Session started in `{}`. Its thread: https://chat.example.com/_redirect/pl/root1 (reply there to talk to Claude).",
                canonical.display().to_string().replace("@channel", "@\u{200D}channel")
            )
        );
        assert_eq!(
            calls.lock().unwrap().clone(),
            [
                "GetChannelMember u1",
                "GetChannelMember bot",
                "GetChannel",
                "AddChannelMember bot",
                "CreatePost"
            ]
        );
        // The root post names the path, whose `@channel` is inert.
        let root = posts.lock().unwrap()[0].message.clone();
        assert!(root.contains("proj @\u{200D}channel"), "{root}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn cli_env_always_disables_telemetry() {
        let config = crate::config::load(
            br#"{"AnthropicApiKey": "sk-1", "AnthropicBaseUrl": "http://127.0.0.1:1"}"#,
        )
        .unwrap();
        let env = cli_env(&config, Path::new("/data"));
        assert!(
            env.disable_telemetry && env.disable_autoupdater && env.disable_nonessential_traffic
        );
        assert_eq!(env.home_dir, Path::new("/data/home"));
        assert!(env
            .anthropic
            .contains(&("ANTHROPIC_BASE_URL".into(), "http://127.0.0.1:1".into())));
        assert!(env
            .anthropic
            .contains(&("ANTHROPIC_API_KEY".into(), "sk-1".into())));
    }

    /// An answer that echoes a 100 KB argument, a bidi override and a link stays one post long
    /// and shows them inert.
    #[test]
    fn command_answers_pass_the_neutraliser() {
        let hostile = format!(
            "x\u{202E}[see](http://evil.example) @all {}",
            "y".repeat(100_000)
        );
        let answer = ephemeral(format!("`{hostile}` is not under an allowed project root")).text;
        assert!(answer.chars().count() <= super::super::render::POST_MAX_CHARS);
        assert!(answer.contains("[U+202E]") && !answer.contains('\u{202E}'));
        assert!(answer.contains("]\\(http") && answer.contains("@\u{200D}all"));
        assert!(answer.ends_with("more characters not shown)"));
        let click = ephemeral_json(&hostile);
        assert!(click["ephemeral_text"].as_str().unwrap().chars().count() <= 16_383);
    }

    /// A 9 MB thread and a 1 MB file become at most MaxContextKB of context each, and the
    /// answers say what was left out.
    #[tokio::test]
    async fn context_is_cut_at_the_setting_with_a_message() {
        use crate::mattermost::model::{Channel, ChannelMember, PostList, User};
        use crate::mattermost::rpc_types::*;

        let dir = temp_dir("context");
        let project = dir.join("root/proj");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("big.txt"), "line of text\n".repeat(80_000)).unwrap();
        let config = quiet_cli_config(&dir, serde_json::json!({"MaxContextKB": 16}));
        // 90 posts of 100 KB: a 9 MB thread.
        let thread: std::collections::BTreeMap<String, Post> = (0..90)
            .map(|i| {
                let post = Post {
                    id: format!("t{i:02}"),
                    channel_id: "c1".into(),
                    user_id: "u1".into(),
                    create_at: i,
                    message: format!("{i:02}{}", "z".repeat(100_000)),
                    ..Default::default()
                };
                (post.id.clone(), post)
            })
            .collect();
        let server = kv_api()
            .method("Plugin.GetChannelMember", |_: TwoStringArgs| async {
                Ok::<_, String>(GetChannelMemberReturns {
                    a: Some(ChannelMember::default()),
                    b: None,
                })
            })
            .method("Plugin.GetChannel", |a: StringArgs| async move {
                Ok::<_, String>(GetChannelReturns {
                    a: Some(Channel {
                        id: a.a,
                        r#type: "O".into(),
                        ..Default::default()
                    }),
                    b: None,
                })
            })
            .method("Plugin.CreatePost", |a: PostArgs| async move {
                let mut post = a.a.unwrap_or_default();
                post.id = "root1".into();
                Ok::<_, String>(PostReturns {
                    a: Some(post),
                    b: None,
                })
            })
            .method("Plugin.GetPostThread", move |_: StringArgs| {
                let posts = thread.clone();
                async move {
                    Ok::<_, String>(GetPostThreadReturns {
                        a: Some(PostList {
                            posts: Some(posts),
                            ..Default::default()
                        }),
                        b: None,
                    })
                }
            })
            .method(
                "Plugin.HasPermissionToChannel",
                |_: HasPermissionToChannelArgs| async { Ok::<_, String>(BoolReturns { a: true }) },
            )
            .method("Plugin.GetUser", |a: StringArgs| async move {
                Ok::<_, String>(GetUserReturns {
                    a: Some(User {
                        id: a.a,
                        username: "alice".into(),
                        ..Default::default()
                    }),
                    b: None,
                })
            });
        let chat = ChatService::open(
            crate::mattermost::api::in_process(server),
            "bot".into(),
            &config,
        )
        .await
        .expect("opens");
        let run = |command: String| {
            let (chat, config) = (chat.clone(), config.clone());
            async move {
                chat.execute(
                    &config,
                    &CommandArgs {
                        command,
                        channel_id: "c1".into(),
                        user_id: "u1".into(),
                        team_id: "t1".into(),
                        ..Default::default()
                    },
                )
                .await
                .text
            }
        };
        run(format!("/claude start {}", project.display())).await;
        let thread_answer = run("/claude context thread t00".into()).await;
        let file_answer = run("/claude context file big.txt".into()).await;
        let blocks = chat
            .state
            .lock()
            .unwrap()
            .context
            .values()
            .next()
            .cloned()
            .unwrap();
        chat.shutdown().await;
        assert!(
            thread_answer.contains("90 posts, 8.6 MB")
                && thread_answer.contains("cut at the context limit of 16 KB (MaxContextKB)")
                && thread_answer.contains("89 later post(s) and the end of the last one added"),
            "{thread_answer}"
        );
        assert!(
            file_answer.starts_with("The first 16 KB of `big.txt` (1015 KB) were added"),
            "{file_answer}"
        );
        assert_eq!(blocks.len(), 2);
        for block in &blocks {
            assert!(block.len() <= 16 * 1024 + 200, "{}", block.len());
        }
    }
}
