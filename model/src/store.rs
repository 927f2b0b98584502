//! Model stores: one store document per file, and the host side of the
//! kernel's `Stores` trait over them.
//!
//! A real store is a JSON file replaced by atomic rename, plus a lock file
//! that serializes read-modify-writes (SPEC §8). The model keeps:
//! - the **document** behind a mutex taken only for an instant: a read is
//!   one atomic load (the lock-free read of a renamed file), a write-back one
//!   atomic replace (the rename);
//! - the **store lock**, a second mutex held across a whole read-modify-write
//!   (the fs host's per-store `flock`).
//!
//! Every document carries a write counter (`version`). A write-back names the
//! version it was computed from; if the document moved on in between, an
//! update was lost (G4). Every write-back is also checked for a generation
//! going down (G5). Both are recorded in the [`Log`], not panicked on.

use std::collections::BTreeMap;

use rotor_fs::sync::{self, Arc, Mutex, MutexGuard};
use rotor_kernel::driver::Stores;
use rotor_kernel::{Mutation, ProfileView, StoreDoc, StoreFault, StoreRef, WriteOutcome};

use crate::check::{Guarantee, Log};
use crate::gate_check::{judge_write, WriteKind};
use crate::world::{World, MAIN_STORE};

/// One store file and its lock.
#[derive(Debug)]
pub struct ModelStore {
    name: String,
    file: Mutex<Snapshot>,
    lock: Mutex<()>,
}

/// A document as read, with the write counter it was read at.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The document.
    pub doc: StoreDoc,
    /// How many write-backs the file had seen when it was read.
    pub version: u64,
}

impl ModelStore {
    /// A store file named `name` holding `doc`.
    pub fn new(name: impl Into<String>, doc: StoreDoc) -> Self {
        ModelStore {
            name: name.into(),
            file: Mutex::new(Snapshot { doc, version: 0 }),
            lock: Mutex::new(()),
        }
    }

    /// The store's name (`main`, `agent-a`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the whole document: one atomic load, no store lock (a file
    /// replaced by rename is read whole or not at all).
    pub fn read(&self) -> Snapshot {
        sync::lock(&self.file).clone()
    }

    /// Takes the store lock (held across a read-modify-write).
    pub fn lock(&self) -> MutexGuard<'_, ()> {
        sync::lock(&self.lock)
    }

    /// Atomically replaces the document with `doc`, computed by `writer`
    /// from the version `based_on`. Records a lost update (G4) when the file
    /// changed since, a generation that went down (G5), and a credential
    /// replaced as the identity table does not allow (G3, see
    /// [`crate::gate_check`]).
    pub fn write_back(
        &self,
        based_on: u64,
        doc: StoreDoc,
        writer: &str,
        kind: WriteKind,
        log: &Log,
    ) {
        let mut file = sync::lock(&self.file);
        judge_write(&self.name, writer, kind, &file.doc, &doc, log);
        if file.version != based_on {
            log.violation(
                Guarantee::G4,
                format!(
                    "lost update in store {}: {writer} wrote a document computed from \
                     version {based_on}, but the store was at version {} (someone wrote \
                     in between and that write is now gone)",
                    self.name, file.version
                ),
            );
        }
        for (profile, before) in &file.doc.profiles {
            let after = doc.profiles.get(profile).map(|c| c.generation);
            if after.is_none_or(|after| after < before.generation) {
                log.violation(
                    Guarantee::G5,
                    format!(
                        "store {}: {writer} took profile {profile} from generation {} to {}",
                        self.name,
                        before.generation,
                        after.map_or("nothing".to_string(), |g| g.to_string())
                    ),
                );
            }
        }
        file.doc = doc;
        file.version += 1;
    }

    /// A background writer's read-modify-write under the store lock: bumps
    /// `state.usage` (data rotor does not own, which must survive every
    /// rotor write, G4).
    pub fn bump_usage(&self, writer: &str, log: &Log) {
        let _store_lock = self.lock();
        let Snapshot { mut doc, version } = self.read();
        let usage = usage_of(&doc) + 1;
        doc.state = Some(serde_json::json!({ "usage": usage }));
        self.write_back(version, doc, writer, WriteKind::Tool, log);
    }
}

/// `state.usage` of a document (0 when absent).
pub fn usage_of(doc: &StoreDoc) -> u64 {
    doc.state
        .as_ref()
        .and_then(|state| state.get("usage"))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

/// The stores as one agent sees them: its own (by index) and main. The
/// correct host: every write is a read-modify-write under the store lock.
#[derive(Debug)]
pub struct AgentStores {
    world: Arc<World>,
    own: usize,
    agent: String,
    /// Highest generation this agent has read per store (G5: never decreases).
    seen: BTreeMap<usize, u64>,
}

impl AgentStores {
    /// `agent`'s view: own store `own` (index into the world's stores; the
    /// main agent's own store is [`MAIN_STORE`]).
    pub fn new(world: Arc<World>, own: usize, agent: impl Into<String>) -> Self {
        AgentStores {
            world,
            own,
            agent: agent.into(),
            seen: BTreeMap::new(),
        }
    }

    /// The world's store a kernel [`StoreRef`] names for this agent.
    pub fn store(&self, store: StoreRef) -> &ModelStore {
        &self.world.stores[self.index(store)]
    }

    fn index(&self, store: StoreRef) -> usize {
        match store {
            StoreRef::Own => self.own,
            StoreRef::Main => MAIN_STORE,
        }
    }

    /// The agent's name (the writer named in reports).
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The world.
    pub fn world(&self) -> &Arc<World> {
        &self.world
    }

    /// Records the generation read from `store` and checks it did not go
    /// down since this agent's last read there (G5).
    pub fn observe(&mut self, store: StoreRef, view: &ProfileView) {
        let witness = view.credential.clone();
        self.world.witnesses.read(&self.agent, store, witness);
        let index = self.index(store);
        let Some(generation) = view.credential.as_ref().map(|c| c.generation) else {
            return;
        };
        let seen = self.seen.entry(index).or_insert(generation);
        if generation < *seen {
            self.world.log.violation(
                Guarantee::G5,
                format!(
                    "{} read generation {generation} from store {} after having read {}",
                    self.agent, self.world.stores[index].name, *seen
                ),
            );
        }
        *seen = (*seen).max(generation);
    }
}

impl Stores for AgentStores {
    fn read(&mut self, store: StoreRef, profile: &str) -> Result<ProfileView, StoreFault> {
        let view = self.store(store).read().doc.view(profile);
        self.observe(store, &view);
        Ok(view)
    }

    fn write(
        &mut self,
        store: StoreRef,
        profile: &str,
        mutation: &Mutation,
    ) -> Result<WriteOutcome, StoreFault> {
        if let Mutation::Commit { credential, .. } = mutation {
            let witnesses = &self.world.witnesses;
            witnesses.committed(&self.agent, credential.clone());
        }
        let target = self.store(store);
        let _store_lock = target.lock();
        let Snapshot { mut doc, version } = target.read();
        let outcome = doc.apply(profile, mutation);
        if !matches!(outcome, WriteOutcome::Conflict(_)) {
            let log = &self.world.log;
            target.write_back(version, doc, &self.agent, WriteKind::Kernel, log);
        }
        Ok(outcome)
    }
}
