//! The product as Mattermost sees it: the [`Hooks`] implementation: the bot,
//! the `/claude` command, the validated configuration, the HTTP API router
//! (health, approval clicks and dialogs, metrics), thread replies. Sessions live in the
//! [`ChatService`] opened on activation and shut down on deactivation. The app owns the
//! process's [`Metrics`]: it times its hooks, counts HTTP answers and serves them.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Instant;

use tokio::task::JoinHandle;

use crate::chat::authz::{self, Action, Role};
use crate::chat::command::{self, ChatCommand};
use crate::chat::service::ChatService;
use crate::cluster::{
    self,
    forward::{self, Forwarder},
};
use crate::config::{self, Config};
use crate::http::{self, Auth, BoxFuture, HttpError, HttpResult, Request, Router};
use crate::mattermost::api::Api;
use crate::mattermost::hooks::{Hook, HookError, HookFuture, Hooks};
use crate::mattermost::http::{ResponseWriter, ServeHttpRequest};
use crate::mattermost::model::*;
use crate::mattermost::server_config;
use crate::metrics::{self, Metrics};
use crate::rpc::gob::Value;

/// Environment switch for the diagnostics routes (test harnesses only).
pub const DIAGNOSTICS_ENV: &str = "MM_CLAUDE_CODE_DIAGNOSTICS";
pub use crate::chat::command::TRIGGER;
pub const BOT_USERNAME: &str = "claude";
pub const BOT_DISPLAY_NAME: &str = "Claude Code";
pub const BOT_DESCRIPTION: &str = "Runs Claude Code sessions for channels.";

/// The hooks this plugin handles (Plugin.Implemented).
pub const IMPLEMENTED: &[Hook] = &[
    Hook::OnActivate,
    Hook::OnDeactivate,
    Hook::OnConfigurationChange,
    Hook::ExecuteCommand,
    Hook::ServeHTTP,
    Hook::MessageHasBeenPosted,
    Hook::OnPluginClusterEvent,
    Hook::ConfigurationWillBeSaved,
    Hook::ServeMetrics,
];

/// The plugin. One per process.
pub struct App {
    api: OnceLock<Api>,
    config: RwLock<Arc<Config>>,
    bot_user_id: OnceLock<String>,
    chat: RwLock<Option<Arc<ChatService>>>,
    router: Router<App>,
    metrics: Arc<Metrics>,
    /// The task folding the active service's session events into the metrics.
    observer: Mutex<Option<JoinHandle<()>>>,
    /// Calls to and from the other nodes of a cluster (set on activation).
    forwarder: RwLock<Option<Arc<Forwarder>>>,
    /// The app itself, for the tasks that serve calls other nodes forward.
    me: Weak<App>,
}

impl App {
    /// `diagnostics` mounts the /api/v1/diag routes (see [`crate::http::diag`]).
    pub fn new(diagnostics: bool) -> Arc<App> {
        let mut router = Router::new()
            .route("GET", "/api/v1/health", Auth::Public, health)
            .route("GET", "/api/v1/metrics", Auth::User, metrics_route);
        router = http::v1::mount(router);
        if diagnostics {
            router = http::diag::mount(router);
        }
        Arc::new_cyclic(|me| App {
            api: OnceLock::new(),
            config: RwLock::new(Arc::new(Config::default())),
            bot_user_id: OnceLock::new(),
            chat: RwLock::new(None),
            router,
            metrics: Arc::new(Metrics::new()),
            observer: Mutex::new(None),
            forwarder: RwLock::new(None),
            me: me.clone(),
        })
    }

    /// Reads [`DIAGNOSTICS_ENV`] (exactly `1` enables).
    pub fn from_env() -> Arc<App> {
        App::new(std::env::var(DIAGNOSTICS_ENV).is_ok_and(|v| v == "1"))
    }

    /// The HTTP routes (`openapi.json` is held equal to them).
    #[cfg(test)]
    pub(crate) fn router(&self) -> &Router<App> {
        &self.router
    }

    /// The current configuration (a snapshot; a later change does not alter it).
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The plugin API, once activation began.
    pub fn api(&self) -> Result<&Api, HttpError> {
        self.api
            .get()
            .ok_or_else(|| HttpError::new(503, "the plugin is not activated yet"))
    }

