//! The checkers. Each names the guarantee it checks (SPEC §1) and runs at the
//! moment the guarantee could first be seen broken:
//!
//! | when | checks |
//! | --- | --- |
//! | after every store write | G4 (a read-modify-write never writes back a copy older than the store), G5 (generation never decreases), G3 (no account id or tenant replaced by a copy), G11 (no banned family written back) |
//! | when a call is sent | G7 (the presented token is fenced, durably, everywhere it is stored), G2 (no call while a usable newer token of the family was there to adopt; calls per resolve bounded) |
//! | when the provider sees a request | G1 (no token value presented twice outside the grace window), G2, G7 |
//! | when a lock is granted / released | G8 (never two holders on the advisory backend; never a release while the holder's call is in flight), G6 (the rotation is durable before the release) |
//! | when a resolve returns a token | G3 (an agent bound to one account never gets another's) |
//! | when a resolve ends | the outcome oracle (`oracle.rs`): a failure the world's ground truth does not justify is G2 (lost convergence), G7 (`InDoubt`) or G8 (`LockTimeout`) |
//! | after the liveness phase | every agent finished (liveness); each that got a token converged on the newest one (G2) |
//!
//! A double presentation is excused only when an injected fault made it
//! unavoidable per the spec: a crash that dropped a lost-fsync write (the
//! fence or rotation the host was told was durable), or a grace-window retry
//! that a stall (pause) or a clock jump carried past the provider's window; or when the family was already dead at the
//! provider (logged out, or ended by a single-session login) when presented
//! again, so that the presentation could exchange or revoke nothing. With the lease backend, a double presentation
//! after a lease expired under a live holder is the documented limit
//! (`ARCHITECTURE.md, "The lease backend's limit"`): recorded as an expected finding, not a failure.

use rotor_kernel::{may_copy, Credential, Granted, Identity, Mutation};

use super::World;
use crate::config::ActorKind;
use crate::endpoint::{parse_token, ServerFault};
use crate::guarantee::Guarantee;
use crate::store::Content;
use crate::trace::ServerResult;
use crate::world::setup::PROFILE;

fn family_of(credential: &Credential) -> Option<(u32, u32)> {
    credential
        .refresh
        .as_ref()
        .and_then(|r| parse_token(r.expose()))
}

impl World {
    /// After rotor wrote store `s` (G3, G4, G5, G11).
    pub(crate) fn check_after_write(
        &mut self,
        s: usize,
        before: Option<&Credential>,
        mutation: &Mutation,
    ) {
        let login = matches!(mutation, Mutation::Login { .. } | Mutation::Logout { .. });
        self.check_store(s, before, login);
    }

    /// After a background actor wrote store `s` (G4, G5).
    pub(crate) fn check_after_actor_write(&mut self, s: usize, before: Option<&Credential>) {
        self.check_store(s, before, false);
    }

    fn check_store(&mut self, s: usize, before: Option<&Credential>, login: bool) {
        let Some(after) = self.stores[s].doc().and_then(|d| d.profiles.get(PROFILE)) else {
            return;
        };
        // Read what the checks need without copying the credential.
        let generation = after.generation as i64;
        let new_id = Identity::of(after);
        let new_oauth = after.is_oauth();
        let family = family_of(after).map(|(family, _)| family);
        let seen = self.stores[s].generation_seen;
        self.stores[s].generation_seen = seen.max(generation);
        if generation < seen {
            let name = self.store_names[s].clone();
            self.violate(Guarantee::G5, || {
                format!("{name}: generation went back from {seen} to {generation}")
            });
        }
        if let Some(old) = before.filter(|c| c.is_oauth() && new_oauth && !login) {
            let old_id = Identity::of(old);
            let account_lost =
                old_id.account_id.is_some() && old_id.account_id != new_id.account_id;
            let tenant_lost = old_id.tenant.is_some() && old_id.tenant != new_id.tenant;
            if account_lost || tenant_lost {
                let name = self.store_names[s].clone();
                self.violate(Guarantee::G3, || {
                    format!(
                        "{name}: a copy replaced account {:?} / tenant {:?} with {:?} / {:?}",
                        old_id.account_id, old_id.tenant, new_id.account_id, new_id.tenant
                    )
                });
            }
        }
        if let Some(family) = family.filter(|f| new_oauth && *f < self.stores[s].banned_below) {
            let name = self.store_names[s].clone();
            self.violate(Guarantee::G11, || {
                format!("{name}: family {family} written back after a logout or a new login")
            });
        }
    }

    /// When a refresh lock is granted (G8, advisory backend).
    pub(crate) fn check_lock_granted(&mut self, index: u16) {
        if self.is_lease() {
            return;
        }
        let holders: Vec<_> = self
            .agents
            .iter()
            .filter(|a| a.holds_lock)
            .map(|a| a.who)
            .collect();
        if holders.len() > 1 {
            let who = self.agents[index as usize].who;
            self.violate(Guarantee::G8, || {
                format!("{who} took the refresh lock while {holders:?} also hold it")
            });
        }
    }

