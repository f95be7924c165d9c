//! `/api/v1/sessions/{id}/files…`: the project's files. Reading is for the channel's members;
//! a person's own edits (create, update, delete) are for approvers, since they skip the
//! approval a tool call would wait on. Updates and deletes carry `If-Match: <sha256>` of the
//! version the editor read: a newer change is never overwritten (409).

use serde::Deserialize;

use super::{body, handler, json_of, route, Call};
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

handler!(list, |app, req| {
    let call = Call::new(app, &req)?;
    let dir = req.query_param("dir").unwrap_or_default();
    let (_, info) = call.session(Action::Files, false).await?;
    Ok((200, json_of(&call.chat.list_dir(&info, &dir).await?)?))
});

handler!(read, |app, req| {
    let call = Call::new(app, &req)?;
    let path = req.param("path").to_owned();
    let (_, info) = call.session(Action::File, false).await?;
    Ok((200, json_of(&call.chat.read_file(&info, &path).await?)?))
});

/// Which edit a route makes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EditRoute {
    Create,
    Update,
    Delete,
}

/// One edit: the body and `If-Match` are read first (bad input changes nothing), then the
/// gate, then the write.
async fn edit(
    app: &App,
    mut req: Request,
    route: EditRoute,
) -> Result<(u16, serde_json::Value), HttpError> {
    let call = Call::new(app, &req)?;
    let path = req.param("path").to_owned();
    let edit = match route {
        EditRoute::Create => FileEdit::Create {
            content: body::<ContentBody>(&mut req).await?.content.into_bytes(),
        },
        EditRoute::Update => FileEdit::Update {
            content: body::<ContentBody>(&mut req).await?.content.into_bytes(),
            expected: if_match(&req)?,
        },
        EditRoute::Delete => FileEdit::Delete {
            expected: if_match(&req)?,
        },
    };
    let (handle, info) = call.session(Action::EditFile, true).await?;
    let edited = call
        .chat
        .edit_file((&handle, &info), &call.user, &path, edit)
        .await?;
    let status = if route == EditRoute::Create { 201 } else { 200 };
    Ok((status, json_of(&edited)?))
}

handler!(create, |app, req| {
    edit(app, req, EditRoute::Create).await
});
handler!(update, |app, req| {
    edit(app, req, EditRoute::Update).await
});
handler!(delete, |app, req| {
    edit(app, req, EditRoute::Delete).await
});

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
