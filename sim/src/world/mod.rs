//! The simulated world: P processes of T agents, one main store and one store
//! per agent slot, the refresh locks, the provider, background actors, and a
//! discrete-event clock.
//!
//! Every pending thing is an event in one queue ordered by (time, sequence).
//! A step pops the earliest event and performs it: an agent's pending effect
//! (read, write, lock, call, release), a completion arriving (lock granted,
//! reply received), a background actor's action, a process restarting. The
//! host draws a small random delay before each effect and sometimes a long
//! one, so an effect can be *held* while time passes and others go first;
//! when everyone waits, the clock jumps to the earliest deadline. Faults are
//! drawn from their own stream before each step.
//!
//! After the safety phase (every agent made its requests, or the step bound
//! was hit) the liveness phase turns faults and actors off and, once every
//! token issued so far has expired, asks every agent for a token once more:
//! each must converge on the newest token unless the ground truth says it
//! cannot. Every resolve of either phase that fails is judged by the outcome
//! oracle (`oracle.rs`).

mod actors;
pub(crate) mod agent;
mod check;
mod faults;
mod oracle;
mod setup;
pub(crate) mod twin;
pub(crate) mod twin_lock;
mod write;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use rotor_kernel::{Effect, Policy, Resolver, Role};

use crate::config::{Backend, Config};
use crate::coverage::{Coverage, Stats};
use crate::endpoint::Endpoint;
use crate::guarantee::{Guarantee, Violation};
use crate::hooks::HostHooks;
use crate::lock::RefreshLock;
use crate::store::SimStore;
use crate::trace::{AgentRef, Trace, TraceMode, What};

pub use setup::{BASE_EPOCH_MS, PROFILE, PROVIDER};

/// When a run stops early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopOn {
    /// At the first violation of any guarantee.
    First,
    /// At the first violation of this guarantee (others are recorded).
    Guarantee(Guarantee),
    /// Never: run both phases to the end, recording every violation.
    Never,
}

/// One scheduled event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ev {
    /// An idle agent starts its next resolve.
    Wake { agent: u16, epoch: u32 },
    /// An agent performs its pending effect.
    Effect { agent: u16, epoch: u32 },
    /// An agent's refresh-lock wait budget runs out (`wait`: which wait).
    LockTimeout { agent: u16, wait: u32 },
    /// An agent's store-lock wait budget runs out (`wait`: which wait).
    StoreTimeout { agent: u16, wait: u32 },
    /// A request reaches the provider.
    ServerArrive { request: u32 },
    /// The host reports a call's result.
    CallComplete {
        agent: u16,
        epoch: u32,
        request: u32,
    },
    /// A background actor acts.
    Actor { actor: u8, epoch: u32 },
    /// A crashed process starts again.
    Restart { process: u8 },
    /// A paused process resumes.
    Resume { process: u8 },
    /// A lease runs out.
    LeaseExpire { lock: u8, epoch: u32 },
    /// A broken host's deferred mirror lands (B6).
    DeferredMirror { agent: u16, epoch: u32 },
}

/// An event in the queue. The queue pops the earliest (time, sequence)
/// first; sequence numbers are unique, so the event itself never takes
/// part in the order. Both are packed into one `u128` key, compared in one
/// step (the queue is a max-heap, hence the reversed order).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scheduled {
    /// Time (ms) in the high 64 bits, sequence in the low 64.
    key: u128,
    event: Ev,
}

impl Scheduled {
    fn key(at_ms: u64, seq: u64) -> u128 {
        (u128::from(at_ms) << 64) | u128::from(seq)
    }
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

/// What an agent waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waiting {
    Nothing,
    Lock { since_ms: u64 },
    Store { since_ms: u64, store: u8 },
}

