//! The plugin's Prometheus metrics: one [`Metrics`] per process (owned by the app), served by
//! the ServeMetrics hook and by `GET /api/v1/metrics`.
//!
//! Most session series are a fold of the session events ([`Metrics::observe`]): the timings
//! come from the events' own `at` stamps, so the fold is pure and tests need no clock. The
//! gauges are facts of the moment, set by whoever scrapes ([`Metrics::set_gauges`]) right
//! before [`Metrics::encode`]. Label values come from closed sets (hook names, route
//! patterns, event kinds), never from user input, so the number of series stays bounded.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::{prometheus_text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use tokio::task::JoinHandle;

use crate::sessions::engine::Engine;
use crate::sessions::events::{EventKind, SessionEvent};
use crate::sessions::state::SessionState;

/// The `Content-Type` of [`Metrics::encode`]'s text (Prometheus text format 0.0.4, which
/// every scraper reads).
pub(crate) const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookLabel {
    hook: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
    status: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// What the fold remembers of one session between its events.
#[derive(Debug, Default)]
struct Track {
    /// When the CLI was asked to start (a start or a resume), until the session is Idle.
    starting_since: Option<i64>,
    /// Prompts not yet answered by a turn result, oldest first (a prompt queues behind the
    /// running turn).
    prompts: VecDeque<i64>,
    /// The running turn showed text already (only its first text is timed).
    text_seen: bool,
    /// Pending approval requests by request id, with the time they were asked.
    approvals: HashMap<String, i64>,
}

/// The registry and every series the plugin exports (names prefixed `claude_code_`).
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    sessions_active: Gauge,
    sessions_started: Counter,
    turns: Family<OutcomeLabel, Counter>,
    messages: Family<KindLabel, Counter>,
    cli_spawn: Histogram,
    first_text: Histogram,
    approval_wait: Histogram,
    approvals: Family<OutcomeLabel, Counter>,
    errors: Family<KindLabel, Counter>,
    hook_duration: HistogramFamily<HookLabel>,
    outbox_backlog: Gauge,
    http_requests: Family<RouteLabel, Counter>,
    tracks: Mutex<HashMap<String, Track>>,
}

/// 0.1 s to 51.2 s: a CLI start, the wait for a model's first words.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 2.0, 10))
}

/// 1 s to about 34 min: a person answering an approval card.
fn approval_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 12))
}

