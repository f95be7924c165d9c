//! The plugin's HTTP API behind ServeHTTP: a small router (method + path
//! pattern -> async handler) that the REST API grows on.
//!
//! Policy lives here, once: every route requires the `Mattermost-User-Id`
//! header the server sets for authenticated sessions (401 otherwise) unless
//! it is registered with [`Auth::Public`]; no matching route is 404; every
//! error becomes the JSON body `{"error": "...", "status": N}` in
//! [`write_error`].

pub mod diag;
pub mod v1;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::mattermost::http::{Body, Headers, ResponseWriter, ServeHttpRequest};

/// The header Mattermost sets to the caller's user id when the session is valid.
pub const USER_ID_HEADER: &str = "Mattermost-User-Id";

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// What a handler returns: `Err` is written by the router as a JSON error.
pub type HttpResult = Result<(), HttpError>;
/// A route handler over the app state `S`. Plain `fn` so the borrow of `S`
/// and of the writer can outlive the call without boxing closures.
pub type Handler<S> =
    for<'a> fn(&'a S, Request, &'a mut ResponseWriter) -> BoxFuture<'a, HttpResult>;

/// An HTTP failure shown to the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct HttpError {
    pub status: u16,
    pub message: String,
    /// Seconds for a `Retry-After` header (429 and 503 answers).
    pub retry_after: Option<u64>,
}

impl HttpError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        HttpError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }
}

impl From<crate::mattermost::api::ApiError> for HttpError {
    fn from(e: crate::mattermost::api::ApiError) -> Self {
        // A server AppError keeps its status when it is an HTTP error one; a
        // broken API stream is the server's fault from the client's view: 502.
        let status = match &e {
            crate::mattermost::api::ApiError::Rpc { .. } => 502,
            other => other.status_code().filter(|s| *s >= 400).unwrap_or(500),
        };
        HttpError::new(status, e.to_string())
    }
}

impl From<std::io::Error> for HttpError {
    fn from(e: std::io::Error) -> Self {
        HttpError::new(400, format!("reading the request: {e}"))
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Requires `Mattermost-User-Id`.
    User,
    /// Anyone (health checks).
    Public,
}

/// A request as handlers see it.
pub struct Request {
    pub method: String,
    /// Percent-decoded path, e.g. `/api/v1/health`.
    pub path: String,
    /// Raw query string without `?`.
    pub query: String,
    pub headers: Headers,
    /// The authenticated caller (always `Some` on [`Auth::User`] routes).
    pub user_id: Option<String>,
    /// Values of `{name}` and `{name...}` segments of the matched pattern
    /// (percent-decoded; a `{name...}` value is its segments joined by `/`).
    pub params: BTreeMap<String, String>,
    pub body: Body,
    /// The path as sent: routing splits it before decoding, so an encoded
    /// `/` inside a segment stays inside that segment's value.
    raw_path: String,
}

impl Request {
    /// Splits the forwarded URL (`/path?query`, possibly absolute).
    pub fn from_serve_http(req: ServeHttpRequest) -> Request {
        let url = req.url.as_str();
        let after_scheme = url.find("://").map(|i| &url[i + 3..]);
        let path_and_query = match after_scheme {
            Some(rest) => rest.find('/').map(|i| &rest[i..]).unwrap_or("/"),
            None => url,
        };
        let without_fragment = path_and_query.split('#').next().unwrap_or("");
        let (raw_path, query) = match without_fragment.split_once('?') {
            Some((p, q)) => (p, q.to_owned()),
            None => (without_fragment, String::new()),
        };
        let user_id = header_value(&req.headers, USER_ID_HEADER)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        Request {
            method: req.method.to_ascii_uppercase(),
            path: percent_decode(raw_path, false),
            raw_path: raw_path.to_owned(),
            query,
            headers: req.headers,
            user_id,
            params: BTreeMap::new(),
            body: req.body,
        }
    }

