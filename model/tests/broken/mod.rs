//! Test-only broken hosts: each re-creates one historical bug of
//! docs/bugs.md on top of the model's real parts, so the tests can show that
//! loom and shuttle catch it and name the guarantee it breaks. None of this
//! exists outside the tests: the shipped kernel and hosts have no switch
//! that turns a bug on.
#![allow(dead_code)] // each test binary uses some of the variants

pub mod gate;

use std::cell::RefCell;
use std::rc::Rc;

use rotor_fs::sync::Arc;
use rotor_kernel::driver::{RefreshLock, Stores};
use rotor_kernel::{
    LockFailure, LockKey, Mutation, ProfileView, StoreFault, StoreRef, WriteOutcome,
};
use rotor_model::gate_check::WriteKind;
use rotor_model::lock::ModelLock;
use rotor_model::scenario::{AgentSpec, HostVariant};
use rotor_model::store::{AgentStores, Snapshot};
use rotor_model::world::World;

/// The correct host's refresh lock for `agent`, which most variants wrap.
fn model_lock(world: &Arc<World>, agent: &AgentSpec) -> ModelLock {
    ModelLock::new(
        world.clone(),
        world.flight(agent.pid),
        agent.pid,
        &agent.name,
    )
}

/// The correct host's stores for `agent`, which most variants wrap.
fn agent_stores(world: &Arc<World>, agent: &AgentSpec) -> AgentStores {
    AgentStores::new(world.clone(), agent.store, &agent.name)
}

/// [`AgentStores`]' write without its store lock: reads the document,
/// applies `mutation` and writes the whole document back unless it
/// conflicts. The caller decides what (if anything) it holds around it.
fn read_modify_write(
    stores: &AgentStores,
    store: StoreRef,
    profile: &str,
    mutation: &Mutation,
) -> WriteOutcome {
    let target = stores.store(store);
    let Snapshot { mut doc, version } = target.read();
    let outcome = doc.apply(profile, mutation);
    if !matches!(outcome, WriteOutcome::Conflict(_)) {
        let world = stores.world();
        target.write_back(version, doc, stores.agent(), WriteKind::Kernel, &world.log);
    }
    outcome
}

/// B1, lock keyed per agent store (openclaw issue #26322): each agent locks
/// its own store's path, so agents sharing a profile never exclude each
/// other. Both read the same refresh token and both present it (G1).
pub struct PerStoreLockHost;

pub struct PerStoreLock {
    inner: ModelLock,
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
        let store_name = world.stores[agent.store].name().to_string();
        let lock = PerStoreLock {
            inner: model_lock(world, agent),
            store_key: LockKey::new("store-path", &store_name),
        };
        (lock, agent_stores(world, agent))
    }
}

/// B3, re-entrant lock within one process: the in-process single-flight is
/// bypassed and the cross-process lock is held per process (POSIX record
/// lock semantics), so a second thread of the holding process walks through
/// and presents the same refresh token (G1).
pub struct ProcessLockOnlyHost;

pub struct ProcessLockOnly {
    world: Arc<World>,
    pid: u32,
    agent: String,
}

impl RefreshLock for ProcessLockOnly {
    fn acquire(&mut self, key: &LockKey, _wait_ms_max: u64) -> Result<(), LockFailure> {
        let world = &self.world;
        world.locks.acquire(key, self.pid, &self.agent, &world.log);
        Ok(())
    }

    fn release(&mut self, key: &LockKey) {
        let world = &self.world;
        world.locks.release(key, self.pid, &self.agent, &world.log);
    }
}

impl HostVariant for ProcessLockOnlyHost {
    type Lock = ProcessLockOnly;
    type Stores = AgentStores;

    fn build(&self, world: &Arc<World>, agent: &AgentSpec) -> (ProcessLockOnly, AgentStores) {
        let lock = ProcessLockOnly {
            world: world.clone(),
            pid: agent.pid,
            agent: agent.name.clone(),
        };
        (lock, agent_stores(world, agent))
    }
}

