//! Transcripts of SPEC §3 steps 6 to 8: the fence before the call, the
//! commit, and the mirror into main.

mod common;

use common::fixtures::*;
use common::transcript::{
    both_expired, log_in, log_out, main_expired, then, Run, Transcript, MAIN_FENCED_CALL,
    MAIN_LOCKED, SUB_FENCED_CALL, SUB_LOCKED,
};
use rotor_kernel::{Credential, CredentialKind, MirrorRefusal, Outcome, Secret, Warning};

fn rotated(generation: u64) -> Credential {
    cred(&generation.to_string(), generation, NOW_MS + HOUR_MS)
}

#[test]
fn g1_g2_g5_g6_g7_sub_agent_refresh_fences_both_stores_then_mirrors_commits_releases() {
    let (transcript, seen) = both_expired().reply(Ok(grant("6"))).snapshot_at_call();
    let run = transcript.run();
    run.assert_lines(&then(
        &SUB_FENCED_CALL,
        &[
            // G6: the rotation is stored (and mirrored) before the lock is released.
            "write main Mirror gen=6",
            "write own Commit gen=6",
            "release",
            "done Refreshed gen=6",
        ],
    ));
    // G7: while the call was in flight, both stores holding rt-5 carried the
    // fence: generation, fingerprint, holder, time, attempt.
    let (own_in_call, main_in_call) = seen.borrow_mut().take().expect("called");
    for doc in [&own_in_call, &main_in_call] {
        let fence = &doc.fences[PROFILE][0];
        assert_eq!(fence.generation, 5);
        assert_eq!(fence.refresh_fp, Secret::new("rt-5").fingerprint());
        assert_eq!(fence.holder, sub_holder());
        assert_eq!(fence.started_at_ms, NOW_MS);
        assert_eq!(fence.attempt, 0);
        assert_eq!(
            doc.profiles[PROFILE],
            expired(5),
            "the fence changes no entry"
        );
    }
    // G1: rt-5 presented once; G5: generation + 1; fences cleared.
    assert_eq!(run.calls, vec![expired(5)]);
    assert_eq!(run.own, store(rotated(6)));
    assert_eq!(run.main, store(rotated(6)));
    let granted = run.granted();
    assert_eq!(granted.access, Secret::new("at-6"));
    assert_eq!(granted.expires_at_ms, Some(NOW_MS + HOUR_MS));
    assert!(granted.warnings.is_empty());
}

#[test]
fn g7_main_holding_another_token_is_fenced_and_mirrored() {
    // A sub-agent always fences main: another sub-agent may hold a copy of
    // rt-5 while main holds something else, and main is what it reads.
    let run = Transcript::sub(store(expired(5)), store(expired(4)))
        .reply(Ok(grant("6")))
        .run();
    run.assert_lines(&then(
        &SUB_FENCED_CALL,
        &[
            "write main Mirror gen=6",
            "write own Commit gen=6",
            "release",
            "done Refreshed gen=6",
        ],
    ));
    assert_eq!(
        run.main,
        store(rotated(6)),
        "G2: peers will adopt from main"
    );
}

#[test]
fn g7_mirror_into_an_absent_main_entry() {
    let run = Transcript::sub(store(expired(5)), empty())
        .reply(Ok(grant("6")))
        .run();
    assert!(run.lines.contains(&"write main Mirror gen=6".to_string()));
    assert_eq!(run.main, store(rotated(6)));
}

#[test]
fn g6_main_agent_refresh_touches_only_its_store() {
    let run = main_expired().reply(Ok(grant("6"))).run();
    run.assert_lines(&then(
        &MAIN_FENCED_CALL,
        &["write own Commit gen=6", "release", "done Refreshed gen=6"],
    ));
    assert_eq!(run.own, store(rotated(6)));
}

#[test]
fn g4_grant_without_a_new_refresh_token_keeps_the_old_one_and_unknown_fields() {
    let mut subject = expired(5).with_account("acct-x");
    subject.extra.insert("clientId".into(), "client-7".into());
    let mut answer = grant("6");
    answer.refresh = None;
    answer.expires_in_ms = None;
    let run = Transcript::main_agent(store(subject))
        .reply(Ok(answer))
        .run();
    let stored = &run.own.profiles[PROFILE];
    assert_eq!(stored.refresh, Some(Secret::new("rt-5")));
    assert_eq!(stored.access, Some(Secret::new("at-6")));
    assert_eq!(
        stored.expires_at_ms,
        Some(NOW_MS + HOUR_MS),
        "one hour by default"
    );
    assert_eq!(stored.account_id.as_deref(), Some("acct-x"));
    assert_eq!(
        stored.extra["clientId"], "client-7",
        "G4: unknown fields ride along"
    );
    assert!(run.own.fences.is_empty());
}

