//! `StoreDoc::apply`, Mutation by Mutation: the compare-and-swap (G5, G11),
//! the mirror rules (G3, G5) and the fence bookkeeping (G7) that hosts run
//! under a store's lock.

mod common;

use common::fixtures::*;
use rotor_kernel::{
    Conflict, Credential, CredentialKind, Expect, MirrorRefusal, Mutation, Secret, StoreDoc,
    WriteOutcome,
};

fn fp(tag: &str) -> rotor_kernel::Fingerprint {
    Secret::new(format!("rt-{tag}")).fingerprint()
}

/// Applies `mutation` to a copy of `doc`; a conflict must leave it untouched.
#[track_caller]
fn apply(doc: &StoreDoc, mutation: Mutation) -> (StoreDoc, WriteOutcome) {
    let mut after = doc.clone();
    let outcome = after.apply(PROFILE, &mutation);
    if matches!(outcome, WriteOutcome::Conflict(_)) {
        assert_eq!(&after, doc, "G5: a lost compare-and-swap applies nothing");
    }
    (after, outcome)
}

/// Entries that an `Expect::of(fresh(5))` must not match.
fn not_fresh_5() -> Vec<(&'static str, Option<Credential>)> {
    let mut other_token = fresh(5);
    other_token.refresh = Some(Secret::new("rt-other"));
    let mut other_kind = fresh(5);
    other_kind.kind = CredentialKind::ApiKey;
    vec![
        ("absent", None),
        ("older generation", Some(fresh(4))),
        // Another rotation than the one a commit of `fresh(6)` installs
        // (that one itself is the commit's exception, see
        // g2_commit_applies_when_a_peer_adopted_the_rotation_itself).
        ("newer generation", Some(cred("6b", 6, NOW_MS + HOUR_MS))),
        ("same generation, other refresh token", Some(other_token)),
        ("same generation, other kind", Some(other_kind)),
        ("tombstone (G11)", Some(Credential::tombstone(PROVIDER, 5))),
    ]
}

fn doc_with(entry: Option<Credential>) -> StoreDoc {
    entry.map_or_else(empty, store)
}

#[test]
fn g5_every_cas_mutation_conflicts_unless_the_entry_is_as_read() {
    let expect = Expect::of(Some(&fresh(5)));
    let mutations = [
        Mutation::Adopt {
            expect: expect.clone(),
            credential: fresh(6).into(),
        },
        Mutation::PutFence {
            expect: expect.clone(),
            fence: fence("5", 5, 0, NOW_MS).into(),
        },
        Mutation::Commit {
            expect: expect.clone(),
            credential: fresh(6).into(),
            presented_fp: fp("5"),
        },
        Mutation::Mirror {
            expect: expect.clone(),
            credential: fresh(6).into(),
            presented_fp: fp("5"),
        },
    ];
    for mutation in &mutations {
        for (what, entry) in not_fresh_5() {
            let doc = doc_with(entry.clone());
            let (_, outcome) = apply(&doc, mutation.clone());
            assert_eq!(
                outcome,
                WriteOutcome::Conflict(Conflict {
                    expected: expect.clone(),
                    found: Expect::of(entry.as_ref()),
                }),
                "{what}: {mutation:?}"
            );
        }
        // Differences the stamp ignores (expiry, access) do not conflict.
        let mut same_stamp = fresh(5);
        same_stamp.expires_at_ms = Some(0);
        let (_, outcome) = apply(&store(same_stamp), mutation.clone());
        assert!(
            !matches!(outcome, WriteOutcome::Conflict(_)),
            "{mutation:?}"
        );
    }
}

#[test]
fn g5_adopt_installs_the_credential_and_keeps_the_fence() {
    let doc = fenced(store(expired(5)), fence("4", 4, 0, NOW_MS));
    let expect = Expect::of(Some(&expired(5)));
    let (after, outcome) = apply(
        &doc,
        Mutation::Adopt {
            expect,
            credential: fresh(6).into(),
        },
    );
    assert_eq!(outcome, WriteOutcome::Applied);
    assert_eq!(after, fenced(store(fresh(6)), fence("4", 4, 0, NOW_MS)));
    let (after, outcome) = apply(
        &empty(),
        Mutation::Adopt {
            expect: Expect::of(None),
            credential: fresh(6).into(),
        },
    );
    assert_eq!(outcome, WriteOutcome::Applied);
    assert_eq!(after, store(fresh(6)));
}

