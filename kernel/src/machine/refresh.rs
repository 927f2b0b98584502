//! Steps 5..9 of SPEC §3: fence, present the refresh token, and settle the
//! outcome. Entered with the refresh lock held; every path out of here
//! releases it.

use alloc::collections::VecDeque;
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::decide::{
    fence_for, grace_retry_allowed, logged_out_in_main, main_may_replace, rotated,
};
use super::{granted, shared, Phase as Outer, Resolver, REREADS_MAX, SUCCESSORS_MAX};
use crate::classify::{classify, ErrorClass};
use crate::credential::Credential;
use crate::document::{Fence, ProfileView};
use crate::effect::{Effect, Input, InputKind, StoreRef};
use crate::mutation::{mirror_refusal, Expect, Mutation, WriteOutcome};
use crate::outcome::{Failure, Granted, Outcome, ReauthReason, Source, Warning};
use crate::secret::Fingerprint;

/// What a refresh works from: the stores as read under the lock, the
/// credential whose refresh token is presented, and where its fence went.
#[derive(Clone, Debug)]
pub(super) struct Plan {
    own: ProfileView,
    main: Option<ProfileView>,
    /// Shared with the view it was read from and the call effects.
    subject: Arc<Credential>,
    presented_fp: Fingerprint,
    fenced: Vec<StoreRef>,
    /// 0 for a first presentation, 1 for the grace-window retry of a token
    /// whose earlier presentation has an unknown outcome.
    attempt: u32,
    calls_made: u64,
    warnings: Vec<Warning>,
}

/// What a refresh waits for. Variants are named for the completion they
/// expect (STYLE.md practice 3), hence the shared prefix.
#[derive(Clone, Debug)]
#[allow(clippy::enum_variant_names)]
pub(super) enum Phase {
    /// Step 6: a fence write (required before presenting).
    ExpectFence {
        plan: Plan,
        store: StoreRef,
        queue: VecDeque<(StoreRef, Mutation)>,
    },
    /// Step 7: the endpoint's answer.
    ExpectReply { plan: Plan },
    /// Step 8, sub-agents whose main may take the rotation: the mirror into
    /// main, written before the own store's commit.
    ExpectMirrorFirst {
        plan: Plan,
        rotated: Arc<Credential>,
    },
    /// Step 8: the rotated credential in the own store. `mirrored` says
    /// whether a mirror into main was already tried and whether it landed
    /// (`None`: not tried; it follows the commit when main may take it).
    ExpectCommit {
        plan: Plan,
        rotated: Arc<Credential>,
        mirrored: Option<bool>,
    },
    /// Step 9 (reuse): the own store, re-read.
    ExpectRecheckOwn {
        plan: Plan,
        detail: alloc::string::String,
    },
    /// Step 9 (reuse): main, re-read.
    ExpectRecheckMain {
        plan: Plan,
        own: ProfileView,
        detail: alloc::string::String,
    },
}

/// Wraps a refresh phase into the resolver's phase.
fn refreshing(phase: Phase) -> Outer {
    Outer::Refresh(alloc::boxed::Box::new(phase))
}

impl Phase {
    pub(super) fn expected_kind(&self) -> InputKind {
        match self {
            Phase::ExpectFence { .. }
            | Phase::ExpectMirrorFirst { .. }
            | Phase::ExpectCommit { .. } => InputKind::StoreWritten,
            Phase::ExpectReply { .. } => InputKind::EndpointReplied,
            Phase::ExpectRecheckOwn { .. } | Phase::ExpectRecheckMain { .. } => {
                InputKind::StoreRead
            }
        }
    }
}

