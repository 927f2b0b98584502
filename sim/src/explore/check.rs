//! The explorer's checkers, each named for its guarantee (SPEC §1). They
//! mirror the simulator's (`world/check.rs`) on the explorer's abstract world,
//! where no lost fsync, torn write or clock skew exists, so no excuse for a
//! double presentation is needed on the advisory backend:
//!
//! | when | checks |
//! | --- | --- |
//! | after every rotor store write | G5 (generation never decreases), G3 (a copy never replaces an account id or tenant), G11 (a family ended by a re-login is never written back into main) |
//! | every step | G4 (the usage writer's update survives in main); no read-modify-write saves a stale copy (G4); the usage writer never takes a generation back (G5) |
//! | a call is sent | G7 (main holds an in-doubt fence for the presented token), G2 (calls per resolve bounded; no call while a usable newer token of the family could be adopted) |
//! | the provider sees a request | G1 (no token value presented twice unless its family was already revoked), G7 (not after an unknown outcome) |
//! | a lock is taken / released | G8 (never two holders on the advisory backend; never a release while the holder's call can be in flight), G6 (the rotation is in its store at the release), G1 (the host's reported mirror is in main before the release, the order G1 rests on) |
//! | a resolve ends | G8 (the lock is not held past `Done`), G3 (an agent bound to one account never gets another's token); the outcome oracle: `InDoubt` only after a lost response (G7), `Transient` only after a call not sent (G2), `Superseded` only after a re-login (G2) |
//! | a crash | G6 (every store parses and round-trips) |
//! | no step enabled | deadlock (reported as liveness) unless every agent is done |
//!
//! On the lease backend a double presentation after a lease expired under a
//! live holder is the documented limit: an expected finding.

use rotor_kernel::{Credential, Failure, Mutation, Resolution, StoreDoc};

use crate::identity_table::{self, Fields};
use serde::{Deserialize, Serialize};

use super::state::{parse, CallFault, State, PROFILE};
use super::Ctx;
use crate::guarantee::Guarantee;

/// What a checker found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// The guarantee.
    pub guarantee: Guarantee,
    /// For a person.
    pub detail: String,
    /// An expected finding (the lease limit), not a failure.
    pub expected: bool,
}

impl Found {
    pub(crate) fn new(guarantee: Guarantee, detail: impl Into<String>) -> Self {
        Found {
            guarantee,
            detail: detail.into(),
            expected: false,
        }
    }

    pub(crate) fn expected(guarantee: Guarantee, detail: impl Into<String>) -> Self {
        Found {
            expected: true,
            ..Found::new(guarantee, detail)
        }
    }
}

impl State {
    /// After rotor wrote store `s` (G3, G5, G11).
    pub(crate) fn check_write(
        &self,
        a: usize,
        s: usize,
        before: Option<&Credential>,
        mutation: &Mutation,
        found: &mut Vec<Found>,
    ) {
        let Some(after) = self.stores[s].profiles.get(PROFILE) else {
            return;
        };
        let who = &self.agents[a].name;
        if let Some(old) = before {
            if after.generation < old.generation {
                found.push(Found::new(
                    Guarantee::G5,
                    format!(
                        "store {s}: generation went back from {} to {} ({who})",
                        old.generation, after.generation
                    ),
                ));
            }
            let login = matches!(mutation, Mutation::Login { .. } | Mutation::Logout { .. });
            if old.is_oauth() && after.is_oauth() && !login {
                // Every write that replaces a credential is judged by the
                // checkers' own table (SPEC §5), not the kernel's gate.
                let (o, n) = (Fields::of(old), Fields::of(after));
                let verdict = identity_table::judge(&o, &n);
                if !verdict.allows() {
                    found.push(Found::new(
                        Guarantee::G3,
                        format!("store {s}: {who}'s write replaced {o} with {n}: {verdict}"),
                    ));
                }
            }
        }
        let family = after.refresh.as_ref().and_then(|r| parse(r.expose()));
        if let Some((f, _)) = family.filter(|_| s == 0 && after.is_oauth()) {
            if f < self.main_banned_below {
                found.push(Found::new(
                    Guarantee::G11,
                    format!("main: {who} wrote family {f} back after a re-login"),
                ));
            }
        }
    }

    /// When agent `a` releases the refresh lock (G8, G1's release order).
    pub(crate) fn check_release(&self, a: usize, found: &mut Vec<Found>) {
        let agent = &self.agents[a];
        if let Some(c) = agent.call {
            let call = &self.calls[c as usize];
            if !call.arrived && call.fault != super::state::CallFault::NotSent {
                found.push(Found::new(
                    Guarantee::G8,
                    format!(
                        "{} released the refresh lock while its call #{c} was still in flight",
                        agent.name
                    ),
                ));
            }
        }
        if let Some((s, generation)) = agent.committed {
            let held = self.generation(s as usize);
            if held < generation as i64 {
                found.push(Found::new(
                    Guarantee::G6,
                    format!("{} released the lock while store {s} no longer held its rotation (generation {generation}); it holds {held}", agent.name),
                ));
            }
        }
        if let Some(generation) = agent.mirrored {
            let in_main = self.generation(0);
            if in_main < generation as i64 {
                found.push(Found::new(
                    Guarantee::G1,
                    format!("{} released the refresh lock before main held its rotation (generation {generation}); main holds {in_main}", agent.name),
                ));
            }
        }
    }

