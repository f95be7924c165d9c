//! Splitting a long text into posts that each fit the limit and render on their own: a code
//! fence open at a cut is closed before it and reopened after it.

/// Below this, [`split_post`] uses this instead: a few fence lines must fit.
pub(super) const MIN_SPLIT_CHARS: usize = 32;

/// A code fence that is open at some point of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fence {
    ch: char,
    len: usize,
    /// The opening line (without newline), repeated to reopen after a split.
    header: String,
}

/// The fence char and length when `line` opens a fence (CommonMark: up to 3
/// spaces of indent, then 3+ backticks or tildes; a backtick fence's info
/// string has no backticks).
pub(super) fn fence_opening(line: &str) -> Option<(char, usize)> {
    let line = line.trim_end_matches(['\n', '\r']);
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let ch = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = rest.chars().take_while(|c| *c == ch).count();
    if len < 3 || (ch == '`' && rest[len..].contains('`')) {
        return None;
    }
    Some((ch, len))
}

fn fence_closes(line: &str, fence: &Fence) -> bool {
    let line = line.trim_end_matches(['\n', '\r']);
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return false;
    }
    let rest = &line[indent..];
    let len = rest.chars().take_while(|c| *c == fence.ch).count();
    len >= fence.len && rest[len..].trim().is_empty()
}

/// The fence state after `line`.
pub(super) fn after_line(state: &Option<Fence>, line: &str) -> Option<Fence> {
    match state {
        Some(f) if fence_closes(line, f) => None,
        Some(f) => Some(f.clone()),
        None => fence_opening(line).map(|(ch, len)| Fence {
            ch,
            len,
            header: line.trim_end_matches(['\n', '\r']).to_owned(),
        }),
    }
}

/// One post of a split: `prefix` reopens a fence the previous post closed,
/// `suffix` closes a fence that continues in the next post. `body` is a slice
/// of the original, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Piece {
    pub(super) prefix: String,
    pub(super) body: String,
    pub(super) suffix: String,
}

/// How a fence is reopened and closed across a split, or `None` when even
/// that would not leave room for content (an absurdly long fence line).
fn fence_lines(fence: &Option<Fence>, max: usize) -> Option<(String, String)> {
    let f = fence.as_ref()?;
    let marker: String = std::iter::repeat_n(f.ch, f.len).collect();
    let header_chars = f.header.chars().count();
    if header_chars + f.len + 2 <= max / 2 {
        Some((format!("{}\n", f.header), marker))
    } else if 2 * f.len + 2 <= max / 2 {
        Some((format!("{marker}\n"), marker))
    } else {
        None
    }
}

fn suffix_for(fence: &Option<Fence>, body: &str, max: usize) -> String {
    match fence_lines(fence, max) {
        None => String::new(),
        Some((_, close)) if body.is_empty() || body.ends_with('\n') => close,
        Some((_, close)) => format!("\n{close}"),
    }
}

pub(super) fn split_pieces(text: &str, max_chars: usize) -> Vec<Piece> {
    let max = max_chars.max(MIN_SPLIT_CHARS);
    let mut pieces = Vec::new();
    let mut fence: Option<Fence> = None;
    let mut prefix = String::new();
    let mut body = String::new();
    let mut used = 0usize; // chars of prefix + body
    let flush =
        |pieces: &mut Vec<Piece>, prefix: &mut String, body: &mut String, fence: &Option<Fence>| {
            let suffix = suffix_for(fence, body, max);
            pieces.push(Piece {
                prefix: std::mem::take(prefix),
                body: std::mem::take(body),
                suffix,
            });
            *prefix = fence_lines(fence, max)
                .map(|(open, _)| open)
                .unwrap_or_default();
        };
    for line in text.split_inclusive('\n') {
        let after = after_line(&fence, line);
        let mut rest = line;
        loop {
            let rest_chars = rest.chars().count();
            // Fits whole, with room for the suffix the state after this line
            // needs? One more char than the suffix is kept in a fence so that a
            // plain closing line (` ``` ` + newline) still fits: otherwise it
            // would start a post of its own, an empty reopened code block.
            let suffix_after = fence_lines(&after, max)
                .map(|(_, close)| close.chars().count() + 1)
                .unwrap_or(0);
            if used + rest_chars + suffix_after <= max {
                body.push_str(rest);
                used += rest_chars;
                break;
            }
            if !body.is_empty() {
                flush(&mut pieces, &mut prefix, &mut body, &fence);
                used = prefix.chars().count();
                continue;
            }
            // The line alone is too long: cut it, preferring a space in the
            // second half of what fits. Reserving the larger of the two
            // closing fences guarantees the cut leaves a non-empty rest, so
            // the line's last piece is the one that changes the fence state.
            let close_len = |state: &Option<Fence>| {
                fence_lines(state, max)
                    .map(|(_, close)| close.chars().count() + 1)
                    .unwrap_or(0)
            };
            let budget = max - used - close_len(&fence).max(close_len(&after));
            let cut = cut_point(rest, budget);
            body.push_str(&rest[..cut]);
            rest = &rest[cut..];
            flush(&mut pieces, &mut prefix, &mut body, &fence);
            used = prefix.chars().count();
        }
        fence = after;
    }
    if !body.is_empty() || pieces.is_empty() {
        pieces.push(Piece {
            prefix,
            body,
            suffix: String::new(),
        });
    }
    pieces
}

/// A byte index into `text` after at most `budget` chars (at least one char),
/// at a space in the second half of the window when there is one.
fn cut_point(text: &str, budget: usize) -> usize {
    let budget = budget.max(1);
    let end = text
        .char_indices()
        .nth(budget)
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    let window = &text[..end];
    let half = window
        .char_indices()
        .nth(budget / 2)
        .map(|(i, _)| i)
        .unwrap_or(0);
    match window.rfind(char::is_whitespace) {
        Some(i) if i >= half => i + window[i..].chars().next().map_or(1, char::len_utf8),
        _ => end,
    }
}

/// Splits `text` into posts of at most `max_chars` characters (runes, as
/// Mattermost counts them), at line boundaries when possible. A code fence
/// open at a split is closed at the end of one post and reopened (with its
/// language) at the start of the next, so every post renders on its own.
/// Apart from those added fence lines, the posts concatenate to `text`.
pub fn split_post(text: &str, max_chars: usize) -> Vec<String> {
    split_pieces(text, max_chars)
        .into_iter()
        .map(|p| format!("{}{}{}", p.prefix, p.body, p.suffix))
        .collect()
}