#[test]
fn g7_put_fence_records_the_fence_and_changes_no_entry() {
    let doc = store(expired(5));
    let (after, outcome) = apply(
        &doc,
        Mutation::PutFence {
            expect: Expect::of(Some(&expired(5))),
            fence: fence("5", 5, 1, NOW_MS).into(),
        },
    );
    assert_eq!(outcome, WriteOutcome::Applied);
    assert_eq!(after, fenced(doc, fence("5", 5, 1, NOW_MS)));
}

#[test]
fn g7_commit_replaces_the_entry_and_clears_only_its_own_fence() {
    let expect = Expect::of(Some(&expired(5)));
    let commit = Mutation::Commit {
        expect,
        credential: fresh(6).into(),
        presented_fp: fp("5"),
    };
    let (after, outcome) = apply(
        &fenced(store(expired(5)), fence("5", 5, 0, NOW_MS)),
        commit.clone(),
    );
    assert_eq!(outcome, WriteOutcome::Applied);
    assert_eq!(after, store(fresh(6)));
    // Another presentation's fence is not ours to clear.
    let (after, _) = apply(&fenced(store(expired(5)), fence("x", 5, 0, NOW_MS)), commit);
    assert_eq!(after, fenced(store(fresh(6)), fence("x", 5, 0, NOW_MS)));
}

#[test]
fn g3_g5_mirror_rules() {
    let presented = fp("5");
    let mirror = |main: Option<&Credential>, credential: Credential| Mutation::Mirror {
        expect: Expect::of(main),
        credential: credential.into(),
        presented_fp: presented,
    };
    // Absent: created.
    let (after, outcome) = apply(&empty(), mirror(None, fresh(6)));
    assert_eq!((outcome, after), (WriteOutcome::Applied, store(fresh(6))));
    // Older same-family entry with our fence: replaced, fence dropped.
    let doc = fenced(store(expired(5)), fence("5", 5, 0, NOW_MS));
    let (after, outcome) = apply(&doc, mirror(Some(&expired(5)), fresh(6)));
    assert_eq!((outcome, after), (WriteOutcome::Applied, store(fresh(6))));

    let mut key = fresh(3);
    key.kind = CredentialKind::ApiKey;
    let other_provider = Credential::oauth("q", "a", "r", 0).with_generation(1);
    let other_account = expired(5).with_account("acct-y");
    let incoming_x = fresh(6).with_account("acct-x");
    let newer = fresh(7);
    // `None`: refused by the identity gate (its message is the gate's business).
    let cases: [(&str, Credential, Credential, Option<MirrorRefusal>); 5] = [
        (
            "api_key",
            key,
            fresh(6),
            Some(MirrorRefusal::NotOAuth(CredentialKind::ApiKey)),
        ),
        (
            "other provider",
            other_provider,
            fresh(6),
            Some(MirrorRefusal::OtherProvider("q".into())),
        ),
        (
            "same generation",
            fresh(6),
            cred("x6", 6, NOW_MS + HOUR_MS),
            Some(MirrorRefusal::NotNewer { main_generation: 6 }),
        ),
        (
            "newer",
            newer,
            fresh(6),
            Some(MirrorRefusal::NotNewer { main_generation: 7 }),
        ),
        ("other account (G3)", other_account, incoming_x, None),
    ];
    for (what, existing, incoming, refusal) in cases {
        let doc = fenced(store(existing.clone()), fence("5", 5, 0, NOW_MS));
        let (after, outcome) = apply(&doc, mirror(Some(&existing), incoming));
        match refusal {
            Some(refusal) => assert_eq!(outcome, WriteOutcome::MirrorRefused(refusal), "{what}"),
            None => assert!(
                matches!(
                    outcome,
                    WriteOutcome::MirrorRefused(MirrorRefusal::Identity(_))
                ),
                "{what}: {outcome:?}"
            ),
        }
        let mut settled = fence("5", 5, 0, NOW_MS);
        settled.rotated = true;
        assert_eq!(
            after,
            fenced(store(existing), settled),
            "{what}: entry kept; our fence kept, marked rotated (G1: no copy of the spent token is presented)"
        );
    }
}