    /// The query's name/value pairs in order, decoded (`+` is a space).
    pub fn query_pairs(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k, true), percent_decode(v, true))
            })
    }

    /// First value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .find_map(|(k, v)| (k == name).then_some(v))
    }

    /// Every query parameter with all its values, as Go's `url.Values`.
    pub fn query_map(&self) -> BTreeMap<String, Vec<String>> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in self.query_pairs() {
            map.entry(k).or_default().push(v);
        }
        map
    }

    /// A query parameter parsed as a number; absent = `default`, bad = 400.
    pub fn query_num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, HttpError> {
        match self.query_param(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                HttpError::bad_request(format!("query parameter {name}: not a valid number: {v:?}"))
            }),
        }
    }

    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    /// The caller; only absent on public routes.
    pub fn user(&self) -> Result<&str, HttpError> {
        self.user_id.as_deref().ok_or_else(unauthorized)
    }
}

/// Case-insensitive header lookup (Go canonicalizes names; be lenient).
pub fn header_value<'h>(headers: &'h Headers, name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
}

fn unauthorized() -> HttpError {
    HttpError::new(
        401,
        format!("not authenticated: the {USER_ID_HEADER} header is missing"),
    )
}

/// `%XX` decoding (invalid escapes stay as they are); `plus` turns `+` into a space.
pub fn percent_decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param(String),
    /// `{name...}`, the last segment only: the rest of the path, at least
    /// one segment.
    Rest(String),
}

struct Route<S> {
    /// `METHOD pattern`, how the route is named in metrics.
    name: String,
    method: String,
    segments: Vec<Segment>,
    auth: Auth,
    handler: Handler<S>,
}

fn split_path(path: &str) -> Vec<&str> {
    path.trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect()
}

impl<S> Route<S> {
    fn matches(&self, parts: &[&str]) -> Option<BTreeMap<String, String>> {
        let rest = matches!(self.segments.last(), Some(Segment::Rest(_)));
        let fits = if rest {
            parts.len() >= self.segments.len()
        } else {
            parts.len() == self.segments.len()
        };
        if !fits {
            return None;
        }
        let mut params = BTreeMap::new();
        for (i, (seg, part)) in self.segments.iter().zip(parts).enumerate() {
            match seg {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => {
                    params.insert(name.clone(), percent_decode(part, false));
                }
                // Each segment decoded on its own, then joined: an encoded
                // `/` becomes a `/` of the value, and whatever the value
                // names is the handler's to check (file paths: `files/`).
                Segment::Rest(name) => {
                    let decoded: Vec<String> = parts[i..]
                        .iter()
                        .map(|p| percent_decode(p, false))
                        .collect();
                    params.insert(name.clone(), decoded.join("/"));
                }
            }
        }
        Some(params)
    }
}

/// Routes over the app state `S`.
pub struct Router<S> {
    routes: Vec<Route<S>>,
}

impl<S> Default for Router<S> {
    fn default() -> Self {
        Router { routes: Vec::new() }
    }
}

