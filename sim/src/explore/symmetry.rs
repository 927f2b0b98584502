//! Symmetry reduction: interchangeable processes are explored once.
//!
//! Two processes of a world are *interchangeable* when renaming one into the
//! other (and the other into the one) maps the world onto itself: the same
//! number of agents, the same roles, sub-agent stores that start out the same,
//! the same bindings and requests, and lock slots the host assigns alike. In
//! `crash-faults` (two processes of one main agent each) "p0 crashed after
//! fencing while p1 waits" and "p1 crashed after fencing while p0 waits" are
//! the same situation with the names exchanged: every future of one is a
//! future of the other with the names exchanged, and every checker (each
//! names a guarantee, never a process) judges both alike. The explorer keeps
//! one of them.
//!
//! A [`Renaming`] is one permutation of the processes, extended to everything
//! a state holds that names a process: agent indices (the `agents` vector,
//! lock holders, calls in flight), sub-agent store indices (the `stores`
//! vector, `committed`), lock slots, and the fence holders
//! (`{pid: 100 + p, host: "sim", agent: "p{p}.a{k}"}`) inside store documents
//! (the stores, the usage writer's and a split write's copies), inside a
//! deferred write, and inside every store view an agent's resolver was
//! given. The last is why each
//! agent carries one input-history hash *per renaming*: a resolver's state is
//! the sequence of its inputs, which cannot be renamed after the fact once
//! hashed, so [`State::deliver`](super::State) hashes each input as each
//! renaming renames it. What no state field holds, the resolver's own request
//! (its holder) and its pending effect, follows from the agent's position and
//! that history.
//!
//! The visited set is keyed by the least of the state's keys under every
//! renaming ([`State::canonical_key`](super::State::canonical_key)): two
//! states get the same key exactly when one is a renaming of the other (up to
//! a 128-bit hash collision, as before). The state expanded is the first one
//! reached, a real state, so paths replay unchanged; breadth-first order over
//! these classes keeps every counterexample shortest, because a state and its
//! renaming have futures of the same lengths that violate the same guarantees.
//!
//! Soundness rests on three facts, each checked or argued where it lives:
//! the kernel treats a holder as opaque data (it selects fences by token
//! fingerprint, never by holder); the explorer's steps and checkers refer to
//! processes only through the indices renamed here; and the host's hooks see
//! no process except through [`HostHooks::lock_slot`](crate::HostHooks::lock_slot),
//! whose slots must rename consistently or the permutation is dropped. A
//! permutation is kept only when it also maps the initial state onto itself
//! (so the process that alone holds another account's store, or the one whose
//! agents share a single-flight, is never exchanged with another). Worlds of
//! more than [`PROCESSES_PERMUTED_MAX`] processes are explored unreduced.

use std::borrow::Cow;

use rotor_kernel::{Fence, Holder, Input, Mutation, ProfileView, StoreDoc};

use super::state::{Call, State, Step};

/// Above this many processes no permutation is tried (720 renamings per
/// state key would cost more than they save).
pub const PROCESSES_PERMUTED_MAX: usize = 6;

/// One permutation of interchangeable processes, extended to every index and
/// name a state holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Renaming {
    /// The new index of each process.
    processes: Vec<u8>,
    /// The new index of each agent, and the old agent at each new index.
    agents: Vec<u8>,
    agents_back: Vec<u8>,
    /// The new index of each store, and the old store at each new index.
    stores: Vec<u8>,
    stores_back: Vec<u8>,
    /// The new index of each lock slot, and the old slot at each new index.
    slots: Vec<u8>,
    slots_back: Vec<u8>,
    /// Each moved agent's fence holder, and its image's.
    holders: Vec<(Holder, Holder)>,
}

/// The renamings the explorer keys states by; the first is the identity.
#[derive(Clone, Debug)]
pub struct Symmetry {
    renamings: Vec<Renaming>,
}

/// A bijection of `0..len` extending `pairs` (old, new); the indices no pair
/// names map onto the ones no pair reaches, in order. `None` when `pairs` is
/// not a function or not injective.
fn bijection(len: usize, pairs: impl IntoIterator<Item = (u8, u8)>) -> Option<Vec<u8>> {
    let mut map: Vec<Option<u8>> = vec![None; len];
    let mut taken = vec![false; len];
    for (from, to) in pairs {
        let (f, t) = (from as usize, to as usize);
        match map[f] {
            Some(already) if already == to => continue,
            Some(_) => return None,
            None if taken[t] => return None,
            None => {
                map[f] = Some(to);
                taken[t] = true;
            }
        }
    }
    let mut free = (0..len).filter(|&t| !taken[t]);
    map.into_iter()
        .map(|m| m.or_else(|| free.next().map(|t| t as u8)))
        .collect()
}