/// B4, refresh writes without the store lock: the refresh path reads the
/// document, applies its change and writes the whole document back while
/// holding only the refresh lock. A background writer's update that lands
/// in between is lost, or the writer's stale copy reverts the rotation (G4).
pub struct UnlockedWritesHost;

pub struct UnlockedStores {
    inner: AgentStores,
}

impl Stores for UnlockedStores {
    fn read(&mut self, store: StoreRef, profile: &str) -> Result<ProfileView, StoreFault> {
        self.inner.read(store, profile)
    }

    fn write(
        &mut self,
        store: StoreRef,
        profile: &str,
        mutation: &Mutation,
    ) -> Result<WriteOutcome, StoreFault> {
        // The bug: no `target.lock()` around the read-modify-write.
        Ok(read_modify_write(&self.inner, store, profile, mutation))
    }
}

impl HostVariant for UnlockedWritesHost {
    type Lock = ModelLock;
    type Stores = UnlockedStores;

    fn build(&self, world: &Arc<World>, agent: &AgentSpec) -> (ModelLock, UnlockedStores) {
        let lock = model_lock(world, agent);
        let stores = UnlockedStores {
            inner: agent_stores(world, agent),
        };
        (lock, stores)
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
    inner: ModelLock,
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
        let deferred: Deferred = Rc::default();
        let lock = MirrorAfterRelease {
            inner: model_lock(world, agent),
            stores: agent_stores(world, agent),
            deferred: deferred.clone(),
        };
        let stores = DeferMirror {
            inner: agent_stores(world, agent),
            deferred,
            keep_fences: self.keep_fences,
        };
        (lock, stores)
    }
}

/// Not one of the listed bugs, but the failure every lock bug ends in: a
/// path that never releases the refresh lock (an early return that forgets
/// it). The next agent that needs the lock waits forever; the checkers call
/// that a deadlock, which the harness names as G8 (no wedge).
pub struct LeakyLockHost;

pub struct LeakyLock {
    inner: ModelLock,
}

impl RefreshLock for LeakyLock {
    fn acquire(&mut self, key: &LockKey, wait_ms_max: u64) -> Result<(), LockFailure> {
        self.inner.acquire(key, wait_ms_max)
    }

    fn release(&mut self, _key: &LockKey) {
        // The bug: nothing is released.
    }
}

impl HostVariant for LeakyLockHost {
    type Lock = LeakyLock;
    type Stores = AgentStores;

    fn build(&self, world: &Arc<World>, agent: &AgentSpec) -> (LeakyLock, AgentStores) {
        let lock = LeakyLock {
            inner: model_lock(world, agent),
        };
        (lock, agent_stores(world, agent))
    }
}

/// A store lock that is never unlocked (a guard leaked on some path): the
/// next read-modify-write of that store waits forever. Every thread ends up
/// waiting, which loom and shuttle report as a deadlock (G8, no wedge).
pub struct ForgottenStoreLockHost;

pub struct ForgottenStoreLock {
    inner: AgentStores,
}

impl Stores for ForgottenStoreLock {
    fn read(&mut self, store: StoreRef, profile: &str) -> Result<ProfileView, StoreFault> {
        self.inner.read(store, profile)
    }

    fn write(
        &mut self,
        store: StoreRef,
        profile: &str,
        mutation: &Mutation,
    ) -> Result<WriteOutcome, StoreFault> {
        // The bug: the store lock is taken and never unlocked.
        std::mem::forget(self.inner.store(store).lock());
        Ok(read_modify_write(&self.inner, store, profile, mutation))
    }
}

impl HostVariant for ForgottenStoreLockHost {
    type Lock = ModelLock;
    type Stores = ForgottenStoreLock;

    fn build(&self, world: &Arc<World>, agent: &AgentSpec) -> (ModelLock, ForgottenStoreLock) {
        let lock = model_lock(world, agent);
        let stores = ForgottenStoreLock {
            inner: agent_stores(world, agent),
        };
        (lock, stores)
    }
}
