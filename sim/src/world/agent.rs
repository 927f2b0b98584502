//! How the simulated host performs one agent's effects.
//!
//! The host decides nothing: reads return what the store holds, writes are
//! applied with the kernel's `StoreDoc::apply` under the store lock, the
//! endpoint's errors are handed to the kernel to classify. What the host does
//! decide (when to lock, when to report a timeout) goes through
//! [`crate::hooks::HostHooks`].

use rotor_kernel::{
    Effect, EffectId, Failure, Input, LockFailure, Mutation, Outcome, ReauthReason, Resolution,
    Resolver, Source, StoreFault, StoreRef, WriteOutcome,
};

use super::{Ev, ResolveNotes, Waiting, World};
use crate::coverage::Branch;
use crate::endpoint::{endpoint_error, parse_token, Request, ServerFault};
use crate::hooks::ReadContext;
use crate::store::{lock_fault, Content, Owner};
use crate::trace::{DoneKind, ReplyKind, ServerResult, What, WriteKind, WriteResult};
use crate::world::oracle::{entry, Stamp};
use crate::world::setup::{reported_identity, PROFILE};

/// The trace's name for a mutation.
pub(crate) fn write_kind(mutation: &Mutation) -> WriteKind {
    match mutation {
        Mutation::Adopt { .. } => WriteKind::Adopt,
        Mutation::PutFence { .. } => WriteKind::PutFence,
        Mutation::Commit { .. } => WriteKind::Commit,
        Mutation::Mirror { .. } => WriteKind::Mirror,
        Mutation::SettleFence { .. } => WriteKind::SettleFence,
        Mutation::ClearFence { .. } => WriteKind::ClearFence,
        Mutation::MarkNeedsReauth { .. } => WriteKind::MarkNeedsReauth,
        Mutation::Login { .. } => WriteKind::Login,
        Mutation::Logout { .. } => WriteKind::Logout,
    }
}

/// The trace's name for a write's result.
pub(crate) fn write_result(result: &Result<WriteOutcome, StoreFault>) -> WriteResult {
    match result {
        Ok(WriteOutcome::Applied) => WriteResult::Applied,
        Ok(WriteOutcome::MirrorRefused(_)) => WriteResult::MirrorRefused,
        Ok(WriteOutcome::Conflict(_)) => WriteResult::Conflict,
        Err(fault) => match fault.kind {
            rotor_kernel::StoreFaultKind::Corrupt => WriteResult::Corrupt,
            rotor_kernel::StoreFaultKind::LockTimeout => WriteResult::LockTimeout,
            _ => WriteResult::Io,
        },
    }
}

/// The trace's name for a resolution.
pub(crate) fn done_kind(resolution: &Resolution) -> DoneKind {
    match resolution {
        Ok(granted) => match granted.outcome {
            Outcome::Cached => DoneKind::Cached,
            Outcome::Adopted { from: Source::Main } => DoneKind::AdoptedMain,
            Outcome::Adopted { from: Source::Peer } => DoneKind::AdoptedPeer,
            Outcome::Refreshed => DoneKind::Refreshed,
        },
        Err(failure) => match failure {
            Failure::NeedsReauth(ReauthReason::InDoubt { .. }) => DoneKind::FenceNeedsReauth,
            Failure::NeedsReauth(ReauthReason::TokenRefused { .. }) => DoneKind::RefusedNeedsReauth,
            Failure::NeedsReauth(_) => DoneKind::MarkedNeedsReauth,
            Failure::InDoubt { .. } => DoneKind::InDoubt,
            Failure::Transient { .. } => DoneKind::Transient,
            Failure::Rejected { .. } => DoneKind::Rejected,
            Failure::LockTimeout { .. } => DoneKind::LockTimeout,
            Failure::Superseded { .. } => DoneKind::Superseded,
            Failure::Store { .. } => DoneKind::Store,
            Failure::RotationNotStored { .. } => DoneKind::RotationNotStored,
            Failure::LoggedOut { .. } => DoneKind::LoggedOut,
            _ => DoneKind::Unavailable,
        },
    }
}

impl World {
    pub(crate) fn store_index(&self, agent: u16, store: StoreRef) -> usize {
        match store {
            StoreRef::Own => self.agents[agent as usize].own_store as usize,
            StoreRef::Main => 0,
        }
    }

