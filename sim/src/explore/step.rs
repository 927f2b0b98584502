//! The transitions of the explored world: which steps are enabled in a state,
//! and what each does. The host's abilities come from [`HostHooks`], so a
//! broken host of `sim/tests` is explored exactly like the shipped one. Each
//! step returns a one-line description (the trace line) and what the checkers
//! of `check.rs` found.

use rotor_kernel::{Effect, Input, Mutation, WriteOutcome};
use serde_json::json;

use super::check::Found;
use super::state::{parse, token, Call, CallFault, Family, Reply, State, Step, PROFILE};
use super::Ctx;
use crate::guarantee::Guarantee;
use crate::hooks::ReadContext;

impl State {
    pub(super) fn lock_free_for(&self, ctx: &Ctx<'_>, a: usize) -> bool {
        let agent = &self.agents[a];
        self.locks[agent.slot as usize].iter().all(|&h| {
            let holder = &self.agents[h as usize];
            holder.process == agent.process && !ctx.hooks.in_process_exclusion()
        })
    }

    /// The steps enabled in this state, in a fixed order (a path is the list
    /// of indices chosen).
    pub fn enabled(&self, ctx: &Ctx<'_>) -> Vec<Step> {
        let mut steps = Vec::new();
        for (a, agent) in self.agents.iter().enumerate() {
            let i = a as u8;
            if agent.resolver.is_none() {
                if agent.requests_left > 0 {
                    steps.push(Step::Start(i));
                }
                continue;
            }
            if agent.deferred.is_some() && !agent.holds_lock {
                steps.push(Step::DeferredMirror(i));
            }
            if agent.split.is_some() {
                steps.push(Step::SplitWrite(i));
                continue;
            }
            match &agent.effect {
                Some(Effect::AcquireLock { .. }) => {
                    if self.lock_free_for(ctx, a) {
                        steps.push(Step::Effect(i));
                    }
                }
                Some(Effect::CallEndpoint { .. }) => {
                    steps.push(Step::Send(i, CallFault::None));
                    if self.faults_left > 0 {
                        for fault in [CallFault::NotSent, CallFault::Lost, CallFault::Reuse] {
                            steps.push(Step::Send(i, fault));
                        }
                    }
                }
                Some(Effect::WriteStore { store, .. }) => {
                    let main = self.store_of(a, *store) == 0;
                    let locked = main && self.writer_copy.is_some();
                    if !locked || !ctx.hooks.store_lock_on_rotor_writes() {
                        steps.push(Step::Effect(i));
                    }
                }
                Some(_) => steps.push(Step::Effect(i)),
                None => {
                    if let Some(c) = agent.call {
                        let call = &self.calls[c as usize];
                        let early =
                            call.fault == CallFault::Lost && ctx.hooks.report_timeout_at_deadline();
                        let over = call.arrived || call.fault == CallFault::NotSent;
                        if !call.completed && (over || early) {
                            steps.push(Step::Complete(i));
                        }
                    }
                }
            }
        }
        for (c, call) in self.calls.iter().enumerate() {
            if !call.arrived && call.fault != CallFault::NotSent {
                steps.push(Step::Arrive(c as u16));
            }
        }
        let active = |p: u8| {
            self.agents
                .iter()
                .any(|a| a.process == p && a.resolver.is_some())
        };
        if self.crashes_left > 0 {
            for p in 0..=self.agents.iter().map(|a| a.process).max().unwrap_or(0) {
                if active(p) {
                    steps.push(Step::Crash(p));
                }
            }
        }
        let busy = self
            .agents
            .iter()
            .any(|a| a.resolver.is_some() || a.requests_left > 0);
        if busy && self.phase < ctx.config.time_steps_max {
            steps.push(Step::Time);
        }
        if self.lease_expiries_left > 0 {
            for (slot, holders) in self.locks.iter().enumerate() {
                if !holders.is_empty() {
                    steps.push(Step::LeaseExpire(slot as u8));
                }
            }
        }
        if !self.writer_done {
            steps.push(Step::Writer);
        }
        // A re-login takes the refresh lock, then main's store lock.
        if !self.relogin_done && self.locks[0].is_empty() && self.writer_copy.is_none() {
            steps.push(Step::Relogin);
        }
        steps
    }

