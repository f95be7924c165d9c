//! The keeper of this node's leases: takes them, renews all of them every `renew`, knows until
//! when each may be acted on, and reports each loss once.
//!
//! Local validity is monotonic: `valid_until = sent + lease - margin`, from when the write that
//! succeeded was sent. [`Leases::holds`] compares it with the clock itself, so a process that was paused,
//! or whose tasks have not run, never acts on a lease past it. A lease is LOST when a renewal is
//! refused and the KV value is someone else's, or when `valid_until` passes without a successful
//! renewal; the second is a timer of its own, never the next renewal's answer, since a renewal
//! hanging in the KV store must not delay the loss.
//!
//! | event (per lease)                           | state after                 | reported      |
//! |---------------------------------------------|-----------------------------|---------------|
//! | acquire: decision Take, CAS true            | held, valid_until from send | —             |
//! | acquire: CAS false / Refuse / KV error      | not held                    | error         |
//! | renew: CAS true, before valid_until         | held, valid_until moves on  | —             |
//! | renew: CAS true, after valid_until          | not held                    | LOST Expired  |
//! | renew: CAS false, value = a write of ours   | adopted, renewed again      | —             |
//! | renew: CAS false, value someone else's      | not held                    | LOST Taken    |
//! | renew: KV error or no answer                | held until valid_until      | —             |
//! | valid_until passes                          | not held                    | LOST Expired  |
//! | release                                     | not held, KV `expires_at 0` | —             |
//!
//! On a server that is not clustered nobody else can take a lease (only a later process of the
//! same server, which takes it at once whatever it says; see `lease::decide`): a hold there has
//! no `valid_until`, is never renewed and is never lost, so an idle single server makes no KV
//! call at all. Its lease still gives each process a greater fence than the one before.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::lease::{
    self, decide, decide_renewal, Decision, Holder, LeaseRecord, LeaseTiming, Previous,
    RecordError, Refusal, Renewal,
};
use super::node::NodeId;
use crate::mattermost::api::{Api, ApiError};

pub(crate) type KvFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 'a>>;

/// The plugin KV calls a lease needs: the [`Api`] in production, memory in tests.
pub(crate) trait LeaseKv: Send + Sync {
    /// The value of `key`; None when absent.
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>>;
    /// Sets `key` to `new` if it holds `old` (None = absent); whether it did.
    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        old: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> KvFuture<'a, bool>;
}

impl LeaseKv for Api {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        Box::pin(self.kv_get(key))
    }

    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        old: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> KvFuture<'a, bool> {
        Box::pin(self.kv_compare_and_set(key, old, Some(new)))
    }
}

/// The validity of a hold on a server that is not clustered: it does not run out.
const UNBOUNDED: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 24 * 3600);

/// At most this many renewals in flight at once, so that a node with many sessions does not
/// open as many API calls at each tick.
const CONCURRENT_RENEWALS: usize = 8;

/// Unix time in ms, for `expires_at`: the system clock in production. Tests derive it from
/// tokio's clock so that a paused clock moves both.
pub(crate) type WallClock = Arc<dyn Fn() -> u64 + Send + Sync>;

fn system_clock() -> WallClock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    })
}

/// A lease taken (or already held).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Acquired {
    pub fence: u64,
    pub previous: Previous,
}

/// Who runs a session, as far as this node can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Owner {
    /// This process holds the lease.
    Me { fence: u64 },
    /// `node`'s lease has not run out (it may be dead and its lease not yet expired).
    Node { node: String, fence: u64 },
    /// Nobody's: absent, released or expired, or an old hold of this node that this process
    /// does not have (`previous` says which). [`Leases::acquire`] may take it.
    Free { previous: Previous },
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LeaseError {
    #[error("the session runs on node {node}")]
    Held { node: String, fence: u64 },
    #[error("the session's owner is unknown: {0}")]
    Unreadable(Arc<RecordError>),
    #[error("the session's lease could not be read or written: {0}")]
    Kv(#[from] ApiError),
    #[error("another node took the session at the same moment")]
    Race,
}

/// A lease this process held and no longer holds.
#[derive(Debug, Clone)]
pub(crate) struct Lost {
    pub session: String,
    pub fence: u64,
    pub why: LostWhy,
}

#[derive(Debug, Clone)]
pub(crate) enum LostWhy {
    /// A renewal was refused: the KV value is `holder`'s now.
    Taken { holder: Holder },
    /// Its local validity ran out without a successful renewal: the KV store failed or was
    /// slow, or this process did not run (paused).
    Expired,
}

impl std::fmt::Display for LostWhy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LostWhy::Taken { holder } => write!(f, "taken by {holder}"),
            LostWhy::Expired => f.write_str("not renewed in time"),
        }
    }
}

