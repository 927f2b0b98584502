//! An in-memory host for `rotor_kernel::driver::resolve`: the four driver
//! traits over one shared [`World`] of store documents, a refresh lock and a
//! strict rotating provider.
//!
//! The provider is as strict as the strictest real ones: each refresh token
//! is valid once; presenting a consumed token revokes its whole family (every
//! refresh token issued from the same login) and answers `invalid_grant`. It
//! records every presentation, so a test can check G1 (a token presented at
//! most once by rotor participants) and G2 (calls counted).
//!
//! The world is single-threaded: a lock found held can never be released
//! while the caller waits, so acquiring a held lock fails at once with the
//! holder's name, as a real host would after its wait budget. Concurrency is
//! staged with hooks: [`World::before_acquire`] runs just before an agent's
//! lock request (another agent may resolve fully meanwhile), and
//! [`World::during_call`] runs while an agent's request is at the provider.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use rotor_kernel::driver::{self, Clock, Host, RefreshLock, Stores, TokenEndpoint};
use rotor_kernel::{
    Credential, EndpointError, LockFailure, LockKey, Mutation, Policy, ProfileView, Request,
    Resolution, Role, Secret, StoreDoc, StoreFault, StoreRef, TokenGrant, Transport, WriteOutcome,
};

use super::fixtures::{HOUR_MS, PROFILE, PROVIDER};

/// The name of the main store.
pub const MAIN_STORE: &str = "main";

/// Something staged to happen inside the world at a given moment.
pub type WorldHook = Box<dyn FnOnce(&Shared)>;

/// The world, shared by every agent's host.
pub type Shared = Rc<RefCell<World>>;

/// Stores, lock, provider and clock.
pub struct World {
    /// Store documents by name ([`MAIN_STORE`] and the agents' stores).
    pub stores: BTreeMap<String, StoreDoc>,
    /// Which store each sub-agent calls its own (peers may share one).
    pub own_store_of: BTreeMap<String, String>,
    /// The provider.
    pub provider: Provider,
    /// Who holds the refresh lock, by key.
    pub lock_holders: BTreeMap<LockKey, String>,
    /// Successful acquisitions, all agents together.
    pub acquisitions: u64,
    /// Releases, all agents together.
    pub releases: u64,
    /// Wall clock, epoch ms.
    pub now_ms: i64,
    before_acquire: BTreeMap<String, WorldHook>,
    during_call: BTreeMap<String, WorldHook>,
}

impl World {
    /// A world at `now_ms` with an empty main store.
    pub fn new(now_ms: i64) -> Shared {
        let mut stores = BTreeMap::new();
        stores.insert(MAIN_STORE.to_string(), StoreDoc::default());
        Rc::new(RefCell::new(World {
            stores,
            own_store_of: BTreeMap::new(),
            provider: Provider::default(),
            lock_holders: BTreeMap::new(),
            acquisitions: 0,
            releases: 0,
            now_ms,
            before_acquire: BTreeMap::new(),
            during_call: BTreeMap::new(),
        }))
    }

    /// Adds sub-agent `agent` whose own store is `store` (created empty).
    pub fn add_sub(&mut self, agent: &str, store: &str) {
        self.own_store_of.insert(agent.into(), store.into());
        self.stores.entry(store.into()).or_default();
    }

    /// The store named `name`.
    pub fn store(&self, name: &str) -> &StoreDoc {
        &self.stores[name]
    }

    /// The entry for [`super::fixtures::PROFILE`] in store `name`.
    pub fn entry(&self, name: &str) -> Option<&Credential> {
        self.stores[name].profiles.get(PROFILE)
    }

    /// Puts `credential` into store `name`.
    pub fn put(&mut self, name: &str, credential: Credential) {
        self.stores
            .entry(name.into())
            .or_default()
            .profiles
            .insert(PROFILE.into(), credential);
    }

    /// Runs `hook` just before `agent` next asks for the refresh lock.
    pub fn before_acquire(&mut self, agent: &str, hook: impl FnOnce(&Shared) + 'static) {
        self.before_acquire.insert(agent.into(), Box::new(hook));
    }

