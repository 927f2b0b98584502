//! A process that dies between two effects.
//!
//! [`CrashPoint`] counts the effects one agent performs; just before the
//! chosen one, the process dies: the OS releases its locks
//! ([`crate::io::Machine::crash`]) and nothing it does afterwards is
//! seen by anyone. A crash "after" an effect (a refresh token presented, the
//! reply lost with the process) is the crash before the next one.
//!
//! The kernel is still driven to the end by the canonical driver, but every
//! effect of a dead process fails without touching the world, so the run
//! looks exactly as if the thread had vanished. A store write is one effect
//! and a write-back is atomic, so a crash never tears a document or leaves a
//! store lock held. A crashing agent must be alone in its process (a
//! scenario check): its death takes no other thread with it.

use std::cell::Cell;
use std::rc::Rc;

use rotor_fs::sync::Arc;
use rotor_kernel::driver::{RefreshLock, Stores, TokenEndpoint};
use rotor_kernel::{
    Credential, EndpointError, LockFailure, LockKey, Mutation, ProfileView, StoreFault,
    StoreFaultKind, StoreRef, TokenGrant, Transport, WriteOutcome,
};

use crate::world::World;

/// When one agent's process dies.
#[derive(Debug)]
pub struct CrashPoint {
    world: Arc<World>,
    pid: u32,
    crash_before_effect: Option<u32>,
    effects: Cell<u32>,
    crashed: Cell<bool>,
    held_lock: Cell<bool>,
}

impl CrashPoint {
    /// Process `pid` dies just before its effect number
    /// `crash_before_effect` (1-based), or never.
    pub fn new(world: Arc<World>, pid: u32, crash_before_effect: Option<u32>) -> Self {
        CrashPoint {
            world,
            pid,
            crash_before_effect,
            effects: Cell::new(0),
            crashed: Cell::new(false),
            held_lock: Cell::new(false),
        }
    }

    /// True once the process has died.
    pub fn crashed(&self) -> bool {
        self.crashed.get()
    }

    /// True when the process died holding the refresh lock (the OS
    /// released it).
    pub fn crashed_holding_lock(&self) -> bool {
        self.held_lock.get()
    }

    /// Counts one effect; true when the process is dead for it.
    fn dead(&self) -> bool {
        if self.crashed.get() {
            return true;
        }
        let effect = self.effects.get() + 1;
        self.effects.set(effect);
        if self.crash_before_effect == Some(effect) {
            self.crashed.set(true);
            self.held_lock.set(self.world.machine.crash(self.pid) > 0);
        }
        self.crashed.get()
    }
}

/// A host part (lock, stores or endpoint) of a process that may die.
#[derive(Debug)]
pub struct Crashable<T> {
    inner: T,
    point: Rc<CrashPoint>,
}

impl<T> Crashable<T> {
    /// Wraps `inner`; all parts of one agent share `point`.
    pub fn new(inner: T, point: Rc<CrashPoint>) -> Self {
        Crashable { inner, point }
    }
}

const DEAD: &str = "the process crashed";

fn dead_store() -> StoreFault {
    StoreFault {
        kind: StoreFaultKind::Io,
        detail: DEAD.to_string(),
    }
}

impl<T: RefreshLock> RefreshLock for Crashable<T> {
    fn acquire(&mut self, key: &LockKey, wait_ms_max: u64) -> Result<(), LockFailure> {
        if self.point.dead() {
            return Err(LockFailure {
                waited_ms: 0,
                holder: None,
                error: Some(DEAD.to_string()),
            });
        }
        self.inner.acquire(key, wait_ms_max)
    }

    fn release(&mut self, key: &LockKey) {
        if !self.point.dead() {
            self.inner.release(key);
        }
    }
}

impl<T: Stores> Stores for Crashable<T> {
    fn read(&mut self, store: StoreRef, profile: &str) -> Result<ProfileView, StoreFault> {
        if self.point.dead() {
            return Err(dead_store());
        }
        self.inner.read(store, profile)
    }

    fn write(
        &mut self,
        store: StoreRef,
        profile: &str,
        mutation: &Mutation,
    ) -> Result<WriteOutcome, StoreFault> {
        if self.point.dead() {
            return Err(dead_store());
        }
        self.inner.write(store, profile, mutation)
    }
}

impl<T: TokenEndpoint> TokenEndpoint for Crashable<T> {
    fn refresh(
        &mut self,
        credential: &Credential,
        deadline_ms: u64,
    ) -> Result<TokenGrant, EndpointError> {
        if self.point.dead() {
            // Nothing leaves a dead process.
            return Err(EndpointError::transport(Transport::ConnectRefused));
        }
        self.inner.refresh(credential, deadline_ms)
    }
}