/// One lease this process holds.
struct Hold {
    fence: u64,
    valid_until: Instant,
    deadline: watch::Sender<Option<std::time::Instant>>,
    /// What was written for this hold. Locked for each of its KV writes, so that a renewal and
    /// the release never race; its identity tells a hold from a later hold of the same session.
    io: Arc<tokio::sync::Mutex<Written>>,
    /// A renewal task is running (a hung one is not doubled).
    renewing: bool,
}

struct Written {
    record: LeaseRecord,
    bytes: Vec<u8>,
    /// Writes whose answer never came since the last confirmed one: any of them may be in the
    /// KV store, and reading one back is not a loss.
    uncertain: Vec<(LeaseRecord, Vec<u8>, Instant)>,
}

#[derive(Default)]
struct State {
    holds: HashMap<String, Hold>,
    /// One acquisition at a time per session in this process (two would take each other's
    /// lease with the next fence).
    acquiring: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
}

/// This node's leases. Shared as `Arc<Leases>`.
pub(crate) struct Leases {
    kv: Arc<dyn LeaseKv>,
    node: NodeId,
    timing: LeaseTiming,
    wall: WallClock,
    state: Mutex<State>,
    /// The set of holds changed: the renewal loop looks at the earliest `valid_until` again.
    changed: Arc<Notify>,
    lost_tx: mpsc::UnboundedSender<Lost>,
    lost_rx: Mutex<Option<mpsc::UnboundedReceiver<Lost>>>,
    renewals: Semaphore,
    kv_calls: AtomicU64,
}

impl Leases {
    pub(crate) fn new(kv: Arc<dyn LeaseKv>, node: NodeId, timing: LeaseTiming) -> Arc<Leases> {
        Leases::with_clock(kv, node, timing, system_clock())
    }

    pub(crate) fn with_clock(
        kv: Arc<dyn LeaseKv>,
        node: NodeId,
        timing: LeaseTiming,
        wall: WallClock,
    ) -> Arc<Leases> {
        let (lost_tx, lost_rx) = mpsc::unbounded_channel();
        Arc::new(Leases {
            kv,
            node,
            timing,
            wall,
            state: Mutex::default(),
            changed: Arc::new(Notify::new()),
            lost_tx,
            lost_rx: Mutex::new(Some(lost_rx)),
            renewals: Semaphore::new(CONCURRENT_RENEWALS),
            kv_calls: AtomicU64::new(0),
        })
    }

    #[cfg(test)]
    pub(crate) fn node(&self) -> &NodeId {
        &self.node
    }

    /// The fence of `session`'s lease if this process may act on it now. No KV call, no task:
    /// false from `valid_until` on even if nothing ran since.
    pub(crate) fn holds(&self, session: &str) -> Option<u64> {
        let now = Instant::now();
        self.state()
            .holds
            .get(session)
            .filter(|h| h.valid_until > now)
            .map(|h| h.fence)
    }

    /// The lease's timing (the renewal period paces the search for orphaned sessions).
    pub(crate) fn timing(&self) -> &LeaseTiming {
        &self.timing
    }

    /// `session`'s `valid_until`, updated at each renewal; None once lost or released (and
    /// at once when not held).
    pub(crate) fn deadline(&self, session: &str) -> watch::Receiver<Option<std::time::Instant>> {
        match self.state().holds.get(session) {
            Some(hold) => hold.deadline.subscribe(),
            None => watch::channel(None).1,
        }
    }