    pub(super) fn on_wake(&mut self, index: u16, epoch: u32) {
        let i = index as usize;
        let process = self.agents[i].process;
        let agent = &self.agents[i];
        if agent.epoch != epoch
            || agent.resolver.is_some()
            || agent.requests_left == 0
            || self.processes[process as usize].crashed
        {
            return;
        }
        let now = self.clock(process);
        let agent = &mut self.agents[i];
        agent.requests_left -= 1;
        agent.call = None;
        agent.notes = ResolveNotes {
            in_liveness: self.liveness,
            ..ResolveNotes::default()
        };
        agent.resolver = Some(Resolver::new(
            agent.request.clone(),
            self.policy.clone(),
            now,
        ));
        let who = agent.who;
        self.record(What::Start { agent: who });
        self.next_effect(index);
    }

    /// Polls the resolver; schedules the effect after a host delay, or ends
    /// the resolve.
    fn next_effect(&mut self, index: u16) {
        let i = index as usize;
        // A running agent always has a resolver; it has an effect after
        // `new` and after every accepted `handle`.
        let effect = self.agents[i]
            .resolver
            .as_mut()
            .and_then(Resolver::poll_effect)
            .expect("bug: a running resolver has no effect");
        if let Effect::Done(resolution) = effect {
            self.on_done(index, resolution);
            return;
        }
        self.agents[i].effect = Some(effect);
        let delay = self.host_delay();
        let epoch = self.agents[i].epoch;
        self.schedule(
            delay,
            Ev::Effect {
                agent: index,
                epoch,
            },
        );
    }

    /// Hands a completion to the kernel.
    pub(crate) fn deliver(&mut self, index: u16, input: Input) {
        let i = index as usize;
        let now = self.clock(self.agents[i].process);
        if let Some(resolver) = self.agents[i].resolver.as_mut() {
            if let Err(misuse) = resolver.handle(input, now) {
                panic!("bug: the simulated host broke the kernel's contract: {misuse}");
            }
        }
        self.next_effect(index);
    }

    pub(super) fn on_effect(&mut self, index: u16, epoch: u32) {
        let i = index as usize;
        if self.agents[i].epoch != epoch {
            return;
        }
        let Some(effect) = self.agents[i].effect.take() else {
            return;
        };
        match effect {
            Effect::ReadStore { id, store } => self.agent_read(index, id, store),
            Effect::WriteStore { .. } => self.agent_write(index, effect),
            Effect::AcquireLock { .. } => self.agent_acquire(index, effect),
            Effect::CallEndpoint {
                id,
                credential,
                deadline_ms,
            } => self.agent_call(index, id, credential, deadline_ms),
            Effect::ReleaseLock { id, .. } => self.agent_release(index, id),
            Effect::Done(_) => unreachable!("Done is handled when polled"),
        }
    }

    fn agent_read(&mut self, index: u16, id: EffectId, store: StoreRef) {
        let i = index as usize;
        let s = self.store_index(index, store);
        let result = self.stores[s].read(PROFILE, &self.store_names[s]);
        if let Some(twin) = self.twin.as_mut() {
            // The shipped fs store code reads the same contents (`twin.rs`).
            if let Some((guarantee, detail)) = twin.check_read(s, &self.stores[s], &result) {
                self.violate(guarantee, || detail);
            }
        }
        // The oracle judges the outcome against what the file held, not
        // against what the host told the kernel (`oracle.rs`): the entry as
        // read, before the hooks filter it (a torn file holds none). Shared
        // with the view, not a hold on the whole document, which would make
        // the next write of the store copy it.
        let seen = result
            .as_ref()
            .ok()
            .and_then(|view| view.credential.clone());
        let own_store = self.agents[i].own_store as usize;
        let notes = &mut self.agents[i].notes;
        if s == 0 {
            notes.seen_main = seen.clone();
        }
        if s == own_store {
            notes.seen_own = seen;
        }
        if result.is_err() && matches!(self.stores[s].visible, Content::Torn(_)) {
            notes.store_fault = true; // a torn write's corrupt file
        }
        let own_store = self.agents[i].own_store as usize;
        let result = result.map(|view| {
            let own = self.stores[own_store]
                .doc()
                .and_then(|doc| doc.profiles.get(PROFILE));
            let context = ReadContext {
                role: self.agents[i].role,
                store,
                own,
            };
            self.hooks.filter_read(context, view)
        });
        let generation = match &result {
            Ok(view) => view.credential.as_ref().map_or(-1, |c| c.generation as i64),
            Err(_) => -2,
        };
        let who = self.agents[i].who;
        self.record(What::Read {
            agent: who,
            store: s as u8,
            generation,
        });
        self.deliver(index, Input::StoreRead { id, result });
    }

