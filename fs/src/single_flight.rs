//! In-process single-flight: the in-process half of the refresh lock.
//!
//! The refresh lock for a (provider, profile) has two halves (SPEC §4, §8):
//!
//! 1. this slot, keyed by the same [`LockKey`], which excludes the threads
//!    and tasks of one process from each other;
//! 2. the cross-process lock (an advisory `flock` in the fs host; a modelled
//!    advisory lock in `rotor-model`), which excludes processes.
//!
//! A host takes the slot first, then the cross-process lock, and releases in
//! the reverse order. The slot is what makes the lock correct inside one
//! process whatever the cross-process backend does with a second request from
//! the same process: POSIX record locks (`fcntl`) are held per process, so a
//! second thread "re-acquires" a lock its process already holds and walks
//! through it (docs/bugs.md B3, a G1 violation). With the slot in front, the
//! cross-process lock is only ever asked for by one thread per process and key.
//!
//! # Design decision: followers re-run the kernel, they do not receive a result
//!
//! Concurrent callers for one key share one refresh and its result (G2), but
//! not by handing the leader's token to the followers. A follower waits for
//! the leader's slot, then runs its own kernel resolve, which under the lock
//! re-reads the stores, finds the leader's rotation there and adopts it
//! (SPEC §3 step 4: `Adopted{Peer}` or `Adopted{Main}`). So the endpoint is
//! called once and every caller ends with the new token, while every copy
//! still goes through the kernel's identity gate: a follower bound to another
//! account (a sub-agent whose store holds account X while the leader
//! refreshed Y in main) never receives the leader's token (G3), because the
//! kernel refuses the copy and refreshes the follower's own family instead.
//! The cost is a few store reads per follower, which is nothing next to an
//! endpoint call.
//!
//! # Waiting
//!
//! [`SingleFlight::acquire`] waits at most `wait_ms_max` in the real build
//! (`Condvar::wait_timeout`, re-checked in a loop against a deadline). Under
//! loom and shuttle (see [`crate::sync`]) there is no time, so it waits
//! untimed and never returns [`FlightTimeout`]: the models show instead that
//! every wait ends because the holder released (no wedge, G8).
//!
//! [`SingleFlight::release`] wakes one waiter. A woken waiter re-checks the
//! slot: if another thread took it first, it waits again; that thread's
//! release wakes the next one, so no wake-up is ever lost.

use core::fmt;
use std::collections::HashMap;

use rotor_kernel::LockKey;

use crate::sync::{self, Arc, Condvar, Mutex};

/// The in-process slots, one per [`LockKey`]. Cloning shares the slots (an
/// `Arc` inside): one `SingleFlight` per process, handed to every thread.
#[derive(Clone)]
pub struct SingleFlight {
    slots: Arc<Mutex<HashMap<LockKey, Slot>>>,
}

/// One key's slot. Present in the map while held or waited for.
struct Slot {
    held: bool,
    waiters: usize,
    /// Notified on release; used only with the map's mutex.
    wake: Arc<Condvar>,
}

/// [`SingleFlight::acquire`] gave up: another thread of this process held the
/// slot for longer than the wait budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlightTimeout {
    /// How long the caller waited.
    pub waited_ms: u64,
}

/// How a host's refresh lock reports a single-flight wait that ran out: the
/// holder is another resolve of this very process.
impl From<FlightTimeout> for rotor_kernel::LockFailure {
    fn from(timeout: FlightTimeout) -> Self {
        rotor_kernel::LockFailure {
            waited_ms: timeout.waited_ms,
            holder: Some(format!(
                "another resolve in this process (pid {})",
                std::process::id()
            )),
            error: None,
        }
    }
}

impl fmt::Display for FlightTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "another thread of this process held the refresh slot for {} ms (the wait budget)",
            self.waited_ms
        )
    }
}

impl std::error::Error for FlightTimeout {}

impl Default for SingleFlight {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SingleFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never blocks: a Debug print must not wait for a holder.
        let mut out = f.debug_struct("SingleFlight");
        match self.slots.try_lock() {
            Ok(slots) => {
                let held = slots.values().filter(|slot| slot.held).count();
                let waiters: usize = slots.values().map(|slot| slot.waiters).sum();
                out.field("held", &held).field("waiters", &waiters)
            }
            Err(_) => out.field("slots", &"<busy>"),
        };
        out.finish()
    }
}

