//! loom and shuttle models of rotor: the real kernel and the real fs host
//! code (store files, store locks, refresh lock, single-flight), run under
//! every interleaving of small configurations (loom) and under randomized
//! and PCT schedules of larger ones (shuttle).
//!
//! # How a model is built
//!
//! Nothing here re-states the protocol or a host rule. Each agent is a
//! thread that runs [`rotor_kernel::driver::resolve`], the canonical driver
//! every host uses, over the **shipped** fs host parts (`rotor_fs`), whose
//! file, lock and process calls go through the I/O seam
//! ([`rotor_fs::io::Io`]) to [`io::ModelIo`], an in-memory machine on the
//! primitives of [`rotor_fs::sync`] (std, loom or shuttle, chosen at build
//! time):
//!
//! ```text
//!  agent thread ──► driver::resolve ──► Resolver (the kernel)
//!        │                 │ effects
//!        ▼                 ▼
//!   FsRefreshLock ─── SingleFlight (per process) ─► lock file ──┐
//!   AgentStores ───── FsStores / StoreFile: lock-free read,     ├─► ModelIo (one view per
//!     (watches reads)   read-modify-write under <store>.lock,   │    thread, as its pid)
//!                       temp file + rename ─────────────────────┘      │
//!   ModelEndpoint ─── StrictProvider                              Machine: files, dirs,
//!                                                                 lock table, checkers
//! ```
//!
//! - [`io`]: the model machine. Only a store file's read, a rename over it
//!   and taking a lock are scheduling points; refresh-lock files are held
//!   per process (`fcntl`, the weakest backend; the single-flight must keep
//!   a process's second thread out), store sidecar locks per open file (as
//!   the fs host's `flock`); a crashed process's locks are released. Its
//!   checkers watch what the shipped code does to the files: a rename over a
//!   store by a thread whose last read of it is stale (G4), a generation
//!   going down (G5), and every replaced credential against the identity
//!   table (G3).
//! - [`store`]: the shipped `FsStores` of one agent, and what the checker
//!   records of its reads (G5, the refusal judge's witnesses).
//! - [`endpoint`]: a strict rotating provider that records every
//!   presentation per refresh token value.
//! - [`crash`]: an agent whose process dies before a chosen effect.
//! - [`scenario`]: who runs where; [`scenario::run`] spawns the threads and
//!   then [`verify`] checks the run. [`writers`]: the threads that are not
//!   agents (usage statistics, an editing tool, a re-login), each through
//!   the shipped `StoreFile::update` and refresh lock.
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
//! [`scenario::HostVariant`], around the shipped parts (a store lock the I/O
//! never takes, or never lets go, is a wrapper over [`io::ModelIo`]), and
//! each test names the guarantee it expects the checker to find broken.
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
