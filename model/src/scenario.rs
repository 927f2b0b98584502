//! A scenario (who runs, in which process, on which stores) and one run of
//! it: every agent on its own thread of the facade, each driven by the
//! kernel's canonical driver over its host, then the end-of-run checks.
//!
//! ```
//! use rotor_kernel::Role;
//! use rotor_model::scenario::{run_checked, CorrectHost, Scenario};
//! use rotor_model::check::FailOn;
//!
//! let mut scenario = Scenario::new("doc_example");
//! let x = scenario.account("acct-x");
//! let main = scenario.store("main", Some(x));
//! scenario.agent("main", 1, Role::Main, main, x);
//! // With std threads (the default build), this is one real interleaving;
//! // under loom or shuttle the same call runs inside their checkers.
//! let report = run_checked(&scenario, &std::sync::Arc::new(CorrectHost), FailOn::Any);
//! assert_eq!(report.endpoint_calls, 1);
//! ```

use std::rc::Rc;

use rotor_fs::io::Io;
use rotor_fs::sync::{thread, Arc};
use rotor_fs::FsRefreshLock;
use rotor_kernel::driver::{self, Host, RefreshLock, Stores};
use rotor_kernel::{Holder, Policy, Request, Resolution, Role};

use crate::check::{failure_message, FailOn, Violation};
use crate::crash::{CrashPoint, Crashable};
use crate::endpoint::ModelEndpoint;
use crate::gate_check::WriteKind;
use crate::store::AgentStores;
use crate::world::{FixedClock, World, MAIN_STORE, PROFILE, PROVIDER};
use crate::writers;

/// Who runs, where, on what.
#[derive(Clone, Debug, Default)]
pub struct Scenario {
    /// Names the scenario in reports.
    pub name: String,
    /// One token family per account.
    pub accounts: Vec<AccountSpec>,
    /// The stores; the first is main.
    pub stores: Vec<StoreSpec>,
    /// The agents, one thread each.
    pub agents: Vec<AgentSpec>,
    /// Background writers, one thread each.
    pub writers: Vec<WriterSpec>,
    /// Re-logins into main, one thread each.
    pub logins: Vec<LoginSpec>,
}

/// An account: one token family at one provider.
#[derive(Clone, Debug)]
pub struct AccountSpec {
    /// Its name (in token values and reports).
    pub name: String,
    /// The provider its credential is stored under.
    pub provider: String,
    /// What the provider reports with every rotation (the grant's
    /// `account_id` and `email`): the rotated credential takes these over.
    pub reports: Shape,
}

/// The identity fields of a stored credential, raw (untrimmed, any case),
/// as a store file may hold them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// `account_id`.
    pub account_id: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `tenant`.
    pub tenant: Option<String>,
}

impl Shape {
    /// An account id only.
    pub fn account(account_id: &str) -> Self {
        Shape {
            account_id: Some(account_id.to_string()),
            ..Shape::default()
        }
    }

    /// Builder: with this email.
    pub fn email(mut self, email: &str) -> Self {
        self.email = Some(email.to_string());
        self
    }

    /// Builder: with this tenant.
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.tenant = Some(tenant.to_string());
        self
    }

    /// No identity at all.
    pub fn none() -> Self {
        Shape::default()
    }

    /// An email only.
    pub fn email_only(email: &str) -> Self {
        Shape::none().email(email)
    }
}
/// A store at the start of a run.
#[derive(Clone, Debug)]
pub struct StoreSpec {
    /// Its name.
    pub name: String,
    /// The account whose (expired) credential it holds, if any.
    pub holds: Option<usize>,
    /// The identity fields that credential shows.
    pub shape: Shape,
    /// The credential is fresh (usable for an hour), not expired.
    pub fresh: bool,
}

/// An agent: one thread that resolves the profile once.
#[derive(Clone, Debug)]
pub struct AgentSpec {
    /// Its name (fence holder, reports).
    pub name: String,
    /// Its process; threads of one process share a single-flight.
    pub pid: u32,
    /// Main agent or sub-agent.
    pub role: Role,
    /// Its own store (main for the main agent).
    pub store: usize,
    /// The account it is bound to (G3).
    pub account: usize,
    /// The provider it asks for (its account's).
    pub provider: String,
    /// Its process dies just before this effect (1-based), if set.
    pub crash_before_effect: Option<u32>,
}

/// A background writer: `writes` read-modify-writes of a store, under the
/// store lock.
#[derive(Clone, Debug)]
pub struct WriterSpec {
    /// Its name.
    pub name: String,
    /// The store it writes.
    pub store: usize,
    /// How many updates.
    pub writes: u32,
    /// What each update does.
    pub kind: WriterKind,
}

/// What a background writer changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriterKind {
    /// Bumps `state.usage` (usage statistics; G4 counts them).
    Usage,
    /// An editing tool that rewrites the profile's entry: re-cases its
    /// email and re-pads its account id (the same identity under SPEC §5)
    /// and stamps an unknown field. Tokens and generation are kept.
    Rewrite,
}

