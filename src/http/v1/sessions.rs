//! `/api/v1/sessions…`: list, start, show, stop, prompt, interrupt, mode, model, context and
//! history.

use serde::Deserialize;
use serde_json::json;

use super::{body, handler, json_of, route, Call};
use crate::app::App;
use crate::chat::authz::Action;
use crate::chat::command::{is_valid_model_name, Cleanup, WorktreeRequest};
use crate::chat::service::{Asker, ContextError, ServiceError, StartRequest, HISTORY_KINDS};
use crate::claude::PermissionMode;
use crate::http::{BoxFuture, HttpError, HttpResult, Request, Router};
use crate::mattermost::http::ResponseWriter;
use crate::store::HistoryQuery;

/// Most history entries one page holds.
const MAX_HISTORY_PAGE: usize = 200;
/// Most events one replay answers (the client asks again after the last one).
const MAX_EVENTS_PAGE: usize = 1000;

pub(super) fn mount(router: Router<App>) -> Router<App> {
    let r = route(router, "GET", "/api/v1/sessions", list);
    let r = route(r, "POST", "/api/v1/sessions", create);
    let r = route(r, "GET", "/api/v1/sessions/{id}", show);
    let r = route(r, "DELETE", "/api/v1/sessions/{id}", stop);
    let r = route(r, "POST", "/api/v1/sessions/{id}/prompt", prompt);
    let r = route(r, "POST", "/api/v1/sessions/{id}/interrupt", interrupt);
    let r = route(r, "PUT", "/api/v1/sessions/{id}/mode", mode);
    let r = route(r, "PUT", "/api/v1/sessions/{id}/model", model);
    let r = route(r, "POST", "/api/v1/sessions/{id}/context", context);
    let r = route(r, "GET", "/api/v1/sessions/{id}/history", history);
    route(r, "GET", "/api/v1/sessions/{id}/events", events)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    channel_id: String,
    project_path: String,
    model: Option<String>,
    mode: Option<PermissionMode>,
    /// `{}` or `{"branch": "…"}`: as `/claude start … --worktree [branch]`.
    worktree: Option<WorktreeBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorktreeBody {
    branch: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptBody {
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeBody {
    mode: PermissionMode,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelBody {
    model: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextBody {
    thread: Option<String>,
    file: Option<String>,
}

fn valid_model(model: &str) -> Result<(), HttpError> {
    if is_valid_model_name(model) {
        Ok(())
    } else {
        Err(HttpError::bad_request(format!(
            "`{model}` is not a model name: use an alias or a model id, e.g. sonnet or claude-opus-4-1"
        )))
    }
}

handler!(list, |app, req| {
    let call = Call::new(app, &req)?;
    let views = call.chat.visible_sessions(&call.config, &call.user).await?;
    let serde_json::Value::Array(mut sessions) = json_of(&views)? else {
        return Err(HttpError::new(500, "the sessions are not a list"));
    };
    // In a cluster, the sessions other nodes run (or nobody does) too.
    sessions.extend(
        app.views_elsewhere(&call.chat, &call.config, &call.user)
            .await?,
    );
    sessions.sort_by_key(|v| std::cmp::Reverse(v["created_at"].as_i64().unwrap_or(0)));
    Ok((200, json!({ "sessions": sessions })))
});

handler!(create, |app, req| {
    let call = Call::new(app, &req)?;
    let b: CreateBody = body(&mut req).await?;
    if let Some(m) = &b.model {
        valid_model(m)?;
    }
    let current = call.chat.session_of_channel(&b.channel_id);
    let asker = Asker {
        user_id: &call.user,
        channel_id: &b.channel_id,
        team_id: "",
        session: current.as_ref().map(|(_, info)| info),
    };
    call.chat
        .gate(&call.config, Action::Start, &asker, Some("requests"))
        .await
        // Naming a channel one is not in is answered as the table words it.
        .map_err(|e| match e {
            ServiceError::NotAllowed { text, .. } => HttpError::new(403, text),
            e => HttpError::from(e),
        })?;
    let request = StartRequest {
        channel_id: &b.channel_id,
        user_id: &call.user,
        path: &b.project_path,
        model: b.model,
        mode: b.mode,
        worktree: b.worktree.map(|w| WorktreeRequest { branch: w.branch }),
    };
    let started = call.chat.start(&call.config, request).await?;
    let (handle, info) = call
        .chat
        .session_by_id(started.handle.id())
        .ok_or(ServiceError::SessionGone)?;
    Ok((201, json_of(&call.chat.view(&handle, &info).await?)?))
});

handler!(show, |app, req| {
    let call = Call::new(app, &req)?;
    let (handle, info) = call.session(Action::Status, false).await?;
    Ok((200, json_of(&call.chat.view(&handle, &info).await?)?))
});

/// `?clean=true` (as `/claude stop --clean`), `&force=true` (`--clean --force`).
fn cleanup(req: &Request) -> Result<Cleanup, HttpError> {
    let flag = |name: &str| match req.query_param(name).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(v) => Err(HttpError::bad_request(format!(
            "query parameter {name}: true or false, not {v:?}"
        ))),
    };
    match (flag("clean")?, flag("force")?) {
        (false, false) => Ok(Cleanup::Keep),
        (true, false) => Ok(Cleanup::Remove),
        (true, true) => Ok(Cleanup::Discard),
        (false, true) => Err(HttpError::bad_request("force=true goes with clean=true")),
    }
}

handler!(stop, |app, req| {
    let call = Call::new(app, &req)?;
    let cleanup = cleanup(&req)?;
    let (handle, _) = call.session(Action::of_stop(cleanup), true).await?;
    match cleanup {
        Cleanup::Keep => call.chat.stop(&handle, &call.user).await?,
        clean => {
            let force = clean == Cleanup::Discard;
            call.chat.stop_and_clean(&handle, &call.user, force).await?;
        }
    }
    // Read again: a clean stop changed the session's worktree.
    let (handle, info) = call
        .chat
        .session_by_id(handle.id())
        .ok_or(ServiceError::SessionGone)?;
    Ok((200, json_of(&call.chat.view(&handle, &info).await?)?))
});

handler!(prompt, |app, req| {
    let call = Call::new(app, &req)?;
    let b: PromptBody = body(&mut req).await?;
    if b.text.trim().is_empty() {
        return Err(HttpError::bad_request("the prompt is empty"));
    }
    let (handle, info) = call.session(Action::Prompt, true).await?;
    let max = call.config.max_concurrent_sessions as usize;
    let prompt_id = call
        .chat
        .prompt((&handle, &info), &call.user, b.text.into(), max)
        .await?;
    Ok((202, json!({ "prompt_id": prompt_id })))
});

handler!(interrupt, |app, req| {
    let call = Call::new(app, &req)?;
    let (handle, _) = call.session(Action::Interrupt, true).await?;
    call.chat.interrupt(&handle, &call.user).await?;
    Ok((200, json!({})))
});

handler!(mode, |app, req| {
    let call = Call::new(app, &req)?;
    let b: ModeBody = body(&mut req).await?;
    let (handle, info) = call.session(Action::Mode, true).await?;
    call.chat.set_mode(&handle, b.mode, &call.user).await?;
    Ok((200, json_of(&call.chat.view(&handle, &info).await?)?))
});

handler!(model, |app, req| {
    let call = Call::new(app, &req)?;
    let b: ModelBody = body(&mut req).await?;
    valid_model(&b.model)?;
    let (handle, info) = call.session(Action::Model, true).await?;
    call.chat.set_model(&handle, &b.model, &call.user).await?;
    Ok((200, json_of(&call.chat.view(&handle, &info).await?)?))
});

handler!(context, |app, req| {
    let call = Call::new(app, &req)?;
    let b: ContextBody = body(&mut req).await?;
    let limit = call.config.max_context_bytes;
    let message = match (b.thread, b.file) {
        (Some(link), None) => {
            let (handle, _) = call.session(Action::ContextThread, true).await?;
            call.chat
                .context_thread(&handle, &call.user, &link, limit)
                .await?
        }
        (None, Some(path)) => {
            let (handle, info) = call.session(Action::ContextFile, true).await?;
            call.chat
                .context_file((&handle, &info), &path, limit)
                .await?
        }
        _ => return Err(ServiceError::from(ContextError::ThreadOrFile).into()),
    };
    Ok((200, json!({ "message": message })))
});

handler!(history, |app, req| {
    let call = Call::new(app, &req)?;
    let limit: usize = req.query_num("limit", 50)?;
    if !(1..=MAX_HISTORY_PAGE).contains(&limit) {
        return Err(HttpError::bad_request(format!(
            "limit must be between 1 and {MAX_HISTORY_PAGE}"
        )));
    }
    let before = req
        .query_param("before")
        .map(|_| req.query_num("before", 0i64))
        .transpose()?;
    let text = req.query_param("q").filter(|q| !q.trim().is_empty());
    let (handle, _) = call.session(Action::History, false).await?;
    let query = HistoryQuery {
        before,
        limit,
        text,
        kinds: HISTORY_KINDS,
    };
    let page = call.chat.history(handle.id(), query).await?;
    Ok((200, json_of(&page)?))
});

handler!(events, |app, req| {
    let call = Call::new(app, &req)?;
    let after: i64 = req.query_num("after", 0)?;
    let limit: usize = req.query_num("limit", 500)?;
    if after < 0 || !(1..=MAX_EVENTS_PAGE).contains(&limit) {
        return Err(HttpError::bad_request(format!(
            "after must be 0 or more, limit between 1 and {MAX_EVENTS_PAGE}"
        )));
    }
    let (handle, _) = call.session(Action::Status, false).await?;
    let events = call.chat.events_after(handle.id(), after, limit).await?;
    let last_seq = events
        .last()
        .and_then(|e| e["seq"].as_i64())
        .unwrap_or(after);
    Ok((200, json!({ "events": events, "last_seq": last_seq })))
});
