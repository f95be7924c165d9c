//! The hooks a plugin implements, and the net/rpc service `Plugin` that the
//! host calls them through (server/public/plugin client_rpc.go, the
//! `hooksRPCServer` side).
//!
//! A plugin implements [`Hooks`] and lists what it implements in
//! [`Hooks::implemented`]; [`hooks_server`] turns it into the net/rpc server
//! for the hooks stream. That layer owns the protocol work: dialing the API
//! and driver streams on OnActivate, the ServeHTTP streams, and turning every
//! failure into a `*model.AppError` reply ([`HookError::to_app_error`], the
//! one place that mapping happens).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use super::api::{Api, ApiError};
use super::http::{Body, Duplex, ResponseWriter, RpcSink, ServeHttpRequest};
use super::model::*;
use super::rpc_types::*;
use crate::rpc::gob::Value;
use crate::rpc::netrpc::{Client, Empty, Server};

/// A boxed, sendable future: hook methods return these so the trait stays
/// object-safe (`Arc<dyn Hooks>`) and their futures can be spawned.
pub type HookFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The hooks this layer can dispatch, by their Go method names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    OnActivate,
    OnDeactivate,
    OnConfigurationChange,
    ExecuteCommand,
    MessageHasBeenPosted,
    ServeHTTP,
    OnPluginClusterEvent,
    ConfigurationWillBeSaved,
    ServeMetrics,
}

impl Hook {
    /// The name `Plugin.Implemented` reports (Go's Hooks method name).
    pub fn name(self) -> &'static str {
        match self {
            Hook::OnActivate => "OnActivate",
            Hook::OnDeactivate => "OnDeactivate",
            Hook::OnConfigurationChange => "OnConfigurationChange",
            Hook::ExecuteCommand => "ExecuteCommand",
            Hook::MessageHasBeenPosted => "MessageHasBeenPosted",
            Hook::ServeHTTP => "ServeHTTP",
            Hook::OnPluginClusterEvent => "OnPluginClusterEvent",
            Hook::ConfigurationWillBeSaved => "ConfigurationWillBeSaved",
            Hook::ServeMetrics => "ServeMetrics",
        }
    }
}

/// Why a hook failed; becomes the AppError the host sees.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The plugin does not handle this hook.
    #[error("hook {0} is not implemented by this plugin")]
    NotImplemented(&'static str),
    /// A plugin API call failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A broker stream could not be opened.
    #[error("cannot open the {what} stream: {source}")]
    Stream {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// A hook was called before OnActivate provided the API.
    #[error("the plugin is not activated")]
    NotActivated,
    /// The plugin's own failure, with the HTTP status to attach.
    #[error("{message}")]
    Failed { message: String, status: u16 },
}

impl HookError {
    /// A plugin failure with status 500.
    pub fn msg(message: impl Into<String>) -> Self {
        HookError::Failed {
            message: message.into(),
            status: 500,
        }
    }

    /// A plugin failure with a status (400 for bad configuration, ...).
    pub fn with_status(status: u16, message: impl Into<String>) -> Self {
        HookError::Failed {
            message: message.into(),
            status,
        }
    }

    /// The one mapping from hook failures to the AppError sent to the host.
    /// `Where` names the hook; Message is the text (untranslated, so
    /// SkipTranslation keeps the server from looking it up as an i18n id).
    pub fn to_app_error(&self, hook: &str) -> AppError {
        let status = match self {
            HookError::Failed { status, .. } => i64::from(*status),
            HookError::Api(e) => e.status_code().map(i64::from).unwrap_or(500),
            HookError::NotImplemented(_) => 501,
            _ => 500,
        };
        AppError {
            id: format!("plugin.{}.{}", env!("PLUGIN_ID"), hook),
            message: self.to_string(),
            status_code: status,
            r#where: hook.to_owned(),
            skip_translation: true,
            ..Default::default()
        }
    }
}

/// Opens broker streams to ids the host created (the host's `Accept` side).
/// [`crate::rpc::broker::Broker`] implements it; tests plug in pipes.
pub trait Dialer: Send + Sync + 'static {
    fn dial(&self, id: u32) -> HookFuture<'_, io::Result<Box<dyn Duplex>>>;
}

