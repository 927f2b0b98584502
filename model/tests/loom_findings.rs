//! What the models found in the protocol itself (not in a broken host).
//! Each test pins a finding with the guarantee it breaks, so that a change
//! of the protocol that fixes it shows up here (flip the test then).
#![cfg(loom)]

use std::sync::Arc;

use rotor_model::check::FailOn;
use rotor_model::harness::{loom_explore, Replay};
use rotor_model::scenario::{run_checked, CorrectHost};
use rotor_model::scenarios;

/// Two sub-agents bound to account x, main bound to account y: the
/// rotation of x cannot be shared through main (the identity gate refuses
/// the mirror), so the second sub-agent presents x's consumed refresh
/// token. Reported to the spec owners; see
/// `scenarios::two_subs_of_x_under_a_main_of_y`.
#[test]
#[should_panic(expected = "G1 violated")]
fn finding_two_sub_agents_of_one_account_under_a_main_of_another() {
    let replay = Replay {
        test_binary: "loom_findings",
        test_name: "finding_two_sub_agents_of_one_account_under_a_main_of_another",
    };
    loom_explore(replay, 2, || {
        run_checked(
            &scenarios::two_subs_of_x_under_a_main_of_y(),
            &Arc::new(CorrectHost),
            FailOn::Any,
        );
    });
}
