//! `/api/v1/sessions/{id}/files…`: the project's files. Reading is for the channel's members;
//! a person's own edits (create, update, delete) are for approvers, since they skip the
//! approval a tool call would wait on. Updates and deletes carry `If-Match: <sha256>` of the
//! version the editor read: a newer change is never overwritten (409).

use serde::Deserialize;

use super::{body, json_of, respond, route, Call};
use crate::app::App;
use crate::chat::authz::Action;
use crate::chat::service::FileEdit;
use crate::http::{BoxFuture, HttpError, HttpResult, Request, Router};
use crate::mattermost::http::ResponseWriter;

pub(super) fn mount(router: Router<App>) -> Router<App> {
    let r = route(router, "GET", "/api/v1/sessions/{id}/files", list);
    let r = route(r, "GET", "/api/v1/sessions/{id}/files/{path...}", read);
    let r = route(r, "POST", "/api/v1/sessions/{id}/files/{path...}", create);
    let r = route(r, "PUT", "/api/v1/sessions/{id}/files/{path...}", update);
    route(r, "DELETE", "/api/v1/sessions/{id}/files/{path...}", delete)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentBody {
    content: String,
}

/// The version an edit was made from: `If-Match`, an entity tag or bare, without quotes.
fn if_match(req: &Request) -> Result<String, HttpError> {
    let raw = req.header("If-Match").map(str::trim).unwrap_or("");
    let tag = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
    if tag.is_empty() {
        return Err(HttpError::new(
            428,
            "If-Match is required: the sha256 of the file as you read it (GET answers it)",
        ));
    }
    Ok(tag.to_owned())
}

fn list<'a>(app: &'a App, req: Request, w: &'a mut ResponseWriter) -> BoxFuture<'a, HttpResult> {
    Box::pin(respond(w, async move {
        let call = Call::new(app, &req)?;
        let id = req.param("id").to_owned();
        let dir = req.query_param("dir").unwrap_or_default();
        let (_, info) = call.session(&id, Action::Files, false).await?;
        Ok((200, json_of(&call.chat.list_dir(&info, &dir).await?)?))
    }))
}

fn read<'a>(app: &'a App, req: Request, w: &'a mut ResponseWriter) -> BoxFuture<'a, HttpResult> {
    Box::pin(respond(w, async move {
        let call = Call::new(app, &req)?;
        let (id, path) = (req.param("id").to_owned(), req.param("path").to_owned());
        let (_, info) = call.session(&id, Action::File, false).await?;
        Ok((200, json_of(&call.chat.read_file(&info, &path).await?)?))
    }))
}

/// One edit: the body and `If-Match` are read first (bad input changes nothing), then the
/// gate, then the write.
async fn edit(
    app: &App,
    mut req: Request,
    make: fn(Option<String>, Option<String>) -> FileEdit,
    needs_body: bool,
    needs_version: bool,
) -> Result<(u16, serde_json::Value), HttpError> {
    let call = Call::new(app, &req)?;
    let (id, path) = (req.param("id").to_owned(), req.param("path").to_owned());
    let content = if needs_body {
        Some(body::<ContentBody>(&mut req).await?.content)
    } else {
        None
    };
    let expected = if needs_version {
        Some(if_match(&req)?)
    } else {
        None
    };
    let (handle, info) = call.session(&id, Action::EditFile, true).await?;
    let edited = call
        .chat
        .edit_file((&handle, &info), &call.user, &path, make(content, expected))
        .await?;
    let status = if needs_body && !needs_version {
        201
    } else {
        200
    };
    Ok((status, json_of(&edited)?))
}

fn create<'a>(app: &'a App, req: Request, w: &'a mut ResponseWriter) -> BoxFuture<'a, HttpResult> {
    Box::pin(respond(
        w,
        edit(
            app,
            req,
            |content, _| FileEdit::Create {
                content: content.unwrap_or_default().into_bytes(),
            },
            true,
            false,
        ),
    ))
}

fn update<'a>(app: &'a App, req: Request, w: &'a mut ResponseWriter) -> BoxFuture<'a, HttpResult> {
    Box::pin(respond(
        w,
        edit(
            app,
            req,
            |content, expected| FileEdit::Update {
                content: content.unwrap_or_default().into_bytes(),
                expected: expected.unwrap_or_default(),
            },
            true,
            true,
        ),
    ))
}

fn delete<'a>(app: &'a App, req: Request, w: &'a mut ResponseWriter) -> BoxFuture<'a, HttpResult> {
    Box::pin(respond(
        w,
        edit(
            app,
            req,
            |_, expected| FileEdit::Delete {
                expected: expected.unwrap_or_default(),
            },
            false,
            true,
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mattermost::http::{Body, Headers, ServeHttpRequest};

    fn with_if_match(value: Option<&str>) -> Request {
        let mut headers = Headers::new();
        if let Some(v) = value {
            headers.insert("If-Match".into(), vec![v.into()]);
        }
        Request::from_serve_http(ServeHttpRequest {
            method: "PUT".into(),
            url: "/x".into(),
            headers,
            body: Body::empty(),
        })
    }

    #[test]
    fn if_match_takes_bare_quoted_and_weak_tags_and_requires_one() {
        for v in ["abc", "\"abc\"", "W/\"abc\"", "  abc "] {
            assert_eq!(if_match(&with_if_match(Some(v))).unwrap(), "abc", "{v}");
        }
        for v in [None, Some(""), Some("\"\"")] {
            assert_eq!(
                if_match(&with_if_match(v)).unwrap_err().status,
                428,
                "{v:?}"
            );
        }
    }
}
