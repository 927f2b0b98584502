//! Transcripts of SPEC §3 steps 3 to 5: the refresh lock, the re-check under
//! it, and the in-doubt policy for a fence left by an earlier presentation.

mod common;

use common::fixtures::*;
use common::transcript::{both_expired, main_expired, then, Transcript, MAIN_LOCKED, SUB_LOCKED};
use rotor_kernel::{Failure, LockFailure, LockKey, Outcome, Policy, ReauthReason, Secret, Source};

fn held_by_other() -> LockFailure {
    LockFailure {
        waited_ms: 120_000,
        holder: Some("pid 777 on other-box since 1699999990000".into()),
        error: None,
    }
}

#[test]
fn g8_lock_timeout_names_the_lock_and_its_holder() {
    let run = main_expired().lock_fails(held_by_other()).run();
    run.assert_lines(&["read own", "acquire -> timeout", "done LockTimeout"]);
    assert!(!run.acquired, "G8: a lock never taken is never released");
    let key = LockKey::new(PROVIDER, PROFILE);
    run.assert_failure_says(key.as_str(), "G8/G10: names the lock");
    run.assert_failure_says("pid 777 on other-box", "G10: names the holder");
    run.assert_failure_says("120000 ms", "G10: says how long");
    assert_eq!(
        run.own,
        store(expired(5)),
        "nothing written without the lock"
    );
}

#[test]
fn g8_sub_agent_lock_timeout_writes_nothing() {
    let run = both_expired().lock_fails(held_by_other()).run();
    run.assert_lines(&[
        "read own",
        "read main",
        "acquire -> timeout",
        "done LockTimeout",
    ]);
    assert_eq!(run.own, store(expired(5)));
    assert_eq!(run.main, store(expired(5)));
}

#[test]
fn g2_step4_peer_refreshed_while_we_waited_is_adopted_from_own() {
    // G2: the waiter takes the peer's rotation instead of calling again.
    let run = both_expired()
        .during("acquire", |own, main| {
            *own = store(fresh(6));
            *main = store(fresh(6));
        })
        .run();
    run.assert_lines(&then(&SUB_LOCKED, &["release", "done Adopted(Peer) gen=6"]));
    assert!(run.calls.is_empty(), "G2: no second call");
    assert_eq!(
        run.granted().outcome,
        Outcome::Adopted { from: Source::Peer }
    );
}

#[test]
fn g2_step4_main_agent_finds_a_peer_rotation() {
    let run = main_expired()
        .during("acquire", |own, _| *own = store(fresh(6)))
        .run();
    run.assert_lines(&then(
        &MAIN_LOCKED,
        &["release", "done Adopted(Peer) gen=6"],
    ));
}

#[test]
fn g2_step4_main_refreshed_while_we_waited_is_copied_under_the_lock() {
    let run = both_expired()
        .during("acquire", |_, main| *main = store(fresh(6)))
        .run();
    run.assert_lines(&then(
        &SUB_LOCKED,
        &[
            "write own Adopt gen=6",
            "release",
            "done Adopted(Main) gen=6",
        ],
    ));
    assert!(run.calls.is_empty(), "G2");
    assert_eq!(run.own, store(fresh(6)));
}

#[test]
fn g1_step4_main_newer_but_expired_is_the_token_refreshed() {
    // Own holds rt-4, already rotated into rt-5 by someone who stored it only
    // in main. Presenting rt-4 would be a reuse (G1): the kernel presents rt-5.
    let run = Transcript::sub(store(expired(4)), store(expired(5)))
        .reply(Ok(grant("6")))
        .run();
    run.assert_lines(&then(
        &SUB_LOCKED,
        &[
            "write main PutFence gen=5 attempt=0",
            "call rt-5",
            "write main Mirror gen=6",
            "write own Commit gen=6",
            "release",
            "done Refreshed gen=6",
        ],
    ));
    assert_eq!(run.calls.len(), 1);
    assert_eq!(
        run.calls[0].refresh,
        Some(Secret::new("rt-5")),
        "G1: never rt-4"
    );
    let rotated = cred("6", 6, NOW_MS + HOUR_MS);
    assert_eq!(run.own, store(rotated.clone()));
    assert_eq!(
        run.main,
        store(rotated),
        "G7: main's fence is cleared by the mirror"
    );
}

#[test]
fn g7_fence_for_the_token_means_needs_reauth_without_a_call() {
    let left = fence("5", 5, 0, NOW_MS - 10 * MINUTE_MS);
    let own = fenced(store(expired(5)), left.clone());
    let run = Transcript::sub(own.clone(), store(expired(5))).run();
    run.assert_lines(&then(
        &SUB_LOCKED,
        &["release", "done NeedsReauth(InDoubt)"],
    ));
    assert!(
        run.calls.is_empty(),
        "G7: the in-doubt token is not presented again"
    );
    match run.failure() {
        Failure::NeedsReauth(ReauthReason::InDoubt { fence }) => assert_eq!(fence, &left),
        other => panic!("{other:?}"),
    }
    let message = run.failure().to_string();
    assert!(
        message.contains("sub-b") && message.contains("777"),
        "G10: who left it: {message}"
    );
    assert_eq!(run.own, own, "the fence stays for the next participant");
}

