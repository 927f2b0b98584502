//! Kernel micro-benchmarks (criterion): what one resolve costs in the pure
//! state machine, without any I/O, and the pieces every resolve uses.
//!
//! - `resolve/{cached,adopted_main,adopted_peer,refreshed}`: one whole
//!   `driver::resolve` through an in-memory host (two `StoreDoc`s, a lock
//!   that never contends, a provider that answers at once, a fixed clock);
//! - `identity/*`: the identity gate (SPEC §5) on prepared identities and
//!   from raw credentials (normalization included);
//! - `lock_key/*`: the injective lock key (SPEC §4) for a short and a
//!   256-byte profile id;
//! - `store_50/{encode,decode,apply_commit}`: a 50-profile store document
//!   to and from JSON, and one commit applied to it.
//!
//! Run: `cargo bench --bench kernel`; `cargo bench --bench kernel -- --test`
//! runs each once (CI). Figures are in BENCHMARKS.md.

use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rotor_kernel::driver::{self, Clock, Host, RefreshLock, Stores, TokenEndpoint};
use rotor_kernel::{
    may_copy, Credential, EndpointError, Expect, Fence, Fingerprint, Holder, Identity, LockFailure,
    LockKey, Mutation, Outcome, Policy, ProfileView, Request, Role, Secret, Source, StoreDoc,
    StoreFault, StoreRef, TokenGrant, WriteOutcome,
};

const PROVIDER: &str = "acme";
const PROFILE: &str = "acme:default";
const NOW_MS: i64 = 1_700_000_000_000;
const HOUR_MS: i64 = 3_600_000;

/// Own and main store documents (for the main agent, `own` is main).
#[derive(Clone)]
struct Docs {
    own: StoreDoc,
    main: StoreDoc,
    role: Role,
}

impl Docs {
    fn doc(&mut self, store: StoreRef) -> &mut StoreDoc {
        match (self.role, store) {
            (Role::Main, _) | (Role::Sub, StoreRef::Main) => &mut self.main,
            (Role::Sub, StoreRef::Own) => &mut self.own,
        }
    }
}

/// The in-memory stores; shared with the lock that stages a peer.
struct MemoryStores(Rc<RefCell<Docs>>);

impl Stores for MemoryStores {
    fn read(&mut self, store: StoreRef, profile: &str) -> Result<ProfileView, StoreFault> {
        Ok(self.0.borrow_mut().doc(store).view(profile))
    }

    fn write(
        &mut self,
        store: StoreRef,
        profile: &str,
        mutation: &Mutation,
    ) -> Result<WriteOutcome, StoreFault> {
        Ok(self.0.borrow_mut().doc(store).apply(profile, mutation))
    }
}

/// A lock that never contends; with `peer`, acquiring it first lets a peer
/// store a fresh rotation, as when the process waited on the lock while the
/// peer refreshed (SPEC §3 step 4).
struct MemoryLock {
    peer: Option<Rc<RefCell<Docs>>>,
}

impl RefreshLock for MemoryLock {
    fn acquire(&mut self, _: &LockKey, _: u64) -> Result<(), LockFailure> {
        if let Some(docs) = &self.peer {
            docs.borrow_mut().main.profiles.insert(
                PROFILE.into(),
                credential("at-2", "rt-2", NOW_MS + HOUR_MS, 2),
            );
        }
        Ok(())
    }
    fn release(&mut self, _: &LockKey) {}
}

struct InstantProvider;

impl TokenEndpoint for InstantProvider {
    fn refresh(&mut self, _: &Credential, _: u64) -> Result<TokenGrant, EndpointError> {
        Ok(TokenGrant {
            access: Secret::new("at-new"),
            refresh: Some(Secret::new("rt-new")),
            expires_in_ms: Some(3_600_000),
            account_id: None,
            email: None,
        })
    }
}

struct FixedClock;

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        NOW_MS
    }
}

fn credential(access: &str, refresh: &str, expires_at_ms: i64, generation: u64) -> Credential {
    Credential::oauth(PROVIDER, access, refresh, expires_at_ms)
        .with_account("acct-1")
        .with_email("user@example.com")
        .with_generation(generation)
}

