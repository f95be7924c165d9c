//! Prompts that wait: the session's actor runs one turn at a time and queues the prompts that
//! arrive meanwhile, in order. The thread shows it: a prompt that has to wait gets a short
//! reply "⏳ Queued (2nd): …", which becomes "▶ Started …" when its turn starts, or says it
//! was not run when the session stopped or crashed first (the actor drops its queue then).
//!
//! This is a fold of the session's events (Prompt, and the status changes that start and end
//! turns), so it needs no answer from the actor and replays the same after a lag.

use std::collections::VecDeque;

use super::StreamCtx;
use crate::chat::outbox::{Outbox, PostSink};
use crate::sessions::{words_of, EventKind, SessionErrorKind, SessionState};
use crate::store::{OwedKind, OwedPost, StoreError};

/// How much of a prompt's first line its queue line quotes.
const EXCERPT_CHARS: usize = 80;

/// A prompt accepted and not started yet.
struct Waiting {
    prompt_id: String,
    excerpt: String,
    /// Its place in the queue when it came, if it had to wait (then it has a line).
    position: Option<usize>,
}

/// What the thread should say about one queued prompt now.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct QueueLine {
    /// The line's post in the outbox: `queued:<prompt id>`.
    pub key: String,
    pub text: String,
    /// No later version follows (started, or dropped).
    pub closed: bool,
}

#[derive(Default)]
pub(super) struct Queue {
    /// A turn runs (or waits for an approval): a prompt that comes now waits.
    running: bool,
    waiting: VecDeque<Waiting>,
}

impl Queue {
    /// Folds one event; returns the lines that changed.
    pub(super) fn apply(&mut self, event: &EventKind) -> Vec<QueueLine> {
        match event {
            EventKind::Prompt {
                prompt_id,
                text,
                words_at,
                ..
            } => {
                // Its place among the prompts that wait: behind the running turn, or, when
                // none runs, behind the first accepted prompt (which starts next).
                let position = if self.running {
                    Some(self.waiting.len() + 1)
                } else {
                    Some(self.waiting.len()).filter(|n| *n > 0)
                };
                let excerpt = excerpt(words_of(text, *words_at));
                self.waiting.push_back(Waiting {
                    prompt_id: prompt_id.clone(),
                    excerpt: excerpt.clone(),
                    position,
                });
                position
                    .map(|p| QueueLine {
                        key: key(prompt_id),
                        text: format!("⏳ Queued ({}): {excerpt}", ordinal(p)),
                        closed: false,
                    })
                    .into_iter()
                    .collect()
            }
            EventKind::StatusChanged { to, prompt_id, .. } => match to {
                SessionState::Running => {
                    self.running = true;
                    let Some(id) = prompt_id else {
                        return Vec::new();
                    };
                    let Some(i) = self.waiting.iter().position(|w| w.prompt_id == *id) else {
                        return Vec::new();
                    };
                    let w = self.waiting.remove(i).expect("index from position");
                    w.position
                        .map(|p| QueueLine {
                            key: key(&w.prompt_id),
                            text: format!("▶ Started (was queued {}): {}", ordinal(p), w.excerpt),
                            closed: true,
                        })
                        .into_iter()
                        .collect()
                }
                SessionState::AwaitingApproval => {
                    self.running = true;
                    Vec::new()
                }
                SessionState::Idle | SessionState::Starting => {
                    self.running = false;
                    Vec::new()
                }
                SessionState::Stopping | SessionState::Stopped | SessionState::Crashed => {
                    self.dropped("the session stopped")
                }
            },
            EventKind::Crashed { .. } => self.dropped("Claude Code stopped unexpectedly"),
            // A prompt that had to start the CLI and could not: the actor cleared its queue
            // (the prompt itself was refused with the error), so nothing waits any more.
            EventKind::Error {
                error: SessionErrorKind::Spawn,
                ..
            } => self.dropped("Claude Code could not start"),
            _ => Vec::new(),
        }
    }

    /// The actor dropped its queue: every waiting prompt's line says it was not run.
    fn dropped(&mut self, why: &str) -> Vec<QueueLine> {
        self.running = false;
        self.waiting
            .drain(..)
            .filter(|w| w.position.is_some())
            .map(|w| QueueLine {
                key: key(&w.prompt_id),
                text: not_run(why, &w.excerpt),
                closed: true,
            })
            .collect()
    }
}

