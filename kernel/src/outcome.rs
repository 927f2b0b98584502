//! What a resolve ends with (G10): a token and how it was obtained, or a typed
//! failure with a message a person can act on. Host contract violations are a
//! separate channel, [`ApiMisuse`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::credential::CredentialKind;
use crate::document::Fence;
use crate::effect::{EffectId, StoreRef};
use crate::identity::IdentityRefusal;
use crate::lock_key::LockKey;
use crate::mutation::{Conflict, MirrorRefusal};
use crate::secret::Secret;
use crate::shared_str::SharedStr;

/// The end of a resolve.
pub type Resolution = Result<Granted, Failure>;

/// A usable access token and how it was obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Granted {
    /// How the token was obtained.
    pub outcome: Outcome,
    /// The access token.
    pub access: Secret,
    /// Its expiry, epoch ms.
    pub expires_at_ms: Option<i64>,
    /// Generation of the credential it belongs to.
    pub generation: u64,
    /// Things that went wrong without failing the resolve.
    pub warnings: Vec<Warning>,
}

/// How a token was obtained (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The agent's own store already held a usable token (step 1).
    Cached,
    /// Copied from another participant's work (steps 2, 4, 9).
    Adopted {
        /// Where it came from.
        from: Source,
    },
    /// This resolve presented the refresh token and stored the rotation (step 8).
    Refreshed,
}

/// Where an adopted token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// Copied from the main store.
    Main,
    /// Found in the own store, written by a peer sharing it.
    Peer,
}

/// Something that went wrong without failing the resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// The rotated credential was not mirrored into main.
    MirrorRefused(MirrorRefusal),
    /// Mirroring into main failed or lost a compare-and-swap.
    MirrorFailed(String),
    /// A sub-agent's rotation is in main but its own store's commit failed:
    /// the token is good, and the next resolve adopts it from main.
    CommitFailed(String),
    /// A token adopted from main could not be copied into the own store.
    AdoptNotStored(String),
    /// Main holds a usable token the identity gate refused to copy (G3).
    IdentityRefused(IdentityRefusal),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::MirrorRefused(refusal) => write!(f, "not mirrored into main: {refusal}"),
            Warning::MirrorFailed(detail) => write!(f, "mirror into main failed: {detail}"),
            Warning::CommitFailed(detail) => {
                write!(f, "stored in main only, own store not written: {detail}")
            }
            Warning::AdoptNotStored(detail) => {
                write!(f, "adopted token not stored in own store: {detail}")
            }
            Warning::IdentityRefused(refusal) => {
                write!(f, "main's token not adopted: {refusal}")
            }
        }
    }
}

/// Why a resolve gave no token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Neither the own store nor main has an entry for the profile.
    NoCredential,
    /// The stored entry is for another provider.
    ProviderMismatch {
        /// The provider the stored entry names.
        stored: SharedStr,
    },
    /// The entry is not an `oauth` credential and has no usable token.
    NotRefreshable {
        /// Its kind.
        kind: CredentialKind,
    },
    /// The profile was logged out (a tombstone at this generation, G11).
    LoggedOut {
        /// The tombstone's generation.
        generation: u64,
    },
    /// The token family cannot be refreshed any more: log in again.
    NeedsReauth(ReauthReason),
    /// This resolve presented the refresh token and does not know whether the
    /// provider rotated it. The fence is kept (G7); the next participant will
    /// report `NeedsReauth` rather than present the token again.
    InDoubt {
        /// What the host reported.
        detail: String,
    },
    /// The endpoint could not be reached; the token was provably not sent.
    Transient {
        /// What the host reported.
        detail: String,
    },
    /// The endpoint answered with a definite refusal that is not a token
    /// reuse (invalid client, rate limit): nothing rotated.
    Rejected {
        /// What the host reported.
        detail: String,
    },
    /// The refresh lock could not be taken within its budget (G8).
    LockTimeout {
        /// The lock.
        key: LockKey,
        /// How long the host waited.
        waited_ms: u64,
        /// Who holds it.
        holder: Option<String>,
        /// Set when the lock failed with an error rather than a timeout.
        error: Option<String>,
    },
    /// A store could not be read or written.
    Store {
        /// Which store.
        store: StoreRef,
        /// What happened (corrupt files name their backup).
        fault: crate::effect::StoreFault,
    },
    /// A login, logout or another writer replaced the entry while this
    /// resolve held the refresh lock; nothing was written (G5, G11).
    Superseded {
        /// Which store.
        store: StoreRef,
        /// What the write expected and found.
        conflict: Conflict,
    },
    /// The provider rotated the token but the rotation could not be stored.
    /// The fence stays, so nobody presents the consumed token again (G7).
    RotationNotStored {
        /// Why the write failed.
        detail: String,
    },
}

