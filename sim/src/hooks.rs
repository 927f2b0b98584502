//! The host's abilities, as hooks: how the simulated host performs the
//! kernel's effects.
//!
//! The simulator is a host: it decides nothing about the protocol, but it does
//! decide *how* it locks, writes and calls, and each of those is a place where
//! a real host can be wrong. [`HostHooks`] names those places. The shipped
//! behaviour is [`Shipped`] (every method's default); `docs/bugs.md`'s broken
//! variants override one hook each, in test code only (`sim/tests/bugs.rs`).
//! No command-line flag selects a hook: `rotor check` always runs [`Shipped`].

use core::fmt;

use rotor_kernel::{Credential, Mutation, ProfileView, Role, StoreDoc, StoreRef, WriteOutcome};

/// What a read hook knows about the reader.
#[derive(Clone, Copy, Debug)]
pub struct ReadContext<'a> {
    /// The reader's role.
    pub role: Role,
    /// Which store it asked for.
    pub store: StoreRef,
    /// The reader's own store's current credential (as the host sees it).
    pub own: Option<&'a Credential>,
}

/// How the simulated host performs effects. Every default is the shipped,
/// correct behaviour.
pub trait HostHooks: fmt::Debug + Send + Sync {
    /// A short name for reports.
    fn name(&self) -> &'static str {
        "shipped"
    }

    /// Which refresh lock an agent whose own store is `own_store` takes. The
    /// shipped host keys the lock by (provider, profile) only (SPEC §4), so
    /// every participant takes the same lock: slot 0.
    fn lock_slot(&self, own_store: u8) -> u8 {
        let _ = own_store;
        0
    }

    /// Whether agents of one process exclude each other (the in-process
    /// single-flight slot).
    fn in_process_exclusion(&self) -> bool {
        true
    }

    /// Whether rotor's store writes take the store lock (read-modify-write
    /// serialized with every other writer, G4).
    fn store_lock_on_rotor_writes(&self) -> bool {
        true
    }

    /// Whether a mirror into main is reported done at once and performed only
    /// after the refresh lock is released.
    fn mirror_after_release(&self) -> bool {
        false
    }

    /// Whether the host reports an endpoint timeout at the deadline even while
    /// the request may still be processed (the shipped host reports only once
    /// the call can no longer be in flight, G8).
    fn report_timeout_at_deadline(&self) -> bool {
        false
    }

    /// Whether releasing the refresh lock hands it to a waiter (G8 "no
    /// wedge": a lock let go while waiters sleep on is a lost wake-up).
    fn wake_waiter_on_release(&self) -> bool {
        true
    }

    /// Whether freeing a store lock (`by_crash`: because its holder's
    /// process died) wakes the agents waiting for it (a lock let go while its
    /// waiters sleep on is a lost wake-up: they sit out their store-lock
    /// budget and fail `Store`).
    fn wake_store_lock_waiters(&self, by_crash: bool) -> bool {
        let _ = by_crash;
        true
    }

    /// Whether the host reads the endpoint's response (a host that drops a
    /// response it received reports a reset: an unknown outcome, G7).
    fn read_response(&self) -> bool {
        true
    }

    /// Whether, on the fenced-lease backend, the host writes an in-doubt
    /// fence (and clears one) only while it still holds the refresh lock,
    /// atomically with the write, as the PostgreSQL host does (its fence
    /// transaction checks the lock epoch and that its session holds the
    /// lock). A host without the condition is the lease backend again.
    fn fence_writes_need_the_lock(&self) -> bool {
        true
    }

    /// What the kernel is told a read found.
    fn filter_read(&self, reader: ReadContext<'_>, view: ProfileView) -> ProfileView {
        let _ = reader;
        view
    }

    /// How a mutation is applied under the store lock. It may change only
    /// `profile`'s entries of `doc.profiles` and `doc.fences`, as
    /// [`StoreDoc::apply`] does: the world models a lost fsync by putting
    /// those entries back.
    fn apply(&self, doc: &mut StoreDoc, profile: &str, mutation: &Mutation) -> WriteOutcome {
        doc.apply(profile, mutation)
    }

    /// The I/O beneath the shipped fs store code when the world runs it as
    /// its twin (`--shipped-host`, `world/twin.rs`): the simulated disk
    /// itself, or, in a test, a disk with one rule of a real one broken.
    fn twin_io(
        &self,
        disk: std::sync::Arc<crate::disk::SimDisk>,
    ) -> std::sync::Arc<dyn rotor_fs::io::Io> {
        disk
    }
}

/// The shipped host: every hook at its default.
#[derive(Clone, Copy, Debug, Default)]
pub struct Shipped;

impl HostHooks for Shipped {}