const KEY_PREFIX: &str = "queued:";

fn key(prompt_id: &str) -> String {
    format!("{KEY_PREFIX}{prompt_id}")
}

/// The line "✗ Not run (<why>; send it again): <excerpt>".
fn not_run(why: &str, excerpt: &str) -> String {
    format!("✗ Not run ({why}; send it again): {excerpt}")
}

/// The queue lines the previous run left open: the actor's queue lived in memory, so their
/// prompts are gone; each line now says so, quoting the excerpt it showed. Returns how many.
pub(crate) async fn close_lost_lines<S: PostSink>(
    outbox: &Outbox<S>,
    of_session: impl Fn(&str) -> bool,
) -> Result<usize, StoreError> {
    let open: Vec<_> = (outbox.store().outbox_open_with_prefix(KEY_PREFIX).await?)
        .into_iter()
        .filter(|owed| of_session(&owed.session_id))
        .collect();
    let count = open.len();
    for mut owed in open {
        let shown = owed
            .post
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("");
        // "⏳ Queued (2nd): <excerpt>": the excerpt follows the first "): ".
        let excerpt = shown.split_once("): ").map_or("", |(_, e)| e).to_owned();
        if let Some(post) = owed.post.as_object_mut() {
            post.insert(
                "message".into(),
                not_run("the plugin restarted", &excerpt).into(),
            );
        }
        owed.closed = true;
        outbox.put(owed).await?;
    }
    Ok(count)
}

/// The first non-empty line of a person's own words (a prompt's text from its `words_at`: the
/// bodies of the plugin's blocks, from other threads and files, are not shown), cut to
/// [`EXCERPT_CHARS`], its mentions inert (the bot repeating it must not notify anyone again).
pub(crate) fn excerpt(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut out: String = line.chars().take(EXCERPT_CHARS).collect();
    if line.chars().count() > EXCERPT_CHARS || text.trim().lines().nth(1).is_some() {
        out.push('…');
    }
    crate::chat::neutralise::no_mentions(&out).into_owned()
}

