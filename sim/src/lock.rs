//! The refresh lock: an in-process single-flight slot plus a cross-process
//! lock, with two backends (SPEC §8).
//!
//! - **advisory** (`flock`): held until released or until the holder's
//!   process dies (the OS releases it). A live holder never loses it, however
//!   long it stalls, which is why G1 holds unconditionally on this backend.
//! - **lease**: the holder's process renews it every `lease/3` while it runs.
//!   When the process stalls (pause) or dies, the lease expires `lease` after
//!   the last renewal, and a waiter may take it *while the old holder still
//!   believes it holds it*. That is the limit documented in `ARCHITECTURE.md, "The lease backend's limit"`.
//!
//! The world decides when waiters are granted (it owns the event queue); this
//! file keeps who holds and who waits.

use crate::store::Owner;

/// The current holder of a refresh lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockHolder {
    /// Who.
    pub owner: Owner,
    /// Its process.
    pub process: u8,
    /// How many holders share it (more than one only when a broken host
    /// lets agents of one process walk through, B3).
    pub count: u16,
    /// When it was taken, ms.
    pub acquired_at_ms: u64,
    /// True once a second agent of the process walked in (B3): any agent of
    /// the process may then release one hold.
    pub shared: bool,
    /// True once the holder's process died: a lease nobody renews (a
    /// restarted process is a new holder, not this one).
    pub orphaned: bool,
}

/// One waiter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockWaiter {
    /// Who.
    pub owner: Owner,
    /// Its process.
    pub process: u8,
    /// Its epoch when it began to wait (a crash invalidates it).
    pub epoch: u32,
    /// When it began to wait, ms.
    pub since_ms: u64,
}

/// One refresh lock.
#[derive(Clone, Debug, Default)]
pub struct RefreshLock {
    /// The holder, if any.
    pub holder: Option<LockHolder>,
    /// Waiters, in arrival order.
    pub waiters: Vec<LockWaiter>,
    /// Bumped on every change of holder or renewal; a scheduled lease expiry
    /// that carries an older epoch is stale.
    pub epoch: u32,
}

impl RefreshLock {
    /// Tries to take the lock for `owner`. With `in_process_exclusion` false
    /// (a broken host), an agent of the holder's process walks in.
    pub fn try_acquire(
        &mut self,
        owner: Owner,
        process: u8,
        now_ms: u64,
        in_process_exclusion: bool,
    ) -> bool {
        match &mut self.holder {
            None => {
                self.holder = Some(LockHolder {
                    owner,
                    process,
                    count: 1,
                    acquired_at_ms: now_ms,
                    shared: false,
                    orphaned: false,
                });
                self.epoch += 1;
                true
            }
            Some(holder)
                if !in_process_exclusion && holder.process == process && !holder.orphaned =>
            {
                holder.count += 1;
                holder.shared = true;
                true
            }
            Some(_) => false,
        }
    }

    /// Releases one hold by `owner` (of `process`). Returns false when the
    /// caller no longer holds it (its lease expired and someone else took it).
    pub fn release(&mut self, owner: Owner, process: u8) -> bool {
        match &mut self.holder {
            Some(holder)
                if holder.owner == owner || (holder.shared && holder.process == process) =>
            {
                holder.count -= 1;
                if holder.count == 0 {
                    self.holder = None;
                    self.epoch += 1;
                }
                true
            }
            _ => false,
        }
    }

    /// The lease expiry of a holder whose process stopped at `stopped_at_ms`:
    /// `lease_ms` after its last renewal.
    pub fn lease_expiry(&self, stopped_at_ms: u64, lease_ms: u64, renew_every_ms: u64) -> u64 {
        let acquired = self
            .holder
            .as_ref()
            .map_or(stopped_at_ms, |h| h.acquired_at_ms);
        let renew = renew_every_ms.max(1);
        let last_renewal = acquired + (stopped_at_ms.saturating_sub(acquired) / renew) * renew;
        last_renewal + lease_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_unless_in_process_exclusion_is_off() {
        let mut lock = RefreshLock::default();
        assert!(lock.try_acquire(Owner::Agent(0), 0, 0, true));
        assert!(!lock.try_acquire(Owner::Agent(1), 0, 0, true));
        assert!(!lock.try_acquire(Owner::Agent(2), 1, 0, true));
        assert!(
            lock.try_acquire(Owner::Agent(1), 0, 0, false),
            "B3 walks in"
        );
        assert!(lock.release(Owner::Agent(0), 0));
        assert!(lock.holder.is_some());
        assert!(lock.release(Owner::Agent(1), 0));
        assert!(lock.holder.is_none());
        assert!(!lock.release(Owner::Agent(1), 0));
    }

    #[test]
    fn lease_expires_a_lease_after_the_last_renewal() {
        let mut lock = RefreshLock::default();
        lock.try_acquire(Owner::Agent(0), 0, 1_000, true);
        assert_eq!(lock.lease_expiry(1_000, 60_000, 20_000), 61_000);
        assert_eq!(lock.lease_expiry(30_000, 60_000, 20_000), 81_000);
    }
}