#[test]
fn g7_fence_in_main_alone_also_stops_the_call() {
    let main = fenced(store(expired(5)), fence("5", 5, 0, NOW_MS - MINUTE_MS));
    let run = Transcript::sub(store(expired(5)), main).run();
    run.assert_done_without_call("done NeedsReauth(InDoubt)", "G7");
    let run = Transcript::main_agent(fenced(store(expired(5)), fence("5", 5, 0, 0))).run();
    run.assert_lines(&then(
        &MAIN_LOCKED,
        &["release", "done NeedsReauth(InDoubt)"],
    ));
}

#[test]
fn g7_a_peers_fence_in_main_stops_the_call_even_when_main_holds_another_family() {
    // Sub-agents A and B both hold copies of rt-5 (acct-x) in their own
    // stores; main holds acct-y's family. A presented rt-5 and died: its
    // fence is in A's store and, because sub-agents always fence main, in
    // main. B reads only its own store and main: main's fence must stop it.
    let ours = expired(5).with_account("acct-x");
    let theirs = cred("y9", 9, NOW_MS - MINUTE_MS).with_account("acct-y");
    let main = fenced(store(theirs), fence("5", 5, 0, NOW_MS - MINUTE_MS));
    let run = Transcript::sub(store(ours), main).run();
    run.assert_done_without_call(
        "done NeedsReauth(InDoubt)",
        "G7/G1: rt-5 is not presented again",
    );
}

#[test]
fn g1_a_rotated_fence_in_main_stops_a_holder_of_the_spent_copy_even_in_grace() {
    // Sub-agent A rotated rt-5 (acct-x) but main holds acct-y, so the mirror
    // was refused and A left rt-5 fenced in main, marked rotated. B still
    // holds a copy of rt-5: presenting it would revoke A's family too.
    let ours = expired(5).with_account("acct-x");
    let theirs = cred("y9", 9, NOW_MS - MINUTE_MS).with_account("acct-y");
    let mut spent = fence("5", 5, 0, NOW_MS - MINUTE_MS);
    spent.rotated = true;
    let main = fenced(store(theirs), spent);
    for policy in [Policy::default(), grace_policy(HOUR_MS as u64)] {
        let run = Transcript::sub(store(ours.clone()), main.clone())
            .policy(policy)
            .run();
        run.assert_done_without_call(
            "done NeedsReauth(Rotated)",
            "G1: the spent rt-5 is never presented",
        );
    }
}

#[test]
fn g7_a_fence_for_another_token_does_not_block() {
    // A stale fence for rt-4 says nothing about rt-5.
    let own = fenced(store(expired(5)), fence("4", 4, 0, NOW_MS - MINUTE_MS));
    let run = Transcript::main_agent(own).reply(Ok(grant("6"))).run();
    assert_eq!(run.granted().outcome, Outcome::Refreshed);
}

#[test]
fn g7_grace_window_open_allows_exactly_one_retry_with_attempt_1() {
    let own = fenced(store(expired(5)), fence("5", 5, 0, NOW_MS - MINUTE_MS));
    let (transcript, seen) = Transcript::sub(own, store(expired(5)))
        .policy(grace_policy(10 * MINUTE_MS as u64))
        .reply(Ok(grant("6")))
        .snapshot_at_call();
    let run = transcript.run();
    run.assert_lines(&then(
        &SUB_LOCKED,
        &[
            "write own PutFence gen=5 attempt=1",
            "write main PutFence gen=5 attempt=1",
            "call rt-5",
            "write main Mirror gen=6",
            "write own Commit gen=6",
            "release",
            "done Refreshed gen=6",
        ],
    ));
    assert_eq!(run.calls.len(), 1, "G1/G7: one retry, not more");
    let (own_in_call, main_in_call) = seen.borrow_mut().take().expect("the call happened");
    for doc in [own_in_call, main_in_call] {
        let fences = &doc.fences[PROFILE];
        assert_eq!(
            fences.len(),
            1,
            "the retry replaces the fence for its token"
        );
        let fence = &fences[0];
        assert_eq!(fence.attempt, 1);
        assert_eq!(fence.holder, sub_holder(), "the retry is recorded as ours");
        assert_eq!(fence.started_at_ms, NOW_MS);
    }
    assert!(run.own.fences.is_empty() && run.main.fences.is_empty());
}