fn request(role: Role) -> Request {
    Request {
        role,
        provider: PROVIDER.into(),
        profile: PROFILE.into(),
        holder: Holder {
            pid: 4242,
            host: "bench".into(),
            agent: if role == Role::Main { "main" } else { "worker" }.into(),
        },
    }
}

fn docs(role: Role, own: Option<Credential>, main: Option<Credential>) -> Docs {
    let mut docs = Docs {
        own: StoreDoc::default(),
        main: StoreDoc::default(),
        role,
    };
    if let Some(own) = own {
        docs.doc(StoreRef::Own).profiles.insert(PROFILE.into(), own);
    }
    if let Some(main) = main {
        docs.main.profiles.insert(PROFILE.into(), main);
    }
    docs
}

/// One whole resolve over `docs`; `peer_first` stages a peer's rotation
/// while the lock is awaited.
fn resolve(docs: Docs, peer_first: bool, policy: &Policy) -> Outcome {
    let role = docs.role;
    let shared = Rc::new(RefCell::new(docs));
    let mut lock = MemoryLock {
        peer: peer_first.then(|| Rc::clone(&shared)),
    };
    let host = Host {
        lock: &mut lock,
        stores: &mut MemoryStores(shared),
        endpoint: &mut InstantProvider,
        clock: &FixedClock,
    };
    driver::resolve(host, request(role), policy.clone())
        .expect("the in-memory host never fails")
        .outcome
}

