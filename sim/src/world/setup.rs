//! Building a world from its configuration: stores, families, agents, actors.

use std::collections::BinaryHeap;
use std::sync::Arc;

use rotor_kernel::{Credential, Holder, Request, Role, SharedStr, StoreDoc};
use serde_json::json;

use super::actors::Actor;
use super::{Agent, Ev, Process, ResolveNotes, StopOn, Waiting, World};
use crate::config::{ActorKind, Backend, Config, IdentityShape, SKEW_MS_MAX};
use crate::coverage::{Coverage, Stats};
use crate::endpoint::{access_token, refresh_token, Endpoint};
use crate::hooks::HostHooks;
use crate::lock::RefreshLock;
use crate::rng::Rng;
use crate::store::SimStore;
use crate::trace::{AgentRef, Trace, TraceMode};

/// The simulated epoch: time 0 of a run, as a wall clock reads it.
pub const BASE_EPOCH_MS: i64 = 1_700_000_000_000;
/// The provider id of the shared credential.
pub const PROVIDER: &str = "acme";
/// The profile id of the shared credential.
pub const PROFILE: &str = "acme:default";
/// An unrelated profile another program edits.
pub const OTHER_PROFILE: &str = "other:work";

/// The identity fields of `account` for `shape`: (account id, email, tenant).
pub(crate) fn identity(
    shape: IdentityShape,
    account: u8,
) -> (
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
) {
    let (id, email) = if account == 0 {
        ("acct-x", "x@example.com")
    } else {
        ("acct-y", "y@example.com")
    };
    match shape {
        IdentityShape::Legacy => (None, None, None),
        IdentityShape::Account => (Some(id), None, None),
        IdentityShape::Email => (None, Some(email), None),
        IdentityShape::AccountEmail => (Some(id), Some(email), None),
        IdentityShape::TenantAccount => (Some(id), None, Some("tenant-1")),
    }
}

/// What the provider reports about `account` in a grant: (account id, email).
pub(crate) fn reported_identity(
    shape: IdentityShape,
    account: u8,
) -> (Option<&'static str>, Option<&'static str>) {
    let (id, email, _) = identity(shape, account);
    match shape {
        // A legacy store's provider does know the account: the upgrade case.
        IdentityShape::Legacy => (Some(if account == 0 { "acct-x" } else { "acct-y" }), None),
        _ => (id, email),
    }
}

/// A credential of `family` at rank `n` for `account`.
pub(crate) fn credential(
    shape: IdentityShape,
    account: u8,
    family: u32,
    n: u32,
    generation: u64,
    expires_at_ms: i64,
) -> Credential {
    let mut credential = Credential::oauth(
        PROVIDER,
        access_token(family, n),
        refresh_token(family, n),
        expires_at_ms,
    )
    .with_generation(generation);
    let (id, email, tenant) = identity(shape, account);
    credential.account_id = id.map(SharedStr::from);
    credential.email = email.map(SharedStr::from);
    credential.tenant = tenant.map(SharedStr::from);
    // Stores written by rotor's login name their family; legacy stores
    // (written before rotor) do not.
    if !matches!(shape, IdentityShape::Legacy) {
        credential.family = Some(format!("family-{family}").into());
    }
    credential
}

fn base_doc() -> StoreDoc {
    StoreDoc {
        state: Some(json!({ "usage": {} })),
        ..StoreDoc::default()
    }
}

