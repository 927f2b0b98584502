//! The stores as one agent sees them: the shipped [`FsStores`] (the fs
//! host's store code: lock-free reads, read-modify-writes under the store's
//! sidecar lock, atomic replacement by rename) over the agent's
//! [`crate::io::ModelIo`], plus what the checker records of the agent's
//! reads.
//!
//! The store rules live in `rotor-fs` alone. What the old model store
//! checked (a write computed from a stale document, G4; a generation going
//! down in a store, G5; a credential replaced as the identity table does not
//! allow, G3) is checked under the shipped code, on the files it renames
//! ([`crate::io`]). Here only the agent's side is watched: a generation it
//! reads must never go down (G5), and what it read and committed is kept
//! for the refusal judge ([`crate::gate_check::Witnesses`]).

use std::collections::BTreeMap;

use rotor_fs::io::Io;
use rotor_fs::sync::Arc;
use rotor_fs::{FsStores, StoreFile};
use rotor_kernel::driver::Stores;
use rotor_kernel::{Mutation, ProfileView, StoreDoc, StoreFault, StoreRef, WriteOutcome};

use crate::check::Guarantee;
use crate::world::{World, MAIN_STORE, STORE_LOCK_WAIT_MS_MAX};

/// `state.usage` of a document (0 when absent).
pub fn usage_of(doc: &StoreDoc) -> u64 {
    doc.state
        .as_ref()
        .and_then(|state| state.get("usage"))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

/// The stores of one agent: the shipped [`FsStores`], watched.
#[derive(Debug)]
pub struct AgentStores {
    world: Arc<World>,
    inner: FsStores,
    own: usize,
    agent: String,
    /// Highest generation this agent has read per store (G5: never decreases).
    seen: BTreeMap<usize, u64>,
}

impl AgentStores {
    /// `agent`'s stores over `io`: its own store `own` (index into the
    /// scenario's stores; the main agent's own store is [`MAIN_STORE`]) and
    /// main.
    pub fn new(
        world: Arc<World>,
        own: usize,
        agent: impl Into<String>,
        io: std::sync::Arc<dyn Io>,
    ) -> Self {
        let inner = FsStores::with_io(
            io,
            &world.layout,
            world.store_id(own),
            STORE_LOCK_WAIT_MS_MAX,
        );
        AgentStores {
            world,
            inner,
            own,
            agent: agent.into(),
            seen: BTreeMap::new(),
        }
    }

    /// The shipped store file a kernel [`StoreRef`] names for this agent.
    pub fn file(&self, store: StoreRef) -> &StoreFile {
        self.inner.file(store)
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
        let witness = view.credential.as_deref().cloned();
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
                    self.agent,
                    self.world.store_name(index),
                    *seen
                ),
            );
        }
        *seen = (*seen).max(generation);
    }
}

impl Stores for AgentStores {
    fn read(&mut self, store: StoreRef, profile: &str) -> Result<ProfileView, StoreFault> {
        let view = self.inner.read(store, profile)?;
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
            witnesses.committed(&self.agent, rotor_kernel::Credential::clone(credential));
        }
        self.inner.write(store, profile, mutation)
    }
}
