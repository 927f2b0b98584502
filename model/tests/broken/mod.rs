//! Test-only broken hosts: each re-creates one historical bug of
//! docs/bugs.md around the shipped host code (`rotor_fs::FsRefreshLock`,
//! `rotor_fs::FsStores` over the model file system), so the tests can show
//! that loom and shuttle catch it and name the guarantee it breaks. None of
//! this exists outside the tests: the shipped kernel and hosts have no
//! switch that turns a bug on. A bug in what the OS gives the host (a lock
//! that is not taken, or never let go) is a wrapper over the model's I/O
//! ([`BrokenIo`]), under the unchanged shipped code.
#![allow(dead_code)] // each test binary uses some of the variants

pub mod gate;

use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::path::Path;
use std::rc::Rc;

use rotor_fs::io::{ForwardIo, HeldFileLock, Io};
use rotor_fs::lock::{HolderMeta, LockWait};
use rotor_fs::single_flight::SingleFlight;
use rotor_fs::sync::Arc;
use rotor_fs::FsRefreshLock;
use rotor_kernel::driver::{RefreshLock, Stores};
use rotor_kernel::{
    LockFailure, LockKey, Mutation, ProfileView, StoreFault, StoreRef, WriteOutcome,
};
use rotor_model::scenario::{agent_io, AgentSpec, HostVariant};
use rotor_model::store::AgentStores;
use rotor_model::world::World;

/// The correct host's refresh lock for `agent` over `io`.
fn model_lock(world: &Arc<World>, agent: &AgentSpec, io: std::sync::Arc<dyn Io>) -> FsRefreshLock {
    world.refresh_lock(io, agent.pid, &agent.name)
}

/// The correct host's stores for `agent` over `io`.
fn agent_stores(world: &Arc<World>, agent: &AgentSpec, io: std::sync::Arc<dyn Io>) -> AgentStores {
    AgentStores::new(world.clone(), agent.store, &agent.name, io)
}

/// What a [`BrokenIo`] does wrong with the store locks (the lock files
/// outside the refresh-lock directory); everything else it passes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreLockBug {
    /// A store lock is never taken: `lock_exclusive` returns at once,
    /// holding nothing.
    NotTaken,
    /// A store lock is taken and never let go (its release is forgotten).
    NeverReleased,
}

/// The model's I/O with one OS rule broken for store locks.
#[derive(Debug)]
pub struct BrokenIo {
    inner: std::sync::Arc<dyn Io>,
    lock_dir: std::path::PathBuf,
    bug: StoreLockBug,
}

impl BrokenIo {
    /// `agent`'s view of the machine, with `bug`.
    pub fn for_agent(
        world: &World,
        agent: &AgentSpec,
        bug: StoreLockBug,
    ) -> std::sync::Arc<dyn Io> {
        std::sync::Arc::new(BrokenIo {
            inner: agent_io(world, agent),
            lock_dir: world.layout.lock_dir(),
            bug,
        })
    }
}

/// A lock that holds nothing.
#[derive(Debug)]
struct NoLock;

impl HeldFileLock for NoLock {}

impl ForwardIo for BrokenIo {
    fn inner(&self) -> &dyn Io {
        &*self.inner
    }

    fn lock_exclusive(
        &self,
        path: &Path,
        wait_ms_max: u64,
        meta: &HolderMeta,
    ) -> Result<Box<dyn HeldFileLock>, LockWait> {
        if path.parent() == Some(self.lock_dir.as_path()) {
            return self.inner.lock_exclusive(path, wait_ms_max, meta);
        }
        match self.bug {
            StoreLockBug::NotTaken => Ok(Box::new(NoLock)),
            StoreLockBug::NeverReleased => {
                let held = self.inner.lock_exclusive(path, wait_ms_max, meta)?;
                std::mem::forget(held);
                Ok(Box::new(NoLock))
            }
        }
    }
}

