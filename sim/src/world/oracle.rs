//! The outcome oracle: every resolve that fails is judged against the
//! world's ground truth, in the safety phase and in the liveness phase alike.
//!
//! A run used to pass when no safety guarantee broke, even if agents ended in
//! `NeedsReauth`, `Superseded` or `LockTimeout` for no reason the world gave.
//! Here a failure must be explained by what the world itself recorded, never
//! by the kernel's own decision functions (a checker that asks the kernel
//! whether the kernel was right is blind to the kernel's bugs):
//!
//! | failure | justified only by | otherwise |
//! | --- | --- | --- |
//! | `NeedsReauth`, `RotationNotStored` | no store the agent read held a live token it may use: the provider's records say every token there is spent or its family revoked, or a fault left its presentation in doubt, or a later login in main replaced its family (or, for main's token, a later login the own store holds at a higher generation: main lost that login to a crash), or SPEC §5 (the checkers' own `identity_table`, not the kernel's `may_copy`) forbids the copy, or a clock jump during the resolve made the live token look expired to this agent | G2 |
//! | `Superseded` | a write lost its compare-and-swap because another writer (a login, a logout, a peer, a crash that reverted a lost fsync) really changed the entry since this resolve read it | G2 |
//! | `Transient` / `Rejected` | the endpoint really refused the connection / answered 5xx or 429 (the fault on the request) | G2 |
//! | `InDoubt` | the request really met a timeout, a lost response or a 5xx without an OAuth body | G7 |
//! | `LockTimeout` | the wait overlapped a pause (a holder stalled, or the waiter itself, whose timer then fires late), a call that ran to its deadline, or a crashed holder's lease | G8 |
//! | `Store` | an injected write error or full disk, a torn file, or a store-lock wait a pause of the holder (also one that crashed during the wait) or of the waiter made run out | G2 |
//! | `NoCredential`, `LoggedOut`, `ProviderMismatch`, `NotRefreshable` | the stores really held no entry / a tombstone / such an entry when read | G2 |
//!
//! What the stores held is the unfiltered content at the resolve's last read
//! of each (`ResolveNotes::seen_own`, `seen_main`), so a host that tells the
//! kernel something else than the file holds is caught. The provider's state
//! is its own token families; faults come from the fault log (`pauses`,
//! `crashes`, the requests' injected faults, `write_faults`) and the
//! `in_doubt` set the world fills when a fault hits a presentation.

use std::sync::Arc;

use rotor_kernel::{Credential, CredentialKind, Failure, Resolution};

use super::World;
use crate::endpoint::{parse_token, ServerFault};
use crate::guarantee::Guarantee;
use crate::identity_table::{self, Fields};
use crate::world::setup::PROVIDER;

/// SPEC §5 `may_copy(existing, incoming)` as the checkers state it
/// (`identity_table`, the table the explorer and the loom and shuttle models
/// judge by): deliberately not the kernel's `may_copy`, since an oracle that
/// asks the kernel is blind to the kernel's bugs.
pub(crate) fn spec_may_copy(existing: Option<&Credential>, incoming: &Credential) -> bool {
    let existing = existing.map(Fields::of).unwrap_or_default();
    identity_table::judge(&existing, &Fields::of(incoming)).allows()
}

/// What a compare-and-swap compares of an entry (kind, generation, refresh
/// token), and the token's (family, rank): for the oracle and the coverage,
/// without copying the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub tombstone: bool,
    pub oauth: bool,
    pub generation: u64,
    pub fingerprint: Option<rotor_kernel::Fingerprint>,
    pub token: Option<(u32, u32)>,
}

impl Stamp {
    pub(crate) fn of(credential: &Credential) -> Stamp {
        Stamp {
            tombstone: credential.kind == CredentialKind::LoggedOut,
            oauth: credential.kind == CredentialKind::OAuth,
            generation: credential.generation,
            fingerprint: credential.refresh_fingerprint(),
            token: credential
                .refresh
                .as_ref()
                .and_then(|r| parse_token(r.expose())),
        }
    }
}