fn inverse(map: &[u8]) -> Vec<u8> {
    let mut back = vec![0; map.len()];
    for (from, &to) in map.iter().enumerate() {
        back[to as usize] = from as u8;
    }
    back
}

impl Renaming {
    /// The renaming of `state`'s world that moves process `p` to
    /// `processes[p]`, or `None` when that permutation does not extend to
    /// agents, stores and lock slots (processes of different sizes, or slots
    /// the host assigns unlike).
    fn of(state: &State, processes: &[u8]) -> Option<Renaming> {
        let members = |p: u8| -> Vec<usize> {
            (0..state.agents.len())
                .filter(|&a| state.agents[a].process == p)
                .collect()
        };
        let mut agent_pairs = Vec::new();
        for (p, &q) in processes.iter().enumerate() {
            let (from, to) = (members(p as u8), members(q));
            if from.len() != to.len() {
                return None;
            }
            agent_pairs.extend(from.into_iter().zip(to).map(|(a, b)| (a as u8, b as u8)));
        }
        let agents = bijection(state.agents.len(), agent_pairs.iter().copied())?;
        let image = |a: u8| &state.agents[agents[a as usize] as usize];
        let stores = bijection(
            state.stores.len(),
            state
                .agents
                .iter()
                .enumerate()
                .map(|(a, agent)| (agent.own_store, image(a as u8).own_store)),
        )?;
        let slots = bijection(
            state.locks.len(),
            state
                .agents
                .iter()
                .enumerate()
                .map(|(a, agent)| (agent.slot, image(a as u8).slot)),
        )?;
        let holders = (0..state.agents.len())
            .filter(|&a| agents[a] as usize != a)
            .map(|a| {
                let moved = &state.agents[agents[a] as usize];
                (state.agents[a].holder(), moved.holder())
            })
            .collect();
        Some(Renaming {
            processes: processes.to_vec(),
            agents_back: inverse(&agents),
            agents,
            stores_back: inverse(&stores),
            stores,
            slots_back: inverse(&slots),
            slots,
            holders,
        })
    }

    /// True when nothing moves.
    pub fn is_identity(&self) -> bool {
        self.holders.is_empty()
            && self
                .processes
                .iter()
                .enumerate()
                .all(|(p, &q)| p == q as usize)
    }

    /// The new index of each process.
    pub fn processes(&self) -> &[u8] {
        &self.processes
    }

    /// The new index of agent `a`.
    pub fn agent(&self, a: u8) -> u8 {
        self.agents[a as usize]
    }

    /// The agent that moves to index `b`.
    pub fn agent_back(&self, b: usize) -> usize {
        self.agents_back[b] as usize
    }

    /// The new index of store `s`.
    pub fn store(&self, s: u8) -> u8 {
        self.stores[s as usize]
    }

    /// The store that moves to index `t`.
    pub fn store_back(&self, t: usize) -> usize {
        self.stores_back[t] as usize
    }

    /// The new index of lock slot `s`.
    pub fn slot(&self, s: u8) -> u8 {
        self.slots[s as usize]
    }

    /// The slot that moves to index `t`.
    pub fn slot_back(&self, t: usize) -> usize {
        self.slots_back[t] as usize
    }

