//! rotor: safe OAuth refresh-token rotation for many agents that share one
//! credential. This facade re-exports the pieces; see `ARCHITECTURE.md`.
pub use rotor_fs as fs;
pub use rotor_kernel as kernel;
pub use rotor_sim as sim;
