//! The conformance cases. Each names the guarantee it checks.

use rotor_kernel::driver::{self, Clock, RefreshLock, Stores, TokenEndpoint};
use rotor_kernel::{
    Credential, EndpointError, Expect, Failure, LockKey, Mutation, Outcome, Policy, Request, Role,
    Secret, Source, StoreDoc, StoreRef, TokenGrant, Transport, WriteOutcome,
};
use serde_json::json;

use super::{Agent, HostFactory, StoreName};

/// The suite's profile and provider.
pub const PROFILE: &str = "acme:default";
/// The suite's provider.
pub const PROVIDER: &str = "acme";
/// The suite's clock: a fixed instant.
pub const NOW_MS: i64 = 1_700_000_000_000;

type Case<F> = fn(&mut F);

/// Every case, by name.
pub fn cases<F: HostFactory>() -> Vec<(&'static str, Case<F>)> {
    vec![
        (
            "read_of_a_missing_store_is_empty",
            read_of_a_missing_store_is_empty::<F>,
        ),
        (
            "write_is_visible_to_the_next_read_g6",
            write_is_visible_to_the_next_read_g6::<F>,
        ),
        (
            "conflicting_write_changes_nothing_g5",
            conflicting_write_changes_nothing_g5::<F>,
        ),
        (
            "write_preserves_state_and_other_profiles_g4",
            write_preserves_state_and_other_profiles_g4::<F>,
        ),
        (
            "own_and_main_are_distinct_stores",
            own_and_main_are_distinct_stores::<F>,
        ),
        (
            "refresh_lock_excludes_other_participants_g8",
            refresh_lock_excludes_other_participants_g8::<F>,
        ),
        (
            "cached_token_needs_no_lock_or_call",
            cached_token_needs_no_lock_or_call::<F>,
        ),
        (
            "refresh_presents_once_and_commits_g1_g6",
            refresh_presents_once_and_commits_g1_g6::<F>,
        ),
        (
            "unknown_outcome_keeps_the_fence_g7",
            unknown_outcome_keeps_the_fence_g7::<F>,
        ),
        (
            "reuse_marks_needs_reauth_g7",
            reuse_marks_needs_reauth_g7::<F>,
        ),
        (
            "sub_agent_refresh_mirrors_into_main_g3",
            sub_agent_refresh_mirrors_into_main_g3::<F>,
        ),
        (
            "peer_adopts_instead_of_refreshing_g2",
            peer_adopts_instead_of_refreshing_g2::<F>,
        ),
    ]
}

struct FixedClock;

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        NOW_MS
    }
}

/// A scripted endpoint: answers from a list and records what was presented.
struct Scripted {
    answers: Vec<Result<TokenGrant, EndpointError>>,
    presented: Vec<String>,
}

impl TokenEndpoint for Scripted {
    fn refresh(&mut self, credential: &Credential, _: u64) -> Result<TokenGrant, EndpointError> {
        self.presented.push(
            credential
                .refresh
                .as_ref()
                .map(|s| s.expose().to_owned())
                .unwrap_or_default(),
        );
        if self.answers.is_empty() {
            panic!("conformance: the endpoint was called more often than scripted");
        }
        self.answers.remove(0)
    }
}

fn grant(n: u32) -> TokenGrant {
    TokenGrant {
        access: Secret::new(format!("at-{n}")),
        refresh: Some(Secret::new(format!("rt-{n}"))),
        expires_in_ms: Some(3_600_000),
        account_id: None,
        email: None,
    }
}

fn expired(generation: u64) -> Credential {
    Credential::oauth(PROVIDER, "at-0", "rt-0", NOW_MS - 1).with_generation(generation)
}

fn fresh(generation: u64) -> Credential {
    Credential::oauth(PROVIDER, "at-fresh", "rt-fresh", NOW_MS + 3_600_000)
        .with_generation(generation)
}