/// A re-login into main as `account`, made like `rotor login`: the refresh
/// lock (from process `pid`), then main's store lock, then
/// `Mutation::Login` with a fresh credential of that account.
#[derive(Clone, Debug)]
pub struct LoginSpec {
    /// Its name (lock holder, reports).
    pub name: String,
    /// Its process.
    pub pid: u32,
    /// The account logged in.
    pub account: usize,
    /// The identity fields of the installed credential.
    pub shape: Shape,
}

impl Scenario {
    /// An empty scenario. Add accounts, then stores (main first), agents
    /// and writers.
    pub fn new(name: impl Into<String>) -> Self {
        Scenario {
            name: name.into(),
            ..Scenario::default()
        }
    }

    /// Adds an account (and its token family) of the model's provider,
    /// whose rotations report `account` as the account id; returns its
    /// index.
    pub fn account(&mut self, account: &str) -> usize {
        self.account_at(account, PROVIDER, Shape::account(account))
    }

    /// Adds an account of `provider` whose rotations report `reports`;
    /// returns its index.
    pub fn account_at(&mut self, account: &str, provider: &str, reports: Shape) -> usize {
        self.accounts.push(AccountSpec {
            name: account.to_string(),
            provider: provider.to_string(),
            reports,
        });
        self.accounts.len() - 1
    }

    /// Adds a store holding `holds`'s expired credential, showing the
    /// account name as its account id; returns its index. The first store
    /// added is main.
    pub fn store(&mut self, name: &str, holds: Option<usize>) -> usize {
        let shape = holds.map_or_else(Shape::none, |account| {
            Shape::account(&self.accounts[account].name)
        });
        self.store_shaped(name, holds, shape)
    }

    /// Adds a store holding `holds`'s expired credential with the identity
    /// fields `shape`; returns its index.
    pub fn store_shaped(&mut self, name: &str, holds: Option<usize>, shape: Shape) -> usize {
        self.stores.push(StoreSpec {
            name: name.to_string(),
            holds,
            shape,
            fresh: false,
        });
        self.stores.len() - 1
    }

    /// Makes `store`'s credential fresh instead of expired.
    pub fn fresh(&mut self, store: usize) {
        self.stores[store].fresh = true;
    }

    /// Adds an agent; returns its index.
    pub fn agent(
        &mut self,
        name: &str,
        pid: u32,
        role: Role,
        store: usize,
        account: usize,
    ) -> usize {
        self.agents.push(AgentSpec {
            name: name.to_string(),
            pid,
            role,
            store,
            account,
            provider: self.accounts[account].provider.clone(),
            crash_before_effect: None,
        });
        self.agents.len() - 1
    }

    /// Makes agent `agent` crash just before its effect `effect` (1-based).
    pub fn crash(&mut self, agent: usize, effect: u32) {
        self.agents[agent].crash_before_effect = Some(effect);
    }

    /// Adds a background writer of usage statistics.
    pub fn writer(&mut self, name: &str, store: usize, writes: u32) {
        self.writers.push(WriterSpec {
            name: name.to_string(),
            store,
            writes,
            kind: WriterKind::Usage,
        });
    }

    /// Adds an editing tool that rewrites the profile's entry in `store`.
    pub fn editor(&mut self, name: &str, store: usize, writes: u32) {
        self.writers.push(WriterSpec {
            name: name.to_string(),
            store,
            writes,
            kind: WriterKind::Rewrite,
        });
    }

    /// Adds a re-login into main as `account`, from process `pid`.
    pub fn login(&mut self, name: &str, pid: u32, account: usize, shape: Shape) {
        self.logins.push(LoginSpec {
            name: name.to_string(),
            pid,
            account,
            shape,
        });
    }

    /// Checks the scenario is one the model can run faithfully.
    fn validate(&self) {
        assert!(!self.stores.is_empty(), "{}: no main store", self.name);
        for agent in &self.agents {
            assert!(
                agent.role == Role::Sub || agent.store == MAIN_STORE,
                "{}: the main agent's own store is main",
                self.name
            );
            assert!(
                agent.role == Role::Main || agent.store != MAIN_STORE,
                "{}: a sub-agent has its own store",
                self.name
            );
            if agent.crash_before_effect.is_some() {
                let shared = self
                    .agents
                    .iter()
                    .filter(|other| other.pid == agent.pid)
                    .count();
                assert_eq!(
                    shared, 1,
                    "{}: a crashing agent is alone in its process",
                    self.name
                );
            }
        }
    }
}

/// How an agent's host is put together: the correct one, or (in tests) a
/// broken variant from docs/bugs.md.
pub trait HostVariant: Send + Sync + 'static {
    /// The refresh lock.
    type Lock: RefreshLock;
    /// The stores.
    type Stores: Stores;
    /// Builds `agent`'s lock and stores, on the agent's own thread.
    fn build(&self, world: &Arc<World>, agent: &AgentSpec) -> (Self::Lock, Self::Stores);
}

