//! docs/bugs.md's protocol bugs as broken hosts, shared by the test
//! binaries that run them (the simulator in `bugs`, the explorer in
//! `explore_bugs`, both in `explore_agree`). Each overrides one hook of
//! `HostHooks`; the shipped host is the default of every hook. None of this
//! exists outside the tests.
#![allow(dead_code)] // each test binary uses some of the hosts

use rotor_kernel::{
    Conflict, Expect, Mutation, ProfileView, Role, StoreDoc, StoreRef, WriteOutcome,
};
use rotor_sim::{HostHooks, ReadContext};

#[derive(Debug)]
pub struct LockPerAgentStore;
impl HostHooks for LockPerAgentStore {
    fn name(&self) -> &'static str {
        "B1: lock keyed per agent store"
    }
    fn lock_slot(&self, own_store: u8) -> u8 {
        own_store
    }
}

#[derive(Debug)]
pub struct ReentrantInProcess;
impl HostHooks for ReentrantInProcess {
    fn name(&self) -> &'static str {
        "B3: re-entrant lock within one process"
    }
    fn in_process_exclusion(&self) -> bool {
        false
    }
}

#[derive(Debug)]
pub struct WritesWithoutStoreLock;
impl HostHooks for WritesWithoutStoreLock {
    fn name(&self) -> &'static str {
        "B4: refresh writes without the store lock"
    }
    fn store_lock_on_rotor_writes(&self) -> bool {
        false
    }
}

#[derive(Debug)]
pub struct MirrorAfterRelease;
impl HostHooks for MirrorAfterRelease {
    fn name(&self) -> &'static str {
        "B6: mirror outside the refresh lock"
    }
    fn mirror_after_release(&self) -> bool {
        true
    }
}

#[derive(Debug)]
pub struct TimeoutReleasesEarly;
impl HostHooks for TimeoutReleasesEarly {
    fn name(&self) -> &'static str {
        "B9: timeout releases the lock while the call still runs"
    }
    fn report_timeout_at_deadline(&self) -> bool {
        true
    }
}

/// B14: a permissive gate. The broken host shows its agents credentials
/// without identity fields, so every copy looks allowed ("a strict
/// comparison is impossible: allow").
#[derive(Debug)]
pub struct PermissiveGate;
impl HostHooks for PermissiveGate {
    fn name(&self) -> &'static str {
        "B14: permissive identity gate"
    }
    fn filter_read(&self, reader: ReadContext<'_>, mut view: ProfileView) -> ProfileView {
        if reader.role == Role::Sub {
            if let Some(credential) = view.credential.as_mut().map(std::sync::Arc::make_mut) {
                credential.account_id = None;
                credential.email = None;
                credential.tenant = None;
            }
        }
        view
    }
}

/// B16: a strict, symmetric gate refuses "existing has no identity,
/// incoming has an account id". The broken host makes the kernel's gate
/// decide that way by showing a legacy own entry with a placeholder email,
/// which no account-bearing credential may replace.
#[derive(Debug)]
pub struct StrictGate;
impl HostHooks for StrictGate {
    fn name(&self) -> &'static str {
        "B16: strict gate blocks upgrades"
    }
    fn filter_read(&self, reader: ReadContext<'_>, mut view: ProfileView) -> ProfileView {
        if reader.role == Role::Sub && reader.store == StoreRef::Own {
            if let Some(credential) = view.credential.as_mut().map(std::sync::Arc::make_mut) {
                let legacy = credential.account_id.is_none() && credential.email.is_none();
                if legacy {
                    credential.email = Some("legacy@strict-gate.invalid".into());
                }
            }
        }
        view
    }
}

/// Not a docs/bugs.md defect: a host that fails agents without a reason the
/// world gives, for the outcome oracle (`tests/oracle.rs`). It tells the
/// main agent that main is empty whenever main's credential has an even
/// generation (a flaky read), so the kernel fails `NoCredential` although
/// the file holds the credential.
#[derive(Debug)]
pub struct ReadsMainAsEmpty;
impl HostHooks for ReadsMainAsEmpty {
    fn name(&self) -> &'static str {
        "reports a read of main as empty"
    }
    fn filter_read(&self, reader: ReadContext<'_>, mut view: ProfileView) -> ProfileView {
        let even = view
            .credential
            .as_ref()
            .is_some_and(|c| c.generation % 2 == 0);
        if reader.role == Role::Main && even {
            view.credential = None;
        }
        view
    }
}

/// Not a docs/bugs.md defect: a host that refuses every adoption, answering
/// the kernel's `Adopt` with a lost compare-and-swap although the entry is
/// exactly as the kernel read it, and writing nothing. Sub-agents end
/// `Superseded` where they should have adopted (outcome oracle).
#[derive(Debug)]
pub struct RefusesAdoption;
impl HostHooks for RefusesAdoption {
    fn name(&self) -> &'static str {
        "refuses adoption"
    }
    fn apply(&self, doc: &mut StoreDoc, profile: &str, mutation: &Mutation) -> WriteOutcome {
        if let Mutation::Adopt { expect, .. } = mutation {
            return WriteOutcome::Conflict(Conflict {
                expected: expect.clone(),
                found: Expect::of(doc.profiles.get(profile)),
            });
        }
        doc.apply(profile, mutation)
    }
}