fn doc_with(credential: Credential) -> StoreDoc {
    let mut doc = StoreDoc::default();
    doc.profiles.insert(PROFILE.into(), credential);
    doc
}

fn request(agent: Agent) -> Request {
    Request {
        role: match agent {
            Agent::Main => Role::Main,
            Agent::Worker => Role::Sub,
        },
        provider: PROVIDER.into(),
        profile: PROFILE.into(),
        holder: rotor_kernel::Holder {
            pid: 1,
            host: "conformance".into(),
            agent: format!("{agent:?}").into(),
        },
    }
}

fn resolve<F: HostFactory>(
    factory: &mut F,
    agent: Agent,
    participant: usize,
    endpoint: &mut Scripted,
) -> rotor_kernel::Resolution {
    let mut lock = factory.lock(participant);
    let mut stores = factory.stores(agent);
    driver::resolve(
        driver::Host {
            lock: &mut lock,
            stores: &mut stores,
            endpoint,
            clock: &FixedClock,
        },
        request(agent),
        Policy::default(),
    )
}

fn snapshot<F: HostFactory>(factory: &mut F, store: StoreName) -> StoreDoc {
    factory
        .snapshot(store)
        .unwrap_or_else(|| panic!("conformance: {store:?} store is missing"))
}

fn read_of_a_missing_store_is_empty<F: HostFactory>(factory: &mut F) {
    let mut stores = factory.stores(Agent::Worker);
    for store in [StoreRef::Own, StoreRef::Main] {
        let view = stores
            .read(store, PROFILE)
            .expect("reading a missing store");
        assert_eq!(view, Default::default(), "a missing {store} reads as empty");
    }
}

fn write_is_visible_to_the_next_read_g6<F: HostFactory>(factory: &mut F) {
    let mut stores = factory.stores(Agent::Main);
    let login = Mutation::Login {
        credential: expired(0).into(),
    };
    let outcome = stores
        .write(StoreRef::Own, PROFILE, &login)
        .expect("login write");
    assert_eq!(outcome, WriteOutcome::Applied);
    let view = stores.read(StoreRef::Own, PROFILE).unwrap();
    assert_eq!(
        view.credential.as_ref().map(|c| c.generation),
        Some(1),
        "G6: write not visible"
    );
    let durable = snapshot(factory, StoreName::Main);
    assert_eq!(
        durable.profiles[PROFILE].generation, 1,
        "G6: write not durable"
    );
}

fn conflicting_write_changes_nothing_g5<F: HostFactory>(factory: &mut F) {
    factory.seed(StoreName::Main, doc_with(expired(5)));
    let before = snapshot(factory, StoreName::Main);
    let mut stores = factory.stores(Agent::Main);
    let stale = Mutation::Adopt {
        expect: Expect::of(Some(&expired(4))),
        credential: fresh(6).into(),
    };
    let outcome = stores.write(StoreRef::Own, PROFILE, &stale).unwrap();
    assert!(
        matches!(outcome, WriteOutcome::Conflict(_)),
        "G5: stale write applied: {outcome:?}"
    );
    assert_eq!(
        snapshot(factory, StoreName::Main),
        before,
        "G5: a rejected write changed the store"
    );
}

fn write_preserves_state_and_other_profiles_g4<F: HostFactory>(factory: &mut F) {
    let mut doc = doc_with(expired(1));
    doc.profiles
        .insert("other:x".into(), Credential::oauth("other", "a", "r", 7));
    doc.state = Some(json!({"usage": {"acme:default": {"count": 41}}, "order": ["acme:default"]}));
    doc.extra
        .insert("lastGood".into(), json!({"acme": "acme:default"}));
    factory.seed(StoreName::Main, doc.clone());
    let mut stores = factory.stores(Agent::Main);
    let adopt = Mutation::Adopt {
        expect: Expect::of(Some(&expired(1))),
        credential: fresh(2).into(),
    };
    assert_eq!(
        stores.write(StoreRef::Own, PROFILE, &adopt).unwrap(),
        WriteOutcome::Applied
    );
    let after = snapshot(factory, StoreName::Main);
    assert_eq!(after.state, doc.state, "G4: state lost");
    assert_eq!(after.extra, doc.extra, "G4: unknown fields lost");
    assert_eq!(
        after.profiles["other:x"], doc.profiles["other:x"],
        "G4: another profile lost"
    );
    assert_eq!(after.profiles[PROFILE], fresh(2));
}

