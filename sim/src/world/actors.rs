//! Background actors: programs that write the stores beside rotor's agents.
//!
//! - `usage`: on every store, a usage-statistics writer does a read-modify-
//!   write of the `state` field under the store lock, holding the lock across
//!   its read and its write (that is what makes a write that skips the store
//!   lock lose data, G4). On main it may write in place instead of by
//!   rename, so a crash mid-write tears the file.
//! - `edit`: another program edits an unrelated profile in main.
//! - `relogin`: the user logs in again: the provider issues a new family and
//!   `rotor login` installs it in main under the refresh lock (SPEC §3).
//! - `logout`: under the refresh lock, a tombstone in main; the provider
//!   revokes every family of the account ("sign out everywhere").
//! - `foreign-login`, `foreign-logout`: the same by another program sharing
//!   the store, under the store lock only. No refresh lock masks them, so the
//!   kernel's compare-and-swap of every write against the entry as read is
//!   what keeps them (G5, G11), and the checkers hold them to it.

use std::sync::Arc;

use rotor_kernel::{Mutation, SharedStr, StoreDoc};
use serde_json::{json, Value};

use super::{Ev, World};
use crate::config::{ActorKind, FaultKind};
use crate::endpoint::{parse_token, Revocation};
use crate::rng::Rng;
use crate::store::Owner;
use crate::trace::{ActorStep, What};
use crate::world::setup::{credential, reported_identity, OTHER_PROFILE, PROFILE, PROVIDER};

/// Where an actor is in its work.
#[derive(Clone, Debug)]
pub(crate) enum ActorState {
    Idle,
    /// Holds the store lock with the document it read, and its version.
    Holding(Arc<StoreDoc>, u64),
    /// Waits for (or holds) the refresh lock.
    Locking,
    Finished,
}

/// One background actor.
#[derive(Clone, Debug)]
pub(crate) struct Actor {
    pub kind: ActorKind,
    pub store: u8,
    pub process: u8,
    pub in_place: bool,
    pub epoch: u32,
    pub state: ActorState,
    pub counter: u64,
    /// The key this writer's usage counter has in `state.usage`.
    usage_key: String,
}

impl Actor {
    pub(crate) fn new(kind: ActorKind, store: u8, process: u8, in_place: bool) -> Self {
        Actor {
            kind,
            store,
            process,
            in_place,
            epoch: 0,
            state: ActorState::Idle,
            counter: 0,
            usage_key: format!("w{store}"),
        }
    }

    pub(crate) fn first_delay(&self, rng: &mut Rng) -> u64 {
        match self.kind {
            ActorKind::Usage | ActorKind::Edit => rng.between(0, 60_000),
            _ => rng.between(60_000, 2_400_000),
        }
    }

    /// The change this actor makes to a document (its intent).
    fn change(&self, doc: &mut StoreDoc) {
        let key = self.usage_key.clone();
        match self.kind {
            ActorKind::Usage => {
                let state = doc.state.get_or_insert_with(|| json!({}));
                if let Value::Object(map) = state {
                    let usage = map.entry("usage").or_insert_with(|| json!({}));
                    if let Value::Object(usage) = usage {
                        usage.insert(key, json!(self.counter));
                    }
                }
            }
            _ => {
                if let Some(entry) = doc.profiles.get_mut(OTHER_PROFILE) {
                    entry.extra.insert("note".into(), json!(self.counter));
                }
            }
        }
    }
}

impl World {
    pub(super) fn on_actor(&mut self, index: u8, epoch: u32) {
        let j = index as usize;
        if self.actors[j].epoch != epoch || self.processes[self.actors[j].process as usize].crashed
        {
            return;
        }
        if self.liveness {
            return self.stop_actor(index);
        }
        match self.actors[j].kind {
            ActorKind::Usage | ActorKind::Edit => self.writer_step(index),
            ActorKind::Relogin | ActorKind::Logout => self.login_step(index, true),
            ActorKind::ForeignLogin | ActorKind::ForeignLogout => self.login_step(index, false),
        }
    }

    /// Faults off: an actor lets go of any lock it holds or waits for,
    /// without writing.
    pub(crate) fn stop_actor(&mut self, index: u8) {
        let j = index as usize;
        if let ActorState::Holding(..) = self.actors[j].state {
            let s = self.actors[j].store as usize;
            self.release_store_lock(s, false);
        }
        let owner = Owner::Actor(index);
        let process = self.actors[j].process;
        for slot in 0..self.locks.len() {
            self.locks[slot].waiters.retain(|w| w.owner != owner);
            let holds = self.locks[slot]
                .holder
                .as_ref()
                .is_some_and(|h| h.owner == owner);
            if holds && self.locks[slot].release(owner, process) {
                self.hand_over(slot);
            }
        }
        self.actors[j].state = ActorState::Finished;
    }

    fn reschedule(&mut self, index: u8, delay_ms: u64) {
        let epoch = self.actors[index as usize].epoch;
        self.schedule(
            delay_ms,
            Ev::Actor {
                actor: index,
                epoch,
            },
        );
    }