#[test]
fn g7_clear_fence_removes_only_the_matching_fence() {
    let doc = fenced(store(expired(5)), fence("5", 5, 0, NOW_MS));
    let (after, outcome) = apply(
        &doc,
        Mutation::ClearFence {
            presented_fp: fp("5"),
        },
    );
    assert_eq!((outcome, after), (WriteOutcome::Applied, store(expired(5))));
    let (after, outcome) = apply(
        &doc,
        Mutation::ClearFence {
            presented_fp: fp("4"),
        },
    );
    assert_eq!((outcome, after), (WriteOutcome::Applied, doc.clone()));
    let (after, _) = apply(
        &empty(),
        Mutation::ClearFence {
            presented_fp: fp("5"),
        },
    );
    assert_eq!(after, empty(), "clearing nothing is a no-op");
}

#[test]
fn g11_mark_needs_reauth_flags_only_the_entry_holding_that_token() {
    let mark = Mutation::MarkNeedsReauth {
        presented_fp: fp("5"),
    };
    let doc = fenced(store(expired(5)), fence("5", 5, 0, NOW_MS));
    let (after, outcome) = apply(&doc, mark.clone());
    assert_eq!(outcome, WriteOutcome::Applied);
    let entry = &after.profiles[PROFILE];
    assert!(entry.needs_reauth);
    assert_eq!(
        Credential {
            needs_reauth: false,
            ..entry.clone()
        },
        expired(5),
        "kept, not deleted"
    );
    assert!(after.fences.is_empty());
    // A grace retry's fence (attempt 1) stands for the earlier presentation
    // too, which the refusal proves spent the token: it stays, settled as
    // rotated, for a later login's generation (G2, G11).
    let retried = fenced(store(expired(5)), fence("5", 5, 1, NOW_MS));
    let (after, _) = apply(&retried, mark.clone());
    assert!(after.profiles[PROFILE].needs_reauth);
    let mut settled = fence("5", 5, 1, NOW_MS);
    settled.rotated = true;
    assert_eq!(after.fences[PROFILE], vec![settled]);
    // A newer token (a re-login) is not marked (G11).
    let (after, _) = apply(&store(fresh(6)), mark.clone());
    assert_eq!(after, store(fresh(6)));
    // A tombstone stays a tombstone.
    let tombstone = store(Credential::tombstone(PROVIDER, 6));
    assert_eq!(apply(&tombstone, mark).0, tombstone);
}

#[test]
fn g5_g11_login_moves_past_every_generation_seen_and_clears_marks() {
    let mut marked = expired(5);
    marked.needs_reauth = true;
    let doc = fenced(store(marked), fence("5", 8, 0, NOW_MS));
    let (after, outcome) = apply(
        &doc,
        Mutation::Login {
            credential: cred("new", 0, NOW_MS + HOUR_MS).into(),
        },
    );
    assert_eq!(outcome, WriteOutcome::Applied);
    // Past the rotation the fence at generation 8 announces (9, which a
    // sub-agent's store may hold): a login at 9 would tie with it.
    let mut installed = cred("new", 10, NOW_MS + HOUR_MS);
    // G11: the login names its family after its first refresh token.
    installed.family = Some(fp("new").as_str().into());
    assert_eq!(
        after,
        fenced(store(installed), fence("5", 8, 0, NOW_MS)),
        "past the fenced rotation's generation 9; the old family's fence kept (G7)"
    );
    // A login that brings a higher generation keeps it.
    let (after, _) = apply(
        &store(expired(5)),
        Mutation::Login {
            credential: fresh(20).into(),
        },
    );
    assert_eq!(after.profiles[PROFILE].generation, 20);
    let (after, _) = apply(
        &empty(),
        Mutation::Login {
            credential: fresh(0).into(),
        },
    );
    assert_eq!(after.profiles[PROFILE].generation, 1);
}

