//! shuttle finds the historical bugs of docs/bugs.md (B1, B3, B4, B6) in
//! test-only broken hosts, on the larger configurations, and every failure
//! carries the seed and the commands that replay it (checked here by
//! replaying one).
#![cfg(all(feature = "shuttle", not(loom)))]

mod broken;

use std::sync::Arc;

use broken::{
    ForgottenStoreLockHost, MirrorAfterReleaseHost, PerStoreLockHost, ProcessLockOnlyHost,
    UnlockedWritesHost,
};
use rotor_model::check::{FailOn, Guarantee};
use rotor_model::harness::{failing_schedule, panic_text, shuttle_check, Replay, Schedules};
use rotor_model::scenario::{run_checked, HostVariant, Scenario};
use rotor_model::scenarios;

/// Enough PCT schedules to hit each bug many times over; the search stops
/// at the first failing one.
const ITERATIONS: usize = 20_000;

fn expect_violation<V: HostVariant>(
    test_name: &'static str,
    scenario: fn() -> Scenario,
    variant: V,
    guarantee: Guarantee,
) {
    let variant = Arc::new(variant);
    let replay = Replay {
        test_binary: "shuttle_broken",
        test_name,
    };
    shuttle_check(replay, Schedules::Pct { depth: 3 }, ITERATIONS, move || {
        run_checked(&scenario(), &variant, FailOn::Only(guarantee));
    });
}

/// B1 with six agents in four processes: agents locking their own store
/// paths present one refresh token twice.
#[test]
#[should_panic(expected = "G1 violated")]
fn b1_lock_keyed_per_agent_store() {
    expect_violation(
        "b1_lock_keyed_per_agent_store",
        scenarios::six_agents_two_writers,
        PerStoreLockHost,
        Guarantee::G1,
    );
}

/// B3 with six agents: the two threads of the main agent's process (and of
/// agent b's) walk through their process's lock together.
#[test]
#[should_panic(expected = "G1 violated")]
fn b3_reentrant_process_lock() {
    expect_violation(
        "b3_reentrant_process_lock",
        scenarios::six_agents_two_writers,
        ProcessLockOnlyHost,
        Guarantee::G1,
    );
}

/// B4 with six agents and two background writers: an unlocked refresh
/// write loses a writer's update or is reverted by it.
#[test]
#[should_panic(expected = "G4 violated")]
fn b4_refresh_write_without_store_lock() {
    expect_violation(
        "b4_refresh_write_without_store_lock",
        scenarios::six_agents_two_writers,
        UnlockedWritesHost,
        Guarantee::G4,
    );
}

/// B6 on rotor's host (fences kept): an agent stops on the in-doubt fence
/// of a rotation that succeeded (G2).
#[test]
#[should_panic(expected = "G2 violated")]
fn b6_mirror_after_release() {
    expect_violation(
        "b6_mirror_after_release",
        scenarios::six_agents_two_writers,
        MirrorAfterReleaseHost { keep_fences: true },
        Guarantee::G2,
    );
}

/// B6 as in the seed system (no fences): the consumed token is presented
/// again (G1).
#[test]
#[should_panic(expected = "G1 violated")]
fn b6_mirror_after_release_without_fences() {
    expect_violation(
        "b6_mirror_after_release_without_fences",
        scenarios::six_agents_two_writers,
        MirrorAfterReleaseHost { keep_fences: false },
        Guarantee::G1,
    );
}

/// A store lock never unlocked: every thread ends up waiting; shuttle's
/// deadlock report is named G8 (no wedge).
#[test]
#[should_panic(expected = "G8 violated: every thread waits")]
fn forgotten_store_lock_is_reported_as_a_deadlock() {
    expect_violation(
        "forgotten_store_lock_is_reported_as_a_deadlock",
        scenarios::six_agents_two_writers,
        ForgottenStoreLockHost,
        Guarantee::G8,
    );
}

/// A failure prints the seed and both replay commands, and the printed
/// schedule replays the same violation.
#[test]
fn a_failure_prints_its_seed_and_a_schedule_that_replays_it() {
    let model = || {
        run_checked(
            &scenarios::two_agents_and_a_writer(),
            &Arc::new(PerStoreLockHost),
            FailOn::Only(Guarantee::G1),
        );
    };
    let replay = Replay {
        test_binary: "shuttle_broken",
        test_name: "a_failure_prints_its_seed_and_a_schedule_that_replays_it",
    };
    let failure = std::panic::catch_unwind(|| {
        shuttle_check(replay, Schedules::Pct { depth: 2 }, ITERATIONS, model);
    })
    .expect_err("B1 must be found");
    let message = panic_text(&*failure);
    assert!(message.contains("G1 violated"), "{message}");
    assert!(message.contains("SHUTTLE_RANDOM_SEED="), "{message}");
    assert!(message.contains("ROTOR_SHUTTLE_SCHEDULE='"), "{message}");
    assert!(
        message.contains("--test shuttle_broken -- --exact a_failure_prints"),
        "{message}"
    );
    let schedule = failing_schedule(&message).expect("the failing schedule is in the message");
    let replayed = std::panic::catch_unwind(|| shuttle::replay(model, &schedule))
        .expect_err("the schedule must replay the failure");
    let replayed = panic_text(&*replayed);
    assert!(replayed.contains("G1 violated"), "{replayed}");
}
