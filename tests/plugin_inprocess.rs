//! The hook layer and the app, driven from the host's side in Rust: a net/rpc
//! client on the hooks stream, a fake plugin API server (netrpc::Server) on
//! the stream OnActivate names, a fake response-writer server and the host's
//! body feeder for ServeHTTP. Streams are in-memory pipes handed out by a fake
//! broker dialer; the real broker/yamux path is covered by plugin_process.rs.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use claude_code::app::App;
use claude_code::mattermost::http::Headers;
use claude_code::mattermost::model::*;
use claude_code::mattermost::rpc_types::*;
use claude_code::rpc::netrpc::{Client, Empty, Server};
use support::host::{
    activate, connect_hooks, fake_writer, http_request, serve_forwarded, single_server, Endpoint,
    FakeBroker, Recorded, StreamIds,
};

#[derive(Default)]
struct ApiState {
    config: Vec<u8>,
    bots: Vec<Bot>,
    commands: Vec<Command>,
    kv: BTreeMap<String, Vec<u8>>,
    calls: Vec<String>,
}

type Shared = Arc<Mutex<ApiState>>;

fn fake_api(st: Shared) -> Server {
    let log = |st: &Shared, m: &str| st.lock().unwrap().calls.push(m.to_owned());
    let (s1, s2, s3, s4, s5, s6, s7) = (
        st.clone(),
        st.clone(),
        st.clone(),
        st.clone(),
        st.clone(),
        st.clone(),
        st.clone(),
    );
    single_server(Server::new())
        .method("Plugin.LoadPluginConfiguration", move |_: Empty| {
            log(&s1, "LoadPluginConfiguration");
            let cfg = s1.lock().unwrap().config.clone();
            async move { Ok::<_, String>(LoadPluginConfigurationReturns { a: cfg }) }
        })
        .method("Plugin.EnsureBotUser", move |a: EnsureBotUserArgs| {
            log(&s2, "EnsureBotUser");
            s2.lock().unwrap().bots.push(a.a.unwrap_or_default());
            async move {
                Ok::<_, String>(EnsureBotUserReturns {
                    a: "bot-user-id".into(),
                    b: Any::Nil,
                })
            }
        })
        .method("Plugin.RegisterCommand", move |a: RegisterCommandArgs| {
            log(&s3, "RegisterCommand");
            s3.lock().unwrap().commands.push(a.a.unwrap_or_default());
            async move { Ok::<_, String>(ErrorReturn { a: Any::Nil }) }
        })
        .method("Plugin.KVSet", move |a: KvSetArgs| {
            s4.lock().unwrap().kv.insert(a.a, a.b);
            async move { Ok::<_, String>(AppErrorReturn { a: None }) }
        })
        .method("Plugin.KVGet", move |a: StringArgs| {
            let v = s5.lock().unwrap().kv.get(&a.a).cloned().unwrap_or_default();
            async move { Ok::<_, String>(KvGetReturns { a: v, b: None }) }
        })
        .method("Plugin.KVList", move |a: KvListArgs| {
            let keys: Vec<String> = s6
                .lock()
                .unwrap()
                .kv
                .keys()
                .skip((a.a * a.b) as usize)
                .take(a.b as usize)
                .cloned()
                .collect();
            async move { Ok::<_, String>(KvListReturns { a: keys, b: None }) }
        })
        .method("Plugin.KVCompareAndSet", move |a: KvCompareAndSetArgs| {
            let mut st = s7.lock().unwrap();
            let current = st.kv.get(&a.a).cloned().unwrap_or_default();
            let ok = current == a.b;
            if ok {
                if a.c.is_empty() {
                    st.kv.remove(&a.a);
                } else {
                    st.kv.insert(a.a.clone(), a.c);
                }
            }
            async move { Ok::<_, String>(BoolAppErrorReturns { a: ok, b: None }) }
        })
        // Only u9 is a system admin.
        .method("Plugin.HasPermissionTo", move |a: HasPermissionToArgs| {
            let ok = a.a == "u9" && a.b.map(|p| p.id) == Some("manage_system".into());
            async move { Ok::<_, String>(BoolReturns { a: ok }) }
        })
        .method("Plugin.GetChannelMember", move |a: TwoStringArgs| {
            // Only u1 is a member of anything.
            let r = if a.b == "u1" {
                GetChannelMemberReturns {
                    a: Some(ChannelMember {
                        channel_id: a.a,
                        user_id: a.b,
                        ..Default::default()
                    }),
                    b: None,
                }
            } else {
                GetChannelMemberReturns {
                    a: None,
                    b: Some(AppError {
                        id: "app.channel.get_member.missing.app_error".into(),
                        status_code: 404,
                        ..Default::default()
                    }),
                }
            };
            async move { Ok::<_, String>(r) }
        })
}