fn bench_resolve(c: &mut Criterion) {
    let policy = Policy::default();
    let fresh = NOW_MS + HOUR_MS;
    let mut group = c.benchmark_group("resolve");
    let cases = [
        // Step 1: own store usable.
        (
            "cached",
            docs(Role::Main, Some(credential("at-1", "rt-1", fresh, 1)), None),
            false,
            Outcome::Cached,
        ),
        // Step 2: a sub-agent's own token expired, main holds a newer usable one.
        (
            "adopted_main",
            docs(
                Role::Sub,
                Some(credential("at-1", "rt-1", 1, 1)),
                Some(credential("at-2", "rt-2", fresh, 2)),
            ),
            false,
            Outcome::Adopted { from: Source::Main },
        ),
        // Step 4: expired; a peer refreshed while this one awaited the lock.
        (
            "adopted_peer",
            docs(Role::Main, Some(credential("at-1", "rt-1", 1, 1)), None),
            true,
            Outcome::Adopted { from: Source::Peer },
        ),
        // Steps 3, 6..8: lock, fence, call, commit, release.
        (
            "refreshed",
            docs(Role::Main, Some(credential("at-1", "rt-1", 1, 1)), None),
            false,
            Outcome::Refreshed,
        ),
    ];
    for (name, start, peer_first, expected) in cases {
        assert_eq!(
            resolve(start.clone(), peer_first, &policy),
            expected,
            "{name}"
        );
        group.bench_function(name, |b| {
            b.iter_batched(
                || start.clone(),
                |docs| resolve(black_box(docs), peer_first, &policy),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn bench_identity(c: &mut Criterion) {
    let mut group = c.benchmark_group("identity");
    let existing = Identity::new(Some("acct-1"), Some("user@example.com"), Some("tenant-a"));
    let same = Identity::new(Some("acct-1"), Some("USER@example.com"), Some("tenant-a"));
    let other = Identity::new(Some("acct-2"), Some("user@example.com"), Some("tenant-a"));
    assert!(may_copy(&existing, &same) && !may_copy(&existing, &other));
    group.bench_function("may_copy_allow", |b| {
        b.iter(|| may_copy(black_box(&existing), black_box(&same)))
    });
    group.bench_function("may_copy_refuse", |b| {
        b.iter(|| may_copy(black_box(&existing), black_box(&other)))
    });
    let raw_existing = credential("a", "r", 0, 0).with_tenant("tenant-a");
    let raw_incoming = Credential::oauth(PROVIDER, "a2", "r2", 0)
        .with_account("  acct-1 ")
        .with_email(" User@Example.com ")
        .with_tenant("tenant-a");
    group.bench_function("of_credentials_then_may_copy", |b| {
        b.iter(|| {
            let existing = Identity::of(black_box(&raw_existing));
            let incoming = Identity::of(black_box(&raw_incoming));
            may_copy(&existing, &incoming)
        })
    });
    group.finish();
}

fn bench_lock_key(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock_key");
    group.bench_function("short", |b| {
        b.iter(|| LockKey::new(black_box(PROVIDER), black_box(PROFILE)))
    });
    let long_profile = "p".repeat(256);
    group.bench_function("profile_256_bytes", |b| {
        b.iter(|| LockKey::new(black_box(PROVIDER), black_box(&long_profile)))
    });
    group.finish();
}

/// A store of 50 OAuth profiles with identities, endpoint settings, two
/// fences and foreign `state`, like a busy multi-provider installation.
fn store_50() -> StoreDoc {
    let mut doc = StoreDoc::default();
    for i in 0_u32..50 {
        let mut credential = Credential::oauth(
            format!("provider-{}", i % 7),
            format!("access-token-{i:04}-{}", "x".repeat(120)),
            format!("refresh-token-{i:04}-{}", "y".repeat(60)),
            NOW_MS + HOUR_MS + i64::from(i) * 1_000,
        )
        .with_account(format!("acct-{i}"))
        .with_email(format!("user{i}@example.com"))
        .with_generation(u64::from(i) + 1);
        credential.extra.insert(
            "endpoint".into(),
            serde_json::json!({
                "token_url": "https://auth.example.com/oauth/token",
                "client_id": "rotor-bench",
                "auth_method": "none",
            }),
        );
        doc.profiles.insert(format!("profile-{i:02}"), credential);
    }
    for i in [3_u64, 17] {
        doc.fences.insert(
            format!("profile-{i:02}"),
            vec![Fence {
                generation: i + 1,
                refresh_fp: Fingerprint::of("refresh-token"),
                holder: Holder {
                    pid: 77,
                    host: "bench".into(),
                    agent: "main".into(),
                },
                started_at_ms: NOW_MS,
                attempt: 0,
                rotated: false,
            }],
        );
    }
    doc.state = Some(serde_json::json!({
        "usageStats": (0..50).map(|i| (format!("profile-{i:02}"), serde_json::json!({"n": i, "lastUsed": NOW_MS})))
            .collect::<serde_json::Map<_, _>>(),
        "order": {"acme": ["profile-01", "profile-02"]},
    }));
    doc
}

fn bench_store(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_50");
    let doc = store_50();
    let bytes = doc.to_json();
    assert_eq!(StoreDoc::from_json(&bytes).expect("round trip"), doc);
    eprintln!("store_50: {} bytes of JSON", bytes.len());
    group.bench_function("encode", |b| b.iter(|| black_box(&doc).to_json()));
    group.bench_function("decode", |b| {
        b.iter(|| StoreDoc::from_json(black_box(&bytes)).expect("decodes"))
    });
    // One resolve's commit applied to the big document (what a host does
    // under the store lock, between decode and encode).
    let view = doc.view("profile-10");
    let stored = view.credential.expect("profile-10 exists");
    let mut fenced = doc.clone();
    let fence = Mutation::PutFence {
        expect: Expect::of(Some(&stored)),
        fence: Box::new(Fence {
            generation: stored.generation,
            refresh_fp: stored.refresh_fingerprint().expect("has a refresh token"),
            holder: Holder {
                pid: 1,
                host: "bench".into(),
                agent: "main".into(),
            },
            started_at_ms: NOW_MS,
            attempt: 0,
            rotated: false,
        }),
    };
    assert_eq!(fenced.apply("profile-10", &fence), WriteOutcome::Applied);
    group.bench_function("apply_put_fence", |b| {
        b.iter_batched_ref(
            || doc.clone(),
            |doc| doc.apply("profile-10", black_box(&fence)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn config() -> Criterion {
    // A shared 2-core machine: shorter windows, more samples than runs.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_resolve, bench_identity, bench_lock_key, bench_store
}
criterion_main!(benches);
