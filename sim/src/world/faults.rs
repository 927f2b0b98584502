//! Fault injection: when a fault is drawn, and what it does to the world.
//!
//! All fault decisions come from their own random stream, and every drawn
//! fault gets an index. A shrinker masks faults by index (`fault_mask`): a
//! masked fault is drawn exactly as before, recorded as masked, and not
//! applied, so the other draws do not shift.
//!
//! Per-step faults (crash, pause, clock jump) are drawn before each step; the
//! others are drawn at the operation they hit (a store write, an in-place
//! write, an endpoint call). Each model matches what the real thing does:
//! a crash releases advisory locks (the OS does) but not leases, and drops
//! the process's unsynced writes; a pause stops lease renewal.

use super::actors::ActorState;
use super::{Ev, Waiting, World};
use crate::config::FaultKind;
use crate::coverage::Branch;
use crate::endpoint::ServerFault;
use crate::store::Owner;
use crate::trace::What;

const STEP_FAULTS: [FaultKind; 3] = [FaultKind::Crash, FaultKind::Pause, FaultKind::ClockJump];

impl World {
    fn fault_budget_left(&self) -> bool {
        !self.liveness && self.faults_drawn < self.config.knobs.faults_max
    }

    /// Counts a drawn fault; returns whether it is applied (not masked).
    fn note_fault(&mut self, kind: FaultKind, process: u8) -> bool {
        let index = self.faults_drawn.min(63);
        self.faults_drawn += 1;
        let applied = self.config.fault_mask & (1u64 << index) == 0;
        self.record(What::Fault {
            fault: kind,
            process,
            applied,
        });
        if applied {
            self.coverage.fault(kind);
            self.stats.faults[kind as usize] += 1;
        }
        applied
    }

    /// Draws one of `kinds` (those enabled) for an operation in `process`.
    pub(crate) fn draw_op_fault(&mut self, process: u8, kinds: &[FaultKind]) -> Option<FaultKind> {
        if !self.fault_budget_left() {
            return None;
        }
        let enabled = kinds.iter().filter(|k| self.config.faults.has(**k)).count();
        if enabled == 0 {
            return None;
        }
        let rate = self.config.knobs.fault_rate_per_mille * 3;
        if !self.fault_rng.chance(rate) {
            return None;
        }
        let pick = self.fault_rng.below(enabled as u64) as usize;
        let kind = *kinds
            .iter()
            .filter(|k| self.config.faults.has(**k))
            .nth(pick)?;
        self.note_fault(kind, process).then_some(kind)
    }

    /// An I/O error or a full disk on a store write.
    pub(crate) fn draw_write_fault(&mut self, process: u8) -> Option<FaultKind> {
        let fault = self.draw_op_fault(process, &[FaultKind::WriteError, FaultKind::DiskFull]);
        // The fault log the outcome oracle reads (`oracle.rs`).
        self.write_faults += u32::from(fault.is_some());
        fault
    }

    /// True when a lost fsync could still be drawn in this run.
    pub(crate) fn lost_fsync_possible(&self) -> bool {
        self.fault_budget_left() && self.config.faults.has(FaultKind::LostFsync)
    }

    /// An fsync that reports success and persists nothing.
    pub(crate) fn draw_lost_fsync(&mut self, process: u8) -> bool {
        self.draw_op_fault(process, &[FaultKind::LostFsync])
            .is_some()
    }

    /// What goes wrong with an endpoint call, if anything.
    pub(crate) fn draw_endpoint_fault(&mut self, process: u8) -> ServerFault {
        let kinds = [
            FaultKind::NotSent,
            FaultKind::ServerError,
            FaultKind::Timeout,
            FaultKind::LostResponse,
        ];
        match self.draw_op_fault(process, &kinds) {
            Some(FaultKind::NotSent) => ServerFault::NotSent,
            Some(FaultKind::ServerError) => match self.fault_rng.below(3) {
                0 => ServerFault::Unavailable,
                1 => ServerFault::UnavailableJson,
                _ => ServerFault::RateLimited,
            },
            Some(FaultKind::Timeout) => ServerFault::Timeout,
            Some(FaultKind::LostResponse) => ServerFault::LostResponse,
            _ => ServerFault::None,
        }
    }

