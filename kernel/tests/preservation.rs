//! G4: every store write is a read-modify-write of one profile; `state`,
//! unknown top-level fields, other profiles, their fences, and the unknown
//! fields of credentials survive every mutation, whatever its outcome, and
//! the JSON round trip a host makes when it writes the document back.

mod common;

use common::fixtures::*;
use common::transcript::Transcript;
use rotor_kernel::{Credential, Expect, Mutation, Secret, StoreDoc, WriteOutcome};
use serde_json::{json, Value};

/// A store as another writer left it: usage statistics, ordering, an unknown
/// top-level field, another profile with its own fence, and unknown fields
/// inside the credential rotor manages.
const RICH_STORE: &str = r#"{
  "version": 1,
  "profiles": {
    "p:default": {
      "type": "oauth", "provider": "p", "access": "at-5", "refresh": "rt-5",
      "expires_at_ms": 1699999940000, "generation": 5,
      "clientId": "client-7", "enterpriseUrl": "https://ghe.example", "displayName": "Work",
      "nested": {"scopes": ["a", "b"], "n": 1.5, "none": null}
    },
    "q:other": {
      "type": "oauth", "provider": "q", "access": "at-q", "refresh": "rt-q",
      "expires_at_ms": 1, "generation": 3, "managedBy": "codex-cli"
    },
    "k:key": {"type": "api_key", "provider": "k", "key": "sk-1", "keyRef": {"source": "env", "id": "K"}}
  },
  "fences": {
    "q:other": [{"generation": 3, "refresh_fp": "0123456789ab",
                 "holder": {"pid": 9, "host": "h", "agent": "b"}, "started_at_ms": 7, "attempt": 0}]
  },
  "state": {"usageStats": {"p:default": {"lastUsed": 17, "errorCount": 0}},
            "order": {"p": ["p:default"]}, "lastGood": {"p": "p:default"}},
  "futureField": {"v": [1, 2, 3]}
}"#;

fn rich() -> StoreDoc {
    StoreDoc::from_json(RICH_STORE.as_bytes()).expect("the fixture parses")
}

fn as_json(doc: &StoreDoc) -> Value {
    serde_json::from_slice(&doc.to_json()).expect("to_json writes JSON")
}

/// Everything in the document that is not `profiles[PROFILE]` or
/// `fences[PROFILE]`: what no mutation of PROFILE may change.
fn untouchable(doc: &StoreDoc) -> Value {
    let mut value = as_json(doc);
    value["profiles"]
        .as_object_mut()
        .expect("profiles")
        .remove(PROFILE);
    if let Some(fences) = value.get_mut("fences").and_then(Value::as_object_mut) {
        fences.remove(PROFILE);
        if fences.is_empty() {
            value.as_object_mut().expect("object").remove("fences");
        }
    }
    value
}

/// The unknown fields of the managed credential.
fn unknown_fields(doc: &StoreDoc) -> Option<Value> {
    let entry = as_json(doc)["profiles"].get(PROFILE)?.clone();
    let mut object = entry.as_object()?.clone();
    for known in [
        "type",
        "provider",
        "access",
        "refresh",
        "expires_at_ms",
        "account_id",
        "email",
        "tenant",
        "generation",
        "family",
        "needs_reauth",
    ] {
        object.remove(known);
    }
    Some(Value::Object(object))
}

fn every_mutation(doc: &StoreDoc) -> Vec<(&'static str, Mutation)> {
    let current = doc.profiles.get(PROFILE);
    let as_read = Expect::of(current);
    let stale = Expect::of(Some(&fresh(1)));
    let presented = Secret::new("rt-5").fingerprint();
    let mut rotated = current.cloned().expect("rich store has the profile");
    rotated.access = Some(Secret::new("at-6"));
    rotated.refresh = Some(Secret::new("rt-6"));
    rotated.generation = 6;
    vec![
        (
            "adopt",
            Mutation::Adopt {
                expect: as_read.clone(),
                credential: rotated.clone().into(),
            },
        ),
        (
            "adopt (conflict)",
            Mutation::Adopt {
                expect: stale.clone(),
                credential: fresh(6).into(),
            },
        ),
        (
            "fence",
            Mutation::PutFence {
                expect: as_read.clone(),
                fence: fence("5", 5, 0, NOW_MS).into(),
            },
        ),
        (
            "fence (conflict)",
            Mutation::PutFence {
                expect: stale.clone(),
                fence: fence("5", 5, 0, NOW_MS).into(),
            },
        ),
        (
            "commit",
            Mutation::Commit {
                expect: as_read.clone(),
                credential: rotated.clone().into(),
                presented_fp: presented,
            },
        ),
        (
            "commit (conflict)",
            Mutation::Commit {
                expect: stale.clone(),
                credential: fresh(6).into(),
                presented_fp: presented,
            },
        ),
        (
            "mirror",
            Mutation::Mirror {
                expect: as_read.clone(),
                credential: rotated.clone().into(),
                presented_fp: presented,
            },
        ),
        (
            "mirror (refused)",
            Mutation::Mirror {
                expect: as_read,
                credential: rotated
                    .clone()
                    .with_account("acct-y")
                    .with_generation(4)
                    .into(),
                presented_fp: presented,
            },
        ),
        (
            "mirror (conflict)",
            Mutation::Mirror {
                expect: stale,
                credential: fresh(6).into(),
                presented_fp: presented,
            },
        ),
        (
            "clear fence",
            Mutation::ClearFence {
                presented_fp: presented,
            },
        ),
        (
            "mark",
            Mutation::MarkNeedsReauth {
                presented_fp: presented,
            },
        ),
        (
            "login",
            Mutation::Login {
                credential: rotated.into(),
            },
        ),
        (
            "logout",
            Mutation::Logout {
                provider: PROVIDER.into(),
            },
        ),
    ]
}