/// What the checkers remember about the resolve in progress.
#[derive(Clone, Debug, Default)]
pub(crate) struct ResolveNotes {
    pub calls: u8,
    /// The calls as the G2 bound counts them: per presented token, and
    /// the tokens presented (a successor found after a reuse is a new
    /// presentation with its own retry budget, SPEC §3 step 9).
    pub budget: crate::call_budget::CallBudget,
    pub saw_reuse: bool,
    pub grace_retry: bool,
    /// (store, generation, durable) of an applied commit.
    pub committed: Option<(u8, u64, bool)>,
    pub in_liveness: bool,
    pub clock_jumped: bool,
    /// The agent's process was paused during this resolve.
    pub paused: bool,
    /// The agent's refresh-lock lease expired under it during this resolve
    /// (its process stalled past the lease): what it then read "under the
    /// lock" was not protected by it (oracle, lease backends).
    pub lost_lease: bool,
    /// Generation of a rotation the host reported mirrored into main, and
    /// when.
    pub mirrored: Option<u64>,
    pub mirrored_at_ms: Option<u64>,
    /// The profile's entry the own store really held (unfiltered) at this
    /// resolve's last read of it (`None`: no entry, a torn file, or not
    /// read): the outcome oracle's view of what the agent could see.
    pub seen_own: Option<Arc<rotor_kernel::Credential>>,
    /// The same for main.
    pub seen_main: Option<Arc<rotor_kernel::Credential>>,
    /// The token this resolve fenced (family, rank).
    pub fenced: Option<(u32, u32)>,
    /// An injected store fault (write error, disk full, a torn file, a
    /// store-lock wait a pause made run out) hit one of this resolve's
    /// reads or writes.
    pub store_fault: bool,
    /// A store failure the world gives no reason for (oracle).
    pub store_unexcused: Option<String>,
    /// A write lost its compare-and-swap because another writer really
    /// changed the entry since this resolve read it.
    pub conflict: bool,
    /// A write lost its compare-and-swap although the entry was as read.
    pub conflict_unexcused: Option<String>,
    /// Why the refresh-lock wait ran out (`Err`: no reason in the world).
    pub lock_timeout: Option<Result<String, String>>,
}

/// One agent.
#[derive(Debug)]
pub(crate) struct Agent {
    pub who: AgentRef,
    pub process: u8,
    pub role: Role,
    pub own_store: u8,
    pub lock_slot: u8,
    pub request: rotor_kernel::Request,
    pub resolver: Option<Resolver>,
    pub effect: Option<Effect>,
    pub epoch: u32,
    pub requests_left: u8,
    pub waiting: Waiting,
    /// Counts the waits begun, so a stale wait timeout is recognised.
    pub waits: u32,
    pub holds_lock: bool,
    pub call: Option<u32>,
    pub notes: ResolveNotes,
    /// The account whose tokens this agent may hold (G3), once known.
    pub binding: Option<u8>,
    pub deferred: Option<rotor_kernel::Mutation>,
    /// The verdict on the liveness phase's resolve, judged when it ended.
    pub liveness_result: Option<Result<(), (Guarantee, String)>>,
    /// The token (family, rank) the last resolve granted, and whether it
    /// was `Cached`.
    pub granted: Option<(u32, u32, bool)>,
}

/// One process.
#[derive(Clone, Debug)]
pub(crate) struct Process {
    pub skew_ms: i64,
    pub base_skew_ms: i64,
    pub crashed: bool,
    pub paused_until_ms: Option<u64>,
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// The configuration.
    pub config: Config,
    /// Violations, in the order seen (at most one per guarantee).
    pub violations: Vec<Violation>,
    /// Expected findings (the lease backend's G1 limit).
    pub findings: Vec<Violation>,
    /// Counters.
    pub stats: Stats,
    /// Branches and faults hit.
    pub coverage: Coverage,
    /// The trace.
    pub trace: Trace,
}

impl RunOutcome {
    /// The first violation, if any.
    pub fn first(&self) -> Option<&Violation> {
        self.violations.first()
    }

    /// True when `guarantee` was violated.
    pub fn violated(&self, guarantee: Guarantee) -> bool {
        self.violations.iter().any(|v| v.guarantee == guarantee)
    }
}

