//! Per-user command rate limiting: a token bucket per user, refilled at
//! `per_minute` tokens a minute and holding at most `burst` tokens.
//!
//! The bucket is kept in its GCRA form (one "theoretical arrival time" per
//! user) so that a check is a couple of comparisons on [`Instant`]s, exact
//! with no floating point, and time is always passed in: tests drive it with
//! explicit instants.
//!
//! Memory stays bounded: a user whose bucket has refilled completely is
//! indistinguishable from one never seen, so such entries are dropped on
//! sweeps; if more than `max_users` users are still limited at once, the ones
//! that will be free soonest are dropped first.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many users are tracked at most, by default.
pub const DEFAULT_MAX_USERS: usize = 10_000;

/// A refused command: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds, rounded up (never 0: "try again in 0 s" helps nobody).
    pub fn seconds(&self) -> u64 {
        let d = self.0;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

impl fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "You are sending commands too quickly. Slow down and try again in {} s.",
            self.seconds()
        )
    }
}

impl std::error::Error for RetryAfter {}

/// The per-user limiter. Shared by reference; checks lock briefly.
#[derive(Debug)]
pub struct RateLimiter {
    /// Time one token takes to refill.
    interval: Duration,
    /// How far ahead of now a user's arrival time may run: `(burst - 1) * interval`.
    tolerance: Duration,
    max_users: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The time at which each user's bucket will be full again.
    full_at: HashMap<String, Instant>,
    /// When idle entries were last swept.
    last_sweep: Option<Instant>,
}

impl RateLimiter {
    /// `per_minute` commands a minute on average, `burst` in a row at most.
    /// Zero values are raised to 1 (a limiter that refuses everything is a
    /// configuration mistake, which config validation already rejects).
    pub fn new(per_minute: u32, burst: u32) -> RateLimiter {
        Self::with_max_users(per_minute, burst, DEFAULT_MAX_USERS)
    }

    pub fn with_max_users(per_minute: u32, burst: u32, max_users: usize) -> RateLimiter {
        let interval = Duration::from_secs(60) / per_minute.max(1);
        RateLimiter {
            interval,
            tolerance: interval * (burst.max(1) - 1),
            max_users: max_users.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// Takes one token from `user_id`'s bucket, or says how long until one is
    /// available.
    pub fn check(&self, user_id: &str, now: Instant) -> Result<(), RetryAfter> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let full_at = state.full_at.get(user_id).copied().unwrap_or(now).max(now);
        // Admitting this command pushes the arrival time one interval further;
        // it may run at most `tolerance` (burst - 1 tokens) ahead of now.
        let wait = (full_at + self.interval)
            .saturating_duration_since(now)
            .saturating_sub(self.tolerance + self.interval);
        if !wait.is_zero() {
            return Err(RetryAfter(wait));
        }
        let full_at = full_at + self.interval;
        state.full_at.insert(user_id.to_owned(), full_at);
        self.sweep(&mut state, now);
        Ok(())
    }

    /// How many users are currently tracked (for tests and metrics).
    pub fn tracked_users(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .full_at
            .len()
    }

    fn sweep(&self, state: &mut State, now: Instant) {
        let due = state
            .last_sweep
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(60));
        if !due && state.full_at.len() <= self.max_users {
            return;
        }
        state.last_sweep = Some(now);
        state.full_at.retain(|_, full_at| *full_at > now);
        let excess = state.full_at.len().saturating_sub(self.max_users);
        if excess > 0 {
            let mut by_release: Vec<(Instant, String)> =
                state.full_at.iter().map(|(u, t)| (*t, u.clone())).collect();
            by_release.sort();
            for (_, user) in by_release.into_iter().take(excess) {
                state.full_at.remove(&user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_burst_gets_exactly_the_allowed_number() {
        let limiter = RateLimiter::new(20, 5);
        let t0 = Instant::now();
        let results: Vec<_> = (0..100).map(|_| limiter.check("alice", t0)).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 5);
        assert!(results[..5].iter().all(Result::is_ok));
        // 20/min = one token every 3 s; the 6th command waits for one.
        let refused = results[5].unwrap_err();
        assert_eq!(refused, RetryAfter(secs(3.0)));
        assert_eq!(
            refused.to_string(),
            "You are sending commands too quickly. Slow down and try again in 3 s."
        );
        // Other users are not affected.
        assert!(limiter.check("bob", t0).is_ok());
        // Refills at the configured rate: one more after 3 s, not two.
        let t3 = t0 + secs(3.0);
        assert!(limiter.check("alice", t3).is_ok());
        assert_eq!(limiter.check("alice", t3), Err(RetryAfter(secs(3.0))));
        assert_eq!(
            limiter.check("alice", t3 + secs(1.0)),
            Err(RetryAfter(secs(2.0)))
        );
        // After a long pause the whole burst is back, and no more.
        let later = t0 + secs(3600.0);
        let ok = (0..100)
            .filter(|_| limiter.check("alice", later).is_ok())
            .count();
        assert_eq!(ok, 5);
    }

    #[test]
    fn steady_rate_is_sustained() {
        let limiter = RateLimiter::new(60, 1);
        let t0 = Instant::now();
        for i in 0..120 {
            let t = t0 + secs(f64::from(i));
            assert!(limiter.check("u", t).is_ok(), "command {i}");
            assert!(limiter.check("u", t + secs(0.5)).is_err());
        }
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(RetryAfter(secs(0.001)).seconds(), 1);
        assert_eq!(RetryAfter(secs(2.0)).seconds(), 2);
        assert_eq!(RetryAfter(secs(2.1)).seconds(), 3);
        assert_eq!(RetryAfter(Duration::ZERO).seconds(), 1);
    }

    #[test]
    fn idle_users_are_evicted_and_memory_is_bounded() {
        let limiter = RateLimiter::with_max_users(10, 2, 100);
        let t0 = Instant::now();
        for i in 0..1000 {
            assert!(limiter.check(&format!("user{i}"), t0).is_ok());
            assert!(limiter.tracked_users() <= 100);
        }
        // A minute later every bucket is full again: all entries go.
        assert!(limiter.check("late", t0 + secs(61.0)).is_ok());
        assert_eq!(limiter.tracked_users(), 1);
        // Dropping a user only ever forgets a debt, never grants more than a burst.
        let ok = (0..10)
            .filter(|_| limiter.check("late", t0 + secs(61.0)).is_ok())
            .count();
        assert_eq!(ok, 1);
    }

    #[test]
    fn zero_settings_are_raised_to_one() {
        let limiter = RateLimiter::new(0, 0);
        let t0 = Instant::now();
        assert!(limiter.check("u", t0).is_ok());
        assert_eq!(limiter.check("u", t0), Err(RetryAfter(secs(60.0))));
    }
}