/// B1, lock keyed per agent store (openclaw issue #26322): each agent locks
/// its own store's path, so agents sharing a profile never exclude each
/// other. Both read the same refresh token and both present it (G1).
pub struct PerStoreLockHost;

pub struct PerStoreLock {
    inner: FsRefreshLock,
    store_key: LockKey,
}

impl RefreshLock for PerStoreLock {
    fn acquire(&mut self, _key: &LockKey, wait_ms_max: u64) -> Result<(), LockFailure> {
        self.inner.acquire(&self.store_key, wait_ms_max)
    }

    fn release(&mut self, _key: &LockKey) {
        self.inner.release(&self.store_key)
    }
}

impl HostVariant for PerStoreLockHost {
    type Lock = PerStoreLock;
    type Stores = AgentStores;

    fn build(&self, world: &Arc<World>, agent: &AgentSpec) -> (PerStoreLock, AgentStores) {
        let io = agent_io(world, agent);
        let store_name = world.store_name(agent.store).to_string();
        let lock = PerStoreLock {
            inner: model_lock(world, agent, io.clone()),
            store_key: LockKey::new("store-path", &store_name),
        };
        (lock, agent_stores(world, agent, io))
    }
}

/// B3, re-entrant lock within one process: the shipped refresh lock with
/// the in-process single-flight bypassed (each thread gets a slot of its
/// own instead of its process's), in front of a cross-process lock held per
/// process (POSIX record lock semantics): a second thread of the holding
/// process walks through and presents the same refresh token (G1; the model
/// file system records the walk-through as G8).
pub struct ProcessLockOnlyHost;

impl HostVariant for ProcessLockOnlyHost {
    type Lock = FsRefreshLock;
    type Stores = AgentStores;

    fn build(&self, world: &Arc<World>, agent: &AgentSpec) -> (FsRefreshLock, AgentStores) {
        let io = agent_io(world, agent);
        // The bug: a single-flight of this thread's own.
        let lock = FsRefreshLock::with_io(
            io.clone(),
            world.layout.clone(),
            SingleFlight::new(),
            &agent.name,
        );
        (lock, agent_stores(world, agent, io))
    }
}

/// B4, store writes without the store lock: the shipped store code runs
/// over an I/O where the store's lock file is never locked, so its
/// read-modify-writes race each other. A background writer's update that
/// lands in between is lost, or the writer's stale copy reverts the
/// rotation (G4).
pub struct UnlockedWritesHost;

impl HostVariant for UnlockedWritesHost {
    type Lock = FsRefreshLock;
    type Stores = AgentStores;

    fn build(&self, world: &Arc<World>, agent: &AgentSpec) -> (FsRefreshLock, AgentStores) {
        let io = BrokenIo::for_agent(world, agent, StoreLockBug::NotTaken);
        let lock = model_lock(world, agent, io.clone());
        (lock, agent_stores(world, agent, io))
    }
}

/// B6, mirror outside the refresh lock: the sub-agent's mirror of the
/// rotated credential into main is written after the refresh lock is
/// released. Another process takes the lock in between and finds main
/// still holding the consumed token.
///
/// With `keep_fences: true` this is the bug on rotor's host: the fence the
/// refresher left in main makes the next holder stop with an in-doubt
/// `NeedsReauth` instead of presenting the consumed token, so what breaks
/// is G2 (an agent misses the rotation that happened). With
/// `keep_fences: false` the host also drops the in-doubt fences, as the
/// seed system (which had none) did, and the consumed token is presented
/// again (G1).
pub struct MirrorAfterReleaseHost {
    pub keep_fences: bool,
}

type Deferred = Rc<RefCell<Vec<Mutation>>>;

pub struct DeferMirror {
    inner: AgentStores,
    deferred: Deferred,
    keep_fences: bool,
}

impl Stores for DeferMirror {
    fn read(&mut self, store: StoreRef, profile: &str) -> Result<ProfileView, StoreFault> {
        self.inner.read(store, profile)
    }

