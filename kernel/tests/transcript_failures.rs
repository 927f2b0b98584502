//! Transcripts of SPEC §3 step 9 (the endpoint failed) and of the commit
//! failing after a successful call.

mod common;

use common::fixtures::*;
use common::transcript::{
    both_expired, log_in, log_out, main_expired, then, Transcript, MAIN_FENCED_CALL, MAIN_LOCKED,
    SUB_FENCED_CALL, SUB_LOCKED,
};
use rotor_kernel::{Credential, Failure, Policy, PolicyConfig, ReauthReason, Secret, StoreDoc};

/// The expected lines of a sub-agent refresh of rt-5: both stores fenced,
/// the call, then `rest`.
fn after_call(rest: &[&'static str]) -> Vec<&'static str> {
    then(&SUB_FENCED_CALL, rest)
}

fn marked(credential: Credential) -> Credential {
    Credential {
        needs_reauth: true,
        ..credential
    }
}

#[test]
fn g2_reuse_then_a_peer_rotation_in_own_is_adopted() {
    let run = both_expired()
        .during("call", |own, _| {
            own.profiles.insert(PROFILE.into(), fresh(6));
        })
        .reply(Err(reuse_error()))
        .run();
    run.assert_lines(&after_call(&[
        "read own",
        "read main",
        "release",
        "done Adopted(Peer) gen=6",
    ]));
    assert_eq!(run.granted().access, Secret::new("at-6"));
    assert_eq!(run.own.profiles[PROFILE], fresh(6));
    // Whatever fence is left names the refused token, never the stored one.
    let stored_fp = Secret::new("rt-6").fingerprint();
    for doc in [&run.own, &run.main] {
        assert!(doc
            .fences
            .values()
            .flatten()
            .all(|f| f.refresh_fp != stored_fp));
    }
}

#[test]
fn g2_g3_reuse_then_a_rotation_in_main_is_adopted() {
    let run = both_expired()
        .during("call", |_, main| {
            main.profiles.insert(PROFILE.into(), fresh(6));
        })
        .reply(Err(reuse_error()))
        .run();
    run.assert_lines(&after_call(&[
        "read own",
        "read main",
        "write own Adopt gen=6",
        "release",
        "done Adopted(Main) gen=6",
    ]));
    assert_eq!(run.own.profiles[PROFILE], fresh(6));
    assert_eq!(run.calls.len(), 1, "G2: adopting is not a second call");
}

/// A peer rotated the presented token and stored the successor in main, but
/// its access token has expired already (a long stall, a clock jump): the
/// successor's refresh token is the one to present, as at step 4 (SPEC §3
/// step 9). Marking the family instead costs every agent its session (G2).
#[test]
fn g2_reuse_then_an_expired_successor_in_main_is_refreshed() {
    let run = both_expired()
        .during("call", |_, main| {
            main.profiles.insert(PROFILE.into(), expired(6));
        })
        .reply(Err(reuse_error()))
        .reply(Ok(grant("7")))
        .run();
    run.assert_lines(&after_call(&[
        "read own",
        "read main",
        // Own holds rt-5, not the successor: only main is fenced (step 6).
        "write main PutFence gen=6 attempt=0",
        "call rt-6",
        "write main Mirror gen=7",
        "write own Commit gen=7",
        "release",
        "done Refreshed gen=7",
    ]));
    assert_eq!(run.granted().access, Secret::new("at-7"));
    assert_eq!(run.calls.len(), 2, "G1: rt-5 once, then its successor once");
    assert!(
        !run.own.profiles[PROFILE].needs_reauth,
        "G2: nothing marked"
    );
    assert!(
        !run.main.profiles[PROFILE].needs_reauth,
        "G2: nothing marked"
    );
}

/// The same in the own store: a peer of this agent rotated and committed,
/// and its access token expired meanwhile.
#[test]
fn g2_reuse_then_an_expired_successor_in_own_is_refreshed() {
    let run = Transcript::main_agent(store(expired(5)))
        .during("call", |own, _| {
            own.profiles.insert(PROFILE.into(), expired(6));
        })
        .reply(Err(reuse_error()))
        .reply(Ok(grant("7")))
        .run();
    run.assert_lines(&then(
        &MAIN_FENCED_CALL,
        &[
            "read own",
            "write own PutFence gen=6 attempt=0",
            "call rt-6",
            "write own Commit gen=7",
            "release",
            "done Refreshed gen=7",
        ],
    ));
}

/// An older credential than the one presented is never presented after a
/// reuse: its token was spent before the presented one existed (G1).
#[test]
fn g1_reuse_never_falls_back_to_an_older_credential() {
    let of_account = |credential: Credential| Credential {
        account_id: Some("acct-a".into()),
        ..credential
    };
    let run = Transcript::sub(store(of_account(expired(3))), store(of_account(expired(5))))
        .during("call", |_, main| {
            // Main now holds another account's login: it may not be copied
            // into this agent's store (SPEC §5).
            let mut other = expired(9);
            other.account_id = Some("acct-b".into());
            main.profiles.insert(PROFILE.into(), other);
        })
        .reply(Err(reuse_error()))
        .run();
    assert_eq!(run.calls.len(), 1, "G1: the older rt-3 is not presented");
    run.assert_done("done NeedsReauth(TokenRefused)");
}

/// After a reuse only a credential of a higher generation than the refused
/// one is its successor: another token the own store holds at the same
/// generation (written by a peer during the call; in stores written before
/// generations all are 0) may as well be older, so it is not presented (G1).
#[test]
fn g1_reuse_never_presents_a_token_of_the_same_generation() {
    let run = both_expired()
        .during("call", |own, _| {
            own.profiles
                .insert(PROFILE.into(), cred("5b", 5, NOW_MS - MINUTE_MS));
        })
        .reply(Err(reuse_error()))
        .run();
    assert_eq!(run.calls.len(), 1, "G1: rt-5b is not presented");
    run.assert_done("done NeedsReauth(TokenRefused)");
}

/// A successor that is refused again is not chased for ever: after
/// `SUCCESSORS_MAX` successors the resolve marks and fails (G2 bounded).
#[test]
fn g1_a_chain_of_reused_successors_ends_in_needs_reauth() {
    let run = both_expired()
        .during("call", |_, main| {
            main.profiles.insert(PROFILE.into(), expired(6));
        })
        .reply(Err(reuse_error()))
        .during("call rt-6", |_, main| {
            main.profiles.insert(PROFILE.into(), expired(7));
        })
        .reply(Err(reuse_error()))
        .during("call rt-7", |_, main| {
            main.profiles.insert(PROFILE.into(), expired(8));
        })
        .reply(Err(reuse_error()))
        .run();
    assert_eq!(run.calls.len(), 3, "the presented token and two successors");
    run.assert_done("done NeedsReauth(TokenRefused)");
}

#[test]
fn g1_g10_reuse_with_nothing_newer_marks_both_stores_and_needs_reauth() {
    let run = both_expired().reply(Err(reuse_error())).run();
    run.assert_lines(&after_call(&[
        "read own",
        "read main",
        "write own MarkNeedsReauth",
        "write main MarkNeedsReauth",
        "release",
        "done NeedsReauth(TokenRefused)",
    ]));
    // The credential is kept (so a re-login can propagate), flagged, unfenced.
    assert_eq!(run.own, store(marked(expired(5))));
    assert_eq!(run.main, store(marked(expired(5))));
    match run.failure() {
        Failure::NeedsReauth(ReauthReason::TokenRefused { detail }) => {
            assert!(detail.contains("invalid_grant"), "G10: {detail}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn g2_a_marked_credential_fails_fast_without_a_call() {
    let first = both_expired().reply(Err(reuse_error())).run();
    let again = first.next().run();
    again.assert_lines(&then(&SUB_LOCKED, &["release", "done NeedsReauth(Marked)"]));
    assert!(
        again.calls.is_empty(),
        "G2: a refused family is not presented again"
    );
    let main_agent = Transcript::main_agent(first.main.clone()).run();
    main_agent.assert_lines(&then(
        &MAIN_LOCKED,
        &["release", "done NeedsReauth(Marked)"],
    ));
}

#[test]
fn g11_a_relogin_in_main_propagates_over_a_marked_own_entry() {
    let first = both_expired().reply(Err(reuse_error())).run();
    let mut main = first.main.clone();
    log_in(&mut main, cred("new", 0, NOW_MS + HOUR_MS));
    let run = Transcript::sub(first.own.clone(), main).run();
    run.assert_lines(&[
        "read own",
        "read main",
        "write own Adopt gen=6",
        "done Adopted(Main) gen=6",
    ]);
    assert!(!run.own.profiles[PROFILE].needs_reauth);
}

#[test]
fn g2_not_sent_is_retried_exactly_once_then_transient_with_fences_cleared() {
    let run = both_expired()
        .reply(Err(not_sent_error()))
        .reply(Err(not_sent_error()))
        .run();
    run.assert_lines(&after_call(&[
        "call rt-5",
        "write own ClearFence",
        "write main ClearFence",
        "release",
        "done Transient",
    ]));
    assert_eq!(run.calls.len(), 2, "G2: one retry, within policy");
    assert_eq!(
        run.own,
        store(expired(5)),
        "nothing was sent: no fence, no mark"
    );
    assert_eq!(run.main, store(expired(5)));
}

#[test]
fn g2_not_sent_then_success_refreshes() {
    let run = both_expired()
        .reply(Err(not_sent_error()))
        .reply(Ok(grant("6")))
        .run();
    run.assert_lines(&after_call(&[
        "call rt-5",
        "write main Mirror gen=6",
        "write own Commit gen=6",
        "release",
        "done Refreshed gen=6",
    ]));
}

#[test]
fn g2_no_retry_when_the_policy_allows_none() {
    let policy = Policy::new(PolicyConfig {
        transient_retries_max: 0,
        ..PolicyConfig::default()
    })
    .expect("no retries breaks no invariant");
    let run = both_expired()
        .policy(policy)
        .reply(Err(not_sent_error()))
        .run();
    run.assert_lines(&after_call(&[
        "write own ClearFence",
        "write main ClearFence",
        "release",
        "done Transient",
    ]));
}

#[test]
fn g7_rejected_clears_fences_and_marks_nothing() {
    let run = both_expired().reply(Err(rejected_error())).run();
    run.assert_lines(&after_call(&[
        "write own ClearFence",
        "write main ClearFence",
        "release",
        "done Rejected",
    ]));
    assert_eq!(run.calls.len(), 1, "a definite refusal is not retried");
    assert_eq!(run.own, store(expired(5)));
    assert_eq!(run.main, store(expired(5)));
}

fn assert_in_doubt_then_needs_reauth(error: rotor_kernel::EndpointError) {
    let run = both_expired().reply(Err(error)).run();
    run.assert_lines(&after_call(&["release", "done InDoubt"]));
    for doc in [&run.own, &run.main] {
        let fence = &doc.fences[PROFILE][0];
        assert_eq!(
            fence.refresh_fp,
            Secret::new("rt-5").fingerprint(),
            "G7: fence kept"
        );
        assert_eq!(fence.holder, sub_holder());
        assert_eq!(
            doc.profiles[PROFILE],
            expired(5),
            "not marked: it may have rotated"
        );
    }
    // G7: the next resolve on these stores does not present rt-5 again.
    let next = run.next().run();
    next.assert_lines(&then(
        &SUB_LOCKED,
        &["release", "done NeedsReauth(InDoubt)"],
    ));
    assert!(next.calls.is_empty(), "G7");
    // Nor does the main agent, which sees only main's fence.
    let main_agent = Transcript::main_agent(run.main.clone()).run();
    main_agent.assert_done("done NeedsReauth(InDoubt)");
    // Nor a sub-agent with no entry of its own.
    let newcomer = Transcript::sub(StoreDoc::default(), run.main.clone()).run();
    newcomer.assert_done_without_call("done NeedsReauth(InDoubt)", "G7");
}

#[test]
fn g7_timeout_after_send_is_in_doubt_and_the_next_resolve_needs_reauth() {
    assert_in_doubt_then_needs_reauth(timeout_after_send_error());
}

#[test]
fn g7_5xx_without_body_is_in_doubt_and_the_next_resolve_needs_reauth() {
    assert_in_doubt_then_needs_reauth(bad_gateway_error());
}

#[test]
fn g11_logout_during_the_call_is_never_overwritten() {
    let run = both_expired()
        .during("call", |own, main| {
            log_out(own);
            log_out(main);
        })
        .reply(Ok(grant("6")))
        .run();
    run.assert_lines(&after_call(&[
        "write main Mirror gen=6 -> Conflict",
        "write own Commit gen=6 -> Conflict",
        "release",
        "done Superseded(own)",
    ]));
    let tombstone = store(Credential::tombstone(PROVIDER, 6));
    assert_eq!(run.own.profiles, tombstone.profiles, "G11");
    assert_eq!(run.main.profiles, tombstone.profiles, "G11: no mirror");
    // The presented token was consumed; its fence outlives the logout so a
    // sub-agent still holding a copy does not present it again (G7).
    assert!(!run.main.fences.is_empty(), "G7");
    run.assert_failure_says("logged_out generation 6", "G10");
    let next = run.next().run();
    next.assert_lines(&["read own", "done LoggedOut gen=6"]);
}

#[test]
fn g11_relogin_during_the_call_is_never_overwritten() {
    let run = both_expired()
        .during("call", |own, _| {
            log_in(own, cred("new", 0, NOW_MS + HOUR_MS))
        })
        .reply(Ok(grant("6")))
        .run();
    run.assert_done("done Superseded(own)");
    assert_eq!(
        run.own.profiles[PROFILE].access,
        Some(Secret::new("at-new")),
        "G11: the login in own stays"
    );
    // Main held the presented family and no login: it takes that family's
    // rotation (mirrored before the commit that then lost to the login), so
    // no participant reading main is left with the spent rt-5 (G2, G7).
    assert_eq!(main_entry(&run).access, Some(Secret::new("at-6")), "G2");
    assert!(
        run.main.fences.is_empty(),
        "G7: rt-5's fence went with the mirror"
    );
}

/// A main agent whose commit fails has stored its rotation nowhere: the
/// spent rt-5 stays fenced and the next participant must not present it.
#[test]
fn g7_commit_io_failure_is_rotation_not_stored_with_fences_kept() {
    let run = main_expired()
        .fault("write own Commit", io_fault("own store: disk full"))
        .reply(Ok(grant("6")))
        .run();
    run.assert_lines(&then(
        &MAIN_FENCED_CALL,
        &[
            "write own Commit gen=6 -> fault",
            "release",
            "done RotationNotStored",
        ],
    ));
    run.assert_failure_says("disk full", "G10");
    assert_eq!(
        run.own.fences[PROFILE][0].refresh_fp,
        Secret::new("rt-5").fingerprint(),
        "G7"
    );
    // rt-5 is consumed: the next participant must not present it.
    let next = run.next().run();
    next.assert_done_without_call("done NeedsReauth(InDoubt)", "G7/G1");
}

/// A sub-agent mirrors into main before it commits (SPEC §3 step 8): when
/// its own commit then fails, the rotation is stored in main, the token is
/// handed out with a warning, and the next resolve adopts it from main
/// instead of finding rt-5 fenced (G2, G6, G7).
#[test]
fn g2_g6_sub_agent_commit_failure_after_the_mirror_keeps_the_rotation_in_main() {
    let run = both_expired()
        .fault("write own Commit", io_fault("own store: disk full"))
        .reply(Ok(grant("6")))
        .run();
    run.assert_lines(&after_call(&[
        "write main Mirror gen=6",
        "write own Commit gen=6 -> fault",
        "release",
        "done Refreshed gen=6 warn=[CommitFailed]",
    ]));
    assert_eq!(run.granted().access, Secret::new("at-6"));
    assert_eq!(main_entry(&run).access, Some(Secret::new("at-6")), "G6");
    assert!(
        run.main.fences.is_empty(),
        "G7: main's fence went with the mirror"
    );
    let next = run.next().run();
    assert!(next.calls.is_empty(), "G1: rt-5 is not presented again");
    next.assert_done("done Adopted(Main) gen=6");
}

#[test]
fn g1_main_agent_reuse_marks_its_store() {
    let run = main_expired().reply(Err(reuse_error())).run();
    run.assert_lines(&then(
        &MAIN_FENCED_CALL,
        &[
            "read own",
            "write own MarkNeedsReauth",
            "release",
            "done NeedsReauth(TokenRefused)",
        ],
    ));
    assert_eq!(run.own, store(marked(expired(5))));
}

/// Main's entry for the profile after a run.
fn main_entry(run: &common::transcript::Run) -> &Credential {
    &run.main.profiles[PROFILE]
}

/// A grace retry refused as reused (a stall or a clock jump carried it past
/// the provider's window): the refusal proves the first presentation spent
/// rt-5, and that presenter, a sub-agent whose mirror into main failed,
/// holds its rotation (generation 6) in its own store alone. Main's fence
/// is the only record of that rotation: the marking keeps it, settled as
/// rotated, so a later login installs past generation 6. When the marking
/// dropped it, the login landed at 6, level with the rotation; the tie was
/// broken by expiry, and the sub-agent holding the rotation kept presenting
/// its dead family and failed `NeedsReauth` beside the login it could have
/// refreshed (G2, G11; the simulator's outcome oracle, seed
/// 0x2c793827497ad4a0).
#[test]
fn g2_g11_a_refused_grace_retry_keeps_the_record_of_the_first_presentations_rotation() {
    // Another sub-agent presented rt-5 a minute ago; its fence is in main.
    let main = fenced(store(expired(5)), fence("5", 5, 0, NOW_MS - MINUTE_MS));
    let run = Transcript::sub(store(expired(5)), main)
        .policy(grace_policy(10 * MINUTE_MS as u64))
        .reply(Err(reuse_error()))
        .run();
    run.assert_lines(&then(
        &SUB_LOCKED,
        &[
            "write own PutFence gen=5 attempt=1",
            "write main PutFence gen=5 attempt=1",
            "call rt-5",
            "read own",
            "read main",
            "write own MarkNeedsReauth",
            "write main MarkNeedsReauth",
            "release",
            "done NeedsReauth(TokenRefused)",
        ],
    ));
    assert!(run.main.profiles[PROFILE].needs_reauth);
    let spent = Secret::new("rt-5").fingerprint();
    let kept = run.main.fences.get(PROFILE).and_then(|fences| {
        fences
            .iter()
            .find(|f| f.refresh_fp == spent && f.generation == 5)
    });
    assert!(
        kept.is_some_and(|fence| fence.rotated),
        "the fence of rt-5 must stay in main, settled as rotated: {:?}",
        run.main.fences
    );

    // The person logs in again; the login's access token is already inside
    // the refresh margin when the first presenter next asks (a short-lived
    // token, or a clock ahead), and it expires before that presenter's own
    // rotation does.
    let mut main = run.main.clone();
    log_in(&mut main, cred("new", 0, NOW_MS));
    assert_eq!(
        main.profiles[PROFILE].generation, 7,
        "G5: the login goes past the rotation (6) the kept fence announces"
    );
    let presenter_own = store(cred("6", 6, NOW_MS + MINUTE_MS));
    let presenter = Transcript::sub(presenter_own, main)
        .reply(Ok(grant("new-2")))
        .run();
    assert_eq!(
        presenter.calls.len(),
        1,
        "one refresh, of the login's token"
    );
    assert_eq!(
        presenter.calls[0].refresh,
        Some(Secret::new("rt-new")),
        "G2/G11: the login's token is refreshed, not the replaced family's rt-6"
    );
    presenter.assert_done("done Refreshed gen=8");
}