/// The world. Build with [`World::new`], run with [`World::run`].
pub struct World {
    pub(crate) config: Config,
    pub(crate) hooks: Arc<dyn HostHooks>,
    pub(crate) policy: Policy,
    pub(crate) rng: crate::rng::Rng,
    pub(crate) fault_rng: crate::rng::Rng,
    pub(crate) now_ms: u64,
    pub(crate) step: u32,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    pub(crate) processes: Vec<Process>,
    pub(crate) agents: Vec<Agent>,
    pub(crate) stores: Vec<SimStore>,
    pub(crate) store_names: Vec<String>,
    pub(crate) locks: Vec<RefreshLock>,
    pub(crate) endpoint: Endpoint,
    pub(crate) actors: Vec<actors::Actor>,
    pub(crate) trace: Trace,
    pub(crate) stats: Stats,
    pub(crate) coverage: Coverage,
    pub(crate) violations: Vec<Violation>,
    pub(crate) findings: Vec<Violation>,
    pub(crate) faults_drawn: u32,
    pub(crate) liveness: bool,
    /// When liveness resolves may start (every earlier token expired).
    pub(crate) liveness_from_ms: u64,
    /// When a crash last reverted a lost-fsync write (G1 excuse).
    pub(crate) reverted_at_ms: Option<u64>,
    /// When a crash last reverted a lost-fsync write of main (G1 excuse:
    /// a mirror it undid was made in order).
    pub(crate) main_reverted_at_ms: Option<u64>,
    /// When a clock last jumped.
    pub(crate) clock_jumped_at_ms: Option<u64>,
    /// A lease expired while its holder was alive (the lease limit).
    pub(crate) lease_lost_live: bool,
    /// Ground truth: the last login or logout stored was a logout (a login
    /// stored after it replaced its tombstone).
    pub(crate) logged_out: bool,
    /// Ground truth for the outcome oracle: tokens (family, rank) whose
    /// presentation a fault left in doubt (`oracle.rs`).
    pub(crate) in_doubt: Vec<(u32, u32)>,
    /// Ground truth: every pause, as (process, from ms, until ms).
    pub(crate) pauses: Vec<(u8, u64, u64)>,
    /// Ground truth: when a process crashed, as (process, at ms).
    pub(crate) crashes: Vec<(u8, u64)>,
    /// Ground truth: the families logins installed (rotor's or another
    /// program's), in order.
    pub(crate) logins: Vec<u32>,
    /// Ground truth: the families of logins whose write failed (stored
    /// nowhere).
    pub(crate) lost_logins: Vec<u32>,
    /// Ground truth: families the provider revoked for a login or logout
    /// whose write then failed (nothing newer was stored for them).
    pub(crate) revoked_unstored: Vec<u32>,
    /// Ground truth: families the provider revoked for a reuse whose double
    /// presentation an injected fault excused (`check_presentation`: a crash
    /// that dropped a lost-fsync fence, a stalled grace retry, a torn main).
    pub(crate) revoked_by_excused_reuse: Vec<u32>,
    /// Injected store write faults applied so far.
    pub(crate) write_faults: u32,
    /// The shipped fs store code run beside the store model
    /// (`--shipped-host`, `twin.rs`).
    pub(crate) twin: Option<twin::Twin>,
    /// The shipped refresh lock held as the lock model says
    /// (`--shipped-host`, advisory backend, `twin_lock.rs`).
    pub(crate) twin_lock: Option<twin_lock::TwinLock>,
    /// Events of paused processes, in arrival order, until they resume.
    parked: Vec<(u8, Ev)>,
    stop: StopOn,
    stopped: bool,
    active_agents: usize,
}

impl World {
    /// A world for `config`, with the host's `hooks`, recording a trace in
    /// `mode`.
    pub fn new(config: Config, hooks: Arc<dyn HostHooks>, mode: TraceMode, stop: StopOn) -> Self {
        setup::build(config, hooks, mode, stop)
    }

