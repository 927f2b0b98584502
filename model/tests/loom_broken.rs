//! loom finds the historical bugs of docs/bugs.md (B1, B3, B4, B6) when a
//! test-only broken host re-creates them. Each test expects the checker to
//! fail with the named guarantee: the search stops at the first interleaving
//! that violates it (other violations found on the way are printed with it).
#![cfg(loom)]

mod broken;

use std::sync::Arc;

use broken::{MirrorAfterReleaseHost, PerStoreLockHost, ProcessLockOnlyHost, UnlockedWritesHost};
use rotor_model::check::{FailOn, Guarantee};
use rotor_model::harness::{loom_explore, Replay};
use rotor_model::scenario::{run_checked, HostVariant, Scenario};
use rotor_model::scenarios;

fn expect_violation<V: HostVariant>(
    test_name: &'static str,
    scenario: fn() -> Scenario,
    variant: V,
    guarantee: Guarantee,
) {
    let variant = Arc::new(variant);
    let replay = Replay {
        test_binary: "loom_broken",
        test_name,
    };
    loom_explore(replay, 3, move || {
        run_checked(&scenario(), &variant, FailOn::Only(guarantee));
    });
}

/// B1: with the lock keyed by each agent's store path, agents a and b never
/// exclude each other; loom finds the interleaving where both read the
/// expired credential before either fences it, and both present its
/// refresh token.
#[test]
#[should_panic(expected = "G1 violated")]
fn b1_lock_keyed_per_agent_store_presents_one_token_twice() {
    expect_violation(
        "b1_lock_keyed_per_agent_store_presents_one_token_twice",
        scenarios::two_agents_and_a_writer,
        PerStoreLockHost,
        Guarantee::G1,
    );
}

/// B3: without the single-flight, the per-process advisory lock lets a
/// second thread of the holding process through; two callers present the
/// same refresh token.
#[test]
#[should_panic(expected = "G1 violated")]
fn b3_reentrant_process_lock_lets_two_threads_present_one_token() {
    expect_violation(
        "b3_reentrant_process_lock_lets_two_threads_present_one_token",
        scenarios::three_callers_one_process,
        ProcessLockOnlyHost,
        Guarantee::G1,
    );
}

/// B4: a refresh write without the store lock races the background writer:
/// one of the two read-modify-writes is computed from a stale document and
/// the other's update is lost.
#[test]
#[should_panic(expected = "G4 violated")]
fn b4_refresh_write_without_store_lock_loses_an_update() {
    expect_violation(
        "b4_refresh_write_without_store_lock_loses_an_update",
        scenarios::two_agents_and_a_writer,
        UnlockedWritesHost,
        Guarantee::G4,
    );
}

/// B6 on rotor's host: the mirror lands after the release; the next holder
/// finds main still holding the consumed token, with the refresher's
/// in-doubt fence on it, and stops with NeedsReauth: no double presentation
/// (the fence holds G1), but an agent misses the rotation that happened.
#[test]
#[should_panic(expected = "G2 violated")]
fn b6_mirror_after_release_makes_the_next_holder_miss_the_rotation() {
    expect_violation(
        "b6_mirror_after_release_makes_the_next_holder_miss_the_rotation",
        scenarios::two_agents_and_a_writer,
        MirrorAfterReleaseHost { keep_fences: true },
        Guarantee::G2,
    );
}

/// B6 as in the seed system (no in-doubt fences): the next holder re-reads
/// main, finds the consumed token and presents it again.
#[test]
#[should_panic(expected = "G1 violated")]
fn b6_mirror_after_release_without_fences_presents_the_consumed_token() {
    expect_violation(
        "b6_mirror_after_release_without_fences_presents_the_consumed_token",
        scenarios::two_agents_and_a_writer,
        MirrorAfterReleaseHost { keep_fences: false },
        Guarantee::G1,
    );
}

/// A refresh lock that is never released: the lock is still held when
/// everyone is done, or the next agent that needs it waits forever. Either
/// way the checker names G8. (loom reports the first case; a wedge proper,
/// where every thread waits, is shown under shuttle in `shuttle_broken`:
/// loom aborts the process when it unwinds a deadlocked model.)
#[test]
#[should_panic(expected = "G8 violated")]
fn leaked_refresh_lock_is_caught() {
    expect_violation(
        "leaked_refresh_lock_is_caught",
        scenarios::two_agents_and_a_writer,
        broken::LeakyLockHost,
        Guarantee::G8,
    );
}