impl Resolver {
    /// Steps 5 and 6: check for an earlier in-doubt presentation, then fence.
    pub(super) fn begin_refresh(
        &mut self,
        own: ProfileView,
        main: Option<ProfileView>,
        subject: Arc<Credential>,
        warnings: Vec<Warning>,
        now_ms: i64,
    ) {
        if subject.needs_reauth {
            return self.release(Err(Failure::NeedsReauth(ReauthReason::Marked)));
        }
        let Some(presented_fp) = subject
            .refresh
            .as_ref()
            .filter(|refresh| !refresh.is_blank())
            .map(|refresh| refresh.fingerprint())
        else {
            return self.release(Err(Failure::NeedsReauth(ReauthReason::NoRefreshToken)));
        };
        let attempt = match fence_for(presented_fp, &own, main.as_ref()) {
            None => 0,
            Some(fence) if fence.rotated => {
                let reason = ReauthReason::Rotated {
                    fence: fence.clone(),
                };
                return self.release(Err(Failure::NeedsReauth(reason)));
            }
            Some(fence) if grace_retry_allowed(fence, self.policy.grace_window_ms(), now_ms) => {
                fence.attempt + 1
            }
            Some(fence) => {
                let reason = ReauthReason::InDoubt {
                    fence: fence.clone(),
                };
                return self.release(Err(Failure::NeedsReauth(reason)));
            }
        };
        let fence = Fence {
            generation: subject.generation,
            refresh_fp: presented_fp,
            holder: self.request.holder.clone(),
            started_at_ms: now_ms,
            attempt,
            rotated: false,
        };
        // Fence every store a participant holding a copy of the presented
        // token reads under the lock: the own store when it holds the token,
        // and, for a sub-agent, always main, the one store every participant
        // reads (another sub-agent may hold a copy while main holds another
        // family).
        let mut queue = VecDeque::new();
        let holds = |view: &ProfileView| {
            view.credential
                .as_deref()
                .and_then(Credential::refresh_fingerprint)
                == Some(presented_fp)
        };
        let mut fenced = Vec::new();
        let targets = [
            (StoreRef::Own, Some(&own).filter(|own| holds(own))),
            (StoreRef::Main, main.as_ref()),
        ];
        for (store, view) in targets {
            if let Some(view) = view {
                let expect = Expect::of(view.credential.as_deref());
                queue.push_back((
                    store,
                    Mutation::PutFence {
                        expect,
                        fence: alloc::boxed::Box::new(fence.clone()),
                    },
                ));
                fenced.push(store);
            }
        }
        let plan = Plan {
            own,
            main,
            subject,
            presented_fp,
            fenced,
            attempt,
            calls_made: 0,
            warnings,
        };
        self.next_fence(plan, queue);
    }

    fn next_fence(&mut self, plan: Plan, mut queue: VecDeque<(StoreRef, Mutation)>) {
        match queue.pop_front() {
            Some((store, mutation)) => {
                let phase = refreshing(Phase::ExpectFence { plan, store, queue });
                self.write(store, mutation, phase)
            }
            None => self.call(plan),
        }
    }

    /// Step 7: present the refresh token. The lock stays held until the
    /// completion arrives (G8).
    pub(super) fn call(&mut self, mut plan: Plan) {
        plan.calls_made += 1;
        let id = self.next_id();
        let effect = Effect::CallEndpoint {
            id,
            credential: Arc::clone(&plan.subject),
            deadline_ms: self.policy.call_deadline_ms(),
        };
        self.emit(effect, refreshing(Phase::ExpectReply { plan }));
    }

    pub(super) fn step_refresh(&mut self, phase: Phase, input: Input, now_ms: i64) {
        match (phase, input) {
            (Phase::ExpectFence { plan, store, queue }, Input::StoreWritten { result, .. }) => {
                match result {
                    Ok(WriteOutcome::Conflict(conflict)) => {
                        let failure = Failure::Superseded { store, conflict };
                        self.drop_fences(plan, Some(store), false, failure)
                    }
                    Ok(_) => self.next_fence(plan, queue),
                    Err(fault) => {
                        let failure = Failure::Store { store, fault };
                        self.drop_fences(plan, Some(store), true, failure)
                    }
                }
            }
            (Phase::ExpectReply { plan }, Input::EndpointReplied { result, .. }) => match result {
                Ok(grant) => {
                    let rotated = Arc::new(rotated(&plan.subject, &grant, now_ms));
                    self.store_rotation(plan, rotated)
                }
                Err(error) => {
                    let detail = error.to_string();
                    match classify(&error) {
                        ErrorClass::Reuse => {
                            let phase = refreshing(Phase::ExpectRecheckOwn { plan, detail });
                            self.read(StoreRef::Own, phase)
                        }
                        ErrorClass::NotSent
                            if plan.calls_made < self.policy.call_attempts_max() =>
                        {
                            self.call(plan)
                        }
                        ErrorClass::NotSent => {
                            self.drop_fences(plan, None, false, Failure::Transient { detail })
                        }
                        ErrorClass::Rejected => {
                            self.drop_fences(plan, None, false, Failure::Rejected { detail })
                        }
                        ErrorClass::Unknown => self.release(Err(Failure::InDoubt { detail })),
                    }
                }
            },
            (
                Phase::ExpectMirrorFirst { mut plan, rotated },
                Input::StoreWritten { result, .. },
            ) => {
                let mirrored = match result {
                    Ok(WriteOutcome::Applied) => true,
                    Ok(WriteOutcome::MirrorRefused(refusal)) => {
                        plan.warnings.push(Warning::MirrorRefused(refusal));
                        false
                    }
                    Ok(WriteOutcome::Conflict(conflict)) => {
                        plan.warnings
                            .push(Warning::MirrorFailed(conflict.to_string()));
                        false
                    }
                    Err(fault) => {
                        plan.warnings.push(Warning::MirrorFailed(fault.detail));
                        false
                    }
                };
                self.commit(plan, rotated, Some(mirrored))
            }
            (
                Phase::ExpectCommit {
                    plan,
                    rotated,
                    mirrored,
                },
                Input::StoreWritten { result, .. },
            ) => match (result, mirrored) {
                (Ok(WriteOutcome::Conflict(conflict)), _) => {
                    self.release(Err(Failure::Superseded {
                        store: StoreRef::Own,
                        conflict,
                    }))
                }
                (Ok(_), None) => self.after_commit(plan, rotated),
                (Ok(_), Some(_)) => self.release(Ok(granted_with(plan, &rotated))),
                // The rotation is in main: the next resolve adopts it from
                // there (step 2); the token is good now.
                (Err(fault), Some(true)) => {
                    let mut granted = granted_with(plan, &rotated);
                    granted.warnings.push(Warning::CommitFailed(fault.detail));
                    self.release(Ok(granted))
                }
                (Err(fault), _) => self.release(Err(Failure::RotationNotStored {
                    detail: fault.detail,
                })),
            },
            (Phase::ExpectRecheckOwn { plan, detail }, Input::StoreRead { result, .. }) => {
                let own = result.unwrap_or_default();
                if plan.main.is_some() {
                    let phase = refreshing(Phase::ExpectRecheckMain { plan, own, detail });
                    self.read(StoreRef::Main, phase)
                } else {
                    self.after_reuse(plan, own, None, detail, now_ms)
                }
            }
            (Phase::ExpectRecheckMain { plan, own, detail }, Input::StoreRead { result, .. }) => {
                let main = result.unwrap_or_default();
                self.after_reuse(plan, own, Some(main), detail, now_ms)
            }
            (phase, input) => {
                unreachable!(
                    "no refresh transition from {phase:?} on {}",
                    input.kind_name()
                )
            }
        }
    }