/// Not a docs/bugs.md defect: a host whose commit skips the kernel's
/// compare-and-swap (it writes the rotation whatever the entry holds now).
/// Only another program's login or logout, which takes no refresh lock, can
/// change the entry while a refresh is in flight, so only the foreign actors
/// show it (G11: the old family comes back over the login or the tombstone).
#[derive(Debug)]
pub struct CommitWithoutCas;
impl HostHooks for CommitWithoutCas {
    fn name(&self) -> &'static str {
        "commits without its compare-and-swap"
    }
    fn apply(&self, doc: &mut StoreDoc, profile: &str, mutation: &Mutation) -> WriteOutcome {
        if let Mutation::Commit {
            credential,
            presented_fp,
            ..
        } = mutation
        {
            let blind = Mutation::Commit {
                expect: Expect::of(doc.profiles.get(profile)),
                credential: credential.clone(),
                presented_fp: *presented_fp,
            };
            return doc.apply(profile, &blind);
        }
        doc.apply(profile, mutation)
    }
}

/// Not a docs/bugs.md defect: a host that lets go of the refresh lock
/// without waking anyone waiting for it (a lost wake-up). Waiters sit out
/// their whole budget behind a free lock and fail `LockTimeout` (G8).
#[derive(Debug)]
pub struct ForgetsWaiters;
impl HostHooks for ForgetsWaiters {
    fn name(&self) -> &'static str {
        "releases the refresh lock without waking a waiter"
    }
    fn wake_waiter_on_release(&self) -> bool {
        false
    }
}

/// Not a docs/bugs.md defect: a host that drops every endpoint response it
/// receives and reports a reset, so every refresh ends `InDoubt` although
/// the provider answered (G7).
#[derive(Debug)]
pub struct DropsResponses;
impl HostHooks for DropsResponses {
    fn name(&self) -> &'static str {
        "drops the endpoint's responses"
    }
    fn read_response(&self) -> bool {
        false
    }
}

/// The fenced lease (the PostgreSQL host's rule, ARCHITECTURE.md "The
/// PostgreSQL backend") with its condition removed: fences are written
/// whatever the lease says (`--backend fenced-lease` only).
#[derive(Debug)]
pub struct UnconditionalFences;

impl HostHooks for UnconditionalFences {
    fn name(&self) -> &'static str {
        "unconditional-fences"
    }

    fn fence_writes_need_the_lock(&self) -> bool {
        false
    }
}

/// Not a docs/bugs.md defect: a host that tells a sub-agent main's
/// credential needs a re-login whenever it is of another token family than
/// the sub-agent's own (a misreading of G11 as "never copy across
/// families"). The kernel then neither adopts nor refreshes main's token and
/// fails `NeedsReauth(Marked)`, although the file holds a live token the
/// agent may copy: after a re-login in main, and after main lost a re-login
/// its sub-agents had copied and moved on with the family it replaced
/// (outcome oracle, G2).
#[derive(Debug)]
pub struct MarksMainOfAnotherFamily;
impl HostHooks for MarksMainOfAnotherFamily {
    fn name(&self) -> &'static str {
        "marks main's credential of another family"
    }
    fn filter_read(&self, reader: ReadContext<'_>, mut view: ProfileView) -> ProfileView {
        let Some(own) = sub_reading_main(&reader) else {
            return view;
        };
        if let Some(main) = view.credential.as_mut() {
            if main.is_oauth() && main.family != own.family {
                std::sync::Arc::make_mut(main).needs_reauth = true;
            }
        }
        view
    }
}

/// Not a docs/bugs.md defect: the world of fresh seed 0x85ce410e4e7a6160,
/// where a sub-agent holds a login (generation 5) that main lost to a crash
/// and main holds the family the login replaced (generation 4), moved just
/// past the oracle's excuse for it: main's entry is renumbered past the
/// generation of a fence written over it for a token of a store ahead of
/// main (the sub-agent's login, one above main's entry), so main's older
/// family is now *newer* than the own login and the kernel must adopt it;
/// and the host reports such an entry of an older family than the own one
/// to a sub-agent as marked `needs_reauth`, so the kernel fails
/// `NeedsReauth(Marked)` instead.
/// A lost convergence (G2) the excuse must not cover.
#[derive(Debug)]
pub struct HidesMainMovedPastTheOwnLogin;
impl HostHooks for HidesMainMovedPastTheOwnLogin {
    fn name(&self) -> &'static str {
        "hides main's older family moved past the own login"
    }
    fn apply(&self, doc: &mut StoreDoc, profile: &str, mutation: &Mutation) -> WriteOutcome {
        let outcome = doc.apply(profile, mutation);
        if let (Mutation::PutFence { fence, .. }, WriteOutcome::Applied) = (mutation, &outcome) {
            if let Some(entry) = doc.profiles.get_mut(profile) {
                if entry.generation < fence.generation {
                    entry.generation = fence.generation + 1;
                }
            }
        }
        outcome
    }
    fn filter_read(&self, reader: ReadContext<'_>, mut view: ProfileView) -> ProfileView {
        let Some(own) = sub_reading_main(&reader) else {
            return view;
        };
        if let Some(main) = view.credential.as_mut() {
            let family = |c: &rotor_kernel::Credential| {
                c.refresh
                    .as_ref()
                    .and_then(|r| rotor_sim::endpoint::parse_token(r.expose()))
                    .map(|(family, _)| family)
            };
            // The simulator numbers families in issue order: main's is the
            // older one.
            let older = family(main).zip(family(own)).is_some_and(|(m, o)| m < o);
            if main.is_oauth() && older && main.generation > own.generation {
                std::sync::Arc::make_mut(main).needs_reauth = true;
            }
        }
        view
    }
}