impl Dialer for crate::rpc::broker::Broker {
    fn dial(&self, id: u32) -> HookFuture<'_, io::Result<Box<dyn Duplex>>> {
        Box::pin(async move {
            let s = crate::rpc::broker::Broker::dial(self, id)
                .await
                .map_err(|e| io::Error::new(io::ErrorKind::ConnectionRefused, e.to_string()))?;
            Ok(Box::new(s) as Box<dyn Duplex>)
        })
    }
}

/// What a plugin implements. Every method has a default that fails with
/// [`HookError::NotImplemented`] (or does nothing, for notifications); only
/// hooks listed by [`Hooks::implemented`] are called by the host, except
/// OnActivate, which always is.
pub trait Hooks: Send + Sync + 'static {
    /// The hooks this plugin handles (reported by `Plugin.Implemented`).
    fn implemented(&self) -> &'static [Hook];

    /// Loads and applies the plugin's configuration. Called by this layer
    /// right before [`Hooks::on_activate`] (as Go's wrapper does) and when
    /// the host calls OnConfigurationChange. An error keeps the old one.
    fn on_configuration_change<'a>(
        &'a self,
        api: &'a Api,
    ) -> HookFuture<'a, Result<(), HookError>> {
        let _ = api;
        Box::pin(async { Ok(()) })
    }

    /// Activation, after the configuration loaded. `api` stays valid for the
    /// whole life of the process; keep a clone.
    fn on_activate(&self, api: Api) -> HookFuture<'_, Result<(), HookError>> {
        let _ = api;
        Box::pin(async { Ok(()) })
    }

    fn on_deactivate(&self) -> HookFuture<'_, Result<(), HookError>> {
        Box::pin(async { Err(HookError::NotImplemented("OnDeactivate")) })
    }

    /// The server is about to save `config` (a `model.Config`, see
    /// [`super::server_config`]), from System Console or the API. An error refuses the save
    /// and its AppError is what the admin is shown. This layer never replaces the
    /// configuration: `Ok` saves it as it is.
    fn configuration_will_be_saved(&self, config: Value) -> HookFuture<'_, Result<(), HookError>> {
        let _ = config;
        Box::pin(async { Err(HookError::NotImplemented("ConfigurationWillBeSaved")) })
    }

    fn execute_command(
        &self,
        ctx: Context,
        args: CommandArgs,
    ) -> HookFuture<'_, Result<CommandResponse, HookError>> {
        let _ = (ctx, args);
        Box::pin(async { Err(HookError::NotImplemented("ExecuteCommand")) })
    }

    fn message_has_been_posted(&self, ctx: Context, post: Post) -> HookFuture<'_, ()> {
        let _ = (ctx, post);
        Box::pin(async {})
    }

    fn on_plugin_cluster_event(
        &self,
        ctx: Context,
        event: PluginClusterEvent,
    ) -> HookFuture<'_, ()> {
        let _ = (ctx, event);
        Box::pin(async {})
    }

    /// Produces the response through `w`; this layer flushes and closes it
    /// afterwards. With nothing written, the host sends 200 and no body.
    fn serve_http<'a>(
        &'a self,
        ctx: Context,
        req: ServeHttpRequest,
        w: &'a mut ResponseWriter,
    ) -> HookFuture<'a, ()> {
        let _ = (ctx, req);
        not_found(w)
    }

    /// The server's metrics listener forwards `/plugins/<id>/metrics` here (where metrics
    /// are enabled), through the same streams as ServeHTTP; the host adds no user header.
    fn serve_metrics<'a>(
        &'a self,
        ctx: Context,
        req: ServeHttpRequest,
        w: &'a mut ResponseWriter,
    ) -> HookFuture<'a, ()> {
        let _ = (ctx, req);
        not_found(w)
    }

    /// Not a Mattermost hook: the process is about to exit (Quit, or the host
    /// went away). Stop children, flush state. Bounded by the runtime.
    fn shutdown(&self) -> HookFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// What a plugin without a handler answers to a forwarded request (Go's plugin does the same).
