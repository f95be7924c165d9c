//! Diagnostics routes for the Go harness that drives the built plugin with
//! Mattermost's real host code. Mounted only when the process environment has
//! `MM_CLAUDE_CODE_DIAGNOSTICS=1` (production never sets it); they require
//! `Mattermost-User-Id` like every route.
//!
//! - `GET  /api/v1/diag/request`: echoes what arrived as JSON.
//! - `POST /api/v1/diag/echo[?status=N]`: streams the body back byte-exact.
//! - `GET  /api/v1/diag/download?bytes=N`: N bytes, byte i = i % 251.
//! - `PUT/GET /api/v1/diag/kv/{key}`, `GET /api/v1/diag/kv?page&per_page`,
//!   `POST /api/v1/diag/kv/{key}/cas`: the plugin KV store through the API.

use base64::Engine;
use tokio::io::AsyncReadExt;

use super::{write_failed, write_json, Auth, BoxFuture, HttpError, HttpResult, Request, Router};
use crate::app::App;
use crate::mattermost::http::ResponseWriter;

/// Largest KV value accepted through PUT (the server's own limit is similar).
pub const KV_VALUE_LIMIT: usize = 8 * 1024 * 1024;
/// Largest download served.
pub const DOWNLOAD_LIMIT: u64 = 1 << 30;
/// Copy buffer for streaming routes.
const STREAM_CHUNK: usize = 64 * 1024;

pub fn mount(router: Router<App>) -> Router<App> {
    router
        .route("GET", "/api/v1/diag/request", Auth::User, request)
        .route("POST", "/api/v1/diag/echo", Auth::User, echo)
        .route("GET", "/api/v1/diag/download", Auth::User, download)
        .route("GET", "/api/v1/diag/kv", Auth::User, kv_list)
        .route("PUT", "/api/v1/diag/kv/{key}", Auth::User, kv_put)
        .route("GET", "/api/v1/diag/kv/{key}", Auth::User, kv_get)
        .route("POST", "/api/v1/diag/kv/{key}/cas", Auth::User, kv_cas)
}

fn request<'a>(_: &'a App, req: Request, w: &'a mut ResponseWriter) -> BoxFuture<'a, HttpResult> {
    Box::pin(async move {
        let v = serde_json::json!({
            "method": req.method,
            "path": req.path,
            "query": req.query_map(),
            "headers": req.headers,
            "user_id": req.user_id,
        });
        write_json(w, 200, &v).await
    })
}

fn echo<'a>(_: &'a App, mut req: Request, w: &'a mut ResponseWriter) -> BoxFuture<'a, HttpResult> {
    Box::pin(async move {
        let status: u16 = req.query_num("status", 200)?;
        if !(200..=599).contains(&status) {
            return Err(HttpError::bad_request(format!(
                "status {status} out of range 200..599"
            )));
        }
        w.set_header("Content-Type", "application/octet-stream");
        w.set_header("X-Diag", "echo");
        w.write_header(status).await.map_err(write_failed)?;
        let mut buf = vec![0u8; STREAM_CHUNK];
        loop {
            let n = req.body.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            w.write(&buf[..n]).await.map_err(write_failed)?;
        }
    })
}

fn download<'a>(_: &'a App, req: Request, w: &'a mut ResponseWriter) -> BoxFuture<'a, HttpResult> {
    Box::pin(async move {
        let total: u64 = req.query_num("bytes", 0)?;
        if total > DOWNLOAD_LIMIT {
            return Err(HttpError::bad_request(format!(
                "bytes: at most {DOWNLOAD_LIMIT}"
            )));
        }
        w.set_header("Content-Type", "application/octet-stream");
        w.set_header("Content-Length", total.to_string());
        w.write_header(200).await.map_err(write_failed)?;
        let mut sent: u64 = 0;
        let mut chunk = Vec::with_capacity(STREAM_CHUNK);
        while sent < total {
            let n = (total - sent).min(STREAM_CHUNK as u64);
            chunk.clear();
            chunk.extend((sent..sent + n).map(|i| (i % 251) as u8));
            w.write(&chunk).await.map_err(write_failed)?;
            sent += n;
        }
        Ok(())
    })
}

fn kv_put<'a>(
    app: &'a App,
    mut req: Request,
    w: &'a mut ResponseWriter,
) -> BoxFuture<'a, HttpResult> {
    Box::pin(async move {
        let value = req.body.read_to_end_limited(KV_VALUE_LIMIT).await?;
        app.api()?.kv_set(req.param("key"), value).await?;
        write_json(w, 200, &serde_json::json!({ "ok": true })).await
    })
}

fn kv_get<'a>(app: &'a App, req: Request, w: &'a mut ResponseWriter) -> BoxFuture<'a, HttpResult> {
    Box::pin(async move {
        let key = req.param("key");
        let Some(value) = app.api()?.kv_get(key).await? else {
            return Err(HttpError::not_found(format!("no value for key {key:?}")));
        };
        w.set_header("Content-Type", "application/octet-stream");
        w.write_header(200).await.map_err(write_failed)?;
        w.write(&value).await.map_err(write_failed)
    })
}

fn kv_list<'a>(app: &'a App, req: Request, w: &'a mut ResponseWriter) -> BoxFuture<'a, HttpResult> {
    Box::pin(async move {
        let page: i64 = req.query_num("page", 0)?;
        let per_page: i64 = req.query_num("per_page", 100)?;
        let keys = app.api()?.kv_list(page, per_page).await?;
        write_json(w, 200, &serde_json::json!({ "keys": keys })).await
    })
}

fn b64_field(v: &serde_json::Value, name: &str) -> Result<Option<Vec<u8>>, HttpError> {
    match v.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(Some)
            .map_err(|e| HttpError::bad_request(format!("{name}: not base64: {e}"))),
        Some(_) => Err(HttpError::bad_request(format!(
            "{name}: must be a base64 string or null"
        ))),
    }
}

fn kv_cas<'a>(
    app: &'a App,
    mut req: Request,
    w: &'a mut ResponseWriter,
) -> BoxFuture<'a, HttpResult> {
    Box::pin(async move {
        let body = req.body.read_to_end_limited(2 * KV_VALUE_LIMIT).await?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| HttpError::bad_request(format!("body is not JSON: {e}")))?;
        let old = b64_field(&v, "old")?;
        let new = b64_field(&v, "new")?;
        let ok = app
            .api()?
            .kv_compare_and_set(req.param("key"), old, new)
            .await?;
        write_json(w, 200, &serde_json::json!({ "ok": ok })).await
    })
}
