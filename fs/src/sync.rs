//! PLACEHOLDER until the model issue's branch lands: the `sync` facade over
//! std primitives (the real one switches to loom/shuttle under `cfg`).
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard};