    /// The chat service, while activated.
    pub fn chat(&self) -> Option<Arc<ChatService>> {
        self.chat.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn bot_user_id(&self) -> Option<&str> {
        self.bot_user_id.get().map(String::as_str)
    }

    /// Replaces the task that observes the sessions (the previous service's one ends).
    fn set_observer(&self, task: Option<JoinHandle<()>>) {
        let old = std::mem::replace(
            &mut *self.observer.lock().unwrap_or_else(|p| p.into_inner()),
            task,
        );
        if let Some(old) = old {
            old.abort();
        }
    }

    /// Whether Mattermost holds `user_id` for a system admin (`manage_system`).
    async fn is_system_admin(&self, user_id: &str) -> Result<bool, HttpError> {
        Ok(self
            .api()?
            .has_permission_to(user_id, "manage_system")
            .await?)
    }

    /// Runs one hook's work and records how long it took.
    async fn timed<T>(&self, hook: Hook, work: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = work.await;
        self.metrics.hook_duration(hook.name(), started.elapsed());
        out
    }

    /// The metrics text, with the gauges read now: the sessions whose CLI runs (the engine's
    /// own view) and the outbox backlog (a count on the store's pending index). Reading them
    /// at scrape time keeps them right without a hook in every place that changes them.
    async fn scrape(&self) -> String {
        let (active, backlog) = match self.chat() {
            Some(chat) => {
                let engine = chat.engine();
                let active = engine
                    .list()
                    .await
                    .iter()
                    .filter(|s| s.state.has_process())
                    .count();
                let backlog = engine
                    .store()
                    .outbox_backlog()
                    .await
                    .inspect_err(|e| tracing::warn!("metrics: counting the outbox failed: {e}"))
                    .ok();
                (active, backlog)
            }
            None => (0, None),
        };
        self.metrics.set_gauges(active, backlog);
        self.metrics.encode()
    }

    async fn write_metrics(&self, w: &mut ResponseWriter) -> HttpResult {
        let text = self.scrape().await;
        w.set_header("Content-Type", metrics::CONTENT_TYPE);
        w.write_header(200).await.map_err(http::write_failed)?;
        w.write(text.as_bytes()).await.map_err(http::write_failed)
    }

    async fn activate(&self, api: Api) -> Result<(), HookError> {
        let _ = self.api.set(api.clone());
        let bot_id = api
            .ensure_bot_user(Bot {
                username: BOT_USERNAME.into(),
                display_name: BOT_DISPLAY_NAME.into(),
                description: BOT_DESCRIPTION.into(),
                ..Default::default()
            })
            .await?;
        let _ = self.bot_user_id.set(bot_id.clone());
        api.register_command(slash_command()).await?;
        // A second activation in the same process: the old service lets go first.
        let old = self.chat.write().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(old) = old {
            old.shutdown().await;
        }
        let node = cluster::node::node_id(&api, env!("PLUGIN_ID"))
            .await
            .map_err(|e| {
                HookError::with_status(500, format!("claude-code could not start: {e}"))
            })?;
        *self.forwarder.write().unwrap_or_else(|p| p.into_inner()) = Some(Forwarder::new(
            Arc::new(api.clone()),
            node.id.clone(),
            forward::FORWARD_TIMEOUT,
        ));
        let chat = ChatService::open(api.clone(), bot_id.clone(), &self.config(), node)
            .await
            .map_err(|e| {
                HookError::with_status(500, format!("claude-code could not start: {e}"))
            })?;
        *self.chat.write().unwrap_or_else(|p| p.into_inner()) = Some(chat.clone());
        self.set_observer(Some(self.metrics.follow(chat.engine())));
        // A change saved while the service opened reached no service yet.
        chat.apply_config(&self.config());
        tracing::info!(bot_user_id = %bot_id, "claude-code ready");
        Ok(())
    }

    async fn reload_config(&self, api: &Api) -> Result<(), HookError> {
        let _ = self.api.set(api.clone());
        let raw = api.load_plugin_configuration().await?;
        let cfg = config::load(&raw).map_err(|e| {
            HookError::with_status(400, format!("invalid plugin configuration: {e}"))
        })?;
        tracing::info!(
            allowed_project_roots = cfg.allowed_project_roots.len(),
            claude_cli_path = %cfg.claude_cli_path,
            api_key_set = cfg.anthropic_api_key.is_some(),
            "configuration loaded"
        );
        // Under the lock, so that two quick saves reach the service in the order they are kept.
        let mut current = self.config.write().unwrap_or_else(|p| p.into_inner());
        if let Some(chat) = self.chat() {
            chat.apply_config(&cfg);
        }
        *current = Arc::new(cfg);
        Ok(())
    }
}

/// `/claude` with its autocomplete tree (built from the chat command table).
pub fn slash_command() -> Command {
    let tree = command::autocomplete_data();
    Command {
        trigger: TRIGGER.into(),
        auto_complete: true,
        auto_complete_desc: tree.help_text.clone(),
        auto_complete_hint: tree.hint.clone(),
        display_name: BOT_DISPLAY_NAME.into(),
        description: BOT_DESCRIPTION.into(),
        autocomplete_data: Some(tree),
        ..Default::default()
    }
}

/// The response to a `/claude ...` command line while the plugin is not
/// activated: help is served; every other valid command says so, and invalid
/// ones get the parser's "type this instead" message.
pub fn command_response(command_line: &str) -> CommandResponse {
    let text = match command::parse(command_line) {
        Ok(ChatCommand::Help) => command::help_text(),
        Ok(other) => format!(
            "`/{TRIGGER} {}` is not available: the plugin is not activated. Type `/{TRIGGER} help` to see what Claude Code does.",
            other.subcommand().spec().name
        ),
        Err(e) => e.to_string(),
    };
    CommandResponse {
        response_type: "ephemeral".into(),
        text,
        ..Default::default()
    }
}

/// `GET /api/v1/metrics`: the ServeMetrics text, for system admins (most servers have no
/// metrics listener: it needs a license).
fn metrics_route<'a>(
    app: &'a App,
    req: Request,
    w: &'a mut ResponseWriter,
) -> BoxFuture<'a, HttpResult> {
    Box::pin(async move {
        let mut roles = vec![Role::Anyone];
        if app.is_system_admin(req.user()?).await? {
            roles.push(Role::SystemAdmin);
        }
        if let authz::Decision::Refuse(text) =
            authz::allowed(&roles, Action::Metrics, app.config().who_can_approve)
        {
            return Err(HttpError::new(403, text));
        }
        app.write_metrics(w).await
    })
}