impl<S: Sync> Router<S> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `METHOD pattern`; `{name}` segments capture one path segment, a
    /// last `{name...}` segment the rest of the path (one segment or more).
    ///
    /// # Panics
    /// When `{name...}` is not the last segment: the route table is fixed at
    /// build time, and every table is built by a test.
    pub fn route(mut self, method: &str, pattern: &str, auth: Auth, handler: Handler<S>) -> Self {
        let segments: Vec<Segment> = split_path(pattern)
            .into_iter()
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => match name.strip_suffix("...") {
                        Some(rest) => Segment::Rest(rest.to_owned()),
                        None => Segment::Param(name.to_owned()),
                    },
                    None => Segment::Literal(s.to_owned()),
                },
            )
            .collect();
        let method = method.to_ascii_uppercase();
        let last = segments.len().saturating_sub(1);
        assert!(
            !segments[..last]
                .iter()
                .any(|s| matches!(s, Segment::Rest(_))),
            "{pattern}: a {{name...}} segment must be the last"
        );
        self.routes.push(Route {
            name: format!("{method} {pattern}"),
            method,
            segments,
            auth,
            handler,
        });
        self
    }

    /// Every route as `(METHOD, pattern)`, in the order they were added.
    pub fn routes(&self) -> impl Iterator<Item = (&str, String)> + '_ {
        self.routes.iter().map(|r| {
            let parts: Vec<String> = r
                .segments
                .iter()
                .map(|s| match s {
                    Segment::Literal(l) => l.clone(),
                    Segment::Param(name) => format!("{{{name}}}"),
                    Segment::Rest(name) => format!("{{{name}...}}"),
                })
                .collect();
            (r.method.as_str(), format!("/{}", parts.join("/")))
        })
    }

    /// The route `req` matches, with the values of its `{name}` segments.
    fn find(&self, req: &Request) -> Option<(&Route<S>, BTreeMap<String, String>)> {
        // Match on the raw segments, then decode captured values.
        let parts = split_path(&req.raw_path);
        self.routes.iter().find_map(|r| {
            (r.method == req.method)
                .then(|| r.matches(&parts))
                .flatten()
                .map(|p| (r, p))
        })
    }

    /// The pattern `req` matches (as [`Self::routes`] writes it) and its `{name}` values,
    /// without running it: where a call is served depends on them in a cluster.
    pub fn resolve(&self, req: &Request) -> Option<(String, BTreeMap<String, String>)> {
        let (route, params) = self.find(req)?;
        let pattern = route.name.split_once(' ').map_or("", |(_, p)| p).to_owned();
        Some((pattern, params))
    }

    /// Finds the route, applies its auth rule, runs it, writes any error.
    /// Requests without a user id get 401 unless a PUBLIC route matches, so
    /// unauthenticated callers learn nothing about which routes exist.
    /// Returns the route's name (`METHOD pattern`), or [`UNMATCHED`]: a bounded set of
    /// values, unlike the paths themselves.
    pub async fn dispatch(&self, state: &S, mut req: Request, w: &mut ResponseWriter) -> &str {
        let found = self.find(&req);
        let name = found.as_ref().map_or(UNMATCHED, |(r, _)| r.name.as_str());
        let result = match found {
            Some((route, _)) if route.auth == Auth::User && req.user_id.is_none() => {
                Err(unauthorized())
            }
            None if req.user_id.is_none() => Err(unauthorized()),
            None => Err(HttpError::not_found(format!(
                "no route for {} {}",
                req.method, req.path
            ))),
            Some((route, params)) => {
                req.params = params;
                (route.handler)(state, req, w).await
            }
        };
        if let Err(e) = result {
            write_error(w, &e).await;
        }
        name
    }
}

/// The route name of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// The one place errors become responses: `{"error": "...", "status": N}`.
pub async fn write_error(w: &mut ResponseWriter, e: &HttpError) {
    if w.started() {
        // Too late for a status: the client sees a truncated body.
        tracing::warn!(
            status = e.status,
            "error after the response started: {}",
            e.message
        );
        return;
    }
    if e.status >= 500 {
        tracing::error!(status = e.status, "{}", e.message);
    }
    if let Some(seconds) = e.retry_after {
        w.set_header("Retry-After", seconds.to_string());
    }
    let body = serde_json::json!({ "error": e.message, "status": e.status });
    let _ = write_json(w, e.status, &body).await;
}

/// Writes a JSON response with a status.
pub async fn write_json(
    w: &mut ResponseWriter,
    status: u16,
    value: &serde_json::Value,
) -> HttpResult {
    let bytes = serde_json::to_vec(value).map_err(|e| HttpError::internal(e.to_string()))?;
    w.set_header("Content-Type", "application/json");
    w.write_header(status)
        .await
        .map_err(|e| HttpError::internal(e.to_string()))?;
    w.write(&bytes)
        .await
        .map_err(|e| HttpError::internal(e.to_string()))?;
    Ok(())
}

