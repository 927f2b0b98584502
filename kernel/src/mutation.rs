//! Store writes as the kernel asks for them, and how a host applies them.
//!
//! Every write the kernel makes is a [`Mutation`] of one profile, applied by the
//! host as a read-modify-write of the whole document under that store's lock
//! (G4: nothing else in the document is touched, so concurrent writers of other
//! fields and profiles lose nothing). The host does not decide anything: it
//! calls [`StoreDoc::apply`], which checks the compare-and-swap ([`Expect`])
//! and the copy rules, then writes the result back if it changed.
//!
//! The compare-and-swap is against the entry as the kernel read it under the
//! refresh lock: if a login installed a new family, a logout left a tombstone,
//! or anything else replaced the entry since, the write is rejected with a
//! [`Conflict`] and nothing is applied (G5, G11).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::credential::{Credential, CredentialKind};
use crate::document::{Fence, StoreDoc, FENCES_PER_PROFILE_MAX};
use crate::identity::{copy_refusal, Identity, IdentityRefusal};
use crate::secret::Fingerprint;
use crate::shared_str::SharedStr;

/// The state of an entry a write expects to find: absent, or a credential of
/// this kind, generation and refresh token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Expect(Option<EntryStamp>);

/// What identifies one version of a stored entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EntryStamp {
    /// The entry's `type`.
    pub kind: CredentialKind,
    /// The entry's generation.
    pub generation: u64,
    /// Fingerprint of its refresh token.
    pub refresh_fp: Option<Fingerprint>,
}

impl Expect {
    /// Expect the entry exactly as `credential` (or absent for `None`).
    pub fn of(credential: Option<&Credential>) -> Self {
        Expect(credential.map(|credential| EntryStamp {
            kind: credential.kind.clone(),
            generation: credential.generation,
            refresh_fp: credential.refresh_fingerprint(),
        }))
    }

    /// The expected stamp (`None` means the entry must be absent).
    pub fn stamp(&self) -> Option<&EntryStamp> {
        self.0.as_ref()
    }

    fn matches(&self, current: Option<&Credential>) -> bool {
        *self == Expect::of(current)
    }
}

/// One write of one profile, decided by the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Copy a usable credential from main into this store (SPEC §3 steps 2, 4, 9).
    Adopt {
        /// The entry as read.
        expect: Expect,
        /// The credential to store.
        credential: Arc<Credential>,
    },
    /// Record an in-doubt fence before presenting a refresh token (step 6, G7).
    PutFence {
        /// The entry as read.
        expect: Expect,
        /// The fence (boxed: it is the largest field of any mutation, and
        /// mutations travel by value inside effects).
        fence: Box<Fence>,
    },
    /// Store a freshly rotated credential and drop its fence (step 8, own store).
    /// A compare-and-swap against the entry as read, except that an entry
    /// holding the presented credential (a peer's lock-free adopt of it) or
    /// the rotation itself (a peer's adopt of the mirror in main) does not
    /// block it.
    Commit {
        /// The entry as read.
        expect: Expect,
        /// The rotated credential (generation already bumped).
        credential: Arc<Credential>,
        /// Fingerprint of the refresh token that was presented.
        presented_fp: Fingerprint,
    },
    /// Copy a freshly rotated credential into main, when main's entry is absent
    /// or an older oauth credential of the same provider and identity (step 8).
    /// When the copy is made the fence for the presented token is dropped;
    /// when it is refused the fence is kept, marked rotated (see
    /// [`Mutation::SettleFence`]).
    Mirror {
        /// Main's entry as read.
        expect: Expect,
        /// The rotated credential.
        credential: Arc<Credential>,
        /// Fingerprint of the refresh token that was presented.
        presented_fp: Fingerprint,
    },
    /// The presented token was rotated but its successor may not be copied
    /// into this store: keep the fence, marked rotated, so no holder of a copy
    /// presents the spent token (step 8, refused mirror; G1).
    SettleFence {
        /// Fingerprint of the presented refresh token.
        presented_fp: Fingerprint,
    },
    /// Drop the fence for a presentation whose outcome is now known not to
    /// have rotated anything (step 9, transient or rejected).
    ClearFence {
        /// Fingerprint of the presented refresh token.
        presented_fp: Fingerprint,
    },
    /// The provider refused this refresh token for good: mark the entry that
    /// holds it `needs_reauth` (kept, so a re-login can propagate) and drop its
    /// fence, or settle it as rotated when it is a grace retry's: the
    /// refusal proves the earlier presentation spent the token (step 9,
    /// reuse).
    MarkNeedsReauth {
        /// Fingerprint of the refused refresh token.
        presented_fp: Fingerprint,
    },
    /// A login or import installs a new token family: generation moves past
    /// everything this store has seen, mark cleared. In-doubt fences are kept:
    /// they name tokens of the previous family that sub-agent stores may still
    /// hold, and those agents must keep seeing them (G7). Hosts take the
    /// refresh lock first (SPEC §3).
    Login {
        /// The credential to install; its generation is replaced.
        credential: Arc<Credential>,
    },
    /// A logout leaves a tombstone one generation past the entry (G11); like a
    /// login, it keeps in-doubt fences (G7).
    Logout {
        /// Provider of the tombstone.
        provider: String,
    },
}