struct Host {
    hooks: Client,
    broker: FakeBroker,
    api: Shared,
    app: Arc<App>,
    ids: StreamIds,
}

impl Host {
    fn start(config: &str) -> Host {
        let broker = FakeBroker::default();
        let app = App::new(true);
        let hooks = connect_hooks(app.clone(), &broker);
        let api = Shared::default();
        api.lock().unwrap().config = config.as_bytes().to_vec();
        Host {
            hooks,
            broker,
            api,
            app,
            ids: StreamIds::default(),
        }
    }

    fn id(&self) -> u32 {
        self.ids.next()
    }

    async fn activate(&self) -> Any {
        activate(&self.hooks, &self.broker, fake_api(self.api.clone()), 1, 2).await
    }

    async fn command(&self, line: &str) -> ExecuteCommandReturns {
        self.hooks
            .call(
                "Plugin.ExecuteCommand",
                &Args2 {
                    a: Some(Context::default()),
                    b: Some(CommandArgs {
                        command: line.into(),
                        user_id: "u1".into(),
                        channel_id: "c1".into(),
                        ..Default::default()
                    }),
                },
            )
            .await
            .unwrap()
    }

    async fn http(
        &self,
        method: &str,
        url: &str,
        user: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Recorded {
        self.forward("Plugin.ServeHTTP", method, url, user, body)
            .await
    }

    /// A request forwarded to `hook` (ServeHTTP or ServeMetrics), as the server does.
    async fn forward(
        &self,
        hook: &str,
        method: &str,
        url: &str,
        user: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Recorded {
        let rec = Arc::new(Mutex::new(Recorded::default()));
        let w = self.id();
        self.broker
            .add(w, Endpoint::Serve(fake_writer(rec.clone())));
        let body_id = match body {
            Some(b) => {
                let id = self.id();
                self.broker.add(id, Endpoint::Body(b));
                id
            }
            None => 0,
        };
        let mut header = Headers::new();
        header.insert("X-Test".into(), vec!["a".into(), "b".into()]);
        if let Some(u) = user {
            header.insert("Mattermost-User-Id".into(), vec![u.into()]);
        }
        let args = ServeHttpArgs {
            response_writer_stream: w,
            request: http_request(method, url, header),
            context: Some(Context {
                request_id: "r1".into(),
                ..Default::default()
            }),
            request_body_stream: body_id,
        };
        serve_forwarded(&self.hooks, hook, &args, Duration::from_secs(30)).await;
        // Every writer call completed before the reply: nothing may change now.
        let snapshot = std::mem::take(&mut *rec.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            rec.lock().unwrap().writes,
            0,
            "writes after the ServeHTTP reply"
        );
        snapshot
    }
}

fn json(r: &Recorded) -> serde_json::Value {
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&r.body)))
}

fn header<'a>(r: &'a Recorded, name: &str) -> Option<&'a str> {
    r.headers
        .get(name)
        .and_then(|v| v.first())
        .map(String::as_str)
}

/// A valid configuration with its own data directory (the store and the CLI's HOME).
fn good() -> String {
    // Under the target directory (cargo's scratch space for integration tests), so the
    // stores these tests leave behind are not spread over /tmp.
    let data = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cc-inprocess-{}-{}",
        std::process::id(),
        NEXT_DATA_DIR.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    serde_json::json!({
        "allowedprojectroots": "/srv/a,/srv/b",
        "claudeclipath": "",
        "anthropicapikey": "sk-1",
        "DataDirectory": data,
    })
    .to_string()
}