fn not_found(w: &mut ResponseWriter) -> HookFuture<'_, ()> {
    Box::pin(async move {
        let _ = w.write_header(404).await;
    })
}

struct HookState {
    hooks: Arc<dyn Hooks>,
    dialer: Arc<dyn Dialer>,
    api: Mutex<Option<Api>>,
    /// The DB driver stream, dialed so the host's Accept succeeds, kept idle.
    driver: Mutex<Option<Box<dyn Duplex>>>,
}

impl HookState {
    fn api(&self) -> Option<Api> {
        self.api.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn on_activate(&self, args: OnActivateArgs) -> Result<(), HookError> {
        let api_stream =
            self.dialer
                .dial(args.api_mux_id)
                .await
                .map_err(|source| HookError::Stream {
                    what: "API",
                    source,
                })?;
        let api = Api::new(Client::new(api_stream));
        *self.api.lock().unwrap_or_else(|p| p.into_inner()) = Some(api.clone());
        if args.driver_mux_id != 0 {
            match self.dialer.dial(args.driver_mux_id).await {
                Ok(s) => *self.driver.lock().unwrap_or_else(|p| p.into_inner()) = Some(s),
                // Not fatal: we never use the driver; the host only logs its Accept timeout.
                Err(e) => tracing::warn!("cannot open the DB driver stream: {e}"),
            }
        }
        self.hooks.on_configuration_change(&api).await?;
        self.hooks.on_activate(api).await
    }

    /// ServeHTTP and ServeMetrics: the host forwards a request with a response writer stream
    /// and, when there is a body, a body stream (`Z_ServeHTTPArgs` and `Z_ServeMetricsArgs`
    /// have the same fields; gob matches them by name).
    async fn serve_forwarded(&self, hook: Forwarded, args: ServeHttpArgs) {
        let name = hook.name();
        let writer_stream = match self.dialer.dial(args.response_writer_stream).await {
            Ok(s) => s,
            Err(e) => {
                // Nothing to answer on: the host turns a failed call into a 500 by itself.
                tracing::error!("{name}: cannot open the response writer stream: {e}");
                return;
            }
        };
        let body = if args.request_body_stream != 0 {
            match self.dialer.dial(args.request_body_stream).await {
                Ok(s) => Body::from_host_stream(s),
                Err(e) => {
                    tracing::warn!("{name}: cannot open the request body stream: {e}");
                    Body::empty()
                }
            }
        } else {
            Body::empty()
        };
        let req = ServeHttpRequest::from_host(args.request, body);
        let mut w = ResponseWriter::new(RpcSink(Client::new(writer_stream)));
        let ctx = args.context.unwrap_or_default();
        match hook {
            Forwarded::Http => self.hooks.serve_http(ctx, req, &mut w).await,
            Forwarded::Metrics => self.hooks.serve_metrics(ctx, req, &mut w).await,
        }
        // Dropping the request (inside the hook) closed the body stream.
        if let Err(e) = w.finish().await {
            tracing::debug!("{name}: response not fully delivered: {e}");
        }
    }
}

/// The hooks that answer a forwarded HTTP request.
#[derive(Debug, Clone, Copy)]
enum Forwarded {
    Http,
    Metrics,
}

impl Forwarded {
    fn name(self) -> &'static str {
        match self {
            Forwarded::Http => Hook::ServeHTTP.name(),
            Forwarded::Metrics => Hook::ServeMetrics.name(),
        }
    }

