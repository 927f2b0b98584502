//! The host conformance suite (`rotor_fs::conformance`) against the fs host.
//! The same suite runs against the simulator's host models.
use std::path::PathBuf;

use rotor_fs::conformance::{run_all, Agent, HostFactory, StoreName};
use rotor_fs::{AgentId, FsRefreshLock, FsStores, Layout, SingleFlight, StoreFile};
use rotor_kernel::StoreDoc;

/// Each participant gets its own single-flight, as separate processes do,
/// so exclusion between participants comes from `flock` alone.
struct FsFactory {
    temp: Option<tempfile::TempDir>,
}

impl FsFactory {
    fn root(&self) -> PathBuf {
        self.temp.as_ref().unwrap().path().join("state")
    }

    fn file(&self, store: StoreName) -> StoreFile {
        let agent = match store {
            StoreName::Main => AgentId::main(),
            StoreName::Worker => AgentId::new("worker").unwrap(),
        };
        StoreFile::new(&Layout::new(self.root()), &agent, 1_000)
    }
}

impl HostFactory for FsFactory {
    type Stores = FsStores;
    type Lock = FsRefreshLock;

    fn reset(&mut self) {
        self.temp = Some(tempfile::tempdir().unwrap());
        rotor_fs::safe_fs::check_root(&self.root(), true).unwrap();
    }

    fn stores(&mut self, agent: Agent) -> FsStores {
        let agent = match agent {
            Agent::Main => AgentId::main(),
            Agent::Worker => AgentId::new("worker").unwrap(),
        };
        FsStores::new(&Layout::new(self.root()), &agent, 1_000)
    }

    fn lock(&mut self, participant: usize) -> FsRefreshLock {
        FsRefreshLock::new(
            Layout::new(self.root()),
            SingleFlight::new(),
            &format!("p{participant}"),
        )
    }

    fn seed(&mut self, store: StoreName, doc: StoreDoc) {
        self.file(store)
            .update("update", move |current| {
                *current = doc;
                ((), true)
            })
            .unwrap();
    }

    fn snapshot(&mut self, store: StoreName) -> Option<StoreDoc> {
        self.file(store).read_doc().unwrap()
    }
}

#[test]
fn fs_host_passes_the_conformance_suite() {
    let names = run_all(&mut FsFactory { temp: None });
    assert_eq!(
        names.len(),
        rotor_fs::conformance::cases::<FsFactory>().len()
    );
    println!("conformance cases passed: {names:?}");
}