#[test]
fn g11_logout_leaves_a_tombstone_one_generation_on() {
    let logout = Mutation::Logout {
        provider: PROVIDER.into(),
    };
    let (after, outcome) = apply(
        &fenced(store(expired(5)), fence("5", 5, 0, NOW_MS)),
        logout.clone(),
    );
    assert_eq!(outcome, WriteOutcome::Applied);
    assert_eq!(
        after,
        fenced(
            store(Credential::tombstone(PROVIDER, 6)),
            fence("5", 5, 0, NOW_MS)
        ),
        "the in-doubt fence survives the logout (G7)"
    );
    let (after, _) = apply(&empty(), logout.clone());
    assert_eq!(after, store(Credential::tombstone(PROVIDER, 1)));
    // Logging out twice still moves forward (G5).
    let (again, _) = apply(&after, logout);
    assert_eq!(again, store(Credential::tombstone(PROVIDER, 2)));
}

#[test]
fn g1_settle_fence_marks_rotated_and_the_list_stays_bounded() {
    let doc = fenced(store(expired(5)), fence("5", 5, 0, NOW_MS));
    let (after, outcome) = apply(
        &doc,
        Mutation::SettleFence {
            presented_fp: fp("5"),
        },
    );
    assert_eq!(outcome, WriteOutcome::Applied);
    assert!(after.fences[PROFILE][0].rotated);
    assert_eq!(after.profiles, doc.profiles, "settling changes no entry");

    // Many settled fences: the oldest rotated ones go first, in-doubt ones stay.
    let mut doc = fenced(store(expired(5)), fence("in-doubt", 1, 0, 0));
    for index in 0..(rotor_kernel::FENCES_PER_PROFILE_MAX as i64 + 10) {
        let tag = format!("r{index}");
        let put = Mutation::PutFence {
            expect: Expect::of(doc.profiles.get(PROFILE)),
            fence: fence(&tag, 5, 0, NOW_MS + index).into(),
        };
        assert_eq!(doc.apply(PROFILE, &put), WriteOutcome::Applied);
        let settle = Mutation::SettleFence {
            presented_fp: fp(&tag),
        };
        assert_eq!(doc.apply(PROFILE, &settle), WriteOutcome::Applied);
    }
    let fences = &doc.fences[PROFILE];
    assert_eq!(fences.len(), rotor_kernel::FENCES_PER_PROFILE_MAX);
    assert!(
        fences.iter().any(|f| f.refresh_fp == fp("in-doubt")),
        "G7: an in-doubt fence is never dropped"
    );
    let last = format!("r{}", rotor_kernel::FENCES_PER_PROFILE_MAX + 9);
    assert!(fences.iter().any(|f| f.refresh_fp == fp(&last)));
    assert!(
        !fences.iter().any(|f| f.refresh_fp == fp("r0")),
        "oldest rotated dropped"
    );
}

/// Regression (found by the simulator): a re-login or logout in main used to
/// drop every fence of the profile. A sub-agent store still holding a copy of
/// the in-doubt token then saw no fence in main and presented the token again
/// (G7, G1). The fence names one token; keeping it costs nothing.
#[test]
fn g7_login_and_logout_keep_the_fence_of_an_in_doubt_token_of_the_old_family() {
    let in_doubt = fenced(store(expired(5)), fence("5", 5, 0, NOW_MS));
    for mutation in [
        Mutation::Login {
            credential: cred("new", 0, NOW_MS + HOUR_MS).into(),
        },
        Mutation::Logout {
            provider: PROVIDER.into(),
        },
    ] {
        let (after, _) = apply(&in_doubt, mutation.clone());
        let fences = after.fences.get(PROFILE).cloned().unwrap_or_default();
        assert!(
            fences.iter().any(|f| f.refresh_fp == fp("5")),
            "{mutation:?} dropped the fence a sub-agent holding token 5 must see"
        );
    }
}