fn health<'a>(_: &'a App, _: Request, w: &'a mut ResponseWriter) -> BoxFuture<'a, HttpResult> {
    Box::pin(async move {
        let v = serde_json::json!({ "status": "ok", "version": env!("PLUGIN_VERSION") });
        http::write_json(w, 200, &v).await
    })
}

impl Hooks for App {
    fn implemented(&self) -> &'static [Hook] {
        IMPLEMENTED
    }

    fn on_configuration_change<'a>(
        &'a self,
        api: &'a Api,
    ) -> HookFuture<'a, Result<(), HookError>> {
        Box::pin(self.timed(Hook::OnConfigurationChange, self.reload_config(api)))
    }

    /// Refuses a save whose settings for this plugin would not load, with the reason that
    /// OnConfigurationChange would otherwise only log.
    fn configuration_will_be_saved(&self, config: Value) -> HookFuture<'_, Result<(), HookError>> {
        Box::pin(async move {
            let settings = server_config::plugin_settings(&config, env!("PLUGIN_ID"))
                .map(|s| s.to_string())
                .unwrap_or_default();
            config::load(settings.as_bytes())
                .map(|_| ())
                .map_err(|e| HookError::with_status(400, format!("{BOT_DISPLAY_NAME}: {e}")))
        })
    }

    fn on_activate(&self, api: Api) -> HookFuture<'_, Result<(), HookError>> {
        Box::pin(self.activate(api))
    }

    fn on_deactivate(&self) -> HookFuture<'_, Result<(), HookError>> {
        Box::pin(async {
            tracing::info!("deactivating");
            self.set_observer(None);
            let chat = self.chat.write().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(chat) = chat {
                chat.shutdown().await;
            }
            Ok(())
        })
    }

    fn execute_command(
        &self,
        _ctx: Context,
        args: CommandArgs,
    ) -> HookFuture<'_, Result<CommandResponse, HookError>> {
        Box::pin(self.timed(Hook::ExecuteCommand, async move {
            Ok(match self.chat() {
                Some(chat) => self.command_in_cluster(&chat, &args).await,
                None => command_response(&args.command),
            })
        }))
    }

    fn message_has_been_posted(&self, _ctx: Context, post: Post) -> HookFuture<'_, ()> {
        Box::pin(self.timed(Hook::MessageHasBeenPosted, async move {
            if let Some(chat) = self.chat() {
                if !self.post_in_cluster(&chat, &post).await {
                    chat.on_post(&post, &self.config()).await;
                }
            }
        }))
    }

    fn on_plugin_cluster_event(
        &self,
        _ctx: Context,
        event: PluginClusterEvent,
    ) -> HookFuture<'_, ()> {
        Box::pin(async move { self.cluster_event(&event) })
    }

    fn serve_http<'a>(
        &'a self,
        _ctx: Context,
        req: ServeHttpRequest,
        w: &'a mut ResponseWriter,
    ) -> HookFuture<'a, ()> {
        Box::pin(self.timed(Hook::ServeHTTP, async move {
            let req = match self.chat() {
                Some(chat) if chat.clustered() => match self.http_in_cluster(&chat, req, w).await {
                    forwarding::HttpRoute::Local(req) => req,
                    forwarding::HttpRoute::Forwarded(route, status) => {
                        self.metrics.http_request(&route, status);
                        return;
                    }
                },
                _ => req,
            };
            let route = self
                .router
                .dispatch(self, Request::from_serve_http(req), w)
                .await;
            // Nothing written: the host answers 200.
            self.metrics.http_request(route, w.status().unwrap_or(200));
        }))
    }

    /// The server's metrics listener: its own access rules apply (it is an admin's port), so
    /// no user is asked for.
    fn serve_metrics<'a>(
        &'a self,
        _ctx: Context,
        _req: ServeHttpRequest,
        w: &'a mut ResponseWriter,
    ) -> HookFuture<'a, ()> {
        Box::pin(self.timed(Hook::ServeMetrics, async move {
            if let Err(e) = self.write_metrics(w).await {
                tracing::debug!("ServeMetrics: {e}");
            }
        }))
    }

    fn shutdown(&self) -> HookFuture<'_, ()> {
        Box::pin(async {
            tracing::info!("shutting down");
            self.set_observer(None);
            let chat = self.chat.write().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(chat) = chat {
                chat.shutdown().await;
            }
        })
    }
}

mod forwarding;
#[cfg(test)]
mod tests;