    /// The net/rpc handler of `Plugin.<name>`.
    fn handler(
        self,
        st: Arc<HookState>,
    ) -> impl Fn(ServeHttpArgs) -> HookFuture<'static, Result<Empty, String>> + Send + Sync + 'static
    {
        move |args| {
            let st = st.clone();
            Box::pin(async move {
                st.serve_forwarded(self, args).await;
                Ok(Empty {})
            })
        }
    }
}

fn error_return(hook: &str, r: Result<(), HookError>) -> ErrorReturn {
    match r {
        Ok(()) => Returns1 { a: Any::Nil },
        Err(e) => {
            tracing::error!(hook, "hook failed: {e}");
            Returns1 {
                a: Any::from(e.to_app_error(hook)),
            }
        }
    }
}

/// The net/rpc server for the hooks stream (service `Plugin`).
pub fn hooks_server(hooks: Arc<dyn Hooks>, dialer: Arc<dyn Dialer>) -> Server {
    let st = Arc::new(HookState {
        hooks,
        dialer,
        api: Mutex::new(None),
        driver: Mutex::new(None),
    });
    let s1 = st.clone();
    let s2 = st.clone();
    let s3 = st.clone();
    let s4 = st.clone();
    let s5 = st.clone();
    let s6 = st.clone();
    let s7 = st.clone();
    let s8 = st.clone();
    let s9 = st;
    Server::new()
        .method("Plugin.Implemented", move |_: Empty| {
            let names: Vec<String> = s1
                .hooks
                .implemented()
                .iter()
                .map(|h| h.name().to_owned())
                .collect();
            async move { Ok::<_, String>(names) }
        })
        .method("Plugin.OnActivate", move |args: OnActivateArgs| {
            let st = s2.clone();
            async move { Ok::<_, String>(error_return("OnActivate", st.on_activate(args).await)) }
        })
        .method("Plugin.OnDeactivate", move |_: Empty| {
            let st = s3.clone();
            async move {
                let r = st.hooks.on_deactivate().await;
                Ok::<_, String>(error_return("OnDeactivate", r))
            }
        })
        .method("Plugin.OnConfigurationChange", move |_: Empty| {
            let st = s4.clone();
            async move {
                let r = match st.api() {
                    Some(api) => st.hooks.on_configuration_change(&api).await,
                    None => Err(HookError::NotActivated),
                };
                Ok::<_, String>(error_return("OnConfigurationChange", r))
            }
        })
        .method("Plugin.ExecuteCommand", move |args: ExecuteCommandArgs| {
            let st = s5.clone();
            async move {
                let ctx = args.a.unwrap_or_default();
                let cmd = args.b.unwrap_or_default();
                let reply = match st.hooks.execute_command(ctx, cmd).await {
                    Ok(resp) => Returns2 {
                        a: Some(resp),
                        b: None,
                    },
                    Err(e) => {
                        tracing::error!(hook = "ExecuteCommand", "hook failed: {e}");
                        Returns2 {
                            a: None,
                            b: Some(e.to_app_error("ExecuteCommand")),
                        }
                    }
                };
                Ok::<_, String>(reply)
            }
        })
        .method(
            "Plugin.MessageHasBeenPosted",
            move |args: MessageHasBeenPostedArgs| {
                let st = s6.clone();
                async move {
                    st.hooks
                        .message_has_been_posted(
                            args.a.unwrap_or_default(),
                            args.b.unwrap_or_default(),
                        )
                        .await;
                    Ok::<_, String>(Empty {})
                }
            },
        )
        .method(
            "Plugin.OnPluginClusterEvent",
            move |args: OnPluginClusterEventArgs| {
                let st = s7.clone();
                async move {
                    st.hooks
                        .on_plugin_cluster_event(args.a.unwrap_or_default(), args.b)
                        .await;
                    Ok::<_, String>(Empty {})
                }
            },
        )
        .method("Plugin.ServeHTTP", Forwarded::Http.handler(s8.clone()))
        .method("Plugin.ServeMetrics", Forwarded::Metrics.handler(s8))
        .method(
            "Plugin.ConfigurationWillBeSaved",
            move |args: ConfigurationWillBeSavedArgs| {
                let st = s9.clone();
                async move {
                    // The server never sends a nil config; nothing to refuse if it did.
                    let r = match args.a {
                        Some(config) => st.hooks.configuration_will_be_saved(config).await,
                        None => Ok(()),
                    };
                    let b = match r {
                        Ok(()) => Any::Nil,
                        // The admin's input, refused: not a failure of the plugin.
                        Err(e) => {
                            tracing::info!("configuration save refused: {e}");
                            Any::from(e.to_app_error("ConfigurationWillBeSaved"))
                        }
                    };
                    Ok::<_, String>(ConfigurationWillBeSavedReturns { b })
                }
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Some3;
    impl Hooks for Some3 {
        fn implemented(&self) -> &'static [Hook] {
            &[Hook::OnDeactivate, Hook::ServeHTTP, Hook::ExecuteCommand]
        }
    }

    struct NoDial;
    impl Dialer for NoDial {
        fn dial(&self, _: u32) -> HookFuture<'_, io::Result<Box<dyn Duplex>>> {
            Box::pin(async { Err(io::Error::other("no broker in this test")) })
        }
    }

    fn client_for(hooks: impl Hooks) -> Client {
        let (a, b) = tokio::io::duplex(64 << 10);
        let server = hooks_server(Arc::new(hooks), Arc::new(NoDial));
        tokio::spawn(async move { server.serve(b).await });
        Client::new(a)
    }

    #[tokio::test]
    async fn implemented_lists_exactly_the_declared_hooks() {
        let c = client_for(Some3);
        let names: Vec<String> = c.call("Plugin.Implemented", &Empty {}).await.unwrap();
        assert_eq!(names, ["OnDeactivate", "ServeHTTP", "ExecuteCommand"]);
    }

    #[tokio::test]
    async fn failures_are_app_errors() {
        let c = client_for(Some3);
        let r: ErrorReturn = c.call("Plugin.OnDeactivate", &Empty {}).await.unwrap();
        let Any::AppError(e) = r.a else {
            panic!("expected an AppError, got {:?}", r.a)
        };
        assert_eq!(e.r#where, "OnDeactivate");
        assert_eq!(e.status_code, 501);
        assert!(e.message.contains("not implemented"), "{}", e.message);
        // OnActivate cannot dial the API here: an AppError, not an rpc error.
        let r: ErrorReturn = c
            .call(
                "Plugin.OnActivate",
                &OnActivateArgs {
                    api_mux_id: 2,
                    driver_mux_id: 3,
                },
            )
            .await
            .unwrap();
        assert!(matches!(r.a, Any::AppError(ref e) if e.message.contains("API stream")));
        // OnConfigurationChange before activation.
        let r: ErrorReturn = c
            .call("Plugin.OnConfigurationChange", &Empty {})
            .await
            .unwrap();
        assert!(matches!(r.a, Any::AppError(ref e) if e.message.contains("not activated")));
        let r: ExecuteCommandReturns = c
            .call(
                "Plugin.ExecuteCommand",
                &Args2 {
                    a: Some(Context::default()),
                    b: Some(CommandArgs::default()),
                },
            )
            .await
            .unwrap();
        assert!(r.a.is_none());
        assert_eq!(r.b.map(|e| e.status_code), Some(501));
    }

    #[test]
    fn app_error_mapping() {
        let e = HookError::with_status(400, "invalid configuration: x")
            .to_app_error("OnConfigurationChange");
        assert_eq!(e.message, "invalid configuration: x");
        assert_eq!(e.status_code, 400);
        assert_eq!(e.r#where, "OnConfigurationChange");
        assert_eq!(e.id, "plugin.claude-code.OnConfigurationChange");
        assert_eq!(
            e.error_text(),
            "OnConfigurationChange: invalid configuration: x"
        );
    }
}
