//! Tests added for mutants that survived `cargo mutants` over the code of
//! the simulator speed-up (docs/mutants.md, campaign 4): the [`Profiles`]
//! map that replaced `BTreeMap<String, Credential>` in [`StoreDoc`], the
//! fields a rotation keeps from the entry it replaces (G4), and the kind
//! names a misused resolver reports.

mod common;

use common::fixtures::*;
use rotor_kernel::{
    ApiMisuse, Effect, Expect, Input, Mutation, Policy, Profiles, Resolver, Role, Secret, StoreDoc,
    WriteOutcome,
};
use serde_json::json;

/// `Profiles` answers like the map it replaced: a host that asks whether a
/// profile is stored, how many are, or removes one (a logout's tidy-up, a
/// `rotor status` listing) must get the map's answers.
#[test]
fn profiles_answer_like_a_map() {
    let mut profiles = Profiles::default();
    assert!(profiles.is_empty());
    assert_eq!(profiles.len(), 0);
    assert!(!profiles.contains_key(PROFILE));

    profiles.insert(PROFILE.into(), fresh(5));
    profiles.insert("k:key".into(), fresh(2));
    assert!(!profiles.is_empty());
    assert_eq!(profiles.len(), 2);
    assert!(profiles.contains_key(PROFILE));
    assert!(profiles.contains_key("k:key"));
    assert!(!profiles.contains_key("k:other"));

    let removed = profiles.remove(PROFILE).expect("the entry was stored");
    assert_eq!(*removed, fresh(5));
    assert_eq!(profiles.remove(PROFILE), None, "removed once");
    assert!(!profiles.contains_key(PROFILE));
    assert_eq!(profiles.len(), 1);
    assert_eq!(profiles.keys().collect::<Vec<_>>(), ["k:key"]);
}

/// `Debug` lists the entries (it is what a failing store assertion prints),
/// and never a token: credentials print redacted.
#[test]
fn profiles_debug_lists_the_entries_without_secrets() {
    let mut profiles = Profiles::default();
    assert_eq!(format!("{profiles:?}"), "{}");
    profiles.insert(PROFILE.into(), fresh(5));
    let printed = format!("{profiles:?}");
    assert!(
        printed.starts_with(&format!("{{\"{PROFILE}\": ")),
        "{printed}"
    );
    assert!(printed.contains("generation: 5"), "{printed}");
    assert!(
        !printed.contains("rt-5"),
        "a refresh token leaked: {printed}"
    );
}

/// A rotation written over an entry whose unknown fields changed since the
/// presentation (another program added a field under the store's lock)
/// keeps the stored entry's fields, for a commit and for a mirror alike:
/// rotor writes back what it does not understand unchanged (G4).
#[test]
fn g4_a_rotation_keeps_the_stored_entrys_unknown_fields() {
    let mut stored = fresh(5);
    stored.extra.insert("clientId".into(), json!("client-7"));
    let mut rotated = fresh(6);
    rotated
        .extra
        .insert("clientId".into(), json!("stale-client"));
    rotated.extra.insert("dropMe".into(), json!(1));
    let presented = Secret::new("rt-5").fingerprint();
    let mutations = [
        Mutation::Commit {
            expect: Expect::of(Some(&stored)),
            credential: rotated.clone().into(),
            presented_fp: presented,
        },
        Mutation::Mirror {
            expect: Expect::of(Some(&stored)),
            credential: rotated.clone().into(),
            presented_fp: presented,
        },
    ];
    for mutation in mutations {
        let mut doc = store(stored.clone());
        let outcome = doc.apply(PROFILE, &mutation);
        assert_eq!(outcome, WriteOutcome::Applied, "{mutation:?}");
        let written = &doc.profiles[PROFILE];
        assert_eq!(written.generation, 6, "the rotation is installed");
        assert_eq!(written.access, rotated.access);
        assert_eq!(written.extra, stored.extra, "G4: {mutation:?}");
    }
}

/// A resolver handed a completion of the wrong kind names both kinds, so a
/// host author reads which effect it answered wrong.
#[test]
fn a_wrong_completion_names_the_expected_and_the_given_kind() {
    let mut resolver = Resolver::new(request(Role::Sub), Policy::default(), NOW_MS);
    let Some(Effect::ReadStore { id, .. }) = resolver.poll_effect() else {
        panic!("a resolve starts by reading its own store");
    };
    let cases = [
        (Input::LockAcquired { id }, "LockAcquired"),
        (Input::LockReleased { id }, "LockReleased"),
    ];
    for (input, got) in cases {
        assert_eq!(input.kind_name(), got);
        assert_eq!(
            resolver.handle(input, NOW_MS),
            Err(ApiMisuse::WrongKind {
                expected: "StoreRead",
                got,
            })
        );
    }
    assert_eq!(
        resolver.outstanding(),
        Some(id),
        "a refused input changes nothing"
    );
}

/// The store document's own profile map is a `Profiles`: the accessors
/// above are what hosts reach through `StoreDoc::profiles`.
#[test]
fn a_store_documents_profiles_are_a_profiles_map() {
    let doc: StoreDoc = store(fresh(5));
    let profiles: &Profiles = &doc.profiles;
    assert_eq!(profiles.len(), 1);
    assert!(profiles.contains_key(PROFILE));
}