    /// The queue of losses, one [`Lost`] per loss. Only the first call gets it.
    pub(crate) fn take_lost(&self) -> Option<mpsc::UnboundedReceiver<Lost>> {
        self.lost_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// KV calls made so far (the idle cost of the leases).
    #[cfg(test)]
    pub(crate) fn kv_calls(&self) -> u64 {
        self.kv_calls.load(Ordering::Relaxed)
    }

    /// Takes `session`'s lease, or says who has it. Held already: no KV call.
    #[cfg(test)]
    pub(crate) async fn acquire(&self, session: &str) -> Result<Acquired, LeaseError> {
        self.acquire_above(session, 0).await
    }

    /// [`Self::acquire`] with a fence greater than `floor` (the fence the store last saw for
    /// the session): a KV record lost or reset since must not restart the fence below it.
    pub(crate) async fn acquire_above(
        &self,
        session: &str,
        floor: u64,
    ) -> Result<Acquired, LeaseError> {
        self.expire_due();
        if let Some(fence) = self.holds(session) {
            return Ok(Acquired {
                fence,
                previous: Previous::Held,
            });
        }
        let gate = self
            .state()
            .acquiring
            .entry(session.to_owned())
            .or_default()
            .clone();
        let result = {
            let _one_at_a_time = gate.lock().await;
            self.acquire_alone(session, floor).await
        };
        let mut state = self.state();
        // The map's and ours: nobody else waits (clones are made under this lock).
        if Arc::strong_count(&gate) == 2 {
            state.acquiring.remove(session);
        }
        result
    }

    async fn acquire_alone(&self, session: &str, floor: u64) -> Result<Acquired, LeaseError> {
        self.expire_due();
        if let Some(fence) = self.holds(session) {
            return Ok(Acquired {
                fence,
                previous: Previous::Held,
            });
        }
        let key = lease::key(session);
        let current = self.get(&key).await?;
        match decide(
            current.as_deref(),
            &self.node.id,
            self.now_ms(),
            &self.timing,
        ) {
            Decision::Take {
                mut record,
                previous,
            } => {
                record.fence = record.fence.max(floor.saturating_add(1));
                let bytes = record.encode();
                let sent = Instant::now();
                // An error leaves the outcome unknown: if the write landed, the record names
                // this node and the next acquire takes it again with the next fence.
                if !self.cas(&key, current, bytes.clone()).await? {
                    return Err(LeaseError::Race);
                }
                let fence = record.fence;
                self.insert(session, record, bytes, sent);
                Ok(Acquired { fence, previous })
            }
            Decision::Refuse {
                holder: Refusal::Node { node, fence },
            } => Err(LeaseError::Held { node, fence }),
            Decision::Refuse {
                holder: Refusal::Unreadable(e),
            } => {
                tracing::warn!(session, error = %e, "a session's lease is unreadable; it is left alone");
                Err(LeaseError::Unreadable(e))
            }
        }
    }

    /// Who runs `session`. Held here: no KV call.
    pub(crate) async fn owner(&self, session: &str) -> Result<Owner, LeaseError> {
        self.expire_due();
        if let Some(fence) = self.holds(session) {
            return Ok(Owner::Me { fence });
        }
        let current = self.get(&lease::key(session)).await?;
        match decide(
            current.as_deref(),
            &self.node.id,
            self.now_ms(),
            &self.timing,
        ) {
            Decision::Take { previous, .. } => Ok(Owner::Free { previous }),
            Decision::Refuse {
                holder: Refusal::Node { node, fence },
            } => Ok(Owner::Node { node, fence }),
            Decision::Refuse {
                holder: Refusal::Unreadable(e),
            } => Err(LeaseError::Unreadable(e)),
        }
    }

    /// Gives `session` up: not held from now on, and the KV record says released (same
    /// fence, `expires_at` 0) so that another node takes it at once. A KV store that fails or
    /// does not answer within `renew` leaves the lease to expire; it is logged, not returned,
    /// since the caller can do nothing else either way.
    pub(crate) async fn release(&self, session: &str) {
        let Some(hold) = self.state().holds.remove(session) else {
            return;
        };
        hold.deadline.send_replace(None);
        self.changed.notify_one();
        let key = lease::key(session);
        let write = async {
            let written = hold.io.lock().await;
            let released = written.record.released().encode();
            self.cas(&key, Some(written.bytes.clone()), released).await
        };
        match tokio::time::timeout(self.timing.renew, write).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                tracing::info!(session, "a released lease was no longer this node's")
            }
            Ok(Err(e)) => {
                tracing::warn!(session, error = %e, "could not release a lease; it will expire")
            }
            Err(_) => tracing::warn!(
                session,
                "the KV store did not answer the release of a lease; it will expire"
            ),
        }
    }

    /// Stops holding `session` without a word to KV: the lease runs out as if this node had
    /// died, and another node takes it as such (for a teller of a lost session that could not
    /// record it told: the next one tells again).
    pub(crate) fn abandon(&self, session: &str) {
        if let Some(hold) = self.state().holds.remove(session) {
            hold.deadline.send_replace(None);
            self.changed.notify_one();
        }
    }

    /// The renewal loop: every `renew` a renewal of each lease held (bounded concurrency),
    /// and a timer at the earliest `valid_until`. Ends when the `Leases` is dropped. None on a
    /// server that is not clustered (its holds do not run out).
    pub(crate) fn spawn_renewals(self: &Arc<Self>) -> Option<JoinHandle<()>> {
        if !self.node.clustered {
            return None;
        }
        let leases = Arc::downgrade(self);
        let changed = self.changed.clone();
        let period = self.timing.renew;
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(Instant::now() + period, period);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                let Some(earliest) = leases.upgrade().map(|l| {
                    l.expire_due();
                    l.earliest()
                }) else {
                    return;
                };
                tokio::select! {
                    _ = tick.tick() => match leases.upgrade() {
                        Some(l) => l.renew_all(),
                        None => return,
                    },
                    _ = sleep_until(earliest) => {}
                    _ = changed.notified() => {}
                }
            }
        }))
    }

    fn renew_all(self: &Arc<Self>) {
        let mut state = self.state();
        for (session, hold) in state.holds.iter_mut().filter(|(_, h)| !h.renewing) {
            hold.renewing = true;
            let (leases, session, io) = (self.clone(), session.clone(), hold.io.clone());
            tokio::spawn(async move {
                leases.renew(&session, &io).await;
                if let Some(hold) = leases.current(&mut leases.state(), &session, &io) {
                    hold.renewing = false;
                }
            });
        }
    }

    async fn renew(&self, session: &str, io: &Arc<tokio::sync::Mutex<Written>>) {
        let Ok(_permit) = self.renewals.acquire().await else {
            return;
        };
        let mut written = io.lock().await;
        let key = lease::key(session);
        // A second attempt only after reading back a write of ours.
        for _ in 0..2 {
            if self.current(&mut self.state(), session, io).is_none() {
                return;
            }
            let record = written.record.renewed(self.now_ms(), &self.timing);
            let bytes = record.encode();
            let sent = Instant::now();
            match self
                .cas(&key, Some(written.bytes.clone()), bytes.clone())
                .await
            {
                Ok(true) => {
                    (written.record, written.bytes) = (record, bytes);
                    written.uncertain.clear();
                    self.renewed(session, io, sent);
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(session, error = %e, "could not renew a lease");
                    written.uncertain.push((record, bytes, sent));
                    return;
                }
            }
            let current = match self.get(&key).await {
                Ok(current) => current,
                Err(e) => {
                    tracing::warn!(session, error = %e, "could not read a lease whose renewal was refused");
                    return;
                }
            };
            let adopted = written
                .uncertain
                .iter()
                .position(|(_, b, _)| current.as_deref() == Some(b.as_slice()));
            if let Some(i) = adopted {
                let (record, bytes, sent) = written.uncertain.swap_remove(i);
                (written.record, written.bytes) = (record, bytes);
                written.uncertain.clear();
                self.renewed(session, io, sent);
                continue;
            }
            match decide_renewal(current.as_deref(), &written.bytes) {
                Renewal::Renew => continue,
                Renewal::Lost { holder } => {
                    self.lose(session, io, LostWhy::Taken { holder });
                    return;
                }
            }
        }
    }

    /// A renewal sent at `sent` succeeded: the hold runs on, unless it had already run out
    /// (`holds` said so and the deadline's reader may have acted on it).
    fn renewed(&self, session: &str, io: &Arc<tokio::sync::Mutex<Written>>, sent: Instant) {
        let now = Instant::now();
        let mut state = self.state();
        let Some(hold) = self.current(&mut state, session, io) else {
            return;
        };
        if hold.valid_until <= now {
            drop(state);
            self.lose(session, io, LostWhy::Expired);
            return;
        }
        let valid_until = (sent + self.timing.valid_for()).max(hold.valid_until);
        hold.valid_until = valid_until;
        hold.deadline.send_replace(Some(valid_until.into_std()));
        drop(state);
        self.changed.notify_one();
    }

    fn lose(&self, session: &str, io: &Arc<tokio::sync::Mutex<Written>>, why: LostWhy) {
        let mut state = self.state();
        if self.current(&mut state, session, io).is_some() {
            if let Some(hold) = state.holds.remove(session) {
                drop(state);
                self.report(session.to_owned(), hold, why);
            }
        }
    }

    /// Reports every hold whose `valid_until` has passed.
    fn expire_due(&self) {
        let now = Instant::now();
        let mut state = self.state();
        let due: Vec<String> = state
            .holds
            .iter()
            .filter(|(_, h)| h.valid_until <= now)
            .map(|(s, _)| s.clone())
            .collect();
        let lost: Vec<(String, Hold)> = due
            .into_iter()
            .filter_map(|s| state.holds.remove_entry(&s))
            .collect();
        drop(state);
        for (session, hold) in lost {
            self.report(session, hold, LostWhy::Expired);
        }
    }

    fn report(&self, session: String, hold: Hold, why: LostWhy) {
        hold.deadline.send_replace(None);
        self.changed.notify_one();
        tracing::warn!(session, fence = hold.fence, "lost a session's lease: {why}");
        // Nobody listening (not wired, or shutting down) is not an error of the lease.
        let _ = self.lost_tx.send(Lost {
            session,
            fence: hold.fence,
            why,
        });
    }

    fn insert(&self, session: &str, record: LeaseRecord, bytes: Vec<u8>, sent: Instant) {
        let valid_until = match self.node.clustered {
            true => sent + self.timing.valid_for(),
            false => sent + UNBOUNDED,
        };
        let (deadline, _) = watch::channel(Some(valid_until.into_std()));
        let hold = Hold {
            fence: record.fence,
            valid_until,
            deadline,
            io: Arc::new(tokio::sync::Mutex::new(Written {
                record,
                bytes,
                uncertain: Vec::new(),
            })),
            renewing: false,
        };
        self.state().holds.insert(session.to_owned(), hold);
        self.changed.notify_one();
    }

    /// The hold of `session` if it is still the one `io` belongs to.
    fn current<'s>(
        &self,
        state: &'s mut State,
        session: &str,
        io: &Arc<tokio::sync::Mutex<Written>>,
    ) -> Option<&'s mut Hold> {
        state
            .holds
            .get_mut(session)
            .filter(|h| Arc::ptr_eq(&h.io, io))
    }

    fn earliest(&self) -> Option<Instant> {
        self.state().holds.values().map(|h| h.valid_until).min()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> u64 {
        (self.wall)()
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ApiError> {
        self.kv_calls.fetch_add(1, Ordering::Relaxed);
        self.kv.get(key).await
    }

    async fn cas(&self, key: &str, old: Option<Vec<u8>>, new: Vec<u8>) -> Result<bool, ApiError> {
        self.kv_calls.fetch_add(1, Ordering::Relaxed);
        self.kv.compare_and_set(key, old, new).await
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Each CLI's supervisor holds its session's lease deadline (see `crate::supervisor`): a CLI
/// launched for a session this node does not hold is stopped at once.
impl crate::sessions::Deadlines for Leases {
    fn deadline(&self, session: &str) -> Option<crate::sessions::Deadline> {
        Some(Leases::deadline(self, session))
    }
}

#[cfg(test)]
mod tests;
