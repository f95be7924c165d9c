//! A post's `attachments` prop in both shapes the server hands a plugin.
//!
//! A post the plugin just made carries `[]*model.SlackAttachment`, a registered gob type. The
//! same post read back with `GetPost` or `GetPostThread` comes from the database, where props
//! are JSON: the attachments arrive as `[]interface{}` of `map[string]interface{}` keyed by the
//! JSON field names, numbers as float64. A plugin that reads only the first shape cannot find
//! its own cards after a restart; this module reads both.

use std::collections::BTreeMap;

use super::model::{
    Any, PostAction, PostActionIntegration, PostActionOptions, Props, SlackAttachment,
    SlackAttachmentField,
};

/// The attachments of a post's props, whichever shape they came in; `None` when there are none
/// or they are neither shape.
pub fn of_props(props: &Props) -> Option<Vec<SlackAttachment>> {
    match props.as_ref()?.get("attachments")? {
        Any::Attachments(atts) => Some(atts.clone()),
        Any::List(items) => items
            .iter()
            .map(|item| match item {
                Any::Map(m) => Some(attachment(m)),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

type Json = BTreeMap<String, Any>;

fn text(m: &Json, key: &str) -> String {
    m.get(key)
        .and_then(Any::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn objects<'a>(m: &'a Json, key: &str) -> impl Iterator<Item = &'a Json> {
    let items = match m.get(key) {
        Some(Any::List(items)) => items.as_slice(),
        _ => &[],
    };
    items.iter().filter_map(|i| match i {
        Any::Map(m) => Some(m),
        _ => None,
    })
}

fn truthy(m: &Json, key: &str) -> bool {
    matches!(m.get(key), Some(Any::Bool(true)))
}

fn attachment(m: &Json) -> SlackAttachment {
    SlackAttachment {
        id: match m.get("id") {
            Some(Any::Float64(f)) => *f as i64,
            Some(Any::Int(i) | Any::Int64(i)) => *i,
            _ => 0,
        },
        fallback: text(m, "fallback"),
        color: text(m, "color"),
        pretext: text(m, "pretext"),
        author_name: text(m, "author_name"),
        author_link: text(m, "author_link"),
        author_icon: text(m, "author_icon"),
        title: text(m, "title"),
        title_link: text(m, "title_link"),
        text: text(m, "text"),
        fields: objects(m, "fields")
            .map(|f| SlackAttachmentField {
                title: text(f, "title"),
                value: f.get("value").cloned().unwrap_or_default(),
                short: truthy(f, "short"),
            })
            .collect(),
        image_url: text(m, "image_url"),
        thumb_url: text(m, "thumb_url"),
        footer: text(m, "footer"),
        footer_icon: text(m, "footer_icon"),
        timestamp: m.get("ts").cloned().unwrap_or_default(),
        actions: objects(m, "actions").map(action).collect(),
    }
}

fn action(m: &Json) -> PostAction {
    PostAction {
        id: text(m, "id"),
        r#type: text(m, "type"),
        name: text(m, "name"),
        tooltip: text(m, "tooltip"),
        disabled: truthy(m, "disabled"),
        style: text(m, "style"),
        data_source: text(m, "data_source"),
        options: objects(m, "options")
            .map(|o| PostActionOptions {
                text: text(o, "text"),
                value: text(o, "value"),
            })
            .collect(),
        default_option: text(m, "default_option"),
        integration: match m.get("integration") {
            Some(Any::Map(i)) => Some(PostActionIntegration {
                url: text(i, "url"),
                context: match i.get("context") {
                    Some(Any::Map(c)) => Some(c.clone()),
                    _ => None,
                },
            }),
            _ => None,
        },
        cookie: text(m, "cookie"),
    }
}

/// The attachments as the database keeps them: the shape [`of_props`] reads back.
pub fn as_maps(atts: &[SlackAttachment]) -> Any {
    Any::List(atts.iter().map(attachment_map).collect())
}

fn map<const N: usize>(pairs: [(&str, Any); N]) -> Any {
    Any::Map(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn attachment_map(a: &SlackAttachment) -> Any {
    let s = |v: &str| Any::String(v.to_owned());
    map([
        ("id", Any::Int64(a.id)),
        ("fallback", s(&a.fallback)),
        ("color", s(&a.color)),
        ("pretext", s(&a.pretext)),
        ("author_name", s(&a.author_name)),
        ("author_link", s(&a.author_link)),
        ("author_icon", s(&a.author_icon)),
        ("title", s(&a.title)),
        ("title_link", s(&a.title_link)),
        ("text", s(&a.text)),
        (
            "fields",
            Any::List(
                a.fields
                    .iter()
                    .map(|f| {
                        map([
                            ("title", s(&f.title)),
                            ("value", f.value.clone()),
                            ("short", Any::Bool(f.short)),
                        ])
                    })
                    .collect(),
            ),
        ),
        ("image_url", s(&a.image_url)),
        ("thumb_url", s(&a.thumb_url)),
        ("footer", s(&a.footer)),
        ("footer_icon", s(&a.footer_icon)),
        ("ts", a.timestamp.clone()),
        (
            "actions",
            Any::List(a.actions.iter().map(action_map).collect()),
        ),
    ])
}

fn action_map(a: &PostAction) -> Any {
    let s = |v: &str| Any::String(v.to_owned());
    let integration = match &a.integration {
        Some(i) => map([
            ("url", s(&i.url)),
            (
                "context",
                i.context.clone().map(Any::Map).unwrap_or_default(),
            ),
        ]),
        None => Any::Nil,
    };
    map([
        ("id", s(&a.id)),
        ("type", s(&a.r#type)),
        ("name", s(&a.name)),
        ("tooltip", s(&a.tooltip)),
        ("disabled", Any::Bool(a.disabled)),
        ("style", s(&a.style)),
        ("data_source", s(&a.data_source)),
        (
            "options",
            Any::List(
                a.options
                    .iter()
                    .map(|o| map([("text", s(&o.text)), ("value", s(&o.value))]))
                    .collect(),
            ),
        ),
        ("default_option", s(&a.default_option)),
        ("integration", integration),
        ("cookie", s(&a.cookie)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Any)]) -> Any {
        Any::Map(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn a_card_read_back_from_the_database_is_understood() {
        // What GetPost returns for a card: the JSON the server stored, decoded into interfaces.
        let stored = Some(BTreeMap::from([(
            "attachments".to_owned(),
            Any::List(vec![map(&[
                ("id", Any::Float64(0.0)),
                ("text", "Claude wants to use **Write**".into()),
                (
                    "fields",
                    Any::List(vec![map(&[
                        ("title", "File".into()),
                        ("value", "a.txt".into()),
                        ("short", Any::Bool(true)),
                    ])]),
                ),
                (
                    "actions",
                    Any::List(vec![map(&[
                        ("id", "approve".into()),
                        ("name", "Approve".into()),
                        ("type", "button".into()),
                        (
                            "integration",
                            map(&[
                                ("url", "/plugins/claude-code/api/v1/actions/approval".into()),
                                ("context", map(&[("request_id", "r1".into())])),
                            ]),
                        ),
                    ])]),
                ),
            ])]),
        )]));
        let atts = of_props(&stored).expect("attachments");
        assert_eq!(atts.len(), 1);
        assert_eq!(atts[0].text, "Claude wants to use **Write**");
        assert_eq!(atts[0].fields[0].title, "File");
        assert!(atts[0].fields[0].short);
        let action = &atts[0].actions[0];
        assert_eq!(
            (action.id.as_str(), action.name.as_str()),
            ("approve", "Approve")
        );
        let integration = action.integration.as_ref().expect("integration");
        assert_eq!(
            integration.url,
            "/plugins/claude-code/api/v1/actions/approval"
        );
        assert_eq!(
            integration.context.as_ref().unwrap().get("request_id"),
            Some(&Any::String("r1".into()))
        );
    }

    #[test]
    fn the_sent_shape_and_no_attachments() {
        let att = SlackAttachment {
            text: "x".into(),
            ..Default::default()
        };
        let sent = Some(BTreeMap::from([(
            "attachments".to_owned(),
            Any::Attachments(vec![att.clone()]),
        )]));
        assert_eq!(of_props(&sent), Some(vec![att]));
        assert_eq!(of_props(&None), None);
        let other = Some(BTreeMap::from([(
            "attachments".to_owned(),
            Any::from("no"),
        )]));
        assert_eq!(of_props(&other), None);
        let mixed = Some(BTreeMap::from([(
            "attachments".to_owned(),
            Any::List(vec![Any::from("no")]),
        )]));
        assert_eq!(of_props(&mixed), None);
    }
}