    /// Performs `step`; returns its trace line and the checkers' findings.
    pub fn apply(&mut self, ctx: &Ctx<'_>, step: Step) -> (String, Vec<Found>) {
        let mut found = Vec::new();
        let line = match step {
            Step::Start(a) => {
                self.start(a as usize, ctx.policy);
                format!("{} starts a resolve", self.agents[a as usize].name)
            }
            Step::Effect(a) => self.perform(ctx, a as usize, &mut found),
            Step::Send(a, fault) => self.send(ctx, a as usize, fault, &mut found),
            Step::Arrive(c) => self.arrive(c as usize, &mut found),
            Step::Complete(a) => {
                let a = a as usize;
                let c = self.agents[a].call.unwrap_or_default() as usize;
                self.calls[c].completed = true;
                let result = self.reply_of(ctx.config, &self.calls[c]);
                let text = match &result {
                    Ok(_) => "a new token".to_string(),
                    Err(e) => format!(
                        "{:?}",
                        e.transport
                            .map_or("invalid_grant".into(), |t| format!("{t:?}"))
                    ),
                };
                let id = self.outstanding(a);
                self.deliver(ctx.symmetry, a, Input::EndpointReplied { id, result });
                format!("{} receives call #{c}'s reply: {text}", self.agents[a].name)
            }
            Step::SplitWrite(a) => self.split_write(ctx, a as usize, &mut found),
            Step::DeferredMirror(a) => {
                let a = a as usize;
                let mutation = self.agents[a].deferred.take().unwrap_or(Mutation::Logout {
                    provider: String::new(),
                });
                let outcome = self.write(ctx, a, 0, &mutation, &mut found);
                format!(
                    "{} performs its deferred mirror into main: {outcome:?}",
                    self.agents[a].name
                )
            }
            Step::Crash(p) => {
                self.crash(p);
                self.check_parse(&mut found);
                format!("process p{p} crashes and restarts")
            }
            Step::Time => {
                self.phase += 1;
                format!("time passes: phase {}", self.phase)
            }
            Step::LeaseExpire(slot) => {
                self.lease_expiries_left -= 1;
                let holders = std::mem::take(&mut self.locks[slot as usize]);
                // The lease limit applies where fences are unconditional; on
                // the fenced lease a holder that lost its lease cannot fence.
                self.lease_lost_live |= !holders.is_empty() && !ctx.config.fenced_lease;
                format!("the lease of lock slot {slot} expires under {holders:?}")
            }
            Step::Writer => self.usage_writer(&mut found),
            Step::Relogin => {
                self.relogin_done = true;
                let family = self.families.len() as u8;
                self.families.push(Family {
                    account: 0,
                    current: 0,
                    revoked: false,
                    presented: Vec::new(),
                });
                let mut credential = rotor_kernel::Credential::oauth(
                    super::state::PROVIDER,
                    token('a', family, 0),
                    token('r', family, 0),
                    self.now_ms() + super::state::PHASE_MS,
                );
                if !ctx.config.legacy_identity {
                    credential.account_id = Some("acct-x".into());
                    credential.family = Some(format!("family-{family}").into());
                }
                self.stores[0].apply(
                    PROFILE,
                    &Mutation::Login {
                        credential: credential.into(),
                    },
                );
                self.main_banned_below = family;
                format!("a re-login installs family {family} in main")
            }
        };
        if ctx.config.writer && self.writer_done {
            let kept = self.stores[0]
                .state
                .as_ref()
                .is_some_and(|s| s["usage"]["writer"] == json!(1));
            if !kept {
                found.push(Found::new(
                    Guarantee::G4,
                    "main: the usage writer's update was lost",
                ));
            }
        }
        if ctx.config.shipped_host && !ctx.config.lease {
            self.check_lock_twin(ctx, &mut found);
        }
        (line, found)
    }