    /// Before a read-modify-write writes back what it read at `read_version`
    /// (G4): the store must not have changed since, or this write loses the
    /// change.
    pub(crate) fn check_stale_write(&mut self, s: usize, read_version: u64, writer: ActorKind) {
        if self.stores[s].version != read_version {
            let name = self.store_names[s].clone();
            let lost = self.stores[s].version - read_version;
            self.violate(Guarantee::G4, || {
                format!(
                    "{name}: the {} writer saved the copy it read over {lost} concurrent write(s): a lost update",
                    writer.name()
                )
            });
        }
    }

    /// When an agent releases the refresh lock (G8, G6).
    pub(crate) fn check_release(&mut self, index: u16) {
        let agent = &self.agents[index as usize];
        let who = agent.who;
        let committed = agent.notes.committed;
        let mirrored = agent.notes.mirrored;
        // A crash that reverted main's lost-fsync write after the mirror
        // landed undid the mirror: the holder mirrored, then released, in
        // SPEC order; the fault lost it (fresh seed 0x81c2fd1e8c42cd56: the
        // mirror's own fsync was lost, another program rewrote main, and
        // that program's crash took main back past both writes).
        let mirror_reverted = agent
            .notes
            .mirrored_at_ms
            .zip(self.main_reverted_at_ms)
            .is_some_and(|(mirrored_at, reverted_at)| reverted_at >= mirrored_at);
        if let Some(request) = agent.call {
            if !self.endpoint.requests[request as usize].processed {
                self.violate(Guarantee::G8, || {
                    format!("{who} released the refresh lock while its request #{request} was still in flight")
                });
            }
        }
        // SPEC §3 step 8: mirror, *then* release. A holder that releases
        // before main holds its rotation lets the next holder read the
        // consumed token from main; rotor's fences still stop that holder,
        // but the order is what G1 rests on (bugs.md B6).
        if let Some(generation) = mirrored.filter(|_| !self.stores[0].destroyed && !mirror_reverted)
        {
            let in_main = self.stores[0]
                .doc()
                .and_then(|d| d.profiles.get(PROFILE))
                .map(|c| c.generation);
            if in_main.is_none_or(|g| g < generation) {
                self.violate(Guarantee::G1, || {
                    format!("{who} released the refresh lock before main held its rotation (generation {generation}); main holds {in_main:?}")
                });
            }
        }
        if let Some((s, generation, true)) =
            committed.filter(|(s, _, _)| !self.stores[*s as usize].destroyed)
        {
            let durable = match self.stores[s as usize].durable() {
                Content::Doc(doc) => doc.profiles.get(PROFILE).map(|c| c.generation),
                Content::Torn(_) => None,
            };
            if durable.is_none_or(|g| g < generation) {
                let name = self.store_names[s as usize].clone();
                self.violate(Guarantee::G6, || {
                    format!("{who} released the lock before generation {generation} was durable in {name}")
                });
            }
        }
    }