/// The correct host: the shipped fs host's parts over the agent's view of
/// the model machine ([`crate::io::ModelIo`]): [`FsRefreshLock`] (the
/// process's single-flight, then the lock file) and the shipped
/// `FsStores`, watched by [`AgentStores`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CorrectHost;

impl HostVariant for CorrectHost {
    type Lock = FsRefreshLock;
    type Stores = AgentStores;

    fn build(&self, world: &Arc<World>, agent: &AgentSpec) -> (FsRefreshLock, AgentStores) {
        let io = agent_io(world, agent);
        (
            world.refresh_lock(io.clone(), agent.pid, &agent.name),
            AgentStores::new(world.clone(), agent.store, &agent.name, io),
        )
    }
}

/// `agent`'s view of the machine (one per agent thread, as its process).
pub fn agent_io(world: &World, agent: &AgentSpec) -> std::sync::Arc<dyn Io> {
    std::sync::Arc::new(world.io(agent.pid, &agent.name, WriteKind::Kernel))
}

/// How one agent's resolve ended.
#[derive(Clone, Debug)]
pub struct AgentResult {
    /// The agent.
    pub name: String,
    /// Whether its process crashed (then `resolution` is meaningless).
    pub crashed: bool,
    /// Whether it crashed holding the refresh lock.
    pub crashed_holding_lock: bool,
    /// What the kernel resolved.
    pub resolution: Resolution,
}

/// What one run did.
#[derive(Debug)]
pub struct RunReport {
    /// The scenario's name.
    pub scenario: String,
    /// One result per agent, in scenario order.
    pub results: Vec<AgentResult>,
    /// Every violation, as it happened and at the end.
    pub violations: Vec<Violation>,
    /// Refresh tokens presented to the endpoint.
    pub endpoint_calls: usize,
}

/// Runs `scenario` once on `variant`'s hosts and checks it. Must be called
/// inside a loom model or a shuttle test when built for them.
pub fn run<V: HostVariant>(scenario: &Scenario, variant: &std::sync::Arc<V>) -> RunReport {
    scenario.validate();
    let world = Arc::new(World::build(scenario));
    let writers: Vec<_> = scenario
        .writers
        .iter()
        .enumerate()
        .map(|(index, writer)| {
            let world = world.clone();
            let writer = writer.clone();
            thread::spawn(move || writers::run_writer(&world, &writer, index))
        })
        .collect();
    let logins: Vec<_> = scenario
        .logins
        .iter()
        .enumerate()
        .map(|(index, login)| {
            let world = world.clone();
            let login = login.clone();
            thread::spawn(move || writers::run_login(&world, &login, index))
        })
        .collect();
    let agents: Vec<_> = scenario
        .agents
        .iter()
        .map(|agent| {
            let world = world.clone();
            let variant = variant.clone();
            let agent = agent.clone();
            thread::spawn(move || run_agent(&world, &*variant, &agent))
        })
        .collect();
    for writer in writers.into_iter().chain(logins) {
        writer
            .join()
            .expect("a background writer or login panicked");
    }
    let results: Vec<AgentResult> = agents
        .into_iter()
        .map(|agent| agent.join().expect("an agent panicked"))
        .collect();
    crate::verify::verify(scenario, &world, &results);
    RunReport {
        scenario: scenario.name.clone(),
        results,
        violations: world.log.violations(),
        endpoint_calls: world.provider.presentations().len(),
    }
}

/// [`run`], then panics with every violation if `fail_on` says the run
/// failed. The message starts with the scenario and names each guarantee.
pub fn run_checked<V: HostVariant>(
    scenario: &Scenario,
    variant: &std::sync::Arc<V>,
    fail_on: FailOn,
) -> RunReport {
    let report = run(scenario, variant);
    if fail_on.fails(&report.violations) {
        panic!(
            "{}",
            failure_message(&report.scenario, fail_on, &report.violations)
        );
    }
    report
}

/// One agent's thread: build its host, drive the kernel to the end.
fn run_agent<V: HostVariant>(world: &Arc<World>, variant: &V, agent: &AgentSpec) -> AgentResult {
    let point = Rc::new(CrashPoint::new(
        world.clone(),
        agent.pid,
        agent.crash_before_effect,
    ));
    let (lock, stores) = variant.build(world, agent);
    let mut lock = Crashable::new(lock, point.clone());
    let mut stores = Crashable::new(stores, point.clone());
    let mut endpoint = Crashable::new(
        ModelEndpoint::new(world.clone(), &agent.name),
        point.clone(),
    );
    let request = Request {
        role: agent.role,
        provider: agent.provider.clone().into(),
        profile: PROFILE.into(),
        holder: Holder {
            pid: agent.pid,
            host: "model".into(),
            agent: agent.name.clone().into(),
        },
    };
    let host = Host {
        lock: &mut lock,
        stores: &mut stores,
        endpoint: &mut endpoint,
        clock: &FixedClock,
    };
    let resolution = driver::resolve(host, request, Policy::default());
    AgentResult {
        name: agent.name.clone(),
        crashed: point.crashed(),
        crashed_holding_lock: point.crashed_holding_lock(),
        resolution,
    }
}
