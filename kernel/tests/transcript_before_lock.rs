//! Transcripts of SPEC §3 steps 1 and 2: what a resolve decides from the
//! lock-free reads, before it ever asks for the refresh lock.

mod common;

use common::fixtures::*;
use common::transcript::{log_out, then, Transcript, SUB_FENCED_CALL};
use rotor_kernel::{Credential, CredentialKind, Failure, Outcome, Secret, Source, Warning};

#[test]
fn g2_step1_own_usable_is_cached_without_lock_or_main() {
    let run = Transcript::sub(store(fresh(5)), store(fresh(9))).run();
    run.assert_lines(&["read own", "done Cached gen=5"]);
    assert_eq!(run.granted().access, Secret::new("at-5"));
    assert!(!run.acquired);
    assert_eq!(run.own, store(fresh(5)));
    assert_eq!(run.main, store(fresh(9)));
}

#[test]
fn g2_step1_main_agent_cached() {
    let run = Transcript::main_agent(store(fresh(5))).run();
    run.assert_lines(&["read own", "done Cached gen=5"]);
    assert_eq!(run.granted().outcome, Outcome::Cached);
}

#[test]
fn g2_step1_token_inside_the_refresh_margin_is_refreshed_once() {
    // Expires in 4 minutes: inside the default 5-minute margin, so not usable.
    let soon = cred("5", 5, NOW_MS + 4 * MINUTE_MS);
    let run = Transcript::main_agent(store(soon))
        .reply(Ok(grant("6")))
        .run();
    assert_eq!(run.lines[0], "read own");
    assert_eq!(run.lines[1], "acquire");
    assert_eq!(run.granted().outcome, Outcome::Refreshed);
    assert_eq!(run.calls.len(), 1, "G2: one call");
}

#[test]
fn g10_no_credential_anywhere() {
    let run = Transcript::sub(empty(), empty()).run();
    run.assert_lines(&["read own", "read main", "done NoCredential"]);
    let run = Transcript::main_agent(empty()).run();
    run.assert_lines(&["read own", "done NoCredential"]);
    run.assert_failure_says("rotor login", "G10: says what to do");
}

#[test]
fn g11_own_tombstone_is_logged_out_and_main_is_not_consulted() {
    // Main still holds the old family: it must not come back (G11).
    let run = Transcript::sub(store(Credential::tombstone(PROVIDER, 7)), store(fresh(6))).run();
    run.assert_lines(&["read own", "done LoggedOut gen=7"]);
    assert_eq!(run.own, store(Credential::tombstone(PROVIDER, 7)));
}

#[test]
fn g11_main_tombstone_is_logged_out_when_own_is_absent() {
    let run = Transcript::sub(empty(), store(Credential::tombstone(PROVIDER, 7))).run();
    run.assert_lines(&["read own", "read main", "done LoggedOut gen=7"]);
    assert_eq!(run.own, empty(), "nothing is copied from a tombstone");
}

#[test]
fn g10_provider_mismatch_in_own_or_main() {
    let other = Credential::oauth("q", "at-q", "rt-q", NOW_MS + HOUR_MS);
    let run = Transcript::sub(store(other.clone()), empty()).run();
    run.assert_lines(&["read own", "done ProviderMismatch(q)"]);
    let run = Transcript::sub(empty(), store(other)).run();
    run.assert_lines(&["read own", "read main", "done ProviderMismatch(q)"]);
    assert_eq!(run.own, empty());
}

#[test]
fn g3_g10_api_key_is_not_refreshable_nor_overwritten() {
    let mut key = fresh(5);
    key.kind = CredentialKind::ApiKey;
    let run = Transcript::sub(store(key.clone()), store(fresh(6))).run();
    run.assert_lines(&["read own", "done NotRefreshable(api_key)"]);
    assert_eq!(
        run.own,
        store(key.clone()),
        "an operator's key is never overwritten"
    );
    let run = Transcript::sub(empty(), store(key)).run();
    run.assert_lines(&["read own", "read main", "done NotRefreshable(api_key)"]);
}

#[test]
fn g10_step1_unreadable_own_store_is_a_typed_failure() {
    let run = Transcript::sub(store(fresh(5)), empty())
        .fault(
            "read own",
            io_fault("/agents/a/auth.json: permission denied"),
        )
        .run();
    run.assert_lines(&["read own -> fault", "done Store(own)"]);
    run.assert_failure_says("permission denied", "G10");
}

#[test]
fn g10_unreadable_main_is_reported_not_called_no_credential() {
    // A sub-agent with no own entry depends on main: a corrupt main must be
    // reported as such (with its detail), not as "no credential, log in".
    let run = Transcript::sub(empty(), store(fresh(6)))
        .fault(
            "read main",
            io_fault("main auth.json corrupt, kept at auth.json.corrupt-1"),
        )
        .run();
    run.assert_lines(&["read own", "read main -> fault", "done Store(main)"]);
    run.assert_failure_says("kept at", "G10: names the backup");
}

#[test]
fn g2_g3_step2_adopts_a_newer_usable_token_from_main_without_the_lock() {
    let run = Transcript::sub(store(expired(5)), store(fresh(6))).run();
    run.assert_lines(&[
        "read own",
        "read main",
        "write own Adopt gen=6",
        "done Adopted(Main) gen=6",
    ]);
    assert!(!run.acquired);
    assert_eq!(run.granted().access, Secret::new("at-6"));
    assert_eq!(run.own, store(fresh(6)));
    assert_eq!(run.main, store(fresh(6)));
}