/// 1 ms to about 8 s: a hook call.
fn hook_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// Milliseconds between two event stamps as seconds (never negative: clocks can step).
fn seconds_between(from_ms: i64, to_ms: i64) -> f64 {
    (to_ms - from_ms).max(0) as f64 / 1000.0
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("claude_code"),
            sessions_active: Gauge::default(),
            sessions_started: Counter::default(),
            turns: Family::default(),
            messages: Family::default(),
            cli_spawn: latency_buckets(),
            first_text: latency_buckets(),
            approval_wait: approval_buckets(),
            approvals: Family::default(),
            errors: Family::default(),
            hook_duration: Family::new_with_constructor(hook_buckets),
            outbox_backlog: Gauge::default(),
            http_requests: Family::default(),
            tracks: Mutex::new(HashMap::new()),
        };
        let r = &mut m.registry;
        r.register(
            "sessions_active",
            "Sessions whose CLI runs (starting, idle, running, awaiting approval, stopping)",
            m.sessions_active.clone(),
        );
        r.register(
            "sessions_started",
            "CLI starts: new sessions and resumed ones",
            m.sessions_started.clone(),
        );
        r.register(
            "turns",
            "Finished turns by outcome (ok, error)",
            m.turns.clone(),
        );
        r.register(
            "messages",
            "Messages by kind (prompt, assistant, tool_use, tool_result)",
            m.messages.clone(),
        );
        r.register(
            "cli_spawn_seconds",
            "From a session's start or resume until its CLI is idle",
            m.cli_spawn.clone(),
        );
        r.register(
            "first_text_seconds",
            "From a prompt until the first text of its turn",
            m.first_text.clone(),
        );
        r.register(
            "approval_wait_seconds",
            "From an approval request until its outcome",
            m.approval_wait.clone(),
        );
        r.register(
            "approvals",
            "Approval requests by outcome (approved, denied, expired, withdrawn)",
            m.approvals.clone(),
        );
        r.register(
            "errors",
            "Session errors by kind (the session error kinds, crashed)",
            m.errors.clone(),
        );
        r.register(
            "hook_duration_seconds",
            "Time spent in each hook the server calls",
            m.hook_duration.clone(),
        );
        r.register(
            "outbox_backlog",
            "Posts the bot owes the server, not yet delivered",
            m.outbox_backlog.clone(),
        );
        r.register(
            "http_requests",
            "HTTP requests by route pattern and status (unmatched for no route)",
            m.http_requests.clone(),
        );
        // The closed label sets exist from the start at zero, so a scraper sees every series
        // (a family without children is not written at all) and rates start from 0.
        for outcome in ["ok", "error"] {
            let _ = m.turns.get_or_create(&OutcomeLabel { outcome });
        }
        for outcome in ["approved", "denied", "expired", "withdrawn"] {
            let _ = m.approvals.get_or_create(&OutcomeLabel { outcome });
        }
        for kind in ["prompt", "assistant", "tool_use", "tool_result"] {
            let _ = m.messages.get_or_create(&KindLabel { kind: kind.into() });
        }
        let _ = m.errors.get_or_create(&KindLabel {
            kind: "crashed".into(),
        });
        m
    }

    /// Observes every session of `engine` until the engine is gone (or the task is aborted).
    /// A new session's actor begins in Starting without an event, so its start is taken from
    /// its record (`created_at`, stamped before the CLI is spawned) when its first status change
    /// arrives. The engine's observer queue skips nothing, so every event is counted once.
    pub(crate) fn follow(self: &Arc<Self>, engine: &Engine) -> JoinHandle<()> {
        let metrics = self.clone();
        let store = engine.store().clone();
        let mut events = engine.observe();
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                if metrics.start_unseen(&ev) {
                    match store.session(&ev.session_id).await {
                        Ok(Some(record)) => {
                            metrics.session_started(&ev.session_id, record.created_at)
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!("metrics: reading a session: {e}"),
                    }
                }
                metrics.observe(&ev);
            }
        })
    }

    /// Whether `ev` leaves Starting for a session whose start nobody reported: a new session.
    fn start_unseen(&self, ev: &SessionEvent) -> bool {
        matches!(
            ev.kind,
            EventKind::StatusChanged {
                from: SessionState::Starting,
                ..
            }
        ) && self
            .tracks()
            .get(&ev.session_id)
            .is_none_or(|t| t.starting_since.is_none())
    }

    /// A session was started: counts it and times its CLI start from `at` (ms) until the
    /// session first turns Idle. A resume needs no call: its StatusChanged to Starting says it.
    pub(crate) fn session_started(&self, session_id: &str, at: i64) {
        self.sessions_started.inc();
        self.tracks()
            .entry(session_id.to_owned())
            .or_default()
            .starting_since = Some(at);
    }

    fn tracks(&self) -> std::sync::MutexGuard<'_, HashMap<String, Track>> {
        self.tracks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Folds one session event into the series. Each event must be observed once, in order.
    pub(crate) fn observe(&self, ev: &SessionEvent) {
        self.count(&ev.kind);
        self.time(ev);
    }

    /// The counters: what happened, whatever came before.
    fn count(&self, kind: &EventKind) {
        let message = |kind: &str| {
            self.messages
                .get_or_create(&KindLabel { kind: kind.into() })
                .inc();
        };
        let approval = |outcome| {
            self.approvals
                .get_or_create(&OutcomeLabel { outcome })
                .inc();
        };
        let error = |kind: String| {
            self.errors.get_or_create(&KindLabel { kind }).inc();
        };
        match kind {
            EventKind::Prompt { .. } => message("prompt"),
            EventKind::AssistantText { .. } => message("assistant"),
            EventKind::ToolUse { .. } => message("tool_use"),
            EventKind::ToolResult { .. } => message("tool_result"),
            EventKind::ToolApproved { .. } => approval("approved"),
            EventKind::ToolDenied { .. } => approval("denied"),
            EventKind::ToolApprovalExpired { .. } => approval("expired"),
            EventKind::ToolApprovalCancelled { .. } => approval("withdrawn"),
            EventKind::TurnResult { is_error, .. } => {
                let outcome = if *is_error { "error" } else { "ok" };
                self.turns.get_or_create(&OutcomeLabel { outcome }).inc();
            }
            // The kind's wire name (`garbage_line`, `spawn`, …), as the events carry it.
            EventKind::Error { error: kind, .. } => error(
                serde_json::to_value(kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "unknown".to_owned()),
            ),
            EventKind::Crashed { .. } => error("crashed".to_owned()),
            EventKind::StatusChanged { .. }
            | EventKind::TextDelta { .. }
            | EventKind::AssistantThinking { .. }
            | EventKind::ToolUseRequested { .. }
            | EventKind::ApiRetry { .. } => {}
        }
    }

    /// The histograms: how long from one event to another of the same session. Only what a
    /// later event needs is remembered, and nothing once the session's CLI is gone.
    fn time(&self, ev: &SessionEvent) {
        let mut tracks = self.tracks();
        let id = &ev.session_id;
        match &ev.kind {
            EventKind::StatusChanged { to, .. } if !to.has_process() => {
                tracks.remove(id);
            }
            EventKind::StatusChanged {
                to: SessionState::Starting,
                ..
            } => {
                self.sessions_started.inc();
                tracks.entry(id.clone()).or_default().starting_since = Some(ev.at);
            }
            EventKind::StatusChanged {
                to: SessionState::Idle,
                ..
            } => {
                if let Some(since) = tracks.get_mut(id).and_then(|t| t.starting_since.take()) {
                    self.cli_spawn.observe(seconds_between(since, ev.at));
                }
            }
            EventKind::Prompt { .. } => tracks
                .entry(id.clone())
                .or_default()
                .prompts
                .push_back(ev.at),
            EventKind::TextDelta { .. } | EventKind::AssistantText { .. } => {
                let Some(track) = tracks.get_mut(id).filter(|t| !t.text_seen) else {
                    return;
                };
                if let Some(&asked) = track.prompts.front() {
                    self.first_text.observe(seconds_between(asked, ev.at));
                    track.text_seen = true;
                }
            }
            EventKind::TurnResult { .. } => {
                if let Some(track) = tracks.get_mut(id) {
                    track.prompts.pop_front();
                    track.text_seen = false;
                }
            }
            EventKind::ToolUseRequested { request_id, .. } => {
                let track = tracks.entry(id.clone()).or_default();
                track.approvals.insert(request_id.clone(), ev.at);
            }
            EventKind::ToolApproved { request_id, .. }
            | EventKind::ToolDenied { request_id, .. }
            | EventKind::ToolApprovalExpired { request_id, .. }
            | EventKind::ToolApprovalCancelled { request_id } => {
                // A request asked before this process observed the session has no known start.
                if let Some(asked) = tracks
                    .get_mut(id)
                    .and_then(|t| t.approvals.remove(request_id))
                {
                    self.approval_wait.observe(seconds_between(asked, ev.at));
                }
            }
            _ => {}
        }
    }

    /// One hook call took `took`.
    pub(crate) fn hook_duration(&self, hook: &'static str, took: Duration) {
        self.hook_duration
            .get_or_create(&HookLabel { hook })
            .observe(took.as_secs_f64());
    }

    /// One HTTP request was answered; `route` is the matched pattern (bounded), not the path.
    pub(crate) fn http_request(&self, route: &str, status: u16) {
        self.http_requests
            .get_or_create(&RouteLabel {
                route: route.to_owned(),
                status: status.to_string(),
            })
            .inc();
    }

    /// The gauges, as the scraper finds them now.
    pub(crate) fn set_gauges(&self, sessions_active: usize, outbox_backlog: Option<usize>) {
        let to_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.sessions_active.set(to_i64(sessions_active));
        if let Some(n) = outbox_backlog {
            self.outbox_backlog.set(to_i64(n));
        }
    }

    /// Every series as Prometheus text ([`CONTENT_TYPE`]).
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests;
