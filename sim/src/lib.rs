//! rotor-sim: a deterministic, seeded simulator of many agents sharing one
//! OAuth credential under faults, checking the guarantees of docs/SPEC.md §1 after every
//! step.
//!
//! The simulator is a *host* of the kernel: it drives
//! [`rotor_kernel::Resolver`] directly (`new`, `poll_effect`, `handle`) so it
//! can hold an effect's completion while simulated time passes. It decides no
//! protocol question: store writes are applied with the kernel's
//! `StoreDoc::apply`, endpoint errors are classified by the kernel.
//!
//! One `u64` seed derives everything ([`Config::derive`]); the same seed gives
//! a byte-identical trace.
//!
//! ```
//! use rotor_sim::{run_seed, Overrides, RunOptions};
//!
//! let outcome = run_seed(7, &Overrides::default(), &RunOptions::default());
//! assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
//! assert!(outcome.stats.resolves > 0);
//! ```
#![forbid(unsafe_code)]

pub mod call_budget;
pub mod config;
pub mod coverage;
pub mod disk;
pub mod endpoint;
pub mod explore;
pub mod guarantee;
pub mod hooks;
// The checkers' own statement of the identity gate (docs/SPEC.md §5), one
// file shared with the loom and shuttle models (`model/src/identity_table.rs`),
// so the explorer judges copies by the specification's text and not by the
// kernel's `may_copy` it is checking.
#[path = "../../model/src/identity_table.rs"]
pub mod identity_table;
pub mod lock;
pub mod policy;
pub mod rng;
pub mod run;
pub mod shrink;
pub mod store;
pub mod trace;
pub mod world;

pub use config::{
    ActorKind, ActorSet, Backend, Config, ConfigError, FaultKind, FaultSet, Overrides,
};
pub use coverage::{Branch, Coverage, Stats};
pub use guarantee::{Guarantee, Violation};
pub use hooks::{HostHooks, ReadContext, Shipped};
pub use run::{run_config, run_seed, sweep, RunOptions, SweepReport, TraceFile};
pub use trace::{Event, Trace, TraceMode};
pub use world::{RunOutcome, StopOn, World};
