//! The host conformance suite (`rotor_fs::conformance`) against the
//! simulator's host models: its store model (`rotor_sim::store::SimStore`:
//! lock-free reads of the visible document, read-modify-writes under the
//! store lock replaced by rename) and its refresh-lock model
//! (`rotor_sim::lock::RefreshLock`, advisory). The same cases pass against
//! the fs host (`fs/tests/conformance.rs`), so what the simulator checks is the
//! behaviour people run.
use std::cell::RefCell;
use std::rc::Rc;

use rotor_fs::conformance::{run_all, Agent, HostFactory, StoreName};
use rotor_kernel::driver::{RefreshLock, Stores};
use rotor_kernel::{
    LockFailure, LockKey, Mutation, ProfileView, StoreDoc, StoreFault, StoreRef, WriteOutcome,
};
use rotor_sim::lock::RefreshLock as SimLock;
use rotor_sim::store::{lock_fault, Owner, SimStore};

/// The simulated machine: two store files (absent until written) and one
/// refresh lock per key.
#[derive(Default)]
struct Machine {
    main: Option<SimStore>,
    worker: Option<SimStore>,
    locks: Vec<(LockKey, SimLock)>,
}

impl Machine {
    fn store(&mut self, name: StoreName) -> &mut Option<SimStore> {
        match name {
            StoreName::Main => &mut self.main,
            StoreName::Worker => &mut self.worker,
        }
    }

    fn lock(&mut self, key: &LockKey) -> &mut SimLock {
        let index = match self.locks.iter().position(|(k, _)| k == key) {
            Some(index) => index,
            None => {
                self.locks.push((key.clone(), SimLock::default()));
                self.locks.len() - 1
            }
        };
        &mut self.locks[index].1
    }
}

fn name_of(store: StoreName) -> &'static str {
    match store {
        StoreName::Main => "main",
        StoreName::Worker => "worker",
    }
}

struct SimStores {
    machine: Rc<RefCell<Machine>>,
    agent: Agent,
}

impl SimStores {
    fn name(&self, store: StoreRef) -> StoreName {
        match (self.agent, store) {
            (Agent::Worker, StoreRef::Own) => StoreName::Worker,
            _ => StoreName::Main,
        }
    }
}

impl Stores for SimStores {
    fn read(&mut self, store: StoreRef, profile: &str) -> Result<ProfileView, StoreFault> {
        let name = self.name(store);
        let mut machine = self.machine.borrow_mut();
        match machine.store(name) {
            None => Ok(ProfileView::default()),
            Some(file) => file.read(profile, name_of(name)),
        }
    }

    fn write(
        &mut self,
        store: StoreRef,
        profile: &str,
        mutation: &Mutation,
    ) -> Result<WriteOutcome, StoreFault> {
        let name = self.name(store);
        let mut machine = self.machine.borrow_mut();
        let file = machine
            .store(name)
            .get_or_insert_with(|| SimStore::new(StoreDoc::default()));
        // The suite runs one participant at a time: a held store lock here
        // would be a leak, reported as the host reports a lock timeout.
        if file.lock.is_some() {
            return Err(lock_fault(name_of(name), 0));
        }
        file.lock = Some(Owner::Actor(0));
        let result = file.load(name_of(name)).map(|mut doc| {
            let outcome = std::sync::Arc::make_mut(&mut doc).apply(profile, mutation);
            if !matches!(outcome, WriteOutcome::Conflict(_)) {
                file.replace(doc, true, 0);
            }
            outcome
        });
        file.lock = None;
        result
    }
}

struct SimRefreshLock {
    machine: Rc<RefCell<Machine>>,
    participant: u16,
}

impl RefreshLock for SimRefreshLock {
    fn acquire(&mut self, key: &LockKey, wait_ms_max: u64) -> Result<(), LockFailure> {
        let owner = Owner::Agent(self.participant);
        let process = self.participant as u8;
        let mut machine = self.machine.borrow_mut();
        let lock = machine.lock(key);
        if lock.try_acquire(owner, process, 0, true) {
            return Ok(());
        }
        // One thread: nobody can release while we wait, so the wait runs out.
        Err(LockFailure {
            waited_ms: wait_ms_max,
            holder: lock.holder.as_ref().map(|h| format!("{:?}", h.owner)),
            error: None,
        })
    }

    fn release(&mut self, key: &LockKey) {
        let owner = Owner::Agent(self.participant);
        let released = self
            .machine
            .borrow_mut()
            .lock(key)
            .release(owner, self.participant as u8);
        assert!(released, "G8: released a refresh lock it did not hold");
    }
}

#[derive(Default)]
struct SimFactory {
    machine: Rc<RefCell<Machine>>,
}

impl HostFactory for SimFactory {
    type Stores = SimStores;
    type Lock = SimRefreshLock;

    fn reset(&mut self) {
        self.machine = Rc::default();
    }

    fn stores(&mut self, agent: Agent) -> SimStores {
        SimStores {
            machine: self.machine.clone(),
            agent,
        }
    }

    fn lock(&mut self, participant: usize) -> SimRefreshLock {
        SimRefreshLock {
            machine: self.machine.clone(),
            participant: participant as u16,
        }
    }

    fn seed(&mut self, store: StoreName, doc: StoreDoc) {
        *self.machine.borrow_mut().store(store) = Some(SimStore::new(doc));
    }

    fn snapshot(&mut self, store: StoreName) -> Option<StoreDoc> {
        let mut machine = self.machine.borrow_mut();
        machine
            .store(store)
            .as_ref()
            .map(|file| match file.durable() {
                rotor_sim::store::Content::Doc(doc) => StoreDoc::clone(doc),
                rotor_sim::store::Content::Torn(bytes) => {
                    StoreDoc::from_json(bytes).expect("the suite never tears a store")
                }
            })
    }
}

#[test]
fn simulator_host_models_pass_the_conformance_suite() {
    let names = run_all(&mut SimFactory::default());
    assert_eq!(
        names.len(),
        rotor_fs::conformance::cases::<SimFactory>().len()
    );
    println!("conformance cases passed against the simulator's models: {names:?}");
}