fn own_and_main_are_distinct_stores<F: HostFactory>(factory: &mut F) {
    let mut stores = factory.stores(Agent::Worker);
    let login = Mutation::Login {
        credential: expired(0).into(),
    };
    stores.write(StoreRef::Own, PROFILE, &login).unwrap();
    assert!(
        factory
            .snapshot(StoreName::Main)
            .is_none_or(|d| d.profiles.is_empty()),
        "a sub-agent's own write reached main"
    );
    let mut stores = factory.stores(Agent::Worker);
    stores.write(StoreRef::Main, PROFILE, &login).unwrap();
    assert!(snapshot(factory, StoreName::Main)
        .profiles
        .contains_key(PROFILE));
    assert!(snapshot(factory, StoreName::Worker)
        .profiles
        .contains_key(PROFILE));
}

fn refresh_lock_excludes_other_participants_g8<F: HostFactory>(factory: &mut F) {
    let key = LockKey::new(PROVIDER, PROFILE);
    let other = LockKey::new(PROVIDER, "acme:other");
    let mut first = factory.lock(0);
    let mut second = factory.lock(1);
    first.acquire(&key, 1_000).expect("a free lock is acquired");
    let failure = second
        .acquire(&key, 50)
        .expect_err("G8: a second participant took a held lock");
    let _ = failure.waited_ms;
    second
        .acquire(&other, 1_000)
        .expect("another key is independent");
    second.release(&other);
    first.release(&key);
    second
        .acquire(&key, 1_000)
        .expect("a released lock is acquired");
    second.release(&key);
}

fn cached_token_needs_no_lock_or_call<F: HostFactory>(factory: &mut F) {
    factory.seed(StoreName::Main, doc_with(fresh(3)));
    // A participant holds the lock: a cached read must not need it.
    let key = LockKey::new(PROVIDER, PROFILE);
    let mut holder = factory.lock(1);
    holder.acquire(&key, 1_000).unwrap();
    let mut endpoint = Scripted {
        answers: vec![],
        presented: vec![],
    };
    let granted = resolve(factory, Agent::Main, 0, &mut endpoint).expect("cached token");
    assert_eq!(granted.outcome, Outcome::Cached);
    assert_eq!(granted.access.expose(), "at-fresh");
    holder.release(&key);
}

fn refresh_presents_once_and_commits_g1_g6<F: HostFactory>(factory: &mut F) {
    factory.seed(StoreName::Main, doc_with(expired(1)));
    let mut endpoint = Scripted {
        answers: vec![Ok(grant(1))],
        presented: vec![],
    };
    let granted = resolve(factory, Agent::Main, 0, &mut endpoint).expect("refresh");
    assert_eq!(granted.outcome, Outcome::Refreshed);
    assert_eq!(endpoint.presented, vec!["rt-0"], "G1: presented once");
    let doc = snapshot(factory, StoreName::Main);
    let stored = &doc.profiles[PROFILE];
    assert_eq!(
        stored.generation, 2,
        "G5/G6: rotation stored with generation + 1"
    );
    assert_eq!(
        stored.refresh.as_ref().unwrap().expose(),
        "rt-1",
        "G6: rotation durable"
    );
    assert!(
        doc.fences.is_empty(),
        "the fence is cleared with the commit"
    );
    // The next participant reads it without calling.
    let mut endpoint = Scripted {
        answers: vec![],
        presented: vec![],
    };
    let again = resolve(factory, Agent::Main, 1, &mut endpoint).unwrap();
    assert_eq!(
        (again.outcome, again.access.expose()),
        (Outcome::Cached, "at-1")
    );
}