#[test]
fn g7_fence_write_failure_releases_without_calling() {
    let run = both_expired()
        .fault("write own PutFence", io_fault("own store: disk full"))
        .run();
    run.assert_lines(&then(
        &SUB_LOCKED,
        &[
            "write own PutFence gen=5 attempt=0 -> fault",
            // The failed write may have landed (a host error after the
            // rename): its fence is dropped too, or the next caller would
            // find the family in doubt although nothing was sent.
            "write own ClearFence",
            "release",
            "done Store(own)",
        ],
    ));
    assert!(run.calls.is_empty(), "G7: no fence, no call");
    assert_eq!(run.own, store(expired(5)));
    assert_eq!(run.main, store(expired(5)));
}

#[test]
fn g7_second_fence_conflict_clears_the_first_and_does_not_call() {
    // Main is re-logged in between the locked read and main's fence write.
    let run = both_expired()
        .during("write main PutFence", |_, main| log_in(main, fresh(0)))
        .run();
    run.assert_lines(&then(
        &SUB_LOCKED,
        &[
            "write own PutFence gen=5 attempt=0",
            "write main PutFence gen=5 attempt=0 -> Conflict",
            "write own ClearFence",
            "release",
            "done Superseded(main)",
        ],
    ));
    assert!(run.calls.is_empty(), "G7/G11");
    assert_eq!(
        run.own,
        store(expired(5)),
        "the fence already written is cleared"
    );
    assert_eq!(
        run.main.profiles[PROFILE].access,
        Some(Secret::new("at-0")),
        "G11"
    );
}

#[test]
fn g7_second_fence_fault_clears_the_first_and_does_not_call() {
    let run = both_expired()
        .fault("write main PutFence", io_fault("main store: EIO"))
        .run();
    run.assert_lines(&then(
        &SUB_LOCKED,
        &[
            "write own PutFence gen=5 attempt=0",
            "write main PutFence gen=5 attempt=0 -> fault",
            "write own ClearFence",
            "write main ClearFence",
            "release",
            "done Store(main)",
        ],
    ));
    assert!(run.calls.is_empty());
    assert_eq!(run.own, store(expired(5)));
}

#[test]
fn g11_fence_conflict_on_own_after_a_logout() {
    let run = main_expired()
        .during("write own PutFence", |own, _| log_out(own))
        .run();
    run.assert_lines(&then(
        &MAIN_LOCKED,
        &[
            "write own PutFence gen=5 attempt=0 -> Conflict",
            "release",
            "done Superseded(own)",
        ],
    ));
    assert!(run.own.profiles[PROFILE].is_logged_out());
    assert!(
        run.own.fences.is_empty(),
        "G11: nothing written over the tombstone"
    );
}

/// A sub-agent refresh of rt-5 whose mirror into `main` is refused.
fn refused_mirror(main: Credential) -> Run {
    Transcript::sub(store(expired(5)), store(main))
        .reply(Ok(grant("6")))
        .run()
}

#[test]
fn g3_mirror_refused_for_an_api_key_in_main() {
    let mut key = fresh(9);
    key.kind = CredentialKind::ApiKey;
    let run = refused_mirror(key.clone());
    run.assert_lines(&then(
        &SUB_FENCED_CALL,
        &[
            "write own Commit gen=6",
            "write main SettleFence",
            "release",
            "done Refreshed gen=6 warn=[MirrorRefused(NotOAuth)]",
        ],
    ));
    assert_eq!(
        run.main.profiles,
        store(key).profiles,
        "an operator's key is never overwritten"
    );
    run.assert_rt5_spent_in_main();
    assert_eq!(run.own, store(rotated(6)));
}

