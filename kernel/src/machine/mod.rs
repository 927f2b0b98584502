//! The refresh state machine (SPEC §3).
//!
//! [`Resolver`] decides one `resolve(agent, provider, profile)`. It performs no
//! I/O: it hands the host one [`Effect`] at a time through
//! [`Resolver::poll_effect`] and learns the result through
//! [`Resolver::handle`]. Phases are named for what they wait for and each
//! transition consumes the old phase.
//!
//! The drive loop, which every host follows (the canonical synchronous one is
//! [`crate::driver::resolve`]):
//!
//! ```
//! use rotor_kernel::*;
//!
//! let mut store = StoreDoc::default();
//! store.profiles.insert("p:default".into(),
//!     Credential::oauth("p", "access-1", "refresh-1", 10_000_000));
//! let request = Request {
//!     role: Role::Main,
//!     provider: "p".into(),
//!     profile: "p:default".into(),
//!     holder: Holder { pid: 1, host: "h".into(), agent: "main".into() },
//! };
//! let now_ms = 0;
//! let mut resolver = Resolver::new(request, Policy::default(), now_ms);
//! let resolution = loop {
//!     let effect = resolver.poll_effect().expect("one effect until Done");
//!     let input = match effect {
//!         Effect::ReadStore { id, .. } => {
//!             Input::StoreRead { id, result: Ok(store.view("p:default")) }
//!         }
//!         Effect::Done(resolution) => break resolution,
//!         other => unreachable!("a fresh token needs no other effect: {other:?}"),
//!     };
//!     resolver.handle(input, now_ms).expect("the host kept the contract");
//! };
//! assert_eq!(resolution.unwrap().outcome, Outcome::Cached);
//! ```

mod decide;
mod refresh;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::credential::Credential;
use crate::document::ProfileView;
use crate::effect::{Effect, EffectId, Input, InputKind, Request, Role, StoreRef};
use crate::lock_key::LockKey;
use crate::mutation::{Expect, Mutation, WriteOutcome};
use crate::outcome::{ApiMisuse, Failure, Granted, Outcome, Resolution, Source, Warning};
use crate::policy::Policy;

use decide::{check_own, logged_out_in_main, main_may_replace, nothing_in, NotFromMain};
pub use decide::{is_newer, DEFAULT_EXPIRES_IN_MS};

/// How many times the locked re-read repeats after losing a compare-and-swap
/// to a lock-free adopt before giving up with `Superseded`.
const REREADS_MAX: u8 = 3;

/// How many times one resolve may go on with a successor found after its
/// presented token was reported reused (SPEC §3 step 9) before it gives up
/// with `NeedsReauth(TokenRefused)`. Each successor is a new presentation
/// with its own `call_attempts_max` budget, so one resolve presents at most
/// `1 + SUCCESSORS_MAX` refresh tokens (G2; the simulator's bound).
pub const SUCCESSORS_MAX: u8 = 2;

/// Decides one resolve. See the module docs for the drive loop.
///
/// Contract: after [`Resolver::new`], call [`Resolver::poll_effect`]; perform
/// the effect; report its completion with [`Resolver::handle`] (echoing the
/// effect's id); repeat until the effect is [`Effect::Done`]. There is never
/// more than one outstanding effect. `now_ms` is the host's wall clock
/// (epoch ms) at the moment of the call; the kernel has no clock of its own.
#[derive(Clone, Debug)]
pub struct Resolver {
    request: Request,
    policy: Policy,
    /// The refresh lock's key, derived (a sha256) on first use: most
    /// resolves find a fresh token and never lock.
    key: Option<LockKey>,
    phase: Phase,
    pending: Option<Effect>,
    outstanding: Option<EffectId>,
    next_id: u64,
    /// Successors gone on with after a reuse (SPEC §3 step 9).
    successors: u8,
}

