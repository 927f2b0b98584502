//! What the models found in the protocol itself (not in a broken host), and
//! how it was settled. Each test pins a finding with the guarantee at stake.
#![cfg(loom)]

use std::sync::Arc;

use rotor_model::check::{FailOn, Guarantee};
use rotor_model::harness::{loom_explore, Replay};
use rotor_model::scenario::{run_checked, CorrectHost};
use rotor_model::scenarios;

/// Two sub-agents bound to account x, main bound to account y: the
/// rotation of x cannot be shared through main (the identity gate refuses
/// the mirror). Found by this model as a G1 violation: the second sub-agent
/// presented x's consumed refresh token, which a strict provider answers by
/// revoking the family for both. Settled in the kernel: a refused mirror
/// leaves the presented token fenced in main, marked rotated, and a holder
/// of a copy reports `NeedsReauth(Rotated)` instead of presenting it. G1 now
/// holds in every interleaving; the second sub-agent needing a login is the
/// documented cost of this topology (G2 cannot hold without a shared store
/// for account x), so this model checks G1 alone.
#[test]
fn finding_two_sub_agents_of_one_account_under_a_main_of_another_keeps_g1() {
    let replay = Replay {
        test_binary: "loom_findings",
        test_name: "finding_two_sub_agents_of_one_account_under_a_main_of_another_keeps_g1",
    };
    loom_explore(replay, 2, || {
        run_checked(
            &scenarios::two_subs_of_x_under_a_main_of_y(),
            &Arc::new(CorrectHost),
            FailOn::Only(Guarantee::G1),
        );
    });
}