#[test]
fn g3_mirror_refused_for_another_provider_in_main() {
    let other = Credential::oauth("q", "at-q", "rt-q", NOW_MS - MINUTE_MS).with_generation(2);
    let run = refused_mirror(other.clone());
    run.assert_done("done Refreshed gen=6 warn=[MirrorRefused(OtherProvider)]");
    run.assert_no_line("write main Mirror");
    assert_eq!(run.main.profiles, store(other).profiles);
    run.assert_rt5_spent_in_main();
    match &run.granted().warnings[0] {
        Warning::MirrorRefused(MirrorRefusal::OtherProvider(provider)) => assert_eq!(provider, "q"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn g3_mirror_refused_for_another_account_in_main() {
    let theirs = cred("y4", 4, NOW_MS - MINUTE_MS).with_account("acct-y");
    let run = Transcript::sub(
        store(expired(5).with_account("acct-x")),
        store(theirs.clone()),
    )
    .reply(Ok(grant("6")))
    .run();
    run.assert_done("done Refreshed gen=6 warn=[MirrorRefused(Identity)]");
    run.assert_no_line("write main Mirror");
    assert_eq!(
        run.main.profiles,
        store(theirs).profiles,
        "G3: acct-y's entry is not overwritten"
    );
    run.assert_rt5_spent_in_main();
}

#[test]
fn g5_g11_mirror_loses_to_a_main_relogin_made_during_the_call() {
    let run = both_expired()
        .during("call", |_, main| {
            log_in(main, cred("login", 0, NOW_MS + HOUR_MS))
        })
        .reply(Ok(grant("6")))
        .run();
    run.assert_lines(&then(
        &SUB_FENCED_CALL,
        &[
            "write main Mirror gen=6 -> Conflict",
            "write own Commit gen=6",
            "release",
            "done Refreshed gen=6 warn=[MirrorFailed]",
        ],
    ));
    let main = &run.main.profiles[PROFILE];
    assert_eq!(
        main.access,
        Some(Secret::new("at-login")),
        "G5/G11: main keeps the re-login"
    );
    assert_eq!(
        main.generation, 7,
        "the login moved past the rotation the fence announced (generation 6, \
         which the sub-agent's own store now holds): newer than it, not tied"
    );
}

#[test]
fn g6_g10_mirror_write_failure_is_a_warning_and_the_commit_follows() {
    let run = both_expired()
        .fault("write main Mirror", io_fault("main store: disk full"))
        .reply(Ok(grant("6")))
        .run();
    run.assert_lines(&then(
        &SUB_FENCED_CALL,
        &[
            "write main Mirror gen=6 -> fault",
            "write own Commit gen=6",
            "release",
            "done Refreshed gen=6 warn=[MirrorFailed]",
        ],
    ));
    assert_eq!(
        run.own,
        store(rotated(6)),
        "G6: the own store has the rotation"
    );
    match &run.granted().warnings[0] {
        Warning::MirrorFailed(detail) => assert!(detail.contains("disk full"), "G10"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn g6_outcome_is_refreshed_only_after_the_commit() {
    let run = main_expired().reply(Ok(grant("6"))).run();
    let commit = run
        .lines
        .iter()
        .position(|l| l.starts_with("write own Commit"))
        .unwrap();
    let release = run.lines.iter().position(|l| l == "release").unwrap();
    assert!(commit < release, "G6: durable before the lock is released");
    // The commit was applied (not faulted or in conflict) before `Done`: a
    // failed commit ends in RotationNotStored (see transcript_failures).
    assert_eq!(run.lines[commit], "write own Commit gen=6", "G6: applied");
    assert_eq!(run.granted().outcome, Outcome::Refreshed);
}

#[test]
fn g4_a_field_another_program_edits_during_the_call_survives_the_commit() {
    // An editing tool writes the entry under the store lock alone while the
    // refresh is at the provider: the rotation must not put the fields back
    // as they were read before the call.
    let mut subject = expired(5);
    subject.extra.insert("clientId".into(), "client-7".into());
    let run = Transcript::main_agent(store(subject))
        .during("call", |own, _| {
            let entry = own.profiles.get_mut(PROFILE).unwrap();
            entry.extra.insert("label".into(), "work laptop".into());
            entry.extra.insert("clientId".into(), "client-8".into());
        })
        .reply(Ok(grant("6")))
        .run();
    let stored = &run.own.profiles[PROFILE];
    assert_eq!(
        stored.access,
        Some(Secret::new("at-6")),
        "the rotation landed"
    );
    assert_eq!(
        stored.extra["label"], "work laptop",
        "G4: the added field survives"
    );
    assert_eq!(
        stored.extra["clientId"], "client-8",
        "G4: the edited field survives"
    );
}

/// A peer sharing the sub-agent's own store adopts the rotation from main
/// between the mirror and the commit (the mirror goes first, SPEC §3 step
/// 8): the entry already is the rotation, so the commit lands and the
/// resolve hands out the token instead of failing `Superseded` (G2; found
/// by the shuttle identity models).
#[test]
fn g2_a_peer_adopting_the_mirrored_rotation_before_the_commit_does_not_fail_it() {
    let run = both_expired()
        .during("write own Commit", |own, main| {
            let adopted = main.profiles[PROFILE].clone();
            own.profiles.insert(PROFILE.into(), adopted);
        })
        .reply(Ok(grant("6")))
        .run();
    run.assert_lines(&then(
        &SUB_FENCED_CALL,
        &[
            "write main Mirror gen=6",
            "write own Commit gen=6",
            "release",
            "done Refreshed gen=6",
        ],
    ));
    assert_eq!(run.own.profiles[PROFILE].generation, 6);
    assert!(
        run.own.fences.is_empty(),
        "G7: the commit dropped own's fence"
    );
}