    /// Runs `hook` while `agent`'s next refresh request is at the provider
    /// (before the provider answers it).
    pub fn during_call(&mut self, agent: &str, hook: impl FnOnce(&Shared) + 'static) {
        self.during_call.insert(agent.into(), Box::new(hook));
    }

    fn own_store(&self, agent: &str) -> String {
        self.own_store_of
            .get(agent)
            .cloned()
            .unwrap_or_else(|| MAIN_STORE.to_string())
    }
}

/// How a family stands at the provider.
#[derive(Clone, Debug, Default)]
pub struct Family {
    /// Revoked after a reuse: no token of it refreshes any more.
    pub revoked: bool,
    /// The family's account.
    pub account_id: Option<String>,
}

/// A strict rotating provider (see the module docs).
#[derive(Default)]
pub struct Provider {
    /// Refresh token value -> family index.
    tokens: BTreeMap<String, usize>,
    /// Refresh tokens already exchanged.
    consumed: BTreeSet<String>,
    /// Families, by index.
    pub families: Vec<Family>,
    /// Every refresh token presented, in order, with who presented it.
    pub presented: Vec<(String, String)>,
    /// Rotations issued.
    pub rotations: u64,
    /// When set, the next successful rotation's answer is lost on the way
    /// back: the provider rotated, the caller sees a timeout after send.
    pub lose_next_answer: bool,
    serial: u64,
}

impl Provider {
    /// Logs in: a new family whose first refresh token is returned along
    /// with a credential at `generation`, valid for an hour from `now_ms`.
    pub fn login(&mut self, now_ms: i64, generation: u64) -> Credential {
        let family = self.families.len();
        self.families.push(Family::default());
        self.issue(family, now_ms, generation)
    }

    fn issue(&mut self, family: usize, now_ms: i64, generation: u64) -> Credential {
        self.serial += 1;
        let tag = format!("f{family}-{}", self.serial);
        let refresh = format!("rt-{tag}");
        self.tokens.insert(refresh.clone(), family);
        Credential::oauth(PROVIDER, format!("at-{tag}"), refresh, now_ms + HOUR_MS)
            .with_generation(generation)
    }

    /// Exchanges `refresh` on behalf of `who`.
    pub fn exchange(
        &mut self,
        who: &str,
        refresh: &str,
        now_ms: i64,
    ) -> Result<TokenGrant, EndpointError> {
        self.presented.push((who.into(), refresh.into()));
        let Some(&family) = self.tokens.get(refresh) else {
            return Err(invalid_grant("unknown refresh token"));
        };
        if self.families[family].revoked {
            return Err(invalid_grant("token family revoked"));
        }
        if !self.consumed.insert(refresh.to_string()) {
            self.families[family].revoked = true;
            return Err(invalid_grant("refresh token has already been used"));
        }
        self.rotations += 1;
        let next = self.issue(family, now_ms, 0);
        let grant = TokenGrant {
            access: next.access.clone().expect("issued with an access token"),
            refresh: next.refresh.clone(),
            expires_in_ms: Some(HOUR_MS as u64),
            account_id: self.families[family].account_id.clone().map(Into::into),
            email: None,
        };
        if std::mem::take(&mut self.lose_next_answer) {
            return Err(EndpointError::transport(Transport::TimedOutAfterSend));
        }
        Ok(grant)
    }

    /// How many times `refresh` was presented, by anyone.
    pub fn presentations_of(&self, refresh: &str) -> usize {
        self.presented.iter().filter(|(_, r)| r == refresh).count()
    }

    /// Whether `refresh`'s family is revoked.
    pub fn is_revoked(&self, refresh: &str) -> bool {
        self.tokens
            .get(refresh)
            .is_some_and(|&family| self.families[family].revoked)
    }
}

