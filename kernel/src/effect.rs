//! The two doors of the kernel: [`Effect`]s the host must perform, and the
//! [`Input`]s that report their completion.
//!
//! Each effect carries an [`EffectId`]; its completion must echo it. The
//! kernel has at most one outstanding effect at a time, so a host that
//! answers the wrong effect, or answers twice, gets
//! [`ApiMisuse`](crate::ApiMisuse) instead of silent corruption.

use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;

use crate::classify::EndpointError;
use crate::credential::Credential;
use crate::document::{Holder, ProfileView};
use crate::lock_key::LockKey;
use crate::mutation::{Mutation, WriteOutcome};
use crate::outcome::Resolution;
use crate::secret::Secret;
use crate::shared_str::SharedStr;

/// Names one effect; its completion echoes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EffectId(pub u64);

impl fmt::Display for EffectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Which store an effect touches, relative to the requesting agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoreRef {
    /// The requesting agent's own store (for the main agent: the main store).
    Own,
    /// The main store (only ever named for a sub-agent).
    Main,
}

impl fmt::Display for StoreRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreRef::Own => "own store",
            StoreRef::Main => "main store",
        })
    }
}

/// Whether the requesting agent is the main agent or a sub-agent (SPEC §2,
/// topology). A sub-agent reads its own store first, falls back to main,
/// adopts from main and mirrors into it; the main agent touches only main.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The main agent: its own store is the main store.
    Main,
    /// A sub-agent with its own store.
    Sub,
}

/// What a host asks the kernel to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Main agent or sub-agent.
    pub role: Role,
    /// Provider id; with `profile`, names the credential and the lock.
    pub provider: SharedStr,
    /// Profile id within the stores.
    pub profile: SharedStr,
    /// Who is asking, recorded in fences.
    pub holder: Holder,
}

/// Something the host must do, then report with the matching [`Input`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Read the profile's entry and fence from a store, without any lock
    /// (stores are replaced by atomic rename). Report [`Input::StoreRead`].
    ReadStore {
        /// Echo in the completion.
        id: EffectId,
        /// Which store.
        store: StoreRef,
    },
    /// Under the store's lock (bounded wait): read the document, apply the
    /// mutation with [`crate::StoreDoc::apply`], write it back durably if it
    /// changed. Report [`Input::StoreWritten`].
    WriteStore {
        /// Echo in the completion.
        id: EffectId,
        /// Which store.
        store: StoreRef,
        /// What to apply.
        mutation: Mutation,
    },
    /// Take the refresh lock for the key, waiting at most `wait_ms_max`.
    /// Report [`Input::LockAcquired`] or [`Input::LockFailed`].
    AcquireLock {
        /// Echo in the completion.
        id: EffectId,
        /// The lock (SPEC §4).
        key: LockKey,
        /// Wait budget.
        wait_ms_max: u64,
    },
    /// Present the credential's refresh token to the token endpoint, with a
    /// hard deadline. Report [`Input::EndpointReplied`] only once the call can
    /// no longer be in flight (G8): a host that gives up waiting while the
    /// request still runs breaks the protocol.
    CallEndpoint {
        /// Echo in the completion.
        id: EffectId,
        /// The credential whose refresh token to present (its unknown fields
        /// may carry endpoint settings).
        credential: Arc<Credential>,
        /// The call's hard deadline.
        deadline_ms: u64,
    },
    /// Release the refresh lock. Report [`Input::LockReleased`].
    ReleaseLock {
        /// Echo in the completion.
        id: EffectId,
        /// The lock.
        key: LockKey,
    },
    /// The resolve is over. No completion.
    Done(Resolution),
}

impl Effect {
    /// The effect's id (`None` for [`Effect::Done`]).
    pub fn id(&self) -> Option<EffectId> {
        match self {
            Effect::ReadStore { id, .. }
            | Effect::WriteStore { id, .. }
            | Effect::AcquireLock { id, .. }
            | Effect::CallEndpoint { id, .. }
            | Effect::ReleaseLock { id, .. } => Some(*id),
            Effect::Done(_) => None,
        }
    }
}

/// A store operation that failed in the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreFault {
    /// What kind of failure.
    pub kind: StoreFaultKind,
    /// A message a person can act on: which file, which error, where a
    /// corrupt file was kept aside.
    pub detail: String,
}