/// Maps a failed write to the client to an error (it is usually gone).
pub fn write_failed(e: std::io::Error) -> HttpError {
    HttpError::new(499, format!("writing the response: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mattermost::http::MemorySink;

    struct State;

    fn hello<'a>(
        _: &'a State,
        req: Request,
        w: &'a mut ResponseWriter,
    ) -> BoxFuture<'a, HttpResult> {
        Box::pin(async move {
            let v = serde_json::json!({ "id": req.param("id"), "path": req.params.get("path"), "user": req.user_id, "q": req.query_param("q") });
            write_json(w, 200, &v).await
        })
    }

    fn failing<'a>(
        _: &'a State,
        _: Request,
        _: &'a mut ResponseWriter,
    ) -> BoxFuture<'a, HttpResult> {
        Box::pin(async { Err(HttpError::bad_request("nope")) })
    }

    fn router() -> Router<State> {
        Router::new()
            .route("GET", "/api/v1/health", Auth::Public, hello)
            .route("GET", "/api/v1/things/{id}", Auth::User, hello)
            .route("POST", "/api/v1/things/{id}/fail", Auth::User, failing)
            .route(
                "GET",
                "/api/v1/things/{id}/files/{path...}",
                Auth::User,
                hello,
            )
    }

    async fn run(method: &str, url: &str, user: Option<&str>) -> (u16, serde_json::Value) {
        let (status, body, _) = run_named(method, url, user).await;
        (status, body)
    }

    /// [`run`], and the route name dispatch gave back.
    async fn run_named(
        method: &str,
        url: &str,
        user: Option<&str>,
    ) -> (u16, serde_json::Value, String) {
        let mut headers = Headers::new();
        if let Some(u) = user {
            headers.insert(USER_ID_HEADER.into(), vec![u.into()]);
        }
        let req = Request::from_serve_http(ServeHttpRequest {
            method: method.into(),
            url: url.into(),
            headers,
            body: Body::empty(),
        });
        let sink = MemorySink::default();
        let mut w = ResponseWriter::new(sink.clone());
        let router = router();
        let name = router.dispatch(&State, req, &mut w).await.to_owned();
        w.finish().await.unwrap();
        let r = sink.recorded();
        (
            r.status.unwrap(),
            serde_json::from_slice(&r.body).unwrap(),
            name,
        )
    }

    /// Metrics count requests by these names: the pattern, never the path itself.
    #[tokio::test]
    async fn dispatch_names_the_route_pattern() {
        let named = |(status, _, name): (u16, serde_json::Value, String)| (status, name);
        assert_eq!(
            named(run_named("GET", "/api/v1/things/42?q=1", Some("u")).await),
            (200, "GET /api/v1/things/{id}".to_owned())
        );
        assert_eq!(
            named(run_named("POST", "/api/v1/things/7/fail", Some("u")).await),
            (400, "POST /api/v1/things/{id}/fail".to_owned())
        );
        // Matched but refused: still the route's name.
        assert_eq!(
            named(run_named("GET", "/api/v1/things/1", None).await),
            (401, "GET /api/v1/things/{id}".to_owned())
        );
        for user in [None, Some("u")] {
            let (_, name) = named(run_named("GET", "/api/v1/secret-path-123", user).await);
            assert_eq!(name, UNMATCHED);
        }
    }

    #[tokio::test]
    async fn matching_params_and_query() {
        let (s, v) = run("GET", "/api/v1/things/a%20b?q=x+y&z=1", Some("u1")).await;
        assert_eq!(s, 200);
        assert_eq!(
            v,
            serde_json::json!({"id": "a b", "path": null, "user": "u1", "q": "x y"})
        );
        let (s, _) = run("get", "http://host/api/v1/things/7/", Some("u1")).await;
        assert_eq!(s, 200);
        let (s, v) = run("GET", "/api/v1/things/a%2Fb", Some("u1")).await;
        assert_eq!((s, v["id"].clone()), (200, serde_json::json!("a/b")));
    }

    #[tokio::test]
    async fn auth_and_errors() {
        let (s, v) = run("GET", "/api/v1/health", None).await;
        assert_eq!((s, v["user"].clone()), (200, serde_json::Value::Null));
        let (s, v) = run("GET", "/api/v1/things/1", None).await;
        assert_eq!(s, 401);
        assert_eq!(v["status"], 401);
        assert!(v["error"].as_str().unwrap().contains(USER_ID_HEADER));
        // Unknown routes: 401 without a user, 404 with one.
        assert_eq!(run("GET", "/nope", None).await.0, 401);
        let (s, v) = run("GET", "/nope", Some("u")).await;
        assert_eq!((s, v["status"].clone()), (404, serde_json::json!(404)));
        // Wrong method = no route.
        assert_eq!(run("DELETE", "/api/v1/things/1", Some("u")).await.0, 404);
        assert_eq!(run("GET", "/api/v1/things/1/extra", Some("u")).await.0, 404);
        let (s, v) = run("POST", "/api/v1/things/1/fail", Some("u")).await;
        assert_eq!(v, serde_json::json!({"error": "nope", "status": 400}));
        assert_eq!(s, 400);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%zz%4", false), "a/b%zz%4");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("a+b%21", true), "a b!");
    }

    #[tokio::test]
    async fn a_last_rest_segment_takes_the_rest_of_the_path() {
        let path = |url: &'static str| async move {
            let (s, v) = run("GET", url, Some("u")).await;
            assert_eq!(v["id"], "7", "{url}");
            (s, v["path"].as_str().map(str::to_owned))
        };
        assert_eq!(
            path("/api/v1/things/7/files/src/main.rs").await,
            (200, Some("src/main.rs".into()))
        );
        assert_eq!(
            path("/api/v1/things/7/files/dir%20with%20space/a%2Fb.txt?x=1").await,
            (200, Some("dir with space/a/b.txt".into()))
        );
        assert_eq!(
            path("/api/v1/things/7/files/one/").await,
            (200, Some("one".into()))
        );
        // At least one segment: the bare prefix is another route's (none here).
        assert_eq!(run("GET", "/api/v1/things/7/files", Some("u")).await.0, 404);
        assert_eq!(
            run("GET", "/api/v1/things/7/files/", Some("u")).await.0,
            404
        );
    }

    /// Decoding a segment may produce `..`, `/` or a leading `/`: the value
    /// reaches the handler as decoded, and the file rules refuse it there.
    #[tokio::test]
    async fn decoded_traversal_is_refused_by_the_file_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(tmp.path().join("secret.txt"), "secret").unwrap();
        for (url, decoded, refusal) in [
            ("..%2F..%2Fsecret.txt", "../../secret.txt", "ParentSegment"),
            (
                "src/..%2F..%2Fsecret.txt",
                "src/../../secret.txt",
                "ParentSegment",
            ),
            ("%2e%2e/secret.txt", "../secret.txt", "ParentSegment"),
            ("%2E%2E%2fsecret.txt", "../secret.txt", "ParentSegment"),
            ("%2Fetc%2Fpasswd", "/etc/passwd", "Absolute"),
            ("%2F%2Fetc/passwd", "//etc/passwd", "Absolute"),
            ("src%00/x", "src\0/x", "NulByte"),
            // Decoded once only: what stays encoded is a literal name.
            (
                "%252e%252e%252fsecret.txt",
                "%2e%2e%2fsecret.txt",
                "NotFound",
            ),
        ] {
            let url = format!("/api/v1/things/7/files/{url}");
            let (s, v) = run("GET", &url, Some("u")).await;
            let got = v["path"].as_str().unwrap();
            assert_eq!((s, got), (200, decoded));
            let refused = crate::files::resolve(&root, got).unwrap_err();
            assert!(
                format!("{refused:?}").starts_with(refusal),
                "{url}: {refused:?}"
            );
        }
    }

    #[test]
    #[should_panic(expected = "must be the last")]
    fn a_rest_segment_elsewhere_is_a_programming_error() {
        let _ = Router::<State>::new().route("GET", "/a/{rest...}/b", Auth::User, hello);
    }
}