    fn agent_write(&mut self, index: u16, effect: Effect) {
        let i = index as usize;
        let Effect::WriteStore {
            id,
            store,
            ref mutation,
        } = effect
        else {
            return;
        };
        let s = self.store_index(index, store);
        let blocked = self.stores[s]
            .lock
            .is_some_and(|owner| owner != Owner::Agent(index));
        if blocked && self.hooks.store_lock_on_rotor_writes() {
            let epoch = self.agents[i].epoch;
            if !matches!(self.agents[i].waiting, Waiting::Store { .. }) {
                self.agents[i].waiting = Waiting::Store {
                    since_ms: self.now_ms,
                    store: s as u8,
                };
                self.agents[i].waits += 1;
                let wait = self.agents[i].waits;
                let budget = self.policy.store_lock_wait_ms_max();
                self.schedule(budget, Ev::StoreTimeout { agent: index, wait });
            }
            self.stores[s].waiters.push((index, epoch));
            self.agents[i].effect = Some(effect);
            return;
        }
        self.agents[i].waiting = Waiting::Nothing;
        let kind = write_kind(mutation);
        let who = self.agents[i].who;
        if let Mutation::Mirror { credential, .. } = mutation {
            self.agents[i].notes.mirrored = Some(credential.generation);
            self.agents[i].notes.mirrored_at_ms = Some(self.now_ms);
        }
        if kind == WriteKind::Mirror && self.hooks.mirror_after_release() {
            self.agents[i].deferred = Some(mutation.clone());
            self.record(What::Write {
                agent: who,
                store: s as u8,
                kind,
                result: WriteResult::Deferred,
            });
            let result = Ok(WriteOutcome::Applied);
            return self.deliver(index, Input::StoreWritten { id, result });
        }
        if let Mutation::PutFence { fence, .. } = mutation {
            if fence.attempt > 0 {
                self.agents[i].notes.grace_retry = true;
                self.coverage.hit(Branch::GraceRetry);
            }
        }
        let process = self.agents[i].process;
        let faults_before = self.write_faults;
        let entry_before = self.stores[s]
            .doc()
            .and_then(|d| d.profiles.get(PROFILE))
            .map(Stamp::of);
        // The fenced lease: a fence is written (or cleared) only while the
        // writer still holds the lock, in the same step as the write; a
        // holder whose lease expired under it is refused (the lost lease is
        // the fault that explains the failure).
        let fence_write = matches!(
            mutation,
            Mutation::PutFence { .. } | Mutation::ClearFence { .. }
        );
        let refused = self.config.backend == crate::config::Backend::FencedLease
            && fence_write
            && self.hooks.fence_writes_need_the_lock()
            && !self.holds_refresh_lock(index);
        let (result, synced) = if refused {
            self.write_faults += 1;
            let fault = rotor_kernel::StoreFault {
                kind: rotor_kernel::StoreFaultKind::Io,
                detail: "the refresh lock was lost: the fence write is refused".into(),
            };
            (Err(fault), true)
        } else {
            self.rotor_write(process, s, mutation)
        };
        self.cover_cas(mutation, &result, entry_before);
        self.note_write_outcome(index, s, mutation, &result, faults_before, entry_before);
        if let (Mutation::Commit { credential, .. }, Ok(WriteOutcome::Applied)) =
            (mutation, &result)
        {
            self.agents[i].notes.committed = Some((s as u8, credential.generation, synced));
        }
        if kind == WriteKind::Mirror && matches!(result, Ok(WriteOutcome::Applied)) {
            self.coverage.hit(Branch::Mirror);
        } else if kind == WriteKind::Mirror {
            self.agents[i].notes.mirrored = None;
        }
        self.record(What::Write {
            agent: who,
            store: s as u8,
            kind,
            result: write_result(&result),
        });
        self.deliver(index, Input::StoreWritten { id, result });
    }