#[test]
fn g4_state_unknown_fields_and_other_profiles_survive_every_mutation() {
    for with_fence in [false, true] {
        let mut before = rich();
        if with_fence {
            before
                .fences
                .insert(PROFILE.into(), vec![fence("5", 5, 0, NOW_MS)]);
        }
        for (what, mutation) in every_mutation(&before) {
            let mut doc = before.clone();
            let outcome = doc.apply(PROFILE, &mutation);
            // The host writes the document back, the next writer reads it.
            let written = StoreDoc::from_json(&doc.to_json()).expect("written store parses");
            assert_eq!(
                untouchable(&written),
                untouchable(&before),
                "G4: {what} ({outcome:?})"
            );
            assert_eq!(written.state, before.state, "G4: state survives {what}");
            assert_eq!(
                written.extra, before.extra,
                "G4: unknown top-level fields survive {what}"
            );
            if let WriteOutcome::Conflict(_) = outcome {
                assert_eq!(written, before, "G5: {what} conflicted and changed nothing");
            }
            match what {
                // Rewritten in place, or replaced by a credential that
                // carries them: the entry's unknown fields stay.
                "adopt" | "fence" | "commit" | "mirror" | "mirror (refused)" | "clear fence"
                | "mark" | "login" => {
                    assert_eq!(
                        unknown_fields(&written),
                        unknown_fields(&before),
                        "G4: {what}"
                    );
                }
                // A conflict changes nothing (checked above); a logout
                // replaces the entry by a tombstone on purpose (G11).
                _ => {}
            }
        }
    }
}

#[test]
fn g4_the_rich_fixture_is_what_it_claims() {
    // Guards the test above against a fixture that lost its extras.
    let doc = rich();
    assert_eq!(doc.extra["futureField"], json!({"v": [1, 2, 3]}));
    assert_eq!(
        doc.state.as_ref().unwrap()["lastGood"],
        json!({"p": "p:default"})
    );
    assert_eq!(doc.profiles[PROFILE].extra["clientId"], "client-7");
    assert_eq!(doc.profiles["k:key"].extra["keyRef"]["id"], "K");
    assert_eq!(untouchable(&doc)["fences"]["q:other"][0]["attempt"], 0);
    let fields = unknown_fields(&doc).unwrap();
    assert_eq!(fields.as_object().unwrap().len(), 4, "{fields}");
}

#[test]
fn g4_a_whole_refresh_keeps_state_and_unknown_fields_in_both_stores() {
    let mut own = rich();
    let mut main = rich();
    main.extra.insert("mainOnly".into(), json!(true));
    for doc in [&mut own, &mut main] {
        // Expired, so the resolve refreshes.
        doc.profiles.get_mut(PROFILE).unwrap().expires_at_ms = Some(NOW_MS - 1);
    }
    let run = Transcript::sub(own.clone(), main.clone())
        .reply(Ok(grant("6")))
        .run();
    assert_eq!(run.lines.last().unwrap(), "done Refreshed gen=6");
    for (name, before, after) in [("own", &own, &run.own), ("main", &main, &run.main)] {
        let after = StoreDoc::from_json(&after.to_json()).unwrap();
        assert_eq!(untouchable(&after), untouchable(before), "G4: {name}");
        assert_eq!(
            unknown_fields(&after),
            unknown_fields(before),
            "G4: {name} entry's unknown fields"
        );
        let entry: &Credential = &after.profiles[PROFILE];
        assert_eq!(entry.generation, 6);
        assert!(!after.fences.contains_key(PROFILE));
    }
}

#[test]
fn g4_a_reuse_that_marks_keeps_everything_else() {
    let mut own = rich();
    own.profiles.get_mut(PROFILE).unwrap().expires_at_ms = Some(NOW_MS - 1);
    let run = Transcript::main_agent(own.clone())
        .reply(Err(reuse_error()))
        .run();
    assert_eq!(run.lines.last().unwrap(), "done NeedsReauth(TokenRefused)");
    let after = StoreDoc::from_json(&run.own.to_json()).unwrap();
    assert_eq!(untouchable(&after), untouchable(&own), "G4");
    assert_eq!(unknown_fields(&after), unknown_fields(&own), "G4");
    assert!(after.profiles[PROFILE].needs_reauth);
}
