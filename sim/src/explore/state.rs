//! One state of the explored world and its transitions.
//!
//! The world is the simulator's, abstracted so it is finite: stores are
//! documents replaced atomically in one step (the store lock is held only
//! inside a step), the refresh lock is a set of holders per lock slot, the
//! provider is a strict rotating endpoint (`r{family}.{rank}` tokens; a reuse
//! revokes the family), and time is a phase counter: a token is fresh only in
//! the phase it was issued in (`PHASE_MS` equals the token lifetime), and the
//! starting token is already inside the refresh margin.
//!
//! A resolver's state is the sequence of inputs it was given (the kernel is
//! deterministic), so each agent carries a running hash of that sequence; the
//! [`State::key`] hashes it with everything else. With symmetry reduction
//! (`symmetry.rs`) the agent carries one such hash per renaming of the
//! world's interchangeable processes, and [`State::canonical_key`] is the
//! least key over the renamings.

use std::borrow::Cow;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use rotor_kernel::{
    Credential, EndpointError, Holder, Input, Mutation, Policy, Request, Resolver, Role, StoreDoc,
    StoreRef, TokenGrant, Transport,
};
use serde_json::json;

use super::symmetry::{Renaming, Symmetry};
use super::ExploreConfig;

/// The simulated epoch (time 0).
pub const BASE_EPOCH_MS: i64 = 1_700_000_000_000;
/// One time phase; also the lifetime of an issued access token.
pub const PHASE_MS: i64 = 3_600_000;
/// The shared credential's provider and profile.
pub const PROVIDER: &str = "acme";
/// The shared credential's profile id.
pub const PROFILE: &str = "acme:default";

/// A fault drawn for one endpoint call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallFault {
    /// The provider answers.
    None,
    /// Connection refused: nothing was sent.
    NotSent,
    /// The request is processed, the response is lost (unknown outcome).
    Lost,
    /// The provider refuses the token as reused / revoked (`invalid_grant`).
    Reuse,
}

/// What the provider answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reply {
    /// A rotation: the new rank of `family`.
    Granted { family: u8, n: u32 },
    /// `invalid_grant`.
    InvalidGrant,
}

/// One request to the provider.
#[derive(Clone, Debug, Hash)]
pub struct Call {
    pub agent: u8,
    pub family: u8,
    pub n: u32,
    pub fault: CallFault,
    pub arrived: bool,
    pub reply: Option<Reply>,
    /// The host reported the result to the caller.
    pub completed: bool,
}

/// One agent.
#[derive(Clone, Debug)]
pub struct Agent {
    pub name: String,
    pub process: u8,
    pub role: Role,
    pub own_store: u8,
    pub slot: u8,
    pub resolver: Option<Resolver>,
    /// The effect polled from `resolver`, not yet performed (a function of
    /// `histories`).
    pub effect: Option<rotor_kernel::Effect>,
    /// Running hashes of the inputs given to `resolver` (its state), one per
    /// renaming of the explored [`Symmetry`]: `histories[k]` hashes each
    /// input as renaming `k` renames it; `histories[0]` (the identity)
    /// hashes the inputs as given.
    pub histories: Vec<u64>,
    pub requests_left: u8,
    pub holds_lock: bool,
    pub call: Option<u16>,
    /// This resolve's calls as the G2 bound counts them.
    pub budget: crate::call_budget::CallBudget,
    /// The account this agent is bound to (G3).
    pub binding: Option<u8>,
    /// A mirror the broken host reported done but performs after release (B6).
    pub deferred: Option<Mutation>,
    /// A rotor write split without the store lock: the copy read (B4).
    pub split: Option<StoreDoc>,
    /// Generation the host reported mirrored into main in this resolve.
    pub mirrored: Option<u64>,
    /// (store, generation) of this resolve's applied commit (G6).
    pub committed: Option<(u8, u64)>,
}

impl Agent {
    /// The fence holder this agent's resolver writes: its process as a pid,
    /// and its name.
    pub fn holder(&self) -> Holder {
        Holder {
            pid: 100 + u32::from(self.process),
            host: "sim".into(),
            agent: self.name.clone().into(),
        }
    }
}

/// Provider state of one token family.
#[derive(Clone, Debug, Hash)]
pub struct Family {
    pub account: u8,
    pub current: u32,
    pub revoked: bool,
    /// Ranks presented so far (G1).
    pub presented: Vec<u32>,
}

