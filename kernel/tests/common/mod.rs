//! Shared test support for the kernel's integration tests.
//!
//! - [`arbitrary`]: random stores, grants, errors and faults from a seeded
//!   `ChaCha8Rng`, for the randomized test.
//! - [`fixtures`]: the names, clock, credentials, grants and endpoint errors
//!   every test speaks in (`fresh(5)` is generation 5 holding `at-5`/`rt-5`).
//! - [`transcript`]: drives a [`rotor_kernel::Resolver`] by hand from given
//!   stores, scripted lock and endpoint results, and records every effect as
//!   one compact line, checking G7 and G8 on every run.
//! - [`memory_host`]: the four driver traits over shared in-memory stores and
//!   a strict rotating provider, for runs through `driver::resolve`.
//!
//! Each test binary uses only part of this module.
#![allow(dead_code)]

pub mod arbitrary;
pub mod fixtures;
pub mod memory_host;
pub mod transcript;