/// The entry a resolve saw (`ResolveNotes::seen_own`, `seen_main`).
pub(crate) fn entry(seen: Option<&Arc<Credential>>) -> Option<&Credential> {
    seen.map(|credential| &**credential)
}

impl World {
    /// True when a pause of `process` (any process when `None`) overlapped
    /// `[from_ms, to_ms]`.
    pub(crate) fn paused_during(&self, process: Option<u8>, from_ms: u64, to_ms: u64) -> bool {
        self.pauses.iter().any(|&(p, start, end)| {
            process.is_none_or(|q| q == p) && start <= to_ms && end >= from_ms
        })
    }

    /// Why a refresh-lock wait of agent `index` that began at `since_ms` may
    /// run out now: `Err` when the world gives no reason (G8).
    pub(crate) fn lock_timeout_reason(&self, since_ms: u64) -> Result<String, String> {
        let now = self.now_ms;
        // A holder stalled (SIGSTOP, GC, a laptop lid): the wait legitimately
        // outlasts the budget (G8 "no steal": wait, do not take).
        if self.paused_during(None, since_ms, now) {
            return Ok("a pause stalled a holder during the wait".into());
        }
        // A call that timed out holds the lock until its deadline passes.
        let deadline = self.policy.call_deadline_ms();
        let slow_call = self.endpoint.requests.iter().any(|r| {
            matches!(r.fault, ServerFault::Timeout)
                && r.sent_at_ms <= now
                && r.sent_at_ms + deadline >= since_ms
        });
        if slow_call {
            return Ok("a holder's call ran to its deadline during the wait".into());
        }
        // On a lease backend a crashed holder's lease runs until it expires.
        if let Some(lease) = self.policy.lease().map(|l| l.lease_ms) {
            if self
                .crashes
                .iter()
                .any(|&(_, at)| at <= now && at + lease >= since_ms)
            {
                return Ok("a crashed holder's lease had not yet expired".into());
            }
        }
        let holder = self.locks.iter().find_map(|l| l.holder.as_ref());
        Err(format!(
            "waited {} ms with no stall, slow call or dead lease in the world (holder: {:?})",
            now - since_ms,
            holder.map(|h| (h.owner, h.process))
        ))
    }