    /// Runs the safety phase, then the liveness phase.
    pub fn run(mut self) -> RunOutcome {
        let steps_max = self.config.steps_max;
        while !self.stopped && self.step < steps_max && self.active_agents > 0 {
            let Some((at_ms, event)) = self.pop() else {
                break;
            };
            self.now_ms = self.now_ms.max(at_ms);
            if self.defer_if_paused(at_ms, event) {
                continue;
            }
            self.step += 1;
            self.maybe_inject_fault();
            self.dispatch(event);
            self.check_twin_lock();
        }
        if !self.stopped {
            self.run_liveness();
        }
        self.stats.seeds = 1;
        self.stats.steps = self.step as u64;
        self.stats.simulated_ms = self.now_ms;
        self.stats.rotations = self.endpoint.rotations as u64;
        if !self.violations.is_empty() {
            self.stats.failures = 1;
        }
        if !self.findings.is_empty() {
            self.stats.expected_findings = 1;
        }
        RunOutcome {
            config: self.config,
            violations: self.violations,
            findings: self.findings,
            stats: self.stats,
            coverage: self.coverage,
            trace: self.trace,
        }
    }

    fn run_liveness(&mut self) {
        self.liveness = true;
        self.record(What::Liveness);
        self.heal_all();
        // Every liveness resolve starts once every token issued so far has
        // expired, so none ends `Cached` on a stale token: each agent must
        // refresh or adopt, and all must converge on the newest token
        // (`check_liveness`).
        self.liveness_from_ms = self.now_ms + self.config.knobs.access_lifetime_ms;
        for index in 0..self.agents.len() {
            let agent = &mut self.agents[index];
            agent.requests_left = 1;
            agent.liveness_result = None;
            if agent.resolver.is_none() {
                // A wake the safety phase queued must not start early.
                agent.epoch += 1;
                let epoch = agent.epoch;
                let delay = self.liveness_delay();
                self.schedule(
                    delay,
                    Ev::Wake {
                        agent: index as u16,
                        epoch,
                    },
                );
            }
        }
        self.active_agents = self.agents.len();
        let steps_max = self.step + self.config.liveness_steps_max;
        while !self.stopped && self.step < steps_max && self.active_agents > 0 {
            let Some((at_ms, event)) = self.pop() else {
                break;
            };
            self.now_ms = self.now_ms.max(at_ms);
            self.step += 1;
            self.dispatch(event);
            self.check_twin_lock();
        }
        if !self.stopped {
            self.check_liveness();
        }
    }

    fn dispatch(&mut self, event: Ev) {
        match event {
            Ev::Wake { agent, epoch } => self.on_wake(agent, epoch),
            Ev::Effect { agent, epoch } => self.on_effect(agent, epoch),
            Ev::LockTimeout { agent, wait } => self.on_lock_timeout(agent, wait),
            Ev::StoreTimeout { agent, wait } => self.on_store_timeout(agent, wait),
            Ev::ServerArrive { request } => self.on_server(request),
            Ev::CallComplete {
                agent,
                epoch,
                request,
            } => self.on_call_complete(agent, epoch, request),
            Ev::Actor { actor, epoch } => self.on_actor(actor, epoch),
            Ev::Restart { process } => self.on_restart(process),
            Ev::Resume { process } => self.on_resume(process),
            Ev::LeaseExpire { lock, epoch } => self.on_lease_expire(lock, epoch),
            Ev::DeferredMirror { agent, epoch } => self.on_deferred_mirror(agent, epoch),
        }
    }

    /// The process an event runs in (`None`: the provider or the OS).
    fn event_process(&self, event: Ev) -> Option<u8> {
        match event {
            Ev::Wake { agent, .. }
            | Ev::Effect { agent, .. }
            | Ev::LockTimeout { agent, .. }
            | Ev::StoreTimeout { agent, .. }
            | Ev::CallComplete { agent, .. }
            | Ev::DeferredMirror { agent, .. } => Some(self.agents[agent as usize].process),
            Ev::Actor { actor, .. } => Some(self.actors[actor as usize].process),
            Ev::ServerArrive { .. }
            | Ev::Restart { .. }
            | Ev::Resume { .. }
            | Ev::LeaseExpire { .. } => None,
        }
    }

    /// A paused process does nothing: its events wait for the resume.
    fn defer_if_paused(&mut self, at_ms: u64, event: Ev) -> bool {
        let Some(process) = self.event_process(event) else {
            return false;
        };
        match self.processes[process as usize].paused_until_ms {
            Some(until_ms) if until_ms > at_ms => {
                self.parked.push((process, event));
                true
            }
            _ => false,
        }
    }

