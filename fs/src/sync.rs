//! The `sync` facade: the concurrency primitives the in-process half of the
//! host is written over, switched at build time so the same code runs on the
//! real threads of a process and under the model checkers.
//!
//! | build | primitives |
//! | --- | --- |
//! | default | `std::sync` and `std::thread` |
//! | `RUSTFLAGS="--cfg loom"` | `loom::sync` and `loom::thread` (exhaustive interleavings) |
//! | feature `shuttle` | `shuttle::sync` and `shuttle::thread` (randomized and PCT schedules) |
//!
//! `cfg(loom)` wins when both are on. The kernel never sees this module: it
//! has no threads at all (STYLE.md, "what not to copy"); only the hosts and
//! the models (`rotor-model`) do.
//!
//! Under loom and shuttle the primitives only work inside a model run
//! (`loom::model`, `shuttle::check_*`): a build with either switch is a test
//! build of the models, never a shipped binary.
//!
//! Two helpers paper over the differences that matter here:
//! - [`lock`] ignores poisoning. A panic while a guard is held is a bug that
//!   the panicking thread already reports; the state behind our mutexes is
//!   kept consistent at every await point, so the next user can go on.
//! - [`wait_timeout`] is a bounded wait in the real build. loom and shuttle
//!   have no notion of time (their `wait_timeout` never times out), so there
//!   it is an untimed wait and never reports a timeout: the models check that
//!   every wait ends because someone released, which is the stronger claim
//!   (no wedge without relying on timeouts, G8).

use core::time::Duration;

#[cfg(loom)]
pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub use loom::thread;

#[cfg(all(not(loom), feature = "shuttle"))]
pub use shuttle::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(all(not(loom), feature = "shuttle"))]
pub use shuttle::thread;

#[cfg(not(any(loom, feature = "shuttle")))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(any(loom, feature = "shuttle")))]
pub use std::thread;

/// True when waits can time out (the real build); false under loom and
/// shuttle, where [`wait_timeout`] waits until notified.
pub const WAITS_CAN_TIME_OUT: bool = cfg!(not(any(loom, feature = "shuttle")));

/// Locks `mutex`, ignoring poisoning (see the module docs).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits on `condvar` until notified (spurious wake-ups possible: callers
/// re-check their condition in a loop).
pub fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar
        .wait(guard)
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits on `condvar` until notified or `timeout` has passed; the flag is
/// true when the wait timed out. Under loom and shuttle this waits untimed
/// and the flag is always false (see the module docs).
pub fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> (MutexGuard<'a, T>, bool) {
    #[cfg(not(any(loom, feature = "shuttle")))]
    {
        let (guard, result) = condvar
            .wait_timeout(guard, timeout)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (guard, result.timed_out())
    }
    #[cfg(any(loom, feature = "shuttle"))]
    {
        let _ = timeout;
        (wait(condvar, guard), false)
    }
}

/// Lets another thread run here: a hint to the OS scheduler in the real
/// build; a scheduling point under loom and shuttle.
pub fn yield_now() {
    thread::yield_now();
}