/// Not a docs/bugs.md defect: a host that frees a store lock without waking
/// the agents waiting for it (a lost wake-up), always or (`after_a_crash`)
/// only when the holder's process died. They sit out their store-lock
/// budget behind a free lock and fail `Store` (outcome oracle, G2).
#[derive(Debug)]
pub struct ForgetsStoreLockWaiters {
    pub after_a_crash_only: bool,
}
impl HostHooks for ForgetsStoreLockWaiters {
    fn name(&self) -> &'static str {
        "frees a store lock without waking its waiters"
    }
    fn wake_store_lock_waiters(&self, by_crash: bool) -> bool {
        self.after_a_crash_only && !by_crash
    }
}

/// Not a docs/bugs.md defect: a host that takes any newer token family in
/// main for a re-login its account-0 sub-agents must follow (a misreading of
/// G11 as "the newest family wins"). To a sub-agent whose own entry is of
/// family 0 (the simulator's account-0 family) it shows main's entry of a
/// later family one generation past the own entry, and every credential
/// without its identity fields (B14's permissive gate), so the kernel adopts
/// it. Before main is torn main holds family 0 and nothing changes; once a
/// torn main was refilled with the other account's family (a mirror into an
/// absent entry, SPEC §3 step 8), such a sub-agent, whose own store still
/// names account 0, takes account 1's token (G3). With email identities the
/// copy drops no account id, so only the agent's binding tells.
#[derive(Debug)]
pub struct FollowsAnyNewerFamily;
impl HostHooks for FollowsAnyNewerFamily {
    fn name(&self) -> &'static str {
        "follows any newer family in main, identity unseen"
    }
    fn filter_read(&self, reader: ReadContext<'_>, mut view: ProfileView) -> ProfileView {
        let family = |c: &rotor_kernel::Credential| {
            c.refresh
                .as_ref()
                .and_then(|r| rotor_sim::endpoint::parse_token(r.expose()))
                .map(|(family, _)| family)
        };
        let Some(own) = reader.own.filter(|c| c.is_oauth() && family(c) == Some(0)) else {
            return view;
        };
        if reader.role != Role::Sub {
            return view;
        }
        if let Some(credential) = view.credential.as_mut().map(std::sync::Arc::make_mut) {
            credential.account_id = None;
            credential.email = None;
            credential.tenant = None;
            let later = family(credential).is_some_and(|f| f > 0);
            if reader.store == StoreRef::Main && later && credential.generation <= own.generation {
                credential.generation = own.generation + 1;
            }
        }
        view
    }
}

/// The own OAuth entry of a sub-agent reading main: the one read that the
/// broken identity hooks above tamper with (`None` for any other read).
fn sub_reading_main<'a>(reader: &ReadContext<'a>) -> Option<&'a rotor_kernel::Credential> {
    if reader.role != Role::Sub || reader.store != StoreRef::Main {
        return None;
    }
    reader.own.filter(|c| c.is_oauth())
}

/// Not a docs/bugs.md defect: a host that misreads the expiry of every
/// OAuth entry it reads from an agent's own store as far ahead (a unit or
/// clock error). The kernel's fast path (SPEC §3 step 1) then hands back
/// whatever the own store holds, `Cached`, without reading main: no
/// refresh, no adoption, no call (only an agent whose own store is empty
/// reads main and refreshes). Against a family the provider revoked that is
/// a lost convergence (G2) unless the world explains the revocation
/// (`tests/excuses.rs`).
#[derive(Debug)]
pub struct OwnExpiryMisread;
impl HostHooks for OwnExpiryMisread {
    fn name(&self) -> &'static str {
        "misreads the own store's expiry as far ahead"
    }
    fn filter_read(&self, reader: ReadContext<'_>, mut view: ProfileView) -> ProfileView {
        if reader.store != StoreRef::Own {
            return view;
        }
        if let Some(credential) = view.credential.as_mut() {
            if credential.is_oauth() {
                std::sync::Arc::make_mut(credential).expires_at_ms = Some(i64::MAX / 4);
            }
        }
        view
    }
}