/// One explored state.
#[derive(Clone, Debug)]
pub struct State {
    pub agents: Vec<Agent>,
    pub stores: Vec<StoreDoc>,
    /// Holders (agent index) per lock slot.
    pub locks: Vec<Vec<u8>>,
    pub families: Vec<Family>,
    pub calls: Vec<Call>,
    pub phase: u8,
    pub crashes_left: u8,
    pub faults_left: u8,
    pub lease_expiries_left: u8,
    /// A lease expired under a live holder (the lease backend's limit).
    pub lease_lost_live: bool,
    pub writer_done: bool,
    /// The usage writer holds main's store lock with the copy it read.
    pub writer_copy: Option<StoreDoc>,
    pub relogin_done: bool,
    /// Families below this may never be written into main again (G11).
    pub main_banned_below: u8,
}

/// One transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Start(u8),
    Effect(u8),
    Send(u8, CallFault),
    Arrive(u16),
    Complete(u8),
    SplitWrite(u8),
    DeferredMirror(u8),
    Crash(u8),
    Time,
    LeaseExpire(u8),
    Writer,
    Relogin,
}

pub(crate) fn token(kind: char, family: u8, n: u32) -> String {
    format!("{kind}{family}.{n}")
}

pub(crate) fn parse(value: &str) -> Option<(u8, u32)> {
    let (family, n) = value.get(1..)?.split_once('.')?;
    Some((family.parse().ok()?, n.parse().ok()?))
}

fn account_fields(config: &ExploreConfig, account: u8) -> (Option<String>, Option<String>) {
    let id = if account == 0 { "acct-x" } else { "acct-y" };
    if config.legacy_identity {
        (None, None)
    } else {
        (Some(id.into()), None)
    }
}

fn credential(
    config: &ExploreConfig,
    account: u8,
    family: u8,
    n: u32,
    generation: u64,
) -> Credential {
    let expires = BASE_EPOCH_MS + 60_000; // inside the refresh margin at phase 0
    let mut c = Credential::oauth(
        PROVIDER,
        token('a', family, n),
        token('r', family, n),
        expires,
    )
    .with_generation(generation);
    let (id, email) = account_fields(config, account);
    c.account_id = id.map(Into::into);
    c.email = email.map(Into::into);
    if !config.legacy_identity {
        c.family = Some(format!("family-{family}").into());
    }
    c
}

impl State {
    /// The initial state of `config`.
    pub fn initial(config: &ExploreConfig) -> State {
        let mut agents = Vec::new();
        let mut subs = 0u8;
        for (p, &count) in config.agents_per_process.iter().enumerate() {
            for k in 0..count {
                let role = if k == 0 { Role::Main } else { Role::Sub };
                let own_store = if k == 0 {
                    0
                } else {
                    subs += 1;
                    subs
                };
                agents.push(Agent {
                    name: format!("p{p}.a{k}"),
                    process: p as u8,
                    role,
                    own_store,
                    slot: 0,
                    resolver: None,
                    effect: None,
                    histories: vec![0],
                    requests_left: config.requests,
                    holds_lock: false,
                    call: None,
                    budget: Default::default(),
                    binding: None,
                    deferred: None,
                    split: None,
                    mirrored: None,
                    committed: None,
                });
            }
        }
        let base = || StoreDoc {
            state: Some(json!({ "usage": {} })),
            ..StoreDoc::default()
        };
        let mut families = vec![Family {
            account: 0,
            current: 1,
            revoked: false,
            presented: Vec::new(),
        }];
        let mut stores = vec![base()];
        stores[0]
            .profiles
            .insert(PROFILE.into(), credential(config, 0, 0, 1, 3));
        for s in 1..=subs {
            let mut doc = base();
            if config.other_account_store && s == subs {
                families.push(Family {
                    account: 1,
                    current: 0,
                    revoked: false,
                    presented: Vec::new(),
                });
                doc.profiles
                    .insert(PROFILE.into(), credential(config, 1, 1, 0, 0));
            } else if config.sub_stores_hold_copy {
                doc.profiles
                    .insert(PROFILE.into(), credential(config, 0, 0, 1, 3));
            }
            stores.push(doc);
        }
        for agent in &mut agents {
            agent.binding = stores[agent.own_store as usize]
                .profiles
                .get(PROFILE)
                .or_else(|| stores[0].profiles.get(PROFILE))
                .and_then(|c| c.refresh.as_ref())
                .and_then(|r| parse(r.expose()))
                .map(|(f, _)| families[f as usize].account);
        }
        State {
            locks: vec![Vec::new(); stores.len()],
            agents,
            stores,
            families,
            calls: Vec::new(),
            phase: 0,
            crashes_left: config.crashes_max,
            faults_left: config.endpoint_faults_max,
            lease_expiries_left: if config.lease {
                config.lease_expiries_max
            } else {
                0
            },
            lease_lost_live: false,
            writer_done: !config.writer,
            writer_copy: None,
            relogin_done: !config.relogin,
            main_banned_below: 0,
        }
    }

