//! One FIFO lock per key (a channel, a session), made when first asked for and forgotten when
//! nobody holds or awaits it: work on one key waits its turn, other keys do not wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

#[derive(Default)]
pub(super) struct KeyedLocks {
    keys: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A key's turn; the next holder of the key waits for its drop.
pub(super) struct Turn<'a> {
    locks: &'a KeyedLocks,
    key: String,
    turn: Option<OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    /// Waits for the holders of `key` that asked earlier. The lock is asked for synchronously
    /// (tokio's mutex queues waiters in that order), so a caller that needs the order of its
    /// own callers must not await anything before calling this.
    pub(super) async fn enter(&self, key: &str) -> Turn<'_> {
        let lock = self.lock_of(key);
        Turn {
            locks: self,
            key: key.to_owned(),
            turn: Some(lock.lock_owned().await),
        }
    }

    /// The turn of `key` if nobody holds it now.
    pub(super) fn try_enter(&self, key: &str) -> Option<Turn<'_>> {
        // On failure the clone is dropped at once; the holder forgets the key when done.
        let guard = self.lock_of(key).try_lock_owned().ok()?;
        Some(Turn {
            locks: self,
            key: key.to_owned(),
            turn: Some(guard),
        })
    }

    fn lock_of(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.map().entry(key.to_owned()).or_default().clone()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Turn<'_> {
    /// Lets the next holder go, and forgets the key when nobody holds or awaits it (every
    /// holder got its clone under the map's lock, so the count is exact).
    fn drop(&mut self) {
        self.turn = None;
        let mut keys = self.locks.map();
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
}