/// Kinds of [`StoreFault`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreFaultKind {
    /// The file is not a store document; it was kept aside, not overwritten.
    Corrupt,
    /// Reading or writing failed (permissions, disk full, I/O error).
    Io,
    /// The store's lock could not be taken within its budget.
    LockTimeout,
    /// The path is unsafe (symlink, permissions) and was refused (G9).
    Unsafe,
}

/// Why the refresh lock could not be taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockFailure {
    /// How long the host waited.
    pub waited_ms: u64,
    /// Who holds it, as far as the host knows (pid, since when).
    pub holder: Option<String>,
    /// Set when the failure is an error rather than a timeout.
    pub error: Option<String>,
}

/// A successful token-endpoint answer (RFC 6749 §5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenGrant {
    /// The new access token.
    pub access: Secret,
    /// The new refresh token; `None` when the provider does not rotate.
    pub refresh: Option<Secret>,
    /// `expires_in`, in milliseconds. When absent the kernel assumes one hour.
    pub expires_in_ms: Option<u64>,
    /// Account id, when the provider reports one.
    pub account_id: Option<SharedStr>,
    /// Email, when the provider reports one.
    pub email: Option<SharedStr>,
}

/// The completion of an [`Effect`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Completes [`Effect::ReadStore`]. A missing file is an empty view.
    StoreRead {
        /// The effect's id.
        id: EffectId,
        /// The profile as found, or why it could not be read.
        result: Result<ProfileView, StoreFault>,
    },
    /// Completes [`Effect::WriteStore`].
    StoreWritten {
        /// The effect's id.
        id: EffectId,
        /// What [`crate::StoreDoc::apply`] returned, or why the write failed.
        result: Result<WriteOutcome, StoreFault>,
    },
    /// Completes [`Effect::AcquireLock`]: the lock is held.
    LockAcquired {
        /// The effect's id.
        id: EffectId,
    },
    /// Completes [`Effect::AcquireLock`]: the lock is not held.
    LockFailed {
        /// The effect's id.
        id: EffectId,
        /// Why.
        failure: LockFailure,
    },
    /// Completes [`Effect::CallEndpoint`].
    EndpointReplied {
        /// The effect's id.
        id: EffectId,
        /// The grant, or the error as the host saw it (the kernel classifies).
        result: Result<TokenGrant, EndpointError>,
    },
    /// Completes [`Effect::ReleaseLock`].
    LockReleased {
        /// The effect's id.
        id: EffectId,
    },
}

impl Input {
    /// The id this input echoes.
    pub fn id(&self) -> EffectId {
        match self {
            Input::StoreRead { id, .. }
            | Input::StoreWritten { id, .. }
            | Input::LockAcquired { id }
            | Input::LockFailed { id, .. }
            | Input::EndpointReplied { id, .. }
            | Input::LockReleased { id } => *id,
        }
    }

    /// A short name of the input's kind, for misuse reports.
    pub fn kind_name(&self) -> &'static str {
        self.kind().name()
    }

    /// The input's kind (the resolver checks it against the phase's without
    /// comparing names).
    pub(crate) fn kind(&self) -> InputKind {
        match self {
            Input::StoreRead { .. } => InputKind::StoreRead,
            Input::StoreWritten { .. } => InputKind::StoreWritten,
            Input::LockAcquired { .. } => InputKind::LockAcquired,
            Input::LockFailed { .. } => InputKind::LockFailed,
            Input::EndpointReplied { .. } => InputKind::EndpointReplied,
            Input::LockReleased { .. } => InputKind::LockReleased,
        }
    }
}

/// The kinds of [`Input`], and `Nothing` (what a finished resolver expects).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InputKind {
    StoreRead,
    StoreWritten,
    LockAcquired,
    LockFailed,
    EndpointReplied,
    LockReleased,
    Nothing,
}

impl InputKind {
    /// The kind's name, for misuse reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            InputKind::StoreRead => "StoreRead",
            InputKind::StoreWritten => "StoreWritten",
            InputKind::LockAcquired => "LockAcquired",
            InputKind::LockFailed => "LockFailed",
            InputKind::EndpointReplied => "EndpointReplied",
            InputKind::LockReleased => "LockReleased",
            InputKind::Nothing => "nothing",
        }
    }
}