    /// Coverage of the compare-and-swap against a login or a logout: a
    /// fence, commit or mirror that found, instead of the entry it read, a
    /// family a login installed or a tombstone.
    fn cover_cas(
        &mut self,
        mutation: &Mutation,
        result: &Result<WriteOutcome, rotor_kernel::StoreFault>,
        found: Option<Stamp>,
    ) {
        let lost = matches!(
            result,
            Ok(WriteOutcome::Conflict(_) | WriteOutcome::MirrorRefused(_))
        );
        let Some(found) = found.filter(|_| lost) else {
            return;
        };
        let logout = found.tombstone;
        let login = found
            .token
            .is_some_and(|(family, _)| self.logins.contains(&family));
        let branch = match (mutation, logout, login) {
            (Mutation::PutFence { .. }, true, _) => Branch::CasFenceLogout,
            (Mutation::PutFence { .. }, _, true) => Branch::CasFenceLogin,
            (Mutation::Commit { .. }, true, _) => Branch::CasCommitLogout,
            (Mutation::Commit { .. }, _, true) => Branch::CasCommitLogin,
            (Mutation::Mirror { .. }, true, _) => Branch::CasMirrorLogout,
            (Mutation::Mirror { .. }, _, true) => Branch::CasMirrorLogin,
            _ => return,
        };
        self.coverage.hit(branch);
    }

    /// Records for the oracle what a write of agent `index` met: a fence
    /// written, an injected fault, a compare-and-swap lost with or without a
    /// concurrent change of the entry since this resolve read it.
    fn note_write_outcome(
        &mut self,
        index: u16,
        s: usize,
        mutation: &Mutation,
        result: &Result<WriteOutcome, rotor_kernel::StoreFault>,
        faults_before: u32,
        entry_before: Option<Stamp>,
    ) {
        let i = index as usize;
        let injected = self.write_faults > faults_before;
        let torn = matches!(self.stores[s].visible, Content::Torn(_));
        match result {
            Ok(WriteOutcome::Applied) => {
                if let Mutation::PutFence { fence, .. } = mutation {
                    // The fenced token is the entry's of the store written
                    // (its compare-and-swap held) or the own store's (a
                    // sub-agent fences main for its own token too).
                    let own = self.agents[i].own_store as usize;
                    let own_entry = self.stores[own]
                        .doc()
                        .and_then(|d| d.profiles.get(PROFILE))
                        .map(Stamp::of);
                    let token = [entry_before, own_entry]
                        .into_iter()
                        .flatten()
                        .find(|c| c.fingerprint == Some(fence.refresh_fp))
                        .and_then(|c| c.token);
                    let notes = &mut self.agents[i].notes;
                    notes.fenced = token.or(notes.fenced);
                }
            }
            Ok(WriteOutcome::Conflict(_)) => {
                let notes = &mut self.agents[i].notes;
                let seen = if s == 0 {
                    notes.seen_main.as_ref()
                } else {
                    notes.seen_own.as_ref()
                };
                let as_read = entry(seen).map(Stamp::of);
                if as_read == entry_before {
                    let name = &self.store_names[s];
                    notes.conflict_unexcused = Some(format!(
                        "its {:?} into the {name} lost its compare-and-swap although the entry was as this resolve read it",
                        write_kind(mutation)
                    ));
                } else {
                    notes.conflict = true;
                }
            }
            Ok(_) => {}
            Err(fault) => {
                let notes = &mut self.agents[i].notes;
                if injected || torn {
                    notes.store_fault = true;
                } else if fault.kind != rotor_kernel::StoreFaultKind::LockTimeout {
                    notes.store_unexcused = Some(format!(
                        "its write failed ({}) with no fault injected",
                        fault.detail
                    ));
                }
                // A fence this resolve wrote may now never be cleared.
                if let Some(token) = notes.fenced {
                    self.in_doubt.push(token);
                }
            }
        }
    }

