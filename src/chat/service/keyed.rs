//! One FIFO lock per key (a channel, a session), made when first asked for and forgotten when
//! nobody holds or awaits it: work on one key waits its turn, other keys do not wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

type KeyLock = Arc<tokio::sync::Mutex<()>>;

#[derive(Default)]
pub(super) struct KeyedLocks {
    keys: Mutex<HashMap<String, KeyLock>>,
}

/// A key's turn (or the wait for it); the next holder of the key waits for its drop.
///
/// Every count of a key's lock but the map's own is a `Turn`'s `lock` (taken and dropped under
/// the map's lock) or a clone inside a guard or a pending wait, which ends before its `Turn`'s
/// drop: so the last `Turn` to go finds the map's count alone and forgets the key.
pub(super) struct Turn<'a> {
    locks: &'a KeyedLocks,
    key: String,
    lock: Option<KeyLock>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    /// Waits for the holders of `key` that asked earlier. The lock is asked for synchronously
    /// (tokio's mutex queues waiters in that order), so a caller that needs the order of its
    /// own callers must not await anything before calling this.
    pub(super) async fn enter(&self, key: &str) -> Turn<'_> {
        let mut turn = self.turn(key);
        let lock = turn.lock.clone().unwrap_or_default();
        turn.guard = Some(lock.lock_owned().await);
        turn
    }

    /// The turn of `key` if nobody holds it now.
    pub(super) fn try_enter(&self, key: &str) -> Option<Turn<'_>> {
        let mut turn = self.turn(key);
        let lock = turn.lock.clone().unwrap_or_default();
        turn.guard = Some(lock.try_lock_owned().ok()?);
        Some(turn)
    }

    fn turn(&self, key: &str) -> Turn<'_> {
        let lock = self.map().entry(key.to_owned()).or_default().clone();
        Turn {
            locks: self,
            key: key.to_owned(),
            lock: Some(lock),
            guard: None,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, KeyLock>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Turn<'_> {
    /// Lets the next holder go, and forgets the key when nobody else holds or awaits it.
    fn drop(&mut self) {
        let mut keys = self.locks.map();
        self.guard = None;
        self.lock = None;
        if keys
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            keys.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::{Arc, Mutex};

    use super::KeyedLocks;

    /// A key's holders go one at a time in the order they asked; another key does not wait;
    /// a key nobody holds or awaits is forgotten.
    #[tokio::test]
    async fn holders_of_a_key_go_in_the_order_they_asked() {
        let locks = Arc::new(KeyedLocks::default());
        let first = locks.enter("c1").await;
        let done = Arc::new(Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for i in 0..3 {
            let (locks, done) = (locks.clone(), done.clone());
            waiting.push(tokio::spawn(async move {
                let _turn = locks.enter("c1").await;
                done.lock().unwrap().push(i);
            }));
            // Each asks for the lock before the next is spawned.
            tokio::task::yield_now().await;
        }
        drop(locks.enter("c2").await);
        assert!(locks.try_enter("c1").is_none(), "c1 is held");
        assert!(
            done.lock().unwrap().is_empty(),
            "c1 waits for its first holder"
        );
        drop(first);
        for task in waiting {
            task.await.unwrap();
        }
        assert_eq!(*done.lock().unwrap(), [0, 1, 2]);
        assert!(locks.map().is_empty(), "no lock is kept for idle keys");
        let free = locks.try_enter("c1").expect("c1 is free");
        drop(free);
        assert!(locks.map().is_empty());
    }

    /// A wait given up (its caller's future dropped, even after the holder let go and woke it)
    /// and a failed try leave no key behind.
    #[tokio::test]
    async fn waits_given_up_leave_nothing_behind() {
        let locks = KeyedLocks::default();
        let held = locks.enter("s1").await;
        let mut waiter = Box::pin(locks.enter("s1"));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(waiter.as_mut().poll(&mut cx).is_pending(), "s1 is held");
        assert!(locks.try_enter("s1").is_none());
        drop(held);
        assert_eq!(locks.map().len(), 1, "the waiter still counts");
        drop(waiter);
        assert!(locks.map().is_empty(), "{:?}", locks.map().keys());
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(10), async {
            let _held = locks.enter("s2").await;
            std::future::pending::<()>().await
        })
        .await;
        assert!(gave_up.is_err());
        assert!(locks.map().is_empty(), "{:?}", locks.map().keys());
    }
}