    /// Step 8: store the rotation. A sub-agent whose main may take it (main's
    /// entry absent or an older credential of the same family) mirrors it
    /// into main first, then commits it to its own store: a sub-agent that
    /// dies between the two writes leaves the rotation where every
    /// participant reads (main), and main's fence is gone with the mirror,
    /// so no one else is sent to a re-login (G2, G7). Otherwise the own
    /// store is committed first, and main's fence is settled after it.
    fn store_rotation(&mut self, plan: Plan, rotated: Arc<Credential>) {
        let mirror_first = plan
            .main
            .as_ref()
            .filter(|main| mirror_refusal(main.credential.as_deref(), &rotated).is_none());
        match mirror_first {
            Some(main) => {
                let mutation = Mutation::Mirror {
                    expect: Expect::of(main.credential.as_deref()),
                    credential: Arc::clone(&rotated),
                    presented_fp: plan.presented_fp,
                };
                let phase = refreshing(Phase::ExpectMirrorFirst { plan, rotated });
                self.write(StoreRef::Main, mutation, phase)
            }
            None => self.commit(plan, rotated, None),
        }
    }

    /// Step 8: the rotated credential into the own store (the refreshed
    /// token's fence dropped with it).
    fn commit(&mut self, plan: Plan, rotated: Arc<Credential>, mirrored: Option<bool>) {
        let mutation = Mutation::Commit {
            expect: Expect::of(plan.own.credential.as_deref()),
            credential: Arc::clone(&rotated),
            presented_fp: plan.presented_fp,
        };
        let phase = refreshing(Phase::ExpectCommit {
            plan,
            rotated,
            mirrored,
        });
        self.write(StoreRef::Own, mutation, phase)
    }

    /// Step 8, after the commit: a main agent is done; a sub-agent whose
    /// main may not take the rotation (another account, provider or an
    /// operator's key) keeps the spent token fenced in main, settled as
    /// rotated, so no other holder of a copy presents it.
    fn after_commit(&mut self, plan: Plan, rotated: Arc<Credential>) {
        let refusal = plan
            .main
            .as_ref()
            .and_then(|main| mirror_refusal(main.credential.as_deref(), &rotated));
        let fenced_main = plan.fenced.contains(&StoreRef::Main);
        let presented_fp = plan.presented_fp;
        let mut granted = granted_with(plan, &rotated);
        let mut queue = VecDeque::new();
        if let Some(refusal) = refusal {
            granted.warnings.push(Warning::MirrorRefused(refusal));
            if fenced_main {
                queue.push_back((StoreRef::Main, Mutation::SettleFence { presented_fp }));
            }
        }
        self.continue_writes(queue, Ok(granted))
    }

