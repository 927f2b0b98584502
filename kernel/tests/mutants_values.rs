//! Tests added for mutants that survived `cargo mutants` in the kernel's
//! value types (docs/mutants.md): secrets, credential kinds, lenient expiry
//! parsing and `is_newer` (G5).

use std::collections::HashSet;

use rotor_kernel::machine::is_newer;
use rotor_kernel::{Credential, CredentialKind, Secret};

/// Two different token values are different secrets, and equal values hash
/// alike (a set of presented tokens must not merge two tokens: G1).
#[test]
fn secrets_compare_and_hash_by_value_g1() {
    assert_ne!(Secret::new("rt-1"), Secret::new("rt-2"));
    assert_eq!(Secret::new("rt-1"), Secret::new("rt-1"));
    let set: HashSet<Secret> = [
        Secret::new("rt-1"),
        Secret::new("rt-1"),
        Secret::new("rt-2"),
    ]
    .into_iter()
    .collect();
    assert_eq!(set.len(), 2);
    use std::hash::{BuildHasher, RandomState};
    let state = RandomState::new();
    assert_eq!(
        state.hash_one(Secret::new("rt-1")),
        state.hash_one(Secret::new("rt-1"))
    );
    assert_ne!(
        state.hash_one(Secret::new("rt-1")),
        state.hash_one(Secret::new("rt-2"))
    );
}

/// Every stored `type` name reads back as its own kind, not `Other`.
#[test]
fn every_known_credential_type_parses_to_its_kind() {
    for (name, kind) in [
        ("oauth", CredentialKind::OAuth),
        ("api_key", CredentialKind::ApiKey),
        ("token", CredentialKind::Token),
        ("logged_out", CredentialKind::LoggedOut),
    ] {
        assert_eq!(CredentialKind::from(name.to_string()), kind, "{name}");
        assert_eq!(kind.as_str(), name);
    }
    assert_eq!(
        CredentialKind::from("custom".to_string()),
        CredentialKind::Other("custom".into())
    );
}

fn with_expiry(raw: &str) -> Option<i64> {
    let mut value = serde_json::to_value(Credential::oauth("p", "at", "rt", 424242)).unwrap();
    let object = value.as_object_mut().unwrap();
    let key = object
        .iter()
        .find(|(_, v)| v.as_i64() == Some(424242))
        .map(|(k, _)| k.clone())
        .expect("the expiry field");
    object.insert(key, serde_json::from_str(raw).unwrap());
    serde_json::from_value::<Credential>(value)
        .unwrap()
        .expires_at_ms
}

/// An integral float expiry inside the range is kept; one out of range
/// (at or above 9e15 ms) reads as missing, which means expired.
#[test]
fn a_float_expiry_is_kept_only_inside_its_range() {
    assert_eq!(with_expiry("1700000000000.0"), Some(1_700_000_000_000));
    assert_eq!(with_expiry("1.0e15"), Some(1_000_000_000_000_000));
    assert_eq!(with_expiry("9.0e15"), None);
    assert_eq!(with_expiry("1.0e16"), None);
    assert_eq!(with_expiry("-5.5"), None);
    assert_eq!(with_expiry("null"), None);
}

/// `is_newer`: a higher generation wins; at the same generation only a
/// different refresh token with a strictly later expiry is newer (G5).
#[test]
fn is_newer_orders_by_generation_then_later_expiry_g5() {
    let base = Credential::oauth("p", "at", "rt-1", 1_000).with_generation(3);
    let same = base.clone();
    assert!(!is_newer(&same, Some(&base)));
    assert!(is_newer(&base, None));
    let older_gen = Credential::oauth("p", "at", "rt-0", 9_000).with_generation(2);
    assert!(!is_newer(&older_gen, Some(&base)));
    let higher_gen = Credential::oauth("p", "at", "rt-1", 0).with_generation(4);
    assert!(is_newer(&higher_gen, Some(&base)));
    let later = Credential::oauth("p", "at", "rt-2", 2_000).with_generation(3);
    assert!(is_newer(&later, Some(&base)));
    let equal_expiry = Credential::oauth("p", "at", "rt-2", 1_000).with_generation(3);
    assert!(!is_newer(&equal_expiry, Some(&base)));
    let earlier = Credential::oauth("p", "at", "rt-2", 500).with_generation(3);
    assert!(!is_newer(&earlier, Some(&base)));
    let same_token_later = Credential::oauth("p", "at2", "rt-1", 2_000).with_generation(3);
    assert!(!is_newer(&same_token_later, Some(&base)));
}