    fn write(
        &mut self,
        store: StoreRef,
        profile: &str,
        mutation: &Mutation,
    ) -> Result<WriteOutcome, StoreFault> {
        match mutation {
            Mutation::Mirror { .. } => {
                self.deferred.borrow_mut().push(mutation.clone());
                Ok(WriteOutcome::Applied)
            }
            Mutation::PutFence { .. } if !self.keep_fences => Ok(WriteOutcome::Applied),
            _ => self.inner.write(store, profile, mutation),
        }
    }
}

pub struct MirrorAfterRelease {
    inner: FsRefreshLock,
    stores: AgentStores,
    deferred: Deferred,
}

impl RefreshLock for MirrorAfterRelease {
    fn acquire(&mut self, key: &LockKey, wait_ms_max: u64) -> Result<(), LockFailure> {
        self.inner.acquire(key, wait_ms_max)
    }

    fn release(&mut self, key: &LockKey) {
        self.inner.release(key);
        for mutation in self.deferred.borrow_mut().drain(..) {
            // The bug: main is written with no refresh lock held.
            let _ = self
                .stores
                .write(StoreRef::Main, rotor_model::world::PROFILE, &mutation);
        }
    }
}

impl HostVariant for MirrorAfterReleaseHost {
    type Lock = MirrorAfterRelease;
    type Stores = DeferMirror;

    fn build(&self, world: &Arc<World>, agent: &AgentSpec) -> (MirrorAfterRelease, DeferMirror) {
        let io = agent_io(world, agent);
        let deferred: Deferred = Rc::default();
        let lock = MirrorAfterRelease {
            inner: model_lock(world, agent, io.clone()),
            stores: agent_stores(world, agent, io.clone()),
            deferred: deferred.clone(),
        };
        let stores = DeferMirror {
            inner: agent_stores(world, agent, io),
            deferred,
            keep_fences: self.keep_fences,
        };
        (lock, stores)
    }
}

/// Not one of the listed bugs, but the failure every lock bug ends in: a
/// path that never releases the refresh lock (an early return that forgets
/// it, in a process that lives on: the shipped lock, never released nor
/// dropped). The lock is still held when everyone is done, or the next
/// agent that needs it waits forever; the checkers call the latter a
/// deadlock, which the harness names as G8 (no wedge).
pub struct LeakyLockHost;

pub struct LeakyLock {
    inner: ManuallyDrop<FsRefreshLock>,
}

impl RefreshLock for LeakyLock {
    fn acquire(&mut self, key: &LockKey, wait_ms_max: u64) -> Result<(), LockFailure> {
        self.inner.acquire(key, wait_ms_max)
    }

    fn release(&mut self, _key: &LockKey) {
        // The bug: nothing is released (and the lock is never dropped,
        // which would release it).
    }
}

impl HostVariant for LeakyLockHost {
    type Lock = LeakyLock;
    type Stores = AgentStores;

    fn build(&self, world: &Arc<World>, agent: &AgentSpec) -> (LeakyLock, AgentStores) {
        let io = agent_io(world, agent);
        let lock = LeakyLock {
            inner: ManuallyDrop::new(model_lock(world, agent, io.clone())),
        };
        (lock, agent_stores(world, agent, io))
    }
}

/// A store lock that is never unlocked (a release lost on some path): the
/// shipped store code over an I/O that never lets a store lock go. The next
/// read-modify-write of that store waits forever; every thread ends up
/// waiting, which loom and shuttle report as a deadlock (G8, no wedge).
pub struct ForgottenStoreLockHost;

impl HostVariant for ForgottenStoreLockHost {
    type Lock = FsRefreshLock;
    type Stores = AgentStores;

    fn build(&self, world: &Arc<World>, agent: &AgentSpec) -> (FsRefreshLock, AgentStores) {
        let io = BrokenIo::for_agent(world, agent, StoreLockBug::NeverReleased);
        let lock = model_lock(world, agent, io.clone());
        (lock, agent_stores(world, agent, io))
    }
}
