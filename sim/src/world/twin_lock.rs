//! The shipped refresh lock as the world's twin (`rotor check
//! --shipped-host`, advisory backend).
//!
//! The world decides who holds the refresh lock and who waits (it owns the
//! event queue: a waiter is granted when the holder releases, a wait runs
//! out on a timer, a crash frees the lock). Its lock (`crate::lock`) is a
//! model of the fs host's: the in-process single-flight slot, then an
//! exclusive `flock` on the key's lock file. The twin holds the shipped
//! lock (`rotor_fs::FsRefreshLock` over one `SingleFlight` per process and
//! a simulated disk) exactly as the model says, and asks it, each time the
//! model's lock changes, whether it agrees:
//!
//! - every grant the model makes, the shipped lock makes too: a try of the
//!   new holder succeeds once the old holder's shipped lock is released;
//! - every agent the model makes wait finds the shipped lock taken: its try
//!   fails while the holder holds it.
//!
//! A disagreement is a violation of G8 (the lock's exclusion), with the
//! seed's replay command. The twin changes nothing in the run.

use std::path::PathBuf;
use std::sync::Arc;

use rotor_fs::io::Io;
use rotor_fs::{FsRefreshLock, Layout, SingleFlight};
use rotor_kernel::driver::RefreshLock as _;
use rotor_kernel::LockKey;

use super::setup::{PROFILE, PROVIDER};
use super::twin::Disagreement;
use crate::guarantee::Guarantee;
use crate::lock::RefreshLock;
use crate::store::Owner;

/// The shipped refresh lock beside the world's lock model.
#[derive(Debug)]
pub(crate) struct TwinLock {
    io: Arc<dyn Io>,
    layout: Layout,
    key: LockKey,
    /// One single-flight per process, shared by its agents and actors (one
    /// `Rotor` per process).
    flights: Vec<SingleFlight>,
    /// The model's holder and the shipped lock it holds.
    held: Option<(Owner, FsRefreshLock)>,
    /// Waiters already checked: (owner, since ms).
    checked: Vec<(Owner, u64)>,
}

impl TwinLock {
    /// A twin of the refresh lock of a world of `processes` processes, over
    /// `io` (the simulated disk, or a test's broken one), in the state
    /// directory the store twin made. The disk's lock is
    /// a `flock`: held per lock file and handle, whichever process asks.
    pub(crate) fn new(processes: usize, io: Arc<dyn Io>) -> TwinLock {
        TwinLock {
            io,
            layout: Layout::new(PathBuf::from(super::twin::STATE_DIR)),
            key: LockKey::new(PROVIDER, PROFILE),
            flights: (0..processes).map(|_| SingleFlight::new()).collect(),
            held: None,
            checked: Vec::new(),
        }
    }

    /// The shipped lock as process `process` sees it.
    fn lock_of(&self, process: u8, owner: Owner) -> FsRefreshLock {
        let name = match owner {
            Owner::Agent(index) => format!("agent-{index}"),
            Owner::Actor(index) => format!("actor-{index}"),
        };
        FsRefreshLock::with_io(
            self.io.clone(),
            self.layout.clone(),
            self.flights[process as usize].clone(),
            &name,
        )
    }

    /// Brings the shipped lock to the model's `lock` and checks that it
    /// agrees with every change since the last call.
    pub(crate) fn sync(&mut self, lock: &RefreshLock) -> Option<Disagreement> {
        let holder = lock.holder.as_ref().map(|h| (h.owner, h.process));
        if self.held.as_ref().map(|(owner, _)| *owner) != holder.map(|(owner, _)| owner) {
            if let Some((_, mut old)) = self.held.take() {
                old.release(&self.key);
            }
            if let Some((owner, process)) = holder {
                let mut shipped = self.lock_of(process, owner);
                if let Err(failure) = shipped.acquire(&self.key, 0) {
                    return Some((
                        Guarantee::G8,
                        format!(
                            "the simulator's lock model granted the refresh lock to {owner:?} (process {process}), \
                             the shipped fs lock refuses it: {failure:?}"
                        ),
                    ));
                }
                self.held = Some((owner, shipped));
            }
        }
        self.checked
            .retain(|seen| lock.waiters.iter().any(|w| (w.owner, w.since_ms) == *seen));
        // Waiters are checked only against a holder.
        let holder = self.held.as_ref().map(|(owner, _)| *owner)?;
        for waiter in &lock.waiters {
            let seen = (waiter.owner, waiter.since_ms);
            if self.checked.contains(&seen) {
                continue;
            }
            self.checked.push(seen);
            let mut shipped = self.lock_of(waiter.process, waiter.owner);
            if shipped.acquire(&self.key, 0).is_ok() {
                shipped.release(&self.key);
                return Some((
                    Guarantee::G8,
                    format!(
                        "the simulator's lock model makes {:?} (process {}) wait for {holder:?}, \
                         the shipped fs lock lets it in beside the holder",
                        waiter.owner, waiter.process
                    ),
                ));
            }
        }
        None
    }
}
