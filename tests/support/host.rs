//! The host's side of the plugin, in process: a fake broker that hands the plugin in-memory
//! streams, the host's body feeder and a fake response writer for ServeHTTP, and the hooks
//! client plumbing. Each test file brings its own fake plugin API (its own state to record).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use claude_code::app::App;
use claude_code::mattermost::hooks::{hooks_server, Dialer, HookFuture};
use claude_code::mattermost::http::{read_varint, Duplex, Headers};
use claude_code::mattermost::model::*;
use claude_code::mattermost::rpc_types::*;
use claude_code::rpc::netrpc::{Client, Empty, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// What the host does with a stream the plugin dials.
pub enum Endpoint {
    Serve(Server),
    Body(Vec<u8>),
}

#[derive(Clone, Default)]
pub struct FakeBroker {
    pub endpoints: Arc<Mutex<HashMap<u32, Endpoint>>>,
    pub dialed: Arc<Mutex<Vec<u32>>>,
}

impl FakeBroker {
    pub fn add(&self, id: u32, e: Endpoint) {
        self.endpoints.lock().unwrap().insert(id, e);
    }
}

impl Dialer for FakeBroker {
    fn dial(&self, id: u32) -> HookFuture<'_, io::Result<Box<dyn Duplex>>> {
        Box::pin(async move {
            self.dialed.lock().unwrap().push(id);
            let e = self.endpoints.lock().unwrap().remove(&id);
            let (ours, theirs) = tokio::io::duplex(256 * 1024);
            match e {
                None => return Err(io::Error::other(format!("no accept for id {id}"))),
                Some(Endpoint::Serve(server)) => {
                    tokio::spawn(async move { server.serve(theirs).await });
                }
                Some(Endpoint::Body(body)) => {
                    tokio::spawn(body_feeder(theirs, body));
                }
            }
            Ok(Box::new(ours) as Box<dyn Duplex>)
        })
    }
}

/// The host side of io_rpc.go: answer each varint request with up to n body
/// bytes (in small writes), close once fewer than n were left.
pub async fn body_feeder(mut s: DuplexStream, body: Vec<u8>) {
    let mut pos = 0;
    loop {
        let mut req = Vec::new();
        loop {
            let mut b = [0u8; 1];
            if s.read_exact(&mut b).await.is_err() {
                return;
            }
            req.push(b[0]);
            if b[0] < 0x80 {
                break;
            }
        }
        let (n, _) = read_varint(&req).unwrap();
        let end = (pos + n as usize).min(body.len());
        for piece in body[pos..end].chunks(10_000) {
            if s.write_all(piece).await.is_err() {
                return;
            }
        }
        let short = end - pos < n as usize;
        pos = end;
        if short {
            return;
        }
    }
}

/// What the fake response writer saw.
#[derive(Default, Debug)]
pub struct Recorded {
    pub headers: Headers,
    pub status: Option<i64>,
    pub body: Vec<u8>,
    pub writes: usize,
    pub max_write: usize,
}

/// The host's http.ResponseWriter server (Go refuses status codes outside 100..=999).
pub fn fake_writer(rec: Arc<Mutex<Recorded>>) -> Server {
    let (r1, r2, r3) = (rec.clone(), rec.clone(), rec);
    Server::new()
        .method("Plugin.SyncHeader", move |h: Option<Headers>| {
            r1.lock().unwrap().headers = h.unwrap_or_default();
            async { Ok::<_, String>(Empty {}) }
        })
        .method("Plugin.WriteHeader", move |s: i64| {
            let ok = (100..=999).contains(&s);
            if ok {
                r2.lock().unwrap().status = Some(s);
            }
            async move {
                if ok {
                    Ok(Empty {})
                } else {
                    Err("invalid http status code".to_string())
                }
            }
        })
        .method("Plugin.Write", move |b: Vec<u8>| {
            let mut r = r3.lock().unwrap();
            if r.status.is_none() {
                r.status = Some(200);
            }
            r.writes += 1;
            r.max_write = r.max_write.max(b.len());
            r.body.extend_from_slice(&b);
            async { Ok::<_, String>(Empty {}) }
        })
}

/// Serves the app's hooks on an in-memory pipe and returns the host's client for them.
pub fn connect_hooks(app: Arc<App>, broker: &FakeBroker) -> Client {
    let server = hooks_server(app, Arc::new(broker.clone()));
    let (a, b) = tokio::io::duplex(256 * 1024);
    tokio::spawn(async move { server.serve(b).await });
    Client::new(a)
}

/// Stream ids handed to the plugin, counting up from 101.
pub struct StreamIds(Mutex<u32>);

impl Default for StreamIds {
    fn default() -> Self {
        Self(Mutex::new(100))
    }
}

impl StreamIds {
    pub fn next(&self) -> u32 {
        let mut n = self.0.lock().unwrap();
        *n += 1;
        *n
    }
}

/// OnActivate with `api` served on `api_id` and an empty driver on `driver_id`; the hook's error.
pub async fn activate(
    hooks: &Client,
    broker: &FakeBroker,
    api: Server,
    api_id: u32,
    driver_id: u32,
) -> Any {
    broker.add(api_id, Endpoint::Serve(api));
    broker.add(driver_id, Endpoint::Serve(Server::new()));
    let r: ErrorReturn = hooks
        .call(
            "Plugin.OnActivate",
            &OnActivateArgs {
                api_mux_id: api_id,
                driver_mux_id: driver_id,
            },
        )
        .await
        .unwrap();
    r.a
}

/// An HTTP/1.1 request to the plugin's `url`, as the host forwards it.
pub fn http_request(method: &str, url: &str, header: Headers) -> Option<HttpRequest> {
    Some(HttpRequest {
        method: method.into(),
        url: Some(GoUrl(url.into())),
        proto: "HTTP/1.1".into(),
        proto_major: 1,
        proto_minor: 1,
        header: Some(header),
        request_uri: format!("/plugins/claude-code{url}"),
        ..Default::default()
    })
}

/// Calls ServeHTTP and waits (up to `wait`) for its reply.
pub async fn serve_http(hooks: &Client, args: &ServeHttpArgs, wait: Duration) {
    serve_forwarded(hooks, "Plugin.ServeHTTP", args, wait).await
}

/// A forwarded request to `method` (`Plugin.ServeHTTP` or `Plugin.ServeMetrics`: the same
/// arguments), waited for.
pub async fn serve_forwarded(hooks: &Client, method: &str, args: &ServeHttpArgs, wait: Duration) {
    let _: Empty = tokio::time::timeout(wait, hooks.call(method, args))
        .await
        .unwrap_or_else(|_| panic!("{method} answered"))
        .unwrap();
}

/// `server` answering GetPluginStatus as a single (not clustered) server does: the plugin's
/// status, with no cluster node id.
pub fn single_server(server: Server) -> Server {
    server.method("Plugin.GetPluginStatus", |a: StringArgs| async move {
        Ok::<_, String>(GetPluginStatusReturns {
            a: Some(PluginStatus {
                plugin_id: a.a,
                state: 2,
                ..Default::default()
            }),
            b: None,
        })
    })
}