    /// A live token agent `index` may use, in a store as this resolve last
    /// read it: the current token of a family the provider has not revoked,
    /// not left in doubt by a fault, not of a family older than one a login
    /// installed in main, nor (in main) of a family older than the login's
    /// the own store holds at a higher generation, in the own store or
    /// copyable into it by SPEC §5. `None` when the world has none to offer.
    fn live_token(&self, index: usize) -> Option<String> {
        let agent = &self.agents[index];
        let notes = &agent.notes;
        let own = entry(notes.seen_own.as_ref());
        // The newest family a login (rotor's or another program's) installed
        // that this agent saw in main: it supersedes every older family, even
        // one the provider still honours (a re-login, SPEC §3; G11).
        let login_seen = entry(notes.seen_main.as_ref())
            .and_then(|c| c.refresh.as_ref())
            .and_then(|r| parse_token(r.expose()))
            .map(|(family, _)| family)
            .filter(|family| self.logins.contains(family));
        // The own entry, when it holds the token of a family a login
        // installed, and its generation. Main may have lost that login since
        // the agent copied it (a crash dropped the login's write after a lost
        // fsync): main then holds a family the login replaced, at a lower
        // generation than the own entry. Copying that would move the own
        // store's generation back (G5) and write the replaced family back
        // (G11), so it is no live token for this agent (found by a fresh
        // seed, 0x85ce410e4e7a6160).
        let own_login = own
            .filter(|c| c.kind == CredentialKind::OAuth)
            .and_then(|c| Some((parse_token(c.refresh.as_ref()?.expose())?.0, c.generation)))
            .filter(|(family, _)| self.logins.contains(family));
        let mut candidates = vec![("own", own)];
        if agent.own_store != 0 {
            candidates.push(("main", entry(notes.seen_main.as_ref())));
        }
        for (name, credential) in candidates {
            let Some(c) = credential else {
                continue;
            };
            if c.kind != CredentialKind::OAuth || c.provider != PROVIDER {
                continue;
            }
            let Some((family, n)) = c.refresh.as_ref().and_then(|r| parse_token(r.expose())) else {
                continue;
            };
            let f = &self.endpoint.families[family as usize];
            let live = f.revoked.is_none() && n == f.current;
            let doubted = self.in_doubt.contains(&(family, n));
            let superseded = login_seen.is_some_and(|newest| newest > family)
                || (name == "main"
                    && own_login.is_some_and(|(login, generation)| {
                        login > family && c.generation < generation
                    }));
            let allowed = name == "own" || spec_may_copy(own, c);
            // A clock that jumped during the resolve makes a fresh token look
            // expired (or an expired one fresh) to this agent alone: a token
            // its own clock finds within the refresh margin is excused (the
            // clock-jump fault).
            let clock = self.clock(agent.process);
            let margin = self.policy.refresh_margin_ms() as i64;
            let looks_expired = c.expires_at_ms.is_none_or(|at| at - clock <= margin);
            let jumped = notes.clock_jumped && looks_expired;
            if live && !doubted && !superseded && allowed && !jumped {
                return Some(format!(
                    "{name} held r{family}.{n} (generation {}), the current token of a live family{}",
                    c.generation,
                    if name == "main" {
                        ", which SPEC §5 lets it copy"
                    } else {
                        ""
                    }
                ));
            }
        }
        None
    }