    /// When agent `a` sends a call presenting `subject` (G7, G2).
    pub(crate) fn check_call(
        &self,
        ctx: &Ctx<'_>,
        a: usize,
        subject: &Credential,
        found: &mut Vec<Found>,
    ) {
        let agent = &self.agents[a];
        // The explorer's worlds have no grace window, so no grace retry.
        if let Some(excess) = agent.budget.excess(&agent.name, ctx.policy, false) {
            found.push(Found::new(Guarantee::G2, excess));
        }
        let Some(refresh) = subject.refresh.as_ref() else {
            return;
        };
        let fp = refresh.fingerprint();
        let fenced = self.stores[0]
            .fences
            .get(PROFILE)
            .is_some_and(|list| list.iter().any(|f| f.refresh_fp == fp));
        if !fenced && !self.lease_lost_live {
            found.push(Found::new(
                Guarantee::G7,
                format!(
                    "{} presented {refresh} without an in-doubt fence in main",
                    agent.name
                ),
            ));
        }
        let Some((family, _)) = parse(refresh.expose()) else {
            return;
        };
        let own = agent.own_store as usize;
        let own_identity = self.stores[own]
            .profiles
            .get(PROFILE)
            .map(Fields::of)
            .unwrap_or_default();
        let now = self.now_ms();
        let margin_ms = ctx.policy.refresh_margin_ms();
        for s in if own == 0 { vec![0] } else { vec![own, 0] } {
            let Some(c) = self.stores[s].profiles.get(PROFILE) else {
                continue;
            };
            let same_family = c
                .refresh
                .as_ref()
                .and_then(|r| parse(r.expose()))
                .is_some_and(|(f, _)| f == family);
            let newer = c.is_oauth()
                && c.generation > subject.generation
                && same_family
                && c.is_usable(now, margin_ms)
                && (s == own || identity_table::judge(&own_identity, &Fields::of(c)).allows());
            if newer && !self.lease_lost_live {
                found.push(Found::new(
                    Guarantee::G2,
                    format!("{} called the endpoint with generation {} although store {s} held a usable generation {} it may adopt", agent.name, subject.generation, c.generation),
                ));
            }
        }
    }

    /// When agent `a`'s resolve ends (G8, G3).
    pub(crate) fn check_done(&mut self, a: usize, resolution: &Resolution, found: &mut Vec<Found>) {
        let name = self.agents[a].name.clone();
        if self.agents[a].holds_lock
            && self.locks[self.agents[a].slot as usize].contains(&(a as u8))
        {
            found.push(Found::new(
                Guarantee::G8,
                format!("{name} finished while holding the refresh lock"),
            ));
        }
        let granted = match resolution {
            Ok(granted) => granted,
            Err(failure) => return self.judge_failure(a, failure, found),
        };
        let Some((family, _)) = parse(granted.access.expose()) else {
            return;
        };
        let Some(account) = self.families.get(family as usize).map(|f| f.account) else {
            return;
        };
        match self.agents[a].binding {
            None => self.agents[a].binding = Some(account),
            Some(bound) if bound != account => found.push(Found::new(
                Guarantee::G3,
                format!("{name}, bound to account {bound}, received a token of account {account}"),
            )),
            Some(_) => {}
        }
    }

    /// The outcome oracle, where the explorer's state allows (the
    /// simulator's is `world/oracle.rs`): a failure judged against the
    /// world's record of the agent's own call and of the actors, never
    /// against the kernel's rules. `InDoubt` needs a call whose response was
    /// lost (G7); `Transient` a call that was not sent (G2); `Superseded` a
    /// re-login, the one writer in these worlds that replaces an entry
    /// another agent read (G2). `NeedsReauth` is not judged here: the state
    /// keeps neither what each resolve read nor when the re-login happened,
    /// so a live token seen at `Done` may have come after the decision (the
    /// simulator judges it).
    fn judge_failure(&self, a: usize, failure: &Failure, found: &mut Vec<Found>) {
        if self.lease_lost_live {
            return; // the lease limit: anything goes
        }
        let agent = &self.agents[a];
        let fault = agent.call.map(|c| self.calls[c as usize].fault);
        let (guarantee, why) = match failure {
            Failure::InDoubt { .. } if fault != Some(CallFault::Lost) => (
                Guarantee::G7,
                format!("its call's outcome was known (fault {fault:?})"),
            ),
            Failure::Transient { .. } if fault != Some(CallFault::NotSent) => (
                Guarantee::G2,
                format!("its call was sent (fault {fault:?})"),
            ),
            // A re-login bans the families before its own (`main_banned_below`).
            Failure::Superseded { .. } if self.main_banned_below == 0 => (
                Guarantee::G2,
                "no login replaced the entry (the only writer that can)".to_string(),
            ),
            _ => return,
        };
        found.push(Found::new(
            guarantee,
            format!("{} failed {failure}, but {why}", agent.name),
        ));
    }

    /// After a crash (G6): every store parses and round-trips.
    pub(crate) fn check_parse(&self, found: &mut Vec<Found>) {
        for (s, doc) in self.stores.iter().enumerate() {
            match StoreDoc::from_json(&doc.to_json()) {
                Ok(back) if back == *doc => {}
                _ => found.push(Found::new(
                    Guarantee::G6,
                    format!("store {s} does not parse back after a crash"),
                )),
            }
        }
    }
}