    pub(super) fn on_store_timeout(&mut self, index: u16, wait: u32) {
        let i = index as usize;
        let Waiting::Store { since_ms, store } = self.agents[i].waiting else {
            return;
        };
        if self.agents[i].waits != wait {
            return;
        }
        let Some(Effect::WriteStore {
            id, ref mutation, ..
        }) = self.agents[i].effect
        else {
            return;
        };
        let kind = write_kind(mutation);
        self.agents[i].effect = None;
        self.agents[i].waiting = Waiting::Nothing;
        self.stores[store as usize]
            .waiters
            .retain(|(a, _)| *a != index);
        let waited_ms = self.now_ms - since_ms;
        // Oracle: only a holder that stalled makes a store-lock wait run out
        // (every store-lock holder in this world holds for at most 300 ms).
        let holder = self.stores[store as usize].lock.map(|owner| match owner {
            Owner::Agent(a) => self.agents[a as usize].process,
            Owner::Actor(j) => self.actors[j as usize].process,
        });
        // A paused waiter's own timer fires late, after the pause.
        let waiter = Some(self.agents[i].process);
        // A holder that crashed at the instant the wait ran out is gone
        // from the lock already (the crash fault is drawn before the timer
        // fires in the same step); it held past its bound only if it
        // stalled (fresh seed 0x4b135482a1e8284a).
        let crashed_now = self
            .crashes
            .iter()
            .filter(|&&(_, at_ms)| at_ms == self.now_ms)
            .map(|&(process, _)| process);
        // A holder that crashed earlier in the wait freed the lock, and
        // another writer may have taken it at that instant, before this
        // waiter's retry: the crashed holder held past its bound only if it
        // stalled (fresh seed 0x5e653d7de5f934: a usage writer paused for
        // the whole wait, crashed 13 ms before it ran out, and the edit
        // actor took the lock).
        let crashed_holder = self.stores[store as usize]
            .freed_by_crash
            .filter(|&(_, at_ms)| at_ms >= since_ms)
            .map(|(process, _)| process);
        let stalled = [holder, waiter, crashed_holder]
            .into_iter()
            .flatten()
            .chain(crashed_now.filter(|_| holder.is_none()))
            .any(|p| self.paused_during(Some(p), since_ms, self.now_ms));
        let notes = &mut self.agents[i].notes;
        match stalled {
            true => notes.store_fault = true,
            false => {
                let crashed = crashed_holder
                    .map(|p| format!("; a crash of p{p} freed it during the wait"))
                    .unwrap_or_default();
                notes.store_unexcused = Some(format!(
                    "its store-lock wait of {waited_ms} ms ran out with no stalled holder (holder process {holder:?}{crashed})"
                ));
            }
        }
        // A fence this resolve wrote may now never be cleared (the write that
        // ran out may have been its ClearFence), as when the write fails.
        if let Some(token) = notes.fenced {
            self.in_doubt.push(token);
        }
        let who = self.agents[i].who;
        self.record(What::Write {
            agent: who,
            store,
            kind,
            result: WriteResult::LockTimeout,
        });
        let fault = lock_fault(&self.store_names[store as usize], waited_ms);
        self.deliver(
            index,
            Input::StoreWritten {
                id,
                result: Err(fault),
            },
        );
    }

    fn agent_acquire(&mut self, index: u16, effect: Effect) {
        let i = index as usize;
        let Effect::AcquireLock { wait_ms_max, .. } = effect else {
            return;
        };
        let slot = self.agents[i].lock_slot as usize;
        let process = self.agents[i].process;
        let owner = Owner::Agent(index);
        let already = self.locks[slot]
            .holder
            .as_ref()
            .is_some_and(|h| h.owner == owner && !h.orphaned);
        let exclusion = self.hooks.in_process_exclusion();
        if already || self.locks[slot].try_acquire(owner, process, self.now_ms, exclusion) {
            return self.grant(index, effect);
        }
        let epoch = self.agents[i].epoch;
        if !matches!(self.agents[i].waiting, Waiting::Lock { .. }) {
            self.agents[i].waiting = Waiting::Lock {
                since_ms: self.now_ms,
            };
            self.locks[slot].waiters.push(crate::lock::LockWaiter {
                owner,
                process,
                epoch,
                since_ms: self.now_ms,
            });
            self.agents[i].waits += 1;
            let wait = self.agents[i].waits;
            self.schedule(wait_ms_max, Ev::LockTimeout { agent: index, wait });
            let who = self.agents[i].who;
            self.record(What::LockWait { agent: who });
        }
        self.agents[i].effect = Some(effect);
    }

    fn grant(&mut self, index: u16, effect: Effect) {
        let i = index as usize;
        let Some(id) = effect.id() else {
            return;
        };
        let agent = &mut self.agents[i];
        agent.holds_lock = true;
        agent.waiting = Waiting::Nothing;
        let who = agent.who;
        self.record(What::LockAcquired { agent: who });
        self.check_lock_granted(index);
        self.deliver(index, Input::LockAcquired { id });
    }