    /// Frees a store lock (`by_crash`: its holder's process died) and lets
    /// its waiting agents try again.
    pub(crate) fn release_store_lock(&mut self, s: usize, by_crash: bool) {
        self.stores[s].lock = None;
        if !self.hooks.wake_store_lock_waiters(by_crash) {
            return;
        }
        let waiters = std::mem::take(&mut self.stores[s].waiters);
        for (agent, epoch) in waiters {
            let delay = self.rng.below(3);
            self.schedule(delay, Ev::Effect { agent, epoch });
        }
    }

    fn writer_step(&mut self, index: u8) {
        let j = index as usize;
        let s = self.actors[j].store as usize;
        let kind = self.actors[j].kind;
        let store = s as u8;
        match std::mem::replace(&mut self.actors[j].state, ActorState::Idle) {
            ActorState::Idle => {
                if self.stores[s].lock.is_some() {
                    let delay = self.rng.between(1, 50);
                    return self.reschedule(index, delay);
                }
                match self.stores[s].load(&self.store_names[s]) {
                    Ok(doc) => {
                        self.stores[s].lock = Some(Owner::Actor(index));
                        let version = self.stores[s].version;
                        self.actors[j].state = ActorState::Holding(doc, version);
                        self.record(What::Actor {
                            actor: kind,
                            store,
                            action: ActorStep::Read,
                        });
                        let hold = self.rng.between(1, 300);
                        self.reschedule(index, hold);
                    }
                    Err(_) => {
                        self.record(What::Actor {
                            actor: kind,
                            store,
                            action: ActorStep::GaveUp,
                        });
                        let delay = self.rng.between(20_000, 200_000);
                        self.reschedule(index, delay);
                    }
                }
            }
            ActorState::Holding(held, read_version) => {
                self.actors[j].counter += 1;
                let process = self.actors[j].process;
                let in_place = self.actors[j].in_place;
                let step = if self.draw_write_fault(process).is_some() {
                    ActorStep::GaveUp
                } else if in_place && self.draw_torn_write(process) {
                    // The writer dies mid-write: a prefix of the new document.
                    let mut doc = held;
                    self.actors[j].change(Arc::make_mut(&mut doc));
                    let bytes = doc.to_json();
                    let cut = self.rng.below(bytes.len() as u64) as usize;
                    self.stores[s].tear(bytes[..cut].to_vec());
                    // The account the store was bound to is gone with it (G3).
                    // A torn main also takes the binding of a sub-agent whose
                    // own store holds no entry of the profile: the token it
                    // was handed lived in main alone (its own commit failed
                    // after the mirror landed, SPEC §3 step 8), so nothing
                    // stored anywhere names its account any more, and like
                    // any agent with an empty store it follows main (found by
                    // a fresh seed, 0xfd8d11c64859b5db).
                    let own_empty: Vec<bool> = self
                        .stores
                        .iter()
                        .map(|store| {
                            store
                                .doc()
                                .is_none_or(|d| !d.profiles.contains_key(PROFILE))
                        })
                        .collect();
                    for agent in &mut self.agents {
                        let own = agent.own_store as usize;
                        if own == s || (s == 0 && own_empty[own]) {
                            agent.binding = None;
                        }
                    }
                    self.record(What::Actor {
                        actor: kind,
                        store,
                        action: ActorStep::Write,
                    });
                    // The OS releases a dead writer's store lock.
                    self.release_store_lock(s, false);
                    self.crash_process(process);
                    return;
                } else {
                    let synced = !self.draw_lost_fsync(process);
                    self.check_stale_write(s, read_version, kind);
                    let actor = &self.actors[j];
                    self.stores[s].replace_changed(held, |doc| actor.change(doc), synced, process);
                    let before = self.stores[s]
                        .doc()
                        .and_then(|doc| doc.profiles.get(PROFILE))
                        .cloned();
                    self.check_after_actor_write(s, before.as_ref());
                    ActorStep::Write
                };
                self.record(What::Actor {
                    actor: kind,
                    store,
                    action: step,
                });
                self.release_store_lock(s, false);
                let delay = self.rng.between(20_000, 200_000);
                self.reschedule(index, delay);
            }
            other => self.actors[j].state = other,
        }
    }