    /// The renamed fence holder (a holder no agent writes stays).
    pub fn holder<'h>(&self, holder: &'h Holder) -> Cow<'h, Holder> {
        match self.holders.iter().find(|(from, _)| from == holder) {
            Some((_, to)) => Cow::Owned(to.clone()),
            None => Cow::Borrowed(holder),
        }
    }

    fn moves(&self, fences: &[Fence]) -> bool {
        fences
            .iter()
            .any(|f| self.holders.iter().any(|(from, _)| *from == f.holder))
    }

    fn rename_fences(&self, fences: &mut [Fence]) {
        for fence in fences {
            if let Cow::Owned(to) = self.holder(&fence.holder) {
                fence.holder = to;
            }
        }
    }

    /// `doc` with its fence holders renamed.
    pub fn doc<'d>(&self, doc: &'d StoreDoc) -> Cow<'d, StoreDoc> {
        if !doc.fences.values().any(|list| self.moves(list)) {
            return Cow::Borrowed(doc);
        }
        let mut renamed = doc.clone();
        for list in renamed.fences.values_mut() {
            self.rename_fences(list);
        }
        Cow::Owned(renamed)
    }

    /// `mutation` with its fence holder renamed.
    pub fn mutation<'m>(&self, mutation: &'m Mutation) -> Cow<'m, Mutation> {
        match mutation {
            Mutation::PutFence { expect, fence } if self.moves(std::slice::from_ref(fence)) => {
                let mut fence = fence.clone();
                self.rename_fences(std::slice::from_mut(&mut fence));
                Cow::Owned(Mutation::PutFence {
                    expect: expect.clone(),
                    fence,
                })
            }
            _ => Cow::Borrowed(mutation),
        }
    }

    /// `input` as the renamed agent would have been given it, or `None` when
    /// renaming leaves it unchanged. Only a store view names processes (its
    /// fences' holders); a lock failure's holder would too, but the explorer
    /// never fails a lock wait (its waits are unbounded).
    pub fn input(&self, input: &Input) -> Option<Input> {
        match input {
            Input::StoreRead {
                id,
                result: Ok(view),
            } if self.moves(&view.fences) => {
                let mut fences = view.fences.clone();
                self.rename_fences(&mut fences);
                Some(Input::StoreRead {
                    id: *id,
                    result: Ok(ProfileView {
                        credential: view.credential.clone(),
                        fences,
                    }),
                })
            }
            Input::StoreRead { .. }
            | Input::StoreWritten { .. }
            | Input::LockAcquired { .. }
            | Input::LockFailed { .. }
            | Input::EndpointReplied { .. }
            | Input::LockReleased { .. } => None,
        }
    }

    /// `call` with its caller renamed.
    pub fn call(&self, call: &Call) -> Call {
        Call {
            agent: self.agent(call.agent),
            ..call.clone()
        }
    }

    /// The step the renamed agents take where `step` is taken (a call keeps
    /// its index: calls are numbered in the order they were made).
    pub fn step(&self, step: Step) -> Step {
        match step {
            Step::Start(a) => Step::Start(self.agent(a)),
            Step::Effect(a) => Step::Effect(self.agent(a)),
            Step::Send(a, fault) => Step::Send(self.agent(a), fault),
            Step::Complete(a) => Step::Complete(self.agent(a)),
            Step::SplitWrite(a) => Step::SplitWrite(self.agent(a)),
            Step::DeferredMirror(a) => Step::DeferredMirror(self.agent(a)),
            Step::Crash(p) => Step::Crash(self.processes[p as usize]),
            Step::LeaseExpire(slot) => Step::LeaseExpire(self.slot(slot)),
            Step::Arrive(_) | Step::Time | Step::Writer | Step::Relogin => step,
        }
    }
}

/// Every permutation of `0..n`, the identity first.
fn permutations(n: usize) -> Vec<Vec<u8>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut all = Vec::new();
    for rest in permutations(n - 1) {
        for at in (0..n).rev() {
            let mut p = rest.clone();
            p.insert(at, (n - 1) as u8);
            all.push(p);
        }
    }
    all
}

impl Symmetry {
    /// No reduction: the identity only.
    pub fn none(initial: &State) -> Symmetry {
        let processes = initial.process_count();
        let identity: Vec<u8> = (0..processes as u8).collect();
        let renaming = Renaming::of(initial, &identity)
            .unwrap_or_else(|| panic!("bug: the identity is not a renaming"));
        Symmetry {
            renamings: vec![renaming],
        }
    }

    /// Every permutation of the processes of `initial` (the world's initial
    /// state, lock slots assigned) that extends to agents, stores and lock
    /// slots and maps `initial` onto itself.
    pub fn of(initial: &State) -> Symmetry {
        let mut symmetry = Symmetry::none(initial);
        let processes = initial.process_count();
        if processes > PROCESSES_PERMUTED_MAX {
            return symmetry;
        }
        let key = initial.key();
        let fixes = |renaming: &Renaming| initial.key_under(0, renaming) == key;
        symmetry.renamings.extend(
            permutations(processes)
                .into_iter()
                .skip(1)
                .filter_map(|p| Renaming::of(initial, &p))
                .filter(fixes),
        );
        symmetry
    }

    /// The renamings, the identity first.
    pub fn renamings(&self) -> &[Renaming] {
        &self.renamings
    }

    /// How many renamings (1: no reduction).
    pub fn len(&self) -> usize {
        self.renamings.len()
    }

    /// True when there is no renaming at all (never: the identity is one).
    pub fn is_empty(&self) -> bool {
        self.renamings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_list_each_once_identity_first() {
        let all = permutations(3);
        assert_eq!(all.len(), 6);
        assert_eq!(all[0], vec![0, 1, 2]);
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 6);
    }

    #[test]
    fn a_bijection_extends_pairs_and_refuses_non_functions() {
        assert_eq!(bijection(3, [(0, 1), (1, 0)]), Some(vec![1, 0, 2]));
        assert_eq!(bijection(3, [(2, 0)]), Some(vec![1, 2, 0]));
        assert_eq!(bijection(3, [(0, 1), (0, 2)]), None);
        assert_eq!(bijection(3, [(0, 1), (2, 1)]), None);
        assert_eq!(bijection(2, [(0, 0), (0, 0)]), Some(vec![0, 1]));
    }
}