    /// Judges one finished resolve of agent `index` against the world's
    /// ground truth. `Err` names the guarantee an unjustified outcome breaks.
    pub(crate) fn judge_outcome(
        &self,
        index: usize,
        resolution: &Resolution,
    ) -> Result<(), (Guarantee, String)> {
        let failure = match resolution {
            Ok(granted) => {
                let Some((family, n)) = parse_token(granted.access.expose()) else {
                    return Err((Guarantee::G2, "returned a token never issued".into()));
                };
                let f = &self.endpoint.families[family as usize];
                return if n > f.current {
                    Err((Guarantee::G2, "returned a token never issued".into()))
                } else {
                    Ok(())
                };
            }
            Err(failure) => failure,
        };
        // Past the lease backend's limit (a lease lost under a live holder)
        // two holders overwrite each other's fences and rotations: the
        // documented limit, not a finding about outcomes.
        if self.past_lease_limit() {
            return Ok(());
        }
        let agent = &self.agents[index];
        // An agent whose lease expired under it (a pause past the lease)
        // acted on reads its lock no longer protected: on the fenced lease
        // it finds another holder's fence (in doubt), or its own fence write
        // is refused. The pause is the reason.
        if self.is_lease() && agent.notes.lost_lease {
            return Ok(());
        }
        // A torn write by another program destroyed a store this agent
        // uses: its fences, rotations and logins are gone (the torn-write
        // fault).
        let own = agent.own_store as usize;
        if self.stores[own].destroyed || self.stores[0].destroyed {
            return Ok(());
        }
        let notes = &agent.notes;
        let request = agent.call.map(|r| &self.endpoint.requests[r as usize]);
        let fault = request.map(|r| r.fault);
        let unjustified = |guarantee: Guarantee, why: String| Err((guarantee, why));
        match failure {
            Failure::NeedsReauth(_) | Failure::RotationNotStored { .. } => {
                if matches!(failure, Failure::RotationNotStored { .. }) && !notes.store_fault {
                    if let Some(why) = &notes.store_unexcused {
                        return unjustified(Guarantee::G2, format!("failed {failure}, but {why}"));
                    }
                }
                match self.live_token(index) {
                    None => Ok(()),
                    Some(live) => unjustified(
                        Guarantee::G2,
                        format!("failed {failure}, but {live}: a lost convergence"),
                    ),
                }
            }
            Failure::Superseded { .. } => match (&notes.conflict_unexcused, notes.conflict) {
                (Some(why), _) => unjustified(Guarantee::G2, format!("failed {failure}: {why}")),
                (None, true) => Ok(()),
                (None, false) => unjustified(
                    Guarantee::G2,
                    format!(
                        "failed {failure}, but no write of this resolve lost its compare-and-swap"
                    ),
                ),
            },
            Failure::Transient { .. } => match fault {
                Some(ServerFault::NotSent) => Ok(()),
                other => unjustified(
                    Guarantee::G2,
                    format!(
                        "failed {failure}, but the endpoint took the request (fault {other:?})"
                    ),
                ),
            },
            Failure::Rejected { .. } => match fault {
                Some(
                    ServerFault::Unavailable
                    | ServerFault::UnavailableJson
                    | ServerFault::RateLimited,
                ) => Ok(()),
                other => unjustified(
                    Guarantee::G2,
                    format!("failed {failure}, but the endpoint did not refuse (fault {other:?})"),
                ),
            },
            Failure::InDoubt { .. } => match fault {
                Some(
                    ServerFault::Timeout | ServerFault::LostResponse | ServerFault::Unavailable,
                ) => Ok(()),
                other => unjustified(
                    Guarantee::G7,
                    format!(
                        "failed {failure}, but its request's outcome was known (fault {other:?})"
                    ),
                ),
            },
            Failure::LockTimeout { .. } => match &notes.lock_timeout {
                Some(Ok(_)) => Ok(()),
                Some(Err(why)) => unjustified(Guarantee::G8, format!("failed {failure}: {why}")),
                None => unjustified(
                    Guarantee::G8,
                    format!("failed {failure}, but its wait never ran out"),
                ),
            },
            Failure::Store { .. } => {
                if notes.store_fault {
                    Ok(())
                } else {
                    let why = notes
                        .store_unexcused
                        .clone()
                        .unwrap_or_else(|| "no store fault hit this resolve".into());
                    unjustified(Guarantee::G2, format!("failed {failure}, but {why}"))
                }
            }
            Failure::NoCredential => {
                let held = entry(notes.seen_own.as_ref()).or(entry(notes.seen_main.as_ref()));
                match held {
                    None => Ok(()),
                    Some(c) => unjustified(
                        Guarantee::G2,
                        format!(
                            "failed {failure}, but the stores held a {:?} entry (generation {})",
                            c.kind, c.generation
                        ),
                    ),
                }
            }
            Failure::LoggedOut { .. } => {
                let tombstone = [notes.seen_own.as_ref(), notes.seen_main.as_ref()]
                    .into_iter()
                    .any(|c| entry(c).is_some_and(|c| c.kind == CredentialKind::LoggedOut));
                if tombstone {
                    Ok(())
                } else {
                    unjustified(
                        Guarantee::G2,
                        format!("failed {failure}, but no store it read held a tombstone"),
                    )
                }
            }
            other => {
                let held = [notes.seen_own.as_ref(), notes.seen_main.as_ref()]
                    .into_iter()
                    .any(|c| {
                        entry(c).is_some_and(|c| {
                            c.provider != PROVIDER
                                || !matches!(
                                    c.kind,
                                    CredentialKind::OAuth | CredentialKind::LoggedOut
                                )
                        })
                    });
                if held {
                    Ok(())
                } else {
                    unjustified(
                        Guarantee::G2,
                        format!("failed {other}, but no store held such an entry"),
                    )
                }
            }
        }
    }
}
