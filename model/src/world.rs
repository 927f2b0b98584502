//! The shared world of one model run: the machine (the store files and the
//! OS's lock table, [`crate::io`]), the provider, one single-flight per
//! process, and the checker's log.
//!
//! A world is built fresh for every interleaving (loom and shuttle re-run the
//! whole closure), from a [`Scenario`].

use std::collections::BTreeMap;

use rotor_fs::io::Io;
use rotor_fs::single_flight::SingleFlight;
use rotor_fs::{AgentId, FsRefreshLock, Layout, StoreFile};
use rotor_kernel::driver::Clock;
use rotor_kernel::{Credential, StoreDoc};

use crate::check::Log;
use crate::endpoint::{StrictProvider, EXPIRES_IN_MS};
use crate::gate_check::{Witnesses, WriteKind};
use crate::io::{Machine, ModelIo};
use crate::scenario::{Scenario, Shape};

/// The provider id of the modelled credential.
pub const PROVIDER: &str = "acme";
/// The profile id of the modelled credential.
pub const PROFILE: &str = "acme:default";
/// The logical time of every run, epoch ms. Time does not pass in the
/// models: what they explore is the order of events, not their timing.
pub const NOW_MS: i64 = 1_700_000_000_000;
/// Index of the main store in the scenario's stores.
pub const MAIN_STORE: usize = 0;
/// The state directory on the model's machine.
pub const STATE_DIR: &str = "/model/state";
/// How long a store writer may wait for a store lock on real threads (under
/// loom and shuttle waits are untimed).
pub const STORE_LOCK_WAIT_MS_MAX: u64 = 10_000;
/// The first pid of the background writers (one process each).
pub const WRITER_PID_BASE: u32 = 100;

/// Everything the agents of one run share.
#[derive(Debug)]
pub struct World {
    /// The state directory's layout on [`World::machine`].
    pub layout: Layout,
    /// The files and the lock table, which every thread's [`ModelIo`] sees.
    pub machine: std::sync::Arc<Machine>,
    /// The agent id of each store ([`MAIN_STORE`] first) and its name.
    stores: Vec<(AgentId, String)>,
    /// The token endpoint.
    pub provider: StrictProvider,
    /// Violations seen while running (shared with the machine's checks).
    pub log: std::sync::Arc<Log>,
    /// What each agent read and committed (for the refusal check, G2).
    pub witnesses: Witnesses,
    /// The fresh credential each of the scenario's logins installs.
    pub login_credentials: Vec<Credential>,
    flights: BTreeMap<u32, SingleFlight>,
}

