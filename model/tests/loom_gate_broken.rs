//! loom finds a broken identity gate (test-only hosts, `broken::gate`) in
//! the small identity configurations: a gate that allows a copy the table
//! of SPEC §5 refuses fails with G3, one that refuses a copy the table
//! allows fails with G2. The search stops at the first interleaving that
//! breaks the named guarantee, and prints the command that replays it.
#![cfg(loom)]

mod broken;

use std::sync::Arc;

use broken::gate::{BrokenGate, GateHost};
use rotor_model::check::{FailOn, Guarantee};
use rotor_model::harness::{loom_explore, Replay};
use rotor_model::identity_scenarios as scenarios;
use rotor_model::scenario::{run_checked, Scenario};

fn expect_violation(
    test_name: &'static str,
    scenario: fn() -> Scenario,
    gate: BrokenGate,
    guarantee: Guarantee,
) {
    let host = Arc::new(GateHost { gate });
    let replay = Replay {
        test_binary: "loom_gate_broken",
        test_name,
    };
    loom_explore(replay, 2, move || {
        run_checked(&scenario(), &host, FailOn::Only(guarantee));
    });
}

/// Rule 1 dropped (the seed's tenant handling): the sub-agent of tenant U
/// adopts main's credential of tenant T.
#[test]
#[should_panic(expected = "G3 violated")]
fn rule_1_tenant_ignored() {
    expect_violation(
        "rule_1_tenant_ignored",
        scenarios::tenant_refusal_small,
        BrokenGate::TenantIgnored,
        Guarantee::G3,
    );
}

/// Rule 6 made symmetric (B16): the copy without identity never takes the
/// main agent's rotation.
#[test]
#[should_panic(expected = "G2 violated")]
fn rule_6_symmetric_gate() {
    expect_violation(
        "rule_6_symmetric_gate",
        scenarios::upgrade_small,
        BrokenGate::Symmetric,
        Guarantee::G2,
    );
}

/// Rule 1 dropped, on the mirror alone: the refresher writes its rotation
/// over main's credential of another tenant.
#[test]
#[should_panic(expected = "G3 violated")]
fn rule_1_tenant_ignored_in_the_mirror() {
    expect_violation(
        "rule_1_tenant_ignored_in_the_mirror",
        scenarios::mirror_only_refusal,
        BrokenGate::TenantIgnored,
        Guarantee::G3,
    );
}

/// Rule 2 tightened (emails compared beside equal account ids), on the
/// mirror alone: the refusal is reported, and the table does not demand it.
#[test]
#[should_panic(expected = "G2 violated")]
fn rule_2_emails_compared_in_the_mirror() {
    expect_violation(
        "rule_2_emails_compared_in_the_mirror",
        scenarios::mirror_only_same_identity,
        BrokenGate::EmailsComparedBesideAccounts,
        Guarantee::G2,
    );
}