/// 1st, 2nd, 3rd, 4th, …, 11th, 12th, 13th, …, 21st.
pub(crate) fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Owes each changed line as a reply in the session's thread.
pub(super) async fn post<S: PostSink>(outbox: &Outbox<S>, ctx: &StreamCtx, lines: Vec<QueueLine>) {
    for line in lines {
        let post = crate::mattermost::model::Post {
            message: line.text,
            ..ctx.post()
        };
        let owed = OwedPost {
            closed: line.closed,
            ..ctx.owed(line.key, OwedKind::Reply, &post)
        };
        if let Err(e) = outbox.put(owed).await {
            tracing::error!(session = %ctx.session_id, "owing a queue line failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(id: &str, text: &str) -> EventKind {
        EventKind::Prompt {
            prompt_id: id.into(),
            author: "u1".into(),
            text: text.into(),
            words_at: 0,
        }
    }

    fn to(state: SessionState, prompt: Option<&str>) -> EventKind {
        EventKind::StatusChanged {
            from: SessionState::Idle,
            to: state,
            prompt_id: prompt.map(str::to_owned),
        }
    }

    fn texts(lines: Vec<QueueLine>) -> Vec<String> {
        lines.into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn prompts_during_a_turn_are_queued_in_order_and_started_in_order() {
        let mut q = Queue::default();
        assert!(q.apply(&prompt("p1", "first")).is_empty());
        assert!(q.apply(&to(SessionState::Running, Some("p1"))).is_empty());
        assert_eq!(
            texts(q.apply(&prompt("p2", "second\nmore"))),
            ["⏳ Queued (1st): second…"]
        );
        assert_eq!(
            texts(q.apply(&prompt("p3", "third"))),
            ["⏳ Queued (2nd): third"]
        );
        // An approval does not end the turn.
        assert!(q
            .apply(&to(SessionState::AwaitingApproval, None))
            .is_empty());
        assert!(q.apply(&to(SessionState::Running, Some("p1"))).is_empty());
        assert!(q.apply(&to(SessionState::Idle, None)).is_empty());
        let started = q.apply(&to(SessionState::Running, Some("p2")));
        assert_eq!(
            started,
            [QueueLine {
                key: "queued:p2".into(),
                text: "▶ Started (was queued 1st): second…".into(),
                closed: true,
            }]
        );
        assert!(q.apply(&to(SessionState::Idle, None)).is_empty());
        assert_eq!(
            texts(q.apply(&to(SessionState::Running, Some("p3")))),
            ["▶ Started (was queued 2nd): third"]
        );
        assert!(q.apply(&to(SessionState::Idle, None)).is_empty());
        // Idle again: the next prompt does not wait.
        assert!(q.apply(&prompt("p4", "fourth")).is_empty());
    }

    #[test]
    fn a_prompt_behind_one_that_is_starting_waits_too() {
        let mut q = Queue::default();
        assert!(q.apply(&to(SessionState::Starting, None)).is_empty());
        assert!(q.apply(&prompt("p1", "first")).is_empty());
        assert_eq!(
            texts(q.apply(&prompt("p2", "second"))),
            ["⏳ Queued (1st): second"]
        );
    }

    #[test]
    fn a_stop_or_crash_says_which_prompts_were_not_run() {
        let mut q = Queue::default();
        q.apply(&prompt("p1", "first"));
        q.apply(&to(SessionState::Running, Some("p1")));
        q.apply(&prompt("p2", "second"));
        let lines = q.apply(&to(SessionState::Stopping, None));
        assert_eq!(
            texts(lines),
            ["✗ Not run (the session stopped; send it again): second"]
        );
        q.apply(&prompt("p3", "again"));
        q.apply(&to(SessionState::Running, Some("p3")));
        q.apply(&prompt("p4", "lost"));
        let crashed = EventKind::Crashed {
            exit_code: Some(1),
            signal: None,
            stderr_tail: vec![],
            dropped_prompts: 1,
        };
        assert_eq!(
            texts(q.apply(&crashed)),
            ["✗ Not run (Claude Code stopped unexpectedly; send it again): lost"]
        );
    }

    /// A prompt whose launch failed was refused and dropped with the actor's queue: the next
    /// prompt, which starts the CLI, does not wait behind it.
    #[test]
    fn a_failed_launch_leaves_nothing_waiting() {
        let mut q = Queue::default();
        q.apply(&to(SessionState::Stopped, None));
        assert!(q.apply(&prompt("p1", "first")).is_empty());
        let failed = EventKind::Error {
            error: SessionErrorKind::Spawn,
            message: "no such file".into(),
        };
        assert!(
            q.apply(&failed).is_empty(),
            "the refused prompt had no line"
        );
        assert!(
            q.apply(&prompt("p2", "again")).is_empty(),
            "nothing is queued before it"
        );
        q.apply(&to(SessionState::Running, Some("p2")));
        assert_eq!(
            texts(q.apply(&prompt("p3", "third"))),
            ["⏳ Queued (1st): third"]
        );
    }

    #[test]
    fn ordinals() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111]
            .into_iter()
            .map(ordinal)
            .collect();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st",
                "111th"
            ]
        );
    }

    /// A queued prompt is shown by its person's own words: not the context blocks the plugin
    /// put before them (another thread's text, a file), known by their length, and with no
    /// live mention. Blocks the person typed are their words, shown as typed.
    #[test]
    fn the_excerpt_is_the_persons_words_without_context_or_mentions() {
        let blocks = "<mattermost-thread root=\"p1\" channel=\"c9\">\nsecret\n</mattermost-thread>\n\n<project-file path=\"a.rs\">\nfn a() {}\n</project-file>\n\n";
        let mut q = Queue::default();
        q.apply(&to(SessionState::Running, Some("p0")));
        let with_context = EventKind::Prompt {
            prompt_id: "p1".into(),
            author: "u1".into(),
            text: format!("{blocks}ask @bob about it"),
            words_at: blocks.len(),
        };
        assert_eq!(
            texts(q.apply(&with_context)),
            ["⏳ Queued (1st): ask @\u{200D}bob about it"]
        );
        // Typed: a fake block, then words after a forged closing tag.
        let typed =
            "<mattermost-thread root=\"x\">\nnot shown?\n</mattermost-thread>\n\nhidden words";
        assert_eq!(
            texts(q.apply(&prompt("p2", typed))),
            ["⏳ Queued (2nd): <mattermost-thread root=\"x\">…"]
        );
        assert_eq!(excerpt("plain words"), "plain words");
    }
}