    pub(super) fn on_lock_timeout(&mut self, index: u16, wait: u32) {
        let i = index as usize;
        let Waiting::Lock { since_ms } = self.agents[i].waiting else {
            return;
        };
        if self.agents[i].waits != wait {
            return;
        }
        let slot = self.agents[i].lock_slot as usize;
        let owner = Owner::Agent(index);
        if self.locks[slot]
            .holder
            .as_ref()
            .is_some_and(|h| h.owner == owner && !h.orphaned)
        {
            return; // handed over just now; the grant is on its way
        }
        let Some(id) = self.agents[i].effect.take().and_then(|e| e.id()) else {
            return;
        };
        self.locks[slot].waiters.retain(|w| w.owner != owner);
        self.agents[i].waiting = Waiting::Nothing;
        self.agents[i].notes.lock_timeout = Some(self.lock_timeout_reason(since_ms));
        let waited_ms = self.now_ms - since_ms;
        let holder = self.locks[slot].holder.as_ref().map(|h| {
            format!(
                "pid {} since {} ms",
                1000 + h.process as u32,
                h.acquired_at_ms
            )
        });
        let who = self.agents[i].who;
        self.record(What::LockFailed {
            agent: who,
            waited_ms,
        });
        let failure = LockFailure {
            waited_ms,
            holder,
            error: None,
        };
        self.deliver(index, Input::LockFailed { id, failure });
    }

    fn agent_call(
        &mut self,
        index: u16,
        _id: EffectId,
        credential: std::sync::Arc<rotor_kernel::Credential>,
        deadline_ms: u64,
    ) {
        let i = index as usize;
        let presented = credential
            .refresh
            .as_ref()
            .and_then(|secret| parse_token(secret.expose()));
        let Some((family, n)) = presented else {
            panic!("bug: the kernel presented a refresh token the simulator never issued");
        };
        let notes = &mut self.agents[i].notes;
        notes.calls += 1;
        notes.budget.on_call((family, n));
        self.check_call(index, &credential);
        let fault = self.draw_endpoint_fault(self.agents[i].process);
        let attempt = u32::from(self.agents[i].notes.grace_retry);
        let request = self.endpoint.send(Request {
            agent: index,
            epoch: self.agents[i].epoch,
            family,
            n,
            sent_at_ms: self.now_ms,
            processed: fault == ServerFault::NotSent,
            replied: false,
            fault,
            result: None,
            grant: None,
            attempt,
            stalled: self.agents[i].notes.paused || self.agents[i].notes.clock_jumped,
        });
        self.agents[i].call = Some(request);
        // Ground truth (oracle): a timeout, a lost response or a 5xx without
        // an OAuth body leaves the presentation's outcome unknown.
        if matches!(
            fault,
            ServerFault::Timeout | ServerFault::LostResponse | ServerFault::Unavailable
        ) {
            self.in_doubt.push((family, n));
        }
        self.stats.endpoint_calls += 1;
        let who = self.agents[i].who;
        self.record(What::Call {
            agent: who,
            request,
            family,
            n,
        });
        let epoch = self.agents[i].epoch;
        let complete = Ev::CallComplete {
            agent: index,
            epoch,
            request,
        };
        match fault {
            ServerFault::NotSent => {
                let delay = self.rng.between(1, 50);
                self.schedule(delay, complete);
            }
            ServerFault::Timeout => {
                let up = self.rng.between(deadline_ms / 2, deadline_ms * 3 / 2);
                self.schedule(up, Ev::ServerArrive { request });
                if self.hooks.report_timeout_at_deadline() {
                    self.schedule(deadline_ms, complete);
                }
            }
            _ => {
                let up = self.latency();
                self.schedule(up, Ev::ServerArrive { request });
            }
        }
    }

    /// One-way request latency: mostly tens of ms, a long tail of seconds.
    fn latency(&mut self) -> u64 {
        match self.rng.below(100) {
            0..=89 => self.rng.between(5, 150),
            _ => self.rng.between(150, 4_000),
        }
    }

