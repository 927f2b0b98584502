//! loom: every interleaving (within a preemption bound) of the small
//! configurations, on the real kernel, the real single-flight and the
//! correct model host. Checked in each interleaving: G1, G2, G3, G4, G5 and
//! G8 (see `rotor_model::verify`), and deadlock freedom (loom fails a run in
//! which every thread waits).
//!
//! Run with `scripts/test-models.sh`, or:
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p rotor-model --release --test loom_models -- --nocapture`
#![cfg(loom)]

use std::sync::Arc;

use rotor_model::check::FailOn;
use rotor_model::harness::{loom_explore, Replay};
use rotor_model::scenario::{run_checked, CorrectHost, Scenario};
use rotor_model::scenarios;

fn replay(test_name: &'static str) -> Replay {
    Replay {
        test_binary: "loom_models",
        test_name,
    }
}

fn explore(test_name: &'static str, preemption_bound: usize, scenario: fn() -> Scenario) -> usize {
    let stats = loom_explore(replay(test_name), preemption_bound, move || {
        run_checked(&scenario(), &Arc::new(CorrectHost), FailOn::Any);
    });
    stats.interleavings
}

/// Two sub-agents in two processes refresh one credential while a
/// background writer updates main: one endpoint call, both agents get the
/// new token, the writer's update survives every rotor write.
#[test]
fn two_agents_refresh_one_credential_with_a_background_writer() {
    let interleavings = explore(
        "two_agents_refresh_one_credential_with_a_background_writer",
        3,
        scenarios::two_agents_and_a_writer,
    );
    assert!(interleavings > 1, "loom explored a single interleaving");
}

/// Three threads of one process: the single-flight lets one refresh; the
/// others find its rotation under the lock (Adopted{Peer}).
#[test]
fn three_callers_in_one_process_share_one_refresh() {
    let interleavings = explore(
        "three_callers_in_one_process_share_one_refresh",
        3,
        scenarios::three_callers_one_process,
    );
    assert!(interleavings > 1, "loom explored a single interleaving");
}

/// A sub-agent bound to x and the main agent bound to y: each family is
/// rotated once and nobody ends with the other account's token.
#[test]
fn sub_agent_and_main_agent_with_an_identity_mismatch() {
    let interleavings = explore(
        "sub_agent_and_main_agent_with_an_identity_mismatch",
        3,
        scenarios::sub_and_main_identity_mismatch,
    );
    assert!(interleavings > 1, "loom explored a single interleaving");
}
