//! Tests added for mutants that survived `cargo mutants` in the store
//! document encoding, identities and policy accessors (docs/mutants.md).

use rotor_kernel::document::{Fence, Holder, StoreDoc, STORE_VERSION};
use rotor_kernel::{same_identity, Credential, Fingerprint, Identity, Policy, PolicyConfig};

fn fence(rotated: bool) -> Fence {
    Fence {
        generation: 4,
        refresh_fp: Fingerprint::of("rt-4"),
        holder: Holder {
            pid: 7,
            host: "h".into(),
            agent: "a".into(),
        },
        started_at_ms: 1_000,
        attempt: 0,
        rotated,
    }
}

/// A fence's `rotated` flag is written when set and left out when clear (the
/// format older readers parse), and reads back as written (G7, G1).
#[test]
fn a_fence_writes_rotated_only_when_set_g7() {
    let clear = serde_json::to_value(fence(false)).unwrap();
    assert!(clear.get("rotated").is_none(), "{clear}");
    let set = serde_json::to_value(fence(true)).unwrap();
    assert_eq!(set.get("rotated"), Some(&serde_json::Value::Bool(true)));
    for rotated in [false, true] {
        let text = serde_json::to_string(&fence(rotated)).unwrap();
        assert_eq!(
            serde_json::from_str::<Fence>(&text).unwrap(),
            fence(rotated)
        );
    }
}

/// `needs_reauth` is written when set and left out when clear.
#[test]
fn a_credential_writes_needs_reauth_only_when_set() {
    let mut credential = Credential::oauth("p", "at", "rt", 5);
    let clear = serde_json::to_value(&credential).unwrap();
    assert!(clear.get("needs_reauth").is_none(), "{clear}");
    credential.needs_reauth = true;
    let set = serde_json::to_value(&credential).unwrap();
    assert_eq!(
        set.get("needs_reauth"),
        Some(&serde_json::Value::Bool(true))
    );
}

/// A store document without a `version` field reads as the current format.
#[test]
fn a_store_without_a_version_reads_as_the_current_version() {
    assert_eq!(STORE_VERSION, 1);
    let doc: StoreDoc = serde_json::from_str("{\"profiles\":{}}").unwrap();
    assert_eq!(doc.version, STORE_VERSION);
    let doc: StoreDoc = serde_json::from_str("{\"version\":7}").unwrap();
    assert_eq!(doc.version, 7);
}

/// An identity with any one field present is not empty (G3: the gate
/// compares what is there).
#[test]
fn an_identity_with_one_field_is_not_empty_g3() {
    assert!(Identity::new(None, None, None).is_empty());
    assert!(Identity::new(Some("  "), Some(""), None).is_empty());
    assert!(!Identity::new(Some("acct"), None, None).is_empty());
    assert!(!Identity::new(None, Some("a@b"), None).is_empty());
    assert!(!Identity::new(None, None, Some("tenant")).is_empty());
}

/// An email in capitals only is lowercased like any other (G3: the same
/// account in other case is the same identity).
#[test]
fn an_all_capitals_email_is_lowercased_g3() {
    assert_eq!(
        Identity::new(None, Some(" ALICE "), None).email.as_deref(),
        Some("alice")
    );
    let upper = Identity::new(None, Some("BOB"), None);
    let lower = Identity::new(None, Some("bob"), None);
    assert!(same_identity(&upper, &lower));
}

/// The policy's accessors return the configured numbers.
#[test]
fn policy_accessors_return_the_configuration() {
    let config = PolicyConfig {
        transient_retries_max: 0,
        ..PolicyConfig::default()
    };
    let policy = Policy::new(config).unwrap();
    assert_eq!(policy.transient_retries_max(), 0);
    assert_eq!(policy.call_attempts_max(), 1);
    assert!(policy.lease().is_none());
    let config = PolicyConfig {
        transient_retries_max: 2,
        refresh_lock_wait_ms_max: 600_000,
        ..PolicyConfig::default()
    };
    let policy = Policy::new(config).unwrap();
    assert_eq!(policy.transient_retries_max(), 2);
    let config = PolicyConfig::default();
    let lease = rotor_kernel::LeaseConfig::for_config(&config);
    let policy = Policy::new(PolicyConfig {
        lease: Some(lease.clone()),
        ..config
    })
    .map_err(|error| error.to_string())
    .unwrap();
    assert_eq!(policy.lease(), Some(&lease));
}