/// What applying a mutation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Applied (possibly a no-op, such as clearing a fence that was not there).
    Applied,
    /// Main's entry may not be overwritten by this mirror; only the fence was
    /// marked rotated.
    MirrorRefused(MirrorRefusal),
    /// The entry is not what the write expected; nothing was applied.
    Conflict(Conflict),
}

/// Why a mirror into main was refused (SPEC §3 step 8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MirrorRefusal {
    /// Main holds a credential that is not `oauth` (an operator's key).
    NotOAuth(CredentialKind),
    /// Main holds another provider's credential under this profile id.
    OtherProvider(SharedStr),
    /// The identity gate refused (G3).
    Identity(IdentityRefusal),
    /// Main holds another token family: a login replaced the one this
    /// rotation belongs to (G11).
    OtherFamily {
        /// Main's family.
        main_family: SharedStr,
    },
    /// Main is already at this generation or newer (G5).
    NotNewer {
        /// Main's generation.
        main_generation: u64,
    },
}

impl fmt::Display for MirrorRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MirrorRefusal::NotOAuth(kind) => write!(f, "main holds a {} entry", kind.as_str()),
            MirrorRefusal::OtherProvider(provider) => {
                write!(f, "main holds a credential of provider {provider}")
            }
            MirrorRefusal::Identity(refusal) => write!(f, "identity gate: {refusal}"),
            MirrorRefusal::OtherFamily { main_family } => {
                write!(
                    f,
                    "main holds another token family ({main_family}): a login replaced ours"
                )
            }
            MirrorRefusal::NotNewer { main_generation } => {
                write!(f, "main is already at generation {main_generation}")
            }
        }
    }
}

/// A compare-and-swap that lost: the entry changed since it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// What the write expected.
    pub expected: Expect,
    /// What the store holds.
    pub found: Expect,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let describe = |expect: &Expect| match expect.stamp() {
            None => String::from("no entry"),
            Some(stamp) => {
                alloc::format!("{} generation {}", stamp.kind.as_str(), stamp.generation)
            }
        };
        write!(
            f,
            "expected {}, found {}",
            describe(&self.expected),
            describe(&self.found)
        )
    }
}

/// Keeps at most [`FENCES_PER_PROFILE_MAX`] fences, dropping the oldest
/// rotated ones first; in-doubt fences are never dropped.
fn bound_fences(fences: &mut Vec<Fence>) {
    while fences.len() > FENCES_PER_PROFILE_MAX {
        let oldest_rotated = fences
            .iter()
            .enumerate()
            .filter(|(_, fence)| fence.rotated)
            .min_by_key(|(_, fence)| fence.started_at_ms)
            .map(|(index, _)| index);
        match oldest_rotated {
            Some(index) => {
                fences.remove(index);
            }
            None => break,
        }
    }
}

/// Whether a mirror of `incoming` may replace main's `existing` entry.
pub fn mirror_refusal(
    existing: Option<&Credential>,
    incoming: &Credential,
) -> Option<MirrorRefusal> {
    let existing = existing?;
    if !existing.is_oauth() {
        return Some(MirrorRefusal::NotOAuth(existing.kind.clone()));
    }
    if existing.provider != incoming.provider {
        return Some(MirrorRefusal::OtherProvider(existing.provider.clone()));
    }
    if let Some(refusal) = copy_refusal(&Identity::of(existing), &Identity::of(incoming)) {
        return Some(MirrorRefusal::Identity(refusal));
    }
    // A named family in main was installed by a login; rotations and copies
    // carry the name, so a credential without it, or with another, is of an
    // older family and must not be written back over that login (G11).
    if let Some(main_family) = &existing.family {
        if incoming.family.as_ref() != Some(main_family) {
            return Some(MirrorRefusal::OtherFamily {
                main_family: main_family.clone(),
            });
        }
    }
    if existing.generation >= incoming.generation {
        return Some(MirrorRefusal::NotNewer {
            main_generation: existing.generation,
        });
    }
    None
}