    /// The usage writer: a read-modify-write of main's `state` under main's
    /// store lock, in two steps (read, then write back).
    fn usage_writer(&mut self, found: &mut Vec<Found>) -> String {
        let Some(mut doc) = self.writer_copy.take() else {
            self.writer_copy = Some(self.stores[0].clone());
            return "the usage writer takes main's store lock and reads main".to_string();
        };
        self.writer_done = true;
        if self.stores[0] != doc {
            found.push(Found::new(
                Guarantee::G4,
                "main: the usage writer saved the copy it read over a concurrent write: a lost update",
            ));
        }
        if let Some(state) = doc.state.as_mut() {
            state["usage"]["writer"] = json!(1);
        }
        let before = self.generation(0);
        self.stores[0] = doc;
        let after = self.generation(0);
        if after < before {
            found.push(Found::new(
                Guarantee::G5,
                format!("main: generation went back from {before} to {after} (usage writer)"),
            ));
        }
        "the usage writer records usage in main and releases its store lock".to_string()
    }

    fn outstanding(&self, a: usize) -> rotor_kernel::EffectId {
        self.agents[a]
            .resolver
            .as_ref()
            .and_then(|r| r.outstanding())
            .expect("bug: an agent performs an effect with none outstanding")
    }

    fn perform(&mut self, ctx: &Ctx<'_>, a: usize, found: &mut Vec<Found>) -> String {
        let effect = self.agents[a].effect.take().expect("bug: no effect");
        let name = self.agents[a].name.clone();
        match effect {
            Effect::ReadStore { id, store } => {
                let s = self.store_of(a, store);
                let view = self.stores[s].view(PROFILE);
                if ctx.config.shipped_host {
                    if let Some((guarantee, detail)) =
                        crate::world::twin::check_read_of(&self.stores[s], &view)
                    {
                        found.push(Found::new(guarantee, format!("store {s}: {detail}")));
                    }
                }
                let own = self.agents[a].own_store as usize;
                let context = ReadContext {
                    role: self.agents[a].role,
                    store,
                    own: self.stores[own].profiles.get(PROFILE),
                };
                let view = ctx.hooks.filter_read(context, view);
                let generation = self.generation(s);
                self.deliver(
                    ctx.symmetry,
                    a,
                    Input::StoreRead {
                        id,
                        result: Ok(view),
                    },
                );
                format!("{name} reads store {s}: generation {generation}")
            }
            Effect::WriteStore {
                id,
                store,
                ref mutation,
            } => {
                let s = self.store_of(a, store);
                let kind = mutation_name(mutation);
                if matches!(mutation, Mutation::Mirror { .. }) && ctx.hooks.mirror_after_release() {
                    if let Mutation::Mirror { credential, .. } = mutation {
                        self.agents[a].mirrored = Some(credential.generation);
                    }
                    self.agents[a].deferred = Some(mutation.clone());
                    let result = Ok(WriteOutcome::Applied);
                    self.deliver(ctx.symmetry, a, Input::StoreWritten { id, result });
                    return format!("{name} writes {kind} into store {s}: deferred after release");
                }
                let fence_write = matches!(
                    mutation,
                    Mutation::PutFence { .. } | Mutation::ClearFence { .. }
                );
                let slot = self.agents[a].slot as usize;
                if ctx.config.fenced_lease
                    && fence_write
                    && ctx.hooks.fence_writes_need_the_lock()
                    && !self.locks[slot].contains(&(a as u8))
                {
                    let result = Err(rotor_kernel::StoreFault {
                        kind: rotor_kernel::StoreFaultKind::Io,
                        detail: "the refresh lock was lost: the fence write is refused".into(),
                    });
                    self.deliver(ctx.symmetry, a, Input::StoreWritten { id, result });
                    return format!(
                        "{name} writes {kind} into store {s}: refused, its lease expired"
                    );
                }
                if !ctx.hooks.store_lock_on_rotor_writes() {
                    self.agents[a].split = Some(self.stores[s].clone());
                    self.agents[a].effect = Some(effect.clone());
                    return format!("{name} reads store {s} to write {kind} (no store lock)");
                }
                let outcome = self.write(ctx, a, s, mutation, found);
                let applied = matches!(outcome, WriteOutcome::Applied);
                if let (Mutation::Mirror { credential, .. }, true) = (mutation, applied) {
                    self.agents[a].mirrored = Some(credential.generation);
                }
                if let (Mutation::Commit { credential, .. }, true) = (mutation, applied) {
                    self.agents[a].committed = Some((s as u8, credential.generation));
                }
                let text = format!(
                    "{name} writes {kind} into store {s}: {}",
                    outcome_name(&outcome)
                );
                self.deliver(
                    ctx.symmetry,
                    a,
                    Input::StoreWritten {
                        id,
                        result: Ok(outcome),
                    },
                );
                text
            }
            Effect::AcquireLock { id, .. } => {
                let slot = self.agents[a].slot as usize;
                self.locks[slot].push(a as u8);
                self.agents[a].holds_lock = true;
                if !ctx.config.lease && self.locks[slot].len() > 1 {
                    let holders = self.locks[slot].clone();
                    found.push(Found::new(
                        Guarantee::G8,
                        format!("{name} took the refresh lock while agents {holders:?} hold it"),
                    ));
                }
                self.deliver(ctx.symmetry, a, Input::LockAcquired { id });
                format!("{name} acquires the refresh lock (slot {slot})")
            }
            Effect::ReleaseLock { id, .. } => {
                self.check_release(a, found);
                let slot = self.agents[a].slot as usize;
                self.locks[slot].retain(|&h| h as usize != a);
                self.agents[a].holds_lock = false;
                self.deliver(ctx.symmetry, a, Input::LockReleased { id });
                format!("{name} releases the refresh lock")
            }
            Effect::CallEndpoint { .. } => unreachable!("calls are sent by Step::Send"),
            Effect::Done(resolution) => {
                self.check_done(a, &resolution, found);
                let agent = &mut self.agents[a];
                agent.resolver = None;
                agent.call = None;
                agent.requests_left = agent.requests_left.saturating_sub(1);
                let text = match &resolution {
                    Ok(granted) => {
                        format!("{:?} (generation {})", granted.outcome, granted.generation)
                    }
                    Err(failure) => format!("failed: {failure}"),
                };
                format!("{name} is done: {text}")
            }
        }
    }

