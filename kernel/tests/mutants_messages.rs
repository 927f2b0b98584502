//! Tests added for mutants that survived `cargo mutants` in the kernel's
//! `Display`/`Debug` impls (docs/mutants.md): the text a person reads when
//! something fails (G10) and the redaction of token values.

use rotor_kernel::document::DecodeError;
use rotor_kernel::{
    ApiMisuse, CredentialKind, EffectId, Fingerprint, MirrorRefusal, Secret, StoreRef, Warning,
};

/// A secret prints as its fingerprint, never its value.
#[test]
fn a_secret_displays_its_fingerprint_not_its_value() {
    let secret = Secret::new("rt-very-secret");
    let shown = secret.to_string();
    assert_eq!(shown, format!("<secret {}>", secret.fingerprint()));
    assert!(!shown.contains("very-secret"));
    let fp = Fingerprint::of("abc");
    assert_eq!(format!("{fp:?}"), "fp:ba7816bf8f01");
}

/// Effects and stores are named in traces and messages.
#[test]
fn effects_and_stores_are_named() {
    assert_eq!(EffectId(7).to_string(), "#7");
    assert_eq!(StoreRef::Own.to_string(), "own store");
    assert_eq!(StoreRef::Main.to_string(), "main store");
}

/// A corrupt store names what the decoder said (G10).
#[test]
fn g10_a_decode_error_says_what_is_wrong() {
    let error = DecodeError {
        message: "expected value at line 1 column 2".into(),
    };
    assert_eq!(
        error.to_string(),
        "not a rotor store document: expected value at line 1 column 2"
    );
}

/// Warnings and refusals say why main was not updated (G10).
#[test]
fn g10_warnings_and_refusals_say_why() {
    let refusal = MirrorRefusal::NotNewer { main_generation: 9 };
    assert_eq!(refusal.to_string(), "main is already at generation 9");
    assert_eq!(
        Warning::MirrorRefused(refusal).to_string(),
        "not mirrored into main: main is already at generation 9"
    );
    assert_eq!(
        MirrorRefusal::NotOAuth(CredentialKind::ApiKey).to_string(),
        "main holds a api_key entry"
    );
    assert_eq!(
        Warning::AdoptNotStored("disk full".into()).to_string(),
        "adopted token not stored in own store: disk full"
    );
}

/// Misuse of the resolver API is reported in words.
#[test]
fn api_misuse_is_described() {
    assert_eq!(
        ApiMisuse::AlreadyDone.to_string(),
        "the resolve is already done"
    );
    assert_eq!(
        ApiMisuse::WrongKind {
            expected: "StoreRead",
            got: "LockAcquired"
        }
        .to_string(),
        "expected a StoreRead completion, got LockAcquired"
    );
}