    /// Process-local wall clock of the current phase.
    pub fn now_ms(&self) -> i64 {
        BASE_EPOCH_MS + self.phase as i64 * PHASE_MS
    }

    /// How many processes the world has.
    pub fn process_count(&self) -> usize {
        self.agents
            .iter()
            .map(|a| a.process as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// Keeps one input-history hash per renaming of `symmetry` (every agent
    /// must not have been given any input yet).
    pub fn track(&mut self, symmetry: &Symmetry) {
        for agent in &mut self.agents {
            assert!(
                agent.histories.iter().all(|&h| h == 0),
                "bug: a symmetry tracked after inputs were given"
            );
            agent.histories = vec![0; symmetry.len()];
        }
    }

    /// The fence holder agent `a`'s resolver writes.
    pub(crate) fn holder_of(&self, a: usize) -> Holder {
        self.agents[a].holder()
    }

    /// A 128-bit hash of the whole state as it is (two independent 64-bit
    /// hashes of the same encoding).
    pub fn key(&self) -> u128 {
        let identity = Symmetry::none(self);
        self.key_under(0, &identity.renamings()[0])
    }

    /// The key of the state renamed by `symmetry`'s renamings, the least:
    /// equal for two states exactly when one is a renaming of the other (up
    /// to a hash collision). The visited set's key.
    pub fn canonical_key(&self, symmetry: &Symmetry) -> u128 {
        let stores: Vec<Vec<u8>> = self.stores.iter().map(StoreDoc::to_json).collect();
        symmetry
            .renamings()
            .iter()
            .enumerate()
            .map(|(k, renaming)| self.encode(k, renaming, &stores))
            .min()
            .unwrap_or_else(|| panic!("bug: a symmetry without the identity"))
    }

    /// The key of this state renamed by `renaming`, which is renaming `k` of
    /// the symmetry whose histories the agents carry: what [`State::key`]
    /// of the renamed state would be.
    pub fn key_under(&self, k: usize, renaming: &Renaming) -> u128 {
        let stores: Vec<Vec<u8>> = self.stores.iter().map(StoreDoc::to_json).collect();
        self.encode(k, renaming, &stores)
    }

    /// [`State::key_under`], given the stores' JSON as they are.
    fn encode(&self, k: usize, renaming: &Renaming, stores: &[Vec<u8>]) -> u128 {
        let mut a = DefaultHasher::new();
        let mut b = DefaultHasher::new();
        0xA5u8.hash(&mut b);
        let mut both = |bytes: &[u8]| {
            bytes.hash(&mut a);
            bytes.hash(&mut b);
        };
        let json = |doc: &StoreDoc| renaming.doc(doc).to_json();
        for at in 0..self.agents.len() {
            let agent = &self.agents[renaming.agent_back(at)];
            let split = agent.split.as_ref().map(json);
            let text = format!(
                "{}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}",
                agent.histories[k],
                agent.resolver.is_some(),
                agent.requests_left,
                agent.holds_lock,
                agent.budget,
                agent.call,
                agent.binding,
                agent.deferred.as_ref().map(|m| renaming.mutation(m)),
                (
                    agent.mirrored,
                    agent
                        .committed
                        .map(|(s, generation)| (renaming.store(s), generation))
                ),
                split.as_ref().map_or(0, Vec::len)
            );
            both(text.as_bytes());
            if let Some(bytes) = &split {
                both(bytes);
            }
        }
        for at in 0..self.stores.len() {
            let from = renaming.store_back(at);
            match renaming.doc(&self.stores[from]) {
                Cow::Borrowed(_) => both(&stores[from]),
                Cow::Owned(renamed) => both(&renamed.to_json()),
            }
        }
        let locks: Vec<Vec<u8>> = (0..self.locks.len())
            .map(|at| {
                self.locks[renaming.slot_back(at)]
                    .iter()
                    .map(|&h| renaming.agent(h))
                    .collect()
            })
            .collect();
        let calls: Cow<'_, [Call]> = if renaming.is_identity() {
            Cow::Borrowed(&self.calls)
        } else {
            Cow::Owned(self.calls.iter().map(|c| renaming.call(c)).collect())
        };
        let rest = format!(
            "{:?}|{:?}|{:?}|{}|{}|{}|{}|{}|{}|{}|{}",
            locks,
            self.families,
            calls,
            self.phase,
            self.crashes_left,
            self.faults_left,
            self.lease_expiries_left,
            self.lease_lost_live,
            self.writer_done,
            self.relogin_done,
            self.main_banned_below
        );
        both(rest.as_bytes());
        if let Some(doc) = &self.writer_copy {
            both(&json(doc));
        }
        both(&[u8::from(self.writer_copy.is_some())]);
        (u128::from(a.finish()) << 64) | u128::from(b.finish())
    }

    /// Gives `input` to agent `a`'s resolver, recording it in its history
    /// under each renaming of `symmetry`.
    pub(crate) fn deliver(&mut self, symmetry: &Symmetry, a: usize, input: Input) {
        let now_ms = self.now_ms();
        let agent = &mut self.agents[a];
        let as_given = format!("{input:?}@{now_ms}");
        for (k, renaming) in symmetry.renamings().iter().enumerate() {
            let text = match renaming.input(&input) {
                Some(renamed) => Cow::Owned(format!("{renamed:?}@{now_ms}")),
                None => Cow::Borrowed(as_given.as_str()),
            };
            let mut h = DefaultHasher::new();
            agent.histories[k].hash(&mut h);
            text.as_ref().hash(&mut h);
            agent.histories[k] = h.finish();
        }
        if let Some(resolver) = agent.resolver.as_mut() {
            if let Err(misuse) = resolver.handle(input, now_ms) {
                panic!("bug: the explorer misused the kernel API: {misuse:?}");
            }
            agent.effect = resolver.poll_effect();
        }
    }

    /// Starts a resolve for agent `a`.
    pub(crate) fn start(&mut self, a: usize, policy: &Policy) {
        let now_ms = self.now_ms();
        let holder = self.holder_of(a);
        let agent = &mut self.agents[a];
        let request = Request {
            role: agent.role,
            provider: PROVIDER.into(),
            profile: PROFILE.into(),
            holder,
        };
        let mut resolver = Resolver::new(request, policy.clone(), now_ms);
        agent.effect = resolver.poll_effect();
        agent.resolver = Some(resolver);
        for history in &mut agent.histories {
            let mut h = DefaultHasher::new();
            history.hash(&mut h);
            ("start", now_ms).hash(&mut h);
            *history = h.finish();
        }
        agent.budget = Default::default();
        agent.mirrored = None;
        agent.committed = None;
    }

    /// The store index of `store` for agent `a`.
    pub(crate) fn store_of(&self, a: usize, store: StoreRef) -> usize {
        match store {
            StoreRef::Own => self.agents[a].own_store as usize,
            StoreRef::Main => 0,
        }
    }

    /// The generation of store `s`'s entry (-1: absent).
    pub(crate) fn generation(&self, s: usize) -> i64 {
        self.stores[s]
            .profiles
            .get(PROFILE)
            .map_or(-1, |c| c.generation as i64)
    }

    /// The grant of `family` at rank `n`, as the provider reports it.
    pub(crate) fn grant(&self, config: &ExploreConfig, family: u8, n: u32) -> TokenGrant {
        let account = self.families[family as usize].account;
        let id = if account == 0 { "acct-x" } else { "acct-y" };
        TokenGrant {
            access: rotor_kernel::Secret::new(token('a', family, n)),
            refresh: Some(rotor_kernel::Secret::new(token('r', family, n))),
            expires_in_ms: Some(PHASE_MS as u64),
            account_id: (config.provider_reports_identity || !config.legacy_identity)
                .then(|| id.into()),
            email: None,
        }
    }

    /// The endpoint result a completed call reports.
    pub(crate) fn reply_of(
        &self,
        config: &ExploreConfig,
        call: &Call,
    ) -> Result<TokenGrant, EndpointError> {
        match (call.fault, call.reply) {
            (CallFault::NotSent, _) => Err(EndpointError::transport(Transport::ConnectRefused)),
            (CallFault::Lost, _) | (_, None) => {
                Err(EndpointError::transport(Transport::TimedOutAfterSend))
            }
            (_, Some(Reply::Granted { family, n })) => Ok(self.grant(config, family, n)),
            (_, Some(Reply::InvalidGrant)) => Err(EndpointError::http(
                400,
                r#"{"error":"invalid_grant","error_description":"refresh token has already been used"}"#,
            )),
        }
    }

    /// True when every agent made all its requests and none is resolving.
    pub fn all_done(&self) -> bool {
        self.agents
            .iter()
            .all(|a| a.requests_left == 0 && a.resolver.is_none())
    }
}
