//! The pure decisions of the refresh protocol (SPEC §3): which stored
//! credential is usable, newer, allowed to be copied, and which one a refresh
//! must present. No effects here: [`super::Resolver`] calls these with what it
//! has read and turns the answers into effects.

use crate::credential::Credential;
use crate::document::{Fence, ProfileView};
use crate::effect::TokenGrant;
use crate::identity::{copy_refusal, Identity, IdentityRefusal};
use crate::outcome::Failure;
use crate::secret::Fingerprint;

/// Expiry assumed when a grant has no `expires_in` (RFC 6749 leaves it to the
/// server's documentation; one hour is the common default).
pub const DEFAULT_EXPIRES_IN_MS: u64 = 3_600_000;

/// `candidate` is newer than `current`: a higher generation, or (for stores
/// written before generations existed) the same generation with another
/// refresh token and a later expiry.
pub fn is_newer(candidate: &Credential, current: Option<&Credential>) -> bool {
    let Some(current) = current else {
        return true;
    };
    if candidate.generation != current.generation {
        return candidate.generation > current.generation;
    }
    candidate.refresh_fingerprint() != current.refresh_fingerprint()
        && candidate.expires_at_ms.unwrap_or(i64::MIN) > current.expires_at_ms.unwrap_or(i64::MIN)
}

/// Why main's entry cannot stand in for the own one.
pub enum NotFromMain {
    /// Main has nothing usable for this provider, or nothing newer.
    Unsuitable,
    /// Main has a candidate, but the identity gate refused it (G3).
    Refused(IdentityRefusal),
}

/// Main's entry may replace `own` (SPEC §3 steps 2 and 4): oauth, same
/// provider, newer than own, and allowed by the identity gate. Usability is
/// checked by the caller (adoption needs it; choosing what to refresh does not).
pub fn main_may_replace<'a>(
    own: Option<&Credential>,
    main: Option<&'a Credential>,
    provider: &str,
) -> Result<&'a Credential, NotFromMain> {
    let main = main.ok_or(NotFromMain::Unsuitable)?;
    if !main.is_oauth() || main.provider != provider || !is_newer(main, own) {
        return Err(NotFromMain::Unsuitable);
    }
    let existing = own.map(Identity::of).unwrap_or_default();
    match copy_refusal(&existing, &Identity::of(main)) {
        Some(refusal) => Err(NotFromMain::Refused(refusal)),
        None => Ok(main),
    }
}

/// Checks that an own entry can be used or refreshed at all. `Ok(None)` means
/// there is no own entry.
pub fn check_own<'a>(
    own: Option<&'a Credential>,
    provider: &str,
) -> Result<Option<&'a Credential>, Failure> {
    match own {
        None => Ok(None),
        Some(own) if own.is_logged_out() => Err(Failure::LoggedOut {
            generation: own.generation,
        }),
        Some(own) if own.provider != provider => Err(Failure::ProviderMismatch {
            stored: own.provider.clone(),
        }),
        Some(own) if !own.is_oauth() => Err(Failure::NotRefreshable {
            kind: own.kind.clone(),
        }),
        Some(own) => Ok(Some(own)),
    }
}

/// Main's tombstone ends the family the own credential belongs to (both
/// named, same name): the agent is logged out too (G11), rather than keep
/// refreshing a family the user signed out of.
pub fn logged_out_in_main(own: Option<&Credential>, main: Option<&Credential>) -> Option<Failure> {
    let (own, main) = (own?, main?);
    let ended = main.is_logged_out() && own.family.is_some() && own.family == main.family;
    ended.then_some(Failure::LoggedOut {
        generation: main.generation,
    })
}

/// Why there is nothing to resolve when the own store has no entry and main
/// cannot stand in.
pub fn nothing_in(main: Option<&Credential>, provider: &str) -> Failure {
    match main {
        None => Failure::NoCredential,
        Some(main) if main.is_logged_out() => Failure::LoggedOut {
            generation: main.generation,
        },
        Some(main) if main.provider != provider => Failure::ProviderMismatch {
            stored: main.provider.clone(),
        },
        Some(main) if !main.is_oauth() => Failure::NotRefreshable {
            kind: main.kind.clone(),
        },
        Some(_) => Failure::NoCredential,
    }
}

/// The fence, in own or main, left by an earlier presentation of
/// `presented`. When several stores hold one, the most restrictive wins: a
/// rotated fence, then the one with the highest attempt (a grace retry is
/// allowed only if no store records one already).
pub fn fence_for<'a>(
    presented: Fingerprint,
    own: &'a ProfileView,
    main: Option<&'a ProfileView>,
) -> Option<&'a Fence> {
    own.fences
        .iter()
        .chain(main.into_iter().flat_map(|view| view.fences.iter()))
        .filter(|fence| fence.refresh_fp == presented)
        .max_by_key(|fence| (fence.rotated, fence.attempt))
}

/// The in-doubt policy (SPEC §3 step 5, G7): the one retry allowed after an
/// unknown outcome, only while the provider's grace window is open.
pub fn grace_retry_allowed(fence: &Fence, grace_window_ms: Option<u64>, now_ms: i64) -> bool {
    match grace_window_ms {
        Some(grace_ms) => {
            fence.attempt == 0 && now_ms < fence.started_at_ms.saturating_add(grace_ms as i64)
        }
        None => false,
    }
}

/// The rotated credential: the presented one with the grant's tokens and
/// identity, one generation later, unmarked.
pub fn rotated(subject: &Credential, grant: &TokenGrant, now_ms: i64) -> Credential {
    let mut credential = subject.clone();
    credential.access = Some(grant.access.clone());
    if let Some(refresh) = &grant.refresh {
        credential.refresh = Some(refresh.clone());
    }
    let expires_in_ms = grant.expires_in_ms.unwrap_or(DEFAULT_EXPIRES_IN_MS);
    credential.expires_at_ms =
        Some(now_ms.saturating_add(expires_in_ms.min(i64::MAX as u64) as i64));
    if grant.account_id.is_some() {
        credential.account_id = grant.account_id.clone();
    }
    if grant.email.is_some() {
        credential.email = grant.email.clone();
    }
    credential.generation = subject.generation.saturating_add(1);
    credential.needs_reauth = false;
    credential
}