    /// Step 9, reuse: adopt what a peer stored meanwhile, or mark the family.
    fn after_reuse(
        &mut self,
        plan: Plan,
        own: ProfileView,
        main: Option<ProfileView>,
        detail: alloc::string::String,
        now_ms: i64,
    ) {
        let margin_ms = self.policy.refresh_margin_ms();
        let presented = Some(plan.presented_fp);
        let fresh = |credential: &&Credential| {
            credential.is_usable(now_ms, margin_ms) && credential.refresh_fingerprint() != presented
        };
        let own_credential = own
            .credential
            .as_deref()
            .filter(|c| c.provider == self.request.provider);
        if let Some(credential) = own_credential.filter(fresh) {
            let granted = granted(Outcome::Adopted { from: Source::Peer }, credential);
            return self.release(Ok(granted));
        }
        let main_credential = main.as_ref().and_then(|view| view.credential.as_deref());
        let own_oauth = own_credential.filter(|c| c.is_oauth());
        if let Ok(candidate) = main_may_replace(own_oauth, main_credential, &self.request.provider)
        {
            if fresh(&candidate) {
                let granted = granted(Outcome::Adopted { from: Source::Main }, candidate);
                let mutation = Mutation::Adopt {
                    expect: Expect::of(own.credential.as_deref()),
                    credential: shared(candidate, [&own].into_iter().chain(main.as_ref())),
                };
                let phase = Outer::ExpectAdopt {
                    granted,
                    locked: true,
                    rereads: REREADS_MAX - 1,
                };
                return self.write(StoreRef::Own, mutation, phase);
            }
        }
        // A newer credential that is not usable: its refresh token is the one
        // to present (as in step 4); the presented one is spent. Only a
        // credential of a higher generation than the one presented: an older
        // one's token was spent before it (G1), and without generations (a
        // store written before they existed) nothing says which came first.
        let successor =
            match main_may_replace(own_oauth, main_credential, &self.request.provider) {
                Ok(candidate) => Some(candidate),
                Err(_) => own_oauth,
            }
            .filter(|candidate| {
                candidate.refresh_fingerprint().is_some()
                    && candidate.refresh_fingerprint() != presented
                    && candidate.generation > plan.subject.generation
            });
        if let Some(successor) = successor {
            if self.successors < SUCCESSORS_MAX
                && logged_out_in_main(own_oauth, main_credential).is_none()
            {
                self.successors += 1;
                let subject = shared(successor, [&own].into_iter().chain(main.as_ref()));
                return self.begin_refresh(own, main, subject, plan.warnings, now_ms);
            }
        }
        let presented_fp = plan.presented_fp;
        let mut queue = VecDeque::new();
        for (store, view) in [(StoreRef::Own, Some(&own)), (StoreRef::Main, main.as_ref())] {
            let holds = view
                .and_then(|view| view.credential.as_deref())
                .and_then(Credential::refresh_fingerprint)
                == presented;
            if holds || plan.fenced.contains(&store) {
                queue.push_back((store, Mutation::MarkNeedsReauth { presented_fp }));
            }
        }
        let failure = Failure::NeedsReauth(ReauthReason::TokenRefused { detail });
        self.continue_writes(queue, Err(failure))
    }

    /// Drops the fences this resolve wrote, then releases and fails: the
    /// presentation is known not to have rotated anything (`failed` is
    /// `None`: every fence goes), or a fence write failed before anything
    /// was presented (`failed` names it: the fences written before it go, and
    /// so does its own when `failed_may_hold` says the failed write may have
    /// landed anyway: a host error after the rename, such as a failed
    /// directory fsync, leaves the fence visible, and it would declare the
    /// family dead to the next caller although nothing was sent; found by
    /// the simulated disk's crash-point check of the shipped host). A write
    /// refused by its compare-and-swap wrote nothing. A grace retry's fences
    /// replaced those of an earlier presentation whose outcome is still
    /// unknown: they stay (G7).
    fn drop_fences(
        &mut self,
        plan: Plan,
        failed: Option<StoreRef>,
        failed_may_hold: bool,
        failure: Failure,
    ) {
        let presented_fp = plan.presented_fp;
        let queue = if plan.attempt > 0 {
            VecDeque::new()
        } else {
            let written = plan
                .fenced
                .iter()
                .position(|store| Some(*store) == failed)
                .map_or(plan.fenced.len(), |at| at + usize::from(failed_may_hold));
            plan.fenced[..written]
                .iter()
                .map(|store| (*store, Mutation::ClearFence { presented_fp }))
                .collect()
        };
        self.continue_writes(queue, Err(failure))
    }
}

/// The grant of a refresh, with the warnings met on the way.
fn granted_with(plan: Plan, rotated: &Credential) -> Granted {
    let mut granted = granted(Outcome::Refreshed, rotated);
    granted.warnings = plan.warnings;
    granted
}