/// Regression (found by the simulator): a sub-agent refreshed main's token
/// (expired by its clock) while a peer sharing its store adopted that same
/// credential from main without the lock (usable by the peer's clock). The
/// commit's compare-and-swap expected the own entry as read, lost, and the
/// rotation the provider had already made was discarded (G7). The store now
/// holds the very credential that was presented, so the commit applies.
#[test]
fn g7_commit_applies_when_a_peer_copied_the_presented_credential_meanwhile() {
    let commit = Mutation::Commit {
        expect: Expect::of(Some(&expired(4))),
        credential: fresh(6).into(),
        presented_fp: fp("5"),
    };
    let (after, outcome) = apply(
        &fenced(store(expired(5)), fence("5", 5, 0, NOW_MS)),
        commit.clone(),
    );
    assert_eq!(outcome, WriteOutcome::Applied);
    assert_eq!(after, store(fresh(6)));
    // Anything else still conflicts: another token at that generation, or a
    // newer entry.
    let mut other = expired(5);
    other.refresh = Some(Secret::new("rt-other"));
    for entry in [other, expired(6)] {
        let (_, outcome) = apply(&store(entry.clone()), commit.clone());
        assert!(
            matches!(outcome, WriteOutcome::Conflict(_)),
            "{entry:?} accepted"
        );
    }
}

/// A sub-agent mirrors into main before it commits: a peer sharing its
/// store may adopt that very rotation from main in between. The entry then
/// already is the rotation (same tokens, expiry, generation), and the commit
/// applies instead of failing a resolve that holds a good token (G2). An
/// entry that differs in anything the rotation set still conflicts.
#[test]
fn g2_commit_applies_when_a_peer_adopted_the_rotation_itself() {
    let commit = Mutation::Commit {
        expect: Expect::of(Some(&expired(5))),
        credential: fresh(6).into(),
        presented_fp: fp("5"),
    };
    let (after, outcome) = apply(
        &fenced(store(fresh(6)), fence("5", 5, 0, NOW_MS)),
        commit.clone(),
    );
    assert_eq!(outcome, WriteOutcome::Applied);
    assert_eq!(after, store(fresh(6)), "G7: rt-5's fence dropped");
    let mut other_access = fresh(6);
    other_access.access = Some(Secret::new("at-other"));
    for entry in [expired(6), other_access, fresh(7)] {
        let (_, outcome) = apply(&store(entry.clone()), commit.clone());
        assert!(
            matches!(outcome, WriteOutcome::Conflict(_)),
            "{entry:?} accepted"
        );
    }
}

/// Regression (found by the simulator, seed 0x102f0f1): a sub-agent store
/// generations ahead of main refreshed its old family after a re-login in
/// main and mirrored it back over the login. A login names its family; a
/// mirror of any other family (or of an unnamed, older one) is refused (G11).
#[test]
fn g11_a_mirror_never_writes_another_family_over_a_login() {
    let mut doc = store(expired(1));
    let login = Mutation::Login {
        credential: cred("new", 0, NOW_MS - MINUTE_MS).into(),
    };
    assert_eq!(doc.apply(PROFILE, &login), WriteOutcome::Applied);
    let logged_in = doc.clone();
    // The old family, far ahead in a sub-agent store, unnamed or named.
    for family in [None, Some("old-family".to_string())] {
        let mut old = cred("old-9", 9, NOW_MS + HOUR_MS);
        old.family = family.map(Into::into);
        let (after, outcome) = apply(
            &logged_in,
            Mutation::Mirror {
                expect: Expect::of(logged_in.profiles.get(PROFILE)),
                credential: old.into(),
                presented_fp: fp("old-8"),
            },
        );
        assert!(
            matches!(
                outcome,
                WriteOutcome::MirrorRefused(MirrorRefusal::OtherFamily { .. })
            ),
            "{outcome:?}"
        );
        assert_eq!(after.profiles, logged_in.profiles, "G11: the login sticks");
    }
    // The login's own family, one rotation later, is mirrored as before.
    let mut next = logged_in.profiles[PROFILE].clone();
    next.generation += 1;
    let (after, outcome) = apply(
        &logged_in,
        Mutation::Mirror {
            expect: Expect::of(logged_in.profiles.get(PROFILE)),
            credential: next.clone().into(),
            presented_fp: fp("new"),
        },
    );
    assert_eq!(outcome, WriteOutcome::Applied);
    assert_eq!(after.profiles[PROFILE], next);
}
