//! rotor's kernel: the pure state machine that decides how many agents share
//! one OAuth credential while spending each refresh token exactly once.
//!
//! The kernel performs no I/O, reads no clock and draws no randomness
//! (`#![no_std]`, `#![forbid(unsafe_code)]`). A **host** (the filesystem host,
//! the simulator, the loom and shuttle models) performs the effects the kernel
//! asks for and reports their results. That is what lets one implementation be
//! model-checked, simulated under faults and run for real.
//!
//! # The pieces
//!
//! - [`Resolver`]: one `resolve(agent, provider, profile)` as a state machine
//!   (docs/SPEC.md §3). `poll_effect()` hands out one [`Effect`] at a time;
//!   `handle(input, now_ms)` takes its completion. See its docs for the loop.
//! - [`driver::resolve`]: the canonical synchronous loop over four small host
//!   traits ([`driver::RefreshLock`], [`driver::Stores`],
//!   [`driver::TokenEndpoint`], [`driver::Clock`]).
//! - [`StoreDoc`] and [`Mutation`]: the store document and the writes the
//!   kernel asks for; hosts apply them with [`StoreDoc::apply`] under the
//!   store's lock, so compare-and-swap and copy rules stay kernel code.
//! - [`may_copy`] / [`same_identity`]: the identity gate (SPEC §5, G3).
//! - [`LockKey`]: the injective lock name (SPEC §4, G9).
//! - [`classify()`]: endpoint error classes (SPEC §7, G7).
//! - [`Policy`]: margins, deadlines and budgets whose invariants are checked
//!   when it is built (SPEC §6, G8).
//!
//! # Example: a whole refresh through the canonical driver
//!
//! ```
//! use rotor_kernel::driver::{self, Clock, Host, RefreshLock, Stores, TokenEndpoint};
//! use rotor_kernel::*;
//!
//! struct Memory { doc: StoreDoc }
//! impl Stores for Memory {
//!     fn read(&mut self, _: StoreRef, profile: &str) -> Result<ProfileView, StoreFault> {
//!         Ok(self.doc.view(profile))
//!     }
//!     fn write(&mut self, _: StoreRef, profile: &str, mutation: &Mutation)
//!         -> Result<WriteOutcome, StoreFault> {
//!         Ok(self.doc.apply(profile, mutation))
//!     }
//! }
//! struct NoContention;
//! impl RefreshLock for NoContention {
//!     fn acquire(&mut self, _: &LockKey, _: u64) -> Result<(), LockFailure> { Ok(()) }
//!     fn release(&mut self, _: &LockKey) {}
//! }
//! struct Provider;
//! impl TokenEndpoint for Provider {
//!     fn refresh(&mut self, _: &Credential, _: u64) -> Result<TokenGrant, EndpointError> {
//!         Ok(TokenGrant { access: Secret::new("access-2"), refresh: Some(Secret::new("refresh-2")),
//!             expires_in_ms: Some(3_600_000), account_id: None, email: None })
//!     }
//! }
//! struct Fixed(i64);
//! impl Clock for Fixed { fn now_ms(&self) -> i64 { self.0 } }
//!
//! let mut stores = Memory { doc: StoreDoc::default() };
//! // Expired: the refresh token must be presented.
//! stores.doc.profiles.insert("p:default".into(), Credential::oauth("p", "access-1", "refresh-1", 0));
//! let request = Request {
//!     role: Role::Main,
//!     provider: "p".into(),
//!     profile: "p:default".into(),
//!     holder: Holder { pid: 1, host: "h".into(), agent: "main".into() },
//! };
//! let host = Host { lock: &mut NoContention, stores: &mut stores, endpoint: &mut Provider, clock: &Fixed(1_000) };
//! let granted = driver::resolve(host, request, Policy::default()).unwrap();
//! assert_eq!(granted.outcome, Outcome::Refreshed);
//! assert_eq!(granted.access.expose(), "access-2");
//! let stored = &stores.doc.profiles["p:default"];
//! assert_eq!(stored.generation, 1); // G5: every rotation bumps the generation
//! assert!(stores.doc.fences.is_empty()); // G7: the fence is gone once the outcome is known
//! ```
#![no_std]
#![forbid(unsafe_code)]
extern crate alloc;

pub mod classify;
pub mod credential;
pub mod document;
pub mod driver;
pub mod effect;
pub mod identity;
pub mod lock_key;
pub mod machine;
pub mod mutation;
pub mod outcome;
pub mod policy;
pub mod secret;
pub mod shared_str;

pub use classify::{classify, is_reuse_message, EndpointError, ErrorClass, Transport};
pub use credential::{Credential, CredentialKind};
pub use document::{
    DecodeError, Fence, Holder, ProfileView, Profiles, StoreDoc, FENCES_PER_PROFILE_MAX,
    STORE_VERSION,
};
pub use effect::{
    Effect, EffectId, Input, LockFailure, Request, Role, StoreFault, StoreFaultKind, StoreRef,
    TokenGrant,
};
pub use identity::{copy_refusal, may_copy, same_identity, Identity, IdentityRefusal};
pub use lock_key::LockKey;
pub use machine::{Resolver, SUCCESSORS_MAX};
pub use mutation::{Conflict, Expect, MirrorRefusal, Mutation, WriteOutcome};
pub use outcome::{
    ApiMisuse, Failure, Granted, Outcome, ReauthReason, Resolution, Source, Warning,
};
pub use policy::{
    LeaseConfig, LongestHold, Policy, PolicyConfig, PolicyError, STORE_WRITES_PER_REFRESH,
};
pub use secret::{Fingerprint, Secret};
pub use shared_str::SharedStr;