    /// Before a step: maybe crash, pause or jump the clock of a process.
    pub(super) fn maybe_inject_fault(&mut self) {
        if !self.fault_budget_left() {
            return;
        }
        let enabled = STEP_FAULTS
            .iter()
            .filter(|k| self.config.faults.has(**k))
            .count();
        if enabled == 0
            || !self
                .fault_rng
                .chance(self.config.knobs.fault_rate_per_mille)
        {
            return;
        }
        let pick = self.fault_rng.below(enabled as u64) as usize;
        let Some(kind) = STEP_FAULTS
            .iter()
            .copied()
            .filter(|k| self.config.faults.has(*k))
            .nth(pick)
        else {
            return;
        };
        let process = self.pick_target(kind);
        let duration_ms = self.pause_duration();
        let jump_ms = self.fault_rng.between(1_000, 900_000) as i64
            * if self.fault_rng.chance(500) { 1 } else { -1 };
        if self.processes[process as usize].crashed || !self.note_fault(kind, process) {
            return;
        }
        match kind {
            FaultKind::Crash => self.crash_process(process),
            FaultKind::Pause => self.pause_process(process, duration_ms),
            _ => self.jump_clock(process, jump_ms),
        }
    }

    /// Half the time, aim at a process where the fault matters most: one
    /// with a call in flight or a lock held.
    fn pick_target(&mut self, kind: FaultKind) -> u8 {
        let random = self.fault_rng.below(self.processes.len() as u64) as u8;
        if !self.fault_rng.chance(500) || kind == FaultKind::ClockJump {
            return random;
        }
        self.agents
            .iter()
            .find(|a| a.call.is_some() && a.resolver.is_some() || a.holds_lock)
            .map_or(random, |a| a.process)
    }

    /// Short stalls, stalls just past a lease, and stalls past the lock
    /// wait budget.
    fn pause_duration(&mut self) -> u64 {
        let lease = self.config.knobs.lease_ms;
        match self.fault_rng.below(10) {
            0..=4 => self.fault_rng.between(100, 5_000),
            5..=7 => lease + self.fault_rng.between(0, 20_000),
            _ => self.fault_rng.between(100_000, 300_000),
        }
    }

    /// A process dies now.
    pub(crate) fn crash_process(&mut self, process: u8) {
        let p = process as usize;
        if self.processes[p].crashed {
            return;
        }
        self.processes[p].crashed = true;
        self.crashes.push((process, self.now_ms));
        let lease = self.is_lease();
        for index in 0..self.agents.len() {
            if self.agents[index].process != process {
                continue;
            }
            let agent = &self.agents[index];
            let in_flight = agent
                .call
                .is_some_and(|r| !self.endpoint.requests[r as usize].processed);
            if in_flight && agent.resolver.is_some() {
                self.coverage.hit(Branch::CrashMidCall);
            }
            let running = agent.resolver.is_some();
            // Ground truth (oracle): a presenter that dies after fencing
            // leaves its token's fate unknown to everyone else.
            if let Some(token) = agent.notes.fenced.filter(|_| running) {
                self.in_doubt.push(token);
            }
            let owner = Owner::Agent(index as u16);
            for lock in &mut self.locks {
                lock.waiters.retain(|w| w.owner != owner);
            }
            for store in &mut self.stores {
                store.waiters.retain(|(a, _)| *a as usize != index);
            }
            let agent = &mut self.agents[index];
            agent.resolver = None;
            agent.effect = None;
            agent.waiting = Waiting::Nothing;
            agent.holds_lock = false;
            agent.deferred = None;
            agent.epoch += 1;
            if running && agent.requests_left == 0 {
                self.agent_finished();
            }
        }
        for index in 0..self.actors.len() {
            if self.actors[index].process != process {
                continue;
            }
            let owner = Owner::Actor(index as u8);
            for lock in &mut self.locks {
                lock.waiters.retain(|w| w.owner != owner);
            }
            if let ActorState::Holding(..) = self.actors[index].state {
                let s = self.actors[index].store as usize;
                self.stores[s].freed_by_crash = Some((process, self.now_ms));
                self.release_store_lock(s, true);
            }
            if !matches!(self.actors[index].state, ActorState::Finished) {
                self.actors[index].state = ActorState::Idle;
            }
            self.actors[index].epoch += 1;
        }
        // The OS releases the process's advisory locks; leases run out later.
        for slot in 0..self.locks.len() {
            let held = self.locks[slot]
                .holder
                .as_ref()
                .is_some_and(|h| h.process == process);
            if !held {
                continue;
            }
            if lease {
                if let Some(holder) = self.locks[slot].holder.as_mut() {
                    holder.orphaned = true;
                }
                self.schedule_lease_expiry(slot);
            } else {
                self.locks[slot].holder = None;
                self.locks[slot].epoch += 1;
                self.hand_over(slot);
            }
        }
        for s in 0..self.stores.len() {
            let reverts = self.stores[s].unsynced_by == Some(process);
            let fences_before = if reverts {
                self.fence_tokens(s)
            } else {
                Vec::new()
            };
            if self.stores[s].crash(process) {
                // Ground truth (oracle): a lost fsync reverted the store; a
                // fence whose clearing was lost is back, in doubt again.
                for token in self.fence_tokens(s) {
                    if !fences_before.contains(&token) {
                        self.in_doubt.push(token);
                    }
                }
                self.reverted_at_ms = Some(self.now_ms);
                if s == 0 {
                    self.main_reverted_at_ms = Some(self.now_ms);
                }
                self.abandon_snapshots(s);
            }
        }
        let delay = self.fault_rng.between(100, 30_000);
        self.schedule(delay, Ev::Restart { process });
    }