impl StoreDoc {
    /// Applies `mutation` to `profile`. The caller holds the store's lock, read
    /// this document from disk under it, and writes it back (atomically) when
    /// this returns [`WriteOutcome::Applied`] or
    /// [`WriteOutcome::MirrorRefused`] (the fence may have changed).
    pub fn apply(&mut self, profile: &str, mutation: &Mutation) -> WriteOutcome {
        let current = self.profiles.get(profile);
        let conflict = |expect: &Expect| {
            WriteOutcome::Conflict(Conflict {
                expected: expect.clone(),
                found: Expect::of(current),
            })
        };
        match mutation {
            Mutation::Adopt { expect, credential } => {
                if !expect.matches(current) {
                    return conflict(expect);
                }
                self.profiles.insert(profile.into(), Arc::clone(credential));
            }
            Mutation::PutFence { expect, fence } => {
                if !expect.matches(current) {
                    return conflict(expect);
                }
                self.put_fence(profile, Fence::clone(fence));
            }
            Mutation::Commit {
                expect,
                credential,
                presented_fp,
            } => {
                // A peer sharing this store may have copied, without the
                // refresh lock, the very credential that was presented (a
                // step-2 adopt from main): the rotation of that credential
                // still belongs here. Refusing it would discard a rotation the
                // provider already made (G7).
                let holds_presented = current.is_some_and(|c| {
                    c.is_oauth()
                        && c.refresh_fingerprint() == Some(*presented_fp)
                        && c.generation.saturating_add(1) == credential.generation
                });
                // A sub-agent mirrors into main before it commits (SPEC §3
                // step 8): a peer sharing this store may have adopted that
                // very rotation from main in between. The entry already is
                // the rotation; failing the commit would fail a resolve
                // that holds a good token (G2; found by the shuttle and
                // loom identity models when the mirror moved first).
                let holds_rotation = current.is_some_and(|c| {
                    c.is_oauth()
                        && c.refresh_fingerprint().is_some()
                        && c.refresh_fingerprint() == credential.refresh_fingerprint()
                        && c.access == credential.access
                        && c.expires_at_ms == credential.expires_at_ms
                        && c.generation == credential.generation
                });
                if !expect.matches(current) && !holds_presented && !holds_rotation {
                    return conflict(expect);
                }
                let installed = keeping_fields_of(current, credential);
                self.profiles.insert(profile.into(), installed);
                self.clear_fence(profile, *presented_fp);
            }
            Mutation::Mirror {
                expect,
                credential,
                presented_fp,
            } => {
                if !expect.matches(current) {
                    return conflict(expect);
                }
                if let Some(refusal) = mirror_refusal(current, credential) {
                    self.settle_fence(profile, *presented_fp);
                    return WriteOutcome::MirrorRefused(refusal);
                }
                let installed = keeping_fields_of(current, credential);
                self.clear_fence(profile, *presented_fp);
                self.profiles.insert(profile.into(), installed);
            }
            Mutation::SettleFence { presented_fp } => self.settle_fence(profile, *presented_fp),
            Mutation::ClearFence { presented_fp } => self.clear_fence(profile, *presented_fp),
            Mutation::MarkNeedsReauth { presented_fp } => {
                if let Some(entry) = self.profiles.get_mut(profile) {
                    if entry.is_oauth() && entry.refresh_fingerprint() == Some(*presented_fp) {
                        entry.needs_reauth = true;
                    }
                }
                self.clear_or_settle_refused(profile, *presented_fp);
            }
            Mutation::Login { credential } => {
                let mut installed = Credential::clone(credential);
                installed.generation = self.login_generation(profile).max(credential.generation);
                installed.needs_reauth = false;
                if installed.family.is_none() {
                    installed.family = installed
                        .refresh_fingerprint()
                        .map(|fp| SharedStr::from(fp.as_str()));
                }
                self.profiles.insert(profile.into(), installed);
            }
            Mutation::Logout { provider } => {
                let generation = self.next_generation(profile);
                let mut tombstone = Credential::tombstone(provider.clone(), generation);
                // The tombstone names the family it ended, so a sub-agent
                // holding a copy of that family stops too (G11).
                tombstone.family = self.profiles.get(profile).and_then(|c| c.family.clone());
                self.profiles.insert(profile.into(), tombstone);
            }
        }
        WriteOutcome::Applied
    }

