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

/// The explorer's check of one refresh-lock decision, made from nothing:
/// on a fresh simulated disk, the shipped lock (one `SingleFlight` per
/// process, then `flock`) of each of `holders` (process, name) is taken for
/// `key`, and then `waiter`'s is tried without waiting. `Ok(None)`: the
/// shipped lock lets the waiter in beside the holders; `Ok(Some(why))`: it
/// refuses, and why; `Err`: the holders themselves cannot all hold it
/// together.
pub(crate) fn shipped_lets_in(
    processes: usize,
    key: &LockKey,
    holders: &[(u8, String)],
    waiter: (u8, &str),
) -> Result<Option<String>, String> {
    let io: Arc<dyn Io> = Arc::new(crate::disk::SimDisk::new());
    let layout = Layout::new(PathBuf::from(super::twin::STATE_DIR));
    // The state directory, made by the shipped code as a first store
    // update makes it (an update that writes nothing).
    rotor_fs::StoreFile::with_io(io.clone(), &layout, &rotor_fs::AgentId::main(), 1_000)
        .update("twin-dirs", |_| ((), false))
        .map_err(|fault| format!("the twin's disk refuses the state directory: {fault:?}"))?;
    let flights: Vec<SingleFlight> = (0..processes).map(|_| SingleFlight::new()).collect();
    let lock_of = |process: u8, name: &str| {
        FsRefreshLock::with_io(
            io.clone(),
            layout.clone(),
            flights[process as usize].clone(),
            name,
        )
    };
    let mut held = Vec::new();
    for (process, name) in holders {
        let mut lock = lock_of(*process, name);
        if let Err(failure) = lock.acquire(key, 0) {
            return Err(format!(
                "the shipped fs lock cannot hold {holders:?} together: {name} (process {process}) is refused: {failure:?}"
            ));
        }
        held.push(lock);
    }
    let mut tried = lock_of(waiter.0, waiter.1);
    let refused = match tried.acquire(key, 0) {
        Ok(()) => {
            tried.release(key);
            None
        }
        Err(failure) => Some(format!("{failure:?}")),
    };
    for mut lock in held {
        lock.release(key);
    }
    Ok(refused)
}