    /// The tokens (family, rank) store `s`'s fences name.
    fn fence_tokens(&self, s: usize) -> Vec<(u32, u32)> {
        let Some(doc) = self.stores[s].doc() else {
            return Vec::new();
        };
        let Some(fences) = doc.fences.get(crate::world::setup::PROFILE) else {
            return Vec::new();
        };
        let mut tokens = Vec::new();
        for fence in fences {
            // A fence names its token by fingerprint; the families' tokens
            // are few, so find it among them.
            for (family, f) in self.endpoint.families.iter().enumerate() {
                for n in 0..=f.current {
                    let token = crate::endpoint::refresh_token(family as u32, n);
                    if rotor_kernel::Fingerprint::of(&token) == fence.refresh_fp {
                        tokens.push((family as u32, n));
                    }
                }
            }
        }
        tokens
    }

    /// A store reverted: a writer holding a copy read from the lost contents
    /// gives up rather than write those contents back (the file it read no
    /// longer exists; as after a power loss, it would not have survived
    /// either).
    fn abandon_snapshots(&mut self, s: usize) {
        for index in 0..self.actors.len() {
            let holding = matches!(self.actors[index].state, ActorState::Holding(..))
                && self.actors[index].store as usize == s;
            if holding {
                self.actors[index].state = ActorState::Idle;
                self.release_store_lock(s, false);
            }
        }
    }

    pub(crate) fn schedule_lease_expiry(&mut self, slot: usize) {
        let lease = self
            .policy
            .lease()
            .expect("bug: a lease expiry scheduled on the advisory backend");
        let expiry =
            self.locks[slot].lease_expiry(self.now_ms, lease.lease_ms, lease.renew_every_ms);
        let epoch = self.locks[slot].epoch;
        self.schedule(
            expiry.saturating_sub(self.now_ms),
            Ev::LeaseExpire {
                lock: slot as u8,
                epoch,
            },
        );
    }

    fn pause_process(&mut self, process: u8, duration_ms: u64) {
        let until = self.now_ms + duration_ms;
        self.pauses.push((process, self.now_ms, until));
        self.processes[process as usize].paused_until_ms = Some(until);
        for agent in &mut self.agents {
            if agent.process == process && agent.resolver.is_some() {
                agent.notes.paused = true;
            }
        }
        if self.is_lease() {
            for slot in 0..self.locks.len() {
                if self.locks[slot]
                    .holder
                    .as_ref()
                    .is_some_and(|h| h.process == process)
                {
                    self.schedule_lease_expiry(slot);
                }
            }
        }
        self.schedule(duration_ms, Ev::Resume { process });
    }