    /// The generation a login installs: past the entry and past every
    /// rotation a fence announces. A fence at generation `g` names a token
    /// whose rotation is stored at `g + 1`, possibly only in a sub-agent's
    /// store (its mirror into main failed, or lost its compare-and-swap to
    /// this very login). A login at `g + 1` would tie with that rotation, the
    /// tie would be broken by expiry (by clocks), and the sub-agent could keep
    /// refreshing the family the login replaced: never converging on the
    /// login, or failing `NeedsReauth` once a single-session provider revoked
    /// it (G2, G11; found by the simulator's outcome oracle: `rotor replay
    /// --seed 0x39b8 --processes 2 --agents 3 --backend advisory --faults
    /// crash,pause,disk-full,lost-fsync,clock-jump,server-error,timeout
    /// --actors foreign-login,foreign-logout --requests 1`).
    fn login_generation(&self, profile: &str) -> u64 {
        let entry = self.profiles.get(profile).map_or(0, |c| c.generation);
        let rotation = self
            .fences
            .get(profile)
            .and_then(|fences| fences.iter().map(|f| f.generation.saturating_add(1)).max())
            .unwrap_or(0);
        entry.max(rotation).saturating_add(1)
    }

    fn next_generation(&self, profile: &str) -> u64 {
        let entry = self.profiles.get(profile).map_or(0, |c| c.generation);
        let fence = self
            .fences
            .get(profile)
            .and_then(|fences| fences.iter().map(|f| f.generation).max())
            .unwrap_or(0);
        entry.max(fence).saturating_add(1)
    }

    fn put_fence(&mut self, profile: &str, fence: Fence) {
        let fences = self.fences.entry(profile.into()).or_default();
        fences.retain(|existing| existing.refresh_fp != fence.refresh_fp);
        fences.push(fence);
        bound_fences(fences);
    }

    fn settle_fence(&mut self, profile: &str, presented_fp: Fingerprint) {
        if let Some(fences) = self.fences.get_mut(profile) {
            for fence in fences.iter_mut().filter(|f| f.refresh_fp == presented_fp) {
                fence.rotated = true;
            }
            bound_fences(fences);
        }
    }

    /// The fence of a token the provider refused for good (step 9, reuse).
    /// A first presentation's fence is this resolve's own and goes. A grace
    /// retry's fence (attempt 1) replaced the fence of the earlier
    /// presentation, and the refusal proves that one spent the token: its
    /// rotation, at the fence's generation + 1, may be stored only where its
    /// presenter wrote it (a sub-agent whose mirror into main failed). The
    /// fence stays, settled as rotated, so a later login still installs past
    /// that rotation (`login_generation`). Dropping it let a login tie with
    /// the rotation; the tie was broken by expiry and the sub-agent kept its
    /// dead family and failed `NeedsReauth` beside the login (G2, G11; found
    /// by the simulator's outcome oracle: `rotor replay --seed
    /// 0x2c793827497ad4a0 --processes 2 --agents 3 --backend advisory
    /// --faults write-error,disk-full,lost-fsync,torn-write,clock-jump,lost-response
    /// --actors relogin --requests 3`).
    fn clear_or_settle_refused(&mut self, profile: &str, presented_fp: Fingerprint) {
        let retried = self.fences.get(profile).is_some_and(|fences| {
            fences
                .iter()
                .any(|fence| fence.refresh_fp == presented_fp && fence.attempt > 0)
        });
        if retried {
            self.settle_fence(profile, presented_fp);
        } else {
            self.clear_fence(profile, presented_fp);
        }
    }

    fn clear_fence(&mut self, profile: &str, presented_fp: Fingerprint) {
        if let Some(fences) = self.fences.get_mut(profile) {
            fences.retain(|fence| fence.refresh_fp != presented_fp);
            if fences.is_empty() {
                self.fences.remove(profile);
            }
        }
    }
}

/// The rotated `credential` as it goes over `current`: the rotation changes
/// tokens, expiry, generation and identity, never the fields rotor does not
/// know. Those are taken from the entry as it is now, not as it was read
/// before the endpoint call: another program (an editing tool) may have
/// changed them meanwhile under the store lock alone, and its change must
/// not be lost (G4; found by the loom/shuttle identity models' editing
/// tool).
fn keeping_fields_of(
    current: Option<&Credential>,
    credential: &Arc<Credential>,
) -> Arc<Credential> {
    match current {
        Some(current) if current.extra != credential.extra => {
            let mut installed = Credential::clone(credential);
            installed.extra = current.extra.clone();
            Arc::new(installed)
        }
        _ => Arc::clone(credential),
    }
}
