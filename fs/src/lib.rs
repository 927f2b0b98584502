//! rotor's real host (skeleton; filled by the real-host and model issues).
pub mod single_flight;
pub mod sync;