    /// rotor's write of `mutation` into store `s`, atomic under the store
    /// lock; checks G3, G5, G11.
    pub(crate) fn write(
        &mut self,
        ctx: &Ctx<'_>,
        a: usize,
        s: usize,
        mutation: &Mutation,
        found: &mut Vec<Found>,
    ) -> WriteOutcome {
        let mut doc = self.stores[s].clone();
        let outcome = ctx.hooks.apply(&mut doc, PROFILE, mutation);
        if ctx.config.shipped_host {
            let after = if matches!(outcome, WriteOutcome::Conflict(_)) {
                &self.stores[s]
            } else {
                &doc
            };
            if let Some((guarantee, detail)) =
                crate::world::twin::check_write_of(&self.stores[s], mutation, &outcome, after)
            {
                found.push(Found::new(guarantee, format!("store {s}: {detail}")));
            }
        }
        if !matches!(outcome, WriteOutcome::Conflict(_)) {
            let before = std::mem::replace(&mut self.stores[s], doc);
            self.check_write(a, s, before.profiles.get(PROFILE), mutation, found);
        }
        outcome
    }

    fn split_write(&mut self, ctx: &Ctx<'_>, a: usize, found: &mut Vec<Found>) -> String {
        let mut doc = self.agents[a].split.take().expect("bug: no split write");
        let effect = self.agents[a].effect.take().expect("bug: no effect");
        let Effect::WriteStore {
            id,
            store,
            mutation,
        } = effect
        else {
            unreachable!("a split write is a store write");
        };
        let s = self.store_of(a, store);
        let read = doc.clone();
        let outcome = ctx.hooks.apply(&mut doc, PROFILE, &mutation);
        let name = self.agents[a].name.clone();
        if !matches!(outcome, WriteOutcome::Conflict(_)) {
            if self.stores[s] != read {
                found.push(Found::new(
                    Guarantee::G4,
                    format!("store {s}: {name} saved the copy it read over a concurrent write: a lost update"),
                ));
            }
            let before = std::mem::replace(&mut self.stores[s], doc);
            self.check_write(a, s, before.profiles.get(PROFILE), &mutation, found);
        }
        if let (Mutation::Mirror { credential, .. }, WriteOutcome::Applied) = (&mutation, &outcome)
        {
            self.agents[a].mirrored = Some(credential.generation);
        }
        let text = format!(
            "{name} writes {} into store {s} (no store lock): {}",
            mutation_name(&mutation),
            outcome_name(&outcome)
        );
        self.deliver(
            ctx.symmetry,
            a,
            Input::StoreWritten {
                id,
                result: Ok(outcome),
            },
        );
        text
    }