    fn jump_clock(&mut self, process: u8, jump_ms: i64) {
        self.processes[process as usize].skew_ms += jump_ms;
        self.clock_jumped_at_ms = Some(self.now_ms);
        for agent in &mut self.agents {
            if agent.process == process && agent.resolver.is_some() {
                agent.notes.clock_jumped = true;
            }
        }
    }

    pub(super) fn on_restart(&mut self, process: u8) {
        let p = process as usize;
        if !self.processes[p].crashed {
            return;
        }
        self.processes[p].crashed = false;
        self.record(What::Restart { process });
        self.wake_process(process);
    }

    fn wake_process(&mut self, process: u8) {
        for index in 0..self.agents.len() {
            let agent = &self.agents[index];
            if agent.process == process && agent.resolver.is_none() && agent.requests_left > 0 {
                let epoch = agent.epoch;
                let delay = self.rng.below(500);
                self.schedule(
                    delay,
                    Ev::Wake {
                        agent: index as u16,
                        epoch,
                    },
                );
            }
        }
        for index in 0..self.actors.len() {
            let actor = &self.actors[index];
            if actor.process == process && !matches!(actor.state, ActorState::Finished) {
                let epoch = actor.epoch;
                let delay = self.rng.between(1, 1_000);
                self.schedule(
                    delay,
                    Ev::Actor {
                        actor: index as u8,
                        epoch,
                    },
                );
            }
        }
    }

    pub(super) fn on_resume(&mut self, process: u8) {
        let p = process as usize;
        match self.processes[p].paused_until_ms {
            Some(until) if until <= self.now_ms => {}
            _ => return,
        }
        self.processes[p].paused_until_ms = None;
        self.record(What::Restart { process });
        self.renew_leases(process);
        self.unpark(process);
    }

    /// A running process renews the leases it holds.
    fn renew_leases(&mut self, process: u8) {
        for lock in &mut self.locks {
            if let Some(holder) = lock.holder.as_mut() {
                if holder.process == process && !holder.orphaned {
                    holder.acquired_at_ms = self.now_ms;
                    lock.epoch += 1;
                }
            }
        }
    }

    pub(super) fn on_lease_expire(&mut self, slot: u8, epoch: u32) {
        let s = slot as usize;
        if self.locks[s].epoch != epoch {
            return;
        }
        let Some(holder) = self.locks[s].holder.clone() else {
            return;
        };
        let state = &self.processes[holder.process as usize];
        let stalled = state
            .paused_until_ms
            .is_some_and(|until| until > self.now_ms);
        if !stalled && !state.crashed && !holder.orphaned {
            return; // renewed
        }
        if stalled && !holder.orphaned {
            self.lease_lost_live = true;
        }
        // Ground truth (oracle): a holder that loses its lease after fencing
        // leaves its token's fate unknown to the next holder (on the fenced
        // lease it may still present: its fence covers that window).
        if let Owner::Agent(index) = holder.owner {
            let agent = &mut self.agents[index as usize];
            agent.notes.lost_lease = agent.resolver.is_some();
            if let Some(token) = agent.notes.fenced.filter(|_| agent.resolver.is_some()) {
                self.in_doubt.push(token);
            }
        }
        self.locks[s].holder = None;
        self.locks[s].epoch += 1;
        self.record(What::LeaseExpired {
            process: holder.process,
        });
        self.hand_over(s);
    }

    /// The liveness phase: every process runs, clocks are right, actors stop.
    pub(super) fn heal_all(&mut self) {
        for process in 0..self.processes.len() {
            let state = &mut self.processes[process];
            state.skew_ms = state.base_skew_ms;
            if state.paused_until_ms.take().is_some() {
                self.renew_leases(process as u8);
                self.unpark(process as u8);
            }
            if self.processes[process].crashed {
                self.processes[process].crashed = false;
                self.record(What::Restart {
                    process: process as u8,
                });
            }
        }
        for index in 0..self.actors.len() {
            self.stop_actor(index as u8);
            self.actors[index].epoch += 1;
        }
    }
}
