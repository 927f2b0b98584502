//! Waiting for a contended `flock` with a deadline, without polling and
//! without leaking threads.
//!
//! `flock(LOCK_EX)` blocks with no timeout, so a bounded wait runs it on a
//! helper thread and waits for that thread until the deadline: the waiter
//! wakes the moment the holder releases (a hand-off costs microseconds, not a
//! polling interval). A blocked `flock` cannot be cancelled, so a waiter that
//! gives up leaves its helper behind: an *abandoned* helper. Two rules keep
//! abandoned helpers harmless:
//!
//! 1. An abandoned helper that gets the lock releases it at once: nobody in
//!    this process keeps a lock that nobody wants. (From outside it looks
//!    like a waiter that took the lock and did nothing; mutual exclusion is
//!    untouched, G8.)
//! 2. The next waiter for the same lock file in this process *adopts* an
//!    abandoned helper instead of starting another one. However often waits
//!    time out against a wedged holder, a process keeps at most one blocked
//!    helper per lock file and concurrent waiter, not one per timeout.
//!
//! The helper and its waiter meet in a [`Helper`]: a phase (blocked, got the
//! lock, failed, done) and whether a waiter still wants the result, both
//! behind one mutex, so a lock obtained just as the waiter gives up is either
//! handed over or released, never kept.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

/// Where a helper's `flock` stands.
enum Phase {
    /// Still blocked in `flock`.
    Blocked,
    /// Got the lock; the file waits for its waiter.
    Got(File),
    /// `flock` failed.
    Failed(std::io::Error),
    /// Over: the result was taken, or the lock released for want of a taker.
    Done,
}

struct HelperState {
    phase: Phase,
    /// Whether a waiter still wants the result.
    wanted: bool,
}

/// One helper thread blocked in `flock`, shared with its (current) waiter.
struct Helper {
    state: Mutex<HelperState>,
    ready: Condvar,
}

type Registry = Mutex<HashMap<PathBuf, Vec<Arc<Helper>>>>;

/// Blocked helpers by lock file. Lock order: the registry, then a helper's
/// state; a helper thread never holds its state while taking the registry.
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Helper {
    /// Makes this helper's result wanted again, if it is abandoned and
    /// still blocked.
    fn adopt(&self) -> bool {
        let mut state = lock(&self.state);
        let free = !state.wanted && matches!(state.phase, Phase::Blocked);
        if free {
            state.wanted = true;
        }
        free
    }
}

/// Starts a helper blocked in `flock` on `file` and registers it under
/// `path`.
fn start_helper(path: &Path, file: File) -> std::io::Result<Arc<Helper>> {
    let helper = Arc::new(Helper {
        state: Mutex::new(HelperState {
            phase: Phase::Blocked,
            wanted: true,
        }),
        ready: Condvar::new(),
    });
    let shared = Arc::clone(&helper);
    let key = path.to_owned();
    std::thread::Builder::new()
        .name("rotor-flock-wait".into())
        .spawn(move || run_helper(&key, &shared, file))?;
    Ok(helper)
}

fn run_helper(path: &Path, helper: &Arc<Helper>, file: File) {
    let result = file.lock();
    let unwanted = {
        let mut state = lock(&helper.state);
        if state.wanted {
            state.phase = match result {
                Ok(()) => Phase::Got(file),
                Err(error) => Phase::Failed(error),
            };
            helper.ready.notify_all();
            None
        } else {
            state.phase = Phase::Done;
            Some(file)
        }
    };
    // Rule 1: closing the file releases a lock nobody wants.
    drop(unwanted);
    let mut helpers = lock(registry());
    if let Some(list) = helpers.get_mut(path) {
        list.retain(|other| !Arc::ptr_eq(other, helper));
        if list.is_empty() {
            helpers.remove(path);
        }
    }
}

/// Waits until `deadline` for an exclusive `flock` on the lock file at
/// `path`, whose `try_lock` just found it held; `file` is a fresh open of it.
/// `Err(None)` is a timeout; `Err(Some(_))` an error from `flock` or from
/// starting the helper thread.
pub(crate) fn wait_for_lock(
    path: &Path,
    file: File,
    deadline: Instant,
) -> Result<File, Option<std::io::Error>> {
    let helper = {
        let mut helpers = lock(registry());
        let list = helpers.entry(path.to_owned()).or_default();
        // Rule 2: adopt an abandoned helper (the fresh open is then closed
        // unused); start one only when there is none.
        match list.iter().find(|helper| helper.adopt()) {
            Some(helper) => Arc::clone(helper),
            None => {
                let helper = start_helper(path, file).map_err(Some)?;
                list.push(Arc::clone(&helper));
                helper
            }
        }
    };
    let mut state = lock(&helper.state);
    loop {
        match std::mem::replace(&mut state.phase, Phase::Done) {
            Phase::Got(file) => return Ok(file),
            Phase::Failed(error) => return Err(Some(error)),
            Phase::Blocked => state.phase = Phase::Blocked,
            Phase::Done => {
                return Err(Some(std::io::Error::other(
                    "the lock-wait helper ended without an answer",
                )))
            }
        }
        let now = Instant::now();
        if now >= deadline {
            state.wanted = false;
            return Err(None);
        }
        state = helper
            .ready
            .wait_timeout(state, deadline - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

/// How many helpers are blocked on the lock file at `path` in this process
/// (wanted or abandoned).
#[cfg(test)]
pub(crate) fn blocked_helpers(path: &Path) -> usize {
    lock(registry()).get(path).map_or(0, Vec::len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn open(path: &Path) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap()
    }

    fn soon(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    /// Polls `condition` for up to 10 s: a liveness check, not a timing one.
    fn eventually(mut condition: impl FnMut() -> bool) -> bool {
        let give_up = soon(10_000);
        while Instant::now() < give_up {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    fn is_free(path: &Path) -> bool {
        open(path).try_lock().is_ok()
    }

    #[test]
    fn repeated_timeouts_keep_one_helper_per_lock_file_g8() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("wedged.lock");
        let holder = open(&path);
        holder.lock().unwrap();
        for _ in 0..20 {
            let outcome = wait_for_lock(&path, open(&path), soon(2));
            assert!(matches!(outcome, Err(None)), "a held lock must time out");
        }
        assert_eq!(blocked_helpers(&path), 1, "timeouts must adopt, not spawn");
        drop(holder);
        // Rule 1: the abandoned helper gets the lock, releases it and leaves.
        assert!(eventually(|| blocked_helpers(&path) == 0 && is_free(&path)));
    }

    #[test]
    fn a_later_waiter_adopts_an_abandoned_wait_and_gets_the_lock_g8() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("handoff.lock");
        let holder = open(&path);
        holder.lock().unwrap();
        assert!(matches!(
            wait_for_lock(&path, open(&path), soon(2)),
            Err(None)
        ));
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || wait_for_lock(&path, open(&path), soon(10_000)))
        };
        assert!(eventually(|| {
            let helpers = lock(registry());
            helpers
                .get(&path)
                .is_some_and(|list| list.len() == 1 && lock(&list[0].state).wanted)
        }));
        drop(holder);
        let got = waiter.join().unwrap().expect("the adopted wait hands over");
        assert!(!is_free(&path), "the waiter holds the lock it was handed");
        drop(got);
        assert!(is_free(&path));
        // The helper leaves the registry on its own thread after the hand-off,
        // so the waiter may return first (this was a flake under load).
        assert!(eventually(|| blocked_helpers(&path) == 0));
    }
}