pub(super) fn build(
    config: Config,
    hooks: Arc<dyn HostHooks>,
    mode: TraceMode,
    stop: StopOn,
) -> World {
    let root = Rng::new(config.seed);
    let mut rng = root.fork(1);
    let fault_rng = root.fork(2);
    let knobs = config.knobs.clone();
    let lease_backend = matches!(config.backend, Backend::Lease | Backend::FencedLease);
    let policy = crate::policy::policy(knobs.grace_window_ms, lease_backend);

    let processes: Vec<Process> = (0..config.processes)
        .map(|_| {
            let skew = rng.below(2 * SKEW_MS_MAX + 1) as i64 - SKEW_MS_MAX as i64;
            Process {
                skew_ms: skew,
                base_skew_ms: skew,
                crashed: false,
                paused_until_ms: None,
            }
        })
        .collect();

    // Stores: 0 is main; then one per sub-agent slot (shared across
    // processes) or one per sub-agent.
    let subs_per_process = config.agents.saturating_sub(1) as usize;
    let sub_stores = if knobs.shared_agent_stores {
        subs_per_process
    } else {
        subs_per_process * config.processes as usize
    };
    let store_count = 1 + sub_stores;

    let mut endpoint = Endpoint::new(
        knobs.provider_grace_ms,
        knobs.access_lifetime_ms,
        knobs.provider_reports_identity,
    );
    let family_x = endpoint.issue_family(0, 1);
    let other_account =
        knobs.other_account_store && sub_stores > 0 && knobs.identity != IdentityShape::Legacy;
    let family_y = other_account.then(|| endpoint.issue_family(1, 0));

    let expiring = BASE_EPOCH_MS + rng.below(250_000) as i64;
    let main_credential = credential(knobs.identity, 0, family_x, 1, 3, expiring);
    let mut stores = Vec::with_capacity(store_count);
    let mut store_accounts = vec![None; store_count];
    let mut main = base_doc();
    if !knobs.main_absent {
        main.profiles
            .insert(PROFILE.into(), main_credential.clone());
    }
    main.profiles.insert(OTHER_PROFILE.into(), {
        let mut key = Credential::oauth("other", "k", "", 0);
        key.kind = rotor_kernel::CredentialKind::ApiKey;
        key.refresh = None;
        key
    });
    stores.push(SimStore::new(main));
    store_accounts[0] = Some(0);
    #[allow(clippy::needless_range_loop)] // `index` names the store in three places
    for index in 1..store_count {
        let mut doc = base_doc();
        if other_account && index == 1 {
            let y = credential(knobs.identity, 1, family_y.unwrap_or(1), 0, 0, expiring);
            doc.profiles.insert(PROFILE.into(), y);
            store_accounts[index] = Some(1);
        } else if knobs.main_absent {
            doc.profiles.insert(PROFILE.into(), main_credential.clone());
            store_accounts[index] = Some(0);
        } else {
            match rng.below(10) {
                0..=3 => {}
                4..=7 => {
                    doc.profiles.insert(PROFILE.into(), main_credential.clone());
                    store_accounts[index] = Some(0);
                }
                _ => {
                    let stale = credential(knobs.identity, 0, family_x, 0, 2, expiring - 3_600_000);
                    doc.profiles.insert(PROFILE.into(), stale);
                    store_accounts[index] = Some(0);
                }
            }
        }
        stores.push(SimStore::new(doc));
    }
    let store_names = (0..store_count)
        .map(|i| {
            if i == 0 {
                "main store".to_string()
            } else {
                format!("agent store s{i}")
            }
        })
        .collect();

    let mut agents = Vec::with_capacity(config.agent_count());
    for p in 0..config.processes {
        for a in 0..config.agents {
            let (role, own_store) = if a == 0 {
                (Role::Main, 0u8)
            } else if knobs.shared_agent_stores {
                (Role::Sub, a)
            } else {
                (Role::Sub, 1 + p * (config.agents - 1) + (a - 1))
            };
            agents.push(Agent {
                who: AgentRef { p, a },
                process: p,
                role,
                own_store,
                lock_slot: hooks.lock_slot(own_store),
                request: Request {
                    role,
                    provider: PROVIDER.into(),
                    profile: PROFILE.into(),
                    holder: Holder {
                        pid: 1000 + p as u32,
                        host: "sim".into(),
                        agent: format!("a{a}").into(),
                    },
                },
                resolver: None,
                effect: None,
                epoch: 0,
                requests_left: config.requests,
                waiting: Waiting::Nothing,
                waits: 0,
                holds_lock: false,
                call: None,
                notes: ResolveNotes::default(),
                binding: store_accounts[own_store as usize],
                deferred: None,
                liveness_result: None,
                granted: None,
            });
        }
    }

    let mut actors = Vec::new();
    let pick_process = |rng: &mut Rng| rng.below(config.processes as u64) as u8;
    if config.actors.has(ActorKind::Usage) {
        for store in 0..store_count as u8 {
            let in_place = knobs.in_place_writer && store == 0;
            actors.push(Actor::new(
                ActorKind::Usage,
                store,
                pick_process(&mut rng),
                in_place,
            ));
        }
    }
    for kind in [
        ActorKind::Edit,
        ActorKind::Relogin,
        ActorKind::Logout,
        ActorKind::ForeignLogin,
        ActorKind::ForeignLogout,
    ] {
        if config.actors.has(kind) {
            actors.push(Actor::new(kind, 0, pick_process(&mut rng), false));
        }
    }

    let locks = vec![RefreshLock::default(); store_count];
    let agent_count = agents.len();
    // The shipped fs host's store and lock code beside the models
    // (`--shipped-host`): the lock on the advisory backend with one lock for
    // the profile, as the shipped host has.
    let twin_io = config
        .shipped_host
        .then(|| hooks.twin_io(Arc::new(crate::disk::SimDisk::new())));
    let twin = twin_io
        .as_ref()
        .map(|io| super::twin::Twin::over(io.clone(), &stores));
    let one_lock = agents.iter().all(|agent| agent.lock_slot == 0);
    let twin_lock = twin_io
        .filter(|_| config.backend == Backend::Advisory && one_lock)
        .map(|io| super::twin_lock::TwinLock::new(config.processes as usize, io));
    let mut world = World {
        hooks,
        policy,
        rng,
        fault_rng,
        now_ms: 0,
        step: 0,
        seq: 0,
        queue: BinaryHeap::with_capacity(64),
        processes,
        agents,
        stores,
        store_names,
        locks,
        endpoint,
        actors,
        trace: Trace::new(mode),
        stats: Stats::default(),
        coverage: Coverage::default(),
        violations: Vec::new(),
        findings: Vec::new(),
        faults_drawn: 0,
        liveness: false,
        liveness_from_ms: 0,
        reverted_at_ms: None,
        main_reverted_at_ms: None,
        clock_jumped_at_ms: None,
        lease_lost_live: false,
        logged_out: false,
        in_doubt: Vec::new(),
        pauses: Vec::new(),
        crashes: Vec::new(),
        write_faults: 0,
        twin,
        twin_lock,
        logins: Vec::new(),
        lost_logins: Vec::new(),
        revoked_unstored: Vec::new(),
        revoked_by_excused_reuse: Vec::new(),
        parked: Vec::new(),
        stop,
        stopped: false,
        active_agents: agent_count,
        config,
    };
    for index in 0..agent_count {
        let delay = world.rng.below(2_000);
        world.schedule(
            delay,
            Ev::Wake {
                agent: index as u16,
                epoch: 0,
            },
        );
    }
    for index in 0..world.actors.len() {
        let delay = world.actors[index].first_delay(&mut world.rng);
        world.schedule(
            delay,
            Ev::Actor {
                actor: index as u8,
                epoch: 0,
            },
        );
    }
    world
}
