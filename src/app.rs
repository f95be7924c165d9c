//! The product as Mattermost sees it: the [`Hooks`] implementation: the bot,
//! the `/claude` command, the validated configuration, the HTTP API router
//! (health, approval clicks and dialogs, metrics), thread replies. Sessions live in the
//! [`ChatService`] opened on activation and shut down on deactivation. The app owns the
//! process's [`Metrics`]: it times its hooks, counts HTTP answers and serves them.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;

use tokio::task::JoinHandle;

use crate::chat::authz::{self, Action, Role};
use crate::chat::command::{self, ChatCommand};
use crate::chat::service::ChatService;
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
}

impl App {
    /// `diagnostics` mounts the /api/v1/diag routes (see [`crate::http::diag`]).
    pub fn new(diagnostics: bool) -> App {
        let mut router = Router::new()
            .route("GET", "/api/v1/health", Auth::Public, health)
            .route(
                "POST",
                "/api/v1/actions/approval",
                Auth::User,
                approval_click,
            )
            .route(
                "POST",
                "/api/v1/actions/approval/dialog",
                Auth::User,
                approval_dialog,
            )
            .route("GET", "/api/v1/metrics", Auth::User, metrics_route);
        router = http::v1::mount(router);
        if diagnostics {
            router = http::diag::mount(router);
        }
        App {
            api: OnceLock::new(),
            config: RwLock::new(Arc::new(Config::default())),
            bot_user_id: OnceLock::new(),
            chat: RwLock::new(None),
            router,
            metrics: Arc::new(Metrics::new()),
            observer: Mutex::new(None),
        }
    }

