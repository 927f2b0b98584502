//! loom and shuttle models of rotor: the real kernel and the real in-process
//! single-flight, run under every interleaving of small configurations
//! (loom) and under randomized and PCT schedules of larger ones (shuttle).
//!
//! # How a model is built
//!
//! Nothing here re-states the protocol. Each agent is a thread that runs
//! [`rotor_kernel::driver::resolve`], the canonical driver every host uses,
//! over a model host whose parts sit on the primitives of
//! [`rotor_fs::sync`] (std, loom or shuttle, chosen at build time):
//!
//! ```text
//!  agent thread ──► driver::resolve ──► Resolver (the kernel)
//!        │                 │ effects
//!        ▼                 ▼
//!   ModelLock ─────── SingleFlight (rotor-fs, per process) ─► AdvisoryLocks (per OS)
//!   AgentStores ───── ModelStore: document + store lock, per store file
//!   ModelEndpoint ─── StrictProvider: rotates, revokes on reuse, records presentations
//! ```
//!
//! - [`lock`]: the single-flight slot of the agent's process, then a
//!   cross-process advisory lock with per-process (`fcntl`) semantics and a
//!   fence counter; a crashed process's locks are released.
//! - [`store`]: documents with generations behind an atomic-replace mutex,
//!   read-modify-writes under a per-store lock, applied with the kernel's
//!   `StoreDoc::apply`.
//! - [`endpoint`]: a strict rotating provider that records every
//!   presentation per refresh token value.
//! - [`crash`]: an agent whose process dies before a chosen effect.
//! - [`scenario`]: who runs where; [`scenario::run`] spawns the threads and
//!   then [`verify`] checks the run. [`writers`]: the threads that are not
//!   agents (usage statistics, an editing tool, a re-login).
//! - [`scenarios`] and [`identity_scenarios`]: the configurations; the
//!   latter are the ones where the identity gate decides while agents race
//!   (tenants, account ids, email case, providers, a re-login).
//!
//! # What is checked
//!
//! G1, G2, G3, G4, G5 and G8 (see [`check`] and [`verify`]); deadlock
//! freedom by loom and shuttle themselves. The identity gate (G3) is judged
//! on every write of every store against the checker's own statement of
//! SPEC §5 ([`identity_table`], [`gate_check`]), never against the kernel's
//! gate; every identity refusal is judged against it too (a refusal the
//! table does not demand costs convergence: G2). Broken variants of the
//! host (the historical bugs of docs/bugs.md, and a broken gate for every
//! rule of SPEC §5) are built in the tests only, through
//! [`scenario::HostVariant`], and each test names the guarantee it expects
//! the checker to find broken.
//!
//! # Running
//!
//! `scripts/test-models.sh` runs both checkers:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p rotor-model --release --test 'loom_*'
//! cargo test -p rotor-model --features shuttle --release --test 'shuttle_*'
//! ```
//!
//! A default build (no loom, no shuttle) runs the same scenarios once on
//! real threads, as a smoke test of the model itself.

pub mod check;
pub mod crash;
pub mod endpoint;
pub mod gate_check;
pub mod harness;
pub mod identity_scenarios;
pub mod identity_table;
pub mod io;
pub mod scenario;
pub mod scenarios;
pub mod store;
pub mod verify;
pub mod world;
pub mod writers;