fn invalid_grant(description: &str) -> EndpointError {
    EndpointError::http(
        400,
        format!(r#"{{"error":"invalid_grant","error_description":"{description}"}}"#),
    )
}

/// One agent's view of the world: implements the four driver traits.
#[derive(Clone)]
pub struct AgentHost {
    world: Shared,
    agent: String,
}

impl AgentHost {
    /// The host of `agent` (the main agent is named `main`).
    pub fn new(world: &Shared, agent: &str) -> Self {
        AgentHost {
            world: Rc::clone(world),
            agent: agent.into(),
        }
    }

    fn store_name(&self, store: StoreRef) -> String {
        match store {
            StoreRef::Own => self.world.borrow().own_store(&self.agent),
            StoreRef::Main => MAIN_STORE.to_string(),
        }
    }
}

impl RefreshLock for AgentHost {
    fn acquire(&mut self, key: &LockKey, wait_ms_max: u64) -> Result<(), LockFailure> {
        let hook = self.world.borrow_mut().before_acquire.remove(&self.agent);
        if let Some(hook) = hook {
            hook(&self.world);
        }
        let mut world = self.world.borrow_mut();
        if let Some(holder) = world.lock_holders.get(key) {
            return Err(LockFailure {
                waited_ms: wait_ms_max,
                holder: Some(holder.clone()),
                error: None,
            });
        }
        world.lock_holders.insert(key.clone(), self.agent.clone());
        world.acquisitions += 1;
        Ok(())
    }

    fn release(&mut self, key: &LockKey) {
        let mut world = self.world.borrow_mut();
        let holder = world.lock_holders.remove(key);
        assert_eq!(
            holder.as_deref(),
            Some(self.agent.as_str()),
            "G8: released by its holder only"
        );
        world.releases += 1;
    }
}

impl Stores for AgentHost {
    fn read(&mut self, store: StoreRef, profile: &str) -> Result<ProfileView, StoreFault> {
        let name = self.store_name(store);
        Ok(self.world.borrow().stores[&name].view(profile))
    }

    fn write(
        &mut self,
        store: StoreRef,
        profile: &str,
        mutation: &Mutation,
    ) -> Result<WriteOutcome, StoreFault> {
        let name = self.store_name(store);
        // The RefCell borrow is the store lock: read, apply, write back as one step.
        let mut world = self.world.borrow_mut();
        let doc = world
            .stores
            .get_mut(&name)
            .expect("stores exist before use");
        let mut copy = doc.clone();
        let outcome = copy.apply(profile, mutation);
        if !matches!(outcome, WriteOutcome::Conflict(_)) {
            *doc = StoreDoc::from_json(&copy.to_json()).expect("a written store reads back");
        }
        Ok(outcome)
    }
}

impl TokenEndpoint for AgentHost {
    fn refresh(
        &mut self,
        credential: &Credential,
        _deadline_ms: u64,
    ) -> Result<TokenGrant, EndpointError> {
        let hook = self.world.borrow_mut().during_call.remove(&self.agent);
        if let Some(hook) = hook {
            hook(&self.world);
        }
        let refresh = credential
            .refresh
            .as_ref()
            .map(Secret::expose)
            .unwrap_or_default()
            .to_string();
        let mut world = self.world.borrow_mut();
        let now_ms = world.now_ms;
        world.provider.exchange(&self.agent, &refresh, now_ms)
    }
}

impl Clock for AgentHost {
    fn now_ms(&self) -> i64 {
        self.world.borrow().now_ms
    }
}

/// Resolves the fixture profile for `agent` (`main` is the main agent)
/// through the canonical driver.
pub fn resolve(world: &Shared, agent: &str) -> Resolution {
    resolve_with(world, agent, Policy::default())
}

/// [`resolve`] under `policy`.
pub fn resolve_with(world: &Shared, agent: &str, policy: Policy) -> Resolution {
    let role = if agent == MAIN_STORE {
        Role::Main
    } else {
        Role::Sub
    };
    let request = Request {
        role,
        provider: PROVIDER.into(),
        profile: PROFILE.into(),
        holder: rotor_kernel::Holder {
            pid: 100,
            host: "memory".into(),
            agent: agent.into(),
        },
    };
    let mut lock = AgentHost::new(world, agent);
    let mut stores = lock.clone();
    let mut endpoint = lock.clone();
    let clock = lock.clone();
    driver::resolve(
        Host {
            lock: &mut lock,
            stores: &mut stores,
            endpoint: &mut endpoint,
            clock: &clock,
        },
        request,
        policy,
    )
}
