//! PLACEHOLDER until the model issue's branch lands (it replaces this file).
//!
//! The in-process half of the refresh lock: one slot per [`LockKey`]. A
//! follower waits for the leader's slot, then runs its own resolve, which
//! adopts the leader's rotation from the stores.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rotor_kernel::LockKey;

/// In-process slots, one per lock key. Clones share the slots.
#[derive(Clone, Default, Debug)]
pub struct SingleFlight {
    inner: Arc<(Mutex<HashSet<LockKey>>, Condvar)>,
}

/// The slot stayed taken for the whole wait budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlightTimeout {
    /// How long the caller waited.
    pub waited_ms: u64,
}

impl SingleFlight {
    /// No slot taken.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes `key`'s slot, waiting at most `wait_ms_max`.
    pub fn acquire(&self, key: &LockKey, wait_ms_max: u64) -> Result<(), FlightTimeout> {
        let (slots, changed) = &*self.inner;
        let start = Instant::now();
        let deadline = start + Duration::from_millis(wait_ms_max);
        let mut taken = slots.lock().unwrap_or_else(|p| p.into_inner());
        while taken.contains(key) {
            let now = Instant::now();
            if now >= deadline {
                return Err(FlightTimeout {
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            taken = changed
                .wait_timeout(taken, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        taken.insert(key.clone());
        Ok(())
    }

    /// Frees `key`'s slot and wakes the waiters.
    pub fn release(&self, key: &LockKey) {
        let (slots, changed) = &*self.inner;
        slots.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        changed.notify_all();
    }
}