/// What the resolver waits for. Each variant names the completion it expects.
#[derive(Clone, Debug)]
enum Phase {
    /// Step 1: the own store, lock-free.
    ExpectOwn,
    /// Step 2: main, lock-free (sub-agents only).
    ExpectMain { own: ProfileView },
    /// Step 3: the refresh lock.
    ExpectLock,
    /// Step 4: the own store, under the lock.
    ExpectOwnLocked { rereads: u8 },
    /// Step 4: main, under the lock.
    ExpectMainLocked { own: ProfileView, rereads: u8 },
    /// Steps 2 and 4: the copy of main's credential into the own store.
    ExpectAdopt {
        granted: Granted,
        locked: bool,
        rereads: u8,
    },
    /// Steps 6..9: a refresh in progress (see `refresh.rs`).
    Refresh(alloc::boxed::Box<refresh::Phase>),
    /// A queue of best-effort writes (fence clears, marks), then the
    /// release and this resolution.
    ExpectWrites {
        queue: VecDeque<(StoreRef, Mutation)>,
        /// Boxed: the largest field of any phase, on a rare path; phases
        /// move at every step.
        then: alloc::boxed::Box<Resolution>,
    },
    /// The lock release, then the resolution.
    ExpectRelease { resolution: Resolution },
    /// `Done` has been emitted.
    Finished,
    /// Transient placeholder while a transition runs.
    Moving,
}

impl Resolver {
    /// Starts a resolve at `now_ms`; the first effect reads the own store.
    pub fn new(request: Request, policy: Policy, now_ms: i64) -> Self {
        let _ = now_ms; // Step 1 needs no time; kept for a uniform signature.
        let mut resolver = Resolver {
            request,
            policy,
            key: None,
            phase: Phase::ExpectOwn,
            pending: None,
            outstanding: None,
            next_id: 0,
            successors: 0,
        };
        resolver.read(StoreRef::Own, Phase::ExpectOwn);
        resolver
    }

    /// The request being resolved.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The refresh lock this resolve uses (if it locks at all).
    pub fn lock_key(&self) -> LockKey {
        self.key
            .clone()
            .unwrap_or_else(|| LockKey::new(&self.request.provider, &self.request.profile))
    }

    /// The lock key, derived once and kept.
    fn key(&mut self) -> LockKey {
        let request = &self.request;
        self.key
            .get_or_insert_with(|| LockKey::new(&request.provider, &request.profile))
            .clone()
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// True once `Done` has been emitted.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Finished)
    }

    /// The id of the effect whose completion the resolver waits for.
    pub fn outstanding(&self) -> Option<EffectId> {
        self.outstanding
    }

