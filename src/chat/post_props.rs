//! What the webapp reads on the bot's session posts: the post type it registers a component
//! for, and the props that tie a post to its session, turn or approval. Mobile and other clients
//! run no plugin code: they show the post's message and its attachments, which stay complete.

use std::collections::BTreeMap;

use crate::mattermost::model::{Any, Post, Props, SlackAttachment};

/// The type of turn posts and approval cards. `Post.IsValid` accepts any `custom_` type, and
/// `Posts.Type` is varchar(26).
pub(crate) const POST_TYPE: &str = "custom_claude_code";
/// The session a post belongs to.
pub(crate) const PROP_SESSION: &str = "claude_code_session";
/// The prompt id of the turn a turn post shows (absent for a turn that no prompt named).
pub(crate) const PROP_TURN: &str = "claude_code_turn";
/// Which of a turn's posts: 0 is the turn's post, 1.. continue its text past the post limit.
pub(crate) const PROP_PART: &str = "claude_code_part";
/// The approval request a card stands for.
pub(crate) const PROP_REQUEST: &str = "claude_code_request";

/// Props of one part of a turn's post(s).
pub(crate) fn turn_props(session_id: &str, prompt_id: Option<&str>, part: usize) -> Props {
    let mut props = BTreeMap::from([
        (PROP_SESSION.to_owned(), Any::String(session_id.to_owned())),
        (PROP_PART.to_owned(), Any::Int64(part as i64)),
    ]);
    if let Some(id) = prompt_id {
        props.insert(PROP_TURN.to_owned(), Any::String(id.to_owned()));
    }
    Some(props)
}

/// Props of an approval card: the request, and the attachment with its buttons. Every version
/// of a card carries all of them, because a click's `update` replaces the post's props whole.
pub(crate) fn card_props(session_id: &str, request_id: &str, attachment: SlackAttachment) -> Props {
    Some(BTreeMap::from([
        (PROP_SESSION.to_owned(), Any::String(session_id.to_owned())),
        (PROP_REQUEST.to_owned(), Any::String(request_id.to_owned())),
        ("attachments".to_owned(), Any::Attachments(vec![attachment])),
    ]))
}

/// A bot post of the session's type with `props`.
pub(crate) fn typed(post: Post, props: Props) -> Post {
    Post {
        r#type: POST_TYPE.to_owned(),
        props,
        ..post
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_fits_the_column_and_is_a_custom_type() {
        assert!(POST_TYPE.starts_with("custom_") && POST_TYPE.len() <= 26);
    }

    #[test]
    fn turn_props_name_the_session_part_and_prompt() {
        let props = turn_props("s1", Some("p1"), 2).unwrap_or_default();
        assert!(matches!(&props[PROP_SESSION], Any::String(s) if s == "s1"));
        assert!(matches!(&props[PROP_TURN], Any::String(s) if s == "p1"));
        assert!(matches!(props[PROP_PART], Any::Int64(2)));
        let unnamed = turn_props("s1", None, 0).unwrap_or_default();
        assert!(!unnamed.contains_key(PROP_TURN));
    }

    #[test]
    fn card_props_keep_the_request_beside_the_attachment() {
        let props = card_props("s1", "r1", SlackAttachment::default()).unwrap_or_default();
        assert!(matches!(&props[PROP_REQUEST], Any::String(s) if s == "r1"));
        assert!(matches!(&props["attachments"], Any::Attachments(v) if v.len() == 1));
    }
}