    fn send(
        &mut self,
        ctx: &Ctx<'_>,
        a: usize,
        fault: CallFault,
        found: &mut Vec<Found>,
    ) -> String {
        let effect = self.agents[a].effect.take().expect("bug: no effect");
        let Effect::CallEndpoint { credential, .. } = effect else {
            unreachable!("Send performs a call");
        };
        if fault != CallFault::None {
            self.faults_left -= 1;
        }
        let (family, n) = credential
            .refresh
            .as_ref()
            .and_then(|r| parse(r.expose()))
            .unwrap_or((u8::MAX, 0));
        self.agents[a].budget.on_call((u32::from(family), n));
        self.check_call(ctx, a, &credential, found);
        let c = self.calls.len();
        self.calls.push(Call {
            agent: a as u8,
            family,
            n,
            fault,
            arrived: false,
            reply: None,
            completed: false,
        });
        self.agents[a].call = Some(c as u16);
        let name = &self.agents[a].name;
        format!("{name} calls the endpoint with r{family}.{n} (call #{c}, fault {fault:?})")
    }

    fn arrive(&mut self, c: usize, found: &mut Vec<Found>) -> String {
        let call = self.calls[c].clone();
        self.calls[c].arrived = true;
        let Some(family) = self.families.get_mut(call.family as usize) else {
            self.calls[c].reply = Some(Reply::InvalidGrant);
            return format!("call #{c} reaches the provider: unknown token");
        };
        let presented_before = family.presented.contains(&call.n);
        let dead = family.revoked;
        family.presented.push(call.n);
        family.presented.sort_unstable();
        family.presented.dedup();
        let reply = if call.fault == CallFault::Reuse || dead || call.n != family.current {
            family.revoked = true;
            Reply::InvalidGrant
        } else {
            family.current += 1;
            Reply::Granted {
                family: call.family,
                n: family.current,
            }
        };
        self.calls[c].reply = Some(reply);
        let who = self.agents[call.agent as usize].name.clone();
        let tok = token('r', call.family, call.n);
        if presented_before && !dead {
            let detail = format!("refresh token {tok} presented again by {who} (call #{c})");
            if self.lease_lost_live {
                found.push(Found::expected(Guarantee::G1, detail));
            } else {
                found.push(Found::new(Guarantee::G1, detail));
                let unknown = self.calls[..c].iter().any(|e| {
                    e.family == call.family
                        && e.n == call.n
                        && e.arrived
                        && (e.fault == CallFault::Lost || !e.completed)
                });
                if unknown {
                    found.push(Found::new(
                        Guarantee::G7,
                        format!("an earlier call with {tok} had an unknown outcome, yet {who} presented it again"),
                    ));
                }
            }
        }
        format!("call #{c} ({tok} from {who}) reaches the provider: {reply:?}")
    }

    fn crash(&mut self, p: u8) {
        self.crashes_left -= 1;
        for a in 0..self.agents.len() {
            if self.agents[a].process != p {
                continue;
            }
            let agent = &mut self.agents[a];
            agent.resolver = None;
            agent.effect = None;
            agent.split = None;
            agent.deferred = None;
            agent.holds_lock = false;
            agent.call = None;
            agent.mirrored = None;
            agent.committed = None;
            for holders in &mut self.locks {
                holders.retain(|&h| h as usize != a);
            }
        }
    }
}

fn mutation_name(mutation: &Mutation) -> &'static str {
    match mutation {
        Mutation::Adopt { .. } => "an adoption",
        Mutation::PutFence { .. } => "a fence",
        Mutation::Commit { .. } => "a commit",
        Mutation::Mirror { .. } => "a mirror",
        Mutation::SettleFence { .. } => "a fence settlement",
        Mutation::ClearFence { .. } => "a fence clearing",
        Mutation::MarkNeedsReauth { .. } => "needs-reauth",
        Mutation::Login { .. } => "a login",
        Mutation::Logout { .. } => "a logout",
    }
}

fn outcome_name(outcome: &WriteOutcome) -> &'static str {
    match outcome {
        WriteOutcome::Applied => "applied",
        WriteOutcome::Conflict(_) => "conflict",
        _ => "refused",
    }
}