/// Why a family needs a new login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReauthReason {
    /// The provider refused the refresh token (`invalid_grant`, reuse).
    TokenRefused {
        /// What the endpoint said.
        detail: String,
    },
    /// An earlier presentation of this token has an unknown outcome (G7).
    InDoubt {
        /// The fence it left.
        fence: Fence,
    },
    /// Another participant already rotated this token; its successor lives
    /// in a store this agent may not copy from (main holds another account or
    /// provider), so presenting the spent token would only revoke the family.
    Rotated {
        /// The settled fence it left in main.
        fence: Fence,
    },
    /// The credential is already marked `needs_reauth`.
    Marked,
    /// The credential has no refresh token.
    NoRefreshToken,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoCredential => f.write_str("no credential for this profile: run `rotor login`"),
            Failure::ProviderMismatch { stored } => {
                write!(f, "the stored credential belongs to provider {stored}")
            }
            Failure::NotRefreshable { kind } => {
                write!(f, "the stored credential is {} and cannot be refreshed", kind.as_str())
            }
            Failure::LoggedOut { generation } => {
                write!(f, "logged out (generation {generation}): run `rotor login`")
            }
            Failure::NeedsReauth(reason) => write!(f, "needs a new login: {reason}"),
            Failure::InDoubt { detail } => write!(
                f,
                "refresh outcome unknown ({detail}); the token is fenced and will not be presented again"
            ),
            Failure::Transient { detail } => {
                write!(f, "token endpoint unreachable ({detail}); nothing was sent, try again")
            }
            Failure::Rejected { detail } => write!(f, "token endpoint refused: {detail}"),
            Failure::LockTimeout {
                key,
                waited_ms,
                holder,
                error,
            } => {
                write!(f, "refresh lock {key} not acquired after {waited_ms} ms")?;
                if let Some(holder) = holder {
                    write!(f, "; held by {holder}")?;
                }
                if let Some(error) = error {
                    write!(f, "; {error}")?;
                }
                Ok(())
            }
            Failure::Store { store, fault } => write!(f, "{store}: {}", fault.detail),
            Failure::Superseded { store, conflict } => write!(
                f,
                "{store} changed during the refresh (login or logout?): {conflict}"
            ),
            Failure::RotationNotStored { detail } => write!(
                f,
                "the provider rotated the token but it could not be stored ({detail}); log in again"
            ),
        }
    }
}

impl fmt::Display for ReauthReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReauthReason::TokenRefused { detail } => {
                write!(f, "the provider refused the refresh token ({detail})")
            }
            ReauthReason::InDoubt { fence } => write!(
                f,
                "a refresh by {} started at {} ms (generation {}) has an unknown outcome",
                fence.holder, fence.started_at_ms, fence.generation
            ),
            ReauthReason::Rotated { fence } => write!(
                f,
                "{} already rotated this refresh token (generation {}), but its successor could \
                 not be shared through main; log in again, or give this agent main's account",
                fence.holder, fence.generation
            ),
            ReauthReason::Marked => f.write_str("the credential is marked needs_reauth"),
            ReauthReason::NoRefreshToken => f.write_str("the credential has no refresh token"),
        }
    }
}

/// The host broke the kernel's contract. The kernel's state is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiMisuse {
    /// The input echoes an id that is not the outstanding effect's.
    WrongId {
        /// The outstanding effect's id, if any.
        expected: Option<EffectId>,
        /// The id received.
        got: EffectId,
    },
    /// The input's kind does not complete the outstanding effect.
    WrongKind {
        /// The kind of input expected.
        expected: &'static str,
        /// The kind received.
        got: &'static str,
    },
    /// The resolve is already done.
    AlreadyDone,
}

impl fmt::Display for ApiMisuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiMisuse::WrongId { expected, got } => {
                write!(
                    f,
                    "completion {got} does not match the outstanding effect {expected:?}"
                )
            }
            ApiMisuse::WrongKind { expected, got } => {
                write!(f, "expected a {expected} completion, got {got}")
            }
            ApiMisuse::AlreadyDone => f.write_str("the resolve is already done"),
        }
    }
}
