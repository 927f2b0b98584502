//! The canonical synchronous driver (STYLE.md practice 4): the one drive loop
//! over four small host traits. The fs host, loom and shuttle models use it;
//! the simulator drives [`Resolver`] directly so that it can hold an effect's
//! completion while simulated time passes.

use crate::classify::EndpointError;
use crate::credential::Credential;
use crate::document::ProfileView;
use crate::effect::{Effect, Input, LockFailure, Request, StoreFault, StoreRef, TokenGrant};
use crate::lock_key::LockKey;
use crate::machine::Resolver;
use crate::mutation::{Mutation, WriteOutcome};
use crate::outcome::{Failure, Resolution};
use crate::policy::Policy;

/// The refresh lock (SPEC §4, G8).
pub trait RefreshLock {
    /// Takes the lock for `key`, waiting at most `wait_ms_max`. Must exclude
    /// every other participant, in this process and in others.
    fn acquire(&mut self, key: &LockKey, wait_ms_max: u64) -> Result<(), LockFailure>;
    /// Releases the lock for `key`.
    fn release(&mut self, key: &LockKey);
}

/// The stores one agent sees: its own and main. One profile at a time.
pub trait Stores {
    /// Reads `profile` from `store` without a lock. A missing file or entry
    /// is an empty view.
    fn read(&mut self, store: StoreRef, profile: &str) -> Result<ProfileView, StoreFault>;
    /// Under the store's lock: read the document, apply `mutation` to
    /// `profile` with [`crate::StoreDoc::apply`], write it back durably (G4, G6).
    fn write(
        &mut self,
        store: StoreRef,
        profile: &str,
        mutation: &Mutation,
    ) -> Result<WriteOutcome, StoreFault>;
}

/// The token endpoint (RFC 6749 §6).
pub trait TokenEndpoint {
    /// Presents `credential`'s refresh token. Returns only once the call can
    /// no longer be in flight (G8), within `deadline_ms`.
    fn refresh(
        &mut self,
        credential: &Credential,
        deadline_ms: u64,
    ) -> Result<TokenGrant, EndpointError>;
}

/// Wall-clock time, epoch milliseconds.
pub trait Clock {
    /// Now.
    fn now_ms(&self) -> i64;
}

/// A host: the four traits together.
pub struct Host<'a, L, S, E, C> {
    /// The refresh lock.
    pub lock: &'a mut L,
    /// The agent's stores.
    pub stores: &'a mut S,
    /// The token endpoint.
    pub endpoint: &'a mut E,
    /// The clock.
    pub clock: &'a C,
}

/// Resolves `request` to completion on `host`.
pub fn resolve<L, S, E, C>(
    host: Host<'_, L, S, E, C>,
    request: Request,
    policy: Policy,
) -> Resolution
where
    L: RefreshLock,
    S: Stores,
    E: TokenEndpoint,
    C: Clock,
{
    let profile = request.profile.clone();
    let mut resolver = Resolver::new(request, policy, host.clock.now_ms());
    loop {
        // The resolver always has an effect pending after new() and handle().
        let effect = resolver
            .poll_effect()
            .expect("bug: the resolver has no effect although it is not done");
        let input = match effect {
            Effect::Done(resolution) => return resolution,
            Effect::ReadStore { id, store } => Input::StoreRead {
                id,
                result: host.stores.read(store, &profile),
            },
            Effect::WriteStore {
                id,
                store,
                mutation,
            } => Input::StoreWritten {
                id,
                result: host.stores.write(store, &profile, &mutation),
            },
            Effect::AcquireLock {
                id,
                key,
                wait_ms_max,
            } => match host.lock.acquire(&key, wait_ms_max) {
                Ok(()) => Input::LockAcquired { id },
                Err(failure) => Input::LockFailed { id, failure },
            },
            Effect::CallEndpoint {
                id,
                credential,
                deadline_ms,
            } => Input::EndpointReplied {
                id,
                result: host.endpoint.refresh(&credential, deadline_ms),
            },
            Effect::ReleaseLock { id, key } => {
                host.lock.release(&key);
                Input::LockReleased { id }
            }
        };
        // The driver echoes each effect's id with the matching input kind.
        resolver
            .handle(input, host.clock.now_ms())
            .expect("bug: the canonical driver broke the kernel contract");
    }
}

/// A login or logout (SPEC §3, "Login and logout"): `mutation` written into
/// the agent's own store under the refresh lock of `key`, then the store's
/// own lock, so no refresh of the family is in flight while the credential
/// is replaced (G11). Every host runs this one function; it returns the
/// generation the store holds afterwards.
pub fn locked_write<L: RefreshLock, S: Stores>(
    lock: &mut L,
    stores: &mut S,
    key: &LockKey,
    profile: &str,
    mutation: &Mutation,
    wait_ms_max: u64,
) -> Result<u64, Failure> {
    lock.acquire(key, wait_ms_max)
        .map_err(|failure| Failure::LockTimeout {
            key: key.clone(),
            waited_ms: failure.waited_ms,
            holder: failure.holder,
            error: failure.error,
        })?;
    let written = stores.write(StoreRef::Own, profile, mutation);
    lock.release(key);
    let store_fault = |fault| Failure::Store {
        store: StoreRef::Own,
        fault,
    };
    match written.map_err(store_fault)? {
        WriteOutcome::Applied => {}
        other => {
            return Err(store_fault(StoreFault {
                kind: crate::effect::StoreFaultKind::Io,
                detail: alloc::format!("unexpected write outcome {other:?}"),
            }))
        }
    }
    let view = stores.read(StoreRef::Own, profile).map_err(store_fault)?;
    Ok(view.credential.map_or(0, |c| c.generation))
}
