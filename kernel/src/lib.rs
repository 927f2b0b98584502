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

pub use classify::{classify, is_reuse_message, EndpointError, ErrorClass, Transport};
pub use credential::{Credential, CredentialKind};
pub use document::{DecodeError, Fence, Holder, ProfileView, StoreDoc, STORE_VERSION};
pub use effect::{
    Effect, EffectId, Input, LockFailure, Request, Role, StoreFault, StoreFaultKind, StoreRef,
    TokenGrant,
};
pub use identity::{copy_refusal, may_copy, same_identity, Identity, IdentityRefusal};
pub use lock_key::LockKey;
pub use machine::Resolver;
pub use mutation::{Conflict, Expect, MirrorRefusal, Mutation, WriteOutcome};
pub use outcome::{
    ApiMisuse, Failure, Granted, Outcome, ReauthReason, Resolution, Source, Warning,
};
pub use policy::{
    LeaseConfig, LongestHold, Policy, PolicyConfig, PolicyError, STORE_WRITES_PER_REFRESH,
};
pub use secret::{Fingerprint, Secret};
