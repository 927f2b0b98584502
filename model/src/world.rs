//! The shared world of one model run: the stores, the provider, the OS's
//! advisory lock table, one single-flight per process, and the checker's log.
//!
//! A world is built fresh for every interleaving (loom and shuttle re-run the
//! whole closure), from a [`Scenario`].

use std::collections::BTreeMap;

use rotor_fs::single_flight::SingleFlight;
use rotor_kernel::driver::Clock;
use rotor_kernel::{Credential, StoreDoc};

use crate::check::Log;
use crate::endpoint::{StrictProvider, EXPIRES_IN_MS};
use crate::gate_check::Witnesses;
use crate::lock::AdvisoryLocks;
use crate::scenario::{Scenario, Shape};
use crate::store::ModelStore;

/// The provider id of the modelled credential.
pub const PROVIDER: &str = "acme";
/// The profile id of the modelled credential.
pub const PROFILE: &str = "acme:default";
/// The logical time of every run, epoch ms. Time does not pass in the
/// models: what they explore is the order of events, not their timing.
pub const NOW_MS: i64 = 1_700_000_000_000;
/// Index of the main store in [`World::stores`].
pub const MAIN_STORE: usize = 0;

/// Everything the agents of one run share.
#[derive(Debug)]
pub struct World {
    /// The store files; [`MAIN_STORE`] first, then one per agent store.
    pub stores: Vec<ModelStore>,
    /// The token endpoint.
    pub provider: StrictProvider,
    /// The OS's cross-process advisory locks.
    pub locks: AdvisoryLocks,
    /// Violations seen while running.
    pub log: Log,
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
        let stores = scenario
            .stores
            .iter()
            .map(|spec| {
                let mut doc = StoreDoc::default();
                if let Some(account) = spec.holds {
                    let mut credential = shaped(&credentials[account], &spec.shape);
                    if spec.fresh {
                        credential.expires_at_ms = Some(NOW_MS + EXPIRES_IN_MS as i64);
                    }
                    doc.profiles.insert(PROFILE.to_string(), credential);
                }
                ModelStore::new(spec.name.clone(), doc)
            })
            .collect();
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
            stores,
            provider,
            locks: AdvisoryLocks::new(),
            log: Log::default(),
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

/// `credential` with the identity fields of `shape`.
fn shaped(credential: &Credential, shape: &Shape) -> Credential {
    let mut credential = credential.clone();
    credential.account_id = shape.account_id.clone();
    credential.email = shape.email.clone();
    credential.tenant = shape.tenant.clone();
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