    /// The next effect to perform, once; `None` while waiting for a
    /// completion and after `Done`.
    #[must_use]
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.pending.take()
    }

    /// Reports the completion of the outstanding effect, observed at `now_ms`.
    /// A completion that does not match is refused and changes nothing.
    pub fn handle(&mut self, input: Input, now_ms: i64) -> Result<(), ApiMisuse> {
        if matches!(self.phase, Phase::Finished) {
            return Err(ApiMisuse::AlreadyDone);
        }
        if self.outstanding != Some(input.id()) {
            return Err(ApiMisuse::WrongId {
                expected: self.outstanding,
                got: input.id(),
            });
        }
        let expected = self.expected_kind();
        let matches = match (input.kind(), expected) {
            (InputKind::LockAcquired | InputKind::LockFailed, InputKind::LockAcquired) => true,
            (got, expected) => got == expected,
        };
        if !matches {
            return Err(ApiMisuse::WrongKind {
                expected: expected.name(),
                got: input.kind_name(),
            });
        }
        self.outstanding = None;
        self.pending = None;
        let phase = core::mem::replace(&mut self.phase, Phase::Moving);
        self.step(phase, input, now_ms);
        debug_assert!(
            !matches!(self.phase, Phase::Moving),
            "every transition sets a phase"
        );
        Ok(())
    }

    fn expected_kind(&self) -> InputKind {
        match &self.phase {
            Phase::ExpectOwn
            | Phase::ExpectMain { .. }
            | Phase::ExpectOwnLocked { .. }
            | Phase::ExpectMainLocked { .. } => InputKind::StoreRead,
            Phase::ExpectLock => InputKind::LockAcquired,
            Phase::ExpectAdopt { .. } | Phase::ExpectWrites { .. } => InputKind::StoreWritten,
            Phase::ExpectRelease { .. } => InputKind::LockReleased,
            Phase::Refresh(phase) => phase.expected_kind(),
            Phase::Finished | Phase::Moving => InputKind::Nothing,
        }
    }

    fn step(&mut self, phase: Phase, input: Input, now_ms: i64) {
        match (phase, input) {
            (Phase::ExpectOwn, Input::StoreRead { result, .. }) => match result {
                Ok(own) => self.on_own(own, now_ms),
                Err(fault) => self.done(Err(Failure::Store {
                    store: StoreRef::Own,
                    fault,
                })),
            },
            (Phase::ExpectMain { own }, Input::StoreRead { result, .. }) => match result {
                Ok(main) => self.on_main(own, main, now_ms),
                // Nothing of our own to fall back on: say why main failed (G10),
                // not "no credential".
                Err(fault) if own.credential.is_none() => self.done(Err(Failure::Store {
                    store: StoreRef::Main,
                    fault,
                })),
                // Main unreadable: nothing to adopt; the locked re-read decides.
                Err(_) => self.on_main(own, ProfileView::default(), now_ms),
            },
            (Phase::ExpectLock, Input::LockAcquired { .. }) => {
                self.read(StoreRef::Own, Phase::ExpectOwnLocked { rereads: 0 })
            }
            (Phase::ExpectLock, Input::LockFailed { failure, .. }) => {
                let key = self.key();
                self.done(Err(Failure::LockTimeout {
                    key,
                    waited_ms: failure.waited_ms,
                    holder: failure.holder,
                    error: failure.error,
                }))
            }
            (Phase::ExpectOwnLocked { rereads }, Input::StoreRead { result, .. }) => match result {
                Ok(own) if self.request.role == Role::Sub => {
                    self.read(StoreRef::Main, Phase::ExpectMainLocked { own, rereads })
                }
                Ok(own) => self.on_locked(own, None, rereads, now_ms),
                Err(fault) => self.release(Err(Failure::Store {
                    store: StoreRef::Own,
                    fault,
                })),
            },
            (Phase::ExpectMainLocked { own, rereads }, Input::StoreRead { result, .. }) => {
                match result {
                    Ok(main) => self.on_locked(own, Some(main), rereads, now_ms),
                    // Main may hold an in-doubt fence for the token we would
                    // present; unread, it cannot be honoured (G7): stop here.
                    Err(fault) => self.release(Err(Failure::Store {
                        store: StoreRef::Main,
                        fault,
                    })),
                }
            }
            (
                Phase::ExpectAdopt {
                    mut granted,
                    locked,
                    rereads,
                },
                Input::StoreWritten { result, .. },
            ) => match result {
                Ok(WriteOutcome::Conflict(_)) if !locked => self.acquire(),
                Ok(WriteOutcome::Conflict(conflict)) => {
                    if rereads + 1 >= REREADS_MAX {
                        self.release(Err(Failure::Superseded {
                            store: StoreRef::Own,
                            conflict,
                        }))
                    } else {
                        let rereads = rereads + 1;
                        self.read(StoreRef::Own, Phase::ExpectOwnLocked { rereads })
                    }
                }
                other => {
                    if let Err(fault) = other {
                        // Main holds the token durably; the copy is only a cache.
                        granted.warnings.push(Warning::AdoptNotStored(fault.detail));
                    }
                    if locked {
                        self.release(Ok(granted))
                    } else {
                        self.done(Ok(granted))
                    }
                }
            },
            (Phase::ExpectWrites { queue, then }, Input::StoreWritten { .. }) => {
                // These writes are best effort (clearing fences, marks); the
                // required ones (fences) go through `refresh::Phase`.
                self.continue_writes(queue, *then)
            }
            (Phase::ExpectRelease { resolution }, Input::LockReleased { .. }) => {
                self.done(resolution)
            }
            (Phase::Refresh(phase), input) => self.step_refresh(*phase, input, now_ms),
            (phase, input) => {
                // `handle` checked the kind against `expected_kind`, which
                // mirrors these arms; reaching here is a kernel bug.
                unreachable!("no transition from {phase:?} on {}", input.kind_name())
            }
        }
    }

    /// Step 1.
    fn on_own(&mut self, own: ProfileView, now_ms: i64) {
        let margin_ms = self.policy.refresh_margin_ms();
        match check_own(own.credential.as_deref(), &self.request.provider) {
            Err(failure) => self.done(Err(failure)),
            Ok(Some(credential)) if credential.is_usable(now_ms, margin_ms) => {
                let granted = granted(Outcome::Cached, credential);
                self.done(Ok(granted))
            }
            Ok(_) if self.request.role == Role::Sub => {
                self.read(StoreRef::Main, Phase::ExpectMain { own })
            }
            Ok(None) => self.done(Err(Failure::NoCredential)),
            Ok(Some(_)) => self.acquire(),
        }
    }

    /// Step 2 (sub-agents): adopt a usable, newer, allowed credential from
    /// main without taking the refresh lock.
    fn on_main(&mut self, own: ProfileView, main: ProfileView, now_ms: i64) {
        let margin_ms = self.policy.refresh_margin_ms();
        let own_credential = own.credential.as_deref();
        if let Some(failure) = logged_out_in_main(own_credential, main.credential.as_deref()) {
            return self.done(Err(failure));
        }
        match main_may_replace(
            own_credential,
            main.credential.as_deref(),
            &self.request.provider,
        ) {
            Ok(candidate) if candidate.is_usable(now_ms, margin_ms) => {
                let granted = granted(Outcome::Adopted { from: Source::Main }, candidate);
                let mutation = Mutation::Adopt {
                    expect: Expect::of(own_credential),
                    credential: shared(candidate, [&main]),
                };
                self.write(
                    StoreRef::Own,
                    mutation,
                    Phase::ExpectAdopt {
                        granted,
                        locked: false,
                        rereads: 0,
                    },
                );
            }
            Ok(_) => self.acquire(),
            Err(_) if own_credential.is_none() => {
                let failure = nothing_in(main.credential.as_deref(), &self.request.provider);
                self.done(Err(failure))
            }
            Err(_) => self.acquire(),
        }
    }

    /// Step 4: under the refresh lock, someone may have done the work already.
    fn on_locked(&mut self, own: ProfileView, main: Option<ProfileView>, rereads: u8, now_ms: i64) {
        let margin_ms = self.policy.refresh_margin_ms();
        let provider = self.request.provider.clone();
        let own_credential = match check_own(own.credential.as_deref(), &provider) {
            Err(failure) => return self.release(Err(failure)),
            Ok(credential) => credential,
        };
        if let Some(credential) = own_credential.filter(|c| c.is_usable(now_ms, margin_ms)) {
            let granted = granted(Outcome::Adopted { from: Source::Peer }, credential);
            return self.release(Ok(granted));
        }
        let main_credential = main.as_ref().and_then(|view| view.credential.as_deref());
        if let Some(failure) = logged_out_in_main(own_credential, main_credential) {
            return self.release(Err(failure));
        }
        let mut warnings = Vec::new();
        let subject = match main_may_replace(own_credential, main_credential, &provider) {
            Ok(candidate) if candidate.is_usable(now_ms, margin_ms) => {
                let granted = granted(Outcome::Adopted { from: Source::Main }, candidate);
                let mutation = Mutation::Adopt {
                    expect: Expect::of(own_credential),
                    credential: shared(candidate, [&own].into_iter().chain(main.as_ref())),
                };
                let phase = Phase::ExpectAdopt {
                    granted,
                    locked: true,
                    rereads,
                };
                return self.write(StoreRef::Own, mutation, phase);
            }
            // Main is newer but expired: refresh main's token, not our older one.
            Ok(candidate) => shared(candidate, [&own].into_iter().chain(main.as_ref())),
            Err(not_from_main) => {
                if let NotFromMain::Refused(refusal) = not_from_main {
                    let usable = main_credential.is_some_and(|m| m.is_usable(now_ms, margin_ms));
                    if usable {
                        warnings.push(Warning::IdentityRefused(refusal));
                    }
                }
                match own_credential {
                    Some(credential) => shared(credential, [&own]),
                    None => {
                        return self.release(Err(nothing_in(main_credential, &provider)));
                    }
                }
            }
        };
        self.begin_refresh(own, main, subject, warnings, now_ms);
    }

    fn acquire(&mut self) {
        let id = self.next_id();
        let effect = Effect::AcquireLock {
            id,
            key: self.key(),
            wait_ms_max: self.policy.refresh_lock_wait_ms_max(),
        };
        self.emit(effect, Phase::ExpectLock);
    }

    fn read(&mut self, store: StoreRef, phase: Phase) {
        let id = self.next_id();
        self.emit(Effect::ReadStore { id, store }, phase);
    }

    fn write(&mut self, store: StoreRef, mutation: Mutation, phase: Phase) {
        let id = self.next_id();
        self.emit(
            Effect::WriteStore {
                id,
                store,
                mutation,
            },
            phase,
        );
    }

    /// Performs the queued best-effort writes, then releases the lock and
    /// ends with `then`.
    fn continue_writes(&mut self, mut queue: VecDeque<(StoreRef, Mutation)>, then: Resolution) {
        match queue.pop_front() {
            Some((store, mutation)) => {
                let then = alloc::boxed::Box::new(then);
                self.write(store, mutation, Phase::ExpectWrites { queue, then })
            }
            None => self.release(then),
        }
    }

    /// Releases the refresh lock, then ends with `resolution`.
    fn release(&mut self, resolution: Resolution) {
        let id = self.next_id();
        let effect = Effect::ReleaseLock {
            id,
            key: self.key(),
        };
        self.emit(effect, Phase::ExpectRelease { resolution });
    }

    fn done(&mut self, resolution: Resolution) {
        self.pending = Some(Effect::Done(resolution));
        self.outstanding = None;
        self.phase = Phase::Finished;
    }

    fn emit(&mut self, effect: Effect, phase: Phase) {
        self.outstanding = effect.id();
        self.pending = Some(effect);
        self.phase = phase;
    }

    fn next_id(&mut self) -> EffectId {
        self.next_id += 1;
        EffectId(self.next_id)
    }
}

/// `credential`, shared with the view it was read from (one of `views`)
/// rather than copied; a copy when it is in none of them.
fn shared<'a>(
    credential: &Credential,
    views: impl IntoIterator<Item = &'a ProfileView>,
) -> alloc::sync::Arc<Credential> {
    views
        .into_iter()
        .filter_map(|view| view.credential.as_ref())
        .find(|arc| core::ptr::eq(arc.as_ref(), credential))
        .cloned()
        .unwrap_or_else(|| alloc::sync::Arc::new(credential.clone()))
}

/// A grant of `credential`'s access token. Callers checked it is usable, so
/// it has an access token.
fn granted(outcome: Outcome, credential: &Credential) -> Granted {
    Granted {
        outcome,
        access: credential
            .access
            .clone()
            .unwrap_or_else(|| crate::Secret::new("")),
        expires_at_ms: credential.expires_at_ms,
        generation: credential.generation,
        warnings: Vec::new(),
    }
}