    /// When an agent sends a call (G7, G2).
    pub(crate) fn check_call(&mut self, index: u16, subject: &Credential) {
        let i = index as usize;
        let who = self.agents[i].who;
        let notes = &self.agents[i].notes;
        let clock_jumped = notes.clock_jumped;
        // The bound counts per presented token (a successor after a reuse
        // has its own budget: fresh seed 0x81c2fd1e8c55a891).
        if let Some(excess) = notes.budget.excess(who, &self.policy, notes.grace_retry) {
            self.violate(Guarantee::G2, || excess);
        }
        let Some(refresh) = subject.refresh.as_ref() else {
            return;
        };
        // Every participant reads main under the lock, so main must carry the
        // fence (the kernel fences main for every sub-agent call, and a main
        // agent's own store is main); a lost fsync is the one excuse for a
        // fence that is visible but not durable.
        let fingerprint = refresh.fingerprint();
        let fenced = |doc: &rotor_kernel::StoreDoc| {
            doc.fences
                .get(PROFILE)
                .is_some_and(|list| list.iter().any(|f| f.refresh_fp == fingerprint))
        };
        let visible = self.stores[0].doc().is_some_and(fenced);
        let durable = match self.stores[0].durable() {
            Content::Doc(doc) => fenced(doc),
            Content::Torn(_) => false,
        };
        let lost_fsync = self.stores[0].unsynced_by.is_some();
        // A torn write by another program destroys whatever main held.
        let torn = self.stores[0].destroyed;
        // Two holders after a lease expired under a live one overwrite and
        // clear each other's fences: that is the lease limit, not G7.
        let lease_limit = self.past_lease_limit();
        if !torn && !lease_limit && (!visible || (!durable && !lost_fsync)) {
            self.violate(Guarantee::G7, || {
                format!(
                    "{who} presented {refresh} without a durable in-doubt fence in the main store"
                )
            });
        }
        let own = self.agents[i].own_store as usize;
        let stores: &[usize] = if own == 0 { &[0] } else { &[own, 0] };
        if clock_jumped || self.lease_lost_live {
            return;
        }
        let Some((family, _)) = family_of(subject) else {
            return;
        };
        let now = self.clock(self.agents[i].process);
        let margin_ms = self.policy.refresh_margin_ms();
        let own_identity = self.stores[own]
            .doc()
            .and_then(|doc| doc.profiles.get(PROFILE))
            .map(Identity::of)
            .unwrap_or_default();
        for &s in stores {
            let Some(candidate) = self.stores[s].doc().and_then(|d| d.profiles.get(PROFILE)) else {
                continue;
            };
            let newer = candidate.is_oauth()
                && candidate.generation > subject.generation
                && family_of(candidate).is_some_and(|(f, _)| f == family)
                && candidate.is_usable(now, margin_ms)
                && (s == own || may_copy(&own_identity, &Identity::of(candidate)));
            if newer {
                let name = self.store_names[s].clone();
                let generation = candidate.generation;
                self.violate(Guarantee::G2, || {
                    format!(
                        "{who} called the endpoint with generation {} although {name} held a usable generation {generation} of the same family it may adopt",
                        subject.generation
                    )
                });
            }
        }
    }

    /// When the provider handles a request (G1, G2, G7).
    pub(crate) fn check_presentation(&mut self, request: u32, result: ServerResult, before: u16) {
        if result == ServerResult::Refused || before == 0 {
            return;
        }
        let r = self.endpoint.requests[request as usize].clone();
        let family = &self.endpoint.families[r.family as usize];
        let rank = r.n as usize;
        let consumed_at = family.consumed_at_ms[rank];
        let first = family.first_request[rank];
        let within_grace = self.endpoint.grace_ms.is_some_and(|grace| {
            consumed_at != u64::MAX && self.now_ms.saturating_sub(consumed_at) <= grace
        });
        if within_grace {
            return;
        }
        // Requests can overtake each other on the wire: the earlier of the
        // two sends is where the double presentation began.
        let first_at = if first == u32::MAX {
            0
        } else {
            self.endpoint.requests[first as usize]
                .sent_at_ms
                .min(r.sent_at_ms)
        };
        let reverted = self.reverted_at_ms.is_some_and(|at| at >= first_at);
        // A family already revoked (logged out, ended by a single-session
        // login, or revoked by an earlier reuse, itself judged when it
        // happened) is dead at the provider: presenting its token again is
        // refused, exchanges nothing and revokes nothing that was not already.
        let dead = result == ServerResult::Revoked;
        // A grace retry is decided inside the window by the retrier's clock;
        // a stall or a clock jump can carry it past the provider's window.
        let stalled_retry = r.attempt > 0 && (r.stalled || self.clock_jumped_at_ms.is_some());
        // Another program's torn write emptied or corrupted main: the fences
        // and rotations every participant relies on are gone.
        let destroyed = self.stores[0].destroyed;
        if reverted || stalled_retry || dead || destroyed {
            // Ground truth for the liveness check: the provider revoked the
            // family for this excused reuse (a strict provider's answer to a
            // second presentation), so nothing of it survives anywhere.
            if result == ServerResult::Reused {
                self.revoked_by_excused_reuse.push(r.family);
            }
            return;
        }
        let who = self.agents[r.agent as usize].who;
        let token = format!("r{}.{}", r.family, r.n);
        let detail = || {
            let first_text = if first == u32::MAX {
                "before the run (a consumed token)".to_string()
            } else {
                format!("by request #{first}")
            };
            format!("refresh token {token} presented again by {who} (request #{request}); first presented {first_text}")
        };
        if self.past_lease_limit() {
            self.expected_finding(Guarantee::G1, detail);
            return;
        }
        self.violate(Guarantee::G1, detail);
        self.violate(Guarantee::G2, || {
            format!("request #{request} by {who} could not rotate anything: {token} was already presented")
        });
        if first != u32::MAX {
            let earlier = &self.endpoint.requests[first as usize];
            let unknown = matches!(
                earlier.fault,
                ServerFault::Timeout | ServerFault::LostResponse
            ) || !earlier.replied;
            if unknown {
                self.violate(Guarantee::G7, || {
                    format!("request #{first} had an unknown outcome, yet {who} presented {token} again")
                });
            }
        }
    }

