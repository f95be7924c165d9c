//! Admission: one start per channel at a time, MaxConcurrentSessions slots taken under one lock
//! (by starts and by prompts that resume a stopped session), and the per-user rate limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::ChatService;
use crate::ratelimit::{RateLimiter, RetryAfter};

/// Starts in flight. A start reserves its channel before it awaits anything, and takes a slot
/// of MaxConcurrentSessions under the same lock, so concurrent starts cannot all pass their
/// checks and then all start: the second start in a channel is refused at once, and the slots
/// are counted with every admitted start included.
#[derive(Default)]
pub(super) struct Admission {
    /// Reserved channel -> whether its start holds a slot.
    reserved: HashMap<String, bool>,
    /// Bumped whenever a reservation ends, so a slot count made from an older list of live
    /// sessions is made again (a start that just ended may have become a live session).
    ended: u64,
}

/// A start's hold on its channel (and its slot, once taken); dropping it lets go of both,
/// whether the start failed or its session is now tracked.
pub(super) struct Reservation<'a> {
    admission: &'a Mutex<Admission>,
    channel_id: String,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut adm = self.admission.lock().unwrap_or_else(|p| p.into_inner());
        adm.reserved.remove(&self.channel_id);
        adm.ended += 1;
    }
}

/// The per-user command limit and the setting it was made from.
pub(super) struct Limit {
    pub(super) per_minute: u32,
    /// `None` when CommandsPerMinute is 0 (no limit).
    limiter: Option<RateLimiter>,
}

impl Limit {
    pub(super) fn new(per_minute: u32) -> Self {
        Limit {
            per_minute,
            limiter: (per_minute > 0).then(|| RateLimiter::new(per_minute, per_minute)),
        }
    }
}
/// The answer to a start or a resume when MaxConcurrentSessions sessions run.
pub(crate) fn at_the_limit(live: usize) -> String {
    format!(
        "The server already runs {live} Claude Code sessions, the maximum (MaxConcurrentSessions). Try again when one stops."
    )
}

impl ChatService {
    /// Takes one of `user_id`'s commands from the rate limit, if there is one.
    pub(super) fn admit(&self, user_id: &str) -> Result<(), RetryAfter> {
        match &self
            .limiter
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .limiter
        {
            Some(limiter) => limiter.check(user_id, Instant::now()),
            None => Ok(()),
        }
    }

    /// Reserves the channel for one start, synchronously; `None` while another start holds it.
    pub(super) fn reserve_channel(&self, channel_id: &str) -> Option<Reservation<'_>> {
        let mut adm = self.admission.lock().unwrap_or_else(|p| p.into_inner());
        if adm.reserved.contains_key(channel_id) {
            return None;
        }
        adm.reserved.insert(channel_id.to_owned(), false);
        Some(Reservation {
            admission: &self.admission,
            channel_id: channel_id.to_owned(),
        })
    }

    /// Channels of the tracked sessions that have a process now.
    pub(super) async fn live_channels(&self) -> Vec<String> {
        let tracked: Vec<(String, String)> = self
            .state
            .lock()
            .map(|st| {
                st.sessions
                    .iter()
                    .map(|(id, info)| (id.clone(), info.channel_id.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut live = Vec::new();
        for (id, channel) in tracked {
            let Some(handle) = self.engine.get(&id) else {
                continue;
            };
            if handle.status().await.is_ok_and(|s| s.state.has_process()) {
                live.push(channel);
            }
        }
        live
    }

    /// Takes one of `max` slots for the reserved start, or says how many are taken. Taken are
    /// the admitted starts plus the live sessions outside their channels (an admitted start's
    /// own session is counted once). The decision is made under the admission lock, from a list
    /// of live sessions no reservation ended during.
    pub(super) async fn take_slot(
        &self,
        reservation: &Reservation<'_>,
        max: usize,
    ) -> Result<(), usize> {
        loop {
            let seen = self
                .admission
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .ended;
            let live = self.live_channels().await;
            let mut adm = self.admission.lock().unwrap_or_else(|p| p.into_inner());
            if adm.ended != seen {
                continue;
            }
            let admitted = adm.reserved.values().filter(|&&slot| slot).count();
            let others = live
                .iter()
                .filter(|c| adm.reserved.get(*c) != Some(&true))
                .count();
            let taken = admitted + others;
            if taken >= max {
                return Err(taken);
            }
            adm.reserved.insert(reservation.channel_id.clone(), true);
            return Ok(());
        }
    }
}