static NEXT_DATA_DIR: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[tokio::test]
async fn implemented_and_activation() {
    let host = Host::start(&good());
    let names: Vec<String> = host
        .hooks
        .call("Plugin.Implemented", &Empty {})
        .await
        .unwrap();
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
    assert_eq!(host.activate().await, Any::Nil);
    assert_eq!(*host.broker.dialed.lock().unwrap(), [1, 2]);
    let st = host.api.lock().unwrap();
    // Configuration first, as Go's wrapper does, then the bot, then the command.
    assert_eq!(
        st.calls,
        [
            "LoadPluginConfiguration",
            "EnsureBotUser",
            "RegisterCommand"
        ]
    );
    assert_eq!(st.bots[0].username, "claude");
    assert_eq!(st.bots[0].display_name, "Claude Code");
    assert_eq!(
        st.bots[0].description,
        "Runs Claude Code sessions for channels."
    );
    let cmd = &st.commands[0];
    assert_eq!(cmd.trigger, "claude");
    assert!(cmd.auto_complete);
    let subs: Vec<&str> = cmd
        .autocomplete_data
        .as_ref()
        .unwrap()
        .sub_commands
        .iter()
        .map(|s| s.trigger.as_str())
        .collect();
    assert!(
        subs.contains(&"start") && subs.contains(&"help"),
        "{subs:?}"
    );
    drop(st);
    assert_eq!(host.app.bot_user_id(), Some("bot-user-id"));
    assert_eq!(host.app.config().allowed_project_roots.len(), 2);
}

