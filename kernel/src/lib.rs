#![no_std]
#![forbid(unsafe_code)]
extern crate alloc;

pub mod credential;
pub mod secret;

pub use credential::{Credential, CredentialKind};
pub use secret::{Fingerprint, Secret};
