//! The one filter every text the bot posts goes through (see [`super::poster::BotPoster`]).
//! The text comes from Claude, from tool input and output and from users, and the bot is a
//! member of the channels it posts in, so it must not be able to do what its author could
//! not. Today: channel-wide mentions are made inert. This is the place for what else a bot
//! post must not carry (links, bidi controls, length).

use std::borrow::Cow;

use crate::mattermost::model::{Any, Post, SlackAttachment};

/// The mentions that notify a whole channel (the server's `@here`, `@channel`, `@all`, any
/// case).
const CHANNEL_MENTIONS: [&str; 3] = ["channel", "all", "here"];

/// Put after the `@` of a channel-wide mention. The server's mention parser
/// (channels/app/mention_parser_standard.go) splits words at every character that is not a
/// letter, a number or one of `:.-_@`, so `@` + ZERO WIDTH JOINER + `channel` is the two
/// words `@` and `channel`, neither a mention; the webapp shows the same text without the
/// highlight. Backticks would also be inert but would show, and break code blocks.
const JOINER: char = '\u{200D}';

/// Whether `c` continues a word around `@keyword`, so that it cannot be a mention. Only
/// ASCII letters and digits count: the server also counts other letters and numbers, so a
/// few words it would not parse as mentions are neutralised too (`é@all`), never the other
/// way round. `_` does not count either (`@all_` is a mention once the server strips the
/// suffix), at the cost of a user called `all_x` not being pinged by the bot.
fn continues_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric())
}

/// `text` with every `@channel`, `@all` and `@here` made inert.
pub(crate) fn text(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    for (at, _) in text.match_indices('@') {
        let rest = &text[at + 1..];
        let Some(keyword) = CHANNEL_MENTIONS.iter().find(|k| {
            rest.get(..k.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(k))
        }) else {
            continue;
        };
        let before = text[..at].chars().next_back();
        let after = rest[keyword.len()..].chars().next();
        if continues_word(before) || continues_word(after) {
            continue;
        }
        out.push_str(&text[copied..=at]);
        out.push(JOINER);
        copied = at + 1;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

fn in_place(s: &mut String) {
    if let Cow::Owned(safe) = text(s) {
        *s = safe;
    }
}

/// An attachment's texts (those the server parses for mentions and the rest that show);
/// buttons are left alone, their contexts are signed.
pub(crate) fn attachment(mut att: SlackAttachment) -> SlackAttachment {
    for s in [
        &mut att.fallback,
        &mut att.pretext,
        &mut att.author_name,
        &mut att.title,
        &mut att.text,
        &mut att.footer,
    ] {
        in_place(s);
    }
    for field in &mut att.fields {
        in_place(&mut field.title);
        if let Any::String(value) = &mut field.value {
            in_place(value);
        }
    }
    att
}

/// A post as the bot may send it: its message and its attachments' texts.
pub(crate) fn post(mut post: Post) -> Post {
    in_place(&mut post.message);
    if let Some(Any::Attachments(atts)) = post
        .props
        .as_mut()
        .and_then(|props| props.get_mut("attachments"))
    {
        *atts = std::mem::take(atts).into_iter().map(attachment).collect();
    }
    post
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mattermost::model::SlackAttachmentField;
    use std::collections::BTreeMap;

    /// The words the server's mention parser finds as channel mentions, for the cases below:
    /// split at characters other than letters, numbers and `:.-_@`, leading `:.-_` trimmed,
    /// trailing `.-:_` stripped, and words not starting with `@` split at `.-:`.
    fn server_channel_mentions(text: &str) -> usize {
        let system = |w: &str| ["@here", "@channel", "@all"].contains(&w.to_lowercase().as_str());
        let mut n = 0;
        for word in
            text.split(|c: char| !(matches!(c, ':' | '.' | '-' | '_' | '@') || c.is_alphanumeric()))
        {
            let word = word.trim_start_matches([':', '.', '-', '_']);
            if word.is_empty() {
                continue;
            }
            if system(word) || system(word.trim_end_matches(['.', '-', ':', '_'])) {
                n += 1;
            } else if !word.starts_with('@') {
                n += word.split(['.', '-', ':']).filter(|w| system(w)).count();
            }
        }
        n
    }

    #[test]
    fn channel_wide_mentions_become_inert() {
        for (input, mentions) in [
            ("@channel", 1),
            ("hey @ALL, look", 1),
            ("@Here.", 1),
            ("(@here)", 1),
            ("x.@all", 1),
            ("_@channel", 1),
            ("@all_", 1),
            ("**@channel** and @here and @all", 3),
            ("line\n@channel\n", 1),
        ] {
            assert_eq!(server_channel_mentions(input), mentions, "{input}");
            let safe = text(input);
            assert_eq!(server_channel_mentions(&safe), 0, "{input} -> {safe}");
            // Reads the same: only an invisible joiner was added after each `@`.
            assert_eq!(safe.replace(JOINER, ""), input);
            // Idempotent.
            assert_eq!(text(&safe), safe);
        }
    }

    #[test]
    fn other_words_are_left_alone() {
        for input in [
            "@alice and @channels and @allison",
            "mail me at ops@all.example.com",
            "@herenow",
            "no mention here",
            "",
            "@",
            "@é",
        ] {
            assert!(matches!(text(input), Cow::Borrowed(_)), "{input}");
        }
    }

    #[test]
    fn posts_and_their_attachments() {
        let att = SlackAttachment {
            pretext: "@channel".into(),
            text: "run `echo @all`".into(),
            title: "@here".into(),
            fields: vec![SlackAttachmentField {
                title: "cmd".into(),
                value: Any::String("@all".into()),
                short: false,
            }],
            ..Default::default()
        };
        let sent = post(Post {
            message: "@here done".into(),
            props: Some(BTreeMap::from([(
                "attachments".to_owned(),
                Any::Attachments(vec![att]),
            )])),
            ..Default::default()
        });
        assert_eq!(sent.message, "@\u{200D}here done");
        let Some(Any::Attachments(atts)) = sent.props.as_ref().unwrap().get("attachments") else {
            panic!("attachments kept")
        };
        let att = &atts[0];
        for t in [&att.pretext, &att.text, &att.title] {
            assert_eq!(server_channel_mentions(t), 0, "{t}");
        }
        assert!(matches!(&att.fields[0].value, Any::String(v) if v == "@\u{200D}all"));
    }
}