    /// When a resolve returns a token (G3).
    pub(crate) fn check_grant(&mut self, index: u16, granted: &Granted) {
        let Some((family, _)) = parse_token(granted.access.expose()) else {
            return;
        };
        let account = self.endpoint.families[family as usize].account;
        let agent = &mut self.agents[index as usize];
        match agent.binding {
            None => agent.binding = Some(account),
            Some(bound) if bound != account => {
                let who = agent.who;
                self.violate(Guarantee::G3, || {
                    format!(
                        "{who}, bound to account {bound}, received a token of account {account}"
                    )
                });
            }
            Some(_) => {}
        }
    }

    /// After the liveness phase, for an agent that got a token (G2): it
    /// converged on the newest token, the current one of a family the
    /// provider has not revoked and that no later login in main replaced
    /// (when SPEC §5 lets this agent copy the login's credential). Every
    /// token issued before the phase had expired when it asked, so a token it
    /// got is one it refreshed or adopted in the phase.
    fn check_converged(&mut self, index: usize) {
        let who = self.agents[index].who;
        let Some((family, n, cached)) = self.agents[index].granted else {
            return;
        };
        // A token minted by a process whose clock had jumped forward carries
        // an expiry that is still ahead once the clocks are healed: `Cached`
        // on it is the protocol's fast path, not a lost convergence (the
        // clock-jump fault).
        if cached && self.clock_jumped_at_ms.is_some() {
            return;
        }
        let f = &self.endpoint.families[family as usize];
        let current = f.current;
        // The provider revoked the family for a login or a logout whose
        // write then failed (a single-session login, a sign-out): no store
        // holds anything newer or a tombstone, so a token of the revoked
        // family that is still unexpired by its expiry (minted under a
        // jumped clock) is the best the world has (found by fresh seeds,
        // 0x413484ce2961e6ff and 0x413484ce297e0bd4). The same holds for a
        // family the provider revoked for a reuse whose double presentation
        // a fault excused (`check_presentation`): a crash dropped the
        // lost-fsync fence of a call still on the wire, a peer presented the
        // token again, and the first call arrived late (fresh seed
        // 0xfd8d11c648409522). A reuse no fault excuses is G1 and G2 when
        // the provider sees it, and is not recorded here.
        let revoked_for_nothing = (self.revoked_unstored.contains(&family)
            || self.revoked_by_excused_reuse.contains(&family))
            && !self.logged_out
            && self
                .logins
                .iter()
                .filter(|&&login| login > family)
                .all(|login| self.lost_logins.contains(login));
        let why = if f.revoked.is_some() && !revoked_for_nothing {
            Some(format!(
                "ended with a{family}.{n}, of a family the provider revoked"
            ))
        } else if n < current && self.clock_jumped_at_ms.is_none() {
            // (After a clock jump, tokens minted by the jumped clock expire
            // at instants the healed clocks disagree on by their skew: one
            // process adopts a token another already finds too old to use
            // and refreshes; the clock-jump fault.)
            Some(format!(
                "ended with a{family}.{n}, not the newest token a{family}.{current}: another rotation followed where one sufficed"
            ))
        } else if self.stores[0].destroyed {
            // A torn write emptied main: the login that followed started
            // main's generations afresh, below the copies sub-agent stores
            // still hold, so nothing in the world orders them (the torn-write
            // fault).
            None
        } else {
            let own = self.agents[index].own_store as usize;
            let own_entry = self.stores[own].doc().and_then(|d| d.profiles.get(PROFILE));
            let main_entry = self.stores[0].doc().and_then(|d| d.profiles.get(PROFILE));
            main_entry
                .and_then(|m| {
                    let (g, _) = family_of(m)?;
                    let newer_login = g > family
                        && self.logins.contains(&g)
                        && self.endpoint.families[g as usize].revoked.is_none()
                        && super::oracle::spec_may_copy(own_entry, m);
                    newer_login.then_some(g)
                })
                .map(|g| {
                    format!("ended on family {family} although main holds family {g}, which a later login installed and it may copy")
                })
        };
        if let Some(why) = why {
            self.violate(Guarantee::G2, || {
                format!("{who} with faults off did not converge: {why}")
            });
        }
    }

    /// After the liveness phase: every agent finished, and each failure was
    /// judged excusable when it happened.
    pub(crate) fn check_liveness(&mut self) {
        for index in 0..self.agents.len() {
            let who = self.agents[index].who;
            match self.agents[index].liveness_result.clone() {
                None => {
                    let bound = self.config.liveness_steps_max;
                    self.violate(Guarantee::Liveness, || {
                        format!("{who} did not finish within {bound} steps with faults off")
                    });
                }
                Some(Ok(())) => self.check_converged(index),
                Some(Err((guarantee, reason))) => {
                    self.violate(guarantee, || format!("{who} with faults off: {reason}"));
                }
            }
        }
    }
}