#[test]
fn g2_step2_adopts_into_an_empty_own_store() {
    let run = Transcript::sub(empty(), store(fresh(6))).run();
    run.assert_lines(&[
        "read own",
        "read main",
        "write own Adopt gen=6",
        "done Adopted(Main) gen=6",
    ]);
    assert_eq!(run.own, store(fresh(6)));
}

#[test]
fn g10_step2_adopt_write_failure_still_grants_main_token_with_a_warning() {
    let run = Transcript::sub(store(expired(5)), store(fresh(6)))
        .fault("write own Adopt", io_fault("disk full"))
        .run();
    run.assert_lines(&[
        "read own",
        "read main",
        "write own Adopt gen=6 -> fault",
        "done Adopted(Main) gen=6 warn=[AdoptNotStored]",
    ]);
    assert_eq!(run.own, store(expired(5)));
}

#[test]
fn g3_identity_gate_refuses_another_accounts_token_and_refreshes_its_own() {
    // The sub-agent is bound to acct-x; main holds a usable token of acct-y.
    let own = expired(5).with_account("acct-x");
    let main = cred("y6", 6, NOW_MS + HOUR_MS).with_account("acct-y");
    let run = Transcript::sub(store(own.clone()), store(main.clone()))
        .reply(Ok(grant("6")))
        .run();
    // G7: main is fenced too, though it holds another account's token:
    // another sub-agent holding a copy of rt-5 reads main under the lock.
    run.assert_lines(&then(
        &SUB_FENCED_CALL,
        &[
            "write own Commit gen=6",
            // G1: main cannot take acct-x's successor, so rt-5 stays fenced
            // there, marked rotated: no other holder of a copy presents the
            // spent token.
            "write main SettleFence",
            "release",
            "done Refreshed gen=6 warn=[IdentityRefused, MirrorRefused(Identity)]",
        ],
    ));
    let granted = run.granted();
    assert_eq!(
        granted.access,
        Secret::new("at-6"),
        "G3: never acct-y's token"
    );
    assert!(matches!(granted.warnings[0], Warning::IdentityRefused(_)));
    let stored = &run.own.profiles[PROFILE];
    assert_eq!(stored.account_id.as_deref(), Some("acct-x"));
    assert_eq!(stored.generation, 6);
    assert_eq!(
        run.main.profiles,
        store(main).profiles,
        "G3: acct-y's entry in main is not overwritten"
    );
    run.assert_rt5_spent_in_main();
}

#[test]
fn g5_step2_adopt_losing_its_cas_takes_the_lock_and_finds_the_peer_token() {
    // Between the lock-free read and the adopt, a peer already stored main's
    // token in the shared own store: the compare-and-swap loses (G5).
    let run = Transcript::sub(store(expired(5)), store(fresh(6)))
        .during("write own Adopt", |own, _main| *own = store(fresh(6)))
        .run();
    run.assert_lines(&[
        "read own",
        "read main",
        "write own Adopt gen=6 -> Conflict",
        "acquire",
        "read own",
        "read main",
        "release",
        "done Adopted(Peer) gen=6",
    ]);
    assert_eq!(
        run.granted().outcome,
        Outcome::Adopted { from: Source::Peer }
    );
}

#[test]
fn g11_step2_adopt_conflict_with_a_logout_ends_logged_out_under_the_lock() {
    // G11: a logout between read and adopt wins; the adopt does not bring
    // main's token back.
    let run = Transcript::sub(store(expired(5)), store(fresh(6)))
        .during("write own Adopt", |own, _main| log_out(own))
        .run();
    run.assert_lines(&[
        "read own",
        "read main",
        "write own Adopt gen=6 -> Conflict",
        "acquire",
        "read own",
        "read main",
        "release",
        "done LoggedOut gen=6",
    ]);
    assert!(matches!(
        run.failure(),
        Failure::LoggedOut { generation: 6 }
    ));
    assert!(run.own.profiles[PROFILE].is_logged_out());
}

/// Regression (found by the simulator): main was logged out while a sub-agent
/// still held a copy of the same family. It kept refreshing the family the
/// user had signed out of. A tombstone names the family it ended; a holder of
/// that family is logged out too (G11), before and under the lock.
#[test]
fn g11_a_logout_in_main_ends_the_same_family_in_a_sub_agent() {
    let mut ours = expired(5);
    ours.family = Some("family-a".into());
    let mut tombstone = Credential::tombstone(PROVIDER, 7);
    tombstone.family = Some("family-a".into());
    let run = Transcript::sub(store(ours.clone()), store(tombstone.clone())).run();
    run.assert_lines(&["read own", "read main", "done LoggedOut gen=7"]);
    assert!(run.calls.is_empty());
    // Another family (the sub-agent's own login) is not ended by it.
    let mut other = ours;
    other.family = Some("family-b".into());
    let run = Transcript::sub(store(other), store(tombstone))
        .reply(Ok(grant("6")))
        .run();
    assert_eq!(run.granted().outcome, Outcome::Refreshed);
}