fn unknown_outcome_keeps_the_fence_g7<F: HostFactory>(factory: &mut F) {
    factory.seed(StoreName::Main, doc_with(expired(1)));
    let lost = EndpointError::transport(Transport::TimedOutAfterSend);
    let mut endpoint = Scripted {
        answers: vec![Err(lost)],
        presented: vec![],
    };
    let failure = resolve(factory, Agent::Main, 0, &mut endpoint).unwrap_err();
    assert!(matches!(failure, Failure::InDoubt { .. }), "{failure:?}");
    let doc = snapshot(factory, StoreName::Main);
    let fence = doc
        .fences
        .get(PROFILE)
        .and_then(|fences| fences.first())
        .expect("G7: the fence is durable after an unknown outcome");
    assert_eq!(fence.generation, 1);
    let mut endpoint = Scripted {
        answers: vec![],
        presented: vec![],
    };
    let failure = resolve(factory, Agent::Main, 1, &mut endpoint).unwrap_err();
    assert!(
        matches!(failure, Failure::NeedsReauth(_)),
        "G7: {failure:?}"
    );
    assert!(
        endpoint.presented.is_empty(),
        "G7/G1: the fenced token was presented again"
    );
}

fn reuse_marks_needs_reauth_g7<F: HostFactory>(factory: &mut F) {
    factory.seed(StoreName::Main, doc_with(expired(1)));
    let reuse = EndpointError::http(400, r#"{"error":"invalid_grant"}"#);
    let mut endpoint = Scripted {
        answers: vec![Err(reuse)],
        presented: vec![],
    };
    let failure = resolve(factory, Agent::Main, 0, &mut endpoint).unwrap_err();
    assert!(matches!(failure, Failure::NeedsReauth(_)), "{failure:?}");
    let doc = snapshot(factory, StoreName::Main);
    assert!(
        doc.profiles[PROFILE].needs_reauth,
        "the refused family is marked"
    );
    assert!(doc.fences.is_empty(), "the outcome is known: no fence");
}

fn sub_agent_refresh_mirrors_into_main_g3<F: HostFactory>(factory: &mut F) {
    factory.seed(StoreName::Main, doc_with(expired(1).with_account("acct-1")));
    let mut endpoint = Scripted {
        answers: vec![Ok(grant(1))],
        presented: vec![],
    };
    let granted = resolve(factory, Agent::Worker, 0, &mut endpoint).expect("sub-agent refresh");
    assert_eq!(granted.outcome, Outcome::Refreshed);
    let main = snapshot(factory, StoreName::Main);
    let own = snapshot(factory, StoreName::Worker);
    assert_eq!(
        main.profiles[PROFILE].refresh.as_ref().unwrap().expose(),
        "rt-1",
        "mirrored"
    );
    assert_eq!(own.profiles[PROFILE], main.profiles[PROFILE]);
    assert_eq!(
        main.profiles[PROFILE].account_id.as_deref(),
        Some("acct-1"),
        "G3: identity kept"
    );
    assert!(main.fences.is_empty() && own.fences.is_empty());
}

fn peer_adopts_instead_of_refreshing_g2<F: HostFactory>(factory: &mut F) {
    factory.seed(StoreName::Main, doc_with(fresh(4)));
    factory.seed(StoreName::Worker, doc_with(expired(3)));
    let mut endpoint = Scripted {
        answers: vec![],
        presented: vec![],
    };
    let granted = resolve(factory, Agent::Worker, 0, &mut endpoint).expect("adopt");
    assert_eq!(granted.outcome, Outcome::Adopted { from: Source::Main });
    assert!(endpoint.presented.is_empty(), "G2: adopted without a call");
    let own = snapshot(factory, StoreName::Worker);
    assert_eq!(
        own.profiles[PROFILE],
        fresh(4),
        "the adopted credential is stored"
    );
}