#[test]
fn g7_grace_retry_that_is_again_in_doubt_leaves_attempt_1_and_then_needs_reauth() {
    let own = fenced(store(expired(5)), fence("5", 5, 0, NOW_MS - MINUTE_MS));
    let run = Transcript::sub(own, store(expired(5)))
        .policy(grace_policy(10 * MINUTE_MS as u64))
        .reply(Err(timeout_after_send_error()))
        .run();
    run.assert_done("done InDoubt");
    assert_eq!(run.own.fences[PROFILE][0].attempt, 1);
    // Still inside the window, but the one retry is spent.
    let again = run.next().run();
    again.assert_done_without_call("done NeedsReauth(InDoubt)", "G7: no third presentation");
}

#[test]
fn g7_grace_window_closed_means_needs_reauth() {
    let own = fenced(store(expired(5)), fence("5", 5, 0, NOW_MS - 11 * MINUTE_MS));
    let run = Transcript::sub(own, store(expired(5)))
        .policy(grace_policy(10 * MINUTE_MS as u64))
        .run();
    run.assert_done_without_call("done NeedsReauth(InDoubt)", "G7");
}

#[test]
fn g7_attempt_already_1_means_needs_reauth_even_inside_the_window() {
    let own = fenced(store(expired(5)), fence("5", 5, 1, NOW_MS - MINUTE_MS));
    let run = Transcript::sub(own, store(expired(5)))
        .policy(grace_policy(10 * MINUTE_MS as u64))
        .run();
    run.assert_done_without_call("done NeedsReauth(InDoubt)", "G7");
}

#[test]
fn g10_no_refresh_token_needs_reauth_without_a_call() {
    let mut credential = expired(5);
    credential.refresh = None;
    let run = Transcript::main_agent(store(credential)).run();
    run.assert_lines(&then(
        &MAIN_LOCKED,
        &["release", "done NeedsReauth(NoRefreshToken)"],
    ));
}

#[test]
fn g8_g10_step4_unreadable_own_store_under_the_lock_releases() {
    let run = main_expired()
        .pass("read own")
        .fault("read own", io_fault("own store: EIO"))
        .run();
    run.assert_lines(&[
        "read own",
        "acquire",
        "read own -> fault",
        "release",
        "done Store(own)",
    ]);
    run.assert_failure_says("EIO", "G10");
}

#[test]
fn g7_step2_unreadable_main_with_an_own_entry_goes_on_to_the_lock() {
    // The lock-free read of main only looks for something to adopt; the
    // locked re-read is the one that decides, and here it shows the fence.
    let main = fenced(store(expired(5)), fence("5", 5, 0, NOW_MS - MINUTE_MS));
    let run = Transcript::sub(store(expired(5)), main)
        .fault("read main", io_fault("main store: EIO"))
        .run();
    run.assert_lines(&[
        "read own",
        "read main -> fault",
        "acquire",
        "read own",
        "read main",
        "release",
        "done NeedsReauth(InDoubt)",
    ]);
}

#[test]
fn g7_unreadable_main_under_the_lock_does_not_present_blindly() {
    // Another sub-agent presented rt-5 and left its fence in main; this one
    // holds rt-5 too (adopted earlier) with no fence in its own store. If main
    // cannot be read under the lock, the fence cannot be seen: presenting
    // rt-5 would break G7. The resolve must fail with a typed error instead.
    let main = fenced(store(expired(5)), fence("5", 5, 0, NOW_MS - MINUTE_MS));
    let run = Transcript::sub(store(expired(5)), main)
        .pass("read main")
        .fault("read main", io_fault("main store: EIO"))
        .run();
    run.assert_lines(&[
        "read own",
        "read main",
        "acquire",
        "read own",
        "read main -> fault",
        "release",
        "done Store(main)",
    ]);
    assert!(
        run.calls.is_empty(),
        "G7: a fence we could not read is not ignored"
    );
}

/// Regression (found by the simulator): a grace retry answered with a definite
/// refusal (or never sent) rotated nothing, but the *first* presentation's
/// outcome is still unknown. Clearing the fence let the next participant
/// present the token again outside the window (G7, G1).
#[test]
fn g7_grace_retry_refused_keeps_the_fence_of_the_earlier_unknown_outcome() {
    // A definite refusal is answered once; a not-sent call is retried once.
    for (error, replies) in [(rejected_error(), 1), (not_sent_error(), 2)] {
        let own = fenced(store(expired(5)), fence("5", 5, 0, NOW_MS - MINUTE_MS));
        let mut transcript =
            Transcript::sub(own, store(expired(5))).policy(grace_policy(10 * MINUTE_MS as u64));
        for _ in 0..replies {
            transcript = transcript.reply(Err(error.clone()));
        }
        let run = transcript.run();
        for doc in [&run.own, &run.main] {
            let kept = doc
                .fences
                .get(PROFILE)
                .is_some_and(|fences| fences.iter().any(|f| f.generation == 5));
            assert!(kept, "{error:?}: the in-doubt fence for rt-5 was dropped");
        }
        let again = run.next().run();
        again.assert_done_without_call("done NeedsReauth(InDoubt)", "G7/G1: no third presentation");
    }
}