impl World {
    /// Builds the world `scenario` starts from: one token family per
    /// account, each store holding its account's first credential, already
    /// expired, so every agent needs a refresh, with the store's identity
    /// fields. A login's credential is the first one of its account's
    /// family, fresh.
    pub fn build(scenario: &Scenario) -> Self {
        let provider = StrictProvider::new();
        let credentials: Vec<Credential> = scenario
            .accounts
            .iter()
            .map(|account| {
                let reports = &account.reports;
                let (_family, access, refresh) = provider.new_family(
                    &account.name,
                    reports.account_id.as_deref(),
                    reports.email.as_deref(),
                );
                Credential::oauth(account.provider.clone(), access, refresh, NOW_MS - 1)
            })
            .collect();
        let layout = Layout::new(STATE_DIR);
        let stores: Vec<(AgentId, String)> = scenario
            .stores
            .iter()
            .enumerate()
            .map(|(index, spec)| {
                let id = if index == MAIN_STORE {
                    AgentId::main()
                } else {
                    AgentId::new(&spec.name).unwrap_or_else(|error| {
                        panic!("{}: store name {:?}: {error}", scenario.name, spec.name)
                    })
                };
                (id, spec.name.clone())
            })
            .collect();
        let files = scenario
            .stores
            .iter()
            .zip(&stores)
            .map(|(spec, (id, name))| {
                let mut doc = StoreDoc::default();
                if let Some(account) = spec.holds {
                    let mut credential = shaped(&credentials[account], &spec.shape);
                    if spec.fresh {
                        credential.expires_at_ms = Some(NOW_MS + EXPIRES_IN_MS as i64);
                    }
                    doc.profiles.insert(PROFILE.to_string(), credential);
                }
                (layout.store_path(id), name.clone(), doc)
            })
            .collect();
        let log = std::sync::Arc::new(Log::default());
        let machine = std::sync::Arc::new(Machine::new(layout.clone(), files, log.clone()));
        let login_credentials = scenario
            .logins
            .iter()
            .map(|login| {
                let mut credential = shaped(&credentials[login.account], &login.shape);
                credential.expires_at_ms = Some(NOW_MS + EXPIRES_IN_MS as i64);
                credential
            })
            .collect();
        let mut flights = BTreeMap::new();
        let pids = scenario.agents.iter().map(|agent| agent.pid);
        for pid in pids.chain(scenario.logins.iter().map(|login| login.pid)) {
            flights.entry(pid).or_insert_with(SingleFlight::new);
        }
        World {
            layout,
            machine,
            stores,
            provider,
            log,
            witnesses: Witnesses::default(),
            login_credentials,
            flights,
        }
    }

    /// The single-flight of process `pid` (shared by its threads).
    pub fn flight(&self, pid: u32) -> SingleFlight {
        self.flights
            .get(&pid)
            .cloned()
            .unwrap_or_else(|| panic!("bug: process {pid} is not in the scenario"))
    }
}

impl World {
    /// The machine as process `pid` sees it, for the thread `name` whose
    /// writes are of `kind`.
    pub fn io(&self, pid: u32, name: &str, kind: WriteKind) -> ModelIo {
        self.machine.view(pid, name, kind)
    }

    /// The agent id whose store is the scenario's store `index`.
    pub fn store_id(&self, index: usize) -> &AgentId {
        &self.stores[index].0
    }

    /// The scenario's name of store `index`.
    pub fn store_name(&self, index: usize) -> &str {
        &self.stores[index].1
    }

    /// The shipped store code's handle on store `index`, over `io`.
    pub fn store_file(&self, io: std::sync::Arc<dyn Io>, index: usize) -> StoreFile {
        StoreFile::with_io(
            io,
            &self.layout,
            self.store_id(index),
            STORE_LOCK_WAIT_MS_MAX,
        )
    }

    /// The shipped refresh lock of thread `name` of process `pid` over
    /// `io`: the process's single-flight, then the lock file.
    pub fn refresh_lock(&self, io: std::sync::Arc<dyn Io>, pid: u32, name: &str) -> FsRefreshLock {
        FsRefreshLock::with_io(io, self.layout.clone(), self.flight(pid), name)
    }

    /// Store `index`'s document as it is now, read by the checker (no
    /// scheduling point, nobody's read).
    pub fn store_doc(&self, index: usize) -> StoreDoc {
        let path = self.layout.store_path(self.store_id(index));
        let bytes = self.machine.contents(&path).unwrap_or_default();
        StoreDoc::from_json(&bytes).unwrap_or_else(|error| {
            panic!(
                "store {} ends with a document that does not decode: {error}",
                self.store_name(index)
            )
        })
    }
}

/// `credential` with the identity fields of `shape`.
fn shaped(credential: &Credential, shape: &Shape) -> Credential {
    let mut credential = credential.clone();
    credential.account_id = shape.account_id.clone().map(Into::into);
    credential.email = shape.email.clone().map(Into::into);
    credential.tenant = shape.tenant.clone().map(Into::into);
    credential
}

/// The models' clock: always [`NOW_MS`].
#[derive(Clone, Copy, Debug, Default)]
pub struct FixedClock;

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        NOW_MS
    }
}
