//! Tests written for mutants `cargo mutants` found alive in
//! `fs/src/settings.rs` and `fs/src/status.rs` (docs/mutants.md): the
//! endpoint settings `rotor login` stores are read back as written, with
//! the documented aliases and defaults, bad ones refused with a reason and
//! the client secret never printed (G10); `rotor status` says when a token
//! expires, how old a fence is and who holds a lock (G10).

use std::path::PathBuf;

use rotor_fs::lock::{HolderMeta, LockState};
use rotor_fs::settings::{AuthMethod, EndpointSettings, HttpSettings, SETTINGS_KEY};
use rotor_fs::status::{LockReport, Report, StoreReport};
use rotor_kernel::{Credential, Fence, Fingerprint, Holder, StoreDoc};
use serde_json::json;

fn with_settings(value: serde_json::Value) -> Credential {
    let mut credential = Credential::oauth("p", "a", "r", 0);
    credential.extra.insert(SETTINGS_KEY.into(), value);
    credential
}

#[test]
fn every_documented_auth_method_name_parses_g10() {
    for (name, method) in [
        ("client_secret_basic", AuthMethod::ClientSecretBasic),
        ("basic", AuthMethod::ClientSecretBasic),
        ("client_secret_post", AuthMethod::ClientSecretPost),
        ("post", AuthMethod::ClientSecretPost),
        ("none", AuthMethod::None),
        ("public", AuthMethod::None),
    ] {
        assert_eq!(AuthMethod::parse(name), Some(method), "{name}");
    }
    assert_eq!(AuthMethod::parse("bearer"), None);
}

#[test]
fn the_auth_method_defaults_to_basic_with_a_secret_and_none_without_g10() {
    let http = |credential: &Credential| match EndpointSettings::of(credential).unwrap() {
        EndpointSettings::Http(http) => http,
        other => panic!("{other:?}"),
    };
    let confidential = with_settings(
        json!({"token_url": "https://auth.example/token", "client_id": "c", "client_secret": "s"}),
    );
    assert_eq!(
        http(&confidential).auth_method,
        AuthMethod::ClientSecretBasic
    );
    let public =
        with_settings(json!({"token_url": "https://auth.example/token", "client_id": "c"}));
    assert_eq!(http(&public).auth_method, AuthMethod::None);
}

#[test]
fn an_empty_refresh_command_is_refused_with_a_reason_g10() {
    let credential = with_settings(json!({"refresh_command": []}));
    let error = EndpointSettings::of(&credential).unwrap_err();
    assert!(error.contains("non-empty"), "{error}");
}

#[test]
fn settings_debug_shows_the_endpoint_but_never_the_secret_g10() {
    let settings = HttpSettings {
        token_url: "https://auth.example/token".into(),
        client_id: "rotor-cli".into(),
        client_secret: Some("hunter2-secret".into()),
        auth_method: AuthMethod::ClientSecretBasic,
        scope: None,
        ca_file: None,
    };
    let text = format!("{settings:?}");
    assert!(text.contains("https://auth.example/token"), "{text}");
    assert!(text.contains("rotor-cli"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

const NOW: i64 = 1_000_000_000;

fn holder(pid: u32) -> HolderMeta {
    HolderMeta {
        pid,
        start_ticks: None,
        host: "elsewhere.example".into(),
        agent: "alpha".into(),
        since_ms: NOW - 2_500,
    }
}

fn report() -> Report {
    let mut doc = StoreDoc::default();
    for (profile, expires) in [("soon", NOW + 5_000), ("past", NOW - 3_000), ("now", NOW)] {
        doc.profiles.insert(
            profile.into(),
            Credential::oauth("acme", "at", format!("rt-{profile}"), expires),
        );
    }
    doc.fences.insert(
        "soon".into(),
        vec![Fence {
            generation: 4,
            refresh_fp: Fingerprint::of("rt-soon"),
            holder: Holder {
                pid: 77,
                host: "h".into(),
                agent: "alpha".into(),
            },
            started_at_ms: NOW - 7_400,
            attempt: 0,
            rotated: false,
        }],
    );
    let lock = |name: &str, state| LockReport {
        path: PathBuf::from(format!("/state/locks/{name}.lock")),
        profile: Some(("acme".into(), name.into())),
        state,
    };
    Report {
        state_dir: PathBuf::from("/state"),
        now_ms: NOW,
        stores: vec![StoreReport {
            agent: "main".into(),
            path: PathBuf::from("/state/agents/main/store.json"),
            doc: Ok(Some(doc)),
        }],
        locks: vec![
            lock(
                "held-named",
                LockState::Held {
                    holder: Some(holder(41)),
                },
            ),
            lock("held-unnamed", LockState::Held { holder: None }),
            lock(
                "stale",
                LockState::Free {
                    last: Some(holder(42)),
                },
            ),
        ],
    }
}

#[test]
fn status_text_says_when_tokens_expire_g10() {
    let text = report().to_text();
    assert!(
        text.contains("soon: oauth acme generation 0, expires in 5 s"),
        "{text}"
    );
    assert!(
        text.contains("past: oauth acme generation 0, expired 3 s ago"),
        "{text}"
    );
    assert!(
        text.contains("now: oauth acme generation 0, expired 0 s ago"),
        "{text}"
    );
}

#[test]
fn status_text_names_fences_and_lock_holders_g10() {
    let text = report().to_text();
    assert!(text.contains("IN-DOUBT FENCE: generation 4"), "{text}");
    assert!(text.contains(" 7 s ago; outcome unknown"), "{text}");
    assert!(
        text.contains("refresh lock acme / held-named: HELD by pid 41 (agent alpha on elsewhere.example), for 2.5 s"),
        "{text}"
    );
    assert!(
        text.contains("refresh lock acme / held-unnamed: HELD\n"),
        "{text}"
    );
    assert!(
        text.contains("refresh lock acme / stale: free (last holder pid 42 did not clean up"),
        "{text}"
    );
}

#[test]
fn status_json_reports_profiles_and_lock_holders_g10() {
    let value = report().to_json();
    assert_eq!(value["now_ms"], json!(NOW));
    let profile = &value["stores"][0]["profiles"]["soon"];
    assert_eq!(profile["provider"], json!("acme"));
    assert_eq!(profile["expires_in_ms"], json!(5_000));
    assert_eq!(profile["in_doubt_fences"][0]["age_ms"], json!(7_400));
    let locks = value["refresh_locks"].as_array().unwrap();
    assert_eq!(locks.len(), 3);
    let named = &locks[0];
    assert_eq!(named["held"], json!(true));
    assert_eq!(named["holder"]["pid"], json!(41));
    assert_eq!(named["holder"]["agent"], json!("alpha"));
    assert_eq!(named["holder"]["held_ms"], json!(2_500));
    // On another host the holder cannot be checked.
    assert_eq!(named["holder"]["alive"], json!(null));
    assert_eq!(locks[2]["held"], json!(false));
    assert_eq!(locks[2]["holder"]["pid"], json!(42));
}