    pub(super) fn on_server(&mut self, request: u32) {
        let (result, before) = self.endpoint.process(request, self.now_ms);
        let r = &self.endpoint.requests[request as usize];
        let (family, n, fault, agent, epoch) = (r.family, r.n, r.fault, r.agent, r.epoch);
        let sent_at_ms = r.sent_at_ms;
        self.record(What::Server {
            request,
            family,
            n,
            result,
        });
        self.check_presentation(request, result, before);
        let complete = Ev::CallComplete {
            agent,
            epoch,
            request,
        };
        match fault {
            ServerFault::Timeout => {
                if !self.hooks.report_timeout_at_deadline() {
                    // The shipped host reports a timeout only once the
                    // request can no longer be in flight (G8).
                    let deadline_at = sent_at_ms + self.policy.call_deadline_ms();
                    self.schedule(deadline_at.saturating_sub(self.now_ms), complete);
                }
            }
            ServerFault::LostResponse => {
                let delay = self.rng.between(1, 50);
                self.schedule(delay, complete);
            }
            _ => {
                let down = self.latency();
                self.schedule(down, complete);
            }
        }
    }

    pub(super) fn on_call_complete(&mut self, index: u16, epoch: u32, request: u32) {
        let i = index as usize;
        if self.agents[i].epoch != epoch || self.agents[i].call != Some(request) {
            return; // the caller died; the reply goes nowhere
        }
        let r = &self.endpoint.requests[request as usize];
        let (fault, result, grant) = (r.fault, r.result, r.grant);
        // A host that drops a response it received reports a reset.
        let fault = if fault == ServerFault::None && !self.hooks.read_response() {
            ServerFault::LostResponse
        } else {
            fault
        };
        let (reply, outcome) = match (fault, result, grant) {
            (ServerFault::None, Some(ServerResult::Rotated | ServerResult::Grace), Some(g)) => {
                let account = self.endpoint.families[g.0 as usize].account;
                let identity = reported_identity(self.config.knobs.identity, account);
                (
                    ReplyKind::Granted,
                    Ok(self.endpoint.grant(g.0, g.1, identity)),
                )
            }
            (ServerFault::None, _, _) => {
                (ReplyKind::InvalidGrant, Err(endpoint_error(fault, result)))
            }
            (ServerFault::NotSent, _, _) => {
                (ReplyKind::NotSent, Err(endpoint_error(fault, result)))
            }
            (ServerFault::Timeout, _, _) => {
                (ReplyKind::Timeout, Err(endpoint_error(fault, result)))
            }
            (ServerFault::LostResponse, _, _) => {
                (ReplyKind::Reset, Err(endpoint_error(fault, result)))
            }
            (_, _, _) => (ReplyKind::ServerError, Err(endpoint_error(fault, result))),
        };
        self.endpoint.requests[request as usize].replied = true;
        if reply == ReplyKind::InvalidGrant {
            self.agents[i].notes.saw_reuse = true;
        }
        if reply == ReplyKind::NotSent && self.agents[i].notes.calls == 1 {
            self.coverage.hit(Branch::NotSentRetry);
        }
        let who = self.agents[i].who;
        self.record(What::Reply {
            agent: who,
            request,
            reply,
        });
        let id = self.current_call_id(index);
        self.deliver(
            index,
            Input::EndpointReplied {
                id,
                result: outcome,
            },
        );
    }

    /// The id of the outstanding call effect (the resolver knows it).
    fn current_call_id(&self, index: u16) -> EffectId {
        self.agents[index as usize]
            .resolver
            .as_ref()
            .and_then(Resolver::outstanding)
            .expect("bug: a reply arrived for an agent that is not calling")
    }

    fn agent_release(&mut self, index: u16, id: EffectId) {
        let i = index as usize;
        self.check_release(index);
        let slot = self.agents[i].lock_slot as usize;
        let process = self.agents[i].process;
        let released = self.locks[slot].release(Owner::Agent(index), process);
        self.agents[i].holds_lock = false;
        let who = self.agents[i].who;
        self.record(What::Release { agent: who });
        if released && self.locks[slot].holder.is_none() && self.hooks.wake_waiter_on_release() {
            self.hand_over(slot);
        }
        if self.agents[i].deferred.is_some() {
            let epoch = self.agents[i].epoch;
            let delay = self.host_delay();
            self.schedule(
                delay,
                Ev::DeferredMirror {
                    agent: index,
                    epoch,
                },
            );
        }
        self.deliver(index, Input::LockReleased { id });
    }