    fn login_step(&mut self, index: u8, takes_lock: bool) {
        let j = index as usize;
        let process = self.actors[j].process;
        let slot = self.hooks.lock_slot(0) as usize;
        let owner = Owner::Actor(index);
        if takes_lock {
            let holds = self.locks[slot]
                .holder
                .as_ref()
                .is_some_and(|h| h.owner == owner);
            if !holds {
                if matches!(self.actors[j].state, ActorState::Finished) {
                    return;
                }
                if !self.locks[slot].try_acquire(owner, process, self.now_ms, true) {
                    if !matches!(self.actors[j].state, ActorState::Locking) {
                        self.actors[j].state = ActorState::Locking;
                        let epoch = self.actors[j].epoch;
                        self.locks[slot].waiters.push(crate::lock::LockWaiter {
                            owner,
                            process,
                            epoch,
                            since_ms: self.now_ms,
                        });
                    }
                    return;
                }
            }
        }
        if self.stores[0].lock.is_some() {
            let delay = self.rng.between(1, 20);
            return self.reschedule(index, delay);
        }
        let kind = self.actors[j].kind;
        let current_family = self.stores[0]
            .doc()
            .and_then(|doc| doc.profiles.get(PROFILE))
            .and_then(|c| c.refresh.as_ref())
            .and_then(|r| parse_token(r.expose()))
            .map(|(family, _)| family);
        let logout = matches!(kind, ActorKind::Logout | ActorKind::ForeignLogout);
        let mutation = if logout {
            // "Sign out": the provider ends every session of the account.
            // (A logout that revoked only main's current family would leave
            // stale copies of replaced families in sub-agent stores alive;
            // see the simulator's report on that gap.)
            let _ = current_family;
            for family in 0..self.endpoint.families.len() as u32 {
                if self.endpoint.families[family as usize].account == 0 {
                    self.endpoint
                        .revoke(family, Revocation::Logout, self.now_ms);
                }
            }
            Mutation::Logout {
                provider: PROVIDER.into(),
            }
        } else {
            let family = self.endpoint.issue_family(0, 0);
            self.logins.push(family);
            if self.config.knobs.single_session {
                if let Some(old) = current_family {
                    self.endpoint.revoke(old, Revocation::NewLogin, self.now_ms);
                }
            }
            let expires = self.clock(process) + self.config.knobs.access_lifetime_ms as i64;
            let shape = self.config.knobs.identity;
            let mut installed = credential(shape, 0, family, 0, 0, expires);
            if self.config.knobs.provider_reports_identity {
                // A login learns the account from the provider, as a refresh does.
                let (account_id, email) = reported_identity(shape, 0);
                installed.account_id = account_id.map(SharedStr::from).or(installed.account_id);
                installed.email = email.map(SharedStr::from).or(installed.email);
            }
            Mutation::Login {
                credential: installed.into(),
            }
        };
        // The ban takes effect with the write (and reverts with it). G11
        // holds for another program's login or logout too: it skips the
        // refresh lock, but every write of an in-flight refresh carries the
        // entry it read and loses its compare-and-swap against the new one
        // (SPEC §3, "Compare-and-swap, login and logout").
        let banned_below = self.endpoint.families.len() as u32 - u32::from(!logout);
        let previous = (
            self.stores[0].banned_below,
            self.stores[0].banned_below_durable,
        );
        self.stores[0].banned_below = banned_below;
        let (result, synced) = self.rotor_write(process, 0, &mutation);
        if result.is_ok() {
            // Ground truth: whether the last login or logout stored is a
            // logout. A login stored over the tombstone replaces it, so a
            // family revoked after it is no longer "logged out" (fresh seed
            // 0xfd8d11c64847baa5: a foreign logout, then a foreign login,
            // then a logout whose write failed; the liveness check took the
            // first logout for a stored one and called the revoked login's
            // family a lost convergence).
            self.logged_out = logout;
        }
        if result.is_err() {
            // Ground truth: this login's family reached no store, and the
            // families the provider revoked for this login or logout (a
            // single-session login, a sign-out) have no successor anywhere.
            if !logout {
                if let Some(&family) = self.logins.last() {
                    self.lost_logins.push(family);
                }
            }
            let now_ms = self.now_ms;
            let revoked = self.endpoint.families.iter().enumerate().filter(|(_, f)| {
                matches!(f.revoked, Some(Revocation::Logout | Revocation::NewLogin))
                    && f.revoked_at_ms == now_ms
            });
            let revoked: Vec<u32> = revoked.map(|(family, _)| family as u32).collect();
            self.revoked_unstored.extend(revoked);
        }
        if result.is_ok() && !logout {
            // A login into main is the person choosing main's account: the
            // agents whose own store is main now hold that account's token
            // by their own store, not by a copy, and are bound to it (G3
            // judges copies; found by a fresh seed, 0x413484ce2c5fd989, where
            // a torn main had been refilled with the other account's family).
            for agent in &mut self.agents {
                if agent.own_store == 0 {
                    agent.binding = Some(0);
                }
            }
        }
        if result.is_ok() && synced {
            self.stores[0].banned_below_durable = banned_below;
        } else if result.is_err() {
            (
                self.stores[0].banned_below,
                self.stores[0].banned_below_durable,
            ) = previous;
        }
        self.record(What::Actor {
            actor: kind,
            store: 0,
            action: if result.is_ok() {
                ActorStep::Installed
            } else {
                ActorStep::GaveUp
            },
        });
        if takes_lock && self.locks[slot].release(owner, process) {
            self.hand_over(slot);
        }
        self.actors[j].state = ActorState::Finished;
    }

    /// A fault kind drawn for an in-place write: true when it tears.
    fn draw_torn_write(&mut self, process: u8) -> bool {
        self.draw_op_fault(process, &[FaultKind::TornWrite])
            .is_some()
    }
}