    /// Reads [`DIAGNOSTICS_ENV`] (exactly `1` enables).
    pub fn from_env() -> App {
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
        let chat = ChatService::open(api.clone(), bot_id.clone(), &self.config())
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

/// The request body as JSON (at most 1 MiB).
async fn json_body(req: &mut Request) -> Result<serde_json::Value, HttpError> {
    let bytes = req
        .body
        .read_to_end_limited(1 << 20)
        .await
        .map_err(|e| HttpError::bad_request(format!("body: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| HttpError::bad_request(format!("not JSON: {e}")))
}

/// What a button click or dialog submission needs: the chat service (the plugin must be
/// active), the user the server vouches for, and the JSON body Mattermost sent.
async fn chat_action(
    app: &App,
    req: &mut Request,
) -> Result<(Arc<ChatService>, String, serde_json::Value), HttpError> {
    let chat = app
        .chat()
        .ok_or_else(|| HttpError::new(503, "the plugin is not activated yet"))?;
    let body = json_body(req).await?;
    let user = req.user()?.to_owned();
    Ok((chat, user, body))
}

fn approval_click<'a>(
    app: &'a App,
    mut req: Request,
    w: &'a mut ResponseWriter,
) -> BoxFuture<'a, HttpResult> {
    Box::pin(async move {
        let (chat, user, body) = chat_action(app, &mut req).await?;
        let answer = chat.approval_click(&app.config(), &user, &body).await;
        http::write_json(w, 200, &answer).await
    })
}

fn approval_dialog<'a>(
    app: &'a App,
    mut req: Request,
    w: &'a mut ResponseWriter,
) -> BoxFuture<'a, HttpResult> {
    Box::pin(async move {
        let (chat, user, body) = chat_action(app, &mut req).await?;
        let answer = chat.approval_dialog(&app.config(), &user, &body).await;
        http::write_json(w, 200, &answer).await
    })
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
                Some(chat) => chat.execute(&self.config(), &args).await,
                None => command_response(&args.command),
            })
        }))
    }

    fn message_has_been_posted(&self, _ctx: Context, post: Post) -> HookFuture<'_, ()> {
        Box::pin(self.timed(Hook::MessageHasBeenPosted, async move {
            if let Some(chat) = self.chat() {
                chat.on_post(&post, &self.config()).await;
            }
        }))
    }

    fn on_plugin_cluster_event(
        &self,
        _ctx: Context,
        event: PluginClusterEvent,
    ) -> HookFuture<'_, ()> {
        Box::pin(async move {
            tracing::debug!(id = %event.id, bytes = event.data.len(), "cluster event (no handler yet)");
        })
    }

    fn serve_http<'a>(
        &'a self,
        _ctx: Context,
        req: ServeHttpRequest,
        w: &'a mut ResponseWriter,
    ) -> HookFuture<'a, ()> {
        Box::pin(self.timed(Hook::ServeHTTP, async move {
            let req = Request::from_serve_http(req);
            let route = self.router.dispatch(self, req, w).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implemented_list() {
        let names: Vec<&str> = App::new(false)
            .implemented()
            .iter()
            .map(|h| h.name())
            .collect();
        assert_eq!(
            names,
            [
                "OnActivate",
                "OnDeactivate",
                "OnConfigurationChange",
                "ExecuteCommand",
                "ServeHTTP",
                "MessageHasBeenPosted",
                "OnPluginClusterEvent",
                "ConfigurationWillBeSaved",
                "ServeMetrics"
            ]
        );
    }

    #[test]
    fn help_and_other_commands() {
        for line in ["/claude help", "/claude", "  /claude   help  extra"] {
            let r = command_response(line);
            assert_eq!(r.response_type, "ephemeral");
            assert!(r.text.starts_with("Claude Code"), "{}", r.text);
            assert!(r.text.contains("/claude start"), "{}", r.text);
        }
        let r = command_response("/claude status");
        assert_eq!(r.response_type, "ephemeral");
        assert!(
            r.text.starts_with("`/claude status` is not available"),
            "{}",
            r.text
        );
        let r = command_response("/claude frobnicate now");
        assert!(
            r.text.starts_with("`/claude ask` is not available"),
            "{}",
            r.text
        );
        let r = command_response("/claude start");
        assert!(r.text.contains("needs a project path"), "{}", r.text);
    }

    /// `model.AutocompleteData.IsValid` of the server (public/model/command_autocomplete.go),
    /// rule for rule and with its messages; RegisterCommand runs it on the plugin's tree and
    /// a failure stops the activation.
    fn server_is_valid(ad: &AutocompleteData) -> Result<(), &'static str> {
        if ad.trigger.is_empty() {
            return Err("An empty command name in the autocomplete data");
        }
        if ad.trigger.to_lowercase() != ad.trigger {
            return Err("Command should be lowercase");
        }
        if !["system_admin", "system_user", ""].contains(&ad.role_id.as_str()) {
            return Err("Wrong role in the autocomplete data");
        }
        if !ad.arguments.is_empty() && !ad.sub_commands.is_empty() {
            return Err("Command can't have arguments and subcommands");
        }
        let mut named_seen = false;
        for arg in &ad.arguments {
            if !arg.name.is_empty() {
                named_seen = true;
            } else if named_seen {
                return Err("Named argument should not be before positional argument");
            }
            match arg.r#type.as_str() {
                "DynamicList" => {
                    let Any::AutocompleteDynamicList(list) = &arg.data else {
                        return Err("Not a proper DynamicList type argument");
                    };
                    // Go's url.Parse refuses control characters; a relative URL is fine.
                    if list.fetch_url.chars().any(char::is_control) {
                        return Err("FetchURL is not a proper url");
                    }
                }
                "StaticList" => {
                    let Any::AutocompleteStaticList(list) = &arg.data else {
                        return Err("Not a proper StaticList type argument");
                    };
                    if list.possible_arguments.iter().any(|i| i.item.is_empty()) {
                        return Err("Possible argument name not set in StaticList argument");
                    }
                }
                "TextInput" => {
                    if !matches!(arg.data, Any::AutocompleteText(_)) {
                        return Err("Not a proper TextInput type argument");
                    }
                    if arg.name.is_empty() && !arg.required {
                        return Err("Positional argument can not be optional");
                    }
                }
                // The server does not check other types.
                _ => {}
            }
        }
        ad.sub_commands.iter().try_for_each(server_is_valid)
    }

    #[test]
    fn the_mirror_of_is_valid_refuses_what_the_server_refuses() {
        let text = |name: &str, required: bool| AutocompleteArg {
            name: name.into(),
            r#type: "TextInput".into(),
            required,
            data: Any::AutocompleteText(AutocompleteTextArg::default()),
            ..Default::default()
        };
        let node = |trigger: &str, arguments: Vec<AutocompleteArg>| AutocompleteData {
            trigger: trigger.into(),
            role_id: "system_user".into(),
            arguments,
            ..Default::default()
        };
        let check = |sub: AutocompleteData| {
            server_is_valid(&AutocompleteData {
                sub_commands: vec![sub],
                ..node("claude", vec![])
            })
        };
        // The tree that kept the plugin from activating: `files [dir]`.
        assert_eq!(
            check(node("files", vec![text("", false)])),
            Err("Positional argument can not be optional")
        );
        assert_eq!(check(node("files", vec![text("", true)])), Ok(()));
        assert_eq!(check(node("files", vec![text("dir", false)])), Ok(()));
        assert_eq!(
            check(node("files", vec![text("dir", false), text("", true)])),
            Err("Named argument should not be before positional argument")
        );
        assert_eq!(
            check(node("", vec![])),
            Err("An empty command name in the autocomplete data")
        );
        assert_eq!(
            check(node("Files", vec![])),
            Err("Command should be lowercase")
        );
        assert_eq!(
            check(AutocompleteData {
                role_id: "team_user".into(),
                ..node("files", vec![])
            }),
            Err("Wrong role in the autocomplete data")
        );
        assert_eq!(
            check(AutocompleteData {
                sub_commands: vec![node("x", vec![])],
                ..node("files", vec![text("", true)])
            }),
            Err("Command can't have arguments and subcommands")
        );
        let typed = |r#type: &str, data: Any| AutocompleteArg {
            r#type: r#type.into(),
            required: true,
            data,
            ..Default::default()
        };
        assert_eq!(
            check(node("m", vec![typed("StaticList", Any::Nil)])),
            Err("Not a proper StaticList type argument")
        );
        assert_eq!(
            check(node(
                "m",
                vec![typed(
                    "StaticList",
                    Any::AutocompleteStaticList(AutocompleteStaticListArg {
                        possible_arguments: vec![AutocompleteListItem::default()],
                    })
                )]
            )),
            Err("Possible argument name not set in StaticList argument")
        );
        assert_eq!(
            check(node("m", vec![typed("TextInput", Any::Nil)])),
            Err("Not a proper TextInput type argument")
        );
        assert_eq!(
            check(node("m", vec![typed("DynamicList", Any::Nil)])),
            Err("Not a proper DynamicList type argument")
        );
    }

    #[test]
    fn autocomplete_tree_is_valid_for_the_server() {
        let c = slash_command();
        // RegisterPluginCommand refuses an empty trigger before looking at the tree. It does
        // not run Command.IsValid, but the command passes its plugin-relevant rules too.
        assert_eq!(c.trigger, "claude");
        assert!((1..=128).contains(&c.trigger.len()) && !c.trigger.starts_with('/'));
        assert!(!c.trigger.contains(' '));
        assert!(c.display_name.len() <= 64 && c.description.len() <= 128);
        let ad = c.autocomplete_data.unwrap();
        assert_eq!(server_is_valid(&ad), Ok(()));
        let names: Vec<&str> = ad.sub_commands.iter().map(|s| s.trigger.as_str()).collect();
        assert_eq!(
            names,
            [
                "start",
                "stop",
                "status",
                "ask",
                "interrupt",
                "context",
                "files",
                "file",
                "mode",
                "model",
                "history",
                "help"
            ]
        );
        // Still useful: hints everywhere, the modes as a list, `start`'s options by name.
        let sub = |name: &str| ad.sub_commands.iter().find(|s| s.trigger == name).unwrap();
        assert_eq!(sub("files").hint, "[dir]");
        assert_eq!(sub("context").sub_commands[0].hint, "[permalink]");
        assert!(matches!(
            sub("mode").arguments[0].data,
            Any::AutocompleteStaticList(_)
        ));
        let start: Vec<&str> = sub("start")
            .arguments
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(start, ["", "model", "mode"]);
    }

    struct NoDial;
    impl crate::mattermost::hooks::Dialer for NoDial {
        fn dial(
            &self,
            _: u32,
        ) -> HookFuture<'_, std::io::Result<Box<dyn crate::mattermost::http::Duplex>>> {
            Box::pin(async { Err(std::io::Error::other("no broker in this test")) })
        }
    }

    /// The server's calls as Go encodes them (tests/fixtures/gob/README.md): an invalid
    /// MaxConcurrentSessions is refused with the validation's text, a valid entry and a
    /// config without one are accepted (nil error, nil config).
    #[tokio::test]
    async fn configuration_will_be_saved_refuses_settings_that_would_not_load() {
        use crate::mattermost::rpc_types::ConfigurationWillBeSavedReturns;
        use crate::rpc::gob::stream::StreamDecoder;
        use crate::rpc::netrpc::ResponseHeader;
        use tokio::io::AsyncWriteExt;

        let (host, plugin) = tokio::io::duplex(1 << 16);
        let server =
            crate::mattermost::hooks::hooks_server(Arc::new(App::new(false)), Arc::new(NoDial));
        tokio::spawn(async move { server.serve(plugin).await });
        let (read, mut write) = tokio::io::split(host);
        let calls: &[u8] =
            include_bytes!("../tests/fixtures/gob/configuration_will_be_saved_calls.gob");
        tokio::spawn(async move { write.write_all(calls).await });
        let mut replies = StreamDecoder::new(read);
        let mut errors = std::collections::BTreeMap::new();
        for _ in 0..3 {
            let header: ResponseHeader = replies.decode().await.unwrap().unwrap();
            assert_eq!(header.error, "", "seq {}", header.seq);
            assert_eq!(header.service_method, "Plugin.ConfigurationWillBeSaved");
            let reply: ConfigurationWillBeSavedReturns = replies.decode().await.unwrap().unwrap();
            errors.insert(header.seq, reply.b);
        }
        let Some(Any::AppError(e)) = errors.get(&1) else {
            panic!("the invalid settings were accepted: {errors:?}")
        };
        assert_eq!(
            e.message,
            "Claude Code: setting MaxConcurrentSessions must be between 1 and 100, got 0"
        );
        assert_eq!(e.status_code, 400);
        assert_eq!(e.r#where, "ConfigurationWillBeSaved");
        // Shown as it is: the server would otherwise look the message up as an i18n id.
        assert!(e.skip_translation);
        assert_eq!(errors.get(&2), Some(&Any::Nil));
        assert_eq!(errors.get(&3), Some(&Any::Nil));
    }
}