    /// Gives a free refresh lock to one waiter, chosen at random.
    pub(crate) fn hand_over(&mut self, slot: usize) {
        let lock = &mut self.locks[slot];
        if lock.holder.is_some() || lock.waiters.is_empty() {
            return;
        }
        let pick = self.rng.below(lock.waiters.len() as u64) as usize;
        let waiter = lock.waiters.swap_remove(pick);
        lock.try_acquire(waiter.owner, waiter.process, self.now_ms, true);
        // A lease handed to a stalled or dead process is never renewed.
        let state = &self.processes[waiter.process as usize];
        if self.is_lease() && (state.crashed || state.paused_until_ms.is_some()) {
            self.schedule_lease_expiry(slot);
        }
        match waiter.owner {
            Owner::Agent(agent) => {
                let delay = self.rng.below(3);
                self.schedule(
                    delay,
                    Ev::Effect {
                        agent,
                        epoch: waiter.epoch,
                    },
                );
            }
            Owner::Actor(actor) => {
                let delay = self.rng.below(3);
                self.schedule(
                    delay,
                    Ev::Actor {
                        actor,
                        epoch: waiter.epoch,
                    },
                );
            }
        }
    }

    pub(super) fn on_deferred_mirror(&mut self, index: u16, epoch: u32) {
        let i = index as usize;
        if self.agents[i].epoch != epoch {
            return;
        }
        let Some(mutation) = self.agents[i].deferred.take() else {
            return;
        };
        let process = self.agents[i].process;
        let (result, _) = self.rotor_write(process, 0, &mutation);
        let who = self.agents[i].who;
        self.record(What::Write {
            agent: who,
            store: 0,
            kind: WriteKind::Mirror,
            result: write_result(&result),
        });
    }

    fn on_done(&mut self, index: u16, resolution: Resolution) {
        let i = index as usize;
        let kind = done_kind(&resolution);
        let who = self.agents[i].who;
        self.record(What::Done {
            agent: who,
            outcome: kind,
        });
        self.stats.resolves += 1;
        self.cover_done(index, kind);
        if let Ok(granted) = &resolution {
            if matches!(granted.outcome, Outcome::Adopted { .. }) {
                self.stats.adoptions += 1;
            }
            self.check_grant(index, granted);
        }
        self.agents[i].granted = resolution.as_ref().ok().and_then(|g| {
            let (family, n) = parse_token(g.access.expose())?;
            Some((family, n, g.outcome == Outcome::Cached))
        });
        let verdict = self.judge_outcome(i, &resolution);
        if self.agents[i].notes.in_liveness {
            self.agents[i].liveness_result = Some(verdict);
        } else if let Err((guarantee, reason)) = verdict {
            self.violate(guarantee, || format!("{who}: {reason}"));
        }
        let agent = &mut self.agents[i];
        agent.resolver = None;
        agent.effect = None;
        agent.waiting = Waiting::Nothing;
        if agent.requests_left > 0 {
            let epoch = agent.epoch;
            let delay = if self.liveness {
                self.liveness_delay()
            } else {
                self.rng.between(60_000, 900_000)
            };
            self.schedule(
                delay,
                Ev::Wake {
                    agent: index,
                    epoch,
                },
            );
        } else {
            self.agent_finished();
        }
    }

    fn cover_done(&mut self, index: u16, kind: DoneKind) {
        let notes = &self.agents[index as usize].notes;
        let saw_reuse = notes.saw_reuse;
        let branch = match kind {
            DoneKind::Cached => Some(Branch::Cached),
            DoneKind::AdoptedMain | DoneKind::AdoptedPeer if saw_reuse => Some(Branch::ReuseAdopt),
            DoneKind::AdoptedMain => Some(Branch::AdoptedMain),
            DoneKind::AdoptedPeer => Some(Branch::AdoptedPeer),
            DoneKind::Refreshed => Some(Branch::Refreshed),
            DoneKind::FenceNeedsReauth => Some(Branch::FenceNeedsReauth),
            DoneKind::RefusedNeedsReauth => Some(Branch::ReuseNeedsReauth),
            DoneKind::InDoubt => Some(Branch::InDoubt),
            DoneKind::Transient => Some(Branch::Transient),
            DoneKind::Rejected => Some(Branch::Rejected),
            DoneKind::LockTimeout => Some(Branch::LockTimeout),
            DoneKind::Superseded => Some(Branch::Superseded),
            _ => None,
        };
        if let Some(branch) = branch {
            self.coverage.hit(branch);
        }
    }
}