#[tokio::test]
async fn invalid_configuration_fails_activation() {
    let host = Host::start(r#"{"AllowedProjectRoots": "relative/dir"}"#);
    let Any::AppError(e) = host.activate().await else {
        panic!("activation should fail")
    };
    assert_eq!(e.r#where, "OnActivate");
    assert_eq!(e.status_code, 400);
    assert!(
        e.message.contains("invalid plugin configuration"),
        "{}",
        e.message
    );
    assert!(e.message.contains("relative/dir"), "{}", e.message);
    // Nothing else happened.
    assert_eq!(host.api.lock().unwrap().calls, ["LoadPluginConfiguration"]);
}

#[tokio::test]
async fn configuration_change_keeps_the_old_config_on_error() {
    let host = Host::start(&good());
    assert_eq!(host.activate().await, Any::Nil);
    host.api.lock().unwrap().config = br#"{"AnthropicApiKey": 5}"#.to_vec();
    let r: ErrorReturn = host
        .hooks
        .call("Plugin.OnConfigurationChange", &Empty {})
        .await
        .unwrap();
    let Any::AppError(e) = r.a else {
        panic!("expected an AppError")
    };
    assert_eq!(e.r#where, "OnConfigurationChange");
    assert!(e.message.contains("AnthropicApiKey"), "{}", e.message);
    assert_eq!(host.app.config().allowed_project_roots.len(), 2);
    host.api.lock().unwrap().config = br#"{"AllowedProjectRoots": "/x"}"#.to_vec();
    let r: ErrorReturn = host
        .hooks
        .call("Plugin.OnConfigurationChange", &Empty {})
        .await
        .unwrap();
    assert_eq!(r.a, Any::Nil);
    assert_eq!(host.app.config().allowed_project_roots.len(), 1);
}

#[tokio::test]
async fn execute_command_help_and_membership() {
    let host = Host::start(&good());
    assert_eq!(host.activate().await, Any::Nil);
    let r = host.command("/claude help").await;
    assert_eq!(r.b, None);
    let resp = r.a.unwrap();
    assert_eq!(resp.response_type, "ephemeral");
    assert!(resp.text.starts_with("Claude Code"));
    assert!(resp.text.contains("/claude start"));
    let resp = host.command("/claude start /srv/a").await.a.unwrap();
    assert_eq!(resp.response_type, "ephemeral");
    assert_eq!(resp.text, "`/srv/a` does not exist");
    let resp = host.command("/claude status").await.a.unwrap();
    assert_eq!(resp.text, "No Claude Code session in this channel");
}

#[tokio::test]
async fn notifications_are_answered() {
    let host = Host::start(&good());
    assert_eq!(host.activate().await, Any::Nil);
    let _: Empty = host
        .hooks
        .call(
            "Plugin.MessageHasBeenPosted",
            &Args2 {
                a: Some(Context::default()),
                b: Some(Post {
                    message: "hi".into(),
                    ..Default::default()
                }),
            },
        )
        .await
        .unwrap();
    let _: Empty = host
        .hooks
        .call(
            "Plugin.OnPluginClusterEvent",
            &Args2 {
                a: Some(Context::default()),
                b: PluginClusterEvent {
                    id: "x".into(),
                    data: vec![1, 2],
                },
            },
        )
        .await
        .unwrap();
    let r: ErrorReturn = host
        .hooks
        .call("Plugin.OnDeactivate", &Empty {})
        .await
        .unwrap();
    assert_eq!(r.a, Any::Nil);
}

#[tokio::test]
async fn serve_http_health_auth_and_404() {
    let host = Host::start(&good());
    assert_eq!(host.activate().await, Any::Nil);
    let r = host.http("GET", "/api/v1/health", None, Some(vec![])).await;
    assert_eq!(r.status, Some(200));
    assert_eq!(header(&r, "Content-Type"), Some("application/json"));
    assert_eq!(
        json(&r),
        serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})
    );
    let r = host.http("GET", "/api/v1/diag/request", None, None).await;
    assert_eq!(r.status, Some(401));
    assert_eq!(json(&r)["status"], 401);
    let r = host.http("GET", "/api/v1/nothing", Some("u1"), None).await;
    assert_eq!(r.status, Some(404));
    assert_eq!(json(&r)["status"], 404);
    assert!(json(&r)["error"].is_string());
}

/// `GET /api/v1/metrics` is for system admins (403 JSON for others, from the authorization
/// table); the ServeMetrics hook answers the server's metrics listener with the same text.
/// Requests are counted by route pattern and hook calls are timed.
#[tokio::test]
async fn metrics_for_admins_and_the_metrics_listener() {
    let host = Host::start(&good());
    assert_eq!(host.activate().await, Any::Nil);
    let r = host.http("GET", "/api/v1/metrics", Some("u1"), None).await;
    assert_eq!(r.status, Some(403));
    assert_eq!(
        json(&r),
        serde_json::json!({"error": "Only system admins may read the plugin's metrics.", "status": 403})
    );
    let r = host.http("GET", "/api/v1/metrics", Some("u9"), None).await;
    assert_eq!(r.status, Some(200));
    assert_eq!(
        header(&r, "Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = String::from_utf8(r.body).unwrap();
    for line in [
        "claude_code_http_requests_total{route=\"GET /api/v1/metrics\",status=\"403\"} 1\n",
        "claude_code_sessions_active 0\n",
        "claude_code_outbox_backlog 0\n",
        "claude_code_hook_duration_seconds_count{hook=\"ServeHTTP\"} 1\n",
        "claude_code_hook_duration_seconds_count{hook=\"OnConfigurationChange\"} 1\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
    // The metrics listener adds no user header and needs none.
    let r = host
        .forward("Plugin.ServeMetrics", "GET", "/metrics", None, None)
        .await;
    assert_eq!(r.status, Some(200));
    let text = String::from_utf8(r.body).unwrap();
    for line in [
        "claude_code_http_requests_total{route=\"GET /api/v1/metrics\",status=\"200\"} 1\n",
        "claude_code_hook_duration_seconds_count{hook=\"ServeHTTP\"} 2\n",
        "# TYPE claude_code_first_text_seconds histogram\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
    // A path no route has is counted as unmatched, not by its path.
    host.http("GET", "/api/v1/secret-42", Some("u1"), None)
        .await;
    let r = host
        .forward("Plugin.ServeMetrics", "GET", "/metrics", None, None)
        .await;
    let text = String::from_utf8(r.body).unwrap();
    assert!(
        text.contains("route=\"unmatched\",status=\"404\"} 1\n"),
        "{text}"
    );
    assert!(!text.contains("secret-42"), "{text}");
}

#[tokio::test]
async fn serve_http_diag_request_echo_download() {
    let host = Host::start(&good());
    assert_eq!(host.activate().await, Any::Nil);
    let r = host
        .http(
            "GET",
            "/api/v1/diag/request?a=1&b=x%20y",
            Some("u1"),
            Some(vec![]),
        )
        .await;
    assert_eq!(r.status, Some(200));
    let v = json(&r);
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/api/v1/diag/request");
    assert_eq!(v["query"], serde_json::json!({"a": ["1"], "b": ["x y"]}));
    assert_eq!(v["user_id"], "u1");
    assert_eq!(v["headers"]["X-Test"], serde_json::json!(["a", "b"]));

    let body: Vec<u8> = (0..(1 << 20) + 17).map(|i| (i * 7 % 256) as u8).collect();
    let r = host
        .http(
            "POST",
            "/api/v1/diag/echo?status=201",
            Some("u1"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, Some(201));
    assert_eq!(header(&r, "X-Diag"), Some("echo"));
    assert_eq!(header(&r, "Content-Type"), Some("application/octet-stream"));
    assert!(
        r.body == body,
        "echo differs: {} vs {} bytes",
        r.body.len(),
        body.len()
    );
    assert!(r.max_write <= 1 << 20, "a write of {} bytes", r.max_write);

    let r = host
        .http("POST", "/api/v1/diag/echo", Some("u1"), Some(vec![]))
        .await;
    assert_eq!((r.status, r.body.len()), (Some(200), 0));

    let n = 700_001usize;
    let r = host
        .http(
            "GET",
            &format!("/api/v1/diag/download?bytes={n}"),
            Some("u1"),
            None,
        )
        .await;
    assert_eq!(r.status, Some(200));
    assert_eq!(r.body.len(), n);
    assert!(r
        .body
        .iter()
        .enumerate()
        .all(|(i, b)| *b == (i % 251) as u8));
    assert!(r.writes > 1 && r.max_write <= 1 << 20);

    let r = host
        .http("GET", "/api/v1/diag/download?bytes=x", Some("u1"), None)
        .await;
    assert_eq!(r.status, Some(400));
}

#[tokio::test]
async fn serve_http_diag_kv() {
    let host = Host::start(&good());
    assert_eq!(host.activate().await, Any::Nil);
    let r = host
        .http(
            "PUT",
            "/api/v1/diag/kv/k1",
            Some("u1"),
            Some(b"value-1".to_vec()),
        )
        .await;
    assert_eq!(r.status, Some(200));
    let r = host
        .http("GET", "/api/v1/diag/kv/k1", Some("u1"), None)
        .await;
    assert_eq!((r.status, r.body.as_slice()), (Some(200), &b"value-1"[..]));
    let r = host
        .http("GET", "/api/v1/diag/kv/missing", Some("u1"), None)
        .await;
    assert_eq!(r.status, Some(404));
    host.http(
        "PUT",
        "/api/v1/diag/kv/k2",
        Some("u1"),
        Some(b"v2".to_vec()),
    )
    .await;
    let r = host
        .http(
            "GET",
            "/api/v1/diag/kv?page=0&per_page=10",
            Some("u1"),
            None,
        )
        .await;
    // The plugin keeps its approval signing secret in KV too (from activation).
    assert_eq!(
        json(&r),
        serde_json::json!({"keys": ["approval_signing_secret", "k1", "k2"]})
    );
    let r = host
        .http("GET", "/api/v1/diag/kv?page=2&per_page=1", Some("u1"), None)
        .await;
    assert_eq!(json(&r), serde_json::json!({"keys": ["k2"]}));

    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let cas = |old: serde_json::Value, new: serde_json::Value| {
        serde_json::to_vec(&serde_json::json!({"old": old, "new": new})).unwrap()
    };
    // Wrong old value: refused.
    let r = host
        .http(
            "POST",
            "/api/v1/diag/kv/k1/cas",
            Some("u1"),
            Some(cas(b64(b"nope").into(), b64(b"x").into())),
        )
        .await;
    assert_eq!(json(&r), serde_json::json!({"ok": false}));
    let r = host
        .http(
            "POST",
            "/api/v1/diag/kv/k1/cas",
            Some("u1"),
            Some(cas(b64(b"value-1").into(), b64(b"value-2").into())),
        )
        .await;
    assert_eq!(json(&r), serde_json::json!({"ok": true}));
    let r = host
        .http("GET", "/api/v1/diag/kv/k1", Some("u1"), None)
        .await;
    assert_eq!(r.body, b"value-2");
    // Absent -> set with old = null.
    let r = host
        .http(
            "POST",
            "/api/v1/diag/kv/k3/cas",
            Some("u1"),
            Some(cas(serde_json::Value::Null, b64(b"3").into())),
        )
        .await;
    assert_eq!(json(&r), serde_json::json!({"ok": true}));
    let r = host
        .http(
            "POST",
            "/api/v1/diag/kv/k3/cas",
            Some("u1"),
            Some(b"{\"old\": 5}".to_vec()),
        )
        .await;
    assert_eq!(r.status, Some(400));
}

#[tokio::test]
async fn diagnostics_are_off_by_default() {
    let broker = FakeBroker::default();
    let hooks = connect_hooks(App::new(false), &broker);
    let host = Host {
        hooks,
        broker,
        api: Shared::default(),
        app: App::new(false),
        ids: StreamIds::default(),
    };
    let r = host
        .http("GET", "/api/v1/diag/request", Some("u1"), None)
        .await;
    assert_eq!(r.status, Some(404));
    let r = host.http("GET", "/api/v1/health", None, None).await;
    assert_eq!(r.status, Some(200));
}
