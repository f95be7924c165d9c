//! The one filter every text the bot posts goes through (see [`super::poster::BotPoster`]),
//! and every answer it gives a command or a click (see `service::ephemeral`). The text comes
//! from Claude, from tool input and output, from file names and paths and from users, and the
//! bot is a member of the channels it posts in, so it must not be able to do what its author
//! could not, or show what the reader would not see:
//! - channel-wide mentions (`@channel`, `@all`, `@here`) are made inert;
//! - markdown links and images are made inert: the plugin itself never writes one (its links
//!   are bare URLs, shown as what they are), so any is text from outside, whose shown words
//!   could hide where it leads or load an image for every reader;
//! - bidi and other invisible control characters are shown escaped (`[U+202E]`), so a path
//!   cannot display as another;
//! - the length is capped to what one post can hold, with a visible note of the cut.

use std::borrow::Cow;

use super::render::POST_MAX_CHARS;
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
/// way round.
fn continues_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric())
}

/// The server's punctuation inside words (`:.-_`): trimmed from a word's start, stripped from
/// its end until a mention is found, and (`.-:`) where a word not starting with `@` is split.
fn word_punctuation(c: char) -> bool {
    matches!(c, ':' | '.' | '-' | '_')
}

/// Whether the server's word that holds the `@` at `at` surely starts with it: only its
/// punctuation (which the server trims) comes before it, after the start of the text or an
/// ASCII character the server splits words at. Anything else before it (a letter of another
/// script, another `@`) and the word may start earlier.
fn word_starts_at(text: &str, at: usize) -> bool {
    match text[..at].chars().rev().find(|c| !word_punctuation(*c)) {
        None => true,
        Some(c) => c.is_ascii() && !c.is_ascii_alphanumeric() && c != '@',
    }
}

/// Whether what follows `@keyword` makes it a username the server looks up rather than a
/// channel-wide mention. The server (channels/app/mention_parser_standard.go, `ProcessText`)
/// takes a word starting with `@` whole (`@channel_ops`, `@all-hands`, `@here.now`: a user's
/// mention, never split), and falls back to the channel-wide keyword only when what follows
/// it is all `:.-_` (`@channel.`, `@all_`), which it strips as a sentence's end. A word that
/// does not start with the `@` is split at `.-:`, so there only a letter or digit continues
/// it (`x.@all-hands` notifies the channel).
///
/// But the server reads words only inside markdown's text nodes (shared/markdown), and an
/// autolink, an emoji or emphasis that starts before the word's first letter ends the node
/// right after the keyword: `@all_www.x.co`, `@here-https://x.io`, `@all.:tada:` and
/// `@all._x_` notify the channel. Once a letter or digit follows, a cut leaves a username. So
/// after the keyword the word counts as a username only in the plain form `@all-hands`: one
/// `.`, `-` or `_` (none of which opens or closes emphasis between two letters), then an ASCII
/// letter or digit that starts no `www` link and no `scheme://` link. Anything else is made
/// inert, and the rare user named like that is not pinged by the bot.
fn continues_username(text: &str, at: usize, after: &str) -> bool {
    let mut chars = after.chars();
    let first = chars.next();
    if !word_starts_at(text, at) || !first.is_some_and(word_punctuation) {
        return continues_word(first);
    }
    let rest = chars.as_str();
    let name: String = rest
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    first != Some(':')
        && !name.is_empty()
        && !name.to_ascii_lowercase().starts_with("www")
        && !rest[name.len()..].starts_with("://")
}

