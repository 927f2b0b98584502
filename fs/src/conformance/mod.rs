//! The host conformance suite: written once over the kernel's host traits
//! ([`Stores`], [`RefreshLock`]) and run against every host — the fs host
//! (`fs/tests/conformance.rs`, which also runs it against broken fs hosts
//! that must fail it) and the simulator's host models — so that the
//! hosts the checkers exercise behave like the one people run (STYLE.md
//! practice 8).
//!
//! A host takes part by implementing [`HostFactory`]; [`run_all`] runs every
//! case on a fresh world and panics with the case's name and guarantee on
//! the first violation. The cases run sequentially on one thread, so a
//! deterministic host model can answer each call synchronously.

mod cases;

use rotor_kernel::driver::{RefreshLock, Stores};
use rotor_kernel::StoreDoc;

pub use cases::{cases, NOW_MS, PROFILE, PROVIDER};

/// Which store of the suite's world: main, or the one sub-agent's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreName {
    /// The main store.
    Main,
    /// The store of the sub-agent `worker`.
    Worker,
}

/// Who a participant is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Agent {
    /// The main agent (own store = main).
    Main,
    /// The sub-agent `worker` (own store = Worker, main = Main).
    Worker,
}

/// Builds worlds for the suite.
pub trait HostFactory {
    /// The host's stores for one participant.
    type Stores: Stores;
    /// The host's refresh lock for one participant.
    type Lock: RefreshLock;

    /// Starts a fresh, empty world (no stores, no locks held).
    fn reset(&mut self);
    /// The stores `agent` sees in the current world.
    fn stores(&mut self, agent: Agent) -> Self::Stores;
    /// The refresh lock of participant number `participant` in the current
    /// world. Distinct participants must exclude each other (as distinct
    /// processes do); each handle is used by one participant only.
    fn lock(&mut self, participant: usize) -> Self::Lock;
    /// Replaces a whole store document (test setup, outside the protocol).
    fn seed(&mut self, store: StoreName, doc: StoreDoc);
    /// The durable content of a store (`None` when it does not exist).
    fn snapshot(&mut self, store: StoreName) -> Option<StoreDoc>;
}

/// Runs every case against `factory`, each on a fresh world. Returns the
/// names of the cases run; the first case that fails panics with
/// `conformance case `NAME` failed: ` and the case's own message, which
/// names the guarantee broken.
pub fn run_all<F: HostFactory>(factory: &mut F) -> Vec<&'static str> {
    let mut names = Vec::new();
    for (name, case) in cases::<F>() {
        factory.reset();
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(factory)));
        if let Err(panic) = ran {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(a panic without a message)");
            panic!("conformance case `{name}` failed: {message}");
        }
        names.push(name);
    }
    names
}