impl SingleFlight {
    /// No slot held.
    pub fn new() -> Self {
        SingleFlight {
            slots: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Takes the in-process slot for `key`, waiting at most `wait_ms_max`
    /// (real build: `Condvar::wait_timeout`; loom and shuttle builds wait
    /// untimed, see the module docs). `wait_ms_max == 0` tries once.
    pub fn acquire(&self, key: &LockKey, wait_ms_max: u64) -> Result<(), FlightTimeout> {
        let budget = WaitBudget::start(wait_ms_max);
        let mut slots = sync::lock(&self.slots);
        loop {
            let slot = slots.entry(key.clone()).or_insert_with(Slot::free);
            if !slot.held {
                slot.held = true;
                return Ok(());
            }
            let Some(remaining) = budget.remaining() else {
                return Err(FlightTimeout {
                    waited_ms: budget.waited_ms(),
                });
            };
            slot.waiters += 1;
            let wake = Arc::clone(&slot.wake);
            let (guard, _timed_out) = sync::wait_timeout(&wake, slots, remaining);
            slots = guard;
            // A slot with waiters is never removed (see `release`), so ours
            // is still there; the timeout is judged by the budget on the
            // next turn, after checking whether the slot came free.
            let slot = slots
                .get_mut(key)
                .expect("bug: a single-flight slot with waiters was removed");
            slot.waiters -= 1;
        }
    }

    /// Releases the slot for `key`; wakes one waiter.
    ///
    /// # Panics
    ///
    /// When the slot is not held: every release must pair with a successful
    /// [`SingleFlight::acquire`] (the kernel emits exactly one `ReleaseLock`
    /// per acquired lock), so an unpaired release is a host bug.
    pub fn release(&self, key: &LockKey) {
        let mut slots = sync::lock(&self.slots);
        let slot = slots
            .get_mut(key)
            .filter(|slot| slot.held)
            .unwrap_or_else(|| panic!("bug: single-flight release of {key}, which is not held"));
        if slot.waiters == 0 {
            slots.remove(key);
        } else {
            slot.held = false;
            slot.wake.notify_one();
        }
    }
}

impl Slot {
    fn free() -> Self {
        Slot {
            held: false,
            waiters: 0,
            wake: Arc::new(Condvar::new()),
        }
    }
}

/// The wait budget of one `acquire`: a deadline in the real build, unbounded
/// under the model checkers (which have no time).
struct WaitBudget {
    #[cfg(not(any(loom, feature = "shuttle")))]
    started: std::time::Instant,
    #[cfg(not(any(loom, feature = "shuttle")))]
    budget: core::time::Duration,
}

impl WaitBudget {
    fn start(wait_ms_max: u64) -> Self {
        #[cfg(not(any(loom, feature = "shuttle")))]
        {
            WaitBudget {
                started: std::time::Instant::now(),
                budget: core::time::Duration::from_millis(wait_ms_max),
            }
        }
        #[cfg(any(loom, feature = "shuttle"))]
        {
            let _ = wait_ms_max;
            WaitBudget {}
        }
    }

    /// Time left, or `None` once the budget is spent.
    fn remaining(&self) -> Option<core::time::Duration> {
        #[cfg(not(any(loom, feature = "shuttle")))]
        {
            self.budget
                .checked_sub(self.started.elapsed())
                .filter(|left| !left.is_zero())
        }
        #[cfg(any(loom, feature = "shuttle"))]
        {
            Some(core::time::Duration::MAX)
        }
    }

    fn waited_ms(&self) -> u64 {
        #[cfg(not(any(loom, feature = "shuttle")))]
        {
            u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
        }
        #[cfg(any(loom, feature = "shuttle"))]
        {
            0
        }
    }
}

#[cfg(all(test, not(any(loom, feature = "shuttle"))))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    fn key(profile: &str) -> LockKey {
        LockKey::new("provider", profile)
    }

    #[test]
    fn second_acquire_of_a_held_slot_times_out_and_names_the_wait() {
        let flight = SingleFlight::new();
        flight.acquire(&key("a"), 0).unwrap();
        let timeout = flight.acquire(&key("a"), 0).unwrap_err();
        assert_eq!(timeout.waited_ms, 0);
        assert!(timeout.to_string().contains("refresh slot"), "{timeout}");
        // Another key is independent.
        flight.acquire(&key("b"), 0).unwrap();
        flight.release(&key("a"));
        flight.acquire(&key("a"), 0).unwrap();
    }

    #[test]
    fn a_bounded_wait_gives_up_while_the_slot_stays_held() {
        let flight = SingleFlight::new();
        flight.acquire(&key("a"), 0).unwrap();
        // Nobody releases: the waiter must come back with a timeout, not hang.
        let timeout = flight.acquire(&key("a"), 20).unwrap_err();
        assert!(timeout.waited_ms >= 20, "{timeout:?}");
    }

    #[test]
    fn release_hands_the_slot_to_a_waiter_and_clones_share_slots() {
        let flight = SingleFlight::new();
        flight.acquire(&key("a"), 0).unwrap();
        let (sender, receiver) = mpsc::channel();
        let follower = {
            let flight = flight.clone();
            std::thread::spawn(move || {
                flight.acquire(&key("a"), 600_000).unwrap();
                sender.send(()).unwrap();
                flight.release(&key("a"));
            })
        };
        // The follower cannot get through while the leader holds the slot.
        assert!(receiver.try_recv().is_err());
        flight.release(&key("a"));
        receiver.recv().unwrap();
        follower.join().unwrap();
        assert!(format!("{flight:?}").contains("held: 0"), "{flight:?}");
    }

    #[test]
    fn many_threads_never_hold_one_slot_together() {
        let flight = SingleFlight::new();
        let inside = std::sync::Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let flight = flight.clone();
                let inside = inside.clone();
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        flight.acquire(&key("a"), 600_000).unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "G1: two holders");
                        inside.fetch_sub(1, Ordering::SeqCst);
                        flight.release(&key("a"));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    }

    #[test]
    #[should_panic(expected = "not held")]
    fn unpaired_release_is_a_bug() {
        SingleFlight::new().release(&key("a"));
    }
}