/// `text` with every `@channel`, `@all` and `@here` made inert.
fn mentions(text: &str) -> Cow<'_, str> {
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
        if continues_word(before) || continues_username(text, at, &rest[keyword.len()..]) {
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

/// `text` with every mention made inert, not only the channel-wide ones: for what the model
/// writes into a card that must notify its approver and no one else (the server finds mentions
/// in an attachment's text as in a message).
pub(crate) fn no_mentions(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    for (at, _) in text.match_indices('@') {
        let name_follows = text[at + 1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !name_follows {
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

/// Characters shown escaped: they are invisible or reorder what is shown. Bidi embeddings,
/// overrides, isolates and marks; other C0/C1 controls than tab and line breaks; zero-width
/// spaces and word joiners, the byte order mark, the soft hyphen, interlinear annotations,
/// and Unicode tags (invisible ASCII). Zero width (non-)joiners stay: scripts and emoji need
/// them, and they reorder nothing.
pub(crate) fn is_hidden(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{ad}' | '\u{61c}' | '\u{180e}'
        | '\u{200b}' | '\u{200e}' | '\u{200f}'
        | '\u{2028}' | '\u{2029}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206f}'
        | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
        | '\u{e0000}'..='\u{e007f}')
}

/// `text` with every [`is_hidden`] character shown as `[U+XXXX]`.
fn hidden(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_hidden(c) {
            out.push_str(&format!("[U+{:04X}]", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A line that opens or closes a fenced code block: up to three spaces, then three or more
/// backticks or tildes. Returns the fence's character and length.
fn fence(line: &str) -> Option<(char, usize)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let c = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let n = rest.chars().take_while(|x| *x == c).count();
    // A backtick fence's info string holds no backtick (else the line is inline code).
    let info_ok = c == '~' || !rest[n..].contains('`');
    (n >= 3 && info_ok).then_some((c, n))
}

/// `text` with markdown links and images made inert outside fenced code blocks: `](` becomes
/// `]\(` (no link forms, the words and the URL show as written) and a line that would define
/// a reference link starts with `\[`. Inside a fenced block nothing renders as a link, so
/// nothing is changed there. Inline code spans are not told apart (where one ends depends on
/// the whole paragraph): a `](` in one shows its backslash, the price of never leaving a link.
fn links(text: &str) -> Cow<'_, str> {
    if !text.contains("](") && !text.contains("]:") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut fences = Fences::default();
    for line in text.split_inclusive('\n') {
        if fences.is_code(line) {
            out.push_str(line);
            continue;
        }
        let trimmed = line.trim_start_matches(' ');
        let indent = line.len() - trimmed.len();
        if indent <= 3 && trimmed.starts_with('[') && definition(trimmed) {
            out.push_str(&line[..indent]);
            out.push('\\');
            out.push_str(&trimmed.replace("](", "]\\("));
        } else {
            out.push_str(&line.replace("](", "]\\("));
        }
    }
    Cow::Owned(out)
}

/// Which lines belong to fenced code blocks, line by line.
#[derive(Default)]
struct Fences {
    open: Option<(char, usize)>,
}

impl Fences {
    /// Whether `line` (the next line of the text) is part of a fenced block, its fences
    /// included.
    fn is_code(&mut self, line: &str) -> bool {
        let bare = line.trim_end_matches(['\n', '\r']);
        match (self.open, fence(bare)) {
            (Some((c, n)), Some((c2, n2)))
                if c == c2 && n2 >= n && bare.trim().chars().all(|x| x == c) =>
            {
                self.open = None;
                true
            }
            (Some(_), _) => true,
            (None, Some(f)) => {
                self.open = Some(f);
                true
            }
            (None, None) => false,
        }
    }
}

/// Whether `line` (starting with `[`) is a reference definition: `[label]:`.
fn definition(line: &str) -> bool {
    line[1..]
        .find(']')
        .is_some_and(|end| line[1 + end + 1..].starts_with(':'))
}

/// The note that ends a text cut to fit a post.
fn cut_note(hidden_chars: usize) -> String {
    format!("\n\n… (cut: {hidden_chars} more characters not shown)")
}

/// `text` cut to at most `max` characters (runes, as Mattermost counts them) with a visible
/// note; a code block open at the cut is closed.
fn capped(text: &str, max: usize) -> Cow<'_, str> {
    let total = text.chars().count();
    if total <= max {
        return Cow::Borrowed(text);
    }
    // The note's length depends on the number it shows: room for the largest.
    let mut room = max.saturating_sub(cut_note(total).chars().count());
    let mut head: String = text.chars().take(room).collect();
    let mut fences = Fences::default();
    for line in head.split_inclusive('\n') {
        fences.is_code(line);
    }
    if let Some((c, n)) = fences.open {
        let close: String = std::iter::once('\n')
            .chain(std::iter::repeat_n(c, n))
            .collect();
        room = room.saturating_sub(close.chars().count());
        head = text.chars().take(room).collect();
        head.push_str(&close);
    }
    Cow::Owned(format!("{head}{}", cut_note(total - room.min(total))))
}

/// `text` as the bot may show it: every rule of this module, the length capped at one post.
pub(crate) fn text(text: &str) -> Cow<'_, str> {
    text_within(text, POST_MAX_CHARS)
}

/// [`text`] with the length capped at `max` characters.
pub(crate) fn text_within(input: &str, max: usize) -> Cow<'_, str> {
    let safe = inert(input);
    if safe.chars().count() <= max {
        return safe;
    }
    // A cut can end a code span or block early, and what it held is text again: the cut is
    // made inert once more, and cut shorter while that made it too long.
    let mut room = max;
    loop {
        let cut = inert(&capped(&safe, room)).into_owned();
        let over = cut.chars().count().saturating_sub(max);
        if over == 0 || room == 0 {
            return Cow::Owned(cut);
        }
        room = room.saturating_sub(over.max(1));
    }
}

/// Every rule but the length.
fn inert(input: &str) -> Cow<'_, str> {
    let out = match hidden(input) {
        Cow::Borrowed(t) => links(t),
        Cow::Owned(t) => Cow::Owned(links(&t).into_owned()),
    };
    match out {
        Cow::Borrowed(t) => mentions(t),
        Cow::Owned(t) => Cow::Owned(mentions(&t).into_owned()),
    }
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
    use proptest::prelude::*;
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
            // What follows is all the server's sentence-end punctuation: stripped.
            ("@channel_ ok", 1),
            ("@all.-: ok", 1),
            ("@here_.", 1),
            // A word that does not start with `@` is split at `.-:`.
            ("x.@all-hands", 1),
            ("é.@channel_ops-x", 0),
            ("é@all-x", 0),
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

    /// The server finds mentions in markdown's text nodes only, and an autolink, an emoji or
    /// emphasis starting inside a word ends the node right after the keyword: the server then
    /// reads `@all_`, `@here-`, `@channel.` and notifies the channel (the first five were
    /// checked against the server's own markdown and mention parser).
    #[test]
    fn a_keyword_cut_off_by_markdown_is_inert() {
        for input in [
            "@all_www.example.com",
            "@here-https://example.com",
            "@channel.http://x.io",
            "@all.:tada:",
            "@here-:smile: ok",
            // Not mentions on the server, but outside the plain form: inert by caution.
            "@all._x_",
            "@here@x.com",
        ] {
            let safe = text(input);
            assert_eq!(safe.replace(JOINER, ""), input);
            assert!(
                safe.starts_with(&format!("@{JOINER}")),
                "{input} -> {safe:?}"
            );
        }
    }

    #[test]
    fn other_words_are_left_alone() {
        for input in [
            "@alice and @channels and @allison",
            "mail me at ops@all.example.com",
            "@herenow",
            // Usernames that begin like a channel-wide keyword (the card's mention of its
            // owner): the server takes a word starting with `@` whole.
            "@channel_ops, @all-hands and @here.now: look",
            "(@channel_ops)",
            "_@all-hands",
            "@all_1",
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

    /// Links and images in `text` as a CommonMark parser finds them.
    fn live_links(text: &str) -> Vec<String> {
        use pulldown_cmark::{Event, Parser, Tag};
        Parser::new(text)
            .filter_map(|e| match e {
                Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                    Some(dest_url.to_string())
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn links_and_images_from_outside_are_inert_and_code_is_left_alone() {
        for input in [
            "see [this](http://evil.example)",
            "![pixel](http://evil.example/p.png)",
            "[ref]\n\n[ref]: http://evil.example",
            "` @channel see [this](http://evil.example)",
            "`a` [b](http://c) ``d](e``",
            "x\n```\ncode\n```\n[y](http://z)",
        ] {
            assert!(!live_links(input).is_empty(), "{input}");
            let safe = text(input);
            assert!(live_links(&safe).is_empty(), "{input} -> {safe}");
        }
        // Fenced code shows as written: inside it nothing is a link.
        for input in ["```md\n[a](http://b)\n```", "~~~\n![i](http://p)\n~~~"] {
            assert_eq!(text(input), input);
        }
        // Bare URLs stay links: they show where they lead.
        assert_eq!(text("https://example.com/a"), "https://example.com/a");
    }

    /// The issue's project directory, as the root post shows it.
    #[test]
    fn a_hostile_directory_name_in_a_root_post() {
        let root = format!(
            "Claude Code session started in `{}`.",
            "/srv/x` @channel see [this](http://evil.example)"
        );
        let safe = text(&root);
        assert_eq!(server_channel_mentions(&safe), 0, "{safe}");
        assert!(live_links(&safe).is_empty(), "{safe}");
    }

    #[test]
    fn bidi_and_invisible_characters_are_shown_escaped() {
        let safe = text("evil\u{202E}txt.exe\u{200B}\u{2066}x\u{FEFF}\u{E0041}");
        assert_eq!(
            safe,
            "evil[U+202E]txt.exe[U+200B][U+2066]x[U+FEFF][U+E0041]"
        );
        // Line breaks, tabs, emoji sequences and the joiners scripts need stay.
        for kept in ["a\tb\nc\r\n", "👨\u{200D}👩\u{200D}👧", "می\u{200C}خواهم"] {
            assert_eq!(text(kept), kept);
        }
    }

    /// An error echoing a 100 KB argument: one post's worth, cut visibly.
    #[test]
    fn long_texts_are_cut_to_one_post_with_a_note() {
        let long = format!("Unknown model `{}`", "x".repeat(100_000));
        let safe = text(&long);
        assert!(safe.chars().count() <= POST_MAX_CHARS, "{}", safe.len());
        assert!(
            safe.ends_with("more characters not shown)"),
            "{}",
            &safe[safe.len() - 80..]
        );
        // A code block open at the cut is closed.
        let code = format!("```\n{}", "line\n".repeat(10_000));
        let safe = text(&code);
        assert!(safe.chars().count() <= POST_MAX_CHARS);
        assert_eq!(
            safe.matches("```").count() % 2,
            0,
            "{}",
            &safe[safe.len() - 80..]
        );
    }

    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("@channel".to_owned()),
            Just("@ALL".to_owned()),
            Just("@here.".to_owned()),
            Just("@channel_".to_owned()),
            Just("@all-".to_owned()),
            Just("_ops".to_owned()),
            Just("-x".to_owned()),
            Just(".".to_owned()),
            Just(":".to_owned()),
            Just("@".to_owned()),
            Just("é".to_owned()),
            Just("[x](http://a.example)".to_owned()),
            Just("![i](http://b.example/i.png)".to_owned()),
            Just("[r]: http://c.example".to_owned()),
            Just("[r]".to_owned()),
            Just("`".to_owned()),
            Just("``".to_owned()),
            Just("```".to_owned()),
            Just("~~~".to_owned()),
            Just("\n".to_owned()),
            Just(" ".to_owned()),
            Just("](".to_owned()),
            Just(")".to_owned()),
            Just("\u{202E}".to_owned()),
            Just("\u{2067}".to_owned()),
            Just("\u{200B}".to_owned()),
            Just("\u{0}".to_owned()),
            "[a-z]{1,8}",
            any::<char>().prop_map(String::from),
        ]
    }

    proptest! {
        /// Whatever comes in, what goes out holds no active channel-wide mention, no live
        /// link or image, no raw bidi or invisible control, and fits the limit.
        #[test]
        fn nothing_dangerous_survives(
            parts in proptest::collection::vec(fragment(), 0..60),
            max in 60usize..400,
        ) {
            let input: String = parts.concat();
            for (out, limit) in [(text(&input), POST_MAX_CHARS), (text_within(&input, max), max)] {
                prop_assert_eq!(server_channel_mentions(&out), 0, "{:?} -> {:?}", input, out);
                prop_assert!(live_links(&out).is_empty(), "{:?} -> {:?}", input, out);
                prop_assert!(!out.chars().any(is_hidden), "{:?} -> {:?}", input, out);
                prop_assert!(out.chars().count() <= limit, "{} > {}", out.chars().count(), limit);
            }
        }
    }
}
