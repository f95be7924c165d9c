//! [`EventFeed`]: a session's events in order with none skipped. The live broadcast is bounded,
//! so a subscriber that falls behind (a chat stream waiting on a slow server while a long reply
//! streams) is told it lagged; every published event is stored first (see `actor::flush`), so
//! the feed then reads what it missed from the transcript by sequence number and goes on live,
//! dropping the live events it already delivered.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;

use super::events::{EventKind, SessionEvent};
use crate::store::{MessageRecord, Store, StoreError};

/// Transcript rows read per catch-up query, so a long lag is not held in memory at once.
const CATCH_UP_ROWS: usize = 500;

type Read = Pin<Box<dyn Future<Output = Result<Vec<MessageRecord>, StoreError>> + Send>>;

pub struct EventFeed {
    session_id: String,
    live: broadcast::Receiver<SessionEvent>,
    store: Store,
    /// The last stored event delivered (or, before the first, the last one published before
    /// the feed was opened).
    last_seq: i64,
    backlog: VecDeque<SessionEvent>,
    /// The last transcript row read by a catch-up (delivered or not an event).
    read_to: i64,
    /// Reading the transcript after a lag, chunk by chunk, until it has nothing newer.
    catching_up: bool,
    /// The transcript read under way: kept when `recv` is cancelled (a `select!` branch that
    /// won), so the next call goes on with it instead of asking again.
    reading: Option<Read>,
}

impl EventFeed {
    /// `last_seq`: the last event published before `live` was subscribed.
    pub(crate) fn new(
        session_id: String,
        live: broadcast::Receiver<SessionEvent>,
        store: Store,
        last_seq: i64,
    ) -> Self {
        EventFeed {
            session_id,
            live,
            store,
            last_seq,
            backlog: VecDeque::new(),
            read_to: last_seq,
            catching_up: false,
            reading: None,
        }
    }

    /// The next event; `None` once the session is gone and everything was delivered.
    /// Cancel-safe: no event is lost when the future is dropped before it is ready.
    pub async fn recv(&mut self) -> Option<SessionEvent> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                self.last_seq = event.seq;
                return Some(event);
            }
            if self.catching_up {
                self.catch_up().await;
                continue;
            }
            match self.live.recv().await {
                // Stored events arrive in sequence order; one read from the transcript after
                // a lag comes again live and is dropped here. An event the store failed to
                // keep (`seq` -1) cannot have been read back, so it always passes.
                Ok(event) if event.seq >= 0 && event.seq <= self.last_seq => continue,
                Ok(event) => {
                    self.last_seq = self.last_seq.max(event.seq);
                    return Some(event);
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::debug!(session = %self.session_id, "the event feed lagged by {n} events; reading them from the store");
                    self.catching_up = true;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Reads the next chunk of the transcript after `last_seq` into the backlog; the catch-up
    /// ends with a short chunk. A failed read is logged and the feed goes on live: the events
    /// it could not read are lost to this subscriber, as they would be without a store.
    async fn catch_up(&mut self) {
        let reading = self.reading.get_or_insert_with(|| {
            let (store, session_id) = (self.store.clone(), self.session_id.clone());
            let after = self.read_to.max(self.last_seq);
            Box::pin(async move {
                store
                    .messages_after(&session_id, after, CATCH_UP_ROWS)
                    .await
            })
        });
        let read = reading.await;
        self.reading = None;
        match read {
            Ok(rows) => {
                self.catching_up = rows.len() == CATCH_UP_ROWS;
                if let Some(last) = rows.last() {
                    self.read_to = last.seq;
                }
                self.backlog.extend(
                    rows.into_iter()
                        .filter_map(|r| stored_event(&self.session_id, r)),
                );
            }
            Err(e) => {
                tracing::error!(session = %self.session_id, "reading missed events from the store failed: {e}");
                self.catching_up = false;
            }
        }
    }
}

/// A transcript row as the event it recorded (rows written by other code than the actor are
/// not events and are skipped).
fn stored_event(session_id: &str, row: MessageRecord) -> Option<SessionEvent> {
    let kind: EventKind = serde_json::from_value(row.event).ok()?;
    Some(SessionEvent {
        session_id: session_id.to_owned(),
        seq: row.seq,
        at: row.timestamp,
        kind,
    })
}

/// Every session's events, to whoever observes the whole engine (the metrics). A broadcast
/// buffer would drop events for an observer that fell behind, and an engine-wide observer cannot
/// catch up from the store the way an [`EventFeed`] does (it does not know which sessions it
/// missed). So each observer gets an unbounded queue: it misses nothing, and its queue stays
/// short because observing an event is cheap (counters) and never waits on Mattermost.
#[derive(Clone, Default)]
pub struct Observers {
    queues: std::sync::Arc<std::sync::Mutex<Vec<mpsc::UnboundedSender<SessionEvent>>>>,
}

impl Observers {
    /// A new observer: every event published from now on, in each session's order.
    pub(crate) fn observe(&self) -> mpsc::UnboundedReceiver<SessionEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().push(tx);
        rx
    }

    /// Hands `event` to every observer; one that went away is forgotten.
    pub(crate) fn publish(&self, event: &SessionEvent) {
        self.lock().retain(|tx| tx.send(event.clone()).is_ok());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::UnboundedSender<SessionEvent>>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }
}