    /// A paused process runs again: its parked events happen now, in order.
    pub(crate) fn unpark(&mut self, process: u8) {
        let parked = std::mem::take(&mut self.parked);
        for (owner, event) in parked {
            if owner == process {
                self.schedule(0, event);
            } else {
                self.parked.push((owner, event));
            }
        }
    }

    pub(crate) fn schedule(&mut self, delay_ms: u64, event: Ev) {
        self.seq += 1;
        self.queue.push(Scheduled {
            key: Scheduled::key(self.now_ms + delay_ms, self.seq),
            event,
        });
    }

    fn pop(&mut self) -> Option<(u64, Ev)> {
        self.queue
            .pop()
            .map(|scheduled| ((scheduled.key >> 64) as u64, scheduled.event))
    }

    /// Process `p`'s wall clock, epoch ms.
    pub(crate) fn clock(&self, process: u8) -> i64 {
        BASE_EPOCH_MS + self.now_ms as i64 + self.processes[process as usize].skew_ms
    }

    #[inline]
    pub(crate) fn record(&mut self, what: What) {
        self.trace.record(self.step, self.now_ms, what);
    }

    /// With `--shipped-host`: the shipped refresh lock follows the lock
    /// model's change in this step, and must agree with it (`twin_lock.rs`).
    fn check_twin_lock(&mut self) {
        let Some(twin) = self.twin_lock.as_mut() else {
            return;
        };
        if let Some((guarantee, detail)) = twin.sync(&self.locks[0]) {
            self.violate(guarantee, || detail);
        }
    }

    /// Records a violation (the first of each guarantee) and stops the run
    /// when asked to.
    pub(crate) fn violate(&mut self, guarantee: Guarantee, detail: impl FnOnce() -> String) {
        if self.stopped || self.violations.iter().any(|v| v.guarantee == guarantee) {
            return;
        }
        self.record(What::Violation { guarantee });
        self.violations.push(Violation {
            guarantee,
            step: self.step,
            at_ms: self.now_ms,
            detail: detail(),
        });
        self.stopped |= match self.stop {
            StopOn::First => true,
            StopOn::Guarantee(wanted) => wanted == guarantee,
            StopOn::Never => false,
        };
    }

    /// Records an expected finding (the lease limit).
    pub(crate) fn expected_finding(
        &mut self,
        guarantee: Guarantee,
        detail: impl FnOnce() -> String,
    ) {
        if self.findings.is_empty() {
            self.findings.push(Violation {
                guarantee,
                step: self.step,
                at_ms: self.now_ms,
                detail: detail(),
            });
        }
    }

    /// A small host delay before an effect; sometimes a long hold.
    pub(crate) fn host_delay(&mut self) -> u64 {
        match self.rng.below(100) {
            0..=79 => self.rng.below(4),
            80..=94 => self.rng.between(5, 200),
            _ => self.rng.between(200, 3_000),
        }
    }

    /// The delay before a liveness resolve: past `liveness_from_ms`.
    pub(crate) fn liveness_delay(&mut self) -> u64 {
        self.liveness_from_ms.saturating_sub(self.now_ms) + self.rng.below(1_000)
    }

    /// Whether the refresh lock is a lease (it expires under a stalled
    /// holder): the lease and fenced-lease backends.
    pub(crate) fn is_lease(&self) -> bool {
        matches!(self.config.backend, Backend::Lease | Backend::FencedLease)
    }

    /// Whether the lease backend's documented limit applies: a lease lost
    /// under a live holder, on the backend whose fences are unconditional.
    /// On the fenced lease such a holder cannot fence, so nothing is excused.
    pub(crate) fn past_lease_limit(&self) -> bool {
        self.config.backend == Backend::Lease && self.lease_lost_live
    }

    /// Whether agent `index` holds its refresh lock now.
    pub(crate) fn holds_refresh_lock(&self, index: u16) -> bool {
        let slot = self.agents[index as usize].lock_slot as usize;
        self.locks[slot]
            .holder
            .as_ref()
            .is_some_and(|holder| holder.owner == crate::store::Owner::Agent(index))
    }

    pub(crate) fn agent_finished(&mut self) {
        self.active_agents = self.active_agents.saturating_sub(1);
    }
}
