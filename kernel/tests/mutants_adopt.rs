//! Tests added for mutants that survived `cargo mutants` in the resolver's
//! adopt paths (kernel/src/machine, docs/mutants.md): a write of an adopted
//! credential that meets a concurrent writer (G4, G5), and what a refused
//! refresh token leaves behind (G1, G2).

mod common;

use common::fixtures::*;
use common::transcript::{both_expired, then, SUB_FENCED_CALL};
use rotor_kernel::{Failure, Secret};

/// A concurrent writer changes own between the locked re-read and the
/// adopt write of main's fresher credential.
fn other_writer(own: &mut rotor_kernel::StoreDoc, _: &mut rotor_kernel::StoreDoc) {
    static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let generation = own.profiles[PROFILE].generation;
    let tag = format!("other-{n}");
    own.profiles
        .insert(PROFILE.into(), cred(&tag, generation, NOW_MS - MINUTE_MS));
}

/// Main turns fresh while the sub-agent waits for the lock; its adopt write
/// under the lock conflicts once: it re-reads under the lock (no second
/// acquire: G8) and adopts on the second try (G4, G5).
#[test]
fn g4_g8_an_adopt_under_the_lock_that_conflicts_rereads_without_relocking() {
    let run = both_expired()
        .during("acquire", |_, main| {
            main.profiles.insert(PROFILE.into(), fresh(6));
        })
        .during("write own Adopt", other_writer)
        .run();
    run.assert_lines(&[
        "read own",
        "read main",
        "acquire",
        "read own",
        "read main",
        "write own Adopt gen=6 -> Conflict",
        "read own",
        "read main",
        "write own Adopt gen=6",
        "release",
        "done Adopted(Main) gen=6",
    ]);
    assert_eq!(run.own.profiles[PROFILE], fresh(6));
}

/// Every adopt write under the lock conflicts: after the bounded number of
/// re-reads (three adopt writes in all) the resolver gives up with `Superseded` (G4: never a blind
/// overwrite; every wait bounded, G8).
#[test]
fn g4_g8_adopt_writes_that_always_conflict_end_superseded() {
    let run = both_expired()
        .during("acquire", |_, main| {
            main.profiles.insert(PROFILE.into(), fresh(6));
        })
        .during("write own Adopt", other_writer)
        .during("write own Adopt", other_writer)
        .during("write own Adopt", other_writer)
        .run();
    run.assert_lines(&[
        "read own",
        "read main",
        "acquire",
        "read own",
        "read main",
        "write own Adopt gen=6 -> Conflict",
        "read own",
        "read main",
        "write own Adopt gen=6 -> Conflict",
        "read own",
        "read main",
        "write own Adopt gen=6 -> Conflict",
        "release",
        "done Superseded(own)",
    ]);
    assert!(
        matches!(run.failure(), Failure::Superseded { .. }),
        "{:?}",
        run.failure()
    );
}

/// After a reuse response, main's rotation is adopted; when that adopt write
/// conflicts, the resolver does not re-read again (it already has): it ends
/// `Superseded`, never a second call (G2) or a blind write (G4).
#[test]
fn g2_g4_an_adopt_after_reuse_that_conflicts_is_superseded() {
    let run = both_expired()
        .during("call", |_, main| {
            main.profiles.insert(PROFILE.into(), fresh(6));
        })
        .during("write own Adopt", other_writer)
        .reply(Err(reuse_error()))
        .run();
    assert!(
        matches!(run.failure(), Failure::Superseded { .. }),
        "{:?}",
        run.failure()
    );
    assert_eq!(run.calls.len(), 1);
}

/// After a reuse response, a peer's rotation in own that is already expired
/// is not handed out (its access token is dead): its refresh token, the
/// successor of the refused one, is fenced and presented once, as at step 4
/// (SPEC §3 step 9), and the agent gets the fresh grant instead of a
/// re-login (G1, G2, G7).
#[test]
fn g1_an_expired_peer_rotation_after_reuse_is_refreshed_not_adopted() {
    let run = both_expired()
        .during("call", |own, _| {
            own.profiles.insert(PROFILE.into(), expired(6));
        })
        .reply(Err(reuse_error()))
        .reply(Ok(grant("7")))
        .run();
    run.assert_lines(&then(
        &SUB_FENCED_CALL,
        &[
            "read own",
            "read main",
            "write own PutFence gen=6 attempt=0",
            "write main PutFence gen=6 attempt=0",
            "call rt-6",
            "write main Mirror gen=7",
            "write own Commit gen=7",
            "release",
            "done Refreshed gen=7",
        ],
    ));
    assert_eq!(
        run.granted().access,
        Secret::new("at-7"),
        "G2: the fresh grant"
    );
}
