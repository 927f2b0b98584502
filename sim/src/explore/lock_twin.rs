//! The shipped refresh lock beside the explorer's lock model
//! (`rotor check --exhaustive <world> --shipped-host`, advisory backend).
//!
//! The explorer decides by its own rule who may take the refresh lock: an
//! agent waiting to acquire is enabled when no agent of another process
//! holds its lock slot, and none of its own process either (the in-process
//! single-flight slot). That rule is a statement of what the fs host's lock
//! does. After every step, for every agent waiting to acquire, the shipped
//! lock ([`rotor_fs::FsRefreshLock`] over one `SingleFlight` per process and
//! a simulated disk) is asked the same question with the same holders, and
//! must answer the same (where the slot has a holder): a grant the model makes that the shipped lock
//! refuses, or a wait the model imposes that the shipped lock would not, is
//! a violation of G8 at that step, with the path that replays it.

use rotor_kernel::{Effect, LockKey};

use super::check::Found;
use super::state::State;
use super::Ctx;
use crate::guarantee::Guarantee;
use crate::world::twin_lock::shipped_lets_in;

impl State {
    /// Checks every pending acquisition against the shipped lock.
    pub(super) fn check_lock_twin(&self, ctx: &Ctx<'_>, found: &mut Vec<Found>) {
        let processes = self.process_count();
        for (a, agent) in self.agents.iter().enumerate() {
            let waiting = agent.resolver.is_some()
                && agent.split.is_none()
                && matches!(agent.effect, Some(Effect::AcquireLock { .. }));
            if !waiting {
                continue;
            }
            let slot = agent.slot as usize;
            // A free slot is free in both (the model's rule is an `all` over
            // no holders); the question is asked where someone holds it.
            if self.locks[slot].is_empty() {
                continue;
            }
            let holders: Vec<(u8, String)> = self.locks[slot]
                .iter()
                .map(|&h| {
                    let holder = &self.agents[h as usize];
                    (holder.process, holder.name.clone())
                })
                .collect();
            let key = LockKey::new("explore", &format!("slot-{slot}"));
            let model = self.lock_free_for(ctx, a);
            let detail = match shipped_lets_in(processes, &key, &holders, (agent.process, &agent.name)) {
                Ok(refused) if refused.is_none() == model => continue,
                Ok(None) => format!(
                    "the explorer's lock model makes {} (process {}) wait for {holders:?} (slot {slot}), \
                     the shipped fs lock lets it in",
                    agent.name, agent.process
                ),
                Ok(Some(why)) => format!(
                    "the explorer's lock model lets {} (process {}) take slot {slot} beside {holders:?}, \
                     the shipped fs lock refuses it: {why}",
                    agent.name, agent.process
                ),
                Err(detail) => detail,
            };
            found.push(Found::new(Guarantee::G8, detail));
        }
    }
}
